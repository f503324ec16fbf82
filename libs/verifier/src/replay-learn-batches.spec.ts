import { createHash } from 'node:crypto';
import type { BatchLearned } from '@lethe/events';
import { computeBatchRoot, planShards, type Sample } from '@lethe/unlearning';
import { checkLearnBatches, describeLearnBatchMismatch } from './replay';

const config = { seed: 'replay-batches', shards: 2, slices: 2 };
const hex = (text: string) => createHash('sha256').update(text).digest('hex');
const sample = (i: number, batch: number): Sample => ({ externalId: `s${i}`, features: [i], label: i % 2, commitment: hex(`c${i}`), ...(batch > 0 ? { batch } : {}) });
/** 40 samples of the first training and 12 that learn 1 appended. */
const samples = [...Array.from({ length: 40 }, (_, i) => sample(i, 0)), ...Array.from({ length: 12 }, (_, i) => sample(40 + i, 1))];
const everyId = new Set(samples.map((s) => s.externalId));

/** The log's BATCH_LEARNED of each shard's appended slice, as the engine computes them from the right data. */
function loggedFor(data: readonly Sample[]): { index: number; event: BatchLearned }[] {
  const plan = planShards(data, config.seed, config.shards, config.slices);
  return plan.shards.map((shard, k) => {
    const members = shard.slices[config.slices] ?? [];
    return {
      index: 100 + k,
      event: {
        type: 'BATCH_LEARNED',
        version: 1,
        modelId: 'm',
        modelVersion: 2,
        shard: shard.shard,
        slice: config.slices,
        batchRoot: computeBatchRoot(members.map((i) => data[i].commitment)),
        count: members.length,
        parentCheckpoint: null,
        checkpoint: hex(`ck${k}`),
        hyperparamsHash: hex('h'),
        learnBatch: 1,
      },
    };
  });
}

describe('checkLearnBatches (the replay checks the data\'s learn batches against the log before training)', () => {
  const logged = loggedFor(samples);

  it('passes the right split: counts and, with every commitment, roots', () => {
    const checks = checkLearnBatches(samples, everyId, config, logged);
    expect(checks.map((c) => [c.index, c.ok, c.got.count, c.got.batchRoot === c.expected.batchRoot])).toEqual(logged.map((l) => [l.index, true, l.event.count, true]));
    expect(checks.reduce((n, c) => n + c.got.count, 0)).toBe(12);
  });

  it('compares counts only when a sample of the batch has no commitment in the data', () => {
    const checks = checkLearnBatches(samples, new Set([...everyId].filter((id) => id !== 's40')), config, logged);
    expect(checks.every((c) => c.ok)).toBe(true);
    const withoutRoot = checks.filter((c) => c.got.batchRoot === null);
    expect(withoutRoot).toHaveLength(1); // the shard s40 is in
  });

  it('names a batch whose samples differ (a learned sample given batch 0) with the log\'s count and root and the data\'s', () => {
    const wrong = samples.map((s) => (s.externalId === 's45' ? { ...s, batch: undefined } : s));
    const bad = checkLearnBatches(wrong, everyId, config, logged).filter((c) => !c.ok);
    expect(bad).toHaveLength(1);
    const [check] = bad;
    const entry = logged.find((l) => l.index === check.index)!;
    expect(check.got.count).toBe(entry.event.count - 1);
    expect(describeLearnBatchMismatch(check)).toBe(
      `learn batch 1 of shard ${check.shard} (slice 2, BATCH_LEARNED entry ${check.index}): the log says ${entry.event.count} sample(s) under batch root ` +
        `${entry.event.batchRoot}, the data gives ${entry.event.count - 1} sample(s) under batch root ${check.got.batchRoot}`,
    );
  });

  it('names a learn batch the data fills and the log never learned', () => {
    const extra = [...samples, sample(99, 2)];
    const bad = checkLearnBatches(extra, new Set([...everyId, 's99']), config, logged).filter((c) => !c.ok);
    expect(bad).toEqual([expect.objectContaining({ index: null, slice: 3, learnBatch: 2, expected: { count: 0, batchRoot: null }, got: expect.objectContaining({ count: 1 }) })]);
    expect(describeLearnBatchMismatch(bad[0])).toMatch(/^learn batch 2 of shard \d \(slice 3, no BATCH_LEARNED entry\): the log learned no such batch, the data gives 1 sample\(s\) under batch root [0-9a-f]{64}$/);
  });
});
