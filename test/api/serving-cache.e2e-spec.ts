/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
// The sessions the API keeps for predictions (ModelService's cache of verified ONNX sessions): a version that a
// forget retired learned the forgotten samples, and its session is released as soon as the model's next version
// is loaded, not left until the least recently used goes or until someone asks for the retired version.
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
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
});
