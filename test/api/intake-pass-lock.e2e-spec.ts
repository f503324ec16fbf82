import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { openDatabase } from '@lethe/ledger';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { JobRepository } from '../../apps/api/src/jobs/job.repository';
import { TestDatabase, createTestDatabase } from '../support/database';
import { waitFor } from '../support/probe';

/**
 * A forget request is marked logged, joined to its dataset's waiting pass and its job sent in one transaction
 * (ForgetRequestService.queueLogged). Until that commits the request is invisible to a pass taking requests, so the
 * pass it joined must not start meanwhile: findOrCreateWaitingPass locks it FOR SHARE in that transaction, and a
 * worker's start (an UPDATE of the job row, in the transaction that then takes the requests) waits for the commit.
 * Without the lock the pass would start, take the requests it sees, and leave this one pointed at a pass that
 * never serves it.
 */
describe("a forget request's intake holds its waiting pass until it commits", () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let jobs: JobRepository;

  beforeAll(async () => {
    db = await createTestDatabase('intake_pass_lock');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    jobs = new JobRepository(dataSource);
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  /** The sessions of this database waiting for a lock (an UPDATE of `jobs` blocked by a row lock shows here). */
  const blockedStarts = async (): Promise<number> =>
    (
      await dataSource.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE jobs SET state = ''running''%'`,
      )
    )[0].n;

  it("a worker's start of the waiting pass waits for the intake's commit, and a new pass is made for requests after it started", async () => {
    const datasetId = randomUUID();
    const { jobId: waiting } = await jobs.findOrCreateWaitingPass(datasetId);
    expect((await jobs.claim(waiting, 'worker-a', 60, 'hold')).claimed).toBe(true);

    const intake = dataSource.createQueryRunner();
    await intake.startTransaction();
    let started: boolean | undefined;
    try {
      // The intake finds the waiting pass (and locks it until it commits).
      expect(await jobs.findOrCreateWaitingPass(datasetId, null, intake.manager)).toEqual({ jobId: waiting });
      const start = jobs.start(waiting, 'worker-a').then((ok) => (started = ok));
      // The start is blocked on the row lock: seen in pg_stat_activity, not guessed from time.
      await waitFor(blockedStarts, (n) => n === 1, 60_000);
      expect(started).toBeUndefined();
      await intake.commitTransaction();
      await start;
    } finally {
      if (intake.isTransactionActive) await intake.rollbackTransaction();
      await intake.release();
    }
    expect(started).toBe(true);
    // The pass started: the next request makes (and joins) a new waiting pass.
    const next = await jobs.findOrCreateWaitingPass(datasetId);
    expect(next.jobId).not.toBe(waiting);
  }, 120_000);

  it('the control: without a transaction the lock ends with the statement, and the start does not wait', async () => {
    const datasetId = randomUUID();
    const { jobId: waiting } = await jobs.findOrCreateWaitingPass(datasetId);
    expect((await jobs.claim(waiting, 'worker-b', 60, 'hold')).claimed).toBe(true);
    expect(await jobs.findOrCreateWaitingPass(datasetId)).toEqual({ jobId: waiting });
    expect(await jobs.start(waiting, 'worker-b')).toBe(true);
    expect(await blockedStarts()).toBe(0);
  });
});
