// The HTTP API under load: 100 concurrent clients uploading samples and filing forget requests against the
// service as `npm start` runs it (a child process on a throwaway embedded PostgreSQL and a local Hardhat
// chain, anchoring on, its own job worker), the same requests from 1 client as the baseline, and the time
// from a forget request to an anchored UNLEARN_COMPLETED on a dataset with a trained model, on the quiet
// service and while the 100 clients load it; how many unlearning passes (jobs) the load's forget requests
// made and how long they took to drain; and the latency the PostgreSQL rate-limit counter adds per request.
//   node -r ./scripts/register.js bench/api.bench.ts [--clients 100] [--ops 800] [--seconds 40] [--unlearn 5]   (--help lists the flags)
import { Client as PgClient } from 'pg';
import { openDatabase } from '@lethe/ledger';
import { PostgresThrottlerStorage } from '../apps/api/src/common/rate-limit.storage';
import { RATE_LIMIT_WINDOW_MS } from '../apps/api/src/common/rate-limit.guard';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { Client, startBenchService, waitUntil, type BenchService } from './lib/service';
import { formatRate, percentile, printTable } from './lib/table';

const SAMPLES_PER_UPLOAD = 100;
const FEATURES = 4;
const CLASSES = 3;

type Route = 'POST /v1/datasets/:id/samples' | 'POST /v1/forget-requests';
interface Call {
  route: Route;
  status: number;
  ms: number;
}

const flags = defineFlags({
  clients: { type: 'integer', min: 1, default: 100, help: 'concurrent clients of the loaded runs' },
  ops: { type: 'integer', min: 1, default: 800, help: 'requests per load run' },
  seconds: { type: 'integer', min: 1, default: 40, help: 'longest a load run may issue requests' },
  unlearn: { type: 'integer', min: 1, default: 5, help: 'forget requests timed to an anchored UNLEARN_COMPLETED, quiet and under load' },
});

function randomSamples(prefix: string, count: number): { externalId: string; features: number[]; label: number }[] {
  return Array.from({ length: count }, (_, i) => ({
    externalId: `${prefix}-${i}`,
    features: Array.from({ length: FEATURES }, () => Math.round(Math.random() * 1000) / 100),
    label: i % CLASSES,
  }));
}

/**
 * `clients` clients share `ops` requests: each alternates an upload of 100 new samples with a forget
 * request for one of the samples it uploaded earlier. Stops issuing at `deadline`.
 */
async function runLoad(client: Client, datasetId: string, label: string, clients: number, ops: number, deadline: number) {
  const calls: Call[] = [];
  const acknowledged: string[] = [];
  const perClient = Math.ceil(ops / clients);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const uploaded: string[] = [];
      for (let op = 0; op < perClient && calls.length < ops && Date.now() < deadline; op++) {
        if (op % 2 === 0 || uploaded.length === 0) {
          const samples = randomSamples(`${label}-c${c}-o${op}`, SAMPLES_PER_UPLOAD);
          const res = await client.call('POST', `/v1/datasets/${datasetId}/samples`, samples);
          calls.push({ route: 'POST /v1/datasets/:id/samples', status: res.status, ms: res.ms });
          if (res.status === 200) uploaded.push(...samples.map((s) => s.externalId));
        } else {
          const externalId = uploaded.splice(Math.floor(Math.random() * uploaded.length), 1)[0];
          const res = await client.call('POST', '/v1/forget-requests', { datasetId, externalIds: [externalId], reason: 'bench' });
          calls.push({ route: 'POST /v1/forget-requests', status: res.status, ms: res.ms });
          if (res.status === 202) acknowledged.push(res.body.id);
        }
      }
    }),
  );
  return { calls, acknowledged, seconds: (performance.now() - t0) / 1000 };
}

/** Every acknowledged forget request must be found afterwards (20 lookups at a time); counts them by state. */
async function countLost(client: Client, ids: string[], states: Record<string, number>): Promise<number> {
  let lost = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < ids.length) {
        const id = ids[next++];
        const res = await client.call('GET', `/v1/forget-requests/${id}`);
        if (res.status !== 200 || res.body.id !== id) lost++;
        else states[res.body.state] = (states[res.body.state] ?? 0) + 1;
      }
    }),
  );
  return lost;
}

export async function run({ clients, ops, seconds, unlearn: unlearnTrials }: BenchOptions<typeof flags>): Promise<void> {
  let service: BenchService | undefined;
  const load: {
    mode: string;
    calls: Call[];
    acknowledged: string[];
    seconds: number;
    lost: number;
    states: Record<string, number>;
    passes: number;
    maxAttempts: number;
    bossJobs: number;
    drainSeconds: number;
  }[] = [];
  const unlearn: number[] = [];
  const unlearnUnderLoad: number[] = [];
  const rateLimit: string[][] = [];
  try {
    service = await startBenchService('api', { JOB_POLL_SECONDS: '1' });
    const serviceDatabase = service.databaseUrl;
    const ml = new Client(service.base, (await service.admin.ok('POST', '/v1/keys', { role: 'ml', name: 'bench' })).key);

    // Forget request -> anchored UNLEARN_COMPLETED, on a dataset with a tiny trained SISA model, measured on
    // the quiet service first: after the load, its forget requests wait behind the load's unlearning jobs.
    const dataset = await ml.ok('POST', '/v1/datasets', { name: 'bench-unlearn', features: FEATURES, classes: CLASSES });
    const samples = randomSamples('u', 300);
    await ml.ok('POST', `/v1/datasets/${dataset.id}/samples`, samples);
    const { jobId } = await ml.ok('POST', '/v1/models', {
      datasetId: dataset.id,
      method: 'sisa',
      shards: 3,
      slices: 2,
      architecture: { type: 'logreg' },
      epochs: 2,
      batchSize: 16,
      learningRate: 0.1,
      seed: 'bench',
    });
    await waitUntil(
      () => ml.ok('GET', `/v1/jobs/${jobId}`),
      (j) => j.state === 'completed' || j.state === 'failed',
      60_000,
      'training',
    );
    let nextSample = 0;
    const forgetToAnchored = async (): Promise<number> => {
      const t0 = performance.now();
      const filed = await ml.ok('POST', '/v1/forget-requests', {
        datasetId: dataset.id,
        externalIds: [samples[nextSample++ * 7].externalId],
        reason: 'bench',
      });
      const done = await waitUntil(
        () => ml.ok('GET', `/v1/forget-requests/${filed.id}`),
        (r) => r.state === 'completed' || r.state === 'failed',
        180_000,
        'unlearning',
      );
      if (done.state !== 'completed' || done.modelVersions.length !== 1)
        throw new Error(`forget request ${filed.id} ended ${JSON.stringify(done).slice(0, 500)}`);
      const index: number = done.modelVersions[0].unlearnLedgerIndex;
      await waitUntil(
        () => ml.call('GET', '/v1/anchors/latest'),
        (a) => a.status === 200 && a.body.treeSize > index,
        60_000,
        'the anchor',
      );
      return performance.now() - t0;
    };
    for (let i = 0; i < unlearnTrials; i++) unlearn.push(await forgetToAnchored());

    // Load: the baseline (1 client) first, then `clients` clients, each on a dataset of its own. Under the
    // `clients` load, forget requests on the trained model's dataset are timed to their anchor too.
    const db = new PgClient({ connectionString: serviceDatabase });
    await db.connect();
    try {
      for (const [mode, n] of [
        ['1 client (baseline)', 1],
        [`${clients} clients`, clients],
      ] as const) {
        const loadDataset = await ml.ok('POST', '/v1/datasets', { name: `bench-${n}`, features: FEATURES, classes: CLASSES });
        const deadline = Date.now() + seconds * 1000;
        let loading = true;
        const probing =
          n === 1
            ? Promise.resolve()
            : (async () => {
                while (loading && unlearnUnderLoad.length < unlearnTrials) unlearnUnderLoad.push(await forgetToAnchored());
              })();
        const result = await runLoad(ml, loadDataset.id, `n${n}`, n, ops, deadline);
        loading = false;
        const loadEnded = performance.now();
        const states: Record<string, number> = {};
        const lost = await countLost(ml, result.acknowledged, states);
        // How many unlearning passes the load's forget requests made, and when the last request completed.
        await waitUntil(
          async () =>
            (
              await db.query(
                `SELECT count(*)::int AS n FROM forget_requests WHERE dataset_id = $1 AND state IN ('received', 'unlearning')`,
                [loadDataset.id],
              )
            ).rows[0].n,
          (waiting: number) => waiting === 0,
          300_000,
          'the load forget requests to complete',
        );
        const drainSeconds = (performance.now() - loadEnded) / 1000;
        const passes = (
          await db.query(
            `SELECT count(*)::int AS n, max(attempts)::int AS attempts FROM jobs WHERE type = 'lethe.unlearn' AND payload->>'datasetId' = $1`,
            [loadDataset.id],
          )
        ).rows[0];
        const bossJobs = (
          await db.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'lethe.unlearn' AND data->>'datasetId' = $1`, [
            loadDataset.id,
          ])
        ).rows[0].n;
        await probing;
        load.push({ mode, ...result, lost, states, passes: passes.n, maxAttempts: passes.attempts ?? 0, bossJobs, drainSeconds });
      }
    } finally {
      await db.end();
    }

    // What the PostgreSQL rate-limit counter adds to a request: one upsert per request, against the same
    // database (the service stopped counting: RATE_LIMIT_PER_MINUTE=0); the floor is a SELECT 1 round trip.
    const counterDataSource = await openDatabase({ url: serviceDatabase, poolSize: 10 });
    try {
      const storage = new PostgresThrottlerStorage(counterDataSource);
      const time = async (label: string, callers: number, calls: number, fn: (caller: number) => Promise<unknown>) => {
        const ms: number[] = [];
        let next = 0;
        await Promise.all(
          Array.from({ length: callers }, async (_, caller) => {
            while (next++ < calls) {
              const t0 = performance.now();
              await fn(caller);
              ms.push(performance.now() - t0);
            }
          }),
        );
        rateLimit.push([label, String(callers), String(ms.length), percentile(ms, 50).toFixed(3), percentile(ms, 99).toFixed(3)]);
      };
      for (let i = 0; i < 200; i++) await storage.increment(`default:warmup:${i % 10}`, RATE_LIMIT_WINDOW_MS, 6000);
      await time('SELECT 1 round trip (baseline)', 1, 2000, () => counterDataSource.query('SELECT 1'));
      await time('counter upsert, one client', 1, 2000, () => storage.increment('default:key:one', RATE_LIMIT_WINDOW_MS, 6000));
      await time('counter upsert, 10 callers, one client', 10, 5000, () =>
        storage.increment('default:key:shared', RATE_LIMIT_WINDOW_MS, 6000),
      );
      await time('counter upsert, 10 callers, 10 clients', 10, 5000, (caller) =>
        storage.increment(`default:key:c${caller}`, RATE_LIMIT_WINDOW_MS, 6000),
      );
    } finally {
      await counterDataSource.destroy();
    }
  } finally {
    await service?.stop();
  }

  const rows: string[][] = [];
  for (const { mode, calls, acknowledged, seconds: elapsed, lost, states } of load) {
    const routes: (Route | 'all')[] = ['POST /v1/datasets/:id/samples', 'POST /v1/forget-requests', 'all'];
    for (const route of routes) {
      const mine = route === 'all' ? calls : calls.filter((c) => c.route === route);
      const ms = mine.map((c) => c.ms);
      rows.push([
        mode,
        route,
        String(mine.length),
        formatRate(mine.length / elapsed),
        percentile(ms, 50).toFixed(1),
        percentile(ms, 99).toFixed(1),
        String(mine.filter((c) => c.status >= 300).length),
        String(mine.filter((c) => c.status >= 500).length),
        route === 'POST /v1/forget-requests' ? `${lost} of ${acknowledged.length}` : '',
        route === 'POST /v1/forget-requests'
          ? Object.entries(states)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')
          : '',
      ]);
    }
  }
  printTable(
    `HTTP API under load (service in a child process, embedded PostgreSQL, Hardhat chain, anchoring every 1 s; uploads of ${SAMPLES_PER_UPLOAD} samples x ${FEATURES} features; up to ${ops} requests in ${seconds} s per mode)`,
    ['clients', 'route', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', '5xx', 'lost forget requests', 'their states right after'],
    rows,
  );
  printTable(
    'Forget requests of the load -> unlearning passes (jobs lethe.unlearn) and the time from the end of the load until every one completed',
    ['clients', 'forget requests', 'passes (jobs rows)', 'pg-boss jobs', 'max attempts', 'drain s'],
    load.map((l) => [
      l.mode,
      String(l.acknowledged.length),
      String(l.passes),
      String(l.bossJobs),
      String(l.maxAttempts),
      l.drainSeconds.toFixed(1),
    ]),
  );
  printTable(
    'Forget request -> anchored UNLEARN_COMPLETED (one at a time; SISA 3x2 logistic regression on 300 samples; job poll 1 s, anchor every 1 s)',
    ['service', 'requests', 'p50 ms', 'max ms'],
    [
      ['quiet', String(unlearn.length), percentile(unlearn, 50).toFixed(0), percentile(unlearn, 100).toFixed(0)],
      [
        `under the ${load[1]?.mode ?? ''} load`,
        String(unlearnUnderLoad.length),
        percentile(unlearnUnderLoad, 50).toFixed(0),
        percentile(unlearnUnderLoad, 100).toFixed(0),
      ],
    ],
  );
  printTable(
    'Rate-limit counter in PostgreSQL: latency it adds per request (one upsert into the UNLOGGED rate_limit_hits, same embedded PostgreSQL)',
    ['what', 'callers', 'calls', 'p50 ms', 'p99 ms'],
    rateLimit,
  );
  const bad = load.filter((l) => l.lost > 0 || l.calls.some((c) => c.status >= 500));
  if (bad.length > 0) throw new Error(`5xx answers or lost forget requests in: ${bad.map((l) => l.mode).join(', ')}`);
}

export const bench: Bench<typeof flags> = {
  summary: 'the HTTP API with concurrent clients vs 1, and forget request -> anchored UNLEARN_COMPLETED',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/api.bench.ts', bench);
