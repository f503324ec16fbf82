// Ledger.findEntries: entries looked up by type and key fields, through the expression indexes of their keys.
import { DataSource } from 'typeorm';
import { Anchored, BiasScanned, CheckpointsDeleted, DatasetVersioned, LedgerEvent, ModelPublished, UnlearnCompleted, VersionRetired } from '@lethe/events';
import { Ledger, openDatabase } from '@lethe/ledger';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents, hexOf } from '../support/factories';

function published(modelId: string, modelVersion: number): ModelPublished {
  return { type: 'MODEL_PUBLISHED', version: 1, modelId, modelVersion, onnxSha256: hexOf(`onnx ${modelId} ${modelVersion}`), manifestHash: hexOf('m'), metrics: {} };
}

function unlearned(modelId: string, modelVersion: number): UnlearnCompleted {
  return {
    type: 'UNLEARN_COMPLETED',
    version: 1,
    modelId,
    modelVersion,
    requestIds: [`fr-${modelVersion}`],
    oldOnnxSha256: hexOf(`onnx ${modelId} ${modelVersion - 1}`),
    newOnnxSha256: hexOf(`onnx ${modelId} ${modelVersion}`),
    evidence: {},
  };
}

function anchored(n: number): Anchored {
  return { type: 'ANCHORED', version: 1, chainId: '31337', contract: `0x${'ab'.repeat(20)}`, txHash: `0x${hexOf(`tx ${n}`)}`, blockNumber: n, treeSize: n + 1, rootHash: hexOf(`root ${n}`) };
}

/** `count` entries of every kind, in the order a busy service would write them; the `buildEvents` ones include FORGET_REQUESTED `fr-<n>`. */
function busyLog(count: number): LedgerEvent[] {
  return Array.from({ length: count }, (_, n) => {
    switch (n % 4) {
      case 0:
        return published(`model-${n % 40}`, n);
      case 1:
        return unlearned(`model-${n % 40}`, n);
      case 2:
        return anchored(n);
      default:
        return buildEvents(n, 1)[0];
    }
  });
}

function retired(modelId: string, modelVersion: number): VersionRetired {
  return { type: 'VERSION_RETIRED', version: 1, modelId, modelVersion, onnxSha256: hexOf(`onnx ${modelId} ${modelVersion}`), forgetRequestIds: [`fr-${modelVersion}`] };
}

function deleted(modelId: string, n: number): CheckpointsDeleted {
  return { type: 'CHECKPOINTS_DELETED', version: 1, modelId, checkpoints: [hexOf(`checkpoint ${n}`)], forgetRequestIds: [`fr-${n}`] };
}

/** The plan PostgreSQL chooses for the (last) statement `run` sends through `dataSource`. */
async function planOf(dataSource: DataSource, run: () => Promise<unknown>): Promise<string> {
  const spy = jest.spyOn(dataSource, 'query');
  let sent: Parameters<DataSource['query']>;
  try {
    await run();
    sent = spy.mock.calls.at(-1)!;
  } finally {
    spy.mockRestore();
  }
  const [sql, params] = sent;
  const [{ 'QUERY PLAN': plan }] = await dataSource.query(`EXPLAIN (FORMAT JSON) ${sql}`, params);
  return JSON.stringify(plan);
}

describe('Ledger.findEntries', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;

  beforeAll(async () => {
    db = await createTestDatabase('find_entries');
    dataSource = await openDatabase({ url: db.url });
    ledger = new Ledger(dataSource);
    await ledger.append(busyLog(4000));
    await ledger.append([published('model-x', 1), unlearned('model-x', 2), published('model-x', 2), unlearned('model-y', 2)]);
  });

  afterAll(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  it('finds the entries of a type whose key fields have the given values, decoded, in index order', async () => {
    const [request] = await ledger.findEntries({ type: 'FORGET_REQUESTED', fields: { requestId: 'fr-11' } });
    expect(request).toEqual({ index: 11, leafHash: (await ledger.getEntries(11, 1))[0].leafHash, event: buildEvents(11, 1)[0] });
    expect(request.event.commitments).toHaveLength(1); // typed as FORGET_REQUESTED
    const [anchor] = await ledger.findEntries({ type: 'ANCHORED', fields: { txHash: anchored(1002).txHash }, limit: 1 });
    expect(anchor).toMatchObject({ index: 1002, event: anchored(1002) });
    const versions = await ledger.findEntries({ type: ['MODEL_PUBLISHED', 'UNLEARN_COMPLETED'], fields: { modelId: 'model-x', modelVersion: 2 } });
    expect(versions.map((e) => [e.index, e.event.type])).toEqual([
      [4001, 'UNLEARN_COMPLETED'],
      [4002, 'MODEL_PUBLISHED'],
    ]);
    expect(await ledger.findEntries({ type: 'MODEL_PUBLISHED', fields: { modelId: 'model-x', modelVersion: 2 } })).toEqual([
      expect.objectContaining({ index: 4002 }),
    ]);
    // Another value, or the same value under another type, finds nothing.
    expect(await ledger.findEntries({ type: 'FORGET_REQUESTED', fields: { requestId: 'fr-12' } })).toEqual([]);
    expect(await ledger.findEntries({ type: 'UNLEARN_COMPLETED', fields: { modelId: 'model-x', modelVersion: 1 } })).toEqual([]);
  });

  it('pages through the entries of a key with afterIndex and limit', async () => {
    const all = await ledger.findEntries({ type: 'MODEL_PUBLISHED', fields: { modelId: 'model-0' } });
    expect(all.map((e) => e.index)).toEqual(Array.from({ length: 100 }, (_, i) => i * 40));
    const first = await ledger.findEntries({ type: 'MODEL_PUBLISHED', fields: { modelId: 'model-0' }, limit: 30 });
    const rest = await ledger.findEntries({ type: 'MODEL_PUBLISHED', fields: { modelId: 'model-0' }, afterIndex: first.at(-1)!.index });
    expect([...first, ...rest]).toEqual(all);
  });

  it('refuses a type without keys, a field that is not a key of its type and a bad limit, naming them', async () => {
    await expect(ledger.findEntries({ type: 'BATCH_LEARNED' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'type' });
    await expect(ledger.findEntries({ type: 'ANCHORED', fields: { requestId: 'fr-11' } as never })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'requestId',
    });
    await expect(ledger.findEntries({ type: 'FORGET_REQUESTED', limit: 1001 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'limit' });
    await expect(ledger.findEntries({ type: 'FORGET_REQUESTED', afterIndex: -1 })).rejects.toMatchObject({ field: 'afterIndex' });
  });

  it('reads each key through its index, not by scanning the log (EXPLAIN on 4,004 entries)', async () => {
    await dataSource.query('ANALYZE ledger_entries');
    expect((await ledger.findEntries({ type: 'SAMPLES_COMMITTED', fields: { commitmentsRoot: hexOf('root-7') } })).map((e) => e.index)).toEqual([7]);
    const lookups: [string, () => Promise<unknown>][] = [
      ['ledger_entries_request_id_idx', () => ledger.findEntries({ type: 'FORGET_REQUESTED', fields: { requestId: 'fr-11' } })],
      ['ledger_entries_tx_hash_idx', () => ledger.findEntries({ type: 'ANCHORED', fields: { txHash: anchored(1002).txHash } })],
      ['ledger_entries_commitments_root_idx', () => ledger.findEntries({ type: 'SAMPLES_COMMITTED', fields: { commitmentsRoot: hexOf('root-7') } })],
      [
        'ledger_entries_model_version_idx',
        () => ledger.findEntries({ type: ['MODEL_PUBLISHED', 'UNLEARN_COMPLETED'], fields: { modelId: 'model-x', modelVersion: 2 } }),
      ],
    ];
    for (const [index, lookup] of lookups) {
      const plan = await planOf(dataSource, lookup);
      expect({ index, usesIndex: plan.includes(`"Index Name":"${index}"`), seqScan: plan.includes('Seq Scan') }).toEqual({
        index,
        usesIndex: true,
        seqScan: false,
      });
    }
  });

  it('the entry-index migrations (one EntryIndexMigration now) made the indexes their first SQL made', async () => {
    // The statements the five migrations ran before they shared EntryIndexMigration, verbatim.
    const first = [
      `CREATE INDEX ledger_entries_request_id_idx ON ledger_entries ((event::jsonb ->> 'requestId'), idx)
       WHERE type IN ('FORGET_REQUESTED')`,
      `CREATE INDEX ledger_entries_model_version_idx ON ledger_entries ((event::jsonb ->> 'modelId'), (event::jsonb ->> 'modelVersion'), idx)
       WHERE type IN ('MODEL_PUBLISHED', 'UNLEARN_COMPLETED')`,
      `CREATE INDEX ledger_entries_tx_hash_idx ON ledger_entries ((event::jsonb ->> 'txHash'), idx) WHERE type IN ('ANCHORED')`,
      `CREATE INDEX ledger_entries_commitments_root_idx ON ledger_entries ((event::jsonb ->> 'commitmentsRoot'), idx)
       WHERE type IN ('SAMPLES_COMMITTED')`,
      `CREATE INDEX ledger_entries_retired_version_idx ON ledger_entries ((event::jsonb ->> 'modelId'), (event::jsonb ->> 'modelVersion'), idx)
       WHERE type IN ('VERSION_RETIRED')`,
      `CREATE INDEX ledger_entries_checkpoints_deleted_idx ON ledger_entries ((event::jsonb ->> 'modelId'), idx)
       WHERE type IN ('CHECKPOINTS_DELETED')`,
      `CREATE INDEX ledger_entries_evidence_version_idx ON ledger_entries ((event::jsonb ->> 'modelId'), (event::jsonb ->> 'modelVersion'), idx)
       WHERE type IN ('EVIDENCE_RECORDED')`,
      `CREATE INDEX ledger_entries_dataset_version_idx ON ledger_entries ((event::jsonb ->> 'datasetId'), (event::jsonb ->> 'datasetVersion'), idx)
       WHERE type IN ('DATASET_VERSIONED')`,
    ];
    await dataSource.query('CREATE TABLE entries_as_first (LIKE ledger_entries)');
    try {
      for (const sql of first) await dataSource.query(sql.replace(/^CREATE INDEX (\w+) ON ledger_entries /, 'CREATE INDEX $1_first ON entries_as_first '));
      const defs = async (table: string): Promise<Record<string, string>> => {
        const rows: { indexname: string; indexdef: string }[] = await dataSource.query(
          `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname LIKE 'ledger_entries_%' ORDER BY indexname`,
          [table],
        );
        return Object.fromEntries(rows.map((r) => [r.indexname.replace(/_first$/, ''), r.indexdef.replace(/_first /, ' ').replace(' public.entries_as_first ', ' public.ledger_entries ')]));
      };
      const made = await defs('ledger_entries');
      const asFirst = await defs('entries_as_first');
      expect(Object.keys(asFirst)).toHaveLength(8);
      for (const [name, def] of Object.entries(asFirst)) expect({ name, def: made[name] }).toEqual({ name, def });
    } finally {
      await dataSource.query('DROP TABLE entries_as_first');
    }
  });

  it('counts the entries since an index other than some types, up to a limit', async () => {
    expect(await ledger.countEntries({ start: 3990, except: ['ANCHORED'], atMost: 100 })).toBe(11); // 3990..4003, less 3990, 3994, 3998
    expect(await ledger.countEntries({ start: 3990, atMost: 100 })).toBe(14);
    expect(await ledger.countEntries({ start: 0, except: ['ANCHORED'], atMost: 5 })).toBe(5);
    expect(await ledger.countEntries({ start: 4004, atMost: 5 })).toBe(0);
  });

});

describe('Ledger.findEntries: the retirement entries', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;

  beforeAll(async () => {
    db = await createTestDatabase('find_retired');
    dataSource = await openDatabase({ url: db.url });
    ledger = new Ledger(dataSource);
    // A busy log with a retirement and a deletion of checkpoints every 8 entries, for 40 models.
    const log = busyLog(4000).flatMap((e, n) => (n % 8 === 7 ? [e, retired(`model-${n % 40}`, n), deleted(`model-${n % 40}`, n)] : [e]));
    await ledger.append(log);
    await dataSource.query('ANALYZE ledger_entries');
  });

  afterAll(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  it('finds VERSION_RETIRED by model and version and CHECKPOINTS_DELETED by model, through their indexes', async () => {
    const [version] = await ledger.findEntries({ type: 'VERSION_RETIRED', fields: { modelId: 'model-7', modelVersion: 7 } });
    expect(version.event).toEqual(retired('model-7', 7));
    const deletions = await ledger.findEntries({ type: 'CHECKPOINTS_DELETED', fields: { modelId: 'model-7' }, afterIndex: version.index });
    expect(deletions[0]).toEqual(expect.objectContaining({ index: version.index + 1, event: deleted('model-7', 7) }));
    expect(deletions.every((d) => d.event.modelId === 'model-7')).toBe(true);
    for (const [index, lookup] of [
      ['ledger_entries_retired_version_idx', () => ledger.findEntries({ type: 'VERSION_RETIRED', fields: { modelId: 'model-7', modelVersion: 7 } })],
      ['ledger_entries_checkpoints_deleted_idx', () => ledger.findEntries({ type: 'CHECKPOINTS_DELETED', fields: { modelId: 'model-7' } })],
    ] as const) {
      const plan = await planOf(dataSource, lookup);
      expect({ index, usesIndex: plan.includes(`"Index Name":"${index}"`), seqScan: plan.includes('Seq Scan') }).toEqual({
        index,
        usesIndex: true,
        seqScan: false,
      });
    }
  });
});

describe('Ledger.findEntries: BIAS_SCANNED by job', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;
  const scanned = (jobId: string): BiasScanned => ({
    type: 'BIAS_SCANNED',
    version: 1,
    jobId,
    modelId: 'model-b',
    modelVersion: 1,
    method: 'leave-one-slice-out',
    metric: 'equalizedOddsDifference',
    gapBefore: 0.1,
    candidates: 2,
    candidatesRoot: hexOf(`root ${jobId}`),
  });

  beforeAll(async () => {
    db = await createTestDatabase('find_bias_scans');
    dataSource = await openDatabase({ url: db.url });
    ledger = new Ledger(dataSource);
    await ledger.append([...busyLog(2000), scanned('job-1'), scanned('job-2'), scanned('job-3')]);
  });

  afterAll(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  it('finds a scan by its jobId through its index (a retried job finds what its first run logged)', async () => {
    const found = await ledger.findEntries({ type: 'BIAS_SCANNED', fields: { jobId: 'job-2' } });
    expect(found.map((e) => e.event)).toEqual([scanned('job-2')]);
    expect(await ledger.findEntries({ type: 'BIAS_SCANNED', fields: { jobId: 'job-4' } })).toEqual([]);
    await dataSource.query('ANALYZE ledger_entries');
    const plan = await planOf(dataSource, () => ledger.findEntries({ type: 'BIAS_SCANNED', fields: { jobId: 'job-2' }, limit: 1 }));
    expect({ usesIndex: plan.includes('"Index Name":"ledger_entries_bias_scan_idx"'), seqScan: plan.includes('Seq Scan') }).toEqual({ usesIndex: true, seqScan: false });
  });
});

describe('Ledger.findEntries: the latest DATASET_VERSIONED of a dataset', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;
  /** The k-th version in the log: of dataset k % 20, its version k / 20 + 1. */
  const versioned = (k: number): DatasetVersioned => ({
    type: 'DATASET_VERSIONED',
    version: 1,
    datasetId: `dataset-${k % 20}`,
    datasetVersion: Math.floor(k / 20) + 1,
    root: hexOf(`dataset root ${k}`),
    size: k,
  });

  beforeAll(async () => {
    db = await createTestDatabase('find_dataset_latest');
    dataSource = await openDatabase({ url: db.url });
    ledger = new Ledger(dataSource);
    // A busy log with a new version of one of 20 datasets every 4 entries: 50 versions each (past 9, where text order breaks).
    await ledger.append(busyLog(4000).flatMap((e, n) => (n % 4 === 3 ? [e, versioned(n >> 2)] : [e])));
    await dataSource.query('ANALYZE ledger_entries');
  });

  afterAll(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  it('newestFirst with limit 1 gives the newest entry of the key, read backwards along its index (no sort, no scan of the log)', async () => {
    const all = await ledger.findEntries({ type: 'DATASET_VERSIONED', fields: { datasetId: 'dataset-7' } });
    expect(all.map((e) => e.event.datasetVersion)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const latest = () => ledger.findEntries({ type: 'DATASET_VERSIONED', fields: { datasetId: 'dataset-7' }, newestFirst: true, limit: 1 });
    expect(await latest()).toEqual([all.at(-1)]);
    expect((await ledger.findEntries({ type: 'DATASET_VERSIONED', fields: { datasetId: 'dataset-7' }, newestFirst: true, limit: 3 })).map((e) => e.index)).toEqual(
      all.slice(-3).reverse().map((e) => e.index),
    );
    const plan = await planOf(dataSource, latest);
    expect({ backwards: plan.includes('"Index Name":"ledger_entries_dataset_latest_idx"') && plan.includes('"Scan Direction":"Backward"'), sort: plan.includes('"Node Type":"Sort"'), seqScan: plan.includes('Seq Scan') }).toEqual({
      backwards: true,
      sort: false,
      seqScan: false,
    });
    // Control: without that index (the one by dataset and version cannot give log order), the same query reads more than one entry.
    await dataSource.query('DROP INDEX ledger_entries_dataset_latest_idx');
    const without = await planOf(dataSource, latest);
    expect(without).not.toContain('ledger_entries_dataset_latest_idx');
    expect(without).toMatch(/"Node Type":"Sort"|"Filter":/); // sorts the dataset's entries, or filters the log backwards
  });

  it('refuses newestFirst with afterIndex (which pages oldest first)', async () => {
    await expect(ledger.findEntries({ type: 'DATASET_VERSIONED', fields: { datasetId: 'dataset-7' }, newestFirst: true, afterIndex: 3 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'afterIndex',
    });
  });
});
