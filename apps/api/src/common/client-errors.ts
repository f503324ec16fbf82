import { maxHeaderSize, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { statusName } from './domain-exception.filter';

/**
 * What Node refuses by itself before any route sees the request (headers beyond its limit, a request that
 * is not HTTP, a request that took too long) is answered as the same JSON error as everything else, naming
 * the problem, instead of Node's bare status line; the connection is then closed, as Node does. The answer
 * to a HEAD request carries the same status and headers and no body (RFC 9110 §9.3.2): a body there would
 * be read by the client as bytes after the response.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('connection', (socket: Socket) => watchRequestHeads(socket));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const head = heads.get(req.socket);
    if (!head) return;
    head.method = req.method;
    head.awaiting = false;
    head.start = '';
    // The client sends its next request once it has this answer (a pipelining client earlier: then the
    // method recorded may be this request's, and a HEAD after a GET could get the GET's error answer).
    res.once('finish', () => {
      head.awaiting = true;
      head.start = '';
    });
  });
  server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    // As Node itself: answer only when no answer to this connection has started.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const [statusCode, message] = describeClientError(error.code, maxHeaderSize);
      const body = JSON.stringify({ statusCode, error: statusName(statusCode), message });
      const method = heads.get(socket)?.method ?? methodAtStart(error.rawPacket);
      socket.write(
        `HTTP/1.1 ${statusCode} ${statusName(statusCode)}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${method === 'HEAD' ? '' : body}`,
      );
    }
    socket.destroy(error);
  });
}

/** Per connection: the method of the request being read (once its request line was seen), and whether the next bytes begin a new request. */
interface RequestHead {
  method?: string;
  awaiting: boolean;
  /** The first bytes of a request read so far, while they hold no whole method yet (a client may send a few bytes at a time). */
  start: string;
}

const heads = new WeakMap<Duplex, RequestHead>();

/**
 * Records the method of each request as its first bytes arrive. Node hands the bytes of a connection to its
 * HTTP parser natively and tells JavaScript only after each read (the parser's kOnExecute callback, with the
 * bytes read in getCurrentBuffer()), and names the method only once the headers are complete; a request
 * whose headers overflow Node's limit, or are not HTTP, or arrive too slowly, never gets that far, and the
 * read that overflowed may not hold the request line. So the request line is read here, from the first read
 * of each request. Without that callback (another Node), the method is read from the bytes that failed.
 */
function watchRequestHeads(socket: Socket): void {
  const parser = (socket as Socket & { parser?: Record<number, unknown> & { constructor: { kOnExecute?: number }; getCurrentBuffer?: () => Buffer } }).parser;
  const kOnExecute = parser?.constructor.kOnExecute;
  if (!parser || kOnExecute === undefined || typeof parser[kOnExecute] !== 'function' || typeof parser.getCurrentBuffer !== 'function') return;
  const head: RequestHead = { awaiting: true, start: '' };
  heads.set(socket, head);
  const onExecute = parser[kOnExecute] as (...args: unknown[]) => unknown;
  parser[kOnExecute] = function (this: unknown, ...args: unknown[]) {
    // A 'request' event during this read already recorded its method (and awaiting is false then).
    if (head.awaiting) {
      head.start += parser.getCurrentBuffer!().subarray(0, 64).toString('latin1');
      const method = methodAtStart(Buffer.from(head.start, 'latin1'));
      if (method !== undefined || head.start.length >= 64) {
        head.method = method;
        head.awaiting = false;
        head.start = '';
      }
    }
    return onExecute.apply(this, args);
  };
}

/** The method of the request line that `bytes` begin with (after the empty lines a client may send between requests), if they do. */
function methodAtStart(bytes: Buffer | undefined): string | undefined {
  if (!bytes) return undefined;
  return /^(?:\r?\n)*([A-Z][A-Z-]*) /.exec(bytes.subarray(0, 64).toString('latin1'))?.[1];
}

function describeClientError(code: string | undefined, headerLimit: number): [number, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, `request headers are larger than ${headerLimit} bytes`];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return [413, 'chunk extensions of the body are too large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'the request did not arrive in time (headers within HEADERS_TIMEOUT_SECONDS, all of it within UPLOAD_TIMEOUT_SECONDS)'];
    default:
      return [400, 'the request is not valid HTTP/1.1'];
  }
}
