import { Injectable, NotFoundException } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import type { DatasetVersioned } from '@lethe/events';
import { type FoundEntry, Ledger, computeCommitmentsRoot, withAdvisoryLock } from '@lethe/ledger';

/** Advisory lock namespace under which a dataset's versions are numbered ("dver"). */
const VERSION_LOCK = 0x64766572;

/** A dataset version as its DATASET_VERSIONED entry records it. */
export interface DatasetVersion {
  version: number;
  /** RFC 9162 root over hashLeaf(commitment) of the live samples, in upload order. */
  root: string;
  size: number;
  ledgerIndex: number;
}

export class DatasetVersionDto implements DatasetVersion {
  @ApiProperty({ description: 'counts from 1, one per change of the dataset' }) version!: number;
  @ApiProperty({ description: 'RFC 9162 root over hashLeaf(commitment) of the live samples, in upload order (lowercase hex)' }) root!: string;
  @ApiProperty({ description: 'live samples' }) size!: number;
  @ApiProperty({ description: 'the DATASET_VERSIONED entry' }) ledgerIndex!: number;
}

/**
 * Dataset versions (data version control): after every change of a dataset (an upload, a forget or an erasure by
 * the unlearning pass) the Merkle root of its live samples' commitments (committed, not forgotten; in upload
 * order, the order of their SAMPLES_COMMITTED leaves) is logged as DATASET_VERSIONED with the next version number.
 * The log is the only record: versions are read back from it (indexed by dataset), so a crash after the append
 * loses nothing and the next change numbers on from it. Versions of one dataset are numbered under an advisory
 * lock; a state equal to the latest version's (nothing changed since, or a concurrent change was versioned first)
 * makes no new version.
 */
@Injectable()
export class DatasetVersionService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
  ) {}

  /** Logs the dataset's current live state as its next version, unless its latest version is that state; returns the latest. */
  async recordVersion(datasetId: string): Promise<DatasetVersion> {
    return withAdvisoryLock(this.dataSource, { namespace: VERSION_LOCK, key: datasetId, mode: 'exclusive' }, async () => {
      const rows: { commitment: string }[] = await this.dataSource.query(
        `SELECT commitment FROM sample_commitments WHERE dataset_id = $1 AND ledger_index IS NOT NULL AND forgotten_at IS NULL
          ORDER BY ledger_index, batch_position`,
        [datasetId],
      );
      const root = computeCommitmentsRoot(rows.map((r) => r.commitment));
      const latest = await this.latestVersion(datasetId);
      if (latest && latest.root === root && latest.size === rows.length) return latest;
      const event: DatasetVersioned = { type: 'DATASET_VERSIONED', version: 1, datasetId, datasetVersion: (latest?.version ?? 0) + 1, root, size: rows.length };
      const entry = await this.ledger.appendOne(event);
      return { version: event.datasetVersion, root, size: event.size, ledgerIndex: entry.index };
    });
  }

  /** GET /v1/datasets/:id/versions: a registered dataset's versions (404 for an unknown one). */
  async list(datasetId: string): Promise<DatasetVersionDto[]> {
    const [dataset]: { id: string }[] = await this.dataSource.query(`SELECT id FROM datasets WHERE id = $1`, [datasetId]);
    if (!dataset) throw new NotFoundException(`no dataset with id ${datasetId}`);
    return this.listVersions(datasetId);
  }

  /** The dataset's latest version: its newest DATASET_VERSIONED entry (one step of an index, however many versions). */
  async latestVersion(datasetId: string): Promise<DatasetVersion | undefined> {
    const [entry] = await this.ledger.findEntries({ type: 'DATASET_VERSIONED', fields: { datasetId }, newestFirst: true, limit: 1 });
    return entry && toVersion(entry);
  }

  /** The dataset's versions, oldest first, from its DATASET_VERSIONED entries. */
  async listVersions(datasetId: string): Promise<DatasetVersion[]> {
    const versions: DatasetVersion[] = [];
    for (let afterIndex: number | undefined; ; ) {
      const page = await this.ledger.findEntries({ type: 'DATASET_VERSIONED', fields: { datasetId }, limit: 1000, ...(afterIndex === undefined ? {} : { afterIndex }) });
      versions.push(...page.map(toVersion));
      if (page.length < 1000) return versions;
      afterIndex = page[page.length - 1].index;
    }
  }
}

function toVersion({ index, event }: FoundEntry<DatasetVersioned>): DatasetVersion {
  return { version: event.datasetVersion, root: event.root, size: event.size, ledgerIndex: index };
}
