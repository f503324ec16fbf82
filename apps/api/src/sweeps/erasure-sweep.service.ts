import { Injectable, Logger } from '@nestjs/common';
import { SampleVault } from '@lethe/ledger';
import { IdempotencyService } from '../auth/idempotency.service';
import { IntervalSweep } from './interval-sweep';

/** How often the sweep runs. */
export const SWEEP_EVERY_MS = 5 * 60_000;
/** Rows without their log entry younger than this may belong to an upload still running elsewhere; older ones are orphans. */
export const ORPHAN_AFTER_MS = 10 * 60_000;

export interface SweepResult {
  /** Idempotency rows older than IDEMPOTENCY_TTL_HOURS, deleted. */
  idempotencyExpired: number;
  /** Data keys whose destruction a crash interrupted, destroyed now (their rows deleted). */
  keysFinished: number;
  /** Orphaned samples whose SAMPLES_COMMITTED entry exists (adopted) or does not (erased: keys destroyed, rows deleted). */
  orphansAdopted: number;
  orphansErased: number;
}

/**
 * What erasure leaves to be finished, swept every SWEEP_EVERY_MS in the service (once at start too): expired
 * idempotency rows, key destructions cut short, and orphaned sample rows older than ORPHAN_AFTER_MS. Each step
 * is idempotent, so several processes may sweep one database. Its log line carries counts only.
 */
@Injectable()
export class ErasureSweep extends IntervalSweep {
  constructor(
    private readonly vault: SampleVault,
    private readonly idempotency: IdempotencyService,
  ) {
    super(new Logger('Sweep'), 'sweep');
  }

  protected get everyMs(): number {
    return SWEEP_EVERY_MS;
  }

  async sweep(orphanAfterMs = ORPHAN_AFTER_MS): Promise<SweepResult> {
    const idempotencyExpired = await this.idempotency.deleteExpired();
    // One erasure pass: the key store's clean-up (VACUUM FULL of its table) once, not per dataset's orphans.
    const [keysFinished, orphans] = await this.vault.inErasurePass(
      async () => [await this.vault.finishDestroying(), await this.vault.recoverOrphans(orphanAfterMs)] as const,
    );
    const result = { idempotencyExpired, keysFinished, orphansAdopted: orphans.adopted, orphansErased: orphans.erased };
    if (Object.values(result).some((n) => n > 0)) this.logger.log(`swept: ${JSON.stringify(result)}`);
    return result;
  }
}
