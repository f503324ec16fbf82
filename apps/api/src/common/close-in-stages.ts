import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How long, and how many more bytes, a connection answered early is still read before it is closed (RFC 9112 §9.6). */
export const LINGER_MS = 2_000;
export const LINGER_BYTES = 1024 * 1024;

const lingering = new WeakSet<Socket>();

/**
 * Closes the connection of a request answered before its body was read (a bad key, a wrong type, a
 * timeout) in stages, as RFC 9112 §9.6 asks, instead of at once. Closing a TCP socket while the client is
 * still sending makes the kernel answer what arrives with a reset, and a client still writing its body
 * then fails its write (EPIPE, ECONNRESET) — many clients give up there without reading the answer that
 * already reached them. So, once the answer is written (Node's server calls `destroySoon` then), the
 * server half-closes, reads and drops what the client still sends until the client closes its side, and
 * closes for good after LINGER_MS or LINGER_BYTES more bytes, whichever comes first. Node's server only
 * drops those bytes (the request it answered is not read on); a request sent after the body on the same
 * connection is not served (`refuseRequestsWhileLingering`).
 */
export function closeInStages(socket: Socket): void {
  socket.destroySoon = () => {
    if (lingering.has(socket)) return;
    lingering.add(socket);
    const readBefore = socket.bytesRead;
    const close = (): void => {
      socket.destroy();
    };
    const timer = setTimeout(close, LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('end', close);
    // A 'data' listener also moves Node's parser off the native read path, so that bytes pass through here.
    socket.on('data', () => {
      if (socket.bytesRead - readBefore > LINGER_BYTES) close();
    });
    socket.end();
  };
}

/** Express middleware: a request that arrives on a connection closing in stages was sent after one the server refused and said it would close: it is not served. */
export function refuseRequestsWhileLingering(request: IncomingMessage, _response: ServerResponse, next: () => void): void {
  if (lingering.has(request.socket)) request.socket.destroy();
  else next();
}
