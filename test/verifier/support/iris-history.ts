import { rmSync } from 'node:fs';
import request from 'supertest';
import { HARDHAT_DEV_PRIVATE_KEYS } from '@lethe/chain';
import { AnchoringLoop } from '../../../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../../../apps/api/src/anchoring/chain-connection';
import { loadConfig } from '../../../apps/api/src/config/config';
import type { ChainFixture } from '../../contracts/support/chain-fixture';
import { JobHarness } from '../../support/job-harness';
import { waitFor } from '../../support/probe';

/** A small SISA model that trains on iris in a second or two. */
export const SMALL_SISA = {
  method: 'sisa',
  shards: 2,
  slices: 2,
  architecture: { type: 'logreg' },
  epochs: 2,
  batchSize: 8,
  learningRate: 0.1,
};

const asMl = (h: JobHarness, req: request.Test) => req.auth(h.ml, { type: 'bearer' });
const http = (h: JobHarness) => request(h.app.getHttpServer());

/** Stops a harness's service, worker and queue, leaving its database (a template for copies) and removing its files. */
export async function stopKeepingDatabase(h: JobHarness): Promise<void> {
  await h.app.close();
  await h.worker?.stop();
  await h.boss.stop({ graceful: false, wait: true });
  await h.dataSource.destroy();
  rmSync(h.dataDir, { recursive: true, force: true });
}

/** Trains SMALL_SISA (with `overrides`) on `datasetId` through the API and waits for its job; the model's id. */
export async function trainSmallModel(h: JobHarness, datasetId: string, seed: string, overrides: object = {}): Promise<string> {
  const created = await asMl(h, http(h).post('/v1/models'))
    .send({ datasetId, ...SMALL_SISA, seed, ...overrides })
    .expect(202);
  const job = await waitFor(
    async () => (await asMl(h, http(h).get(`/v1/jobs/${created.body.jobId}`))).body,
    (j) => j.state === 'completed' || j.state === 'failed',
  );
  if (job.state !== 'completed') throw new Error(`training failed: ${job.error}`);
  return created.body.modelId;
}

/** Files a forget request for `subjectId` and waits until it is completed; the 202 body {id, ledgerIndex, leafHash}. */
export async function forgetSubject(
  h: JobHarness,
  datasetId: string,
  subjectId: string,
): Promise<{ id: string; ledgerIndex: number; leafHash: string }> {
  const filed = await asMl(h, http(h).post('/v1/forget-requests')).send({ datasetId, subjectId, reason: 'erasure' }).expect(202);
  const done = await waitFor(
    async () => (await asMl(h, http(h).get(`/v1/forget-requests/${filed.body.id}`))).body,
    (r) => r.state === 'completed' || r.state === 'failed',
  );
  if (done.state !== 'completed') throw new Error(`forget request failed: ${done.error}`);
  return filed.body;
}

/** The ONNX file of a model version, as an auditor downloads it. */
export async function downloadOnnx(h: JobHarness, key: string, modelId: string, version: number): Promise<Buffer> {
  const res = await http(h)
    .get(`/v1/models/${modelId}/versions/${version}/onnx`)
    .auth(key, { type: 'bearer' })
    .buffer(true)
    .parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    })
    .expect(200);
  return res.body as Buffer;
}

/** The service's AnchoringLoop on `chain` (anchoring every entry); `anchor()` sends one anchor and logs its ANCHORED. */
export function anchorerFor(h: JobHarness, chain: ChainFixture): { anchor(): Promise<void>; stop(): Promise<void> } {
  const key = HARDHAT_DEV_PRIVATE_KEYS[1]; // the fixture's anchorer
  const config = loadConfig({ RPC_URL: chain.node.rpcUrl, CONTRACT_ADDRESS: chain.client.address, ANCHORER_PRIVATE_KEY: key });
  const policy = { everyEntries: 1, everySeconds: 3600, confirmations: 1, replaceAfterSeconds: 3600, pollMs: 50 };
  const loop = new AnchoringLoop(h.dataSource, h.ledger, remoteChainConnector(config.chain, { ANCHORER_PRIVATE_KEY: key }), policy);
  return {
    anchor: async () => {
      await loop.tick(); // sends the anchor
      await loop.tick(); // confirms it and logs ANCHORED
    },
    stop: () => loop.stop(),
  };
}
