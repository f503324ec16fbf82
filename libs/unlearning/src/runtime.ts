import * as ort from 'onnxruntime-node';
import { setFlagsFromString } from 'node:v8';

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

/** Old-generation growth per full collection in a training process: the heap may triple before the next. */
export const TRAINING_HEAP_GROWING_PERCENT = 200;

/**
 * Tunes V8's heap growth for a process that trains (the service's workers, the bench). Every run makes
 * onnxruntime-node copy its outputs into fresh ArrayBuffers (it does so even for preallocated outputs); when
 * each step was a run of its own, that was the new weights every step (now a run takes up to 256 steps).
 * Measured at Purchase 200k (a 160,000-sample dataset held by the engine, 168 MB live heap): V8 set its
 * old-generation limit at 200 MB and started a full collection every 0.4 s; a full retrain took 25.3 s, and
 * V8's background threads spent 17.5 s of CPU besides the main thread's 19.4 s. With this: 16.4 s, 2.0 s in
 * the background. Memory may grow to three times the live heap between full collections instead. The bytes
 * trained are the same; only the garbage collector's schedule changes.
 *
 * For the whole life of a process that only trains (`npm run worker`, a bench): the percent it returns to when
 * the last `holdHeapForTraining` ends. A process that also serves (the service with its own worker) holds it
 * only while a job runs instead.
 */
export function configureHeapForTraining(percent = TRAINING_HEAP_GROWING_PERCENT): void {
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000)
    throw new RangeError(`heap growing percent must be an integer in [0, 1000], got ${percent}`);
  heap.baseline = percent;
  setHeapGrowingPercent(heap.holds > 0 ? TRAINING_HEAP_GROWING_PERCENT : percent);
}

/**
 * TRAINING_HEAP_GROWING_PERCENT while training runs, in a process that also serves requests: the service with
 * its in-process worker (SERVICE_WORKER on) holds it for each job, so that its heap grows threefold between
 * full collections only while a job trains, and V8's own heuristics (or the percent `configureHeapForTraining`
 * set) come back once the last job holding it ends — at the next full collection, which sets the next limit.
 * One V8 heap serves both, so requests answered while a job runs share its setting. Returns the end of this
 * hold (once; later calls do nothing).
 */
export function holdHeapForTraining(): () => void {
  heap.holds += 1;
  if (heap.holds === 1) setHeapGrowingPercent(TRAINING_HEAP_GROWING_PERCENT);
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    heap.holds -= 1;
    if (heap.holds === 0) setHeapGrowingPercent(heap.baseline);
  };
}

/** The heap growing percent this module last gave V8 (0: V8's own heuristics, the default of a process). */
export function heapGrowingPercent(): number {
  return heap.percent;
}

const heap = { baseline: 0, holds: 0, percent: 0 };

function setHeapGrowingPercent(percent: number): void {
  if (percent === heap.percent) return;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  heap.percent = percent;
}
