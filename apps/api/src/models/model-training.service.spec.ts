import { MemoryLedgerSink } from '@lethe/unlearning';
import type { EngineEvent } from '@lethe/unlearning';
import { appendingAfter } from './model-training.service';

const event = { type: 'CHECKPOINT_SAVED', version: 1, modelId: 'm', shard: 0, slice: 0, checkpoint: 'c', bytes: 1, weightsSha256: 'h' } as EngineEvent;

describe('appendingAfter (the training plan is stored before the first append)', () => {
  it('appends only once the promise before it has resolved', async () => {
    const sink = new MemoryLedgerSink();
    let store!: () => void;
    const stored = new Promise<void>((resolve) => (store = resolve));
    const appended = appendingAfter(sink, stored).append([event]);
    await new Promise((r) => setImmediate(r));
    expect(sink.events).toHaveLength(0);
    store();
    await appended;
    expect(sink.events).toHaveLength(1);
  });

  it('fails with the error of the promise before it, appending nothing', async () => {
    const sink = new MemoryLedgerSink();
    const failed = Promise.reject(new Error('the plan was not stored'));
    failed.catch(() => undefined);
    await expect(appendingAfter(sink, failed).append([event])).rejects.toThrow('the plan was not stored');
    expect(sink.events).toHaveLength(0);
  });
});
