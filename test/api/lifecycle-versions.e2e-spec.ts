/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { validateEvent } from '@lethe/events';
import { computeCommitmentsRoot } from '@lethe/ledger';
import { isHeldOut, loadIris } from '@lethe/unlearning';
import { withDatasetLock } from '../../apps/api/src/models/dataset.lock';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { createAndTrain, irisSisaBody, subjectsByGroup, uploadDataset } from '../support/api-data';

/**
 * The data lifecycle through the service (issue 14, items 1 and 6): dataset versions after each upload and
 * forget (DATASET_VERSIONED), the catastrophic-forgetting guard holding a version that lost too much test accuracy
 * (UNLEARN_HELD, on both of its paths: a model that set its guard, checked before the version is served; the
 * default, checked with the evidence after it), its release (VERSION_RELEASED), and rollbacks refused where they
 * would bring forgotten data back. One service (and worker) for the file.
 */
describe('data lifecycle: dataset versions, the forgetting guard, rollback', () => {
  const SEED = 'lifecycle-1';
  const holdout = { seed: SEED, fraction: 0.2 };
  const iris = loadIris();
  // setosa: every class-0 sample the models train on (not held out): forgetting them wrecks test accuracy on the
  // held-out setosa samples, which stay in the test set.
  const setosa = new Set(iris.filter((s) => s.label === 0 && !isHeldOut(s.externalId, holdout)).map((s) => s.externalId));
  const modelBody = (datasetId: string, extra: object = {}) => irisSisaBody(datasetId, SEED, { evaluation: { holdoutFraction: holdout.fraction }, ...extra });

  let h: JobHarness;
  let datasetId: string;
  let commitments: Map<string, string>;
  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const treeSize = async () => (await h.ledger.getCheckpoint()).treeSize;
  const versionsOf = async (id: string) => (await asMl(http().get(`/v1/datasets/${id}/versions`)).expect(200)).body;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    h = await startJobHarness('lifecycle');
    ({ datasetId, commitments } = await uploadDataset(h, iris, { subjectOf: subjectsByGroup({ setosa }) }));
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it('versions a dataset at each upload: the Merkle root and count of its live commitments, in DATASET_VERSIONED', async () => {
    const [v1] = await versionsOf(datasetId);
    expect(v1).toEqual({ version: 1, root: computeCommitmentsRoot(iris.map((s) => commitments.get(s.externalId)!)), size: 150, ledgerIndex: expect.any(Number) });
    const event = await h.ledger.getEvent(v1.ledgerIndex);
    expect(event).toEqual({ type: 'DATASET_VERSIONED', version: 1, datasetId, datasetVersion: 1, root: v1.root, size: 150 });
    expect(() => validateEvent(event)).not.toThrow();

    // A second dataset: two uploads, two versions; the second root covers both uploads in order.
    const other = (await asMl(http().post('/v1/datasets')).send({ name: 'two uploads', features: 4, classes: 3 }).expect(201)).body.id;
    expect(await versionsOf(other)).toEqual([]);
    const first = (await asMl(http().post(`/v1/datasets/${other}/samples`)).send(iris.slice(0, 3)).expect(200)).body;
    const second = (await asMl(http().post(`/v1/datasets/${other}/samples`)).send(iris.slice(3, 5)).expect(200)).body;
    expect([first.datasetVersion, second.datasetVersion]).toEqual([1, 2]);
    const all = [...first.commitments, ...second.commitments].map((c: { commitment: string }) => c.commitment);
    expect(await versionsOf(other)).toEqual([
      { version: 1, root: computeCommitmentsRoot(all.slice(0, 3)), size: 3, ledgerIndex: expect.any(Number) },
      { version: 2, root: computeCommitmentsRoot(all), size: 5, ledgerIndex: expect.any(Number) },
    ]);
    // An upload whose every line is refused changes nothing: no version.
    const before = await treeSize();
    const refused = (await asMl(http().post(`/v1/datasets/${other}/samples`)).send([{ externalId: 'x', features: [1], label: 0 }]).expect(200)).body;
    expect(refused).toMatchObject({ accepted: 0, rejectedCount: 1 });
    expect(refused).not.toHaveProperty('datasetVersion');
    expect(await treeSize()).toBe(before);
  });

  it('answers 404 for the versions of an unknown dataset and 400 for a malformed id, logging nothing', async () => {
    const before = await treeSize();
    await asMl(http().get('/v1/datasets/00000000-0000-4000-8000-000000000000/versions')).expect(404);
    const bad = await asMl(http().get('/v1/datasets/nope/versions')).expect(400);
    expect(bad.body.message).toContain('id');
    expect(await treeSize()).toBe(before);
  });

  it.each([
    [{ maxTestAccuracyDrop: 1.5 }, 'guard.maxTestAccuracyDrop must be a number in [0, 1]'],
    [{ maxTestAccuracyDrop: -0.1 }, 'guard.maxTestAccuracyDrop must be a number in [0, 1]'],
    [{ maxTestAccuracyDrop: '0.1' }, 'guard.maxTestAccuracyDrop must be a number in [0, 1]'],
    ['x', 'guard must be an object'],
  ])('POST /v1/models with guard %j is a 400 naming the field, and logs nothing', async (guard, message) => {
    const before = await treeSize();
    const res = await asMl(http().post('/v1/models')).send(modelBody(datasetId, { guard })).expect(400);
    expect(JSON.stringify(res.body.message)).toContain(message);
    expect(await treeSize()).toBe(before);
  });

  it('refuses a guard on a model without a holdout (it has no test accuracy to guard)', async () => {
    const res = await asMl(http().post('/v1/models')).send(modelBody(datasetId, { guard: {}, evaluation: undefined })).expect(400);
    expect(res.body.message).toContain('guard: the guard compares test accuracy on the holdout');
  });

  it('holds a version whose test accuracy fell too far, serves it only by number until released, and refuses rollbacks to retired versions', async () => {
    const guarded = await createAndTrain(h, modelBody(datasetId, { guard: { maxTestAccuracyDrop: 0.05 } }));
    const byDefault = await createAndTrain(h, modelBody(datasetId));
    const lenient = await createAndTrain(h, modelBody(datasetId, { guard: { maxTestAccuracyDrop: 1 } }));
    const input = { inputs: [iris[0].features] };
    for (const id of [guarded, byDefault, lenient]) await asMl(http().post(`/v1/models/${id}/predict`)).send(input).expect(200);

    const { body: filed } = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'setosa', reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      120_000,
    );
    expect(done.state).toBe('completed'); // the forget counts, held or not

    // The dataset's next version: the live samples without setosa's.
    const versions = await versionsOf(datasetId);
    const kept = iris.filter((s) => !setosa.has(s.externalId)).map((s) => commitments.get(s.externalId)!);
    expect(versions.at(-1)).toEqual({ version: 2, root: computeCommitmentsRoot(kept), size: kept.length, ledgerIndex: expect.any(Number) });

    // The guarded model: held in the very append that published it (its evidence measured before it was served).
    const { body: g2 } = await asMl(http().get(`/v1/models/${guarded}/versions/2`)).expect(200);
    expect(g2.state).toBe('held');
    expect(g2.held.ledgerIndex).toBe(g2.unlearnLedgerIndex + 1);
    const held = await h.ledger.getEvent(g2.held.ledgerIndex);
    expect(held).toMatchObject({ type: 'UNLEARN_HELD', modelId: guarded, modelVersion: 2, requestIds: [filed.id], maxTestAccuracyDrop: 0.05 });
    const figures = held as unknown as { testAccuracyBefore: number; testAccuracyAfter: number; drop: number };
    process.stdout.write(`UNLEARN_HELD (setosa forgotten): ${JSON.stringify(held)}\n`);
    expect(figures.drop).toBeGreaterThan(0.05);
    expect(figures.drop).toBeCloseTo(figures.testAccuracyBefore - figures.testAccuracyAfter, 12);
    expect(g2.evidence.before.testAccuracy).toBe(figures.testAccuracyBefore);
    expect(g2.evidence.after.testAccuracy).toBe(figures.testAccuracyAfter);
    expect((await asMl(http().get(`/v1/models/${guarded}/versions/1`)).expect(200)).body.state).toBe('retired'); // old versions stay retired

    // The default guard (0.05): the version was published first, and held with its evidence (EVIDENCE_RECORDED).
    const { body: d2 } = await asMl(http().get(`/v1/models/${byDefault}/versions/2`)).expect(200);
    expect(d2.state).toBe('held');
    expect(d2.held.ledgerIndex).toBe(d2.evidenceLedgerIndex + 1);
    expect(await h.ledger.getEvent(d2.held.ledgerIndex)).toMatchObject({ type: 'UNLEARN_HELD', modelId: byDefault, modelVersion: 2, maxTestAccuracyDrop: 0.05 });

    // The positive control: the same forget under a guard of 1 is served at once.
    const { body: l2 } = await asMl(http().get(`/v1/models/${lenient}/versions/2`)).expect(200);
    expect(l2.state).toBe('live');
    expect(l2).not.toHaveProperty('held');
    await asMl(http().post(`/v1/models/${lenient}/predict`)).send(input).expect(200);

    // Held: 409 without a version number, served when asked for by number.
    const refused = await asMl(http().post(`/v1/models/${guarded}/predict`)).send(input).expect(409);
    expect(refused.body.message).toMatch(/^held: model .* version 2 is held/);
    expect((await asMl(http().post(`/v1/models/${guarded}/predict`)).send({ ...input, version: 2 }).expect(200)).body.modelVersion).toBe(2);

    // A rollback to the version before the forget would bring setosa back: 409 naming the request, nothing logged.
    let before = await treeSize();
    const back = await asMl(http().post(`/v1/models/${guarded}/rollback`)).send({ version: 1 }).expect(409);
    expect(back.body.message).toContain(filed.id);
    expect(back.body.message).toContain('a rollback never brings forgotten data back');
    await asMl(http().post(`/v1/models/${guarded}/rollback`)).send({ version: 9 }).expect(404);
    for (const version of [0, 'x', 1.5, null]) {
      const bad = await asMl(http().post(`/v1/models/${guarded}/rollback`)).send({ version }).expect(400);
      expect(JSON.stringify(bad.body.message)).toContain('version must be a positive integer');
    }
    await asMl(http().post(`/v1/models/${guarded}/rollback`)).send({ version: 2 }).expect(409); // held: release it instead
    await http().post(`/v1/models/${guarded}/versions/2/release`).auth(h.auditor, { type: 'bearer' }).expect(403);
    await asMl(http().post(`/v1/models/${guarded}/versions/1/release`)).expect(410); // retired
    await asMl(http().post(`/v1/models/${lenient}/versions/2/release`)).expect(409); // not held
    await asMl(http().post(`/v1/models/${guarded}/versions/7/release`)).expect(404);
    expect(await treeSize()).toBe(before);

    // Released: logged, and served without a version number.
    const { body: released } = await asMl(http().post(`/v1/models/${guarded}/versions/2/release`)).expect(200);
    expect(await h.ledger.getEvent(released.ledgerIndex)).toEqual({ type: 'VERSION_RELEASED', version: 1, modelId: guarded, modelVersion: 2 });
    expect((await asMl(http().post(`/v1/models/${guarded}/predict`)).send(input).expect(200)).body.modelVersion).toBe(2);
    const { body: model } = await asMl(http().get(`/v1/models/${guarded}`)).expect(200);
    expect(model).toMatchObject({ latestVersion: 2, currentVersion: 2 });
    expect(model.versions[1]).toMatchObject({ state: 'live', releasedLedgerIndex: released.ledgerIndex, held: { ledgerIndex: g2.held.ledgerIndex } });
    before = await treeSize();
    await asMl(http().post(`/v1/models/${guarded}/versions/2/release`)).expect(409); // released already
    const current = await asMl(http().post(`/v1/models/${guarded}/rollback`)).send({ version: 2 }).expect(409);
    expect(current.body.message).toContain('is not earlier than the version');
    expect(await treeSize()).toBe(before);

    // A version that learned samples of a request still waiting (a training holds the dataset, so the pass waits):
    // refused, naming the request.
    const learned = iris.find((s) => s.label === 1 && !isHeldOut(s.externalId, holdout))!.externalId;
    const pending = await withDatasetLock(h.dataSource, datasetId, 'shared', async () => {
      const { body } = await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: [learned], reason: 'erasure' }).expect(202);
      before = await treeSize();
      const refusedNow = await asMl(http().post(`/v1/models/${lenient}/rollback`)).send({ version: 2 }).expect(409);
      expect(refusedNow.body.message).toContain(`forget request(s) ${body.id}, which are being forgotten`);
      expect(await treeSize()).toBe(before);
      return body;
    });
    const served = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${pending.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      120_000,
    );
    expect(served.state).toBe('completed');
  }, 300_000);

  it('rolls a model back to an earlier live version (one that online learning left live): served again, logged', async () => {
    const small = (await asMl(http().post('/v1/datasets')).send({ name: 'rollback', features: 4, classes: 3 }).expect(201)).body.id;
    const subset = iris.filter((_, i) => i % 3 === 0);
    await asMl(http().post(`/v1/datasets/${small}/samples`)).send(subset.slice(0, 30)).expect(200);
    const modelId = await createAndTrain(h, modelBody(small, { evaluation: undefined }));
    await asMl(http().post(`/v1/datasets/${small}/samples`)).send(subset.slice(30)).expect(200);
    const { body: learn } = await asMl(http().post(`/v1/models/${modelId}/learn`)).expect(202);
    const job = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${learn.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      120_000,
    );
    expect(job.result.modelVersions).toEqual([{ modelId, version: 2 }]);
    const input = { inputs: [iris[0].features] };
    expect((await asMl(http().post(`/v1/models/${modelId}/predict`)).send(input).expect(200)).body.modelVersion).toBe(2);

    const before = await treeSize();
    const { body: rolled } = await asMl(http().post(`/v1/models/${modelId}/rollback`)).send({ version: 1 }).expect(200);
    expect(rolled).toEqual({ modelId, fromVersion: 2, currentVersion: 1, ledgerIndex: before });
    expect(await h.ledger.getEvent(before)).toEqual({ type: 'MODEL_ROLLED_BACK', version: 1, modelId, fromVersion: 2, toVersion: 1 });
    expect(await treeSize()).toBe(before + 1);
    const served = (await asMl(http().post(`/v1/models/${modelId}/predict`)).send(input).expect(200)).body;
    expect(served.modelVersion).toBe(1);
    expect((await asMl(http().get(`/v1/models/${modelId}`)).expect(200)).body).toMatchObject({ latestVersion: 2, currentVersion: 1 });
    // Version 2 is served when asked for; a rollback to it is not a rollback (it is not earlier).
    expect((await asMl(http().post(`/v1/models/${modelId}/predict`)).send({ ...input, version: 2 }).expect(200)).body.modelVersion).toBe(2);
    await asMl(http().post(`/v1/models/${modelId}/rollback`)).send({ version: 2 }).expect(409);
    expect(await treeSize()).toBe(before + 1);
  }, 300_000);
});
