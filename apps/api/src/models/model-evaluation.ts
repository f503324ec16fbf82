import { DataSource } from 'typeorm';
import { OpenedSample, SampleVault } from '@lethe/ledger';
import { EvidenceRequest, ForgetRequest, Sample, UnlearningError, compactFeatures, isHeldOut, splitHoldout } from '@lethe/unlearning';
import { evaluationSettingsOf } from './model.dto';
import { ModelEntity } from './model.entity';

/**
 * The samples of a dataset a model may use, opened from the vault, in upload order: committed, not erased,
 * and not named by a forget request that has not failed nor been restored (one still waiting, or being served, or
 * suspended, counts as forgotten already). Features as float32 views of one matrix: a large dataset then costs the garbage
 * collector next to nothing.
 */
async function loadUsableSamples(dataSource: DataSource, vault: SampleVault, datasetId: string): Promise<Sample[]> {
  return (await loadUsable(dataSource, vault, datasetId)).samples;
}

/** loadUsableSamples, with each sample's internal id (sample_commitments.id) by commitment. */
async function loadUsable(dataSource: DataSource, vault: SampleVault, datasetId: string): Promise<{ samples: Sample[]; ids: Map<string, string> }> {
  const requested: { commitment: string }[] = await dataSource.query(
    `SELECT DISTINCT f.commitment FROM forget_request_samples f JOIN forget_requests r ON r.id = f.request_id
      WHERE r.dataset_id = $1 AND r.state NOT IN ('failed', 'restored')`,
    [datasetId],
  );
  const forgotten = new Set(requested.map((r) => r.commitment));
  const opened = (await vault.readSamples({ datasetId }, { committedOnly: true, float32: true })).filter((s) => !forgotten.has(s.commitment));
  return { samples: compactFeatures(opened.map(asSample)), ids: new Map(opened.map((s) => [s.commitment, s.id])) };
}

/** What the engine is given of a sample opened from the vault. */
function asSample(s: OpenedSample): Sample {
  return { externalId: s.externalId, features: s.features, label: s.label, commitment: s.commitment };
}

/** A model's seed and holdout fraction, as isHeldOut takes them. */
function holdoutOf(model: ModelEntity): { seed: string | number; fraction: number } {
  return { seed: (model.engineConfig as { seed: string | number }).seed, fraction: evaluationSettingsOf(model.config).holdoutFraction };
}

/**
 * What a model trains on and what it is tested on: the dataset's usable samples (in upload order) split by the
 * model's holdout rule (isHeldOut on its seed and each externalId). Without a holdout every sample is trained on.
 * With the sets' plan (their samples' internal ids, in order), read with them.
 */
export async function loadTrainingSets(
  dataSource: DataSource,
  vault: SampleVault,
  model: ModelEntity,
): Promise<{ train: Sample[]; test: Sample[]; plan: TrainingPlan }> {
  const { samples, ids } = await loadUsable(dataSource, vault, model.datasetId);
  const { train, holdout } = splitHoldout(samples, holdoutOf(model));
  const idOf = (s: Sample): string => ids.get(s.commitment)!;
  return { train, test: holdout, plan: { train: train.map(idOf), test: holdout.map(idOf) } };
}

/** A training's plan as models.training_plan keeps it: the internal ids (sample_commitments.id) of its sets, in order. */
export interface TrainingPlan {
  train: string[];
  test: string[];
}

/**
 * The training sets of a stored plan, in its order, opened from the vault: the very samples (so the very bytes) the
 * plan's training was given. A planned sample that can no longer be read (shredded, its dataset deleted) fails with
 * UNKNOWN_SAMPLE naming how many: training without it would publish other bytes than the log may record.
 */
export async function loadPlannedSets(dataSource: DataSource, vault: SampleVault, modelId: string, plan: TrainingPlan): Promise<{ train: Sample[]; test: Sample[] }> {
  const opened = new Map((await vault.readSamples({ sampleIds: [...plan.train, ...plan.test] }, { float32: true })).map((s) => [s.id, s]));
  const missing = [...plan.train, ...plan.test].filter((id) => !opened.get(id)?.committed).length;
  if (missing > 0)
    throw new UnlearningError(
      'UNKNOWN_SAMPLE',
      `model ${modelId}: ${missing} of the ${plan.train.length + plan.test.length} samples its version 1 was planned on can no longer be read (shredded or deleted); it cannot be trained again to the bytes its plan gave`,
    );
  const samples = compactFeatures([...plan.train, ...plan.test].map((id) => asSample(opened.get(id)!)));
  return { train: samples.slice(0, plan.train.length), test: samples.slice(plan.train.length) };
}

/**
 * A model's test set now: its held-out samples still usable (a held-out sample that is forgotten was never
 * learned; it only leaves the test set). Empty without a holdout.
 */
export async function loadHeldOutSamples(dataSource: DataSource, vault: SampleVault, model: ModelEntity): Promise<Sample[]> {
  const holdout = holdoutOf(model);
  if (holdout.fraction === 0) return [];
  return (await loadUsableSamples(dataSource, vault, model.datasetId)).filter((s) => isHeldOut(s.externalId, holdout));
}

/**
 * How many usable samples of a dataset a model with this seed and holdout would train on, how many labels they
 * have, and how many it would hold out.
 */
export async function countTrainableSamples(
  dataSource: DataSource,
  vault: SampleVault,
  datasetId: string,
  holdout: { seed: string | number; fraction: number },
): Promise<{ count: number; labels: number; heldOut: number }> {
  const usable = await loadUsableSamples(dataSource, vault, datasetId);
  const trained = usable.filter((s) => holdout.fraction === 0 || !isHeldOut(s.externalId, holdout));
  return { count: trained.length, labels: new Set(trained.map((s) => s.label)).size, heldOut: usable.length - trained.length };
}

/**
 * What a model's evidence takes, from its evidence settings: its test set now (the held-out samples still usable,
 * see loadHeldOutSamples) for test accuracy and the membership-inference AUC before and after, with
 * evaluation.referenceRetrain a model retrained from scratch without the samples to compare with, and with
 * evaluation.membership the membership attack (its non-members: the test set, or canaries).
 */
export async function buildEvidenceRequest(
  dataSource: DataSource,
  vault: SampleVault,
  model: ModelEntity,
  requestIds: string[],
): Promise<EvidenceRequest> {
  const testSet = await loadHeldOutSamples(dataSource, vault, model);
  const { referenceRetrain, membership } = evaluationSettingsOf(model.config);
  return {
    requestIds,
    ...(testSet.length > 0 ? { testSet } : {}),
    ...(referenceRetrain ? { compareWithRetrain: true } : {}),
    ...(membership ? { membership } : {}),
  };
}

/** The dataset's protected column, when it declares one (the engine then records the fairness figures on the test set). */
export async function findProtectedFeature(dataSource: DataSource, model: ModelEntity): Promise<{ protectedFeature?: number }> {
  const [row]: { protected_feature: number | null }[] = await dataSource.query(`SELECT protected_feature FROM datasets WHERE id = $1`, [model.datasetId]);
  return row?.protected_feature === null || row?.protected_feature === undefined ? {} : { protectedFeature: row.protected_feature };
}

/** What a publish-first forget needs for the fairness figures in its UNLEARN_COMPLETED: the test set and the protected column, when the dataset declares one. */
export async function buildFairnessRequest(dataSource: DataSource, vault: SampleVault, model: ModelEntity): Promise<{ testSet?: Sample[]; protectedFeature?: number }> {
  const declared = await findProtectedFeature(dataSource, model);
  if (declared.protectedFeature === undefined) return {};
  const testSet = await loadHeldOutSamples(dataSource, vault, model);
  return testSet.length > 0 ? { testSet, ...declared } : {};
}

/** The engine's forget request for one model with its evidence measured inline (methods without publishForget). */
export async function buildForgetRequest(
  dataSource: DataSource,
  vault: SampleVault,
  model: ModelEntity,
  request: { requestIds: string[]; externalIds: string[] },
): Promise<ForgetRequest> {
  return { ...(await buildEvidenceRequest(dataSource, vault, model, request.requestIds)), externalIds: request.externalIds, ...(await findProtectedFeature(dataSource, model)) };
}
