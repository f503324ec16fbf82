import * as ort from 'onnxruntime-node';
import { LayerSizes, Weights } from './architecture';
import { Aggregation } from './config';
import { EvaluationSets, ModelEvaluation, RowResult, summarizeEvaluation } from './evidence';
import { buildInferenceGraph, InputProjection, INPUT_NAME, PROBABILITIES_NAME } from './inference-graph';
import { LruMap } from './lru';
import { createSession, RuntimeOptions } from './runtime';
import { LabeledExample, packFeatures } from './samples';

/** One shard model of a published ensemble. */
export interface EnsembleMember {
  /** SHA-256 of the member's checkpoint bytes: what identifies it in the caches. */
  weightsSha256: string;
  weights: Weights;
  /** Input columns the member never reads (feature-level unlearning): its graph masks them, as the published one does. */
  maskedFeatures?: readonly number[];
}

/** Sessions and per-row outputs kept for this many members (2-3 versions of a 10-shard model). */
export const DEFAULT_MEMBER_CACHE = 32;

interface SessionEntry {
  session: Promise<ort.InferenceSession>;
  users: number;
  evicted: boolean;
}

/**
 * Evaluates a published ensemble member by member, so that forgetting, which changes a few members, only
 * computes those members' outputs. Each member runs as the one-member graph of buildInferenceGraph (same
 * nodes and initializers as inside the ensemble), and the members' outputs are combined here exactly as
 * the ensemble graph does in float32: Sum in member order (((p0 + p1) + p2) + ...), then Mul by
 * float32(1/members); the label is the first maximum (ArgMax). onnxruntime computes every row of a member
 * alone (the tests check that the result equals running the published file, bit for bit, whatever rows
 * share a batch), so a member's output for a row is cached by member and row object and reused by every
 * version that keeps the member: its "after" evaluation, and the next forget's "before" one.
 */
export class EnsembleEvaluator {
  private readonly sessions: LruMap<string, SessionEntry>;
  /** Per member, its output row (probabilities, or the one-hot vote) for each row object evaluated. */
  private readonly outputs: LruMap<string, WeakMap<LabeledExample, Float32Array>>;

  /** `projection`: how the published graph prepares its input (certified removal's models project onto the unit ball). */
  constructor(
    private readonly runtime: RuntimeOptions = {},
    capacity = DEFAULT_MEMBER_CACHE,
    private readonly projection: InputProjection = 'none',
  ) {
    this.sessions = new LruMap(capacity, (_, entry) => {
      entry.evicted = true;
      if (entry.users === 0) releaseSession(entry);
    });
    this.outputs = new LruMap(capacity);
  }

  async evaluate(
    layers: LayerSizes,
    aggregation: Aggregation,
    members: readonly EnsembleMember[],
    sets: EvaluationSets,
  ): Promise<ModelEvaluation> {
    if (members.length === 0) throw new RangeError('an ensemble needs at least one member');
    const test = sets.test ?? [];
    const rows = [...sets.retain, ...sets.forget, ...test];
    const classes = layers[layers.length - 1];
    const probabilities = await this.predict(layers, aggregation, members, rows);
    const results = rows.map((row, i) => resultOf(probabilities, i, classes, row.label));
    const retainEnd = sets.retain.length;
    const forgetEnd = retainEnd + sets.forget.length;
    return summarizeEvaluation(sets, results.slice(0, retainEnd), results.slice(retainEnd, forgetEnd), results.slice(forgetEnd));
  }

  /** The ensemble's probabilities for `rows`, row-major: the bits the published file gives for them. */
  async predict(
    layers: LayerSizes,
    aggregation: Aggregation,
    members: readonly EnsembleMember[],
    rows: readonly LabeledExample[],
  ): Promise<Float32Array> {
    if (members.length === 0) throw new RangeError('an ensemble needs at least one member');
    // Room for this ensemble and the next version's new members, so evaluating it never evicts its own members.
    this.sessions.reserve(2 * members.length + 4);
    this.outputs.reserve(2 * members.length + 4);
    const perMember: Float32Array[][] = [];
    for (const member of members) perMember.push(await this.memberOutputs(layers, aggregation, member, rows));
    return combine(perMember, rows.length, aggregation, layers[layers.length - 1]);
  }

  /** A member's output row for each of `rows`: from the cache, else computed in one run of its session. */
  private async memberOutputs(
    layers: LayerSizes,
    aggregation: Aggregation,
    member: EnsembleMember,
    rows: readonly LabeledExample[],
  ): Promise<Float32Array[]> {
    const masked = member.maskedFeatures ?? [];
    const key = `${aggregation}|${layers.join('-')}|${member.weightsSha256}${masked.length > 0 ? `|mask:${masked.join(',')}` : ''}`;
    let cached = this.outputs.get(key);
    if (!cached) {
      cached = new WeakMap();
      this.outputs.set(key, cached);
    }
    const out: (Float32Array | undefined)[] = rows.map((row) => cached.get(row));
    const missing = rows.filter((_, i) => out[i] === undefined);
    if (missing.length === 0) return out as Float32Array[];
    const classes = layers[layers.length - 1];
    const probabilities = await this.run(
      key,
      () => buildInferenceGraph(layers, [member.weights], aggregation, this.projection, masked),
      packFeatures(missing, layers[0]),
      missing.length,
    );
    let k = 0;
    rows.forEach((row, i) => {
      if (out[i] !== undefined) return;
      const values = probabilities.subarray(k * classes, (k + 1) * classes);
      k++;
      out[i] = values;
      cached.set(row, values);
    });
    return out as Float32Array[];
  }

  private async run(key: string, graph: () => Uint8Array, features: Float32Array, count: number): Promise<Float32Array> {
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = { session: createSession(graph(), this.runtime), users: 0, evicted: false };
      this.sessions.set(key, entry);
      entry.session.catch(() => this.sessions.delete(key));
    }
    entry.users++;
    try {
      const session = await entry.session;
      const result = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', features, [count, features.length / count]) });
      return result[PROBABILITIES_NAME].data as Float32Array;
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) releaseSession(entry);
    }
  }

  /** Releases every session; cached outputs stay valid. */
  async release(): Promise<void> {
    this.sessions.clear();
  }
}

function releaseSession(entry: SessionEntry): void {
  entry.session.then(
    (session) => session.release(),
    () => undefined,
  );
}

/** The ensemble's probabilities, row-major, from its members' output rows, in the ensemble graph's float32 arithmetic. */
function combine(perMember: readonly Float32Array[][], rows: number, aggregation: Aggregation, classes: number): Float32Array {
  const out = new Float32Array(rows * classes);
  for (let i = 0; i < rows; i++) out.set(perMember[0][i], i * classes);
  if (perMember.length === 1 && aggregation === 'mean') return out; // the graph outputs the Softmax itself
  // Each store into a Float32Array rounds the double sum of two float32 values once: exact float32 addition.
  for (let m = 1; m < perMember.length; m++) {
    const member = perMember[m];
    for (let i = 0; i < rows; i++) {
      const row = member[i];
      const base = i * classes;
      for (let c = 0; c < classes; c++) out[base + c] += row[c];
    }
  }
  // The product of two float32 values is exact in double; the store rounds it once, as float32 Mul does.
  const scale = Math.fround(1 / perMember.length);
  for (let k = 0; k < out.length; k++) out[k] *= scale;
  return out;
}

/** Row i's predicted label (first maximum, as ArgMax) and -log p(true label) floored at 1e-12, as computeLosses. */
function resultOf(probabilities: Float32Array, i: number, classes: number, label: number): RowResult {
  const base = i * classes;
  let predicted = 0;
  for (let c = 1; c < classes; c++) if (probabilities[base + c] > probabilities[base + predicted]) predicted = c;
  return { predicted, loss: -Math.log(Math.max(probabilities[base + label], 1e-12)) };
}
