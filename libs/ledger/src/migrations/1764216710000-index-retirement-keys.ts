import { EntryIndexMigration } from './entry-indexes';

/**
 * Indexes the key fields of the retirement entries (ENTRY_KEYS in entry-query.ts): VERSION_RETIRED by model
 * and version, CHECKPOINTS_DELETED by model, so that a retried unlearning pass finds what it logged already
 * with an index scan. Partial, and ending with the entry's index, like IndexEntryKeys1764216610000's.
 */
export class IndexRetirementKeys1764216710000 extends EntryIndexMigration {
  name = 'IndexRetirementKeys1764216710000';
  protected readonly indexes = [
    { index: 'ledger_entries_retired_version_idx', fields: ['modelId', 'modelVersion'], types: ['VERSION_RETIRED'] },
    { index: 'ledger_entries_checkpoints_deleted_idx', fields: ['modelId'], types: ['CHECKPOINTS_DELETED'] },
  ];
}
