import { padPlan, Plan, planShards } from './assignment';
import { CheckpointStore } from './checkpoint-store';
import { TrainingConfig } from './config';
import { UnlearningError } from './errors';
import { EngineEvent } from './events';
import { ShardRecord, SliceRecord } from './model';
import { PhaseClock } from './phase-clock';
import { ProgressPhase } from './progress';
import type { RuntimeEnvelope } from './runtime-envelope';
import { Sample } from './samples';
import { EngineContext, EngineDependencies, trainShardTask } from './sharded-training';

/**
 * One shard of a version, for a worker that shares the version's checkpoint store: what it needs besides
 * the samples, which it reads itself (by commitment). JSON as it is, so it can wait in a queue.
 */
export interface ShardTask {
  modelId: string;
  version: number;
  config: TrainingConfig;
  hyperparamsHash: string;
  shard: number;
  /** The first slice to train; the slices before it are `kept`. */
  fromSlice: number;
  /** The shard's slices before `fromSlice`, as the version it continues recorded them (checkpoints, roots, counts). */
  kept: SliceRecord[];
  /** The commitments of the shard's samples, slice by slice, in rank order: everything it trains on. */
  commitments: string[][];
  /** The runtime envelope of the process that publishes the version: a result made under another is trained again there. */
  envelope: RuntimeEnvelope;
  phase: ProgressPhase;
}

/** What a shard task gives back: the shard's record and the events of the slices it trained. */
export interface ShardResult {
  shard: number;
  /** The slice it trained from: the task's, or 0 where the kept checkpoints were not made under its envelope. */
  fromSlice: number;
  record: ShardRecord;
  /** BATCH_LEARNED and CHECKPOINT_SAVED of each slice it trained, in order; the publisher appends them. */
  events: EngineEvent[];
  /** The runtime envelope it trained under. */
  envelope: RuntimeEnvelope;
  /** Optimizer steps it ran. */
  steps: number;
  /**
   * Where the worker's time went (wall-clock and CPU seconds by phase: check, prepare, train, checkpointWrites, and
   * what the worker adds around the engine): a report for operators and the scale bench, never checked or published.
   */
  timings?: { seconds: { [phase: string]: number }; cpuSeconds: { [phase: string]: number } };
}

/**
 * Trains a version's shards elsewhere: one task per shard, run by whichever workers take them, each storing
 * its checkpoints in `store` before it answers. `train` resolves with the results in the order of the tasks
 * once every task is done, reporting the done fraction meanwhile, or rejects with why a task failed for good.
 */
export interface ShardDispatcher {
  /** The checkpoint store every worker of the dispatcher shares: only versions kept there are dispatched. */
  readonly store: CheckpointStore;
  /**
   * `onResult`: called with each task's result (its index in `tasks`) as soon as it is done, before the others
   * are: the publisher starts reading that shard's final checkpoint while the rest still train.
   */
  train(tasks: ShardTask[], onProgress?: (fraction: number) => void, onResult?: (index: number, result: ShardResult) => void): Promise<ShardResult[]>;
}

/**
 * Checks that `samples` are the task's: one for each commitment, and each placed (seed and externalId) in the
 * task's shard and slice; returns them. A worker that read other data fails the task here, before training.
 */
export function checkShardSamples(task: ShardTask, samples: readonly Sample[]): Plan {
  const where = `model ${task.modelId} version ${task.version} shard ${task.shard}`;
  const wanted = task.commitments.reduce((n, slice) => n + slice.length, 0);
  if (samples.length !== wanted) throw new UnlearningError('INVALID_REQUEST', `${where}: the task has ${wanted} samples, ${samples.length} were read`);
  // The task's last appended slices may be empty in this shard: its plan has them all the same.
  const plan = padPlan(planShards(samples, task.config.seed, task.config.shards, task.config.slices), task.commitments.length);
  plan.shards.forEach((shardPlan) =>
    shardPlan.slices.forEach((members, slice) => {
      const expected = shardPlan.shard === task.shard ? (task.commitments[slice] ?? []) : [];
      const got = members.map((i) => samples[i].commitment);
      if (got.length !== expected.length || got.some((c, k) => c !== expected[k])) {
        throw new UnlearningError(
          'INVALID_REQUEST',
          `${where}: the samples read do not place as the task says (shard ${shardPlan.shard} slice ${slice}: ${got.length} read, ${expected.length} expected)`,
        );
      }
    }),
  );
  return plan;
}

/**
 * The samples a worker read (by commitment, which knows no learn batch) with the batches the task's plan gives
 * them: those of its appended slices (R - 1 + b) are learn batch b's. checkShardSamples then checks the placement.
 */
export function withTaskBatches(task: ShardTask, samples: readonly Sample[]): readonly Sample[] {
  if (task.commitments.length <= task.config.slices) return samples;
  const batchOf = new Map<string, number>();
  task.commitments.forEach((members, slice) => {
    if (slice >= task.config.slices) for (const commitment of members) batchOf.set(commitment, slice - task.config.slices + 1);
  });
  return samples.map((sample) => (batchOf.has(sample.commitment) ? { ...sample, batch: batchOf.get(sample.commitment) } : sample));
}

/**
 * A worker's side of shard tasks: trains one shard at a time (trainShardTask), keeping its step sessions
 * between tasks of the same network.
 */
export class ShardTrainer {
  private readonly context: EngineContext;

  constructor(private readonly deps: EngineDependencies) {
    this.context = new EngineContext(deps.runtime);
  }

  /** `clock`: where the phases' time is charged (check, prepare, train, checkpointWrites), after what the caller charged to it. */
  train(task: ShardTask, samples: readonly Sample[], clock?: PhaseClock): Promise<ShardResult> {
    return trainShardTask(this.deps, this.context, task, samples, clock);
  }

  release(): Promise<void> {
    return this.context.release();
  }
}
