import { AsyncLocalStorage } from 'node:async_hooks';
import { ClientConfig, Pool } from 'pg';
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
 * to do their work (as many uploads at once as the pool has connections). The lock connections are kept
 * between holders (lockConnections): a new session costs a connection start and authentication, most of
 * taking a free lock; a lock is unlocked before its connection is kept, and a connection that could not
 * unlock is closed (which releases the lock).
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
  const client = await lockConnections(dataSource).connect();
  let lost = false;
  const onError = () => {
    lost = true; // a connection lost while fn runs: the work's own connections report it
  };
  client.on('error', onError);
  const suffix = lock.mode === 'shared' ? '_shared' : '';
  const args = [lock.namespace, lock.key];
  let held = false;
  // A lock query that failed may have lost its session (terminated while it waited): such a connection is closed, not kept.
  let answered = false;
  try {
    if (lock.try) {
      const [{ locked }] = (await client.query(`SELECT pg_try_advisory_lock${suffix}($1, hashtext($2)) AS locked`, args)).rows;
      answered = true;
      if (!locked) return undefined;
    } else {
      await client.query(`SELECT pg_advisory_lock${suffix}($1, hashtext($2))`, args);
      answered = true;
    }
    held = true;
    return await fn();
  } finally {
    let clean = !lost && answered;
    if (held && clean) {
      const unlocked = await client.query(`SELECT pg_advisory_unlock${suffix}($1, hashtext($2)) AS unlocked`, args).then(
        (r) => r.rows[0]?.unlocked === true,
        () => false,
      );
      clean = unlocked && !lost;
    }
    client.off('error', onError);
    client.release(!clean); // true closes the session, which releases whatever it held
  }
}

/** How long a lock connection is kept unused before it is closed, and how many may be open at once. */
const LOCK_IDLE_MS = 30_000;
const LOCK_CONNECTIONS_MAX = 1000;

const lockPools = new WeakMap<DataSource, Pool>();

/**
 * The connections advisory locks are held on, for one data source: apart from its pool, kept while used and
 * closed after LOCK_IDLE_MS unused; idle ones do not keep the process alive. As many as there are holders
 * at once (LOCK_SESSIONS_PER_DATA_SOURCE outermost holders and the locks nested in their work; the bound here is
 * only a backstop).
 */
function lockConnections(dataSource: DataSource): Pool {
  let pool = lockPools.get(dataSource);
  if (!pool) {
    pool = new Pool({ ...connectionConfig(dataSource), max: LOCK_CONNECTIONS_MAX, idleTimeoutMillis: LOCK_IDLE_MS, allowExitOnIdle: true });
    pool.on('error', () => undefined); // an idle lock connection lost: the next holder gets a new one
    lockPools.set(dataSource, pool);
  }
  return pool;
}

/** How the data source's pool connects (its URL or fields), for one connection more. */
function connectionConfig(dataSource: DataSource): ClientConfig {
  const { master } = dataSource.driver as unknown as { master: { options: ClientConfig } };
  const { connectionString, host, port, user, password, database, ssl } = master.options;
  return { connectionString, host, port, user, password, database, ssl };
}
