import { Logger } from '@nestjs/common';
import request from 'supertest';
import { computeCommitmentsRoot } from '@lethe/ledger';
import { loadIris } from '@lethe/unlearning';
import { DatasetVersionService, VERSION_LOCK } from '../../apps/api/src/datasets/dataset-version.service';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';

/**
 * Dataset versions under concurrent uploads to one dataset (group commit): every upload is acknowledged with a
 * version logged after its samples, whose root is computeCommitmentsRoot over the live commitments at that point
 * (rebuilt from the rows and the log), versions count 1, 2, 3… without gaps, and a burst shares recordings.
 */
describe('dataset versions: concurrent uploads to one dataset', () => {
  const UPLOADS = 20;
  const iris = loadIris();
  let h: JobHarness;
  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });

  beforeAll(async () => {
    Logger.overrideLogger(false);
    h = await startJobHarness('dver_group', { worker: false });
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  const newDataset = async (name: string): Promise<string> =>
    (await asMl(http().post('/v1/datasets')).send({ name, features: 4, classes: 3 }).expect(201)).body.id;

  /** UPLOADS uploads at once, two samples each (distinct ids); resolves with their answers. */
  const uploadAll = (datasetId: string) =>
    Promise.all(
      Array.from({ length: UPLOADS }, async (_, i) => {
        const samples = iris.slice(2 * i, 2 * i + 2);
        return (await asMl(http().post(`/v1/datasets/${datasetId}/samples`)).send(samples).expect(200)).body;
      }),
    );

  /** Checks every upload's answer and every logged version against the rows and the log; returns the versions. */
  async function checkVersions(datasetId: string, answers: { accepted: number; datasetVersion: number; commitments: { commitment: string }[] }[]) {
    expect(answers.map((a) => a.commitments.length)).toEqual(answers.map(() => 2));
    const versions: { version: number; root: string; size: number; ledgerIndex: number }[] = (
      await asMl(http().get(`/v1/datasets/${datasetId}/versions`)).expect(200)
    ).body;
    expect(versions.map((v) => v.version)).toEqual(versions.map((_, i) => i + 1));
    const rows: { commitment: string; ledger_index: string }[] = await h.dataSource.query(
      `SELECT commitment, ledger_index FROM sample_commitments WHERE dataset_id = $1 AND ledger_index IS NOT NULL AND forgotten_at IS NULL
        ORDER BY ledger_index, batch_position`,
      [datasetId],
    );
    expect(rows).toHaveLength(2 * UPLOADS);
    // Rebuild each version's live set from the rows and the log. A version covers the batches (SAMPLES_COMMITTED
    // entries, two samples each) whose rows were committed when its recording read them: a union of batches logged
    // before it, holding the previous version's and every upload answered with it or an earlier one. Find that set
    // (the few batches in flight at the read are the only freedom) and check its root.
    const batches = new Map<number, string[]>();
    for (const r of rows) batches.set(Number(r.ledger_index), [...(batches.get(Number(r.ledger_index)) ?? []), r.commitment]);
    const batchOf = new Map(rows.map((r) => [r.commitment, Number(r.ledger_index)]));
    let covered = new Set<number>();
    for (const v of versions) {
      const required = new Set([...covered, ...answers.filter((a) => a.datasetVersion <= v.version).map((a) => batchOf.get(a.commitments[0].commitment)!)]);
      const optional = [...batches.keys()].filter((i) => i < v.ledgerIndex && !required.has(i));
      const found = [...combinations(optional, v.size / 2 - required.size)]
        .map((extra) => new Set([...required, ...extra]))
        .find((set) => rootOf(batches, set) === v.root);
      expect({ version: v.version, rebuilt: found !== undefined }).toEqual({ version: v.version, rebuilt: true });
      for (const i of required) expect(i).toBeLessThan(v.ledgerIndex);
      covered = found!;
    }
    // The last version came after every upload's commit: all of them, in log order.
    expect(versions.at(-1)).toMatchObject({ root: computeCommitmentsRoot(rows.map((r) => r.commitment)), size: 2 * UPLOADS });
    return versions;
  }

  it(`acknowledges ${UPLOADS} concurrent uploads, each with a version logged after its samples whose root is the live set's`, async () => {
    const datasetId = await newDataset('concurrent uploads');
    await checkVersions(datasetId, await uploadAll(datasetId));
  }, 120_000);

  it('shares recordings: uploads committed while a recording waits for the lock are all covered by at most two', async () => {
    const datasetId = await newDataset('group commit');
    const service = h.app.get(DatasetVersionService);
    // Hold the dataset's version lock (as another process recording would) until every upload has committed.
    const holder = h.dataSource.createQueryRunner();
    await holder.connect();
    let answers: Promise<Awaited<ReturnType<typeof uploadAll>>>;
    const before = service.recordingsRun;
    try {
      await holder.query(`SELECT pg_advisory_lock($1, hashtext($2))`, [VERSION_LOCK, datasetId]);
      answers = uploadAll(datasetId);
      answers.catch(() => undefined);
      // Every upload has committed its samples and now waits for a recording (the first one blocked on the lock).
      await waitFor(async () => service.callersWaiting(datasetId), (n) => n === UPLOADS);
    } finally {
      await holder.query(`SELECT pg_advisory_unlock($1, hashtext($2))`, [VERSION_LOCK, datasetId]);
      await holder.release();
    }
    const versions = await checkVersions(datasetId, await answers!);
    // The first recording waited for the lock (and read all 40 samples once it had it); the uploads that came after
    // it started joined the next one, which found the same state: two reads for 20 uploads, one version.
    expect(service.recordingsRun - before).toBeLessThanOrEqual(2);
    expect(versions).toHaveLength(1);
  }, 120_000);

  it('a recording that fails answers its uploads with an error; every acknowledged upload is still in a version logged before its answer', async () => {
    const datasetId = await newDataset('failed recording');
    const service = h.app.get(DatasetVersionService);
    const holder = h.dataSource.createQueryRunner();
    await holder.connect();
    let settled: Promise<PromiseSettledResult<request.Response>[]>;
    try {
      await holder.query(`SELECT pg_advisory_lock($1, hashtext($2))`, [VERSION_LOCK, datasetId]);
      const [{ pid: holderPid }] = await holder.query(`SELECT pg_backend_pid() AS pid`);
      settled = Promise.allSettled(
        Array.from({ length: UPLOADS }, (_, i) => asMl(http().post(`/v1/datasets/${datasetId}/samples`)).send(iris.slice(2 * i, 2 * i + 2))),
      );
      await waitFor(async () => service.callersWaiting(datasetId), (n) => n === UPLOADS);
      // The running recording waits for the lock on a session of its own: end that session (as a crash of the
      // database connection would), so the recording fails; the uploads that joined it must not be acknowledged.
      const [{ pid: recordingPid }] = await waitFor(
        (): Promise<{ pid: number }[]> =>
          h.dataSource.query(`SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_advisory_lock(%' AND wait_event_type = 'Lock' AND datname = current_database() AND pid <> $1`, [holderPid]),
        (rows) => rows.length === 1,
      );
      await h.dataSource.query(`SELECT pg_terminate_backend($1)`, [recordingPid]);
      await waitFor(async () => service.callersWaiting(datasetId), (n) => n < UPLOADS);
    } finally {
      await holder.query(`SELECT pg_advisory_unlock($1, hashtext($2))`, [VERSION_LOCK, datasetId]);
      await holder.release();
    }
    const results = await settled!;
    const acknowledged = results.flatMap((r) => (r.status === 'fulfilled' && r.value.status === 200 ? [r.value.body] : []));
    const refused = results.filter((r) => !(r.status === 'fulfilled' && r.value.status === 200));
    // The failed recording's uploads (at least the one that started it) got an error, the rest their version.
    expect(refused.length).toBeGreaterThan(0);
    expect(acknowledged.length).toBe(UPLOADS - refused.length);
    const versions: { version: number; root: string; size: number }[] = (await asMl(http().get(`/v1/datasets/${datasetId}/versions`)).expect(200)).body;
    const rows: { commitment: string }[] = await h.dataSource.query(
      `SELECT commitment FROM sample_commitments WHERE dataset_id = $1 AND ledger_index IS NOT NULL ORDER BY ledger_index, batch_position`,
      [datasetId],
    );
    // The samples of every upload were committed before its recording; the next recording covered them all.
    expect(rows).toHaveLength(2 * UPLOADS);
    expect(versions).toEqual([{ version: 1, root: computeCommitmentsRoot(rows.map((r) => r.commitment)), size: 2 * UPLOADS, ledgerIndex: expect.any(Number) }]);
    for (const answer of acknowledged) expect(answer.datasetVersion).toBe(1);
  }, 120_000);
});

/** The root over the chosen batches' commitments, in log order (the order of the live set's leaves). */
function rootOf(batches: Map<number, string[]>, chosen: Set<number>): string {
  return computeCommitmentsRoot([...chosen].sort((x, y) => x - y).flatMap((i) => batches.get(i)!));
}

/** Every k-element subset of `items` (none when k is negative or larger than items). */
function* combinations<T>(items: T[], k: number, from = 0): Generator<T[]> {
  if (k < 0) return;
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= items.length - k; i++) for (const rest of combinations(items, k - 1, i + 1)) yield [items[i], ...rest];
}
