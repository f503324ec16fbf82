// A model file, traced through the log: which MODEL_PUBLISHED names its SHA-256, which batches that version
// learned, which forget requests it reflects; the whole log re-hashed and its root compared with the chain's.
import { isAddress } from 'ethers';
import { CompactRange, toHex } from '@lethe/merkle';
import type {
  BatchLearned,
  CheckpointsDeleted,
  ForgetRequested,
  LedgerEvent,
  ModelPublished,
  PrivacyGuarantee,
  RuntimeEnvelope,
  UnlearnCompleted,
  UnlearnGuarantee,
  VersionRetired,
} from '@lethe/events';
import { redactRpcUrl } from '@lethe/redact';
import { AnchorReader, type OnChainCheckpoint } from './anchor-reader';
import { VerifierError, type VerificationFailure } from './errors';
import { connectAnchorReader } from './find-contract';
import { LogClient, MAX_ENTRIES_PER_PAGE } from './log-client';
import { rehashEntry } from './rehash-entry';
import { checkInclusionAgainstChain } from './verify-inclusion';

const HEX32 = /^[0-9a-f]{64}$/;

export interface VerifyModelOptions {
  apiUrl: string;
  rpcUrl: string;
  /** AuditAnchor's address; unless given, taken from the log's latest ANCHORED entry. */
  contract?: string;
  /** The model file's SHA-256 (lowercase hex)… */
  onnxSha256?: string;
  /** …or the model and version to describe. */
  modelId?: string;
  modelVersion?: number;
  /** Called after each page of entries with how many are read and how many there are. */
  onProgress?: (read: number, total: number) => void;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** A BATCH_LEARNED entry: the ordered batch a shard's slice learned. */
export interface LearnedBatch {
  index: number;
  /** The version that (re)trained the slice; earlier than the model's when forgetting reused it. */
  modelVersion: number;
  shard: number;
  slice: number;
  batchRoot: string;
  count: number;
  checkpoint: string;
  hyperparamsHash: string;
}

export interface ReflectedForgetRequest {
  requestId: string;
  /** Index of its FORGET_REQUESTED entry, null when the log has none. */
  index: number | null;
  /** Commitments it names. */
  commitments: number;
  /** The UNLEARN_COMPLETED entry that served it for this model, and that entry's guarantee (null: from before guarantees, exact). */
  unlearnIndex: number;
  unlearnVersion: number;
  guarantee: UnlearnGuarantee | null;
}

/** The VERSION_RETIRED entry of a version: why its file is gone and it is no longer served. */
export interface RetiredVersion {
  index: number;
  forgetRequestIds: string[];
}

/** A CHECKPOINTS_DELETED entry that deleted checkpoints of a version's lineage. */
export interface DeletedCheckpoints {
  index: number;
  /** The deleted checkpoints that this version's batches saved. */
  checkpoints: string[];
  forgetRequestIds: string[];
}

export interface PublishedModelVersion {
  modelId: string;
  modelVersion: number;
  onnxSha256: string;
  manifestHash: string;
  metrics: ModelPublished['metrics'];
  /** The runtime envelope it was trained under, as its MODEL_PUBLISHED entry records it (null in entries from before it was recorded). */
  runtime: RuntimeEnvelope | null;
  /** A DP-SGD version's guarantee as its MODEL_PUBLISHED entry records it; null for a version trained without one. */
  privacy: PrivacyGuarantee | null;
  /** Index of the MODEL_PUBLISHED entry, and the on-chain checkpoint it was proven in. */
  index: number;
  anchor: { anchor: number; treeSize: number; rootHash: string } | null;
  /** Per shard and slice, the latest BATCH_LEARNED at or before this version: what the published weights learned. */
  batches: LearnedBatch[];
  /** Hyperparameter hashes of those batches (one, unless the log is odd). */
  hyperparamsHashes: string[];
  /** UNLEARN_COMPLETED entries that led to this version (versions 2..V), oldest first. */
  unlearned: { index: number; modelVersion: number; requestIds: string[]; oldOnnxSha256: string; newOnnxSha256: string; guarantee: UnlearnGuarantee | null }[];
  forgetRequests: ReflectedForgetRequest[];
  /** Set when the version is retired: it learned samples of those forget requests, its file is deleted. */
  retired: RetiredVersion | null;
  /** Entries that deleted checkpoints of its lineage (once no live version needed them). */
  checkpointsDeleted: DeletedCheckpoints[];
}

export interface VerifyModelReport {
  ok: boolean;
  /** False when no MODEL_PUBLISHED entry matches. */
  found: boolean;
  apiUrl: string;
  /** The JSON-RPC endpoint as it may be shown: scheme, host and port (redactRpcUrl). */
  rpcUrl: string;
  chainId: string | null;
  contract: string | null;
  /** Entries read (the service's checkpoint size), and the on-chain checkpoint their root was compared with. */
  treeSize: number | null;
  anchoredTreeSize: number | null;
  models: PublishedModelVersion[];
  failures: VerificationFailure[];
}

interface Indexed<E extends LedgerEvent> {
  index: number;
  event: E;
  /** The canonical JSON read in the scan. */
  json: string;
}

/**
 * Reads the whole log, re-hashes every entry, and compares the root at the latest on-chain checkpoint's
 * size with the chain's (so that no entry of that prefix can be hidden or changed); then finds the
 * MODEL_PUBLISHED entries of the file hash (or of the model and version), proves each against the chain,
 * and lists the batches and forget requests that version reflects from the BATCH_LEARNED,
 * UNLEARN_COMPLETED and FORGET_REQUESTED entries, and, for a retired version, the VERSION_RETIRED entry
 * (why its file is gone) and the CHECKPOINTS_DELETED entries of its lineage. `found` is false when no
 * entry matches; a retired version is still found (its file, in an auditor's hands, is what it was).
 *
 * Findings are failures; only a malformed argument throws (INVALID_ARGUMENT).
 */
export async function verifyModel(options: VerifyModelOptions): Promise<VerifyModelReport> {
  const byHash = options.onnxSha256 !== undefined;
  if (byHash && !HEX32.test(options.onnxSha256!)) {
    throw new VerifierError('INVALID_ARGUMENT', `onnxSha256 ${JSON.stringify(options.onnxSha256)} is not 32 bytes of lowercase hex`);
  }
  if (!byHash && (typeof options.modelId !== 'string' || !Number.isSafeInteger(options.modelVersion) || options.modelVersion! < 1)) {
    throw new VerifierError('INVALID_ARGUMENT', 'give onnxSha256, or modelId and a modelVersion >= 1');
  }
  if (options.contract !== undefined && !(isAddress(options.contract) && options.contract.startsWith('0x'))) {
    throw new VerifierError('INVALID_ARGUMENT', `contract ${JSON.stringify(options.contract)} is not a 0x-prefixed 20-byte address`);
  }
  const log = new LogClient(options.apiUrl, { timeoutMs: options.timeoutMs, fetch: options.fetch });
  const report: VerifyModelReport = {
    ok: false,
    found: false,
    apiUrl: log.apiUrl,
    rpcUrl: redactRpcUrl(options.rpcUrl),
    chainId: null,
    contract: null,
    treeSize: null,
    anchoredTreeSize: null,
    models: [],
    failures: [],
  };
  let reader: AnchorReader | undefined;
  try {
    reader = await connectAnchorReader(log, options, report);
    const count = await reader.checkpointCount();
    const latest = count > 0 ? await reader.checkpoint(count - 1) : null;
    if (!latest) throw new VerifierError('NOT_ANCHORED', `no checkpoint is anchored on ${reader.address}`);
    report.anchoredTreeSize = latest.treeSize;
    const scan = await scanLog(log, latest, report, options.onProgress);
    const matches = scan.published.filter(({ event }) =>
      byHash ? event.onnxSha256 === options.onnxSha256 : event.modelId === options.modelId && event.modelVersion === options.modelVersion,
    );
    report.found = matches.length > 0;
    for (const match of matches) report.models.push(await describeVersion(match, scan, log, reader, latest, report.failures));
  } catch (err) {
    if (!(err instanceof VerifierError) || err.code === 'INVALID_ARGUMENT') throw err;
    report.failures.push(err.toFailure());
  } finally {
    reader?.close();
  }
  report.ok = report.found && report.failures.length === 0;
  return report;
}

interface Scan {
  published: Indexed<ModelPublished>[];
  batches: Indexed<BatchLearned>[];
  unlearned: Indexed<UnlearnCompleted>[];
  forgetRequests: Map<string, Indexed<ForgetRequested>>;
  retired: Indexed<VersionRetired>[];
  deleted: Indexed<CheckpointsDeleted>[];
}

/** Every entry re-hashed; the root at the latest checkpoint's size compared with the chain's. */
async function scanLog(log: LogClient, latest: OnChainCheckpoint, report: VerifyModelReport, onProgress?: (read: number, total: number) => void): Promise<Scan> {
  const head = await log.getCheckpoint();
  report.treeSize = head.treeSize;
  const scan: Scan = { published: [], batches: [], unlearned: [], forgetRequests: new Map(), retired: [], deleted: [] };
  if (head.treeSize < latest.treeSize) {
    throw new VerifierError('INCONSISTENT_WITH_CHAIN', `checkpoint ${latest.number} on chain anchors ${latest.treeSize} entries, but the service's log has only ${head.treeSize}`, {
      anchor: latest.number,
    });
  }
  const range = CompactRange.empty();
  for (let start = 0; start < head.treeSize; start += MAX_ENTRIES_PER_PAGE) {
    const limit = Math.min(MAX_ENTRIES_PER_PAGE, head.treeSize - start);
    // Each entry names its index and is checked at it; a page's order says nothing more, so it is not
    // held against the service (which at the time of writing sorts a page by idx::text: 0, 1, 10, 11, ..., 2).
    const page = (await log.getEntries(start, limit)).sort((a, b) => a.index - b.index);
    for (let k = 0; k < limit; k++) {
      const index = start + k;
      const entry = page[k];
      if (!entry || entry.index !== index) {
        throw new VerifierError('BAD_ENTRY', `entry ${index} is missing: the service's checkpoint has ${head.treeSize} entries`, { index });
      }
      const rehashed = rehashEntry(entry);
      if (rehashed.failure) report.failures.push(rehashed.failure);
      range.append([rehashed.leafHash]);
      if (index + 1 === latest.treeSize) {
        const root = toHex(range.root());
        if (root !== latest.rootHash) {
          throw new VerifierError(
            'INCONSISTENT_WITH_CHAIN',
            `checkpoint ${latest.number} on chain has root ${latest.rootHash} at size ${latest.treeSize}, but the service's first ${latest.treeSize} entries hash to ${root}`,
            { anchor: latest.number },
          );
        }
      }
      const event = rehashed.failure ? null : rehashed.event;
      const json = entry.event;
      if (event?.type === 'MODEL_PUBLISHED') scan.published.push({ index, event, json });
      else if (event?.type === 'BATCH_LEARNED') scan.batches.push({ index, event, json });
      else if (event?.type === 'UNLEARN_COMPLETED') scan.unlearned.push({ index, event, json });
      else if (event?.type === 'FORGET_REQUESTED' && !scan.forgetRequests.has(event.requestId)) scan.forgetRequests.set(event.requestId, { index, event, json });
      else if (event?.type === 'VERSION_RETIRED') scan.retired.push({ index, event, json });
      else if (event?.type === 'CHECKPOINTS_DELETED') scan.deleted.push({ index, event, json });
    }
    onProgress?.(start + limit, head.treeSize);
  }
  return scan;
}

async function describeVersion(
  match: Indexed<ModelPublished>,
  scan: Scan,
  log: LogClient,
  reader: AnchorReader,
  latest: OnChainCheckpoint,
  failures: VerificationFailure[],
): Promise<PublishedModelVersion> {
  const { index, event } = match;
  const { modelId, modelVersion } = event;
  let anchor: PublishedModelVersion['anchor'] = null;
  try {
    const proven = await checkInclusionAgainstChain(log, reader, index, latest.treeSize > index ? latest.treeSize : undefined);
    anchor = { anchor: proven.anchor, treeSize: proven.treeSize, rootHash: proven.rootHash };
    if (proven.eventJson !== match.json) {
      failures.push({ code: 'BAD_ENTRY', message: `the service answered entry ${index} differently when asked twice`, index });
    }
  } catch (err) {
    if (!(err instanceof VerifierError) || err.code === 'INVALID_ARGUMENT') throw err;
    failures.push(err.toFailure());
  }

  // What the published weights learned: per (shard, slice), the last BATCH_LEARNED of this model at or
  // before this version (forgetting retrains slices from the first affected one and reuses the rest).
  const latestBatch = new Map<string, Indexed<BatchLearned>>();
  for (const b of scan.batches) {
    if (b.event.modelId !== modelId || b.event.modelVersion > modelVersion || b.index > index) continue;
    latestBatch.set(`${b.event.shard}/${b.event.slice}`, b);
  }
  const batches: LearnedBatch[] = [...latestBatch.values()]
    .map(({ index: i, event: b }) => ({
      index: i,
      modelVersion: b.modelVersion,
      shard: b.shard,
      slice: b.slice,
      batchRoot: b.batchRoot,
      count: b.count,
      checkpoint: b.checkpoint,
      hyperparamsHash: b.hyperparamsHash,
    }))
    .sort((a, b) => a.shard - b.shard || a.slice - b.slice);
  if (batches.length === 0) failures.push({ code: 'BAD_ENTRY', message: `the log has no BATCH_LEARNED entry of model ${modelId} up to version ${modelVersion}`, index });

  const unlearned = scan.unlearned
    .filter((u) => u.event.modelId === modelId && u.event.modelVersion <= modelVersion)
    .map(({ index: i, event: u }) => ({
      index: i,
      modelVersion: u.modelVersion,
      requestIds: u.requestIds,
      oldOnnxSha256: u.oldOnnxSha256,
      newOnnxSha256: u.newOnnxSha256,
      guarantee: u.guarantee ?? null,
    }));
  const thisStep = unlearned.find((u) => u.modelVersion === modelVersion);
  if (modelVersion > 1 && !thisStep) {
    failures.push({ code: 'BAD_ENTRY', message: `version ${modelVersion} of model ${modelId} has no UNLEARN_COMPLETED entry that leads to it`, index });
  } else if (thisStep && thisStep.newOnnxSha256 !== event.onnxSha256) {
    failures.push({ code: 'BAD_ENTRY', message: `entry ${thisStep.index} (UNLEARN_COMPLETED) leads to ${thisStep.newOnnxSha256}, but version ${modelVersion} is ${event.onnxSha256}`, index: thisStep.index });
  }
  const forgetRequests: ReflectedForgetRequest[] = [];
  for (const u of unlearned) {
    for (const requestId of u.requestIds) {
      const requested = scan.forgetRequests.get(requestId);
      if (!requested) failures.push({ code: 'BAD_ENTRY', message: `entry ${u.index} (UNLEARN_COMPLETED) serves forget request ${requestId}, which no FORGET_REQUESTED entry names`, index: u.index });
      forgetRequests.push({
        requestId,
        index: requested?.index ?? null,
        commitments: requested?.event.commitments.length ?? 0,
        unlearnIndex: u.index,
        unlearnVersion: u.modelVersion,
        guarantee: u.guarantee,
      });
    }
  }
  const retired = scan.retired.find((r) => r.event.modelId === modelId && r.event.modelVersion === modelVersion);
  const lineage = new Set(batches.map((b) => b.checkpoint));
  const checkpointsDeleted = scan.deleted
    .map((d) => ({ index: d.index, checkpoints: d.event.checkpoints.filter((c) => lineage.has(c)), forgetRequestIds: d.event.forgetRequestIds }))
    .filter((d) => d.checkpoints.length > 0);
  return {
    modelId,
    modelVersion,
    onnxSha256: event.onnxSha256,
    manifestHash: event.manifestHash,
    metrics: event.metrics,
    runtime: event.runtime ?? null,
    privacy: event.privacy ?? null,
    index,
    anchor,
    batches,
    hyperparamsHashes: [...new Set(batches.map((b) => b.hyperparamsHash))],
    unlearned,
    forgetRequests,
    retired: retired ? { index: retired.index, forgetRequestIds: retired.event.forgetRequestIds } : null,
    checkpointsDeleted,
  };
}
