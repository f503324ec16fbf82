import { CompactRange, hashLeaf, fromHex, toHex } from '@lethe/merkle';
import { LedgerError } from '@lethe/events';
import { KeyStore } from '@lethe/keystore';
import { DataSource, EntityManager } from 'typeorm';
import { CommittableSample, commitSample, createSalt } from './commitment';
import { withAdvisoryLock } from './advisory-lock';
import { Ledger } from './ledger';
import { insertPayloads } from './payload-rows';
import { externalHashOf, openSample, sealSample, subjectHashOf } from './sample-crypto';
import { DecodedPayload } from './sample-payload';

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

/** A sample found by externalId or subject: its commitment, and whether its batch is in the log. */
export interface FoundSample {
  commitment: string;
  /** When found by externalIds: which one. */
  externalId?: string;
  /** False for a row whose upload stopped before its SAMPLES_COMMITTED entry was appended (an orphan). */
  committed: boolean;
}

/** A sample as stored, opened with its subject's data key. */
export interface OpenedSample extends DecodedPayload {
  /** Its row id (upload order). */
  id: string;
  datasetId: string;
  commitment: string;
  committed: boolean;
}

export interface ShredResult {
  /** Commitments whose payload (data, salt, identifiers) this call erased. */
  shredded: string[];
  /** Commitments erased before (forgetting is idempotent), or never stored. */
  alreadyShredded: string[];
  /** Data keys destroyed: subjects wholly forgotten, and the old keys of subjects partly forgotten. */
  keysDestroyed: number;
  /** Subjects partly forgotten: their other samples were sealed again under a fresh key. */
  keysReplaced: number;
}

/** Rows read (and opened) per query when reading many samples. */
const READ_PAGE = 5000;
/** Advisory lock namespace of "writing a dataset's sample rows" ("vault"). */
const WRITE_LOCK = 0x7661756c74 & 0x7fffffff;

/** RFC 9162 root over hashLeaf(commitment bytes), in the given order. */
export function computeCommitmentsRoot(commitments: string[]): string {
  const range = CompactRange.empty();
  range.append(commitments.map((c) => hashLeaf(fromHex(c, 'commitment'))));
  return toHex(range.root());
}

interface PayloadRow {
  id: string;
  dataset_id: string;
  commitment: string;
  committed: boolean;
  key_id: string;
  payload: Buffer;
}

/**
 * Keeps sample data outside the log, and never in plaintext. Each sample gets a fresh random salt; its
 * commitment SHA-256(salt ‖ canonical sample) goes to the log (SAMPLES_COMMITTED, under a Merkle root)
 * and to `sample_commitments`, which is public and never deleted. Everything private (features, label,
 * salt, externalId, subjectId) is one payload sealed with AES-256-GCM under the data key of the sample's
 * subject (a sample without subjectId is a subject of its own) and kept in `sample_payloads`; the data keys
 * live in the key store, outside PostgreSQL, and `subject_keys` names which key is whose by a keyed hash.
 * Samples are found by keyed hashes of their externalId and subjectId, never by the identifiers.
 *
 * `shred` erases samples: a subject wholly forgotten has its key destroyed (durably) and its rows deleted;
 * a subject partly forgotten has its other samples sealed again under a fresh key first, then the old key
 * destroyed. Every copy of a payload (table pages, WAL, backups) is then unreadable, and the commitments
 * left in the log can no longer be linked to anyone.
 *
 * Writes of one dataset's rows take an advisory lock: uploads share it, `shred` and the orphan sweep hold it
 * alone, so a subject's key never changes under an upload that is sealing with it, and a row without its
 * log entry is an orphan (its upload stopped) only when no upload holds the lock.
 */
export class SampleVault {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly keyStore: KeyStore,
  ) {}

  /**
   * Stores the samples sealed, then logs the Merkle root of their commitments (SAMPLES_COMMITTED), then
   * points the rows at the entry. New subjects' keys are durable before any row refers to them. A crash
   * between storing and pointing leaves rows without ledger_index: orphans, which `recoverOrphans` adopts
   * (their entry was appended) or erases (it was not).
   */
  async commit(datasetId: string, samples: CommittableSample[]): Promise<CommitResult> {
    if (samples.length === 0) throw new LedgerError('INVALID_ARGUMENT', 'no samples to commit', 'samples');
    const lookupKey = await this.keyStore.getLookupKey();
    const rows = samples.map((sample) => {
      const salt = createSalt();
      return {
        sample,
        salt,
        commitment: commitSample(salt, sample),
        externalHash: externalHashOf(lookupKey, datasetId, sample.externalId),
        subjectHash: subjectHashOf(lookupKey, datasetId, sample),
      };
    });
    if (new Set(rows.map((r) => r.externalHash)).size !== rows.length)
      throw new LedgerError('INVALID_ARGUMENT', `duplicate externalId in the samples to commit to dataset ${datasetId}`, 'externalId');
    const commitmentsRoot = computeCommitmentsRoot(rows.map((r) => r.commitment));
    return this.withWriteLock(datasetId, 'shared', async () => {
      const ids = await this.store(datasetId, rows);
      const entry = await this.ledger.appendOne({ type: 'SAMPLES_COMMITTED', version: 1, datasetId, commitmentsRoot, count: rows.length });
      await this.dataSource.query(`UPDATE sample_commitments SET ledger_index = $1 WHERE id = ANY($2::bigint[])`, [String(entry.index), ids]);
      return {
        samples: rows.map((r) => ({ externalId: r.sample.externalId, commitment: r.commitment })),
        ledgerIndex: entry.index,
        commitmentsRoot,
      };
    });
  }

  /**
   * Seals and inserts the rows (commitments, payloads, new subjects' keys) in one transaction; returns their
   * ids in order. The data keys of new subjects are made (durably) first; a key another upload made for the
   * same subject meanwhile wins, and ours is destroyed unused.
   */
  private async store(
    datasetId: string,
    rows: { sample: CommittableSample; salt: Buffer; commitment: string; externalHash: string; subjectHash: string }[],
  ): Promise<string[]> {
    // Sorted: uploads that add the same new subjects insert their keys in one order, so that neither waits for a
    // key row the other inserted while holding one it waits for (PostgreSQL's `deadlock detected`, a 500).
    const subjects = [...new Set(rows.map((r) => r.subjectHash))].sort();
    const keyIds = await this.findActiveKeys(this.dataSource.manager, datasetId, subjects);
    const dataKeys = await this.keyStore.getKeys([...keyIds.values()]);
    const missing = subjects.filter((s) => !keyIds.has(s) || !dataKeys.has(keyIds.get(s)!));
    const created = await this.keyStore.createKeys(missing.length);
    missing.forEach((subject, i) => {
      keyIds.set(subject, created[i].keyId);
      dataKeys.set(created[i].keyId, created[i].dataKey);
    });
    // Keys made here that end up used by no row (another upload's key won, or nothing was stored) are destroyed.
    const used = new Set<string>();
    let won = new Set<string>();
    try {
      const ids = await this.dataSource.transaction(async (manager) => {
        if (missing.length > 0) {
          const inserted: { key_id: string }[] = await manager.query(
            `INSERT INTO subject_keys (key_id, dataset_id, subject_hash) SELECT k, $1, s FROM unnest($2::text[], $3::text[]) AS u(k, s)
             ON CONFLICT (dataset_id, subject_hash) WHERE state = 'active' DO NOTHING RETURNING key_id`,
            [datasetId, missing.map((s) => keyIds.get(s)), missing],
          );
          won = new Set(inserted.map((r) => r.key_id));
          const lost = missing.filter((s) => !won.has(keyIds.get(s)!));
          if (lost.length > 0) {
            const winners = await this.findActiveKeys(manager, datasetId, lost);
            const winnerKeys = await this.keyStore.getKeys([...winners.values()]);
            for (const subject of lost) {
              const keyId = winners.get(subject);
              if (keyId === undefined || !winnerKeys.has(keyId)) throw new Error(`the data key of a subject of dataset ${datasetId} changed while samples were stored`);
              keyIds.set(subject, keyId);
              dataKeys.set(keyId, winnerKeys.get(keyId)!);
            }
          }
        }
        const payloads = rows.map((r) =>
          sealSample(dataKeys.get(keyIds.get(r.subjectHash)!)!, datasetId, r.commitment, { ...r.sample, salt: r.salt }),
        );
        const inserted: { id: string; commitment: string }[] = await manager.query(
          `INSERT INTO sample_commitments (dataset_id, commitment, batch_position)
           SELECT $1, c, (n - 1)::integer FROM unnest($2::text[]) WITH ORDINALITY AS u(c, n)
           RETURNING id, commitment`,
          [datasetId, rows.map((r) => r.commitment)],
        );
        const idOf = new Map(inserted.map((r) => [r.commitment, r.id]));
        await insertPayloads(
          manager,
          rows.map((r, i) => ({ sampleId: idOf.get(r.commitment)!, datasetId, externalHash: r.externalHash, keyId: keyIds.get(r.subjectHash)!, payload: payloads[i] })),
        );
        const expiring = rows.filter((r) => r.sample.expiresAt !== undefined);
        if (expiring.length > 0)
          await manager.query(
            `UPDATE sample_payloads p SET expires_at = u.e FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, e) WHERE p.sample_id = u.id`,
            [expiring.map((r) => idOf.get(r.commitment)!), expiring.map((r) => r.sample.expiresAt)],
          );
        return rows.map((r) => idOf.get(r.commitment)!);
      });
      for (const keyId of won) used.add(keyId); // committed: the rows refer to them
      return ids;
    } catch (error) {
      const e = error as { code?: string; constraint?: string };
      if (e.code === '23505' && e.constraint === 'sample_payloads_external')
        throw new LedgerError('INVALID_ARGUMENT', `duplicate externalId in dataset ${datasetId}`, 'externalId');
      throw error;
    } finally {
      const unused = created.map((k) => k.keyId).filter((keyId) => !used.has(keyId));
      if (unused.length > 0) await this.keyStore.destroyKeys(unused);
    }
  }

  /** The active data key ids of the subjects (by subject hash) that have one. */
  private async findActiveKeys(manager: EntityManager, datasetId: string, subjectHashes: string[]): Promise<Map<string, string>> {
    const rows: { subject_hash: string; key_id: string }[] = await manager.query(
      `SELECT subject_hash, key_id FROM subject_keys WHERE dataset_id = $1 AND state = 'active' AND subject_hash = ANY($2::text[])`,
      [datasetId, subjectHashes],
    );
    return new Map(rows.map((r) => [r.subject_hash, r.key_id]));
  }

  /**
   * The stored samples of the dataset with these externalIds, or of this subject, in upload order;
   * erased ones are no longer found. Orphans (not committed) are found too, marked so.
   */
  async findSamples(datasetId: string, by: { externalIds: string[] } | { subjectId: string }): Promise<FoundSample[]> {
    const lookupKey = await this.keyStore.getLookupKey();
    const order = 'ORDER BY c.ledger_index NULLS LAST, c.id'; // upload order
    if ('subjectId' in by) {
      const subjectHash = subjectHashOf(lookupKey, datasetId, { externalId: '', subjectId: by.subjectId });
      const rows: { commitment: string; committed: boolean }[] = await this.dataSource.query(
        `SELECT c.commitment, c.ledger_index IS NOT NULL AS committed
           FROM subject_keys k JOIN sample_payloads p ON p.subject_key_id = k.key_id JOIN sample_commitments c ON c.id = p.sample_id
          WHERE k.dataset_id = $1 AND k.subject_hash = $2 ${order}`,
        [datasetId, subjectHash],
      );
      return rows.map((r) => ({ commitment: r.commitment, committed: r.committed }));
    }
    const byHash = new Map(by.externalIds.map((e) => [externalHashOf(lookupKey, datasetId, e), e]));
    const rows: { external_hash: string; commitment: string; committed: boolean }[] = await this.dataSource.query(
      `SELECT p.external_hash, c.commitment, c.ledger_index IS NOT NULL AS committed
         FROM sample_payloads p JOIN sample_commitments c ON c.id = p.sample_id
        WHERE p.dataset_id = $1 AND p.external_hash = ANY($2::text[]) ${order}`,
      [datasetId, [...byHash.keys()]],
    );
    return rows.map((r) => ({ externalId: byHash.get(r.external_hash)!, commitment: r.commitment, committed: r.committed }));
  }

  /** Which of these externalIds the dataset holds a sample of (committed or not). */
  async findExternalIds(datasetId: string, externalIds: string[]): Promise<Set<string>> {
    return new Set((await this.findSamples(datasetId, { externalIds })).map((s) => s.externalId!));
  }

  /**
   * Opens the stored samples of a dataset (or the given rows), in upload order. Erased samples are not
   * returned; nor are orphans when `committedOnly`. Each subject's key is read once, and rows are read a
   * page at a time, so a large dataset never sits in memory twice (sealed and open). With `float32`, each
   * page's features are decoded straight into one float32 matrix (what training computes in), each sample's
   * a view of it; a sample with a value float32 cannot hold keeps numbers.
   */
  async readSamples(
    selection: { datasetId: string } | { sampleIds: readonly string[] },
    options: { committedOnly?: boolean; float32?: boolean } = {},
  ): Promise<OpenedSample[]> {
    const keys = new Map<string, Buffer>();
    const out: OpenedSample[] = [];
    const committed = options.committedOnly ? 'AND c.ledger_index IS NOT NULL' : '';
    const select = `SELECT p.sample_id AS id, p.dataset_id, c.commitment, c.ledger_index IS NOT NULL AS committed, p.subject_key_id AS key_id, p.payload
                      FROM sample_payloads p JOIN sample_commitments c ON c.id = p.sample_id`;
    let rekeyed: string[] = [];
    if ('datasetId' in selection) {
      for (let after = '0'; ; ) {
        const rows: PayloadRow[] = await this.dataSource.query(
          `${select} WHERE p.dataset_id = $1 AND p.sample_id > $2 ${committed} ORDER BY p.sample_id LIMIT ${READ_PAGE}`,
          [selection.datasetId, after],
        );
        if (rows.length === 0) break;
        rekeyed.push(...(await this.openRows(rows, keys, out, options.float32)));
        after = rows[rows.length - 1].id;
      }
    } else {
      const ids = [...selection.sampleIds].sort((a, b) => Number(a) - Number(b));
      for (let i = 0; i < ids.length; i += READ_PAGE) {
        const rows: PayloadRow[] = await this.dataSource.query(`${select} WHERE p.sample_id = ANY($1::bigint[]) ${committed} ORDER BY p.sample_id`, [
          ids.slice(i, i + READ_PAGE),
        ]);
        rekeyed.push(...(await this.openRows(rows, keys, out, options.float32)));
      }
    }
    // Rows whose key was destroyed after they were read: their subject was partly forgotten meanwhile and
    // they are sealed under a fresh key now; read them again once (a row gone since was erased).
    if (rekeyed.length > 0) {
      const rows: PayloadRow[] = await this.dataSource.query(`${select} WHERE p.sample_id = ANY($1::bigint[]) ${committed}`, [rekeyed]);
      rekeyed = await this.openRows(rows, keys, out, options.float32);
      out.sort((a, b) => Number(a.id) - Number(b.id));
    }
    return out;
  }

  /** Opens rows into `out`, fetching keys not in `keys`; returns the ids of rows whose key is gone. */
  private async openRows(rows: PayloadRow[], keys: Map<string, Buffer>, out: OpenedSample[], float32 = false): Promise<string[]> {
    const wanted = [...new Set(rows.map((r) => r.key_id))].filter((k) => !keys.has(k));
    for (const [keyId, key] of await this.keyStore.getKeys(wanted)) keys.set(keyId, key);
    const missing: string[] = [];
    // One matrix for the page, rows as wide as the first one's; a row of another width keeps numbers.
    let matrix: Float32Array | undefined;
    let width = -1;
    let next = 0;
    for (const row of rows) {
      const key = keys.get(row.key_id);
      if (key === undefined) {
        missing.push(row.id);
        continue;
      }
      const open = (into?: Float32Array) =>
        into === undefined ? openSample(key, row.dataset_id, row.commitment, row.payload) : openSample(key, row.dataset_id, row.commitment, row.payload, into);
      let sample = float32 && matrix !== undefined ? open(matrix.subarray(next * width, (next + 1) * width)) : open();
      if (float32 && matrix === undefined) {
        width = sample.features.length;
        matrix = new Float32Array(rows.length * width);
        sample = open(matrix.subarray(0, width));
      }
      if (sample.features instanceof Float32Array) next++;
      out.push({ id: row.id, datasetId: row.dataset_id, commitment: row.commitment, committed: row.committed, ...sample });
    }
    return missing;
  }

  /**
   * The samples of the SAMPLES_COMMITTED batch at `ledgerIndex`, in leaf order: each commitment, with its
   * externalId while the sample is kept (null once it was forgotten).
   */
  async readBatch(ledgerIndex: number): Promise<{ externalId: string | null; commitment: string }[]> {
    const rows: { id: string; commitment: string }[] = await this.dataSource.query(
      `SELECT id, commitment FROM sample_commitments WHERE ledger_index = $1 ORDER BY batch_position`,
      [String(ledgerIndex)],
    );
    const opened = new Map((await this.readSamples({ sampleIds: rows.map((r) => r.id) })).map((s) => [s.id, s.externalId]));
    return rows.map((r) => ({ externalId: opened.get(r.id) ?? null, commitment: r.commitment }));
  }

  /**
   * The commitments of the SAMPLES_COMMITTED batch at `ledgerIndex`, in leaf order (their root is the
   * entry's commitmentsRoot); forgotten samples keep their commitment and place.
   */
  async getBatchCommitments(ledgerIndex: number): Promise<string[]> {
    const rows: { commitment: string }[] = await this.dataSource.query(
      `SELECT commitment FROM sample_commitments WHERE ledger_index = $1 ORDER BY batch_position`,
      [String(ledgerIndex)],
    );
    return rows.map((r) => r.commitment);
  }

  /** A committed sample's dataset, SAMPLES_COMMITTED entry and whether it was forgotten; undefined if none has this commitment. */
  async findCommitment(commitment: string): Promise<{ datasetId: string; ledgerIndex: number; forgotten: boolean } | undefined> {
    const [row]: { dataset_id: string; ledger_index: string; forgotten: boolean }[] = await this.dataSource.query(
      `SELECT dataset_id, ledger_index, forgotten_at IS NOT NULL AS forgotten FROM sample_commitments WHERE commitment = $1 AND ledger_index IS NOT NULL`,
      [commitment],
    );
    return row && { datasetId: row.dataset_id, ledgerIndex: Number(row.ledger_index), forgotten: row.forgotten };
  }

  /** How many samples of the dataset were committed, and how many of them were forgotten since. */
  /**
   * Committed samples not erased whose expiry has passed (`expires_at <= now`), by dataset, in upload order: what
   * the retention sweep files forget requests for (those not requested already).
   */
  async findExpired(limit = 10_000): Promise<Map<string, string[]>> {
    const rows: { dataset_id: string; commitment: string }[] = await this.dataSource.query(
      `SELECT p.dataset_id, c.commitment FROM sample_payloads p JOIN sample_commitments c ON c.id = p.sample_id
        WHERE p.expires_at <= now() AND c.ledger_index IS NOT NULL ORDER BY p.dataset_id, c.id LIMIT $1`,
      [limit],
    );
    const byDataset = new Map<string, string[]>();
    for (const r of rows) byDataset.set(r.dataset_id, [...(byDataset.get(r.dataset_id) ?? []), r.commitment]);
    return byDataset;
  }

  async countSamples(datasetId: string): Promise<{ committed: number; forgotten: number }> {
    const [row]: { committed: number; forgotten: number }[] = await this.dataSource.query(
      `SELECT count(*)::int AS committed, count(forgotten_at)::int AS forgotten FROM sample_commitments WHERE dataset_id = $1 AND ledger_index IS NOT NULL`,
      [datasetId],
    );
    return row;
  }

  /**
   * Runs `run` (shreds, key destructions a crash left, orphans erased) as one erasure pass of the key store: each
   * destruction durable as it returns, the store's clean-up after them (PostgreSQL: VACUUM FULL) once at its end.
   */
  inErasurePass<T>(run: () => Promise<T>): Promise<T> {
    return this.keyStore.inErasurePass(run);
  }

  /**
   * Erases the samples of the dataset with these commitments, committed or orphans; idempotent. Subjects
   * wholly forgotten: their keys are destroyed, then their rows deleted. Subjects partly forgotten: a fresh
   * key (durable first), their other samples sealed again under it in one transaction that also marks the
   * old key `destroying`; then the old key is destroyed and the forgotten rows deleted. A committed sample
   * keeps its commitment row (forgotten_at set); an orphan's goes too. A crash after a key was marked
   * `destroying` is finished by `finishDestroying`.
   */
  async shred(datasetId: string, commitments: string[]): Promise<ShredResult> {
    return this.withWriteLock(datasetId, 'exclusive', async () => {
      await this.adoptLoggedOrphans(datasetId);
      return this.shredLocked(datasetId, commitments);
    });
  }

  private async shredLocked(datasetId: string, commitments: string[]): Promise<ShredResult> {
    const rows: { id: string; commitment: string; key_id: string | null }[] = await this.dataSource.query(
      `SELECT c.id, c.commitment, p.subject_key_id AS key_id FROM sample_commitments c LEFT JOIN sample_payloads p ON p.sample_id = c.id
        WHERE c.dataset_id = $1 AND c.commitment = ANY($2::text[])`,
      [datasetId, commitments],
    );
    const forget = rows.filter((r) => r.key_id !== null);
    const erased = new Set(forget.map((r) => r.commitment));
    const alreadyShredded = commitments.filter((c) => !erased.has(c));
    if (forget.length === 0) return { shredded: [], alreadyShredded, keysDestroyed: 0, keysReplaced: 0 };
    const keyIds = [...new Set(forget.map((r) => r.key_id!))];
    // The other samples of the subjects concerned, which keep being kept: sealed again under a fresh key.
    const others: PayloadRow[] = await this.dataSource.query(
      `SELECT p.sample_id AS id, p.dataset_id, c.commitment, c.ledger_index IS NOT NULL AS committed, p.subject_key_id AS key_id, p.payload
         FROM sample_payloads p JOIN sample_commitments c ON c.id = p.sample_id
        WHERE p.subject_key_id = ANY($1::text[]) AND p.sample_id <> ALL($2::bigint[])`,
      [keyIds, forget.map((r) => r.id)],
    );
    const replaced = [...new Set(others.map((r) => r.key_id))];
    const oldKeys = await this.keyStore.getKeys(replaced);
    const fresh = await this.keyStore.createKeys(replaced.length);
    const freshOf = new Map(replaced.map((keyId, i) => [keyId, fresh[i]]));
    const resealed = others.map((r) => {
      const oldKey = oldKeys.get(r.key_id);
      if (oldKey === undefined) throw new LedgerError('CORRUPT', `data key ${r.key_id} is gone while sample ${r.commitment} still needs it`);
      const payload = openSample(oldKey, r.dataset_id, r.commitment, r.payload);
      return sealSample(freshOf.get(r.key_id)!.dataKey, r.dataset_id, r.commitment, payload);
    });
    await this.dataSource.transaction(async (manager) => {
      await manager.query(`UPDATE subject_keys SET state = 'destroying' WHERE key_id = ANY($1::text[]) AND state = 'active'`, [keyIds]);
      if (replaced.length === 0) return;
      await manager.query(
        `INSERT INTO subject_keys (key_id, dataset_id, subject_hash)
         SELECT u.fresh, k.dataset_id, k.subject_hash FROM unnest($1::text[], $2::text[]) AS u(old, fresh) JOIN subject_keys k ON k.key_id = u.old`,
        [replaced, replaced.map((k) => freshOf.get(k)!.keyId)],
      );
      await manager.query(
        `UPDATE sample_payloads p SET subject_key_id = u.k, payload = u.p FROM unnest($1::bigint[], $2::text[], $3::bytea[]) AS u(id, k, p) WHERE p.sample_id = u.id`,
        [others.map((r) => r.id), others.map((r) => freshOf.get(r.key_id)!.keyId), resealed],
      );
    });
    await this.destroyAndDelete(keyIds);
    return { shredded: forget.map((r) => r.commitment), alreadyShredded, keysDestroyed: keyIds.length, keysReplaced: replaced.length };
  }

  /**
   * Destroys the keys (durably), then deletes every payload still sealed under them, their subject_keys rows,
   * and the commitment rows of orphans among them (a committed sample's commitment stays, marked forgotten).
   */
  private async destroyAndDelete(keyIds: string[]): Promise<void> {
    await this.keyStore.destroyKeys(keyIds);
    await this.dataSource.transaction(async (manager) => {
      const [deleted]: [{ sample_id: string }[], number] = await manager.query(
        `DELETE FROM sample_payloads WHERE subject_key_id = ANY($1::text[]) RETURNING sample_id`,
        [keyIds],
      );
      const ids = deleted.map((r) => r.sample_id);
      await manager.query(`UPDATE sample_commitments SET forgotten_at = now() WHERE id = ANY($1::bigint[]) AND ledger_index IS NOT NULL`, [ids]);
      await manager.query(`DELETE FROM sample_commitments WHERE id = ANY($1::bigint[]) AND ledger_index IS NULL`, [ids]);
      await manager.query(`DELETE FROM subject_keys WHERE key_id = ANY($1::text[])`, [keyIds]);
    });
  }

  /** Finishes erasures a crash interrupted: keys marked `destroying` are destroyed and their rows deleted. Returns how many keys. */
  async finishDestroying(): Promise<number> {
    const rows: { key_id: string }[] = await this.dataSource.query(`SELECT key_id FROM subject_keys WHERE state = 'destroying' ORDER BY key_id LIMIT 10000`);
    if (rows.length > 0) await this.destroyAndDelete(rows.map((r) => r.key_id));
    return rows.length;
  }

  /**
   * Orphans older than `olderThanMs`: rows stored by an upload that stopped before pointing them at their
   * SAMPLES_COMMITTED entry. Those whose entry was appended are adopted (pointed at it: they are committed);
   * the others were never committed and are erased (keys destroyed, rows deleted). Returns how many of each.
   */
  async recoverOrphans(olderThanMs: number): Promise<{ adopted: number; erased: number }> {
    const datasets: { dataset_id: string }[] = await this.dataSource.query(
      `SELECT DISTINCT dataset_id FROM sample_commitments WHERE ledger_index IS NULL AND created_at < now() - make_interval(secs => $1)`,
      [olderThanMs / 1000],
    );
    let adopted = 0;
    let erased = 0;
    for (const { dataset_id: datasetId } of datasets) {
      await this.withWriteLock(datasetId, 'exclusive', async () => {
        adopted += await this.adoptLoggedOrphans(datasetId);
        const orphans: { commitment: string }[] = await this.dataSource.query(
          `SELECT commitment FROM sample_commitments WHERE dataset_id = $1 AND ledger_index IS NULL AND created_at < now() - make_interval(secs => $2)`,
          [datasetId, olderThanMs / 1000],
        );
        if (orphans.length > 0) erased += (await this.shredLocked(datasetId, orphans.map((o) => o.commitment))).shredded.length;
      });
    }
    return { adopted, erased };
  }

  /**
   * Points orphans of the dataset whose SAMPLES_COMMITTED entry was appended (the upload stopped between
   * appending and pointing) at that entry. The rows of one commit share their insert time and hold positions
   * 0..n-1; their commitments' root names the entry. Called with the write lock held alone.
   */
  private async adoptLoggedOrphans(datasetId: string): Promise<number> {
    const rows: { id: string; commitment: string; batch_position: number; inserted: string }[] = await this.dataSource.query(
      `SELECT id, commitment, batch_position, created_at::text AS inserted FROM sample_commitments
        WHERE dataset_id = $1 AND ledger_index IS NULL ORDER BY created_at, batch_position`,
      [datasetId],
    );
    const batches = new Map<string, typeof rows>();
    for (const row of rows) batches.set(row.inserted, [...(batches.get(row.inserted) ?? []), row]);
    let adopted = 0;
    for (const batch of batches.values()) {
      if (batch.some((r, i) => r.batch_position !== i)) continue; // not the rows of one commit
      const root = computeCommitmentsRoot(batch.map((r) => r.commitment));
      const entries = await this.ledger.findEntries({ type: 'SAMPLES_COMMITTED', fields: { commitmentsRoot: root } });
      const entry = entries.find((e) => e.event.datasetId === datasetId && e.event.count === batch.length);
      if (!entry) continue;
      await this.dataSource.query(`UPDATE sample_commitments SET ledger_index = $1 WHERE id = ANY($2::bigint[]) AND ledger_index IS NULL`, [
        String(entry.index),
        batch.map((r) => r.id),
      ]);
      adopted += batch.length;
    }
    return adopted;
  }

  /** Runs `fn` holding the dataset's write lock: uploads share it, erasures hold it alone. */
  private withWriteLock<T>(datasetId: string, mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
    return withAdvisoryLock(this.dataSource, { namespace: WRITE_LOCK, key: datasetId, mode }, fn);
  }
}
