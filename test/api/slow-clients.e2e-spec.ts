import { ClientRequest, IncomingMessage, request as httpRequest } from 'node:http';
import { Socket, connect } from 'node:net';
import { TestApi, startTestApi } from '../support/test-api';

const MB = 1024 * 1024;

/** A request whose body the test writes by hand; `response` settles with the first answer (or null if none came in `waitMs`). */
function openUpload(
  port: number,
  path: string,
  headers: Record<string, string | number>,
): { req: ClientRequest; localPort: Promise<number>; response: (waitMs: number) => Promise<IncomingMessage | null>; closed: (waitMs: number) => Promise<boolean> } {
  const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers });
  const localPort = new Promise<number>((resolve) => req.on('socket', (socket) => socket.on('connect', () => resolve(socket.localPort!))));
  req.on('error', () => undefined); // the server may close the connection while the test still writes
  const answered = new Promise<IncomingMessage>((resolve) => req.on('response', resolve));
  const closed = new Promise<boolean>((resolve) => req.on('close', () => resolve(true)));
  const within = <T>(p: Promise<T>, waitMs: number, otherwise: T): Promise<T> => Promise.race([p, new Promise<T>((r) => setTimeout(() => r(otherwise), waitMs))]);
  return {
    req,
    localPort,
    response: (waitMs) => within(answered, waitMs, null),
    closed: (waitMs) => within(closed, waitMs, false),
  };
}

const bodyOf = (res: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    let text = '';
    res.on('data', (d) => (text += d));
    res.on('end', () => resolve(text));
    res.on('error', () => resolve(text));
    res.on('aborted', () => resolve(text));
  });

/** Writes up to `total` bytes in 1 MB pieces until done, the connection is gone, or the server stops reading for 2 s. */
async function writeUntilClosed(req: ClientRequest, total: number): Promise<void> {
  const piece = Buffer.alloc(MB, 0x20);
  for (let sent = 0; sent < total && !req.destroyed && !req.socket?.destroyed; sent += piece.length) {
    if (req.write(piece)) continue;
    const drained = await Promise.race([
      new Promise<boolean>((r) => req.once('drain', () => r(true))),
      new Promise<boolean>((r) => req.once('close', () => r(false))),
      new Promise<boolean>((r) => setTimeout(() => r(false), 2000)),
    ]);
    if (!drained) return;
  }
}

describe('slow and unwelcome clients', () => {
  let api: TestApi;
  let datasetId: string;
  /** The server's side of each connection (its bytesRead tells what it read of a body). */
  const serverSockets: { remotePort: number; socket: Socket }[] = [];

  beforeAll(async () => {
    api = await startTestApi('slow_clients', { BODY_TIMEOUT_SECONDS: '1' });
    api.server.on('connection', (socket: Socket) => serverSockets.push({ remotePort: socket.remotePort!, socket }));
    const created = await fetch(`${api.url}/v1/datasets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.ml}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'iris', features: 4, classes: 3 }),
    });
    datasetId = ((await created.json()) as { id: string }).id;
  });

  afterAll(() => api.close());

  const serverSocketOf = async (upload: { localPort: Promise<number> }): Promise<Socket> => {
    const port = await upload.localPort;
    return serverSockets.find((s) => s.remotePort === port)!.socket;
  };
  const treeSize = async (): Promise<number> => ((await (await fetch(`${api.url}/v1/ledger/checkpoint`)).json()) as { treeSize: number }).treeSize;

  it.each([
    ['a JSON body', () => '/v1/datasets', 'application/json'],
    ['an NDJSON upload', () => `/v1/datasets/${datasetId}/samples`, 'application/x-ndjson'],
  ])('refuses a bad key on %s of 100 MB with a 401 before reading the body, and closes the connection', async (_what, path, type) => {
    const upload = openUpload(api.port, path(), { 'content-type': type, 'content-length': 100 * MB, authorization: 'Bearer lethe_not-a-key' });
    upload.req.write(Buffer.alloc(64 * 1024, 0x20));
    const res = await upload.response(10_000);
    expect(res?.statusCode).toBe(401);
    expect(JSON.parse(await bodyOf(res!))).toMatchObject({ statusCode: 401, message: 'unknown or revoked API key' });
    const server = await serverSocketOf(upload);
    // The client goes on sending; the server does not read on: it closed the connection.
    await writeUntilClosed(upload.req, 100 * MB);
    const closed = await upload.closed(3000); // at once, not after the keep-alive timeout (5 s)
    upload.req.destroy();
    expect({ closed, bytesRead: server.bytesRead }).toEqual({ closed: true, bytesRead: expect.any(Number) });
    expect(server.bytesRead).toBeLessThan(4 * MB);
  });

  /**
   * A raw connection that sends `head` (a request whose body it has not sent yet), reads the answer until the
   * server's half-close, and can then go on sending (it keeps its own side open: allowHalfOpen).
   */
  async function refusedBeforeItsBody(
    head: string,
  ): Promise<{ client: Socket; server: Socket; answer: string; errors: string[]; closed: Promise<void>; serverClosed: Promise<void> }> {
    const client = connect({ port: api.port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise((resolve) => client.once('connect', resolve));
    const errors: string[] = [];
    let answer = '';
    client.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    client.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.write(head);
    await ended; // the whole answer, then the server's FIN
    const server = serverSockets.find((s) => s.remotePort === client.localPort)!.socket;
    // Node's server closes a connection it refused once its answer is written ('finish'): wait until that
    // has happened here too, so that what the client sends next finds the server's socket as it then is.
    if (!server.writableFinished) await new Promise((resolve) => server.once('finish', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const serverClosed = server.destroyed ? Promise.resolve() : new Promise<void>((resolve) => server.once('close', () => resolve()));
    return { client, server, answer, errors, closed, serverClosed };
  }

  /** Writes `pieces` one after another, each once the last was handed to the kernel and the loop turned; stops at the first error. */
  async function writePieces(client: Socket, pieces: Buffer[]): Promise<void> {
    for (const piece of pieces) {
      const failed = await new Promise<boolean>((resolve) => client.write(piece, (error) => setImmediate(() => resolve(!!error))));
      if (failed || client.destroyed) return;
    }
  }

  it('closes a connection it refused before the body in stages: the client can send the rest and read the answer, not a reset (RFC 9112 §9.6)', async () => {
    // The fuzz's failing case: a malformed Authorization on an octet-stream body, refused before the body is read.
    const { client, server, answer, errors, closed } = await refusedBeforeItsBody(
      `POST /v1/forget-requests/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/extend HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: Bearer ${api.ml} extra\r\nContent-Type: application/octet-stream\r\nContent-Length: ${64 * 1024}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
    const readBefore = server.bytesRead;
    await writePieces(client, Array.from({ length: 4 }, () => Buffer.alloc(16 * 1024, 0x20)));
    client.end();
    await closed;
    // Without the staged close the server's socket is gone by now: the kernel resets the connection and a write fails (EPIPE).
    expect(errors).toEqual([]);
    expect(server.bytesRead - readBefore).toBe(64 * 1024); // read and dropped
    expect(server.destroyed).toBe(true); // closed once the client closed its side
  });

  it('closes such a connection after a while (LINGER_MS) when the client neither sends nor closes', async () => {
    const { client, server, serverClosed } = await refusedBeforeItsBody(
      `POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer lethe_not-a-key\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
    );
    expect(server.destroyed).toBe(false);
    await serverClosed; // the client never closes its side: a test timeout if the server never did
    client.destroy();
  });

  it('does not serve a request sent on such a connection after the refused one', async () => {
    const names = async (): Promise<string[]> =>
      ((await (await fetch(`${api.url}/v1/datasets`, { headers: { authorization: `Bearer ${api.ml}` } })).json()) as { name: string }[]).map((d) => d.name);
    expect(await names()).not.toContain('sent-after-a-refusal');
    const { client, answer, serverClosed } = await refusedBeforeItsBody(
      `POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer lethe_not-a-key\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    const body = JSON.stringify({ name: 'sent-after-a-refusal', features: 4, classes: 3 });
    const next =
      `POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${api.ml}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    await writePieces(client, [Buffer.from('{}'), Buffer.from(next)]);
    await serverClosed; // at the next request (or after LINGER_MS): the client does not close
    client.destroy();
    expect(await names()).not.toContain('sent-after-a-refusal');
  });

  it('answers 408 to a JSON body that stops arriving, after BODY_TIMEOUT_SECONDS', async () => {
    const before = await treeSize();
    const upload = openUpload(api.port, '/v1/datasets', { 'content-type': 'application/json', 'content-length': 1000, authorization: `Bearer ${api.ml}` });
    upload.req.write('{"name": "slow", ');
    const started = Date.now();
    // Within the headers timeout (20 s), the next timer that could end the request; the message names the
    // body timeout. A tighter wall-clock bound could fail on a loaded machine.
    const res = await upload.response(19_000);
    if (!res) upload.req.destroy();
    expect(res?.statusCode).toBe(408);
    expect(Date.now() - started).toBeLessThan(19_000);
    expect(JSON.parse(await bodyOf(res!))).toEqual({ statusCode: 408, error: 'Request Timeout', message: 'the body did not arrive within 1 s' });
    expect(await upload.closed(5000)).toBe(true);
    expect(await treeSize()).toBe(before);
  });

  it('cuts an NDJSON upload that goes silent for BODY_TIMEOUT_SECONDS, committing nothing of its unfinished chunk', async () => {
    const before = await treeSize();
    const upload = openUpload(api.port, `/v1/datasets/${datasetId}/samples`, {
      'content-type': 'application/x-ndjson',
      'transfer-encoding': 'chunked',
      authorization: `Bearer ${api.ml}`,
    });
    upload.req.write(`${JSON.stringify({ externalId: 'quiet-1', features: [1, 2, 3, 4], label: 0 })}\n`);
    const started = Date.now();
    // Within 19 s: no other timer (headers 20 s, a whole request an hour) could cut it by then.
    const closed = await upload.closed(19_000);
    upload.req.destroy();
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(19_000);
    expect(await treeSize()).toBe(before);
  });

  it('lets headers take at most HEADERS_TIMEOUT_SECONDS and an upload at most UPLOAD_TIMEOUT_SECONDS', () => {
    expect(api.server.headersTimeout).toBe(20_000);
    expect(api.server.requestTimeout).toBe(3_600_000);
  });
});
