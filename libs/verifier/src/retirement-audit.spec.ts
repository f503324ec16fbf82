import type { LedgerEvent } from '@lethe/events';
import { RetirementAudit } from './retirement-audit';

const hex = (s: string) => s.padEnd(64, '0');

/**
 * A model `m` trained (version 1: shard 0 slices a0, a1; shard 1 slice b0), then request r1 forgotten from
 * shard 0 slice 1 (version 2 retrains it: x1), the way the service logs it.
 */
function history(options: { retire?: boolean; deleted?: string[] } = {}): LedgerEvent[] {
  const batch = (modelVersion: number, shard: number, slice: number, checkpoint: string): LedgerEvent => ({
    type: 'BATCH_LEARNED',
    version: 1,
    modelId: 'm',
    modelVersion,
    shard,
    slice,
    batchRoot: hex('r'),
    count: 3,
    parentCheckpoint: null,
    checkpoint: hex(checkpoint),
    hyperparamsHash: hex('h'),
  });
  const events: LedgerEvent[] = [
    batch(1, 0, 0, 'a0'),
    batch(1, 0, 1, 'a1'),
    batch(1, 1, 0, 'b0'),
    { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm', modelVersion: 1, onnxSha256: hex('f1'), manifestHash: hex('m1'), metrics: {} },
    { type: 'FORGET_REQUESTED', version: 1, requestId: 'r1', datasetId: 'd', commitments: [hex('c')], reason: 'erasure' },
    batch(2, 0, 1, 'x1'),
    { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm', modelVersion: 2, onnxSha256: hex('f2'), manifestHash: hex('m2'), metrics: {} },
    { type: 'UNLEARN_COMPLETED', version: 1, modelId: 'm', requestIds: ['r1'], oldOnnxSha256: hex('f1'), newOnnxSha256: hex('f2'), modelVersion: 2, evidence: {} },
  ];
  if (options.retire !== false)
    events.push({ type: 'VERSION_RETIRED', version: 1, modelId: 'm', modelVersion: 1, onnxSha256: hex('f1'), forgetRequestIds: ['r1'] });
  if (options.deleted) events.push({ type: 'CHECKPOINTS_DELETED', version: 1, modelId: 'm', checkpoints: options.deleted.map(hex), forgetRequestIds: ['r1'] });
  return events;
}

function audit(events: LedgerEvent[]): { code: string; index?: number; message: string }[] {
  const a = new RetirementAudit();
  events.forEach((e, i) => a.observe(i, e));
  return a.findings();
}

describe('RetirementAudit', () => {
  it('finds nothing in an honest history: the old version retired, only its unshared checkpoint deleted', () => {
    expect(audit(history({ deleted: ['a1'] }))).toEqual([]);
  });

  it('a version before an unlearned one left unretired: NOT_RETIRED at the UNLEARN_COMPLETED', () => {
    expect(audit(history({ retire: false })).map((f) => [f.code, f.index])).toEqual([['NOT_RETIRED', 7]]);
  });

  it('a later version that no unlearning of the request reaches, left unretired: NOT_RETIRED at its MODEL_PUBLISHED', () => {
    // The model failed to unlearn r2: version 2 is retired for it, version 3 (an unlearning of r3 only) is not.
    const events = history({ deleted: ['a1'] });
    events.push(
      { type: 'FORGET_REQUESTED', version: 1, requestId: 'r2', datasetId: 'd', commitments: [hex('e')], reason: 'erasure' },
      { type: 'VERSION_RETIRED', version: 1, modelId: 'm', modelVersion: 2, onnxSha256: hex('f2'), forgetRequestIds: ['r2'] },
      { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm', modelVersion: 3, onnxSha256: hex('f3'), manifestHash: hex('m3'), metrics: {} },
      { type: 'UNLEARN_COMPLETED', version: 1, modelId: 'm', requestIds: ['r3'], oldOnnxSha256: hex('f2'), newOnnxSha256: hex('f3'), modelVersion: 3, evidence: {} },
    );
    const findings = audit(events);
    expect(findings.map((f) => [f.code, f.index])).toContainEqual(['NOT_RETIRED', 12]);
    expect(findings.find((f) => f.index === 12)!.message).toContain('forget request(s) r2');
  });

  it('a retirement of an unpublished version, with another hash, for an unlogged request, or twice: BAD_ENTRY', () => {
    const retire = (modelVersion: number, onnx: string, requestId: string): LedgerEvent => ({
      type: 'VERSION_RETIRED',
      version: 1,
      modelId: 'm',
      modelVersion,
      onnxSha256: hex(onnx),
      forgetRequestIds: [requestId],
    });
    const findings = audit([...history(), retire(9, 'f9', 'r1'), retire(2, 'f2', 'nobody'), retire(2, 'ff', 'r1'), retire(1, 'f1', 'r1')]);
    expect(findings.map((f) => [f.code, f.index])).toEqual([
      ['BAD_ENTRY', 9],
      ['BAD_ENTRY', 10],
      ['BAD_ENTRY', 11],
      ['BAD_ENTRY', 11],
      ['BAD_ENTRY', 12],
    ]);
    expect(findings.map((f) => f.message)).toEqual([
      expect.stringContaining('not published'),
      expect.stringContaining('forget request nobody'),
      expect.stringContaining(`names file ${hex('ff')}`),
      expect.stringContaining('retires it again (entry 10 did)'),
      expect.stringContaining('retires it again (entry 8 did)'),
    ]);
  });

  it('a deletion of a checkpoint a live version uses, or of one the model never saved: BAD_ENTRY', () => {
    const findings = audit(history({ deleted: ['a0', 'ee'] }));
    expect(findings.map((f) => f.code)).toEqual(['BAD_ENTRY', 'BAD_ENTRY']);
    expect(findings[0].message).toContain(`deletes checkpoint ${hex('a0')}, which model m version 2 uses`);
    expect(findings[1].message).toContain(`deletes ${hex('ee')}, which no BATCH_LEARNED`);
  });

  it('a version approximate unlearning made uses no checkpoint: deleting the slices of the version it came from is fine (control: an exact one that logged no batch reuses them)', () => {
    // Version 2 made from version 1 without retraining (no BATCH_LEARNED): approximate, then version 1 retired and its a1 deleted.
    const made = (guarantee: { kind: 'approximate'; algorithm: 'finetune'; steps: number } | { kind: 'exact' }) =>
      history({ deleted: ['a1'] })
        .filter((e) => !(e.type === 'BATCH_LEARNED' && e.modelVersion === 2))
        .map((e) => (e.type === 'UNLEARN_COMPLETED' ? { ...e, guarantee } : e));
    expect(audit(made({ kind: 'approximate', algorithm: 'finetune', steps: 4 }))).toEqual([]);
    expect(audit(made({ kind: 'exact' })).map((f) => [f.code, f.message])).toEqual([
      ['BAD_ENTRY', `entry 8 (CHECKPOINTS_DELETED) deletes checkpoint ${hex('a1')}, which model m version 2 uses and which is not retired before it`],
    ]);
  });

  it('a restored forget request: a version that learns a deleted slice again after the deletion makes it anew (nothing found), one that reuses it is BAD_ENTRY', () => {
    const relearned = (modelVersion: number, learnAgain: boolean): LedgerEvent[] => [
      ...(learnAgain
        ? [{ type: 'BATCH_LEARNED', version: 1, modelId: 'm', modelVersion, shard: 0, slice: 1, batchRoot: hex('r'), count: 3, parentCheckpoint: null, checkpoint: hex('a1'), hyperparamsHash: hex('h') } as LedgerEvent]
        : []),
      { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm', modelVersion, onnxSha256: hex('f1'), manifestHash: hex('m1'), metrics: {} },
      { type: 'FORGET_RESTORED', version: 1, requestId: 'r1', datasetId: 'd', modelVersions: [{ modelId: 'm', modelVersion, onnxSha256: hex('f1') }] },
    ];
    expect(audit([...history({ deleted: ['a1'] }), ...relearned(3, true)])).toEqual([]);
    // Control: the deletion of a checkpoint a later version uses without learning it again is still found.
    const reused = audit([...history({ deleted: ['x1'] }), ...relearned(3, false)]);
    expect(reused.map((f) => f.code)).toContain('BAD_ENTRY');
  });

  it('a suspended request restored, its sample then forgotten for real: the suspension version, which never held it, need not be retired; a version that held another forgotten sample must', () => {
    // r1 (suspend) forgot commitment c at version 2 (version 1 retired); restored, version 3 learned it again; r2
    // forgets c at version 4 and retires version 3. Version 2 lacked c all along: nothing to find.
    const later = (requestCommitments: string[]): LedgerEvent[] => [
      { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm', modelVersion: 3, onnxSha256: hex('f1'), manifestHash: hex('m1'), metrics: {} },
      { type: 'FORGET_RESTORED', version: 1, requestId: 'r1', datasetId: 'd', modelVersions: [{ modelId: 'm', modelVersion: 3, onnxSha256: hex('f1') }] },
      { type: 'FORGET_REQUESTED', version: 1, requestId: 'r2', datasetId: 'd', commitments: requestCommitments.map(hex), reason: 'erasure' },
      { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm', modelVersion: 4, onnxSha256: hex('f4'), manifestHash: hex('m4'), metrics: {} },
      { type: 'UNLEARN_COMPLETED', version: 1, modelId: 'm', requestIds: ['r2'], oldOnnxSha256: hex('f1'), newOnnxSha256: hex('f4'), modelVersion: 4, evidence: {} },
      { type: 'VERSION_RETIRED', version: 1, modelId: 'm', modelVersion: 3, onnxSha256: hex('f1'), forgetRequestIds: ['r2'] },
    ];
    expect(audit([...history(), ...later(['c'])])).toEqual([]);
    // Control: r2 also forgets commitment e, which version 2 held: its unretired version 2 is NOT_RETIRED.
    const findings = audit([...history(), ...later(['c', 'e'])]);
    expect(findings.map((f) => f.code)).toEqual(['NOT_RETIRED']);
    expect(findings[0].message).toContain('model m version 2');
  });
});

describe('RetirementAudit: rollbacks', () => {
  const rollback = (fromVersion: number, toVersion: number): LedgerEvent => ({ type: 'MODEL_ROLLED_BACK', version: 1, modelId: 'm', fromVersion, toVersion });

  it('a rollback to a retired version brings forgotten data back: BAD_ENTRY naming its forget requests', () => {
    const events = [...history(), rollback(2, 1)];
    expect(audit(events).map((f) => [f.code, f.index, f.message])).toEqual([
      ['BAD_ENTRY', 9, 'entry 9 (MODEL_ROLLED_BACK of model m to version 1) brings back a version retired at entry 8 for forget request(s) r1'],
    ]);
  });

  it('a rollback to a version the log never published: BAD_ENTRY', () => {
    const events = [...history(), rollback(2, 0)];
    expect(audit(events).map((f) => f.message)).toEqual(['entry 9 (MODEL_ROLLED_BACK of model m to version 0) names a version the log has not published before it']);
  });

  it('a rollback to a live version (retired only after it) is fine', () => {
    const events = history({ retire: false });
    const withRollback: LedgerEvent[] = [...events.slice(0, 7), rollback(2, 1), ...events.slice(7)];
    withRollback.push({ type: 'VERSION_RETIRED', version: 1, modelId: 'm', modelVersion: 1, onnxSha256: hex('f1'), forgetRequestIds: ['r1'] });
    expect(audit(withRollback).filter((f) => f.message.includes('MODEL_ROLLED_BACK'))).toEqual([]);
  });
});

describe('RetirementAudit: bias scans', () => {
  const scanned = (modelVersion: number): LedgerEvent => ({
    type: 'BIAS_SCANNED',
    version: 1,
    jobId: 'j1',
    modelId: 'm',
    modelVersion,
    method: 'leave-one-slice-out',
    metric: 'equalizedOddsDifference',
    gapBefore: 0.12,
    candidates: 3,
    candidatesRoot: hex('c'),
  });

  it('a scan of a published version, retired since, is fine; of a version the log has not published before it: BAD_ENTRY', () => {
    expect(audit([...history(), scanned(1), scanned(2)])).toEqual([]);
    expect(audit([...history(), scanned(3)]).map((f) => [f.code, f.index, f.message])).toEqual([
      ['BAD_ENTRY', 9, 'entry 9 (BIAS_SCANNED of model m version 3) scans a version the log has not published before it'],
    ]);
  });
});
