/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { Sample, TrainingConfigInput, loadIris } from '@lethe/unlearning';
import { fromScratchSha256 } from '../support/from-scratch';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { subjectsByGroup, uploadDataset } from '../support/api-data';
import { downloadOnnx } from '../verifier/support/iris-history';

/** Iris through the API: train SISA, predict, forget a subject, and compare with a from-scratch training. */
describe('models, jobs and forgetting', () => {
  let h: JobHarness;
  let datasetId: string;
  const iris = loadIris();
  /** Three samples of one subject, the ones forgotten below. */
  const alice = new Set(['iris-007', 'iris-071', 'iris-140']);
  let commitments: Map<string, string>;
  const body = (overrides: object = {}) => ({
    datasetId,
    method: 'sisa',
    shards: 3,
    slices: 2,
    architecture: { type: 'logreg' },
    epochs: 4,
    batchSize: 8,
    learningRate: 0.1,
    seed: 'e2e-iris',
    ...overrides,
  });
  let modelId: string;
  let jobId: string;

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });

  beforeAll(async () => {
    h = await startJobHarness('models_api');
    ({ datasetId, commitments } = await uploadDataset(h, iris, { subjectOf: subjectsByGroup({ alice }) }));
  });

  afterAll(() => h?.close());

  it.each([
    [{ method: 'sgd' }, 'method'],
    [{ architecture: { type: 'cnn' } }, 'architecture.type'],
    [{ architecture: 'logreg' }, 'architecture'],
    [{ architecture: { type: 'mlp' } }, 'architecture.hidden'],
    [{ architecture: { type: 'logreg', hidden: [8] } }, 'architecture.hidden'],
    [{ epochs: 0 }, 'epochs'],
    [{ batchSize: 1.5 }, 'batchSize'],
    [{ learningRate: -1 }, 'learningRate'],
    [{ seed: '' }, 'seed'],
    [{ datasetId: 'iris' }, 'datasetId'],
    [{ shards: 0 }, 'shards'],
    [{ optimizer: 'adam' }, 'optimizer'],
    [{ method: 'full' }, 'shards'],
    [{ shards: 20, slices: 10 }, 'shards'],
    [{ epochsPerSlice: 0 }, 'epochsPerSlice'],
    [{ epochsPerSlice: 1.5 }, 'epochsPerSlice'],
    [{ epochsPerSlice: [2, 3] }, 'epochsPerSlice'],
    [{ method: 'full', shards: undefined, slices: undefined, epochsPerSlice: 4 }, 'epochsPerSlice'],
  ])('POST /v1/models %j is a 400 naming %s', async (overrides, field) => {
    const res = await asMl(http().post('/v1/models')).send(body(overrides)).expect(400);
    expect(res.body.message).toContain(field);
  });

  it('trains SISA in a worker: 202 with a job that runs to completed with progress 1', async () => {
    const created = await asMl(http().post('/v1/models')).send(body()).expect(202);
    expect(created.body).toEqual({ modelId: expect.any(String), jobId: expect.any(String) });
    ({ modelId, jobId } = created.body);
    const job = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    );
    expect(job).toMatchObject({ id: jobId, type: 'lethe.train', state: 'completed', progress: 1, result: { modelId, version: 1 } });
    await asMl(http().get('/v1/jobs/00000000-0000-4000-8000-000000000000')).expect(404);
  });

  it('describes the model and its version, whose hash is the one in MODEL_PUBLISHED and of the ONNX file', async () => {
    const { body: model } = await http().get(`/v1/models/${modelId}`).auth(h.auditor, { type: 'bearer' }).expect(200);
    expect(model).toMatchObject({ id: modelId, datasetId, state: 'ready', jobId, latestVersion: 1, config: body() });
    expect(model.epochsPerSlice).toEqual([2, 3]); // SISA's schedule for 4 epochs over 2 slices: a = 8/3
    expect(model.versions).toHaveLength(1);
    const [v1] = model.versions;
    expect(v1).toMatchObject({ version: 1, onnxSha256: expect.stringMatching(/^[0-9a-f]{64}$/), reflectsForgetRequests: [], metrics: expect.any(Object) });
    const entry = await h.ledger.getEvent(v1.ledgerIndex);
    expect(entry).toMatchObject({ type: 'MODEL_PUBLISHED', modelId, modelVersion: 1, onnxSha256: v1.onnxSha256 });
    const { body: version } = await asMl(http().get(`/v1/models/${modelId}/versions/1`)).expect(200);
    expect(version).toEqual(v1);
    const onnx = await downloadOnnx(h, h.ml, modelId, 1);
    expect(createHash('sha256').update(onnx).digest('hex')).toBe(v1.onnxSha256);
    await asMl(http().get(`/v1/models/${modelId}/versions/9`)).expect(404);
    await asMl(http().get(`/v1/models/${modelId}/versions/x`)).expect(400);
    const list = await asMl(http().get('/v1/models?limit=10')).expect(200);
    expect(list.body).toEqual([expect.objectContaining({ id: modelId, latestVersion: 1 })]);
  });

  it('predicts with the latest version; bad inputs are 400s naming the row', async () => {
    const rows = [iris[0].features, iris[75].features, iris[149].features];
    const { body: out } = await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: rows }).expect(200);
    expect(out.modelVersion).toBe(1);
    expect(out.onnxSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(out.predictions).toHaveLength(3);
    expect(out.predictions[0]).toBe(iris[0].label);
    for (const p of out.probabilities) {
      expect(p).toHaveLength(3);
      expect(p.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 4);
    }
    expect((await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: [[1, 2, 3]] }).expect(400)).body.message).toContain('inputs[0]');
    expect((await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: [[1, 2, 3, 'NaN']] }).expect(400)).body.message).toContain('inputs[0][3]');
    expect((await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: [] }).expect(400)).body.message).toContain('inputs');
    await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: rows, version: 7 }).expect(404);
  });

  it('forgets a subject: a new version equal to training from scratch without it, the samples shredded', async () => {
    const created = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'alice', reason: 'GDPR art. 17 request' }).expect(202);
    const requestId = created.body.id;
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${requestId}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done.state).toBe('completed');
    expect(done.modelVersions).toEqual([
      {
        modelId,
        version: 2,
        onnxSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        ledgerIndex: expect.any(Number),
        unlearnLedgerIndex: expect.any(Number),
        // Published first, its evidence recorded after (EVIDENCE_RECORDED) and before the request completes.
        evidenceLedgerIndex: expect.any(Number),
        guarantee: { kind: 'exact' },
      },
    ]);
    expect(done.evidence[modelId]).toMatchObject({ forgottenCount: 3, retainCount: 147 });

    const { body: model } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
    expect(model.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    const v2 = model.versions[1];
    expect(v2).toMatchObject({ onnxSha256: done.modelVersions[0].onnxSha256, reflectsForgetRequests: [requestId] });
    expect(v2.onnxSha256).not.toBe(model.versions[0].onnxSha256);
    expect(await h.ledger.getEvent(v2.unlearnLedgerIndex)).toMatchObject({
      type: 'UNLEARN_COMPLETED',
      modelId,
      requestIds: [requestId],
      oldOnnxSha256: model.versions[0].onnxSha256,
      newOnnxSha256: v2.onnxSha256,
      modelVersion: 2,
    });
    const rows: { shredded: boolean }[] = await h.dataSource.query(`SELECT forgotten_at IS NOT NULL AS shredded FROM sample_commitments WHERE commitment = ANY($1::text[])`, [
      [...alice].map((id) => commitments.get(id)),
    ]);
    expect(rows.map((r) => r.shredded)).toEqual([true, true, true]);

    // The reference an auditor would replay: the engine alone, same config, the dataset without alice.
    const config: TrainingConfigInput = {
      method: 'sisa',
      model: 'logistic-regression',
      numFeatures: 4,
      numClasses: 3,
      shards: 3,
      slices: 2,
      epochs: 4,
      batchSize: 8,
      learningRate: 0.1,
      seed: 'e2e-iris',
    };
    const retained: Sample[] = iris.filter((s) => !alice.has(s.externalId)).map((s) => ({ ...s, commitment: commitments.get(s.externalId)! }));
    expect(v2.onnxSha256).toBe(await fromScratchSha256(config, retained));

    const { body: out } = await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: [iris[0].features] }).expect(200);
    expect(out).toMatchObject({ modelVersion: 2, onnxSha256: v2.onnxSha256 });
    // Version 1 learned alice: it is retired (test/api/retirement.e2e-spec.ts has the rest).
    await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: [iris[0].features], version: 1 }).expect(410);
  });
  it('keeps full epochs per slice for a model stored before epochsPerSlice existed, when it forgets', async () => {
    const oldDataset = (await asMl(http().post('/v1/datasets')).send({ name: 'iris-old', features: 4, classes: 3 }).expect(201)).body.id;
    const upload = await asMl(http().post(`/v1/datasets/${oldDataset}/samples`))
      .send(iris.map((s) => ({ ...s, subjectId: `subject-${s.externalId}` })))
      .expect(200);
    const committed = new Map<string, string>(upload.body.commitments.map((c: { externalId: string; commitment: string }) => [c.externalId, c.commitment]));
    // Every slice 4 epochs: the schedule, and the hash, of a model made before the field; then its rows as they were stored then.
    const created = await asMl(http().post('/v1/models')).send(body({ datasetId: oldDataset, epochsPerSlice: 4 })).expect(202);
    const job = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.body.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    );
    expect(job.state).toBe('completed');
    const oldModel = created.body.modelId;
    await h.dataSource.query(`UPDATE models SET engine_config = engine_config - 'epochsPerSlice' WHERE id = $1`, [oldModel]);
    await h.dataSource.query(`UPDATE model_versions SET engine_state = jsonb_set(engine_state, '{config}', (engine_state->'config') - 'epochsPerSlice') WHERE model_id = $1`, [
      oldModel,
    ]);
    expect((await asMl(http().get(`/v1/models/${oldModel}`)).expect(200)).body.epochsPerSlice).toEqual([4, 4]);

    const forget = await asMl(http().post('/v1/forget-requests')).send({ datasetId: oldDataset, subjectId: 'subject-iris-042', reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${forget.body.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done.state).toBe('completed');
    const retained: Sample[] = iris.filter((s) => s.externalId !== 'iris-042').map((s) => ({ ...s, commitment: committed.get(s.externalId)! }));
    const config: TrainingConfigInput = { method: 'sisa', model: 'logistic-regression', numFeatures: 4, numClasses: 3, shards: 3, slices: 2, epochs: 4, batchSize: 8, learningRate: 0.1, seed: 'e2e-iris' };
    const v2 = done.modelVersions[0].onnxSha256;
    expect(v2).toBe(await fromScratchSha256({ ...config, epochsPerSlice: 4 }, retained));
    expect(v2).not.toBe(await fromScratchSha256(config, retained)); // SISA's schedule would give other bytes
  });
});
