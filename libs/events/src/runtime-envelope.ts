/**
 * The software and CPU a training ran on, besides the code, config and data, that fix its bits (recorded as
 * MODEL_PUBLISHED.runtime): onnxruntime's and Node's versions (Node's Math functions draw the initial
 * weights), the platform and architecture, and the MLAS kernel family inferred from the CPU's features
 * (`cpuKernels`, e.g. "avx512core+avx512vnni", "avx2-fma3", "neon+dot"; onnxruntime does not report it).
 */
export interface RuntimeEnvelope {
  onnxruntime: string;
  node: string;
  platform: string;
  arch: string;
  cpuKernels: string;
}

export const RUNTIME_ENVELOPE_FIELDS: readonly (keyof RuntimeEnvelope)[] = ['onnxruntime', 'node', 'platform', 'arch', 'cpuKernels'];

/** An envelope as one line, e.g. "onnxruntime 1.22.0, node 20.19.0, linux-x64, cpu kernels avx2-fma3 (inferred)". */
export function describeRuntimeEnvelope(envelope: RuntimeEnvelope): string {
  return `onnxruntime ${envelope.onnxruntime}, node ${envelope.node}, ${envelope.platform}-${envelope.arch}, cpu kernels ${envelope.cpuKernels} (inferred)`;
}

/** The fields in which two envelopes differ; none: the same code, config and data are expected to give the same bytes. */
export function compareRuntimeEnvelopes(a: RuntimeEnvelope, b: RuntimeEnvelope): (keyof RuntimeEnvelope)[] {
  return RUNTIME_ENVELOPE_FIELDS.filter((field) => a[field] !== b[field]);
}
