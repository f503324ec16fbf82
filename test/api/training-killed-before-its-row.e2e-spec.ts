/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { irisSisaBody, uploadDataset } from '../support/api-data';
import { JobHarness, startAnotherWorker, startJobHarness, startWorkerProcess } from '../support/job-harness';
import { waitFor } from '../support/probe';

const JOBS = { expireSeconds: 3600, retryLimit: 50, lostAfterSeconds: 4 };
const iris = loadIris();
const first = iris.slice(0, 100);

/**
 * A harness whose one training (on `first`) a worker process was killed in (SIGKILL) after the training's log
 * entries, MODEL_PUBLISHED included, were durable and before its model_versions row was written
 * (test/support/die-before-version-row.js kills it there, every time). One training per harness: a second worker
 * process would take the first one's retry.
 */
function killedTraining(name: string, seed: string) {
  const state = {} as { h: JobHarness; datasetId: string; modelId: string; jobId: string; logged: { onnxSha256: string }; survivor?: JobWorker };
  let doomed: ChildProcess | undefined;

  beforeAll(async () => {
    const h = (state.h = await startJobHarness(name, { worker: false, jobs: JOBS }));
    const { datasetId } = await uploadDataset(h, first);
    let output = '';
    doomed = await startWorkerProcess(
      h,
      {
        WORKER_NAME: 'doomed',
        JOB_EXPIRE_SECONDS: String(JOBS.expireSeconds),
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${join(__dirname, '..', 'support', 'die-before-version-row.js')}`,
        DIE_BEFORE_VERSION_ROW: '1',
      },
      (text) => (output += text),
    );
    // 'close': the process has exited and its output has all been read.
    const exited = new Promise<void>((resolve) => doomed!.on('close', () => resolve()));
    const { body: created } = await asMl(state, request(h.app.getHttpServer()).post('/v1/models')).send(irisSisaBody(datasetId, seed)).expect(202);

    // The worker trains, appends the training's entries, and dies as it writes the version row.
    await exited;
    expect(doomed.signalCode).toBe('SIGKILL');
    expect(output).toContain('die-before-version-row: a model_versions row is about to be written');
    const logged = await publishedOf(state, created.modelId);
    expect(logged.map((e) => e.modelVersion)).toEqual([1]);
    expect(await h.dataSource.query(`SELECT 1 FROM model_versions WHERE model_id = $1`, [created.modelId])).toEqual([]);
    expect(await h.dataSource.query(`SELECT state FROM models WHERE id = $1`, [created.modelId])).toEqual([{ state: 'training' }]);
    Object.assign(state, { datasetId, modelId: created.modelId, jobId: created.jobId, logged: logged[0] });
  }, 900_000);

  afterAll(async () => {
    if (doomed && doomed.exitCode === null && doomed.signalCode === null) doomed.kill('SIGKILL');
    await state.survivor?.stop();
    await state.h?.close();
  });
  return state;
}

type Killed = ReturnType<typeof killedTraining>;

function asMl(k: Pick<Killed, 'h'>, req: request.Test): request.Test {
  return req.auth(k.h.ml, { type: 'bearer' });
}

async function publishedOf(k: Pick<Killed, 'h'>, modelId: string): Promise<{ modelVersion: number; onnxSha256: string }[]> {
  const rows: { event: string }[] = await k.h.dataSource.query(`SELECT event FROM ledger_entries WHERE type = 'MODEL_PUBLISHED' AND event LIKE $1 ORDER BY idx`, [
    `%${modelId}%`,
  ]);
  return rows.map((r) => JSON.parse(r.event));
}

function jobEnded(k: Killed): Promise<{ state: string; error?: string; result?: unknown }> {
  return waitFor(
    async () => (await asMl(k, request(k.h.app.getHttpServer()).get(`/v1/jobs/${k.jobId}`)).expect(200)).body,
    (j) => j.state === 'completed' || j.state === 'failed',
    600_000,
  );
}

/** Uploads the rest of iris to the dataset (after the training planned on the first 100). */
async function uploadMore(k: Killed): Promise<void> {
  await asMl(k, request(k.h.app.getHttpServer()).post(`/v1/datasets/${k.datasetId}/samples`)).send(iris.slice(100)).expect(200);
}

/** Files a forget request naming a sample the training learned. */
async function forgetALearnedSample(k: Killed): Promise<{ id: string }> {
  const { body: filed } = await asMl(k, request(k.h.app.getHttpServer()).post('/v1/forget-requests'))
    .send({ datasetId: k.datasetId, externalIds: [first[0].externalId], reason: 'erasure' })
    .expect(202);
  return filed;
}

/** The forget request completed against the logged version 1: version 2 made, version 1 (the logged bytes, logged once) retired. */
async function expectServedAgainstVersion1(k: Killed, filed: { id: string }): Promise<void> {
  const http = () => request(k.h.app.getHttpServer());
  const forget = await waitFor(
    async () => (await asMl(k, http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
    (r) => r.state === 'completed' || r.state === 'failed',
    600_000,
  );
  expect(forget.state).toBe('completed');
  const { body: served } = await asMl(k, http().get(`/v1/models/${k.modelId}`)).expect(200);
  expect(served.state).toBe('ready');
  expect(served.versions[0]).toMatchObject({ version: 1, onnxSha256: k.logged.onnxSha256, state: 'retired', retiredBy: [filed.id] });
  expect(served.versions[1]).toMatchObject({ version: 2, reflectsForgetRequests: [filed.id] });
  expect((await publishedOf(k, k.modelId)).map((e) => e.modelVersion)).toEqual([1, 2]);
  // The plan is not kept once version 1 is recorded.
  expect(await k.h.dataSource.query(`SELECT training_plan FROM models WHERE id = $1`, [k.modelId])).toEqual([{ training_plan: null }]);
}

/*
 * Before the retry the dataset changes: samples uploaded, a forget request naming a sample the training learned.
 * Found by the crash trials (seeds 2124851625, 2124851689, 2124851691): the retry planned again from the dataset
 * then, trained other bytes, and could never publish what the log records. Now whichever holds the dataset first
 * trains the stored plan, the training's retry or a forget pass: version 1 is the logged bytes, and a forget
 * request is served against it (a version 2, version 1 retired), as without the crash. Each order is forced below.
 */
describe('a training killed between its MODEL_PUBLISHED entry and its version row, a forget pass before its retry', () => {
  const k = killedTraining('training_before_row_pass', 'killed-before-row-pass');

  it('is finished by the pass, which forgets the request filed meanwhile from the logged version 1', async () => {
    await uploadMore(k);
    const filed = await forgetALearnedSample(k);
    // A worker that would retry the training only after an hour without heartbeats: the pass comes first.
    k.survivor = await startAnotherWorker(k.h, { ...JOBS, lostAfterSeconds: 3600 });
    await expectServedAgainstVersion1(k, filed);
    // The pass did it: the training's job is still the dead worker's.
    expect(await k.h.dataSource.query(`SELECT state, worker_id FROM jobs WHERE id = $1`, [k.jobId])).toEqual([
      { state: 'running', worker_id: expect.stringMatching(/^doomed:/) },
    ]);
  }, 900_000);
});

describe('a training killed between its MODEL_PUBLISHED entry and its version row, retried after samples were uploaded', () => {
  const k = killedTraining('training_before_row', 'killed-before-row');

  it('publishes the logged version 1 on retry, and a forget request then retires it', async () => {
    await uploadMore(k);
    // No forget request waits, so no pass: the training's retry (its worker stopped answering) comes first.
    k.survivor = await startAnotherWorker(k.h, JOBS);
    expect(await jobEnded(k)).toMatchObject({ state: 'completed', result: { modelId: k.modelId, version: 1, onnxSha256: k.logged.onnxSha256 } });
    await expectServedAgainstVersion1(k, await forgetALearnedSample(k));
  }, 900_000);
});

describe('a training killed between its MODEL_PUBLISHED entry and its version row, a planned sample gone since', () => {
  const k = killedTraining('training_before_row_lost', 'killed-before-row-lost');

  it('fails, naming the cause, and publishes nothing else (never other bytes)', async () => {
    // A planned sample's payload gone (as a shred leaves it): the plan cannot be trained to the logged bytes.
    const [{ plan }] = await k.h.dataSource.query(`SELECT training_plan AS plan FROM models WHERE id = $1`, [k.modelId]);
    expect(plan.train).toHaveLength(100);
    await k.h.dataSource.query(`DELETE FROM sample_payloads WHERE sample_id = $1`, [plan.train[7]]);

    k.survivor = await startAnotherWorker(k.h, JOBS);
    const job = await jobEnded(k);
    expect(job.state).toBe('failed');
    expect(job.error).toContain('1 of the 100 samples its version 1 was planned on can no longer be read');
    const { body: model } = await asMl(k, request(k.h.app.getHttpServer()).get(`/v1/models/${k.modelId}`)).expect(200);
    expect(model.state).toBe('failed');
    expect(model.versions ?? []).toEqual([]);
    expect((await publishedOf(k, k.modelId)).map((e) => e.modelVersion)).toEqual([1]);
  }, 900_000);
});
