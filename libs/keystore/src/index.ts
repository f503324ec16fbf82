// Per-subject data keys for crypto-shredding: a key store behind an interface (files wrapped under a master
// key by default), payload sealing with AES-256-GCM, and keyed lookup hashes of identifiers.
export { KeyStoreError } from './errors';
export type { KeyStoreErrorCode, KeyStoreErrorDetails } from './errors';
export type { CreatedKey, DestroyKeyResult, KeyStore, KeyStoreStats } from './key-store';
export { KEY_PAGE_SUFFIX, MAX_KEYS_PER_PAGE } from './key-page';
export { checkKeyId, createKeyId, isKeyId } from './key-id';
export { MASTER_KEY_VARIABLE, SUB_KEY_LABELS, deriveSubKeys, parseMasterKey } from './master-key';
export type { SubKeys } from './master-key';
export {
  DATA_KEY_FILE_BYTES,
  DATA_KEY_SUFFIX,
  FileKeyStore,
  KEY_CHECK_FILE,
  MASTER_KEY_FILE,
  keyStoreDir,
  readMasterKeyFile,
} from './file-key-store';
export type { FileKeyStoreOptions, MasterKeySource } from './file-key-store';
export { SEAL_OVERHEAD, SEAL_VERSION, openPayload, payloadAssociatedData, sealPayload } from './seal';
export { lookupHash } from './lookup-hash';
export { encodeParts } from './encoding';
export { KEYS_PER_ROW, PostgresKeyStore } from './postgres-key-store';
export type { PostgresKeyStoreOptions } from './postgres-key-store';
