/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import type { LedgerEvent } from '@lethe/events';
import { SampleVault } from '@lethe/ledger';
import { loadIris, placeSample } from '@lethe/unlearning';
import { replayModel } from '@lethe/verifier/replay';
import { listenOnLoopback, uploadDataset } from '../support/api-data';
import type { RetirementService } from '../../apps/api/src/unlearning/retirement.service';
import type { RestoreService } from '../../apps/api/src/unlearning/restore.service';
import { RetirementAudit } from '../../libs/verifier/src/retirement-audit';
import { checkRetirements } from '../../libs/verifier/src/receipt-retirement';
import { parseSampleReceipt } from '../../libs/verifier/src/receipt-data';
import type { VerificationFailure } from '../../libs/verifier/src/errors';
import type { CheckedEntry } from '../../libs/verifier/src/verify-receipt';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { ForgetRequestRepository } from '../../apps/api/src/forget-requests/forget-request.repository';
import { ForgetSteps } from '../../apps/api/src/forget-requests/forget-steps';
import { waitFor } from '../support/probe';
import { Needle, databaseText, float32Bytes, listFiles, relationDir, scanBuffer, scanFiles, scanText } from '../support/scan';
import { downloadOnnx, forgetSubject, trainSmallModel } from '../verifier/support/iris-history';

/** Overrides of SMALL_SISA (trainSmallModel) for full retraining. */
const FULL = { method: 'full', shards: 1, slices: 1, architecture: { type: 'logreg' }, epochs: 2, batchSize: 8, learningRate: 0.1 };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('reversible forgetting: a suspended forget request is restored (same bytes) or shredded (on request, or at its deadline)', () => {
  let h: JobHarness;
  let datasetId: string;
  let sisa: string;
  let full: string;
  let v1: Map<string, string>;
  let samples: ReturnType<typeof loadIris>;
  beforeAll(async () => {
    // The lifecycle sweep every second, so that a short grace period ends within the test.
    h = await startJobHarness('suspend', { env: { RETENTION_SWEEP_SECONDS: '1' } });
    samples = loadIris().filter((_, i) => i % 3 === 0);
    // dana owns the one sample SISA 2 x 2 with seed 'suspend' places in shard 0, slice 1; the others one sample each.
    const owned = samples.findIndex((s) => {
      const p = placeSample('suspend', s.externalId, 2, 2);
      return p.shard === 0 && p.slice === 1;
    });
    const subjects = new Map([[owned, 'dana'], [owned === 1 ? 2 : 1, 'erin'], [owned === 3 ? 4 : 3, 'fred'], [owned === 5 ? 6 : 5, 'gina']]);
    ({ datasetId } = await uploadDataset(h, samples, { subjectOf: (_, i) => subjects.get(i) ?? `other-${i}` }));
    sisa = await trainSmallModel(h, datasetId, 'suspend');
    full = await trainSmallModel(h, datasetId, 'suspend', FULL);
    v1 = new Map([
      [sisa, sha256(await downloadOnnx(h, h.auditor, sisa, 1))],
      [full, sha256(await downloadOnnx(h, h.auditor, full, 1))],
    ]);
  });
  afterAll(async () => {
    await h?.close();
  });

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const logSize = async () => (await h.ledger.getCheckpoint()).treeSize;
  const eventsOf = async <T extends LedgerEvent['type']>(type: T) => {
    const page = (await http().get('/v1/ledger/entries?start=0&limit=1000').expect(200)).body as { index: number; event: string }[];
    return page.map((e) => ({ index: e.index, event: JSON.parse(e.event) as Extract<LedgerEvent, { type: T }> })).filter((e) => e.event.type === type);
  };
  const getRequest = async (id: string) => (await asMl(http().get(`/v1/forget-requests/${id}`)).expect(200)).body;
  const waitForState = (id: string, states: string[]) => waitFor(() => getRequest(id), (r) => states.includes(r.state) || r.state === 'failed');
  const samplesOf = (subjectId: string) => new SampleVault(h.dataSource, h.ledger, h.keyStore).findSamples(datasetId, { subjectId });
  const suspend = async (subjectId: string, graceDays?: number) => {
    const filed = await asMl(http().post('/v1/forget-requests'))
      .send({ datasetId, subjectId, reason: 'accidental removal, maybe', mode: 'suspend', ...(graceDays === undefined ? {} : { graceDays }) })
      .expect(202);
    // The state is stored before FORGET_SUSPENDED is appended and recorded: wait for the recorded step too.
    return waitFor(
      () => getRequest(filed.body.id),
      (r) => ['completed', 'failed'].includes(r.state) || (r.state === 'suspended' && r.steps.some((s: { step: string }) => s.step === 'suspended')),
    );
  };
  const modelVersions = async (modelId: string) => (await asMl(http().get(`/v1/models/${modelId}`)).expect(200)).body.versions as { version: number; state: string }[];

  it('refuses a bad grace period or approach with a 400 naming the field, logging nothing', async () => {
    const before = await logSize();
    for (const [extra, field] of [
      [{ graceDays: 0 }, 'graceDays'],
      [{ graceDays: -1 }, 'graceDays'],
      [{ graceDays: 90.5 }, 'graceDays'],
      [{ graceDays: 'soon' }, 'graceDays'],
      [{ approach: 'approximate', algorithm: 'finetune' }, 'approach'],
      [{ mode: 'pause' }, 'mode'],
    ] as const) {
      const mode = 'mode' in extra ? {} : { mode: 'suspend' };
      const res = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'dana', reason: 'r', ...mode, ...extra }).expect(400);
      expect(JSON.stringify(res.body.message)).toContain(field);
    }
    // graceDays without mode suspend is refused too.
    const res = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'dana', reason: 'r', graceDays: 5 }).expect(400);
    expect(JSON.stringify(res.body.message)).toContain('graceDays');
    expect(await logSize()).toBe(before);
  });

  it('suspends: new versions without the sample, the old retired, the sealed data kept; restored: versions byte-identical to version 1', async () => {
    const started = Date.now();
    const suspended = await suspend('dana');
    expect(suspended.state).toBe('suspended');
    expect(suspended.mode).toBe('suspend');
    expect(suspended.graceDays).toBe(30);
    const deadline = Date.parse(suspended.deadline);
    expect(deadline).toBeGreaterThanOrEqual(started + 30 * 86_400_000 - 1000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000 + 1000);
    for (const modelId of [sisa, full]) expect(await modelVersions(modelId)).toEqual([expect.objectContaining({ version: 1, state: 'retired' }), expect.objectContaining({ version: 2, state: 'live' })]);
    // Forgotten by the models, but its data and key are kept (sealed) for the grace period.
    expect(await samplesOf('dana')).toHaveLength(1);
    const [kept] = await samplesOf('dana');
    const [row]: { id: string; payload: Buffer }[] = await h.dataSource.query(
      `SELECT p.sample_id AS id, p.payload FROM sample_payloads p JOIN sample_commitments c ON c.id = p.sample_id WHERE c.commitment = $1`,
      [kept.commitment],
    );
    const [opened] = await new SampleVault(h.dataSource, h.ledger, h.keyStore).readSamples({ sampleIds: [row.id] });
    // Sealed: the stored payload holds neither its features (float64, as the payload encodes them) nor its externalId;
    // control: the vault opens it to those very values.
    const features = Buffer.from(new Float64Array(opened.features as number[]).buffer);
    expect(samples.some((s) => s.externalId === opened.externalId && s.features.every((f, i) => f === opened.features[i]))).toBe(true);
    expect(row.payload.includes(features)).toBe(false);
    expect(row.payload.includes(Buffer.from(opened.externalId))).toBe(false);
    // Nor anywhere else: every row of every table (as text: its externalId, its features as a list, in hex as bytea
    // would print them), the database's files and DATA_DIR (artifacts, keys) hold none of its forms.
    const needles: Needle[] = [
      { name: 'externalId', bytes: Buffer.from(opened.externalId) }, // iris-NNN: 8 characters, no other sample's id holds it
      { name: 'features as text', bytes: Buffer.from((opened.features as number[]).join(',')) },
      { name: 'features as float64 LE', bytes: features },
      { name: 'features as float64 LE, hex', bytes: Buffer.from(features.toString('hex')) },
      { name: 'features as float32 LE', bytes: float32Bytes(opened.features as number[]) },
    ];
    const { tables, text } = await databaseText(h.dataSource);
    expect(tables).toEqual(expect.arrayContaining(['public.sample_payloads', 'public.ledger_entries', 'public.forget_requests', 'public.model_versions']));
    expect(scanText('rows', text, needles)).toEqual([]);
    await h.dataSource.query('CHECKPOINT');
    const relations = await relationDir(h.dataSource);
    const roots = [...(relations ? [relations] : []), h.dataDir];
    expect(roots).toHaveLength(2); // the test's PostgreSQL runs here: its files are readable
    const files = (await Promise.all(roots.map((r) => listFiles(r)))).flat();
    expect(await scanFiles(files, needles, '/')).toEqual([]);
    // Positive controls: the same scans find each form where it is: in the sample as opened, rendered as a row would
    // print it; and in the database's files, the sealed payload's own bytes (the scan reaches the table holding it).
    const plain = `public.samples (${opened.externalId},"{${(opened.features as number[]).join(',')}}",\\x${features.toString('hex')})`;
    expect(new Set(scanText('control', plain, needles).map((hit) => hit.needle))).toEqual(
      new Set(['externalId', 'features as text', 'features as float64 LE, hex']),
    );
    expect(new Set(scanBuffer('control', Buffer.concat([features, float32Bytes(opened.features as number[])]), needles).map((hit) => hit.needle))).toEqual(
      new Set(['features as float64 LE', 'features as float32 LE']),
    );
    const sealedBytes = row.payload.subarray(row.payload.length - 48);
    expect((await scanFiles(files, [{ name: 'sealed payload', bytes: sealedBytes }], '/')).length).toBeGreaterThan(0);
    const [logged] = (await eventsOf('FORGET_SUSPENDED')).filter((e) => e.event.requestId === suspended.id);
    expect(logged.event).toEqual({ type: 'FORGET_SUSPENDED', version: 1, requestId: suspended.id, datasetId, graceDays: 30, deadline: suspended.deadline });
    expect(suspended.steps).toEqual([expect.objectContaining({ step: 'suspended', ledgerIndex: logged.index, receipt: expect.objectContaining({ ledgerIndex: logged.index }) })]);

    // A model trained meanwhile does not learn the suspended sample.
    const [dana] = await samplesOf('dana');
    const meanwhile = await trainSmallModel(h, datasetId, 'meanwhile');
    const learned: { n: number }[] = await h.dataSource.query(
      `SELECT count(*)::int AS n FROM model_version_samples m JOIN sample_commitments s ON s.id = m.sample_id WHERE m.model_id = $1 AND s.commitment = $2`,
      [meanwhile, dana.commitment],
    );
    expect(learned[0].n).toBe(0);
    // Positive control: the same query finds it in version 1 of the SISA model.
    const control: { n: number }[] = await h.dataSource.query(
      `SELECT count(*)::int AS n FROM model_version_samples m JOIN sample_commitments s ON s.id = m.sample_id WHERE m.model_id = $1 AND m.version = 1 AND s.commitment = $2`,
      [sisa, dana.commitment],
    );
    expect(control[0].n).toBe(1);

    // A shred or a second restore of a request being restored is a 409 too; the restore itself is 202.
    const restore = await asMl(http().post(`/v1/forget-requests/${suspended.id}/restore`)).expect(202);
    expect(restore.body.state).toBe('restoring');
    const restored = await waitForState(suspended.id, ['restored']);
    expect(restored.state).toBe('restored');
    for (const modelId of [sisa, full]) {
      const versions = await modelVersions(modelId);
      expect(versions.map((v) => v.version)).toEqual([1, 2, 3]);
      // The engine is deterministic: learning the sample again gives version 1's very bytes.
      expect(sha256(await downloadOnnx(h, h.auditor, modelId, 3))).toBe(v1.get(modelId));
      expect(sha256(await downloadOnnx(h, h.auditor, modelId, 2))).not.toBe(v1.get(modelId));
    }
    const [restoredEntry] = (await eventsOf('FORGET_RESTORED')).filter((e) => e.event.requestId === suspended.id);
    expect(restoredEntry.event.modelVersions).toEqual([
      { modelId: sisa, modelVersion: 3, onnxSha256: v1.get(sisa) },
      { modelId: full, modelVersion: 3, onnxSha256: v1.get(full) },
    ]);
    expect(restored.steps.map((s: { step: string }) => s.step)).toEqual(['suspended', 'restored']);
    // An auditor's replay from its copy of the surviving data reproduces the restored version.
    const report = await replayModel({
      apiUrl: await listenOnLoopback(h.app),
      apiKey: h.auditor,
      modelId: sisa,
      modelVersion: 3,
      data: { text: JSON.stringify(samples), format: 'json', name: 'iris.json' },
    });
    expect(report).toMatchObject({ ok: true, publishedSha256: v1.get(sisa) });
    // Learned again: the sample is usable, and a new forget request for it is a new request.
    expect(await samplesOf('dana')).toHaveLength(1);

    const before = await logSize();
    for (const action of ['restore', 'shred']) {
      const res = await asMl(http().post(`/v1/forget-requests/${suspended.id}/${action}`)).expect(409);
      expect(res.body.message).toMatch(/^state: .* is restored, not suspended/);
    }
    expect(await logSize()).toBe(before);
  });

  it('a restore stopped after its FORGET_RESTORED logs no second one; forgotten for real later, the suspension version (which never held the sample) stays unretired, also at a worker start, and the log verifies', async () => {
    const worker = h.worker as unknown as { unlearning: { restorer: RestoreService }; retirement: RetirementService };
    let subject = '';
    for (const i of [10, 11]) if ((await samplesOf(`other-${i}`)).length === 1 && !subject) subject = `other-${i}`;
    // Versions so far: 1 retired, 2 (dana's suspension), 3 (restored, latest). Suspended: version 4, 2 and 3 retired.
    const suspended = await suspend(subject);
    expect(suspended.state).toBe('suspended');
    // The pass stops between appending FORGET_RESTORED and storing the state (an error there, as a lost connection
    // gives): the job's retry finds the request restoring and its entry logged.
    const requests = (worker.unlearning.restorer as unknown as { requests: { finishRestore(id: string, index: number | null): Promise<void> } }).requests;
    const finishRestore = requests.finishRestore.bind(requests);
    let stopped = 0;
    requests.finishRestore = async (id, index) => {
      if (id === suspended.id && stopped++ === 0) throw new Error('connection lost (injected after the append)');
      return finishRestore(id, index);
    };
    try {
      await asMl(http().post(`/v1/forget-requests/${suspended.id}/restore`)).expect(202);
      const restored = await waitForState(suspended.id, ['restored']);
      expect(restored.state).toBe('restored');
    } finally {
      requests.finishRestore = finishRestore;
    }
    expect(stopped).toBeGreaterThanOrEqual(2);
    const logged = (await eventsOf('FORGET_RESTORED')).filter((e) => e.event.requestId === suspended.id);
    // One entry (the model trained meanwhile learned the sample again too).
    expect(logged).toHaveLength(1);
    expect(logged[0].event.modelVersions).toEqual(
      expect.arrayContaining([
        { modelId: sisa, modelVersion: 5, onnxSha256: expect.any(String) },
        { modelId: full, modelVersion: 5, onnxSha256: expect.any(String) },
      ]),
    );
    expect((await getRequest(suspended.id)).steps.map((s: { step: string; ledgerIndex: number }) => [s.step, s.ledgerIndex])).toEqual([
      ['suspended', expect.any(Number)],
      ['restored', logged[0].index],
    ]);

    // Its sample forgotten for real: version 5 (which learned it again) is retired for the new request; version 4,
    // made by the suspension, never held it and stays live.
    const [kept] = await samplesOf(subject);
    const forgotten = await forgetSubject(h, datasetId, subject);
    const retiredFor = async (modelId: string) =>
      (await h.dataSource.query(`SELECT version, retired_by::text[] AS by FROM model_versions WHERE model_id = $1 AND retired_at IS NOT NULL ORDER BY version`, [modelId])) as {
        version: number;
        by: string[];
      }[];
    const retiredBefore = new Map<string, { version: number; by: string[] }[]>();
    for (const modelId of [sisa, full]) {
      const retired = await retiredFor(modelId);
      expect(retired.map((r) => r.version)).toEqual([1, 2, 3, 5]);
      expect(retired.find((r) => r.version === 5)!.by).toEqual([forgotten.id]);
      retiredBefore.set(modelId, retired);
    }
    // A worker's start finishes the retirements an unlearning left undone: version 4 is none of them.
    const finished = await worker.retirement.finishInterrupted();
    expect(finished.retired).toBe(0);
    for (const modelId of [sisa, full]) expect(await retiredFor(modelId)).toEqual(retiredBefore.get(modelId));
    expect((await eventsOf('VERSION_RETIRED')).filter((e) => e.event.modelVersion === 4)).toEqual([]);

    // The log's retirement audit (verify-log's) follows suspend, restore and forget: nothing to find. Control: with
    // version 5's retirement left out, it finds that version unretired.
    const page = (await http().get('/v1/ledger/entries?start=0&limit=1000').expect(200)).body as { index: number; event: string }[];
    const audit = (skip: (e: LedgerEvent) => boolean) => {
      const a = new RetirementAudit();
      for (const e of page) {
        const event = JSON.parse(e.event) as LedgerEvent;
        if (!skip(event)) a.observe(e.index, event);
      }
      return a.findings();
    };
    expect(audit(() => false)).toEqual([]);
    // The sample's receipt, as verify-receipt judges its retirements (entries taken as proven here): nothing found.
    const receipt = parseSampleReceipt((await http().get(`/v1/receipts/${kept.commitment}`).expect(200)).body, 'receipt');
    const entry = (r: { ledgerIndex: number; event: string }): CheckedEntry => {
      const event = JSON.parse(r.event) as LedgerEvent;
      return { check: { index: r.ledgerIndex, type: event.type, leafHash: '', anchored: null, firstAnchored: null, verified: true }, event, failures: [] };
    };
    const failures: VerificationFailure[] = [];
    const judged = checkRetirements(
      receipt,
      { learnedIn: receipt.learnedIn.map(entry), unlearnedIn: receipt.unlearnedIn.map(entry), retiredVersions: receipt.retiredVersions.map(entry), checkpointsDeleted: receipt.checkpointsDeleted.map(entry) },
      receipt.forgetRequests.map((r) => ({ ...entry(r).check, requestId: r.requestId, state: r.state })),
      failures,
    );
    // The suspension's version 4 never held it: not among the versions that did; the restored version 5 did, retired.
    // Version 1, retired for dana's request before this sample's requests, is retired all the same.
    for (const modelId of [sisa, full]) {
      const versions = judged.models.find((m) => m.modelId === modelId)!.versions;
      expect(versions.map((v) => v.modelVersion)).toEqual([1, 2, 3, 5]);
      expect(versions.filter((v) => v.retiredBy === null)).toEqual([]);
      const first = judged.retiredVersions.find((r) => r.index === versions[0].retiredBy)!;
      expect(first).toMatchObject({ verified: true, modelId, modelVersion: 1 });
      expect(first.forgetRequestIds).not.toContain(forgotten.id);
    }
    expect(failures).toEqual([]);
    // Control: the same check with version 1's retirements left out of the receipt finds each model's version 1 unretired.
    const without: VerificationFailure[] = [];
    checkRetirements(
      receipt,
      {
        learnedIn: receipt.learnedIn.map(entry),
        unlearnedIn: receipt.unlearnedIn.map(entry),
        retiredVersions: receipt.retiredVersions.map(entry).filter((e) => !(e.event?.type === 'VERSION_RETIRED' && e.event.modelVersion === 1)),
        checkpointsDeleted: receipt.checkpointsDeleted.map(entry),
      },
      receipt.forgetRequests.map((r) => ({ ...entry(r).check, requestId: r.requestId, state: r.state })),
      without,
    );
    expect(without.filter((f) => f.code !== 'NOT_RETIRED' || !/ version 1 learned /.test(f.message))).toEqual([]);
    for (const modelId of [sisa, full]) expect(without.map((f) => f.message)).toContainEqual(expect.stringContaining(`model ${modelId} version 1 learned `));
    const control = audit((e) => e.type === 'VERSION_RETIRED' && e.modelVersion === 5);
    for (const modelId of [sisa, full])
      expect(control).toContainEqual(expect.objectContaining({ code: 'NOT_RETIRED', message: expect.stringContaining(`model ${modelId} version 5 (`) }));
    expect(control.filter((f) => f.message.includes('version 4 ('))).toEqual([]);
  });

  it('restore or shred of a request that is not suspended (a completed forget, an unknown id) is refused, logging nothing', async () => {
    const forgotten = await forgetSubject(h, datasetId, 'erin');
    const before = await logSize();
    for (const action of ['restore', 'shred']) {
      const res = await asMl(http().post(`/v1/forget-requests/${forgotten.id}/${action}`)).expect(409);
      expect(res.body.message).toContain('state: ');
      expect(res.body.message).toContain('is completed');
      await asMl(http().post(`/v1/forget-requests/00000000-0000-4000-8000-000000000000/${action}`)).expect(404);
      await asMl(http().post(`/v1/forget-requests/not-a-uuid/${action}`)).expect(400);
    }
    expect(await logSize()).toBe(before);
  });

  it('shred on request destroys the kept key (FORGET_SHREDDED, state completed)', async () => {
    const suspended = await suspend('fred', 10);
    const [fred] = await samplesOf('fred');
    const receiptOf = async () => (await http().get(`/v1/receipts/${fred.commitment}`).expect(200)).body.forgetRequests[0];
    // The sample's receipt shows the suspension's deadline and each step, with its entry's receipt.
    expect(await receiptOf()).toMatchObject({ requestId: suspended.id, state: 'suspended', deadline: suspended.deadline, steps: [{ step: 'suspended' }] });
    const shred = await asMl(http().post(`/v1/forget-requests/${suspended.id}/shred`)).expect(200);
    expect(shred.body.state).toBe('completed');
    expect(await samplesOf('fred')).toHaveLength(0);
    const shredded = (await eventsOf('FORGET_SHREDDED')).filter((e) => e.event.requestId === suspended.id);
    expect(shredded).toHaveLength(1);
    const [entry] = shredded;
    expect(entry.event).toEqual({ type: 'FORGET_SHREDDED', version: 1, requestId: suspended.id, datasetId, cause: 'requested', keysDestroyed: 1 });
    const done = await getRequest(suspended.id);
    expect(done.steps.map((s: { step: string }) => s.step)).toEqual(['suspended', 'shredded']);
    expect((await receiptOf()).steps.map((s: { step: string; ledgerIndex: number }) => [s.step, s.ledgerIndex])).toEqual([
      ['suspended', done.steps[0].ledgerIndex],
      ['shredded', entry.index],
    ]);
    // No restore after a shred.
    await asMl(http().post(`/v1/forget-requests/${suspended.id}/restore`)).expect(409);
  });

  it('a shred the route and the sweep run at once (or two processes) is done and logged once', async () => {
    let subject = '';
    for (let i = 30; i < 50 && !subject; i++) if ((await samplesOf(`other-${i}`)).length === 1) subject = `other-${i}`;
    const suspended = await suspend(subject, 10);
    const repository = h.app.get(ForgetRequestRepository);
    const steps = h.app.get(ForgetSteps);
    const { moved, request } = await repository.leaveSuspended(suspended.id, 'completed', 'requested');
    expect(moved).toBe(true);
    // Both find the shred decided and unlogged; each would destroy what is left and log FORGET_SHREDDED.
    const indices = await Promise.all([steps.shred(request), steps.shred(request)]);
    expect(indices[1]).toBe(indices[0]);
    const logged = (await eventsOf('FORGET_SHREDDED')).filter((e) => e.event.requestId === suspended.id);
    expect(logged.map((e) => [e.index, e.event.keysDestroyed])).toEqual([[indices[0], 1]]);
    expect(await samplesOf(subject)).toHaveLength(0);
  });

  it('the sweep shreds a suspended request once its grace period has ended', async () => {
    // 0.0001 days: about 8.6 seconds.
    const suspended = await suspend('gina', 0.0001);
    expect(suspended.state).toBe('suspended');
    // The state moves first, then the keys are destroyed, then FORGET_SHREDDED is logged: wait for the last step.
    const done = await waitFor(() => getRequest(suspended.id), (r) => r.steps.some((s: { step: string }) => s.step === 'shredded'));
    expect(done.state).toBe('completed');
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(suspended.deadline));
    expect(await samplesOf('gina')).toHaveLength(0);
    const [entry] = (await eventsOf('FORGET_SHREDDED')).filter((e) => e.event.requestId === suspended.id);
    expect(entry.event.cause).toBe('grace-expired');
  });
});
