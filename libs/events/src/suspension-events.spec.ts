import { canonicalizeEvent } from './canonical';
import { LedgerError } from './errors';
import { validateEvent } from './events';

/** The field a refusal names, or undefined when the event is valid. */
function refused(event: object): string | undefined {
  try {
    validateEvent(event);
  } catch (error) {
    if (error instanceof LedgerError) return error.field;
    throw error;
  }
  return undefined;
}

describe('the events of a suspended forget request', () => {
  const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
  const suspended = { type: 'FORGET_SUSPENDED', version: 1, requestId: 'r1', datasetId: 'd', graceDays: 30, deadline: '2027-01-04T05:00:00.000Z' };
  const restored = { type: 'FORGET_RESTORED', version: 1, requestId: 'r1', datasetId: 'd', modelVersions: [{ modelId: 'm', modelVersion: 3, onnxSha256: hex(1) }] };
  const shredded = { type: 'FORGET_SHREDDED', version: 1, requestId: 'r1', datasetId: 'd', cause: 'grace-expired', keysDestroyed: 1 };

  it('accepts each, and a restore that no model needed (a dataset without models)', () => {
    for (const event of [suspended, restored, shredded, { ...restored, modelVersions: [] }, { ...shredded, cause: 'requested', keysDestroyed: 0 }])
      expect(refused(event)).toBeUndefined();
  });

  it('has one canonical form: RFC 8785, keys sorted', () => {
    expect(canonicalizeEvent(shredded as never)).toBe(
      '{"cause":"grace-expired","datasetId":"d","keysDestroyed":1,"requestId":"r1","type":"FORGET_SHREDDED","version":1}',
    );
  });

  it('refuses a bad grace period or deadline, naming the field', () => {
    expect(refused({ ...suspended, graceDays: 0 })).toBe('graceDays');
    expect(refused({ ...suspended, graceDays: '30' })).toBe('graceDays');
    expect(refused({ ...suspended, deadline: '2027-01-04' })).toBe('deadline');
    expect(refused({ ...suspended, deadline: '2027-13-40T05:00:00.000Z' })).toBe('deadline');
  });

  it('refuses a restored version without its hash or number, and an unknown shred cause', () => {
    expect(refused({ ...restored, modelVersions: [{ modelId: 'm', modelVersion: 3, onnxSha256: 'x' }] })).toBe('modelVersions[0].onnxSha256');
    expect(refused({ ...restored, modelVersions: [{ modelId: 'm', onnxSha256: hex(1) }] })).toBe('modelVersions[0].modelVersion');
    expect(refused({ ...restored, modelVersions: {} })).toBe('modelVersions');
    expect(refused({ ...shredded, cause: 'bored' })).toBe('cause');
    expect(refused({ ...shredded, keysDestroyed: -1 })).toBe('keysDestroyed');
  });
});
