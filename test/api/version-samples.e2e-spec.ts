/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { uploadDataset } from '../support/api-data';

/**
 * The samples a version learned (model_version_samples) are written after a forgotten version is served. They
 * must equal its predecessor's less the forgotten samples, and a pass that finds them owed (a crash between
 * serving the version and writing them, made here by deleting them and marking them owed on the version's row,
 * as saving it does) writes them first, before it reads the
 * version, so the next version and the retirement of versions that learned a sample see every row.
 */
describe('the sample rows of a version made by forgetting', () => {
  let h: JobHarness;
  let datasetId: string;
  let commitments: Map<string, string>;
  let modelId: string;
  const iris = loadIris();
  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });

  /** The commitments version `version` of the model learned, sorted. */
  const learned = async (version: number): Promise<string[]> =>
    (
      await h.dataSource.query(
        `SELECT c.commitment FROM model_version_samples m JOIN sample_commitments c ON c.id = m.sample_id
          WHERE m.model_id = $1 AND m.version = $2 ORDER BY c.commitment`,
        [modelId, version],
      )
    ).map((r: { commitment: string }) => r.commitment);

  async function forget(externalId: string): Promise<void> {
    const { body: filed } = await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: [externalId], reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      120_000,
    );
    expect(done.state).toBe('completed');
  }

  beforeAll(async () => {
    h = await startJobHarness('version_samples');
    ({ datasetId, commitments } = await uploadDataset(h, iris));
    const { body: created } = await asMl(http().post('/v1/models'))
      .send({ datasetId, method: 'sisa', shards: 2, slices: 2, architecture: { type: 'logreg' }, epochs: 5, batchSize: 8, learningRate: 0.1, seed: 'rows' })
      .expect(202);
    modelId = created.modelId;
    const job = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      120_000,
    );
    expect(job.state).toBe('completed');
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('are its predecessor rows less the forgotten sample, and a pass that finds them missing writes them first', async () => {
    const first = commitments.get(iris[5].externalId)!;
    const second = commitments.get(iris[40].externalId)!;
    const v1 = await learned(1);
    expect(v1).toHaveLength(iris.length);
    await forget(iris[5].externalId);
    const v2 = await learned(2);
    expect(v2).toEqual(v1.filter((c) => c !== first));

    // A crash after version 2 was served and before its rows were written: none are there (the control), and its
    // row says they are owed.
    await h.dataSource.query(`DELETE FROM model_version_samples WHERE model_id = $1 AND version = 2`, [modelId]);
    await h.dataSource.query(`UPDATE model_versions SET samples_pending = true WHERE model_id = $1 AND version = 2`, [modelId]);
    expect(await learned(2)).toEqual([]);

    await forget(iris[40].externalId);
    expect(await learned(2)).toEqual(v2);
    expect(await learned(3)).toEqual(v2.filter((c) => c !== second));
    const versions = (await asMl(http().get(`/v1/models/${modelId}`)).expect(200)).body.versions as { version: number; state: string }[];
    // Version 2 learned the second sample: found through its rows written again, it is retired with version 1.
    expect(versions.map((v) => [v.version, v.state])).toEqual([
      [1, 'retired'],
      [2, 'retired'],
      [3, 'live'],
    ]);
  }, 240_000);
});
