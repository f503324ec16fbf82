import { DataSource } from 'typeorm';

/**
 * Runs `fn` holding a session-level advisory lock (`namespace`, hashtext(`key`)) on a connection of its
 * own, shared or exclusive: held across the transactions `fn` runs on other connections, and released with
 * the connection if the process dies.
 */
export async function withAdvisoryLock<T>(
  dataSource: DataSource,
  lock: { namespace: number; key: string; mode: 'shared' | 'exclusive' },
  fn: () => Promise<T>,
): Promise<T> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  const suffix = lock.mode === 'shared' ? '_shared' : '';
  try {
    await runner.query(`SELECT pg_advisory_lock${suffix}($1, hashtext($2))`, [lock.namespace, lock.key]);
    try {
      return await fn();
    } finally {
      await runner.query(`SELECT pg_advisory_unlock${suffix}($1, hashtext($2))`, [lock.namespace, lock.key]).catch(() => undefined);
    }
  } finally {
    await runner.release();
  }
}
