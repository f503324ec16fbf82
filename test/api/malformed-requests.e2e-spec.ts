import { request as httpRequest } from 'node:http';
import request from 'supertest';
import { TestApi, startTestApi } from '../support/test-api';

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
});
