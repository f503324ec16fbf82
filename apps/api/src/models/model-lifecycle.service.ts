import { ConflictException, GoneException, Injectable, NotFoundException } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { Ledger } from '@lethe/ledger';
import { ModelEntity, ModelVersionEntity, isHeld } from './model.entity';
import { ReleaseResponseDto, RollbackDto, RollbackResponseDto } from './model-lifecycle.dto';

/**
 * What changes which version of a model is served, short of learning or forgetting: a rollback to an earlier live
 * version (MODEL_ROLLED_BACK) and the release of a version the catastrophic-forgetting guard held
 * (VERSION_RELEASED). Each holds its model's row (or version's row) locked from the check to the update, with the
 * entry appended in between: two at once are serialized, and nothing is logged for a refused one.
 */
@Injectable()
export class ModelLifecycleService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
  ) {}

  /**
   * Serves `body.version` again instead of the current version. Refused (409) when the version is retired (it
   * learned samples forgotten since: the forget requests are named), when forget requests still waiting name
   * samples it learned, when it is held, or when it is not earlier than the current one; 404 for an unknown one.
   */
  async rollback(modelId: string, body: RollbackDto): Promise<RollbackResponseDto> {
    return this.dataSource.transaction(async (manager) => {
      const model = await manager.getRepository(ModelEntity).findOne({ where: { id: modelId }, lock: { mode: 'pessimistic_write' } });
      if (!model) throw new NotFoundException(`no model with id ${modelId}`);
      const target = await manager.getRepository(ModelVersionEntity).findOneBy({ modelId, version: body.version });
      if (!target) throw new NotFoundException(`version: model ${modelId} has no version ${body.version}`);
      if (model.state !== 'ready') throw new ConflictException(`model ${modelId} is ${model.state}: only a ready model rolls back`);
      const [{ latest }]: { latest: number }[] = await manager.query(`SELECT max(version)::int AS latest FROM model_versions WHERE model_id = $1`, [modelId]);
      const current = model.currentVersion ?? latest;
      if (target.retiredAt !== null)
        throw new ConflictException(
          `version: model ${modelId} version ${target.version} learned samples of forget request(s) ${target.retiredBy.join(', ')}, forgotten since: ` +
            'it is retired, and a rollback never brings forgotten data back',
        );
      const pending = await findPendingForgets(manager, modelId, target.version);
      if (pending.length > 0)
        throw new ConflictException(
          `version: model ${modelId} version ${target.version} learned samples of forget request(s) ${pending.join(', ')}, which are being forgotten: ` +
            'a rollback never brings forgotten data back',
        );
      if (isHeld(target)) throw new ConflictException(`version: model ${modelId} version ${target.version} is held by its guard; release it instead`);
      if (target.version >= current)
        throw new ConflictException(`version: ${target.version} is not earlier than the version model ${modelId} serves now (${current})`);
      const entry = await this.ledger.appendOne({ type: 'MODEL_ROLLED_BACK', version: 1, modelId, fromVersion: current, toVersion: target.version });
      await manager.query(`UPDATE models SET current_version = $2, updated_at = now() WHERE id = $1`, [modelId, target.version]);
      return { modelId, fromVersion: current, currentVersion: target.version, ledgerIndex: entry.index };
    });
  }

  /** Releases a held version (VERSION_RELEASED): from now on it is served without being asked for by number. */
  async release(modelId: string, version: number): Promise<ReleaseResponseDto> {
    return this.dataSource.transaction(async (manager) => {
      const model = await manager.getRepository(ModelEntity).findOneBy({ id: modelId });
      if (!model) throw new NotFoundException(`no model with id ${modelId}`);
      const row = await manager.getRepository(ModelVersionEntity).findOne({ where: { modelId, version }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw new NotFoundException(`model ${modelId} has no version ${version}`);
      if (row.retiredAt !== null)
        throw new GoneException(`model ${modelId} version ${version} was retired by forget request(s) ${row.retiredBy.join(', ')}: there is nothing to release`);
      if (!isHeld(row))
        throw new ConflictException(
          row.releasedLedgerIndex !== null
            ? `model ${modelId} version ${version} was released already (entry ${row.releasedLedgerIndex})`
            : `model ${modelId} version ${version} is not held`,
        );
      const entry = await this.ledger.appendOne({ type: 'VERSION_RELEASED', version: 1, modelId, modelVersion: version });
      await manager.query(`UPDATE model_versions SET released_ledger_index = $3 WHERE model_id = $1 AND version = $2`, [modelId, version, String(entry.index)]);
      return { modelId, version, ledgerIndex: entry.index };
    });
  }
}

/** Forget requests not completed yet (received, unlearning, or failed and awaiting a retry) that name samples the version learned. */
async function findPendingForgets(manager: EntityManager, modelId: string, version: number): Promise<string[]> {
  const rows: { id: string }[] = await manager.query(
    `SELECT DISTINCT r.id, r.created_at FROM forget_requests r
       JOIN forget_request_samples f ON f.request_id = r.id
       JOIN sample_commitments s ON s.commitment = f.commitment
       JOIN model_version_samples m ON m.sample_id = s.id AND m.model_id = $1 AND m.version = $2
      WHERE r.state IN ('received', 'unlearning', 'failed') ORDER BY r.created_at, r.id`,
    [modelId, version],
  );
  return rows.map((r) => r.id);
}
