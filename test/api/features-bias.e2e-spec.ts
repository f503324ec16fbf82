/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { loadIris, loadVerifiedModel } from '@lethe/unlearning';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { createAndTrain, uploadDataset } from '../support/api-data';

/**
 * Feature-level unlearning and bias identification through the service, with the worker: a forget request
 * naming columns retrains every model of the dataset without them (their changes change no output bit of the
 * published file); bad input is a 400 naming the field with nothing logged.
 */
describe('feature-level unlearning', () => {
  let h: JobHarness;
  let datasetId: string;
  let modelId: string;
  const iris = loadIris();
  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const treeSize = async () => (await h.ledger.getCheckpoint()).treeSize;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    h = await startJobHarness('features');
    ({ datasetId } = await uploadDataset(h, iris));
    modelId = await createAndTrain(h, {
      datasetId,
      method: 'sisa',
      shards: 2,
      slices: 2,
      architecture: { type: 'logreg' },
      epochs: 20,
      batchSize: 8,
      learningRate: 0.1,
      seed: 'features-1',
      evaluation: { holdoutFraction: 0.2 },
    });
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['empty', [], /^features must be a non-empty array/],
    ['out of range', [4], /^features\[0\] is 4, beyond the dataset's 4 columns/],
    ['negative', [-1], /^features\[0\] is -1/],
    ['duplicated', [1, 1], /^features\[1\] names column 1 twice/],
    ['fractional', [1.5], /^features\[0\] must be an integer/],
    ['a string', ['1'], /^features\[0\] must be an integer/],
    ['not an array', 2, /^features must be a non-empty array/],
    ['every column', [0, 1, 2, 3], /^features names every one of the 4 columns/],
  ])('refuses features %s with a 400 naming it, logging and queueing nothing', async (_, features, message) => {
    const before = await treeSize();
    const jobs = await h.dataSource.query(`SELECT count(*)::int AS n FROM jobs`);
    const res = await asMl(http().post('/v1/forget-requests')).send({ datasetId, features, reason: 'regulation' }).expect(400);
    expect(res.body.message).toMatch(message);
    expect(await treeSize()).toBe(before);
    expect(await h.dataSource.query(`SELECT count(*)::int AS n FROM jobs`)).toEqual(jobs);
    expect(await h.dataSource.query(`SELECT count(*)::int AS n FROM forget_requests`)).toEqual([{ n: 0 }]);
  });

  it('refuses features beside externalIds, naming the field', async () => {
    const before = await treeSize();
    const res = await asMl(http().post('/v1/forget-requests')).send({ datasetId, features: [1], externalIds: [iris[0].externalId], reason: 'r' }).expect(400);
    expect(res.body.message).toMatch(/^features: give features .* not both/);
    expect(await treeSize()).toBe(before);
  });

  it('retrains every model without the columns: logged with the columns, importance 0 after, the old version retired, no output bit depends on them', async () => {
    const created = await asMl(http().post('/v1/forget-requests')).send({ datasetId, features: [2], reason: 'regulation forbids petal length' }).expect(202);
    const [requested] = await h.ledger.findEntries({ type: 'FORGET_REQUESTED', fields: { requestId: created.body.id }, limit: 1 });
    expect(requested.event).toMatchObject({ commitments: [], features: [2] });
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${created.body.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      120_000,
    );
    expect(done.state).toBe('completed');
    expect(done.features).toEqual([2]);
    expect(done.modelVersions).toEqual([expect.objectContaining({ modelId, version: 2 })]);
    const [unlearned] = await h.ledger.findEntries({ type: 'UNLEARN_COMPLETED', fields: { modelId, modelVersion: 2 }, limit: 1 });
    expect(unlearned.event).toMatchObject({ requestIds: [created.body.id], features: [2], guarantee: { kind: 'exact' } });
    const evidence = (unlearned.event as { evidence: Record<string, any> }).evidence;
    expect(evidence.importanceMeasuredOn).toBe('holdout');
    expect(evidence.before.permutationImportance[0]).toEqual({ column: 2, importance: expect.any(Number) });
    expect(evidence.after.permutationImportance).toEqual([{ column: 2, importance: 0 }]);
    expect(typeof evidence.before.testAccuracy).toBe('number');
    expect(typeof evidence.after.testAccuracy).toBe('number');
    // Version 1 read the column: retired with the request, its file gone.
    await asMl(http().get(`/v1/models/${modelId}/versions/1/onnx`)).expect(410);

    // The published file itself: column 2 changed (any value, any sign) changes no output byte; column 3 does.
    const file = await asMl(http().get(`/v1/models/${modelId}/versions/2/onnx`)).responseType('blob').expect(200);
    const served = await loadVerifiedModel(new Uint8Array(file.body as Buffer), done.modelVersions[0].onnxSha256);
    try {
      const rows = iris.slice(0, 60).map((s) => Array.from(s.features));
      const outputs = async (input: number[][]) => {
        const out = await served.predict(input);
        return Buffer.concat([Buffer.from(out.probabilities.buffer.slice(0)), Buffer.from(JSON.stringify(out.labels))]);
      };
      const original = await outputs(rows);
      expect(await outputs(rows.map((r, i) => r.map((v, j) => (j === 2 ? (i % 2 ? -3e38 : 1e6 * i) : v))))).toEqual(original);
      expect(await outputs(rows.map((r) => r.map((v, j) => (j === 3 ? v + 5 : v))))).not.toEqual(original); // positive control
    } finally {
      await served.release();
    }
  }, 180_000);
});
