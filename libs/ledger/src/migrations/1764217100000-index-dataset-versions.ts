import { EntryIndexMigration } from './entry-indexes';

/**
 * DATASET_VERSIONED entries are looked up by dataset (ENTRY_KEYS: the versions of a dataset, its latest): a partial
 * expression index of their own, like IndexEvidenceKeys1764216810000.
 */
export class IndexDatasetVersions1764217100000 extends EntryIndexMigration {
  name = 'IndexDatasetVersions1764217100000';
  protected readonly indexes = [{ index: 'ledger_entries_dataset_version_idx', fields: ['datasetId', 'datasetVersion'], types: ['DATASET_VERSIONED'] }];
}
