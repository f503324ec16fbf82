// The test that cannot be fooled (#11 item 6): the real service, on its own DATA_DIR with the embedded
// PostgreSQL (so its tables, WAL, checkpoints, models and keys all live there), is given a data subject's
// samples carrying markers, trains a SISA and a full model on them, forgets the subject, and is stopped
// cleanly; then every byte of every file under DATA_DIR, and everything the service printed, is searched
// for the markers. Positive controls show the same search finds another subject's markers in each place
// it looks: sealed payloads opened with the key that still exists, a table file and the WAL of the same
// cluster, the key store before the destroy, the service's log, pg-boss's tables.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { FileArtifactStore } from '@lethe/artifacts';
import { LEDGER_EVENT_TYPES } from '@lethe/events';
import { FileKeyStore, KEY_PAGE_SUFFIX, keyStoreDir, openPayload, payloadAssociatedData } from '@lethe/keystore';
import { subjectHashOf } from '@lethe/ledger';
import { probeUntil } from '../support/probe';
import { Hit, Markers, Needle, float32Bytes, needlesOf, scanBuffer, scanText, scanTree } from '../support/scan';
import { ServiceProcess, callService, makeServiceDataDir, startServiceOnFreePort } from '../support/service-process';

const FEATURES = 8;

/** A subject whose markers occur nowhere else: a distinctive subjectId and externalIds, and two feature values. */
function subjectMarkers(name: string): Markers & { subjectId: string; externalIds: string[]; run: number[] } {
  const tag = randomBytes(5).toString('hex');
  const value = () => Number((0.1 + Math.random() * 0.8).toPrecision(15));
  const run = [value(), value()];
  const subjectId = `${name}-subject-${tag}`;
  const externalIds = [1, 2, 3].map((i) => `${name}-sample-${tag}-${i}`);
  return { subjectId, externalIds, run, texts: [subjectId, ...externalIds], feature: run[0], float32Run: run };
}

function samplesOf(m: ReturnType<typeof subjectMarkers>): object[] {
  return m.externalIds.map((externalId, i) => ({
    externalId,
    subjectId: m.subjectId,
    features: [...m.run, ...Array.from({ length: FEATURES - 2 }, (_, j) => (i + j) % 3)],
    label: i % 2,
  }));
}

function fillerSamples(count: number): object[] {
  return Array.from({ length: count }, (_, i) => ({
    externalId: `filler-${i}`,
    ...(i % 3 === 0 ? { subjectId: `filler-subject-${i % 9}` } : {}),
    features: Array.from({ length: FEATURES }, (_, j) => ((i * 7 + j * 3) % 11) / 10),
    label: i % 2,
  }));
}

const describeHits = (hits: Hit[]) => hits.map((h) => `${h.needle} in ${h.file} at ${h.offset}`);
const needleNames = (hits: Hit[]) => [...new Set(hits.map((h) => h.needle))].sort();
const namesOf = (needles: Needle[]) => needles.map((n) => n.name).sort();

describe('erasure on disk: after a forget, nothing of the subject is left under DATA_DIR or in the log', () => {
  let dataDir: string;
  let service: ServiceProcess | undefined;

  beforeAll(() => {
    dataDir = makeServiceDataDir('lethe-erasure-');
  });

  afterAll(() => {
    if (service?.child.exitCode === null && service.child.signalCode === null) process.kill(-service.child.pid!, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('finds zero hits for the forgotten subject, and the controls find the kept subject in every place searched', async () => {
    const forgotten = subjectMarkers('erasure');
    const kept = subjectMarkers('control');
    const masterKey = randomBytes(32).toString('hex');
    // A process group of its own (detached), as a terminal gives a foreground job: SIGINT to -pid reaches it all.
    const started = await startServiceOnFreePort(
      {
        DATA_DIR: dataDir,
        DATABASE_URL: '',
        ANCHORING: 'off',
        LETHE_MASTER_KEY: masterKey,
        LETHE_ADMIN_KEY: '',
        LOG_LEVEL: 'verbose', // every line the service can print, debug ones included
        JOB_POLL_SECONDS: '1',
        JOB_STOP_TIMEOUT_SECONDS: '5',
      },
      { detached: true },
    );
    service = started;
    const { api } = started;
    const call = (method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) =>
      callService(api, method, path, key, body, headers);
    const waitFor = <T>(probe: () => Promise<T | undefined>, what: string) => probeUntil(probe, what, 180_000);

    const admin = /First admin API key \(shown this once; store it now\): (\S+)/.exec(service.output())![1];
    const ml = (await call('POST', '/v1/keys', admin, { role: 'ml', name: 'erasure' })).body.key as string;
    const datasetId = (await call('POST', '/v1/datasets', ml, { name: 'erasure', features: FEATURES, classes: 2 })).body.id as string;

    // The subjects' samples as NDJSON with an Idempotency-Key (the path that streams and replays), the rest as JSON.
    const ndjson = [...samplesOf(forgotten), ...samplesOf(kept)].map((s) => JSON.stringify(s)).join('\n');
    const upload = await fetch(`${api}/v1/datasets/${datasetId}/samples`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ml}`, 'content-type': 'application/x-ndjson', 'idempotency-key': `upload-${forgotten.subjectId}` },
      body: ndjson,
    });
    expect(upload.status).toBe(200);
    expect(((await upload.json()) as { accepted: number }).accepted).toBe(6);
    expect((await call('POST', `/v1/datasets/${datasetId}/samples`, ml, fillerSamples(60), { 'idempotency-key': 'filler-upload' })).status).toBe(200);

    // A SISA model and a fully retrained one learn every sample.
    const settings = { datasetId, epochs: 2, batchSize: 4, learningRate: 0.1, seed: 7 };
    const models = [
      (await call('POST', '/v1/models', ml, { ...settings, method: 'sisa', shards: 2, slices: 2, architecture: { type: 'logreg' } })).body,
      (await call('POST', '/v1/models', ml, { ...settings, method: 'full', architecture: { type: 'mlp', hidden: [4] } })).body,
    ] as { modelId: string; jobId: string }[];
    for (const { jobId } of models) {
      const job = await waitFor(async () => {
        const j = (await call('GET', `/v1/jobs/${jobId}`, ml)).body;
        return j.state === 'completed' || j.state === 'failed' ? j : undefined;
      }, `training job ${jobId}`);
      expect(job).toMatchObject({ state: 'completed' });
    }

    // The database, and the key store opened with the master key, as the test's own view of the service's data.
    const db = new Client({ connectionString: (JSON.parse(readFileSync(join(dataDir, 'embedded-postgres.json'), 'utf8')) as { url: string }).url });
    await db.connect();
    const keyStore = await FileKeyStore.open({ dir: keyStoreDir(dataDir), masterKey });
    const lookupKey = await keyStore.getLookupKey();
    const subjectRows = async (m: typeof forgotten) =>
      (
        await db.query(
          `SELECT k.key_id, c.commitment, p.payload FROM subject_keys k JOIN sample_payloads p ON p.subject_key_id = k.key_id
             JOIN sample_commitments c ON c.id = p.sample_id WHERE k.dataset_id = $1 AND k.subject_hash = $2`,
          [datasetId, subjectHashOf(lookupKey, datasetId, { externalId: '', subjectId: m.subjectId })],
        )
      ).rows as { key_id: string; commitment: string; payload: Buffer }[];
    /** The subject's payloads opened with its key, as one buffer: what the scan would see if they were stored in clear. */
    const openedPayloads = async (rows: Awaited<ReturnType<typeof subjectRows>>) =>
      Buffer.concat(await Promise.all(rows.map(async (r) => openPayload(await keyStore.getKey(r.key_id), r.payload, payloadAssociatedData(datasetId, r.commitment)))));
    const forgottenNeedles = needlesOf(forgotten);
    const keptNeedles = needlesOf(kept);
    // In sealed payloads, the features are float64 and the identifiers UTF-8; no decimal text, no float32.
    const inPayloads = (needles: Needle[]) => namesOf(needles.filter((n) => !n.name.endsWith('as text') && !n.name.includes('float32')));

    // Before the forget: the subject's payloads open to its markers, and its wrapped key is in the key store.
    const before = await subjectRows(forgotten);
    expect(before).toHaveLength(3);
    expect(needleNames(scanBuffer('payloads', await openedPayloads(before), forgottenNeedles))).toEqual(inPayloads(forgottenNeedles));
    const keyId = before[0].key_id;
    const pagePath = join(keyStoreDir(dataDir), `${keyId.slice(0, 56)}${KEY_PAGE_SUFFIX}`);
    const slot = Number.parseInt(keyId.slice(56), 16);
    const wrappedKey = readFileSync(pagePath).subarray(slot * 61, slot * 61 + 61);
    const wrappedNeedle: Needle = { name: 'the wrapped data key of the forgotten subject', bytes: Buffer.from(wrappedKey) };
    expect((await scanTree(keyStoreDir(dataDir), [wrappedNeedle])).length).toBe(1);

    // Forget the subject; asking again while it is served returns the same request.
    const forget = await call('POST', '/v1/forget-requests', ml, { datasetId, subjectId: forgotten.subjectId, reason: 'GDPR art. 17' }, { 'idempotency-key': 'forget-1' });
    expect(forget.status).toBe(202);
    const again = await call('POST', '/v1/forget-requests', ml, { datasetId, subjectId: forgotten.subjectId, reason: 'GDPR art. 17' });
    expect(again).toMatchObject({ status: 202, body: { id: forget.body.id } });
    const done = await waitFor(async () => {
      const r = (await call('GET', `/v1/forget-requests/${forget.body.id}`, ml)).body;
      return r.state === 'completed' || r.state === 'failed' ? r : undefined;
    }, 'the forget request');
    expect(done.state).toBe('completed');
    expect([...done.samples].sort()).toEqual(before.map((r) => r.commitment).sort());
    expect(done.modelVersions).toHaveLength(2);
    // A completed request keeps commitments and counts, never the subject's identifiers.
    expect(JSON.stringify(done)).not.toContain(forgotten.subjectId);
    // Its key is gone: asking again is a 404 naming the subject.
    const gone = await call('POST', '/v1/forget-requests', ml, { datasetId, subjectId: forgotten.subjectId, reason: 'again' });
    expect(gone.status).toBe(404);
    expect(gone.body.message).toContain(`subject ${JSON.stringify(forgotten.subjectId)}`);
    expect(await subjectRows(forgotten)).toEqual([]);
    expect(await keyStore.hasKey(keyId)).toBe(false);
    // One key per subject: the two marked subjects, 3 filler subjects and 40 samples without one; the forgotten one's is destroyed.
    expect((await keyStore.stats()).keys).toBe(44);
    const counts = (await call('GET', `/v1/datasets/${datasetId}`, ml)).body;
    expect(counts).toMatchObject({ samples: { committed: 66, forgotten: 3 } });

    // Control: the kept subject's payloads still open with its key, and show its markers to the same scan.
    const keptRows = await subjectRows(kept);
    expect(keptRows).toHaveLength(3);
    expect(needleNames(scanBuffer('payloads', await openedPayloads(keptRows), keptNeedles))).toEqual(inPayloads(keptNeedles));

    // pg-boss's tables (jobs and their archive) hold ids only.
    const bossTables = (await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'pgboss' AND table_type = 'BASE TABLE'`)).rows.map(
      (r: { table_name: string }) => r.table_name,
    );
    expect(bossTables).toEqual(expect.arrayContaining(['job', 'archive']));
    let bossText = '';
    for (const table of bossTables) bossText += (await db.query(`SELECT t::text AS t FROM pgboss.${table} t`)).rows.map((r: { t: string }) => r.t).join('\n');
    expect(bossText).toContain(models[0].jobId); // control: the scan reads the jobs
    expect(describeHits(scanText('pg-boss', bossText, [...forgottenNeedles, ...keptNeedles]))).toEqual([]);

    // Control for the files: the kept subject's markers in plaintext, in a table of this very cluster (its
    // table file and its WAL), where the scan must find every form of them.
    await db.query(`CREATE TABLE erasure_scan_control (texts text[], feature_text text, feature double precision[], run bytea)`);
    await db.query(`INSERT INTO erasure_scan_control VALUES ($1, $2, $3, $4)`, [kept.texts, String(kept.feature), [kept.feature], float32Bytes(kept.run)]);
    await db.end();

    // Retirement (#11 items 1, 2): every version that learned the subject is retired, its file and the
    // checkpoints no live version needs deleted.
    const entries = (await call('GET', '/v1/ledger/entries?start=0&limit=1000', ml)).body as { event: string }[];
    const events = entries.map((e) => JSON.parse(e.event) as { type: string; modelId: string; modelVersion?: number; checkpoints?: string[] });
    if ((LEDGER_EVENT_TYPES as readonly string[]).includes('VERSION_RETIRED')) {
      // The embedded set-up keeps ONNX files and checkpoints in the file artifact store under DATA_DIR.
      const artifacts = new FileArtifactStore(dataDir);
      for (const { modelId } of models) {
        expect(events.filter((e) => e.type === 'VERSION_RETIRED' && e.modelId === modelId).map((e) => e.modelVersion)).toEqual([1]);
        const { versions } = (await call('GET', `/v1/models/${modelId}`, ml)).body as { versions: { version: number; onnxSha256: string }[] };
        const onnxFile = (version: number) => artifacts.pathOf({ kind: 'onnx', address: versions.find((v) => v.version === version)!.onnxSha256 });
        expect(existsSync(onnxFile(1))).toBe(false);
        expect(existsSync(onnxFile(2))).toBe(true);
      }
      const deleted = events.filter((e) => e.type === 'CHECKPOINTS_DELETED').flatMap((e) => e.checkpoints!);
      expect(deleted.length).toBeGreaterThan(0);
      for (const hash of deleted) expect(existsSync(artifacts.pathOf({ kind: 'checkpoint', address: hash }))).toBe(false);
    } else {
      console.warn('retirement (#11 items 1, 2) is not on this branch yet: retired versions and deleted checkpoints are not checked');
    }

    // A clean stop (Ctrl-C): PostgreSQL checkpoints and shuts down, everything is on disk.
    process.kill(-service.child.pid!, 'SIGINT');
    expect(await service.exited).toBe(0);
    const log = service.output();
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);

    // The scan: every file under DATA_DIR (the cluster's tables, indexes, WAL and statistics, model files,
    // checkpoints, keys), and the service's whole output.
    const files = await scanTree(dataDir, [...forgottenNeedles, wrappedNeedle, ...keptNeedles]);
    const logged = scanText('service log', log, [...forgottenNeedles, ...keptNeedles, { name: 'admin key', bytes: Buffer.from(admin) }]);
    const ofForgotten = new Set([...namesOf(forgottenNeedles), wrappedNeedle.name]);
    expect(describeHits([...files, ...logged].filter((h) => ofForgotten.has(h.needle)))).toEqual([]);

    // Controls: the kept subject's plaintext is found, every form of it, both in a table file and in the WAL;
    // the log scan finds what the service printed (the admin key it generated); nothing of the kept subject
    // is in the log or anywhere else than the control table.
    const keptHits = files.filter((h) => namesOf(keptNeedles).includes(h.needle));
    expect(needleNames(keptHits.filter((h) => h.file.startsWith(join('postgres', 'base'))))).toEqual(namesOf(keptNeedles));
    expect(needleNames(keptHits.filter((h) => h.file.startsWith(join('postgres', 'pg_wal'))))).toEqual(namesOf(keptNeedles));
    expect(keptHits.filter((h) => !h.file.startsWith(join('postgres', 'base')) && !h.file.startsWith(join('postgres', 'pg_wal')))).toEqual([]);
    expect(needleNames(logged)).toEqual(['admin key']);
  }, 600_000);
});
