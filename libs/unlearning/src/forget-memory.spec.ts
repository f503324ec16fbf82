/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
// What a method keeps in memory across a model's forgets. The service keeps a model's method between jobs
// (apps/api/src/models/kept-methods.ts), so whatever it keeps per version adds up over every forget of the model,
// and the forgotten samples (features, identifiers) must not stay in the process once nothing needs them.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryCheckpointStore } from './checkpoint-store';
import { loadIris } from './datasets';
import { TrainedModel } from './model';
import { createSisaMethod } from './sisa';
import { commitExamples, irisSisaConfig } from './testing/factories';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether `ref`'s target is gone after a full garbage collection (run in a later task: a WeakRef read in this one keeps its target until it ends). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return ref.deref() === undefined;
}

describe('a method kept across forgets', () => {
  it("keeps neither an earlier version's samples nor the samples forgotten once their evidence is recorded", async () => {
    const method = createSisaMethod({ store: new MemoryCheckpointStore() });
    const config = irisSisaConfig({ shards: 2, slices: 2, epochs: 2 });
    try {
      // Everything but WeakRefs and the latest version goes out of scope with this function.
      const held = await (async () => {
        const v1 = await method.train({ modelId: 'kept', config, samples: commitExamples(loadIris()) });
        const first = v1.samples[3];
        // A forget with its evidence inline, then ones whose evidence is recorded after publishing, as the service does.
        const v2 = (await method.forget(v1, { requestIds: ['r1'], externalIds: [first.externalId] })).model;
        const second = v2.samples[5];
        const v3 = (await method.publishForget!(v2, { requestIds: ['r2'], externalIds: [second.externalId] })).model;
        await method.recordEvidence!(v2, v3, { requestIds: ['r2'] });
        const v4 = (await method.publishForget!(v3, { requestIds: ['r3'], externalIds: [v3.samples[7].externalId] })).model;
        return {
          refs: { v1: new WeakRef(v1.samples), v2: new WeakRef(v2.samples), first: new WeakRef(first), second: new WeakRef(second) },
          latest: v4 as TrainedModel | undefined,
          latestSamples: new WeakRef(v4.samples),
        };
      })();
      // Control: what is still held is not collected (the check can see a live object).
      expect(await collected(held.latestSamples)).toBe(false);
      expect(held.latest!.version).toBe(4);
      // Versions 1 and 2 are gone with their samples, and so are the samples forgotten by recorded forgets.
      expect(await collected(held.refs.v1)).toBe(true);
      expect(await collected(held.refs.v2)).toBe(true);
      expect(await collected(held.refs.first)).toBe(true);
      expect(await collected(held.refs.second)).toBe(true);
      held.latest = undefined;
      expect(await collected(held.latestSamples)).toBe(true);
    } finally {
      await method.release();
    }
  });
});
