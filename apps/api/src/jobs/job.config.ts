import { ConfigError } from '../config/config';

/** Injection token of a worker's JobConfig. */
export const JOB_CONFIG = Symbol('JOB_CONFIG');

/** How workers take jobs from the pg-boss queue; read once at start-up from the environment. */
export interface JobConfig {
  /** A job running longer than this is taken to be lost (its worker crashed) and is retried. */
  expireSeconds: number;
  retryLimit: number;
  retryDelaySeconds: number;
  pollSeconds: number;
  /**
   * A running job whose worker wrote no heartbeat for this long is taken to be lost and retried (sooner
   * than expiry, which is the backstop).
   */
  lostAfterSeconds: number;
  /** How often pg-boss looks for expired jobs. */
  maintenanceSeconds: number;
  /** How long a graceful stop waits for running jobs before handing them back to the queue. */
  stopTimeoutSeconds: number;
  /** Whether `npm start` runs a worker in the service process (SERVICE_WORKER=off: only `npm run worker` ones). */
  serviceWorker: boolean;
  /**
   * Whether a training or an unlearning pass trains a version's shards one task per shard, on every worker
   * (SHARD_TASKS=on, the default), or all of them itself, one after another (off).
   */
  shardTasks: boolean;
}

type Env = Record<string, string | undefined>;

function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function readSwitch(env: Env, name: string): boolean {
  const value = env[name]?.trim() || 'on';
  if (value !== 'on' && value !== 'off') throw new ConfigError(name, 'must be "on" or "off"');
  return value === 'on';
}

export function loadJobConfig(env: Env = process.env): JobConfig {
  return {
    serviceWorker: readSwitch(env, 'SERVICE_WORKER'),
    shardTasks: readSwitch(env, 'SHARD_TASKS'),
    expireSeconds: readInteger(env, 'JOB_EXPIRE_SECONDS', 3600, 1, 23 * 3600),
    retryLimit: readInteger(env, 'JOB_RETRY_LIMIT', 3, 0, 1000),
    lostAfterSeconds: readInteger(env, 'JOB_LOST_AFTER_SECONDS', 30, 3, 86_400),
    retryDelaySeconds: readInteger(env, 'JOB_RETRY_DELAY_SECONDS', 5, 0, 86_400),
    pollSeconds: readInteger(env, 'JOB_POLL_SECONDS', 2, 1, 3600),
    maintenanceSeconds: readInteger(env, 'JOB_MAINTENANCE_SECONDS', 30, 1, 3600),
    stopTimeoutSeconds: readInteger(env, 'JOB_STOP_TIMEOUT_SECONDS', 30, 1, 3600),
  };
}
