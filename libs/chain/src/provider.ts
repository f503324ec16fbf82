import { JsonRpcProvider, Network } from 'ethers';
import { chainErrorText, redactRpcUrl, rememberRpcUrl } from '@lethe/redact';
import { ChainError } from './errors';

export interface ConnectProviderOptions {
  /** How often ethers polls for new blocks and receipts; 500 ms unless given (Hardhat mines instantly). */
  pollingIntervalMs?: number;
  /** How long to wait for eth_chainId; 5 s unless given. */
  timeoutMs?: number;
}

/**
 * Connects to a JSON-RPC endpoint, failing fast with ChainError RPC_UNAVAILABLE when it does not answer
 * (a bare ethers JsonRpcProvider would retry network detection forever). The chain id is then fixed.
 * The URL's secret parts are remembered first, so that no error text shows them (rememberRpcUrl).
 */
export async function connectProvider(rpcUrl: string, options: ConnectProviderOptions = {}): Promise<JsonRpcProvider> {
  rememberRpcUrl(rpcUrl);
  let chainId: bigint;
  try {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    chainId = parseChainId(await res.text());
  } catch (err) {
    throw new ChainError('RPC_UNAVAILABLE', `JSON-RPC at ${redactRpcUrl(rpcUrl)} does not answer eth_chainId: ${chainErrorText(err)}`, {
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

/** The chain id from an eth_chainId answer; what the answer was, never its body, when it holds none. */
function parseChainId(text: string): bigint {
  let body: { result?: unknown; error?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error('the answer is not JSON');
  }
  if (typeof body?.result === 'string' && /^0x[0-9a-fA-F]{1,64}$/.test(body.result)) return BigInt(body.result);
  const error = body?.error as { code?: unknown; message?: unknown } | undefined;
  // The node's own words (chainErrorText redacts them), never the rest of the body.
  if (typeof error?.message === 'string') throw new Error(`JSON-RPC error ${String(error.code)}: ${error.message}`);
  throw new Error('the answer holds no chain id');
}
