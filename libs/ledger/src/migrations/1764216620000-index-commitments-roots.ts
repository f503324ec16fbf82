import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SAMPLES_COMMITTED entries are looked up by their commitmentsRoot (ENTRY_KEYS): the orphan sweep adopts the
 * rows of an upload that stopped between appending its entry and pointing its rows at it.
 */
export class IndexCommitmentsRoots1764216620000 implements MigrationInterface {
  name = 'IndexCommitmentsRoots1764216620000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX ledger_entries_commitments_root_idx ON ledger_entries ((event::jsonb ->> 'commitmentsRoot'), idx)
       WHERE type IN ('SAMPLES_COMMITTED')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_commitments_root_idx`);
  }
}
