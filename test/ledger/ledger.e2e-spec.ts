import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { LedgerError, hashEvent } from '@lethe/events';
import { Ledger, fsckLedger, openDatabase } from '@lethe/ledger';
import { MerkleTree, fromHex, toHex, verifyConsistency, verifyInclusion } from '@lethe/merkle';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvent, buildEvents } from '../support/factories';

const ROOT = join(__dirname, '..', '..');

function runAppender(url: string, worker: number, batches: number, batchSize: number) {
  const child = spawn(
    process.execPath,
    ['-r', './scripts/register.js', 'test/support/append-worker.ts', url, String(worker), String(batches), String(batchSize)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const acknowledged = () =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => (JSON.parse(l) as { indices: number[] }).indices);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, done, acknowledged, stderr: () => stderr, stdout: () => stdout };
}

async function superuserQuery(url: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('Ledger on PostgreSQL', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;

  beforeEach(async () => {
    db = await createTestDatabase('ledger');
    dataSource = await openDatabase({ url: db.url });
    ledger = new Ledger(dataSource);
  });

  afterEach(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  it('starts empty with the RFC 9162 empty root', async () => {
    expect(await ledger.getCheckpoint()).toEqual({
      treeSize: 0,
      rootHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
  });

  it('appends events with consecutive indices and the leaf hash of their canonical JSON', async () => {
    const events = buildEvents(0, 5);
    const entries = await ledger.append(events);
    expect(entries.map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
    expect(entries.map((e) => e.leafHash)).toEqual(events.map((e) => toHex(hashEvent(e))));
    const stored = await ledger.getEntries(0, 10);
    expect(stored).toHaveLength(5);
    expect(JSON.parse(stored[2].event)).toEqual(events[2]);
  });

  it('returns entries in index order across decimal widths (2 before 10)', async () => {
    await ledger.append(buildEvents(0, 25));
    expect((await ledger.getEntries(0, 25)).map((e) => e.index)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect((await ledger.getEntriesByType(['DATASET_REGISTERED'], 0, 100)).map((e) => e.index)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24]);
  });

  it('serves proofs, read from stored nodes, that match an in-memory tree for every size and index', async () => {
    const events = buildEvents(0, 37);
    // Appended in uneven batches so that stored checkpoints fall at odd sizes.
    for (const [a, b] of [[0, 1], [1, 4], [4, 5], [5, 20], [20, 37]]) await ledger.append(events.slice(a, b));
    const tree = MerkleTree.fromLeafHashes(events.map(hashEvent));
    for (let size = 1; size <= 37; size++) {
      expect(await ledger.getRoot(size)).toBe(toHex(tree.root(size)));
      for (const index of [0, Math.floor(size / 2), size - 1]) {
        const p = await ledger.getInclusionProof(index, size);
        expect(p.proof).toEqual(tree.inclusionProof(index, size).map(toHex));
        verifyInclusion(index, size, fromHex(p.leafHash), p.proof.map((h) => fromHex(h)), fromHex(p.rootHash));
      }
      for (const from of [1, Math.ceil(size / 3), size]) {
        const c = await ledger.getConsistencyProof(from, size);
        expect(c.proof).toEqual(tree.consistencyProof(from, size).map(toHex));
        verifyConsistency(from, size, c.proof.map((h) => fromHex(h)), fromHex(c.fromRoot), fromHex(c.toRoot));
      }
    }
  });

  it('group-commits concurrent appends without losing or duplicating any', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => ledger.appendOne(buildEvent(i))));
    const indices = results.map((r) => r.index).sort((a, b) => a - b);
    expect(indices).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const { count } = (await dataSource.query(`SELECT count(*)::int AS count FROM ledger_checkpoints`))[0];
    expect(count).toBeLessThan(200); // batched: fewer transactions than appends
    expect((await fsckLedger(dataSource)).ok).toBe(true);
  });

  it('rejects an invalid event and writes nothing', async () => {
    await ledger.append(buildEvents(0, 2));
    const before = await ledger.getCheckpoint();
    await expect(ledger.append([buildEvent(2), { type: 'NOPE', version: 1 } as never])).rejects.toMatchObject({
      code: 'INVALID_EVENT',
    });
    await expect(
      ledger.append([{ type: 'SAMPLES_COMMITTED', version: 1, datasetId: 'd', commitmentsRoot: 'XYZ', count: 1 }]),
    ).rejects.toThrow(/commitmentsRoot/);
    await expect(ledger.append([{ ...buildEvent(0), features: Number.NaN } as never])).rejects.toThrow(LedgerError);
    expect(await ledger.getCheckpoint()).toEqual(before);
  });

  it('refuses proofs for sizes and indices the log does not have', async () => {
    await ledger.append(buildEvents(0, 8));
    await expect(ledger.getInclusionProof(8, 8)).rejects.toMatchObject({ code: 'OUT_OF_RANGE', field: 'index' });
    await expect(ledger.getInclusionProof(0, 9)).rejects.toMatchObject({ code: 'OUT_OF_RANGE', field: 'treeSize' });
    await expect(ledger.getConsistencyProof(5, 3)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'from' });
    await expect(ledger.getConsistencyProof(0, 3)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'from' });
    await expect(ledger.getEntries(0, 1001)).rejects.toMatchObject({ field: 'limit' });
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the log tables', async () => {
    await ledger.append(buildEvents(0, 3));
    await expect(dataSource.query(`UPDATE ledger_entries SET event = '{}' WHERE idx = 1`)).rejects.toThrow(/append-only/);
    await expect(dataSource.query(`DELETE FROM ledger_nodes`)).rejects.toThrow(/append-only/);
    await expect(dataSource.query(`TRUNCATE ledger_checkpoints`)).rejects.toThrow(/append-only/);
  });

  it('keeps indices unique and gap-free with several appender processes on one database', async () => {
    const workers = [1, 2, 3].map((w) => runAppender(db.url, w, 20, 25));
    const exits = await Promise.all(workers.map((w) => w.done));
    for (const [i, exit] of exits.entries()) expect({ exit, stderr: workers[i].stderr() }).toEqual({ exit: { code: 0, signal: null }, stderr: '' });
    const all = workers.flatMap((w) => w.acknowledged()).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    const report = await fsckLedger(dataSource);
    expect(report).toMatchObject({ ok: true, entries: 1500 });
  });

  it('loses nothing acknowledged and leaves no gap when an appender is killed mid-stream', async () => {
    const worker = runAppender(db.url, 1, 100000, 50);
    // Wait until it has acknowledged some batches, then kill it without warning.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (worker.acknowledged().length >= 2000) {
          clearInterval(timer);
          resolve();
        }
      }, 20);
      void worker.done.then(() => {
        clearInterval(timer);
        reject(new Error(`appender exited early: ${worker.stderr()}`));
      });
    });
    worker.child.kill('SIGKILL');
    await worker.done;
    const acknowledged = worker.acknowledged();
    const { treeSize } = await ledger.getCheckpoint();
    expect(treeSize).toBeGreaterThanOrEqual(acknowledged.length);
    expect(Math.max(...acknowledged)).toBeLessThan(treeSize);
    const report = await fsckLedger(dataSource);
    expect(report).toMatchObject({ ok: true, entries: treeSize });
    // And the log goes on from there.
    const [next] = await ledger.append([buildEvent(7)]);
    expect(next.index).toBe(treeSize);
  });

  describe('fsck', () => {
    async function tamper(sql: string): Promise<void> {
      // As an operator with superuser rights would: around the append-only triggers.
      await superuserQuery(db.url, `SET session_replication_role = replica; ${sql}`);
    }

    beforeEach(async () => {
      for (let i = 0; i < 10; i++) await ledger.append(buildEvents(i * 10, 10));
    });

    it('passes on an honest log', async () => {
      const report = await fsckLedger(dataSource, { batchSize: 16 });
      expect(report).toMatchObject({ ok: true, entries: 100, checkpoints: 10 });
      expect(report.rootHash).toBe((await ledger.getCheckpoint()).rootHash);
    });

    it('reports an edited entry at its index', async () => {
      await tamper(`UPDATE ledger_entries SET event = replace(event, 'dataset 42', 'dataset 43') WHERE idx = 42`);
      expect((await fsckLedger(dataSource, { batchSize: 16 })).firstProblem).toMatchObject({ kind: 'LEAF_MISMATCH', index: 42 });
    });

    it('reports a deleted entry as a gap at its index', async () => {
      await tamper(`DELETE FROM ledger_entries WHERE idx = 57`);
      expect((await fsckLedger(dataSource, { batchSize: 16 })).firstProblem).toMatchObject({ kind: 'GAP', index: 57 });
    });

    it('reports a rewritten interior node', async () => {
      await tamper(`UPDATE ledger_nodes SET hash = sha256('x') WHERE level = 2 AND idx = 5`);
      expect((await fsckLedger(dataSource, { batchSize: 16 })).firstProblem).toMatchObject({ kind: 'NODE_MISMATCH', index: 20 });
    });

    it('reports a rewritten checkpoint with its size', async () => {
      await tamper(`UPDATE ledger_checkpoints SET root_hash = sha256('x') WHERE tree_size = 30`);
      expect((await fsckLedger(dataSource)).firstProblem).toMatchObject({ kind: 'CHECKPOINT_MISMATCH', index: 30 });
    });

    it('reports an entry whose leaf hash was recomputed after an edit, through the nodes above it', async () => {
      await tamper(`UPDATE ledger_entries SET event = replace(event, 'dataset 42', 'dataset 43') WHERE idx = 42;
                    UPDATE ledger_entries SET leaf_hash = sha256('\\x00'::bytea || convert_to(event, 'UTF8')) WHERE idx = 42`);
      expect((await fsckLedger(dataSource, { batchSize: 16 })).firstProblem).toMatchObject({ kind: 'NODE_MISMATCH', index: 42 });
    });

    it('reports a head that disagrees with the entries', async () => {
      await tamper(`UPDATE ledger_head SET root_hash = sha256('x')`);
      expect((await fsckLedger(dataSource)).firstProblem).toMatchObject({ kind: 'HEAD_MISMATCH', index: 100 });
    });

    it('reports a head whose frontier was rewritten', async () => {
      await tamper(`UPDATE ledger_head SET frontier[1] = sha256('x')`);
      expect((await fsckLedger(dataSource)).firstProblem).toMatchObject({ kind: 'HEAD_MISMATCH', index: 100 });
    });
  });
});
