// Crash trials: the real service (a child process on a DATA_DIR of its own, its embedded PostgreSQL and
// local Hardhat chain, its own job worker) is killed with SIGKILL at a random moment while clients upload
// samples, train models and file forget requests and the anchoring loop anchors every second; it is started
// again on the same DATA_DIR, left to finish what it had accepted, and checked:
//   - fsck (lethe-audit fsck) finds the log's stored tree whole;
//   - every acknowledged sample has its receipt (its commitment in a SAMPLES_COMMITTED batch);
//   - every acknowledged forget request is there, its FORGET_REQUESTED entry at the ledgerIndex with the
//     leafHash its 202 gave, and it completes, every sample of it then marked forgotten;
//   - every acknowledged training completes;
//   - no fact is logged twice (an entry per dataset, batch, slice, version, request, anchor: see
//     lib/log-checks.ts), and every checkpoint on the chain now in use has one ANCHORED entry (the local
//     chain is ephemeral: the service starts a new one at each start, so the anchors logged on the chain
//     before the kill cannot be checked any more, and lethe-audit verify-log, which checks every ANCHORED
//     entry against the chain it is given, fails after any restart of a service on its local chain);
// Each trial draws its plan (when to kill, whether only the service's process dies or its PostgreSQL too,
// what the clients send) from its seed, which it prints: `--seed S --trials 1` draws a failing trial again.
import { AnchorClient, connectProvider } from '@lethe/chain';
import { findFreePort } from '@lethe/postgres';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { defineFlags, type BenchOptions } from '../bench/lib/args';
import { percentile } from '../bench/lib/table';
import { LogEntry, downloadLog, findDuplicateEntries, fsckProblem } from './lib/log-checks';
import { UploadedSample, checkThroughVault, erasureScan } from './lib/vault-checks';
import { Part, PartReport, forEachConcurrently, progress, sleep } from './lib/part';
import { Prng, createPrng, freshSeed } from './lib/prng';
import { CLASSES, FEATURES, ApiClient, TrialService, killGroup, makeDataDir, serviceEnv, startTrialService, stopTrialService } from './lib/service';

const flags = defineFlags({
  trials: { type: 'integer', min: 1, default: 100, help: 'crash trials to run' },
  seed: { type: 'integer', min: 0, help: 'seed of the first trial (trial i draws from seed + i); a fresh one, printed, unless given' },
  killWithin: { type: 'integer', min: 1, default: 20, help: 'seconds after the clients start within which the kill falls' },
  settleSeconds: { type: 'integer', min: 10, default: 300, help: 'longest wait after the restart for accepted work to finish' },
  minutes: { type: 'integer', min: 1, help: 'start no trial after this many minutes; fewer trials than --trials then run, and the run fails its count of trials, saying so' },
});

export type CrashOptions = BenchOptions<typeof flags>;

const SUBJECTS = 12;
/** How many acknowledged samples' public receipts a trial looks up (every sample is checked through the vault). */
const RECEIPTS_CHECKED = 300;

/** What the service acknowledged to the clients: each of these must survive the crash. */
interface Acknowledged {
  /** What was uploaded, with its commitment, by externalId, from 200 answers to uploads. */
  samples: Map<string, UploadedSample>;
  /** externalIds by subject. */
  subjects: Map<string, string[]>;
  forgetRequests: { id: string; ledgerIndex: number; leafHash: string; jobId: string | null }[];
  trainings: { modelId: string; jobId: string }[];
}

interface TrialResult {
  seed: number;
  failures: string[];
  killAtMs: number;
  mode: 'service' | 'group';
  /** The service's process died of the SIGKILL sent. */
  killed: boolean;
  inFlight: Record<string, number>;
  acknowledged: { samples: number; forgetRequests: number; trainings: number };
  fiveHundreds: number;
  logSize: number;
  anchorsOnChain: number;
  restartMs: number;
  settleMs: number;
  seconds: number;
  /** Acknowledged samples, not forgotten, opened through the vault and found as uploaded. */
  openedThroughVault: number;
  /** Identifiers the erasure scan looked for (forgotten externalIds and subjectIds), or -1 when it did not run. */
  scanned: number;
  /** Seconds spent in each step of the trial (start, clients, restart, settle, checks, stop, scan). */
  phases: Record<string, number>;
}

/** The clients of one trial: two uploaders, a trainer and a forgetter, each drawing from a stream of its own. */
class Workload {
  readonly acknowledged: Acknowledged = { samples: new Map(), subjects: new Map(), forgetRequests: [], trainings: [] };
  readonly inFlight: Record<string, number> = { upload: 0, forget: 0, train: 0 };
  readonly serverErrors: string[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private uploads = 0;
  private readonly requested = new Set<string>();

  constructor(
    private readonly ml: ApiClient,
    private readonly datasetId: string,
    private readonly tag: string,
    private readonly rng: Prng,
  ) {}

  start(): void {
    const streams = Array.from({ length: 4 }, () => createPrng(this.rng.int(0, 2 ** 31)));
    this.loops = [this.uploader(streams[0]), this.uploader(streams[1]), this.trainer(streams[2]), this.forgetter(streams[3])];
  }

  /** Stops issuing requests; resolves once every loop has ended (those cut off by the kill included). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** One request of kind `kind`, counted in flight while it runs; undefined when no answer came. */
  private async send(kind: string, method: string, path: string, body: unknown, headers?: Record<string, string>) {
    this.inFlight[kind]++;
    try {
      const answer = await this.ml.call(method, path, body, headers, 60_000);
      if (answer.status >= 500) this.serverErrors.push(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
      return answer;
    } catch {
      return undefined; // cut off by the kill: not acknowledged
    } finally {
      this.inFlight[kind]--;
    }
  }

  async upload(rng: Prng, count: number): Promise<void> {
    const n = this.uploads++;
    const samples = Array.from({ length: count }, (_, i) => ({
      externalId: `${this.tag}-u${n}-${i}`,
      subjectId: `${this.tag}-subject-${rng.int(0, SUBJECTS - 1)}`,
      features: Array.from({ length: FEATURES }, () => rng.int(0, 1000) / 100),
      label: rng.int(0, CLASSES - 1),
    }));
    const ndjson = rng.chance(0.3);
    const answer = await this.send(
      'upload',
      'POST',
      `/v1/datasets/${this.datasetId}/samples`,
      ndjson ? samples.map((s) => JSON.stringify(s)).join('\n') : samples,
      ndjson ? { 'content-type': 'application/x-ndjson' } : undefined,
    );
    if (answer?.status !== 200) return;
    const byId = new Map(samples.map((s) => [s.externalId, s]));
    for (const { externalId, commitment } of answer.body.commitments as { externalId: string; commitment: string }[]) {
      this.acknowledged.samples.set(externalId, { ...byId.get(externalId)!, commitment });
      const subject = byId.get(externalId)!.subjectId;
      this.acknowledged.subjects.set(subject, [...(this.acknowledged.subjects.get(subject) ?? []), externalId]);
    }
  }

  private async uploader(rng: Prng): Promise<void> {
    while (!this.stopped) {
      await this.upload(rng, rng.int(5, 40));
      await sleep(rng.int(0, 150));
    }
  }

  private async trainer(rng: Prng): Promise<void> {
    for (let models = 0; models < 3 && !this.stopped; models++) {
      await sleep(rng.int(200, 4000));
      if (this.stopped) return;
      const sisa = rng.chance(0.7);
      const config = {
        datasetId: this.datasetId,
        method: sisa ? 'sisa' : 'full',
        ...(sisa ? { shards: rng.int(2, 3), slices: rng.int(1, 3) } : {}),
        architecture: rng.chance(0.5) ? { type: 'logreg' } : { type: 'mlp', hidden: [4] },
        epochs: rng.int(1, 3),
        batchSize: 8,
        learningRate: 0.1,
        seed: `crash-${rng.int(0, 1e6)}`,
      };
      const answer = await this.send('train', 'POST', '/v1/models', config);
      if (answer?.status === 202) this.acknowledged.trainings.push({ modelId: answer.body.modelId, jobId: answer.body.jobId });
    }
  }

  private async forgetter(rng: Prng): Promise<void> {
    while (!this.stopped) {
      await sleep(rng.int(100, 600));
      if (this.stopped) return;
      const bySubject = rng.chance(0.3);
      let body: object | undefined;
      if (bySubject) {
        const subjects = [...this.acknowledged.subjects.keys()].filter((s) => !this.requested.has(s));
        if (subjects.length === 0) continue;
        const subjectId = rng.pick(subjects.sort());
        this.requested.add(subjectId);
        for (const externalId of this.acknowledged.subjects.get(subjectId)!) this.requested.add(externalId);
        body = { datasetId: this.datasetId, subjectId, reason: 'crash trial' };
      } else {
        const open = [...this.acknowledged.samples.keys()].filter((id) => !this.requested.has(id));
        if (open.length === 0) continue;
        const externalIds = Array.from({ length: rng.int(1, 3) }, () => rng.pick(open)).filter((id, i, all) => all.indexOf(id) === i);
        for (const id of externalIds) this.requested.add(id);
        body = { datasetId: this.datasetId, externalIds, reason: 'crash trial' };
      }
      const answer = await this.send('forget', 'POST', '/v1/forget-requests', body);
      if (answer?.status === 202) {
        const { id, ledgerIndex, leafHash, jobId } = answer.body;
        this.acknowledged.forgetRequests.push({ id, ledgerIndex, leafHash, jobId });
      }
    }
  }
}

/** Waits until every accepted job has ended and the anchors reach the log's last entry that is not an anchor record. */
async function settle(service: TrialService, acknowledged: Acknowledged, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  let waiting = '';
  while (Date.now() < deadline) {
    const pending: string[] = [];
    for (const r of acknowledged.forgetRequests) {
      const got = await service.ml.call('GET', `/v1/forget-requests/${r.id}`);
      if (got.status !== 200 || !['completed', 'failed'].includes(got.body.state)) pending.push(`forget request ${r.id} (${got.status} ${got.body?.state})`);
    }
    for (const t of acknowledged.trainings) {
      const got = await service.ml.call('GET', `/v1/jobs/${t.jobId}`);
      if (got.status !== 200 || !['completed', 'failed'].includes(got.body.state)) pending.push(`training job ${t.jobId} (${got.status} ${got.body?.state})`);
    }
    if (pending.length === 0) {
      const health = (await service.anon.call('GET', '/v1/health')).body;
      const size: number = health?.ledger?.treeSize ?? 0;
      const tail = size === 0 ? [] : ((await service.anon.ok('GET', `/v1/ledger/entries?start=${Math.max(0, size - 50)}&limit=50`)) as { index: number; event: string }[]);
      const lastFact = tail.filter((e) => JSON.parse(e.event).type !== 'ANCHORED').at(-1)?.index ?? -1;
      const anchored: number = health?.anchoring?.anchoredTreeSize ?? 0;
      if (health?.anchoring?.state === 'ok' && anchored > lastFact && health?.anchoring?.pendingTreeSize === undefined) return null;
      pending.push(`anchoring (${JSON.stringify(health?.anchoring)}; last entry other than ANCHORED: ${lastFact})`);
    }
    waiting = pending.slice(0, 5).join('; ');
    await sleep(1000);
  }
  return `not settled after ${timeoutMs / 1000} s: still waiting for ${waiting}`;
}

/** The checks of a settled service against what it acknowledged before the crash. */
async function checkTrial(
  service: TrialService,
  acknowledged: Acknowledged,
  datasetId: string,
): Promise<{ failures: string[]; log: LogEntry[]; anchorsOnChain: number; openedThroughVault: number; forgotten: Set<string> }> {
  const failures: string[] = [];
  const fsck = await fsckProblem(service.dataDir);
  if (fsck) failures.push(fsck);

  const log = await downloadLog(service.anon);
  failures.push(...findDuplicateEntries(log));

  const completedCommitments = new Set<string>();
  for (const r of acknowledged.forgetRequests) {
    const got = await service.ml.call('GET', `/v1/forget-requests/${r.id}`);
    if (got.status !== 200) {
      failures.push(`acknowledged forget request ${r.id} is lost: GET answers ${got.status}`);
      continue;
    }
    const entry = log[r.ledgerIndex];
    if (!entry || entry.leafHash !== r.leafHash || entry.event.type !== 'FORGET_REQUESTED' || entry.event.requestId !== r.id)
      failures.push(`forget request ${r.id}: entry ${r.ledgerIndex} is not its FORGET_REQUESTED with leaf hash ${r.leafHash} (${JSON.stringify(entry).slice(0, 300)})`);
    if (got.body.state !== 'completed') failures.push(`acknowledged forget request ${r.id} ended ${got.body.state}: ${JSON.stringify(got.body.error ?? null)}`);
    else for (const c of got.body.samples as string[]) completedCommitments.add(c);
  }
  for (const t of acknowledged.trainings) {
    const job = await service.ml.call('GET', `/v1/jobs/${t.jobId}`);
    if (job.status !== 200 || job.body.state !== 'completed') failures.push(`acknowledged training ${t.modelId} (job ${t.jobId}) ended ${job.status} ${JSON.stringify(job.body).slice(0, 300)}`);
  }
  // Every acknowledged sample through the vault, as the service reads it: it opens to what was uploaded, or,
  // forgotten, no longer opens. Its public receipt, for a few hundred of them (an HTTP call each).
  const vault = await checkThroughVault(service.dataDir, service.env, datasetId, acknowledged.samples.values(), completedCommitments);
  failures.push(...vault.failures.slice(0, 20));
  const receipts = [...acknowledged.samples].filter((_, i, all) => i % Math.ceil(all.length / RECEIPTS_CHECKED) === 0);
  await forEachConcurrently(receipts.map(([externalId, s]) => [externalId, s.commitment] as const), 8, async ([externalId, commitment]) => {
    const receipt = await service.anon.call('GET', `/v1/receipts/${commitment}`);
    if (receipt.status !== 200) failures.push(`acknowledged sample ${externalId} (commitment ${commitment}) is lost: its receipt answers ${receipt.status}`);
    else if (log[receipt.body.committed.ledgerIndex]?.event.type !== 'SAMPLES_COMMITTED') failures.push(`sample ${externalId}: its receipt names entry ${receipt.body.committed.ledgerIndex}, not a SAMPLES_COMMITTED`);
    else if (completedCommitments.has(commitment) && receipt.body.forgotten !== true) failures.push(`sample ${externalId} is in a completed forget request but not forgotten`);
  });

  // The chain now in use (the service's local chain, new since the restart): each of its checkpoints is
  // recorded by one ANCHORED entry of the same size and root, and no ANCHORED entry of it is missing there.
  const { rpcUrl, contract } = await service.anon.ok('GET', '/v1/portal/config');
  const provider = await connectProvider(rpcUrl, { pollingIntervalMs: 100 });
  let anchorsOnChain = 0;
  try {
    const client = await AnchorClient.connect(contract, provider);
    anchorsOnChain = await client.checkpointCount();
    const onChain = await Promise.all(Array.from({ length: anchorsOnChain }, (_, n) => client.checkpoint(n)));
    const current: LogEntry[] = [];
    for (const e of log.filter((x) => x.event.type === 'ANCHORED' && x.event.contract === contract.toLowerCase())) {
      if (await provider.getTransaction(e.event.txHash)) current.push(e);
    }
    const logged = current.map((e) => `${e.event.treeSize}:${e.event.rootHash}`);
    const anchored = onChain.map((c) => `${c.treeSize}:${c.rootHash}`);
    if (JSON.stringify(logged) !== JSON.stringify(anchored))
      failures.push(`the chain's checkpoints ${JSON.stringify(anchored)} are not the ANCHORED entries of this chain ${JSON.stringify(logged)}`);
  } finally {
    provider.destroy();
  }
  return { failures, log, anchorsOnChain, openedThroughVault: vault.opened, forgotten: vault.forgotten };
}

/** What every trial's service runs with beside its DATA_DIR and ports: anchoring every second, jobs retried quickly. */
const TRIAL_ENV = {
  ANCHOR_EVERY_SECONDS: '1',
  ANCHOR_EVERY_ENTRIES: '10',
  JOB_POLL_SECONDS: '1',
  JOB_LOST_AFTER_SECONDS: '5',
  JOB_RETRY_DELAY_SECONDS: '1',
  JOB_STOP_TIMEOUT_SECONDS: '5',
};

/**
 * A DATA_DIR initialised once by the service (its PostgreSQL cluster made and migrated, its key store
 * created) and stopped with SIGINT, which every trial copies instead of initialising its own: a trial's
 * first start is then a restart of a cleanly stopped service, as an operator's next start is; the kill
 * and everything checked after it are the same.
 */
async function makeTemplate(): Promise<string> {
  const dataDir = makeDataDir('lethe-crash-template-');
  const service = await startTrialService(await serviceEnv(dataDir, { CHAIN_PORT: String(await findFreePort()), ...TRIAL_ENV }));
  const code = await stopTrialService(service.process);
  if (code !== 0) throw new Error(`the template service exited ${code} on SIGINT:\n${service.process.output().slice(-2000)}`);
  return dataDir;
}

async function runTrial(seed: number, options: CrashOptions, template: string): Promise<TrialResult> {
  const t0 = performance.now();
  const rng = createPrng(seed);
  const dataDir = makeDataDir('lethe-crash-');
  // cp -a keeps the cluster's owner (the postgres user, under root) and modes (0700, the key store's 0600).
  execFileSync('cp', ['-a', `${template}/.`, dataDir]);
  const env = await serviceEnv(dataDir, {
    CHAIN_PORT: String(await findFreePort()),
    ...TRIAL_ENV,
  });
  const failures: string[] = [];
  let service: TrialService | undefined;
  let result: Omit<TrialResult, 'failures' | 'seconds' | 'scanned' | 'openedThroughVault' | 'phases'> | undefined;
  let workload: Workload | undefined;
  let opened = 0;
  let erasure: { forgotten: Set<string>; control: string } | undefined;
  let scanned = -1;
  const phases: Record<string, number> = {};
  let phaseStart = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = (phases[name] ?? 0) + (now - phaseStart) / 1000;
    phaseStart = now;
  };
  try {
    service = await startTrialService(env);
    phase('start');
    const datasetId = (await service.ml.ok('POST', '/v1/datasets', { name: `crash-${seed}`, features: FEATURES, classes: CLASSES })).id;
    workload = new Workload(service.ml, datasetId, `t${seed}`, rng);
    await workload.upload(rng, 60); // something to train on from the start
    const killAtMs = rng.int(500, options.killWithin * 1000);
    const mode = rng.pick(['service', 'group'] as const);
    workload.start();
    await sleep(killAtMs);
    const inFlight = { ...workload.inFlight };
    // 'service': only the service's process dies (its PostgreSQL and Hardhat node are left running, as a crash
    // of the service leaves them); 'group': its PostgreSQL dies with it (the Hardhat node has its own group).
    if (mode === 'service') service.process.child.kill('SIGKILL');
    else killGroup(service.process, 'SIGKILL');
    await service.process.exited;
    const killed = service.process.child.signalCode === 'SIGKILL';
    if (!killed) failures.push(`the kill was not delivered: the service exited with ${service.process.child.exitCode ?? service.process.child.signalCode}`);
    await workload.stop();
    failures.push(...workload.serverErrors.map((e) => `5xx before the kill: ${e}`));
    phase('clients');

    const restarted = performance.now();
    service = await startTrialService(env, { mlKey: service.ml.key });
    const restartMs = performance.now() - restarted;
    phase('restart');
    const settling = performance.now();
    const unsettled = await settle(service, workload.acknowledged, options.settleSeconds * 1000);
    const settleMs = performance.now() - settling;
    if (unsettled) failures.push(unsettled);
    phase('settle');
    const checked = await checkTrial(service, workload.acknowledged, datasetId);
    phase('checks');
    opened = checked.openedThroughVault;
    erasure = { forgotten: checked.forgotten, control: datasetId };
    failures.push(...checked.failures);
    const { samples, forgetRequests, trainings } = workload.acknowledged;
    result = {
      seed,
      killAtMs,
      mode,
      killed,
      inFlight,
      acknowledged: { samples: samples.size, forgetRequests: forgetRequests.length, trainings: trainings.length },
      fiveHundreds: workload.serverErrors.length,
      logSize: checked.log.length,
      anchorsOnChain: checked.anchorsOnChain,
      restartMs,
      settleMs,
    };
  } catch (error) {
    failures.push(`the trial stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    if (service) {
      const code = await stopTrialService(service.process);
      if (code !== 0 && failures.length === 0) failures.push(`the service exited ${code} on SIGINT:\n${service.process.output().slice(-2000)}`);
      phase('stop');
    }
  }
  if (service && workload && erasure) {
    // The erasure scan, once the service has stopped: the forgotten samples' externalIds, and the subjectIds
    // of subjects none of whose acknowledged samples is kept, are nowhere under DATA_DIR nor in its output.
    const samples = [...workload.acknowledged.samples.values()];
    const kept = new Set(samples.filter((s) => !erasure!.forgotten.has(s.commitment)).map((s) => s.subjectId));
    const forgotten = samples.filter((s) => erasure!.forgotten.has(s.commitment));
    const texts = [...forgotten.map((s) => s.externalId), ...forgotten.map((s) => s.subjectId).filter((subject) => !kept.has(subject))];
    const scan = await erasureScan(dataDir, service.process.output(), texts, erasure.control);
    failures.push(...scan.failures);
    scanned = scan.needles;
    phase('scan');
  }
  if (failures.length === 0) rmSync(dataDir, { recursive: true, force: true });
  else failures.push(`DATA_DIR kept for a look: ${dataDir}; the service's last output:\n${service?.process.output().slice(-3000) ?? ''}`);
  const seconds = (performance.now() - t0) / 1000;
  return {
    scanned,
    openedThroughVault: opened,
    ...(result ?? { seed, killAtMs: 0, mode: 'service', killed: false, inFlight: {}, acknowledged: { samples: 0, forgetRequests: 0, trainings: 0 }, fiveHundreds: 0, logSize: 0, anchorsOnChain: 0, restartMs: 0, settleMs: 0 }),
    phases,
    failures,
    seconds,
  };
}

export async function runCrash(options: CrashOptions): Promise<PartReport> {
  const seed = options.seed ?? freshSeed();
  progress(`crash: ${options.trials} trial(s) from seed ${seed} (trial i draws from seed + i; repeat one with --seed <its seed> --trials 1)`);
  const trials: TrialResult[] = [];
  const made = performance.now();
  const template = await makeTemplate();
  progress(`crash: a DATA_DIR initialised by the service, for every trial to copy, in ${((performance.now() - made) / 1000).toFixed(1)} s`);
  const started = performance.now();
  for (let i = 0; i < options.trials; i++) {
    if (options.minutes !== undefined && performance.now() - started > options.minutes * 60_000) {
      progress(`crash: --minutes ${options.minutes} reached after ${i} of ${options.trials} trials; no further trial starts`);
      break;
    }
    const trial = await runTrial(seed + i, options, template);
    trials.push(trial);
    const a = trial.acknowledged;
    progress(
      `crash trial ${i + 1}/${options.trials} seed ${trial.seed}: killed (${trial.mode}) at ${(trial.killAtMs / 1000).toFixed(1)} s with ${JSON.stringify(trial.inFlight)} in flight; ` +
        `${a.samples} samples, ${a.forgetRequests} forget requests, ${a.trainings} trainings acknowledged; restart ${(trial.restartMs / 1000).toFixed(1)} s, ` +
        `settled in ${(trial.settleMs / 1000).toFixed(1)} s; log ${trial.logSize} entries, ${trial.anchorsOnChain} anchors on the new chain; ` +
        `${trial.openedThroughVault} samples opened through the vault, ${Math.max(0, trial.scanned)} forgotten identifiers scanned for; ` +
        `${trial.failures.length === 0 ? 'all checks pass' : `FAILED:\n  ${trial.failures.join('\n  ')}`} (${trial.seconds.toFixed(0)} s: ` +
        `${Object.entries(trial.phases).map(([name, s]) => `${name} ${s.toFixed(1)}`).join(', ')})`,
    );
  }
  rmSync(template, { recursive: true, force: true });
  const failed = trials.filter((t) => t.failures.length > 0);
  const sum = (f: (t: TrialResult) => number) => trials.reduce((s, t) => s + f(t), 0);
  const killed = trials.map((t) => t.killAtMs / 1000);
  const summary = [
    `${trials.length} trials${trials.length < options.trials ? ` of the ${options.trials} asked (--minutes ${options.minutes} reached)` : ''} from seed ${seed}; ${trials.length - failed.length} passed every check, ${failed.length} failed${failed.length ? ` (seeds ${failed.map((t) => t.seed).join(', ')})` : ''}`,
    `kills at ${Math.min(...killed).toFixed(1)}..${Math.max(...killed).toFixed(1)} s (median ${percentile(killed, 50).toFixed(1)} s) after the clients started; ` +
      `${trials.filter((t) => t.mode === 'service').length} of the service's process alone, ${trials.filter((t) => t.mode === 'group').length} with its PostgreSQL`,
    `in flight at the kill: ${sum((t) => t.inFlight.upload ?? 0)} uploads, ${sum((t) => t.inFlight.forget ?? 0)} forget requests, ${sum((t) => t.inFlight.train ?? 0)} trainings (over all trials)`,
    `acknowledged before the kills (each looked for after the restart): ${sum((t) => t.acknowledged.samples)} samples, ${sum((t) => t.acknowledged.forgetRequests)} forget requests, ${sum((t) => t.acknowledged.trainings)} trainings; log entries at the end: ${sum((t) => t.logSize)}`,
    `through the vault: ${sum((t) => t.openedThroughVault)} acknowledged samples not forgotten opened as uploaded; erasure scan of DATA_DIR and the output: ${sum((t) => Math.max(0, t.scanned))} forgotten identifiers looked for in ${trials.filter((t) => t.scanned >= 0).length} trials`,
    `restart to healthy: median ${percentile(trials.map((t) => t.restartMs / 1000), 50).toFixed(1)} s; restart to settled: median ${percentile(trials.map((t) => t.settleMs / 1000), 50).toFixed(1)} s, max ${Math.max(...trials.map((t) => t.settleMs / 1000)).toFixed(1)} s; a trial takes ${percentile(trials.map((t) => t.seconds), 50).toFixed(0)} s (median)`,
  ];
  const counts = {
    trials: trials.length,
    killsDelivered: trials.filter((t) => t.killed).length,
    trialsPassed: trials.length - failed.length,
    samplesChecked: sum((t) => t.acknowledged.samples),
    samplesOpenedThroughVault: sum((t) => t.openedThroughVault),
    erasureScans: trials.filter((t) => t.scanned >= 0).length,
    erasureScanIdentifiers: sum((t) => Math.max(0, t.scanned)),
    forgetRequestsChecked: sum((t) => t.acknowledged.forgetRequests),
  };
  return { part: 'crash', failures: failed.flatMap((t) => t.failures.map((f) => `seed ${t.seed}: ${f}`)), summary, counts };
}

export const part: Part<typeof flags> = {
  summary: 'SIGKILL at a random moment under uploads, training, forgets and anchoring; restart; fsck, nothing acknowledged lost, nothing logged twice',
  flags,
  run: runCrash,
  // Every trial ran and its kill was delivered, and each acknowledged the 60 samples it uploads before its clients start.
  least: (o) => ({ trials: o.trials, killsDelivered: o.trials, samplesChecked: 60 * o.trials, samplesOpenedThroughVault: o.trials, erasureScans: o.trials }),
};
