/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
// The sessions the API keeps for predictions (ModelService's cache of verified ONNX sessions): a version that a
// forget retired learned the forgotten samples, and its session is released as soon as the model's next version
// is loaded, not left until the least recently used goes or until someone asks for the retired version. A
// prediction already running on a session the cache releases (either way) still answers: the release waits for it.
import * as ort from 'onnxruntime-node';
import request from 'supertest';
import { VerifiedModel, loadIris } from '@lethe/unlearning';
import { ModelService } from '../../apps/api/src/models/model.service';
import { uploadDataset } from '../support/api-data';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { forgetSubject, trainSmallModel } from '../verifier/support/iris-history';

describe('the serving cache', () => {
  let h: JobHarness;
  beforeAll(async () => {
    h = await startJobHarness('serving_cache');
  });
  afterAll(async () => {
    await h?.close();
  });

  it("releases a retired version's session when the model's next version is loaded", async () => {
    const samples = loadIris().filter((_, i) => i % 3 === 0);
    const { datasetId } = await uploadDataset(h, samples, { subjectOf: (_, i) => (i === 7 ? 'carol' : `other-${i}`) });
    const modelId = await trainSmallModel(h, datasetId, 'serving-cache');
    const predict = () =>
      request(h.app.getHttpServer()).post(`/v1/models/${modelId}/predict`).auth(h.ml, { type: 'bearer' }).send({ inputs: [[5.1, 3.5, 1.4, 0.2]] });
    // What the cache holds, by `modelId:version` (its private LruMap, read as the test's window on it).
    const cached = () => (h.app.get(ModelService) as unknown as { loaded: { keys(): string[] } }).loaded.keys();

    expect((await predict().expect(200)).body.modelVersion).toBe(1);
    expect(cached()).toEqual([`${modelId}:1`]);
    await forgetSubject(h, datasetId, 'carol');
    // Control: the worker retired version 1, and nothing in the API has looked at it since: it is still loaded.
    expect(cached()).toEqual([`${modelId}:1`]);

    expect((await predict().expect(200)).body.modelVersion).toBe(2);
    expect(cached()).toEqual([`${modelId}:2`]);
  });

  /**
   * A model trained on a third of iris (carol's sample among them), one prediction answered (its version 1 is in
   * the cache), and that cached version's next session run held at the test's gate: the run is still the real
   * onnxruntime run, taken once the gate opens (onnxruntime itself runs a session on a later turn of the event
   * loop, the window this stretches).
   */
  async function modelWithAHeldRun(seed: string) {
    const samples = loadIris().filter((_, i) => i % 3 === 0);
    const { datasetId } = await uploadDataset(h, samples, { subjectOf: (_, i) => (i === 7 ? 'carol' : `other-${i}-${seed}`) });
    const modelId = await trainSmallModel(h, datasetId, seed);
    const predict = (version?: number) =>
      request(h.app.getHttpServer())
        .post(`/v1/models/${modelId}/predict`)
        .auth(h.ml, { type: 'bearer' })
        .send({ inputs: [[5.1, 3.5, 1.4, 0.2]], ...(version === undefined ? {} : { version }) });
    expect((await predict().expect(200)).body.modelVersion).toBe(1);
    const cache = (h.app.get(ModelService) as unknown as { loaded: { get(key: string): Promise<VerifiedModel> | undefined; settled(): Promise<void> } })
      .loaded;
    const session = ((await cache.get(`${modelId}:1`)) as unknown as { session: { run(...args: unknown[]): Promise<unknown> } }).session;
    const run = session.run.bind(session);
    /** A run of the session itself (one row), past the gate: it fails once the session is released. */
    const runSession = () => run({ input: new ort.Tensor('float32', Float32Array.from([5.1, 3.5, 1.4, 0.2]), [1, 4]) });
    let entered!: () => void;
    let open!: () => void;
    const inRun = new Promise<void>((resolve) => (entered = resolve));
    const gate = new Promise<void>((resolve) => (open = resolve));
    session.run = async (...args: unknown[]) => {
      entered();
      await gate;
      return run(...args);
    };
    // The prediction that will be held (supertest sends a request once it is awaited or then-ed).
    const held = predict().then((res) => res);
    await inRun;
    return { datasetId, predict, held, open, cache, runSession };
  }

  it('answers a prediction running on a retired version whose session is released as the next version loads', async () => {
    const { datasetId, predict, held, open, cache, runSession } = await modelWithAHeldRun('held-then-next');
    try {
      await forgetSubject(h, datasetId, 'carol'); // version 2 published, version 1 retired
      expect((await predict().expect(200)).body.modelVersion).toBe(2); // loads version 2, which releases version 1's session
      // Without the count, version 1's session was released at once, under the held run ("Session already disposed.").
      await expect(runSession()).resolves.toBeDefined();
    } finally {
      open(); // a failed check must not leave the request hanging
    }
    const answer = await held;
    expect({ status: answer.status, version: answer.body.modelVersion }).toEqual({ status: 200, version: 1 });
    await cache.settled();
    await expect(runSession()).rejects.toThrow(/disposed/); // released once the prediction ended
  });

  it('answers a prediction running on a version whose session a request for the retired version drops', async () => {
    const { datasetId, predict, held, open, cache, runSession } = await modelWithAHeldRun('held-then-asked');
    try {
      await forgetSubject(h, datasetId, 'carol');
      await predict(1).expect(410); // the older path: a request for the retired version drops its session
      await expect(runSession()).resolves.toBeDefined();
    } finally {
      open();
    }
    const answer = await held;
    expect({ status: answer.status, version: answer.body.modelVersion }).toEqual({ status: 200, version: 1 });
    await cache.settled();
    await expect(runSession()).rejects.toThrow(/disposed/);
  });
});
