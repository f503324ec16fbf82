// The service's own local Hardhat node (no RPC_URL): when it stops under the service (killed, crashed), the
// next connection starts a new node on the same port and deploys AuditAnchor there again, instead of
// failing every anchoring pass until the service is restarted.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainError } from '@lethe/chain';
import { findFreePort } from '@lethe/postgres';
import { startLocalChain } from '../../apps/api/src/anchoring/chain-connection';
import { loadConfig } from '../../apps/api/src/config/config';
import { waitFor } from '../support/probe';

describe('startLocalChain', () => {
  let dir: string;
  let local: Awaited<ReturnType<typeof startLocalChain>> | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lethe-local-chain-'));
  });

  afterEach(async () => {
    await local?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a new node and deploys again when its node was killed, and keeps the connection while the node runs', async () => {
    const port = await findFreePort();
    const config = loadConfig({ CHAIN_PORT: String(port), DATA_DIR: dir }).chain;
    const notices: string[] = [];
    const pidFile = join(dir, 'hardhat-node.pid');
    local = await startLocalChain(config, (m) => notices.push(m), { pidFile });
    const first = await local.connect();
    expect(await local.connect()).toBe(first);
    await first.client.blockNumber();

    const { pid } = JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number };
    process.kill(-pid, 'SIGKILL');
    await waitFor(
      () => first.client.blockNumber().then(() => 'answers', () => 'down'),
      (state) => state === 'down',
      60_000,
    );
    // Its exit reaches this process: once the pid is gone, this process has reaped it, and Node emits the
    // child's 'exit' as it reaps (a fixed 500 ms wait was a guess a loaded machine could outlast).
    const reaped = (): boolean => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    await waitFor(async () => reaped(), (gone) => gone, 60_000);

    const second = await local.connect();
    expect(second).not.toBe(first);
    expect(second.rpcUrl).toBe(first.rpcUrl); // the same port
    expect(second.genesisHash).not.toBe(first.genesisHash); // a new chain
    expect(await second.client.checkpointCount()).toBe(0); // with AuditAnchor deployed again
    expect(JSON.parse(readFileSync(pidFile, 'utf8')).pid).not.toBe(pid);
    expect(notices.some((m) => m.includes('stopped; starting a new one'))).toBe(true);
    expect(await local.connect()).toBe(second);

    await local.stop();
    await expect(local.connect()).rejects.toBeInstanceOf(ChainError);
    local = undefined;
  });
});
