// What a version's weights depend on (its lineage of checkpoints) and what its slices learned (the ordered
// commitments under each batch root): what retiring a version may delete, and what a receipt can prove.
import { planShards } from './assignment';
import { computeBatchRoot } from './batch-root';
import { UnlearningError } from './errors';
import { ShardRecord, TrainedModel } from './model';

/** Every checkpoint a version's weights were built from: each slice's, shard by shard, in order. */
export function checkpointsOf(shards: readonly ShardRecord[]): string[] {
  return shards.flatMap((shard) => shard.slices.map((slice) => slice.checkpoint));
}

/**
 * Reference counting over versions' lineages: the checkpoints that some `retired` version references and no
 * `live` version does (a reference count of zero among the live), each once, sorted. With deterministic
 * training a checkpoint's address chains every batch it saw, so a new version made by forgetting shares the
 * prefix checkpoints that never saw the forgotten samples (they stay) and none that did (they go).
 * `live` must hold every live version that could share an address: those of other models with the same
 * hyperparameters included.
 */
export function findUnreferencedCheckpoints(
  retired: readonly (readonly ShardRecord[])[],
  live: readonly (readonly ShardRecord[])[],
): string[] {
  const references = new Map<string, number>();
  for (const lineage of live) for (const checkpoint of checkpointsOf(lineage)) references.set(checkpoint, (references.get(checkpoint) ?? 0) + 1);
  const unreferenced = new Set<string>();
  for (const lineage of retired) for (const checkpoint of checkpointsOf(lineage)) if (!references.has(checkpoint)) unreferenced.add(checkpoint);
  return [...unreferenced].sort();
}

/** One slice's batch: the commitments it learned, in the order its batch root hashes them. */
export interface BatchMembers {
  shard: number;
  slice: number;
  batchRoot: string;
  commitments: string[];
}

/**
 * The ordered commitments under each slice's batch root of a version (SISA's shard and slice placement of its
 * samples), each checked against the root the version recorded; `slices` limits it to some (shard, slice)
 * pairs, e.g. those a forget retrained. Throws RUNTIME_ERROR if a root does not come out the same.
 */
export function listBatchMembers(model: TrainedModel, slices?: ReadonlySet<string>): BatchMembers[] {
  const { config } = model;
  const plan = planShards(model.samples, config.seed, config.shards, config.slices);
  const out: BatchMembers[] = [];
  for (const shardPlan of plan.shards) {
    shardPlan.slices.forEach((members, slice) => {
      if (slices && !slices.has(batchKey(shardPlan.shard, slice))) return;
      const record = model.shards[shardPlan.shard]?.slices[slice];
      const commitments = members.map((i) => model.samples[i].commitment);
      const batchRoot = computeBatchRoot(commitments);
      if (!record || record.batchRoot !== batchRoot) {
        throw new UnlearningError(
          'RUNTIME_ERROR',
          `model ${model.modelId} version ${model.version} shard ${shardPlan.shard} slice ${slice}: its samples hash to batch root ${batchRoot}, the version recorded ${record?.batchRoot}`,
        );
      }
      out.push({ shard: shardPlan.shard, slice, batchRoot, commitments });
    });
  }
  return out;
}

/** The key `listBatchMembers` selects slices by. */
export function batchKey(shard: number, slice: number): string {
  return `${shard}/${slice}`;
}
