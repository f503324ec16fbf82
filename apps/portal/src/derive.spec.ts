import { canonicalizeEvent, type LedgerEvent } from '@lethe/events';
import { bySide, MEMBERSHIP_EVIDENCE } from '../../../libs/events/src/testing/membership-evidence';
import {
  buildModelVersions,
  buildTimeline,
  computeForgetTimings,
  evidenceSeries,
  fairnessChangeOf,
  filterTimeline,
  membershipView,
  firstCovering,
  timingHistogram,
  type LogEntry,
} from './derive';

const hex = (n: number) => n.toString(16).padStart(64, '0');
const DAY = 86_400;

/** A log of `events`, entry i being events[i] (leaf hashes are not what these functions read). */
function log(events: LedgerEvent[]): LogEntry[] {
  return events.map((event, index) => ({ index, leafHash: hex(index), event: JSON.parse(canonicalizeEvent(event)) as LedgerEvent }));
}

const batch = (modelVersion: number, shard: number, slice: number): LedgerEvent => ({
  type: 'BATCH_LEARNED',
  version: 1,
  modelId: 'm1',
  modelVersion,
  shard,
  slice,
  batchRoot: hex(100 + shard * 10 + slice + modelVersion * 100),
  count: 10,
  parentCheckpoint: null,
  checkpoint: hex(200 + shard),
  hyperparamsHash: hex(300),
});
const evaluation = (retain: number, forget: number, test: number, auc: number) => ({
  retainAccuracy: retain,
  forgetAccuracy: forget,
  testAccuracy: test,
  membershipAuc: auc,
});

/** m1 v1 learns 2 shards x 2 slices of d1; r1 is forgotten (v2 retrains shard 1 from slice 1); r2 is pending. */
const EVENTS: LedgerEvent[] = [
  { type: 'DATASET_REGISTERED', version: 1, datasetId: 'd1', name: 'iris', features: 4, classes: 3 }, // 0
  { type: 'SAMPLES_COMMITTED', version: 1, datasetId: 'd1', commitmentsRoot: hex(1), count: 40 }, // 1
  batch(1, 0, 0), // 2
  batch(1, 0, 1), // 3
  batch(1, 1, 0), // 4
  batch(1, 1, 1), // 5
  {
    type: 'MODEL_PUBLISHED',
    version: 1,
    modelId: 'm1',
    modelVersion: 1,
    onnxSha256: hex(11),
    manifestHash: hex(12),
    metrics: { trainAccuracy: 0.9 },
  }, // 6
  { type: 'FORGET_REQUESTED', version: 1, requestId: 'r1', datasetId: 'd1', commitments: [hex(21), hex(22)], reason: 'erasure' }, // 7
  {
    type: 'ANCHORED',
    version: 1,
    chainId: '31337',
    contract: `0x${'ab'.repeat(20)}`,
    txHash: `0x${hex(5)}`,
    blockNumber: 3,
    treeSize: 8,
    rootHash: hex(6),
  }, // 8
  batch(2, 1, 1), // 9
  {
    type: 'MODEL_PUBLISHED',
    version: 1,
    modelId: 'm1',
    modelVersion: 2,
    onnxSha256: hex(13),
    manifestHash: hex(14),
    metrics: { trainAccuracy: 0.88 },
    runtime: { onnxruntime: '1.22.0', node: '20.19.0', platform: 'linux', arch: 'x64', cpuKernels: 'avx2-fma3' },
    privacy: { mechanism: 'dp-sgd', epsilon: 1.98, delta: 1e-5, noiseMultiplier: 1.1, sampleRate: 0.0278, steps: 720, clipNorm: 1, accountant: 'rdp' },
  }, // 10
  {
    type: 'UNLEARN_COMPLETED',
    version: 1,
    modelId: 'm1',
    requestIds: ['r1'],
    affected: [{ shard: 1, fromSlice: 1 }],
    oldOnnxSha256: hex(11),
    newOnnxSha256: hex(13),
    modelVersion: 2,
    evidence: {
      forgottenCount: 2,
      before: evaluation(0.9, 1, 0.85, 0.7),
      after: evaluation(0.88, 0.5, 0.84, 0.5),
      reference: evaluation(0.88, 0.5, 0.84, 0.51),
    },
  }, // 11
  { type: 'FORGET_REQUESTED', version: 1, requestId: 'r2', datasetId: 'd1', commitments: [hex(23)], reason: 'erasure' }, // 12
];

describe('the portal derives what it shows from the entries alone', () => {
  it('builds the timeline, inferring a model’s dataset from the forget requests it served, and filters it', () => {
    const timeline = buildTimeline(log(EVENTS));
    expect(timeline).toHaveLength(EVENTS.length);
    expect(timeline[2]).toMatchObject({ type: 'BATCH_LEARNED', kind: 'learn', modelId: 'm1', datasetId: 'd1' });
    expect(filterTimeline(timeline, { type: 'forget' }).map((i) => i.index)).toEqual([7, 11, 12]);
    expect(filterTimeline(timeline, { type: 'MODEL_PUBLISHED', modelId: 'm1' }).map((i) => i.index)).toEqual([6, 10]);
    expect(filterTimeline(timeline, { datasetId: 'd2' })).toEqual([]);
    const invalid = buildTimeline([{ index: 0, leafHash: hex(0), event: null, problem: 'entry 0: the event is not JSON' }]);
    expect(invalid[0]).toMatchObject({ type: 'INVALID', summary: 'entry 0: the event is not JSON' });
  });

  it('lists a bias scan with its method, gap and candidate count (no sample named), under forget and its model', () => {
    const scanned = {
      type: 'BIAS_SCANNED',
      version: 1,
      jobId: 'j1',
      modelId: 'm1',
      modelVersion: 2,
      method: 'leave-one-slice-out',
      metric: 'equalizedOddsDifference',
      gapBefore: 0.1234,
      candidates: 100,
      candidatesRoot: hex(40),
    } as const;
    const [item] = buildTimeline(log([...EVENTS, scanned])).slice(-1);
    expect(item).toMatchObject({ index: EVENTS.length, type: 'BIAS_SCANNED', kind: 'forget', modelId: 'm1', datasetId: 'd1' });
    expect(item.summary).toBe(`version 2 scanned for bias (leave-one-slice-out): equalizedOddsDifference 0.123, 100 candidate(s) ranked, root ${hex(40).slice(0, 12)}…`);
  });

  it('gives each version its batches (the latest per shard and slice) and the forget requests it reflects', () => {
    const [v1, v2] = buildModelVersions(log(EVENTS));
    expect(v1.batches.map((b) => [b.shard, b.slice, b.index])).toEqual([
      [0, 0, 2],
      [0, 1, 3],
      [1, 0, 4],
      [1, 1, 5],
    ]);
    expect(v1.forgetRequests).toEqual([]);
    expect(v1.unlearn).toBeNull();
    expect(v2.batches.map((b) => b.index)).toEqual([2, 3, 4, 9]);
    expect(v2.forgetRequests).toEqual([{ requestId: 'r1', index: 7, commitments: 2, unlearnIndex: 11, unlearnVersion: 2, guarantee: null }]);
    expect(v2.unlearn).toMatchObject({ index: 11, affected: [{ shard: 1, fromSlice: 1 }] });
    expect(v2.problems).toEqual([]);
  });

  it("gives each version the runtime envelope its MODEL_PUBLISHED records, null where an older entry has none", () => {
    const [v1, v2] = buildModelVersions(log(EVENTS));
    expect(v1.runtime).toBeNull();
    expect(v2.runtime).toEqual({ onnxruntime: '1.22.0', node: '20.19.0', platform: 'linux', arch: 'x64', cpuKernels: 'avx2-fma3' });
  });

  it('gives each version the DP-SGD guarantee its MODEL_PUBLISHED records, null for a version trained without one', () => {
    const [v1, v2] = buildModelVersions(log(EVENTS));
    expect(v1.privacy).toBeNull();
    expect(v2.privacy).toMatchObject({ mechanism: 'dp-sgd', epsilon: 1.98, delta: 1e-5, noiseMultiplier: 1.1, steps: 720, accountant: 'rdp' });
  });

  it('names what does not add up: a version without its UNLEARN_COMPLETED, a request nobody made', () => {
    const broken = EVENTS.filter((_, i) => i !== 7 && i !== 11);
    const withOrphan = [...EVENTS.slice(0, 7), ...EVENTS.slice(8)];
    expect(buildModelVersions(log(broken))[1].problems).toEqual(['no UNLEARN_COMPLETED entry leads to version 2']);
    expect(buildModelVersions(log(withOrphan))[1].problems).toEqual([
      expect.stringMatching(/serves forget request r1, which no FORGET_REQUESTED entry names/),
    ]);
  });

  it('reads the evidence of a version published first from the EVIDENCE_RECORDED that follows it, or says it is pending', () => {
    const published = EVENTS.slice(0, 12).map((e) =>
      e.type === 'UNLEARN_COMPLETED' ? { ...e, evidence: { forgottenCount: 2, retainCount: 38, recordedIn: 'EVIDENCE_RECORDED' } } : e,
    );
    const evidence = (EVENTS[11] as Extract<LedgerEvent, { type: 'UNLEARN_COMPLETED' }>).evidence;
    const recorded = (forgetRequestIds: string[]): LedgerEvent => ({
      type: 'EVIDENCE_RECORDED',
      version: 1,
      modelId: 'm1',
      modelVersion: 2,
      forgetRequestIds,
      evidence,
    });
    expect(buildModelVersions(log(published))[1]).toMatchObject({
      unlearn: { index: 11, evidence: { recordedIn: 'EVIDENCE_RECORDED' }, evidenceIndex: null, evidencePending: true },
      problems: [],
    });
    const [, v2] = buildModelVersions(log([...published, recorded(['r1'])]));
    expect(v2.unlearn).toMatchObject({ index: 11, evidence, evidenceIndex: 12, evidencePending: false });
    expect(v2.problems).toEqual([]);
    expect(evidenceSeries(v2.unlearn!.evidence)).not.toBeNull();
    // Evidence for other requests, or for a step that carried its own, is named.
    expect(buildModelVersions(log([...published, recorded(['r9'])]))[1].problems).toEqual([
      'entry 12 (EVIDENCE_RECORDED) names requests r9, entry 11 r1',
    ]);
    expect(buildModelVersions(log([...EVENTS.slice(0, 12), recorded(['r1'])]))[1].problems).toEqual([
      'entry 12 (EVIDENCE_RECORDED) follows an UNLEARN_COMPLETED (entry 11) that carries its own evidence',
    ]);
    expect(buildTimeline(log([...published, recorded(['r1'])]))[12]).toMatchObject({ kind: 'forget', modelId: 'm1', datasetId: 'd1' });
  });

  it('turns evidence into before, after and reference series over the four measures', () => {
    expect(evidenceSeries((EVENTS[11] as Extract<LedgerEvent, { type: 'UNLEARN_COMPLETED' }>).evidence)).toEqual([
      { name: 'before', values: [0.9, 1, 0.85, 0.7] },
      { name: 'after', values: [0.88, 0.5, 0.84, 0.5] },
      { name: 'reference', values: [0.88, 0.5, 0.84, 0.51] },
    ]);
    expect(evidenceSeries({ before: { retainAccuracy: 1, forgetAccuracy: 1 }, after: { retainAccuracy: 1, forgetAccuracy: 0 } })).toEqual([
      { name: 'before', values: [1, 1, null, null] },
      { name: 'after', values: [1, 0, null, null] },
    ]);
    expect(evidenceSeries({ forgottenCount: 1 })).toBeNull();
  });

  it('reads a membership attack: charts of before, after and reference with intervals and chance, or why it was skipped, or what is malformed', () => {
    const membership = MEMBERSHIP_EVIDENCE;
    const view = membershipView({ membership } as never);
    expect(view).toMatchObject({
      summary: 'LiRA. 16 shadow models (fixed variance); 200 injected canaries vs 200 kept out (in evaluation-only copies of the model).',
      skipped: null,
      chance: [0.0149, null, 0.5],
    });
    const { charts } = view as Exclude<typeof view, null | { problem: string }>;
    expect(charts.map((c) => c.attack)).toEqual(['ensemble', 'per member']);
    expect(charts[0].series[0]).toEqual({ name: 'before', values: [0.9, null, 0.99], intervals: [[0.8, 1], null, [0.98, 1]] });
    expect(charts[0].forgottenFlagged).toBeNull();
    expect(charts[1].forgottenFlagged).toBe('The 3 forgotten sample(s) flagged at 1% FPR of the held-out ones: before 2, after 0, reference 0');
    const { attack, shadowModels, members, nonMembers } = membership;
    expect(membershipView({ membership: { attack, shadowModels, members, nonMembers, skipped: { reason: 'too few' } } } as never)).toMatchObject({
      skipped: 'too few',
      charts: [],
    });
    expect(membershipView({ membership: { ...membership, auc: bySide(2, 0.5, 0.5) } } as never)).toEqual({
      problem: 'evidence.membership.auc.before must be a number in [0, 1]',
    });
    expect(membershipView({ forgottenCount: 1 })).toBeNull();
  });

  it('times each forget request by the chain: first anchor covering the request, first covering its unlearning; flags the slow and the pending', () => {
    const checkpoints = [
      { number: 0, treeSize: 8, timestamp: 1000 },
      { number: 1, treeSize: 12, timestamp: 1000 + 40 * DAY },
    ];
    expect(firstCovering(checkpoints, 7)).toBe(checkpoints[0]);
    expect(firstCovering(checkpoints, 8)).toBe(checkpoints[1]);
    expect(firstCovering(checkpoints, 12)).toBeNull();
    const [r1, r2] = computeForgetTimings(log(EVENTS), checkpoints, 30 * DAY, 1000 + 41 * DAY);
    expect(r1).toMatchObject({
      requestId: 'r1',
      requestIndex: 7,
      state: 'anchored',
      seconds: 40 * DAY,
      late: true,
      unlearned: [{ index: 11, modelId: 'm1', modelVersion: 2 }],
    });
    expect(r2).toMatchObject({ requestId: 'r2', state: 'request not anchored yet', seconds: null, late: false });
    expect(computeForgetTimings(log(EVENTS), checkpoints, 45 * DAY, 0)[0].late).toBe(false);
    // Pending for longer than the deadline is late too.
    const pending = computeForgetTimings(log(EVENTS.slice(0, 9)), checkpoints.slice(0, 1), 30 * DAY, 1000 + 31 * DAY);
    expect(pending[0]).toMatchObject({ state: 'not unlearned yet', seconds: 31 * DAY, late: true });

    const bins = timingHistogram([r1, r2], 30 * DAY, 10);
    expect(bins.reduce((n, b) => n + b.late + b.onTime, 0)).toBe(1);
    expect(bins.findIndex((b) => b.late === 1)).toBe(9);
  });
});

describe('feature-level unlearning and fairness in the model view', () => {
  const fairness = (eod: number) => ({ protectedFeature: 0, groups: [{ group: 0, count: 5, accuracy: 0.9 }], accuracyGap: 0.1, demographicParityDifference: 0.1, equalizedOddsDifference: eod });

  it('reads the fairness change of a forget of samples and of a forget of columns; none without figures', () => {
    expect(fairnessChangeOf({ fairness: { before: fairness(0.3), after: fairness(0.01) } })).toEqual({ before: fairness(0.3), after: fairness(0.01) });
    expect(fairnessChangeOf({ before: { fairness: fairness(0.2) }, after: { fairness: fairness(0.1) } })).toEqual({ before: fairness(0.2), after: fairness(0.1) });
    expect(fairnessChangeOf({ before: { testAccuracy: 1 }, after: { testAccuracy: 1 } })).toBeNull();
  });

  it("shows the columns a version no longer reads (its UNLEARN_COMPLETED.features)", () => {
    const events: LedgerEvent[] = [
      { type: 'DATASET_REGISTERED', version: 1, datasetId: 'd1', name: 'x', features: 3, classes: 2, protectedFeature: 0 },
      batch(1, 0, 0),
      { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm1', modelVersion: 1, onnxSha256: hex(11), manifestHash: hex(12), metrics: { fairness: fairness(0.3) } },
      { type: 'FORGET_REQUESTED', version: 1, requestId: 'r1', datasetId: 'd1', commitments: [], reason: 'regulation', features: [2] },
      batch(2, 0, 0),
      { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm1', modelVersion: 2, onnxSha256: hex(13), manifestHash: hex(14), metrics: {} },
      {
        type: 'UNLEARN_COMPLETED',
        version: 1,
        modelId: 'm1',
        requestIds: ['r1'],
        oldOnnxSha256: hex(11),
        newOnnxSha256: hex(13),
        modelVersion: 2,
        evidence: { features: [2], before: { fairness: fairness(0.3) }, after: { fairness: fairness(0.2) } },
        guarantee: { kind: 'exact' },
        features: [2],
      },
    ];
    const v2 = buildModelVersions(log(events)).find((v) => v.modelVersion === 2)!;
    expect(v2.unlearn).toMatchObject({ features: [2], fairness: { before: fairness(0.3), after: fairness(0.2) } });
  });
});
