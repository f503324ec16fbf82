/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import type { LedgerEvent } from '@lethe/events';
import { SampleVault } from '@lethe/ledger';
import { loadIris } from '@lethe/unlearning';
import { replayModel } from '@lethe/verifier/replay';
import { listenOnLoopback } from '../support/api-data';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { downloadOnnx, trainSmallModel } from '../verifier/support/iris-history';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('online learning and retention: a model learns the samples uploaded since its last version; expired samples are forgotten', () => {
  let h: JobHarness;
  beforeAll(async () => {
    // The lifecycle sweep every second, so that samples expiring in seconds are found within the test.
    h = await startJobHarness('online', { env: { RETENTION_SWEEP_SECONDS: '1' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const logSize = async () => (await h.ledger.getCheckpoint()).treeSize;
  const iris = loadIris().filter((_, i) => i % 3 === 0);
  const register = async (extra: object = {}) => (await asMl(http().post('/v1/datasets')).send({ name: 'iris', features: 4, classes: 3, ...extra }).expect(201)).body.id as string;
  const upload = async (datasetId: string, samples: object[]) => (await asMl(http().post(`/v1/datasets/${datasetId}/samples`)).send(samples).expect(200)).body;
  const waitForJob = (jobId: string) =>
    waitFor(async () => (await asMl(http().get(`/v1/jobs/${jobId}`))).body, (j) => j.state === 'completed' || j.state === 'failed');
  const entries = async () =>
    ((await http().get('/v1/ledger/entries?start=0&limit=1000').expect(200)).body as { index: number; event: string }[]).map((e) => ({
      index: e.index,
      event: JSON.parse(e.event) as LedgerEvent,
    }));

  it('learn: version 2 holds the new samples (BATCH_LEARNED), byte for byte a training from scratch on the same samples; nothing new, no version', async () => {
    const datasetId = await register();
    await upload(datasetId, iris.slice(0, 30));
    const modelId = await trainSmallModel(h, datasetId, 'online');
    await upload(datasetId, iris.slice(30));

    const learn = await asMl(http().post(`/v1/models/${modelId}/learn`)).expect(202);
    const job = await waitForJob(learn.body.jobId);
    expect(job.state).toBe('completed');
    expect(job.result.modelVersions).toEqual([{ modelId, version: 2 }]);
    const learnedIn = (await entries()).filter((e) => e.event.type === 'BATCH_LEARNED' && e.event.modelId === modelId && e.event.modelVersion === 2);
    expect(learnedIn.length).toBeGreaterThan(0);
    // A model trained from scratch on the dataset now (same seed and settings) publishes the same bytes.
    const scratch = await trainSmallModel(h, datasetId, 'online');
    const learned = sha256(await downloadOnnx(h, h.auditor, modelId, 2));
    expect(sha256(await downloadOnnx(h, h.auditor, scratch, 1))).toBe(learned);
    // Control: version 1 (before the new samples) is another model.
    expect(sha256(await downloadOnnx(h, h.auditor, modelId, 1))).not.toBe(learned);
    // An auditor's replay (training from scratch on its copy of the data) reproduces the learned version.
    const report = await replayModel({
      apiUrl: await listenOnLoopback(h.app),
      apiKey: h.auditor,
      modelId,
      modelVersion: 2,
      data: { text: JSON.stringify(iris), format: 'json', name: 'iris.json' },
    });
    expect(report).toMatchObject({ ok: true, publishedSha256: learned });

    // Nothing uploaded since: the pass publishes nothing.
    const again = await waitForJob((await asMl(http().post(`/v1/models/${modelId}/learn`)).expect(202)).body.jobId);
    expect(again).toMatchObject({ state: 'completed', result: { modelVersions: [] } });
  });

  it('refuses a learn of an unknown model, a malformed id, a bad retentionDays or expiresAt, logging nothing', async () => {
    const datasetId = await register();
    const before = await logSize();
    await asMl(http().post('/v1/models/00000000-0000-4000-8000-000000000000/learn')).expect(404);
    await asMl(http().post('/v1/models/nope/learn')).expect(400);
    for (const retentionDays of [0, -1, 'a week', 36_501]) {
      const res = await asMl(http().post('/v1/datasets')).send({ name: 'iris', features: 4, classes: 3, retentionDays });
      expect([retentionDays, res.status]).toEqual([retentionDays, 400]);
      expect(JSON.stringify(res.body.message)).toContain('retentionDays');
    }
    for (const expiresAt of ['tomorrow', '2027-02-31', '2027-01-31T25:00:00Z', 1767225600000, '2027-01-31T00:00:00']) {
      const res = await upload(datasetId, [{ ...iris[0], expiresAt }]);
      expect(res).toMatchObject({ accepted: 0, rejectedCount: 1 });
      expect(res.rejected[0].error).toMatch(/^expiresAt: /);
    }
    expect(await logSize()).toBe(before);
  });

  it('retention: samples past their expiresAt, and a dataset past its retentionDays, get a forget request (reason retention), served like any other', async () => {
    const vault = new SampleVault(h.dataSource, h.ledger, h.keyStore);
    const datasetId = await register();
    const soon = new Date(Date.now() + 4000).toISOString();
    const later = new Date(Date.now() + 86_400_000).toISOString();
    const samples = iris.map((s, i) => ({ ...s, ...(i < 3 ? { expiresAt: soon } : i < 6 ? { expiresAt: later } : {}) }));
    await upload(datasetId, samples);
    // 0.00005 days: about 4.3 seconds after the upload.
    const retained = await register({ retentionDays: 0.00005 });
    expect((await asMl(http().get(`/v1/datasets/${retained}`)).expect(200)).body.retentionDays).toBe(0.00005);
    // The log says how long the dataset keeps its samples (a dataset without a retention has no such field).
    const registered = (await entries()).filter((e) => e.event.type === 'DATASET_REGISTERED').map((e) => e.event);
    expect(registered).toContainEqual({ type: 'DATASET_REGISTERED', version: 1, datasetId: retained, name: 'iris', features: 4, classes: 3, retentionDays: 0.00005 });
    expect(registered).toContainEqual({ type: 'DATASET_REGISTERED', version: 1, datasetId, name: 'iris', features: 4, classes: 3 });
    await upload(retained, iris.slice(0, 5));

    const requestsOf = async (id: string) => (await asMl(http().get(`/v1/forget-requests?datasetId=${id}`)).expect(200)).body as { id: string; reason: string; state: string }[];
    const [filed] = await waitFor(() => requestsOf(datasetId), (list) => list.length > 0 && list.every((r) => r.state === 'completed'));
    expect(filed.reason).toBe('retention');
    const { body } = await asMl(http().get(`/v1/forget-requests/${filed.id}`)).expect(200);
    expect(body.samples).toHaveLength(3);
    // The expired samples are erased; the ones expiring tomorrow and those without an expiry are kept.
    expect(await vault.findSamples(datasetId, { externalIds: iris.slice(0, 3).map((s) => s.externalId) })).toHaveLength(0);
    expect(await vault.findSamples(datasetId, { externalIds: iris.slice(3, 8).map((s) => s.externalId) })).toHaveLength(5);
    expect(await requestsOf(datasetId)).toHaveLength(1);

    const [whole] = await waitFor(() => requestsOf(retained), (list) => list.length > 0 && list.every((r) => r.state === 'completed'));
    expect(whole.reason).toBe('retention');
    expect(await vault.findSamples(retained, { externalIds: iris.slice(0, 5).map((s) => s.externalId) })).toHaveLength(0);
  });
});
