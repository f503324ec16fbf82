// Load: many clients (autocannon, one connection each) over the API mix for minutes, against the service as
// `npm start` runs it (a child process on its own DATA_DIR with its embedded PostgreSQL, its local chain
// anchoring every 5 s, its own job worker; the rate limit off, so that what is measured is the service and
// not its 429s). Each client loops over: an upload of 20 new samples, a prediction, a forget request for a
// sample it uploaded, and reads (the forget request, the sample's receipt, log entries, the dataset, health).
// Measured: throughput, p50/p99 per route and overall, the service's memory through the run, read through its
// inspector (reliability/lib/inspector.ts: RSS, V8's heap, external memory; glibc's share from /proc smaps),
// which must be flat after a full GC (flatnessFailures says how flat), zero 5xx, and nothing lost: every
// acknowledged forget request is found and completes, every acknowledged sample's receipt is found (all of
// them, or a random 2,000 when more), the dataset holds at least every acknowledged sample, and fsck is clean.
import autocannon from 'autocannon';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineFlags, type BenchOptions } from '../bench/lib/args';
import { percentile } from '../bench/lib/table';
import { fsckProblem } from './lib/log-checks';
import { Part, PartReport, forEachConcurrently, progress, sleep } from './lib/part';
import { createPrng, freshSeed } from './lib/prng';
import { ResidentBreakdown, residentBreakdown } from './lib/proc-memory';
import { INSPECT_FLAG, InspectorSession, MemoryUsage, inspectorUrl } from './lib/inspector';
import { CLASSES, FEATURES, ApiClient, makeDataDir, serviceEnv, startTrialService, stopTrialService, trainModel } from './lib/service';
import { findFreePort } from '@lethe/postgres';

const flags = defineFlags({
  clients: { type: 'integer', min: 1, default: 200, help: 'concurrent clients (connections)' },
  seconds: { type: 'integer', min: 5, default: 300, help: 'how long the load runs' },
  heapSnapshots: { type: 'boolean', help: 'write heap snapshots of the service (before the load and after the drain, each after a GC; a snapshot costs the service memory) into a folder beside its DATA_DIR, kept' },
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

/**
 * How far the service's memory may end above where it began, each reading taken after a full GC. RSS after the
 * drain within RSS_MARGIN_COLD of RSS before the load: what no GC returns grows once to a high-water mark at the
 * load's concurrency (glibc's brk heap and arenas keep freed memory for reuse, V8 keeps the code it optimized):
 * +16% to +22% at 50 clients for 90 s (three runs, load 22-33). Within RSS_MARGIN_WARM of RSS after the first
 * fifth of the load, once that mark is reached (in a run of WARM_CHECK_SECONDS or more: a short run's first fifth
 * is too early for it): memory that grows with the work done (a leak) shows here. The JS
 * heap, where an unbounded cache of the service's own would be, within HEAP_MARGIN of before (+8% measured, the
 * optimized code; a heap snapshot diff showed nothing else grow).
 */
const RSS_MARGIN_COLD = 0.5;
const RSS_MARGIN_WARM = 0.15;
const WARM_CHECK_SECONDS = 60;
const HEAP_MARGIN = 0.2;

/** Failures of the flatness checks, naming the readings compared. */
export function flatnessFailures(m: { before: MemoryUsage; warm: MemoryUsage; after: MemoryUsage }, checks: { rss: boolean; warm: boolean }): string[] {
  const failures: string[] = [];
  if (checks.rss && m.after.rss > m.before.rss * (1 + RSS_MARGIN_COLD))
    failures.push(`RSS not flat: ${m.after.rss.toFixed(0)} MB after the drain and a GC, more than ${RSS_MARGIN_COLD * 100}% above ${m.before.rss.toFixed(0)} MB before the load`);
  if (checks.rss && checks.warm && m.after.rss > m.warm.rss * (1 + RSS_MARGIN_WARM))
    failures.push(`RSS grew with the load: ${m.after.rss.toFixed(0)} MB after the drain and a GC, more than ${RSS_MARGIN_WARM * 100}% above ${m.warm.rss.toFixed(0)} MB after its first fifth`);
  if (m.after.heapUsed > m.before.heapUsed * (1 + HEAP_MARGIN))
    failures.push(`JS heap not flat: ${m.after.heapUsed.toFixed(0)} MB used after the drain and a GC, more than ${HEAP_MARGIN * 100}% above ${m.before.heapUsed.toFixed(0)} MB before the load`);
  return failures;
}

/** One reading of the service's memory, `t` seconds after the load began. */
type MemorySample = MemoryUsage & { t: number };

/** Where the resident memory lies outside V8 (glibc's arenas and brk heap), as a line. */
const formatResident = (r: ResidentBreakdown | undefined): string =>
  r
    ? `brk heap ${r.brk.toFixed(0)} MB, malloc arenas ${r.arenas.toFixed(0)} MB in ${r.arenaHeaps} heaps, other anonymous ${r.otherAnonymous.toFixed(0)} MB, files ${r.files.toFixed(0)} MB`
    : 'no /proc smaps';

/** A reading as a line: RSS, and where V8 says the memory is (its heap, and what lives outside it). */
const formatMemory = (m: MemoryUsage): string =>
  `RSS ${m.rss.toFixed(0)} MB (heap used ${m.heapUsed.toFixed(0)} of ${m.heapTotal.toFixed(0)}, external ${m.external.toFixed(0)}, array buffers ${m.arrayBuffers.toFixed(0)})`;

export async function runLoad(options: LoadOptions): Promise<PartReport> {
  const failures: string[] = [];
  const dataDir = makeDataDir('lethe-load-');
  const env = await serviceEnv(dataDir, { CHAIN_PORT: String(await findFreePort()), ANCHOR_EVERY_SECONDS: '5', JOB_POLL_SECONDS: '1' });
  progress(`load: ${options.clients} clients for ${options.seconds} s`);
  let service = await startTrialService(env, { nodeArgs: [INSPECT_FLAG] });
  let inspector: InspectorSession | undefined;
  const snapshotDir = `${dataDir}-heap`;
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

    // The memory before: after a warm-up (the dataset made, a model trained and served) and a full GC.
    const url = inspectorUrl(service.process.output());
    if (!url) throw new Error(`the service did not print its inspector's URL:\n${service.process.output().slice(-2000)}`);
    const session = (inspector = await InspectorSession.connect(url));
    const snapshot = async (name: string) => {
      if (!options.heapSnapshots) return;
      mkdirSync(snapshotDir, { recursive: true, mode: 0o700 });
      await session.writeHeapSnapshot(join(snapshotDir, `${name}.heapsnapshot`));
    };
    await ml.ok('POST', `/v1/models/${model.modelId}/predict`, { inputs: [Array.from({ length: FEATURES }, () => 1)] });
    await session.collectGarbage();
    const before = await session.memory();
    const pid = service.process.child.pid!;
    const residentBefore = residentBreakdown(pid);
    await snapshot('1-before');
    const memory: MemorySample[] = [];
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
    let loading = true;
    const readMemory = async () => memory.push({ t: (performance.now() - t0) / 1000, ...(await session.memory()) });
    // Warm: after the first fifth of the load, a full GC (one pause, under load) and a reading.
    let warm: { memory: MemoryUsage; resident: ResidentBreakdown | undefined } | undefined;
    const sampler = (async () => {
      while (loading) {
        if (!warm && performance.now() - t0 >= (options.seconds * 1000) / 5) {
          await session.collectGarbage();
          warm = { memory: await session.memory(), resident: residentBreakdown(pid) };
        }
        await Promise.all([readMemory(), sleep(Math.min(5000, options.seconds * 50))]);
      }
    })().catch((error: unknown) => error as Error); // a reading that failed ends the readings; reported below
    const result = await autocannon({ url: service.api, connections: options.clients, duration: options.seconds, timeout: 60, requests });
    loading = false;
    const samplerError = await sampler;
    if (samplerError) throw new Error(`reading the service's memory failed: ${samplerError.message}`);
    const loadEnded = performance.now();
    await readMemory();
    const residentAtEnd = residentBreakdown(pid);

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
    const afterDrain = await session.memory();
    await session.collectGarbage();
    const afterGc = await session.memory();
    const residentAfterGc = residentBreakdown(pid);
    await snapshot('2-after-drain-and-gc');
    const rss = memory.map((m) => ({ t: m.t, mb: m.rss }));
    const rssBefore = before.rss;
    const rssAfter = afterDrain.rss;

    // Flat, compared after a full GC each time (RSS without one is mostly garbage that V8 has not collected yet: the
    // worker lets the heap triple between full collections while its jobs run, runtime.ts's holdHeapForTraining).
    if (!warm) throw new Error('the load ended before its first fifth was read');
    // A heap snapshot leaves its own memory behind in the brk heap (+180 MB seen): RSS is not checked then.
    failures.push(...flatnessFailures({ before, warm: warm.memory, after: afterGc }, { rss: !options.heapSnapshots, warm: options.seconds >= WARM_CHECK_SECONDS }));
    const fifth = (k: number) => rss.filter((r) => r.t >= (k * options.seconds) / 5 && r.t < ((k + 1) * options.seconds) / 5).map((r) => r.mb);
    const early = percentile(fifth(1), 50);
    const late = percentile(fifth(4), 50);
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
      `service RSS after a full GC: ${rssBefore.toFixed(0)} MB before, ${warm.memory.rss.toFixed(0)} MB after the first fifth of the load, ${afterGc.rss.toFixed(0)} MB after the drain ` +
        `(flat: within ${RSS_MARGIN_COLD * 100}% of before${options.seconds >= WARM_CHECK_SECONDS ? ` and ${RSS_MARGIN_WARM * 100}% of the first fifth's` : ''}; heap used within ${HEAP_MARGIN * 100}% of before's${options.heapSnapshots ? '; RSS not checked: heap snapshots were taken' : ''})`,
      `service RSS without a GC: ${early.toFixed(0)} MB (median, second fifth), ${late.toFixed(0)} MB (median, last fifth), max ${Math.max(...rss.map((r) => r.mb)).toFixed(0)} MB, ${rssAfter.toFixed(0)} MB after the drain`,
      `service memory before (after a GC): ${formatMemory(before)}`,
      `after the first fifth (after a GC): ${formatMemory(warm.memory)}; ${formatResident(warm.resident)}`,
      ...memory.filter((_, i) => i % 6 === 0 || i === memory.length - 1).map((m) => `  at ${m.t.toFixed(0).padStart(4)} s: ${formatMemory(m)}`),
      `after the drain: ${formatMemory(afterDrain)}; after a GC: ${formatMemory(afterGc)}`,
      ...(options.heapSnapshots ? [`heap snapshots (they hold what the heap held: delete them): ${snapshotDir}`] : []),
      `resident outside V8: before ${formatResident(residentBefore)}; at the end of the load ${formatResident(residentAtEnd)}; after the drain and a GC ${formatResident(residentAfterGc)}`,
      `nothing lost: ${acknowledgedForgets.length} acknowledged forget requests found (${[...states].map(([k, v]) => `${k} ${v}`).join(', ')}; drained ${drainSeconds.toFixed(0)} s after the load), ` +
        `${checkedSamples.length} of ${acknowledgedSamples.size} acknowledged samples' receipts found, the dataset holds ${held}; fsck ${fsck ? 'FAILED' : 'clean'}`,
    );
  } catch (error) {
    failures.push(`the load stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    inspector?.close();
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
