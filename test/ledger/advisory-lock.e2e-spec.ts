import { DataSource } from 'typeorm';
import { LOCK_SESSIONS_PER_DATA_SOURCE, openDatabase, withAdvisoryLock } from '@lethe/ledger';
import { TestDatabase, createTestDatabase } from '../support/database';

/**
 * Each holder of an advisory lock holds a PostgreSQL connection of its own. Unbounded, 200 uploads at once
 * (the reliability suite's load) opened as many and PostgreSQL refused those beyond max_connections, each a 500:
 * at most LOCK_SESSIONS_PER_DATA_SOURCE callers hold sessions at once, the others wait in the process; a lock
 * taken inside another's work does not wait (else holders of every permit would each wait for one more).
 */
describe('withAdvisoryLock', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('advisory_lock');
    dataSource = await openDatabase({ url: db.url });
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  const sessions = async (): Promise<number> =>
    (await dataSource.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 4242`))[0].n;

  it('holds at most LOCK_SESSIONS_PER_DATA_SOURCE sessions at once however many callers wait, and serves every one', async () => {
    let active = 0;
    let most = 0;
    let mostHeld = 0;
    const callers = 250; // beyond the embedded PostgreSQL's max_connections (200)
    const results = await Promise.all(
      Array.from({ length: callers }, (_, i) =>
        withAdvisoryLock(dataSource, { namespace: 4242, key: `key-${i}`, mode: i % 2 ? 'shared' : 'exclusive' }, async () => {
          most = Math.max(most, ++active);
          if (i % 25 === 0) mostHeld = Math.max(mostHeld, await sessions());
          await new Promise((r) => setTimeout(r, 20));
          active--;
          return i;
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: callers }, (_, i) => i));
    expect(most).toBeLessThanOrEqual(LOCK_SESSIONS_PER_DATA_SOURCE);
    expect(mostHeld).toBeLessThanOrEqual(LOCK_SESSIONS_PER_DATA_SOURCE);
    expect(most).toBeGreaterThan(1); // they do run side by side
    expect(await sessions()).toBe(0); // every lock released
  }, 120_000);

  it('takes a lock inside another lock`s work without a permit of its own, even with every permit held', async () => {
    const outer = LOCK_SESSIONS_PER_DATA_SOURCE * 2;
    const results = await Promise.all(
      Array.from({ length: outer }, (_, i) =>
        withAdvisoryLock(dataSource, { namespace: 4242, key: `outer-${i}`, mode: 'exclusive' }, () =>
          withAdvisoryLock(dataSource, { namespace: 4242, key: `inner-${i}`, mode: 'exclusive' }, async () => i),
        ),
      ),
    );
    expect(results).toEqual(Array.from({ length: outer }, (_, i) => i));
  }, 120_000);
});
