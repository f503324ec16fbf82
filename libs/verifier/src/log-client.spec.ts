import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VerifierError } from './errors';
import { LogClient } from './log-client';

/** A fetch that answers every request with `body` and `status`. */
function answering(body: string, status = 200): typeof fetch {
  return (async () => new Response(body, { status, headers: { 'content-type': 'application/json' } })) as typeof fetch;
}

async function expectServerError(promise: Promise<unknown>, text: RegExp): Promise<VerifierError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(VerifierError);
  expect((error as VerifierError).code).toBe('SERVER_ERROR');
  expect((error as VerifierError).message).toMatch(text);
  return error as VerifierError;
}

const ROOT = 'ab'.repeat(32);

describe('LogClient', () => {
  it('parses a checkpoint and pages of entries', async () => {
    const client = new LogClient('http://service.test/', { fetch: answering(JSON.stringify({ treeSize: 3, rootHash: ROOT })) });
    await expect(client.getCheckpoint()).resolves.toEqual({ treeSize: 3, rootHash: ROOT });
    const entries = new LogClient('http://service.test', {
      fetch: answering(JSON.stringify([{ index: 0, leafHash: ROOT, event: '{}' }])),
    });
    await expect(entries.getEntries(0, 10)).resolves.toEqual([{ index: 0, leafHash: ROOT, event: '{}' }]);
  });

  it('keeps a base path of the API URL', async () => {
    const seen: string[] = [];
    const fetchImpl = (async (url: URL) => {
      seen.push(String(url));
      return new Response(JSON.stringify({ treeSize: 0, rootHash: ROOT }));
    }) as unknown as typeof fetch;
    await new LogClient('http://service.test/lethe', { fetch: fetchImpl }).getCheckpoint();
    expect(seen).toEqual(['http://service.test/lethe/v1/ledger/checkpoint']);
  });

  it.each([
    ['not JSON', '<html>oops</html>', /not JSON: "<html>oops<\/html>"/],
    ['a string tree size', JSON.stringify({ treeSize: '3', rootHash: ROOT }), /treeSize is "3", want an integer >= 0/],
    ['a negative tree size', JSON.stringify({ treeSize: -1, rootHash: ROOT }), /treeSize is -1/],
    ['a fractional tree size', JSON.stringify({ treeSize: 1.5, rootHash: ROOT }), /treeSize is 1.5/],
    ['a short root', JSON.stringify({ treeSize: 3, rootHash: 'abcd' }), /rootHash is "abcd", want 32 bytes of lowercase hex/],
    ['an uppercase root', JSON.stringify({ treeSize: 3, rootHash: ROOT.toUpperCase() }), /rootHash/],
    ['an array', '[]', /the answer is an array, want a JSON object/],
  ])('refuses a checkpoint with %s', async (_, body, text) => {
    await expectServerError(new LogClient('http://service.test', { fetch: answering(body) }).getCheckpoint(), text);
  });

  it('refuses entries with a malformed field, naming it', async () => {
    const body = JSON.stringify([
      { index: 0, leafHash: ROOT, event: '{}' },
      { index: 1, leafHash: ROOT, event: 7 },
    ]);
    await expectServerError(new LogClient('http://service.test', { fetch: answering(body) }).getEntries(0, 2), /\[1\]\.event is 7, want a string/);
  });

  it('refuses a proof hash that is not 32 bytes, and a proof of other sizes than asked', async () => {
    const bad = JSON.stringify({ from: 2, to: 5, fromRoot: ROOT, toRoot: ROOT, proof: [ROOT, 'ff'] });
    await expectServerError(new LogClient('http://s.test', { fetch: answering(bad) }).getConsistencyProof(2, 5), /proof\[1\] is "ff"/);
    const other = JSON.stringify({ from: 1, to: 5, fromRoot: ROOT, toRoot: ROOT, proof: [] });
    await expectServerError(new LogClient('http://s.test', { fetch: answering(other) }).getConsistencyProof(2, 5), /answered a proof from 1 to 5/);
  });

  it('reports an error status with the service message', async () => {
    const body = JSON.stringify({ statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
    const error = await expectServerError(
      new LogClient('http://s.test', { fetch: answering(body, 500) }).getCheckpoint(),
      /answered HTTP 500: internal error/,
    );
    expect(error.status).toBe(500);
  });

  it('answers null for /v1/anchors/latest when the service has no anchor (404)', async () => {
    await expect(new LogClient('http://s.test', { fetch: answering('{"statusCode":404}', 404) }).getLatestAnchor()).resolves.toBeNull();
  });

  describe('against a real socket', () => {
    let server: Server;
    let url: string;
    beforeAll(async () => {
      // Answers the headers, then never finishes the body.
      server = createServer((_, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"treeSize":');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it('times out a service that stops answering mid-body', async () => {
      await expectServerError(new LogClient(url, { timeoutMs: 200 }).getCheckpoint(), /did not complete within 200 ms/);
    });

    it('says when nothing listens', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      await expectServerError(new LogClient(`http://127.0.0.1:${port}`).getCheckpoint(), /cannot reach the service \(ECONNREFUSED\)/);
    });
  });

  it.each([['nope'], ['ftp://service.test'], ['']])('refuses the API URL %j', (url) => {
    expect(() => new LogClient(url)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
