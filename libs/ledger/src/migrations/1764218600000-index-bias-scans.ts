import { EntryIndexMigration } from './entry-indexes';

/**
 * BIAS_SCANNED entries are looked up by job (ENTRY_KEYS): a retried bias-scan job finds the entry its earlier run
 * logged instead of logging a second one. A partial expression index of their own, like IndexDatasetVersions1764217100000.
 */
export class IndexBiasScans1764218600000 extends EntryIndexMigration {
  name = 'IndexBiasScans1764218600000';
  protected readonly indexes = [{ index: 'ledger_entries_bias_scan_idx', fields: ['jobId'], types: ['BIAS_SCANNED'] }];
}
