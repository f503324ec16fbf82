// The replay audit: a published model version retrained from its configuration and the auditor's copy of
// the surviving data, its ONNX SHA-256 compared with the one the ledger published.
//
// Node only: it trains on onnxruntime-node through @lethe/unlearning. So it is not exported from index.ts,
// which the portal bundles for the browser; Node callers import it as `@lethe/verifier/replay`.
import { createHash } from 'node:crypto';
import {
  MAX_HOLDOUT_FRACTION,
  MemoryCheckpointStore,
  UnlearningError,
  compareRuntimeEnvelopes,
  computeBatchRoot,
  createMethod,
  detectRuntimeEnvelope,
  hashHyperparameters,
  normalizeConfig,
  parseExamples,
  planShards,
  resolveStoredSchedule,
  splitHoldout,
  type ExampleFormat,
  type ParsedExample,
  type RuntimeEnvelope,
  type Sample,
  type TrainingConfig,
  type TrainingConfigInput,
} from '@lethe/unlearning';
import type { BatchLearned, DatasetRegistered, LedgerEvent, ModelPublished } from '@lethe/events';
import { VerifierError } from './errors';
import { fetchJson } from './fetch-json';
import { LogClient, MAX_ENTRIES_PER_PAGE } from './log-client';
import { rehashEntry } from './rehash-entry';
import { verifyModel } from './verify-model';

export interface ReplayOptions {
  apiUrl: string;
  modelId: string;
  modelVersion: number;
  /** The auditor's copy of the surviving samples (held-out ones may be included), as text in `format`. */
  data: { text: string; format: ExampleFormat; name: string };
  /** With a JSON-RPC endpoint, the MODEL_PUBLISHED entry and the version's batches are checked against the chain. */
  rpcUrl?: string;
  /** AuditAnchor's address; unless given, taken from the log's latest ANCHORED entry. */
  contract?: string;
  /** An auditor API key: the model's configuration is read from a route with a role. */
  apiKey?: string;
  /** Per HTTP request and JSON-RPC call; 30 s unless given. */
  timeoutMs?: number;
  /** The training's done fraction in [0, 1]. */
  onProgress?: (fraction: number) => void;
}

/**
 * One learn batch of the version (an appended slice: BATCH_LEARNED with slice >= R) checked against the data before
 * training: the samples the data places in that shard's slice (by their `batch`) must be as many as the entry says,
 * and, when the data gives every one of them its commitment, have its batch root.
 */
export interface LearnBatchCheck {
  /** The BATCH_LEARNED entry (null: the data has samples in a learn batch of this shard that the log never learned). */
  index: number | null;
  shard: number;
  slice: number;
  learnBatch: number;
  expected: { count: number; batchRoot: string | null };
  /** batchRoot null: some of these samples have no commitment in the data, so only the count is compared. */
  got: { count: number; batchRoot: string | null };
  ok: boolean;
}

/** What the replay found. */
export interface ReplayReport {
  /** The learn batches agree with the log and the replayed ONNX SHA-256 equals the published one. */
  ok: boolean;
  modelId: string;
  modelVersion: number;
  /** The SHA-256 in the version's MODEL_PUBLISHED entry, and where that entry is. */
  publishedSha256: string;
  publishedIndex: number;
  /** The on-chain checkpoint the entry was proven in (with rpcUrl), else null. */
  anchor: number | null;
  /** Null when a learn batch of the data disagrees with the log (learnBatches): nothing was trained. */
  replayedSha256: string | null;
  /** The version's learn batches checked against the data (empty when it learned none); any not ok stops the replay before training. */
  learnBatches: LearnBatchCheck[];
  /** Samples trained on: those of the data the model's holdout rule does not keep for testing. */
  samples: number;
  /** Samples of the data held out by the model's evaluation.holdoutFraction (never trained on). */
  heldOut: number;
  /** Samples the ledger's batches of that version hold (with rpcUrl), else null. */
  ledgerSamples: number | null;
  hyperparamsHash: string;
  /** The runtime envelope the version was published under (MODEL_PUBLISHED.runtime; null in entries from before it was recorded) and this replay's. */
  publishedRuntime: RuntimeEnvelope | null;
  replayRuntime: RuntimeEnvelope;
  /** The fields in which they differ; byte equality is expected only when there are none (null: the entry records no envelope). */
  runtimeDifferences: string[] | null;
}

/** The configuration a model was created with (POST /v1/models), as GET /v1/models/:id returns it. */
type ModelBody = Record<string, unknown>;

interface ServerModel {
  datasetId: string;
  config: ModelBody;
  /** The resolved epochs of each slice (services from before the field do not send it; their models trained `epochs` on every slice). */
  epochsPerSlice?: unknown;
  /** A DP-SGD model's privacy settings as resolved at creation (noise seed included), absent for others. */
  privacy?: unknown;
  /** A certified model's settings as resolved at creation (noise seed included), absent for others. */
  certified?: unknown;
  /** `guarantee`: that of the version's UNLEARN_COMPLETED (services from before it do not send it). */
  versions: { version: number; onnxSha256: string; ledgerIndex: number; unlearnLedgerIndex?: number; guarantee?: { kind?: unknown; retrained?: unknown } }[];
}

/** What the chain says of the version (with rpcUrl): where it is anchored, and what its batches learned. */
interface ChainView {
  anchor: number | null;
  ledgerSamples: number | null;
  hyperparamsHashes: string[] | null;
}

/**
 * Retrains `modelVersion` from the configuration the service gives and `data`, and compares the ONNX SHA-256
 * with the one the ledger published (the entry re-hashed; with rpcUrl, proven against the chain). The engine
 * places and orders samples by the seed and their externalIds only, so commitments are not needed to train;
 * each sample gets a stand-in. A model created with evaluation.holdoutFraction never trained on its held-out
 * samples: the replay applies the same rule (isHeldOut on the seed and the externalId) and trains on the rest.
 *
 * A mismatch is a report with `ok: false`. Throws VerifierError: INVALID_ARGUMENT when the data cannot be
 * read as samples of the dataset; SERVER_ERROR, BAD_ENTRY or a chain failure's code when the service, the log
 * or the chain fails; REPLAY_FAILED when the version cannot be retrained (no such version, a configuration
 * the engine does not take or that the ledger contradicts, a training the engine refuses).
 */
export async function replayModel(options: ReplayOptions): Promise<ReplayReport> {
  const http = { timeoutMs: options.timeoutMs ?? 30_000, apiKey: options.apiKey };
  const { model, version } = await fetchPublishedVersion(options, http);
  checkReplayable(options, version);
  const log = new LogClient(options.apiUrl, { timeoutMs: http.timeoutMs });
  const published = await readPublished(log, options, version.ledgerIndex);
  const chain = await readChainView(options, version.ledgerIndex);
  const registered = await readRegisteredDataset(options, log, model.datasetId, http);
  const engineInput = toEngineConfig(model.config, registered.features, registered.classes, model.epochsPerSlice, model.privacy, model.certified);
  const masked = await readMaskedFeatures(log, options, model.versions);
  if (masked) engineInput.maskedFeatures = masked;
  const config = checkConfig(options.modelId, engineInput, chain.hyperparamsHashes);
  const { samples, heldOut, committed } = samplesToTrainOn(options.data, config, holdoutFractionOf(model.config));
  const learnBatches = checkLearnBatches(samples, committed, config, await readLearnBatches(log, options, version.ledgerIndex, config.slices));
  const batchesAgree = learnBatches.every((b) => b.ok);
  const replayedSha256 = batchesAgree ? await train(options, samples, engineInput) : null;
  const replayRuntime = detectRuntimeEnvelope();
  const publishedRuntime = published.runtime ?? null;
  return {
    ok: batchesAgree && replayedSha256 === published.onnxSha256,
    modelId: options.modelId,
    modelVersion: options.modelVersion,
    publishedSha256: published.onnxSha256,
    publishedIndex: version.ledgerIndex,
    anchor: chain.anchor,
    replayedSha256,
    learnBatches,
    samples: samples.length,
    heldOut,
    ledgerSamples: chain.ledgerSamples,
    hyperparamsHash: hashHyperparameters(config),
    publishedRuntime,
    replayRuntime,
    runtimeDifferences: publishedRuntime ? compareRuntimeEnvelopes(publishedRuntime, replayRuntime) : null,
  };
}

/** The model as the service describes it, and the version asked for. */
async function fetchPublishedVersion(
  options: ReplayOptions,
  http: { timeoutMs: number; apiKey?: string },
): Promise<{ model: ServerModel; version: ServerModel['versions'][number] }> {
  const route = `GET /v1/models/${options.modelId}`;
  const model = (await fetchJson(options.apiUrl, `v1/models/${encodeURIComponent(options.modelId)}`, route, http)) as ServerModel;
  const version = Array.isArray(model?.versions) ? model.versions.find((v) => v.version === options.modelVersion) : undefined;
  if (!version) throw new VerifierError('REPLAY_FAILED', `model ${options.modelId} has no published version ${options.modelVersion}`);
  if (typeof model.datasetId !== 'string' || typeof model.config !== 'object' || model.config === null) {
    throw new VerifierError('SERVER_ERROR', `${route}: the answer has no datasetId or config`);
  }
  return { model, version };
}

/**
 * Training reproduces a version that training made (the first, an exact unlearning's, a certified model's
 * retraining). A certified Newton step or an approximate unlearning started from the version before it, and the
 * samples it removed are erased: its bytes cannot be had from the surviving data, and the replay says so rather
 * than report a mismatch.
 */
function checkReplayable(options: ReplayOptions, version: ServerModel['versions'][number]): void {
  const guarantee = version.guarantee;
  if (guarantee?.kind === 'approximate' || (guarantee?.kind === 'certified' && guarantee.retrained === false)) {
    const how = guarantee.kind === 'approximate' ? 'approximate unlearning' : 'a certified Newton step';
    throw new VerifierError(
      'REPLAY_FAILED',
      `version ${options.modelVersion} of model ${options.modelId} was made by ${how} from the version before it: its bytes depend on that ` +
        'version and on the samples it removed (erased), not on the surviving data alone; replay the version training made instead',
    );
  }
}

/** The published hash from the log itself: the version's MODEL_PUBLISHED entry, re-hashed. */
async function readPublished(log: LogClient, options: ReplayOptions, index: number): Promise<ModelPublished> {
  const published = await readEvent(log, index);
  if (published.type !== 'MODEL_PUBLISHED' || published.modelId !== options.modelId || published.modelVersion !== options.modelVersion) {
    throw new VerifierError(
      'BAD_ENTRY',
      `entry ${index}, which the service gives for version ${options.modelVersion}, is not its MODEL_PUBLISHED`,
      { index },
    );
  }
  return published;
}

/**
 * The columns a version does not read (feature-level unlearning): the `features` of the latest UNLEARN_COMPLETED
 * (re-hashed) among the versions up to it, which lists every column masked then. A version that learned new
 * samples or learned a suspended forget's again has no UNLEARN_COMPLETED of its own but keeps the mask of the
 * version it continues, and masks only grow: the latest forget's entry says them all. Undefined when it reads
 * them all.
 */
async function readMaskedFeatures(log: LogClient, options: ReplayOptions, versions: ServerModel['versions']): Promise<number[] | undefined> {
  const unlearned = versions
    .filter((v) => v.version <= options.modelVersion && typeof v.unlearnLedgerIndex === 'number')
    .sort((a, b) => b.version - a.version)[0];
  if (!unlearned) return undefined;
  const index = unlearned.unlearnLedgerIndex as number;
  const event = await readEvent(log, index);
  if (event.type !== 'UNLEARN_COMPLETED' || event.modelId !== options.modelId || event.modelVersion !== unlearned.version)
    throw new VerifierError('BAD_ENTRY', `entry ${index}, which the service gives for version ${unlearned.version}, is not its UNLEARN_COMPLETED`, { index });
  return event.features;
}

/** With rpcUrl, the version proven against the chain (verifyModel); without, nothing is known of it. */
async function readChainView(options: ReplayOptions, publishedIndex: number): Promise<ChainView> {
  if (options.rpcUrl === undefined) return { anchor: null, ledgerSamples: null, hyperparamsHashes: null };
  const report = await verifyModel({
    apiUrl: options.apiUrl,
    rpcUrl: options.rpcUrl,
    contract: options.contract,
    modelId: options.modelId,
    modelVersion: options.modelVersion,
    timeoutMs: options.timeoutMs,
  });
  const found = report.models.find((m) => m.index === publishedIndex);
  if (!report.ok || !found) {
    const first = report.failures[0];
    if (first) throw new VerifierError(first.code, `${first.code}: ${first.message}`, { index: first.index, anchor: first.anchor });
    throw new VerifierError('REPLAY_FAILED', `the log has no MODEL_PUBLISHED of model ${options.modelId} version ${options.modelVersion}`);
  }
  return {
    anchor: found.anchor?.anchor ?? null,
    ledgerSamples: found.batches.reduce((n, b) => n + b.count, 0),
    hyperparamsHashes: found.hyperparamsHashes,
  };
}

/** The dataset's DATASET_REGISTERED entry, re-hashed: numFeatures and numClasses come from it. */
async function readRegisteredDataset(
  options: ReplayOptions,
  log: LogClient,
  datasetId: string,
  http: { timeoutMs: number; apiKey?: string },
): Promise<DatasetRegistered> {
  const route = `GET /v1/datasets/${datasetId}`;
  const dataset = (await fetchJson(options.apiUrl, `v1/datasets/${encodeURIComponent(datasetId)}`, route, http)) as { ledgerIndex?: unknown };
  if (typeof dataset?.ledgerIndex !== 'number') throw new VerifierError('SERVER_ERROR', `${route}: the answer has no ledgerIndex`);
  const registered = await readEvent(log, dataset.ledgerIndex);
  if (registered.type !== 'DATASET_REGISTERED' || registered.datasetId !== datasetId) {
    throw new VerifierError('BAD_ENTRY', `entry ${dataset.ledgerIndex} is not the DATASET_REGISTERED of dataset ${datasetId}`, {
      index: dataset.ledgerIndex,
    });
  }
  return registered;
}

/** The engine's normalized config; with the chain's view, its hyperparameter hash must be the batches' one. */
function checkConfig(modelId: string, input: TrainingConfigInput, ledgerHashes: string[] | null): TrainingConfig {
  let config: TrainingConfig;
  try {
    config = normalizeConfig(input);
  } catch (error) {
    throw new VerifierError('REPLAY_FAILED', `the model's configuration is not one the engine takes: ${(error as Error).message}`);
  }
  const hash = hashHyperparameters(config);
  if (ledgerHashes && !(ledgerHashes.length === 1 && ledgerHashes[0] === hash)) {
    throw new VerifierError(
      'REPLAY_FAILED',
      `the service's configuration of model ${modelId} hashes to ${hash}, but its BATCH_LEARNED entries say ${ledgerHashes.join(', ')}`,
    );
  }
  return config;
}

/**
 * The data parsed, less the samples the model's holdout rule (the seed and each externalId alone) kept for
 * testing, which were never learned; each with its commitment when the data gives it, else a stand-in (a
 * commitment names batches in checkpoints and the manifest, never a weight or the ONNX file); `committed`: the
 * externalIds the data gave a commitment.
 */
function samplesToTrainOn(
  data: ReplayOptions['data'],
  config: TrainingConfig,
  holdoutFraction: number,
): { samples: Sample[]; heldOut: number; committed: Set<string> } {
  let examples: ParsedExample[];
  try {
    examples = parseExamples(data.text, data.format, config);
  } catch (error) {
    if (error instanceof UnlearningError) throw new VerifierError('INVALID_ARGUMENT', `${data.name}: ${error.message}`);
    throw error;
  }
  const { train, holdout } = splitHoldout(examples, { seed: config.seed, fraction: holdoutFraction });
  const samples = train.map((e) => ({ ...e, commitment: e.commitment ?? createHash('sha256').update(`lethe-replay|${e.externalId}`).digest('hex') }));
  return { samples, heldOut: holdout.length, committed: new Set(train.filter((e) => e.commitment !== undefined).map((e) => e.externalId)) };
}

/**
 * The learn batches the version holds: per appended slice (slice >= `slices`, the config's R) of each shard, the
 * latest BATCH_LEARNED of the model at or before the version (a forget retrains slices and logs them again), every
 * entry up to the version's MODEL_PUBLISHED read and re-hashed.
 */
async function readLearnBatches(log: LogClient, options: ReplayOptions, publishedIndex: number, slices: number): Promise<{ index: number; event: BatchLearned }[]> {
  const latest = new Map<string, { index: number; event: BatchLearned }>();
  for (let start = 0; start < publishedIndex; start += MAX_ENTRIES_PER_PAGE) {
    const limit = Math.min(MAX_ENTRIES_PER_PAGE, publishedIndex - start);
    const page = await log.getEntries(start, limit);
    for (const entry of page) {
      if (!entry.event.includes('"BATCH_LEARNED"')) continue;
      const rehashed = rehashEntry(entry);
      if (rehashed.failure || !rehashed.event) throw new VerifierError('BAD_ENTRY', `BAD_ENTRY: ${rehashed.failure?.message}`, { index: entry.index });
      const event = rehashed.event;
      if (event.type !== 'BATCH_LEARNED' || event.modelId !== options.modelId || event.modelVersion > options.modelVersion || event.slice < slices) continue;
      const key = `${event.shard}/${event.slice}`;
      if ((latest.get(key)?.index ?? -1) < entry.index) latest.set(key, { index: entry.index, event });
    }
  }
  return [...latest.values()].sort((a, b) => a.event.shard - b.event.shard || a.event.slice - b.event.slice);
}

/**
 * Each learn batch of the log against the data's: the samples the engine's plan puts in that shard's appended slice
 * (the data's `batch` says which), their count and, when the data gives all their commitments, their batch root (in
 * rank order, as the engine computes it). A learn batch the data fills and the log does not have is a mismatch too.
 */
export function checkLearnBatches(
  samples: readonly Sample[],
  committed: ReadonlySet<string>,
  config: Pick<TrainingConfig, 'seed' | 'shards' | 'slices'>,
  logged: { index: number; event: BatchLearned }[],
): LearnBatchCheck[] {
  const R = config.slices;
  const plan = planShards(samples, config.seed, config.shards, R);
  const gotOf = (shard: number, slice: number): LearnBatchCheck['got'] => {
    const members = plan.shards[shard]?.slices[slice] ?? [];
    // A data file without commitments gives counts only, even for an empty batch (whose root it could compute).
    const complete = committed.size > 0 && members.every((i) => committed.has(samples[i].externalId));
    return { count: members.length, batchRoot: complete ? computeBatchRoot(members.map((i) => samples[i].commitment)) : null };
  };
  const checks: LearnBatchCheck[] = logged.map(({ index, event }) => {
    const got = gotOf(event.shard, event.slice);
    const expected = { count: event.count, batchRoot: event.batchRoot };
    return { index, shard: event.shard, slice: event.slice, learnBatch: event.learnBatch ?? event.slice - R + 1, expected, got, ok: got.count === expected.count && (got.batchRoot === null || got.batchRoot === expected.batchRoot) };
  });
  const known = new Set(logged.map(({ event }) => `${event.shard}/${event.slice}`));
  for (const shard of plan.shards)
    shard.slices.forEach((members, slice) => {
      if (slice < R || members.length === 0 || known.has(`${shard.shard}/${slice}`)) return;
      checks.push({ index: null, shard: shard.shard, slice, learnBatch: slice - R + 1, expected: { count: 0, batchRoot: null }, got: gotOf(shard.shard, slice), ok: false });
    });
  return checks;
}

/** A learn batch that disagrees with the log, in words: which batch, what the log says and what the data gives. */
export function describeLearnBatchMismatch(check: LearnBatchCheck): string {
  const where = `learn batch ${check.learnBatch} of shard ${check.shard} (slice ${check.slice}${check.index === null ? ', no BATCH_LEARNED entry' : `, BATCH_LEARNED entry ${check.index}`})`;
  const expected = check.index === null ? 'the log learned no such batch' : `the log says ${check.expected.count} sample(s) under batch root ${check.expected.batchRoot}`;
  const got = `the data gives ${check.got.count} sample(s)${check.got.batchRoot === null ? ' (root not computed: the data does not give every one its commitment)' : ` under batch root ${check.got.batchRoot}`}`;
  return `${where}: ${expected}, ${got}`;
}

/** Trains the version with the engine (checkpoints in memory) and returns its ONNX SHA-256. */
async function train(options: ReplayOptions, samples: Sample[], config: TrainingConfigInput): Promise<string> {
  const deps = {
    store: new MemoryCheckpointStore(),
    onProgress: (p: { fraction: number; phase: string }) => {
      if (p.phase === 'train') options.onProgress?.(p.fraction);
    },
  };
  const method = createMethod(config.method, deps);
  try {
    const trained = await method.train({ modelId: options.modelId, config, samples, version: options.modelVersion });
    return trained.onnxSha256;
  } catch (error) {
    if (error instanceof UnlearningError) throw new VerifierError('REPLAY_FAILED', `training failed: ${error.message}`);
    throw error;
  } finally {
    options.onProgress?.(1);
    await method.release();
  }
}

/**
 * The engine's config from the configuration the model was created with (POST /v1/models), the dataset's
 * shape, the service's resolved epochs per slice and, for a DP-SGD model, its resolved privacy settings: the mapping of apps/api's toEngineConfig, repeated here
 * so that an auditor does not load the service. hashHyperparameters of the result is checked against the
 * ledger's BATCH_LEARNED entries (with rpcUrl).
 */
function toEngineConfig(
  body: ModelBody,
  numFeatures: number,
  numClasses: number,
  epochsPerSlice: unknown,
  privacy: unknown,
  certified: unknown,
): TrainingConfigInput {
  // A certified model: its resolved settings (normalizeConfig checks them; the hyperparameter hash covers them).
  if (body.method === 'certified')
    return { method: 'certified', model: 'logistic-regression', numFeatures, numClasses, seed: body.seed as string | number, certified: certified as TrainingConfigInput['certified'] };
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
  // A DP-SGD model's resolved settings (normalizeConfig checks them; the hyperparameter hash covers them).
  if (privacy !== undefined && privacy !== null) config.privacy = privacy as TrainingConfigInput['privacy'];
  return resolveStoredSchedule(config);
}

/** The model's evaluation.holdoutFraction (POST /v1/models), 0 when it has none. */
function holdoutFractionOf(body: ModelBody): number {
  const evaluation = body.evaluation as { holdoutFraction?: unknown } | null | undefined;
  if (evaluation === undefined || evaluation === null || evaluation.holdoutFraction === undefined) return 0;
  const fraction = evaluation.holdoutFraction;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= MAX_HOLDOUT_FRACTION))
    throw new VerifierError('REPLAY_FAILED', `the model's evaluation.holdoutFraction is not a number in [0, ${MAX_HOLDOUT_FRACTION}]`);
  return fraction;
}

/** One entry, re-hashed; its parsed event. */
async function readEvent(log: LogClient, index: number): Promise<LedgerEvent> {
  const [entry] = await log.getEntries(index, 1);
  if (!entry || entry.index !== index) throw new VerifierError('BAD_ENTRY', `entry ${index} is missing: the service did not return it`, { index });
  const rehashed = rehashEntry(entry);
  if (rehashed.failure || !rehashed.event) throw new VerifierError('BAD_ENTRY', `BAD_ENTRY: ${rehashed.failure?.message}`, { index });
  return rehashed.event;
}
