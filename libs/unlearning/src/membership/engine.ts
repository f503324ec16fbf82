import { CheckpointStore, MemoryCheckpointStore } from '../checkpoint-store';
import { hashHyperparameters, TrainingConfig } from '../config';
import { EnsembleEvaluator, EnsembleMember } from '../ensemble-evaluator';
import { TrainedModel } from '../model';
import { Sample } from '../samples';
import type { ForgetPlanner } from '../sharded-method';
import { buildVersion, EngineContext, EngineDependencies, RunnerPool } from '../sharded-training';

/** A model the attack queries: the model and its members by shard (a candidate is scored by the shard that holds it). */
export interface AttackedModel {
  model: TrainedModel;
  members: ReadonlyMap<number, EnsembleMember>;
}

/**
 * What a membership evaluation needs from the method under evaluation. Every model it trains is
 * evaluation-only: trained with the engine's deterministic trainer, never reported to the ledger, never
 * published or written to disk; its checkpoints stay in memory, and only as long as the evaluation runs.
 */
export interface MembershipEngine {
  /** Evaluates the attacked models' members (a session per member; outputs kept per member and row). */
  readonly evaluator: EnsembleEvaluator;
  /** A model the method trained or published, with its members. */
  attackable(model: TrainedModel): Promise<AttackedModel>;
  /**
   * Trains `samples` from scratch with `config`. With `forgettable`, its checkpoints are kept (in memory) so that
   * `forget` can unlearn from it; otherwise they are dropped as they are made.
   */
  train(config: TrainingConfig, samples: readonly Sample[], options?: { forgettable?: boolean }): Promise<AttackedModel>;
  /** Forgets `forgotten` from a forgettable evaluation model as the method forgets (its planner, its retraining). */
  forget(model: AttackedModel, forgotten: readonly Sample[]): Promise<AttackedModel>;
  /** Releases the evaluator's sessions (the step sessions belong to the method). */
  release(): Promise<void>;
}

/** A checkpoint store that keeps nothing: shadow models and the reference are never resumed from. */
const DISCARDING_STORE: CheckpointStore = {
  get: async () => undefined,
  put: async () => undefined,
  has: async () => false,
  delete: async () => false,
};

const EVALUATION_MODEL_ID = 'lethe-membership-evaluation';

/**
 * The engine of a sharded method (SISA, full retrain) for membership evaluations: its dependencies without
 * the ledger and progress reports, its step sessions (`pool`), and its forget planner; `membersOf` gives a
 * published model's members as the method holds them.
 */
export function createMembershipEngine(
  deps: EngineDependencies,
  pool: RunnerPool,
  planForget: ForgetPlanner,
  membersOf: (model: TrainedModel) => Promise<EnsembleMember[]>,
): MembershipEngine {
  const context = new EngineContext(deps.runtime, pool);
  const stores = new WeakMap<TrainedModel, CheckpointStore>();
  const quiet = { ...deps, ledger: undefined, onProgress: undefined };
  const byShard = (model: TrainedModel, members: readonly EnsembleMember[]): AttackedModel => ({
    model,
    members: new Map(model.members.map((shard, i) => [shard, members[i]])),
  });
  const build = async (store: CheckpointStore, input: Omit<Parameters<typeof buildVersion>[2], 'evaluate' | 'modelId' | 'hyperparamsHash'>) => {
    let members: EnsembleMember[] = [];
    const built = await buildVersion({ ...quiet, store }, context, {
      ...input,
      modelId: EVALUATION_MODEL_ID,
      hyperparamsHash: hashHyperparameters(input.config),
      evaluate: async (published) => {
        members = published.members;
        return {};
      },
    });
    stores.set(built.model, store);
    return byShard(built.model, members);
  };
  return {
    evaluator: context.evaluator,
    attackable: async (model) => byShard(model, await membersOf(model)),
    train: (config, samples, options = {}) =>
      build(options.forgettable ? new MemoryCheckpointStore() : DISCARDING_STORE, {
        version: 1,
        config,
        samples,
        fromSlices: new Map(Array.from({ length: config.shards }, (_, shard) => [shard, 0])),
        phase: 'membership',
      }),
    forget: async ({ model }, forgotten) => {
      const store = stores.get(model);
      if (!store || store === DISCARDING_STORE) throw new RangeError('only a forgettable evaluation model can forget');
      const removed = new Set(forgotten.map((s) => s.externalId));
      return build(store, {
        version: model.version + 1,
        config: model.config,
        samples: model.samples.filter((s) => !removed.has(s.externalId)),
        fromSlices: planForget(
          model,
          model.samples.filter((s) => removed.has(s.externalId)),
        ),
        previous: model,
        phase: 'membership',
      });
    },
    release: () => context.evaluator.release(),
  };
}
