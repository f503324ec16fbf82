import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { UNLEARN_JOB, ForgetRequestQueue } from '../forget-requests/forget-request.queue';
import { JobQueue } from '../jobs/job.queue';

/** How often to look again when the waiting pass was taken by a worker between our insert and our read. */
const FIND_ATTEMPTS = 5;

/**
 * The dataset's waiting unlearning pass (a `jobs` row, state `queued`, never started), created when it has
 * none. At most one such row per dataset (a unique index): every request that arrives while one waits joins
 * it, so a dataset has at most one waiting pass and one running pass however many requests come in. A pass
 * takes every waiting request of its dataset when it starts (after it holds the dataset), so a request that
 * was committed before it found the pass is served by it, or by the pass that took it first.
 */
export async function findOrCreateWaitingPass(
  db: DataSource | EntityManager,
  datasetId: string,
  createdBy: string | null = null,
): Promise<{ jobId: string; created: boolean }> {
  for (let attempt = 0; attempt < FIND_ATTEMPTS; attempt++) {
    const inserted: { id: string }[] = await db.query(
      `INSERT INTO jobs (id, type, state, payload, created_by) VALUES ($1, $2, 'queued', $3, $4) ON CONFLICT DO NOTHING RETURNING id`,
      [randomUUID(), UNLEARN_JOB, JSON.stringify({ datasetId }), createdBy],
    );
    if (inserted.length === 1) return { jobId: inserted[0].id, created: true };
    const waiting: { id: string }[] = await db.query(
      `SELECT id FROM jobs WHERE type = $1 AND state = 'queued' AND attempts = 0 AND payload->>'datasetId' = $2`,
      [UNLEARN_JOB, datasetId],
    );
    if (waiting.length === 1) return { jobId: waiting[0].id, created: false };
  }
  throw new Error(`dataset ${datasetId}: its waiting unlearning pass kept being taken; retry`);
}

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
