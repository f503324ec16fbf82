import { EngineDependencies } from './sharded-training';
import { planSisaForget, ShardedMethod } from './sharded-method';
import { UnlearningMethod } from './method';

/**
 * SISA (Bourtoule et al. 2021): S shards x R slices, one model per shard trained slice by slice with a
 * checkpoint after each; forgetting retrains only the affected shards from the checkpoint before the
 * first affected slice. The published model averages the shard models in one ONNX graph.
 */
export function createSisaMethod(deps: EngineDependencies): UnlearningMethod {
  return new ShardedMethod('sisa', deps, planSisaForget);
}
