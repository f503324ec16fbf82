import * as ort from 'onnxruntime-node';

/** Threading of onnxruntime sessions. The thread count is fixed per session so results never depend on the machine's load. */
export interface RuntimeOptions {
  /** Threads for one op (default 1). */
  intraOpNumThreads?: number;
}

/** Session options for bit-reproducible CPU runs: fixed thread counts, sequential execution, fixed optimization level. */
export function sessionOptions(options: RuntimeOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: options.intraOpNumThreads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    logSeverityLevel: 3,
    // Flush denormals to zero: tiny gradients then never hit the CPU's slow denormal path (same bits every run).
    extra: { session: { set_denormal_as_zero: '1' } },
  };
}

export async function createSession(bytes: Uint8Array, options: RuntimeOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, sessionOptions(options));
}
