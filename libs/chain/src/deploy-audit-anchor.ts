import { ContractFactory, Interface, type Signer } from 'ethers';
import { AnchorClient, type AnchorClientOptions } from './anchor-client';
import { loadAuditAnchorArtifact } from './artifact';
import { decodeChainError } from './decode-error';
import { ChainError } from './errors';

/**
 * Deploys AuditAnchor from `signer` with `admin` (DEFAULT_ADMIN_ROLE) and `anchorer` (ANCHORER_ROLE, or none
 * when the zero address), waits for it to be mined and returns a client connected with `signer`, whose
 * event scans start at the deployment block.
 */
export async function deployAuditAnchor(
  signer: Signer,
  admin: string,
  anchorer: string,
  options: Omit<AnchorClientOptions, 'deploymentBlock'> = {},
): Promise<AnchorClient> {
  const artifact = await loadAuditAnchorArtifact();
  const factory = new ContractFactory(artifact.abi, artifact.bytecode, signer);
  let address: string;
  let deploymentBlock: number | undefined;
  try {
    const contract = await factory.deploy(admin, anchorer);
    deploymentBlock = (await contract.deploymentTransaction()?.wait())?.blockNumber;
    await contract.waitForDeployment();
    address = await contract.getAddress();
  } catch (err) {
    if (err instanceof ChainError) throw err;
    throw decodeChainError(err, new Interface(artifact.abi), 'deploying AuditAnchor');
  }
  return AnchorClient.connect(address, signer, { ...options, deploymentBlock });
}
