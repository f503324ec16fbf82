import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { keccak256 } from 'ethers';

/**
 * A JSON-RPC endpoint in front of a node that injects the faults a hosted RPC or a chain shows: it caps
 * eth_getLogs block ranges, goes down (connections refused), answers slowly, swallows transactions (a
 * mempool that drops them), and can be pointed at another node (a restarted one). It records the calls.
 */
export interface FaultRpcProxy {
  url: string;
  /** Every eth_getLogs call it answered or refused, in order: its block range (tags resolved) and whether it was refused. */
  getLogsCalls: { fromBlock: number; toBlock: number; refused: boolean }[];
  /** How many calls of each method it received. */
  calls: Map<string, number>;
  /** Hashes of the transactions it swallowed while `dropTransactions` was on. */
  dropped: string[];
  /** Faults in force; change them at any time. */
  faults: {
    /** Most blocks one eth_getLogs may span (a JSON-RPC error beyond), or undefined for no cap. */
    maxLogBlocks?: number;
    /** Milliseconds every answer waits. */
    delayMs: number;
    /** eth_sendRawTransaction answers with the transaction's hash but never reaches the node. */
    dropTransactions: boolean;
  };
  /** Stops listening and drops every open connection: clients are refused, as by an RPC that is down. */
  down(): Promise<void>;
  /** Listens again, on the same port. */
  up(): Promise<void>;
  /** Forwards to another node from now on. */
  setUpstream(url: string): void;
  close(): Promise<void>;
}

/** The capped proxy the chain suites use: eth_getLogs spanning more than `maxBlocks` blocks is refused, as Alchemy, Infura and others do. */
export type CappedRpcProxy = FaultRpcProxy;

export function startCappedRpcProxy(upstream: string, maxBlocks: number): Promise<CappedRpcProxy> {
  return startFaultRpcProxy(upstream, { maxLogBlocks: maxBlocks });
}

interface RpcRequest {
  jsonrpc: '2.0';
  id: number | string | null;
  method: string;
  params?: unknown[];
}

/** Passes every JSON-RPC request (single or batched) through to `upstream`, except as `faults` say. */
export async function startFaultRpcProxy(upstream: string, faults: Partial<FaultRpcProxy['faults']> = {}): Promise<FaultRpcProxy> {
  let target = upstream;
  const getLogsCalls: FaultRpcProxy['getLogsCalls'] = [];
  const calls = new Map<string, number>();
  const dropped: string[] = [];
  const state: FaultRpcProxy['faults'] = { delayMs: 0, dropTransactions: false, ...faults };
  const forward = async (request: RpcRequest): Promise<unknown> => {
    const res = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
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
    calls.set(request.method, (calls.get(request.method) ?? 0) + 1);
    if (request.method === 'eth_sendRawTransaction' && state.dropTransactions) {
      const hash = keccak256(request.params![0] as string);
      dropped.push(hash);
      return { jsonrpc: '2.0', id: request.id, result: hash };
    }
    if (request.method !== 'eth_getLogs' || state.maxLogBlocks === undefined) return forward(request);
    const filter = (request.params?.[0] ?? {}) as { fromBlock?: unknown; toBlock?: unknown };
    const fromBlock = await blockOf(filter.fromBlock ?? 'latest');
    const toBlock = await blockOf(filter.toBlock);
    const refused = toBlock - fromBlock + 1 > state.maxLogBlocks;
    getLogsCalls.push({ fromBlock, toBlock, refused });
    if (!refused) return forward(request);
    return {
      jsonrpc: '2.0',
      id: request.id,
      error: { code: -32600, message: `eth_getLogs is limited to a ${state.maxLogBlocks} block range (asked ${fromBlock}..${toBlock})` },
    };
  };
  const sockets = new Set<Socket>();
  const newServer = (): Server => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        void (async () => {
          try {
            if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
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
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    return server;
  };
  let server: Server | undefined = newServer();
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => s.close(resolve));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    getLogsCalls,
    calls,
    dropped,
    faults: state,
    down: stop,
    up: async () => {
      if (server) return;
      server = newServer();
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    },
    setUpstream: (url) => {
      target = url;
    },
    close: stop,
  };
}
