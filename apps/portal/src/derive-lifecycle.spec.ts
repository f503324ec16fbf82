import { canonicalizeEvent, type LedgerEvent } from '@lethe/events';
import { buildModelVersions, buildTimeline, type LogEntry } from './derive';

const hex = (n: number) => n.toString(16).padStart(64, '0');
const log = (events: LedgerEvent[]): LogEntry[] =>
  events.map((event, index) => ({ index, leafHash: hex(index), event: JSON.parse(canonicalizeEvent(event)) as LedgerEvent }));
const batch = (modelVersion: number, slice: number, checkpoint: number, count = 3): LedgerEvent => ({
  type: 'BATCH_LEARNED',
  version: 1,
  modelId: 'm',
  modelVersion,
  shard: 0,
  slice,
  batchRoot: hex(50 + slice),
  count,
  parentCheckpoint: null,
  checkpoint: hex(checkpoint),
  hyperparamsHash: hex(9),
});
const published = (modelVersion: number, sha: number): LedgerEvent => ({
  type: 'MODEL_PUBLISHED',
  version: 1,
  modelId: 'm',
  modelVersion,
  onnxSha256: hex(sha),
  manifestHash: hex(sha + 1),
  metrics: {},
});

describe('the portal on suspended, restored and learned versions', () => {
  const events: LedgerEvent[] = [
    batch(1, 0, 1),
    batch(1, 1, 2),
    published(1, 100),
    { type: 'FORGET_REQUESTED', version: 1, requestId: 'r1', datasetId: 'd', commitments: [hex(7)], reason: 'maybe' },
    batch(2, 1, 3, 2),
    published(2, 200),
    { type: 'UNLEARN_COMPLETED', version: 1, modelId: 'm', requestIds: ['r1'], oldOnnxSha256: hex(100), newOnnxSha256: hex(200), modelVersion: 2, evidence: {} },
    { type: 'VERSION_RETIRED', version: 1, modelId: 'm', modelVersion: 1, onnxSha256: hex(100), forgetRequestIds: ['r1'] },
    { type: 'FORGET_SUSPENDED', version: 1, requestId: 'r1', datasetId: 'd', graceDays: 30, deadline: '2027-01-04T05:00:00.000Z' },
    batch(3, 1, 2),
    published(3, 100),
    { type: 'FORGET_RESTORED', version: 1, requestId: 'r1', datasetId: 'd', modelVersions: [{ modelId: 'm', modelVersion: 3, onnxSha256: hex(100) }] },
    batch(4, 1, 4, 5),
    published(4, 400),
  ];

  it('a restored version names its FORGET_RESTORED and no longer reflects the request; a learned one is marked; neither is a problem', () => {
    const versions = buildModelVersions(log(events));
    expect(versions.map((v) => [v.modelVersion, v.learned?.kind ?? null, v.problems])).toEqual([
      [1, null, []],
      [2, null, []],
      [3, 'restored', []],
      [4, 'learned', []],
    ]);
    expect(versions[2].learned).toEqual({ kind: 'restored', index: 11, requestId: 'r1' });
    expect(versions[1].forgetRequests.map((r) => r.requestId)).toEqual(['r1']);
    expect(versions[2].forgetRequests).toEqual([]);
  });

  it('a version after the first with neither an unlearning, a restore nor slices that only gained samples is still a problem', () => {
    const versions = buildModelVersions(log([...events, published(5, 500), batch(6, 1, 6, 4), published(6, 600)]));
    expect(versions[4].problems).toEqual(['no UNLEARN_COMPLETED entry leads to version 5']);
    // Slice 1 held 5 samples and holds 4: samples were removed, so its UNLEARN_COMPLETED is missing.
    expect(versions[5].problems).toEqual(['no UNLEARN_COMPLETED entry leads to version 6']);
  });

  it('a learn by appended slices names its learn batch, its new samples and its BATCH_LEARNED entries, also in the lineage', () => {
    const appended = (shard: number, count: number): LedgerEvent => ({ ...(batch(5, 2, 10 + shard, count) as object), shard, learnBatch: 1 }) as LedgerEvent;
    const versions = buildModelVersions(log([...events, appended(0, 3), appended(1, 4), published(5, 500)]));
    expect(versions[4].learned).toEqual({ kind: 'learned', learnBatches: [1], samples: 7, indices: [14, 15] });
    expect(versions[4].problems).toEqual([]);
    expect(versions[4].batches.map((b) => [b.shard, b.slice, b.learnBatch])).toEqual([[0, 0, null], [0, 1, null], [0, 2, 1], [1, 2, 1]]);
    // A learn from before appended slices (a slice retrained with more samples) names no batch.
    expect(versions[3].learned).toEqual({ kind: 'learned', learnBatches: [], samples: 0, indices: [] });
  });

  it('the timeline says each step, with the deadline', () => {
    const summaries = buildTimeline(log(events)).map((t) => t.summary);
    expect(summaries).toContain('forget request r1 suspended: forgotten by every model, its data kept sealed until 2027-01-04T05:00:00.000Z (30 day(s))');
    expect(summaries).toContain('forget request r1 restored: learned again by m version 3');
  });
});
