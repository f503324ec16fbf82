// npm run demo: the whole story on a fresh clone. Starts the service as `npm start` does (embedded PostgreSQL,
// local Hardhat chain), uploads MNIST digits, trains a SISA model, forgets one data subject, waits until the
// unlearned version is anchored on the chain, checks the log as an auditor would (lethe-audit verify-log),
// and prints the portal URL; the service then keeps running until Ctrl-C.
//   npm run demo -- [--samples N] [--data-dir DIR] [--port P] [--anchor-every S] [--exit] [--verbose]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import type { ForgetRequestModelVersionDto } from '../apps/api/src/forget-requests/forget-request.dto';
import { parsePositiveInteger } from '../apps/cli/src/commands/cli-support';
import { ApiClient } from './demo/api-client';
import { DemoError } from './demo/errors';
import type { DemoSample } from './demo/mnist-samples';
import type { ServerAnchor } from '@lethe/verifier';
import { createProgressBar } from './demo/progress';
import { DemoService, Health } from './demo/service';

const REPO_ROOT = resolve(__dirname, '..');
const STEPS = 7;
/** All of the `mnist` package; on a 2-core machine: upload ~9 s, training ~8 s, the whole demo under a minute. */
const DEFAULT_SAMPLES = 10_000;
/** The demo anchors more often than the service's default (30 s) so the wait for the anchor stays short. */
const DEFAULT_ANCHOR_EVERY_SECONDS = 5;
/** Digits per NDJSON chunk handed to the upload stream. */
const UPLOAD_CHUNK = 50;
const POLL_MS = 500;

/**
 * The model the demo trains: SISA, 5 shards x 3 slices, an MLP 784-64-10; sized to train in seconds. 10% of
 * the digits are held out (the test set of the evidence and of the membership-inference attack), and the
 * unlearning is compared with a model retrained from scratch without the forgotten digits.
 */
const TRAINING = {
  method: 'sisa',
  shards: 5,
  slices: 3,
  architecture: { type: 'mlp', hidden: [64] },
  epochs: 5,
  batchSize: 32,
  learningRate: 0.05,
  seed: 'lethe-demo',
  evaluation: { holdoutFraction: 0.1, referenceRetrain: true },
} as const;

interface DemoOptions {
  samples: number;
  dataDir?: string;
  port?: number;
  anchorEvery: number;
  exit?: boolean;
  verbose?: boolean;
}

interface JobResponse {
  state: 'queued' | 'running' | 'completed' | 'failed';
  progress: number;
  etaSeconds?: number;
  error?: string;
  result?: Record<string, unknown>;
}

interface ModelVersion {
  version: number;
  onnxSha256: string;
  metrics: Record<string, unknown>;
  ledgerIndex: number;
  unlearnLedgerIndex?: number;
  reflectsForgetRequests: string[];
  state: 'live' | 'retired';
  retireLedgerIndex?: number;
}

interface ForgetRequestResponse {
  id: string;
  state: 'received' | 'unlearning' | 'completed' | 'failed';
  ledgerIndex: number;
  leafHash: string;
  samples: string[];
  modelVersions: ForgetRequestModelVersionDto[];
  /** Done fraction of its unlearning pass and seconds left, where the service reports them. */
  progress?: number;
  etaSeconds?: number;
  error?: string;
}

type Anchor = ServerAnchor;

/** The evidence of an unlearning step as the log holds it (UNLEARN_COMPLETED's, or EVIDENCE_RECORDED's after it). */
interface EvidenceJson {
  forgottenCount?: number;
  recordedIn?: string;
  before?: Evaluation;
  after?: Evaluation;
  reference?: Evaluation & { onnxSha256?: string };
}

/** One model evaluation in UNLEARN_COMPLETED's evidence (fields present as the engine logged them). */
interface Evaluation {
  retainAccuracy?: number;
  forgetAccuracy?: number;
  testAccuracy?: number;
  membershipAuc?: number;
}

/** Set once the demo is stopping: what the interrupted steps would still print is left out. */
let muted = false;

function say(line = ''): void {
  if (!muted) process.stdout.write(`${line}\n`);
}

/** For the shutdown's own lines, printed even while stopping. */
function announce(line: string): void {
  process.stdout.write(`${line}\n`);
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function percent(x: unknown): string {
  return typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : 'n/a';
}

/** The ETA column of a job's bar: the service's estimate while it runs. */
function eta(state: string, etaSeconds: number | undefined): string {
  if (state === 'completed') return '0s';
  return etaSeconds === undefined ? '...' : `${Math.ceil(etaSeconds)}s`;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number, 1..65535');
  return n;
}

/** The address to reach a service listening on HOST (all interfaces are reached on loopback). */
function reachableHost(host: string | undefined): string {
  const h = host?.trim() || '127.0.0.1';
  if (h === '0.0.0.0') return '127.0.0.1';
  if (h === '::') return '[::1]';
  return h.includes(':') ? `[${h}]` : h;
}

class Demo {
  private service?: DemoService;
  private dataDir?: string;
  /** The directory the demo created (and so deletes); never one the user passed. */
  private createdDir?: string;
  private admin?: ApiClient;
  private adminKey?: string;
  /** Whether the service has answered /v1/health with `ok` (and so stops cleanly on SIGTERM). */
  private healthy = false;
  private mlKeyId?: string;
  private serving = false;
  private stopping?: Promise<void>;
  /** Aborted when the demo stops: in-flight requests, polls and verify-log end at once. */
  private readonly abort = new AbortController();

  constructor(private readonly options: DemoOptions) {}

  get isServing(): boolean {
    return this.serving;
  }

  /** Starts step n of STEPS, unless the demo is stopping. */
  private step(n: number, title: string): void {
    if (this.abort.signal.aborted) throw new DemoError('interrupted');
    say(`[${n}/${STEPS}] ${title}`);
  }

  async run(): Promise<void> {
    const started = performance.now();
    const { options } = this;
    // Loaded here, not at the top: --help and bad arguments answer at once.
    const { DIGITS_PER_SUBJECT, MNIST_CLASSES, MNIST_FEATURES, buildDemoSamples } = await import('./demo/mnist-samples');
    const samples = buildDemoSamples(options.samples);
    say('Lethe demo: train a model on MNIST, make it forget one person, and prove it against a chain.');
    say();

    this.step(1, 'Starting the service as `npm start` does (embedded PostgreSQL, local Hardhat chain)');
    const base = await this.startService();
    const health = await this.waitForService(base);
    const rpcUrl = health.anchoring?.rpcUrl;
    if (!rpcUrl) throw new DemoError('the service runs without a chain (ANCHORING=off?): unset ANCHORING to run the demo');

    this.step(2, 'Creating an API key for the ML team (POST /v1/keys, role ml)');
    const ml = await this.createMlKey();

    this.step(
      3,
      `Uploading ${count(samples.length)} MNIST digits of ${count(Math.ceil(samples.length / DIGITS_PER_SUBJECT))} subjects (NDJSON)`,
    );
    const { datasetId, commitments } = await this.upload(ml, samples, MNIST_FEATURES, MNIST_CLASSES);

    this.step(
      4,
      `Training a SISA model: ${TRAINING.shards} shards x ${
        TRAINING.slices
      } slices, MLP ${MNIST_FEATURES}-${TRAINING.architecture.hidden.join('-')}-${MNIST_CLASSES}`,
    );
    const { modelId, v1 } = await this.train(ml, datasetId);

    const subjectId = samples[Math.floor(samples.length / 2)].subjectId;
    this.step(5, `Forgetting ${subjectId} (POST /v1/forget-requests)`);
    const forgotten = samples.filter((s) => s.subjectId === subjectId);
    const { unlearnIndex } = await this.forget(ml, datasetId, modelId, subjectId, forgotten, v1);

    this.step(6, 'Waiting until the chain anchors the unlearning');
    await this.waitForAnchor(ml, unlearnIndex);

    this.step(7, 'Checking the whole log against the chain, as an auditor would');
    await this.verifyLog(base, rpcUrl);

    say();
    say(`Done in ${seconds(started)}. See and verify all of it at:`);
    say(`  portal    ${base}/portal/`);
    say(`  API       ${base}/v1  (OpenAPI: ${base}/docs)`);
    say(`  ledger    ${base}/v1/ledger/entries?start=0&limit=100`);
    say(`  receipt   ${base}/v1/receipts/${commitments.get(forgotten[0].externalId)}  (${forgotten[0].externalId}, forgotten)`);
    say(`  audit     npx lethe-audit verify-log --api ${base} --rpc ${rpcUrl}`);
    say(`  chain     ${rpcUrl} (chain ${health.anchoring?.chainId}, AuditAnchor ${health.anchoring?.contract})`);
  }

  /** Keeps the service running until it stops by itself (an error) or the demo is stopped. */
  async serve(): Promise<void> {
    say();
    say(`The service keeps running${this.createdDir ? '' : ` (data in ${this.dataDir})`}. Press Ctrl-C to stop it.`);
    this.serving = true;
    await this.service!.exited;
    if (!this.stopping) throw this.service!.exitedError('while serving');
    await new Promise(() => undefined); // stopping: the signal handler exits the process
  }

  /** Stops the service (SIGTERM, waits for it to exit) and deletes the directory the demo created. Once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      muted = true;
      this.abort.abort();
      const service = this.service;
      if (service?.running) {
        if (!this.healthy) {
          announce('Stopping the service once it has started (it cannot stop cleanly before)...');
          await service.waitUntilStarted(120_000);
        } else {
          announce('Stopping the service...');
        }
        if (!this.createdDir && this.adminKey && this.mlKeyId) {
          // A directory the user keeps: revoke the demo's key (its value was never shown to anyone).
          await new ApiClient(service.baseUrl, this.adminKey).delete(`/v1/keys/${this.mlKeyId}`).catch(() => undefined);
        }
        await service.stop();
        announce(`Service stopped (${service.exitDescription}).`);
      }
      if (this.createdDir) rmSync(this.createdDir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  private async startService(): Promise<string> {
    const { options } = this;
    if (options.dataDir !== undefined) {
      this.dataDir = resolve(options.dataDir);
      mkdirSync(this.dataDir, { recursive: true });
    } else {
      this.dataDir = this.createdDir = mkdtempSync(join(tmpdir(), 'lethe-demo-'));
      chmodSync(this.dataDir, 0o755); // as root, PostgreSQL runs as its own user, which must reach its folder
    }
    const { findFreePort } = await import('@lethe/postgres');
    const port = options.port ?? (await findFreePort());
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      DATA_DIR: this.dataDir,
      LETHE_ADMIN_KEY: `lethe_${randomBytes(32).toString('base64url')}`, // shaped like the keys the service makes
      ANCHOR_EVERY_SECONDS: String(options.anchorEvery),
    };
    // The local chain's default port (8545) may be taken; the demo needs only some free port.
    if (!env.RPC_URL && !env.CHAIN_PORT) env.CHAIN_PORT = String(await findFreePort());
    const base = `http://${reachableHost(env.HOST)}:${port}`;
    const verbose = options.verbose;
    this.service = new DemoService({
      env,
      baseUrl: base,
      onLine: verbose ? (line) => process.stderr.write(`  [service] ${line}\n`) : undefined,
    });
    this.adminKey = env.LETHE_ADMIN_KEY;
    this.admin = new ApiClient(base, this.adminKey, {
      signal: this.abort.signal,
      explainUnreachable: async () => {
        // A refused or reset connection is often the service dying: give its exit a moment to be seen.
        await Promise.race([this.service!.exited, new Promise((r) => setTimeout(r, 1000))]);
        return this.service!.running ? undefined : this.service!.exitedError('a request failed');
      },
    });
    say(
      `      data dir   ${this.dataDir} ${
        this.createdDir ? '(fresh; deleted when the demo stops; --data-dir keeps one)' : '(yours; kept)'
      }`,
    );
    say(
      `      service    pid ${this.service.pid}, ${base}; anchoring every ${options.anchorEvery} s; its log ${
        verbose ? 'below' : 'shown on failure (--verbose shows it)'
      }`,
    );
    return base;
  }

  private async waitForService(base: string): Promise<Health> {
    const t0 = performance.now();
    // A fresh clone compiles the contracts and initialises PostgreSQL on the first start.
    const health = await this.service!.waitUntilHealthy(300_000);
    this.healthy = true;
    const a = health.anchoring;
    say(`      ready in ${seconds(t0)}: ${base}; ledger size ${health.ledger?.treeSize ?? '?'}`);
    if (a?.rpcUrl) say(`      chain      ${a.rpcUrl} (chain ${a.chainId}), AuditAnchor ${a.contract}`);
    return health;
  }

  private async createMlKey(): Promise<ApiClient> {
    const created = await this.admin!.post<{ id: string; key: string }>('/v1/keys', { role: 'ml', name: 'lethe-demo' });
    this.mlKeyId = created.id;
    say(`      key ${created.id} (role ml; the key itself is not shown)`);
    return this.admin!.withKey(created.key);
  }

  private async upload(
    ml: ApiClient,
    samples: DemoSample[],
    features: number,
    classes: number,
  ): Promise<{ datasetId: string; commitments: Map<string, string> }> {
    const dataset = await ml.post<{ id: string; ledgerIndex: number; leafHash: string }>('/v1/datasets', {
      name: `mnist-demo-${samples.length}`,
      features,
      classes,
    });
    say(`      dataset ${dataset.id}: DATASET_REGISTERED at ledger index ${dataset.ledgerIndex}`);
    const t0 = performance.now();
    const bar = createProgressBar('upload     [{bar}] {percentage}% | {value}/{total} digits | ETA {eta_formatted}', samples.length);
    let sent = 0;
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      // Pulled as the service reads: the bar follows what the service has taken, not what is in memory.
      pull(controller) {
        if (sent >= samples.length) return controller.close();
        const chunk = samples.slice(sent, sent + UPLOAD_CHUNK);
        controller.enqueue(encoder.encode(chunk.map((s) => `${JSON.stringify(s)}\n`).join('')));
        sent += chunk.length;
        bar.update(sent);
      },
    });
    let result: {
      accepted: number;
      rejected: { line: number; externalId?: string; error: string }[];
      commitments: { externalId: string; commitment: string }[];
    };
    try {
      result = await ml.request('POST', `/v1/datasets/${dataset.id}/samples`, { stream, contentType: 'application/x-ndjson' });
    } finally {
      bar.stop();
    }
    if (result.rejected.length > 0) {
      const [first] = result.rejected;
      throw new DemoError(`upload: ${result.rejected.length} digits rejected, the first (line ${first.line}): ${first.error}`);
    }
    const rate = Math.round(result.accepted / ((performance.now() - t0) / 1000));
    say(
      `      ${count(result.accepted)} digits accepted in ${seconds(t0)} (${count(
        rate,
      )}/s): one commitment each, SAMPLES_COMMITTED per 5,000`,
    );
    return { datasetId: dataset.id, commitments: new Map(result.commitments.map((c) => [c.externalId, c.commitment])) };
  }

  private async train(ml: ApiClient, datasetId: string): Promise<{ modelId: string; v1: ModelVersion }> {
    const { modelId, jobId } = await ml.post<{ modelId: string; jobId: string }>('/v1/models', { datasetId, ...TRAINING });
    say(
      `      model ${modelId}, job ${jobId}: ${TRAINING.epochs} epochs, batch ${TRAINING.batchSize}, learning rate ${TRAINING.learningRate}`,
    );
    const t0 = performance.now();
    const bar = createProgressBar('training   [{bar}] {percentage}% | {state} | ETA {left}', 100, { state: 'queued', left: '...' });
    let job: JobResponse;
    try {
      job = await this.poll(
        () => ml.get<JobResponse>(`/v1/jobs/${jobId}`),
        (j) => {
          bar.update(Math.round(j.progress * 100), {
            state: j.state,
            left: eta(j.state, j.etaSeconds),
          });
          return j.state === 'completed' || j.state === 'failed';
        },
        30 * 60_000,
        'the training job',
      );
    } finally {
      bar.stop();
    }
    if (job.state === 'failed') throw new DemoError(`training failed: ${job.error ?? 'no reason given'}`);
    const model = await ml.get<{ versions: ModelVersion[] }>(`/v1/models/${modelId}`);
    const v1 = model.versions[0];
    if (!v1) throw new DemoError(`training finished but GET /v1/models/${modelId} lists no version`);
    const m = v1.metrics;
    const test = m.testAccuracy !== undefined ? `, test accuracy ${percent(m.testAccuracy)} (${m.testSamples} digits)` : '';
    say(`      training finished in ${seconds(t0)}: version ${v1.version}, MODEL_PUBLISHED at ledger index ${v1.ledgerIndex}`);
    say(`      train accuracy ${percent(m.trainAccuracy)} (on ${m.trainAccuracySamples ?? '?'} digits)${test}`);
    say(`      ONNX SHA-256 ${v1.onnxSha256}`);
    return { modelId, v1 };
  }

  private async forget(
    ml: ApiClient,
    datasetId: string,
    modelId: string,
    subjectId: string,
    forgotten: DemoSample[],
    v1: ModelVersion,
  ): Promise<{ unlearnIndex: number }> {
    say(`      ${subjectId} gave ${forgotten.length} digits: ${forgotten.map((s) => `${s.externalId} (digit ${s.label})`).join(', ')}`);
    const t0 = performance.now();
    const filed = await ml.post<ForgetRequestResponse>('/v1/forget-requests', {
      datasetId,
      subjectId,
      reason: 'GDPR art. 17 erasure request (lethe demo)',
    });
    say(`      request ${filed.id}: FORGET_REQUESTED at ledger index ${filed.ledgerIndex}, leaf hash ${filed.leafHash}`);
    const bar = createProgressBar('unlearning [{bar}] {percentage}% | {state} | ETA {left}', 100, { state: filed.state, left: '...' });
    let done: ForgetRequestResponse;
    try {
      done = await this.poll(
        () => ml.get<ForgetRequestResponse>(`/v1/forget-requests/${filed.id}`),
        (r) => {
          bar.update(Math.round((r.progress ?? 0) * 100), {
            state: r.state,
            left: eta(r.state, r.etaSeconds),
          });
          return r.state === 'completed' || r.state === 'failed';
        },
        15 * 60_000,
        'the forget request',
      );
    } finally {
      bar.stop();
    }
    if (done.state === 'failed') throw new DemoError(`forget request ${filed.id} failed: ${done.error ?? 'no reason given'}`);
    const version = done.modelVersions.find((v) => v.modelId === modelId);
    if (!version) throw new DemoError(`forget request ${filed.id} completed without a new version of model ${modelId}`);
    say(
      `      forget request completed in ${seconds(t0)}: version ${version.version}, UNLEARN_COMPLETED at ledger index ${
        version.unlearnLedgerIndex
      }`,
    );
    say(`      model hash  v${v1.version} ${v1.onnxSha256}`);
    say(`                  v${version.version} ${version.onnxSha256}`);
    const old = (await ml.get<{ versions: ModelVersion[] }>(`/v1/models/${modelId}`)).versions.find((v) => v.version === v1.version);
    if (old?.state === 'retired') {
      say(
        `      version ${v1.version} retired (VERSION_RETIRED at ledger index ${old.retireLedgerIndex}): it learned the subject, its file is deleted, it answers 410 Gone`,
      );
    }

    // The evidence as the log holds it: what an auditor reads, not a summary of it.
    const event = await this.readEntry<{ affected?: { shard: number; fromSlice: number }[]; evidence?: EvidenceJson }>(
      ml,
      version.unlearnLedgerIndex,
      'UNLEARN_COMPLETED',
    );
    if (event.affected) {
      const shards = event.affected.map((a) => `shard ${a.shard} from slice ${a.fromSlice}`).join(', ');
      say(`      retrained ${event.affected.length} of ${TRAINING.shards} shards (${shards}); the others were kept as they were`);
    }
    // The version is served as soon as it is published; its evidence is measured after, in an entry of its own.
    if (event.evidence?.recordedIn === 'EVIDENCE_RECORDED') {
      if (version.evidenceLedgerIndex === null) throw new DemoError(`version ${version.version} completed without its EVIDENCE_RECORDED entry`);
      const recorded = await this.readEntry<{ evidence?: EvidenceJson }>(ml, version.evidenceLedgerIndex, 'EVIDENCE_RECORDED');
      this.printEvidence(recorded.evidence ?? {}, `EVIDENCE_RECORDED at ledger index ${version.evidenceLedgerIndex}, measured after the version was served`);
    } else this.printEvidence(event.evidence ?? {}, 'UNLEARN_COMPLETED');
    return { unlearnIndex: version.unlearnLedgerIndex };
  }

  /** A ledger entry's event, checked to be of `type`; its leaf hash is printed. */
  private async readEntry<E>(ml: ApiClient, index: number, type: string): Promise<E & { type: string }> {
    const [entry] = await ml.get<{ index: number; leafHash: string; event: string }[]>(`/v1/ledger/entries?start=${index}&limit=1`);
    const event = JSON.parse(entry.event) as E & { type: string };
    if (event.type !== type) throw new DemoError(`ledger entry ${index} is ${event.type}, not ${type}`);
    say(`      ${type} leaf hash ${entry.leafHash}`);
    return event;
  }

  private printEvidence(evidence: EvidenceJson, where: string): void {
    const columns = (
      [
        ['before', evidence.before],
        ['after', evidence.after],
        ['retrained reference', evidence.reference],
      ] as [string, Evaluation | undefined][]
    ).filter(([, e]) => e !== undefined);
    const rows: [string, keyof Evaluation, (x: unknown) => string][] = [
      ['accuracy, retained digits', 'retainAccuracy', percent],
      ['accuracy, forgotten digits', 'forgetAccuracy', percent],
      ['accuracy, test digits', 'testAccuracy', percent],
      ['membership-inference AUC', 'membershipAuc', (x) => (typeof x === 'number' ? x.toFixed(4) : 'n/a')],
    ];
    say(`      evidence in ${where} (${evidence.forgottenCount ?? '?'} digits forgotten):`);
    say(`        ${''.padEnd(28)}${columns.map(([name]) => name.padStart(21)).join('')}`);
    for (const [label, key, format] of rows) {
      if (!columns.some(([, e]) => e?.[key] !== undefined)) continue;
      say(`        ${label.padEnd(28)}${columns.map(([, e]) => format(e?.[key]).padStart(21)).join('')}`);
    }
    if (evidence.reference?.onnxSha256) say(`        retrained reference ONNX SHA-256 ${evidence.reference.onnxSha256}`);
    const missing = [
      evidence.after?.membershipAuc === undefined ? 'a membership-inference AUC, which needs a held-out test set' : '',
      evidence.reference === undefined ? 'a retrained reference' : '',
    ].filter(Boolean);
    if (missing.length > 0) say(`        not in this service's evidence: ${missing.join('; ')}`);
  }

  private async waitForAnchor(ml: ApiClient, unlearnIndex: number): Promise<void> {
    const t0 = performance.now();
    const timeoutMs = Math.max(180_000, this.options.anchorEvery * 4000);
    const { body } = await this.poll(
      () => ml.probe<Anchor>('/v1/anchors/latest'),
      (res) => res.status === 200 && (res.body?.treeSize ?? 0) > unlearnIndex,
      timeoutMs,
      `an anchor covering ledger index ${unlearnIndex}`,
    );
    const anchor = body!;
    say(`      unlearned version anchored after ${seconds(t0)}: tree size ${anchor.treeSize} > index ${unlearnIndex}`);
    say(`      root ${anchor.rootHash}`);
    say(`      tx ${anchor.txHash}, block ${anchor.blockNumber}, chain ${anchor.chainId}, AuditAnchor ${anchor.contract}`);
  }

  /** Runs `lethe-audit verify-log` as a separate process, as an auditor would, and shows its report. */
  private async verifyLog(base: string, rpcUrl: string): Promise<void> {
    const args = ['verify-log', '--api', base, '--rpc', rpcUrl];
    say(`      $ npx lethe-audit ${args.join(' ')}`);
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-r', './scripts/register.js', 'apps/cli/src/main.ts', ...args], {
      cwd: REPO_ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'], // its progress bar (in a terminal) and errors go straight to ours
      signal: this.abort.signal, // SIGTERM when the demo stops
    });
    createInterface({ input: child.stdout! }).on('line', (line) => say(`      | ${line}`));
    const code = await new Promise<number | null>((resolveCode, reject) => {
      child.once('error', (error) => reject(this.abort.signal.aborted ? new DemoError('verify-log: interrupted') : error));
      child.once('close', (exitCode) => resolveCode(exitCode));
    });
    if (code !== 0) throw new DemoError(`verify-log failed (exit ${code}): see its report above`);
    say(`      verify-log passed in ${seconds(t0)}`);
  }

  /** Reads until `done`, every POLL_MS; fails when the service exits or after `timeoutMs`. */
  private async poll<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.abort.signal.aborted) throw new DemoError(`interrupted while waiting for ${what}`);
      if (!this.service!.running) {
        await this.service!.exited; // its last lines read
        throw this.service!.exitedError(`while waiting for ${what}`);
      }
      const value = await read();
      if (done(value)) return value;
      if (Date.now() > deadline)
        throw new DemoError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`, this.service!.logTail());
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

function buildCommand(): Command {
  return new Command('demo')
    .description(
      'Starts the service as `npm start` does (embedded PostgreSQL, local Hardhat chain), uploads MNIST, trains a SISA model, ' +
        'forgets one data subject, waits until the unlearned version is anchored, runs `lethe-audit verify-log`, ' +
        'and prints the portal URL; the service keeps running until Ctrl-C.',
    )
    .option('--samples <n>', 'MNIST digits to upload, 3 per data subject', parsePositiveInteger, DEFAULT_SAMPLES)
    .option(
      '--data-dir <dir>',
      "the service's DATA_DIR, kept afterwards (default: a fresh directory under the system temp dir, deleted on exit)",
    )
    .option('--port <port>', 'HTTP port of the service (default: a free one)', parsePort)
    .option(
      '--anchor-every <seconds>',
      "the service's ANCHOR_EVERY_SECONDS while the demo runs",
      parsePositiveInteger,
      DEFAULT_ANCHOR_EVERY_SECONDS,
    )
    .option('--exit', 'stop the service and exit after verify-log (tests, CI)')
    .option('--verbose', "show the service's log as it runs (otherwise only its tail, on failure)")
    .showHelpAfterError();
}

async function main(argv: string[]): Promise<void> {
  const options = buildCommand().parse(argv).opts<DemoOptions>();
  const demo = new Demo(options);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    // Ctrl-C while the service is serving is how the demo ends (exit 0); earlier it cuts the demo short.
    const code = demo.isServing ? 0 : 128 + (signal === 'SIGINT' ? 2 : 15);
    if (code !== 0) process.stderr.write(`\ndemo: interrupted (${signal})\n`);
    else say();
    void demo.stop().finally(() => process.exit(code));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await demo.run();
    if (options.exit) {
      say();
      await demo.stop();
      return;
    }
    await demo.serve();
  } catch (error) {
    if (interrupted) return;
    process.stderr.write(`\ndemo: ${error instanceof Error ? error.message : String(error)}\n`);
    const details = error instanceof DemoError ? error.details : [];
    if (details.length > 0)
      process.stderr.write(`the service's last ${details.length} log lines:\n${details.map((l) => `  ${l}\n`).join('')}`);
    if (!(error instanceof DemoError) && options.verbose) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
    await demo.stop();
    process.exitCode = 1;
  }
}

void main(process.argv);
