import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the proxy answers for a request (path with query): a replacement body, `'hang'` to never answer,
 * or undefined to pass the upstream answer through.
 */
export type Alteration = (
  path: string,
  upstreamBody: () => Promise<string>,
) => Promise<string | 'hang' | undefined> | string | 'hang' | undefined;

export interface AlteringProxy {
  url: string;
  close(): Promise<void>;
}

/** An HTTP server in front of the service that rewrites some of its answers: a lying or broken service. */
export async function startAlteringProxy(upstream: string, alter: Alteration): Promise<AlteringProxy> {
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    let upstreamText: Promise<{ status: number; text: string }> | undefined;
    const fetchUpstream = () => (upstreamText ??= fetch(upstream + path).then(async (r) => ({ status: r.status, text: await r.text() })));
    void (async () => {
      try {
        const altered = await alter(path, async () => (await fetchUpstream()).text);
        if (altered === 'hang') return; // never answers
        if (altered !== undefined) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(altered);
          return;
        }
        const { status, text } = await fetchUpstream();
        res.writeHead(status, { 'content-type': 'application/json' }).end(text);
      } catch (err) {
        res.writeHead(502).end(String(err));
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
