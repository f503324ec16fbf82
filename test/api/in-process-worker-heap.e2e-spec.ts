/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
// The service with its own worker (SERVICE_WORKER on, as `npm start` runs by default) is one V8 heap for the API
// and the training: V8's heap grows as a training's (holdHeapForTraining, 200%: fewer full collections) only
// while one of the worker's jobs runs, and the API has V8's own heuristics the rest of the time. (A worker in a
// process of its own, `npm run worker`, keeps the training percent for its whole life: worker.ts.)
import { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { heapGrowingPercent, loadIris, TRAINING_HEAP_GROWING_PERCENT } from '@lethe/unlearning';
import { ModelTrainingService } from '../../apps/api/src/models/model-training.service';
import { uploadDataset } from '../support/api-data';
import { JobHarness, startJobHarness, startWorkerProcess } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { trainSmallModel } from '../verifier/support/iris-history';

describe("the service's in-process worker and V8's heap growing percent", () => {
  let h: JobHarness;
  beforeAll(async () => {
    h = await startJobHarness('in_process_worker_heap');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is the training percent while a job trains, and V8 own (0) before and after', async () => {
    // The percent this process's worker module set last, read while the job trains (the test's wrapper around it).
    const training = (h.worker as unknown as { training: ModelTrainingService }).training;
    const train = training.train.bind(training);
    const whileTraining: number[] = [];
    training.train = (...args: Parameters<ModelTrainingService['train']>) => {
      whileTraining.push(heapGrowingPercent());
      return train(...args);
    };
    expect(heapGrowingPercent()).toBe(0); // the worker started, no job: the API's heap is V8's own
    const { datasetId } = await uploadDataset(h, loadIris().filter((_, i) => i % 3 === 0));
    await trainSmallModel(h, datasetId, 'heap');
    expect(whileTraining).toEqual([TRAINING_HEAP_GROWING_PERCENT]);
    // Set back once the job's run ends, just after its row says completed.
    await waitFor(async () => heapGrowingPercent(), (percent) => percent === 0, 30_000);
  });

  it('is the training percent for the whole life of a worker in a process of its own (npm run worker)', async () => {
    let output = '';
    const preload = join(__dirname, '..', 'support', 'gc-on-signal.js');
    const worker: ChildProcess = await startWorkerProcess(h, { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}` }, (text) => (output += text));
    try {
      worker.kill('SIGUSR2'); // no job runs: the percent is the process's own
      await waitFor(async () => output, (text) => text.includes('gc-on-signal: collected'), 60_000);
    } finally {
      const closed = worker.exitCode === null && worker.signalCode === null ? once(worker, 'close') : Promise.resolve();
      worker.kill('SIGTERM');
      await closed; // its output read to the end: V8's trace lines are flushed at exit
    }
    // Node 20 prints the limit's factor, Node 24 the factor on a line of its own.
    const factors = [...output.matchAll(/\[HeapController\] (?:Limit: .*\((\d+\.\d+)\)|factor (\d+\.\d+) based on)/g)].map((m) => Number(m[1] ?? m[2]));
    expect(factors.length).toBeGreaterThan(0);
    expect(factors[factors.length - 1]).toBe(1 + TRAINING_HEAP_GROWING_PERCENT / 100);
  });
});
