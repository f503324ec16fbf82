import { Client, ClientConfig } from 'pg';
import { DataSource } from 'typeorm';

/**
 * Runs `fn` holding a session-level advisory lock (`namespace`, hashtext(`key`)), shared or exclusive, on a
 * connection of its own outside the data source's pool: held across the transactions `fn` runs on pooled
 * connections, and released with the connection if the process dies. Outside the pool, because holders that
 * each kept a pooled connection for their lock could take the whole pool and then wait forever for one more
 * to do their work (as many uploads at once as the pool has connections).
 */
export async function withAdvisoryLock<T>(
  dataSource: DataSource,
  lock: { namespace: number; key: string; mode: 'shared' | 'exclusive' },
  fn: () => Promise<T>,
): Promise<T> {
  const client = new Client(connectionConfig(dataSource));
  client.on('error', () => undefined); // a connection lost while fn runs: the work's own connections report it
  await client.connect();
  const suffix = lock.mode === 'shared' ? '_shared' : '';
  try {
    await client.query(`SELECT pg_advisory_lock${suffix}($1, hashtext($2))`, [lock.namespace, lock.key]);
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
