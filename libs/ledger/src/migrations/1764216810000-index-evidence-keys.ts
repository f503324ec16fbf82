import { EntryIndexMigration } from './entry-indexes';

/**
 * EVIDENCE_RECORDED entries are looked up by model version (ENTRY_KEYS), like MODEL_PUBLISHED and
 * UNLEARN_COMPLETED in IndexEntryKeys1764216610000: a partial expression index of their own.
 */
export class IndexEvidenceKeys1764216810000 extends EntryIndexMigration {
  name = 'IndexEvidenceKeys1764216810000';
  protected readonly indexes = [{ index: 'ledger_entries_evidence_version_idx', fields: ['modelId', 'modelVersion'], types: ['EVIDENCE_RECORDED'] }];
}
