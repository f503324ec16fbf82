import { Wallet } from 'ethers';
import {
  AnchorClient,
  ChainError,
  HARDHAT_DEV_PRIVATE_KEYS,
  HardhatNode,
  connectProvider,
  deployAuditAnchor,
  describeConnection,
  loadSigner,
  startHardhatNode,
  type ChainConnection,
  type ChainConnector,
} from '@lethe/chain';
import { redactRpcUrl } from '@lethe/redact';
import { ChainConfig } from '../config/config';

/**
 * Starts the local Hardhat node (JSON-RPC on 127.0.0.1:CHAIN_PORT) and deploys a fresh AuditAnchor with
 * the node's first development account as admin and anchorer. The chain lives as long as the service;
 * `pidFile` (DATA_DIR/hardhat-node.pid) names it, so the next start stops a node a killed service left.
 * If the node stops under the service (killed, crashed), the next connection starts a new one on the same
 * port and deploys AuditAnchor there again: a new chain, on which the latest checkpoint is anchored again.
 */
export async function startLocalChain(
  config: ChainConfig,
  log: (m: string) => void,
  options: { pidFile?: string } = {},
): Promise<{ connect: ChainConnector; stop(): Promise<void> }> {
  let current = await launchLocalChain(config, log, options.pidFile);
  let restarting: Promise<void> | undefined;
  let stopped = false;
  const connect: ChainConnector = async () => {
    if (stopped) throw new ChainError('RPC_UNAVAILABLE', 'the local Hardhat node is stopped');
    if (current.node.isRunning()) return current.connection;
    restarting ??= (async () => {
      log(`the local Hardhat node at ${current.node.rpcUrl} stopped; starting a new one (a new chain: the latest checkpoint will be anchored again)`);
      await current.connection.close();
      current = await launchLocalChain(config, log, options.pidFile);
    })().finally(() => (restarting = undefined));
    await restarting;
    return current.connection;
  };
  return {
    connect,
    stop: async () => {
      stopped = true;
      await restarting?.catch(() => undefined);
      await current.node.stop();
    },
  };
}

async function launchLocalChain(config: ChainConfig, log: (m: string) => void, pidFile: string | undefined): Promise<{ node: HardhatNode; connection: ChainConnection }> {
  let node: HardhatNode;
  try {
    node = await startHardhatNode({ port: config.chainPort, pidFile, onNotice: log });
  } catch (error) {
    if (error instanceof ChainError && error.code === 'PORT_IN_USE')
      throw new ChainError('PORT_IN_USE', `CHAIN_PORT ${config.chainPort} is in use: set CHAIN_PORT to a free port (or RPC_URL to a chain)`);
    throw error;
  }
  try {
    const provider = await connectProvider(node.rpcUrl, { pollingIntervalMs: 100 });
    const signer = new Wallet(HARDHAT_DEV_PRIVATE_KEYS[0], provider);
    const client = await deployAuditAnchor(signer, signer.address, signer.address, { logRangeBlocks: config.anchorLogRangeBlocks });
    if (config.anchorConfirmations > 1) {
      // Hardhat mines only when a transaction arrives; with more than one confirmation to wait for, mine
      // a block every second as a real chain would.
      await provider.send('evm_setIntervalMining', [1000]);
    }
    const connection = await describeConnection(provider, client, { rpcUrl: node.rpcUrl, local: true, close: async () => provider.destroy() });
    log(
      `started a local Hardhat chain at ${node.rpcUrl} (chain ${connection.chainId}) and deployed AuditAnchor at ${client.address}; ` +
        `this chain is ephemeral: it starts empty at every start, so the latest checkpoint is anchored again`,
    );
    return { node, connection };
  } catch (error) {
    await node.stop();
    throw error;
  }
}

/** Connects to RPC_URL's chain and the AuditAnchor at CONTRACT_ADDRESS with the configured key. */
export function remoteChainConnector(config: ChainConfig, env: NodeJS.ProcessEnv = process.env): ChainConnector {
  return async () => {
    const provider = await connectProvider(config.rpcUrl!, { pollingIntervalMs: 1000 });
    try {
      const signer = await loadSigner({ provider, env });
      const client = await AnchorClient.connect(config.contractAddress!, signer, {
        logRangeBlocks: config.anchorLogRangeBlocks,
        deploymentBlock: config.contractDeploymentBlock,
      });
      return await describeConnection(provider, client, { rpcUrl: redactRpcUrl(config.rpcUrl!), local: false, close: async () => provider.destroy() });
    } catch (error) {
      provider.destroy();
      throw error;
    }
  };
}
