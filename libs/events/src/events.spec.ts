import { LedgerError } from './errors';
import { validateEvent } from './events';
import { describeGuarantee } from './guarantee';
import { modelPublishedEvent, unlearnCompletedEvent } from './testing/events';
import { bySide, MEMBERSHIP_EVIDENCE, MEMBERSHIP_FIGURES } from './testing/membership-evidence';

const published = modelPublishedEvent();
const runtime = { onnxruntime: '1.22.0', node: '20.19.0', platform: 'linux', arch: 'x64', cpuKernels: 'avx2-fma3' };

function fieldOf(event: object): string | undefined {
  try {
    validateEvent(event);
  } catch (error) {
    if (error instanceof LedgerError) return `${error.code} ${error.field}: ${error.message}`;
    throw error;
  }
  return undefined;
}

describe('MODEL_PUBLISHED.runtime', () => {
  it('is optional (entries written before it was recorded have none) and checked when present', () => {
    expect(fieldOf(published)).toBeUndefined();
    expect(fieldOf({ ...published, runtime })).toBeUndefined();
  });

  it.each([
    ['not an object', 'x86', 'INVALID_EVENT runtime: MODEL_PUBLISHED.runtime must be an object of onnxruntime, node, platform, arch, cpuKernels'],
    ['null', null, 'INVALID_EVENT runtime: MODEL_PUBLISHED.runtime must be an object of onnxruntime, node, platform, arch, cpuKernels'],
    ['without cpuKernels', { onnxruntime: '1.22.0', node: '20.19.0', platform: 'linux', arch: 'x64' }, 'INVALID_EVENT runtime.cpuKernels: MODEL_PUBLISHED.runtime.cpuKernels must be a non-empty string'],
    ['with an empty node', { ...runtime, node: '' }, 'INVALID_EVENT runtime.node: MODEL_PUBLISHED.runtime.node must be a non-empty string'],
  ])('is refused %s, naming the field', (_, value, message) => {
    expect(fieldOf({ ...published, runtime: value })).toBe(message);
  });
});

describe('UNLEARN_COMPLETED.evidence.membership', () => {
  const unlearned = unlearnCompletedEvent();
  const membership = MEMBERSHIP_EVIDENCE;
  const figures = MEMBERSHIP_FIGURES;
  const withMembership = (value: unknown) => unlearnCompletedEvent({ evidence: { ...unlearned.evidence, membership: value } });

  it('is optional (entries from before the attack have none), and checked when present: figures, or why it was skipped', () => {
    expect(fieldOf(unlearned)).toBeUndefined();
    expect(fieldOf(withMembership(membership))).toBeUndefined();
    const { attack, shadowModels, members, nonMembers } = membership;
    expect(fieldOf(withMembership({ attack, shadowModels, members, nonMembers, skipped: { reason: 'too few members' } }))).toBeUndefined();
  });

  it.each([
    ['a number for an object', 0.5, 'evidence.membership', 'UNLEARN_COMPLETED.evidence.membership must be an object'],
    ['no shadow-model count', { ...membership, shadowModels: -1 }, 'evidence.membership.shadowModels', 'must be a non-negative integer'],
    ['an AUC above 1', { ...membership, auc: { ...membership.auc, after: 1.5 } }, 'evidence.membership.auc.after', 'must be a number in [0, 1]'],
    ['a null AUC', { ...membership, auc: { ...membership.auc, before: null } }, 'evidence.membership.auc.before', 'must be a number in [0, 1]'],
    ['a reversed interval', { ...membership, ci95: { ...figures.ci95, auc: { ...figures.ci95.auc, reference: [0.6, 0.4] } } }, 'evidence.membership.ci95.auc.reference', 'with low <= high'],
    ['a TPR without its interval', { ...membership, ci95: { ...figures.ci95, tprAt1pctFpr: { ...figures.ci95.tprAt1pctFpr, after: null } } }, 'evidence.membership.ci95.tprAt1pctFpr.after', 'must be null (with a null value) or [low, high]'],
    ['a per-member TPR as a string', { ...membership, perMember: { ...membership.perMember, tprAt1pctFpr: bySide('0.5') } }, 'evidence.membership.perMember.tprAt1pctFpr.before', 'must be null or a number in [0, 1]'],
    ['an unknown population', { ...membership, population: 'all' }, 'evidence.membership.population', "must be 'canaries' or 'forgotten'"],
    ['chance levels as a number', { ...membership, chance: 0.5 }, 'evidence.membership.chance', 'must be an object'],
    ['a chance AUC of null', { ...membership, chance: { ...membership.chance, auc: null } }, 'evidence.membership.chance.auc', 'must be a number in [0, 1]'],
    ['a model hash in capitals', { ...membership, models: { ...membership.models, after: 'B'.repeat(64) } }, 'evidence.membership.models.after', 'must be 32 bytes of lowercase hex'],
    ['an empty reason to skip', { ...membership, skipped: { reason: '' } }, 'evidence.membership.skipped.reason', 'must be a non-empty string'],
  ])('is refused with %s, naming the field', (_, value, field, message) => {
    const found = fieldOf(withMembership(value));
    expect(found).toContain(`INVALID_EVENT ${field}:`);
    expect(found).toContain(message);
  });
});

/** `event` without the field `name`. */
function without(event: Record<string, unknown>, name: string): Record<string, unknown> {
  const { [name]: _, ...rest } = event;
  return rest;
}

describe('the retirement events', () => {
  const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
  const retired = { type: 'VERSION_RETIRED', version: 1, modelId: 'm', modelVersion: 1, onnxSha256: hex(1), forgetRequestIds: ['r1'] };
  const deleted = { type: 'CHECKPOINTS_DELETED', version: 1, modelId: 'm', checkpoints: [hex(2), hex(3)], forgetRequestIds: ['r1'] };
  /** The field a refusal names. */
  const refused = (event: object) => fieldOf(event)?.split(':')[0];

  it('accepts a VERSION_RETIRED and a CHECKPOINTS_DELETED', () => {
    expect(fieldOf(retired)).toBeUndefined();
    expect(fieldOf(deleted)).toBeUndefined();
  });

  it('refuses either without the requests that caused it, naming the field', () => {
    expect(refused({ ...retired, forgetRequestIds: [] })).toBe('INVALID_EVENT forgetRequestIds');
    expect(refused(without(deleted, 'forgetRequestIds'))).toBe('INVALID_EVENT forgetRequestIds');
  });

  it('refuses a VERSION_RETIRED without a version number or with a malformed hash', () => {
    expect(refused(without(retired, 'modelVersion'))).toBe('INVALID_EVENT modelVersion');
    expect(refused({ ...retired, onnxSha256: 'AB'.repeat(32) })).toBe('INVALID_EVENT onnxSha256');
  });

  it('refuses a CHECKPOINTS_DELETED that deletes nothing or names a malformed address', () => {
    expect(refused({ ...deleted, checkpoints: [] })).toBe('INVALID_EVENT checkpoints');
    expect(refused({ ...deleted, checkpoints: [hex(2), 'not-hex'] })).toBe('INVALID_EVENT checkpoints');
  });
});

describe('UNLEARN_COMPLETED.guarantee', () => {
  const completed = unlearnCompletedEvent();
  const certified = { kind: 'certified', epsilon: 1, delta: 1e-5, residualBound: 0.01, budget: 0.2, budgetUsed: 0.02, retrained: false };

  it('is optional (entries from before it was recorded were exact) and taken in each of its kinds', () => {
    expect(fieldOf(completed)).toBeUndefined();
    expect(fieldOf({ ...completed, guarantee: { kind: 'exact' } })).toBeUndefined();
    expect(fieldOf({ ...completed, guarantee: certified })).toBeUndefined();
    expect(fieldOf({ ...completed, guarantee: { kind: 'approximate', algorithm: 'neggrad+', steps: 12 } })).toBeUndefined();
  });

  it.each([
    ['not an object', 'exact', 'INVALID_EVENT guarantee: UNLEARN_COMPLETED.guarantee must be an object {kind, ...}'],
    ['of an unknown kind', { kind: 'probable' }, "INVALID_EVENT guarantee.kind: UNLEARN_COMPLETED.guarantee.kind must be one of 'exact', 'certified', 'approximate'"],
    ['with a delta of 1', { ...certified, delta: 1 }, 'INVALID_EVENT guarantee.delta: UNLEARN_COMPLETED.guarantee.delta must be a number in (0, 1)'],
    ['with a negative bound', { ...certified, residualBound: -1 }, 'INVALID_EVENT guarantee.residualBound: UNLEARN_COMPLETED.guarantee.residualBound must be a finite number >= 0'],
    ['with retrained not a boolean', { ...certified, retrained: 'no' }, 'INVALID_EVENT guarantee.retrained: UNLEARN_COMPLETED.guarantee.retrained must be a boolean'],
    ['of an unknown algorithm', { kind: 'approximate', algorithm: 'amnesia', steps: 1 }, 'INVALID_EVENT guarantee.algorithm: UNLEARN_COMPLETED.guarantee.algorithm must be one of finetune, neggrad+, scrub'],
    ['with fractional steps', { kind: 'approximate', algorithm: 'scrub', steps: 1.5 }, 'INVALID_EVENT guarantee.steps: UNLEARN_COMPLETED.guarantee.steps must be a non-negative integer'],
    ['exact with a budget', { kind: 'exact', budget: 1 }, "INVALID_EVENT guarantee.budget: UNLEARN_COMPLETED.guarantee.budget must be absent from a guarantee of kind 'exact'"],
  ])('is refused %s, naming the field', (_, value, message) => {
    expect(fieldOf({ ...completed, guarantee: value })).toBe(message);
  });
});

describe('DATASET_REGISTERED.retentionDays', () => {
  const registered = { type: 'DATASET_REGISTERED', version: 1, datasetId: 'd1', name: 'iris', features: 4, classes: 3 };

  it('is optional (entries written before it was recorded have none) and taken when a positive number of days', () => {
    expect(fieldOf(registered)).toBeUndefined();
    expect(fieldOf({ ...registered, retentionDays: 30 })).toBeUndefined();
    expect(fieldOf({ ...registered, retentionDays: 0.00005 })).toBeUndefined();
  });

  it.each([0, -1, '30', null])('is refused as %p, naming the field', (value) => {
    expect(fieldOf({ ...registered, retentionDays: value })).toBe('INVALID_EVENT retentionDays: DATASET_REGISTERED.retentionDays must be a finite number > 0');
  });
});

describe('BATCH_LEARNED.learnBatch', () => {
  const learned = {
    type: 'BATCH_LEARNED',
    version: 1,
    modelId: 'm1',
    modelVersion: 2,
    shard: 0,
    slice: 3,
    batchRoot: 'a'.repeat(64),
    count: 4,
    parentCheckpoint: 'b'.repeat(64),
    checkpoint: 'c'.repeat(64),
    hyperparamsHash: 'd'.repeat(64),
  };

  it('is optional (the slices of a first training have none) and taken as the learn batch of an appended slice', () => {
    expect(fieldOf(learned)).toBeUndefined();
    expect(fieldOf({ ...learned, learnBatch: 1 })).toBeUndefined();
  });

  it.each([-1, 1.5, '1', null])('is refused as %p, naming the field', (value) => {
    expect(fieldOf({ ...learned, learnBatch: value })).toBe('INVALID_EVENT learnBatch: BATCH_LEARNED.learnBatch must be a non-negative integer');
  });
});

describe('describeGuarantee', () => {
  it('never calls an approximate unlearning forgotten without its qualifier, and says what each kind promises', () => {
    expect(describeGuarantee({ kind: 'approximate', algorithm: 'scrub', steps: 40 })).toBe(
      'approximately forgotten (scrub, 40 steps): no guarantee, only evidence',
    );
    expect(describeGuarantee({ kind: 'exact' })).toBe('exact: the bytes a training without the samples gives');
    expect(describeGuarantee(undefined)).toBe(describeGuarantee({ kind: 'exact' }));
    expect(describeGuarantee({ kind: 'certified', epsilon: 1, delta: 1e-5, residualBound: 0.01234, budget: 0.228, budgetUsed: 0.0456, retrained: false })).toBe(
      'certified removal, (ε = 1, δ = 0.00001): one Newton step; residual bound 0.0123, budget used 0.0456 of 0.228',
    );
    expect(describeGuarantee({ kind: 'certified', epsilon: 1, delta: 1e-5, residualBound: 0.3, budget: 0.228, budgetUsed: 0.009, retrained: true })).toContain('retrained from scratch');
  });
});

describe('features (feature-level unlearning)', () => {
  const requested = { type: 'FORGET_REQUESTED', version: 1, requestId: 'r', datasetId: 'd', commitments: [], reason: 'regulation' };
  const unlearned = { type: 'UNLEARN_COMPLETED', version: 1, modelId: 'm', requestIds: ['r'], oldOnnxSha256: 'a'.repeat(64), newOnnxSha256: 'b'.repeat(64), modelVersion: 2, evidence: {} };

  it('is optional on FORGET_REQUESTED and UNLEARN_COMPLETED and accepted when well formed', () => {
    for (const event of [requested, unlearned]) {
      expect(fieldOf(event)).toBeUndefined();
      expect(fieldOf({ ...event, features: [0, 3] })).toBeUndefined();
    }
  });

  it.each([
    ['empty', []],
    ['unsorted', [3, 1]],
    ['duplicated', [1, 1]],
    ['negative', [-1]],
    ['fractional', [1.5]],
    ['a string', ['1']],
  ])('is refused %s, naming the field', (_, features) => {
    expect(fieldOf({ ...requested, features })).toBe(
      'INVALID_EVENT features: FORGET_REQUESTED.features must be a non-empty ascending array of distinct column indexes (non-negative integers)',
    );
    expect(fieldOf({ ...unlearned, features })).toMatch(/^INVALID_EVENT features: UNLEARN_COMPLETED.features/);
  });
});
