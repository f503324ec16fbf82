import { JsonRpcProvider, Network } from 'ethers';
import { ChainError } from './errors';
import { redactRpcUrl } from './redact-url';

export interface ConnectProviderOptions {
  /** How often ethers polls for new blocks and receipts; 500 ms unless given (Hardhat mines instantly). */
  pollingIntervalMs?: number;
  /** How long to wait for eth_chainId; 5 s unless given. */
  timeoutMs?: number;
}

/**
 * Connects to a JSON-RPC endpoint, failing fast with ChainError RPC_UNAVAILABLE when it does not answer
 * (a bare ethers JsonRpcProvider would retry network detection forever). The chain id is then fixed.
 */
export async function connectProvider(rpcUrl: string, options: ConnectProviderOptions = {}): Promise<JsonRpcProvider> {
  let chainId: bigint;
  try {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    const body = (await res.json()) as { result?: unknown };
    if (typeof body.result !== 'string') throw new Error(`eth_chainId answered ${JSON.stringify(body).slice(0, 200)}`);
    chainId = BigInt(body.result);
  } catch (err) {
    throw new ChainError('RPC_UNAVAILABLE', `JSON-RPC at ${redactRpcUrl(rpcUrl)} does not answer eth_chainId: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const network = Network.from(chainId);
  return new JsonRpcProvider(rpcUrl, network, {
    staticNetwork: network,
    pollingInterval: options.pollingIntervalMs ?? 500,
    cacheTimeout: -1, // never serve a stale block number or nonce
  });
}
