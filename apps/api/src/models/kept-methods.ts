import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import {
  ArtifactCheckpointStore,
  CheckpointStore,
  EngineDependencies,
  LedgerSink,
  LruMap,
  ProgressCallback,
  ShardDispatcher,
  TrainedModel,
  MethodName,
  UnlearningMethod,
  createMethod,
} from '@lethe/unlearning';
import type { ArtifactStore } from '@lethe/artifacts';
import { ARTIFACT_STORE } from '../config/config.provider';
import { ShardTaskQueue } from '../jobs/shard-task.queue';
import { ModelStore } from './model.store';
import { withoutNoiseSeeds } from './noise-seeds';

/** The engine's method for a config, with checkpoints in the artifact store and events into the log. */
export function createMethodFor(config: { method: string }, deps: EngineDependencies): UnlearningMethod {
  return createMethod(config.method as MethodName, deps);
}

/** The engine's checkpoint store over the process's artifact store (checkpoints by their address). */
export function checkpointStoreIn(artifacts: ArtifactStore): ArtifactCheckpointStore {
  return new ArtifactCheckpointStore(artifacts);
}

/** Models whose engine method (and latest version) a worker keeps between jobs. */
const KEPT_MODELS = 4;

/**
 * A model's engine method kept between jobs, with the version it last trained or published: the model's next
 * forget reuses what the method holds (the samples' shard plan, shard sessions, unchanged shards' weights, the
 * members' outputs on the evidence rows), so it trains, and evaluates, only what it retrains. The method's
 * ledger, progress callback and shard dispatcher are the current job's (read through `job`, which the method
 * holds by reference).
 */
export interface KeptMethod {
  method: UnlearningMethod;
  /** The method's checkpoint store: shard tasks are dispatched for the versions it keeps there. */
  store: CheckpointStore;
  job: { ledger?: LedgerSink; onProgress?: ProgressCallback; dispatcher?: ShardDispatcher };
  model?: TrainedModel;
}

/**
 * The engine methods a worker keeps, one per model, the KEPT_MODELS most recently used (the least recently used
 * beyond them is released). A training keeps its method and version 1, so the model's first forget in the same
 * worker starts warm; unlearning passes keep theirs and the version they published.
 *
 * A job holds the method it uses from `keep` to `end`: the training queue and the unlearning queue run side by
 * side in one worker, so a job keeping other models can evict a method another job is running (its sessions
 * released under it: "Session already disposed"). An evicted method is released once no hold is left; until
 * then its holders use it as before (`get` no longer finds it: a job reads the method it holds, not the map).
 */
@Injectable()
export class KeptMethods {
  private readonly logger = new Logger('Engine');
  private readonly kept = new LruMap<string, KeptMethod>(KEPT_MODELS, (modelId, kept) => this.evicted(modelId, kept));
  /** Each kept method's model, its holds (jobs between `keep` and `end`) and whether it was evicted meanwhile. */
  private readonly holds = new WeakMap<KeptMethod, { modelId: string; count: number; evicted: boolean }>();
  /** Releases of evicted methods begun when their last hold ended. */
  private readonly releasing = new Set<Promise<void>>();

  constructor(
    @Inject(ARTIFACT_STORE) private readonly artifacts: ArtifactStore,
    private readonly store: ModelStore,
    @Optional() private readonly shardTasks?: ShardTaskQueue,
  ) {}

  get(modelId: string): KeptMethod | undefined {
    return this.kept.get(modelId);
  }

  /**
   * The model's kept method (made now if there is none), marked most recently used and held until `end` (call it
   * once, in a `finally`): it is not released meanwhile, even when other models' jobs evict it.
   */
  async keep(modelId: string, config: { method: string }): Promise<KeptMethod> {
    let kept = this.kept.get(modelId);
    if (kept) this.holds.get(kept)!.count += 1; // in the same turn as the look-up: no eviction comes between
    else {
      const job: KeptMethod['job'] = {};
      const store = checkpointStoreIn(this.artifacts);
      const method = createMethodFor(config, {
        store,
        log: (message) => this.logger.warn(message), // e.g. a shard retrained from scratch: its checkpoints come from another runtime envelope
        get ledger() {
          return job.ledger;
        },
        get onProgress() {
          return job.onProgress;
        },
        get dispatcher() {
          return job.dispatcher;
        },
        // A version's file is written while its publication finishes; ModelStore.save waits for it.
        onExported: (file) => this.store.putOnnxAhead(file.onnxSha256, file.onnx),
      });
      kept = { method, store, job };
      this.holds.set(kept, { modelId, count: 1, evicted: false });
      this.kept.set(modelId, kept);
    }
    await this.kept.settled(); // the methods it evicted (that no job holds) are released before it works
    return kept;
  }

  /**
   * Lends a kept method the current job's ledger and progress callback and, when the job is known and this
   * process takes part in shard tasks, the job's dispatcher: the versions the method trains send one shard
   * task per retrained shard (any worker trains it), 2 or more of them. `end` takes them back.
   */
  lend(kept: KeptMethod, job: { ledger?: LedgerSink; onProgress?: ProgressCallback; jobId?: string }): void {
    kept.job.ledger = job.ledger;
    kept.job.onProgress = job.onProgress;
    const dispatcher = job.jobId === undefined ? undefined : this.shardTasks?.dispatcherFor(job.jobId, kept.store);
    kept.job.dispatcher = dispatcher && withoutNoiseSeeds(dispatcher); // the seeds stay sealed in the model's row
  }

  /** Ends the job's hold that `keep` took and what `lend` lent; an evicted method is released once no hold is left. */
  end(kept: KeptMethod): void {
    kept.job.ledger = undefined;
    kept.job.onProgress = undefined;
    kept.job.dispatcher = undefined;
    const holds = this.holds.get(kept)!;
    holds.count -= 1;
    if (holds.count === 0 && holds.evicted) {
      const released = this.release(holds.modelId, kept);
      this.releasing.add(released);
      void released.then(() => this.releasing.delete(released));
    }
  }

  /**
   * Drops the model's kept method, to be released (sessions, weights, outputs) once no job holds it: after an
   * error it may be half-updated. The job that drops it still ends its hold.
   */
  async drop(modelId: string): Promise<void> {
    this.kept.evict(modelId);
    await this.kept.settled();
  }

  /** Releases every kept method (the worker stops); one a job still holds is released when the job ends it. */
  async close(): Promise<void> {
    this.kept.clear();
    await this.settled();
  }

  /** Resolves once every release begun so far has ended (those of evicted methods still held begin later). */
  async settled(): Promise<void> {
    await Promise.all([this.kept.settled(), ...this.releasing]);
  }

  /** The LRU's eviction: releases the method now unless a job holds it (then `end` releases it). */
  private evicted(modelId: string, kept: KeptMethod): Promise<void> | undefined {
    const holds = this.holds.get(kept)!;
    holds.evicted = true;
    return holds.count === 0 ? this.release(modelId, kept) : undefined;
  }

  private async release(modelId: string, kept: KeptMethod): Promise<void> {
    await kept.method.release().catch((e: unknown) => this.logger.warn(`releasing the engine of model ${modelId}: ${(e as Error).message}`));
  }
}
