import { Logger } from '@nestjs/common';

/** pg-boss job name under which workers take forget requests (apps/api/src/unlearning). */
export const UNLEARN_JOB = 'lethe.unlearn';

export const FORGET_REQUEST_QUEUE = Symbol('FORGET_REQUEST_QUEUE');

/**
 * The hook between intake and the unlearning engine (JobForgetRequestQueue in apps/api/src/unlearning
 * sends a pg-boss job; UnlearningService runs it in a worker). `enqueue` is called once a
 * request is durable (row + FORGET_REQUESTED entry) and before the client is answered. The row in state
 * `received` is the durable record: a worker that starts after a crash finds every request it has not
 * handled with `SELECT ... FROM forget_requests WHERE state = 'received' AND ledger_index IS NOT NULL`,
 * so losing a notification loses no request. The worker moves the row received -> unlearning ->
 * completed | failed, and only after unlearning shreds the samples (SampleVault.shred).
 */
export interface ForgetRequestQueue {
  enqueue(request: { requestId: string; datasetId: string }): Promise<void>;
}

/** Without a queue (tests): requests wait in state `received` until a worker starts and finds them. */
export class PendingForgetRequestQueue implements ForgetRequestQueue {
  private readonly logger = new Logger('ForgetRequests');

  async enqueue(request: { requestId: string; datasetId: string }): Promise<void> {
    this.logger.debug(`forget request ${request.requestId} waits for the unlearning engine (job ${UNLEARN_JOB})`);
  }
}
