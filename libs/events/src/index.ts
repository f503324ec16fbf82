// The ledger's event format: typed, versioned events, their checks, and their RFC 8785 canonical encoding
// (the bytes a Merkle leaf hashes). Browser-safe: no database, no Node-only module (SHA-256 comes from
// @lethe/merkle, which a browser bundle gives its own digest), so the verifier and the portal use it as is.
export { LedgerError } from './errors';
export type { LedgerErrorCode } from './errors';
export { APPROXIMATE_ALGORITHMS, BIAS_SCAN_METHODS, LEARN_HELD_CAUSES, LEDGER_EVENT_TYPES, SHRED_CAUSES, validateEvent } from './events';
export type {
  Anchored,
  ApproximateAlgorithm,
  BatchLearned,
  BiasScanMethod,
  BiasScanned,
  CheckpointSaved,
  CheckpointsDeleted,
  DatasetRegistered,
  DatasetVersioned,
  ForgetExtended,
  GuardFigures,
  ModelRolledBack,
  UnlearnHeld,
  LearnHeld,
  LearnHeldCause,
  VersionReleased,
  ForgetRequested,
  ForgetRestored,
  ForgetShredded,
  ForgetSuspended,
  ShredCause,
  JsonValue,
  LedgerEvent,
  LedgerEventType,
  ModelPublished,
  PrivacyGuarantee,
  SamplesCommitted,
  UnlearnCompleted,
  VersionRetired,
  EvidenceRecorded,
  UnlearnGuarantee,
} from './events';
export { checkMembershipEvidence, MEMBERSHIP_MEASURES, MEMBERSHIP_SIDES } from './membership-evidence';
export type { BySide, MembershipAttackFigures, MembershipEvidence, MembershipInterval, MembershipMeasure, MembershipSide } from './membership-evidence';
export { describeGuarantee, guaranteeKind } from './guarantee';
export { compareRuntimeEnvelopes, describeRuntimeEnvelope, RUNTIME_ENVELOPE_FIELDS } from './runtime-envelope';
export type { RuntimeEnvelope } from './runtime-envelope';
export { canonicalizeEvent, decodeEvent, encodeEvent, hashEvent } from './canonical';
export { describePrivacyGuarantee } from './privacy-guarantee';
