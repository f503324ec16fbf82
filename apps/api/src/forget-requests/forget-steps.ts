import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault, withAdvisoryLock } from '@lethe/ledger';
import { DatasetVersionService } from '../datasets/dataset-version.service';
import { ForgetRequestEntity } from './forget-request.entity';
import { ForgetRequestRepository } from './forget-request.repository';

/** Advisory lock namespace under which one request's steps are logged ("fstp"). */
const STEP_LOCK = 0x66737470;

/**
 * The logged steps of a suspended forget request after its unlearning: FORGET_SUSPENDED (the data kept sealed
 * until the deadline) and the shred (keys destroyed, then FORGET_SHREDDED). Each step's state is stored before its
 * entry is appended, and `finishUnlogged` appends what a stop in between left unlogged, so nothing is logged twice
 * by one process and nothing done goes unlogged.
 */
@Injectable()
export class ForgetSteps {
  private readonly logger = new Logger('ForgetSteps');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly vault: SampleVault,
    private readonly requests: ForgetRequestRepository,
    private readonly datasetVersions: DatasetVersionService,
  ) {}

  /** Appends FORGET_SUSPENDED for a request now `suspended` (its deadline set) and records the entry. */
  async logSuspended(request: ForgetRequestEntity): Promise<number> {
    return this.once(request.id, 'suspend', () => this.appendSuspended(request));
  }

  private async appendSuspended(request: ForgetRequestEntity): Promise<number> {
    const entry = await this.ledger.appendOne({
      type: 'FORGET_SUSPENDED',
      version: 1,
      requestId: request.id,
      datasetId: request.datasetId,
      graceDays: request.graceDays!,
      deadline: request.deadline!.toISOString(),
    });
    await this.requests.recordStep(request.id, 'suspend', entry.index);
    return entry.index;
  }

  /**
   * Erases the samples of a request whose shred is decided (`shred_cause` set, state `completed`): their subjects'
   * keys destroyed (a subject with other samples is sealed again under a fresh key), their rows deleted, then
   * FORGET_SHREDDED appended and recorded. Running it again after a stop destroys nothing twice.
   */
  async shred(request: ForgetRequestEntity): Promise<number> {
    return this.once(request.id, 'shred', () => this.shredAndLog(request));
  }

  private async shredAndLog(request: ForgetRequestEntity): Promise<number> {
    const result = await this.vault.shred(request.datasetId, await this.requests.findCommitments(request.id));
    // The dataset without them (DATASET_VERSIONED); a run again after a stop finds the state versioned already.
    if (result.shredded.length > 0) await this.datasetVersions.recordVersion(request.datasetId);
    const entry = await this.ledger.appendOne({
      type: 'FORGET_SHREDDED',
      version: 1,
      requestId: request.id,
      datasetId: request.datasetId,
      cause: request.shredCause!,
      keysDestroyed: result.keysDestroyed,
    });
    await this.requests.recordStep(request.id, 'shred', entry.index);
    this.logger.log(`forget request ${request.id} shredded (${request.shredCause}): ${result.shredded.length} sample(s) erased, ${result.keysDestroyed} key(s) destroyed`);
    return entry.index;
  }

  /**
   * Runs a step of a request once: under a lock per request, and not again once its entry is recorded (the route's
   * shred and the sweep's finishing of unlogged steps may meet; the second would log a second entry, of nothing).
   */
  private once(id: string, step: 'suspend' | 'shred', run: () => Promise<number>): Promise<number> {
    return withAdvisoryLock(this.dataSource, { namespace: STEP_LOCK, key: id, mode: 'exclusive' }, async () => (await this.requests.findStepIndex(id, step)) ?? run());
  }

  /** Logs the steps a stop left done but unlogged; returns how many. */
  async finishUnlogged(): Promise<number> {
    const suspended = await this.requests.findUnloggedSteps('suspend');
    for (const request of suspended) await this.logSuspended(request);
    const shredded = await this.requests.findUnloggedSteps('shred');
    for (const request of shredded) await this.shred(request);
    return suspended.length + shredded.length;
  }
}
