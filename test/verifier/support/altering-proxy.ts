import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactRange, fromHex, toHex } from '@lethe/merkle';

/**
 * What the proxy answers for a request (path with query): a replacement JSON body, `'hang'` to never answer,
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

interface UpstreamAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * An HTTP server in front of the service that rewrites some of its answers: a lying or broken service. What
 * it passes through keeps its status, headers and bytes (the portal's HTML and scripts are served as they are).
 */
export async function startAlteringProxy(upstream: string, alter: Alteration): Promise<AlteringProxy> {
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    let answer: Promise<UpstreamAnswer> | undefined;
    const fetchUpstream = () =>
      (answer ??= fetch(upstream + path, { method: req.method, headers: forwardable(req.headers) }).then(async (r) => ({
        status: r.status,
        headers: passable(r.headers),
        body: Buffer.from(await r.arrayBuffer()),
      })));
    void (async () => {
      try {
        const altered = await alter(path, async () => (await fetchUpstream()).body.toString('utf8'));
        if (altered === 'hang') return; // never answers
        if (altered !== undefined) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(altered);
          return;
        }
        const { status, headers, body } = await fetchUpstream();
        res.writeHead(status, headers).end(body);
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

/** The upstream's headers minus those that describe its own connection and encoding (fetch decoded the body). */
function passable(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive', 'etag'].includes(name)) out[name] = value;
  });
  return out;
}

/**
 * A service showing a forked history: entry `forked.index` replaced by `forked`, and the checkpoint recomputed
 * from the entries so changed, as a lying service would answer one auditor.
 */
export async function startForkingProxy(
  upstream: string,
  forked: { index: number; leafHash: string; event: string },
): Promise<AlteringProxy> {
  const all = (await (await fetch(`${upstream}/v1/ledger/entries?start=0&limit=1000`)).json()) as { index: number; leafHash: string }[];
  const range = CompactRange.empty();
  range.append(all.map((e) => fromHex(e.index === forked.index ? forked.leafHash : e.leafHash)));
  return startAlteringProxy(upstream, async (path, upstreamBody) => {
    if (path.startsWith('/v1/ledger/checkpoint')) return JSON.stringify({ treeSize: range.size, rootHash: toHex(range.root()) });
    if (path.startsWith('/v1/ledger/entries')) {
      const served = JSON.parse(await upstreamBody()) as { index: number }[];
      return JSON.stringify(served.map((e) => (e.index === forked.index ? forked : e)));
    }
    return undefined;
  });
}
