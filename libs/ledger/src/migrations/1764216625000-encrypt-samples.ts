import { MigrationInterface, QueryRunner } from 'typeorm';
import { KeyStore } from '@lethe/keystore';
import { LedgerError } from '@lethe/events';
import { insertPayloads } from '../payload-rows';
import { externalHashOf, sealSample, subjectHashOf } from '../sample-crypto';

/** Live samples encrypted per transaction statement. */
const BATCH = 2000;

/** How the migration gets the key store: only asked for when there are samples to encrypt. */
export type KeyStoreProvider = () => Promise<KeyStore>;

/**
 * Moves samples out of plaintext. Before: `samples` held each sample's features, label, salt, externalId
 * and subjectId in clear (shredding set them to NULL, leaving the old row versions, index entries and WAL).
 * After: `sample_commitments` (public: commitment, batch and position, never deleted), `sample_payloads`
 * (everything private, sealed with AES-256-GCM under the data key of the sample's subject, found by keyed
 * hashes) and `subject_keys` (which key is whose, by keyed hash; the keys live in the key store).
 *
 * Every live row is encrypted and moved in one transaction (ids, commitments, batches, positions and
 * forgotten samples kept), `samples` is dropped (its table, TOAST and index files go), then, outside the
 * transaction, `pg_statistic` (which may hold column statistics of the dropped identifiers) is rewritten
 * with VACUUM FULL and a CHECKPOINT lets PostgreSQL remove the dropped files' first segments. What it
 * cannot reach: WAL segments written before (until PostgreSQL recycles and overwrites them), backups, and
 * free blocks of the file system (see README, "What forgetting erases").
 */
export function encryptSamplesMigration(keyStore?: KeyStoreProvider): new () => MigrationInterface {
  return class EncryptSamples1764216625000 implements MigrationInterface {
    name = 'EncryptSamples1764216625000';
    /** VACUUM FULL and CHECKPOINT cannot run in a transaction: the data moves in one of its own. */
    transaction = false;

    async up(q: QueryRunner): Promise<void> {
      const [{ old }]: { old: boolean }[] = await q.query(`SELECT to_regclass('samples') IS NOT NULL AS old`);
      const [{ rows }]: { rows: boolean }[] = old ? await q.query(`SELECT EXISTS (SELECT 1 FROM samples) AS rows`) : [{ rows: true }];
      if (old) {
        await q.startTransaction();
        try {
          await createTables(q);
          await moveSamples(q, keyStore);
          await q.query(`DROP TABLE samples CASCADE`); // CASCADE: foreign keys onto it (the service re-points them)
          await q.commitTransaction();
        } catch (error) {
          await q.rollbackTransaction();
          throw error;
        }
      } else {
        // Run again after a crash between its commit and its record in lethe_migrations.
        const [{ made }]: { made: boolean }[] = await q.query(`SELECT to_regclass('sample_commitments') IS NOT NULL AS made`);
        if (!made) await createTables(q);
      }
      if (rows) await scrubDroppedData(q); // an empty table (a new database) held nothing
    }

    async down(): Promise<void> {
      throw new Error('samples are not decrypted back into plaintext: restore a backup from before the migration instead');
    }
  };
}

async function createTables(q: QueryRunner): Promise<void> {
  await q.query(`
    CREATE TABLE subject_keys (
      key_id text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{64}$'),
      dataset_id text NOT NULL,
      -- lookupHash(['subjectId', datasetId], subjectId), or ['sampleSubject', datasetId] of a sample without one
      subject_hash text NOT NULL CHECK (subject_hash ~ '^[0-9a-f]{64}$'),
      -- destroying: the key is being destroyed; every payload still sealed under it is being erased
      state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'destroying')),
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await q.query(`CREATE UNIQUE INDEX subject_keys_active ON subject_keys (dataset_id, subject_hash) WHERE state = 'active'`);
  await q.query(`CREATE INDEX subject_keys_subject ON subject_keys (dataset_id, subject_hash)`);
  await q.query(`CREATE INDEX subject_keys_destroying ON subject_keys (key_id) WHERE state = 'destroying'`);
  await q.query(`
    CREATE TABLE sample_commitments (
      id bigserial PRIMARY KEY,
      dataset_id text NOT NULL,
      commitment text NOT NULL UNIQUE CHECK (commitment ~ '^[0-9a-f]{64}$'),
      -- the SAMPLES_COMMITTED entry; NULL for an orphan (its upload stopped before pointing at it)
      ledger_index bigint,
      -- its leaf in the batch's commitmentsRoot (NULL only for samples stored before positions were kept)
      batch_position integer CHECK (batch_position >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      forgotten_at timestamptz,
      CHECK (forgotten_at IS NULL OR ledger_index IS NOT NULL)
    )`);
  await q.query(`CREATE UNIQUE INDEX sample_commitments_batch_position ON sample_commitments (ledger_index, batch_position) WHERE ledger_index IS NOT NULL`);
  await q.query(`CREATE INDEX sample_commitments_dataset ON sample_commitments (dataset_id, id)`);
  await q.query(`CREATE INDEX sample_commitments_orphans ON sample_commitments (created_at) WHERE ledger_index IS NULL`);
  await q.query(`
    CREATE TABLE sample_payloads (
      sample_id bigint PRIMARY KEY REFERENCES sample_commitments (id),
      dataset_id text NOT NULL,
      -- lookupHash(['externalId', datasetId], externalId)
      external_hash text NOT NULL CHECK (external_hash ~ '^[0-9a-f]{64}$'),
      subject_key_id text NOT NULL REFERENCES subject_keys (key_id),
      -- sealPayload(data key, encodeSamplePayload(sample and salt), payloadAssociatedData(datasetId, commitment))
      payload bytea NOT NULL
    )`);
  // Ciphertext does not compress: stored out of line without trying.
  await q.query(`ALTER TABLE sample_payloads ALTER COLUMN payload SET STORAGE EXTERNAL`);
  await q.query(`CREATE UNIQUE INDEX sample_payloads_external ON sample_payloads (dataset_id, external_hash)`);
  await q.query(`CREATE INDEX sample_payloads_dataset ON sample_payloads (dataset_id, sample_id)`);
  await q.query(`CREATE INDEX sample_payloads_key ON sample_payloads (subject_key_id)`);
}

interface OldSample {
  id: string;
  dataset_id: string;
  external_id: string;
  subject_id: string | null;
  features: number[];
  label: number;
  salt: Buffer;
  commitment: string;
}

/** Copies every row's public part, and seals every live row's private part under its subject's key. */
async function moveSamples(q: QueryRunner, provideKeyStore: KeyStoreProvider | undefined): Promise<void> {
  await q.query(
    `INSERT INTO sample_commitments (id, dataset_id, commitment, ledger_index, batch_position, created_at, forgotten_at)
     SELECT id, dataset_id, commitment, ledger_index, batch_position, created_at, shredded_at
       FROM samples WHERE ledger_index IS NOT NULL OR shredded_at IS NULL`, // a shredded orphan leaves nothing to keep
  );
  await q.query(`SELECT setval(pg_get_serial_sequence('sample_commitments', 'id'), greatest((SELECT max(id) FROM samples), 1))`);
  const [{ live }]: { live: number }[] = await q.query(`SELECT count(*)::int AS live FROM samples WHERE shredded_at IS NULL`);
  if (live === 0) return;
  if (provideKeyStore === undefined)
    throw new LedgerError('INVALID_ARGUMENT', `encrypting ${live} stored samples needs the key store (DATA_DIR/keys and LETHE_MASTER_KEY)`, 'keyStore');
  const keyStore = await provideKeyStore();
  const lookupKey = await keyStore.getLookupKey();
  for (let after = '0'; ; ) {
    const rows: OldSample[] = await q.query(
      `SELECT id, dataset_id, external_id, subject_id, features, label, salt, commitment FROM samples
        WHERE shredded_at IS NULL AND id > $1 ORDER BY id LIMIT ${BATCH}`,
      [after],
    );
    if (rows.length === 0) break;
    after = rows[rows.length - 1].id;
    const subjectOf = rows.map((r) => subjectHashOf(lookupKey, r.dataset_id, { externalId: r.external_id, subjectId: r.subject_id ?? undefined }));
    const wanted = [...new Set(rows.map((r, i) => `${r.dataset_id}\u0000${subjectOf[i]}`))];
    const known: { dataset_id: string; subject_hash: string; key_id: string }[] = await q.query(
      `SELECT k.dataset_id, k.subject_hash, k.key_id FROM subject_keys k JOIN unnest($1::text[], $2::text[]) AS u(d, s) ON k.dataset_id = u.d AND k.subject_hash = u.s`,
      [wanted.map((w) => w.split('\u0000')[0]), wanted.map((w) => w.split('\u0000')[1])],
    );
    const keyIdOf = new Map(known.map((k) => [`${k.dataset_id}\u0000${k.subject_hash}`, k.key_id]));
    const dataKeys = await keyStore.getKeys([...keyIdOf.values()]);
    const missing = wanted.filter((w) => !keyIdOf.has(w));
    const created = await keyStore.createKeys(missing.length);
    missing.forEach((w, i) => {
      keyIdOf.set(w, created[i].keyId);
      dataKeys.set(created[i].keyId, created[i].dataKey);
    });
    await q.query(`INSERT INTO subject_keys (key_id, dataset_id, subject_hash) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`, [
      created.map((k) => k.keyId),
      missing.map((w) => w.split('\u0000')[0]),
      missing.map((w) => w.split('\u0000')[1]),
    ]);
    const keyIds = rows.map((r, i) => keyIdOf.get(`${r.dataset_id}\u0000${subjectOf[i]}`)!);
    const payloads = rows.map((r, i) =>
      sealSample(dataKeys.get(keyIds[i])!, r.dataset_id, r.commitment, {
        externalId: r.external_id,
        ...(r.subject_id === null ? {} : { subjectId: r.subject_id }),
        features: r.features.map(Number),
        label: r.label,
        salt: r.salt,
      }),
    );
    await insertPayloads(
      q,
      rows.map((r, i) => ({
        sampleId: r.id,
        datasetId: r.dataset_id,
        externalHash: externalHashOf(lookupKey, r.dataset_id, r.external_id),
        keyId: keyIds[i],
        payload: payloads[i],
      })),
    );
  }
}

/**
 * Outside any transaction: rewrites pg_statistic, whose dead rows may still hold column statistics of the
 * dropped plaintext (most common values, histogram bounds), and checkpoints so that the dropped relations'
 * files are removed. Both need privileges a managed database may not grant; without them the migration
 * still succeeds (and README says what an operator runs instead).
 */
export async function scrubDroppedData(q: QueryRunner, tables: string[] = []): Promise<void> {
  for (const table of [...tables, 'pg_catalog.pg_statistic']) {
    await q.query(`VACUUM FULL ${table}`).catch(() => undefined);
  }
  await q.query('CHECKPOINT').catch(() => undefined);
}
