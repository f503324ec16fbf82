import { planShards, removeFromPlan } from './assignment';
import { BiasCandidate } from './bias-scan';
import { CheckpointStore } from './checkpoint-store';
import { layerSizesOf } from './config';
import { EnsembleMember } from './ensemble-evaluator';
import { UnlearningError } from './errors';
import { computeFairness, FairnessFigures } from './fairness';
import { maskOf } from './feature-mask';
import { TrainedModel } from './model';
import { LabeledExample, Sample } from './samples';
import { buildVersion, EngineContext, EngineDependencies, lastSlice } from './sharded-training';

/** The gaps a leave-one-slice-out scan can rank by: the fairness figures of the ensemble's predictions on the holdout. */
export const BIAS_METRICS = ['equalizedOddsDifference', 'demographicParityDifference', 'accuracyGap'] as const;
export type BiasMetric = (typeof BIAS_METRICS)[number];

/**
 * The most retrains (non-empty slices over all shards) one scan runs: each is a shard retrained from that slice
 * on, so a scan costs up to S x R shard trainings from the middle (about R/2 trainings of the whole model).
 */
export const MAX_SCANNED_SLICES = 64;

/** What one slice did to the gap: the ensemble's gap on the holdout with its shard retrained without it. */
export interface SliceInfluence {
  shard: number;
  slice: number;
  count: number;
  gapWithout: number;
  /** gapBefore - gapWithout: how much forgetting the slice shrinks the gap (negative: it widens it). */
  influence: number;
}

export interface SliceScanResult {
  method: 'leave-one-slice-out';
  metric: BiasMetric;
  /** The version's gap on the holdout (the published ensemble, bit for bit). */
  gapBefore: number;
  fairness: FairnessFigures;
  /** Every non-empty slice, in shard then slice order. */
  slices: SliceInfluence[];
  /** Samples by their slice's influence (larger first); the samples of one slice tie and are ordered by commitment. */
  candidates: (BiasCandidate & { commitment: string })[];
}

export interface SliceScanOptions {
  metric?: BiasMetric;
  /** How many candidates to return (default 100). */
  limit?: number;
  /** Called after each retrain with the done fraction. */
  onProgress?: (fraction: number) => void;
}

/** The non-empty slices a scan of `model` retrains (what MAX_SCANNED_SLICES caps). */
export function countScannedSlices(model: Pick<TrainedModel, 'shards'>): number {
  return model.shards.reduce((n, shard) => n + shard.slices.filter((s) => s.count > 0).length, 0);
}

/**
 * Bias identification for a SISA model of any architecture by leave-one-slice-out: for every non-empty slice r
 * of every shard s, shard s is retrained from the checkpoint before r on its samples without those of slice r,
 * by the engine's own retraining path (buildVersion, exactly what a forget of the whole slice retrains, with the
 * same seeded order, so deterministic), and the ensemble with that member replaced is evaluated on the holdout
 * (the other members' outputs are cached). A slice's influence is the decrease of the gap `metric`; a sample's
 * is its slice's: LOSO cannot tell apart the samples of one slice, so it finds bias that is concentrated in some
 * slices (a learn batch from one source, a placement that gathers it), not bias spread evenly over all of them.
 * The retrains' checkpoints are written to a throwaway store (reads come from `deps.store`), nothing goes to the
 * ledger, and no version is published.
 */
export async function scanBiasBySlices(
  deps: Pick<EngineDependencies, 'store' | 'runtime' | 'envelope' | 'log'>,
  model: TrainedModel,
  holdout: readonly LabeledExample[],
  protectedFeature: number,
  options: SliceScanOptions = {},
): Promise<SliceScanResult> {
  const config = model.config;
  const metric = options.metric ?? 'equalizedOddsDifference';
  if (!(BIAS_METRICS as readonly string[]).includes(metric)) throw new UnlearningError('INVALID_REQUEST', `metric must be one of ${BIAS_METRICS.join(', ')}, got ${String(metric)}`);
  if (config.method !== 'sisa')
    throw new UnlearningError('INVALID_REQUEST', `leave-one-slice-out needs a SISA model (slices to leave out), not a ${config.method} ${config.model} model`);
  if (model.manifest?.approximate !== undefined)
    throw new UnlearningError('INVALID_REQUEST', `model ${model.modelId} version ${model.version} was made by approximate unlearning: its members are not its checkpoints' weights`);
  if (protectedFeature < 0 || protectedFeature >= config.numFeatures)
    throw new UnlearningError('INVALID_REQUEST', `protectedFeature ${protectedFeature} is beyond the model's ${config.numFeatures} columns`);
  if (holdout.length === 0) throw new UnlearningError('INSUFFICIENT_DATA', 'the gap is measured on the holdout, and it is empty (set evaluation.holdoutFraction)');
  const scanned = countScannedSlices(model);
  if (scanned > MAX_SCANNED_SLICES)
    throw new UnlearningError('INVALID_REQUEST', `slices: model ${model.modelId} has ${scanned} non-empty slices, a leave-one-slice-out scan retrains each, and the limit is ${MAX_SCANNED_SLICES}`);

  const layers = layerSizesOf(config);
  const context = new EngineContext(deps.runtime);
  try {
    const members: EnsembleMember[] = [];
    for (const shard of model.members) {
      const last = lastSlice(model.shards[shard]);
      members.push({ weightsSha256: last.weightsSha256, weights: await context.loadMember(deps.store, layers, last), ...maskOf(config) });
    }
    const gapOf = async (ensemble: readonly EnsembleMember[]) => {
      const probabilities = await context.evaluator.predict(layers, config.aggregation, ensemble, holdout);
      const figures = computeFairness(holdout, labelsOf(probabilities, holdout.length, config.numClasses), protectedFeature, config.numClasses);
      return { figures, gap: figures[metric] };
    };
    const before = await gapOf(members);
    if (before.figures.groups.length < 2)
      throw new UnlearningError('INSUFFICIENT_DATA', `the holdout has ${before.figures.groups.length} group(s) in column ${protectedFeature}: a gap needs two`);

    const plan = planShards(model.samples, config.seed, config.shards, config.slices);
    const slices: SliceInfluence[] = [];
    const candidates: SliceScanResult['candidates'] = [];
    for (const shardRecord of model.shards) {
      for (const sliceRecord of shardRecord.slices) {
        if (sliceRecord.count === 0) continue;
        const { shard } = shardRecord;
        const { slice } = sliceRecord;
        const left = plan.shards[shard].slices[slice];
        const newIndexOf = new Int32Array(model.samples.length);
        const out = new Set(left);
        let next = 0;
        for (let i = 0; i < newIndexOf.length; i++) newIndexOf[i] = out.has(i) ? -1 : next++;
        const samples: Sample[] = model.samples.filter((_, i) => !out.has(i));
        let gapWithout = 0;
        await buildVersion({ ...deps, store: new ReadThroughStore(deps.store), ledger: undefined, dispatcher: undefined, onProgress: undefined }, context, {
          modelId: model.modelId,
          version: model.version,
          config,
          hyperparamsHash: model.hyperparamsHash,
          samples,
          plan: removeFromPlan(plan, newIndexOf),
          fromSlices: new Map([[shard, slice]]),
          previous: model,
          phase: 'evaluate',
          evaluate: async (published) => {
            gapWithout = (await gapOf(published.members)).gap;
            return {};
          },
        });
        const influence = before.gap - gapWithout;
        slices.push({ shard, slice, count: left.length, gapWithout, influence });
        for (const i of left) candidates.push({ externalId: model.samples[i].externalId, commitment: model.samples[i].commitment, influence });
        options.onProgress?.(slices.length / scanned);
      }
    }
    candidates.sort((a, b) => b.influence - a.influence || (a.commitment < b.commitment ? -1 : a.commitment > b.commitment ? 1 : 0));
    return { method: 'leave-one-slice-out', metric, gapBefore: before.gap, fairness: before.figures, slices, candidates: candidates.slice(0, options.limit ?? 100) };
  } finally {
    await context.release();
  }
}

/** Each row's label: the first maximum of its probabilities (as ArgMax in the published graph). */
function labelsOf(probabilities: Float32Array, rows: number, classes: number): Int32Array {
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const base = i * classes;
    let best = 0;
    for (let c = 1; c < classes; c++) if (probabilities[base + c] > probabilities[base + best]) best = c;
    labels[i] = best;
  }
  return labels;
}

/** Reads from the model's store, keeps what a scan's retrains write in memory (dropped with the scan). */
class ReadThroughStore implements CheckpointStore {
  private readonly written = new Map<string, Uint8Array>();

  constructor(private readonly base: CheckpointStore) {}

  async get(hash: string): Promise<Uint8Array | undefined> {
    return this.written.get(hash) ?? this.base.get(hash);
  }

  async put(hash: string, bytes: Uint8Array): Promise<void> {
    this.written.set(hash, bytes);
  }

  async has(hash: string): Promise<boolean> {
    return this.written.has(hash) || this.base.has(hash);
  }

  async delete(hash: string): Promise<boolean> {
    return this.written.delete(hash);
  }
}
