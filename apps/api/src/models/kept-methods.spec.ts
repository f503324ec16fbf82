/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
// The worker's kept engine methods (an LRU of KEPT_MODELS) with real SISA methods on onnxruntime-node. The
// training queue and the unlearning queue run side by side in one worker, so a job keeping other models can
// evict the method a training is running: that training must go on with it, and it is released once it ends.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileArtifactStore } from '@lethe/artifacts';
import { loadIris } from '@lethe/unlearning';
import { commitExamples, irisSisaConfig } from '../../../../libs/unlearning/src/testing/factories';
import { KeptMethod, KeptMethods } from './kept-methods';
import { ModelStore } from './model.store';

describe('KeptMethods', () => {
  const config = irisSisaConfig({ shards: 2, slices: 2, epochs: 4 });
  let folder: string;
  let methods: KeptMethods;

  beforeEach(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'lethe-kept-methods-'));
    const artifacts = new FileArtifactStore(folder);
    // The engine's exported files go to the artifact store (putOnnxAhead); nothing here reads the database or keys.
    methods = new KeptMethods(artifacts, new ModelStore(null as never, null as never, artifacts, null as never));
  });

  afterEach(async () => {
    await methods.close();
    await rm(folder, { recursive: true, force: true });
  });

  /** Keeps (and at once ends) the methods of `modelIds`, as other jobs of the worker do. */
  async function keepOthers(modelIds: string[]): Promise<void> {
    for (const kept of await Promise.all(modelIds.map((id) => methods.keep(id, config)))) methods.end(kept);
  }

  it('keeps the sessions of a training whose method other jobs evict, and releases the method once the training ends', async () => {
    const held = await methods.keep('training', config);
    // A spy that calls through: the real release runs, and the test sees when.
    const release = jest.spyOn(held.method, 'release');
    let others: Promise<void> | undefined;
    // Mid-training (an optimizer step just done, most of them still to come), 4 other models' jobs keep theirs:
    // the training's method is the least recently used of 5 and is evicted in this very turn.
    methods.lend(held, {
      onProgress: ({ fraction }) => {
        if (others === undefined && fraction > 0 && fraction < 0.5) others = keepOthers(['b', 'c', 'd', 'e']);
      },
    });
    let trained;
    try {
      trained = await held.method.train({ modelId: 'training', config, samples: commitExamples(loadIris()) });
    } finally {
      methods.end(held);
    }
    expect(others).toBeDefined(); // the eviction did come mid-training
    await others;
    expect(trained.version).toBe(1);
    expect(methods.get('training')).toBeUndefined(); // evicted: the next job makes a new method
    await methods.close();
    expect(release).toHaveBeenCalledTimes(1); // released once, after the training ended its hold
  });

  it('releases an evicted method at once when no job holds it, and a held one when its last hold ends', async () => {
    const idle = await methods.keep('idle', config);
    methods.end(idle);
    const idleRelease = jest.spyOn(idle.method, 'release');
    const first = await methods.keep('held', config);
    const second = await methods.keep('held', config); // two holds on one method
    expect(second).toBe(first);
    const heldRelease = jest.spyOn(first.method, 'release');
    await keepOthers(['b', 'c', 'd']); // evicts 'idle', the least recently used
    await keepOthers(['e']); // evicts 'held'
    expect(methods.get('idle')).toBeUndefined();
    expect(methods.get('held')).toBeUndefined();
    expect(idleRelease).toHaveBeenCalledTimes(1);
    methods.end(first);
    expect(heldRelease).not.toHaveBeenCalled(); // one hold is left
    methods.end(second);
    expect(heldRelease).toHaveBeenCalledTimes(1);
  });

  it('releases a method its holder drops (after an error) once that holder ends its hold', async () => {
    const kept: KeptMethod = await methods.keep('failed', config);
    const release = jest.spyOn(kept.method, 'release');
    await methods.drop('failed');
    expect(methods.get('failed')).toBeUndefined();
    expect(release).not.toHaveBeenCalled();
    methods.end(kept);
    await methods.close();
    expect(release).toHaveBeenCalledTimes(1);
  });
});
