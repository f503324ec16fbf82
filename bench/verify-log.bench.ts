// verifyLog on a large anchored log, against just downloading and hashing its entries in the same run.
//   node -r ./scripts/register.js bench/verify-log.bench.ts [--sizes 100000,1000000] [--anchors 8] [--quick]   (--help lists the flags)
// Uses DATABASE_URL's server when set (a database is created there), else a throwaway embedded PostgreSQL;
// a local Hardhat node holds the anchors. The log is bulk-loaded with SQL (as ledger-db.bench.ts does), then
// anchored at --anchors evenly spaced sizes, then served by the real service (createApp) on 127.0.0.1.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { Wallet } from 'ethers';
import { HARDHAT_DEV_PRIVATE_KEYS, deployAuditAnchor } from '@lethe/chain';
import { Ledger, openDatabase } from '@lethe/ledger';
import { hashLeaf } from '@lethe/merkle';
import { LogClient, MAX_ENTRIES_PER_PAGE, verifyLog, type ServerEntry } from '@lethe/verifier';
import { createApp } from '../apps/api/src/app';
import { loadConfig } from '../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../apps/api/src/database/schema';
import { bulkLoad, createDatabase } from './lib/bulk-load';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { formatRate, printTable } from './lib/table';
import { startBenchStack } from './lib/bench-stack';
import { sharedTestKeyStore } from '../test/support/key-store';

const flags = defineFlags({
  sizes: { type: 'integers', min: 2, help: 'log sizes verified (default 100000,1000000; 20000 with --quick)' },
  anchors: { type: 'integer', min: 1, default: 8, help: 'anchors, at evenly spaced sizes of each log' },
  quick: { type: 'boolean', help: 'a small log only' },
});

/** The baseline: every entry downloaded (the next page requested while this one is hashed, as verifyLog does) and hashed. */
async function downloadAndHash(apiUrl: string, size: number, hash: boolean): Promise<void> {
  const log = new LogClient(apiUrl);
  const encoder = new TextEncoder();
  const page = (start: number) => log.getEntries(start, Math.min(MAX_ENTRIES_PER_PAGE, size - start));
  let next: Promise<ServerEntry[]> | undefined = page(0);
  for (let start = 0; start < size; start += MAX_ENTRIES_PER_PAGE) {
    const entries: ServerEntry[] = await next!;
    next = start + MAX_ENTRIES_PER_PAGE < size ? page(start + MAX_ENTRIES_PER_PAGE) : undefined;
    if (hash) for (const entry of entries) hashLeaf(encoder.encode(entry.event));
  }
}

/** `lethe-audit verify-log` as an auditor runs it: its own process (startup included), the service in this one. */
async function runVerifyLogCli(apiUrl: string, rpcUrl: string, contract: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      './scripts/register.js',
      'apps/cli/src/main.ts',
      'verify-log',
      '--api',
      apiUrl,
      '--rpc',
      rpcUrl,
      '--contract',
      contract,
      '--json',
    ],
    { cwd: resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolveExit) => child.on('close', resolveExit));
  if (code !== 0) throw new Error(`lethe-audit verify-log exited ${code}: ${err.slice(-1000)} ${out.slice(0, 1000)}`);
  if (!(JSON.parse(out) as { ok: boolean }).ok) throw new Error(`lethe-audit verify-log failed: ${out.slice(0, 2000)}`);
}

async function timed(task: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await task();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function run(flagValues: BenchOptions<typeof flags>): Promise<void> {
  const options = { sizes: flagValues.sizes ?? (flagValues.quick ? [20_000] : [100_000, 1_000_000]), anchors: flagValues.anchors };
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const { serverUrl, rpcUrl, provider } = await startBenchStack(cleanups);
    const signer = new Wallet(HARDHAT_DEV_PRIVATE_KEYS[0], provider);

    const rows: string[][] = [];
    for (const size of options.sizes) {
      const name = `bench_verify_${size}`;
      const url = await createDatabase(serverUrl, name);
      const dataSource = await openDatabase({ url, entities: API_ENTITIES, migrations: API_MIGRATIONS, poolSize: 4 });
      await bulkLoad(url, size);
      const ledger = new Ledger(dataSource);
      const client = await deployAuditAnchor(signer, signer.address, signer.address);
      let previous = 0;
      for (let k = 1; k <= options.anchors; k++) {
        const treeSize = Math.max(previous + 1, Math.floor((size * k) / options.anchors));
        if (treeSize > size) break;
        const root = await ledger.getRoot(treeSize);
        const proof = previous === 0 ? [] : (await ledger.getConsistencyProof(previous, treeSize)).proof;
        await client.waitForAnchor(await client.anchor(previous, treeSize, root, proof));
        previous = treeSize;
      }
      const app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: url, ANCHORING: 'off' }), dataSource, ledger });
      await app.listen(0, '127.0.0.1');
      const apiUrl = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
      try {
        // Each baseline runs before and after verifyLog (the first pass also warms PostgreSQL's cache); the best counts.
        const baseline = [await timed(() => downloadAndHash(apiUrl, size, true))];
        const download = [await timed(() => downloadAndHash(apiUrl, size, false))];
        let report: Awaited<ReturnType<typeof verifyLog>> | undefined;
        const verify = await timed(async () => (report = await verifyLog({ apiUrl, rpcUrl, contract: client.address })));
        if (!report!.ok) throw new Error(`verifyLog failed on the benchmark log: ${JSON.stringify(report!.failures.slice(0, 3))}`);
        const cli = await timed(() => runVerifyLogCli(apiUrl, rpcUrl, client.address));
        download.push(await timed(() => downloadAndHash(apiUrl, size, false)));
        baseline.push(await timed(() => downloadAndHash(apiUrl, size, true)));
        const best = Math.min(...baseline);
        rows.push([
          size.toLocaleString('en-US'),
          String(report!.anchors.checked),
          `${Math.min(...download).toFixed(2)} s`,
          `${best.toFixed(2)} s (${formatRate(size / best)}/s)`,
          `${verify.toFixed(2)} s (${formatRate(size / verify)}/s)`,
          `${(verify / best).toFixed(2)}x`,
          `${cli.toFixed(2)} s (${formatRate(size / cli)}/s)`,
        ]);
      } finally {
        await app.close();
        await dataSource.destroy();
        const admin = new Client({ connectionString: serverUrl });
        await admin.connect();
        await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
        await admin.end();
      }
    }
    printTable(
      'verifyLog (re-hash, canonical JSON and schema checks, CompactRange roots, every on-chain checkpoint, consistency proof) ' +
        'vs downloading and hashing the same entries (pages of 1000 over HTTP from the real service in the same process, ' +
        'next page prefetched in both; best of 2 for the baselines); and `lethe-audit verify-log` as an auditor runs it, ' +
        'in its own process (startup included) against this process serving',
      [
        'entries',
        'anchors',
        'download only',
        'download + hash (baseline)',
        'verifyLog (same process)',
        'vs baseline',
        'lethe-audit verify-log',
      ],
      rows,
    );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

export const bench: Bench<typeof flags> = { summary: 'lethe-audit verify-log on a large log vs downloading and hashing it', flags, run };

if (require.main === module) runBenchFile('bench/verify-log.bench.ts', bench);
