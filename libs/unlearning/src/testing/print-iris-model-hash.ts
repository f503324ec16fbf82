// Trains the iris SISA model of the tests in a fresh process and prints its ONNX SHA-256 (for the
// cross-process determinism test). Run: node -r ./scripts/register.js libs/unlearning/src/testing/print-iris-model-hash.ts
import { MemoryCheckpointStore } from '../checkpoint-store';
import { loadIris, splitTrainTest } from '../datasets';
import { createSisaMethod } from '../sisa';
import { commitExamples, irisSisaConfig } from './factories';

async function main(): Promise<void> {
  const threads = Number(process.argv[2] ?? 1);
  const iris = splitTrainTest(loadIris(), { seed: 'iris-split', testFraction: 0.2 });
  const sisa = createSisaMethod({ store: new MemoryCheckpointStore() });
  const model = await sisa.train({ modelId: 'iris-sisa', config: irisSisaConfig({ threads }), samples: commitExamples(iris.train) });
  await sisa.release();
  process.stdout.write(`${model.onnxSha256}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
