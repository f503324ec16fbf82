import { AsyncLocalStorage } from 'node:async_hooks';
import { Client, ClientConfig } from 'pg';
import { DataSource } from 'typeorm';

/** An advisory lock: its namespace and key (hashtext), shared or exclusive. */
export interface AdvisoryLock {
  namespace: number;
  key: string;
  mode: 'shared' | 'exclusive';
}

/**
 * Runs `fn` holding a session-level advisory lock (`namespace`, hashtext(`key`)), shared or exclusive, on a
 * connection of its own outside the data source's pool: held across the transactions `fn` runs on pooled
 * connections, and released with the connection if the process dies. Outside the pool, because holders that
 * each kept a pooled connection for their lock could take the whole pool and then wait forever for one more
 * to do their work (as many uploads at once as the pool has connections).
 */
export async function withAdvisoryLock<T>(dataSource: DataSource, lock: AdvisoryLock, fn: () => Promise<T>): Promise<T>;
/**
 * The `try` mode: runs `fn` holding the lock if no one else holds it (pg_try_advisory_lock); otherwise runs
 * nothing and returns undefined. Same connection of its own as the waiting mode.
 */
export async function withAdvisoryLock<T>(dataSource: DataSource, lock: AdvisoryLock & { try: true }, fn: () => Promise<T>): Promise<T | undefined>;
export async function withAdvisoryLock<T>(dataSource: DataSource, lock: AdvisoryLock & { try?: boolean }, fn: () => Promise<T>): Promise<T | undefined> {
  // A lock taken inside another's `fn` rides on its permit; the outermost waits for one, holding nothing.
  if (insideLock.getStore() === dataSource) return lockedSession(dataSource, lock, fn);
  const release = await permitsOf(dataSource).acquire();
  try {
    return await insideLock.run(dataSource, () => lockedSession(dataSource, lock, fn));
  } finally {
    release();
  }
}

/**
 * How many callers may hold lock sessions of one data source at once (their nested locks, a few deep, ride on
 * theirs). Each session is a PostgreSQL connection: unbounded, 200 uploads at once opened 200 of them beside the
 * pools and PostgreSQL refused the rest (`too many clients already`, max_connections 100), each a 500. The others
 * wait in this process, holding no connection and no lock, so waiting for a permit blocks no lock holder.
 */
export const LOCK_SESSIONS_PER_DATA_SOURCE = 16;

const insideLock = new AsyncLocalStorage<DataSource>();
const permits = new WeakMap<DataSource, Permits>();

function permitsOf(dataSource: DataSource): Permits {
  let p = permits.get(dataSource);
  if (p === undefined) permits.set(dataSource, (p = new Permits(LOCK_SESSIONS_PER_DATA_SOURCE)));
  return p;
}

/** A counting semaphore, first come first served. */
class Permits {
  private readonly waiting: (() => void)[] = [];

  constructor(private free: number) {}

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

async function lockedSession<T>(dataSource: DataSource, lock: AdvisoryLock & { try?: boolean }, fn: () => Promise<T>): Promise<T | undefined> {
  const client = new Client(connectionConfig(dataSource));
  client.on('error', () => undefined); // a connection lost while fn runs: the work's own connections report it
  await client.connect();
  const suffix = lock.mode === 'shared' ? '_shared' : '';
  try {
    if (lock.try) {
      const [{ locked }] = (await client.query(`SELECT pg_try_advisory_lock${suffix}($1, hashtext($2)) AS locked`, [lock.namespace, lock.key])).rows;
      if (!locked) return undefined;
    } else {
      await client.query(`SELECT pg_advisory_lock${suffix}($1, hashtext($2))`, [lock.namespace, lock.key]);
    }
    return await fn();
  } finally {
    await client.end().catch(() => undefined); // ending the session releases the lock
  }
}

/** How the data source's pool connects (its URL or fields), for one connection more. */
function connectionConfig(dataSource: DataSource): ClientConfig {
  const { master } = dataSource.driver as unknown as { master: { options: ClientConfig } };
  const { connectionString, host, port, user, password, database, ssl } = master.options;
  return { connectionString, host, port, user, password, database, ssl };
}
