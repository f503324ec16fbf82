// Time from an append to its anchor being confirmed on the local chain (and logged as ANCHORED).
//   node -r ./scripts/register.js bench/anchor-latency.bench.ts [--trials 20]   (--help lists the flags)
import { Logger } from '@nestjs/common';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { HARDHAT_DEV_PRIVATE_KEYS, connectProvider, deployAuditAnchor, describeConnection, startHardhatNode } from '@lethe/chain';
import { Ledger, openDatabase } from '@lethe/ledger';
import { startEmbeddedPostgres } from '@lethe/postgres';
import { AnchoringLoop } from '../apps/api/src/anchoring/anchoring-loop';
import { API_ENTITIES, API_MIGRATIONS } from '../apps/api/src/database/schema';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { percentile, printTable } from './lib/table';

const flags = defineFlags({
  trials: { type: 'integer', min: 1, default: 20, help: 'appends timed per loop polling interval' },
});

export async function run({ trials }: BenchOptions<typeof flags>): Promise<void> {
  Logger.overrideLogger(false);
  const dir = mkdtempSync(join(tmpdir(), 'lethe-bench-anchor-'));
  chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pgdata'), persistent: false });
  const node = await startHardhatNode({ port: 0 });
  const rows: string[][] = [];
  try {
    for (const pollMs of [50, 250]) {
      const provider = await connectProvider(node.rpcUrl, { pollingIntervalMs: 50 });
      const signer = new Wallet(HARDHAT_DEV_PRIVATE_KEYS[0], provider);
      const client = await deployAuditAnchor(signer, signer.address, signer.address);
      const connection = await describeConnection(provider, client, { rpcUrl: node.rpcUrl, local: true, close: async () => undefined });
      const dbName = `bench_anchor_${pollMs}`;
      const url = new URL(pg.url);
      url.pathname = `/${dbName}`;
      const admin = await openDatabase({ url: pg.url, poolSize: 1 });
      await admin.query(`CREATE DATABASE ${dbName}`);
      await admin.destroy();
      const dataSource = await openDatabase({ url: url.toString(), entities: API_ENTITIES, migrations: API_MIGRATIONS });
      const ledger = new Ledger(dataSource);
      const loop = new AnchoringLoop(dataSource, ledger, async () => connection, {
        everyEntries: 1,
        everySeconds: 3600,
        confirmations: 1,
        replaceAfterSeconds: 3600,
        pollMs,
      });
      loop.start();
      const latencies: number[] = [];
      for (let i = 0; i < trials; i++) {
        const t0 = process.hrtime.bigint();
        const entry = await ledger.appendOne({
          type: 'DATASET_REGISTERED',
          version: 1,
          datasetId: `bench-${i}`,
          name: 'bench',
          features: 4,
          classes: 3,
        });
        for (;;) {
          const [row] = await dataSource.query(
            `SELECT 1 FROM anchors WHERE state = 'confirmed' AND ledger_index IS NOT NULL AND tree_size > $1 LIMIT 1`,
            [String(entry.index)],
          );
          if (row) break;
          await new Promise((r) => setTimeout(r, 5));
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      await loop.stop();
      await dataSource.destroy();
      provider.destroy();
      rows.push([
        `${pollMs} ms`,
        String(trials),
        percentile(latencies, 50).toFixed(0),
        percentile(latencies, 90).toFixed(0),
        percentile(latencies, 100).toFixed(0),
      ]);
    }
  } finally {
    await node.stop();
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(
    'Append -> anchor confirmed and ANCHORED logged (local Hardhat chain, automine, 1 confirmation, ANCHOR_EVERY_ENTRIES=1)',
    ['loop poll', 'trials', 'p50 ms', 'p90 ms', 'max ms'],
    rows,
  );
}

export const bench: Bench<typeof flags> = { summary: 'append -> anchor confirmed and ANCHORED logged, local Hardhat chain', flags, run };

if (require.main === module) runBenchFile('bench/anchor-latency.bench.ts', bench);
