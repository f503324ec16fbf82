// Deploys AuditAnchor and prints its address.
// npm run deploy -- --rpc URL --admin ADDR --anchorer ADDR [--admin-delay SECONDS] [--max-jump N]
//                   [--predecessor ADDR --vouched-size N --vouched-root ROOT] [--key-env VAR] [--allow-anchorer-admin]
// The deployer's key comes from the variable named by --key-env (ANCHORER_PRIVATE_KEY unless given), or from
// ANCHORER_KEYSTORE + ANCHORER_KEYSTORE_PASSWORD; it is never printed. The deployer need be neither admin nor
// anchorer, and the anchorer is not made admin unless --allow-anchorer-admin says so.
import { Command, InvalidArgumentError } from 'commander';
import { getAddress, isAddress } from 'ethers';
import { ChainError, MAX_TREE_SIZE, connectProvider, deployAuditAnchor, loadSigner, type VouchedCheckpoint } from '@lethe/chain';
import { chainErrorText } from '@lethe/redact';

/** Three days: time for the operator to notice and cancel an admin transfer it did not start. */
const DEFAULT_ADMIN_DELAY_SECONDS = 3 * 86_400;
/** Entries one anchor may add: the service splits larger backlogs, so this only bounds a stolen key's reach. */
const DEFAULT_MAX_JUMP = 1_000_000;

interface DeployOptions {
  rpc: string;
  keyEnv: string;
  admin: string;
  anchorer: string;
  adminDelay: number;
  maxJump: number;
  predecessor?: string;
  vouchedSize?: number;
  vouchedRoot?: string;
  allowAnchorerAdmin?: boolean;
}

function parseAddress(value: string): string {
  if (!isAddress(value) || !value.startsWith('0x')) throw new InvalidArgumentError('must be a 0x-prefixed 20-byte address');
  return getAddress(value);
}

function parseInteger(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

function parseRoot(value: string): string {
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(value)) throw new InvalidArgumentError('must be 32 bytes of hex');
  return value.replace(/^0x/, '').toLowerCase();
}

/** The vouched checkpoint, when --predecessor is given (then --vouched-size and --vouched-root must be too). */
function vouchedFrom(options: DeployOptions): VouchedCheckpoint | undefined {
  const given = [options.predecessor, options.vouchedSize, options.vouchedRoot].filter((v) => v !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw new UsageError('--predecessor, --vouched-size and --vouched-root go together: the checkpoint on the predecessor you vouch for');
  return { predecessor: options.predecessor!, treeSize: options.vouchedSize!, rootHash: options.vouchedRoot! };
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('deploy')
    .description('Deploy the AuditAnchor contract (or the successor of a compromised one) and print its address')
    .requiredOption('--rpc <url>', 'JSON-RPC URL of the chain')
    .requiredOption('--admin <address>', 'receives DEFAULT_ADMIN_ROLE: grants and revokes anchorers, pauses, sets the jump bound (keep its key offline)', parseAddress)
    .requiredOption('--anchorer <address>', 'receives ANCHORER_ROLE: the service key that anchors', parseAddress)
    .option('--admin-delay <seconds>', 'how long a new admin waits before accepting a transfer', parseInteger(0, 2 ** 48 - 1), DEFAULT_ADMIN_DELAY_SECONDS)
    .option('--max-jump <entries>', 'most entries one anchor may add', parseInteger(1, MAX_TREE_SIZE), DEFAULT_MAX_JUMP)
    .option('--predecessor <address>', 'deploy the successor of this compromised AuditAnchor', parseAddress)
    .option('--vouched-size <n>', 'tree size of the last checkpoint on the predecessor you vouch for', parseInteger(1, MAX_TREE_SIZE))
    .option('--vouched-root <hex>', "that checkpoint's root from your own log (fromRoot of GET /v1/ledger/proofs/consistency?from=<n>), not from the chain", parseRoot)
    .option('--key-env <var>', 'environment variable holding the deployer private key', 'ANCHORER_PRIVATE_KEY')
    .option('--allow-anchorer-admin', 'let one key be both admin and anchorer (a development chain only)')
    .parse(argv);
  const options = program.opts<DeployOptions>();
  if (options.admin === options.anchorer && !options.allowAnchorerAdmin) {
    throw new UsageError(
      'refusing to make the anchorer the admin: the anchorer key lives on the service, and whoever steals it could then ' +
        'also grant roles and hand the contract over. Give --admin an offline key, or --allow-anchorer-admin for a development chain.',
    );
  }
  const vouched = vouchedFrom(options);

  const provider = await connectProvider(options.rpc);
  try {
    const signer = await loadSigner({ provider, keyEnv: options.keyEnv });
    const client = await deployAuditAnchor(signer, options.admin, options.anchorer, {
      adminDelaySeconds: options.adminDelay,
      maxAnchorJump: options.maxJump,
      vouched,
    });
    const { chainId } = await provider.getNetwork();
    console.error(
      `AuditAnchor deployed on chain ${chainId} in block ${client.deploymentBlock} by ${signer.address}; admin ${options.admin} ` +
        `(transfer delay ${options.adminDelay} s), anchorer ${options.anchorer}, at most ${options.maxJump} entries per anchor` +
        (vouched ? `; it succeeds ${vouched.predecessor} from its checkpoint of size ${vouched.treeSize}` : '') +
        ` (CONTRACT_DEPLOYMENT_BLOCK=${client.deploymentBlock} lets the service scan its events from there)`,
    );
    if (vouched) {
      console.error(
        `to recover, set CONTRACT_ADDRESS=${client.address} and CONTRACT_DEPLOYMENT_BLOCK=${client.deploymentBlock} (and the new anchorer's key) ` +
          'and restart the service: it goes on from the vouched checkpoint; auditors follow the contract back to its predecessor',
      );
    }
    console.log(client.address);
  } finally {
    provider.destroy();
  }
}

main(process.argv).catch((err: unknown) => {
  const message = err instanceof ChainError ? `${err.code}: ${err.message}` : err instanceof UsageError ? err.message : chainErrorText(err);
  console.error(`deploy failed: ${message}`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
