import { maxHeaderSize, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { statusName } from './domain-exception.filter';

/**
 * What Node refuses by itself before any route sees the request (headers beyond its limit, a request that
 * is not HTTP, a request that took too long) is answered as the same JSON error as everything else, naming
 * the problem, instead of Node's bare status line; the connection is then closed, as Node does.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // As Node itself: answer only when no answer to this connection has started.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const [statusCode, message] = describeClientError(error.code, maxHeaderSize);
      const body = JSON.stringify({ statusCode, error: statusName(statusCode), message });
      socket.write(
        `HTTP/1.1 ${statusCode} ${statusName(statusCode)}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  });
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
