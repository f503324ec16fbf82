import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { UNLEARN_JOB } from '../jobs/job.entity';
import { JobQueue } from '../jobs/job.queue';

export const FORGET_REQUEST_QUEUE = Symbol('FORGET_REQUEST_QUEUE');

/**
 * The hook between intake and the unlearning engine (JobForgetRequestQueue sends the pg-boss job of
 * the dataset's waiting pass; UnlearningService runs it in a worker). `enqueue`
 * is called once a request is durable (row + FORGET_REQUESTED entry) and attached to the waiting pass
 * `jobId` (a row in `jobs`), before the client is answered. The row in state `received` is the durable
 * record: a worker that starts after a crash finds every request it has not handled with
 * `SELECT ... FROM forget_requests WHERE state = 'received' AND ledger_index IS NOT NULL`, so losing a
 * notification loses no request. The worker moves the row received -> unlearning -> completed | failed,
 * and only after unlearning shreds the samples (SampleVault.shred).
 */
export interface ForgetRequestQueue {
  enqueue(request: { requestId: string; datasetId: string; jobId: string }): Promise<void>;
  /**
   * The same, as part of the transaction of `manager` that attaches the request to its pass (committed with it);
   * a queue without it is given `enqueue` after that transaction commits.
   */
  enqueueWithin?(manager: EntityManager, request: { requestId: string; datasetId: string; jobId: string }): Promise<void>;
}

/** Drops every notification (no queue configured; tests): requests wait in state `received` until a worker starts and finds them. */
export class DroppingForgetRequestQueue implements ForgetRequestQueue {
  private readonly logger = new Logger('ForgetRequests');

  async enqueue(request: { requestId: string; datasetId: string; jobId: string }): Promise<void> {
    this.logger.debug(`forget request ${request.requestId} waits for the unlearning engine (job ${request.jobId}, ${UNLEARN_JOB})`);
  }
}

/**
 * Forget requests onto the pg-boss queue `lethe.unlearn`: the message of the dataset's waiting pass, with
 * the pass's id as the pg-boss job id, so every request of a waiting pass sends the same job and pg-boss
 * keeps one (a send with an id it holds is ignored, not an error).
 */
export class JobForgetRequestQueue implements ForgetRequestQueue {
  /** Defined when the job queue can send inside a transaction (pg-boss can). */
  readonly enqueueWithin?: (manager: EntityManager, request: { requestId: string; datasetId: string; jobId: string }) => Promise<void>;

  constructor(private readonly queue: JobQueue) {
    const sendWithin = queue.sendWithin?.bind(queue);
    if (sendWithin)
      this.enqueueWithin = (manager, request) => sendWithin(manager, UNLEARN_JOB, { jobId: request.jobId, datasetId: request.datasetId }, { id: request.jobId });
  }

  async enqueue(request: { requestId: string; datasetId: string; jobId: string }): Promise<void> {
    await this.queue.send(UNLEARN_JOB, { jobId: request.jobId, datasetId: request.datasetId }, { id: request.jobId });
  }
}
