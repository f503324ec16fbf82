import { createServer, request as httpRequest } from 'node:http';
import { AddressInfo, connect } from 'node:net';
import request from 'supertest';
import { answerClientErrorsAsJson } from '../../apps/api/src/common/client-errors';
import { TestApi, startTestApi } from '../support/test-api';

/**
 * Sends `parts` on one connection, each after `gapMs` (so that the server reads them apart), and returns
 * what came back until the server closed it: the status, the head, and every byte after the head.
 */
async function exchange(port: number, parts: string[], gapMs = 150): Promise<{ status: number; head: string; after: string }> {
  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (!socket.destroyed) socket.write(part);
      }
    });
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
  const text = received.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, after: end === -1 ? '' : text.slice(end + 4) };
}

/** A request line and headers whose size passes Node's 16 KiB limit (a bearer token of 17,000 characters). */
const oversized = (method: string, path: string) => [`${method} ${path} HTTP/1.1\r\nHost: x\r\n`, `Authorization: Bearer ${'k'.repeat(17_000)}\r\n\r\n`];

/** Requests that lie about or overflow what they carry: each a 4xx naming the problem, and nothing changes. */
describe('malformed requests', () => {
  let api: TestApi;
  let ml: string;
  let datasetId: string;

  beforeAll(async () => {
    api = await startTestApi('malformed_api');
    ml = api.ml;
    datasetId = (await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).send({ name: 'iris', features: 4, classes: 3 }).expect(201)).body.id;
  });

  afterAll(() => api.close());

  const http = () => request(api.server);
  const treeSize = async (): Promise<number> => (await http().get('/v1/ledger/checkpoint')).body.treeSize;

  // class-validator's IsOptional lets null through; `subjectId: null` was a 500 (fuzz seed 1400000002, case 7702).
  it.each([
    ['/v1/forget-requests', 'subjectId', () => ({ datasetId, reason: 'null' })],
    ['/v1/forget-requests', 'externalIds', () => ({ datasetId, reason: 'null' })],
    ['/v1/forget-requests', 'features', () => ({ datasetId, reason: 'null' })],
    ['/v1/forget-requests', 'graceDays', () => ({ datasetId, reason: 'null', externalIds: ['a'], mode: 'suspend' })],
    ['/v1/forget-requests', 'approach', () => ({ datasetId, reason: 'null', externalIds: ['a'] })],
    ['/v1/datasets', 'retentionDays', () => ({ name: 'null', features: 4, classes: 3 })],
    ['/v1/datasets', 'protectedFeature', () => ({ name: 'null', features: 4, classes: 3 })],
    ['/v1/models', 'shards', () => ({ datasetId, method: 'sisa', slices: 2, architecture: { type: 'logreg' }, epochs: 1 })],
    ['/v1/models', 'guard', () => ({ datasetId, method: 'full', architecture: { type: 'logreg' }, epochs: 1 })],
  ])('POST %s with %s: null is a 400 naming the field, and nothing changes', async (path, field, body) => {
    const before = await treeSize();
    const res = await http().post(path).auth(ml, { type: 'bearer' }).send({ ...body(), [field]: null });
    expect({ status: res.status, mentions: String(res.body.message).includes(field) }).toEqual({ status: 400, mentions: true });
    expect(await treeSize()).toBe(before);
  });

  it.each(['/v1/forget-requests', '/v1/models'])('GET %s?datasetId= of 36 dashes (or not hex) is a 400 naming datasetId', async (path) => {
    for (const datasetId of ['-'.repeat(36), 'g'.repeat(8) + '-0000-4000-8000-000000000000', '0'.repeat(32) + '----']) {
      const res = await http().get(path).query({ datasetId }).auth(ml, { type: 'bearer' });
      expect({ datasetId, status: res.status }).toEqual({ datasetId, status: 400 });
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: 'query parameter "datasetId" must be a UUID' });
    }
    await http().get(path).query({ datasetId: '00000000-0000-4000-8000-000000000000' }).auth(ml, { type: 'bearer' }).expect(200);
  });

  it('answers an Authorization header of 1 MB with a JSON 431 naming the headers', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: api.port, path: '/v1/datasets', headers: { authorization: `Bearer ${'a'.repeat(1024 * 1024)}` } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).toBe(431);
    expect(JSON.parse(answer.body)).toEqual({
      statusCode: 431,
      error: 'Request Header Fields Too Large',
      message: expect.stringMatching(/^request headers are larger than \d+ bytes/),
    });
    // Below Node's header limit, a key longer than any key is a 401 naming the header.
    const long = await http().get('/v1/datasets').set('Authorization', `Bearer ${'a'.repeat(8000)}`).expect(401);
    expect(long.body.message).toContain('Authorization');
  });

  const samples = [
    { externalId: 'a', features: [1, 2, 3, 4], label: 0 },
    { externalId: 'b', features: [4, 3, 2, 1], label: 1 },
  ];

  const upload = (type: string, body: string) => http().post(`/v1/datasets/${datasetId}/samples`).auth(ml, { type: 'bearer' }).set('Content-Type', type).send(body);

  it('refuses a JSON array labelled NDJSON with a 400 saying so, and commits nothing', async () => {
    const before = await treeSize();
    const res = await upload('application/x-ndjson', JSON.stringify(samples)).expect(400);
    expect(res.body.message).toMatch(/^body is a JSON array, not NDJSON/);
    expect(res.body.message).toContain('application/json');
    expect(await treeSize()).toBe(before);
  });

  it('refuses NDJSON labelled JSON with a 400 pointing at NDJSON, and commits nothing', async () => {
    const before = await treeSize();
    const res = await upload('application/json', samples.map((s) => JSON.stringify(s)).join('\n')).expect(400);
    expect(res.body.message).toMatch(/^body is not valid JSON/);
    expect(res.body.message).toContain('application/x-ndjson');
    expect(await treeSize()).toBe(before);
  });

  it.each([
    ['application/x-www-form-urlencoded', 'name=iris&features=4&classes=3'],
    ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\niris\r\n--x--\r\n'],
    ['text/plain', JSON.stringify({ name: 'iris', features: 4, classes: 3 })],
    ['application/x-ndjson', JSON.stringify({ name: 'iris', features: 4, classes: 3 })],
  ])('POST /v1/datasets with a %s body is a 415 naming Content-Type, and nothing is logged', async (type, body) => {
    const before = await treeSize();
    const res = await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).set('Content-Type', type).send(body);
    expect(res.status).toBe(415);
    expect(res.body).toEqual({ statusCode: 415, error: 'Unsupported Media Type', message: expect.stringContaining('Content-Type') });
    expect(await treeSize()).toBe(before);
  });

  it('POST /v1/datasets/:id/samples with a form body is a 415 naming Content-Type', async () => {
    const res = await upload('application/x-www-form-urlencoded', 'externalId=a&label=0').expect(415);
    expect(res.body.message).toContain('Content-Type');
  });

  // A HEAD answer has the headers a GET would get and no body (RFC 9110 9.3.2): bytes after it are read by
  // the client as the start of a next response (Node's client: "Parse Error: Data after Connection: close").
  describe('errors Node finds before any route (431, 400, 413) answer HEAD without a body', () => {
    it.each([
      ['in one read', (parts: string[]) => [parts.join('')]],
      ['with the request line in an earlier read than the headers that overflow', (parts: string[]) => parts],
    ])('431 for headers beyond the limit %s', async (_how, split) => {
      const head = await exchange(api.port, split(oversized('HEAD', '/v1/models?a=1')));
      expect(head.status).toBe(431);
      expect(head.head).toContain('Content-Type: application/json');
      expect(head.after).toBe('');
      // The control: the same request as GET gets the JSON naming the problem, so the exchange reads a body.
      const get = await exchange(api.port, split(oversized('GET', '/v1/models?a=1')));
      expect(get.status).toBe(431);
      expect(JSON.parse(get.after)).toMatchObject({ statusCode: 431, message: expect.stringMatching(/^request headers are larger than/) });
    });

    it('431 to a HEAD from Node\'s own client: no parse error', async () => {
      const answer = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: api.port, method: 'HEAD', path: '/v1/models', headers: { authorization: `Bearer ${'k'.repeat(17_000)}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      });
      expect(answer).toBe(431);
    });

    it('400 for a header line that is not HTTP', async () => {
      const bad = (method: string) => [`${method} /v1/health HTTP/1.1\r\nHost: x\r\n`, 'Not A Header\r\n\r\n'];
      const head = await exchange(api.port, bad('HEAD'));
      expect({ status: head.status, after: head.after }).toEqual({ status: 400, after: '' });
      const get = await exchange(api.port, bad('GET'));
      expect(get.status).toBe(400);
      expect(JSON.parse(get.after)).toMatchObject({ statusCode: 400, message: 'the request is not valid HTTP/1.1' });
    });

    it('413 for chunk extensions beyond the limit, after a keep-alive request on the same connection', async () => {
      // A first request answered on the connection, then a HEAD whose chunked body carries 20 kB of chunk extension.
      const big = (method: string) => [
        'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n',
        `${method} /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(20_000)}\r\na\r\n0\r\n\r\n`,
      ];
      const afterFirst = (answer: { after: string }) => answer.after.slice(answer.after.indexOf('HTTP/1.1', 1));
      const head = await exchange(api.port, big('HEAD'), 500);
      expect(head.status).toBe(200);
      const second = afterFirst(head);
      expect(second).toMatch(/^HTTP\/1\.1 413 /);
      expect(second.slice(second.indexOf('\r\n\r\n') + 4)).toBe('');
      const get = afterFirst(await exchange(api.port, big('GET'), 500));
      expect(get).toMatch(/^HTTP\/1\.1 413 /);
      expect(JSON.parse(get.slice(get.indexOf('\r\n\r\n') + 4))).toMatchObject({ statusCode: 413 });
    });
  });
});

describe('408 from Node (headers not in time) answers HEAD without a body', () => {
  it.each([
    ['HEAD', ''],
    ['GET', '{"statusCode":408'],
  ])('%s', async (method, bodyStart) => {
    // The service's handler on a server that checks timeouts every 100 ms instead of 30 s (Node's default).
    const server = createServer({ connectionsCheckingInterval: 100 }, (_req, res) => res.end());
    server.headersTimeout = 300;
    server.requestTimeout = 1000;
    answerClientErrorsAsJson(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const answer = await exchange((server.address() as AddressInfo).port, [`${method} / HTTP/1.1\r\nHost: x\r\n`]);
      expect(answer.status).toBe(408);
      expect(answer.after.slice(0, bodyStart.length || undefined)).toBe(bodyStart);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
