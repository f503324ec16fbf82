import { layerSizesOf } from './config';
import { UnlearningError } from './errors';
import { placeSample } from './assignment';
import { readInferenceMembers } from './inference-graph';
import { TrainedModel } from './model';
import { LabeledExample } from './samples';

/** A training sample ranked by how much forgetting it would shrink the gap between the protected groups. */
export interface BiasCandidate {
  externalId: string;
  /** Estimated decrease of the gap (the loss-gap proxy below) if the sample were forgotten; larger first. */
  influence: number;
}

export interface BiasScanResult {
  method: 'influence-functions';
  /** The groups compared: the one with the highest mean holdout loss and the one with the lowest. */
  disadvantagedGroup: number;
  advantagedGroup: number;
  /** Mean holdout cross-entropy of the disadvantaged group minus that of the advantaged one. */
  lossGap: number;
  candidates: BiasCandidate[];
}

/**
 * How a bias scan ranks a model's samples, or undefined when none can: influence functions for a softmax logistic
 * regression trained by SGD with aggregation 'mean' (full or SISA), leave-one-slice-out (scanBiasBySlices) for
 * any other SISA model (MLPs, votes). A full retraining of an MLP has no slice to leave out and no convex loss
 * for influence functions; certified removal's one-vs-rest models are not scanned either.
 */
export function biasScanMethodFor(config: { method: string; model: string; aggregation?: string }): 'influence-functions' | 'leave-one-slice-out' | undefined {
  if (config.model === 'logistic-regression' && (config.method === 'sisa' || config.method === 'full-retrain') && (config.aggregation ?? 'mean') === 'mean')
    return 'influence-functions';
  return config.method === 'sisa' ? 'leave-one-slice-out' : undefined;
}

/** Damping added to each member's Hessian (besides its weight decay): softmax regression is over-parametrized. */
export const INFLUENCE_DAMPING = 0.01;
const CG_ITERATIONS = 200;

/**
 * Which training samples of a logistic-regression model (one member, or a SISA ensemble of them averaging
 * softmax outputs) drive the gap between the protected groups, by influence functions (Koh & Liang 2017): the
 * gap is the difference in mean holdout cross-entropy of the ensemble between the worst and the best group
 * (a differentiable stand-in for the accuracy gap); forgetting a sample z of member m moves that member's weights
 * by about (1/n_m) H_m^-1 grad l(z), so the gap moves by (1/n_m) grad_m(gap) . H_m^-1 grad l(z). H_m is the
 * Hessian of member m's mean training loss plus (weightDecay + INFLUENCE_DAMPING) I; s_m = H_m^-1 grad_m(gap) is
 * solved once per member by conjugate gradients on Hessian-vector products (no P x P matrix). Masked columns
 * read as 0, as the model reads them. An estimate: the ranking, not the numbers, is what it is for.
 */
export function scanBiasByInfluence(model: TrainedModel, holdout: readonly LabeledExample[], protectedFeature: number, limit = 100): BiasScanResult {
  const config = model.config;
  if (config.model !== 'logistic-regression' || config.method === 'certified')
    throw new UnlearningError('INVALID_REQUEST', `influence functions need a softmax logistic regression trained by SGD, not a ${config.method} ${config.model} model`);
  if (config.aggregation !== 'mean') throw new UnlearningError('INVALID_REQUEST', "influence functions need aggregation 'mean' (votes are not differentiable)");
  if (protectedFeature < 0 || protectedFeature >= config.numFeatures)
    throw new UnlearningError('INVALID_REQUEST', `protectedFeature ${protectedFeature} is beyond the model's ${config.numFeatures} columns`);
  const d = config.numFeatures;
  const K = config.numClasses;
  const masked = new Set(config.maskedFeatures ?? []);
  const x = (row: LabeledExample) => Float64Array.from({ length: d }, (_, j) => (masked.has(j) ? 0 : Math.fround(Number(row.features[j]))));
  const members = readInferenceMembers(model.onnx, layerSizesOf(config), model.members.length).map(([w, b]) => ({ w: Float64Array.from(w), b: Float64Array.from(b) }));
  const M = members.length;
  const softmax = (m: number, xi: Float64Array) => {
    const { w, b } = members[m];
    const z = Array.from({ length: K }, (_, c) => {
      let s = b[c];
      for (let j = 0; j < d; j++) s += xi[j] * w[j * K + c];
      return s;
    });
    const top = Math.max(...z);
    const e = z.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, v) => a + v, 0);
    return e.map((v) => v / sum);
  };

  // The groups and the gap on the holdout.
  const rows = holdout.map((row) => ({ x: x(row), label: row.label, group: Number(row.features[protectedFeature]), p: [] as number[][] }));
  for (const row of rows) row.p = members.map((_, m) => softmax(m, row.x));
  const lossOf = (row: (typeof rows)[number]) => -Math.log(Math.max(1e-12, row.p.reduce((a, p) => a + p[row.label], 0) / M));
  const byGroup = new Map<number, typeof rows>();
  for (const row of rows) byGroup.set(row.group, [...(byGroup.get(row.group) ?? []), row]);
  if (byGroup.size < 2) throw new UnlearningError('INSUFFICIENT_DATA', `the holdout has ${byGroup.size} group(s) in column ${protectedFeature}: a gap needs two`);
  const meanLoss = [...byGroup].map(([group, members]) => ({ group, loss: members.reduce((a, r) => a + lossOf(r), 0) / members.length }));
  meanLoss.sort((a, b) => b.loss - a.loss || a.group - b.group);
  const worst = meanLoss[0];
  const best = meanLoss[meanLoss.length - 1];
  const weightOf = (group: number) => (group === worst.group ? 1 / byGroup.get(worst.group)!.length : group === best.group ? -1 / byGroup.get(best.group)!.length : 0);

  // grad of the gap with respect to each member's parameters, laid out [w (d x K) | b (K)].
  const P = (d + 1) * K;
  const gapGrad = members.map(() => new Float64Array(P));
  for (const row of rows) {
    const weight = weightOf(row.group);
    if (weight === 0) continue;
    const pbar = row.p.reduce((a, p) => a + p[row.label], 0) / M;
    for (let m = 0; m < M; m++) {
      const p = row.p[m];
      for (let c = 0; c < K; c++) {
        // d(-log pbar)/dz_m[c] = -(1 / (M pbar)) p_m[y] (1[c = y] - p_m[c])
        const dz = (weight * -(p[row.label] * ((c === row.label ? 1 : 0) - p[c]))) / (M * pbar);
        for (let j = 0; j < d; j++) gapGrad[m][j * K + c] += row.x[j] * dz;
        gapGrad[m][d * K + c] += dz;
      }
    }
  }

  // Each member's training samples (SISA places each in one shard; the ensemble's members are its non-empty shards).
  const shardOfMember = new Map(model.members.map((shard, m) => [shard, m]));
  const training = members.map(() => [] as { externalId: string; x: Float64Array; label: number; p: number[] }[]);
  for (const sample of model.samples) {
    const m = shardOfMember.get(placeSample(config.seed, sample.externalId, config.shards, config.slices).shard);
    if (m === undefined) continue;
    const xi = x(sample);
    training[m].push({ externalId: sample.externalId, x: xi, label: sample.label, p: softmax(m, xi) });
  }

  const lambda = config.weightDecay + INFLUENCE_DAMPING;
  const candidates: BiasCandidate[] = [];
  for (let m = 0; m < M; m++) {
    const data = training[m];
    if (data.length === 0) continue;
    const hvp = (v: Float64Array): Float64Array => {
      const out = new Float64Array(P);
      const s = new Float64Array(K);
      for (const row of data) {
        for (let c = 0; c < K; c++) {
          let t = v[d * K + c];
          for (let j = 0; j < d; j++) t += row.x[j] * v[j * K + c];
          s[c] = t;
        }
        let ps = 0;
        for (let c = 0; c < K; c++) ps += row.p[c] * s[c];
        for (let c = 0; c < K; c++) {
          const a = (row.p[c] * (s[c] - ps)) / data.length;
          for (let j = 0; j < d; j++) out[j * K + c] += row.x[j] * a;
          out[d * K + c] += a;
        }
      }
      for (let k = 0; k < P; k++) out[k] += lambda * v[k];
      return out;
    };
    const sTest = solveConjugateGradient(hvp, gapGrad[m]);
    for (const row of data) {
      // grad l(z) . s: the gap moves by (1/n) of it when z is forgotten; the candidate's influence is the decrease.
      let dot = 0;
      for (let c = 0; c < K; c++) {
        const dz = row.p[c] - (c === row.label ? 1 : 0);
        for (let j = 0; j < d; j++) dot += row.x[j] * dz * sTest[j * K + c];
        dot += dz * sTest[d * K + c];
      }
      candidates.push({ externalId: row.externalId, influence: -dot / data.length });
    }
  }
  candidates.sort((a, b) => b.influence - a.influence || (a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0));
  return {
    method: 'influence-functions',
    disadvantagedGroup: worst.group,
    advantagedGroup: best.group,
    lossGap: worst.loss - best.loss,
    candidates: candidates.slice(0, limit),
  };
}

/** Solves A s = g for a symmetric positive definite A given as a product, by conjugate gradients from 0. */
function solveConjugateGradient(multiply: (v: Float64Array) => Float64Array, g: Float64Array): Float64Array {
  const s = new Float64Array(g.length);
  const r = Float64Array.from(g);
  const p = Float64Array.from(g);
  let rr = dotOf(r, r);
  const stop = 1e-20 * Math.max(1, rr);
  for (let k = 0; k < CG_ITERATIONS && rr > stop; k++) {
    const ap = multiply(p);
    const alpha = rr / dotOf(p, ap);
    for (let i = 0; i < s.length; i++) {
      s[i] += alpha * p[i];
      r[i] -= alpha * ap[i];
    }
    const next = dotOf(r, r);
    for (let i = 0; i < p.length; i++) p[i] = r[i] + (next / rr) * p[i];
    rr = next;
  }
  return s;
}

function dotOf(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
