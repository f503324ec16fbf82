/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
// A worker keeps the engine methods of its 4 most recently used models (KeptMethods), and its training queue and
// unlearning queue run side by side: while a forget pass runs a model's method, other jobs keeping 4 other models
// evict it. The pass goes on with the method it holds and records the version it published (it failed after
// logging MODEL_PUBLISHED, on a look-up of the method that found nothing, before this was fixed).
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { KeptMethods } from '../../apps/api/src/models/kept-methods';
import { createAndTrain, forgetAndWait, irisSisaBody, uploadDataset } from '../support/api-data';
import { JobHarness, startJobHarness } from '../support/job-harness';

describe("a kept method evicted under a running forget pass", () => {
  let h: JobHarness;

  beforeAll(async () => {
    // No retry: the pass must succeed on its first attempt (a retry's recovery would hide the failure).
    h = await startJobHarness('kept_method_eviction', { jobs: { retryLimit: 0 } });
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await h?.close();
  });

  it('publishes and records the version with the method the pass holds', async () => {
    const iris = loadIris();
    const { datasetId } = await uploadDataset(h, iris);
    const modelId = await createAndTrain(h, irisSisaBody(datasetId, 'kept-eviction'));
    // The pass's first keep of the model is its forget's: as it returns, 4 other models' jobs (the training
    // queue's, in effect) keep their methods in the same worker. The real keep runs each time (a spy that calls
    // through, adding the other jobs' keeps), and so does the engine.
    const keep = KeptMethods.prototype.keep;
    let evicted: boolean | undefined;
    jest.spyOn(KeptMethods.prototype, 'keep').mockImplementation(async function (this: KeptMethods, id, config) {
      const kept = await keep.call(this, id, config);
      if (id === modelId && evicted === undefined) {
        for (const other of ['other-1', 'other-2', 'other-3', 'other-4']) this.end(await keep.call(this, other, config));
        evicted = this.get(modelId) === undefined;
      }
      return kept;
    });
    await forgetAndWait(h, datasetId, iris[0].externalId);
    expect(evicted).toBe(true); // the eviction did come between the pass's keep and its forget
    const { body: model } = await request(h.app.getHttpServer()).get(`/v1/models/${modelId}`).auth(h.ml, { type: 'bearer' }).expect(200);
    expect(model.latestVersion).toBe(2);
  });
});
