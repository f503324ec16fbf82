import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTcpProxy } from './tcp-proxy';

/** The ways a hosted JSON-RPC endpoint fails; every answer it writes echoes the key, as real ones do. */
export type RpcFault =
  /** HTTP 500 with a text body naming the key. */
  | 'http-500'
  /** HTTP 200 whose body is not JSON (and starts with the key). */
  | 'malformed-json'
  /** A JSON-RPC error object whose message and data name the key. */
  | 'rpc-error'
  /** The connection is cut after the request arrived (ECONNRESET, socket hang up). */
  | 'hang-up'
  /** Nothing listens on the port any more (ECONNREFUSED). */
  | 'refused';

/**
 * A JSON-RPC endpoint as hosted providers run them: reachable only at a secret path and query
 * (`/v3/<key>?apikey=<key2>`), forwarding to `upstream` until told to fail.
 */
export interface SecretRpcServer {
  /** The full URL, secrets included: what RPC_URL holds. */
  url: string;
  /** The secrets the URL holds; none may appear in anything the service or the auditor's tools show. */
  secrets: string[];
  /**
   * From now on, fail with `fault`; `exceptChainId` keeps answering eth_chainId (the provider connects,
   * then every other call fails). null: forward everything again.
   */
  setFault(fault: RpcFault | null, options?: { exceptChainId?: boolean }): Promise<void>;
  close(): Promise<void>;
}

interface RpcRequest {
  id?: unknown;
  method?: unknown;
}

export async function startSecretRpcServer(upstream: string, key = 'SECRETKEY', key2 = 'SECRET2'): Promise<SecretRpcServer> {
  let fault: RpcFault | null = null;
  let exceptChainId = false;
  const echo = `invalid project id ${key} (apikey=${key2}); see https://rpc.example/v3/${key}?apikey=${key2}`;

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== `/v3/${key}` || url.searchParams.get('apikey') !== key2) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    let parsed: RpcRequest | RpcRequest[];
    try {
      parsed = JSON.parse(body) as RpcRequest | RpcRequest[];
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request');
      return;
    }
    const requests = Array.isArray(parsed) ? parsed : [parsed];
    const faulty = fault !== null && !(exceptChainId && requests.every((r) => r.method === 'eth_chainId'));
    if (!faulty) {
      void fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async (answer) => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text()))
        .catch(() => res.writeHead(502).end());
      return;
    }
    switch (fault) {
      case 'http-500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end(echo);
        return;
      case 'malformed-json':
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${key} ${key2} {"jsonrpc": "2.0", "result": `);
        return;
      case 'rpc-error': {
        const error = (r: RpcRequest) => ({ jsonrpc: '2.0', id: r.id ?? null, error: { code: -32001, message: echo, data: { key, key2 } } });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Array.isArray(parsed) ? requests.map(error) : error(requests[0])));
        return;
      }
      default:
        req.socket.destroy(); // hang-up ('refused' never gets here: nothing listens)
    }
  };

  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Clients reach it through a proxy, which 'refused' takes down (and then up again, on the same port).
  const proxy = await startTcpProxy((server.address() as AddressInfo).port);
  return {
    url: `${proxy.url}/v3/${key}?apikey=${key2}`,
    secrets: [key, key2],
    async setFault(next, options = {}) {
      const wasDown = fault === 'refused';
      fault = next;
      exceptChainId = options.exceptChainId ?? false;
      if (next === 'refused' && !wasDown) await proxy.down();
      if (next !== 'refused' && wasDown) await proxy.up();
    },
    async close() {
      await proxy.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
