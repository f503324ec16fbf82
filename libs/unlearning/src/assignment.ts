import { compareKeys, hashSampleKey, sha256 } from './hash';
import { UnlearningError } from './errors';
import { Sample } from './samples';

/**
 * Where a sample goes depends only on the model seed, its externalId and its learn batch:
 *   key   = SHA-256("lethe-assign|" || seed || 0x00 || externalId)
 *   shard = uint32(key[0..4]) mod S, rank = key (bytewise order),
 *   slice = uint32(key[4..8]) mod R for the samples of the first training (batch 0), and R - 1 + b for those
 *           the b-th learn appended (batch b >= 1): every shard's slices R, R + 1, ... are the appended ones.
 * Removing a sample never moves another one; upload order, salts and database ids play no part.
 */
export interface Placement {
  shard: number;
  slice: number;
  key: Buffer;
}

export function placeSample(seed: string, externalId: string, shards: number, slices: number, batch?: number): Placement {
  return placeByKey(sha256('lethe-assign|', seed, '\u0000', externalId), shards, slices, batch);
}

function placeByKey(key: Buffer, shards: number, slices: number, batch = 0): Placement {
  return { shard: key.readUInt32BE(0) % shards, slice: batch > 0 ? slices - 1 + batch : key.readUInt32BE(4) % slices, key };
}

/** A sample's learn batch: 0 (the first training) unless a learn appended it; anything else is refused. */
export function batchOf(sample: Pick<Sample, 'batch'>): number {
  const batch = sample.batch ?? 0;
  if (!Number.isSafeInteger(batch) || batch < 0 || batch > MAX_LEARN_BATCH)
    throw new UnlearningError('INVALID_REQUEST', `a sample's batch must be an integer in [0, ${MAX_LEARN_BATCH}], got ${String(sample.batch)}`);
  return batch;
}

/** The most learn batches a model takes (each is a slice of every shard). */
export const MAX_LEARN_BATCH = 10_000;

/** A shard's samples, slice by slice, each slice ordered by rank. Values are indexes into the sample array. */
export interface ShardPlan {
  shard: number;
  slices: number[][];
}

/**
 * Every shard's plan plus each sample's placement key (by sample index), used to order epochs. Every shard
 * has the same slices: the R of the config, then one per learn batch up to the highest a sample has
 * (appended slices; one may be empty in some shards, or in all when every sample of its batch was forgotten
 * and a later batch remains).
 */
export interface Plan {
  shards: ShardPlan[];
  keys: readonly Buffer[];
}

/** Whether slice `slice` of a config with R = `slices` is an appended one (a learn batch's). */
export function isAppendedSlice(slice: number, slices: number): boolean {
  return slice >= slices;
}

/**
 * The plans made or derived for sample arrays, by seed, S and R: an array is hashed and sorted once, whoever asks
 * (training, forgetting, listing a version's batches). Plans and the sample arrays given to the engine are never
 * changed once made.
 */
const knownPlans = new WeakMap<readonly Sample[], Map<string, Plan>>();

const planKey = (seed: string, shards: number, slices: number) => `${shards}|${slices}|${seed}`;

/** Records `plan` as the plan of `samples` (one derived by removeFromPlan, say), for planShards to give. */
export function rememberPlan(samples: readonly Sample[], seed: string, shards: number, slices: number, plan: Plan): void {
  let byKey = knownPlans.get(samples);
  if (!byKey) knownPlans.set(samples, (byKey = new Map()));
  byKey.set(planKey(seed, shards, slices), plan);
}

export function planShards(samples: readonly Sample[], seed: string, shards: number, slices: number): Plan {
  const known = knownPlans.get(samples)?.get(planKey(seed, shards, slices));
  if (known) return known;
  const plan = computePlan(samples, seed, shards, slices);
  rememberPlan(samples, seed, shards, slices, plan);
  return plan;
}

function computePlan(samples: readonly Sample[], seed: string, shards: number, slices: number): Plan {
  const prefix = `lethe-assign|${seed}\u0000`;
  const placed = samples.map((sample, index) => {
    const key = hashSampleKey(sample, prefix);
    return { index, ...placeByKey(key, shards, slices, batchOf(sample)), k0: key.readUInt32BE(0), k1: key.readUInt32BE(4) };
  });
  placed.sort((a, b) => a.k0 - b.k0 || a.k1 - b.k1 || compareKeys(a.key, b.key));
  const count = placed.reduce((n, p) => Math.max(n, p.slice + 1), slices);
  const plans: ShardPlan[] = Array.from({ length: shards }, (_, shard) => ({
    shard,
    slices: Array.from({ length: count }, () => [] as number[]),
  }));
  const keys = new Array<Buffer>(samples.length);
  for (const p of placed) {
    plans[p.shard].slices[p.slice].push(p.index);
    keys[p.index] = p.key;
  }
  return { shards: plans, keys };
}

/**
 * The plan of the samples left after removing some: `newIndexOf[i]` is the new index of old sample i, or -1
 * when it was removed (the survivors keep their order). Placement and rank depend only on each sample, so
 * this equals planShards of the survivors, without hashing or sorting them again (except that it keeps every
 * slice: appended ones left empty stay, as the version's shards keep them, see padPlan).
 */
export function removeFromPlan(plan: Plan, newIndexOf: Int32Array): Plan {
  if (newIndexOf.length !== plan.keys.length)
    throw new RangeError(`newIndexOf has ${newIndexOf.length} entries, the plan ${plan.keys.length} samples`);
  const keys: Buffer[] = [];
  for (let index = 0; index < newIndexOf.length; index++) if (newIndexOf[index] >= 0) keys[newIndexOf[index]] = plan.keys[index];
  const shards = plan.shards.map((shardPlan) => ({
    shard: shardPlan.shard,
    slices: shardPlan.slices.map((slice) => {
      const kept: number[] = [];
      for (const index of slice) if (newIndexOf[index] >= 0) kept.push(newIndexOf[index]);
      return kept;
    }),
  }));
  return { shards, keys };
}

/**
 * The plan with `count` slices in every shard, the ones it lacks appended empty (a copy; the plan itself when it
 * has as many). A model's shards never lose a slice: when a forget empties its last learn batches, their slices
 * stay, retrained empty, so that the log's latest BATCH_LEARNED of each slice says what the version holds.
 */
export function padPlan(plan: Plan, count: number): Plan {
  if ((plan.shards[0]?.slices.length ?? count) >= count) return plan;
  return {
    keys: plan.keys,
    shards: plan.shards.map((shard) => ({
      shard: shard.shard,
      slices: [...shard.slices, ...Array.from({ length: count - shard.slices.length }, () => [] as number[])],
    })),
  };
}

/**
 * The visiting order of one epoch of slice r's training (over slices 0..r). Each sample's rank is its
 * placement key mixed with an epoch salt, salt = SHA-256("lethe-order|" seed 0x00 "shard|slice|epoch"):
 *   hi = fmix32(key[8..12] ^ salt[0..4]), lo = fmix32(key[12..16] ^ salt[4..8] ^ hi), ties by the full key.
 * (fmix32 is MurmurHash3's finalizer, a bijection on 32 bits; one SHA-256 per epoch instead of one per
 * sample.) The order depends on nothing but the seed and the surviving externalIds, so forgetting a
 * sample leaves the relative order of the others intact.
 */
export function orderEpoch(
  seed: string,
  shard: number,
  slice: number,
  epoch: number,
  members: readonly number[],
  keys: readonly Buffer[],
): Int32Array {
  const salt = sha256('lethe-order|', seed, `\u0000${shard}|${slice}|${epoch}`);
  const s0 = salt.readUInt32BE(0);
  const s1 = salt.readUInt32BE(4);
  // Typed arrays, not an object per member: an epoch's order lives while its steps run, and objects that
  // live that long are promoted to the old generation, whose collection then marks the whole heap.
  const count = members.length;
  const hi = new Uint32Array(count);
  const lo = new Uint32Array(count);
  const positions = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const key = keys[members[i]];
    hi[i] = fmix32((key.readUInt32BE(8) ^ s0) >>> 0);
    lo[i] = fmix32((key.readUInt32BE(12) ^ s1 ^ hi[i]) >>> 0);
    positions[i] = i;
  }
  positions.sort((a, b) => hi[a] - hi[b] || lo[a] - lo[b] || Buffer.compare(keys[members[a]], keys[members[b]]));
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = members[positions[i]];
  return order;
}

/** MurmurHash3's 32-bit finalizer. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
