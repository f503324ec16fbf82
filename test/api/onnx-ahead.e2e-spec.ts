/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import { createHash } from 'node:crypto';
import type { ArtifactRef } from '@lethe/artifacts';
import type { LedgerEvent } from '@lethe/events';
import { Ledger } from '@lethe/ledger';
import { loadIris } from '@lethe/unlearning';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { createAndTrain, forgetAndWait, irisSisaBody, uploadDataset } from '../support/api-data';

/**
 * A published version's ONNX file is written as soon as the engine builds it (ModelStore.putOnnxAhead, from the
 * engine's onExported), beside its checkpoint writes and its ledger append, and saving the version waits for that
 * write: the file is written once, and stored before the version's row (a version is served only once its file
 * is durable). A write ahead that fails is done again by the save.
 */
describe("a published version's ONNX file, written ahead of its save", () => {
  let h: JobHarness;
  let datasetId: string;
  let modelId: string;
  const iris = loadIris();
  /** What happened to ONNX files and MODEL_PUBLISHED entries, in order. */
  let order: string[] = [];
  /** ONNX puts to fail (their first attempt), by how many are left to fail. */
  let failNextOnnxPuts = 0;

  beforeAll(async () => {
    h = await startJobHarness('onnx_ahead');
    ({ datasetId } = await uploadDataset(h, iris));
    modelId = await createAndTrain(h, irisSisaBody(datasetId, 'onnx-ahead'));
    const put = h.artifacts.put.bind(h.artifacts);
    jest.spyOn(h.artifacts, 'put').mockImplementation(async (ref: ArtifactRef, bytes: Uint8Array) => {
      if (ref.kind !== 'onnx') return put(ref, bytes);
      order.push(`put ${ref.address}`);
      if (failNextOnnxPuts > 0) {
        failNextOnnxPuts--;
        order.push(`failed ${ref.address}`);
        throw new Error('the artifact store failed this write');
      }
      await put(ref, bytes);
      const [{ rows }] = await h.dataSource.query(`SELECT count(*)::int AS rows FROM model_versions WHERE onnx_sha256 = $1`, [ref.address]);
      order.push(`stored ${ref.address} with ${rows} version row(s)`);
    });
    const append = Ledger.prototype.append;
    jest.spyOn(Ledger.prototype, 'append').mockImplementation(function (this: Ledger, events: LedgerEvent[]) {
      for (const event of events) if (event.type === 'MODEL_PUBLISHED') order.push(`logged ${event.onnxSha256}`);
      return append.call(this, events);
    });
  }, 180_000);

  afterAll(async () => {
    jest.restoreAllMocks();
    await h?.close();
  });

  beforeEach(() => {
    order = [];
    failNextOnnxPuts = 0;
  });

  /** The model's latest version: its number and file address, and the file's bytes as served. */
  async function latest(): Promise<{ version: number; sha: string; served: string }> {
    const [{ version, sha }] = await h.dataSource.query(
      `SELECT version, onnx_sha256 AS sha FROM model_versions WHERE model_id = $1 ORDER BY version DESC LIMIT 1`,
      [modelId],
    );
    const file = await request(h.app.getHttpServer())
      .get(`/v1/models/${modelId}/versions/${version}/onnx`)
      .auth(h.ml, { type: 'bearer' })
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      })
      .expect(200);
    return { version, sha, served: createHash('sha256').update(file.body as Buffer).digest('hex') };
  }

  it('is put once, starting before its MODEL_PUBLISHED is logged, and stored before its version row is written', async () => {
    await forgetAndWait(h, datasetId, iris[5].externalId);
    const { version, sha, served } = await latest();
    expect(version).toBe(2);
    expect(served).toBe(sha);
    const of = order.filter((e) => e.endsWith(sha) || e.includes(`${sha} `));
    expect(of.filter((e) => e.startsWith('put '))).toHaveLength(1); // the save waited for the write ahead
    expect(of.indexOf(`put ${sha}`)).toBeLessThan(of.indexOf(`logged ${sha}`));
    expect(of).toContain(`stored ${sha} with 0 version row(s)`);
  }, 180_000);

  it('is written again by the save when the write ahead failed', async () => {
    failNextOnnxPuts = 1;
    await forgetAndWait(h, datasetId, iris[60].externalId);
    const { version, sha, served } = await latest();
    expect(version).toBe(3);
    expect(served).toBe(sha);
    const of = order.filter((e) => e.endsWith(sha) || e.includes(`${sha} `));
    expect(of.filter((e) => e.startsWith('put '))).toHaveLength(2);
    expect(of[1]).toBe(`failed ${sha}`);
    expect(of).toContain(`stored ${sha} with 0 version row(s)`);
  }, 180_000);
});
