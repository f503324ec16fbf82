/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import type { ArtifactRef } from '@lethe/artifacts';
import type { LedgerEvent } from '@lethe/events';
import { SampleVault } from '@lethe/ledger';
import { checkpointsOf, loadIris, placeSample, type ShardRecord } from '@lethe/unlearning';
import { ModelStore } from '../../apps/api/src/models/model.store';
import { RetirementStore } from '../../apps/api/src/models/retirement.store';
import { RetirementService } from '../../apps/api/src/unlearning/retirement.service';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { uploadDataset } from '../support/api-data';
import { JobHarness, startAnotherWorker, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { keepOutOfRetirement, serveAgain } from '../support/unretired-version';
import { forgetSubject, trainSmallModel } from '../verifier/support/iris-history';

/** Overrides of SMALL_SISA (trainSmallModel) for full retraining. */
const FULL = { method: 'full', shards: 1, slices: 1, architecture: { type: 'logreg' }, epochs: 2, batchSize: 8, learningRate: 0.1 };

describe('retirement: what learned a forgotten sample is withdrawn, its files and checkpoints deleted', () => {
  let h: JobHarness;
  /** Workers started mid-test (stopping a worker stops the harness's shared pg-boss: they are stopped last). */
  const others: JobWorker[] = [];
  beforeAll(async () => {
    h = await startJobHarness('retirement');
  });
  afterAll(async () => {
    for (const worker of others) await worker.stop();
    await h?.close();
  });

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const asAuditor = (req: request.Test) => req.auth(h.auditor, { type: 'bearer' });
  // Checkpoints and ONNX files, where the service and its workers keep them (PostgreSQL here, as with DATABASE_URL).
  const checkpoint = (address: string): ArtifactRef => ({ kind: 'checkpoint', address });
  const onnxOf = async (modelId: string, version: number): Promise<ArtifactRef> => {
    const [row]: { onnx_sha256: string }[] = await h.dataSource.query(`SELECT onnx_sha256 FROM model_versions WHERE model_id = $1 AND version = $2`, [modelId, version]);
    return { kind: 'onnx', address: row.onnx_sha256 };
  };
  const stored = (ref: ArtifactRef) => h.artifacts.has(ref);
  const lineageOf = async (modelId: string, version: number): Promise<string[]> => {
    const [row]: { shards: ShardRecord[] }[] = await h.dataSource.query(
      `SELECT engine_state->'shards' AS shards FROM model_versions WHERE model_id = $1 AND version = $2`,
      [modelId, version],
    );
    return checkpointsOf(row.shards);
  };
  const entriesOf = async (type: LedgerEvent['type'], modelId: string) => {
    const page = (await http().get('/v1/ledger/entries?start=0&limit=1000').expect(200)).body as { index: number; event: string }[];
    return page
      .map((e) => ({ index: e.index, event: JSON.parse(e.event) as LedgerEvent & { modelId?: string } }))
      .filter((e) => e.event.type === type && e.event.modelId === modelId);
  };
  const predict = (modelId: string, version?: number) =>
    asMl(http().post(`/v1/models/${modelId}/predict`)).send({ inputs: [[5.1, 3.5, 1.4, 0.2]], ...(version ? { version } : {}) });

  /**
   * Iris (every third flower) with one data subject, `subject`, owning the one sample that SISA 2 x 2 with
   * `seed` places in shard 0, slice 1: forgetting it retrains shard 0 from slice 1 and shares the rest.
   */
  async function uploadIris(subject: string, seed: string): Promise<{ datasetId: string; commitment: string }> {
    const samples = loadIris().filter((_, i) => i % 3 === 0);
    const owned = samples.findIndex((s) => {
      const p = placeSample(seed, s.externalId, 2, 2);
      return p.shard === 0 && p.slice === 1;
    });
    const { datasetId, commitments } = await uploadDataset(h, samples, { subjectOf: (_, i) => (i === owned ? subject : `other-${i}`) });
    return { datasetId, commitment: commitments.get(samples[owned].externalId)! };
  }

  it('after a completed forget: the old version is 410 naming the request, listed retired, its file and unshared checkpoints gone; the new version serves', async () => {
    const { datasetId, commitment } = await uploadIris('carol', 'retire');
    const sisa = await trainSmallModel(h, datasetId, 'retire');
    const full = await trainSmallModel(h, datasetId, 'retire-full', FULL);
    const [sisaV1, fullV1] = [await lineageOf(sisa, 1), await lineageOf(full, 1)];
    // Positive control: before the forget every file is there, and version 1 is served (and its session cached).
    for (const c of [...sisaV1, ...fullV1]) expect(await stored(checkpoint(c))).toBe(true);
    expect([await stored(await onnxOf(sisa, 1)), await stored(await onnxOf(full, 1))]).toEqual([true, true]);
    await predict(sisa, 1).expect(200);
    await asAuditor(http().get(`/v1/models/${sisa}/versions/1/onnx`)).expect(200);

    const forget = await forgetSubject(h, datasetId, 'carol');

    for (const modelId of [sisa, full]) {
      const onnx = await asAuditor(http().get(`/v1/models/${modelId}/versions/1/onnx`)).expect(410);
      expect(onnx.body).toMatchObject({ statusCode: 410, error: 'Gone' });
      expect(onnx.body.message).toContain(forget.id);
      expect((await predict(modelId, 1).expect(410)).body.message).toContain(forget.id);
      const latest = await predict(modelId).expect(200);
      expect(latest.body.modelVersion).toBe(2);
      const { body: model } = await asAuditor(http().get(`/v1/models/${modelId}`)).expect(200);
      expect(model.state).toBe('ready');
      expect(model.versions).toEqual([
        expect.objectContaining({ version: 1, state: 'retired', retiredBy: [forget.id], retiredAt: expect.any(String), retireLedgerIndex: expect.any(Number) }),
        expect.objectContaining({ version: 2, state: 'live' }),
      ]);
      expect(model.versions[1].retiredBy).toBeUndefined();
      expect([await stored(await onnxOf(modelId, 1)), await stored(await onnxOf(modelId, 2))]).toEqual([false, true]);
    }

    // SISA: shard 0's slice 1 learned the sample and goes; shard 0's slice 0 and shard 1 are shared with version 2 and stay.
    const sisaV2 = await lineageOf(sisa, 2);
    const sisaGone = sisaV1.filter((c) => !sisaV2.includes(c));
    expect(sisaGone).toEqual([sisaV1[1]]);
    for (const c of sisaGone) expect(await stored(checkpoint(c))).toBe(false);
    for (const c of sisaV2) expect(await stored(checkpoint(c))).toBe(true);
    expect(sisaV2.filter((c) => sisaV1.includes(c))).toEqual([sisaV1[0], sisaV1[2], sisaV1[3]]);
    // Full retraining: its one checkpoint learned the subject and goes; the new one is there.
    const fullV2 = await lineageOf(full, 2);
    expect(fullV1.some((c) => fullV2.includes(c))).toBe(false);
    for (const c of fullV1) expect(await stored(checkpoint(c))).toBe(false);
    for (const c of fullV2) expect(await stored(checkpoint(c))).toBe(true);

    // The log: VERSION_RETIRED in the very append of the UNLEARN_COMPLETED that replaces it, then CHECKPOINTS_DELETED.
    for (const [modelId, gone] of [
      [sisa, sisaGone],
      [full, fullV1],
    ] as const) {
      const [unlearned] = await entriesOf('UNLEARN_COMPLETED', modelId);
      const [published] = await entriesOf('MODEL_PUBLISHED', modelId);
      const retired = await entriesOf('VERSION_RETIRED', modelId);
      expect(retired).toEqual([
        {
          index: unlearned.index + 1,
          event: { type: 'VERSION_RETIRED', version: 1, modelId, modelVersion: 1, onnxSha256: (published.event as { onnxSha256: string }).onnxSha256, forgetRequestIds: [forget.id] },
        },
      ]);
      const deleted = await entriesOf('CHECKPOINTS_DELETED', modelId);
      expect(deleted.map((d) => d.event)).toEqual([
        { type: 'CHECKPOINTS_DELETED', version: 1, modelId, checkpoints: [...gone].sort(), forgetRequestIds: [forget.id] },
      ]);
      expect(deleted[0].index).toBeGreaterThan(retired[0].index);
    }

    // Carol's receipt: the batches of both models' version 1 that learned her sample, what unlearned, retired and deleted.
    const { body: receipt } = await http().get(`/v1/receipts/${commitment}`).expect(200);
    const typesOf = (list: { event: string }[]) => list.map((e) => (JSON.parse(e.event) as LedgerEvent).type);
    expect(typesOf(receipt.learnedIn)).toEqual(['BATCH_LEARNED', 'BATCH_LEARNED']);
    expect(receipt.learnedIn.map((e: { event: string }) => JSON.parse(e.event).modelVersion)).toEqual([1, 1]);
    expect(typesOf(receipt.unlearnedIn)).toEqual(['UNLEARN_COMPLETED', 'UNLEARN_COMPLETED']);
    expect(typesOf(receipt.retiredVersions)).toEqual(['VERSION_RETIRED', 'VERSION_RETIRED']);
    expect(typesOf(receipt.checkpointsDeleted)).toEqual(['CHECKPOINTS_DELETED', 'CHECKPOINTS_DELETED']);
    for (const e of [...receipt.learnedIn, ...receipt.retiredVersions, ...receipt.checkpointsDeleted])
      expect(e.inclusionProof).toMatchObject({ treeSize: expect.any(Number), proof: expect.any(Array) });

    // Running the retirement step again (a retried pass) finds everything logged and logs nothing twice.
    const size = (await h.ledger.getCheckpoint()).treeSize;
    const again = new RetirementService(h.dataSource, h.ledger, new RetirementStore(h.dataSource), new ModelStore(h.dataSource, new SampleVault(h.dataSource, h.ledger, h.keyStore), h.artifacts, h.keyStore), h.artifacts);
    expect(await again.retireWithUnlearning(sisa, [forget.id])).toEqual([]);
    expect(await again.retireForPass([forget.id], [])).toEqual({ retiredVersions: [], deletedCheckpoints: 0 });
    expect((await h.ledger.getCheckpoint()).treeSize).toBe(size);
  });

  it('a crash between the retirement record and the file deletion is finished when a worker starts; meanwhile nothing retired is served', async () => {
    const { datasetId } = await uploadIris('dave', 'crash');
    const modelId = await trainSmallModel(h, datasetId, 'crash');
    const v1 = await lineageOf(modelId, 1);
    {
      const refs = [await onnxOf(modelId, 1), ...v1.map(checkpoint)];
      const saved = await Promise.all(refs.map(async (ref) => (await h.artifacts.get(ref))!));
      await forgetSubject(h, datasetId, 'dave');
      const gone: ArtifactRef[] = [];
      for (const ref of refs) if (!(await stored(ref))) gone.push(ref);
      expect(gone).toEqual([refs[0], checkpoint(v1[1])]);

      // The state a crash right after the log entries leaves: rows retired and logged, the artifacts still stored.
      for (const [i, ref] of refs.entries()) await h.artifacts.put(ref, saved[i]);
      await h.dataSource.query(`UPDATE model_versions SET onnx_deleted_at = NULL WHERE model_id = $1`, [modelId]);
      await h.dataSource.query(`UPDATE checkpoint_deletions SET deleted_at = NULL WHERE model_id = $1`, [modelId]);
      for (const ref of gone) expect(await stored(ref)).toBe(true);
      const message = (await predict(modelId, 1).expect(410)).body.message;
      expect(message).toContain('retired');
      await asMl(http().get(`/v1/models/${modelId}/versions/1/onnx`)).expect(410);

      const size = (await h.ledger.getCheckpoint()).treeSize;
      others.push(await startAnotherWorker(h)); // its start finishes the deletions
      expect(await Promise.all(gone.map(stored))).toEqual([false, false]);
      const [row]: { n: number }[] = await h.dataSource.query(
        `SELECT (SELECT count(*) FROM model_versions WHERE model_id = $1 AND retired_at IS NOT NULL AND onnx_deleted_at IS NULL)
              + (SELECT count(*) FROM checkpoint_deletions WHERE model_id = $1 AND deleted_at IS NULL) AS n`,
        [modelId],
      );
      expect(Number(row.n)).toBe(0);
      expect((await h.ledger.getCheckpoint()).treeSize).toBe(size); // finishing logs nothing
      await predict(modelId).expect(200);
    }
  });

  it('a version an earlier unlearning left in service (a database from before retirement) is retired when a worker starts, and only once', async () => {
    const { datasetId } = await uploadIris('erin', 'legacy');
    const modelId = await trainSmallModel(h, datasetId, 'legacy');
    const v1 = await lineageOf(modelId, 1);
    await keepOutOfRetirement(h.dataSource, modelId, 1);
    const forget = await forgetSubject(h, datasetId, 'erin');
    await serveAgain(h.dataSource, modelId, 1);
    // Positive control: the state before retirement existed, version 1 served, its files there, nothing logged.
    await predict(modelId, 1).expect(200);
    expect([await stored(await onnxOf(modelId, 1)), await stored(checkpoint(v1[1]))]).toEqual([true, true]);
    expect(await entriesOf('VERSION_RETIRED', modelId)).toEqual([]);

    others.push(await startAnotherWorker(h));
    expect((await predict(modelId, 1).expect(410)).body.message).toContain(forget.id);
    expect((await entriesOf('VERSION_RETIRED', modelId)).map((e) => e.event)).toEqual([
      expect.objectContaining({ modelVersion: 1, forgetRequestIds: [forget.id] }),
    ]);
    expect((await entriesOf('CHECKPOINTS_DELETED', modelId)).map((e) => e.event)).toEqual([
      expect.objectContaining({ checkpoints: [v1[1]], forgetRequestIds: [forget.id] }),
    ]);
    expect([await stored(await onnxOf(modelId, 1)), await stored(checkpoint(v1[1]))]).toEqual([false, false]);
    const size = (await h.ledger.getCheckpoint()).treeSize;
    others.push(await startAnotherWorker(h));
    expect((await h.ledger.getCheckpoint()).treeSize).toBe(size);
  });

  it('a model that cannot unlearn fails alone: it serves nothing (409 naming the request), its versions are retired, and the request completes', async () => {
    // 8 samples, two per subject; S x R = 8 needs every one of them, so forgetting any is impossible for this model.
    const samples = Array.from({ length: 8 }, (_, i) => ({ externalId: `t-${i}`, features: [i % 2, (i * 7) % 5], label: i % 2 }));
    const { datasetId } = await uploadDataset(h, samples, { name: 'tiny', features: 2, classes: 2, subjectOf: (_, i) => `subject-${i >> 1}` });
    const tight = await trainSmallModel(h, datasetId, 's', { shards: 4, slices: 2, batchSize: 2 });
    const roomy = await trainSmallModel(h, datasetId, 's', { ...FULL, batchSize: 2 });
    await asMl(http().post(`/v1/models/${tight}/predict`)).send({ inputs: [[0, 1]] }).expect(200);

    const forget = await forgetSubject(h, datasetId, 'subject-0');
    const job = (await asMl(http().get(`/v1/jobs/${(await asMl(http().get(`/v1/forget-requests/${forget.id}`))).body.jobId}`)).expect(200)).body;
    expect(job.result.failedModels).toEqual([{ modelId: tight, error: expect.stringContaining('cannot fill 4 shards x 2 slices') }]);

    const { body: model } = await asMl(http().get(`/v1/models/${tight}`)).expect(200);
    expect(model).toMatchObject({ state: 'failed', error: expect.stringContaining(forget.id) });
    expect(model.versions).toEqual([expect.objectContaining({ version: 1, state: 'retired', retiredBy: [forget.id] })]);
    const refused = await asMl(http().post(`/v1/models/${tight}/predict`)).send({ inputs: [[0, 1]] }).expect(409);
    expect(refused.body).toMatchObject({ statusCode: 409, error: 'Conflict' });
    expect(refused.body.message).toContain(forget.id);
    await asMl(http().post(`/v1/models/${tight}/predict`)).send({ inputs: [[0, 1]], version: 1 }).expect(410);
    expect(await stored(await onnxOf(tight, 1))).toBe(false);
    expect(await entriesOf('VERSION_RETIRED', tight)).toEqual([
      expect.objectContaining({ event: expect.objectContaining({ modelVersion: 1, forgetRequestIds: [forget.id] }) }),
    ]);
    // The other model of the dataset unlearned it as usual.
    const other = await waitFor(
      async () => (await asMl(http().get(`/v1/models/${roomy}`))).body,
      (m) => m.versions.length === 2,
    );
    expect(other.versions.map((v: { state: string }) => v.state)).toEqual(['retired', 'live']);
  });
});
