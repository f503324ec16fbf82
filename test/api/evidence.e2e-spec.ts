/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { IRIS_CLASSES, IRIS_FEATURES, Sample, TrainingConfigInput, isHeldOut, loadIris } from '@lethe/unlearning';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { runCli } from '../verifier/support/run-cli';
import { fromScratchSha256 } from '../support/from-scratch';
import { createAndTrain as createAndTrainModel, irisSisaBody, listenOnLoopback, subjectsByGroup, uploadDataset } from '../support/api-data';

/**
 * Evidence of forgetting through the service: a model created with `evaluation` trains without its held-out
 * samples, publishes test accuracy, and each forget publishes its new version first (UNLEARN_COMPLETED with the
 * counts), then records in EVIDENCE_RECORDED the accuracies on the retain, forget and test sets, the
 * membership-inference AUC before and after, and a from-scratch reference's numbers.
 */
describe('evaluation: holdout test set and retrained reference in EVIDENCE_RECORDED, after the version is published', () => {
  const SEED = 'evidence-1';
  const evaluation = { holdoutFraction: 0.2, referenceRetrain: true };
  const holdout = { seed: SEED, fraction: evaluation.holdoutFraction };
  const iris = loadIris();
  const trainedOn = iris.filter((s) => !isHeldOut(s.externalId, holdout));
  const heldOut = iris.filter((s) => isHeldOut(s.externalId, holdout));
  /** carol: two samples the model learns and one it holds out. */
  const carol = new Set([trainedOn[3].externalId, trainedOn[70].externalId, heldOut[2].externalId]);
  const modelBody = (datasetId: string, extra: object = {}) => irisSisaBody(datasetId, SEED, extra);
  const engineConfig: TrainingConfigInput = {
    method: 'sisa',
    model: 'logistic-regression',
    numFeatures: IRIS_FEATURES,
    numClasses: IRIS_CLASSES,
    shards: 2,
    slices: 2,
    epochs: 20,
    batchSize: 8,
    learningRate: 0.1,
    seed: SEED,
  };

  let h: JobHarness;
  let api: string;
  let dir: string;
  let datasetId: string;
  let commitments: Map<string, string>;
  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });

  /** The ONNX SHA-256 of training from scratch on `examples` (the dataset's commitments), outside the service. */
  async function trainFromScratch(examples: typeof iris): Promise<string> {
    const samples: Sample[] = examples.map((e) => ({ ...e, commitment: commitments.get(e.externalId)! }));
    return fromScratchSha256(engineConfig, samples);
  }

  const createAndTrain = (body: object) => createAndTrainModel(h, body);

  beforeAll(async () => {
    Logger.overrideLogger(false);
    h = await startJobHarness('evidence');
    api = await listenOnLoopback(h.app);
    dir = mkdtempSync(join(tmpdir(), 'lethe-evidence-'));
    ({ datasetId, commitments } = await uploadDataset(h, iris, { subjectOf: subjectsByGroup({ carol }) }));
    expect(commitments.size).toBe(150);
  }, 120_000);

  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    [{ holdoutFraction: 0.7 }, 'evaluation.holdoutFraction must be a number in [0, 0.5]'],
    [{ holdoutFraction: -0.1 }, 'evaluation.holdoutFraction must be a number in [0, 0.5]'],
    [{ holdoutFraction: 'x' }, 'evaluation.holdoutFraction must be a number in [0, 0.5]'],
    [{ holdoutFraction: null }, 'evaluation.holdoutFraction must be a number in [0, 0.5]'],
    [{ referenceRetrain: 1 }, 'evaluation.referenceRetrain must be a boolean'],
    [{ referenceRetrain: 'yes' }, 'evaluation.referenceRetrain must be a boolean'],
    [{ testFraction: 0.2 }, 'evaluation.property testFraction should not exist'],
    ['x', 'evaluation must be an object'],
    [{ membership: { shadowModels: 3 } }, 'evaluation.membership.shadowModels must be an integer in [4, 256]'],
    [{ membership: { shadowModels: 300, canaries: 100 } }, 'evaluation.membership.shadowModels must be an integer in [4, 256]'],
    [{ membership: { canaries: 20 } }, 'evaluation.membership.canaries must be 0 or an integer in [100, 1000]'],
    [{ membership: 'x' }, 'evaluation.membership must be an object'],
    // 20% of iris is about 30 held-out samples: too few non-members for a TPR at 1% FPR, and no canaries to make up for it.
    [{ holdoutFraction: 0.2, membership: {} }, 'evaluation.membership: the attack needs at least 100 non-members'],
    [[0.2], 'evaluation must be an object'],
  ])('POST /v1/models with evaluation %j is a 400 naming the field', async (value, message) => {
    const count = async () => (await asMl(http().get(`/v1/models?datasetId=${datasetId}`)).expect(200)).body.length;
    const before = await count();
    const res = await asMl(http().post('/v1/models'))
      .send(modelBody(datasetId, { evaluation: value }))
      .expect(400);
    expect(JSON.stringify(res.body.message)).toContain(message);
    expect(await count()).toBe(before);
  });

  it('documents evaluation in the OpenAPI schema of POST /v1/models', async () => {
    const { body: doc } = await http().get('/docs-json').expect(200);
    expect(JSON.stringify(doc.components.schemas.CreateModelDto.properties.evaluation)).toContain(
      '"$ref":"#/components/schemas/EvaluationDto"',
    );
    expect(doc.components.schemas.CreateModelDto.required).not.toContain('evaluation');
    expect(doc.components.schemas.EvaluationDto.properties).toMatchObject({
      holdoutFraction: { type: 'number', minimum: 0, maximum: 0.5, default: 0 },
      referenceRetrain: { type: 'boolean', default: false },
      membership: { allOf: [{ $ref: '#/components/schemas/MembershipDto' }] },
    });
    expect(doc.components.schemas.MembershipDto.properties).toMatchObject({
      shadowModels: { type: 'number', minimum: 4, maximum: 256, default: 16 },
      canaries: { type: 'number', default: 0 },
    });
  });

  it('trains without the held-out samples, tests on them, and records the evidence and the reference when forgetting', async () => {
    // The holdout is about the fraction asked for, and carol has samples on both sides of it.
    expect(heldOut.length).toBeGreaterThan(15);
    expect(heldOut.length).toBeLessThan(45);

    const modelId = await createAndTrain(modelBody(datasetId, { evaluation }));
    const plainId = await createAndTrain(modelBody(datasetId));
    const { body: model } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
    expect(model.config.evaluation).toEqual(evaluation);
    expect((await asMl(http().get(`/v1/models/${plainId}`)).expect(200)).body.config).not.toHaveProperty('evaluation');

    // Version 1: trained on the samples not held out (what a from-scratch training on them gives), tested on the rest.
    const [v1] = model.versions;
    expect(v1.metrics).toMatchObject({ samples: trainedOn.length, testSamples: heldOut.length, testAccuracy: expect.any(Number) });
    expect(v1.onnxSha256).toBe(await trainFromScratch(trainedOn));
    const { body: plainV1 } = await asMl(http().get(`/v1/models/${plainId}/versions/1`)).expect(200);
    expect(plainV1.metrics.samples).toBe(150);
    expect(plainV1.metrics).not.toHaveProperty('testAccuracy');
    expect(plainV1.onnxSha256).not.toBe(v1.onnxSha256);

    const { body: filed } = await asMl(http().post('/v1/forget-requests'))
      .send({ datasetId, subjectId: 'carol', reason: 'erasure' })
      .expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done.state).toBe('completed');

    // Version 2 was published first: its UNLEARN_COMPLETED has the counts, and what it replaced was retired in
    // the same append; the evidence followed in EVIDENCE_RECORDED, as the version and the ledger give it.
    const { body: v2 } = await asMl(http().get(`/v1/models/${modelId}/versions/2`)).expect(200);
    const survivorsTrained = trainedOn.filter((s) => !carol.has(s.externalId));
    const event = await h.ledger.getEvent(v2.unlearnLedgerIndex);
    expect(event).toMatchObject({ type: 'UNLEARN_COMPLETED', modelId, requestIds: [filed.id], newOnnxSha256: v2.onnxSha256 });
    expect((event as unknown as { evidence: unknown }).evidence).toEqual({
      forgottenCount: 2,
      retainCount: survivorsTrained.length,
      recordedIn: 'EVIDENCE_RECORDED',
    });
    const { body: v1Now } = await asMl(http().get(`/v1/models/${modelId}/versions/1`)).expect(200);
    expect(v1Now.retireLedgerIndex).toBe(v2.unlearnLedgerIndex + 1);
    expect(v2.evidenceLedgerIndex).toBeGreaterThan(v1Now.retireLedgerIndex);
    const recorded = await h.ledger.getEvent(v2.evidenceLedgerIndex);
    expect(recorded).toMatchObject({ type: 'EVIDENCE_RECORDED', modelId, modelVersion: 2, forgetRequestIds: [filed.id] });
    const evidence = (recorded as unknown as { evidence: Record<string, any> }).evidence;
    expect(v2.evidence).toEqual(evidence);
    expect(done.modelVersions).toContainEqual(expect.objectContaining({ modelId, version: 2, evidenceLedgerIndex: v2.evidenceLedgerIndex }));
    expect(done.evidence[modelId]).toEqual(evidence);
    process.stdout.write(`EVIDENCE_RECORDED evidence (holdout 0.2, reference retrain): ${JSON.stringify(evidence)}\n`);
    // Carol's held-out sample was never learned: it only leaves the test set.
    expect(evidence).toMatchObject({ forgottenCount: 2, retainCount: survivorsTrained.length, testCount: heldOut.length - 1 });
    const numbers = {
      retainAccuracy: expect.any(Number),
      forgetAccuracy: expect.any(Number),
      testAccuracy: expect.any(Number),
      membershipAuc: expect.any(Number),
    };
    expect(evidence.before).toEqual(numbers);
    expect(evidence.after).toEqual(numbers);
    expect(evidence.reference).toEqual({ ...numbers, onnxSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    for (const side of [evidence.before, evidence.after, evidence.reference]) {
      expect(side.membershipAuc).toBeGreaterThanOrEqual(0);
      expect(side.membershipAuc).toBeLessThanOrEqual(1);
      expect(side.testAccuracy).toBeGreaterThan(0.5);
    }
    // SISA forgets exactly: the reference retrained from scratch is the new version, byte for byte and number for number.
    expect(evidence.reference.onnxSha256).toBe(v2.onnxSha256);
    for (const key of ['retainAccuracy', 'forgetAccuracy', 'testAccuracy', 'membershipAuc'])
      expect(evidence.reference[key]).toBe(evidence.after[key]);
    // ...and so is a training from scratch, outside the service, on the surviving samples not held out.
    expect(v2.onnxSha256).toBe(await trainFromScratch(survivorsTrained));
    // Published before it was evaluated: its MODEL_PUBLISHED metrics are the sample count; its accuracies are in the evidence.
    expect(v2.metrics).toEqual({ samples: survivorsTrained.length });

    // The model without `evaluation` keeps today's evidence: no test set, no reference.
    const { body: plainV2 } = await asMl(http().get(`/v1/models/${plainId}/versions/2`)).expect(200);
    expect(plainV2.evidence).toMatchObject({ forgottenCount: 3, retainCount: 147, testCount: 0 });
    expect(plainV2.evidence).not.toHaveProperty('reference');
    expect(plainV2.evidence.after).toEqual({ retainAccuracy: expect.any(Number), forgetAccuracy: expect.any(Number) });

    // An auditor replays version 2 from every surviving sample, held-out ones included: replay applies the holdout.
    const file = join(dir, 'surviving.ndjson');
    writeFileSync(
      file,
      iris
        .filter((s) => !carol.has(s.externalId))
        .map((s) => JSON.stringify(s))
        .join('\n'),
    );
    const cli = await runCli(['replay', '--model', modelId, '--version', '2', '--data', file, '--api', api, '--api-key', h.auditor]);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(
      `replayed from ${survivorsTrained.length} samples (${heldOut.length - 1} more held out by the model's holdout rule)`,
    );
    expect(cli.stdout).toContain(`ONNX SHA-256 ${v2.onnxSha256} equals the published one`);

    // Forgetting only a held-out sample: the model never learned it, so no new version (the other model forgets it).
    const dave = heldOut[5].externalId;
    const { body: daveFiled } = await asMl(http().post('/v1/forget-requests'))
      .send({ datasetId, externalIds: [dave], reason: 'erasure' })
      .expect(202);
    const daveDone = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${daveFiled.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(daveDone.state).toBe('completed');
    expect(daveDone.modelVersions).toEqual([expect.objectContaining({ modelId: plainId, version: 3 })]);
    expect((await asMl(http().get(`/v1/models/${modelId}`)).expect(200)).body.latestVersion).toBe(2);
  });

  it('runs the membership attack a model asks for, after publishing, and records it in EVIDENCE_RECORDED.evidence.membership', async () => {
    const membership = { shadowModels: 4, canaries: 100 };
    const modelId = await createAndTrain(modelBody(datasetId, { evaluation: { membership } }));
    expect((await asMl(http().get(`/v1/models/${modelId}`)).expect(200)).body.config.evaluation).toEqual({ membership });
    const subject = `subject-${trainedOn[10].externalId}`;
    const { body: filed } = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: subject, reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done.state).toBe('completed');
    const { body: v2 } = await asMl(http().get(`/v1/models/${modelId}/versions/2`)).expect(200);
    expect(v2.evidenceLedgerIndex).toBeGreaterThan(v2.unlearnLedgerIndex);
    const event = (await h.ledger.getEvent(v2.evidenceLedgerIndex)) as unknown as { type: string; evidence: Record<string, any> };
    expect(event.type).toBe('EVIDENCE_RECORDED');
    expect(v2.evidence).toEqual(event.evidence);
    const evidence = event.evidence.membership;
    process.stdout.write(`EVIDENCE_RECORDED evidence.membership (iris, 4 shadow models, 100 canaries): ${JSON.stringify(evidence)}\n`);
    // Canaries make the evaluation's own copies; SISA's forget of them is the published version, byte for byte.
    expect(evidence).toMatchObject({
      shadowModels: 4,
      population: 'canaries',
      members: { forgotten: 1, canaries: 100 },
      nonMembers: { heldOut: 0, canaries: 100 },
      models: { evaluationOnly: true, afterIsPublished: true, after: v2.onnxSha256 },
    });
    for (const figures of [evidence, evidence.perMember])
      for (const side of ['before', 'after', 'reference']) {
        expect(figures.auc[side]).toBeGreaterThanOrEqual(0);
        expect(figures.ci95.tprAt1pctFpr[side]).toHaveLength(2);
        expect(figures.tprAt01pctFpr[side]).toBeNull(); // 100 non-members cannot resolve 0.1% FPR
      }
    // The old population AUC stays beside it.
    expect(event.evidence.membershipAttack).toBe('loss-threshold AUC, forgotten vs test (Mann-Whitney)');
  });
});
