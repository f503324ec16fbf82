/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import { replayModel } from '@lethe/verifier/replay';
import { Sample, TrainingConfigInput, loadIris, rdpEpsilon } from '@lethe/unlearning';
import { fromScratchSha256 } from '../support/from-scratch';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { listenOnLoopback, subjectsByGroup, uploadDataset } from '../support/api-data';

/** DP-SGD through the API on iris (150 samples, so δ must be below 1/150): bad input, training, forgetting, replay. */
describe('models with privacy (DP-SGD)', () => {
  let h: JobHarness;
  let api: string;
  let datasetId: string;
  const iris = loadIris();
  const bob = new Set(['iris-012', 'iris-099']);
  let commitments: Map<string, string>;
  const privacy = { epsilon: 3, delta: 1e-3, clipNorm: 1 };
  const body = (overrides: object = {}) => ({
    datasetId,
    method: 'sisa',
    shards: 2,
    slices: 2,
    architecture: { type: 'logreg' },
    epochs: 6,
    batchSize: 16,
    learningRate: 0.5,
    seed: 'e2e-dp',
    privacy,
    ...overrides,
  });
  let modelId: string;

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });

  beforeAll(async () => {
    h = await startJobHarness('models_privacy');
    api = await listenOnLoopback(h.app);
    ({ datasetId, commitments } = await uploadDataset(h, iris, { subjectOf: subjectsByGroup({ bob }) }));
  });

  afterAll(() => h?.close());

  /** What a refused request must leave as it was: the log, the models, the jobs and pg-boss's queue. */
  async function state() {
    const [{ models }] = await h.dataSource.query(`SELECT count(*)::int AS models FROM models`);
    const [{ jobs }] = await h.dataSource.query(`SELECT count(*)::int AS jobs FROM jobs`);
    const [{ queued }] = await h.dataSource.query(`SELECT count(*)::int AS queued FROM pgboss.job`);
    return { treeSize: (await h.ledger.getCheckpoint()).treeSize, models, jobs, queued };
  }

  /** An entry of the public log as anyone reads it (GET /v1/ledger/entries), not through the service's own handle. */
  async function publicEntry(index: number): Promise<Record<string, unknown>> {
    const { body } = await http().get(`/v1/ledger/entries?start=${index}&limit=1`).expect(200);
    return JSON.parse(body[0].event);
  }

  it.each([
    [{ epsilon: 0 }, 'privacy.epsilon'],
    [{ epsilon: -1 }, 'privacy.epsilon'],
    [{ epsilon: 'high' }, 'privacy.epsilon'],
    [{ delta: 0 }, 'privacy.delta'],
    [{ delta: -1e-5 }, 'privacy.delta'],
    [{ delta: 1 / 150 }, 'privacy.delta'], // δ ≥ 1/n, n = 150 training samples
    [{ delta: 0.01 }, 'privacy.delta'],
    [{ clipNorm: 0 }, 'privacy.clipNorm'],
    [{ clipNorm: -2 }, 'privacy.clipNorm'],
    [{ clipNorm: undefined }, 'privacy.clipNorm'],
    [{ accountant: 'moments' }, 'privacy.accountant'],
    [{ epsilon: 1e-6, delta: 1e-12 }, 'privacy.epsilon'], // out of reach: σ would exceed 10^4
    [{ noise: 1 }, 'privacy.property noise'],
  ])('POST /v1/models with privacy %j is a 400 naming %s; nothing is queued or logged', async (overrides, field) => {
    const before = await state();
    const res = await asMl(http().post('/v1/models')).send(body({ privacy: { ...privacy, ...overrides } })).expect(400);
    expect(JSON.stringify(res.body.message)).toContain(field);
    expect(await state()).toEqual(before);
  });

  it('refuses privacy that is not an object, and says what n is', async () => {
    const before = await state();
    expect((await asMl(http().post('/v1/models')).send(body({ privacy: 'strong' })).expect(400)).body.message).toContain('privacy must be an object');
    const res = await asMl(http().post('/v1/models')).send(body({ privacy: { ...privacy, delta: 0.01 } })).expect(400);
    expect(res.body.message).toContain('privacy.delta must be below 1/n = 1/150');
    // n counts the samples it would train on: the holdout's are not among them.
    const heldOut = await asMl(http().post('/v1/models'))
      .send(body({ evaluation: { holdoutFraction: 0.2 }, privacy: { ...privacy, delta: 0.01 } }))
      .expect(400);
    const n = Number(/privacy\.delta must be below 1\/n = 1\/(\d+)/.exec(heldOut.body.message)?.[1]);
    expect(n).toBeGreaterThan(90);
    expect(n).toBeLessThan(140);
    expect(await state()).toEqual(before);
  });

  it('trains with DP-SGD: the resolved settings on the model, MODEL_PUBLISHED.privacy in the log, replayed to the same bytes', async () => {
    const before = await state();
    const created = await asMl(http().post('/v1/models')).send(body()).expect(202);
    modelId = created.body.modelId;
    // The positive control of the refusals above: an accepted request does show in the models, the jobs and the queue.
    const after = await state();
    expect(after).toMatchObject({ models: before.models + 1, jobs: before.jobs + 1 });
    expect(after.queued).toBeGreaterThan(before.queued);
    const job = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.body.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    );
    expect(job.state).toBe('completed');
    const { body: model } = await http().get(`/v1/models/${modelId}`).auth(h.auditor, { type: 'bearer' }).expect(200);
    // 150 samples, 2 shards, expected batch 16: ceil(150 / 32) = 5 steps per epoch, q = 1/5
    expect(model.privacy).toMatchObject({ ...privacy, accountant: 'rdp', stepsPerEpoch: 5, noiseSeed: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const q = model.privacy.sampleRate; // 1/5 rounded up to k / 2^53
    expect(q).toBeGreaterThanOrEqual(0.2);
    expect(q - 0.2).toBeLessThan(1e-15);
    expect(model.config.privacy).toEqual(privacy); // the request as given; no seed in it
    const steps = 5 * model.epochsPerSlice.reduce((a: number, b: number) => a + b, 0);
    const published = await publicEntry(model.versions[0].ledgerIndex);
    expect(published).toMatchObject({
      type: 'MODEL_PUBLISHED',
      privacy: { mechanism: 'dp-sgd', delta: 1e-3, noiseMultiplier: model.privacy.noiseMultiplier, sampleRate: q, steps, clipNorm: 1, accountant: 'rdp' },
    });
    const { privacy: guarantee } = published as { privacy: { epsilon: number } };
    expect(guarantee.epsilon).toBeLessThanOrEqual(3);
    expect(guarantee.epsilon).toBe(rdpEpsilon({ sampleRate: q, noiseMultiplier: model.privacy.noiseMultiplier, steps }, 1e-3).epsilon);
    // The noise seed is in neither the log nor any public answer.
    const { body: entries } = await http().get(`/v1/ledger/entries?start=0&limit=1000`).expect(200);
    expect(JSON.stringify(entries)).not.toContain(model.privacy.noiseSeed);
    // Nor in clear in the models' rows: sealed under the model's key (the answer above opened it). The control: the
    // same query finds the noise multiplier stored beside where the seed was.
    const holding = async (text: string) =>
      (
        await h.dataSource.query(
          `SELECT (SELECT count(*)::int FROM models WHERE id = $1 AND (engine_config::text || config::text) LIKE '%' || $2 || '%')
                + (SELECT count(*)::int FROM model_versions WHERE model_id = $1 AND engine_state::text LIKE '%' || $2 || '%') AS n`,
          [modelId, text],
        )
      )[0].n;
    expect(await holding(model.privacy.noiseSeed)).toBe(0);
    expect(await holding(String(model.privacy.noiseMultiplier))).toBeGreaterThan(0);
    // Nor in its shard tasks (the training fanned out, one task per shard): a task waits in job_tasks as JSON, so it
    // goes without the seed and its worker opens the seed from the model's row. The control: the same query finds the
    // noise multiplier in the tasks' inputs, beside where the seed was.
    const inTasks = async (text: string) =>
      (
        await h.dataSource.query(
          `SELECT count(*)::int AS n FROM job_tasks WHERE job_id = $1 AND (input::text || coalesce(result::text, '') || coalesce(error, '')) LIKE '%' || $2 || '%'`,
          [created.body.jobId, text],
        )
      )[0].n;
    expect((await h.dataSource.query(`SELECT count(*)::int AS n FROM job_tasks WHERE job_id = $1 AND state = 'completed'`, [created.body.jobId]))[0].n).toBe(2);
    expect(await inTasks(model.privacy.noiseSeed)).toBe(0);
    expect(await inTasks(String(model.privacy.noiseMultiplier))).toBe(2);
    expect((await h.dataSource.query(`SELECT noise_key_id IS NOT NULL AND noise_seeds IS NOT NULL AS sealed FROM models WHERE id = $1`, [modelId]))[0].sealed).toBe(true);

    const report = await replayModel({
      apiUrl: api,
      apiKey: h.auditor,
      modelId,
      modelVersion: 1,
      data: { text: JSON.stringify(iris), format: 'json', name: 'iris.json' },
    });
    expect(report).toMatchObject({ ok: true, publishedSha256: model.versions[0].onnxSha256 });
  });

  it('forgets exactly from a DP model: the new version is a DP training from scratch without the samples, with the same guarantee', async () => {
    const created = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'bob', reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${created.body.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done.state).toBe('completed');
    const { body: model } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
    const [v1, v2] = model.versions;
    const first = await publicEntry(v1.ledgerIndex);
    expect(first.privacy).toMatchObject({ mechanism: 'dp-sgd', noiseMultiplier: model.privacy.noiseMultiplier });
    expect(await publicEntry(v2.ledgerIndex)).toMatchObject({ type: 'MODEL_PUBLISHED', modelVersion: 2, privacy: first.privacy });
    const config: TrainingConfigInput = {
      method: 'sisa',
      model: 'logistic-regression',
      numFeatures: 4,
      numClasses: 3,
      shards: 2,
      slices: 2,
      epochs: 6,
      epochsPerSlice: model.epochsPerSlice,
      batchSize: 16,
      learningRate: 0.5,
      seed: 'e2e-dp',
      privacy: model.privacy,
    };
    const retained: Sample[] = iris.filter((s) => !bob.has(s.externalId)).map((s) => ({ ...s, commitment: commitments.get(s.externalId)! }));
    expect(v2.onnxSha256).toBe(await fromScratchSha256(config, retained));
    expect(v2.onnxSha256).not.toBe(await fromScratchSha256({ ...config, privacy: undefined }, retained));

    // An auditor's replay of version 2 on the data without bob gives its bytes; with bob's samples it does not.
    const replay = (examples: typeof iris) =>
      replayModel({ apiUrl: api, apiKey: h.auditor, modelId, modelVersion: 2, data: { text: JSON.stringify(examples), format: 'json', name: 'iris.json' } });
    expect(await replay(iris.filter((s) => !bob.has(s.externalId)))).toMatchObject({ ok: true, publishedSha256: v2.onnxSha256, samples: 148 });
    expect(await replay(iris)).toMatchObject({ ok: false, publishedSha256: v2.onnxSha256, samples: 150 });
  });
});
