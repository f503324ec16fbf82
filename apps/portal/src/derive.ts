// What the portal shows, derived from the log's entries alone (no other service data): the timeline, each
// model version's lineage and evidence, and the forget requests' timing from the chain's block timestamps.
// Pure functions, so that what is shown is computed from exactly the entries that were verified.
import {
  checkMembershipEvidence,
  MEMBERSHIP_SIDES,
  type BatchLearned,
  type EvidenceRecorded,
  type ForgetRequested,
  type JsonValue,
  type LedgerEvent,
  type LedgerEventType,
  type MembershipAttackFigures,
  type MembershipEvidence,
  type MembershipInterval,
  type ModelPublished,
  type PrivacyGuarantee,
  type RuntimeEnvelope,
  type UnlearnCompleted,
  type VersionRetired,
  type UnlearnGuarantee,
} from '@lethe/events';
import type { ReflectedForgetRequest } from '@lethe/verifier';

/** An entry as the portal holds it: re-hashed, parsed when valid. */
export interface LogEntry {
  index: number;
  /** Recomputed from the event JSON. */
  leafHash: string;
  /** Null when the JSON is not a valid event. */
  event: LedgerEvent | null;
  /** What is wrong with the entry, if anything (BAD_ENTRY message). */
  problem?: string;
}

export type EventKind = 'learn' | 'forget' | 'anchor';

export const EVENT_KINDS: Record<LedgerEventType, EventKind> = {
  DATASET_REGISTERED: 'learn',
  SAMPLES_COMMITTED: 'learn',
  BATCH_LEARNED: 'learn',
  CHECKPOINT_SAVED: 'learn',
  MODEL_PUBLISHED: 'learn',
  FORGET_REQUESTED: 'forget',
  UNLEARN_COMPLETED: 'forget',
  EVIDENCE_RECORDED: 'forget',
  ANCHORED: 'anchor',
  VERSION_RETIRED: 'forget',
  CHECKPOINTS_DELETED: 'forget',
  FORGET_SUSPENDED: 'forget',
  FORGET_RESTORED: 'learn',
  FORGET_SHREDDED: 'forget',
  DATASET_VERSIONED: 'learn',
  MODEL_ROLLED_BACK: 'learn',
  UNLEARN_HELD: 'forget',
  VERSION_RELEASED: 'forget',
  FORGET_EXTENDED: 'forget',
  LEARN_HELD: 'learn',
  BIAS_SCANNED: 'forget',
};

export interface TimelineItem {
  index: number;
  type: LedgerEventType | 'INVALID';
  kind: EventKind | 'invalid';
  modelId: string | null;
  /** The event's dataset, or for model events the dataset inferred from the forget requests the model served. */
  datasetId: string | null;
  summary: string;
}

export interface TimelineFilter {
  modelId?: string;
  datasetId?: string;
  type?: string;
}

/** Which dataset each model learned, as far as the log tells: the dataset of the forget requests it served. */
export function inferModelDatasets(entries: LogEntry[]): Map<string, string> {
  const requestDataset = new Map<string, string>();
  const modelDataset = new Map<string, string>();
  for (const { event } of entries) {
    if (event?.type === 'FORGET_REQUESTED') requestDataset.set(event.requestId, event.datasetId);
    if (event?.type === 'UNLEARN_COMPLETED') {
      for (const id of event.requestIds) {
        const dataset = requestDataset.get(id);
        if (dataset && !modelDataset.has(event.modelId)) modelDataset.set(event.modelId, dataset);
      }
    }
  }
  return modelDataset;
}

export function buildTimeline(entries: LogEntry[]): TimelineItem[] {
  const modelDatasets = inferModelDatasets(entries);
  return entries.map(({ index, event, problem }) => {
    if (!event) return { index, type: 'INVALID', kind: 'invalid', modelId: null, datasetId: null, summary: problem ?? 'not a valid event' };
    const modelId = 'modelId' in event ? event.modelId : null;
    const datasetId = 'datasetId' in event ? event.datasetId : modelId ? modelDatasets.get(modelId) ?? null : null;
    return { index, type: event.type, kind: EVENT_KINDS[event.type], modelId, datasetId, summary: summarize(event) };
  });
}

export function filterTimeline(items: TimelineItem[], filter: TimelineFilter): TimelineItem[] {
  return items.filter(
    (item) =>
      (!filter.modelId || item.modelId === filter.modelId) &&
      (!filter.datasetId || item.datasetId === filter.datasetId) &&
      (!filter.type || item.type === filter.type || item.kind === filter.type),
  );
}

function summarize(event: LedgerEvent): string {
  switch (event.type) {
    case 'DATASET_REGISTERED':
      return `dataset "${event.name}" registered: ${event.features} features, ${event.classes} classes`;
    case 'SAMPLES_COMMITTED':
      return `${event.count} sample commitments`;
    case 'BATCH_LEARNED':
      return `model version ${event.modelVersion} learned shard ${event.shard}, slice ${event.slice}: ${event.count} samples`;
    case 'CHECKPOINT_SAVED':
      return `checkpoint of shard ${event.shard}, slice ${event.slice}`;
    case 'MODEL_PUBLISHED':
      return `version ${event.modelVersion} published`;
    case 'FORGET_REQUESTED':
      return `forget request ${event.requestId}: ${event.commitments.length} commitment(s), reason "${event.reason}"`;
    case 'UNLEARN_COMPLETED':
      return `version ${event.modelVersion} forgets request(s) ${event.requestIds.join(', ')}`;
    case 'EVIDENCE_RECORDED':
      return `evidence of version ${event.modelVersion} forgetting request(s) ${event.forgetRequestIds.join(', ')}`;
    case 'ANCHORED':
      return `first ${event.treeSize} entries anchored in block ${event.blockNumber} (chain ${event.chainId})`;
    case 'VERSION_RETIRED':
      return `version ${event.modelVersion} retired (its file deleted) for forget request(s) ${event.forgetRequestIds.join(', ')}`;
    case 'CHECKPOINTS_DELETED':
      return `${event.checkpoints.length} checkpoint(s) deleted for forget request(s) ${event.forgetRequestIds.join(', ')}`;
    case 'FORGET_SUSPENDED':
      return `forget request ${event.requestId} suspended: forgotten by every model, its data kept sealed until ${event.deadline} (${event.graceDays} day(s))`;
    case 'FORGET_RESTORED':
      return `forget request ${event.requestId} restored: learned again by ${event.modelVersions.map((v) => `${v.modelId} version ${v.modelVersion}`).join(', ') || 'no model'}`;
    case 'FORGET_SHREDDED':
      return `forget request ${event.requestId} shredded (${event.cause}): ${event.keysDestroyed} data key(s) destroyed`;
    case 'DATASET_VERSIONED':
      return `dataset version ${event.datasetVersion}: ${event.size} live sample(s), root ${event.root.slice(0, 12)}…`;
    case 'MODEL_ROLLED_BACK':
      return `rolled back from version ${event.fromVersion} to version ${event.toVersion}`;
    case 'UNLEARN_HELD':
      return `version ${event.modelVersion} HELD: test accuracy ${event.testAccuracyBefore.toFixed(3)} -> ${event.testAccuracyAfter.toFixed(3)} (drop ${event.drop.toFixed(3)} > limit ${event.maxTestAccuracyDrop})`;
    case 'LEARN_HELD':
      return (
        `version ${event.modelVersion} HELD after a ${event.cause === 'learn' ? `learn (batch ${event.learnBatch})` : 'restore'}: test accuracy ` +
        `${event.testAccuracyBefore.toFixed(3)} (version ${event.fromVersion}) -> ${event.testAccuracyAfter.toFixed(3)} (drop ${event.drop.toFixed(3)} > limit ${event.maxTestAccuracyDrop})`
      );
    case 'VERSION_RELEASED':
      return `held version ${event.modelVersion} released`;
    case 'FORGET_EXTENDED':
      return `forget request ${event.requestId} extended to ${event.newDeadline}: "${event.reason}"`;
    case 'BIAS_SCANNED':
      return `version ${event.modelVersion} scanned for bias (${event.method}): ${event.metric} ${event.gapBefore.toFixed(3)}, ${event.candidates} candidate(s) ranked, root ${event.candidatesRoot.slice(0, 12)}…`;
  }
}

/** A batch a model version reflects: per (shard, slice), the latest BATCH_LEARNED at or before the version. */
export interface LineageBatch {
  index: number;
  modelVersion: number;
  shard: number;
  slice: number;
  count: number;
  batchRoot: string;
  /** The learn batch an appended slice holds (BATCH_LEARNED.learnBatch); null for the slices of the first training. */
  learnBatch: number | null;
}

/** A forget request a version reflects, as verify-model reports it (the same fields, from the same entries). */
export type LineageForgetRequest = ReflectedForgetRequest;

export interface ModelVersionView {
  modelId: string;
  modelVersion: number;
  /** The MODEL_PUBLISHED entry. */
  index: number;
  onnxSha256: string;
  manifestHash: string;
  metrics: { [key: string]: JsonValue };
  /** The runtime envelope its MODEL_PUBLISHED records; null in entries from before it was recorded. */
  runtime: RuntimeEnvelope | null;
  /** The DP-SGD guarantee its MODEL_PUBLISHED records (mechanism, ε, δ, σ, q, steps, clip norm, accountant); null without one. */
  privacy: PrivacyGuarantee | null;
  datasetId: string | null;
  batches: LineageBatch[];
  /** Every forget request the version reflects (this and earlier unlearning steps). */
  forgetRequests: LineageForgetRequest[];
  /** The UNLEARN_COMPLETED entry that produced this version (versions after the first). */
  unlearn: {
    index: number;
    requestIds: string[];
    /** Its evidence: UNLEARN_COMPLETED's, or, for a version published before its evidence, EVIDENCE_RECORDED's. */
    evidence: { [key: string]: JsonValue };
    /** The EVIDENCE_RECORDED entry the evidence comes from (null: from UNLEARN_COMPLETED, or not recorded yet). */
    evidenceIndex: number | null;
    /** The version was published before its evidence, and no EVIDENCE_RECORDED entry has followed yet. */
    evidencePending: boolean;
    affected: { shard: number; fromSlice: number }[];
    /** What the version promises about the samples it forgot (null: from before guarantees were recorded, exact). */
    guarantee: UnlearnGuarantee | null;
    /** Feature-level unlearning: every column the version no longer reads (UNLEARN_COMPLETED.features); null otherwise. */
    features: number[] | null;
    /** The fairness figures before and after, by the dataset's protected column (UNLEARN_COMPLETED.evidence.fairness); null without them. */
    fairness: { before: { [key: string]: JsonValue }; after: { [key: string]: JsonValue } } | null;
  } | null;
  /** Set when the version is retired: the VERSION_RETIRED entry and the forget requests whose samples it learned. */
  retired: { index: number; forgetRequestIds: string[] } | null;
  /**
   * How a version after the first came about without unlearning: `restored` (a FORGET_RESTORED names it: a suspended
   * forget request's samples learned again), or `learned` (it trained slices of its own: online learning).
   */
  learned:
    | { kind: 'restored'; index: number; requestId: string }
    | {
        kind: 'learned';
        /** The learn batches it appended (BATCH_LEARNED.learnBatch of its own appended slices); empty for a learn from before them. */
        learnBatches: number[];
        /** The new samples those slices hold, over every shard, and their BATCH_LEARNED entries. */
        samples: number;
        indices: number[];
      }
    | null;
  /** CHECKPOINTS_DELETED entries that deleted checkpoints of its lineage, and how many of them. */
  checkpointsDeleted: { index: number; count: number }[];
  /** What does not add up in the log for this version. */
  problems: string[];
}

interface At<E> {
  index: number;
  event: E;
}

/** What a learn appended: its own batches that hold a learn batch (appended slices), their batch numbers, samples and entries. */
function describeLearn(own: LineageBatch[]): Extract<ModelVersionView['learned'], { kind: 'learned' }> {
  const appended = own.filter((b) => b.learnBatch !== null);
  return {
    kind: 'learned',
    learnBatches: [...new Set(appended.map((b) => b.learnBatch!))].sort((a, b) => a - b),
    samples: appended.reduce((n, b) => n + b.count, 0),
    indices: appended.map((b) => b.index).sort((a, b) => a - b),
  };
}

/** Each published model version with its lineage and evidence, in log order. */
export function buildModelVersions(entries: LogEntry[]): ModelVersionView[] {
  const published: At<ModelPublished>[] = [];
  const batches: At<BatchLearned>[] = [];
  const unlearned: At<UnlearnCompleted>[] = [];
  const recorded = new Map<string, At<EvidenceRecorded>>();
  const requests = new Map<string, At<ForgetRequested>>();
  const retired = new Map<string, At<VersionRetired>>();
  const deleted: { index: number; checkpoints: Set<string> }[] = [];
  /** FORGET_RESTORED by the model version it names. */
  const restoredIn = new Map<string, At<{ requestId: string }>>();
  for (const { index, event } of entries) {
    if (event?.type === 'FORGET_RESTORED')
      for (const v of event.modelVersions) restoredIn.set(`${v.modelId}/${v.modelVersion}`, { index, event: { requestId: event.requestId } });
    if (event?.type === 'MODEL_PUBLISHED') published.push({ index, event });
    else if (event?.type === 'BATCH_LEARNED') batches.push({ index, event });
    else if (event?.type === 'UNLEARN_COMPLETED') unlearned.push({ index, event });
    else if (event?.type === 'EVIDENCE_RECORDED' && !recorded.has(`${event.modelId}/${event.modelVersion}`))
      recorded.set(`${event.modelId}/${event.modelVersion}`, { index, event });
    else if (event?.type === 'FORGET_REQUESTED' && !requests.has(event.requestId)) requests.set(event.requestId, { index, event });
    else if (event?.type === 'VERSION_RETIRED' && !retired.has(`${event.modelId}/${event.modelVersion}`))
      retired.set(`${event.modelId}/${event.modelVersion}`, { index, event });
    else if (event?.type === 'CHECKPOINTS_DELETED') deleted.push({ index, checkpoints: new Set(event.checkpoints) });
  }
  const datasets = inferModelDatasets(entries);
  return published.map(({ index, event }) => {
    const { modelId, modelVersion } = event;
    const problems: string[] = [];
    const latest = new Map<string, At<BatchLearned>>();
    for (const b of batches) {
      if (b.event.modelId !== modelId || b.event.modelVersion > modelVersion || b.index > index) continue;
      latest.set(`${b.event.shard}/${b.event.slice}`, b);
    }
    const checkpoints = [...latest.values()].map((b) => b.event.checkpoint);
    const lineage = [...latest.values()]
      .map(({ index: i, event: b }) => ({
        index: i,
        modelVersion: b.modelVersion,
        shard: b.shard,
        slice: b.slice,
        count: b.count,
        batchRoot: b.batchRoot,
        learnBatch: b.learnBatch ?? null,
      }))
      .sort((a, b) => a.shard - b.shard || a.slice - b.slice);
    if (lineage.length === 0) problems.push(`no BATCH_LEARNED entry of model ${modelId} up to version ${modelVersion}`);
    const steps = unlearned.filter((u) => u.event.modelId === modelId && u.event.modelVersion <= modelVersion);
    const step = steps.find((u) => u.event.modelVersion === modelVersion) ?? null;
    const restoredBy = restoredIn.get(`${modelId}/${modelVersion}`);
    // A learn only adds samples: each slice it trained holds at least as many as before, one of them more (an
    // unlearning's hold fewer: its UNLEARN_COMPLETED missing stays a problem).
    const before = new Map<string, number>();
    for (const b of batches)
      if (b.event.modelId === modelId && b.event.modelVersion < modelVersion && b.index < index) before.set(`${b.event.shard}/${b.event.slice}`, b.event.count);
    const own = lineage.filter((b) => b.modelVersion === modelVersion);
    const ownBatches =
      own.length > 0 && own.every((b) => b.count >= (before.get(`${b.shard}/${b.slice}`) ?? 0)) && own.some((b) => b.count > (before.get(`${b.shard}/${b.slice}`) ?? 0));
    const learned: ModelVersionView['learned'] =
      modelVersion === 1 || step
        ? null
        : restoredBy
          ? { kind: 'restored', index: restoredBy.index, requestId: restoredBy.event.requestId }
          : ownBatches
            ? describeLearn(own)
            : null;
    if (modelVersion > 1 && !step && !learned) problems.push(`no UNLEARN_COMPLETED entry leads to version ${modelVersion}`);
    // Requests restored at or before this version are learned again: the version does not reflect them.
    const restoredRequests = new Set(
      [...restoredIn.entries()].filter(([key]) => key.startsWith(`${modelId}/`) && Number(key.slice(modelId.length + 1)) <= modelVersion).map(([, r]) => r.event.requestId),
    );
    if (step && step.event.newOnnxSha256 !== event.onnxSha256) {
      problems.push(
        `entry ${step.index} (UNLEARN_COMPLETED) leads to ${step.event.newOnnxSha256}, but version ${modelVersion} is ${event.onnxSha256}`,
      );
    }
    const retiredEntry = retired.get(`${modelId}/${modelVersion}`);
    const forgetRequests: LineageForgetRequest[] = [];
    for (const u of steps) {
      for (const requestId of u.event.requestIds) {
        if (restoredRequests.has(requestId)) continue;
        const requested = requests.get(requestId);
        if (!requested) problems.push(`entry ${u.index} serves forget request ${requestId}, which no FORGET_REQUESTED entry names`);
        forgetRequests.push({
          requestId,
          index: requested?.index ?? null,
          commitments: requested?.event.commitments.length ?? 0,
          unlearnIndex: u.index,
          unlearnVersion: u.event.modelVersion,
          guarantee: u.event.guarantee ?? null,
        });
      }
    }
    return {
      modelId,
      modelVersion,
      index,
      onnxSha256: event.onnxSha256,
      manifestHash: event.manifestHash,
      metrics: event.metrics,
      runtime: event.runtime ?? null,
      privacy: event.privacy ?? null,
      datasetId: datasets.get(modelId) ?? null,
      batches: lineage,
      forgetRequests,
      unlearn: step ? unlearnView(step, recorded.get(`${modelId}/${modelVersion}`), problems) : null,
      retired: retiredEntry ? { index: retiredEntry.index, forgetRequestIds: retiredEntry.event.forgetRequestIds } : null,
      learned,
      checkpointsDeleted: deleted
        .map((d) => ({ index: d.index, count: checkpoints.filter((c) => d.checkpoints.has(c)).length }))
        .filter((d) => d.count > 0),
      problems,
    };
  });
}

/**
 * The fairness figures before and after an unlearning step: evidence.fairness of a forget of samples, or
 * before.fairness and after.fairness of a forget of columns; null when the step has none.
 */
export function fairnessChangeOf(evidence: { [key: string]: JsonValue }): NonNullable<ModelVersionView['unlearn']>['fairness'] {
  const isObject = (v: JsonValue | undefined): v is { [key: string]: JsonValue } => typeof v === 'object' && v !== null && !Array.isArray(v);
  const direct = evidence.fairness;
  if (isObject(direct) && isObject(direct.before) && isObject(direct.after)) return { before: direct.before, after: direct.after };
  const { before, after } = evidence;
  if (isObject(before) && isObject(after) && isObject(before.fairness) && isObject(after.fairness)) return { before: before.fairness, after: after.fairness };
  return null;
}

/** An unlearning step with its evidence: in its UNLEARN_COMPLETED, or in the EVIDENCE_RECORDED that followed it. */
function unlearnView(step: At<UnlearnCompleted>, recorded: At<EvidenceRecorded> | undefined, problems: string[]): NonNullable<ModelVersionView['unlearn']> {
  const later = step.event.evidence.recordedIn === 'EVIDENCE_RECORDED';
  const view = {
    index: step.index,
    requestIds: step.event.requestIds,
    affected: step.event.affected ?? [],
    guarantee: step.event.guarantee ?? null,
    features: step.event.features ?? null,
    fairness: fairnessChangeOf(step.event.evidence),
  };
  if (!recorded || recorded.index < step.index) {
    if (recorded) problems.push(`entry ${recorded.index} (EVIDENCE_RECORDED) comes before the UNLEARN_COMPLETED it is the evidence of (entry ${step.index})`);
    return { ...view, evidence: step.event.evidence, evidenceIndex: null, evidencePending: later };
  }
  if (recorded.event.forgetRequestIds.join() !== step.event.requestIds.join())
    problems.push(
      `entry ${recorded.index} (EVIDENCE_RECORDED) names requests ${recorded.event.forgetRequestIds.join(', ')}, entry ${step.index} ${step.event.requestIds.join(', ')}`,
    );
  if (!later) problems.push(`entry ${recorded.index} (EVIDENCE_RECORDED) follows an UNLEARN_COMPLETED (entry ${step.index}) that carries its own evidence`);
  return { ...view, evidence: recorded.event.evidence, evidenceIndex: recorded.index, evidencePending: false };
}

/** The evidence measures, in the order charts show them. */
export const EVIDENCE_MEASURES = [
  { key: 'retainAccuracy', label: 'retain accuracy' },
  { key: 'forgetAccuracy', label: 'forget accuracy' },
  { key: 'testAccuracy', label: 'test accuracy' },
  // The population loss-threshold AUC: kept as a secondary measure beside the membership attack (it cannot tell a
  // forget from a no-op when one sample touched one of S averaged members).
  { key: 'membershipAuc', label: 'loss-threshold AUC (secondary)' },
] as const;

export interface EvidenceSeries {
  /** before, after, and the retrained reference when the evidence has one. */
  name: 'before' | 'after' | 'reference';
  values: (number | null)[];
}

/** UNLEARN_COMPLETED.evidence as chart series over EVIDENCE_MEASURES; null when it has no before/after. */
export function evidenceSeries(evidence: { [key: string]: JsonValue }): EvidenceSeries[] | null {
  const series: EvidenceSeries[] = [];
  for (const name of ['before', 'after', 'reference'] as const) {
    const part = evidence[name];
    if (typeof part !== 'object' || part === null || Array.isArray(part)) continue;
    series.push({ name, values: EVIDENCE_MEASURES.map(({ key }) => (typeof part[key] === 'number' ? (part[key] as number) : null)) });
  }
  return series.some((s) => s.name === 'before') && series.some((s) => s.name === 'after') ? series : null;
}

/** The membership attack's measures, in the order its charts show them. */
export const MEMBERSHIP_CATEGORIES = [
  { key: 'tprAt1pctFpr', label: 'TPR at 1% FPR' },
  { key: 'tprAt01pctFpr', label: 'TPR at 0.1% FPR' },
  { key: 'auc', label: 'AUC' },
] as const;

export interface MembershipChart {
  attack: 'ensemble' | 'per member';
  /** before, after, reference: values and 95% intervals over MEMBERSHIP_CATEGORIES (null: not resolvable). */
  series: { name: EvidenceSeries['name']; values: (number | null)[]; intervals: (MembershipInterval | null)[] }[];
  /** The forgotten samples flagged at 1% FPR of the held-out ones, per side, when the figures are the canaries'. */
  forgottenFlagged: string | null;
}

/** UNLEARN_COMPLETED.evidence.membership as the portal shows it: charts, or why the attack was skipped. */
export interface MembershipView {
  summary: string;
  skipped: string | null;
  /** Chance level per category (what a model that learned nothing scores). */
  chance: (number | null)[];
  charts: MembershipChart[];
}

/**
 * The membership attack of an evidence, checked against its schema first (the log may hold anything a server
 * wrote): null when the evidence has none, `{ problem }` when it does not match.
 */
export function membershipView(evidence: { [key: string]: JsonValue }): MembershipView | { problem: string } | null {
  if (evidence.membership === undefined) return null;
  try {
    checkMembershipEvidence(evidence.membership, 'evidence.membership');
  } catch (error) {
    return { problem: (error as Error).message };
  }
  const m = evidence.membership as unknown as MembershipEvidence;
  const compared =
    m.population === 'canaries'
      ? `${m.members.canaries} injected canaries vs ${m.nonMembers.canaries} kept out (in evaluation-only copies of the model)`
      : `${m.members.forgotten} forgotten vs ${m.nonMembers.heldOut} held-out samples`;
  const summary = `${m.attack}. ${m.shadowModels} shadow models${m.variance ? ` (${m.variance} variance)` : ''}${m.skipped ? '' : `; ${compared}`}.`;
  if (m.skipped) return { summary, skipped: m.skipped.reason, chance: [], charts: [] };
  const chart = (attack: MembershipChart['attack'], figures: MembershipAttackFigures): MembershipChart => ({
    attack,
    series: MEMBERSHIP_SIDES.map((name) => ({
      name,
      values: MEMBERSHIP_CATEGORIES.map(({ key }) => figures[key][name]),
      intervals: MEMBERSHIP_CATEGORIES.map(({ key }) => figures.ci95[key][name]),
    })),
    forgottenFlagged: figures.forgottenAt1pctFpr
      ? `The ${m.members.forgotten} forgotten sample(s) flagged at 1% FPR of the held-out ones: ` +
        MEMBERSHIP_SIDES.map((side) => `${side} ${Math.round(figures.forgottenAt1pctFpr![side] * m.members.forgotten)}`).join(', ')
      : null,
  });
  return {
    summary,
    skipped: null,
    chance: MEMBERSHIP_CATEGORIES.map(({ key }) => m.chance![key]),
    charts: [chart('ensemble', m as MembershipEvidence & MembershipAttackFigures), ...(m.perMember ? [chart('per member', m.perMember)] : [])],
  };
}

/** An on-chain checkpoint: its size and the timestamp of the block that anchored it. */
export interface ChainCheckpoint {
  number: number;
  treeSize: number;
  timestamp: number;
}

export type ForgetState = 'anchored' | 'unlearned, not anchored yet' | 'not unlearned yet' | 'request not anchored yet';

export interface ForgetTiming {
  requestId: string;
  datasetId: string;
  requestIndex: number;
  commitments: number;
  /** UNLEARN_COMPLETED entries that list the request (one per model), and the versions they published. */
  unlearned: { index: number; modelId: string; modelVersion: number }[];
  /** First on-chain checkpoint covering the FORGET_REQUESTED entry. */
  requestAnchor: ChainCheckpoint | null;
  /** First on-chain checkpoint covering the last UNLEARN_COMPLETED that lists the request. */
  unlearnAnchor: ChainCheckpoint | null;
  state: ForgetState;
  /** unlearnAnchor.timestamp - requestAnchor.timestamp when both exist; else, once the request is anchored, the time elapsed so far. */
  seconds: number | null;
  /** Slower than the deadline (or pending for longer than it). */
  late: boolean;
}

/** The first checkpoint whose tree contains entry `index` (checkpoints in order, sizes growing). */
export function firstCovering(checkpoints: ChainCheckpoint[], index: number): ChainCheckpoint | null {
  let lo = 0;
  let hi = checkpoints.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (checkpoints[mid].treeSize > index) hi = mid;
    else lo = mid + 1;
  }
  return checkpoints[lo] ?? null;
}

/**
 * Request -> unlearned version -> anchored, per forget request, timed by the chain: the block timestamp of
 * the first checkpoint covering the FORGET_REQUESTED entry and of the first covering the (last)
 * UNLEARN_COMPLETED listing it. `nowSeconds` times requests still pending.
 */
export function computeForgetTimings(
  entries: LogEntry[],
  checkpoints: ChainCheckpoint[],
  deadlineSeconds: number,
  nowSeconds: number,
): ForgetTiming[] {
  const timings = new Map<string, ForgetTiming>();
  for (const { index, event } of entries) {
    if (event?.type === 'FORGET_REQUESTED' && !timings.has(event.requestId)) {
      timings.set(event.requestId, {
        requestId: event.requestId,
        datasetId: event.datasetId,
        requestIndex: index,
        commitments: event.commitments.length,
        unlearned: [],
        requestAnchor: firstCovering(checkpoints, index),
        unlearnAnchor: null,
        state: 'not unlearned yet',
        seconds: null,
        late: false,
      });
    } else if (event?.type === 'UNLEARN_COMPLETED') {
      for (const id of event.requestIds)
        timings.get(id)?.unlearned.push({ index, modelId: event.modelId, modelVersion: event.modelVersion });
    }
  }
  for (const t of timings.values()) {
    const last = t.unlearned.at(-1);
    if (last) t.unlearnAnchor = firstCovering(checkpoints, last.index);
    if (!t.requestAnchor) t.state = 'request not anchored yet';
    else if (!last) t.state = 'not unlearned yet';
    else if (!t.unlearnAnchor) t.state = 'unlearned, not anchored yet';
    else t.state = 'anchored';
    if (t.requestAnchor && t.unlearnAnchor) t.seconds = Math.max(0, t.unlearnAnchor.timestamp - t.requestAnchor.timestamp);
    else if (t.requestAnchor) t.seconds = Math.max(0, nowSeconds - t.requestAnchor.timestamp);
    t.late = t.seconds !== null && t.seconds > deadlineSeconds;
  }
  return [...timings.values()];
}

export interface HistogramBin {
  from: number;
  to: number;
  onTime: number;
  late: number;
}

/** Durations (s) of the requests served and anchored, in `bins` equal bins from 0 to past the deadline and the slowest. */
export function timingHistogram(timings: ForgetTiming[], deadlineSeconds: number, bins = 12): HistogramBin[] {
  const done = timings.filter((t) => t.state === 'anchored' && t.seconds !== null);
  const max = Math.max(deadlineSeconds, ...done.map((t) => t.seconds!), 1) * 1.05;
  const width = max / bins;
  const out: HistogramBin[] = Array.from({ length: bins }, (_, i) => ({ from: i * width, to: (i + 1) * width, onTime: 0, late: 0 }));
  for (const t of done) {
    const bin = out[Math.min(bins - 1, Math.floor(t.seconds! / width))];
    if (t.late) bin.late++;
    else bin.onTime++;
  }
  return out;
}
