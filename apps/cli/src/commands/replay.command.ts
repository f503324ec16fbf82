import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Command, Option } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import {
  MAX_HOLDOUT_FRACTION,
  MemoryCheckpointStore,
  UnlearningError,
  compareRuntimeEnvelopes,
  createFullRetrainMethod,
  createSisaMethod,
  describeRuntimeEnvelope,
  detectRuntimeEnvelope,
  hashHyperparameters,
  normalizeConfig,
  parseExamples,
  resolveStoredSchedule,
  splitHoldout,
  type ExampleFormat,
  type RuntimeEnvelope,
  type Sample,
  type TrainingConfigInput,
} from '@lethe/unlearning';
import { LogClient, VerifierError, fetchJson, rehashEntry, verifyModel } from '@lethe/verifier';
import { parsePositiveInteger } from './cli-support';

interface ReplayCommandOptions {
  model: string;
  version: number;
  data: string;
  api: string;
  rpc?: string;
  contract?: string;
  apiKey?: string;
  format?: ExampleFormat;
  json?: boolean;
  timeout: number;
}

/** What replay found, printed as one line or as JSON. */
interface ReplayResult {
  ok: boolean;
  modelId: string;
  modelVersion: number;
  /** The SHA-256 in the version's MODEL_PUBLISHED entry, and where that entry is. */
  publishedSha256: string;
  publishedIndex: number;
  /** Whether that entry was proven against the chain (--rpc), and in which checkpoint. */
  anchor: number | null;
  replayedSha256: string;
  /** Samples trained on: those of --data the model's holdout rule does not keep for testing. */
  samples: number;
  /** Samples of --data held out by the model's evaluation.holdoutFraction (never trained on). */
  heldOut: number;
  /** Samples the ledger's batches of that version hold (with --rpc). */
  ledgerSamples: number | null;
  hyperparamsHash: string;
  /** The runtime envelope the version was published under (MODEL_PUBLISHED.runtime; null in entries from before it was recorded) and this replay's. */
  publishedRuntime: RuntimeEnvelope | null;
  replayRuntime: RuntimeEnvelope;
  /** The fields in which they differ; byte equality is expected only when there are none (null: the entry records no envelope). */
  runtimeDifferences: string[] | null;
}

/** A failure that ends the replay: exit 1 (the service, the chain or the comparison) or 2 (usage). */
class ReplayFailure extends Error {
  constructor(message: string, readonly exitCode: 1 | 2) {
    super(message);
  }
}

/**
 * `replay`: retrains a published version from its configuration and the auditor's copy of the surviving
 * data, and compares the ONNX SHA-256 with the one the ledger published. Exit 0 when equal, 1 when not (or
 * when anything cannot be checked), 2 on bad usage. The engine places and orders samples by the seed and
 * their externalIds only, so commitments are not needed to train; the replay gives each sample a stand-in.
 * A model created with evaluation.holdoutFraction never trained on its held-out samples: the replay applies the
 * same rule (isHeldOut on the seed and the externalId) to the data and trains on the rest.
 */
export function buildReplayCommand(): Command {
  return new Command('replay')
    .description("retrain a model version from its configuration and your copy of its data, and compare the ONNX SHA-256 with the ledger's")
    .requiredOption('--model <id>', 'the model id')
    .requiredOption('--version <n>', 'the published version', parsePositiveInteger)
    .requiredOption(
      '--data <file>',
      'the surviving samples (held-out ones may be included): JSON array, NDJSON or CSV of {externalId, features, label}',
    )
    .requiredOption('--api <url>', "the service's base URL, e.g. http://localhost:3000")
    .option('--rpc <url>', 'a JSON-RPC endpoint: also check the MODEL_PUBLISHED entry and the batches against the chain')
    .option('--contract <address>', "AuditAnchor's address (default: from the log's latest ANCHORED entry)")
    .addOption(new Option('--api-key <key>', 'an auditor API key (reads the model configuration)').env('LETHE_API_KEY'))
    .addOption(new Option('--format <format>', 'format of --data (default: from the file extension)').choices(['json', 'ndjson', 'csv']))
    .option('--json', 'print the result as JSON')
    .option('--timeout <ms>', 'per HTTP request and JSON-RPC call', parsePositiveInteger, 30_000)
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (opts: ReplayCommandOptions) => {
      try {
        const result = await runReplay(opts);
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : formatResult(result));
        process.exitCode = result.ok ? 0 : 1;
      } catch (error) {
        const code =
          error instanceof ReplayFailure ? error.exitCode : error instanceof VerifierError && error.code === 'INVALID_ARGUMENT' ? 2 : 1;
        process.stderr.write(`lethe-audit replay: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = code;
      }
    });
}

async function runReplay(opts: ReplayCommandOptions): Promise<ReplayResult> {
  const format = opts.format ?? formatOf(opts.data);
  let text: string;
  try {
    text = await readFile(opts.data, 'utf8');
  } catch (error) {
    throw new ReplayFailure(`cannot read ${opts.data}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
  }
  const http = { timeoutMs: opts.timeout, apiKey: opts.apiKey };
  const modelRoute = `GET /v1/models/${opts.model}`;
  const model = (await fetchJson(opts.api, `v1/models/${encodeURIComponent(opts.model)}`, modelRoute, http)) as ServerModel;
  const version = Array.isArray(model?.versions) ? model.versions.find((v) => v.version === opts.version) : undefined;
  if (!version) throw new ReplayFailure(`model ${opts.model} has no published version ${opts.version}`, 1);
  if (typeof model.datasetId !== 'string' || typeof model.config !== 'object' || model.config === null) {
    throw new ReplayFailure(`${modelRoute}: the answer has no datasetId or config`, 1);
  }

  // The published hash from the log itself: the entry re-hashed, and with --rpc, proven against the chain.
  const log = new LogClient(opts.api, { timeoutMs: opts.timeout });
  const published = await readEvent(log, version.ledgerIndex);
  if (published.type !== 'MODEL_PUBLISHED' || published.modelId !== opts.model || published.modelVersion !== opts.version) {
    throw new ReplayFailure(
      `entry ${version.ledgerIndex}, which the service gives for version ${opts.version}, is not its MODEL_PUBLISHED`,
      1,
    );
  }
  let anchor: number | null = null;
  let ledgerSamples: number | null = null;
  let ledgerHyperparams: string[] | null = null;
  if (opts.rpc !== undefined) {
    const report = await verifyModel({
      apiUrl: opts.api,
      rpcUrl: opts.rpc,
      contract: opts.contract,
      modelId: opts.model,
      modelVersion: opts.version,
      timeoutMs: opts.timeout,
    });
    const found = report.models.find((m) => m.index === version.ledgerIndex);
    if (!report.ok || !found) {
      const first = report.failures[0];
      throw new ReplayFailure(
        first ? `${first.code}: ${first.message}` : `the log has no MODEL_PUBLISHED of model ${opts.model} version ${opts.version}`,
        1,
      );
    }
    anchor = found.anchor?.anchor ?? null;
    ledgerSamples = found.batches.reduce((n, b) => n + b.count, 0);
    ledgerHyperparams = found.hyperparamsHashes;
  }

  // numFeatures and numClasses from the dataset's DATASET_REGISTERED entry, re-hashed.
  const dataset = (await fetchJson(
    opts.api,
    `v1/datasets/${encodeURIComponent(model.datasetId)}`,
    `GET /v1/datasets/${model.datasetId}`,
    http,
  )) as { ledgerIndex?: unknown };
  if (typeof dataset?.ledgerIndex !== 'number')
    throw new ReplayFailure(`GET /v1/datasets/${model.datasetId}: the answer has no ledgerIndex`, 1);
  const registered = await readEvent(log, dataset.ledgerIndex);
  if (registered.type !== 'DATASET_REGISTERED' || registered.datasetId !== model.datasetId) {
    throw new ReplayFailure(`entry ${dataset.ledgerIndex} is not the DATASET_REGISTERED of dataset ${model.datasetId}`, 1);
  }
  const engineInput = toEngineConfig(model.config, registered.features, registered.classes, model.epochsPerSlice);
  let config;
  try {
    config = normalizeConfig(engineInput);
  } catch (error) {
    throw new ReplayFailure(`the model's configuration is not one the engine takes: ${(error as Error).message}`, 1);
  }
  const holdoutFraction = holdoutFractionOf(model.config);
  const hyperparamsHash = hashHyperparameters(config);
  if (ledgerHyperparams && !(ledgerHyperparams.length === 1 && ledgerHyperparams[0] === hyperparamsHash)) {
    throw new ReplayFailure(
      `the service's configuration of model ${
        opts.model
      } hashes to ${hyperparamsHash}, but its BATCH_LEARNED entries say ${ledgerHyperparams.join(', ')}`,
      1,
    );
  }

  let examples;
  try {
    examples = parseExamples(text, format, config);
  } catch (error) {
    if (error instanceof UnlearningError) throw new ReplayFailure(`${opts.data}: ${error.message}`, 2);
    throw error;
  }
  // The model's holdout rule on the seed and each externalId alone: the samples it kept for testing were never learned.
  const { train: trainedOn, holdout } = splitHoldout(examples, { seed: config.seed, fraction: holdoutFraction });
  // Stand-in commitments: they name batches in checkpoints and the manifest, never a weight or the ONNX file.
  const samples: Sample[] = trainedOn.map((e) => ({
    ...e,
    commitment: createHash('sha256').update(`lethe-replay|${e.externalId}`).digest('hex'),
  }));
  const onnxSha256 = await train(opts, config.method === 'sisa', samples, engineInput);
  const replayRuntime = detectRuntimeEnvelope();
  const publishedRuntime = published.runtime ?? null;
  return {
    ok: onnxSha256 === published.onnxSha256,
    modelId: opts.model,
    modelVersion: opts.version,
    publishedSha256: published.onnxSha256,
    publishedIndex: version.ledgerIndex,
    anchor,
    replayedSha256: onnxSha256,
    samples: samples.length,
    heldOut: holdout.length,
    ledgerSamples,
    hyperparamsHash,
    publishedRuntime,
    replayRuntime,
    runtimeDifferences: publishedRuntime ? compareRuntimeEnvelopes(publishedRuntime, replayRuntime) : null,
  };
}

async function train(opts: ReplayCommandOptions, sisa: boolean, samples: Sample[], config: TrainingConfigInput): Promise<string> {
  const bar =
    process.stderr.isTTY && !opts.json
      ? new SingleBar({ format: 'replay [{bar}] {percentage}% | ETA {eta}s', stream: process.stderr }, Presets.shades_classic)
      : undefined;
  bar?.start(100, 0);
  const deps = {
    store: new MemoryCheckpointStore(),
    onProgress: (p: { fraction: number; phase: string }) => {
      if (p.phase === 'train') bar?.update(Math.round(p.fraction * 100));
    },
  };
  const method = sisa ? createSisaMethod(deps) : createFullRetrainMethod(deps);
  try {
    const trained = await method.train({ modelId: opts.model, config, samples, version: opts.version });
    return trained.onnxSha256;
  } catch (error) {
    if (error instanceof UnlearningError) throw new ReplayFailure(`training failed: ${error.message}`, 1);
    throw error;
  } finally {
    bar?.update(100);
    bar?.stop();
    await method.release();
  }
}

interface ServerModel {
  datasetId: string;
  config: Record<string, unknown>;
  /** The resolved epochs of each slice (services from before the field do not send it; their models trained `epochs` on every slice). */
  epochsPerSlice?: unknown;
  versions: { version: number; onnxSha256: string; ledgerIndex: number }[];
}

/**
 * The engine's config from the configuration the model was created with (POST /v1/models) and the dataset's
 * shape: the mapping of apps/api's toEngineConfig, repeated here so that the CLI does not load the service.
 * hashHyperparameters of the result is checked against the ledger's BATCH_LEARNED entries (with --rpc).
 */
function toEngineConfig(body: Record<string, unknown>, numFeatures: number, numClasses: number, epochsPerSlice: unknown): TrainingConfigInput {
  const architecture = (body.architecture ?? {}) as { type?: unknown; hidden?: unknown };
  const config: TrainingConfigInput = {
    method: body.method === 'sisa' ? 'sisa' : 'full-retrain',
    model: architecture.type === 'logreg' ? 'logistic-regression' : 'mlp',
    numFeatures,
    numClasses,
    epochs: body.epochs as number,
    batchSize: body.batchSize as number,
    learningRate: body.learningRate as number,
    seed: body.seed as string | number,
  };
  if (Array.isArray(architecture.hidden)) config.hiddenLayers = [...(architecture.hidden as number[])];
  if (body.shards !== undefined) config.shards = body.shards as number;
  if (body.slices !== undefined) config.slices = body.slices as number;
  // The service's resolved schedule; without one, the model is from before the field (resolveStoredSchedule).
  if (Array.isArray(epochsPerSlice)) config.epochsPerSlice = epochsPerSlice as number[];
  return resolveStoredSchedule(config);
}

/** The model's evaluation.holdoutFraction (POST /v1/models), 0 when it has none. */
function holdoutFractionOf(body: Record<string, unknown>): number {
  const evaluation = body.evaluation as { holdoutFraction?: unknown } | null | undefined;
  if (evaluation === undefined || evaluation === null || evaluation.holdoutFraction === undefined) return 0;
  const fraction = evaluation.holdoutFraction;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= MAX_HOLDOUT_FRACTION))
    throw new ReplayFailure(`the model's evaluation.holdoutFraction is not a number in [0, ${MAX_HOLDOUT_FRACTION}]`, 1);
  return fraction;
}

/** One entry, re-hashed; its parsed event. */
async function readEvent(log: LogClient, index: number) {
  const [entry] = await log.getEntries(index, 1);
  if (!entry || entry.index !== index) throw new ReplayFailure(`entry ${index} is missing: the service did not return it`, 1);
  const rehashed = rehashEntry(entry);
  if (rehashed.failure || !rehashed.event) throw new ReplayFailure(`BAD_ENTRY: ${rehashed.failure?.message}`, 1);
  return rehashed.event;
}

function formatResult(r: ReplayResult): string {
  const where = `MODEL_PUBLISHED at entry ${r.publishedIndex}${
    r.anchor !== null ? `, proven in checkpoint ${r.anchor} on chain` : ', not checked against the chain (no --rpc)'
  }`;
  const counts =
    r.ledgerSamples !== null && r.ledgerSamples !== r.samples
      ? ` (the ledger's batches hold ${r.ledgerSamples} samples, the data ${r.samples})`
      : '';
  const from = `${r.samples} samples${r.heldOut > 0 ? ` (${r.heldOut} more held out by the model's holdout rule)` : ''}`;
  const verdict = r.ok
    ? `ok: model ${r.modelId} version ${r.modelVersion} replayed from ${from}: ONNX SHA-256 ${r.replayedSha256} equals the published one (${where})`
    : `MISMATCH: model ${r.modelId} version ${r.modelVersion} replayed from ${from} gives ONNX SHA-256 ${r.replayedSha256}, the ledger published ${r.publishedSha256} (${where})${counts}`;
  return `${[verdict, ...formatEnvelopes(r)].join('\n')}\n`;
}

/** Both runtime envelopes, and whether the same bytes were to be expected from them. */
function formatEnvelopes(r: ReplayResult): string[] {
  const lines = [
    `  published under: ${r.publishedRuntime ? describeRuntimeEnvelope(r.publishedRuntime) : 'not recorded (the entry is from before runtime envelopes were)'}`,
    `  replayed under:  ${describeRuntimeEnvelope(r.replayRuntime)}`,
  ];
  if (r.runtimeDifferences === null)
    lines.push('  byte equality: expected only if this machine matches the unrecorded one (same onnxruntime, Node, platform and CPU kernel family)');
  else if (r.runtimeDifferences.length === 0) lines.push('  byte equality: expected (the same runtime envelope)');
  else
    lines.push(
      `  byte equality: not expected, the envelopes differ in ${r.runtimeDifferences.join(', ')}${
        r.ok ? '' : ': a different SHA-256 alone does not show a different training; replay under the published envelope'
      }`,
    );
  return lines;
}

function formatOf(file: string): ExampleFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.ndjson' || ext === '.jsonl') return 'ndjson';
  if (ext === '.csv') return 'csv';
  throw new ReplayFailure(`cannot tell the format of ${file} from its extension: give --format json, ndjson or csv`, 2);
}
