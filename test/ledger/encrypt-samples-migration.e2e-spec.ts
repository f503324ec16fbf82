// The migration that takes a database written by the plaintext version (samples in clear, shredding by UPDATE
// to NULL, idempotency answers in clear) to sealed samples: run on such a database, then checked row by row and
// byte by byte in the database's relation files.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '@lethe/keystore';
import { Ledger, SampleVault, commitSample, computeCommitmentsRoot, fsckLedger, openDatabase } from '@lethe/ledger';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { TestDatabase, createTestDatabase } from '../support/database';
import { TestKeyStore, openTestKeyStore } from '../support/key-store';
import { commitPlaintext, openPlaintextDatabase, shredPlaintext } from '../support/legacy-samples';
import { Hit, Needle, float64Bytes, needlesOf, relationDir, scanFiles, scanTree } from '../support/scan';

const DATASET = '7d3c0f5e-8a11-4c2b-9d6e-5f4a3b2c1d0e';
const MARKED = [
  { externalId: 'mig-marker-ext-a9f3', subjectId: 'mig-marker-subject-5e17', features: [0.6180339887, 1.5, 2.5], label: 1 },
  { externalId: 'mig-marker-ext-b4c8', subjectId: 'mig-marker-subject-5e17', features: [3.25, 0.6180339887, 4.5], label: 0 },
];
const OTHERS = [
  { externalId: 'plain-1', subjectId: 'subject-2', features: [1, 2, 3], label: 0 },
  { externalId: 'plain-2', features: [4, 5, 6], label: 1 },
];
const SHREDDED = [{ externalId: 'gone-1', subjectId: 'subject-3', features: [7, 8, 9], label: 0 }];
const ORPHAN = [{ externalId: 'orphan-1', subjectId: 'subject-4', features: [10, 11, 12], label: 1 }];
const IDEMPOTENCY_MARKER = 'mig-marker-idem-71c2';

const describeHits = (hits: Hit[]) => hits.map((h) => `${h.needle} in ${h.file} at ${h.offset}`);

describe('migrating a plaintext database to sealed samples', () => {
  let db: TestDatabase;
  let keys: TestKeyStore;

  beforeEach(async () => {
    db = await createTestDatabase('migrate_plain');
    keys = await openTestKeyStore();
  });

  afterEach(async () => {
    await db.drop();
    keys.remove();
  });

  it('scans whole files, a needle across its read chunks included (the scanner itself)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lethe-scan-'));
    try {
      const needle: Needle = { name: 'n', bytes: Buffer.from('needle-across') };
      const file = Buffer.alloc(100, 0x2e);
      needle.bytes.copy(file, 10);
      needle.bytes.copy(file, 45); // crosses the 50-byte chunk boundary
      needle.bytes.copy(file, 87);
      writeFileSync(join(dir, 'f'), file);
      const hits = await scanFiles([join(dir, 'f')], [needle], dir, 50);
      expect(hits.map((h) => h.offset)).toEqual([10, 45, 87]);
      expect((await scanTree(dir, [{ name: 'x', bytes: float64Bytes(0.1) }])).length).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('encrypts every live sample, keeps every commitment, and leaves none of the plaintext in the relation files', async () => {
    // The database as the plaintext version wrote it.
    const old = await openPlaintextDatabase(db.url);
    const dir = await relationDir(old);
    if (dir === undefined) {
      console.warn('skipped: the test PostgreSQL keeps its files on another machine (TEST_DATABASE_URL), where they cannot be scanned');
      await old.destroy();
      return;
    }
    const ledger = new Ledger(old);
    const marked = await commitPlaintext(old, ledger, DATASET, [...MARKED, ...OTHERS]);
    const shredded = await commitPlaintext(old, ledger, DATASET, SHREDDED);
    await shredPlaintext(old, shredded.commitments);
    const orphan = await commitPlaintext(old, null, DATASET, ORPHAN);
    await old.query(
      `INSERT INTO idempotency_keys (scope, key, route, request_hash, status, response)
       VALUES ('public', $1, 'POST /v1/datasets/x/samples', $2, 200, $3::jsonb)`,
      [IDEMPOTENCY_MARKER, 'ab'.repeat(32), JSON.stringify({ commitments: [{ externalId: MARKED[0].externalId, commitment: marked.commitments[0] }] })],
    );
    // A model version that learned the samples (its rows point at them by id).
    await old.query(`INSERT INTO datasets (id, name, features, classes, ledger_index) VALUES ($1, 'd', 3, 2, 0)`, [DATASET]);
    const jobId = '11111111-1111-4111-8111-111111111111';
    const modelId = '22222222-2222-4222-8222-222222222222';
    await old.query(`INSERT INTO jobs (id, type, payload) VALUES ($1, 'train', '{}')`, [jobId]);
    await old.query(`INSERT INTO models (id, dataset_id, config, engine_config, job_id) VALUES ($1, $2, '{}', '{}', $3)`, [modelId, DATASET, jobId]);
    await old.query(
      `INSERT INTO model_versions (model_id, version, onnx_sha256, manifest_hash, metrics, ledger_index, engine_state) VALUES ($1, 1, $2, $2, '{}', 99, '{}')`,
      [modelId, 'cd'.repeat(32)],
    );
    await old.query(`INSERT INTO model_version_samples (model_id, version, sample_id) SELECT $1, 1, id FROM samples WHERE commitment = ANY($2::text[])`, [
      modelId,
      marked.commitments,
    ]);
    // Statistics hold column values too (most common values, histogram bounds); the plaintext version's autovacuum would gather them.
    await old.query('ANALYZE samples');
    await old.query('CHECKPOINT');
    const oldRows: { id: string; commitment: string; ledger_index: string | null; batch_position: number }[] = await old.query(
      `SELECT id, commitment, ledger_index, batch_position FROM samples ORDER BY id`,
    );
    await old.destroy();

    const needles = [
      ...needlesOf({ texts: [MARKED[0].subjectId, MARKED[0].externalId, MARKED[1].externalId], feature: MARKED[0].features[0] }),
      { name: 'idempotency key', bytes: Buffer.from(IDEMPOTENCY_MARKER) },
    ];
    // Positive control: the scan finds the plaintext in the files before the migration, every form of it the
    // old version wrote (features were binary float64 arrays, so their decimal text was never on disk).
    const before = await scanTree(dir, needles);
    const binaryOnly = `feature ${MARKED[0].features[0]} as text`;
    expect([...new Set(before.map((h) => h.needle))].sort()).toEqual(needles.map((n) => n.name).filter((n) => n !== binaryOnly).sort());

    // The new version opens the database: the migrations run.
    const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS, keyStore: async () => keys.keyStore });
    try {
      const vault = new SampleVault(dataSource, new Ledger(dataSource), keys.keyStore);
      // Every live sample opens to what was stored, under its commitment.
      const opened = await vault.readSamples({ datasetId: DATASET });
      const live = [...MARKED, ...OTHERS, ...ORPHAN];
      expect(opened.map(({ externalId, subjectId, features, label }) => ({ externalId, subjectId, features, label }))).toEqual(
        live.map((s) => ({ subjectId: undefined, ...s })),
      );
      for (const [i, s] of opened.entries()) expect(s.commitment).toBe(commitSample(s.salt, live[i]));
      expect(opened.map((s) => s.salt)).toEqual([...marked.salts, ...orphan.salts]);
      expect(opened.map((s) => s.committed)).toEqual([true, true, true, true, false]);
      // Every commitment kept, with its batch and position; the shredded one forgotten, the orphan still an orphan.
      const rows: { id: string; commitment: string; ledger_index: string | null; batch_position: number; forgotten: boolean }[] = await dataSource.query(
        `SELECT id, commitment, ledger_index, batch_position, forgotten_at IS NOT NULL AS forgotten FROM sample_commitments ORDER BY id`,
      );
      expect(rows.map(({ forgotten: _, ...r }) => r)).toEqual(oldRows);
      expect(rows.map((r) => r.forgotten)).toEqual([false, false, false, false, true, false]);
      expect(await vault.getBatchCommitments(marked.ledgerIndex!)).toEqual(marked.commitments);
      expect(computeCommitmentsRoot(await vault.getBatchCommitments(marked.ledgerIndex!))).toBe(
        (JSON.parse((await new Ledger(dataSource).getEntries(marked.ledgerIndex!, 1))[0].event) as { commitmentsRoot: string }).commitmentsRoot,
      );
      // One key per subject: the marked subject's two samples share theirs.
      const keyOf = async (c: string) =>
        (await dataSource.query(`SELECT p.subject_key_id AS k FROM sample_payloads p JOIN sample_commitments c ON c.id = p.sample_id WHERE c.commitment = $1`, [c]))[0].k;
      expect(await keyOf(marked.commitments[0])).toBe(await keyOf(marked.commitments[1]));
      expect(await keyOf(marked.commitments[2])).not.toBe(await keyOf(marked.commitments[0]));
      expect(await vault.findSamples(DATASET, { subjectId: MARKED[0].subjectId })).toHaveLength(2);
      // The model version's samples point at the commitments, through the new foreign key.
      expect((await dataSource.query(`SELECT count(*)::int AS n FROM model_version_samples m JOIN sample_commitments c ON c.id = m.sample_id`))[0].n).toBe(4);
      await expect(dataSource.query(`INSERT INTO model_version_samples (model_id, version, sample_id) VALUES ($1, 1, 999999)`, [modelId])).rejects.toThrow(
        /foreign key/,
      );
      // The plaintext table and the idempotency rows are gone; the log is intact.
      expect((await dataSource.query(`SELECT to_regclass('samples') AS t`))[0].t).toBeNull();
      expect((await dataSource.query(`SELECT count(*)::int AS n FROM idempotency_keys`))[0].n).toBe(0);
      expect((await fsckLedger(dataSource)).ok).toBe(true);

      // Not one byte of the old plaintext is left in the database's relation files (tables, TOAST, indexes,
      // statistics): only WAL written before the migration still holds it, until PostgreSQL recycles it.
      await dataSource.query('CHECKPOINT');
      const after = await scanTree(dir, needles);
      expect(describeHits(after)).toEqual([]);

      // Forgetting works on migrated samples: the subject's key is destroyed, and the orphan can be erased.
      expect(await vault.shred(DATASET, marked.commitments.slice(0, 2))).toMatchObject({ keysDestroyed: 1, keysReplaced: 0 });
      expect(await vault.recoverOrphans(0)).toEqual({ adopted: 0, erased: 1 });
      expect((await vault.readSamples({ datasetId: DATASET })).map((s) => s.externalId)).toEqual(['plain-1', 'plain-2']);
    } finally {
      await dataSource.destroy();
    }
  });

  it('refuses to encrypt without the key store, naming it, and changes nothing', async () => {
    const old = await openPlaintextDatabase(db.url);
    await commitPlaintext(old, new Ledger(old), DATASET, OTHERS);
    await old.destroy();
    await expect(openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS })).rejects.toThrow(
      'encrypting 2 stored samples needs the key store (DATA_DIR/keys and LETHE_MASTER_KEY)',
    );
    const again = await openPlaintextDatabase(db.url);
    try {
      expect((await again.query(`SELECT count(*)::int AS n FROM samples WHERE external_id IS NOT NULL`))[0].n).toBe(2);
      expect((await again.query(`SELECT to_regclass('sample_payloads') AS t`))[0].t).toBeNull();
    } finally {
      await again.destroy();
    }
    // With the key store, the same database migrates.
    const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS, keyStore: async (): Promise<KeyStore> => keys.keyStore });
    try {
      expect((await new SampleVault(dataSource, new Ledger(dataSource), keys.keyStore).readSamples({ datasetId: DATASET })).map((s) => s.externalId)).toEqual([
        'plain-1',
        'plain-2',
      ]);
    } finally {
      await dataSource.destroy();
    }
  });
});
