import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager, IsNull, Not } from 'typeorm';
import type { ShredCause } from '@lethe/events';
import { ForgetApproach, ForgetMode, ForgetRequestEntity, ForgetRequestState } from './forget-request.entity';

/** Advisory lock namespace for "deciding whether this dataset's samples are already being forgotten". */
const INTAKE_LOCK = 0x666f72676574; // "forget"

/**
 * The tables `forget_requests` and `forget_request_samples`: a request, the commitments it names, the
 * FORGET_REQUESTED entry it points at once durable, and its state (received -> unlearning -> completed |
 * failed; the table's trigger refuses any other move). The intake and the unlearning passes decide when
 * each move happens.
 */
@Injectable()
export class ForgetRequestRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Holds, until `manager`'s transaction ends, the lock under which one intake of the dataset decides at a time. */
  async lockIntake(manager: EntityManager, datasetId: string): Promise<void> {
    await manager.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [INTAKE_LOCK & 0x7fffffff, datasetId]);
  }

  /** Requests that have not failed (nor been restored: their samples are learned again) naming any of `commitments`, oldest first. */
  async findCovering(manager: EntityManager, commitments: string[]): Promise<{ requestId: string; commitment: string }[]> {
    const rows: { request_id: string; commitment: string }[] = await manager.query(
      `SELECT s.request_id, s.commitment FROM forget_request_samples s JOIN forget_requests r ON r.id = s.request_id
        WHERE s.commitment = ANY($1::text[]) AND r.state NOT IN ('failed', 'restored') ORDER BY r.created_at, r.id`,
      [commitments],
    );
    return rows.map((r) => ({ requestId: r.request_id, commitment: r.commitment }));
  }

  /** Stores a `received` request, not yet logged, and its commitments in their order, in `manager`'s transaction. */
  async insert(
    manager: EntityManager,
    request: {
      id: string;
      datasetId: string;
      reason: string;
      createdBy: string | null;
      approach: ForgetApproach | null;
      mode?: ForgetMode;
      graceDays?: number | null;
      features?: number[] | null;
    },
    commitments: string[],
  ): Promise<void> {
    await manager.insert(ForgetRequestEntity, { ...request, state: 'received', ledgerIndex: null, leafHash: null });
    await manager.query(
      `INSERT INTO forget_request_samples (request_id, commitment, position)
       SELECT $1, c, (n - 1)::integer FROM unnest($2::text[]) WITH ORDINALITY AS u(c, n)`,
      [request.id, commitments],
    );
  }

  /**
   * Points a request that is not logged yet at its FORGET_REQUESTED entry and at the pass `jobId`, in one statement
   * of `manager`'s transaction (no pass takes it before that commits); returns what it answers with, or undefined
   * when the request was logged already (then nothing changed).
   */
  async markLoggedInPass(
    manager: EntityManager,
    id: string,
    entry: { index: number | string; leafHash: string },
    jobId: string,
  ): Promise<Pick<ForgetRequestEntity, 'id' | 'state' | 'ledgerIndex' | 'leafHash' | 'jobId'> | undefined> {
    // TypeORM answers an UPDATE with [rows, rowCount].
    const [[row]]: [{ state: ForgetRequestState; job_id: string }[], number] = await manager.query(
      `UPDATE forget_requests SET ledger_index = $2, leaf_hash = $3, job_id = COALESCE(job_id, $4), updated_at = now()
        WHERE id = $1 AND ledger_index IS NULL RETURNING state, job_id`,
      [id, String(entry.index), entry.leafHash, jobId],
    );
    return row && { id, state: row.state, ledgerIndex: String(entry.index), leafHash: entry.leafHash, jobId: row.job_id };
  }

  /** A stored request (logged or not); it must exist. */
  getById(id: string): Promise<ForgetRequestEntity> {
    return this.dataSource.getRepository(ForgetRequestEntity).findOneByOrFail({ id });
  }

  /** A request once it is logged (an unlogged row is not a request yet). */
  findLogged(id: string): Promise<ForgetRequestEntity | null> {
    return this.dataSource.getRepository(ForgetRequestEntity).findOne({ where: { id, ledgerIndex: Not(IsNull()) } });
  }

  /** Logged requests in log order, optionally of one dataset. */
  listLogged(query: { datasetId?: string; start: number; limit: number }): Promise<ForgetRequestEntity[]> {
    return this.dataSource.getRepository(ForgetRequestEntity).find({
      where: { ledgerIndex: Not(IsNull()), ...(query.datasetId !== undefined ? { datasetId: query.datasetId } : {}) },
      order: { ledgerIndex: 'ASC' },
      skip: query.start,
      take: query.limit,
    });
  }

  /** Rows stored more than `olderThanMs` ago and never logged, oldest first. */
  findUnlogged(olderThanMs: number): Promise<Pick<ForgetRequestEntity, 'id' | 'datasetId' | 'reason' | 'features'>[]> {
    return this.dataSource.query(
      `SELECT id, dataset_id AS "datasetId", reason, features FROM forget_requests
        WHERE ledger_index IS NULL AND created_at < now() - make_interval(secs => $1) ORDER BY created_at`,
      [olderThanMs / 1000],
    );
  }

  /** The commitments a request names, in the order of its entry. */
  async findCommitments(id: string): Promise<string[]> {
    const rows: { commitment: string }[] = await this.dataSource.query(
      `SELECT commitment FROM forget_request_samples WHERE request_id = $1 ORDER BY position`,
      [id],
    );
    return rows.map((r) => r.commitment);
  }

  /**
   * Points a `received` request that no pass serves yet at the pass `jobId`; returns the pass it points at
   * (another one, when a pass took it meanwhile).
   */
  async attachToPass(id: string, jobId: string, manager: EntityManager = this.dataSource.manager): Promise<string> {
    const [, updated]: [unknown[], number] = await manager.query(
      `UPDATE forget_requests SET job_id = $2 WHERE id = $1 AND state = 'received' AND job_id IS NULL`,
      [id, jobId],
    );
    if (updated === 1) return jobId;
    const [row]: { job_id: string | null }[] = await manager.query(`SELECT job_id FROM forget_requests WHERE id = $1`, [id]);
    return row.job_id ?? jobId;
  }

  /** Datasets with logged requests that wait (`received`, `restoring`) or that a pass left `unlearning`. */
  async findDatasetsWithWaitingRequests(): Promise<string[]> {
    const rows: { dataset_id: string }[] = await this.dataSource.query(
      `SELECT DISTINCT dataset_id FROM forget_requests WHERE state IN ('received', 'unlearning', 'restoring') AND ledger_index IS NOT NULL`,
    );
    return rows.map((r) => r.dataset_id);
  }

  /**
   * Moves every logged request of the dataset that waits (`received`, or `unlearning` left by a pass that
   * stopped) to `unlearning`, pointed at the pass `jobId` when given; returns their ids in log order, and
   * whether any was left `unlearning` by another pass (which stopped or failed: crash recovery is owed). In
   * `manager`'s transaction when given.
   */
  async takeWaiting(datasetId: string, jobId: string | null, manager: EntityManager = this.dataSource.manager): Promise<{ ids: string[]; resumed: boolean }> {
    // TypeORM answers an UPDATE with [rows, rowCount]; the FROM gives each row's state before the update.
    const [taken]: [{ id: string; ledger_index: string; resumed: boolean }[], number] = await manager.query(
      `UPDATE forget_requests r SET state = 'unlearning', job_id = COALESCE($2, r.job_id), error = NULL, updated_at = now()
         FROM (SELECT id, state, job_id FROM forget_requests
                WHERE dataset_id = $1 AND state IN ('received', 'unlearning') AND ledger_index IS NOT NULL FOR UPDATE) before
        WHERE r.id = before.id
        RETURNING r.id, r.ledger_index, (before.state = 'unlearning' AND before.job_id IS DISTINCT FROM $2) AS resumed`,
      [datasetId, jobId],
    );
    return {
      ids: taken.sort((a, b) => Number(a.ledger_index) - Number(b.ledger_index)).map((r) => r.id),
      resumed: taken.some((r) => r.resumed),
    };
  }

  /** The commitments the requests name, each once. */
  async findCommitmentsOf(ids: string[]): Promise<string[]> {
    const rows: { commitment: string }[] = await this.dataSource.query(
      `SELECT DISTINCT commitment FROM forget_request_samples WHERE request_id = ANY($1::uuid[])`,
      [ids],
    );
    return rows.map((r) => r.commitment);
  }

  /** How each request asked to be unlearned (null: exactly), by id. */
  async findApproaches(ids: string[]): Promise<Map<string, ForgetApproach | null>> {
    const rows: { id: string; approach: ForgetApproach | null }[] = await this.dataSource.query(
      `SELECT id, approach FROM forget_requests WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.approach]));
  }

  /** The columns each feature-level request names (requests of samples are left out). */
  async findFeatures(ids: string[]): Promise<Map<string, number[]>> {
    const rows: { id: string; features: number[] }[] = await this.dataSource.query(
      `SELECT id, features FROM forget_requests WHERE id = ANY($1::uuid[]) AND features IS NOT NULL`,
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.features]));
  }

  async complete(ids: string[]): Promise<void> {
    await this.dataSource.query(`UPDATE forget_requests SET state = 'completed', updated_at = now() WHERE id = ANY($1::uuid[])`, [ids]);
  }

  async fail(ids: string[], error: string): Promise<void> {
    await this.dataSource.query(`UPDATE forget_requests SET state = 'failed', error = $2, updated_at = now() WHERE id = ANY($1::uuid[])`, [
      ids,
      error,
    ]);
  }

  /** Each request's mode, by id. */
  async findModes(ids: string[]): Promise<Map<string, ForgetMode>> {
    const rows: { id: string; mode: ForgetMode }[] = await this.dataSource.query(`SELECT id, mode FROM forget_requests WHERE id = ANY($1::uuid[])`, [ids]);
    return new Map(rows.map((r) => [r.id, r.mode]));
  }

  /** Moves `unlearning` requests of mode suspend to `suspended`, their deadline grace_days from now; returns them. */
  async suspend(ids: string[]): Promise<ForgetRequestEntity[]> {
    if (ids.length === 0) return []; // (findBy of no conditions would find every row)
    await this.dataSource.query(
      `UPDATE forget_requests SET state = 'suspended', deadline = now() + grace_days * interval '1 day', updated_at = now()
        WHERE id = ANY($1::uuid[]) AND state = 'unlearning' AND mode = 'suspend'`,
      [ids],
    );
    return this.dataSource.getRepository(ForgetRequestEntity).findBy(ids.map((id) => ({ id, state: 'suspended' as const })));
  }

  /**
   * Moves a `suspended` request to `to` (restoring; completed: shredded, with its cause) in one statement, so that
   * of a restore and a shred racing each other one wins; returns the request as it is now and whether it moved.
   */
  async leaveSuspended(id: string, to: 'restoring' | 'completed', cause?: ShredCause): Promise<{ moved: boolean; request: ForgetRequestEntity }> {
    const [, moved]: [unknown[], number] = await this.dataSource.query(
      `UPDATE forget_requests SET state = $2, shred_cause = $3, updated_at = now() WHERE id = $1 AND state = 'suspended'`,
      [id, to, cause ?? null],
    );
    return { moved: moved === 1, request: await this.getById(id) };
  }

  /** Points a request at the pass that serves it (a restore). */
  async setPass(id: string, jobId: string): Promise<void> {
    await this.dataSource.query(`UPDATE forget_requests SET job_id = $2 WHERE id = $1`, [id, jobId]);
  }

  /** The dataset's requests waiting to be restored, in log order. */
  async findRestoring(datasetId: string): Promise<ForgetRequestEntity[]> {
    return this.dataSource.getRepository(ForgetRequestEntity).find({ where: { datasetId, state: 'restoring' }, order: { ledgerIndex: 'ASC' } });
  }

  /** A restore done (FORGET_RESTORED at `index`), or given up (back to `suspended`). */
  async finishRestore(id: string, index: number | null): Promise<void> {
    if (index === null) await this.dataSource.query(`UPDATE forget_requests SET state = 'suspended', updated_at = now() WHERE id = $1 AND state = 'restoring'`, [id]);
    else
      await this.dataSource.query(`UPDATE forget_requests SET state = 'restored', restore_ledger_index = $2, updated_at = now() WHERE id = $1 AND state = 'restoring'`, [
        id,
        String(index),
      ]);
  }

  /** Suspended requests whose grace period has ended. */
  findExpiredSuspensions(): Promise<ForgetRequestEntity[]> {
    return this.dataSource
      .getRepository(ForgetRequestEntity)
      .createQueryBuilder('r')
      .where(`r.state = 'suspended' AND r.deadline <= now()`)
      .orderBy('r.deadline')
      .getMany();
  }

  /** Requests of mode suspend whose FORGET_SUSPENDED (`suspend`) or FORGET_SHREDDED (`shred`) step is done but not logged (a stop in between). */
  findUnloggedSteps(step: 'suspend' | 'shred'): Promise<ForgetRequestEntity[]> {
    const where =
      step === 'suspend'
        ? `r.mode = 'suspend' AND r.deadline IS NOT NULL AND r.suspend_ledger_index IS NULL`
        : `r.mode = 'suspend' AND r.shred_cause IS NOT NULL AND r.shred_ledger_index IS NULL`;
    return this.dataSource.getRepository(ForgetRequestEntity).createQueryBuilder('r').where(where).getMany();
  }

  /** The entry recorded for a step of the request (null: none yet). */
  async findStepIndex(id: string, step: 'suspend' | 'shred'): Promise<number | null> {
    const column = step === 'suspend' ? 'suspend_ledger_index' : 'shred_ledger_index';
    const [row]: { idx: string | null }[] = await this.dataSource.query(`SELECT ${column} AS idx FROM forget_requests WHERE id = $1`, [id]);
    return row?.idx == null ? null : Number(row.idx);
  }

  /** Records the entry of a logged step. */
  async recordStep(id: string, step: 'suspend' | 'shred', index: number): Promise<void> {
    const column = step === 'suspend' ? 'suspend_ledger_index' : 'shred_ledger_index';
    await this.dataSource.query(`UPDATE forget_requests SET ${column} = $2 WHERE id = $1 AND ${column} IS NULL`, [id, String(index)]);
  }
}
