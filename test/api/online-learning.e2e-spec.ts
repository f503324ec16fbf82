/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import type { LedgerEvent } from '@lethe/events';
import { SampleVault } from '@lethe/ledger';
import { loadIris, placeSample } from '@lethe/unlearning';
import { describeLearnBatchMismatch, replayModel } from '@lethe/verifier/replay';
import { RetirementAudit } from '../../libs/verifier/src/retirement-audit';
import { checkRetirements } from '../../libs/verifier/src/receipt-retirement';
import { parseSampleReceipt } from '../../libs/verifier/src/receipt-data';
import type { VerificationFailure } from '../../libs/verifier/src/errors';
import type { CheckedEntry } from '../../libs/verifier/src/verify-receipt';
import { listenOnLoopback } from '../support/api-data';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { downloadOnnx, SMALL_SISA, trainSmallModel } from '../verifier/support/iris-history';

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
  // The app listens once (for the replays), whichever test asks first.
  let listening: Promise<string> | undefined;
  const loopback = () => (listening ??= listenOnLoopback(h.app));
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

  it('learn: the new samples are appended slices (one per shard, BATCH_LEARNED.learnBatch), a small part of a training; replay reproduces it and forgets after it', async () => {
    const datasetId = await register();
    const first = iris.slice(0, 40);
    const added = iris.slice(40);
    const commitments = new Map<string, string>();
    const remember = (body: { commitments: { externalId: string; commitment: string }[] }) => body.commitments.forEach((c) => commitments.set(c.externalId, c.commitment));
    remember(await upload(datasetId, first));
    const modelId = await trainSmallModel(h, datasetId, 'online');
    remember(await upload(datasetId, added));

    const learn = await asMl(http().post(`/v1/models/${modelId}/learn`)).expect(202);
    const job = await waitForJob(learn.body.jobId);
    expect(job.state).toBe('completed');
    expect(job.result.modelVersions).toEqual([{ modelId, version: 2 }]);
    const batchEntriesOf = async (version: number) =>
      (await entries()).filter(
        (e): e is { index: number; event: Extract<LedgerEvent, { type: 'BATCH_LEARNED' }> } =>
          e.event.type === 'BATCH_LEARNED' && e.event.modelId === modelId && e.event.modelVersion === version,
      );
    const batchesOf = async (version: number) => (await batchEntriesOf(version)).map((e) => e.event);
    // The work of the learn: one appended slice per shard (the (R+1)-th, batch 1) holding exactly the new samples,
    // against a training's S x R slices over every sample.
    const R = SMALL_SISA.slices;
    const trained = await batchesOf(1);
    const learned = await batchEntriesOf(2);
    expect(trained).toHaveLength(SMALL_SISA.shards * R);
    expect(learned.map(({ event: e }) => [e.shard, e.slice, e.learnBatch])).toEqual([[0, R, 1], [1, R, 1]]);
    expect(learned.reduce((n, { event: e }) => n + e.count, 0)).toBe(added.length);
    // Each resumes from its shard's last checkpoint of version 1.
    expect(learned.map(({ event: e }) => e.parentCheckpoint)).toEqual([0, 1].map((shard) => trained.find((e) => e.shard === shard && e.slice === R - 1)!.checkpoint));
    const learnedSha = sha256(await downloadOnnx(h, h.auditor, modelId, 2));
    expect(sha256(await downloadOnnx(h, h.auditor, modelId, 1))).not.toBe(learnedSha);

    // An auditor's replay trains from scratch with the data saying which learn batch appended each sample: the same bytes.
    const api = await loopback();
    const replay = (modelVersion: number, data: object[]) =>
      replayModel({ apiUrl: api, apiKey: h.auditor, modelId, modelVersion, data: { text: JSON.stringify(data), format: 'json', name: 'iris.json' } });
    const withBatches = [...first, ...added.map((s) => ({ ...s, batch: 1 }))];
    const rightSplit = await replay(2, withBatches);
    expect(rightSplit).toMatchObject({ ok: true, publishedSha256: learnedSha });
    // Each learn batch was checked against the log before training: the counts (no commitments in this data).
    expect(rightSplit.learnBatches.map((b) => [b.shard, b.learnBatch, b.ok, b.got.batchRoot])).toEqual([[0, 1, true, null], [1, 1, true, null]]);
    expect(rightSplit.learnBatches.map((b) => b.index)).toEqual(learned.map((e) => e.index));
    // With the commitments the upload answered, the replay recomputes each learn batch's root: the log's.
    const committed = withBatches.map((s) => ({ ...s, commitment: commitments.get(s.externalId)! }));
    const withRoots = await replay(2, committed);
    expect(withRoots).toMatchObject({ ok: true, publishedSha256: learnedSha });
    expect(withRoots.learnBatches.map((b) => b.got.batchRoot)).toEqual(learned.map((e) => e.event.batchRoot));

    // A wrong split, found before any training, naming the batch: the same samples as one training (no learn batch) ...
    const unsplit = await replay(2, iris);
    expect(unsplit).toMatchObject({ ok: false, publishedSha256: learnedSha, replayedSha256: null });
    expect(unsplit.learnBatches.map((b) => [b.index, b.expected.count, b.got.count, b.ok])).toEqual(learned.map((e) => [e.index, e.event.count, 0, false]));
    expect(describeLearnBatchMismatch(unsplit.learnBatches[0])).toBe(
      `learn batch 1 of shard 0 (slice ${R}, BATCH_LEARNED entry ${learned[0].index}): the log says ${learned[0].event.count} sample(s) under batch root ` +
        `${learned[0].event.batchRoot}, the data gives 0 sample(s) (root not computed: the data does not give every one its commitment)`,
    );
    // ... and a split that keeps every count (an original sample and an added one of one shard swap batches): only the
    // roots tell it, with the commitments.
    const shardOf = (externalId: string) => placeSample('online', externalId, SMALL_SISA.shards, R).shard;
    const moved = added.find((s) => shardOf(s.externalId) === 0)!;
    const back = first.find((s) => shardOf(s.externalId) === 0)!;
    const swapped = committed.map((s) => (s.externalId === moved.externalId ? { ...s, batch: 0 } : s.externalId === back.externalId ? { ...s, batch: 1 } : s));
    const sameCounts = await replay(2, swapped);
    expect(sameCounts).toMatchObject({ ok: false, replayedSha256: null });
    const [wrong, ...others] = sameCounts.learnBatches.filter((b) => !b.ok);
    expect(others).toEqual([]);
    expect(wrong).toMatchObject({ shard: 0, learnBatch: 1, index: learned[0].index, expected: { count: learned[0].event.count, batchRoot: learned[0].event.batchRoot } });
    expect(wrong.got.count).toBe(learned[0].event.count);
    expect(wrong.got.batchRoot).toMatch(/^[0-9a-f]{64}$/);
    expect(wrong.got.batchRoot).not.toBe(learned[0].event.batchRoot);

    // A forget of an appended sample and of an original one: exact (the replay of the survivors, same plan, gives its bytes).
    const gone = [added[0].externalId, first[0].externalId];
    const filed = await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: gone, reason: 'erasure' }).expect(202);
    const served = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.body.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(served.modelVersions).toEqual([expect.objectContaining({ modelId, version: 3 })]);
    const [unlearned] = await h.ledger.findEntries({ type: 'UNLEARN_COMPLETED', fields: { modelId, modelVersion: 3 }, limit: 1 });
    expect((unlearned.event as { affected: { fromSlice: number }[] }).affected.every((a) => a.fromSlice <= R)).toBe(true);
    expect((await batchesOf(3)).some((e) => e.slice === R && e.learnBatch === 1)).toBe(true);
    expect(await replay(3, withBatches.filter((s) => !gone.includes(s.externalId)))).toMatchObject({ ok: true });

    // Nothing uploaded since: the pass publishes nothing.
    const again = await waitForJob((await asMl(http().post(`/v1/models/${modelId}/learn`)).expect(202)).body.jobId);
    expect(again).toMatchObject({ state: 'completed', result: { modelVersions: [] } });
  });

  it('an approximate forget that empties the last learn batch: the exact version after it keeps the emptied slice (then exact, then none and a later forget; control: exact)', async () => {
    const R = SMALL_SISA.slices;
    const api = await loopback();
    const first = iris.slice(0, 40);
    const added = iris.slice(40);
    const forget = async (datasetId: string, externalIds: string[], extra: object = {}) => {
      const filed = await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds, reason: 'erasure', ...extra }).expect(202);
      return waitFor(
        async () => (await asMl(http().get(`/v1/forget-requests/${filed.body.id}`)).expect(200)).body,
        (r) => r.state === 'completed' || r.state === 'failed',
      );
    };
    // A model that learned `added` as batch 1; the forgets `how` files; the versions they published.
    const scenario = async (how: (datasetId: string) => Promise<void>) => {
      const datasetId = await register();
      const committed = new Map<string, string>();
      const remember = (body: { commitments: { externalId: string; commitment: string }[] }) => body.commitments.forEach((c) => committed.set(c.externalId, c.commitment));
      remember(await upload(datasetId, first));
      const modelId = await trainSmallModel(h, datasetId, 'empty-batch');
      remember(await upload(datasetId, added));
      expect(await waitForJob((await asMl(http().post(`/v1/models/${modelId}/learn`)).expect(202)).body.jobId)).toMatchObject({ state: 'completed' });
      await how(datasetId);
      const model = (await asMl(http().get(`/v1/models/${modelId}`)).expect(200)).body as { versions: { version: number; guarantee?: { kind: string } }[] };
      const last = Math.max(...model.versions.map((v) => v.version));
      // The log's latest BATCH_LEARNED of each appended slice up to the last version: what the version holds there.
      const log = await entries();
      const lastPublished = log.find((e) => e.event.type === 'MODEL_PUBLISHED' && e.event.modelId === modelId && e.event.modelVersion === last)!.index;
      const appended = new Map<string, { modelVersion: number; count: number }>();
      for (const { index, event: e } of log)
        if (index < lastPublished && e.type === 'BATCH_LEARNED' && e.modelId === modelId && e.slice >= R) appended.set(`${e.shard}/${e.slice}`, { modelVersion: e.modelVersion, count: e.count });
      const audit = new RetirementAudit();
      for (const { index, event } of log) audit.observe(index, event);
      const replay = await replayModel({
        apiUrl: api,
        apiKey: h.auditor,
        modelId,
        modelVersion: last,
        data: { text: JSON.stringify(first.filter((s) => s.externalId !== first[0].externalId)), format: 'json', name: 'iris.json' },
      });
      // Each forgotten sample's receipt, its retirements judged as verify-receipt does (entries taken as proven here).
      const receiptFailures: VerificationFailure[] = [];
      for (const externalId of [added[0].externalId, first[0].externalId]) {
        const receipt = parseSampleReceipt((await http().get(`/v1/receipts/${committed.get(externalId)}`).expect(200)).body, 'receipt');
        const entry = (r: { ledgerIndex: number; event: string }): CheckedEntry => {
          const event = JSON.parse(r.event) as LedgerEvent;
          return { check: { index: r.ledgerIndex, type: event.type, leafHash: '', anchored: null, firstAnchored: null, verified: true }, event, failures: [] };
        };
        const { learnedIn, unlearnedIn, retiredVersions, checkpointsDeleted } = receipt;
        checkRetirements(
          receipt,
          { learnedIn: learnedIn.map(entry), unlearnedIn: unlearnedIn.map(entry), retiredVersions: retiredVersions.map(entry), checkpointsDeleted: checkpointsDeleted.map(entry) },
          receipt.forgetRequests.map((r) => ({ ...entry(r).check, requestId: r.requestId, state: r.state })),
          receiptFailures,
        );
      }
      return { modelId, versions: model.versions, last, appended, findings: audit.findings(), receiptFailures, replay };
    };
    const ids = added.map((s) => s.externalId);
    const original = [first[0].externalId];

    // Control: the learn batch and an original sample forgotten exactly.
    const exact = await scenario( async (datasetId) => {
      expect(await forget(datasetId, [...ids, ...original])).toMatchObject({ state: 'completed' });
    });
    // Approximate, the exact pass following in the same pass (from the version before the approximate one).
    const thenExact = await scenario( async (datasetId) => {
      expect(await forget(datasetId, [...ids, ...original], { approach: 'approximate', algorithm: 'finetune' })).toMatchObject({ state: 'completed' });
    });
    // Approximate with no exact pass; a later exact forget then starts from the approximate version.
    const later = await scenario( async (datasetId) => {
      expect(await forget(datasetId, ids, { approach: 'approximate', algorithm: 'finetune', then: 'none' })).toMatchObject({ state: 'completed' });
      expect(await forget(datasetId, original)).toMatchObject({ state: 'completed' });
    });
    const approximateOf = (run: { versions: { version: number; guarantee?: { kind: string } }[] }) =>
      run.versions.filter((v) => v.guarantee?.kind === 'approximate').map((v) => v.version);
    expect([exact.last, approximateOf(exact)]).toEqual([3, []]);
    for (const run of [thenExact, later]) expect([run.last, approximateOf(run)]).toEqual([4, [3]]);
    for (const [name, run] of Object.entries({ exact, thenExact, later })) {
      // Every shard keeps its appended slice, and the log's latest entry of it, the exact version's, holds nothing.
      expect([name, run.appended.size]).toEqual([name, SMALL_SISA.shards]);
      expect([name, [...run.appended.values()]]).toEqual([name, Array.from({ length: SMALL_SISA.shards }, () => ({ modelVersion: run.last, count: 0 }))]);
      // The replay of the survivors (no learn batch left) reproduces it; no version that learned a sample is left unretired.
      expect([name, run.replay.ok, run.replay.learnBatches.filter((b) => !b.ok)]).toEqual([name, true, []]);
      expect([name, run.findings, run.receiptFailures]).toEqual([name, [], []]);
    }
    // The three exact versions (one seed) hold the same samples in the same slices: the same bytes.
    expect(thenExact.replay.publishedSha256).toBe(exact.replay.publishedSha256);
    expect(later.replay.publishedSha256).toBe(exact.replay.publishedSha256);
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
