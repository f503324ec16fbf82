export { ChainError, type ChainErrorCode, type ChainErrorDetails } from './errors';
export {
  AnchorClient,
  AUDIT_ANCHOR_ABI,
  MAX_TREE_SIZE,
  type Predecessor,
  type AnchorClientOptions,
  type AnchoredCheckpoint,
  type CheckpointAnchoredEvent,
  type FeeData,
  type AnchorOverrides,
  type AnchorReceipt,
  type TransactionState,
  type WaitForAnchorOptions,
} from './anchor-client';
export { deployAuditAnchor, type DeployAuditAnchorOptions, type VouchedCheckpoint } from './deploy-audit-anchor';
export { loadAuditAnchorArtifact, loadContractArtifact, type ContractArtifact } from './artifact';
export { startHardhatNode, HARDHAT_DEV_PRIVATE_KEYS, type HardhatNode, type StartHardhatNodeOptions } from './hardhat-node';
export { connectProvider, type ConnectProviderOptions } from './provider';
export { describeConnection, type DescribeConnectionOptions } from './chain-connection';
export { loadSigner, type LoadSignerOptions } from './load-signer';
export { decodeChainError } from './decode-error';
export { toBytes32, fromBytes32, type HashInput } from './hash-hex';
export { AnchoringEngine, type AnchoringEngineOptions } from './anchoring-engine';
export type {
  AnchorAttempt,
  AnchorAttemptChange,
  AnchorAttemptState,
  AnchorAttemptStore,
  AnchoringLock,
  AnchoringLog,
  AnchoringLogger,
  AnchoringPolicy,
  AnchoringState,
  AnchoringStatus,
  ChainConnection,
  ChainConnector,
  ChainHead,
  ChainKey,
  ConfirmedAnchor,
  NewAnchorAttempt,
} from './anchoring-ports';
