import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { UnlearnGuarantee } from '@lethe/events';
import type { ArtifactStore } from '@lethe/artifacts';
import { SampleVault } from '@lethe/ledger';
import {
  batchKey,
  compactFeatures,
  JsonValue,
  listBatchMembers,
  Sample,
  ShardRecord,
  TrainedModel,
  TrainingConfig,
} from '@lethe/unlearning';
import type { KeyStore } from '@lethe/keystore';
import { ARTIFACT_STORE, KEY_STORE } from '../config/config.provider';
import { HeldFigures, ModelEntity, ModelVersionEntity } from './model.entity';
import { NoiseSeedVault, putNoiseSeeds, takeNoiseSeeds } from './noise-seeds';
import type { RetiringVersion } from './retirement.store';

/** What a version row keeps for the engine besides the columns (see TrainedModel). */
interface EngineState {
  config: TrainingConfig;
  hyperparamsHash: string;
  shards: ShardRecord[];
  members: number[];
  manifest: { [key: string]: JsonValue };
}

export interface VersionRecord {
  /** The MODEL_PUBLISHED entry. */
  ledgerIndex: number;
  /** The UNLEARN_COMPLETED entry, for a version made by forgetting. */
  unlearnLedgerIndex?: number;
  reflectsForgetRequests?: string[];
  evidence?: { [key: string]: JsonValue };
  /** The BATCH_LEARNED entries of the slices this version (re)trained, by batchKey(shard, slice). */
  batches?: ReadonlyMap<string, number>;
  /**
   * For a version made by forgetting: the version it was made from. Its rows in model_version_samples are then
   * written after it is served (recordVersionSamples), not in this save: for a large model they are most of
   * the time saving takes, and nothing needs them before the next pass, which writes any a crash left out
   * (recordVersionSamples). The members of the batches it retrained too (recordBatchMembers).
   */
  madeFrom?: { version: number };
  /** The UNLEARN_COMPLETED's guarantee. */
  guarantee?: UnlearnGuarantee;
  /** The catastrophic-forgetting guard held it: its UNLEARN_HELD figures and entry. */
  held?: { figures: HeldFigures; ledgerIndex: number };
}

/** A version published by unlearning: its MODEL_PUBLISHED and UNLEARN_COMPLETED entries and evidence. */
export interface UnlearnedVersion {
  modelId: string;
  version: number;
  onnxSha256: string;
  ledgerIndex: number;
  unlearnLedgerIndex: number;
  /** The EVIDENCE_RECORDED entry, for a version published before its evidence (null until it is recorded). */
  evidenceLedgerIndex: number | null;
  evidence: { [key: string]: JsonValue };
  /** Absent for versions unlearned before guarantees were recorded (exact). */
  guarantee?: UnlearnGuarantee;
}

/**
 * Published model versions: ONNX files in the artifact store (addressed by their SHA-256), rows in
 * model_versions, the samples each version learned (model_version_samples), enough to give the engine the
 * TrainedModel back in any worker process, and the ordered commitments under the batch root of each slice
 * it trained (batch_commitments), which a receipt proves a sample's learning with.
 */
@Injectable()
export class ModelStore {
  /** The models' noise seeds, sealed: a version's engine_state holds its config and manifest without them. */
  readonly noiseSeeds: NoiseSeedVault;

  constructor(
    private readonly dataSource: DataSource,
    private readonly vault: SampleVault,
    @Inject(ARTIFACT_STORE) private readonly artifacts: ArtifactStore,
    @Inject(KEY_STORE) keyStore: KeyStore,
  ) {
    this.noiseSeeds = new NoiseSeedVault(dataSource, keyStore);
  }

  /** ONNX files whose writing started before their version is saved (putOnnxAhead), by address, oldest first. */
  private readonly onnxAhead = new Map<string, { put: Promise<boolean>; startedAt: number }>();

  /**
   * Starts putting a version's ONNX file in the artifact store as soon as the engine has built it (the
   * engine's onExported), so that the write runs beside the rest of the version's publication (its last
   * checkpoint writes, its ledger append) instead of after it; `save` then waits for this write instead of
   * writing the file itself (and writes it when this one failed, or is older than ONNX_AHEAD_MAX_AGE_MS: the
   * pass that started it may have stopped long ago). The file is in the store before its version's row
   * either way: a version is served only once its file is durable. What a stopped pass leaves is what its
   * checkpoint writes leave (the same weights), and its retry writes the same bytes to the same address.
   */
  putOnnxAhead(onnxSha256: string, onnx: Uint8Array): void {
    const put = this.artifacts.put({ kind: 'onnx', address: onnxSha256 }, onnx).then(
      () => true,
      () => false, // save writes it again, and reports that error if it fails again
    );
    this.onnxAhead.delete(onnxSha256);
    this.onnxAhead.set(onnxSha256, { put, startedAt: Date.now() });
    for (const address of this.onnxAhead.keys()) {
      if (this.onnxAhead.size <= ONNX_AHEAD_KEPT) break;
      this.onnxAhead.delete(address);
    }
  }

  /** Puts the version's ONNX file in the artifact store, unless putOnnxAhead has just put it: then waits for that write. */
  private async putOnnx(model: TrainedModel): Promise<void> {
    const ahead = this.onnxAhead.get(model.onnxSha256);
    this.onnxAhead.delete(model.onnxSha256);
    if (ahead && Date.now() - ahead.startedAt <= ONNX_AHEAD_MAX_AGE_MS && (await ahead.put)) return;
    await this.artifacts.put({ kind: 'onnx', address: model.onnxSha256 }, model.onnx);
  }

  /**
   * Puts the ONNX file in the artifact store (or waits for putOnnxAhead's write of it), then writes the row, its samples and its batches' members in one transaction;
   * for a version made by forgetting (`madeFrom`), the row only, with the batches whose members are owed
   * (batches_pending): recordVersionSamples and recordBatchMembers write the rest after it is served. `lap`,
   * when given, is told each step as it ends (a pass's clock: where saving goes).
   */
  async save(model: TrainedModel, record: VersionRecord, lap: (step: string) => void = () => undefined): Promise<void> {
    const batches = record.batches ?? new Map<string, number>();
    await this.putOnnx(model);
    lap('save.onnx');
    // Without the noise seeds (models.noise_seeds keeps them sealed; loadTrainedModel puts them back).
    const engineState: EngineState = {
      config: takeNoiseSeeds(model.config).config,
      hyperparamsHash: model.hyperparamsHash,
      shards: model.shards,
      members: model.members,
      manifest: withoutManifestSeeds(model.manifest),
    };
    const deferred = record.madeFrom !== undefined && batches.size > 0;
    const insertRow = `INSERT INTO model_versions (model_id, version, onnx_sha256, manifest_hash, metrics, ledger_index, unlearn_ledger_index, reflects_forget_requests, evidence, engine_state, guarantee, held, held_ledger_index, samples_pending, batches_pending)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::uuid[], $9, $10, $11, $12, $13, $14, $15)`;
    const params = [
      model.modelId,
      model.version,
      model.onnxSha256,
      model.manifestHash,
      JSON.stringify(model.metrics),
      String(record.ledgerIndex),
      record.unlearnLedgerIndex === undefined ? null : String(record.unlearnLedgerIndex),
      record.reflectsForgetRequests ?? [],
      record.evidence === undefined ? null : JSON.stringify(record.evidence),
      JSON.stringify(engineState),
      record.guarantee === undefined ? null : JSON.stringify(record.guarantee),
      record.held === undefined ? null : JSON.stringify(record.held.figures),
      record.held === undefined ? null : String(record.held.ledgerIndex),
      record.madeFrom !== undefined,
      deferred ? JSON.stringify(Object.fromEntries(batches)) : null,
    ];
    // A new version is served: a rollback holds until then.
    const releaseRollback = `UPDATE models SET current_version = NULL WHERE id = $1 AND current_version IS NOT NULL`;
    if (record.madeFrom) {
      // The row alone (its samples and batch members come after it is served): one statement, its own
      // transaction, instead of BEGIN, two statements and COMMIT, each a round trip on the way to serving it.
      await this.dataSource.query(`WITH inserted AS (${insertRow} RETURNING 1) ${releaseRollback}`, params);
      lap('save.row');
      lap('save.commit');
      return;
    }
    await this.dataSource.transaction(async (manager) => {
      await manager.query(insertRow, params);
      await manager.query(releaseRollback, [model.modelId]);
      lap('save.row');
      const [{ n }]: { n: number }[] = await manager.query(
        `WITH inserted AS (
           INSERT INTO model_version_samples (model_id, version, sample_id, batch)
           SELECT $1, $2, c.id, u.batch FROM unnest($3::text[], $4::integer[]) AS u(commitment, batch)
             JOIN sample_commitments c ON c.commitment = u.commitment
           RETURNING 1)
         SELECT count(*)::int AS n FROM inserted`,
        [model.modelId, model.version, model.samples.map((s) => s.commitment), model.samples.map((s) => s.batch ?? 0)],
      );
      checkSampleRows(model.modelId, model.version, n, model.samples.length);
      lap('save.samples');
      await insertBatchMembers(manager, model, batches);
      lap('save.batches');
    });
    lap('save.commit');
  }

  /**
   * The members of the batches a version saved with `madeFrom` retrained (batch_commitments, which receipts
   * prove learning with), written after it is served: from `kept` when it is that version (the pass that
   * published it), else from the version loaded from the store (a pass, a worker or a receipt that finds
   * them owed after a crash; its sample rows are written first when they are missing too). Nothing when they
   * are written already; false then. The version's row is locked while they are written, so two writers
   * never both write them.
   */
  async recordBatchMembers(modelId: string, version: number, kept?: TrainedModel): Promise<boolean> {
    let model = kept?.modelId === modelId && kept.version === version ? kept : undefined;
    if (!model) {
      const row = await this.findVersion(modelId, version);
      if (!row) throw new Error(`model ${modelId} has no version ${version}`);
      if (row.batchesPending === null) return false;
      if (row.samplesPending) await this.recordVersionSamples(modelId, version);
      model = await this.loadTrainedModel(row);
    }
    const from = model;
    return this.dataSource.transaction(async (manager) => {
      const [row]: { pending: { [batch: string]: number } | null }[] = await manager.query(
        `SELECT batches_pending AS pending FROM model_versions WHERE model_id = $1 AND version = $2 FOR UPDATE`,
        [modelId, version],
      );
      if (!row) throw new Error(`model ${modelId} has no version ${version}`);
      if (row.pending === null) return false;
      await insertBatchMembers(manager, from, new Map(Object.entries(row.pending)));
      await manager.query(`UPDATE model_versions SET batches_pending = NULL WHERE model_id = $1 AND version = $2`, [modelId, version]);
      return true;
    });
  }

  /**
   * For readers of batch members (receipts): waits up to `waitMs` for the dataset's versions whose members are
   * owed to get them (their pass writes them right after serving the version), then writes those still owed
   * (a pass stopped before it did); returns how many this call wrote.
   */
  async settleBatchMembers(datasetId: string, waitMs = PENDING_BATCHES_WAIT_MS): Promise<number> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const owed = await this.findOwedBatchMembers(datasetId);
      if (owed.length === 0) return 0;
      if (Date.now() >= deadline) {
        let written = 0;
        for (const v of owed) if (await this.recordBatchMembers(v.modelId, v.version)) written++;
        return written;
      }
      await new Promise((resolve) => setTimeout(resolve, PENDING_BATCHES_POLL_MS));
    }
  }

  /** The versions (of the dataset's models, or of every model) whose batch members are owed, in version order. */
  async findOwedBatchMembers(datasetId?: string): Promise<{ datasetId: string; modelId: string; version: number }[]> {
    const rows: { dataset_id: string; model_id: string; version: number }[] = await this.dataSource.query(
      `SELECT m.dataset_id, v.model_id, v.version FROM model_versions v JOIN models m ON m.id = v.model_id
        WHERE v.batches_pending IS NOT NULL AND ($1::uuid IS NULL OR m.dataset_id = $1) ORDER BY v.model_id, v.version`,
      [datasetId ?? null],
    );
    return rows.map((r) => ({ datasetId: r.dataset_id, modelId: r.model_id, version: r.version }));
  }

  /**
   * The rows in model_version_samples of a version saved with `madeFrom` (made by forgetting): those of the
   * version it was made from, less the samples of the forget requests it reflects and that one does not,
   * copied inside PostgreSQL (tens of thousands of commitments are not sent and looked up one by one), and
   * checked against the version's sample count. Nothing when they are not owed (its row says: written
   * already, or saved with its samples); false then.
   */
  async recordVersionSamples(modelId: string, version: number): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const [row]: { reflects: string[]; state: { shards: { sampleCount: number }[] }; pending: boolean }[] = await manager.query(
        `SELECT reflects_forget_requests AS reflects, engine_state AS state, samples_pending AS pending
           FROM model_versions WHERE model_id = $1 AND version = $2 FOR UPDATE`,
        [modelId, version],
      );
      if (!row) throw new Error(`model ${modelId} has no version ${version}`);
      if (!row.pending) return false;
      const [previous]: { reflects: string[] }[] = await manager.query(
        `SELECT reflects_forget_requests AS reflects FROM model_versions WHERE model_id = $1 AND version = $2`,
        [modelId, version - 1],
      );
      if (!previous) throw new Error(`model ${modelId} version ${version}: no version ${version - 1} to take its samples from`);
      const forgetRequests = row.reflects.filter((id) => !previous.reflects.includes(id));
      const [{ n }]: { n: number }[] = await manager.query(
        `WITH inserted AS (
           INSERT INTO model_version_samples (model_id, version, sample_id, batch)
           SELECT m.model_id, $2, m.sample_id, m.batch FROM model_version_samples m
            WHERE m.model_id = $1 AND m.version = $3
              AND NOT EXISTS (SELECT 1 FROM forget_request_samples f JOIN sample_commitments s ON s.commitment = f.commitment
                               WHERE f.request_id = ANY($4::uuid[]) AND s.id = m.sample_id)
           RETURNING 1)
         SELECT count(*)::int AS n FROM inserted`,
        [modelId, version, version - 1, forgetRequests],
      );
      checkSampleRows(modelId, version, n, row.state.shards.reduce((sum, shard) => sum + shard.sampleCount, 0));
      await manager.query(`UPDATE model_versions SET samples_pending = false WHERE model_id = $1 AND version = $2`, [modelId, version]);
      return true;
    });
  }

  /**
   * Deletes a version's ONNX file for good (durably, see the artifact store); false when it was gone already,
   * or when another version whose file is not deleted has the very same bytes (its address): that version's
   * deletion takes the file then.
   */
  async deleteOnnx(modelId: string, version: number): Promise<boolean> {
    const rows: { onnx_sha256: string; shared: boolean }[] = await this.dataSource.query(
      `SELECT v.onnx_sha256, EXISTS (SELECT 1 FROM model_versions o WHERE o.onnx_sha256 = v.onnx_sha256 AND o.onnx_deleted_at IS NULL
                                       AND (o.model_id, o.version) <> (v.model_id, v.version)) AS shared
         FROM model_versions v WHERE v.model_id = $1 AND v.version = $2`,
      [modelId, version],
    );
    if (rows.length === 0 || rows[0].shared) return false;
    return this.artifacts.delete({ kind: 'onnx', address: rows[0].onnx_sha256 });
  }

  async findVersion(modelId: string, version: number): Promise<ModelVersionEntity | null> {
    return this.dataSource.getRepository(ModelVersionEntity).findOneBy({ modelId, version });
  }

  /** The version served without a version number: the one a rollback made current, else the latest. */
  async findCurrent(model: Pick<ModelEntity, 'id' | 'currentVersion'>): Promise<ModelVersionEntity | null> {
    return model.currentVersion === null ? this.findLatest(model.id) : this.findVersion(model.id, model.currentVersion);
  }

    async findLatest(modelId: string): Promise<ModelVersionEntity | null> {
    return this.dataSource.getRepository(ModelVersionEntity).findOne({ where: { modelId }, order: { version: 'DESC' } });
  }

  /**
   * The versions each model's unlearning of the forget request published: the first version that reflects it, and
   * when that one is approximate, the first exact (or certified) one after it, which the same pass published.
   */
  async findUnlearnedBy(requestId: string): Promise<UnlearnedVersion[]> {
    const rows: {
      model_id: string;
      version: number;
      onnx_sha256: string;
      ledger_index: string;
      unlearn_ledger_index: string;
      evidence_ledger_index: string | null;
      evidence: { [key: string]: JsonValue };
      guarantee: UnlearnGuarantee | null;
    }[] = await this.dataSource.query(
      `SELECT model_id, version, onnx_sha256, ledger_index, unlearn_ledger_index, evidence_ledger_index, evidence, guarantee FROM model_versions
          WHERE $1 = ANY(reflects_forget_requests) AND unlearn_ledger_index IS NOT NULL ORDER BY model_id, version`,
      [requestId],
    );
    const versions: UnlearnedVersion[] = [];
    rows.forEach((r, i) => {
      const first = i === 0 || rows[i - 1].model_id !== r.model_id;
      const previous = versions[versions.length - 1];
      const followsApproximate = !first && previous?.modelId === r.model_id && previous.guarantee?.kind === 'approximate' && r.guarantee?.kind !== 'approximate';
      if (!first && !followsApproximate) return;
      const version: UnlearnedVersion = {
        modelId: r.model_id,
        version: r.version,
        onnxSha256: r.onnx_sha256,
        ledgerIndex: Number(r.ledger_index),
        unlearnLedgerIndex: Number(r.unlearn_ledger_index),
        evidenceLedgerIndex: r.evidence_ledger_index === null ? null : Number(r.evidence_ledger_index),
        evidence: r.evidence,
      };
      if (r.guarantee) version.guarantee = r.guarantee;
      versions.push(version);
    });
    return versions;
  }

  /** The latest version of a model before `version` that approximate unlearning did not make. */
  async findLastNotApproximate(modelId: string, version: number): Promise<ModelVersionEntity | null> {
    const [row] = await this.dataSource.getRepository(ModelVersionEntity).query(
      `SELECT version FROM model_versions WHERE model_id = $1 AND version < $2 AND (guarantee IS NULL OR guarantee->>'kind' <> 'approximate')
        ORDER BY version DESC LIMIT 1`,
      [modelId, version],
    );
    return row ? this.findVersion(modelId, row.version) : null;
  }

  /**
   * The model's approximate versions after `version` whose retirement is not logged, as retirements for the
   * given requests (those each reflects): an exact version that supersedes them retires them.
   */
  async findApproximateAfter(modelId: string, version: number, requestIds: string[]): Promise<RetiringVersion[]> {
    const rows: { version: number; onnx_sha256: string; reflects: string[] }[] = await this.dataSource.query(
      `SELECT version, onnx_sha256, reflects_forget_requests::text[] AS reflects FROM model_versions
        WHERE model_id = $1 AND version > $2 AND guarantee->>'kind' = 'approximate' AND retire_ledger_index IS NULL ORDER BY version`,
      [modelId, version],
    );
    return rows
      .map((r) => ({ version: r.version, onnxSha256: r.onnx_sha256, forgetRequestIds: requestIds.filter((id) => r.reflects.includes(id)) }))
      .filter((r) => r.forgetRequestIds.length > 0);
  }

  /** The models of a dataset trained by `method` that have not failed. */
  async findModelIdsOfMethod(datasetId: string, method: string): Promise<string[]> {
    const rows: { id: string }[] = await this.dataSource.query(
      `SELECT id FROM models WHERE dataset_id = $1 AND engine_config->>'method' = $2 AND state <> 'failed' ORDER BY created_at, id`,
      [datasetId, method],
    );
    return rows.map((r) => r.id);
  }

  /** The evidence of a version published before it, once its EVIDENCE_RECORDED entry is durable. */
  async recordEvidence(modelId: string, version: number, evidence: { [key: string]: JsonValue }, ledgerIndex: number): Promise<void> {
    await this.dataSource.query(`UPDATE model_versions SET evidence = $3, evidence_ledger_index = $4 WHERE model_id = $1 AND version = $2`, [
      modelId,
      version,
      JSON.stringify(evidence),
      String(ledgerIndex),
    ]);
  }

  /** A version the guard held once its evidence was measured (after it was served): its UNLEARN_HELD figures and entry. */
  async recordHeld(modelId: string, version: number, figures: HeldFigures, ledgerIndex: number): Promise<void> {
    await this.dataSource.query(`UPDATE model_versions SET held = $3, held_ledger_index = $4 WHERE model_id = $1 AND version = $2 AND held_ledger_index IS NULL`, [
      modelId,
      version,
      JSON.stringify(figures),
      String(ledgerIndex),
    ]);
  }

  /** A version's ONNX file from the artifact store, checked against its SHA-256 (the store's CORRUPT otherwise). */
  async readOnnx(modelId: string, version: number): Promise<Buffer> {
    const row = await this.findVersion(modelId, version);
    if (!row) throw new Error(`model ${modelId} has no version ${version}`);
    const bytes = await this.artifacts.get({ kind: 'onnx', address: row.onnxSha256 });
    if (bytes === undefined) {
      // ENOENT, as a missing file's: a reader that finds it gone checks whether the version was retired meanwhile.
      const missing = new Error(`model ${modelId} version ${version}: its ONNX file ${row.onnxSha256} is not in the artifact store (${this.artifacts.description})`);
      throw Object.assign(missing, { code: 'ENOENT' });
    }
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * The samples with these commitments (a shard task's), in the order given, opened from the vault; every one
   * must still be there (a pass erases only after it published, and no training runs meanwhile).
   */
  async loadSamples(commitments: string[]): Promise<Sample[]> {
    const ids: { id: string }[] = await this.dataSource.query(`SELECT id FROM sample_commitments WHERE commitment = ANY($1::text[])`, [commitments]);
    const opened = await this.vault.readSamples({ sampleIds: ids.map((r) => r.id) }, { float32: true });
    const byCommitment = new Map(opened.map((s) => [s.commitment, s]));
    const missing = commitments.filter((c) => !byCommitment.has(c));
    if (missing.length > 0) throw new Error(`${missing.length} of the ${commitments.length} samples to train on are not stored (or were erased), e.g. ${missing[0]}`);
    return compactFeatures(
      commitments.map((c) => {
        const s = byCommitment.get(c)!;
        return { externalId: s.externalId, features: s.features, label: s.label, commitment: c };
      }),
    );
  }

  /** The engine's view of a stored version (its samples must not be erased yet: they are opened from the vault). */
  async loadTrainedModel(row: ModelVersionEntity): Promise<TrainedModel> {
    const stored = row.engineState as unknown as EngineState;
    const seeds = await this.noiseSeeds.openOf(row.modelId);
    const state: EngineState = {
      ...stored,
      config: putNoiseSeeds(stored.config, seeds),
      manifest: { ...stored.manifest, config: putNoiseSeeds(stored.manifest.config, seeds) as unknown as JsonValue },
    };
    const ids: { sample_id: string; batch: number }[] = await this.dataSource.query(
      `SELECT sample_id, batch FROM model_version_samples WHERE model_id = $1 AND version = $2`,
      [row.modelId, row.version],
    );
    const opened = await this.vault.readSamples({ sampleIds: ids.map((r) => r.sample_id) }, { float32: true });
    const erased = ids.length - opened.length;
    if (erased > 0) throw new Error(`model ${row.modelId} version ${row.version}: ${erased} of its samples were erased, it cannot be unlearned from`);
    // The learn batch of each (0: the first training; see Sample.batch), which places it in the engine's plan.
    const batches = new Map(ids.filter((r) => r.batch !== 0).map((r) => [String(r.sample_id), r.batch]));
    const samples: Sample[] = compactFeatures(opened.map((s) => withBatch(s, batches.get(String(s.id)))));
    // The store checks the bytes against their address, the published SHA-256.
    const onnx = new Uint8Array(await this.readOnnx(row.modelId, row.version));
    return {
      modelId: row.modelId,
      version: row.version,
      config: state.config,
      hyperparamsHash: state.hyperparamsHash,
      samples,
      shards: state.shards,
      members: state.members,
      onnx,
      onnxSha256: row.onnxSha256,
      manifest: state.manifest,
      manifestHash: row.manifestHash,
      metrics: row.metrics,
    };
  }
}

/** The engine's sample of an opened one, in the learn batch given (none: 0, the first training's). */
export function withBatch(s: { externalId: string; features: Sample['features']; label: number; commitment: string }, batch: number | undefined): Sample {
  const sample: Sample = { externalId: s.externalId, features: s.features, label: s.label, commitment: s.commitment };
  return batch ? { ...sample, batch } : sample;
}

/** The manifest without the noise seeds of its config (a copy). */
function withoutManifestSeeds(manifest: { [key: string]: JsonValue }): { [key: string]: JsonValue } {
  return { ...manifest, config: takeNoiseSeeds(manifest.config).config };
}

/** ONNX writes started ahead (putOnnxAhead) that are kept for their save at most, and how long one may be used. */
const ONNX_AHEAD_KEPT = 8;
const ONNX_AHEAD_MAX_AGE_MS = 60_000;

/** How long a reader waits for a pass to write the batch members it owes before writing them itself, and how often it looks. */
const PENDING_BATCHES_WAIT_MS = 5000;
const PENDING_BATCHES_POLL_MS = 25;

/** Writes the members of the version's batches `batches` names (batchKey -> BATCH_LEARNED index) in `manager`'s transaction. */
async function insertBatchMembers(manager: EntityManager, model: TrainedModel, batches: ReadonlyMap<string, number>): Promise<void> {
  if (batches.size === 0) return;
  const indices: string[] = [];
  const positions: number[] = [];
  const commitments: string[] = [];
  for (const batch of listBatchMembers(model, new Set(batches.keys()))) {
    const index = String(batches.get(batchKey(batch.shard, batch.slice)));
    batch.commitments.forEach((commitment, position) => {
      indices.push(index);
      positions.push(position);
      commitments.push(commitment);
    });
  }
  await manager.query(
    `INSERT INTO batch_commitments (ledger_index, position, commitment)
     SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[]) ON CONFLICT DO NOTHING`,
    [indices, positions, commitments],
  );
}

function checkSampleRows(modelId: string, version: number, rows: number, samples: number): void {
  if (rows !== samples) throw new Error(`model ${modelId} version ${version}: ${rows} sample rows for its ${samples} samples`);
}
