import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryCheckpointStore, createMethod, type Sample, type TrainingConfigInput } from '@lethe/unlearning';
import { runScript } from './run-script';

/** The ONNX SHA-256 of a model trained from scratch on `samples` by its config's method, outside the service: what an unlearned version must equal. */
export async function fromScratchSha256(config: TrainingConfigInput, samples: Sample[]): Promise<string> {
  const method = createMethod(config.method, { store: new MemoryCheckpointStore(), log: () => undefined });
  try {
    return (await method.train({ modelId: 'reference', config, samples })).onnxSha256;
  } finally {
    await method.release();
  }
}

/** A from-scratch training: a config and the samples (features as plain number arrays, so JSON carries them exactly). */
export interface FromScratchJob {
  config: TrainingConfigInput;
  samples: Sample[];
}

/**
 * fromScratchSha256 of each job, in a fresh Node process (print-from-scratch-sha256.ts): no session, cache,
 * checkpoint or weight of this process can reach those trainings, only the config and the samples.
 */
export async function fromScratchSha256sInAnotherProcess(jobs: FromScratchJob[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'lethe-from-scratch-'));
  try {
    const file = join(dir, 'jobs.json');
    writeFileSync(file, JSON.stringify(jobs));
    const run = await runScript('test/support/print-from-scratch-sha256.ts', [file]);
    if (run.code !== 0) throw new Error(`print-from-scratch-sha256 exited with ${run.code}: ${run.stderr}`);
    return JSON.parse(run.stdout) as string[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
