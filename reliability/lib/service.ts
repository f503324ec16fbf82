// The service under trial: started as `npm start` runs it (a child process, test/support/service-process.ts),
// on a DATA_DIR of its own with its embedded PostgreSQL, and a JSON client of its HTTP API. The suite transpiles
// the sources once per run (startFromPrecompiled) rather than at each of its many starts.
import { randomBytes } from 'node:crypto';
import { findFreePort } from '@lethe/postgres';
import { ServiceProcess, makeServiceDataDir, startServiceProcess } from '../../test/support/service-process';

/** The shape of the datasets the suite registers: iris's (4 features, 3 classes), small enough to train in seconds. */
export const FEATURES = 4;
export const CLASSES = 3;

/** One answer of the API: its status, its body parsed (or undefined when it is not JSON), how long it took. */
export interface ApiAnswer {
  status: number;
  body: any;
  ms: number;
}

/** A JSON client of the service, with one API key (or none). */
export class ApiClient {
  constructor(
    readonly base: string,
    readonly key?: string,
  ) {}

  /** One request; throws only when no answer came (refused, reset, timed out). */
  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<ApiAnswer> {
    const t0 = performance.now();
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        ...(this.key === undefined ? {} : { authorization: `Bearer ${this.key}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, ms: performance.now() - t0 };
  }

  /** One request that must succeed (2xx); its body. */
  async ok(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<any> {
    const answer = await this.call(method, path, body, headers);
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 500)}`);
    return answer.body;
  }

  /** The same service with another key. */
  as(key: string | undefined): ApiClient {
    return new ApiClient(this.base, key);
  }
}

/** A service started for a trial, with its admin key and an ML team's key. */
export interface TrialService {
  api: string;
  dataDir: string;
  env: Record<string, string>;
  process: ServiceProcess;
  admin: ApiClient;
  ml: ApiClient;
  anon: ApiClient;
}

/** A fresh DATA_DIR that the embedded PostgreSQL, run as its own user under root, can reach. */
export const makeDataDir = makeServiceDataDir;

/**
 * The environment of a service on `dataDir` with its embedded PostgreSQL (DATABASE_URL emptied, so a test
 * run's own does not leak in), a fresh admin key, no rate limit, and `env` over it.
 */
export async function serviceEnv(dataDir: string, env: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    PORT: String(await findFreePort()),
    DATA_DIR: dataDir,
    DATABASE_URL: '',
    LETHE_ADMIN_KEY: randomBytes(24).toString('hex'),
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    ...env,
  };
}

/** Resolves once /v1/health answers 200 (and `until` holds of its body); rejects when the process exits first. */
export async function waitForService(
  api: string,
  service: ServiceProcess,
  timeoutMs: number,
  until: (health: any) => boolean = () => true,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (service.child.exitCode !== null || service.child.signalCode !== null)
      throw new Error(`the service exited (${service.child.exitCode ?? service.child.signalCode}) before it was ready:\n${service.output().slice(-3000)}`);
    try {
      const res = await fetch(`${api}/v1/health`, { signal: AbortSignal.timeout(5000) });
      const body = await res.json();
      if (res.status === 200 && until(body)) return body;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the service at ${api} was not ready in ${timeoutMs / 1000} s:\n${service.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let precompiled: string | undefined;

/**
 * Every service started after this runs from the sources precompiled into `dir` (precompileSources,
 * test/support/precompile.ts: ts-node's output made once for the run) instead of transpiling them at each start;
 * undefined goes back to `npm start`'s ts-node.
 */
export function startFromPrecompiled(dir: string | undefined): void {
  precompiled = dir;
}

/**
 * Starts the service with `env` (from serviceEnv) in a process group of its own and waits until it answers;
 * the ML team's key is made on the first start only (`mlKey` carries it to the next); `nodeArgs` go to Node
 * before the script (e.g. reliability/lib/inspector.ts's INSPECT_FLAG).
 */
export async function startTrialService(
  env: Record<string, string>,
  options: { timeoutMs?: number; mlKey?: string; until?: (health: any) => boolean; nodeArgs?: string[] } = {},
): Promise<TrialService> {
  const api = `http://127.0.0.1:${env.PORT}`;
  const process = startServiceProcess(env, { detached: true, precompiled, nodeArgs: options.nodeArgs });
  try {
    await waitForService(api, process, options.timeoutMs ?? 180_000, options.until);
  } catch (error) {
    killGroup(process, 'SIGKILL');
    throw error;
  }
  const admin = new ApiClient(api, env.LETHE_ADMIN_KEY);
  const mlKey = options.mlKey ?? (await admin.ok('POST', '/v1/keys', { role: 'ml', name: 'reliability' })).key;
  return { api, dataDir: env.DATA_DIR, env, process, admin, ml: admin.as(mlKey), anon: admin.as(undefined) };
}

/** Sends `signal` to the service's process group (the service and the PostgreSQL it started). */
export function killGroup(service: ServiceProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-service.child.pid!, signal);
  } catch {
    // gone already
  }
}

/** Stops the service as Ctrl-C would (SIGINT to its group), SIGKILL after `graceMs`; its exit code. */
export async function stopTrialService(service: ServiceProcess, graceMs = 60_000): Promise<number | null> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.child.exitCode;
  killGroup(service, 'SIGINT');
  const timer = setTimeout(() => killGroup(service, 'SIGKILL'), graceMs);
  const code = await service.exited;
  clearTimeout(timer);
  return code;
}

/** A small model trained on the dataset as an ML team asks for it (SISA, logistic regression unless `config` says), waited for; its ids. */
export async function trainModel(ml: ApiClient, datasetId: string, config: Record<string, unknown> = {}, timeoutMs = 300_000): Promise<{ modelId: string; jobId: string }> {
  const created = await ml.ok('POST', '/v1/models', {
    datasetId,
    method: 'sisa',
    shards: 2,
    slices: 2,
    architecture: { type: 'logreg' },
    epochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    seed: 'reliability',
    ...config,
  });
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const job = await ml.ok('GET', `/v1/jobs/${created.jobId}`);
    if (job.state === 'completed') return { modelId: created.modelId, jobId: created.jobId };
    if (job.state === 'failed' || Date.now() > deadline) throw new Error(`training ${created.modelId} ended ${JSON.stringify(job).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
