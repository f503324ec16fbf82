import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault, canonicalizeSample, computeCommitmentsRoot, fsckLedger, openDatabase } from '@lethe/ledger';
import { TestDatabase, createTestDatabase } from '../support/database';

const SAMPLES = [
  { externalId: 'alice-1', subjectId: 'alice', features: [5.1, 3.5, 1.4, 0.2], label: 0 },
  { externalId: 'alice-2', subjectId: 'alice', features: [4.9, 3, 1.4, 0.2], label: 0 },
  { externalId: 'bob-1', subjectId: 'bob', features: [6.3, 3.3, 6, 2.5], label: 2 },
];

describe('SampleVault: commitments in the log, data and salts outside it', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;
  let vault: SampleVault;

  beforeEach(async () => {
    db = await createTestDatabase('samples');
    dataSource = await openDatabase({ url: db.url });
    ledger = new Ledger(dataSource);
    vault = new SampleVault(dataSource, ledger);
  });

  afterEach(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  it('commits SHA-256(salt || canonical sample) with a fresh salt each, and logs only their root', async () => {
    const result = await vault.commit('iris', SAMPLES);
    expect(result.samples.map((s) => s.externalId)).toEqual(['alice-1', 'alice-2', 'bob-1']);
    const rows: { salt: Buffer; commitment: string; external_id: string }[] = await dataSource.query(
      `SELECT salt, commitment, external_id FROM samples ORDER BY id`,
    );
    rows.forEach((row, i) => {
      expect(row.salt).toHaveLength(32);
      const expected = createHash('sha256').update(row.salt).update(canonicalizeSample(SAMPLES[i])).digest('hex');
      expect(row.commitment).toBe(expected);
    });
    expect(new Set(rows.map((r) => r.salt.toString('hex'))).size).toBe(3);
    const event = JSON.parse((await ledger.getEntries(result.ledgerIndex, 1))[0].event);
    expect(event).toEqual({
      type: 'SAMPLES_COMMITTED',
      version: 1,
      datasetId: 'iris',
      commitmentsRoot: computeCommitmentsRoot(rows.map((r) => r.commitment)),
      count: 3,
    });
    // No sample data, salt or identifier is in the log.
    const log: { event: string }[] = await dataSource.query(`SELECT event FROM ledger_entries`);
    const text = log.map((l) => l.event).join('\n');
    for (const forbidden of ['alice', 'bob', '5.1', ...rows.map((r) => r.salt.toString('hex'))]) expect(text).not.toContain(forbidden);
  });

  it('gives the same data different commitments (the salt hides it)', async () => {
    const a = await vault.commit('d1', [SAMPLES[0]]);
    const b = await vault.commit('d2', [SAMPLES[0]]);
    expect(a.samples[0].commitment).not.toBe(b.samples[0].commitment);
  });

  it('refuses a duplicate externalId in a dataset and stores nothing of that batch', async () => {
    await vault.commit('iris', [SAMPLES[0]]);
    const before = await ledger.getCheckpoint();
    await expect(vault.commit('iris', [SAMPLES[1], SAMPLES[0]])).rejects.toMatchObject({ field: 'externalId' });
    expect(await ledger.getCheckpoint()).toEqual(before);
    expect((await dataSource.query(`SELECT count(*)::int AS n FROM samples`))[0].n).toBe(1);
  });

  it('shreds data, salt and identifiers, keeps the commitment, and is idempotent', async () => {
    const { samples } = await vault.commit('iris', SAMPLES);
    const alice = await vault.findCommitments('iris', { subjectId: 'alice' });
    expect(alice.map((s) => s.externalId)).toEqual(['alice-1', 'alice-2']);
    const first = await vault.shred(alice.map((s) => s.commitment));
    expect(first).toEqual({ shredded: alice.map((s) => s.commitment), alreadyShredded: [] });
    const rows = await dataSource.query(`SELECT * FROM samples WHERE commitment = ANY($1::text[])`, [alice.map((s) => s.commitment)]);
    for (const row of rows) {
      expect(row).toMatchObject({ features: null, label: null, salt: null, external_id: null, subject_id: null, shredded_at: expect.any(Date) });
    }
    expect(await vault.findCommitments('iris', { subjectId: 'alice' })).toEqual([]);
    const again = await vault.shred([alice[0].commitment]);
    expect(again).toEqual({ shredded: [], alreadyShredded: [alice[0].commitment] });
    // Bob is untouched; the log is intact.
    expect(await vault.findCommitments('iris', { externalIds: ['bob-1'] })).toEqual([samples[2]]);
    expect((await fsckLedger(dataSource)).ok).toBe(true);
  });

  it('refuses to shred an unknown commitment and changes nothing', async () => {
    const { samples } = await vault.commit('iris', SAMPLES);
    await expect(vault.shred([samples[0].commitment, 'ee'.repeat(32)])).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    expect((await dataSource.query(`SELECT count(*)::int AS n FROM samples WHERE shredded_at IS NOT NULL`))[0].n).toBe(0);
  });
});
