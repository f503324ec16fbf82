import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A replacement body for a request (path with query), given the upstream's; undefined passes it through. */
export type Rewrite = (path: string, upstreamBody: string) => string | undefined | Promise<string | undefined>;

export interface ForwardingProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * An HTTP server in front of the service, serving everything it serves (the portal's HTML and scripts with
 * their headers) but rewriting some JSON answers: a service that lies to the portal's browser.
 */
export async function startForwardingProxy(upstream: string, rewrite: Rewrite): Promise<ForwardingProxy> {
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    void (async () => {
      try {
        const response = await fetch(upstream + path, { method: req.method, headers: forwardable(req.headers) });
        const body = Buffer.from(await response.arrayBuffer());
        const headers: Record<string, string> = {};
        response.headers.forEach((value, name) => {
          if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive', 'etag'].includes(name))
            headers[name] = value;
        });
        const isJson = (response.headers.get('content-type') ?? '').includes('application/json');
        const altered = isJson ? await rewrite(path, body.toString('utf8')) : undefined;
        res.writeHead(response.status, headers).end(altered ?? body);
      } catch (err) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(String(err));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function forwardable(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['accept', 'content-type', 'authorization']) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}
