// Deploys AuditAnchor and prints its address.
// npm run deploy -- --rpc URL [--key-env VAR] [--admin ADDRESS] [--anchorer ADDRESS]
// The deployer's key comes from the variable named by --key-env (ANCHORER_PRIVATE_KEY unless given), or from
// ANCHORER_KEYSTORE + ANCHORER_KEYSTORE_PASSWORD; it is never printed.
import { Command } from 'commander';
import { getAddress } from 'ethers';
import { ChainError, connectProvider, deployAuditAnchor, loadSigner } from '@lethe/chain';
import { chainErrorText } from '@lethe/redact';

interface DeployOptions {
  rpc: string;
  keyEnv: string;
  admin?: string;
  anchorer?: string;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('deploy')
    .description('Deploy the AuditAnchor contract and print its address')
    .requiredOption('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--key-env <var>', 'environment variable holding the deployer private key', 'ANCHORER_PRIVATE_KEY')
    .option('--admin <address>', 'receives DEFAULT_ADMIN_ROLE (default: the deployer)')
    .option('--anchorer <address>', 'receives ANCHORER_ROLE (default: the deployer)')
    .parse(argv);
  const options = program.opts<DeployOptions>();

  const provider = await connectProvider(options.rpc);
  try {
    const signer = await loadSigner({ provider, keyEnv: options.keyEnv });
    const admin = getAddress(options.admin ?? signer.address);
    const anchorer = getAddress(options.anchorer ?? signer.address);
    const client = await deployAuditAnchor(signer, admin, anchorer);
    const { chainId } = await provider.getNetwork();
    console.error(
      `AuditAnchor deployed on chain ${chainId} in block ${client.deploymentBlock} by ${signer.address}; admin ${admin}, anchorer ${anchorer}` +
        ` (CONTRACT_DEPLOYMENT_BLOCK=${client.deploymentBlock} lets the service scan its events from there)`,
    );
    console.log(client.address);
  } finally {
    provider.destroy();
  }
}

main(process.argv).catch((err: unknown) => {
  const message = err instanceof ChainError ? `${err.code}: ${err.message}` : chainErrorText(err);
  console.error(`deploy failed: ${message}`);
  process.exit(1);
});
