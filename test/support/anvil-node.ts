// Foundry's anvil, a second JSON-RPC implementation beside Hardhat's, from the npm registry
// (@foundry-rs/anvil; its binary comes in the @foundry-rs/anvil-linux-amd64 package, nothing is downloaded).
// Its accounts come from the same test mnemonic as Hardhat's, so HARDHAT_DEV_PRIVATE_KEYS fund it too.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findFreePort } from '@lethe/postgres';
import { probeUntil } from './probe';

/** A local chain node the tests start and stop (a Hardhat node, or anvil). */
export interface LocalNode {
  rpcUrl: string;
  port: number;
  stop(): Promise<void>;
}

/** The anvil binary for this platform, or null when its package is not installed here (another platform). */
export function anvilBinary(): string | null {
  try {
    const dir = dirname(require.resolve(`@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}/package.json`));
    const binary = join(dir, 'bin', 'anvil');
    return existsSync(binary) ? binary : null;
  } catch {
    return null;
  }
}

/**
 * Starts anvil on 127.0.0.1 (`port`, or a free one), mining a block per transaction as Hardhat does;
 * with `stateFile`, its chain is loaded from that file and written back when it stops (a restart keeps it).
 */
export async function startAnvilNode(options: { port?: number; stateFile?: string } = {}): Promise<LocalNode> {
  const binary = anvilBinary();
  if (!binary) throw new Error(`no anvil binary for ${process.platform}-${process.arch}: npm ci installs @foundry-rs/anvil's platform package`);
  const port = options.port ?? (await findFreePort());
  const args = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', '31337', '--silent'];
  if (options.stateFile) args.push('--state', options.stateFile);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output = (output + d).slice(-4000)));
  child.stderr!.on('data', (d) => (output = (output + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const rpcUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // anvil writes its --state file on SIGTERM
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await probeUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`anvil exited (${child.exitCode}): ${output}`);
        const res = await fetch(rpcUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
        });
        return ((await res.json()) as { result?: string }).result ? true : undefined;
      },
      `anvil on ${rpcUrl}`,
      30_000,
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}: ${output}`);
  }
  return { rpcUrl, port, stop };
}
