import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ShardRecord } from '@lethe/unlearning';

/** A version to retire: the forget requests (of the pass) whose samples it learned, in log order. */
export interface RetiringVersion {
  version: number;
  onnxSha256: string;
  forgetRequestIds: string[];
}

/** A version marked retired whose VERSION_RETIRED entry is not recorded yet. */
export interface UnloggedRetirement extends RetiringVersion {
  /** The log's size when it was marked: its entry, if one was written, is at or after it. */
  loggedAfter: number;
}

/** What a version's weights depend on. */
export interface VersionLineage {
  modelId: string;
  version: number;
  hyperparamsHash: string;
  shards: ShardRecord[];
}

/** A checkpoint whose deletion is decided, not yet recorded as logged. */
export interface UnloggedDeletion {
  checkpoint: string;
  modelId: string;
  forgetRequestIds: string[];
  decidedAfter: number;
}

/**
 * The retirement columns of model_versions (retired_at, retired_by, the VERSION_RETIRED entry, when the file
 * went) and the table checkpoint_deletions (decided, logged, deleted). Each step of a retirement is a row
 * change here before the next step happens, so a crash leaves a state the next run can finish.
 */
@Injectable()
export class RetirementStore {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * The model's versions that learned samples the requests name (model_version_samples knows) and whose
   * retirement is not logged yet, each with the requests whose samples it learned (in the order given).
   */
  async findLearnedVersions(modelId: string, requestIds: string[]): Promise<RetiringVersion[]> {
    const rows: { version: number; onnx_sha256: string; request_ids: string[] }[] = await this.dataSource.query(
      `SELECT v.version, v.onnx_sha256, array_agg(DISTINCT f.request_id::text) AS request_ids
         FROM forget_request_samples f
         JOIN sample_commitments s ON s.commitment = f.commitment
         JOIN model_version_samples m ON m.sample_id = s.id AND m.model_id = $1
         JOIN model_versions v ON v.model_id = m.model_id AND v.version = m.version
        WHERE f.request_id = ANY($2::uuid[]) AND v.retire_ledger_index IS NULL
        GROUP BY v.version, v.onnx_sha256 ORDER BY v.version`,
      [modelId, requestIds],
    );
    return rows.map((r) => ({
      version: r.version,
      onnxSha256: r.onnx_sha256,
      forgetRequestIds: requestIds.filter((id) => r.request_ids.includes(id)),
    }));
  }

  /**
   * Marks versions retired (from now on nothing serves them); a version marked before and not logged yet
   * keeps its first time and log size.
   */
  async markRetired(modelId: string, versions: RetiringVersion[], logSize: number): Promise<void> {
    if (versions.length === 0) return;
    await this.dataSource.query(
      `UPDATE model_versions v SET retired_at = COALESCE(v.retired_at, now()), retired_by = u.request_ids::uuid[],
              retire_logged_after = COALESCE(v.retire_logged_after, $3)
         FROM (SELECT * FROM unnest($2::integer[], $4::text[])) AS u(version, request_ids)
        WHERE v.model_id = $1 AND v.version = u.version AND v.retire_ledger_index IS NULL`,
      [modelId, versions.map((v) => v.version), String(logSize), versions.map((v) => `{${v.forgetRequestIds.join(',')}}`)],
    );
  }

  /**
   * Live versions that the next version, made by forgetting, superseded (a database from before retirement
   * has them): each learned samples that unlearning forgot, of the requests that next version reflects and it
   * does not. A version whose next one learned samples (a restored forget request, online learning) was not
   * superseded by forgetting: a later unlearning may forget what it never learned (the restored samples), and
   * the pass retires it itself when it did learn them.
   */
  async findSuperseded(): Promise<{ modelId: string; datasetId: string; version: RetiringVersion }[]> {
    const rows: { model_id: string; dataset_id: string; version: number; onnx_sha256: string; request_ids: string[] }[] = await this.dataSource.query(
      `SELECT v.model_id, m.dataset_id, v.version, v.onnx_sha256,
              COALESCE(NULLIF(ARRAY(SELECT unnest(u.reflects_forget_requests) EXCEPT SELECT unnest(v.reflects_forget_requests)), '{}'),
                       u.reflects_forget_requests)::text[] AS request_ids
         FROM model_versions v
         JOIN models m ON m.id = v.model_id
         JOIN LATERAL (SELECT reflects_forget_requests, unlearn_ledger_index FROM model_versions u
                        WHERE u.model_id = v.model_id AND u.version > v.version
                        ORDER BY u.version LIMIT 1) u ON u.unlearn_ledger_index IS NOT NULL
        WHERE v.retired_at IS NULL
        ORDER BY v.model_id, v.version`,
    );
    return rows
      .filter((r) => r.request_ids.length > 0)
      .map((r) => ({ modelId: r.model_id, datasetId: r.dataset_id, version: { version: r.version, onnxSha256: r.onnx_sha256, forgetRequestIds: r.request_ids } }));
  }

  /** The model's versions marked retired whose entry is not recorded, oldest first. */
  async findUnloggedRetirements(modelId: string): Promise<UnloggedRetirement[]> {
    const rows: { version: number; onnx_sha256: string; retired_by: string[]; retire_logged_after: string }[] = await this.dataSource.query(
      `SELECT version, onnx_sha256, retired_by::text[] AS retired_by, retire_logged_after FROM model_versions
        WHERE model_id = $1 AND retired_at IS NOT NULL AND retire_ledger_index IS NULL ORDER BY version`,
      [modelId],
    );
    return rows.map((r) => ({ version: r.version, onnxSha256: r.onnx_sha256, forgetRequestIds: r.retired_by, loggedAfter: Number(r.retire_logged_after) }));
  }

  async setRetireLedgerIndex(modelId: string, version: number, index: number): Promise<void> {
    await this.dataSource.query(`UPDATE model_versions SET retire_ledger_index = $3 WHERE model_id = $1 AND version = $2`, [modelId, version, String(index)]);
  }

  /** Serves again the versions marked retired for the requests whose retirement never reached the log. */
  async unmarkUnlogged(requestIds: string[]): Promise<number> {
    const [, count]: [unknown, number] = await this.dataSource.query(
      `UPDATE model_versions SET retired_at = NULL, retired_by = '{}', retire_logged_after = NULL
        WHERE retired_by && $1::uuid[] AND retire_ledger_index IS NULL`,
      [requestIds],
    );
    return count;
  }

  /** Models with a version retired (or marked so) for any of the requests. */
  async findModelsRetiredBy(requestIds: string[]): Promise<string[]> {
    const rows: { model_id: string }[] = await this.dataSource.query(
      `SELECT model_id FROM model_versions WHERE retired_by && $1::uuid[] GROUP BY model_id ORDER BY min(created_at), model_id`,
      [requestIds],
    );
    return rows.map((r) => r.model_id);
  }

  /** Versions whose retirement is logged and whose file may still be there (all models unless some are named). */
  async findFilesToDelete(modelIds?: string[]): Promise<{ modelId: string; version: number }[]> {
    const rows: { model_id: string; version: number }[] = await this.dataSource.query(
      `SELECT model_id, version FROM model_versions
        WHERE retired_at IS NOT NULL AND onnx_deleted_at IS NULL AND retire_ledger_index IS NOT NULL AND ($1::uuid[] IS NULL OR model_id = ANY($1::uuid[]))
        ORDER BY model_id, version`,
      [modelIds ?? null],
    );
    return rows.map((r) => ({ modelId: r.model_id, version: r.version }));
  }

  async markOnnxDeleted(modelId: string, version: number): Promise<void> {
    await this.dataSource.query(`UPDATE model_versions SET onnx_deleted_at = now() WHERE model_id = $1 AND version = $2 AND onnx_deleted_at IS NULL`, [
      modelId,
      version,
    ]);
  }

  /** A model whose unlearning failed for good: it serves nothing from now on (its error says why). */
  async markModelFailed(modelId: string, error: string): Promise<void> {
    await this.dataSource.query(`UPDATE models SET state = 'failed', error = $2, updated_at = now() WHERE id = $1`, [modelId, error.slice(0, 2000)]);
  }

  /** Lineages of the models' versions whose retirement is logged. */
  async findRetiredLineages(modelIds: string[]): Promise<VersionLineage[]> {
    return this.findLineages(`v.model_id = ANY($1::uuid[]) AND v.retire_ledger_index IS NOT NULL`, [modelIds]);
  }

  /**
   * Lineages of every version of any model, with these hyperparameters, that is not retired for good (a
   * version marked but not logged counts as live: its retirement may yet be undone). Checkpoint addresses
   * begin with the hyperparameters' hash, so no other version can share one.
   */
  async findLiveLineages(hyperparamsHashes: string[]): Promise<VersionLineage[]> {
    return this.findLineages(`v.retire_ledger_index IS NULL AND v.engine_state->>'hyperparamsHash' = ANY($1::text[])`, [hyperparamsHashes]);
  }

  private async findLineages(where: string, params: unknown[]): Promise<VersionLineage[]> {
    const rows: { model_id: string; version: number; hyperparams_hash: string; shards: ShardRecord[] }[] = await this.dataSource.query(
      `SELECT v.model_id, v.version, v.engine_state->>'hyperparamsHash' AS hyperparams_hash, v.engine_state->'shards' AS shards
         FROM model_versions v WHERE ${where} ORDER BY v.model_id, v.version`,
      params,
    );
    return rows.map((r) => ({ modelId: r.model_id, version: r.version, hyperparamsHash: r.hyperparams_hash, shards: r.shards }));
  }

  /** Of these addresses, those whose deletion is decided already. */
  async findDecidedCheckpoints(checkpoints: string[]): Promise<Set<string>> {
    const rows: { checkpoint: string }[] = await this.dataSource.query(`SELECT checkpoint FROM checkpoint_deletions WHERE checkpoint = ANY($1::text[])`, [
      checkpoints,
    ]);
    return new Set(rows.map((r) => r.checkpoint));
  }

  /** Records that these checkpoints are to be deleted (a checkpoint is decided once). */
  async decideCheckpointDeletions(deletions: { checkpoint: string; modelId: string }[], requestIds: string[], logSize: number): Promise<void> {
    if (deletions.length === 0) return;
    await this.dataSource.query(
      `INSERT INTO checkpoint_deletions (checkpoint, model_id, forget_request_ids, decided_after)
       SELECT c, m, $3::uuid[], $4 FROM unnest($1::text[], $2::uuid[]) AS u(c, m) ON CONFLICT (checkpoint) DO NOTHING`,
      [deletions.map((d) => d.checkpoint), deletions.map((d) => d.modelId), requestIds, String(logSize)],
    );
  }

  /** Decided deletions of the models' checkpoints whose CHECKPOINTS_DELETED entry is not recorded. */
  async findUnloggedDeletions(modelIds: string[]): Promise<UnloggedDeletion[]> {
    const rows: { checkpoint: string; model_id: string; forget_request_ids: string[]; decided_after: string }[] = await this.dataSource.query(
      `SELECT checkpoint, model_id, forget_request_ids::text[] AS forget_request_ids, decided_after FROM checkpoint_deletions
        WHERE model_id = ANY($1::uuid[]) AND ledger_index IS NULL ORDER BY model_id, checkpoint`,
      [modelIds],
    );
    return rows.map((r) => ({ checkpoint: r.checkpoint, modelId: r.model_id, forgetRequestIds: r.forget_request_ids, decidedAfter: Number(r.decided_after) }));
  }

  async setDeletionLedgerIndex(checkpoints: string[], index: number): Promise<void> {
    await this.dataSource.query(`UPDATE checkpoint_deletions SET ledger_index = $2 WHERE checkpoint = ANY($1::text[])`, [checkpoints, String(index)]);
  }

  /** Logged deletions whose file may still be there (all models unless some are named). */
  async findCheckpointsToDelete(modelIds?: string[]): Promise<string[]> {
    const rows: { checkpoint: string }[] = await this.dataSource.query(
      `SELECT checkpoint FROM checkpoint_deletions
        WHERE deleted_at IS NULL AND ledger_index IS NOT NULL AND ($1::uuid[] IS NULL OR model_id = ANY($1::uuid[])) ORDER BY checkpoint`,
      [modelIds ?? null],
    );
    return rows.map((r) => r.checkpoint);
  }

  async markCheckpointDeleted(checkpoint: string): Promise<void> {
    await this.dataSource.query(`UPDATE checkpoint_deletions SET deleted_at = now() WHERE checkpoint = $1 AND deleted_at IS NULL`, [checkpoint]);
  }

  /**
   * Forgets the deletion decisions of checkpoints made again (a restored forget request relearns the very slices it
   * deleted): they are live, and a later retirement decides about them afresh.
   */
  async undecideCheckpointDeletions(checkpoints: string[]): Promise<void> {
    await this.dataSource.query(`DELETE FROM checkpoint_deletions WHERE checkpoint = ANY($1::text[])`, [checkpoints]);
  }
}
