import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A JSON-RPC endpoint in front of a node that caps eth_getLogs block ranges as hosted RPCs do, and records the calls. */
export interface CappedRpcProxy {
  url: string;
  /** Every eth_getLogs call it answered or refused, in order: its block range (tags resolved) and whether it was refused. */
  getLogsCalls: { fromBlock: number; toBlock: number; refused: boolean }[];
  close(): Promise<void>;
}

interface RpcRequest {
  jsonrpc: '2.0';
  id: number | string | null;
  method: string;
  params?: unknown[];
}

/**
 * Passes every JSON-RPC request (single or batched) through to `upstream`, except an eth_getLogs spanning
 * more than `maxBlocks` blocks, which it refuses with a JSON-RPC error, as Alchemy, Infura and others do.
 */
export async function startCappedRpcProxy(upstream: string, maxBlocks: number): Promise<CappedRpcProxy> {
  const getLogsCalls: CappedRpcProxy['getLogsCalls'] = [];
  const forward = async (request: RpcRequest): Promise<unknown> => {
    const res = await fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
    return res.json();
  };
  const blockOf = async (tag: unknown): Promise<number> => {
    if (typeof tag === 'string' && /^0x[0-9a-f]+$/i.test(tag)) return Number(tag);
    if (tag === undefined || tag === 'latest' || tag === 'pending' || tag === 'safe' || tag === 'finalized') {
      const answer = (await forward({ jsonrpc: '2.0', id: 0, method: 'eth_blockNumber', params: [] })) as { result: string };
      return Number(answer.result);
    }
    return 0; // 'earliest'
  };
  const answer = async (request: RpcRequest): Promise<unknown> => {
    if (request.method !== 'eth_getLogs') return forward(request);
    const filter = (request.params?.[0] ?? {}) as { fromBlock?: unknown; toBlock?: unknown };
    const fromBlock = await blockOf(filter.fromBlock ?? 'latest');
    const toBlock = await blockOf(filter.toBlock);
    const refused = toBlock - fromBlock + 1 > maxBlocks;
    getLogsCalls.push({ fromBlock, toBlock, refused });
    if (!refused) return forward(request);
    return {
      jsonrpc: '2.0',
      id: request.id,
      error: { code: -32600, message: `eth_getLogs is limited to a ${maxBlocks} block range (asked ${fromBlock}..${toBlock})` },
    };
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      void (async () => {
        try {
          const parsed = JSON.parse(body) as RpcRequest | RpcRequest[];
          // One at a time, in order, as a node would: the calls are recorded in the order they were sent.
          let out: unknown;
          if (Array.isArray(parsed)) {
            const answers: unknown[] = [];
            for (const request of parsed) answers.push(await answer(request));
            out = answers;
          } else {
            out = await answer(parsed);
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
        } catch (err) {
          res.writeHead(502, { 'content-type': 'text/plain' }).end(String(err));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    getLogsCalls,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
