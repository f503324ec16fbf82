import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes the key fields of the entries that are looked up by them (ENTRY_KEYS in entry-query.ts), so that
 * `Ledger.findEntries` is an index scan, not a scan of the log. Each index is partial (only its types'
 * entries are parsed, once, when written) and ends with the entry's index, which gives the results in log
 * order. The table stays append-only: an index is not a change to an entry.
 */
export class IndexEntryKeys1764216610000 implements MigrationInterface {
  name = 'IndexEntryKeys1764216610000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX ledger_entries_request_id_idx ON ledger_entries ((event::jsonb ->> 'requestId'), idx)
       WHERE type IN ('FORGET_REQUESTED')`,
    );
    await q.query(
      `CREATE INDEX ledger_entries_model_version_idx ON ledger_entries ((event::jsonb ->> 'modelId'), (event::jsonb ->> 'modelVersion'), idx)
       WHERE type IN ('MODEL_PUBLISHED', 'UNLEARN_COMPLETED')`,
    );
    await q.query(`CREATE INDEX ledger_entries_tx_hash_idx ON ledger_entries ((event::jsonb ->> 'txHash'), idx) WHERE type IN ('ANCHORED')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_tx_hash_idx, ledger_entries_model_version_idx, ledger_entries_request_id_idx`);
  }
}
