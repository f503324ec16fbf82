import { ConflictException, Inject, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { SampleVault } from '@lethe/ledger';
import { Principal } from '../auth/role';
import { APP_CONFIG } from '../config/config.provider';
import { IntervalSweep } from '../sweeps/interval-sweep';
import type { AppConfig } from '../config/config';
import { JobRepository } from '../jobs/job.repository';
import { CreatedForgetRequestResponseDto, toCreatedForgetRequestResponse } from './forget-request.dto';
import { ForgetRequestRepository } from './forget-request.repository';
import { FORGET_REQUEST_QUEUE, ForgetRequestQueue } from './forget-request.queue';
import { ForgetRequestService } from './forget-request.service';
import { ForgetSteps } from './forget-steps';

/**
 * Retention: samples past their expiry (their expiresAt, or their dataset's retentionDays) get a forget request
 * (reason `retention`, one per dataset and sweep), served like any other.
 * What happens to a suspended forget request: restored (its samples learned again by the dataset's next unlearning
 * pass: state restoring, then restored and FORGET_RESTORED), or shredded (keys destroyed, state completed,
 * FORGET_SHREDDED), on request or by the sweep once its deadline has passed. The sweep runs every
 * RETENTION_SWEEP_SECONDS (and once at start), and also logs the steps a stop left unlogged.
 */
@Injectable()
export class ForgetLifecycleService extends IntervalSweep {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly requests: ForgetRequestRepository,
    private readonly steps: ForgetSteps,
    private readonly jobs: JobRepository,
    @Inject(FORGET_REQUEST_QUEUE) private readonly queue: ForgetRequestQueue,
    private readonly vault: SampleVault,
    private readonly forgetRequests: ForgetRequestService,
  ) {
    super(new Logger('ForgetLifecycle'), 'lifecycle sweep');
  }

  protected get everyMs(): number {
    return this.config.retentionSweepSeconds * 1000;
  }

  /** Restore: a 409 naming the state unless the request is suspended; then the dataset's waiting pass learns the samples again. */
  async restore(id: string, principal: Principal | undefined): Promise<CreatedForgetRequestResponseDto> {
    const { request } = await this.leaveSuspended(id, 'restoring');
    const { jobId } = await this.jobs.findOrCreateWaitingPass(request.datasetId, principal?.keyId ?? null);
    await this.requests.setPass(id, jobId);
    await this.queue.enqueue({ requestId: id, datasetId: request.datasetId, jobId });
    return toCreatedForgetRequestResponse({ ...request, jobId });
  }

  /** Shred now: a 409 naming the state unless the request is suspended; the keys are destroyed before the answer. */
  async shred(id: string): Promise<CreatedForgetRequestResponseDto> {
    const { request } = await this.leaveSuspended(id, 'completed');
    await this.steps.shred(request);
    return toCreatedForgetRequestResponse(request);
  }

  /**
   * Files forget requests for expired samples, shreds the suspended requests past their deadline, and logs the steps
   * left unlogged; returns how many of each.
   */
  async sweep(): Promise<{ retentionRequests: number; shredded: number; finished: number }> {
    let retentionRequests = 0;
    for (const [datasetId, commitments] of await this.vault.findExpired()) {
      const filed = await this.forgetRequests.fileForRetention(datasetId, commitments);
      if (filed) retentionRequests++;
    }
    const finished = await this.steps.finishUnlogged();
    let shredded = 0;
    // The deadline's shreds as one erasure pass: the key store's clean-up once, not per request.
    await this.vault.inErasurePass(async () => {
      for (const expired of await this.requests.findExpiredSuspensions()) {
        const { moved, request } = await this.requests.leaveSuspended(expired.id, 'completed', 'grace-expired');
        if (!moved) continue; // restored or shredded meanwhile
        await this.steps.shred(request);
        shredded++;
      }
    });
    if (retentionRequests + shredded + finished > 0)
      this.logger.log(
        `lifecycle sweep: ${retentionRequests} retention forget request(s) filed, ${shredded} suspended request(s) shredded at their deadline, ${finished} step(s) logged`,
      );
    return { retentionRequests, shredded, finished };
  }

  private async leaveSuspended(id: string, to: 'restoring' | 'completed') {
    const logged = await this.requests.findLogged(id);
    if (!logged) throw new NotFoundException(`no forget request with id ${id}`);
    const outcome = await this.requests.leaveSuspended(id, to, to === 'completed' ? 'requested' : undefined);
    if (!outcome.moved)
      throw new ConflictException(
        `state: forget request ${id} is ${outcome.request.state}, not suspended; only a suspended request can be ${to === 'restoring' ? 'restored' : 'shredded'} (nothing was logged)`,
      );
    return outcome;
  }
}
