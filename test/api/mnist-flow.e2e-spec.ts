/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { INestApplication, Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PgBoss from 'pg-boss';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { HARDHAT_DEV_PRIVATE_KEYS } from '@lethe/chain';
import { Ledger, openDatabase } from '@lethe/ledger';
import { fromHex, hashLeaf, toHex, verifyInclusion } from '@lethe/merkle';
import { MNIST_FEATURES, Sample, TrainingConfigInput, loadMnist } from '@lethe/unlearning';
import { fromScratchSha256 } from '../support/from-scratch';
import { AnchoringLoop } from '../../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../../apps/api/src/anchoring/chain-connection';
import type { ArtifactStore } from '@lethe/artifacts';
import { createApp } from '../../apps/api/src/app';
import { openArtifactStore } from '../../apps/api/src/database/artifact-store';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { JobForgetRequestQueue } from '../../apps/api/src/forget-requests/forget-request.queue';
import { startJobBoss } from '../../apps/api/src/jobs/job.boss';
import { PgBossJobQueue } from '../../apps/api/src/jobs/job.queue';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { createJobWorker } from '../../apps/api/src/worker/worker.module';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { TestDatabase, createTestDatabase } from '../support/database';
import { testJobConfig } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { sharedTestKeyStore } from '../support/key-store';

/** An entry receipt as GET /v1/receipts/:commitment gives it. */
interface EntryReceipt {
  ledgerIndex: number;
  leafHash: string;
  event: string;
  inclusionProof: { treeSize: number; rootHash: string; proof: string[] };
  anchor: { treeSize: number; rootHash: string; contract: string; txHash: string } | null;
}

/**
 * The whole path a user and an auditor take, as `npm start` wires it (pg-boss worker, anchoring loop on a
 * Hardhat chain): MNIST digits uploaded as NDJSON, a SISA MLP trained, a subject forgotten, the new model
 * equal to a from-scratch training without it, and the forgotten sample's receipt checked against the chain.
 */
describe('MNIST: upload, train, predict, forget, anchor, verify the receipt', () => {
  const PER_DIGIT = 60; // 600 digits
  const digits = loadMnist({ perDigit: PER_DIGIT });
  /** The three digits of one subject, forgotten below. */
  const bob = new Set(['mnist-1-0007', 'mnist-4-0033', 'mnist-8-0051']);
  const subjectOf = (externalId: string) => (bob.has(externalId) ? 'bob' : `subject-${externalId}`);
  const modelBody = (datasetId: string) => ({
    datasetId,
    method: 'sisa',
    shards: 3,
    slices: 2,
    architecture: { type: 'mlp', hidden: [16] },
    epochs: 1,
    batchSize: 32,
    learningRate: 0.1,
    seed: 'e2e-mnist',
  });

  let chain: ChainFixture;
  let db: TestDatabase;
  let dataDir: string;
  let dataSource: DataSource;
  let boss: PgBoss;
  let worker: JobWorker;
  let artifacts: ArtifactStore;
  let loop: AnchoringLoop;
  let app: INestApplication;
  let ml: string;
  const http = () => request(app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(ml, { type: 'bearer' });

  beforeAll(async () => {
    Logger.overrideLogger(false);
    chain = await startChainFixture();
    db = await createTestDatabase('mnist_flow');
    dataDir = mkdtempSync(join(tmpdir(), 'lethe-mnist-flow-'));
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    const ledger = new Ledger(dataSource);
    const env = { DATABASE_URL: db.url, DATA_DIR: dataDir, RPC_URL: chain.node.rpcUrl, CONTRACT_ADDRESS: chain.client.address, ANCHORER_PRIVATE_KEY: HARDHAT_DEV_PRIVATE_KEYS[1] };
    const config = loadConfig(env);
    loop = new AnchoringLoop(dataSource, ledger, remoteChainConnector(config.chain, env), {
      everyEntries: 1,
      everySeconds: 3600,
      confirmations: 1,
      replaceAfterSeconds: 3600,
      pollMs: 100,
    });
    const jobs = testJobConfig();
    boss = await startJobBoss(db.url, jobs);
    const queue = new PgBossJobQueue(boss);
    artifacts = openArtifactStore(config.artifacts, dataDir, db.url);
    app = await createApp({
      keyStore: await sharedTestKeyStore(),
      config,
      artifacts,
      dataSource,
      ledger,
      jobQueue: queue,
      forgetRequestQueue: new JobForgetRequestQueue(queue),
      anchoringLoop: loop,
      healthReporters: [loop],
    });
    await app.init();
    worker = await createJobWorker({ boss, dataSource, ledger, keyStore: await sharedTestKeyStore(), dataDir, artifacts, config: jobs });
    loop.start();
    await worker.start();
    ml = (await new ApiKeyService(dataSource).create('ml')).key;
  });

  afterAll(async () => {
    await app?.close();
    await worker?.stop();
    await loop?.stop();
    await boss?.stop({ graceful: false });
    await artifacts?.close();
    await dataSource?.destroy();
    await db?.drop();
    await chain?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('forgets a subject into a model equal to retraining without it, with a receipt that checks against the chain', async () => {
    // Upload: 600 digits as NDJSON, each with its subject.
    const { body: dataset } = await asMl(http().post('/v1/datasets')).send({ name: 'mnist-600', features: MNIST_FEATURES, classes: 10 }).expect(201);
    const ndjson = digits.map((d) => JSON.stringify({ ...d, subjectId: subjectOf(d.externalId) })).join('\n') + '\n';
    const { body: upload } = await asMl(http().post(`/v1/datasets/${dataset.id}/samples`)).set('Content-Type', 'application/x-ndjson').send(ndjson).expect(200);
    expect(upload).toMatchObject({ accepted: digits.length, rejected: [] });
    const commitments = new Map<string, string>(upload.commitments.map((c: { externalId: string; commitment: string }) => [c.externalId, c.commitment]));

    // Train SISA (3 shards x 2 slices, an MLP with 16 hidden units) in the worker.
    const { body: created } = await asMl(http().post('/v1/models')).send(modelBody(dataset.id)).expect(202);
    const trained = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    );
    expect(trained).toMatchObject({ state: 'completed', result: { modelId: created.modelId, version: 1 } });

    // Predict: a trained model, better than chance on the digits it learned.
    const probe = digits.filter((_, i) => i % 20 === 0);
    const { body: predicted } = await asMl(http().post(`/v1/models/${created.modelId}/predict`)).send({ inputs: probe.map((d) => d.features) }).expect(200);
    expect(predicted.modelVersion).toBe(1);
    const correct = predicted.predictions.filter((p: number, i: number) => p === probe[i].label).length;
    expect(correct / probe.length).toBeGreaterThan(0.3);

    // Forget bob's three digits.
    const { body: filed } = await asMl(http().post('/v1/forget-requests')).send({ datasetId: dataset.id, subjectId: 'bob', reason: 'GDPR art. 17 request' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${filed.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done.state).toBe('completed');
    expect(done.modelVersions).toEqual([expect.objectContaining({ modelId: created.modelId, version: 2 })]);
    const [v2] = done.modelVersions as { onnxSha256: string; unlearnLedgerIndex: number }[];

    // The new version is what training from scratch on the dataset without bob gives.
    const config: TrainingConfigInput = {
      method: 'sisa',
      model: 'mlp',
      hiddenLayers: [16],
      numFeatures: MNIST_FEATURES,
      numClasses: 10,
      shards: 3,
      slices: 2,
      epochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      seed: 'e2e-mnist',
    };
    const retained: Sample[] = digits.filter((d) => !bob.has(d.externalId)).map((d) => ({ ...d, commitment: commitments.get(d.externalId)! }));
    expect(v2.onnxSha256).toBe(await fromScratchSha256(config, retained));

    // The anchoring loop anchors a tree that holds UNLEARN_COMPLETED.
    const anchor = await waitFor(
      async () => (await http().get('/v1/anchors/latest')).body as { treeSize?: number },
      (a) => (a.treeSize ?? 0) > v2.unlearnLedgerIndex,
    );

    // The receipt of a forgotten commitment checks against the anchored root, which is the contract's.
    const commitment = commitments.get('mnist-4-0033')!;
    const { body: receipt } = await http().get(`/v1/receipts/${commitment}`).expect(200);
    expect(receipt).toMatchObject({ commitment, datasetId: dataset.id, forgotten: true });
    expect(receipt.forgetRequests).toEqual([expect.objectContaining({ requestId: filed.id, state: 'completed' })]);
    const entries: EntryReceipt[] = [receipt.committed, receipt.forgetRequests[0]];
    for (const entry of entries) {
      const leafHash = hashLeaf(new TextEncoder().encode(entry.event));
      expect(toHex(leafHash)).toBe(entry.leafHash);
      const { treeSize, rootHash, proof } = entry.inclusionProof;
      expect(entry.anchor).toMatchObject({ treeSize, rootHash, contract: chain.client.address.toLowerCase() });
      expect(treeSize).toBeGreaterThanOrEqual(anchor.treeSize!);
      expect(() => verifyInclusion(entry.ledgerIndex, treeSize, leafHash, proof.map((h) => fromHex(h)), fromHex(rootHash))).not.toThrow();
      expect(await chain.client.findCheckpointByTreeSize(treeSize)).toMatchObject({ treeSize, rootHash });
    }
    expect(JSON.parse(receipt.forgetRequests[0].event)).toMatchObject({ type: 'FORGET_REQUESTED', requestId: filed.id });
    // The commitment itself is in the committed batch's commitmentsRoot.
    const { position, count, commitmentsRoot, commitmentProof } = receipt.committed;
    expect(() => verifyInclusion(position, count, hashLeaf(fromHex(commitment)), commitmentProof.map((h: string) => fromHex(h)), fromHex(commitmentsRoot))).not.toThrow();
    // A proof for some other root would not check: the verification above can fail.
    expect(() => verifyInclusion(position, count, hashLeaf(fromHex(commitment)), commitmentProof.map((h: string) => fromHex(h)), hashLeaf(new Uint8Array(1)))).toThrow();
  });
});
