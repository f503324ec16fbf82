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

/**
 * Before the retry, a sample is uploaded and a forget request names a sample the training learned: the dataset is
 * no longer what the training planned on. Found by the crash trials (seeds 2124851625, 2124851689, 2124851691): the
 * retry planned again from the dataset then, trained other bytes, and could never publish what the log records.
 * Now the retry (or the forget pass, whichever holds the dataset first) trains the stored plan: version 1 is the
 * logged bytes, and the forget request is served against it (a version 2, version 1 retired), as without the crash.
 */
describe('a training killed between its MODEL_PUBLISHED entry and its version row, the dataset changed since', () => {
  const k = killedTraining('training_before_row', 'killed-before-row');

  it('publishes the logged version 1 on retry, and the forget request filed meanwhile retires it', async () => {
    const http = () => request(k.h.app.getHttpServer());
    await asMl(k, http().post(`/v1/datasets/${k.datasetId}/samples`)).send(iris.slice(100)).expect(200);
    const { body: filed } = await asMl(k, http().post('/v1/forget-requests'))
      .send({ datasetId: k.datasetId, externalIds: [first[0].externalId], reason: 'erasure' })
      .expect(202);

    // Another worker: the training's retry (its worker stopped answering) and the forget pass, in either order.
    k.survivor = await startAnotherWorker(k.h, JOBS);
    expect(await jobEnded(k)).toMatchObject({ state: 'completed', result: { modelId: k.modelId, version: 1, onnxSha256: k.logged.onnxSha256 } });
    const forget = await waitFor(
      async () => (await asMl(k, http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      600_000,
    );
    expect(forget.state).toBe('completed');

    // Version 1 is the logged bytes, logged once; the request made version 2 and retired version 1.
    const { body: served } = await asMl(k, http().get(`/v1/models/${k.modelId}`)).expect(200);
    expect(served.state).toBe('ready');
    expect(served.versions[0]).toMatchObject({ version: 1, onnxSha256: k.logged.onnxSha256, state: 'retired', retiredBy: [filed.id] });
    expect(served.versions[1]).toMatchObject({ version: 2, reflectsForgetRequests: [filed.id] });
    expect((await publishedOf(k, k.modelId)).map((e) => e.modelVersion)).toEqual([1, 2]);
    // The plan is not kept once version 1 is recorded.
    expect(await k.h.dataSource.query(`SELECT training_plan FROM models WHERE id = $1`, [k.modelId])).toEqual([{ training_plan: null }]);
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
