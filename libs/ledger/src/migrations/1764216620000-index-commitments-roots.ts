import { EntryIndexMigration } from './entry-indexes';

/**
 * SAMPLES_COMMITTED entries are looked up by their commitmentsRoot (ENTRY_KEYS): the orphan sweep adopts the
 * rows of an upload that stopped between appending its entry and pointing its rows at it.
 */
export class IndexCommitmentsRoots1764216620000 extends EntryIndexMigration {
  name = 'IndexCommitmentsRoots1764216620000';
  protected readonly indexes = [{ index: 'ledger_entries_commitments_root_idx', fields: ['commitmentsRoot'], types: ['SAMPLES_COMMITTED'] }];
}
