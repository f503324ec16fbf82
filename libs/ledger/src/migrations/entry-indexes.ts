import { MigrationInterface, QueryRunner } from 'typeorm';

/** A partial expression index on ledger entries: the key fields of `types`' events, in this order, then the entry's index. */
export interface EntryIndex {
  index: string;
  fields: readonly string[];
  types: readonly string[];
}

/** The CREATE INDEX of an entry index. Names come from migrations' own constants, never from input. */
export function entryIndexSql({ index, fields, types }: EntryIndex): string {
  const keys = fields.map((field) => `(event::jsonb ->> '${field}')`).join(', ');
  return `CREATE INDEX ${index} ON ledger_entries (${keys}, idx) WHERE type IN (${types.map((t) => `'${t}'`).join(', ')})`;
}

/**
 * A migration that adds entry indexes (ENTRY_KEYS in entry-query.ts), and drops them again on the way down. Each
 * index is partial (only its types' entries are parsed, once, when written) and ends with the entry's index, which
 * gives the results in log order. The table stays append-only: an index is not a change to an entry.
 */
export abstract class EntryIndexMigration implements MigrationInterface {
  abstract name: string;
  protected abstract readonly indexes: readonly EntryIndex[];

  async up(q: QueryRunner): Promise<void> {
    for (const index of this.indexes) await q.query(entryIndexSql(index));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ${[...this.indexes].reverse().map((i) => i.index).join(', ')}`);
  }
}
