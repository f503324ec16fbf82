// Forgetting through the API, end to end, against training the monolithic model again through the API. The
// service runs as `npm start` runs it (a child process on a throwaway embedded PostgreSQL and a local Hardhat
// chain, its own job worker, the default JOB_POLL_SECONDS unless --poll-seconds). The data is synthetic: a
// Purchase-like set generated here (makePurchaseLike: 50,000 x 200 binary features, 8 classes on 2 base patterns
// by default; the shape of the set in issue #12), uploaded twice as NDJSON, once per side, subjects of 3 consecutive samples.
// Both models: MLP 256, 6 epochs, batch 64, lr 0.3, 10% held out as the test set; SISA S=10 R=5 (the paper's
// epochs per slice), the monolithic model one model on all of it (method full).
//   - the monolithic side: training through the API (POST /v1/models until its version 1 is served), and a
//     one-sample forget from its model (the retrain without the sample, request until the new version is served);
//   - the SISA side: one-sample forgets, one per slice in each run, and one data subject (3 samples) per run;
//   - each forget: request -> job received by a worker (the job's result, timings.receivedAt, against the
//     client's clock on the same machine), request -> new version served, and where the pass's time went
//     (timings.seconds in the job's result). "Served" is the commit of the new version's row in model_versions,
//     from which every read (GET /v1/models/:id, predict) serves it: the bench adds a trigger to its throwaway
//     database that NOTIFYs each inserted row (PostgreSQL delivers a NOTIFY at its transaction's commit) and
//     LISTENs, so it waits for the event instead of polling the service (each poll of GET /v1/models/:id reads
//     every version's row, and answering them took the service's CPU from the pass it measures); a GET after
//     the event checks that the service serves the new version (request -> seen by GET is reported too), then
//     the request is awaited until `completed` (polled every --poll-ms).
//   node -r ./scripts/register.js bench/forget-latency.bench.ts [--samples 50000] [--runs 5] [--quick]   (--help lists the flags)
import { cpus } from 'node:os';
import { Client as PgClient } from 'pg';
import { isHeldOut, placeSample } from '@lethe/unlearning';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { Client, startBenchService, waitUntil, type BenchService } from './lib/service';
import { formatInterval, meanInterval } from './lib/stats';
import { percentile, printTable } from './lib/table';
import { loadAverage, makePurchaseLike } from './unlearning.bench';

const flags = defineFlags({
  samples: { type: 'integer', min: 1000, help: 'samples of the synthetic Purchase-like set (default 50000, 10000 with --quick)' },
  features: { type: 'integer', min: 2, default: 200, help: 'its binary features' },
  classes: { type: 'integer', min: 2, default: 8, help: 'its classes' },
  runs: { type: 'integer', min: 2, help: 'runs of each timed operation (default 5, 2 with --quick); a SISA run forgets one sample of each slice' },
  pollSeconds: { type: 'integer', min: 1, help: "the service's JOB_POLL_SECONDS (default: the service's own default)" },
  pollMs: { type: 'integer', min: 5, default: 20, help: 'how often the bench polls while it waits for a training or a request to complete' },
  quick: { type: 'boolean', help: 'a small set and 2 runs' },
});

const SHARDS = 10;
const SLICES = 5;
const SEED = 'bench-forget-latency';
const HOLDOUT = 0.1;
const SUBJECT_SIZE = 3;

interface Timings {
  receivedAt: string;
  servedAt: { [modelId: string]: string };
  seconds: { [phase: string]: number };
}

/** One forget measured from outside. */
interface Forget {
  /** Request sent -> the new version served (its row committed: the trigger's NOTIFY received). */
  served: number;
  /** Request sent -> GET /v1/models/:id shows the new version (asked once the NOTIFY came). */
  seen: number;
  /** Request sent -> the job received by a worker. */
  received: number;
  /** Request sent -> its 202 (the request durable and logged, its pass's job sent). */
  acknowledged: number;
  /** Request sent -> the request `completed`. */
  completed: number;
  /** CPU seconds of the service's process (API and worker, every thread) from the request to the new version served. */
  cpu: number;
  timings: Timings;
}

export async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const samples = options.samples ?? (options.quick ? 10_000 : 50_000);
  const runs = options.runs ?? (options.quick ? 2 : 5);
  const env: Record<string, string> = options.pollSeconds === undefined ? {} : { JOB_POLL_SECONDS: String(options.pollSeconds) };
  const loadBefore = loadAverage();
  const examples = makePurchaseLike(samples, 1, { features: options.features, classes: options.classes, bases: 2 });
  const subjectOf = (i: number) => `subject-${Math.floor(i / SUBJECT_SIZE)}`;
  const trained = examples.filter((e) => !isHeldOut(e.externalId, { seed: SEED, fraction: HOLDOUT }));
  const heldOut = new Set(examples.filter((e) => isHeldOut(e.externalId, { seed: SEED, fraction: HOLDOUT })).map((e) => e.externalId));
  const model = (method: 'sisa' | 'full', datasetId: string) => ({
    datasetId,
    method,
    ...(method === 'sisa' ? { shards: SHARDS, slices: SLICES } : {}),
    architecture: { type: 'mlp', hidden: [256] },
    epochs: 6,
    batchSize: 64,
    learningRate: 0.3,
    seed: SEED,
    evaluation: { holdoutFraction: HOLDOUT },
  });

  let service: BenchService | undefined;
  let versions: VersionEvents | undefined;
  const rows: string[][] = [];
  const latency: string[][] = [];
  const phases: string[][] = [];
  const notes: string[] = [];
  try {
    service = await startBenchService('forget_latency', env);
    versions = await listenForVersions(service.databaseUrl);
    const ml = new Client(service.base, (await service.admin.ok('POST', '/v1/keys', { role: 'ml', name: 'bench' })).key);
    const upload = async (name: string): Promise<{ id: string; seconds: number }> => {
      const dataset = await ml.ok('POST', '/v1/datasets', { name, features: options.features, classes: options.classes });
      const t0 = performance.now();
      const answer = await ml.ndjson(
        `/v1/datasets/${dataset.id}/samples`,
        examples.map((e, i) => JSON.stringify({ ...e, subjectId: subjectOf(i) })),
      );
      if (answer.accepted !== examples.length) throw new Error(`upload ${name}: ${answer.accepted} of ${examples.length} accepted`);
      return { id: dataset.id, seconds: (performance.now() - t0) / 1000 };
    };
    /** POST /v1/models until its version 1 is served: seconds, and the model. */
    const train = async (body: object): Promise<{ seconds: number; id: string; testAccuracy: number }> => {
      const t0 = performance.now();
      const created = await ml.ok('POST', '/v1/models', body);
      const served = await waitUntil(
        () => ml.ok('GET', `/v1/models/${created.modelId}`),
        (m) => m.latestVersion === 1 || m.state === 'failed',
        1_800_000,
        'training',
        options.pollMs,
      );
      const seconds = (performance.now() - t0) / 1000;
      if (served.state === 'failed') throw new Error(`training failed: ${served.error}`);
      return { seconds, id: created.modelId, testAccuracy: Number(served.versions[0].metrics.testAccuracy) };
    };
    /** A forget request until the model's next version is served, then until the request completed. */
    const forget = async (modelId: string, body: object): Promise<Forget> => {
      const before = (await ml.ok('GET', `/v1/models/${modelId}`)).latestVersion as number;
      const sent = Date.now();
      const cpu0 = service!.cpuSeconds();
      const t0 = performance.now();
      const committed = versions!.next(modelId, before, 600_000);
      committed.catch(() => undefined); // awaited below, unless the request fails first
      const answer = await ml.call('POST', '/v1/forget-requests', { ...body, reason: 'bench' });
      if (answer.status !== 202) throw new Error(`forget request: ${answer.status} ${JSON.stringify(answer.body)}`);
      const filed = answer.body;
      const served = ((await committed) - t0) / 1000;
      const cpu = service!.cpuSeconds() - cpu0;
      await waitUntil(() => ml.ok('GET', `/v1/models/${modelId}`), (m) => m.latestVersion > before, 60_000, 'the new version in GET /v1/models/:id', options.pollMs);
      const seen = (performance.now() - t0) / 1000;
      const done = await waitUntil(
        () => ml.ok('GET', `/v1/forget-requests/${filed.id}`),
        (r) => r.state === 'completed' || r.state === 'failed',
        600_000,
        'the request to complete',
        options.pollMs,
      );
      const completed = (performance.now() - t0) / 1000;
      if (done.state !== 'completed') throw new Error(`forget request ${filed.id} ended ${JSON.stringify(done).slice(0, 500)}`);
      const job = await waitUntil(() => ml.ok('GET', `/v1/jobs/${filed.jobId}`), (j) => j.state === 'completed', 60_000, 'the job');
      const timings = job.result.timings as Timings;
      return { served, seen, completed, cpu, received: (Date.parse(timings.receivedAt) - sent) / 1000, acknowledged: answer.ms / 1000, timings };
    };

    const sisaData = await upload('purchase-like-sisa');
    const monoData = await upload('purchase-like-monolithic');
    const sisa = await train(model('sisa', sisaData.id));
    const monoTrainings = [await train(model('full', monoData.id))];
    const monolithic = monoTrainings[0];

    // The samples each run forgets: training samples only (a held-out one is in no model), none twice.
    const bySlice = Array.from({ length: SLICES }, () => [] as string[]);
    for (const e of trained) bySlice[placeSample(SEED, e.externalId, SHARDS, SLICES).slice].push(e.externalId);
    const used = new Set<string>();
    const take = (ids: string[], k: number) => ids.filter((id) => !used.has(id)).slice(0, k).map((id) => (used.add(id), id));
    const stride = (ids: string[]) => ids.filter((_, i) => i % 97 === 13); // spread over the upload order
    const subjects: string[] = [];
    for (let s = 1; subjects.length < runs; s += 211) {
      const members = examples.slice(s * SUBJECT_SIZE, (s + 1) * SUBJECT_SIZE).map((e) => e.externalId);
      if (members.some((id) => heldOut.has(id) || used.has(id))) continue;
      members.forEach((id) => used.add(id));
      subjects.push(subjectOf(s * SUBJECT_SIZE));
    }

    // Run i: the monolithic forget, then SISA forgetting one sample of each slice, then one subject; all
    // forgets are awaited one by one (each is a pass of its own), so both sides see the same stretch of load.
    const monoForgets: Forget[] = [];
    const sisaForgets: Forget[][] = [];
    const subjectForgets: Forget[] = [];
    for (let i = 0; i < runs; i++) {
      monoForgets.push(await forget(monolithic.id, { datasetId: monoData.id, externalIds: take(stride(trained.map((e) => e.externalId)), 1) }));
      const perSlice: Forget[] = [];
      for (const ids of bySlice) perSlice.push(await forget(sisa.id, { datasetId: sisaData.id, externalIds: take(stride(ids), 1) }));
      sisaForgets.push(perSlice);
      subjectForgets.push(await forget(sisa.id, { datasetId: sisaData.id, subjectId: subjects[i] }));
    }
    // The monolithic trainings of runs 2..n: more models on the monolithic dataset (after its forgets, which
    // would otherwise retrain every one of them). A failure here keeps the forgets measured above.
    try {
      while (monoTrainings.length < runs) monoTrainings.push(await train(model('full', monoData.id)));
    } catch (error) {
      notes.push(`monolithic training ${monoTrainings.length + 1} of ${runs} failed: ${String(error)}; the service: ${service.status()}`);
    }

    const singles = sisaForgets.flat();
    const perRun = sisaForgets.map((run) => run.reduce((sum, f) => sum + f.served, 0) / run.length);
    const ratio = (base: number[]) => `${formatInterval(meanInterval(base.map((b, i) => b / perRun[i])), 1)}x`;
    const seconds = (xs: number[]) => `${formatInterval(meanInterval(xs), 3)} s`;
    const trainSeconds = monoTrainings.map((t) => t.seconds);
    const monoForgetSeconds = monoForgets.map((f) => f.served);
    rows.push(
      ['upload (NDJSON, per side)', '2', `${sisaData.seconds.toFixed(1)} s / ${monoData.seconds.toFixed(1)} s`, '', `${samples.toLocaleString('en-US')} samples`],
      ['monolithic: training through the API (POST /v1/models -> version 1 served)', String(trainSeconds.length), seconds(trainSeconds), '', `test accuracy ${pct(monolithic.testAccuracy)}`],
      ['SISA S=10 R=5: training through the API', '1', `${sisa.seconds.toFixed(3)} s`, '', `test accuracy ${pct(sisa.testAccuracy)}`],
      ['monolithic: forget 1 sample (request -> retrained version served)', String(runs), seconds(monoForgetSeconds), '', 'the retrain a user of the monolithic model runs'],
      [
        'SISA: forget 1 sample (request -> new version served)',
        `${runs} x ${SLICES}`,
        seconds(singles.map((f) => f.served)),
        `${ratio(trainSeconds)} vs monolithic training, ${ratio(monoForgetSeconds)} vs monolithic forget`,
        'goal >= 10x; one request per slice in each run',
      ],
      [
        'SISA: forget 1 subject, 3 samples (request -> new version served)',
        String(runs),
        seconds(subjectForgets.map((f) => f.served)),
        `${formatInterval(meanInterval(trainSeconds.map((t, i) => t / subjectForgets[i].served)), 1)}x vs monolithic training, ${formatInterval(
          meanInterval(monoForgetSeconds.map((t, i) => t / subjectForgets[i].served)),
          1,
        )}x vs monolithic forget`,
        '',
      ],
      [
        "CPU of the service's process, request -> served: monolithic forget / SISA 1 sample",
        `${runs} / ${runs} x ${SLICES}`,
        `${seconds(monoForgets.map((f) => f.cpu))} / ${seconds(singles.map((f) => f.cpu))}`,
        `${formatInterval(meanInterval(monoForgets.map((f, i) => f.cpu / (sisaForgets[i].reduce((sum, s) => sum + s.cpu, 0) / SLICES))), 1)}x`,
        'user + system, every thread (/proc); PostgreSQL and the chain are other processes',
      ],
      [
        'request -> GET /v1/models/:id shows the new version (asked after the commit): monolithic / SISA 1 sample',
        `${runs} / ${runs} x ${SLICES}`,
        `${seconds(monoForgets.map((f) => f.seen))} / ${seconds(singles.map((f) => f.seen))}`,
        '',
        'served (above) is the commit; this adds one GET of the model',
      ],
      ['SISA: forget 1 sample, request -> request completed (shredded)', `${runs} x ${SLICES}`, seconds(singles.map((f) => f.completed)), '', ''],
    );
    const everyForget = [...monoForgets, ...singles, ...subjectForgets];
    const ms = (xs: number[], p: number) => (1000 * percentile(xs, p)).toFixed(0);
    const row = (what: string, xs: number[]) => [what, String(xs.length), ms(xs, 50), ms(xs, 99), ms(xs, 100), (1000 * meanInterval(xs).mean).toFixed(0)];
    latency.push(
      row('request -> job received by a worker', everyForget.map((f) => f.received)),
      row('  request -> 202 (durable, logged, job sent)', everyForget.map((f) => f.acknowledged)),
      row('  202 -> job received', everyForget.map((f) => f.received - f.acknowledged)),
    );
    const keys = [...new Set(singles.flatMap((f) => Object.keys(f.timings.seconds)))];
    for (const key of keys) phases.push([key, (mean(singles.map((f) => f.timings.seconds[key] ?? 0)) * 1000).toFixed(1)]);
    phases.push(['request -> job received (client clock)', (mean(singles.map((f) => f.received)) * 1000).toFixed(1)]);
    phases.push([
      'job received -> new version served (worker clock)',
      (mean(singles.map((f) => (Date.parse(Object.values(f.timings.servedAt)[0]) - Date.parse(f.timings.receivedAt)) / 1000)) * 1000).toFixed(1),
    ]);
  } catch (error) {
    if (service) process.stderr.write(`forget-latency: ${String(error)}; the service: ${service.status()}\n`);
    throw error;
  } finally {
    await versions?.close();
    await service?.stop();
  }
  const setup = `${samples.toLocaleString('en-US')} x ${options.features} Purchase-like (synthetic), ${options.classes} classes, MLP 256, 6 epochs, batch 64, lr 0.3, 10% held out; JOB_POLL_SECONDS ${
    options.pollSeconds ?? 'default'
  }; ${cpus().length} cores, load average ${loadBefore} -> ${loadAverage()}`;
  printTable(`Forgetting through the API vs the monolithic model through the API (mean [95% t-interval]; ${setup})`, ['operation', 'runs', 'wall', 'speed-up [95% CI]', 'note'], rows);
  printTable(
    "Forget request -> its unlearning job received by a worker (every forget above; goal: within 100 ms; the 202 and the job's receipt on this machine's one clock)",
    ['span', 'forgets', 'p50 ms', 'p99 ms', 'max ms', 'mean ms'],
    latency,
  );
  for (const note of notes) process.stdout.write(`note: ${note}\n`);
  printTable("Where a one-sample SISA forget's pass goes (mean ms; the job's timings; engine.* are the engine's phases inside `forget`)", ['phase', 'ms'], phases);
}

/** The new rows of model_versions as they commit, from a trigger the bench adds to its throwaway database. */
interface VersionEvents {
  /** Resolves with performance.now() when a version of `modelId` above `above` commits (the first one). */
  next(modelId: string, above: number, timeoutMs: number): Promise<number>;
  close(): Promise<void>;
}

const VERSION_CHANNEL = 'bench_model_versions';

async function listenForVersions(databaseUrl: string): Promise<VersionEvents> {
  const client = new PgClient({ connectionString: databaseUrl });
  await client.connect();
  // AFTER INSERT, FOR EACH ROW: PostgreSQL delivers the NOTIFY when the inserting transaction commits, never before.
  await client.query(`CREATE OR REPLACE FUNCTION bench_notify_model_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('${VERSION_CHANNEL}', NEW.model_id::text || ' ' || NEW.version::text); RETURN NULL; END $$`);
  await client.query(`CREATE TRIGGER bench_notify_model_version AFTER INSERT ON model_versions FOR EACH ROW EXECUTE FUNCTION bench_notify_model_version()`);
  const waiters: { modelId: string; above: number; resolve: (at: number) => void }[] = [];
  client.on('notification', (message) => {
    const at = performance.now();
    if (message.channel !== VERSION_CHANNEL || !message.payload) return;
    const [modelId, version] = message.payload.split(' ');
    for (const waiter of waiters.filter((w) => w.modelId === modelId && Number(version) > w.above)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(at);
    }
  });
  await client.query(`LISTEN ${VERSION_CHANNEL}`);
  return {
    next: (modelId, above, timeoutMs) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`timed out waiting for a version of model ${modelId} above ${above}`));
        }, timeoutMs);
        timer.unref();
        const waiter = {
          modelId,
          above,
          resolve: (at: number) => {
            clearTimeout(timer);
            resolve(at);
          },
        };
        waiters.push(waiter);
      }),
    close: () => client.end(),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

export const bench: Bench<typeof flags> = {
  summary: 'forgetting through the API (request -> new version served, job pickup, where a pass goes) vs training the monolithic model again through the API',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/forget-latency.bench.ts', bench);
