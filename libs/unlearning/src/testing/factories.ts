// Test data builders: commitments here are SHA-256 of a fixed test salt and the id, as the ledger would make them.
import { createHash } from 'crypto';
import { LabeledExample, Sample, TrainingRow } from '../samples';
import { TrainingConfigInput } from '../config';

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
