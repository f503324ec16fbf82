import { createCertifiedMethod } from './certified/certified-method';
import { MethodName } from './config';
import { createFullRetrainMethod } from './full-retrain';
import { UnlearningMethod } from './method';
import { EngineDependencies } from './sharded-training';
import { createSisaMethod } from './sisa';

const FACTORIES: Record<MethodName, (deps: EngineDependencies) => UnlearningMethod> = {
  'full-retrain': createFullRetrainMethod,
  sisa: createSisaMethod,
  certified: createCertifiedMethod,
};

/** The engine's method of a config (`config.method`), as the service and a replay make it. */
export function createMethod(method: MethodName, deps: EngineDependencies): UnlearningMethod {
  const factory = FACTORIES[method];
  if (!factory) throw new RangeError(`no unlearning method named ${String(method)}`);
  return factory(deps);
}
