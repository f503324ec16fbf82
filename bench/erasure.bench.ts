// Crypto-shredding (#11 item 3): what sealing samples costs and what forgetting takes.
// 1. Uploads through the service's NDJSON route (the service in this process, its embedded database): the mnist
//    package's 10,000 digits, sealed (today's SampleVault) against the same upload stored in plaintext (the
//    vault before #11, kept in test/support/legacy-samples.ts) in the same process and database, alternating.
// 2. Opening 200,000 samples at training start (synthetic, Purchase-like: 600 binary features, 100 classes,
//    each sample its own subject, so 200,000 data keys) against reading the same samples from a plaintext table
//    as the old code did, both into float32 training matrices.
// 3. A forget request to its subject's key destroyed, through the service and its worker (SISA model on 1,000
//    MNIST digits), and the shred step alone against the old shred (an UPDATE to NULL) of the same rows.
// 4. The key store's size: key pages against one file per key, made in the same run.
// Run: npm run bench -- erasure [--upload-rounds 2] [--read-samples 200000] [--forgets 10] [--only upload|read|forget]
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { FileKeyStore, createKeyId } from '@lethe/keystore';
import { CommittableSample, CommitResult, Ledger, SampleVault, subjectHashOf } from '@lethe/ledger';
import { LabeledExample, Sample, compactFeatures, loadMnist } from '@lethe/unlearning';
import { SampleUploadService } from '../apps/api/src/datasets/sample-upload.service';
import { AddSamplePosition1764216200000 } from '../libs/ledger/src/migrations/1764216200000-add-sample-position';
import { CreateSamples1764216050000 } from '../libs/ledger/src/migrations/1764216050000-create-samples';
import { JobHarness, startJobHarness } from '../test/support/job-harness';
import { waitFor } from '../test/support/probe';
import { commitPlaintext, shredPlaintext } from '../test/support/legacy-samples';
import { startBenchPostgres } from './lib/bench-postgres';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { xorshift32 } from './lib/random';
import { median, printTable } from './lib/table';

const flags = defineFlags({
  uploadRounds: { type: 'integer', min: 1, default: 2, help: 'uploads of each kind (sealed, plaintext), alternating which goes first' },
  readSamples: { type: 'integer', min: 1000, default: 200_000, help: 'samples opened at training start' },
  forgets: { type: 'integer', min: 1, default: 10, help: 'forget requests timed through the service' },
  only: { type: 'choice', choices: ['upload', 'read', 'forget'], help: 'run one part only' },
});

type Clock = { ms: number; cpuMs: number };

async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; clock: Clock }> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const result = await fn();
  const used = process.cpuUsage(cpu);
  return { result, clock: { ms: Number(process.hrtime.bigint() - start) / 1e6, cpuMs: (used.user + used.system) / 1000 } };
}

const load = () => loadavg()[0].toFixed(1);
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The upload path of the plaintext version: rows in the old `samples` table, looked up by externalId in clear. */
class PlaintextVault {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
  ) {}

  async commit(datasetId: string, samples: CommittableSample[]): Promise<CommitResult> {
    const { commitments, ledgerIndex } = await commitPlaintext(this.dataSource, this.ledger, datasetId, samples);
    return { samples: samples.map((s, i) => ({ externalId: s.externalId, commitment: commitments[i] })), ledgerIndex: ledgerIndex!, commitmentsRoot: '' };
  }

  async findExternalIds(datasetId: string, externalIds: string[]): Promise<Set<string>> {
    const rows: { external_id: string }[] = await this.dataSource.query(
      `SELECT external_id FROM samples WHERE dataset_id = $1 AND external_id = ANY($2::text[])`,
      [datasetId, externalIds],
    );
    return new Set(rows.map((r) => r.external_id));
  }
}

/** Creates the plaintext version's `samples` table beside today's tables (its own migrations' DDL). */
async function createPlaintextTable(dataSource: DataSource): Promise<void> {
  const runner = dataSource.createQueryRunner();
  try {
    await new CreateSamples1764216050000().up(runner);
    await new AddSamplePosition1764216200000().up(runner);
  } finally {
    await runner.release();
  }
}

async function newDataset(h: JobHarness, api: string, name: string, features: number, classes: number): Promise<string> {
  const res = await fetch(`${api}/v1/datasets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.ml}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, features, classes }),
  });
  return ((await res.json()) as { id: string }).id;
}

async function uploadNdjson(h: JobHarness, api: string, datasetId: string, body: Buffer): Promise<number> {
  const res = await fetch(`${api}/v1/datasets/${datasetId}/samples`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.ml}`, 'content-type': 'application/x-ndjson' },
    body: body as unknown as BodyInit, // a Buffer, which fetch (undici) sends as it is
  });
  const answer = (await res.json()) as { accepted: number };
  if (res.status !== 200) throw new Error(`upload answered ${res.status}`);
  return answer.accepted;
}

function ndjsonOf(samples: object[]): Buffer {
  return Buffer.from(samples.map((s) => JSON.stringify(s)).join('\n') + '\n');
}

/** 1. Upload throughput, sealed against plaintext, alternating which goes first. */
async function uploadBench(h: JobHarness, api: string, rounds: number): Promise<string[][]> {
  const upload = h.app.get(SampleUploadService);
  const slot = upload as unknown as { sampleVault: SampleVault | PlaintextVault };
  const sealed = slot.sampleVault;
  const plain = new PlaintextVault(h.dataSource, h.ledger);
  const digits = loadMnist();
  const variants: { name: string; body: Buffer; subjects: number }[] = [
    {
      name: 'mnist 10,000 digits, 3 per subject (the demo)',
      body: ndjsonOf(digits.map((d, i) => ({ externalId: d.externalId, subjectId: `subject-${Math.floor(i / 3)}`, features: d.features, label: d.label }))),
      subjects: Math.ceil(digits.length / 3),
    },
    {
      name: 'mnist 10,000 digits, no subjectId (a key each)',
      body: ndjsonOf(digits.map((d) => ({ externalId: d.externalId, features: d.features, label: d.label }))),
      subjects: digits.length,
    },
  ];
  const rows: string[][] = [];
  const shredRows: string[][] = [];
  for (const variant of variants) {
    const runs: Record<'plaintext' | 'sealed', Clock[]> = { plaintext: [], sealed: [] };
    const datasets: Record<'plaintext' | 'sealed', string> = { plaintext: '', sealed: '' };
    for (let round = 0; round < rounds; round++) {
      const order: ('plaintext' | 'sealed')[] = round % 2 === 0 ? ['plaintext', 'sealed'] : ['sealed', 'plaintext'];
      for (const mode of order) {
        slot.sampleVault = mode === 'sealed' ? sealed : plain;
        const datasetId = await newDataset(h, api, `${mode}-${round}`, 784, 10);
        datasets[mode] = datasetId;
        const { result: accepted, clock } = await timed(() => uploadNdjson(h, api, datasetId, variant.body));
        if (accepted !== digits.length) throw new Error(`${mode} upload accepted ${accepted} of ${digits.length}`);
        runs[mode].push(clock);
      }
    }
    slot.sampleVault = sealed;
    const wall = (clocks: Clock[]) => median(clocks.map((c) => c.ms));
    const cpu = (clocks: Clock[]) => median(clocks.map((c) => c.cpuMs));
    const cell = (clocks: Clock[]) =>
      `${fmt(digits.length / (wall(clocks) / 1000))}/s; ${fmt(wall(clocks))} ms, CPU ${fmt(cpu(clocks))} ms (${clocks.map((c) => fmt(c.ms)).join(', ')})`;
    rows.push([
      variant.name,
      cell(runs.plaintext),
      cell(runs.sealed),
      `${((wall(runs.sealed) / wall(runs.plaintext) - 1) * 100).toFixed(1)}% wall, ${((cpu(runs.sealed) / cpu(runs.plaintext) - 1) * 100).toFixed(1)}% CPU`,
      fmt(variant.subjects),
      load(),
    ]);
    if (variant.subjects < digits.length) shredRows.push(...(await shredBench(h, datasets)));
  }
  printTable(
    `Uploads through POST /v1/datasets/:id/samples (NDJSON, 784 features, chunks of 5,000), median of ${rounds} alternating runs; the service and the client in this process (its CPU time), PostgreSQL in its own`,
    ['upload', 'plaintext (baseline): rate; wall, CPU (each run)', 'sealed: rate; wall, CPU (each run)', 'sealed slower by (goal ≤ 15%)', 'data keys made', 'load'],
    rows,
  );
  return shredRows;
}

/** The shred step alone: one subject's 3 samples, sealed (keys destroyed, rows deleted) against the old UPDATE to NULL. */
async function shredBench(h: JobHarness, datasets: Record<'plaintext' | 'sealed', string>): Promise<string[][]> {
  const vault = new SampleVault(h.dataSource, h.ledger, h.keyStore);
  const lookupKey = await h.keyStore.getLookupKey();
  const sealed: number[] = [];
  const plain: number[] = [];
  for (let s = 0; s < 20; s++) {
    const subjectId = `subject-${s}`;
    const found = await vault.findSamples(datasets.sealed, { subjectId });
    sealed.push((await timed(() => vault.shred(datasets.sealed, found.map((f) => f.commitment)))).clock.ms);
    if ((await h.dataSource.query(`SELECT 1 FROM subject_keys WHERE dataset_id = $1 AND subject_hash = $2`, [datasets.sealed, subjectHashOf(lookupKey, datasets.sealed, { externalId: '', subjectId })])).length > 0)
      throw new Error('the subject kept its key');
    const rows: { commitment: string }[] = await h.dataSource.query(`SELECT commitment FROM samples WHERE dataset_id = $1 AND subject_id = $2`, [datasets.plaintext, subjectId]);
    plain.push((await timed(() => shredPlaintext(h.dataSource, rows.map((r) => r.commitment)))).clock.ms);
  }
  return [
    ['old shred: UPDATE to NULL (baseline)', fmt(median(plain), 2), fmt(Math.max(...plain), 2), load()],
    ['shred: key destroyed (slot zeroed, fdatasync), rows deleted', fmt(median(sealed), 2), fmt(Math.max(...sealed), 2), load()],
  ];
}

/** A deterministic stream of 0/1 features (xorshift32). */
function* bits(seed: number): Generator<number> {
  const next = xorshift32(seed);
  for (;;) yield next() & 1;
}

/** 2. Opening READ_SAMPLES samples at training start, against reading them from a plaintext table as the old code did. */
async function readBench(h: JobHarness, count: number): Promise<void> {
  const FEATURES = 600;
  const vault = new SampleVault(h.dataSource, h.ledger, h.keyStore);
  const plain = new PlaintextVault(h.dataSource, h.ledger);
  const sealedId = 'read-sealed';
  const plainId = 'read-plain';
  const stream = bits(42);
  const loadClocks = { sealed: { ms: 0, cpuMs: 0 }, plain: { ms: 0, cpuMs: 0 } };
  for (let from = 0; from < count; from += 5000) {
    const chunk: CommittableSample[] = Array.from({ length: Math.min(5000, count - from) }, (_, i) => ({
      externalId: `purchase-${from + i}`,
      features: Array.from({ length: FEATURES }, () => stream.next().value as number),
      label: (from + i) % 100,
    }));
    const s = await timed(() => vault.commit(sealedId, chunk));
    const p = await timed(() => plain.commit(plainId, chunk));
    for (const [clock, add] of [[loadClocks.sealed, s.clock], [loadClocks.plain, p.clock]] as const) {
      clock.ms += add.ms;
      clock.cpuMs += add.cpuMs;
    }
  }
  const readPlain = async (): Promise<Sample[]> => {
    const out: Sample[] = [];
    for (let after = '0'; ; ) {
      const rows: { id: string; external_id: string; features: number[]; label: number; commitment: string }[] = await h.dataSource.query(
        `SELECT id, external_id, features, label, commitment FROM samples WHERE dataset_id = $1 AND ledger_index IS NOT NULL AND shredded_at IS NULL AND id > $2 ORDER BY id LIMIT 5000`,
        [plainId, after],
      );
      if (rows.length === 0) break;
      out.push(...compactFeatures(rows.map((r) => ({ externalId: r.external_id, features: r.features, label: r.label, commitment: r.commitment }))));
      after = rows[rows.length - 1].id;
    }
    return out;
  };
  const readSealed = async (): Promise<LabeledExample[]> => vault.readSamples({ datasetId: sealedId }, { committedOnly: true, float32: true });
  const rows: string[][] = [];
  for (let round = 0; round < 2; round++) {
    for (const [name, read] of [
      ['plaintext table, as the old code read it (baseline)', readPlain],
      ['sealed: keys read, payloads opened into float32', readSealed],
    ] as const) {
      const { result, clock } = await timed(read);
      if (result.length !== count || !(result[count - 1].features instanceof Float32Array)) throw new Error(`${name}: read ${result.length} samples`);
      rows.push([name, fmt(clock.ms), fmt(clock.cpuMs), fmt((clock.ms * 1000) / count, 1), load()]);
    }
  }
  printTable(
    `Opening ${fmt(count)} samples at training start (600 binary features, 100 classes, synthetic Purchase-like; each its own subject: ${fmt(count)} keys), two rounds`,
    ['read', 'wall ms', 'CPU ms', 'µs per sample (wall)', 'load'],
    rows,
  );
  printTable(
    `Storing the same ${fmt(count)} samples through the vault (5,000 per commit, one SAMPLES_COMMITTED each)`,
    ['store', 'wall ms', 'CPU ms', 'samples/s'],
    [
      ['plaintext rows (baseline)', fmt(loadClocks.plain.ms), fmt(loadClocks.plain.cpuMs), fmt(count / (loadClocks.plain.ms / 1000))],
      ['sealed rows, a new key each (key pages)', fmt(loadClocks.sealed.ms), fmt(loadClocks.sealed.cpuMs), fmt(count / (loadClocks.sealed.ms / 1000))],
    ],
  );
  const stats = await h.keyStore.stats();
  const single = await singleFileBaseline();
  printTable(
    'The key store on disk (ext4): key pages (what the service makes) against one file per key (FileKeyStore.createKey), same run',
    ['layout', 'keys', 'bytes stored', 'bytes on disk', 'on disk per key', 'create, per key'],
    [
      ['one file per key (baseline; 2,000 keys, 16 in flight)', fmt(single.keys), fmt(single.bytes), fmt(single.allocated), `${fmt(single.allocated / single.keys)} B`, `${fmt(single.createMs, 3)} ms`],
      ['key pages (the service)', fmt(stats.keys), fmt(stats.bytes), fmt(stats.allocatedBytes ?? 0), `${fmt((stats.allocatedBytes ?? 0) / stats.keys, 1)} B`, `${fmt(single.pageCreateMs, 4)} ms`],
    ],
  );
}

/** 2,000 keys as one file each, and 5,000 in a page, in a throwaway store: their size on disk and their creation time per key. */
async function singleFileBaseline(): Promise<{ keys: number; bytes: number; allocated: number; createMs: number; pageCreateMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'lethe-bench-keys-'));
  try {
    const store = await FileKeyStore.open({ dir: join(dir, 'keys'), masterKey: createHash('sha256').update('bench').digest('hex') });
    const ids = Array.from({ length: 2000 }, () => createKeyId());
    const { clock } = await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < ids.length) await store.createKey(ids[next++]);
      }));
    });
    const stats = await store.stats();
    const paged = await FileKeyStore.open({ dir: join(dir, 'paged'), masterKey: createHash('sha256').update('bench').digest('hex') });
    const page = await timed(() => paged.createKeys(5000));
    return { keys: stats.keys, bytes: stats.bytes, allocated: stats.allocatedBytes ?? 0, createMs: clock.ms / ids.length, pageCreateMs: page.clock.ms / 5000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 3. A forget request to its subject's key destroyed, through the service and its worker. */
async function forgetBench(count: number): Promise<string[][]> {
  const h = await startJobHarness('bench_forget');
  try {
    await h.app.listen(0, '127.0.0.1');
    const api = `http://127.0.0.1:${(h.app.getHttpServer().address() as AddressInfo).port}`;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${h.ml}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await res.json()) as any;
    };
    const digits = loadMnist({ perDigit: 100 });
    const datasetId = await newDataset(h, api, 'forget', 784, 10);
    await uploadNdjson(h, api, datasetId, ndjsonOf(digits.map((d, i) => ({ externalId: d.externalId, subjectId: `subject-${Math.floor(i / 3)}`, features: d.features, label: d.label }))));
    const { jobId } = await call('POST', '/v1/models', {
      datasetId,
      method: 'sisa',
      shards: 5,
      slices: 2,
      architecture: { type: 'logreg' },
      epochs: 2,
      batchSize: 16,
      learningRate: 0.1,
      seed: 1,
    });
    await waitFor(() => call('GET', `/v1/jobs/${jobId}`), (j) => j.state === 'completed' || j.state === 'failed', 300_000);
    const lookupKey = await h.keyStore.getLookupKey();
    const toKeysGone: number[] = [];
    const toCompleted: number[] = [];
    for (let i = 0; i < count; i++) {
      const subjectId = `subject-${i * 7}`;
      const [{ key_id: keyId }]: { key_id: string }[] = await h.dataSource.query(`SELECT key_id FROM subject_keys WHERE dataset_id = $1 AND subject_hash = $2`, [
        datasetId,
        subjectHashOf(lookupKey, datasetId, { externalId: '', subjectId }),
      ]);
      const start = Date.now();
      const request = await call('POST', '/v1/forget-requests', { datasetId, subjectId, reason: 'bench' });
      while (await h.keyStore.hasKey(keyId)) await new Promise((r) => setTimeout(r, 5));
      toKeysGone.push(Date.now() - start);
      await waitFor(() => call('GET', `/v1/forget-requests/${request.id}`), (r) => r.state === 'completed' || r.state === 'failed', 300_000);
      toCompleted.push(Date.now() - start);
    }
    return [
      ['request → subject key destroyed', fmt(median(toKeysGone)), fmt(Math.max(...toKeysGone)), load()],
      ['request → completed (seen by polling every 250 ms)', fmt(median(toCompleted)), fmt(Math.max(...toCompleted)), load()],
    ];
  } finally {
    await h.close();
  }
}

async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const rounds = options.uploadRounds;
  const readSamples = options.readSamples;
  const forgets = options.forgets;
  const parts = new Set(options.only === undefined ? ['upload', 'read', 'forget'] : [options.only]);
  const pg = await startBenchPostgres();
  process.env.TEST_DATABASE_URL = pg.serverUrl; // the harness makes its databases there
  try {
    const h = await startJobHarness('bench_erasure', { worker: false });
    try {
      await h.app.listen(0, '127.0.0.1');
      const api = `http://127.0.0.1:${(h.app.getHttpServer().address() as AddressInfo).port}`;
      await createPlaintextTable(h.dataSource);
      const shredRows = parts.has('upload') ? await uploadBench(h, api, rounds) : [];
      if (parts.has('read')) await readBench(h, readSamples);
      const forgetRows = parts.has('forget') ? await forgetBench(forgets) : [];
      if (forgetRows.length + shredRows.length === 0) return;
      printTable(
        parts.has('forget')
          ? `Forgetting one subject (3 MNIST digits): the service and its worker (SISA 5x2 logistic regression on 1,000 digits, JOB_POLL_SECONDS=1), ${forgets} requests one after another`
          : 'Forgetting one subject (3 MNIST digits): the shred step alone',
        ['step', 'median ms', 'max ms', 'load'],
        [...forgetRows, ...shredRows],
      );
    } finally {
      await h.close();
    }
  } finally {
    await pg.stop();
  }
}

export const bench: Bench<typeof flags> = {
  summary: 'uploads sealed vs in plaintext, opening 200,000 samples at training start, forget request -> keys destroyed, key store size',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/erasure.bench.ts', bench);
