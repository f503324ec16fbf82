// How the service stored samples before they were sealed (the code of SampleVault before #11), to write a
// database as that version did: plaintext rows in `samples`, shredding by setting them to NULL.
import { DataSource, MigrationInterface } from 'typeorm';
import { CommittableSample, Ledger, commitSample, computeCommitmentsRoot, createSalt } from '@lethe/ledger';
import { CreateLedger1764216000000 } from '../../libs/ledger/src/migrations/1764216000000-create-ledger';
import { CreateSamples1764216050000 } from '../../libs/ledger/src/migrations/1764216050000-create-samples';
import { AddSamplePosition1764216200000 } from '../../libs/ledger/src/migrations/1764216200000-add-sample-position';
import { IndexEntryKeys1764216610000 } from '../../libs/ledger/src/migrations/1764216610000-index-entry-keys';
import { API_MIGRATIONS } from '../../apps/api/src/database/schema';

/** The migrations of the version before samples were sealed (every one whose timestamp is older than the first of #11). */
export const PLAINTEXT_MIGRATIONS: (new () => MigrationInterface)[] = [
  CreateLedger1764216000000,
  CreateSamples1764216050000,
  AddSamplePosition1764216200000,
  IndexEntryKeys1764216610000,
  ...API_MIGRATIONS.filter((m) => Number(/(\d{13})$/.exec(m.name)![1]) < 1764216620000),
];

/** A database as the plaintext version left it, migrated by its own migrations. */
export async function openPlaintextDatabase(url: string): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    migrations: PLAINTEXT_MIGRATIONS,
    migrationsTableName: 'lethe_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
  });
  await dataSource.initialize();
  const ran = await dataSource.runMigrations();
  // CreateModels1764216410000 of that version pointed the samples a version learned at `samples`.
  if (ran.some((m) => m.name === 'CreateModels1764216410000'))
    await dataSource.query(
      `ALTER TABLE model_version_samples ADD CONSTRAINT model_version_samples_sample_id_fkey FOREIGN KEY (sample_id) REFERENCES samples (id)`,
    );
  return dataSource;
}

/** SampleVault.commit of the plaintext version: rows stored, SAMPLES_COMMITTED appended, rows pointed at it. */
export async function commitPlaintext(
  dataSource: DataSource,
  ledger: Ledger | null,
  datasetId: string,
  samples: CommittableSample[],
): Promise<{ commitments: string[]; salts: Buffer[]; ledgerIndex: number | null }> {
  const rows = samples.map((sample) => {
    const salt = createSalt();
    return { sample, salt, commitment: commitSample(salt, sample) };
  });
  const ids: { id: string }[] = await dataSource.query(
    `INSERT INTO samples (dataset_id, external_id, subject_id, features, label, salt, commitment, batch_position)
     SELECT $1, e, s, f::double precision[], l, salt, c, (n - 1)::integer
       FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::bytea[], $7::text[]) WITH ORDINALITY AS u(e, s, f, l, salt, c, n)
     RETURNING id`,
    [
      datasetId,
      rows.map((r) => r.sample.externalId),
      rows.map((r) => r.sample.subjectId ?? null),
      rows.map((r) => `{${r.sample.features.join(',')}}`),
      rows.map((r) => r.sample.label),
      rows.map((r) => r.salt),
      rows.map((r) => r.commitment),
    ],
  );
  let ledgerIndex: number | null = null;
  if (ledger !== null) {
    // null: an upload that stopped before its append (an orphan)
    const entry = await ledger.appendOne({
      type: 'SAMPLES_COMMITTED',
      version: 1,
      datasetId,
      commitmentsRoot: computeCommitmentsRoot(rows.map((r) => r.commitment)),
      count: rows.length,
    });
    ledgerIndex = entry.index;
    await dataSource.query(`UPDATE samples SET ledger_index = $1 WHERE id = ANY($2::bigint[])`, [String(entry.index), ids.map((r) => r.id)]);
  }
  return { commitments: rows.map((r) => r.commitment), salts: rows.map((r) => r.salt), ledgerIndex };
}

/** SampleVault.shred of the plaintext version: data, salt and identifiers set to NULL in place. */
export async function shredPlaintext(dataSource: DataSource, commitments: string[]): Promise<void> {
  await dataSource.query(
    `UPDATE samples SET features = NULL, label = NULL, salt = NULL, external_id = NULL, subject_id = NULL, shredded_at = now()
      WHERE commitment = ANY($1::text[])`,
    [commitments],
  );
}
