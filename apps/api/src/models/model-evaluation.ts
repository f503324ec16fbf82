import { DataSource } from 'typeorm';
import { ForgetRequest, Sample, compactFeatures, isHeldOut, splitHoldout } from '@lethe/unlearning';
import { evaluationSettingsOf } from './model.dto';
import { ModelEntity } from './model.entity';

/**
 * The samples of dataset $1 a model may use: committed, not shredded, and not named by a forget request that
 * has not failed (one still waiting, or being served, counts as forgotten already).
 */
const USABLE_SAMPLES = `s.dataset_id = $1 AND s.ledger_index IS NOT NULL AND s.shredded_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM forget_request_samples f JOIN forget_requests r ON r.id = f.request_id
                   WHERE f.commitment = s.commitment AND r.state <> 'failed')`;

interface SampleRow {
  external_id: string;
  features: number[];
  label: number;
  commitment: string;
}

const toSample = (r: SampleRow): Sample => ({ externalId: r.external_id, features: r.features, label: r.label, commitment: r.commitment });

/** A model's seed and holdout fraction, as isHeldOut takes them. */
function holdoutOf(model: ModelEntity): { seed: string | number; fraction: number } {
  return { seed: (model.engineConfig as { seed: string | number }).seed, fraction: evaluationSettingsOf(model.config).holdoutFraction };
}

/**
 * What a model trains on and what it is tested on: the dataset's usable samples (in upload order) split by the
 * model's holdout rule (isHeldOut on its seed and each externalId). Without a holdout every sample is trained on.
 */
export async function loadTrainingSets(dataSource: DataSource, model: ModelEntity): Promise<{ train: Sample[]; test: Sample[] }> {
  const rows: SampleRow[] = await dataSource.query(
    `SELECT s.external_id, s.features, s.label, s.commitment FROM samples s WHERE ${USABLE_SAMPLES} ORDER BY s.id`,
    [model.datasetId],
  );
  // Features as float32 views of one matrix: a large dataset then costs the garbage collector next to nothing.
  const { train, holdout } = splitHoldout(compactFeatures(rows.map(toSample)), holdoutOf(model));
  return { train, test: holdout };
}

/**
 * A model's test set now: its held-out samples still usable (a held-out sample that is forgotten was never
 * learned; it only leaves the test set). Empty without a holdout. Only the held-out samples' data is read.
 */
export async function loadHeldOutSamples(dataSource: DataSource, model: ModelEntity): Promise<Sample[]> {
  const holdout = holdoutOf(model);
  if (holdout.fraction === 0) return [];
  const ids: { external_id: string }[] = await dataSource.query(`SELECT s.external_id FROM samples s WHERE ${USABLE_SAMPLES}`, [
    model.datasetId,
  ]);
  const heldOut = ids.map((r) => r.external_id).filter((id) => isHeldOut(id, holdout));
  if (heldOut.length === 0) return [];
  const rows: SampleRow[] = await dataSource.query(
    `SELECT s.external_id, s.features, s.label, s.commitment FROM samples s
      WHERE ${USABLE_SAMPLES} AND s.external_id = ANY($2::text[]) ORDER BY s.id`,
    [model.datasetId, heldOut],
  );
  return compactFeatures(rows.map(toSample));
}

/**
 * How many usable samples of a dataset a model with this seed and holdout would train on, how many labels they
 * have, and how many it would hold out.
 */
export async function countTrainableSamples(
  dataSource: DataSource,
  datasetId: string,
  holdout: { seed: string | number; fraction: number },
): Promise<{ count: number; labels: number; heldOut: number }> {
  if (holdout.fraction === 0) {
    const [row]: { count: number; labels: number }[] = await dataSource.query(
      `SELECT count(*)::int AS count, count(DISTINCT label)::int AS labels FROM samples s WHERE ${USABLE_SAMPLES}`,
      [datasetId],
    );
    return { ...row, heldOut: 0 };
  }
  const rows: { external_id: string; label: number }[] = await dataSource.query(
    `SELECT s.external_id, s.label FROM samples s WHERE ${USABLE_SAMPLES}`,
    [datasetId],
  );
  const trained = rows.filter((r) => !isHeldOut(r.external_id, holdout));
  return { count: trained.length, labels: new Set(trained.map((r) => r.label)).size, heldOut: rows.length - trained.length };
}

/**
 * The engine's forget request for one model, with the model's evidence settings: its test set now (the held-out
 * samples still usable, see loadHeldOutSamples) for test accuracy and the membership-inference AUC before and
 * after, with evaluation.referenceRetrain a model retrained from scratch without the samples to compare with,
 * and with evaluation.membership the membership attack (its non-members: the test set, or canaries).
 */
export async function buildForgetRequest(
  dataSource: DataSource,
  model: ModelEntity,
  request: { requestIds: string[]; externalIds: string[] },
): Promise<ForgetRequest> {
  const testSet = await loadHeldOutSamples(dataSource, model);
  const { referenceRetrain, membership } = evaluationSettingsOf(model.config);
  return {
    requestIds: request.requestIds,
    externalIds: request.externalIds,
    ...(testSet.length > 0 ? { testSet } : {}),
    ...(referenceRetrain ? { compareWithRetrain: true } : {}),
    ...(membership ? { membership } : {}),
  };
}
