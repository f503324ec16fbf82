import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  ArtifactCheckpointStore,
  EngineDependencies,
  LedgerSink,
  LruMap,
  ProgressCallback,
  TrainedModel,
  MethodName,
  UnlearningMethod,
  createMethod,
} from '@lethe/unlearning';
import type { ArtifactStore } from '@lethe/artifacts';
import { ARTIFACT_STORE } from '../config/config.provider';

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
 * ledger and progress callback are the current job's (read through `job`, which the method holds by reference).
 */
export interface KeptMethod {
  method: UnlearningMethod;
  job: { ledger?: LedgerSink; onProgress?: ProgressCallback };
  model?: TrainedModel;
}

/**
 * The engine methods a worker keeps, one per model, the KEPT_MODELS most recently used (the least recently used
 * beyond them is released). A training keeps its method and version 1, so the model's first forget in the same
 * worker starts warm; unlearning passes keep theirs and the version they published.
 */
@Injectable()
export class KeptMethods {
  private readonly logger = new Logger('Engine');
  private readonly kept = new LruMap<string, KeptMethod>(KEPT_MODELS, (modelId, kept) => this.release(modelId, kept));

  constructor(@Inject(ARTIFACT_STORE) private readonly artifacts: ArtifactStore) {}

  get(modelId: string): KeptMethod | undefined {
    return this.kept.get(modelId);
  }

  /** The model's kept method (made now if there is none), marked most recently used. */
  async keep(modelId: string, config: { method: string }): Promise<KeptMethod> {
    let kept = this.kept.get(modelId);
    if (!kept) {
      const job: KeptMethod['job'] = {};
      const method = createMethodFor(config, {
        store: checkpointStoreIn(this.artifacts),
        log: (message) => this.logger.warn(message), // e.g. a shard retrained from scratch: its checkpoints come from another runtime envelope
        get ledger() {
          return job.ledger;
        },
        get onProgress() {
          return job.onProgress;
        },
      });
      kept = { method, job };
      this.kept.set(modelId, kept);
      await this.kept.settled();
    }
    return kept;
  }

  /** Drops the model's kept method and releases what it holds (sessions, weights, outputs): after an error it may be half-updated. */
  async drop(modelId: string): Promise<void> {
    this.kept.evict(modelId);
    await this.kept.settled();
  }

  /** Releases every kept method (the worker stops). */
  async close(): Promise<void> {
    this.kept.clear();
    await this.kept.settled();
  }

  private async release(modelId: string, kept: KeptMethod): Promise<void> {
    await kept.method.release().catch((e: unknown) => this.logger.warn(`releasing the engine of model ${modelId}: ${(e as Error).message}`));
  }
}
