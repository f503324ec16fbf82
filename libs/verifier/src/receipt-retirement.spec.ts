import type { LedgerEvent } from '@lethe/events';
import { hashLeaf, fromHex, toHex } from '@lethe/merkle';
import type { VerificationFailure } from './errors';
import type { ServerSampleReceipt } from './receipt-data';
import { checkRetirements } from './receipt-retirement';
import type { CheckedEntry, ReceiptEntryCheck } from './verify-receipt';

const hex = (s: string) => s.padEnd(64, '0');
const commitment = hex('c0');

/** An entry as verify-receipt hands it over: re-hashed and proven (those checks are not the subject here). */
function checked(index: number, event: LedgerEvent): CheckedEntry {
  const check: ReceiptEntryCheck = { index, type: event.type, leafHash: hex('00'), anchored: null, firstAnchored: null, verified: true };
  return { check, event, failures: [] };
}

/** A batch of the commitment alone: its root is the commitment's leaf hash, the proof empty. */
const learned = (modelVersion: number): LedgerEvent => ({
  type: 'BATCH_LEARNED',
  version: 1,
  modelId: 'm',
  modelVersion,
  shard: 0,
  slice: 1,
  batchRoot: toHex(hashLeaf(fromHex(commitment))),
  count: 1,
  parentCheckpoint: null,
  checkpoint: hex(`a${modelVersion}`),
  hyperparamsHash: hex('h'),
});
const unlearned = (modelVersion: number, requestId: string): LedgerEvent => ({
  type: 'UNLEARN_COMPLETED',
  version: 1,
  modelId: 'm',
  requestIds: [requestId],
  oldOnnxSha256: hex('f0'),
  newOnnxSha256: hex(`f${modelVersion}`),
  modelVersion,
  evidence: {},
});
const retired = (modelVersion: number, requestId: string): LedgerEvent => ({
  type: 'VERSION_RETIRED',
  version: 1,
  modelId: 'm',
  modelVersion,
  onnxSha256: hex(`f${modelVersion}`),
  forgetRequestIds: [requestId],
});

/**
 * Commitment c learned by model m at version 1; request r1 (suspend) unlearns it at version 2 and retires version 1;
 * restored, version 3 learns it again; request r2 forgets it for real at version 4 and retires version 3. Version 2
 * never held c. `retire3`: whether version 3's retirement is in the receipt.
 */
function check(options: { retire3: boolean }): { failures: VerificationFailure[]; versions: { modelVersion: number; retiredBy: number | null }[] } {
  const entries = {
    learnedIn: [checked(1, learned(1)), checked(9, learned(3))],
    unlearnedIn: [checked(5, unlearned(2, 'r1')), checked(12, unlearned(4, 'r2'))],
    retiredVersions: [checked(6, retired(1, 'r1')), ...(options.retire3 ? [checked(13, retired(3, 'r2'))] : [])],
    checkpointsDeleted: [],
  };
  const receipt = {
    commitment,
    forgotten: true,
    learnedIn: [{ position: 0, batchProof: [] }, { position: 0, batchProof: [] }],
  } as unknown as ServerSampleReceipt;
  const request = (index: number, requestId: string, state: string) => ({ ...checked(index, { type: 'FORGET_REQUESTED', version: 1, requestId, datasetId: 'd', commitments: [commitment], reason: 'x' }).check, requestId, state });
  const failures: VerificationFailure[] = [];
  const out = checkRetirements(receipt, entries, [request(3, 'r1', 'restored'), request(11, 'r2', 'completed')], failures);
  return { failures, versions: out.models[0].versions };
}

describe('checkRetirements: a suspended forget request restored, then the commitment forgotten for real', () => {
  it('does not ask the suspension version (which never held the commitment) to be retired', () => {
    const { failures, versions } = check({ retire3: true });
    expect(failures).toEqual([]);
    expect(versions).toEqual([
      { modelVersion: 1, retiredBy: 6 },
      { modelVersion: 3, retiredBy: 13 },
    ]);
  });

  it('control: the restored version, which learned it again, not retired is NOT_RETIRED', () => {
    const { failures } = check({ retire3: false });
    expect(failures.map((f) => f.code)).toEqual(['NOT_RETIRED']);
    expect(failures[0].message).toContain('model m version 3 learned commitment');
  });
});

describe('checkRetirements: a version retired earlier for another subject\'s forget request', () => {
  // Model m learned c (and another subject's sample) at version 1; request rA (the other subject's, not naming c)
  // retired version 1 at entry 6, before c's request rB (entry 11) unlearned c at version 2. No second retirement
  // of version 1 is logged for rB: the version is retired already.
  const request = (index: number, requestId: string, state: string) => ({
    ...checked(index, { type: 'FORGET_REQUESTED', version: 1, requestId, datasetId: 'd', commitments: [commitment], reason: 'x' }).check,
    requestId,
    state,
  });
  const run = (retiredVersions: CheckedEntry[]) => {
    const receipt = { commitment, forgotten: true, learnedIn: [{ position: 0, batchProof: [] }] } as unknown as ServerSampleReceipt;
    const entries = { learnedIn: [checked(1, learned(1))], unlearnedIn: [checked(12, unlearned(2, 'rB'))], retiredVersions, checkpointsDeleted: [] };
    const failures: VerificationFailure[] = [];
    const out = checkRetirements(receipt, entries, [request(11, 'rB', 'completed')], failures);
    return { failures, out };
  };

  it('counts it retired: nothing found', () => {
    const { failures, out } = run([checked(6, retired(1, 'rA'))]);
    expect(failures).toEqual([]);
    expect(out.models[0].versions).toEqual([{ modelVersion: 1, retiredBy: 6 }]);
    expect(out.retiredVersions[0]).toMatchObject({ index: 6, verified: true, modelId: 'm', modelVersion: 1, forgetRequestIds: ['rA'] });
  });

  it('control: with that retirement left out of the receipt, version 1 is NOT_RETIRED', () => {
    const { failures } = run([]);
    expect(failures.map((f) => f.code)).toEqual(['NOT_RETIRED']);
    expect(failures[0].message).toContain('model m version 1 learned commitment');
  });

  it('control: a retirement of a model that never learned the commitment, for another request, is no entry of this receipt (BAD_ENTRY)', () => {
    const { failures } = run([checked(6, retired(1, 'rA')), checked(7, { ...retired(1, 'rA'), modelId: 'other' } as LedgerEvent)]);
    expect(failures.map((f) => [f.code, f.index])).toEqual([['BAD_ENTRY', 7]]);
  });
});
