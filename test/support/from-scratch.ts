import { MemoryCheckpointStore, createSisaMethod, type Sample, type TrainingConfigInput } from '@lethe/unlearning';

/** The ONNX SHA-256 of a SISA model trained from scratch on `samples`, outside the service: what an unlearned version must equal. */
export async function fromScratchSha256(config: TrainingConfigInput, samples: Sample[]): Promise<string> {
  const sisa = createSisaMethod({ store: new MemoryCheckpointStore() });
  try {
    return (await sisa.train({ modelId: 'reference', config, samples })).onnxSha256;
  } finally {
    await sisa.release();
  }
}
