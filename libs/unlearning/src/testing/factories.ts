// Test data builders: commitments here are SHA-256 of a fixed test salt and the id, as the ledger would make them.
import { createHash } from 'crypto';
import { LabeledExample, Sample, TrainingRow } from '../samples';
import { TrainingConfigInput } from '../config';
import { SeededRandom } from '../random';
import { placeSample } from '../assignment';

export function commitExample(example: LabeledExample): Sample {
  const commitment = createHash('sha256')
    .update('test-salt|')
    .update(example.externalId)
    .update(JSON.stringify(Array.from(example.features)))
    .digest('hex');
  return { ...example, commitment };
}

export function commitExamples(examples: readonly LabeledExample[]): Sample[] {
  return examples.map(commitExample);
}

export function irisSisaConfig(overrides: Partial<TrainingConfigInput> = {}): TrainingConfigInput {
  return {
    method: 'sisa',
    model: 'logistic-regression',
    numFeatures: 4,
    numClasses: 3,
    shards: 3,
    slices: 3,
    epochs: 40,
    batchSize: 4,
    learningRate: 0.05,
    seed: 'iris-seed',
    ...overrides,
  };
}

export function mnistSisaConfig(overrides: Partial<TrainingConfigInput> = {}): TrainingConfigInput {
  return {
    method: 'sisa',
    model: 'mlp',
    hiddenLayers: [32],
    numFeatures: 784,
    numClasses: 10,
    shards: 4,
    slices: 3,
    epochs: 4, // SISA's schedule: 2 epochs per slice
    batchSize: 16,
    learningRate: 0.1,
    seed: 'mnist-seed',
    ...overrides,
  };
}

/** Training rows over a packed feature matrix (row i: features i * width .. (i + 1) * width) and its labels. */
export function rowsOf(features: Float32Array, labels: Int32Array, width: number): TrainingRow[] {
  return Array.from(labels, (label, i) => ({ features: features.subarray(i * width, (i + 1) * width), label }));
}

/**
 * A synthetic set: column 0 is a group id (0 or 1), columns 1..4 standard normals, label 1 when
 * x1 + 0.8 x2 - 0.5 x3 > 0. With `plant`, a seeded third of group 1's training rows of label 1 have it flipped
 * to 0: a planted bias against group 1.
 */
export function plantedBiasSet(n: number, seed: string, plant: boolean): { rows: LabeledExample[]; planted: Set<string> } {
  const random = new SeededRandom(seed);
  const rows: LabeledExample[] = [];
  const planted = new Set<string>();
  for (let i = 0; i < n; i++) {
    const group = random.nextFloat() < 0.5 ? 0 : 1;
    const z = [0, 0, 0, 0].map(() => random.nextGaussian());
    let label = z[0] + 0.8 * z[1] - 0.5 * z[2] > 0 ? 1 : 0;
    const externalId = `${seed}-${i}`;
    if (plant && group === 1 && label === 1 && random.nextFloat() < 1 / 3) {
      label = 0;
      planted.add(externalId);
    }
    rows.push({ externalId, features: [group, ...z], label });
  }
  return { rows, planted };
}

/** Where a planted bias goes: the slices ("shard/slice") that an engine seed, S and R place its rows in. */
export interface SlicePlacement {
  seed: string;
  shards: number;
  slices: number;
  targets: ReadonlySet<string>;
}

/**
 * A planted bias concentrated in some slices (what leave-one-slice-out can find): the rows of plantedBiasSet(n,
 * `rowsSeed`) without its plant, and among those that placeSample (the placement's seed, S and R) puts in one of
 * the target slices, two thirds of group 1's positives (a seeded draw) relabelled 0. `planted` names them; with
 * `plant` false the rows keep their labels (the control) and `planted` names the rows the plant would flip.
 */
export function plantedInSlices(n: number, rowsSeed: string, placement: SlicePlacement, plant: boolean): { rows: LabeledExample[]; planted: Set<string> } {
  const { rows } = plantedBiasSet(n, rowsSeed, false);
  const random = new SeededRandom(`${rowsSeed}|plant`);
  const planted = new Set<string>();
  const out = rows.map((row) => {
    const at = placeSample(placement.seed, row.externalId, placement.shards, placement.slices);
    const chosen = Number(row.features[0]) === 1 && row.label === 1 && placement.targets.has(`${at.shard}/${at.slice}`) && random.nextFloat() < 2 / 3;
    if (!chosen) return row;
    planted.add(row.externalId);
    return plant ? { ...row, label: 0 } : row;
  });
  return { rows: out, planted };
}
