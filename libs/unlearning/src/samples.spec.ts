/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { MemoryCheckpointStore } from './checkpoint-store';
import { loadIris } from './datasets';
import { UnlearningError } from './errors';
import { createSisaMethod } from './sisa';
import { compactFeatures, LabeledExample } from './samples';
import { commitExamples, irisSisaConfig } from './testing/factories';
import { validateSamples } from './validate';

describe('compactFeatures', () => {
  const rows: LabeledExample[] = [
    { externalId: 'a', features: [0.1, 2, -3], label: 0 },
    { externalId: 'b', features: [4, 5.5, 6], label: 1 },
  ];

  it('turns number arrays into float32 views of one matrix, with the values float32 gives them', () => {
    const out = compactFeatures(rows);
    expect(out.map((r) => r.externalId)).toEqual(['a', 'b']);
    expect(out[0].features).toBeInstanceOf(Float32Array);
    expect((out[0].features as Float32Array).buffer).toBe((out[1].features as Float32Array).buffer);
    expect(Array.from(out[0].features)).toEqual(Array.from(Float32Array.from([0.1, 2, -3])));
    expect(Array.from(out[1].features)).toEqual([4, 5.5, 6]);
    expect(rows[0].features).toEqual([0.1, 2, -3]); // the input is not changed
  });

  it('keeps rows validation must name: non-finite, too large for float32, another length', () => {
    const bad: LabeledExample[] = [
      ...rows,
      { externalId: 'nan', features: [NaN, 1, 2], label: 0 },
      { externalId: 'big', features: [1e39, 1, 2], label: 0 },
      { externalId: 'short', features: [1, 2], label: 0 },
    ];
    const out = compactFeatures(bad);
    expect(out.slice(2)).toEqual(bad.slice(2));
    expect(out[1].features).toBeInstanceOf(Float32Array);
    try {
      validateSamples(commitExamples(out), { numFeatures: 3, numClasses: 2 });
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(UnlearningError);
      expect((error as UnlearningError).issues.map((i) => i.message)).toEqual([
        expect.stringContaining('features[0] is NaN'),
        expect.stringContaining('does not fit float32'),
        expect.stringContaining('features has 2 values, want 3'),
      ]);
    }
  });

  it('leaves float32 rows as they are', () => {
    const once = compactFeatures(rows);
    const twice = compactFeatures(once);
    expect(twice[0]).toBe(once[0]);
  });

  it('trains and unlearns to the same bytes as number arrays', async () => {
    const samples = commitExamples(loadIris());
    const config = irisSisaConfig({ epochs: 5 });
    const method = createSisaMethod({ store: new MemoryCheckpointStore() });
    try {
      const fromArrays = await method.train({ modelId: 'arrays', config, samples });
      const fromViews = await method.train({ modelId: 'arrays', config, samples: compactFeatures(samples) });
      expect(fromViews.onnxSha256).toBe(fromArrays.onnxSha256);
      expect(fromArrays.samples[0].features).toBeInstanceOf(Float32Array); // the engine holds them compact
      const forget = { requestIds: ['r1'], externalIds: ['iris-007', 'iris-120'] };
      const scratch = await method.train({
        modelId: 'arrays',
        config,
        samples: samples.filter((s) => !forget.externalIds.includes(s.externalId)),
        version: 2,
      });
      expect((await method.forget(fromViews, forget)).model.onnxSha256).toBe(scratch.onnxSha256);
    } finally {
      await method.release();
    }
  });
});
