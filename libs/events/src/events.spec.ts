import { LedgerError } from './errors';
import { validateEvent } from './events';

const published = {
  type: 'MODEL_PUBLISHED',
  version: 1,
  modelId: 'm',
  modelVersion: 1,
  onnxSha256: 'a'.repeat(64),
  manifestHash: 'b'.repeat(64),
  metrics: {},
};
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
