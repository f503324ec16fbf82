import { DataSource } from 'typeorm';
import { LedgerError, LedgerEvent } from '@lethe/events';
import { Ledger } from '@lethe/ledger';
import { EngineEvent, LedgerSink } from '@lethe/unlearning';

/**
 * The engine's events into the real Merkle log (one `append`, so one transaction per engine call), and
 * the indices they got. A retried job (its worker crashed after appending but before recording the
 * version) trains again to the very same bytes; then the log already holds that MODEL_PUBLISHED and
 * nothing is appended twice.
 */
export class ModelLedgerSink implements LedgerSink {
  private readonly indices = new Map<string, number>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
  ) {}

  async append(events: EngineEvent[]): Promise<void> {
    const published = events.find((e) => e.type === 'MODEL_PUBLISHED');
    if (published?.type === 'MODEL_PUBLISHED') {
      const logged = await this.findLogged(published.modelId, published.modelVersion);
      const earlier = logged.find((e) => e.type === 'MODEL_PUBLISHED');
      if (earlier) {
        if (earlier.event.onnxSha256 !== published.onnxSha256)
          throw new LedgerError(
            'INVALID_ARGUMENT',
            `model ${published.modelId} version ${published.modelVersion} was published as ${String(earlier.event.onnxSha256)}, now ${published.onnxSha256}`,
            'onnxSha256',
          );
        for (const e of logged) this.indices.set(key(e.type, published.modelId, published.modelVersion), e.index);
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

  private async findLogged(modelId: string, version: number): Promise<{ type: string; index: number; event: Record<string, unknown> }[]> {
    // Canonical JSON (RFC 8785) sorts keys: "modelId" is directly followed by "modelVersion".
    const rows: { idx: string; type: string; event: string }[] = await this.dataSource.query(
      `SELECT idx, type, event FROM ledger_entries WHERE type IN ('MODEL_PUBLISHED', 'UNLEARN_COMPLETED') AND event LIKE $1 ORDER BY idx`,
      [`%${JSON.stringify('modelId')}:${JSON.stringify(modelId)},"modelVersion":${version},%`],
    );
    return rows.map((r) => ({ type: r.type, index: Number(r.idx), event: JSON.parse(r.event) as Record<string, unknown> }));
  }
}

function key(type: string, modelId: string, version: number): string {
  return `${type}|${modelId}|${version}`;
}
