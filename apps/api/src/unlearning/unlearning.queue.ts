import { UNLEARN_JOB, ForgetRequestQueue } from '../forget-requests/forget-request.queue';
import { JobQueue } from '../jobs/job.queue';

/**
 * Forget requests onto the pg-boss queue `lethe.unlearn`. The job names the dataset: a worker serves
 * every waiting request of that dataset in one pass, so jobs of requests served earlier find nothing left.
 */
export class JobForgetRequestQueue implements ForgetRequestQueue {
  constructor(private readonly queue: JobQueue) {}

  async enqueue(request: { requestId: string; datasetId: string }): Promise<void> {
    await this.queue.send(UNLEARN_JOB, { requestId: request.requestId, datasetId: request.datasetId });
  }
}
