import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { KeyStoreError, MASTER_KEY_VARIABLE, parseMasterKey } from '@lethe/keystore';

export type LogLevel = 'error' | 'warn' | 'log' | 'debug' | 'verbose';
const LOG_LEVELS: LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

/** The service's configuration, read once from the environment at start-up. */
export interface AppConfig {
  port: number;
  host: string;
  dataDir: string;
  /** postgres://...; undefined means: start the embedded PostgreSQL in DATA_DIR. */
  databaseUrl?: string;
  /** Port of the embedded PostgreSQL; 0 picks a free one. */
  embeddedPostgresPort: number;
  logLevel: LogLevel;
  /** Requests per minute per API key (per client address for requests without a valid key); 0 turns the limit off. */
  rateLimitPerMinute: number;
  /**
   * Which proxies in front are trusted to tell the client's address (X-Forwarded-For), as Express's
   * `trust proxy` takes it: false (none: the address is the connection's), a number of hops, or addresses
   * and subnets (`loopback`, `10.0.0.0/8`, ...).
   */
  trustProxy: false | number | string[];
  /** How long an Idempotency-Key's answer is kept (IDEMPOTENCY_TTL_HOURS); expired rows are deleted by a sweep. */
  idempotencyTtlHours: number;
  /**
   * How often (RETENTION_SWEEP_SECONDS, default 3600) the lifecycle sweep runs: suspended forget requests past their
   * deadline are shredded, and expired samples get forget requests (reason `retention`).
   */
  retentionSweepSeconds: number;
  chain: ChainConfig;
  portal: PortalConfig;
  http: HttpTimeouts;
  artifacts: ArtifactConfig;
}

/**
 * Where checkpoints and ONNX files are kept (@lethe/artifacts): `files` under DATA_DIR (the default of the
 * embedded set-up, and of workers sharing one machine or volume), or `postgres` (the default when
 * DATABASE_URL is set: workers on other machines then need only the database).
 */
export interface ArtifactConfig {
  store: 'files' | 'postgres';
  /** ARTIFACT_DATABASE_URL: a database of their own for the postgres store (default: DATABASE_URL, or the embedded one). */
  databaseUrl?: string;
  /** ARTIFACT_VACUUM: what runs after deletions in the postgres store, VACUUM (`plain`) or VACUUM FULL (`full`). */
  vacuum: 'plain' | 'full';
}

/**
 * How long a client may take to send a request. Headers: HEADERS_TIMEOUT_SECONDS. A JSON body (at most
 * 1 MB): BODY_TIMEOUT_SECONDS from when the route starts reading it. An NDJSON upload streams for as long
 * as it is read and committed, up to UPLOAD_TIMEOUT_SECONDS in all, but never falls silent for longer than
 * BODY_TIMEOUT_SECONDS while the service waits for its next bytes.
 */
export interface HttpTimeouts {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  uploadTimeoutMs: number;
}

/** The regulator portal (apps/portal), served at /portal. */
export interface PortalConfig {
  /**
   * The chain JSON-RPC URL auditors' browsers are told to use (PORTAL_RPC_URL): public, so never RPC_URL,
   * which may hold a secret. Defaults to the local Hardhat node when the service runs its own chain.
   */
  rpcUrl?: string;
  /** The built portal (`npm run build:portal`); PORTAL_DIR, apps/portal/dist unless set. */
  dir: string;
}

export interface ChainConfig {
  /** An EVM JSON-RPC URL; undefined means: start a local Hardhat node on chainPort and deploy there. */
  rpcUrl?: string;
  chainPort: number;
  contractAddress?: string;
  /** Hex private key of the anchorer. Never logged. */
  anchorerPrivateKey?: string;
  anchorerKeystore?: string;
  anchorerKeystorePassword?: string;
  anchorEveryEntries: number;
  anchorEverySeconds: number;
  anchorConfirmations: number;
  /** A pending anchor transaction is replaced (same nonce, higher fees) after this long. */
  anchorReplaceAfterSeconds: number;
  /** Most blocks one eth_getLogs call spans when the loop looks for anchor events (hosted RPCs cap it). */
  anchorLogRangeBlocks: number;
  /** The block CONTRACT_ADDRESS was deployed in: event scans go no further back (0 when unknown). */
  contractDeploymentBlock: number;
  /** Set to false to run without any chain (ANCHORING=off). */
  enabled: boolean;
}

/** A bad variable: the process stops with this message, naming it. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function readString(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function readUrl(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = readString(env, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a URL`);
  }
  if (!protocols.includes(url.protocol)) throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  return raw;
}

const PROXY_SUBNET_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/** TRUST_PROXY: unset or `off`, a hop count, or a comma-separated list of addresses, subnets and subnet names. */
function readTrustProxy(env: Env): false | number | string[] {
  const raw = readString(env, 'TRUST_PROXY');
  if (raw === undefined || raw === 'off') return false;
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops < 1 || hops > 10) throw new ConfigError('TRUST_PROXY', `a number of proxies must be between 1 and 10, got ${hops}`);
    return hops;
  }
  if (raw === 'true' || raw === 'on')
    throw new ConfigError('TRUST_PROXY', 'trusting every proxy lets any client choose its address: give the number of proxies in front (e.g. 1) or their addresses');
  const entries = raw.split(',').map((e) => e.trim());
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (!PROXY_SUBNET_NAMES.includes(entry) && (family === 0 || !prefixOk || rest.length > 0))
      throw new ConfigError('TRUST_PROXY', `"${entry}" is not an address, a subnet (address/prefix) or one of ${PROXY_SUBNET_NAMES.join(', ')}`);
  }
  return entries;
}

/**
 * Checks the form of LETHE_MASTER_KEY (64 hex characters or the base64 of 32 bytes) without keeping it: the
 * key store reads it when it is opened, and checks it against its keys (a wrong key stops the start too).
 */
function checkMasterKey(env: Env): void {
  const raw = env[MASTER_KEY_VARIABLE];
  if (raw === undefined || raw.trim() === '') return;
  try {
    parseMasterKey(raw, { variable: MASTER_KEY_VARIABLE });
  } catch (error) {
    if (error instanceof KeyStoreError) throw new ConfigError(MASTER_KEY_VARIABLE, error.message.replace(new RegExp(`^${MASTER_KEY_VARIABLE} `), ''));
    throw error;
  }
}

function readChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = readString(env, name) ?? fallback;
  if (!choices.includes(raw as T)) throw new ConfigError(name, `must be one of ${choices.join(', ')}, got "${raw}"`);
  return raw as T;
}

function readArtifactConfig(env: Env, databaseUrl: string | undefined): ArtifactConfig {
  const artifactDatabaseUrl = readUrl(env, 'ARTIFACT_DATABASE_URL', ['postgres:', 'postgresql:']);
  const store = readChoice(env, 'ARTIFACT_STORE', ['files', 'postgres'], databaseUrl !== undefined || artifactDatabaseUrl !== undefined ? 'postgres' : 'files');
  if (artifactDatabaseUrl !== undefined && store !== 'postgres') throw new ConfigError('ARTIFACT_DATABASE_URL', 'is set, but ARTIFACT_STORE is not "postgres"');
  return { store, vacuum: readChoice(env, 'ARTIFACT_VACUUM', ['plain', 'full'], 'plain'), ...(artifactDatabaseUrl ? { databaseUrl: artifactDatabaseUrl } : {}) };
}

/** Reads and checks every variable; throws ConfigError naming the first bad one. */
export function loadConfig(env: Env = process.env): AppConfig {
  checkMasterKey(env);
  const host = readString(env, 'HOST') ?? '127.0.0.1';
  const logLevel = (readString(env, 'LOG_LEVEL') ?? 'log') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const contractAddress = readString(env, 'CONTRACT_ADDRESS');
  if (contractAddress !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(contractAddress))
    throw new ConfigError('CONTRACT_ADDRESS', 'must be a 0x-prefixed 20-byte hex address');
  const anchorerPrivateKey = readString(env, 'ANCHORER_PRIVATE_KEY');
  if (anchorerPrivateKey !== undefined && !/^(0x)?[0-9a-fA-F]{64}$/.test(anchorerPrivateKey))
    throw new ConfigError('ANCHORER_PRIVATE_KEY', 'must be 32 bytes of hex (the value is not shown)');
  const anchoring = readString(env, 'ANCHORING') ?? 'on';
  if (anchoring !== 'on' && anchoring !== 'off') throw new ConfigError('ANCHORING', 'must be "on" or "off"');
  const rpcUrl = readUrl(env, 'RPC_URL', ['http:', 'https:', 'ws:', 'wss:']);
  const chain: ChainConfig = {
    rpcUrl,
    chainPort: readInteger(env, 'CHAIN_PORT', 8545, 1, 65535),
    contractAddress,
    anchorerPrivateKey,
    anchorerKeystore: readString(env, 'ANCHORER_KEYSTORE'),
    anchorerKeystorePassword: env.ANCHORER_KEYSTORE_PASSWORD,
    anchorEveryEntries: readInteger(env, 'ANCHOR_EVERY_ENTRIES', 1000, 1, 10_000_000),
    anchorEverySeconds: readInteger(env, 'ANCHOR_EVERY_SECONDS', 30, 1, 86_400),
    anchorConfirmations: readInteger(env, 'ANCHOR_CONFIRMATIONS', 1, 1, 1000),
    anchorReplaceAfterSeconds: readInteger(env, 'ANCHOR_REPLACE_AFTER_SECONDS', 120, 5, 86_400),
    anchorLogRangeBlocks: readInteger(env, 'ANCHOR_LOG_RANGE_BLOCKS', 10_000, 1, 1_000_000),
    contractDeploymentBlock: readInteger(env, 'CONTRACT_DEPLOYMENT_BLOCK', 0, 0, Number.MAX_SAFE_INTEGER),
    enabled: anchoring === 'on',
  };
  if (rpcUrl !== undefined && chain.enabled) {
    if (!contractAddress) throw new ConfigError('CONTRACT_ADDRESS', 'is required when RPC_URL is set (deploy with npm run deploy)');
    if (!anchorerPrivateKey && !chain.anchorerKeystore)
      throw new ConfigError('ANCHORER_PRIVATE_KEY', 'or ANCHORER_KEYSTORE is required when RPC_URL is set');
    if (chain.anchorerKeystore && chain.anchorerKeystorePassword === undefined)
      throw new ConfigError('ANCHORER_KEYSTORE_PASSWORD', 'is required with ANCHORER_KEYSTORE');
  }
  // RPC_URL may carry an API key in its path or query, so the portal never shows it: only PORTAL_RPC_URL,
  // or the local Hardhat node (which holds no secret) when the service runs its own chain.
  const portalRpcUrl = readUrl(env, 'PORTAL_RPC_URL', ['http:', 'https:']);
  const portal: PortalConfig = {
    rpcUrl: portalRpcUrl ?? (chain.enabled && rpcUrl === undefined ? `http://127.0.0.1:${chain.chainPort}` : undefined),
    dir: resolve(readString(env, 'PORTAL_DIR') ?? resolve(__dirname, '..', '..', '..', 'portal', 'dist')),
  };
  const databaseUrl = readUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  return {
    port: readInteger(env, 'PORT', 3000, 0, 65535),
    host,
    dataDir: resolve(readString(env, 'DATA_DIR') ?? './data'),
    databaseUrl,
    embeddedPostgresPort: readInteger(env, 'EMBEDDED_PG_PORT', 0, 0, 65535),
    logLevel,
    rateLimitPerMinute: readInteger(env, 'RATE_LIMIT_PER_MINUTE', 6000, 0, 10_000_000),
    trustProxy: readTrustProxy(env),
    idempotencyTtlHours: readInteger(env, 'IDEMPOTENCY_TTL_HOURS', 24, 1, 24 * 365),
    retentionSweepSeconds: readInteger(env, 'RETENTION_SWEEP_SECONDS', 3600, 1, 7 * 86_400),
    chain,
    portal,
    http: {
      headersTimeoutMs: readInteger(env, 'HEADERS_TIMEOUT_SECONDS', 20, 1, 300) * 1000,
      bodyTimeoutMs: readInteger(env, 'BODY_TIMEOUT_SECONDS', 30, 1, 3600) * 1000,
      uploadTimeoutMs: readInteger(env, 'UPLOAD_TIMEOUT_SECONDS', 3600, 300, 86_400) * 1000,
    },
    artifacts: readArtifactConfig(env, databaseUrl),
  };
}
