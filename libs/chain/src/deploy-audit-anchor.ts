import { ContractFactory, Interface, ZeroAddress, ZeroHash, type Signer } from 'ethers';
import { AnchorClient, MAX_TREE_SIZE, type AnchorClientOptions } from './anchor-client';
import { loadAuditAnchorArtifact } from './artifact';
import { decodeChainError } from './decode-error';
import { ChainError } from './errors';
import { toBytes32, toUint64, type HashInput } from './hash-hex';

/** The checkpoint on a compromised AuditAnchor that its successor starts from (it must hold it). */
export interface VouchedCheckpoint {
  /** The compromised AuditAnchor. */
  predecessor: string;
  treeSize: number;
  rootHash: HashInput;
}

export interface DeployAuditAnchorOptions extends Omit<AnchorClientOptions, 'deploymentBlock'> {
  /** Seconds a new admin waits between the transfer's start and its acceptance; 0 unless given (`npm run deploy`: 3 days). */
  adminDelaySeconds?: number;
  /** Most entries one anchor may add; MAX_TREE_SIZE (no bound beyond the contract's) unless given. */
  maxAnchorJump?: number;
  /** Deploys a successor of `vouched.predecessor`, starting from the vouched checkpoint. */
  vouched?: VouchedCheckpoint;
}

/**
 * Deploys AuditAnchor from `signer` with `admin` (DEFAULT_ADMIN_ROLE) and `anchorer` (ANCHORER_ROLE, or none
 * when the zero address), waits for it to be mined and returns a client connected with `signer`, whose
 * event scans start at the deployment block. The deployer need be neither.
 */
export async function deployAuditAnchor(
  signer: Signer,
  admin: string,
  anchorer: string,
  options: DeployAuditAnchorOptions = {},
): Promise<AnchorClient> {
  const { adminDelaySeconds = 0, maxAnchorJump = MAX_TREE_SIZE, vouched, ...clientOptions } = options;
  const args = [
    admin,
    toUint64(adminDelaySeconds, 'adminDelaySeconds'),
    anchorer,
    toUint64(maxAnchorJump, 'maxAnchorJump'),
    vouched?.predecessor ?? ZeroAddress,
    vouched ? toUint64(vouched.treeSize, 'vouched.treeSize') : 0n,
    vouched ? toBytes32(vouched.rootHash, 'vouched.rootHash') : ZeroHash,
  ];
  const artifact = await loadAuditAnchorArtifact();
  const factory = new ContractFactory(artifact.abi, artifact.bytecode, signer);
  let address: string;
  let deploymentBlock: number | undefined;
  try {
    const contract = await factory.deploy(...args);
    deploymentBlock = (await contract.deploymentTransaction()?.wait())?.blockNumber;
    await contract.waitForDeployment();
    address = await contract.getAddress();
  } catch (err) {
    if (err instanceof ChainError) throw err;
    throw decodeChainError(err, new Interface(artifact.abi), 'deploying AuditAnchor');
  }
  return AnchorClient.connect(address, signer, { ...clientOptions, deploymentBlock });
}
