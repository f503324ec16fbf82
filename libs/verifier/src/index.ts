// What an auditor runs: the service's data checked against the chain. No database, no Node-only modules
// (global fetch, ethers, @lethe/merkle), so it runs in the portal too.
export { VerifierError } from './errors';
export type {
  VerificationFailure,
  VerificationFailureCode,
  VerificationWarning,
  VerificationWarningCode,
  VerifierErrorCode,
  VerifierErrorDetails,
} from './errors';
export { LogClient, MAX_ENTRIES_PER_PAGE } from './log-client';
export type { LogClientOptions } from './log-client';
export { parseAnchor } from './server-data';
export type { ServerAnchor, ServerCheckpoint, ServerConsistencyProof, ServerEntry, ServerInclusionProof } from './server-data';
export { rehashEntry } from './rehash-entry';
export type { RehashedEntry } from './rehash-entry';
export { AnchorReader, AUDIT_ANCHOR_READ_ABI } from './anchor-reader';
export type { AnchorReaderOptions, AnchorTransaction, OnChainCheckpoint, Predecessor } from './anchor-reader';
export { connectPredecessors, findAnchoredContract, MAX_PREDECESSORS } from './find-contract';
export type { AnchoredContract, PredecessorLink } from './find-contract';
export { verifyLog } from './verify-log';
export type { PredecessorCheck, VerifyLogOptions, VerifyLogReport } from './verify-log';
export { checkInclusionAgainstChain, verifyInclusionAgainstChain } from './verify-inclusion';
export type { InclusionVerification, VerifyInclusionOptions } from './verify-inclusion';
export { verifyReceipt, COMMITMENT_PATTERN } from './verify-receipt';
export type { ReceiptAnchor, ReceiptEntryCheck, VerifyReceiptOptions, VerifyReceiptReport } from './verify-receipt';
export type { ReceiptRetirement } from './receipt-retirement';
export type {
  ServerSampleReceipt,
  ServerEntryReceipt,
  ServerCommittedReceipt,
  ServerForgetReceipt,
  ServerLearnedReceipt,
  ServerReceiptAnchor,
} from './receipt-data';
export { verifyModel } from './verify-model';
export type {
  DeletedCheckpoints,
  LearnedBatch,
  PublishedModelVersion,
  ReflectedForgetRequest,
  RetiredVersion,
  VerifyModelOptions,
  VerifyModelReport,
} from './verify-model';
export { fetchJson } from './fetch-json';
export type { FetchJsonOptions } from './fetch-json';
