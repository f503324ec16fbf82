import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AnchoringEngine, type AnchoringLog, type AnchoringPolicy, type ChainConnector, type ConfirmedAnchor } from '@lethe/chain';
import { Ledger } from '@lethe/ledger';
import { HealthReporter } from '../health/health.service';
import { AdvisoryLock, AnchorRecordRepository } from './anchor-record.repository';

/** Advisory lock key held by the one process that anchors ("anchor" in ASCII). */
const ANCHOR_LOCK = 0x616e63686f72;

/**
 * The anchoring engine of @lethe/chain (reorgs, fee replacement, adoption of unrecorded anchors, backoff)
 * wired to this service: it anchors the Ledger and records each confirmed anchor as an ANCHORED entry, keeps
 * its attempts in the `anchors` table, anchors from one process per database (an advisory lock), and
 * reports as `anchoring` in /v1/health.
 */
export class AnchoringLoop extends AnchoringEngine implements HealthReporter {
  readonly name = 'anchoring';

  constructor(dataSource: DataSource, ledger: Ledger, connect: ChainConnector, policy: AnchoringPolicy, now?: () => number) {
    super({
      connect,
      policy,
      now,
      log: new LedgerAnchoringLog(ledger),
      attempts: new AnchorRecordRepository(dataSource),
      lock: new AdvisoryLock(dataSource, ANCHOR_LOCK),
      logger: new Logger('Anchoring'),
    });
  }

  report(): { ok: boolean; [detail: string]: unknown } {
    const status = this.getStatus();
    return { ok: status.state === 'ok' || status.state === 'starting', ...status };
  }
}

/** The Ledger as the log the engine anchors: its ANCHORED entries are the engine's anchor records. */
class LedgerAnchoringLog implements AnchoringLog {
  constructor(private readonly ledger: Ledger) {}

  getCheckpoint(): Promise<{ treeSize: number; rootHash: string }> {
    return this.ledger.getCheckpoint();
  }

  getRoot(treeSize: number): Promise<string> {
    return this.ledger.getRoot(treeSize);
  }

  getConsistencyProof(from: number, to: number): Promise<{ proof: string[] }> {
    return this.ledger.getConsistencyProof(from, to);
  }

  countWaiting(start: number, atMost: number): Promise<number> {
    return this.ledger.countEntries({ start, except: ['ANCHORED'], atMost });
  }

  async findAnchorEntry(txHash: string): Promise<number | null> {
    const [entry] = await this.ledger.findEntries({ type: 'ANCHORED', fields: { txHash }, limit: 1 });
    return entry?.index ?? null;
  }

  async appendAnchorEntry(anchor: ConfirmedAnchor): Promise<number> {
    return (await this.ledger.appendOne({ type: 'ANCHORED', version: 1, ...anchor })).index;
  }
}
