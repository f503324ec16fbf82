/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { validateEvent, type UnlearnCompleted } from '@lethe/events';
import { IRIS_CLASSES, IRIS_FEATURES, loadIris, type LabeledExample, type Sample, type TrainingConfigInput } from '@lethe/unlearning';
import { createAndTrain as createAndTrainModel, listenOnLoopback, uploadDataset } from '../support/api-data';
import { fromScratchSha256sInAnotherProcess } from '../support/from-scratch';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { runCli } from '../verifier/support/run-cli';

/**
 * The methods beside SISA and full retraining, through the service: certified removal (a model created with
 * `certified`, forgetting by a Newton step within its budget, retraining past it) and approximate unlearning
 * (a forget request with `approach: approximate`, then the exact pass), each logged with its guarantee; and the
 * bad input of both refused with a 400 naming the field, nothing queued or logged.
 */
describe('certified removal and approximate unlearning through the API', () => {
  const iris = loadIris();
  let h: JobHarness;
  let api: string;
  let dir: string;
  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });

  const createAndTrain = (body: object) => createAndTrainModel(h, body);

  async function forget(body: object): Promise<{ id: string; modelVersions: { modelId: string; version: number; unlearnLedgerIndex: number; guarantee?: { kind: string } }[] }> {
    const { body: filed } = await asMl(http().post('/v1/forget-requests')).send(body).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      120_000,
    );
    expect(done).toMatchObject({ state: 'completed' });
    return done;
  }

  /** Entries of a model version of the given types, from the log. */
  async function entriesOf(modelId: string, version: number): Promise<string[]> {
    const { body } = await http().get('/v1/ledger/entries').query({ start: 0, limit: 1000 }).expect(200);
    return (body as { event: string }[])
      .map((e) => JSON.parse(e.event))
      .filter((e) => e.modelId === modelId && e.modelVersion === version)
      .map((e) => e.type);
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    h = await startJobHarness('methods');
    api = await listenOnLoopback(h.app);
    dir = mkdtempSync(join(tmpdir(), 'lethe-methods-'));
  });

  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('certified removal', () => {
    // On iris (projected onto the unit ball) at lambda = 0.01 and sigma = 1, the bounds depend on the model's noise,
    // whose seed the service draws at random: over 80 seeds (the engine alone), one sample's Newton step bounded
    // the residual by 0.007-0.015, 21 samples' by 0.03-0.60 (4 of 80 within what a budget of 0.052 had left: this
    // test failed that often while it removed 21), and 75 samples' (every odd one) by 0.75 or more over 40. A
    // budget of 0.052 (epsilon 0.2 at delta 1e-3) holds the first removal and never the second.
    const certified = { epsilon: 0.2, delta: 1e-3, lambda: 0.01, sigma: 1 };
    const first = ['iris-010'];
    const second = iris.filter((_, i) => i % 2 === 1).map((s) => s.externalId);
    let datasetId: string;
    let commitments: Map<string, string>;
    let modelId: string;

    beforeAll(async () => {
      ({ datasetId, commitments } = await uploadDataset(h, iris, { name: 'iris-certified' }));
      modelId = await createAndTrain({ datasetId, method: 'certified', architecture: { type: 'logreg' }, seed: 'certified-e2e', certified });
    });

    it('forgets by a Newton step within the budget, then retrains from scratch (logged) when a removal would exceed it', async () => {
      const { body: model } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
      expect(model.certified).toMatchObject({ ...certified, noiseSeed: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(await entriesOf(modelId, 1)).toEqual(['BATCH_LEARNED', 'MODEL_PUBLISHED']);

      const one = await forget({ datasetId, externalIds: first, reason: 'erasure' });
      expect(one.modelVersions).toEqual([expect.objectContaining({ modelId, version: 2, guarantee: expect.objectContaining({ kind: 'certified', retrained: false }) })]);
      const v2 = (await h.ledger.getEvent(one.modelVersions[0].unlearnLedgerIndex)) as UnlearnCompleted;
      const g2 = v2.guarantee as Extract<UnlearnCompleted['guarantee'], { kind: 'certified' }>;
      expect(g2).toMatchObject({ epsilon: 0.2, delta: 1e-3, retrained: false });
      expect(g2.budget).toBeCloseTo(certified.sigma * certified.epsilon / Math.sqrt(2 * Math.log(1.5 / certified.delta)), 12);
      expect(g2.budgetUsed).toBeCloseTo(1e-6 * iris.length + g2.residualBound, 12);
      expect(g2.budgetUsed).toBeLessThanOrEqual(g2.budget);
      // Version 1 learned the sample: the append that publishes version 2 retires it.
      expect(await entriesOf(modelId, 1)).toEqual(['BATCH_LEARNED', 'MODEL_PUBLISHED', 'VERSION_RETIRED']);
      // A Newton step trains nothing: no BATCH_LEARNED for version 2. It is published first (nothing evaluated
      // before it is served), its evidence measured after and logged as EVIDENCE_RECORDED.
      expect(await entriesOf(modelId, 2)).toEqual(['MODEL_PUBLISHED', 'UNLEARN_COMPLETED', 'EVIDENCE_RECORDED']);
      expect(v2.evidence).toEqual({ forgottenCount: 1, retainCount: iris.length - 1, recordedIn: 'EVIDENCE_RECORDED' });
      const { body: version2 } = await asMl(http().get(`/v1/models/${modelId}/versions/2`)).expect(200);
      expect(version2.metrics).toEqual({ samples: iris.length - 1 });
      expect(version2.evidenceLedgerIndex).toBeGreaterThan(version2.unlearnLedgerIndex);
      const recorded = await h.ledger.getEvent(version2.evidenceLedgerIndex);
      validateEvent(recorded);
      expect(recorded).toMatchObject({ type: 'EVIDENCE_RECORDED', modelId, modelVersion: 2, forgetRequestIds: [one.id] });
      const evidence2 = (recorded as unknown as { evidence: { [key: string]: any } }).evidence;
      expect(version2.evidence).toEqual(evidence2);
      expect(evidence2).toMatchObject({ forgottenCount: 1, retainCount: iris.length - 1, before: { forgetAccuracy: expect.any(Number) }, after: { retainAccuracy: expect.any(Number) } });

      const many = await forget({ datasetId, externalIds: second, reason: 'erasure' });
      expect(many.modelVersions).toEqual([expect.objectContaining({ modelId, version: 3 })]);
      const v3 = (await h.ledger.getEvent(many.modelVersions[0].unlearnLedgerIndex)) as UnlearnCompleted;
      validateEvent(v3);
      const survivors = iris.length - first.length - second.length;
      expect(v3.guarantee).toMatchObject({ kind: 'certified', retrained: true, budgetUsed: 1e-6 * survivors });
      expect((v3.guarantee as { residualBound: number }).residualBound).toBeGreaterThan(g2.budget - g2.budgetUsed);
      // The retraining is logged as one: its batch, then the version and its unlearning.
      expect(await entriesOf(modelId, 3)).toEqual(['BATCH_LEARNED', 'MODEL_PUBLISHED', 'UNLEARN_COMPLETED', 'EVIDENCE_RECORDED']);
      const { body: versions } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
      expect(versions.versions.map((v: { guarantee?: { kind: string; retrained: boolean } }) => v.guarantee && [v.guarantee.kind, v.guarantee.retrained])).toEqual([
        undefined,
        ['certified', false],
        ['certified', true],
      ]);

      // The trained versions are the bytes of a training from scratch in another process (the noise from the seed
      // the service drew); replay reproduces them, and refuses, with the reason, to replay the Newton step's.
      const engine: TrainingConfigInput = {
        method: 'certified',
        model: 'logistic-regression',
        numFeatures: IRIS_FEATURES,
        numClasses: IRIS_CLASSES,
        seed: 'certified-e2e',
        certified: model.certified,
      };
      const withCommitments = (rows: LabeledExample[]): Sample[] =>
        rows.map((e) => ({ ...e, features: Array.from(e.features), commitment: commitments.get(e.externalId)! }));
      const gone = new Set([...first, ...second]);
      const [scratch1, scratch3] = await fromScratchSha256sInAnotherProcess([
        { config: engine, samples: withCommitments(iris) },
        { config: engine, samples: withCommitments(iris.filter((s) => !gone.has(s.externalId))) },
      ]);
      expect(versions.versions.map((v: { onnxSha256: string }) => v.onnxSha256)).toEqual([scratch1, expect.any(String), scratch3]);

      const write = (name: string, rows: LabeledExample[]) => {
        const file = join(dir, name);
        writeFileSync(file, rows.map((s) => JSON.stringify(s)).join('\n'));
        return file;
      };
      const all = write('all.ndjson', iris);
      const surviving = write('surviving.ndjson', iris.filter((s) => !gone.has(s.externalId)));
      const replay = (version: number, file: string) => runCli(['replay', '--model', modelId, '--version', String(version), '--data', file, '--api', api, '--api-key', h.auditor]);
      const r1 = await replay(1, all);
      expect(r1.stdout).toContain(`ONNX SHA-256 ${scratch1} equals the published one`);
      expect(r1.code).toBe(0);
      const r3 = await replay(3, surviving);
      expect(r3.stdout).toContain(`ONNX SHA-256 ${scratch3} equals the published one`);
      expect(r3.code).toBe(0);
      const r2 = await replay(2, surviving);
      expect(r2.code).not.toBe(0);
      expect(r2.stderr + r2.stdout).toContain('was made by a certified Newton step from the version before it');
    }, 900_000); // three CLI replays and two trainings in other processes: 280 s alone at load 30
  });

  describe('approximate unlearning', () => {
    let datasetId: string;
    let modelId: string;
    const SEED = 'approximate-e2e';

    beforeAll(async () => {
      ({ datasetId } = await uploadDataset(h, iris, { name: 'iris-approximate', subjectOf: (s, i) => `subject-${i % 25}` }));
      modelId = await createAndTrain({ datasetId, method: 'sisa', shards: 3, slices: 2, architecture: { type: 'logreg' }, epochs: 10, batchSize: 8, learningRate: 0.1, seed: SEED });
    });

    it.each([
      ['finetune', 'subject-1'],
      ['neggrad+', 'subject-2'],
      ['scrub', 'subject-3'],
    ])('%s publishes an approximately forgotten version, then the exact pass publishes the version that supersedes it', async (algorithm, subjectId) => {
      const { body: before } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
      const done = await forget({ datasetId, subjectId, reason: 'erasure', approach: 'approximate', algorithm });
      const next = before.latestVersion + 1;
      expect(done).toMatchObject({ approach: 'approximate', algorithm, then: 'exact' });
      expect(done.modelVersions).toEqual([
        expect.objectContaining({ modelId, version: next, guarantee: { kind: 'approximate', algorithm, steps: expect.any(Number) } }),
        expect.objectContaining({ modelId, version: next + 1, guarantee: { kind: 'exact' } }),
      ]);
      const approximate = (await h.ledger.getEvent(done.modelVersions[0].unlearnLedgerIndex)) as UnlearnCompleted;
      validateEvent(approximate);
      expect((approximate.guarantee as { steps: number }).steps).toBeGreaterThan(0);
      expect(approximate.evidence).toMatchObject({ forgottenCount: 6, before: expect.any(Object), after: expect.any(Object) });
      // No batch: the approximate version learned nothing; the exact one retrained what held the subject's samples.
      // The exact version's append retires the approximate version (it carries traces of the samples) and the
      // version that learned them: VERSION_RETIRED right after its UNLEARN_COMPLETED, in the same append.
      expect(await entriesOf(modelId, next)).toEqual(['MODEL_PUBLISHED', 'UNLEARN_COMPLETED', 'VERSION_RETIRED']);
      expect(await entriesOf(modelId, before.latestVersion)).toContain('VERSION_RETIRED');
      expect((await entriesOf(modelId, next + 1)).filter((t) => t !== 'CHECKPOINT_SAVED')).toEqual(
        expect.arrayContaining(['BATCH_LEARNED', 'MODEL_PUBLISHED', 'UNLEARN_COMPLETED']),
      );
      const exactIndex = done.modelVersions[1].unlearnLedgerIndex;
      const { body: after } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
      expect(after.latestVersion).toBe(next + 1);
      const stateOf = (version: number) => after.versions.find((v: { version: number }) => v.version === version);
      for (const version of [before.latestVersion, next]) {
        expect(stateOf(version)).toMatchObject({ state: 'retired', retiredBy: [done.id], retireLedgerIndex: expect.any(Number) });
        expect(stateOf(version).retireLedgerIndex).toBeGreaterThan(exactIndex);
        await asMl(http().get(`/v1/models/${modelId}/versions/${version}/onnx`)).expect(410);
      }
      expect(stateOf(next + 1)).toMatchObject({ state: 'live' });
      await asMl(http().get(`/v1/models/${modelId}/versions/${next + 1}/onnx`)).expect(200);
    });

    it('with then: none, leaves the model approximately forgotten; the next exact request retrains every shard', async () => {
      const done = await forget({ datasetId, subjectId: 'subject-4', reason: 'erasure', approach: 'approximate', algorithm: 'finetune', then: 'none' });
      expect(done.modelVersions).toEqual([expect.objectContaining({ modelId, guarantee: expect.objectContaining({ kind: 'approximate' }) })]);
      const approximateVersion = done.modelVersions[0].version;
      // No exact pass follows: the approximate version's own append retires the version that learned the samples.
      const { body: model } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
      const stateOf = (version: number) => model.versions.find((v: { version: number }) => v.version === version);
      expect(stateOf(approximateVersion - 1)).toMatchObject({ state: 'retired', retiredBy: [done.id] });
      expect(stateOf(approximateVersion)).toMatchObject({ state: 'live' });
      expect(await entriesOf(modelId, approximateVersion - 1)).toContain('VERSION_RETIRED');
      const exact = await forget({ datasetId, subjectId: 'subject-5', reason: 'erasure' });
      const event = (await h.ledger.getEvent(exact.modelVersions[0].unlearnLedgerIndex)) as UnlearnCompleted;
      expect(event).toMatchObject({ modelVersion: approximateVersion + 1, guarantee: { kind: 'exact' }, affected: [0, 1, 2].map((shard) => ({ shard, fromSlice: 0 })) });
    });
  });

  describe('bad input', () => {
    let datasetId: string;
    let certifiedDatasetId: string;

    beforeAll(async () => {
      ({ datasetId } = await uploadDataset(h, iris, { name: 'iris-bad-input' }));
      ({ datasetId: certifiedDatasetId } = await uploadDataset(h, iris, { name: 'iris-bad-input-certified' }));
      await createAndTrain({ datasetId: certifiedDatasetId, method: 'certified', architecture: { type: 'logreg' }, seed: 'bad', certified: { epsilon: 1, delta: 1e-3, lambda: 0.01 } });
    });

    /** What a refused request must not have changed: the log, the models, the jobs, the forget requests. */
    async function counts(): Promise<number[]> {
      const [row] = await h.dataSource.query(
        `SELECT (SELECT count(*) FROM models)::int AS models, (SELECT count(*) FROM jobs)::int AS jobs, (SELECT count(*) FROM forget_requests)::int AS requests`,
      );
      return [(await h.ledger.getCheckpoint()).treeSize, row.models, row.jobs, row.requests];
    }

    const certifiedBody = (certified: object, extra: object = {}) => ({ method: 'certified', architecture: { type: 'logreg' }, seed: 'bad', certified, ...extra });

    it.each([
      ['epsilon 0', certifiedBody({ epsilon: 0, delta: 1e-3, lambda: 0.01 }), 'certified.epsilon must be a number > 0'],
      ['a negative epsilon', certifiedBody({ epsilon: -1, delta: 1e-3, lambda: 0.01 }), 'certified.epsilon must be a number > 0'],
      ['delta 0', certifiedBody({ epsilon: 1, delta: 0, lambda: 0.01 }), 'certified.delta must be a number > 0'],
      ['delta of 1/n', certifiedBody({ epsilon: 1, delta: 1 / 150, lambda: 0.01 }), 'certified.delta must be below 1/n = 1/150 (n: the training samples), got 0.006666666666666667'],
      ['lambda 0', certifiedBody({ epsilon: 1, delta: 1e-3, lambda: 0 }), 'certified.lambda must be a number > 0'],
      ['an MLP', certifiedBody({ epsilon: 1, delta: 1e-3, lambda: 0.01 }, { architecture: { type: 'mlp', hidden: [8] } }), 'architecture.type: certified removal needs a logreg'],
      ['SGD settings', certifiedBody({ epsilon: 1, delta: 1e-3, lambda: 0.01 }, { epochs: 5 }), 'epochs: a certified model is trained by L-BFGS'],
      ['DP-SGD privacy settings', certifiedBody({ epsilon: 1, delta: 1e-3, lambda: 0.01 }, { privacy: { epsilon: 1, delta: 1e-3, clipNorm: 1 } }), 'privacy: DP-SGD does not apply to certified removal'],
      ['no certified settings', { method: 'certified', architecture: { type: 'logreg' }, seed: 'bad' }, 'certified: method certified needs certified settings'],
      ['certified settings on SISA', { method: 'sisa', architecture: { type: 'logreg' }, epochs: 1, batchSize: 4, learningRate: 0.1, seed: 'bad', certified: { epsilon: 1, delta: 1e-3, lambda: 0.01 } }, 'certified: only method certified'],
      ['a budget below the training tolerance', certifiedBody({ epsilon: 1e-5, delta: 1e-3, lambda: 0.01 }), 'raise certified.sigma or certified.epsilon'],
    ])('a model with %s is a 400 naming the field; nothing is queued or logged', async (_, body, message) => {
      const before = await counts();
      const res = await asMl(http().post('/v1/models')).send({ datasetId, ...body }).expect(400);
      expect(res.body.message).toContain(message);
      expect(await counts()).toEqual(before);
    });

    it.each([
      ['an unknown algorithm', { approach: 'approximate', algorithm: 'amnesia' }, () => datasetId, 'algorithm must be one of: finetune, neggrad+, scrub'],
      ['approximate without an algorithm', { approach: 'approximate' }, () => datasetId, 'algorithm: approach "approximate" needs one of finetune, neggrad+, scrub'],
      ['an algorithm without approach approximate', { algorithm: 'scrub' }, () => datasetId, 'algorithm: only approach "approximate" takes an algorithm'],
      ['an unknown approach', { approach: 'probable' }, () => datasetId, 'approach must be one of: exact, approximate'],
      ['approximate on a certified model', { approach: 'approximate', algorithm: 'finetune' }, () => certifiedDatasetId, 'approach: dataset'],
    ])('a forget request with %s is a 400 naming the field; nothing is queued or logged', async (_, extra, dataset, message) => {
      const before = await counts();
      const res = await asMl(http().post('/v1/forget-requests')).send({ datasetId: dataset(), externalIds: ['iris-001'], reason: 'erasure', ...extra }).expect(400);
      expect(res.body.message).toContain(message);
      expect(await counts()).toEqual(before);
    });
  });
});
