import { EngineDependencies } from './sharded-training';
import { planFullRetrain, ShardedMethod } from './sharded-method';
import { UnlearningMethod } from './method';

/** The exact baseline: one model on all data; forgetting trains it again from scratch without the samples. */
export function createFullRetrainMethod(deps: EngineDependencies): UnlearningMethod {
  return new ShardedMethod('full-retrain', deps, planFullRetrain);
}
