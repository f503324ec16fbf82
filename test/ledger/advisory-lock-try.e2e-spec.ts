import { DataSource } from 'typeorm';
import { openDatabase, withAdvisoryLock } from '@lethe/ledger';
import { tryWithDatasetLock } from '../../apps/api/src/models/dataset.lock';
import { TestDatabase, createTestDatabase } from '../support/database';

/**
 * withAdvisoryLock's `try` mode: it runs nothing while another session holds the lock, and holds the lock on a
 * connection of its own like the waiting mode, so the work it runs still gets a pooled connection when the
 * pool has one (a lock held on a pooled connection took the only one: the work then waited forever).
 */
describe('withAdvisoryLock, try mode', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  const lock = { namespace: 0x7e57, key: 'dataset-1', mode: 'exclusive' as const };

  beforeAll(async () => {
    db = await createTestDatabase('advisory_lock_try');
    dataSource = await openDatabase({ url: db.url, poolSize: 1 });
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  it('runs nothing while the lock is held elsewhere, and runs once it is free', async () => {
    let ran = 0;
    const held = await withAdvisoryLock(dataSource, lock, async () => {
      const inside = await withAdvisoryLock(dataSource, { ...lock, try: true }, async () => ++ran);
      return inside;
    });
    expect(held).toBeUndefined();
    expect(ran).toBe(0);
    expect(await withAdvisoryLock(dataSource, { ...lock, try: true }, async () => ++ran)).toBe(1);
    // A shared holder also keeps an exclusive try out; another key is free.
    const whileShared = await withAdvisoryLock(dataSource, { ...lock, mode: 'shared' }, () =>
      Promise.all([
        withAdvisoryLock(dataSource, { ...lock, try: true }, async () => 'ran'),
        withAdvisoryLock(dataSource, { ...lock, key: 'dataset-2', try: true }, async () => 'ran'),
      ]),
    );
    expect(whileShared).toEqual([undefined, 'ran']);
  });

  it("holds the lock outside the pool: work on a pool of one connection runs while it is held (the dataset lock's try too)", async () => {
    const pids: number[] = [];
    const answer = await tryWithDatasetLock(dataSource, 'dataset-1', async () => {
      const [{ n, pid }] = await dataSource.query(`SELECT 41 + 1 AS n, pg_backend_pid() AS pid`);
      pids.push(pid);
      return n;
    });
    expect(answer).toBe(42);
    // The lock was held by a session other than the pool's only connection.
    const [{ pid }] = await dataSource.query(`SELECT pg_backend_pid() AS pid`);
    expect(pids).toEqual([pid]);
    const holders = await withAdvisoryLock(dataSource, { ...lock, try: true }, () =>
      dataSource.query<{ pid: number }[]>(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext($1)::oid AND classid = $2`, [lock.key, lock.namespace]),
    );
    expect(holders).toHaveLength(1);
    expect(holders![0].pid).not.toBe(pid);
  });
});
