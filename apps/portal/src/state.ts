// The portal's state: the settings shown (API, RPC URL, contract), what was loaded, and the last verification.
import type { VerificationWarning } from '@lethe/verifier';
import type { Check } from './checks';
import type { ChainView, PortalConfig, ServerAnchorRow, ShardTasks, Snapshot } from './data';

export interface Verification {
  ok: boolean;
  checks: Check[];
  /** What verified but is flagged: a RECOVERY per contract the verified one succeeds. */
  warnings: VerificationWarning[];
  startedAt: number;
  ms: number;
  treeSize: number | null;
  rootHash: string | null;
}

export interface PortalState {
  /** The service: the origin the portal was served from. */
  apiUrl: string;
  config: PortalConfig | null;
  /** As shown and editable; start from the service's suggestion. */
  rpcUrl: string;
  contract: string;
  snapshot: Snapshot | null;
  /** Whether the snapshot is the one the last verification read. */
  snapshotVerified: boolean;
  loadError: string | null;
  /** GET /v1/portal/config failed (the settings then start blank). */
  configError: string | null;
  anchors: ServerAnchorRow[] | null;
  anchorsError: string | null;
  chain: ChainView | null;
  chainError: string | null;
  verification: Verification | null;
  verifying: boolean;
  deadlineDays: number;
  /** Which worker trained which shard, read with the key typed on the models page (kept in memory, never stored). */
  shardTasks: ShardTasks | null;
  shardTasksError: string | null;
  loadingShardTasks: boolean;
}

export function initialState(apiUrl: string): PortalState {
  return {
    apiUrl,
    config: null,
    rpcUrl: '',
    contract: '',
    snapshot: null,
    snapshotVerified: false,
    loadError: null,
    configError: null,
    anchors: null,
    anchorsError: null,
    chain: null,
    chainError: null,
    verification: null,
    verifying: false,
    deadlineDays: 30,
    shardTasks: null,
    shardTasksError: null,
    loadingShardTasks: false,
  };
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return (err as { code?: string }).code ? `${(err as { code?: string }).code}: ${err.message}` : err.message;
  return String(err);
}
