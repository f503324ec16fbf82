// Load: many clients (autocannon, one connection each) over the API mix for minutes, against the service as
// `npm start` runs it (a child process on its own DATA_DIR with its embedded PostgreSQL, its local chain
// anchoring every 5 s, its own job worker; the rate limit off, so that what is measured is the service and
// not its 429s). Each client loops over: an upload of 20 new samples, a prediction, a forget request for a
// sample it uploaded, and reads (the forget request, the sample's receipt, log entries, the dataset, health).
// Measured: throughput, p50/p99 per route and overall, the service process's RSS through the run (it must
// stay flat), zero 5xx, and nothing lost: every acknowledged forget request is found and completes, every
// acknowledged sample's receipt is found (all of them, or a random 2,000 when more), the dataset holds at
// least every acknowledged sample, and fsck is clean.
import autocannon from 'autocannon';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineFlags, type BenchOptions } from '../bench/lib/args';
import { percentile } from '../bench/lib/table';
import { fsckProblem } from './lib/log-checks';
import { Part, PartReport, forEachConcurrently, progress, sleep } from './lib/part';
import { createPrng, freshSeed } from './lib/prng';
import { CLASSES, FEATURES, ApiClient, makeDataDir, serviceEnv, startTrialService, stopTrialService, trainModel } from './lib/service';
import { findFreePort } from '@lethe/postgres';

const flags = defineFlags({
  clients: { type: 'integer', min: 1, default: 200, help: 'concurrent clients (connections)' },
  seconds: { type: 'integer', min: 5, default: 300, help: 'how long the load runs' },
});

export type LoadOptions = BenchOptions<typeof flags>;

const SAMPLES_PER_UPLOAD = 20;
/** How many acknowledged samples' receipts are checked at most (a random subset when more were acknowledged). */
const RECEIPTS_CHECKED = 2000;

/** What a client (a connection) remembers between its requests: when the current one was sent, what it uploaded last. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Context = any;
interface RouteStats {
  ms: number[];
  statuses: Map<number, number>;
}

const ROUTES = ['upload', 'predict', 'forget', 'read forget request', 'read receipt', 'read entries', 'read dataset', 'health'] as const;
type Route = (typeof ROUTES)[number];

/** The VmRSS of a process in MB (its /proc status), or NaN once it is gone. */
function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export async function runLoad(options: LoadOptions): Promise<PartReport> {
  const failures: string[] = [];
  const dataDir = makeDataDir('lethe-load-');
  const env = await serviceEnv(dataDir, { CHAIN_PORT: String(await findFreePort()), ANCHOR_EVERY_SECONDS: '5', JOB_POLL_SECONDS: '1' });
  progress(`load: ${options.clients} clients for ${options.seconds} s`);
  let service = await startTrialService(env);
  const summary: string[] = [];
  const counts: Record<string, number> = { requests: 0, routes: 0, acknowledgedUploads: 0, acknowledgedForgets: 0, receiptsChecked: 0 };
  try {
    const { ml } = service;
    const datasetId = (await ml.ok('POST', '/v1/datasets', { name: 'load', features: FEATURES, classes: CLASSES })).id as string;
    const rng = createPrng(freshSeed());
    const sample = (externalId: string) => ({
      externalId,
      subjectId: `subject-${rng.int(0, 999)}`,
      features: Array.from({ length: FEATURES }, () => rng.int(0, 1000) / 100),
      label: rng.int(0, CLASSES - 1),
    });
    await ml.ok('POST', `/v1/datasets/${datasetId}/samples`, Array.from({ length: 300 }, (_, i) => sample(`seed-${i}`)));
    const model = await trainModel(ml, datasetId, { shards: 3, epochs: 2, batchSize: 16 });

    const pid = service.process.child.pid!;
    const rss: { t: number; mb: number }[] = [];
    const rssBefore = rssMb(pid);
    const acknowledgedSamples = new Map<string, string>();
    const acknowledgedForgets: string[] = [];
    const byRoute = new Map<Route, RouteStats>();
    let nextUpload = 0;
    const note = (route: Route, status: number, context: Context, body?: string) => {
      const stats: RouteStats = byRoute.get(route) ?? { ms: [], statuses: new Map() };
      byRoute.set(route, stats);
      stats.ms.push(performance.now() - context.sentAt);
      stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
      if (status >= 500) failures.push(`${route}: ${status} ${(body ?? '').slice(0, 300)}`);
    };
    const sent = (context: Context) => (context.sentAt = performance.now());
    const auth = { authorization: `Bearer ${ml.key}`, 'content-type': 'application/json' };
    const requests: autocannon.Request[] = [
      {
        method: 'POST',
        path: `/v1/datasets/${datasetId}/samples`,
        headers: auth,
        setupRequest: (req, context: Context) => {
          const n = nextUpload++;
          const samples = Array.from({ length: SAMPLES_PER_UPLOAD }, (_, i) => sample(`load-${n}-${i}`));
          context.externalIds = samples.map((s) => s.externalId);
          sent(context);
          return { ...req, body: JSON.stringify(samples) };
        },
        onResponse: (status, body, context: Context) => {
          note('upload', status, context, body);
          context.commitment = undefined;
          if (status !== 200) return;
          for (const c of JSON.parse(body).commitments as { externalId: string; commitment: string }[]) acknowledgedSamples.set(c.externalId, c.commitment);
          context.commitment = acknowledgedSamples.get(context.externalIds[0]);
        },
      },
      {
        method: 'POST',
        path: `/v1/models/${model.modelId}/predict`,
        headers: auth,
        setupRequest: (req, context: Context) => {
          sent(context);
          return { ...req, body: JSON.stringify({ inputs: Array.from({ length: 4 }, () => Array.from({ length: FEATURES }, () => rng.int(0, 1000) / 100)) }) };
        },
        onResponse: (status, body, context: Context) => note('predict', status, context, body),
      },
      {
        method: 'POST',
        path: '/v1/forget-requests',
        headers: auth,
        setupRequest: (req, context: Context) => {
          sent(context);
          // A sample of the client's last upload (or a name no upload gave, when that upload failed: a 404).
          return { ...req, body: JSON.stringify({ datasetId, externalIds: [context.externalIds?.[1] ?? 'missing'], reason: 'load' }) };
        },
        onResponse: (status, body, context: Context) => {
          note('forget', status, context, body);
          context.forgetId = status === 202 ? JSON.parse(body).id : undefined;
          if (context.forgetId) acknowledgedForgets.push(context.forgetId);
        },
      },
      {
        method: 'GET',
        headers: auth,
        setupRequest: (req, context: Context) => {
          sent(context);
          return { ...req, path: `/v1/forget-requests/${context.forgetId ?? '00000000-0000-4000-8000-000000000000'}` };
        },
        onResponse: (status, body, context: Context) => note('read forget request', status, context, body),
      },
      {
        method: 'GET',
        headers: auth,
        setupRequest: (req, context: Context) => {
          sent(context);
          return { ...req, path: `/v1/receipts/${context.commitment ?? '0'.repeat(64)}` };
        },
        onResponse: (status, body, context: Context) => note('read receipt', status, context, body),
      },
      {
        method: 'GET',
        headers: auth,
        setupRequest: (req, context: Context) => {
          sent(context);
          return { ...req, path: `/v1/ledger/entries?start=${rng.int(0, 200)}&limit=100` };
        },
        onResponse: (status, body, context: Context) => note('read entries', status, context, body),
      },
      {
        method: 'GET',
        path: `/v1/datasets/${datasetId}`,
        headers: auth,
        setupRequest: (req, context: Context) => (sent(context), req),
        onResponse: (status, body, context: Context) => note('read dataset', status, context, body),
      },
      {
        method: 'GET',
        path: '/v1/health',
        setupRequest: (req, context: Context) => (sent(context), req),
        onResponse: (status, body, context: Context) => note('health', status, context, body),
      },
    ];
    const t0 = performance.now();
    const sampler = setInterval(() => rss.push({ t: (performance.now() - t0) / 1000, mb: rssMb(pid) }), Math.min(5000, options.seconds * 50));
    const result = await autocannon({ url: service.api, connections: options.clients, duration: options.seconds, timeout: 60, requests });
    clearInterval(sampler);
    const loadEnded = performance.now();
    rss.push({ t: (loadEnded - t0) / 1000, mb: rssMb(pid) });

    // Nothing lost: every acknowledged forget request is there and completes; every acknowledged sample is.
    const states = new Map<string, number>();
    for (const deadline = Date.now() + 600_000; Date.now() < deadline && (await countWaiting(ml, acknowledgedForgets)) > 0; ) await sleep(2000);
    const drainSeconds = (performance.now() - loadEnded) / 1000;
    await forEachConcurrently(acknowledgedForgets, 20, async (id) => {
      const got = await ml.call('GET', `/v1/forget-requests/${id}`);
      if (got.status !== 200) failures.push(`acknowledged forget request ${id} is lost (${got.status})`);
      else {
        states.set(got.body.state, (states.get(got.body.state) ?? 0) + 1);
        if (got.body.state !== 'completed') failures.push(`acknowledged forget request ${id} ended ${got.body.state}`);
      }
    });
    const checkedSamples = [...acknowledgedSamples].sort(() => rng.next() - 0.5).slice(0, RECEIPTS_CHECKED);
    await forEachConcurrently(checkedSamples, 20, async ([externalId, commitment]) => {
      const receipt = await ml.call('GET', `/v1/receipts/${commitment}`);
      if (receipt.status !== 200) failures.push(`acknowledged sample ${externalId} is lost: its receipt answers ${receipt.status}`);
    });
    const dataset = await ml.ok('GET', `/v1/datasets/${datasetId}`);
    const held: number = dataset.samples.committed;
    if (!(held >= acknowledgedSamples.size + 300))
      failures.push(`the dataset holds ${held} samples, fewer than the ${acknowledgedSamples.size + 300} acknowledged (${JSON.stringify(dataset).slice(0, 300)})`);
    const fsck = await fsckProblem(dataDir);
    if (fsck) failures.push(fsck);
    const rssAfter = rssMb(pid);

    // Flat: over a run of two minutes or more, the RSS of the last fifth of the run stays within 30% of the second fifth's.
    const fifth = (k: number) => rss.filter((r) => r.t >= (k * options.seconds) / 5 && r.t < ((k + 1) * options.seconds) / 5).map((r) => r.mb);
    const early = percentile(fifth(1), 50);
    const late = percentile(fifth(4), 50);
    if (options.seconds >= 120 && late > early * 1.3) failures.push(`RSS grew from ${early.toFixed(0)} MB (median, second fifth of the run) to ${late.toFixed(0)} MB (last fifth)`);
    Object.assign(counts, {
      requests: result.requests.total,
      routes: byRoute.size,
      acknowledgedUploads: acknowledgedSamples.size / SAMPLES_PER_UPLOAD,
      acknowledgedForgets: acknowledgedForgets.length,
      receiptsChecked: checkedSamples.length,
    });
    const fiveXx = Object.entries(result.statusCodeStats ?? {}).filter(([code]) => Number(code) >= 500);
    if (result.errors > 0) failures.push(`${result.errors} connection errors (${result.timeouts} timeouts)`);
    const routeRows = [...byRoute].map(([route, s]) => {
      const statuses = [...s.statuses].sort(([a], [b]) => a - b).map(([code, n]) => `${code}: ${n}`).join(', ');
      return `${route.padEnd(20)} ${String(s.ms.length).padStart(7)} requests, p50 ${percentile(s.ms, 50).toFixed(0)} ms, p99 ${percentile(s.ms, 99).toFixed(0)} ms (${statuses})`;
    });
    summary.push(
      `${options.clients} clients for ${options.seconds} s: ${result.requests.total} requests, ${result.requests.average.toFixed(0)} req/s (mean), latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`,
      `5xx: ${fiveXx.reduce((n, [, s]) => n + Number((s as { count: number }).count), 0)}; non-2xx ${result.non2xx}; connection errors ${result.errors}, timeouts ${result.timeouts}`,
      ...routeRows,
      `service RSS: ${rssBefore.toFixed(0)} MB before, ${early.toFixed(0)} MB (median, second fifth), ${late.toFixed(0)} MB (median, last fifth), ${rssAfter.toFixed(0)} MB after the drain; max ${Math.max(...rss.map((r) => r.mb)).toFixed(0)} MB`,
      `nothing lost: ${acknowledgedForgets.length} acknowledged forget requests found (${[...states].map(([k, v]) => `${k} ${v}`).join(', ')}; drained ${drainSeconds.toFixed(0)} s after the load), ` +
        `${checkedSamples.length} of ${acknowledgedSamples.size} acknowledged samples' receipts found, the dataset holds ${held}; fsck ${fsck ? 'FAILED' : 'clean'}`,
    );
  } catch (error) {
    failures.push(`the load stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    const code = await stopTrialService(service.process);
    if (code !== 0) failures.push(`the service exited ${code} on SIGINT: ${service.process.output().slice(-2000)}`);
  }
  if (failures.length === 0) rmSync(dataDir, { recursive: true, force: true });
  else {
    // What the service logged (its errors' stacks), beside its data, for a look.
    writeFileSync(join(dataDir, 'service-output.log'), service.process.output());
    failures.push(`DATA_DIR kept: ${dataDir} (the service's output in service-output.log); its last output:\n${service.process.output().slice(-3000)}`);
  }
  return { part: 'load', failures: dedupe(failures), summary, counts };
}

/** The forget requests of `ids` not completed or failed yet (looked up 20 at a time). */
async function countWaiting(ml: ApiClient, ids: string[]): Promise<number> {
  let waiting = 0;
  await forEachConcurrently(ids, 20, async (id) => {
    const got = await ml.call('GET', `/v1/forget-requests/${id}`);
    if (got.status === 200 && !['completed', 'failed'].includes(got.body.state)) waiting++;
  });
  return waiting;
}

/** Identical failures counted once ("upload: 503 (x12)"). */
function dedupe(failures: string[]): string[] {
  const counts = new Map<string, number>();
  for (const f of failures) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].map(([f, n]) => (n > 1 ? `${f} (x${n})` : f));
}

export const part: Part<typeof flags> = {
  summary: 'autocannon over the API mix: throughput, p50/p99, RSS before/after, no 5xx, nothing lost',
  flags,
  run: runLoad,
  // Every route of the mix was answered, uploads and forget requests were acknowledged, and receipts looked up.
  least: () => ({ requests: ROUTES.length, routes: ROUTES.length, acknowledgedUploads: 1, acknowledgedForgets: 1, receiptsChecked: 1 }),
};
