// What the service benches stand on: a throwaway PostgreSQL, a local Hardhat node and a provider on it.
import { JsonRpcProvider } from 'ethers';
import { connectProvider, startHardhatNode } from '@lethe/chain';
import { startBenchPostgres } from './bench-postgres';

/** Starts the three; each one's stop is pushed onto `cleanups` as soon as it runs (run them in reverse). */
export async function startBenchStack(
  cleanups: (() => Promise<void>)[],
): Promise<{ serverUrl: string; rpcUrl: string; provider: JsonRpcProvider }> {
  const postgres = await startBenchPostgres();
  cleanups.push(postgres.stop);
  const node = await startHardhatNode({ port: 0 });
  cleanups.push(() => node.stop());
  const provider = await connectProvider(node.rpcUrl, { pollingIntervalMs: 50 });
  cleanups.push(async () => provider.destroy());
  return { serverUrl: postgres.serverUrl, rpcUrl: node.rpcUrl, provider };
}
