import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Ledger, openDatabase } from '@lethe/ledger';
import { findFreePort } from '@lethe/postgres';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents } from '../support/factories';
import { probeUntil } from '../support/probe';
import { startServiceProcess } from '../support/service-process';

/** Pids of the Hardhat nodes listening on `port` (from /proc: whatever started them). */
function hardhatNodesOn(port: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return args.some((a) => a.includes('hardhat')) && args.includes('node') && args[args.indexOf('--port') + 1] === String(port);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

describe('the service process', () => {
  let db: TestDatabase;
  let dataDir: string;

  beforeEach(async () => {
    db = await createTestDatabase('service');
    dataDir = mkdtempSync(join(tmpdir(), 'lethe-service-'));
  });

  afterEach(async () => {
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('stops at once on a bad variable, naming it', async () => {
    const service = startServiceProcess({ PORT: 'abc', DATABASE_URL: db.url, DATA_DIR: dataDir });
    expect(await service.exited).toBe(2);
    expect(service.output()).toContain('bad configuration: PORT: must be an integer, got "abc"');
  });

  it('anchors on its local chain, and after a restart redeploys, says so and anchors the latest checkpoint again', async () => {
    const port = await findFreePort();
    const chainPort = await findFreePort();
    const env = {
      PORT: String(port),
      CHAIN_PORT: String(chainPort),
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      ANCHOR_EVERY_ENTRIES: '3',
      ANCHOR_EVERY_SECONDS: '3600',
    };
    const api = `http://127.0.0.1:${port}`;
    const first = startServiceProcess(env);
    try {
      await probeUntil(async () => ((await getJson(`${api}/v1/health`)).body.anchoring?.state === 'ok' ? true : undefined), 'the service');
      const dataSource: DataSource = await openDatabase({ url: db.url, poolSize: 1 });
      await new Ledger(dataSource).append(buildEvents(0, 4));
      await dataSource.destroy();
      const anchor = await probeUntil(async () => {
        const res = await getJson(`${api}/v1/anchors/latest`);
        return res.status === 200 ? res.body : undefined;
      }, 'the first anchor');
      expect(anchor).toMatchObject({ chainId: '31337', treeSize: 4, confirmations: expect.any(Number) });
      const health = (await getJson(`${api}/v1/health`)).body;
      expect(health).toMatchObject({ status: 'ok', anchoring: { state: 'ok', anchoredTreeSize: 4 } });
      expect(first.output()).toContain('this chain is ephemeral');
    } finally {
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
    }
    expect(first.output()).toContain('stopped');

    const second = startServiceProcess(env);
    try {
      // The new chain starts empty: the latest checkpoint (4 entries + the ANCHORED one) is anchored again.
      const anchors = await probeUntil(async () => {
        const res = await getJson(`${api}/v1/anchors`);
        return res.body.length === 2 ? res.body : undefined;
      }, 'the anchor on the new chain', 90_000);
      expect(anchors[1].treeSize).toBe(5);
      expect(anchors[1].contract).toBe(anchors[0].contract); // same deterministic address, but a new chain
      const latest = (await getJson(`${api}/v1/anchors/latest`)).body;
      expect(latest.treeSize).toBe(5);
      expect(anchors[0].confirmations).toBeNull(); // the first chain is gone
      expect(second.output()).toContain('anchored again');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('stops the Hardhat node a killed service left running, at its next start on the same DATA_DIR', async () => {
    const port = await findFreePort();
    const chainPort = await findFreePort();
    const env = { PORT: String(port), CHAIN_PORT: String(chainPort), DATABASE_URL: db.url, DATA_DIR: dataDir };
    const api = `http://127.0.0.1:${port}`;
    const anchoringOk = async () => ((await getJson(`${api}/v1/health`)).body.anchoring?.state === 'ok' ? true : undefined);
    const first = startServiceProcess(env);
    let orphans: number[] = [];
    try {
      await probeUntil(anchoringOk, 'the first service');
      first.child.kill('SIGKILL');
      await first.exited;
      // What a crash leaves: the node, in a process group of its own, still holding CHAIN_PORT.
      orphans = hardhatNodesOn(chainPort);
      expect(orphans).toHaveLength(1);
      expect(isAlive(orphans[0])).toBe(true);

      const second = startServiceProcess(env);
      let stopped: number | null = null;
      try {
        await Promise.race([
          probeUntil(anchoringOk, 'the second service', 90_000),
          second.exited.then((code) => Promise.reject(new Error(`the second service exited (${code}): ${second.output().slice(-800)}`))),
        ]);
        expect(isAlive(orphans[0])).toBe(false);
        const nodes = hardhatNodesOn(chainPort);
        expect(nodes).toHaveLength(1);
        expect(nodes[0]).not.toBe(orphans[0]);
        expect(second.output()).toContain(`stopping the Hardhat node (pid ${orphans[0]}) left running`);
      } finally {
        second.child.kill('SIGTERM');
        stopped = await second.exited;
      }
      expect(stopped).toBe(0);
      expect(hardhatNodesOn(chainPort)).toEqual([]);
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
      for (const pid of [...orphans, ...hardhatNodesOn(chainPort)]) if (isAlive(pid)) process.kill(-pid, 'SIGKILL');
    }
  }, 240_000);
});
