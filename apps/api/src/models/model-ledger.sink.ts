import { LedgerError, LedgerEvent, ModelPublished, UnlearnCompleted } from '@lethe/events';
import { FoundEntry, Ledger } from '@lethe/ledger';
import { EngineEvent, LedgerSink } from '@lethe/unlearning';

/**
 * The engine's events into the real Merkle log (one `append`, so one transaction per engine call), and
 * the indices they got. A retried job (its worker crashed after appending but before recording the
 * version) trains again to the very same bytes; then the log already holds that MODEL_PUBLISHED and
 * nothing is appended twice.
 */
export class ModelLedgerSink implements LedgerSink {
  private readonly indices = new Map<string, number>();

  constructor(private readonly ledger: Ledger) {}

  async append(events: EngineEvent[]): Promise<void> {
    const published = events.find((e) => e.type === 'MODEL_PUBLISHED');
    if (published?.type === 'MODEL_PUBLISHED') {
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
        return;
      }
    }
    const entries = await this.ledger.append(events as LedgerEvent[]);
    events.forEach((event, i) => {
      if (event.type === 'MODEL_PUBLISHED' || event.type === 'UNLEARN_COMPLETED') this.indices.set(key(event.type, event.modelId, event.modelVersion), entries[i].index);
    });
  }

  /** Index of the MODEL_PUBLISHED or UNLEARN_COMPLETED entry of a model version this sink saw. */
  indexOf(type: 'MODEL_PUBLISHED' | 'UNLEARN_COMPLETED', modelId: string, version: number): number | undefined {
    return this.indices.get(key(type, modelId, version));
  }

  private findLogged(modelId: string, version: number): Promise<FoundEntry<ModelPublished | UnlearnCompleted>[]> {
    return this.ledger.findEntries({ type: ['MODEL_PUBLISHED', 'UNLEARN_COMPLETED'], fields: { modelId, modelVersion: version } });
  }
}

function key(type: string, modelId: string, version: number): string {
  return `${type}|${modelId}|${version}`;
}
