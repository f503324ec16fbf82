// Data put into a service under test the way an ML team does it: through its HTTP API.
import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { LabeledExample } from '@lethe/unlearning';
import { waitFor } from './probe';

/** A service under test (a JobHarness, or anything with an app) and an ML team's key. */
interface ServiceUnderTest {
  app: INestApplication;
  ml: string;
}

export interface UploadedDataset {
  datasetId: string;
  /** Each sample's commitment, by externalId. */
  commitments: Map<string, string>;
  /** The SAMPLES_COMMITTED entries of the upload. */
  ledgerIndices: number[];
}

/**
 * Registers a dataset (iris's shape unless told) and uploads `samples` in one request as the ML team, each
 * with the data subject `subjectOf` names (none when it is not given).
 */
export async function uploadDataset(
  service: ServiceUnderTest,
  samples: readonly LabeledExample[],
  options: { name?: string; features?: number; classes?: number; subjectOf?: (sample: LabeledExample, i: number) => string } = {},
): Promise<UploadedDataset> {
  const http = () => request(service.app.getHttpServer());
  const dataset = { name: options.name ?? 'iris', features: options.features ?? 4, classes: options.classes ?? 3 };
  const datasetId = (await http().post('/v1/datasets').auth(service.ml, { type: 'bearer' }).send(dataset).expect(201)).body.id;
  const subjectOf = options.subjectOf;
  const upload = await http()
    .post(`/v1/datasets/${datasetId}/samples`)
    .auth(service.ml, { type: 'bearer' })
    .send(subjectOf ? samples.map((s, i) => ({ ...s, subjectId: subjectOf(s, i) })) : samples)
    .expect(200);
  const rows = upload.body.commitments as { externalId: string; commitment: string }[];
  const commitments = new Map(rows.map((c) => [c.externalId, c.commitment]));
  return { datasetId, commitments, ledgerIndices: upload.body.ledgerIndices };
}

/** A subjectOf for uploadDataset: the group's name for the samples of each group, else `subject-<externalId>`. */
export function subjectsByGroup(groups: Record<string, ReadonlySet<string>>): (sample: LabeledExample) => string {
  return (sample) => Object.keys(groups).find((name) => groups[name].has(sample.externalId)) ?? `subject-${sample.externalId}`;
}

/** Starts the app listening on a free port of 127.0.0.1; its base URL. */
export async function listenOnLoopback(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
}

/** Creates a model (POST /v1/models) as the ML team and waits for its training job; its id (the job must complete). */
export async function createAndTrain(service: ServiceUnderTest, body: object): Promise<string> {
  const http = () => request(service.app.getHttpServer());
  const { body: created } = await http().post('/v1/models').auth(service.ml, { type: 'bearer' }).send(body).expect(202);
  const job = await waitFor(
    async () => (await http().get(`/v1/jobs/${created.jobId}`).auth(service.ml, { type: 'bearer' }).expect(200)).body,
    (j) => j.state === 'completed' || j.state === 'failed',
  );
  if (job.state !== 'completed') throw new Error(`training job ${created.jobId} ended ${job.state}: ${job.error}`);
  return created.modelId;
}

/** The small SISA logistic regression the iris e2e tests train (2 shards x 2 slices, 20 epochs), with `extra` on top. */
export function irisSisaBody(datasetId: string, seed: string, extra: object = {}): object {
  return { datasetId, method: 'sisa', shards: 2, slices: 2, architecture: { type: 'logreg' }, epochs: 20, batchSize: 8, learningRate: 0.1, seed, ...extra };
}

/** Files a forget request for one sample as the ML team and waits for it to end; it must complete. */
export async function forgetAndWait(service: ServiceUnderTest, datasetId: string, externalId: string): Promise<void> {
  const http = () => request(service.app.getHttpServer());
  const { body: filed } = await http()
    .post('/v1/forget-requests')
    .auth(service.ml, { type: 'bearer' })
    .send({ datasetId, externalIds: [externalId], reason: 'erasure' })
    .expect(202);
  const done = await waitFor(
    async () => (await http().get(`/v1/forget-requests/${filed.id}`).auth(service.ml, { type: 'bearer' }).expect(200)).body,
    (r) => r.state === 'completed' || r.state === 'failed',
    120_000,
  );
  if (done.state !== 'completed') throw new Error(`forget request ${filed.id} ended ${done.state}: ${done.error}`);
}
