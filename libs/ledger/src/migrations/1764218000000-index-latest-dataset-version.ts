import { EntryIndexMigration } from './entry-indexes';

/**
 * The latest DATASET_VERSIONED entry of a dataset, read on every change of it (DatasetVersionService): an index by
 * dataset then entry index, read backwards, finds it in one step. IndexDatasetVersions1764217100000's index puts the
 * version (text) between the two, so it cannot give the entries of a dataset in log order.
 */
export class IndexLatestDatasetVersion1764218000000 extends EntryIndexMigration {
  name = 'IndexLatestDatasetVersion1764218000000';
  protected readonly indexes = [{ index: 'ledger_entries_dataset_latest_idx', fields: ['datasetId'], types: ['DATASET_VERSIONED'] }];
}
