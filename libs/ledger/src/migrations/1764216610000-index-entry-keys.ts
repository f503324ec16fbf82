import { EntryIndexMigration } from './entry-indexes';

/**
 * Indexes the key fields of the entries that are looked up by them (ENTRY_KEYS in entry-query.ts), so that
 * `Ledger.findEntries` is an index scan, not a scan of the log. Each index is partial (only its types'
 * entries are parsed, once, when written) and ends with the entry's index, which gives the results in log
 * order. The table stays append-only: an index is not a change to an entry.
 */
export class IndexEntryKeys1764216610000 extends EntryIndexMigration {
  name = 'IndexEntryKeys1764216610000';
  protected readonly indexes = [
    { index: 'ledger_entries_request_id_idx', fields: ['requestId'], types: ['FORGET_REQUESTED'] },
    { index: 'ledger_entries_model_version_idx', fields: ['modelId', 'modelVersion'], types: ['MODEL_PUBLISHED', 'UNLEARN_COMPLETED'] },
    { index: 'ledger_entries_tx_hash_idx', fields: ['txHash'], types: ['ANCHORED'] },
  ];
}
