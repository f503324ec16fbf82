/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { JOB_CHANNEL } from '../../apps/api/src/jobs/job.notifier';
import { UNLEARN_JOB } from '../../apps/api/src/jobs/job.entity';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';

/**
 * A sent job wakes the workers (NOTIFY on JOB_CHANNEL, a LISTEN connection per worker) instead of waiting for
 * their next poll: here workers poll once an hour, so every job below that runs ran because it was announced.
 * How soon a job starts is measured by `npm run bench -- forget-latency`, not here.
 */
describe('jobs wake the workers when they are sent', () => {
  let h: JobHarness;
  let datasetId: string;
  const http = () => request(h.app.getHttpServer());
  const asMl = (test: request.Test) => test.auth(h.ml, { type: 'bearer' });
  const passesOf = async (): Promise<number> =>
    (await h.dataSource.query(`SELECT count(*)::int AS n FROM jobs WHERE type = $1 AND payload->>'datasetId' = $2`, [UNLEARN_JOB, datasetId]))[0].n;

  beforeAll(async () => {
    h = await startJobHarness('job_notify', { jobs: { pollSeconds: 3600 } });
    datasetId = (await asMl(http().post('/v1/datasets')).send({ name: 'iris', features: 4, classes: 3 }).expect(201)).body.id;
    await asMl(http().post(`/v1/datasets/${datasetId}/samples`)).send(loadIris()).expect(200);
  });

  afterAll(async () => {
    await h?.close();
  });

  it('a job sent without a notification waits for the next poll; the notification alone wakes the worker (the control)', async () => {
    // A message of the old kind (no job row): its handler makes the dataset's waiting pass, a row we can see.
    await h.boss.send(UNLEARN_JOB, { datasetId });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await passesOf()).toBe(0);
    await h.dataSource.query('SELECT pg_notify($1, $2)', [JOB_CHANNEL, UNLEARN_JOB]);
    await waitFor(passesOf, (n) => n === 1, 90_000); // the poll is an hour off: any deadline below it shows the notification woke it
  });

  it('trains and forgets while the workers poll once an hour: each job is announced when it is sent', async () => {
    const created = await asMl(http().post('/v1/models'))
      .send({ datasetId, method: 'sisa', shards: 2, slices: 2, architecture: { type: 'logreg' }, epochs: 5, batchSize: 8, learningRate: 0.1, seed: 'notify' })
      .expect(202);
    const trained = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.body.jobId}`))).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      90_000,
    );
    expect(trained.state).toBe('completed');
    const { body: filed } = await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: ['iris-007'], reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`))).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      90_000,
    );
    expect(done).toMatchObject({ state: 'completed', modelVersions: [expect.objectContaining({ version: 2 })] });
  }, 300_000); // its waits are deadlines, long for a loaded machine

  it('listens again after losing its connection, and finds what was sent meanwhile', async () => {
    // The listener sends `LISTEN lethe_jobs; LISTEN lethe_tasks` as one statement: its backend shows it as its last query.
    const listening = async (): Promise<number[]> =>
      (await h.dataSource.query(`SELECT pid FROM pg_stat_activity WHERE starts_with(query, $1)`, [`LISTEN ${JOB_CHANNEL};`])).map((r: { pid: number }) => r.pid);
    const [pid] = await listening();
    expect(pid).toBeDefined();
    await h.dataSource.query('SELECT pg_terminate_backend($1)', [pid]);
    // Sent while the listener is down: no worker hears it, and the hourly poll is far off.
    const { body: filed } = await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: ['iris-011'], reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`))).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      90_000,
    );
    expect(done.state).toBe('completed');
    const [again] = await listening();
    expect(again).toBeDefined();
    expect(again).not.toBe(pid);
  });
});
