// Until its callers import @lethe/events themselves.
export * from '@lethe/events';
export { SALT_BYTES, canonicalizeSample, commitSample, createSalt } from './commitment';
export type { CommittableSample } from './commitment';
export { LEDGER_ENTITIES, LEDGER_MIGRATIONS, openDatabase } from './data-source';
export type { DatabaseOptions } from './data-source';
export { Ledger, MAX_ENTRIES_PER_READ } from './ledger';
export type { AppendedEntry, Checkpoint, ConsistencyProof, InclusionProof, LedgerEntry, LedgerOptions } from './ledger';
export { SampleVault, computeCommitmentsRoot } from './sample-vault';
export type { CommitResult, CommittedSample, ShredResult } from './sample-vault';
export { fsckLedger } from './fsck';
export type { FsckOptions, FsckProblem, FsckProblemKind, FsckReport } from './fsck';
export { findFreePort, startEmbeddedPostgres } from './embedded-postgres';
export type { EmbeddedDatabase, StartEmbeddedOptions } from './embedded-postgres';
export { CheckpointEntity, LedgerHeadEntity } from './checkpoint.entity';
export { LedgerEntryEntity } from './ledger-entry.entity';
export { MerkleNodeEntity } from './merkle-node.entity';
