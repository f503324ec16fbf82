import type { Provider } from 'ethers';
import { chainErrorText } from '@lethe/redact';
import type { AnchorClient } from './anchor-client';
import type { ChainConnection } from './anchoring-ports';
import { ChainError } from './errors';

export interface DescribeConnectionOptions {
  /** The RPC URL as it may be shown (redactRpcUrl for a remote chain): it names the chain in errors too. */
  rpcUrl: string;
  /** True for an ephemeral local chain the caller started itself. */
  local: boolean;
  /** Releases what the connection holds (the provider, when the connection owns it). */
  close(): Promise<void>;
}

/**
 * The ChainConnection of `client`'s AuditAnchor reached through `provider`: the chain's id and block 0's
 * hash read from the provider (ChainError RPC_UNAVAILABLE, naming `rpcUrl`, when block 0 does not come).
 */
export async function describeConnection(provider: Provider, client: AnchorClient, options: DescribeConnectionOptions): Promise<ChainConnection> {
  const { rpcUrl, local, close } = options;
  const chainId = (await provider.getNetwork()).chainId.toString();
  const genesis = await provider.getBlock(0).catch((error: unknown) => {
    throw new ChainError('RPC_UNAVAILABLE', `${rpcUrl} did not return block 0: ${chainErrorText(error)}`, { cause: error });
  });
  if (!genesis?.hash) throw new ChainError('RPC_UNAVAILABLE', `${rpcUrl} did not return block 0`);
  return { chainId, genesisHash: genesis.hash, contract: client.address.toLowerCase(), rpcUrl, local, client, close };
}
