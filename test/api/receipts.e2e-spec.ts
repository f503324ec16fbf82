import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { hashEvent } from '@lethe/events';
import { Ledger, SampleVault, openDatabase } from '@lethe/ledger';
import { fromHex, hashLeaf, toHex, verifyInclusion } from '@lethe/merkle';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents, hexOf } from '../support/factories';
import { sharedTestKeyStore } from '../support/key-store';

interface EntryReceipt {
  ledgerIndex: number;
  leafHash: string;
  event: string;
  inclusionProof: { treeSize: number; rootHash: string; proof: string[] };
  anchor: { treeSize: number; rootHash: string; txHash: string } | null;
  firstAnchor: { treeSize: number; rootHash: string; txHash: string } | null;
}

/** What an auditor checks: the event re-hashes to the leaf, and the proof leads to the root it names. */
function verifyEntryReceipt(receipt: EntryReceipt): void {
  expect(toHex(hashEvent(JSON.parse(receipt.event)))).toBe(receipt.leafHash);
  verifyInclusion(
    receipt.ledgerIndex,
    receipt.inclusionProof.treeSize,
    fromHex(receipt.leafHash),
    receipt.inclusionProof.proof.map((h) => fromHex(h)),
    fromHex(receipt.inclusionProof.rootHash),
  );
  if (receipt.anchor) {
    expect(receipt.anchor.treeSize).toBe(receipt.inclusionProof.treeSize);
    expect(receipt.anchor.rootHash).toBe(receipt.inclusionProof.rootHash);
  }
}

describe('receipts of sample commitments', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;
  let app: INestApplication;
  let ml: string;
  let datasetId: string;
  let upload: { commitments: { externalId: string; commitment: string }[]; ledgerIndices: number[] };

  beforeAll(async () => {
    db = await createTestDatabase('receipts_api');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    ledger = new Ledger(dataSource);
    app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off' }), dataSource, ledger });
    await app.init();
    ml = (await new ApiKeyService(dataSource).create('ml')).key;
    datasetId = (await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).send({ name: 'd', features: 3, classes: 2 }).expect(201)).body.id;
    // 5,003 samples: two chunks, 5,000 and 3.
    const lines = Array.from({ length: 5003 }, (_, i) => JSON.stringify({ externalId: `sample-${i}`, features: [i, i / 7, -i], label: i % 2 }));
    upload = (
      await http()
        .post(`/v1/datasets/${datasetId}/samples`)
        .auth(ml, { type: 'bearer' })
        .set('Content-Type', 'application/x-ndjson')
        .send(lines.join('\n'))
        .expect(200)
    ).body;
    expect(upload.ledgerIndices).toHaveLength(2);
  });

  afterAll(async () => {
    await app.close();
    await dataSource.destroy();
    await db.drop();
  });

  function http() {
    return request(app.getHttpServer());
  }

  /** A confirmed anchor of the log at `treeSize`, as the anchoring loop records it. */
  async function recordAnchor(treeSize: number): Promise<void> {
    await dataSource.query(
      `INSERT INTO anchors (chain_id, genesis_hash, contract, tree_size, old_size, root_hash, state, tx_hash, block_number, ledger_index)
       VALUES ('31337', $1, '0x5fbdb2315678afecb367f032d93f642f64180aa3', $2, 0, $3, 'confirmed', $4, $2, 0)`,
      [`0x${hexOf('genesis')}`, treeSize, await ledger.getRoot(treeSize), `0x${hexOf(`tx-${treeSize}`)}`],
    );
  }

  it('gives, without a key, the SAMPLES_COMMITTED entry and a proof of the commitment in its commitmentsRoot', async () => {
    for (const i of [0, 1234, 4999, 5000, 5002]) {
      const { commitment } = upload.commitments[i];
      const res = await http().get(`/v1/receipts/${commitment}`).expect(200);
      expect(res.body).toMatchObject({ commitment, datasetId, forgotten: false, forgetRequests: [] });
      const { committed } = res.body;
      expect(committed.ledgerIndex).toBe(upload.ledgerIndices[i < 5000 ? 0 : 1]);
      expect(committed.position).toBe(i < 5000 ? i : i - 5000);
      expect(committed.count).toBe(i < 5000 ? 5000 : 3);
      const event = JSON.parse(committed.event);
      expect(event).toEqual({ type: 'SAMPLES_COMMITTED', version: 1, datasetId, commitmentsRoot: committed.commitmentsRoot, count: committed.count });
      verifyInclusion(
        committed.position,
        committed.count,
        hashLeaf(fromHex(commitment)),
        committed.commitmentProof.map((h: string) => fromHex(h)),
        fromHex(committed.commitmentsRoot),
      );
      verifyEntryReceipt(committed);
      expect(committed.inclusionProof.treeSize).toBe((await ledger.getCheckpoint()).treeSize);
      expect(committed.anchor).toBeNull();
      // The proof does not verify for another commitment or position.
      expect(() =>
        verifyInclusion(
          committed.position,
          committed.count,
          hashLeaf(fromHex(upload.commitments[(i + 1) % 5003].commitment)),
          committed.commitmentProof.map((h: string) => fromHex(h)),
          fromHex(committed.commitmentsRoot),
        ),
      ).toThrow();
    }
  });

  it('lists the FORGET_REQUESTED entries naming the commitment, and keeps working once the sample is shredded', async () => {
    const { commitment } = upload.commitments[7];
    const forgotten = await http().post('/v1/forget-requests').auth(ml, { type: 'bearer' }).send({ datasetId, externalIds: ['sample-7'], reason: 'erasure' }).expect(202);
    const res = await http().get(`/v1/receipts/${commitment}`).expect(200);
    expect(res.body.forgetRequests).toHaveLength(1);
    expect(res.body.forgetRequests[0]).toMatchObject({ requestId: forgotten.body.id, state: 'received', ledgerIndex: forgotten.body.ledgerIndex });
    expect(JSON.parse(res.body.forgetRequests[0].event)).toMatchObject({ type: 'FORGET_REQUESTED', requestId: forgotten.body.id, commitments: [commitment] });
    verifyEntryReceipt(res.body.forgetRequests[0]);

    await new SampleVault(dataSource, ledger, await sharedTestKeyStore()).shred(datasetId, [commitment]);
    const after = await http().get(`/v1/receipts/${commitment}`).expect(200);
    expect(after.body.forgotten).toBe(true);
    expect(after.body.committed.commitmentProof).toEqual(res.body.committed.commitmentProof);
    // The externalId as a whole token: "sample-7" cannot form by chance in UUIDs, hex or timestamps (the old
    // needle "e-7" did, in about 1 of 128 UUIDs), and "sample-70".."sample-79" are other samples.
    const externalId = /sample-7(?![0-9])/;
    expect(JSON.stringify(upload.commitments[7])).toMatch(externalId); // positive control: the needle finds the id
    expect(JSON.stringify(after.body)).not.toMatch(externalId);
  });

  it('proves entries at the latest anchored size, with the anchor that covered them first', async () => {
    const { commitment } = upload.commitments[3];
    const firstSize = (await ledger.getCheckpoint()).treeSize;
    await recordAnchor(firstSize);
    await ledger.append(buildEvents(0, 5));
    const secondSize = (await ledger.getCheckpoint()).treeSize;
    await recordAnchor(secondSize);
    await ledger.append(buildEvents(5, 2)); // not anchored yet
    const forgotten = await http().post('/v1/forget-requests').auth(ml, { type: 'bearer' }).send({ datasetId, externalIds: ['sample-3'], reason: 'late' }).expect(202);

    const res = await http().get(`/v1/receipts/${commitment}`).expect(200);
    const { committed, forgetRequests } = res.body;
    verifyEntryReceipt(committed);
    expect(committed.inclusionProof.treeSize).toBe(secondSize);
    expect(committed.anchor).toMatchObject({ treeSize: secondSize, rootHash: await ledger.getRoot(secondSize) });
    expect(committed.firstAnchor).toMatchObject({ treeSize: firstSize, rootHash: await ledger.getRoot(firstSize), txHash: `0x${hexOf(`tx-${firstSize}`)}` });
    // The forget request came after the last anchor: proven at the latest size, no anchor yet.
    expect(forgetRequests[0].requestId).toBe(forgotten.body.id);
    verifyEntryReceipt(forgetRequests[0]);
    expect(forgetRequests[0]).toMatchObject({ anchor: null, firstAnchor: null, inclusionProof: { treeSize: (await ledger.getCheckpoint()).treeSize } });
    const viaRequest = await http().get(`/v1/forget-requests/${forgotten.body.id}`).auth(ml, { type: 'bearer' }).expect(200);
    expect(viaRequest.body.receipt.anchor).toBeNull();
  });

  it('is a 404 for an unknown commitment and a 400 for a malformed one', async () => {
    const unknown = await http().get(`/v1/receipts/${hexOf('nobody')}`).expect(404);
    expect(unknown.body).toEqual({ statusCode: 404, error: 'Not Found', message: expect.stringContaining(hexOf('nobody')) });
    for (const bad of ['abc', hexOf('x').toUpperCase(), `${hexOf('x')}00`, 'g'.repeat(64)]) {
      const res = await http().get(`/v1/receipts/${bad}`).expect(400);
      expect(res.body.message).toContain('commitment');
    }
  });
});
