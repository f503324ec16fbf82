import { Injectable, NotFoundException } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import type { DatasetVersioned } from '@lethe/events';
import { type FoundEntry, Ledger, computeCommitmentsRoot, withAdvisoryLock } from '@lethe/ledger';

/** Advisory lock namespace under which a dataset's versions are numbered ("dver"). */
export const VERSION_LOCK = 0x64766572;

/** A dataset version as its DATASET_VERSIONED entry records it. */
export interface DatasetVersion {
  version: number;
  /** RFC 9162 root over hashLeaf(commitment) of the live samples, in upload order. */
  root: string;
  size: number;
  ledgerIndex: number;
}

/** A dataset's recordings in this process: the one running, the one about to start (new callers join it), and how many callers await either. */
interface RecordingSlot {
  running?: Promise<DatasetVersion>;
  waiting?: Promise<DatasetVersion>;
  callers: number;
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
 *
 * Group commit: concurrent callers for one dataset in this process share recordings. A caller (whose change is
 * already committed) joins the next recording that has not started yet, or queues one behind the running one; a
 * recording reads the live commitments once, under the lock, so it covers every change committed before it started,
 * and answers every caller that joined it. Under a burst of uploads to one dataset this is at most one running and
 * one waiting recording, not one full read per upload; a failed recording fails every caller that joined it (none
 * is acknowledged), and the next caller starts a fresh one.
 */
@Injectable()
export class DatasetVersionService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
  ) {}

  /** Per dataset: the recording that runs and the one that waits to start (which new callers join). */
  private readonly recordings = new Map<string, RecordingSlot>();
  private recorded = 0;

  /** How many recordings (reads of a dataset's live commitments) this service has run: a gauge of group commit. */
  get recordingsRun(): number {
    return this.recorded;
  }

  /** How many callers wait for a recording of the dataset in this process (running or about to start). */
  callersWaiting(datasetId: string): number {
    return this.recordings.get(datasetId)?.callers ?? 0;
  }

  /**
   * Logs the dataset's live state as its next version, unless its latest version is that state; returns the
   * latest. Call it after the change is committed: the version it returns was recorded by a read that started
   * after the call, so it covers the change (it may cover later ones too).
   */
  recordVersion(datasetId: string): Promise<DatasetVersion> {
    let group = this.recordings.get(datasetId);
    if (!group) this.recordings.set(datasetId, (group = { callers: 0 }));
    const slot = group;
    slot.callers++;
    const joined = slot.waiting ?? this.startRecording(datasetId, slot);
    return joined.finally(() => {
      slot.callers--;
      this.forgetIdle(datasetId, slot);
    });
  }

  /** Drops a dataset's entry once nothing runs, waits or is awaited on it. */
  private forgetIdle(datasetId: string, slot: RecordingSlot): void {
    if (!slot.running && !slot.waiting && slot.callers === 0 && this.recordings.get(datasetId) === slot) this.recordings.delete(datasetId);
  }

  /** Queues a recording of the dataset behind the running one (if any); callers join it until it starts. */
  private startRecording(datasetId: string, slot: RecordingSlot): Promise<DatasetVersion> {
    const recording: Promise<DatasetVersion> = (slot.running ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        // From here on the recording has started: callers arriving now queue the next one.
        slot.waiting = undefined;
        slot.running = recording;
        return this.recordOnce(datasetId);
      });
    slot.waiting = recording;
    void recording
      .catch(() => undefined)
      .then(() => {
        if (slot.running !== recording) return;
        slot.running = undefined;
        this.forgetIdle(datasetId, slot);
      });
    return recording;
  }

  /** One recording: reads the live commitments under the dataset's lock and logs them unless the latest version is that state. */
  private async recordOnce(datasetId: string): Promise<DatasetVersion> {
    this.recorded++;
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
