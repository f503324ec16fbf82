/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { placeSample } from './assignment';
import { CheckpointStore, MemoryCheckpointStore } from './checkpoint-store';
import { loadIris, splitTrainTest } from './datasets';
import { MemoryLedgerSink } from './events';
import { Sample } from './samples';
import { ShardDispatcher, ShardResult, ShardTask, ShardTrainer } from './shard-task';
import { createSisaMethod } from './sisa';
import { detectRuntimeEnvelope, RuntimeEnvelope } from './runtime-envelope';
import { commitExamples, irisSisaConfig } from './testing/factories';

const iris = commitExamples(splitTrainTest(loadIris(), { seed: 'iris-split', testFraction: 0.2 }).train);
const config = irisSisaConfig({ epochs: 6 });
const here = detectRuntimeEnvelope();
const elsewhere: RuntimeEnvelope = { ...here, cpuKernels: here.cpuKernels === 'avx2-fma3' ? 'avx512core' : 'avx2-fma3' };

/**
 * Workers in this process: each task runs on a ShardTrainer of its own ("another worker") that reads only the
 * task's samples, found by commitment as a worker reads them from the database, and shares only the store.
 */
class InProcessDispatcher implements ShardDispatcher {
  readonly tasks: ShardTask[] = [];
  readonly logs: string[] = [];

  constructor(readonly store: CheckpointStore, private readonly samples: readonly Sample[], private readonly envelope?: RuntimeEnvelope) {}

  async train(tasks: ShardTask[], onProgress?: (fraction: number) => void, onResult?: (index: number, result: ShardResult) => void): Promise<ShardResult[]> {
    const byCommitment = new Map(this.samples.map((s) => [s.commitment, s]));
    const results: ShardResult[] = [];
    for (const task of JSON.parse(JSON.stringify(tasks)) as ShardTask[]) {
      // As a queue would carry it: JSON, then the samples read by commitment, in another order than the publisher's.
      this.tasks.push(task);
      const worker = new ShardTrainer({ store: this.store, envelope: this.envelope, log: (m) => this.logs.push(m) });
      try {
        const samples = task.commitments.flat().reverse().map((c) => byCommitment.get(c)!);
        results.push(JSON.parse(JSON.stringify(await worker.train(task, samples))) as ShardResult);
        onResult?.(results.length - 1, results[results.length - 1]); // the publisher reads its weights meanwhile
      } finally {
        await worker.release();
      }
      onProgress?.(results.length / tasks.length);
    }
    return results;
  }
}

function idsIn(samples: readonly Sample[], pick: (shard: number, slice: number) => boolean, count: number): string[] {
  return samples
    .filter((s) => {
      const p = placeSample(String(config.seed), s.externalId, config.shards!, config.slices!);
      return pick(p.shard, p.slice);
    })
    .slice(0, count)
    .map((s) => s.externalId);
}

describe('shard tasks: a version trained one task per shard', () => {
  it('publishes the bytes and logs the very events of a training in one process, training and forgetting', async () => {
    const local = new MemoryLedgerSink();
    const single = createSisaMethod({ store: new MemoryCheckpointStore(), ledger: local });
    const store = new MemoryCheckpointStore();
    const dispatcher = new InProcessDispatcher(store, iris);
    const fanned = new MemoryLedgerSink();
    const publisher = createSisaMethod({ store, ledger: fanned, dispatcher });
    try {
      const one = await single.train({ modelId: 'm', config, samples: iris });
      const many = await publisher.train({ modelId: 'm', config, samples: iris });
      expect(many.onnxSha256).toBe(one.onnxSha256);
      expect(dispatcher.tasks.map((t) => [t.shard, t.fromSlice])).toEqual([
        [0, 0],
        [1, 0],
        [2, 0],
      ]);
      expect(fanned.events).toEqual(local.events);

      // A forget touching shards 0 and 2: two tasks, each resuming from the checkpoint before its first affected slice.
      const forget = [...idsIn(iris, (shard, slice) => shard === 0 && slice === 1, 1), ...idsIn(iris, (shard, slice) => shard === 2 && slice === 2, 1)];
      dispatcher.tasks.length = 0;
      const a = await single.forget(one, { requestIds: ['r'], externalIds: forget });
      const b = await publisher.forget(many, { requestIds: ['r'], externalIds: forget });
      expect(dispatcher.tasks.map((t) => [t.shard, t.fromSlice, t.kept.length])).toEqual([
        [0, 1, 1],
        [2, 2, 2],
      ]);
      expect(b.model.onnxSha256).toBe(a.model.onnxSha256);
      expect(b.affected).toEqual(a.affected);
      expect(fanned.events).toEqual(local.events);
      expect(dispatcher.logs).toEqual([]);
    } finally {
      await single.release();
      await publisher.release();
    }
  });

  it('a result made under another runtime envelope is trained again by the publisher, logged: a version never mixes envelopes', async () => {
    const store = new MemoryCheckpointStore();
    const dispatcher = new InProcessDispatcher(store, iris, elsewhere);
    const logs: string[] = [];
    const publisher = createSisaMethod({ store, dispatcher, log: (m) => logs.push(m) });
    const reference = createSisaMethod({ store: new MemoryCheckpointStore() });
    try {
      const model = await publisher.train({ modelId: 'm', config, samples: iris });
      expect(dispatcher.tasks).toHaveLength(3);
      expect(logs).toHaveLength(3);
      for (const shard of [0, 1, 2]) expect(logs[shard]).toContain(`shard ${shard} is trained again here, from slice 0`);
      expect(logs[0]).toContain(`cpu kernels ${elsewhere.cpuKernels}`);
      // Every checkpoint of the version is the publisher's own (the others' are in the store, never referenced).
      expect(model.onnxSha256).toBe((await reference.train({ modelId: 'm', config, samples: iris })).onnxSha256);
    } finally {
      await publisher.release();
      await reference.release();
    }
  });

  it("reads each shard's final weights as soon as its task is done, and a corrupt one still fails the version, naming it", async () => {
    // The store records which checkpoints were read before the dispatcher answered (the publisher's early reads).
    const reads: string[] = [];
    class CountingStore extends MemoryCheckpointStore {
      override async get(hash: string): Promise<Uint8Array | undefined> {
        reads.push(hash);
        return super.get(hash);
      }
    }
    const store = new CountingStore();
    const dispatcher = new InProcessDispatcher(store, iris);
    const reference = createSisaMethod({ store: new MemoryCheckpointStore() });
    let readBeforeAnswer: string[] = [];
    const early: ShardDispatcher = {
      store,
      train: async (tasks, onProgress, onResult) => {
        const results = await dispatcher.train(tasks, onProgress, onResult);
        await new Promise((resolve) => setImmediate(resolve));
        readBeforeAnswer = [...reads];
        return results;
      },
    };
    const publisher = createSisaMethod({ store, dispatcher: early });
    try {
      const model = await publisher.train({ modelId: 'm', config, samples: iris });
      expect(model.onnxSha256).toBe((await reference.train({ modelId: 'm', config, samples: iris })).onnxSha256);
      const finals = model.shards.filter((s) => s.sampleCount > 0).map((s) => s.slices[s.slices.length - 1].checkpoint);
      expect(finals).toHaveLength(3);
      expect(readBeforeAnswer.filter((h) => finals.includes(h)).sort()).toEqual([...finals].sort());
      expect(reads.filter((h) => finals.includes(h))).toHaveLength(3); // each read once: publishing found them in memory

      // A shard whose final checkpoint is corrupt in the store when its task answers: the early read fails quietly,
      // and publishing reads it again and fails with the store's error (nothing published).
      let corrupted = '';
      const corrupting: ShardDispatcher = {
        store,
        train: async (tasks, onProgress, onResult) =>
          dispatcher.train(tasks, onProgress, async (index, result) => {
            const last = result.record.slices[result.record.slices.length - 1];
            if (index === 1) {
              corrupted = last.checkpoint;
              await store.put(last.checkpoint, new Uint8Array([1, 2, 3]));
            }
            onResult?.(index, result);
          }),
      };
      const broken = createSisaMethod({ store, dispatcher: corrupting });
      try {
        const error = await broken.train({ modelId: 'm2', config, samples: iris }).then(() => undefined, (e: unknown) => e);
        expect(corrupted).toMatch(/^[0-9a-f]{64}$/);
        expect(error).toMatchObject({ code: 'CHECKPOINT_CORRUPT', message: expect.stringContaining(`checkpoint ${corrupted} has SHA-256`) });
      } finally {
        await broken.release();
      }
    } finally {
      await publisher.release();
      await reference.release();
    }
  });

  it('a worker that read other samples than its task names fails the task before training', async () => {
    const store = new MemoryCheckpointStore();
    const captured: ShardTask[] = [];
    const capture: ShardDispatcher = {
      store,
      train: async (tasks) => {
        captured.push(...tasks);
        throw new Error('stop here');
      },
    };
    const publisher = createSisaMethod({ store, dispatcher: capture });
    await expect(publisher.train({ modelId: 'm', config, samples: iris })).rejects.toThrow('stop here');
    await publisher.release();
    const worker = new ShardTrainer({ store });
    try {
      const task = captured[1];
      const byCommitment = new Map(iris.map((s) => [s.commitment, s]));
      const own = task.commitments.flat().map((c) => byCommitment.get(c)!);
      const stranger = iris.find((s) => !task.commitments.flat().includes(s.commitment))!;
      await expect(worker.train(task, [...own.slice(1), stranger])).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('do not place as the task says') });
      await expect(worker.train(task, own.slice(1))).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining(`${own.length - 1} were read`) });
      expect(store.size).toBe(0); // nothing trained, nothing stored
    } finally {
      await worker.release();
    }
  });
});
