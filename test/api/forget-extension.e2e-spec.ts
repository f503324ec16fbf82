import { Logger } from '@nestjs/common';
import request from 'supertest';
import { validateEvent } from '@lethe/events';
import { loadIris } from '@lethe/unlearning';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { uploadDataset } from '../support/api-data';

/**
 * Extension notices (issue 14, item 7): a forget request that cannot finish within the legal month gets one
 * FORGET_EXTENDED (reason, new deadline). No worker runs, so the requests stay pending while the test extends them.
 */
describe('POST /v1/forget-requests/:id/extend', () => {
  const iris = loadIris().slice(0, 12);
  let h: JobHarness;
  let datasetId: string;
  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const treeSize = async () => (await h.ledger.getCheckpoint()).treeSize;
  const file = async (externalId: string) =>
    (await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: [externalId], reason: 'erasure' }).expect(202)).body;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    h = await startJobHarness('extension', { worker: false });
    ({ datasetId } = await uploadDataset(h, iris));
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it.each([
    [{}, 'reason must be a non-empty string'],
    [{ reason: '' }, 'reason must be a non-empty string'],
    [{ reason: 7 }, 'reason must be a non-empty string'],
    [{ reason: 'a 1001-character reason' }, 'reason must be at most 1000 characters'],
    [{ reason: 'backlog', days: 0 }, 'days must be an integer in 1..60'],
    [{ reason: 'backlog', days: 61 }, 'days must be an integer in 1..60'],
    [{ reason: 'backlog', days: 1.5 }, 'days must be an integer in 1..60'],
    [{ reason: 'backlog', weeks: 2 }, 'property weeks should not exist'],
  ])('refuses %j with a 400 naming the field, and logs nothing', async (body, message) => {
    const { id } = await file(iris[0].externalId);
    const before = await treeSize();
    const sent = (body as { reason?: unknown }).reason === 'a 1001-character reason' ? { reason: 'x'.repeat(1001) } : body;
    const res = await asMl(http().post(`/v1/forget-requests/${id}/extend`)).send(sent).expect(400);
    expect(JSON.stringify(res.body.message)).toContain(message);
    expect(await treeSize()).toBe(before);
    expect((await asMl(http().get(`/v1/forget-requests/${id}`)).expect(200)).body).not.toHaveProperty('extension');
  });

  it('logs FORGET_EXTENDED with the new deadline (the legal month plus the extension), once, and the request shows it', async () => {
    const { id } = await file(iris[1].externalId);
    const { body: request0 } = await asMl(http().get(`/v1/forget-requests/${id}`)).expect(200);
    const before = await treeSize();
    const { body: extended } = await asMl(http().post(`/v1/forget-requests/${id}/extend`)).send({ reason: 'the model retrains from scratch', days: 45 }).expect(200);
    const deadline = new Date(new Date(request0.createdAt).getTime() + (30 + 45) * 86_400_000).toISOString();
    expect(extended).toEqual({ reason: 'the model retrains from scratch', newDeadline: deadline, ledgerIndex: before });
    const event = await h.ledger.getEvent(before);
    expect(event).toEqual({ type: 'FORGET_EXTENDED', version: 1, requestId: id, reason: 'the model retrains from scratch', newDeadline: deadline });
    expect(() => validateEvent(event)).not.toThrow();
    expect((await asMl(http().get(`/v1/forget-requests/${id}`)).expect(200)).body.extension).toEqual(extended);
    const listed = (await asMl(http().get(`/v1/forget-requests?datasetId=${datasetId}`)).expect(200)).body.find((r: { id: string }) => r.id === id);
    expect(listed.extension).toEqual(extended);

    // Once: a second extension is a 409, and the default extension is the two further months.
    const again = await asMl(http().post(`/v1/forget-requests/${id}/extend`)).send({ reason: 'still busy' }).expect(409);
    expect(again.body.message).toContain('extended already');
    const other = await file(iris[2].externalId);
    const { body: twoMonths } = await asMl(http().post(`/v1/forget-requests/${other.id}/extend`)).send({ reason: 'backlog' }).expect(200);
    const created = (await asMl(http().get(`/v1/forget-requests/${other.id}`)).expect(200)).body.createdAt;
    expect(twoMonths.newDeadline).toBe(new Date(new Date(created).getTime() + 90 * 86_400_000).toISOString());
    expect(await treeSize()).toBe(before + 3); // the two extensions and the second filing
  });

  it('answers 404 for an unknown request and 403 for an auditor, logging nothing', async () => {
    const before = await treeSize();
    await asMl(http().post('/v1/forget-requests/00000000-0000-4000-8000-000000000000/extend')).send({ reason: 'x' }).expect(404);
    const { id } = await file(iris[3].externalId);
    const after = await treeSize();
    await http().post(`/v1/forget-requests/${id}/extend`).auth(h.auditor, { type: 'bearer' }).send({ reason: 'x' }).expect(403);
    expect(after).toBe(before + 1); // the filing only
    expect(await treeSize()).toBe(after);
  });
});
