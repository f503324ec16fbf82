// Durable appends to PostgreSQL and proofs read from it.
//   node -r ./scripts/register.js bench/ledger-db.bench.ts [--sizes 1000000,10000000] [--quick] [--only appends|proofs]   (--help lists the flags)
// Uses DATABASE_URL's server when set (a database is created there), else a throwaway embedded PostgreSQL.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { LedgerEvent } from '@lethe/events';
import { Ledger, openDatabase } from '@lethe/ledger';
import { fromHex, verifyConsistency, verifyInclusion } from '@lethe/merkle';
import { bulkLoad, createDatabase } from './lib/bulk-load';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { formatRate, percentile, printTable } from './lib/table';
import { startBenchPostgres } from './lib/bench-postgres';
import { seededRandom } from './lib/random';

const flags = defineFlags({
  sizes: { type: 'integers', min: 2, help: 'log sizes proofs are read from (default 1000000,10000000; 100000 with --quick)' },
  quick: { type: 'boolean', help: 'shorter append runs, one small log, fewer proofs' },
  only: { type: 'choice', choices: ['appends', 'proofs'], help: 'run one of the two parts' },
});

function benchEvent(n: number): LedgerEvent {
  return { type: 'DATASET_REGISTERED', version: 1, datasetId: `bench-${n}`, name: 'bench', features: 784, classes: 10 };
}

/** Runs `callers` concurrent loops that each append one event at a time, for `seconds`. */
async function runConcurrentSingles(ledger: Ledger, callers: number, seconds: number, offset: number) {
  const latencies: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  let n = offset;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (Date.now() < deadline) {
        const t0 = process.hrtime.bigint();
        await ledger.appendOne(benchEvent(n++));
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return { events: latencies.length, rate: latencies.length / elapsed, latencies };
}

/** One child process of the multi-process scenario (re-entered through fork). */
async function childMain(url: string, callers: number, seconds: number, offset: number): Promise<void> {
  const dataSource = await openDatabase({ url, poolSize: 2 });
  // Start together: report ready, wait for the parent's go.
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send!({ ready: true });
  });
  const result = await runConcurrentSingles(new Ledger(dataSource), callers, seconds, offset);
  process.send!({ events: result.events, rate: result.rate, latencies: result.latencies });
  await dataSource.destroy();
}

async function benchAppends(url: string, quick: boolean) {
  const dataSource = await openDatabase({ url, poolSize: 4 });
  const ledger = new Ledger(dataSource);
  const seconds = quick ? 2 : 5;
  const rows: string[][] = [];

  // Baseline: one event per transaction, one caller (what a naive log does).
  const single = await runConcurrentSingles(ledger, 1, seconds, 0);
  rows.push([
    '1 caller, 1 event per append (baseline)',
    formatRate(single.rate),
    percentile(single.latencies, 50).toFixed(2),
    percentile(single.latencies, 99).toFixed(2),
  ]);

  for (const callers of [16, 256]) {
    const r = await runConcurrentSingles(ledger, callers, seconds, 10_000_000 * callers);
    rows.push([
      `${callers} callers in 1 process, group commit`,
      formatRate(r.rate),
      percentile(r.latencies, 50).toFixed(2),
      percentile(r.latencies, 99).toFixed(2),
    ]);
  }

  // Batches of 1000 events per call, 4 concurrent callers.
  {
    const latencies: number[] = [];
    const deadline = Date.now() + seconds * 1000;
    let n = 1e9;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < deadline) {
          const events = Array.from({ length: 1000 }, () => benchEvent(n++));
          const t0 = process.hrtime.bigint();
          await ledger.append(events);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      }),
    );
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    rows.push([
      '4 callers x 1000-event batches',
      formatRate((latencies.length * 1000) / elapsed),
      percentile(latencies, 50).toFixed(2),
      percentile(latencies, 99).toFixed(2),
    ]);
  }

  // Several processes appending to the same database.
  {
    const processes = 4;
    const callers = 64;
    const children = Array.from({ length: processes }, (_, p) =>
      fork(__filename, ['--child', url, String(callers), String(seconds), String(2e9 + p * 1e8)], {
        execArgv: ['-r', join(__dirname, '..', 'scripts', 'register.js')],
      }),
    );
    const message = (child: ReturnType<typeof fork>) =>
      new Promise<{ ready?: boolean; events: number; rate: number; latencies: number[] }>((resolve, reject) => {
        child.once('message', (m) => resolve(m as never));
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
    await Promise.all(children.map(message));
    const finished = children.map(message);
    children.forEach((c) => c.send('go'));
    const results = await Promise.all(finished);
    const all = results.flatMap((r) => r.latencies);
    rows.push([
      `${processes} processes x ${callers} callers, group commit`,
      formatRate(results.reduce((sum, r) => sum + r.rate, 0)),
      percentile(all, 50).toFixed(2),
      percentile(all, 99).toFixed(2),
    ]);
  }
  await dataSource.destroy();
  printTable('Durable appends to PostgreSQL (synchronous_commit on; each acknowledged after COMMIT)', ['scenario', 'events/s', 'p50 ms', 'p99 ms'], rows);
}

async function benchProofs(serverUrl: string, sizes: number[], proofs: number) {
  const rows: string[][] = [];
  for (const size of sizes) {
    const url = await createDatabase(serverUrl, `bench_proofs_${size}`);
    const dataSource: DataSource = await openDatabase({ url, poolSize: 4 });
    const t0 = Date.now();
    await bulkLoad(url, size);
    const loadSeconds = (Date.now() - t0) / 1000;
    const ledger = new Ledger(dataSource);
    const random = seededRandom(size);
    // Warm-up, not measured: a running service has its indexes in memory.
    for (let i = 0; i < 1000; i++) {
      const treeSize = 1 + Math.floor(random() * size);
      await ledger.getInclusionProof(Math.floor(random() * treeSize), treeSize);
    }
    const inclusion: number[] = [];
    const consistency: number[] = [];
    for (let i = 0; i < proofs; i++) {
      const treeSize = 1 + Math.floor(random() * size);
      const index = Math.floor(random() * treeSize);
      let t = process.hrtime.bigint();
      const p = await ledger.getInclusionProof(index, treeSize);
      inclusion.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (i % 100 === 0) verifyInclusion(index, treeSize, fromHex(p.leafHash), p.proof.map((h) => fromHex(h)), fromHex(p.rootHash));
      const from = 1 + Math.floor(random() * treeSize);
      t = process.hrtime.bigint();
      const c = await ledger.getConsistencyProof(from, treeSize);
      consistency.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (i % 100 === 0) verifyConsistency(from, treeSize, c.proof.map((h) => fromHex(h)), fromHex(c.fromRoot), fromHex(c.toRoot));
    }
    for (const [name, lat] of [['inclusion', inclusion], ['consistency', consistency]] as const) {
      rows.push([
        size.toLocaleString('en-US'),
        name,
        String(proofs),
        percentile(lat, 50).toFixed(3),
        percentile(lat, 99).toFixed(3),
        percentile(lat, 100).toFixed(3),
        `${loadSeconds.toFixed(0)} s`,
      ]);
    }
    await dataSource.destroy();
    const admin = new Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE bench_proofs_${size} WITH (FORCE)`);
    await admin.end();
  }
  printTable(
    'Proofs read from PostgreSQL (random index and sizes after 1,000 unmeasured; root, leaf and proof nodes in one query; 1% re-verified)',
    ['entries', 'proof', 'count', 'p50 ms', 'p99 ms', 'max ms', 'bulk load'],
    rows,
  );
}

export async function run({ sizes, quick, only }: BenchOptions<typeof flags>): Promise<void> {
  const proofSizes = sizes ?? (quick ? [100_000] : [1_000_000, 10_000_000]);
  const { serverUrl, stop } = await startBenchPostgres();
  try {
    if (only !== 'proofs') await benchAppends(await createDatabase(serverUrl, 'bench_appends'), quick);
    if (only !== 'appends') await benchProofs(serverUrl, proofSizes, quick ? 1000 : 10_000);
  } finally {
    await stop();
  }
}

export const bench: Bench<typeof flags> = { summary: 'durable appends to PostgreSQL and proofs read from it', flags, run };

if (require.main === module) {
  if (process.argv[2] === '--child') {
    const [, , , url, callers, seconds, offset] = process.argv;
    childMain(url, Number(callers), Number(seconds), Number(offset)).catch((error) => {
      console.error(error);
      process.exit(1);
    });
  } else {
    runBenchFile('bench/ledger-db.bench.ts', bench);
  }
}
