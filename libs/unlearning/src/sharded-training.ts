import canonicalize from 'canonicalize';
import { LayerSizes, Weights, deserializeWeights, initializeWeights, serializeWeights } from './architecture';
import { isAppendedSlice, orderEpoch, padPlan, Plan, planShards, rememberPlan, ShardPlan } from './assignment';
import { computeBatchRoot } from './batch-root';
import { CheckpointStore } from './checkpoint-store';
import { epochsOfSlices, layerSizesOf, TrainingConfig } from './config';
import { UnlearningError } from './errors';
import { BatchLearnedEvent, CheckpointSavedEvent, EngineEvent, JsonValue, LedgerSink, ModelPublishedEvent } from './events';
import { sha256Hex } from './hash';
import { EnsembleEvaluator, EnsembleMember } from './ensemble-evaluator';
import { buildInferenceGraph } from './inference-graph';
import { maskOf } from './feature-mask';
import { LruMap } from './lru';
import { buildManifest } from './manifest';
import { ShardRecord, SliceRecord, TrainedModel } from './model';
import { PhaseClock } from './phase-clock';
import { ProgressCallback, ProgressPhase, ProgressTracker } from './progress';
import { RuntimeOptions } from './runtime';
import { Sample } from './samples';
import { StepRunner } from './trainer';
import { describeRuntimeEnvelope, detectRuntimeEnvelope, RuntimeEnvelope } from './runtime-envelope';
import { DpStepRunner, dpGraphRows } from './privacy/dp-trainer';
import { privacyGuarantee, PrivacySettings } from './privacy/privacy-config';
import { samplePoissonBatches } from './privacy/poisson-sampling';
import { checkShardSamples, ShardDispatcher, ShardResult, ShardTask, withTaskBatches } from './shard-task';
import { UNLEARNING_CODE_VERSION } from './version';

/** What every method needs from outside: checkpoint storage, the ledger, progress reports, threading, a log. */
export interface EngineDependencies {
  store: CheckpointStore;
  ledger?: LedgerSink;
  onProgress?: ProgressCallback;
  /** Threads of the sessions that evaluate published models (training threads are in the config). */
  runtime?: RuntimeOptions;
  /**
   * The runtime envelope this process trains under (default: detectRuntimeEnvelope()). Part of every
   * checkpoint address and of MODEL_PUBLISHED; tests give another to play a worker on another machine.
   */
  envelope?: RuntimeEnvelope;
  /** Where the engine says what a caller should know (a shard retrained from scratch); default: stderr. */
  log?: (message: string) => void;
  /**
   * Trains the shards of a version elsewhere, one task per shard on other workers (shard-task.ts); without it,
   * or for a version whose checkpoints go to another store than the dispatcher's (a reference retrain, shadow
   * models), they train here, one after another. Either way the published bytes are the same.
   */
  dispatcher?: ShardDispatcher;
  /**
   * Told the ONNX file of a version a method publishes (train, relearn, forget; never a reference retrain or a
   * shadow model) as soon as it is built, before its evaluation, the wait for its checkpoint writes and the
   * ledger append: a caller that stores the file can start writing it then, beside that work, instead of after
   * it. The methods pass it to buildVersion (BuildVersionInput.onExported) for the versions they publish.
   */
  onExported?: ExportedCallback;
}

/** See EngineDependencies.onExported. */
export type ExportedCallback = (file: { modelId: string; version: number; onnx: Uint8Array; onnxSha256: string }) => void;

/** What training some shards of a version needs (a shard task's worker has exactly this, for its one shard). */
export interface ShardTrainingInput {
  modelId: string;
  version: number;
  config: TrainingConfig;
  hyperparamsHash: string;
  samples: readonly Sample[];
  /** First slice to (re)train per shard. Shards not listed are taken unchanged from `previous`. */
  fromSlices: ReadonlyMap<number, number>;
  /** The version this one continues (of a shard task: only its shard's record). */
  previous?: Pick<TrainedModel, 'shards'>;
  /** The shard plan of `samples` when the caller has it (planShards of them otherwise). */
  plan?: Plan;
  phase: ProgressPhase;
}

export interface BuildVersionInput extends ShardTrainingInput {
  previous?: TrainedModel;
  /**
   * Slices per shard the version keeps at least, when `previous` cannot say (an approximate version has no shard
   * records; its manifest keeps the count): a learn batch a forget emptied keeps its slice, retrained empty.
   */
  keepSlices?: number;
  /** Computes the published metrics of the finished ensemble (its ONNX file and its members). */
  evaluate: (published: PublishedEnsemble) => Promise<{ [key: string]: JsonValue }>;
  /** Told the version's ONNX file once it is built (EngineDependencies.onExported): only for a version that is published. */
  onExported?: ExportedCallback;
  /**
   * Called with each shard model a shard task trained, once its weights are read (while other tasks still run),
   * so that `evaluate` finds what it can compute per member ready (the evaluator's cached outputs). A failure is
   * dropped: `evaluate` computes it again.
   */
  prepareMember?: (member: EnsembleMember) => Promise<unknown>;
  /** Where the phases' wall-clock time is charged (plan, tasks: waiting for shard tasks, train, members, export, evaluateAfter, checkpointWrites, manifest). */
  clock?: PhaseClock;
}

export interface PublishedEnsemble {
  onnx: Uint8Array;
  onnxSha256: string;
  /** The ensemble's members in graph order. */
  members: EnsembleMember[];
}

export interface BuiltVersion {
  model: TrainedModel;
  /** First slice retrained per shard: the one asked for, or 0 where the checkpoint before it was made under another envelope. */
  fromSlices: Map<number, number>;
  /** BATCH_LEARNED and CHECKPOINT_SAVED for every retrained slice, then MODEL_PUBLISHED. */
  events: EngineEvent[];
  steps: number;
  /** Wall-clock seconds spent training, and building + evaluating the published file. */
  trainSeconds: number;
  publishSeconds: number;
}

/** The code version and the runtime envelope as checkpoint addresses hash them (RFC 8785 JSON of the envelope). */
export function addressedRuntime(envelope: RuntimeEnvelope): string {
  return `lethe-unlearning ${UNLEARNING_CODE_VERSION}; ${canonicalize(envelope) as string}`;
}

/** The address of a shard's seeded initial weights under a runtime envelope (the parent of slice 0, never stored). */
export function genesisCheckpoint(envelope: RuntimeEnvelope, hyperparamsHash: string, shard: number): string {
  return sha256Hex('lethe-genesis|', addressedRuntime(envelope), '|', hyperparamsHash, `|${shard}`);
}

/**
 * A checkpoint's address: the hyperparameters, its parent and the ordered commitments of the slice it learned
 * (so, by the parent chain, every ordered batch it has seen), plus the code version and the runtime envelope
 * that computed it. A process under another envelope computes other addresses for the same training, so it
 * never finds, nor resumes from, weights whose bits another CPU kernel family or onnxruntime made.
 */
export function addressCheckpoint(
  envelope: RuntimeEnvelope,
  hyperparamsHash: string,
  shard: number,
  slice: number,
  parent: string,
  batchRoot: string,
): string {
  return sha256Hex('lethe-checkpoint|', addressedRuntime(envelope), '|', hyperparamsHash, `|${shard}|${slice}|`, parent, '|', batchRoot);
}

/**
 * What a method keeps from one call to the next: step sessions, the final weights of recent shard models
 * (by checkpoint address; their bytes were hashed when trained or loaded), each sample array's shard plan,
 * and the evaluator's per-member caches. Forgetting then reads and evaluates only what changed.
 */
export class EngineContext {
  readonly evaluator: EnsembleEvaluator;
  readonly memberWeights = new LruMap<string, Weights>(64);
  /** Member weights being read from the store (by checkpoint address): a second reader waits for the first read. */
  private readonly loadingMembers = new Map<string, Promise<Weights>>();
  private readonly plans = new WeakMap<readonly Sample[], { key: string; plan: Plan }>();

  /** `pool`: another context's step sessions, to train the same networks without making sessions again. */
  constructor(runtime?: RuntimeOptions, readonly pool = new RunnerPool()) {
    this.evaluator = new EnsembleEvaluator(runtime);
  }

  /** The plan of `samples` if this context made or was given it for the same seed, S and R. */
  planOf(samples: readonly Sample[], config: TrainingConfig): Plan | undefined {
    const entry = this.plans.get(samples);
    return entry?.key === planKey(config) ? entry.plan : undefined;
  }

  /** A shard model's final weights: from memory when recent, else from the store (hash checked). */
  async loadMember(store: CheckpointStore, layers: LayerSizes, last: SliceRecord): Promise<Weights> {
    const known = this.memberWeights.get(last.checkpoint);
    if (known) {
      this.memberWeights.set(last.checkpoint, known); // most recently used
      return known;
    }
    let loading = this.loadingMembers.get(last.checkpoint);
    if (!loading) {
      loading = loadCheckpoint(store, layers, last)
        .then((weights) => {
          this.memberWeights.set(last.checkpoint, weights);
          return weights;
        })
        .finally(() => this.loadingMembers.delete(last.checkpoint));
      this.loadingMembers.set(last.checkpoint, loading);
    }
    return loading;
  }

  /**
   * Starts reading a shard model's final weights (a shard task's, as soon as it is done) so that publishing finds
   * them in memory. A read that fails is dropped (the promise returned rejects, handled or not): publishing reads
   * again, and fails there with the store's error.
   */
  prefetchMember(store: CheckpointStore, layers: LayerSizes, last: SliceRecord): Promise<Weights> {
    const loading = this.loadMember(store, layers, last);
    loading.catch(() => undefined);
    return loading;
  }

  rememberPlan(samples: readonly Sample[], config: TrainingConfig, plan: Plan): void {
    this.plans.set(samples, { key: planKey(config), plan });
    rememberPlan(samples, config.seed, config.shards, config.slices, plan); // for planShards (listBatchMembers, ...)
  }

  async release(): Promise<void> {
    await this.pool.release();
    await this.evaluator.release();
  }
}

function planKey(config: TrainingConfig): string {
  return `${config.shards}|${config.slices}|${config.seed}`;
}

/** Caches one step runner per network shape and step constants (SGD's, or DP-SGD's). */
export class RunnerPool {
  private readonly runners = new Map<string, Promise<StepRunner | DpStepRunner>>();

  get(config: TrainingConfig): Promise<StepRunner> {
    const layers = layerSizesOf(config);
    const mask = config.maskedFeatures ?? [];
    const key = `${layers.join('-')}@${config.learningRate}/${config.weightDecay}/${config.batchSize}x${config.threads}${mask.length > 0 ? `|mask:${mask.join(',')}` : ''}`;
    return this.cached(key, () =>
      StepRunner.create(layers, config.learningRate, config.batchSize, { intraOpNumThreads: config.threads }, config.weightDecay, mask),
    ) as Promise<StepRunner>;
  }

  /** The DP-SGD runner of a config with privacy settings: dpGraphRows(batchSize) rows, its clip norm and noise. */
  getDp(config: TrainingConfig, privacy: PrivacySettings): Promise<DpStepRunner> {
    const layers = layerSizesOf(config);
    const constants = {
      learningRate: config.learningRate,
      weightDecay: config.weightDecay,
      clipNorm: privacy.clipNorm,
      noiseMultiplier: privacy.noiseMultiplier,
      denominator: config.batchSize,
    };
    const rows = dpGraphRows(config.batchSize);
    const mask = config.maskedFeatures ?? [];
    const key = `dp ${layers.join('-')}@${JSON.stringify(constants)}/${rows}x${config.threads}${mask.length > 0 ? `|mask:${mask.join(',')}` : ''}`;
    return this.cached(key, () => DpStepRunner.create(layers, rows, constants, { intraOpNumThreads: config.threads }, mask)) as Promise<DpStepRunner>;
  }

  private cached(key: string, create: () => Promise<StepRunner | DpStepRunner>): Promise<StepRunner | DpStepRunner> {
    let runner = this.runners.get(key);
    if (!runner) {
      runner = create();
      this.runners.set(key, runner);
      runner.catch(() => this.runners.delete(key));
    }
    return runner;
  }

  async release(): Promise<void> {
    const all = [...this.runners.values()];
    this.runners.clear();
    for (const runner of all) await (await runner).release();
  }
}

/**
 * Trains (or retrains) the listed shards slice by slice, reuses the others' checkpoints, and publishes the
 * ensemble. Slice r trains on slices 0..r for its epochs (epochsOfSlices), in mini-batches cut from the seeded order
 * of the surviving samples; each slice ends in a checkpoint stored under its content address.
 */
export async function buildVersion(deps: EngineDependencies, context: EngineContext, asked: BuildVersionInput): Promise<BuiltVersion> {
  const clock = asked.clock ?? new PhaseClock();
  const started = process.hrtime.bigint();
  const envelope = deps.envelope ?? detectRuntimeEnvelope();
  const log = deps.log ?? logToStderr;
  // Every slice the version before had stays (empty when a forget emptied a learn batch), as its shards do.
  const plan = padPlan(
    asked.plan ?? context.planOf(asked.samples, asked.config) ?? planShards(asked.samples, asked.config.seed, asked.config.shards, asked.config.slices),
    Math.max(asked.keepSlices ?? 0, ...(asked.previous?.shards ?? []).map((s) => s?.slices.length ?? 0)),
  );
  const aligned = { ...asked, fromSlices: alignToPlan(asked, plan) };
  const input = { ...aligned, fromSlices: withoutForeignLineages(aligned, envelope, log) };
  context.rememberPlan(input.samples, input.config, plan);
  checkReusedSlices(input, plan);
  // Shards trained elsewhere (one task each), when a dispatcher shares this version's checkpoint store and
  // there are two or more to train (a single one trains here: nothing to spread, and no round trip); a shard
  // a worker trained under another runtime envelope is trained here again (below).
  const dispatcher = deps.dispatcher !== undefined && deps.dispatcher.store === deps.store && input.fromSlices.size > 1 ? deps.dispatcher : undefined;
  clock.lap('plan');
  const dispatched = dispatcher ? await dispatchShards(dispatcher, deps, context, input, plan, envelope, log, asked.prepareMember) : new Map<number, ShardResult>();
  clock.lap('tasks');
  const fromSlices = new Map([...input.fromSlices].filter(([shard]) => !dispatched.has(shard)));
  const training = await prepareTraining(deps, context, { ...input, plan, fromSlices });
  clock.lap('plan');
  // Checkpoint writes run while training goes on; all of them finish before the version is returned.
  const writes: Promise<void>[] = [];
  const events: EngineEvent[] = [];
  const finalWeights = new Map<number, Weights>();
  const shardRecords: ShardRecord[] = [];
  const retrained = new Map(input.fromSlices);
  for (const shardPlan of plan.shards) {
    const fromSlice = fromSlices.get(shardPlan.shard);
    const remote = dispatched.get(shardPlan.shard);
    if (remote !== undefined) {
      shardRecords.push(remote.record);
      events.push(...remote.events);
      retrained.set(shardPlan.shard, remote.fromSlice);
      continue;
    }
    if (fromSlice === undefined) {
      shardRecords.push((input.previous as TrainedModel).shards[shardPlan.shard]);
      continue;
    }
    const output: TrainingOutput = { events: [], writes };
    const { record, weights } = await trainShard(deps, { ...input, fromSlices }, envelope, training, shardPlan, fromSlice, output);
    events.push(...output.events);
    finalWeights.set(shardPlan.shard, weights);
    context.memberWeights.set(record.slices[record.slices.length - 1].checkpoint, weights);
    shardRecords.push(record);
  }
  clock.lap('train');

  training.progress.setPhase('publish');
  const trained = process.hrtime.bigint();
  const model = await publishVersion(deps, context, input, { shardRecords, finalWeights, writes, clock });
  events.push(publishedEvent(model, envelope));
  training.progress.finish();
  clock.lap('manifest');
  return {
    model,
    fromSlices: retrained,
    events,
    steps: training.totalSteps + [...dispatched.values()].reduce((n, r) => n + r.steps, 0),
    trainSeconds: Number(trained - started) / 1e9,
    publishSeconds: Number(process.hrtime.bigint() - trained) / 1e9,
  };
}

/**
 * The first slice each shard trains once the plan's slice count is known: a learn batch appends a slice to
 * every shard (a shard that holds none of its samples trains it empty, from its last checkpoint: no step, but
 * its lineage has the slice, as a training from scratch of the same plan has). A shard never resumes past the
 * slices the version before it recorded.
 */
function alignToPlan(input: ShardTrainingInput, plan: Plan): Map<number, number> {
  const fromSlices = new Map(input.fromSlices);
  for (const shardPlan of plan.shards) {
    const before = input.previous?.shards[shardPlan.shard]?.slices.length;
    if (before === undefined) continue;
    const limit = Math.min(before, shardPlan.slices.length);
    const asked = fromSlices.get(shardPlan.shard);
    if (asked === undefined ? before !== shardPlan.slices.length : asked > limit) fromSlices.set(shardPlan.shard, limit);
  }
  return fromSlices;
}

/**
 * The shards of `input.fromSlices`, one task each, through the dispatcher, and what they gave back, checked:
 * each result must be the shard asked for, with the batch roots and counts this plan gives (the worker
 * trained on the very samples), and a lineage of checkpoints whose addresses this process computes from the
 * genesis on (its envelope, its chain). A result made under another runtime envelope is left out (logged):
 * the caller trains that shard here, so a version never mixes envelopes. Anything else wrong fails the version.
 */
async function dispatchShards(
  dispatcher: ShardDispatcher,
  deps: EngineDependencies,
  context: EngineContext,
  input: ShardTrainingInput,
  plan: Plan,
  envelope: RuntimeEnvelope,
  log: (message: string) => void,
  prepareMember?: (member: EnsembleMember) => Promise<unknown>,
): Promise<Map<number, ShardResult>> {
  const tasks: ShardTask[] = [...input.fromSlices.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([shard, fromSlice]) => ({
      modelId: input.modelId,
      version: input.version,
      config: input.config,
      hyperparamsHash: input.hyperparamsHash,
      shard,
      fromSlice,
      kept: input.previous?.shards[shard]?.slices.slice(0, fromSlice) ?? [],
      commitments: plan.shards[shard].slices.map((slice) => slice.map((i) => input.samples[i].commitment)),
      envelope,
      phase: input.phase,
    }));
  const progress = new ProgressTracker(1, deps.onProgress, input.phase);
  // Each shard's final weights are read as soon as its task is done, while the others still train: publishing
  // then finds them in memory (checked as a whole below; a result refused here is only not read early).
  const layers = layerSizesOf(input.config);
  const prefetch = (i: number, result: ShardResult) => {
    if (!isAccepted(tasks[i], result, envelope, input.hyperparamsHash) || result.record.sampleCount === 0) return;
    const last = lastSlice(result.record);
    const weights = context.prefetchMember(deps.store, layers, last);
    if (prepareMember) weights.then((w) => prepareMember({ weightsSha256: last.weightsSha256, weights: w, ...maskOf(input.config) })).catch(() => undefined);
  };
  const results = await dispatcher.train(tasks, (fraction) => progress.reach(fraction), prefetch);
  const accepted = new Map<number, ShardResult>();
  tasks.forEach((task, i) => {
    const result = results[i];
    checkShardResult(task, result);
    if (!isOwnLineage(envelope, input.hyperparamsHash, task.shard, result.record.slices)) {
      log(
        `model ${input.modelId} version ${input.version}: shard ${task.shard} is trained again here, from slice ${task.fromSlice}: the worker that ` +
          `trained it was under another runtime envelope (${describeRuntimeEnvelope(result.envelope)}), and a version never mixes envelopes ` +
          `(this one: ${describeRuntimeEnvelope(envelope)})`,
      );
      return;
    }
    accepted.set(task.shard, result);
  });
  return accepted;
}

/** Whether a shard task's result passes checkShardResult and is of this envelope's lineage (without throwing). */
function isAccepted(task: ShardTask, result: ShardResult, envelope: RuntimeEnvelope, hyperparamsHash: string): boolean {
  try {
    checkShardResult(task, result);
  } catch {
    return false;
  }
  return isOwnLineage(envelope, hyperparamsHash, task.shard, result.record.slices);
}

/** A shard task's result must be the shard asked for, trained on the samples asked for. */
function checkShardResult(task: ShardTask, result: ShardResult | undefined): void {
  const where = `model ${task.modelId} version ${task.version} shard ${task.shard}`;
  if (!result || result.shard !== task.shard || result.record?.shard !== task.shard || result.record.slices.length !== task.commitments.length) {
    throw new UnlearningError('RUNTIME_ERROR', `${where}: its task gave back another shard or an incomplete record`);
  }
  task.commitments.forEach((members, slice) => {
    const record = result.record.slices[slice];
    const root = computeBatchRoot(members);
    if (record.slice !== slice || record.count !== members.length || record.batchRoot !== root) {
      throw new UnlearningError(
        'RUNTIME_ERROR',
        `${where} slice ${slice}: its task recorded ${record.count} samples under batch root ${record.batchRoot}, the plan has ${members.length} under ${root}`,
      );
    }
  });
}

/** Whether every checkpoint of a shard's slices has the address this envelope computes from the genesis on. */
function isOwnLineage(envelope: RuntimeEnvelope, hyperparamsHash: string, shard: number, slices: readonly SliceRecord[]): boolean {
  return foreignCheckpoint(envelope, hyperparamsHash, shard, slices) === undefined;
}

/** The first of the slices whose checkpoint this envelope would not have addressed so (made under another one). */
function foreignCheckpoint(envelope: RuntimeEnvelope, hyperparamsHash: string, shard: number, slices: readonly SliceRecord[]): SliceRecord | undefined {
  let parent = genesisCheckpoint(envelope, hyperparamsHash, shard);
  return slices.find((record) => {
    const own = addressCheckpoint(envelope, hyperparamsHash, shard, record.slice, parent, record.batchRoot);
    parent = record.checkpoint;
    return own !== record.checkpoint;
  });
}

/**
 * A version never mixes runtime envelopes: bytes made under two could be reproduced by no single replay. So
 * besides resumableFromSlices (the kept prefix of a retrained shard), a shard the version would take unchanged
 * from the previous one while its checkpoints were made under another envelope is retrained from scratch, logged.
 */
function withoutForeignLineages(input: ShardTrainingInput, envelope: RuntimeEnvelope, log: (message: string) => void): Map<number, number> {
  const fromSlices = resumableFromSlices(input, envelope, log);
  for (const record of input.previous?.shards ?? []) {
    if (record === undefined || fromSlices.has(record.shard) || record.sampleCount === 0) continue;
    const foreign = foreignCheckpoint(envelope, input.hyperparamsHash, record.shard, record.slices);
    if (!foreign) continue;
    fromSlices.set(record.shard, 0);
    log(
      `model ${input.modelId} version ${input.version}: shard ${record.shard} retrains from slice 0 although it holds none of the samples: its ` +
        `checkpoint after slice ${foreign.slice} (${foreign.checkpoint}) was not made under this runtime envelope (${describeRuntimeEnvelope(envelope)}), ` +
        'and a version never mixes envelopes',
    );
  }
  return fromSlices;
}

/**
 * The first slice each listed shard retrains from: the one asked for when every checkpoint before it was made
 * under this runtime envelope (the addresses recomputed here from the genesis on are the recorded ones), else 0,
 * logged: resuming from weights computed under another envelope (another CPU kernel family, onnxruntime or Node)
 * would publish bytes that no single replay reproduces. Checkpoints made before envelopes were part of the
 * address never match, so such a model's first forget retrains its affected shards from scratch (same bytes).
 */
function resumableFromSlices(input: ShardTrainingInput, envelope: RuntimeEnvelope, log: (message: string) => void): Map<number, number> {
  const resumable = new Map(input.fromSlices);
  for (const [shard, fromSlice] of input.fromSlices) {
    const kept = input.previous?.shards[shard]?.slices.slice(0, fromSlice) ?? [];
    const foreign = foreignCheckpoint(envelope, input.hyperparamsHash, shard, kept);
    if (!foreign) continue;
    resumable.set(shard, 0);
    log(
      `model ${input.modelId} version ${input.version}: shard ${shard} retrains from slice 0, not ${fromSlice}: its checkpoint after slice ` +
        `${foreign.slice} (${foreign.checkpoint}) was not made under this runtime envelope (${describeRuntimeEnvelope(envelope)})`,
    );
  }
  return resumable;
}

/**
 * What a worker runs for a shard task: the shard trained from the task's slice on (from 0 when the kept
 * checkpoints were not made under this process's envelope, logged), on the task's samples only (a shard's
 * training reads nothing of another's), its checkpoints stored before it returns.
 */
export async function trainShardTask(
  deps: EngineDependencies,
  context: EngineContext,
  task: ShardTask,
  given: readonly Sample[],
  clock = new PhaseClock(),
): Promise<ShardResult> {
  const samples = withTaskBatches(task, given);
  const plan = checkShardSamples(task, samples);
  clock.lap('check');
  const envelope = deps.envelope ?? detectRuntimeEnvelope();
  const previous = { shards: [] as ShardRecord[] };
  previous.shards[task.shard] = { shard: task.shard, sampleCount: samples.length, slices: task.kept };
  const asked: ShardTrainingInput = {
    modelId: task.modelId,
    version: task.version,
    config: task.config,
    hyperparamsHash: task.hyperparamsHash,
    samples,
    fromSlices: new Map([[task.shard, task.fromSlice]]),
    previous,
    plan,
    phase: task.phase,
  };
  const input = { ...asked, fromSlices: resumableFromSlices(asked, envelope, deps.log ?? logToStderr) };
  const fromSlice = input.fromSlices.get(task.shard)!;
  const training = await prepareTraining(deps, context, input);
  clock.lap('prepare');
  const shardPlan = training.plan.shards[task.shard];
  // The kept slices must hold what they held (samples are only removed, so an equal count is an equal slice).
  for (let slice = 0; slice < fromSlice; slice++) {
    if (shardPlan.slices[slice].length !== task.kept[slice]?.count)
      throw new UnlearningError('RUNTIME_ERROR', `shard ${task.shard} slice ${slice} changed but was not scheduled for retraining`);
  }
  const output: TrainingOutput = { events: [], writes: [] };
  const { record } = await trainShard(deps, input, envelope, training, shardPlan, fromSlice, output);
  clock.lap('train');
  await Promise.all(output.writes);
  clock.lap('checkpointWrites');
  training.progress.finish();
  const timings = { seconds: { ...clock.seconds }, cpuSeconds: { ...clock.cpuSeconds } };
  return { shard: task.shard, fromSlice, record, events: output.events, envelope, steps: training.totalSteps, timings };
}

/** Where the engine says what a caller should know when its dependencies give no `log`. */
export function logToStderr(message: string): void {
  process.stderr.write(`lethe-unlearning: ${message}\n`);
}

/** What every retrained shard shares: the plan, the samples it indexes, the step runner, progress. */
interface PreparedTraining {
  layers: LayerSizes;
  plan: Plan;
  /** Batch roots per shard and slice, for the shards that train (empty for the others). */
  batchRoots: string[][];
  /** The version's samples: steps read their batches' rows straight from them (plan indexes). */
  samples: readonly Sample[];
  totalSteps: number;
  progress: ProgressTracker;
  runner: StepRunner | DpStepRunner;
}

/** Events and checkpoint writes of the slices trained so far. */
interface TrainingOutput {
  events: EngineEvent[];
  writes: Promise<void>[];
}

/** What the shards of `input.fromSlices` train with: the plan (given, or made), their batch roots and packed rows, a step runner. */
async function prepareTraining(deps: EngineDependencies, context: EngineContext, input: ShardTrainingInput): Promise<PreparedTraining> {
  const { config, samples, previous } = input;
  context.memberWeights.reserve(3 * config.shards);
  const plan = input.plan ?? planShards(samples, config.seed, config.shards, config.slices);
  // Batch roots of the shards that train. A slice that kept all its samples keeps its root (samples are only
  // ever removed, so an unchanged count is an unchanged slice); untouched shards keep theirs whole.
  const batchRoots = plan.shards.map((shard) =>
    input.fromSlices.has(shard.shard)
      ? shard.slices.map((slice, r) => {
          const before = previous?.shards[shard.shard]?.slices[r];
          return before?.count === slice.length ? before.batchRoot : computeBatchRoot(slice.map((i) => samples[i].commitment));
        })
      : [],
  );
  const totalSteps = countSteps(plan, input.fromSlices, config);
  const progress = new ProgressTracker(totalSteps, deps.onProgress, input.phase);
  const runner = config.privacy ? await context.pool.getDp(config, config.privacy) : await context.pool.get(config);
  return { layers: layerSizesOf(config), plan, batchRoots, samples, totalSteps, progress, runner };
}

/**
 * Trains one shard from `fromSlice` on, starting from the checkpoint before it (or the seeded initial
 * weights): each slice r trains on slices 0..r, then its checkpoint is stored (in the background) and its
 * BATCH_LEARNED and CHECKPOINT_SAVED events are added to `output`.
 */
async function trainShard(
  deps: EngineDependencies,
  input: ShardTrainingInput,
  envelope: RuntimeEnvelope,
  training: PreparedTraining,
  shardPlan: ShardPlan,
  fromSlice: number,
  output: TrainingOutput,
): Promise<{ record: ShardRecord; weights: Weights }> {
  const { config, hyperparamsHash, previous } = input;
  const { layers, plan, samples, runner, progress } = training;
  const epochs = epochsOfSlices(config, shardPlan.slices.length);
  const shard = shardPlan.shard;
  const slices: SliceRecord[] = previous ? previous.shards[shard].slices.slice(0, fromSlice) : [];
  let parent = fromSlice === 0 ? genesisCheckpoint(envelope, hyperparamsHash, shard) : slices[fromSlice - 1].checkpoint;
  let weights =
    fromSlice === 0 ? initializeWeights(layers, `init|${hyperparamsHash}|${shard}`) : await loadCheckpoint(deps.store, layers, slices[fromSlice - 1]);
  const seen: number[] = shardPlan.slices.slice(0, Math.min(fromSlice, config.slices)).flat();
  for (let slice = fromSlice; slice < shardPlan.slices.length; slice++) {
    // Slice r < R trains on slices 0..r (SISA); an appended slice (a learn batch) on its own samples only,
    // from the checkpoint before it, so that a learn costs what its new samples cost.
    const appended = isAppendedSlice(slice, config.slices);
    if (!appended) for (const index of shardPlan.slices[slice]) seen.push(index); // no spread: a slice can outgrow the stack
    const members = appended ? shardPlan.slices[slice] : seen;
    if (runner instanceof DpStepRunner) {
      weights = await trainSliceDp(config, config.privacy as PrivacySettings, runner, training, { shard, slice, epochs: epochs[slice], seen: members, weights });
    } else {
      for (let epoch = 0; epoch < epochs[slice] && members.length > 0; epoch++) {
        const order = orderEpoch(config.seed, shard, slice, epoch, members, plan.keys);
        const batches: Int32Array[] = [];
        for (let start = 0; start < order.length; start += config.batchSize) batches.push(order.subarray(start, start + config.batchSize));
        weights = await runner.runSteps(weights, samples, batches, () => progress.advance());
      }
    }
    const batchRoot = training.batchRoots[shard][slice];
    const checkpoint = addressCheckpoint(envelope, hyperparamsHash, shard, slice, parent, batchRoot);
    const bytes = serializeWeights(weights);
    const weightsSha256 = sha256Hex(bytes);
    const write = deps.store.put(checkpoint, bytes);
    write.catch(() => undefined); // awaited by publishVersion; this only keeps an early failure from being unhandled
    output.writes.push(write);
    const count = shardPlan.slices[slice].length;
    output.events.push(batchLearned(input, shard, slice, batchRoot, count, slice === 0 ? null : parent, checkpoint, appended ? slice - config.slices + 1 : undefined));
    output.events.push(checkpointSaved(input, shard, slice, checkpoint, bytes.length, weightsSha256));
    slices.push({ slice, count, batchRoot, checkpoint, weightsSha256 });
    parent = checkpoint;
  }
  const sampleCount = shardPlan.slices.reduce((n, s) => n + s.length, 0);
  return { record: { shard, sampleCount, slices }, weights };
}

/**
 * DP-SGD on slice r of a shard: stepsPerEpoch * epochs steps over the samples of slices 0..r, each sample
 * joining each step with probability q (samplePoissonBatches; its own stream under the model's noise seed,
 * the shard and the slice), each step's noise from SeededRandom(`dp-noise|<noiseSeed>|shard|slice|step`).
 * Nothing here depends on another sample's presence, so a shard retrained without a sample takes the very
 * steps (and noise) a training from scratch without it takes. A step whose batch is empty still adds noise.
 */
async function trainSliceDp(
  config: TrainingConfig,
  privacy: PrivacySettings,
  runner: DpStepRunner,
  training: PreparedTraining,
  at: { shard: number; slice: number; epochs: number; seen: readonly number[]; weights: Weights },
): Promise<Weights> {
  const { samples, plan, progress } = training;
  const steps = privacy.stepsPerEpoch * at.epochs;
  const where = `${privacy.noiseSeed}|${at.shard}|${at.slice}`;
  const batches = samplePoissonBatches(at.seen, plan.keys, steps, privacy.sampleRate, `dp-sample|${where}`);
  return runner.runSteps(at.weights, samples, batches, (step) => `dp-noise|${where}|${step}`, () => progress.advance());
}

/**
 * The published version: the ONNX ensemble of every non-empty shard's final weights (from this call, from
 * memory, or from the store), its metrics, and its manifest, once every checkpoint write has finished.
 */
async function publishVersion(
  deps: EngineDependencies,
  context: EngineContext,
  input: BuildVersionInput,
  trained: { shardRecords: ShardRecord[]; finalWeights: Map<number, Weights>; writes: Promise<void>[]; clock: PhaseClock },
): Promise<TrainedModel> {
  const { config, hyperparamsHash } = input;
  const { shardRecords, clock } = trained;
  const layers = layerSizesOf(config);
  const appendedBatches = (shardRecords[0]?.slices.length ?? config.slices) - config.slices;
  const members = shardRecords.filter((s) => s.sampleCount > 0).map((s) => s.shard);
  const memberModels: EnsembleMember[] = [];
  for (const shard of members) {
    const last = lastSlice(shardRecords[shard]);
    const weights = trained.finalWeights.get(shard) ?? (await context.loadMember(deps.store, layers, last));
    memberModels.push({ weightsSha256: last.weightsSha256, weights, ...maskOf(config) });
  }
  clock.lap('members');
  const onnx = buildInferenceGraph(
    layers,
    memberModels.map((m) => m.weights),
    config.aggregation,
    'none',
    config.maskedFeatures,
  );
  const onnxSha256 = sha256Hex(onnx);
  input.onExported?.({ modelId: input.modelId, version: input.version, onnx, onnxSha256 });
  clock.lap('export');
  const metrics = await input.evaluate({ onnx, onnxSha256, members: memberModels });
  clock.lap('evaluateAfter');
  await Promise.all(trained.writes);
  clock.lap('checkpointWrites');
  const { manifest, manifestHash } = buildManifest({
    modelId: input.modelId,
    version: input.version,
    config,
    hyperparamsHash,
    shards: shardRecords,
    members,
    onnxSha256,
    extra: appendedBatches > 0 ? { appended: { batches: appendedBatches, rule: APPENDED_RULE } } : undefined,
  });
  return {
    modelId: input.modelId,
    version: input.version,
    config,
    hyperparamsHash,
    samples: input.samples,
    shards: shardRecords,
    members,
    onnx,
    onnxSha256,
    manifest,
    manifestHash,
    metrics,
  };
}

/**
 * The kept prefix of a retrained shard, and a shard reused whole, must still hold as many samples per slice
 * as before: samples are only ever removed, so an unchanged count means an unchanged slice (same members,
 * same order, same batch root), and a changed one must be retrained.
 */
function checkReusedSlices(input: ShardTrainingInput, plan: Plan): void {
  for (const shardPlan of plan.shards) {
    const fromSlice = input.fromSlices.get(shardPlan.shard);
    if (fromSlice === 0) continue;
    const before = input.previous?.shards[shardPlan.shard];
    if (!before) throw new UnlearningError('RUNTIME_ERROR', `shard ${shardPlan.shard} has no previous record to reuse`);
    const kept = fromSlice ?? shardPlan.slices.length;
    for (let slice = 0; slice < kept; slice++) {
      if (shardPlan.slices[slice].length !== before.slices[slice]?.count) {
        throw new UnlearningError('RUNTIME_ERROR', `shard ${shardPlan.shard} slice ${slice} changed but was not scheduled for retraining`);
      }
    }
  }
}

/** The optimizer steps training `fromSlices` on takes (trainShard's loops, counted). */
export function countSteps(plan: Plan, fromSlices: ReadonlyMap<number, number>, config: TrainingConfig): number {
  let steps = 0;
  for (const shardPlan of plan.shards) {
    const fromSlice = fromSlices.get(shardPlan.shard);
    if (fromSlice === undefined) continue;
    const epochs = epochsOfSlices(config, shardPlan.slices.length);
    let seen = 0;
    shardPlan.slices.forEach((slice, r) => {
      const appended = isAppendedSlice(r, config.slices);
      if (!appended) seen += slice.length;
      const members = appended ? slice.length : seen;
      if (r < fromSlice) return;
      steps += epochs[r] * (config.privacy ? config.privacy.stepsPerEpoch : Math.ceil(members / config.batchSize));
    });
  }
  return steps;
}

/** A shard's last slice (its final weights): the R-th, or its last appended one. */
export function lastSlice(record: ShardRecord): SliceRecord {
  return record.slices[record.slices.length - 1];
}

/** How a manifest of a model with appended slices says where learn batches go. */
const APPENDED_RULE = 'slice R - 1 + b of every shard holds the samples learn batch b appended (rank order), trained on them alone for the last of the R slices\' epochs, from the checkpoint before it';

/** Loads a slice's checkpoint and checks its bytes against the SHA-256 recorded when it was saved. */
async function loadCheckpoint(store: CheckpointStore, layers: LayerSizes, record: SliceRecord): Promise<Weights> {
  const bytes = await store.get(record.checkpoint);
  if (!bytes) throw new UnlearningError('CHECKPOINT_MISSING', `checkpoint ${record.checkpoint} is not in the store`);
  const actual = sha256Hex(bytes);
  if (actual !== record.weightsSha256) {
    throw new UnlearningError(
      'CHECKPOINT_CORRUPT',
      `checkpoint ${record.checkpoint} has SHA-256 ${actual}, expected ${record.weightsSha256}`,
      {
        expectedSha256: record.weightsSha256,
        actualSha256: actual,
      },
    );
  }
  return deserializeWeights(layers, bytes);
}

function publishedEvent(model: TrainedModel, runtime: RuntimeEnvelope): ModelPublishedEvent {
  const privacy = model.config.privacy ? { privacy: { ...privacyGuarantee(model.config.privacy, epochsOfSlices(model.config)) } } : {};
  return {
    type: 'MODEL_PUBLISHED',
    version: 1,
    modelId: model.modelId,
    modelVersion: model.version,
    onnxSha256: model.onnxSha256,
    manifestHash: model.manifestHash,
    metrics: model.metrics,
    runtime,
    ...privacy,
  };
}

function batchLearned(
  input: ShardTrainingInput,
  shard: number,
  slice: number,
  batchRoot: string,
  count: number,
  parentCheckpoint: string | null,
  checkpoint: string,
  learnBatch: number | undefined,
): BatchLearnedEvent {
  return {
    type: 'BATCH_LEARNED',
    version: 1,
    modelId: input.modelId,
    modelVersion: input.version,
    shard,
    slice,
    batchRoot,
    count,
    parentCheckpoint,
    checkpoint,
    hyperparamsHash: input.hyperparamsHash,
    ...(learnBatch === undefined ? {} : { learnBatch }),
  };
}

function checkpointSaved(
  input: ShardTrainingInput,
  shard: number,
  slice: number,
  checkpoint: string,
  bytes: number,
  weightsSha256: string,
): CheckpointSavedEvent {
  return {
    type: 'CHECKPOINT_SAVED',
    version: 1,
    modelId: input.modelId,
    shard,
    slice,
    checkpoint,
    bytes,
    weightsSha256,
  };
}
