import { UNLEARN_JOB, ForgetRequestQueue } from '../forget-requests/forget-request.queue';
import { JobQueue } from '../jobs/job.queue';

/**
 * Forget requests onto the pg-boss queue `lethe.unlearn`: the message of the dataset's waiting pass, with
 * the pass's id as the pg-boss job id, so every request of a waiting pass sends the same job and pg-boss
 * keeps one (a send with an id it holds is ignored, not an error).
 */
export class JobForgetRequestQueue implements ForgetRequestQueue {
  constructor(private readonly queue: JobQueue) {}

  async enqueue(request: { requestId: string; datasetId: string; jobId: string }): Promise<void> {
    await this.queue.send(UNLEARN_JOB, { jobId: request.jobId, datasetId: request.datasetId }, { id: request.jobId });
  }
}
