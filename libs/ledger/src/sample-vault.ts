import { CompactRange, hashLeaf, fromHex, toHex } from '@lethe/merkle';
import { LedgerError } from '@lethe/events';
import { DataSource } from 'typeorm';
import { CommittableSample, commitSample, createSalt } from './commitment';
import { Ledger } from './ledger';

export interface CommittedSample {
  externalId: string;
  commitment: string;
}

export interface CommitResult {
  samples: CommittedSample[];
  /** The SAMPLES_COMMITTED entry. */
  ledgerIndex: number;
  commitmentsRoot: string;
}

export interface ShredResult {
  /** Commitments whose data and salt were destroyed by this call. */
  shredded: string[];
  /** Commitments that were already shredded (forgetting is idempotent). */
  alreadyShredded: string[];
}

/** RFC 9162 root over hashLeaf(commitment bytes), in the given order. */
export function computeCommitmentsRoot(commitments: string[]): string {
  const range = CompactRange.empty();
  range.append(commitments.map((c) => hashLeaf(fromHex(c, 'commitment'))));
  return toHex(range.root());
}

/**
 * Keeps sample data and salts outside the log. `commit` stores each sample with a fresh random salt
 * and logs only the Merkle root of their commitments (SAMPLES_COMMITTED); `shred` destroys data, salt
 * and identifiers so that the commitment, which stays, can no longer be linked to anyone.
 */
export class SampleVault {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
  ) {}

  async commit(datasetId: string, samples: CommittableSample[]): Promise<CommitResult> {
    if (samples.length === 0) throw new LedgerError('INVALID_ARGUMENT', 'no samples to commit', 'samples');
    const rows = samples.map((sample) => {
      const salt = createSalt();
      return { sample, salt, commitment: commitSample(salt, sample) };
    });
    const commitmentsRoot = computeCommitmentsRoot(rows.map((r) => r.commitment));
    // Stored first, then logged; the rows point at their entry once it is durable. A crash in between
    // leaves rows without ledger_index, which are not committed samples (commitments are random, so
    // a retry makes new ones).
    const ids: { id: string }[] = await this.dataSource.query(
      `INSERT INTO samples (dataset_id, external_id, subject_id, features, label, salt, commitment, batch_position)
       SELECT $1, e, s, f::double precision[], l, salt, c, (n - 1)::integer
         FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::bytea[], $7::text[]) WITH ORDINALITY AS u(e, s, f, l, salt, c, n)
       RETURNING id`,
      [
        datasetId,
        rows.map((r) => r.sample.externalId),
        rows.map((r) => r.sample.subjectId ?? null),
        rows.map((r) => `{${r.sample.features.join(',')}}`),
        rows.map((r) => r.sample.label),
        rows.map((r) => r.salt),
        rows.map((r) => r.commitment),
      ],
    ).catch((error: { code?: string; detail?: string }) => {
      if (error.code === '23505') throw new LedgerError('INVALID_ARGUMENT', `duplicate externalId in dataset ${datasetId}`, 'externalId');
      throw error;
    });
    const entry = await this.ledger.appendOne({
      type: 'SAMPLES_COMMITTED',
      version: 1,
      datasetId,
      commitmentsRoot,
      count: rows.length,
    });
    await this.dataSource.query(`UPDATE samples SET ledger_index = $1 WHERE id = ANY($2::bigint[])`, [
      String(entry.index),
      ids.map((r) => r.id),
    ]);
    return {
      samples: rows.map((r) => ({ externalId: r.sample.externalId, commitment: r.commitment })),
      ledgerIndex: entry.index,
      commitmentsRoot,
    };
  }

  /** Destroys the data, salt and identifiers of the samples with these commitments; idempotent. */
  async shred(commitments: string[]): Promise<ShredResult> {
    return this.dataSource.transaction(async (manager) => {
      const rows: { id: string; commitment: string; shredded: boolean }[] = await manager.query(
        `SELECT id, commitment, shredded_at IS NOT NULL AS shredded FROM samples WHERE commitment = ANY($1::text[]) FOR UPDATE`,
        [commitments],
      );
      const known = new Set(rows.map((r) => r.commitment));
      const unknown = commitments.filter((c) => !known.has(c));
      if (unknown.length > 0) throw new LedgerError('OUT_OF_RANGE', `unknown commitment ${unknown[0]}`, 'commitments');
      const fresh = rows.filter((r) => !r.shredded);
      await manager.query(
        `UPDATE samples SET features = NULL, label = NULL, salt = NULL, external_id = NULL, subject_id = NULL, shredded_at = now()
          WHERE id = ANY($1::bigint[])`,
        [fresh.map((r) => r.id)],
      );
      return { shredded: fresh.map((r) => r.commitment), alreadyShredded: rows.filter((r) => r.shredded).map((r) => r.commitment) };
    });
  }

  /**
   * The commitments of the SAMPLES_COMMITTED batch at `ledgerIndex`, in leaf order (their root is the
   * entry's commitmentsRoot); shredded samples keep their commitment and place.
   */
  async getBatchCommitments(ledgerIndex: number): Promise<string[]> {
    const rows: { commitment: string }[] = await this.dataSource.query(
      `SELECT commitment FROM samples WHERE ledger_index = $1 ORDER BY batch_position`,
      [String(ledgerIndex)],
    );
    return rows.map((r) => r.commitment);
  }

  /** Commitments of a dataset's samples by externalId or subjectId (shredded ones are no longer found). */
  async findCommitments(datasetId: string, by: { externalIds?: string[]; subjectId?: string }): Promise<CommittedSample[]> {
    const rows: { external_id: string; commitment: string }[] = by.subjectId !== undefined
      ? await this.dataSource.query(`SELECT external_id, commitment FROM samples WHERE dataset_id = $1 AND subject_id = $2 ORDER BY id`, [datasetId, by.subjectId])
      : await this.dataSource.query(`SELECT external_id, commitment FROM samples WHERE dataset_id = $1 AND external_id = ANY($2::text[]) ORDER BY id`, [
          datasetId,
          by.externalIds ?? [],
        ]);
    return rows.map((r) => ({ externalId: r.external_id, commitment: r.commitment }));
  }
}
