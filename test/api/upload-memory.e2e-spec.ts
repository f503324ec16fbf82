import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_FEATURES } from '../../apps/api/src/datasets/dataset.dto';
import { TestDatabase, createTestDatabase } from '../support/database';
import { ServiceProcess, startServiceOnFreePort } from '../support/service-process';

const SAMPLES = 4000;

/** The body of an NDJSON upload of `count` samples of `width` zero features, made as it is sent. */
async function* ndjsonOfZeros(count: number, width: number): AsyncGenerator<Buffer> {
  const features = `[${new Array(width).fill('0').join(',')}]`;
  for (let i = 0; i < count; i += 50) {
    let text = '';
    for (let j = i; j < Math.min(count, i + 50); j++) text += `{"externalId":"wide-${j}","features":${features},"label":${j % 2}}\n`;
    yield Buffer.from(text);
  }
}

/** POSTs a streamed body; resolves with the answer's status and text (or the error that cut it). */
function postStream(url: string, key: string, body: AsyncIterable<Buffer>): Promise<{ status: number; text: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    void (async () => {
      for await (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      req.end();
    })().catch((e) => resolve({ error: (e as Error).message }));
  });
}

/**
 * A service with a 512 MB heap takes an NDJSON upload of samples as wide as a dataset may be, thousands of
 * them: the upload is committed in chunks bounded by bytes, not only by count, so memory stays bounded.
 */
describe('a large NDJSON upload to a service with --max-old-space-size=512', () => {
  let db: TestDatabase;
  let dataDir: string;
  let service: ServiceProcess;

  beforeAll(async () => {
    db = await createTestDatabase('upload_memory');
    dataDir = mkdtempSync(join(tmpdir(), 'lethe-upload-memory-'));
  });

  afterAll(async () => {
    if (service?.child.exitCode === null) {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`accepts ${SAMPLES} samples of ${MAX_FEATURES} features without running out of memory`, async () => {
    const adminKey = randomBytes(24).toString('hex');
    const started = await startServiceOnFreePort(
      { DATABASE_URL: db.url, DATA_DIR: dataDir, ANCHORING: 'off', SERVICE_WORKER: 'off', LETHE_ADMIN_KEY: adminKey, LOG_LEVEL: 'warn' },
      { nodeArgs: ['--max-old-space-size=512'] },
    );
    service = started;
    const { api } = started;
    const post = async (path: string, key: string, body: unknown) =>
      (await fetch(`${api}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<any>;
    const ml = (await post('/v1/keys', adminKey, { role: 'ml', name: 'wide' })).key;
    const dataset = await post('/v1/datasets', ml, { name: 'wide', features: MAX_FEATURES, classes: 2 });
    expect(dataset.id).toEqual(expect.any(String));

    const answer = await postStream(`${api}/v1/datasets/${dataset.id}/samples`, ml, ndjsonOfZeros(SAMPLES, MAX_FEATURES));
    // A cut answer: give a dying service a moment to exit, and show why.
    if ('error' in answer) await Promise.race([service.exited, new Promise((r) => setTimeout(r, 5000))]);
    const exitCode = service.child.exitCode ?? service.child.signalCode;
    expect({ exitCode, answer: 'error' in answer ? answer.error : answer.status, output: exitCode === null ? '' : service.output().slice(-600) }).toEqual({
      exitCode: null,
      answer: 200,
      output: '',
    });
    const summary = JSON.parse((answer as { text: string }).text);
    expect(summary).toMatchObject({ accepted: SAMPLES, rejectedCount: 0 });
    // Several chunks: bounded by bytes (16 MiB), not only by count (5,000).
    expect(summary.ledgerIndices.length).toBeGreaterThan(1);
    const peakRss = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${service.child.pid}/status`, 'utf8'))?.[1];
    process.stdout.write(`upload of ${SAMPLES} x ${MAX_FEATURES} features: ${summary.ledgerIndices.length} chunks, peak RSS ${Math.round(Number(peakRss) / 1024)} MB\n`);
    expect((await fetch(`${api}/v1/health`)).status).toBe(200);
  }, 600_000);
});
