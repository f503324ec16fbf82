import { EvidenceRecorded, LearnHeld, LedgerError, LedgerEvent, ModelPublished, UnlearnCompleted, canonicalizeEvent } from '@lethe/events';
import { FoundEntry, Ledger } from '@lethe/ledger';
import { batchKey, EngineEvent, LedgerSink, UnlearnCompletedEvent } from '@lethe/unlearning';

export interface ModelLedgerSinkOptions {
  /**
   * Called before the append that carries an UNLEARN_COMPLETED; the events it returns are appended with it,
   * in the same transaction (the versions it leaves behind retired at the very entry that replaces them).
   */
  onUnlearned?: (event: UnlearnCompletedEvent) => Promise<LedgerEvent[]>;
  /** Called before an EVIDENCE_RECORDED is appended; the events it returns (an UNLEARN_HELD) are appended with it. */
  onEvidence?: (event: EvidenceRecorded) => LedgerEvent[];
  /**
   * Called before the append of a version made without unlearning (a learn, a restore: a MODEL_PUBLISHED and no
   * UNLEARN_COMPLETED), with its events; what it returns (a LEARN_HELD) is appended after them, in the same transaction.
   */
  onPublished?: (published: Extract<EngineEvent, { type: 'MODEL_PUBLISHED' }>, events: EngineEvent[]) => LedgerEvent[];
  /**
   * Whether the log may already hold a version this sink appends (true, the default: a retried pass, or one
   * after a crash, trains again to the very same bytes). False from an unlearning pass that made no crash
   * recovery look-up (UnlearningPassOptions.recover: nothing can have been left half done): the look-up before
   * each append is then skipped, as the pass skipped its own.
   */
  mayBeLogged?: boolean;
}

type HeldType = 'UNLEARN_HELD' | 'LEARN_HELD';

/**
 * The engine's events into the real Merkle log (one `append`, so one transaction per engine call), and
 * the indices they got. A retried job (its worker crashed after appending but before recording the
 * version) trains again to the very same bytes; then the log already holds that MODEL_PUBLISHED and
 * nothing is appended twice.
 */
export class ModelLedgerSink implements LedgerSink {
  private readonly indices = new Map<string, number>();
  /** BATCH_LEARNED entries by model version, then by batchKey(shard, slice). */
  private readonly batches = new Map<string, Map<string, number>>();
  /** The LEARN_HELD events this sink appended or found, by key('LEARN_HELD', model, version). */
  private readonly learnHolds = new Map<string, LearnHeld>();

  constructor(
    private readonly ledger: Ledger,
    private readonly options: ModelLedgerSinkOptions = {},
  ) {}

  async append(events: EngineEvent[]): Promise<void> {
    const [first] = events;
    if (events.length === 1 && first.type === 'EVIDENCE_RECORDED') {
      // A retried pass measures the evidence again; once logged, it is not appended twice.
      const [logged] = await this.ledger.findEntries({ type: 'EVIDENCE_RECORDED', fields: { modelId: first.modelId, modelVersion: first.modelVersion }, limit: 1 });
      if (logged) {
        this.record(first, logged.index);
        await this.recoverHeld(logged.index);
        return;
      }
      const all = [first as EvidenceRecorded, ...(this.options.onEvidence?.(first as EvidenceRecorded) ?? [])];
      const entries = await this.ledger.append(all);
      all.forEach((event, i) => this.record(event, entries[i].index));
      return;
    }
    const published = events.find((e) => e.type === 'MODEL_PUBLISHED');
    if (published?.type === 'MODEL_PUBLISHED' && this.options.mayBeLogged !== false) {
      const logged = await this.findLogged(published.modelId, published.modelVersion);
      const earlier = logged.map((e) => e.event).find((e): e is ModelPublished => e.type === 'MODEL_PUBLISHED');
      if (earlier) {
        if (earlier.onnxSha256 !== published.onnxSha256)
          throw new LedgerError(
            'INVALID_ARGUMENT',
            `model ${published.modelId} version ${published.modelVersion} was published as ${earlier.onnxSha256}, now ${published.onnxSha256}`,
            'onnxSha256',
          );
        for (const e of logged) this.indices.set(key(e.event.type, published.modelId, published.modelVersion), e.index);
        const unlearnedEntry = logged.find((e) => e.event.type === 'UNLEARN_COMPLETED');
        // A guard's hold is the entry right after the UNLEARN_COMPLETED, or after the MODEL_PUBLISHED of a learn.
        await this.recoverHeld((unlearnedEntry ?? logged.find((e) => e.event.type === 'MODEL_PUBLISHED')!).index);
        await this.recoverBatchIndices(events, logged.find((e) => e.event.type === 'MODEL_PUBLISHED')!.index);
        return;
      }
    }
    const unlearned = events.find((e) => e.type === 'UNLEARN_COMPLETED');
    const extra =
      unlearned?.type === 'UNLEARN_COMPLETED'
        ? this.options.onUnlearned
          ? await this.options.onUnlearned(unlearned)
          : []
        : published?.type === 'MODEL_PUBLISHED' && this.options.onPublished
          ? this.options.onPublished(published, events)
          : [];
    const all = [...(events as LedgerEvent[]), ...extra];
    const entries = await this.ledger.append(all);
    all.forEach((event, i) => this.record(event, entries[i].index));
  }

  /** Index of the MODEL_PUBLISHED, UNLEARN_COMPLETED or EVIDENCE_RECORDED entry of a model version this sink saw. */
  indexOf(type: 'MODEL_PUBLISHED' | 'UNLEARN_COMPLETED' | 'EVIDENCE_RECORDED' | HeldType, modelId: string, version: number): number | undefined {
    return this.indices.get(key(type, modelId, version));
  }

  /** The LEARN_HELD of a model version this sink appended (or found logged by a stopped attempt), and its entry. */
  learnHeldOf(modelId: string, version: number): { event: LearnHeld; ledgerIndex: number } | undefined {
    const event = this.learnHolds.get(key('LEARN_HELD', modelId, version));
    return event && { event, ledgerIndex: this.indexOf('LEARN_HELD', modelId, version)! };
  }

  /** The BATCH_LEARNED entries of a model version this sink saw, by batchKey(shard, slice): the slices it (re)trained. */
  batchesOf(modelId: string, version: number): Map<string, number> {
    return this.batches.get(`${modelId}|${version}`) ?? new Map();
  }

  /**
   * An UNLEARN_HELD is appended first among the events that go with an UNLEARN_COMPLETED or EVIDENCE_RECORDED (the
   * sink's callers put it there), a LEARN_HELD right after a learn's MODEL_PUBLISHED, so the entry right after one
   * logged earlier tells whether the guard held it.
   */
  private async recoverHeld(index: number): Promise<void> {
    const [next] = await this.ledger.getEntries(index + 1, 1);
    if (!next) return;
    const event = JSON.parse(next.event) as LedgerEvent;
    if (event.type === 'UNLEARN_HELD' || event.type === 'LEARN_HELD') this.record(event, next.index);
  }

  private record(event: EngineEvent | LedgerEvent, index: number): void {
    if (
      event.type === 'MODEL_PUBLISHED' ||
      event.type === 'UNLEARN_COMPLETED' ||
      event.type === 'EVIDENCE_RECORDED' ||
      event.type === 'UNLEARN_HELD' ||
      event.type === 'LEARN_HELD'
    )
      this.indices.set(key(event.type, event.modelId, event.modelVersion), index);
    if (event.type === 'LEARN_HELD') this.learnHolds.set(key(event.type, event.modelId, event.modelVersion), event);
    if (event.type === 'BATCH_LEARNED') {
      const version = `${event.modelId}|${event.modelVersion}`;
      if (!this.batches.has(version)) this.batches.set(version, new Map());
      this.batches.get(version)!.set(batchKey(event.shard, event.slice), index);
    }
  }

  /**
   * The entries of one engine call were appended together (consecutive indices): those before its
   * MODEL_PUBLISHED are found from that entry's index, and checked to be the very events given now.
   */
  private async recoverBatchIndices(events: EngineEvent[], publishedIndex: number): Promise<void> {
    const position = events.findIndex((e) => e.type === 'MODEL_PUBLISHED');
    const first = publishedIndex - position;
    for (let start = 0; start < position; start += 1000) {
      const stored = await this.ledger.getEntries(first + start, Math.min(1000, position - start));
      stored.forEach((entry, k) => {
        const event = events[start + k];
        if (entry.event !== canonicalizeEvent(event as LedgerEvent))
          throw new LedgerError('CORRUPT', `entry ${entry.index} is not the ${event.type} published with entry ${publishedIndex}`);
        this.record(event, entry.index);
      });
    }
  }

  private findLogged(modelId: string, version: number): Promise<FoundEntry<ModelPublished | UnlearnCompleted>[]> {
    return this.ledger.findEntries({ type: ['MODEL_PUBLISHED', 'UNLEARN_COMPLETED'], fields: { modelId, modelVersion: version } });
  }
}

function key(type: string, modelId: string, version: number): string {
  return `${type}|${modelId}|${version}`;
}
