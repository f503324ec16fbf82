import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import PgBoss from 'pg-boss';
import type { EntityManager } from 'typeorm';

/**
 * The PostgreSQL channel on which a sent job wakes the workers (LISTEN/NOTIFY); the payload is the job's queue
 * name. pg-boss 10 only polls (its notifyWorker wakes a worker of the same process), so without this a job waits
 * up to JOB_POLL_SECONDS for a worker to look.
 */
export const JOB_CHANNEL = 'lethe_jobs';

/**
 * The channel on which a shard task that ends (completed, failed, or back to queued) wakes the job waiting for it;
 * the payload is the job's id. The job's own poll of its task rows (slow) stays the fallback.
 */
export const TASK_CHANNEL = 'lethe_tasks';

/** How long a listener waits before connecting again after losing its connection. */
const RECONNECT_MS = 2000;

/**
 * Sends a job to pg-boss, then wakes the workers of its queue in every process (NOTIFY once the job is
 * committed, so a woken worker finds it). Sending a job pg-boss already holds (same id) is harmless, and so
 * is the extra wake-up.
 */
export async function sendJob(boss: PgBoss, name: string, data: object, options: PgBoss.SendOptions = {}): Promise<void> {
  await boss.send(name, data, options);
  await boss.getDb().executeSql('SELECT pg_notify($1, $2)', [JOB_CHANNEL, name]);
}

/**
 * sendJob inside the transaction of `manager`: the job and the wake-up are part of its commit (PostgreSQL delivers
 * a NOTIFY at its transaction's commit), so a woken worker finds the job and whatever the transaction wrote with it.
 */
export async function sendJobWithin(boss: PgBoss, manager: EntityManager, name: string, data: object, options: PgBoss.SendOptions = {}): Promise<void> {
  // TypeORM answers pg-boss's INSERT ... RETURNING with its rows.
  const db = { executeSql: async (text: string, values: unknown[]) => ({ rows: (await manager.query(text, values)) as unknown[] }) };
  await boss.send(name, data, { ...options, db });
  await manager.query('SELECT pg_notify($1, $2)', [JOB_CHANNEL, name]);
}

/**
 * A connection of its own that LISTENs on JOB_CHANNEL and calls `onJob` with the queue of each job sent, and on
 * TASK_CHANNEL and calls `onTaskEnded` with the job of each shard task that ended. Polling stays the fallback:
 * while the connection is down (PostgreSQL restarts, the network drops), the listener tries again every 2 s,
 * workers still find jobs at their next poll (and waiting jobs read their tasks at theirs), and once it is back
 * `onJob(null)` (every queue) and `onTaskEnded(null)` (every job) look for what happened meanwhile.
 */
export class JobListener {
  private readonly logger = new Logger('Jobs');
  private client: Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly onJob: (queue: string | null) => void,
    private readonly onTaskEnded: (jobId: string | null) => void = () => undefined,
  ) {}

  /** Connects and listens; a first connection that fails is retried in the background (polling covers it). */
  async start(): Promise<void> {
    await this.connect(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(again: boolean): Promise<void> {
    if (this.stopped) return;
    const client = new Client({ connectionString: this.url });
    client.on('notification', (message) => {
      if (message.channel === JOB_CHANNEL) this.onJob(message.payload || null);
      else if (message.channel === TASK_CHANNEL) this.onTaskEnded(message.payload || null);
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${JOB_CHANNEL}; LISTEN ${TASK_CHANNEL}`);
    } catch (error) {
      this.lost(client, error as Error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (again) {
      this.logger.log('listening for new jobs again');
      this.onJob(null);
      this.onTaskEnded(null);
    }
  }

  /** The connection failed or ended: close it and connect again in a while (unless stopping). */
  private lost(client: Client, error?: Error): void {
    client.removeAllListeners('end');
    client.on('error', () => undefined); // errors of a connection given up
    client.end().catch(() => undefined);
    if (this.client !== undefined && this.client !== client) return; // an older connection; the current one listens
    this.client = undefined;
    if (this.stopped || this.retry !== undefined) return;
    this.logger.warn(`not listening for new jobs (workers poll meanwhile): ${error?.message ?? 'the connection ended'}`);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.connect(true);
    }, RECONNECT_MS);
  }
}
