import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CheckpointsDeleted, LedgerEvent, VersionRetired } from '@lethe/events';
import { FoundEntry, Ledger, MAX_ENTRIES_PER_READ } from '@lethe/ledger';
import { findUnreferencedCheckpoints, checkpointsOf } from '@lethe/unlearning';
import type { ArtifactStore } from '@lethe/artifacts';
import { ARTIFACT_STORE } from '../config/config.provider';
import { tryWithDatasetLock } from '../models/dataset.lock';
import { checkpointStoreIn } from '../models/kept-methods';
import { ModelStore } from '../models/model.store';
import { RetirementStore, RetiringVersion, UnloggedDeletion, UnloggedRetirement } from '../models/retirement.store';

/** A model whose unlearning failed for good in a pass, and why. */
export interface FailedModel {
  modelId: string;
  error: string;
}

export interface RetirementOutcome {
  /** Versions retired by this pass (logged now or by the pass's UNLEARN_COMPLETED appends). */
  retiredVersions: { modelId: string; version: number }[];
  /** Checkpoints deleted by this pass. */
  deletedCheckpoints: number;
}

/**
 * Retiring what learned forgotten samples. Every version that learned a sample of a forget request is
 * retired when the pass publishes the version that forgets it: first marked in its row (from that moment
 * nothing serves it), then logged (VERSION_RETIRED, in the same append as the UNLEARN_COMPLETED that replaces
 * it; standalone for a model whose unlearning failed), then its ONNX file deleted. Then every checkpoint that
 * only retired versions reference (reference counts over the lineages of every live version with the same
 * hyperparameters) is decided, logged (CHECKPOINTS_DELETED) and deleted. Each step is recorded before the
 * next: a retried pass finds what is logged (nothing is logged twice), and a worker that starts finishes
 * the file deletions a crash interrupted. A pass runs this under its dataset's lock.
 */
@Injectable()
export class RetirementService {
  private readonly logger = new Logger('Retirement');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly store: RetirementStore,
    private readonly models: ModelStore,
    @Inject(ARTIFACT_STORE) private readonly artifacts: ArtifactStore,
  ) {}

  /**
   * For the ledger sink of a model's unlearning: marks the model's versions that learned the requests'
   * samples retired, and returns the VERSION_RETIRED entries the log does not hold yet, to append with the
   * UNLEARN_COMPLETED. `superseded`: more versions to retire with it (the approximate versions an exact one
   * supersedes: they did not learn the samples from a batch, but they carry traces of them).
   */
  async retireWithUnlearning(modelId: string, requestIds: string[], superseded: RetiringVersion[] = []): Promise<VersionRetired[]> {
    const learned = await this.store.findLearnedVersions(modelId, requestIds);
    const versions = [...learned, ...superseded.filter((s) => !learned.some((l) => l.version === s.version))];
    await this.store.markRetired(modelId, versions, (await this.ledger.getCheckpoint()).treeSize);
    const unlogged = await this.store.findUnloggedRetirements(modelId);
    if (unlogged.length === 0) return [];
    const logged = await this.findLoggedEntries('VERSION_RETIRED', modelId, Math.min(...unlogged.map((v) => v.loggedAfter)));
    return unlogged.filter((v) => !logged.some((e) => e.event.modelVersion === v.version)).map((v) => retiredEvent(modelId, v));
  }

  /**
   * The pass's retirement step, once every model that learned the requests' samples has its new version
   * published (or failed for good): models that failed are marked failed and their versions that learned
   * the samples retired; every retirement is logged (those the unlearning appends carried are found, the
   * others appended), the retired files deleted, then the checkpoints no live version needs.
   */
  async retireForPass(requestIds: string[], failed: FailedModel[]): Promise<RetirementOutcome> {
    const logSize = (await this.ledger.getCheckpoint()).treeSize;
    for (const { modelId, error } of failed) {
      // Versions first: a crash between the two leaves the model `ready`, and the retried pass fails it again.
      await this.store.markRetired(modelId, await this.store.findLearnedVersions(modelId, requestIds), logSize);
      await this.store.markModelFailed(modelId, error);
    }
    const modelIds = await this.store.findModelsRetiredBy(requestIds);
    const retiredVersions: RetirementOutcome['retiredVersions'] = [];
    for (const modelId of modelIds) {
      for (const version of await this.logRetirements(modelId, { appendMissing: true })) retiredVersions.push({ modelId, version });
    }
    const deletedFiles = await this.deleteRetiredFiles(modelIds);
    const deletedCheckpoints = await this.deleteUnneededCheckpoints(modelIds, requestIds);
    if (deletedFiles + deletedCheckpoints > 0) await this.reclaimSpace();
    if (retiredVersions.length > 0 || deletedCheckpoints > 0) {
      this.logger.log(`${retiredVersions.length} model version(s) retired, ${deletedCheckpoints} checkpoint(s) deleted`);
    }
    return { retiredVersions, deletedCheckpoints };
  }

  /**
   * A pass whose requests fail: retirements its appends logged stand (their files go), versions it marked
   * whose retirement never reached the log are served again (the requests failed; nothing was forgotten).
   */
  async releaseUnlogged(requestIds: string[]): Promise<void> {
    const modelIds = await this.store.findModelsRetiredBy(requestIds);
    for (const modelId of modelIds) await this.logRetirements(modelId, { appendMissing: false });
    const released = await this.store.unmarkUnlogged(requestIds);
    if (released > 0) this.logger.warn(`${released} model version(s) marked for retirement are served again: their forget requests failed`);
    if ((await this.deleteRetiredFiles(modelIds)) > 0) await this.reclaimSpace();
  }

  /**
   * At a worker's start: retires the versions an unlearning left live (a database from before retirement
   * has them; each dataset only while no pass or training holds it), then deletes the files whose
   * retirement or deletion is logged but a crash left on disk.
   */
  async finishInterrupted(): Promise<{ retired: number; files: number; checkpoints: number }> {
    let retired = 0;
    const superseded = await this.store.findSuperseded();
    for (const datasetId of new Set(superseded.map((s) => s.datasetId))) {
      const ofDataset = superseded.filter((s) => s.datasetId === datasetId);
      const done = await tryWithDatasetLock(this.dataSource, datasetId, () => this.retireSuperseded(ofDataset));
      retired += done ?? 0;
    }
    const files = await this.deleteRetiredFiles();
    const checkpoints = await this.deleteLoggedCheckpoints();
    if (retired > 0 || files > 0 || checkpoints > 0) await this.reclaimSpace();
    if (retired > 0 || files > 0 || checkpoints > 0)
      this.logger.log(`at start: ${retired} version(s) an earlier unlearning left live retired; deleted ${files} retired model file(s), ${checkpoints} checkpoint(s)`);
    return { retired, files, checkpoints };
  }

  /** Retires superseded versions (of one dataset, under its lock) as a pass would: marked, logged, files and checkpoints deleted. */
  private async retireSuperseded(versions: { modelId: string; version: RetiringVersion }[]): Promise<number> {
    const logSize = (await this.ledger.getCheckpoint()).treeSize;
    const modelIds = [...new Set(versions.map((v) => v.modelId))];
    let retired = 0;
    for (const modelId of modelIds) {
      await this.store.markRetired(modelId, versions.filter((v) => v.modelId === modelId).map((v) => v.version), logSize);
      retired += (await this.logRetirements(modelId, { appendMissing: true })).length;
    }
    await this.deleteRetiredFiles(modelIds);
    await this.deleteUnneededCheckpoints(modelIds, [...new Set(versions.flatMap((v) => v.version.forgetRequestIds))]);
    return retired;
  }

  /**
   * Records the entry of each of the model's marked versions whose VERSION_RETIRED is in the log, and with
   * `appendMissing` appends the others; returns the versions that got their entry now.
   */
  private async logRetirements(modelId: string, options: { appendMissing: boolean }): Promise<number[]> {
    const unlogged = await this.store.findUnloggedRetirements(modelId);
    if (unlogged.length === 0) return [];
    const logged = await this.findLoggedEntries('VERSION_RETIRED', modelId, Math.min(...unlogged.map((v) => v.loggedAfter)));
    const missing: UnloggedRetirement[] = [];
    for (const version of unlogged) {
      const entry = logged.find((e) => e.event.modelVersion === version.version);
      if (entry) await this.store.setRetireLedgerIndex(modelId, version.version, entry.index);
      else missing.push(version);
    }
    if (options.appendMissing && missing.length > 0) {
      const entries = await this.ledger.append(missing.map((v) => retiredEvent(modelId, v)));
      for (const [i, version] of missing.entries()) await this.store.setRetireLedgerIndex(modelId, version.version, entries[i].index);
    }
    return unlogged.filter((v) => options.appendMissing || !missing.includes(v)).map((v) => v.version);
  }

  /**
   * After deletions: the artifact store gives their space back (PostgreSQL: VACUUM of its chunks, so that the
   * deleted bytes do not stay as dead rows). The deletions are durable already: a failure here is logged.
   */
  private async reclaimSpace(): Promise<void> {
    await this.artifacts.reclaim().catch((e: unknown) => this.logger.warn(`reclaiming the deleted artifacts' space in ${this.artifacts.description}: ${(e as Error).message}`));
  }

  /** Deletes the ONNX files whose retirement is logged (of these models, or all); returns how many were there. */
  private async deleteRetiredFiles(modelIds?: string[]): Promise<number> {
    let deleted = 0;
    for (const { modelId, version } of await this.store.findFilesToDelete(modelIds)) {
      if (await this.models.deleteOnnx(modelId, version)) deleted++;
      await this.store.markOnnxDeleted(modelId, version);
    }
    return deleted;
  }

  /**
   * Reference counts over lineages: the checkpoints that the models' retired versions reference and no live
   * version does are decided (each attributed to the first model whose retired version had it), logged per
   * model (CHECKPOINTS_DELETED) and deleted. Returns how many this call deleted.
   */
  private async deleteUnneededCheckpoints(modelIds: string[], requestIds: string[]): Promise<number> {
    if (modelIds.length === 0) return 0;
    const retired = await this.store.findRetiredLineages(modelIds);
    if (retired.length > 0) {
      const live = await this.store.findLiveLineages([...new Set(retired.map((r) => r.hyperparamsHash))]);
      const unreferenced = findUnreferencedCheckpoints(
        retired.map((r) => r.shards),
        live.map((l) => l.shards),
      );
      const decided = await this.store.findDecidedCheckpoints(unreferenced);
      const order = [...retired].sort((a, b) => modelIds.indexOf(a.modelId) - modelIds.indexOf(b.modelId) || a.version - b.version);
      const owner = new Map<string, string>();
      for (const lineage of order) for (const checkpoint of checkpointsOf(lineage.shards)) if (!owner.has(checkpoint)) owner.set(checkpoint, lineage.modelId);
      const fresh = unreferenced.filter((c) => !decided.has(c)).map((checkpoint) => ({ checkpoint, modelId: owner.get(checkpoint)! }));
      await this.store.decideCheckpointDeletions(fresh, requestIds, (await this.ledger.getCheckpoint()).treeSize);
    }
    await this.logCheckpointDeletions(modelIds);
    return this.deleteLoggedCheckpoints(modelIds);
  }

  /** One CHECKPOINTS_DELETED per model and set of requests for the decided deletions the log does not hold yet. */
  private async logCheckpointDeletions(modelIds: string[]): Promise<void> {
    const groups = new Map<string, UnloggedDeletion[]>();
    for (const d of await this.store.findUnloggedDeletions(modelIds)) {
      const key = `${d.modelId}|${d.forgetRequestIds.join(',')}`;
      groups.set(key, [...(groups.get(key) ?? []), d]);
    }
    for (const group of groups.values()) {
      const { modelId, forgetRequestIds } = group[0];
      const logged = await this.findLoggedEntries('CHECKPOINTS_DELETED', modelId, Math.min(...group.map((d) => d.decidedAfter)));
      const missing: string[] = [];
      for (const { checkpoint } of group) {
        const entry = logged.find((e) => e.event.checkpoints.includes(checkpoint));
        if (entry) await this.store.setDeletionLedgerIndex([checkpoint], entry.index);
        else missing.push(checkpoint);
      }
      if (missing.length === 0) continue;
      const event: CheckpointsDeleted = { type: 'CHECKPOINTS_DELETED', version: 1, modelId, checkpoints: missing.sort(), forgetRequestIds };
      const entry = await this.ledger.appendOne(event);
      await this.store.setDeletionLedgerIndex(missing, entry.index);
    }
  }

  /** Deletes the checkpoints whose deletion is logged (of these models, or all); returns how many were there. */
  private async deleteLoggedCheckpoints(modelIds?: string[]): Promise<number> {
    const store = checkpointStoreIn(this.artifacts);
    let deleted = 0;
    for (const checkpoint of await this.store.findCheckpointsToDelete(modelIds)) {
      if (await store.delete(checkpoint)) deleted++;
      await this.store.markCheckpointDeleted(checkpoint);
    }
    return deleted;
  }

  /**
   * The model's entries of a type from index `from` on (a step recorded the log's size before appending, so
   * its entry, if written, is there).
   */
  private async findLoggedEntries<T extends 'VERSION_RETIRED' | 'CHECKPOINTS_DELETED'>(
    type: T,
    modelId: string,
    from: number,
  ): Promise<FoundEntry<Extract<LedgerEvent, { type: T }>>[]> {
    const found: FoundEntry<Extract<LedgerEvent, { type: T }>>[] = [];
    for (let afterIndex = from - 1; ; ) {
      const page = await this.ledger.findEntries<'VERSION_RETIRED' | 'CHECKPOINTS_DELETED'>({
        type,
        fields: { modelId },
        ...(afterIndex >= 0 ? { afterIndex } : {}),
        limit: MAX_ENTRIES_PER_READ,
      });
      found.push(...(page as FoundEntry<Extract<LedgerEvent, { type: T }>>[]));
      if (page.length < MAX_ENTRIES_PER_READ) return found;
      afterIndex = page[page.length - 1].index;
    }
  }
}

function retiredEvent(modelId: string, version: RetiringVersion): VersionRetired {
  return {
    type: 'VERSION_RETIRED',
    version: 1,
    modelId,
    modelVersion: version.version,
    onnxSha256: version.onnxSha256,
    forgetRequestIds: version.forgetRequestIds,
  };
}
