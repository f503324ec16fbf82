// One entry, proven against an anchored root: what a receipt will carry.
import { MerkleError, fromHex, toHex, verifyInclusion } from '@lethe/merkle';
import type { LedgerEvent } from '@lethe/events';
import { AnchorReader, type OnChainCheckpoint } from './anchor-reader';
import { VerifierError } from './errors';
import { findAnchoredContract } from './find-contract';
import { LogClient } from './log-client';
import { rehashEntry } from './rehash-entry';

export interface VerifyInclusionOptions {
  apiUrl: string;
  rpcUrl: string;
  /** AuditAnchor's address; unless given, taken from the log's latest ANCHORED entry. */
  contract?: string;
  /** The entry to prove. */
  index: number;
  /** An anchored tree size to prove it in; the latest on-chain checkpoint unless given. */
  treeSize?: number;
  /**
   * The leaf hash the service acknowledged for this entry (e.g. the `leafHash` a forget request's 202
   * carries): the entry must still be exactly that event, or BAD_ENTRY says it was replaced or removed.
   */
  leafHash?: string;
  /** Per HTTP request and per JSON-RPC call; 30 s unless given. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** An entry proven to be in a tree whose root is on-chain. */
export interface InclusionVerification {
  index: number;
  treeSize: number;
  /** Number of the on-chain checkpoint with that size. */
  anchor: number;
  /** Leaf hash recomputed from the event, and the on-chain root the proof leads to (lowercase hex). */
  leafHash: string;
  rootHash: string;
  proof: string[];
  /** The event, as parsed from its canonical JSON `eventJson`. */
  event: LedgerEvent;
  eventJson: string;
  chainId: string;
  /** Lowercase 0x address of AuditAnchor. */
  contract: string;
}

/**
 * Connects to the service and the chain, then proves entry `index` as checkInclusionAgainstChain does.
 * Throws VerifierError: INVALID_ARGUMENT, NOT_ANCHORED, BAD_ENTRY, BAD_PROOF, SERVER_ERROR, CHAIN_ERROR,
 * NOT_AUDIT_ANCHOR.
 */
export async function verifyInclusionAgainstChain(options: VerifyInclusionOptions): Promise<InclusionVerification> {
  const log = new LogClient(options.apiUrl, { timeoutMs: options.timeoutMs, fetch: options.fetch });
  let contract = options.contract;
  if (contract === undefined) {
    const found = await findAnchoredContract(log);
    if (found.failure) throw new VerifierError(found.failure.code, found.failure.message, { index: found.index });
    contract = found.contract;
  }
  const reader = await AnchorReader.connect(options.rpcUrl, contract, { timeoutMs: options.timeoutMs });
  try {
    return await checkInclusionAgainstChain(log, reader, options.index, options.treeSize, options.leafHash);
  } finally {
    reader.close();
  }
}

/**
 * Proves entry `index` in an anchored tree: reads the entry and re-hashes it (the server's leaf hash is not
 * used; `acknowledgedLeafHash`, when given, must equal the recomputed one), takes the root from the chain (checkpoint of `treeSize`, or the latest), fetches the inclusion
 * proof from the service and verifies it locally against the on-chain root.
 */
export async function checkInclusionAgainstChain(
  log: LogClient,
  reader: AnchorReader,
  index: number,
  treeSize?: number,
  acknowledgedLeafHash?: string,
): Promise<InclusionVerification> {
  if (!Number.isSafeInteger(index) || index < 0)
    throw new VerifierError('INVALID_ARGUMENT', `index must be a safe integer >= 0, got ${index}`);
  if (acknowledgedLeafHash !== undefined && !/^[0-9a-f]{64}$/.test(acknowledgedLeafHash)) {
    throw new VerifierError('INVALID_ARGUMENT', `leafHash must be 32 bytes of lowercase hex, got "${acknowledgedLeafHash.slice(0, 80)}"`);
  }
  const checkpoint = await findAnchoredCheckpoint(reader, index, treeSize);
  const anchor = checkpoint.number;

  const [entry] = await log.getEntries(index, 1);
  if (!entry || entry.index !== index)
    throw new VerifierError('BAD_ENTRY', `entry ${index} is missing: the service did not return it`, { index });
  const rehashed = rehashEntry(entry);
  if (rehashed.failure || !rehashed.event) throw new VerifierError('BAD_ENTRY', rehashed.failure!.message, { index });
  if (acknowledgedLeafHash !== undefined && toHex(rehashed.leafHash) !== acknowledgedLeafHash) {
    throw new VerifierError(
      'BAD_ENTRY',
      `entry ${index} is not the entry the service acknowledged: it hashes to ${toHex(rehashed.leafHash)} (${
        rehashed.event.type
      }), the acknowledgement says ${acknowledgedLeafHash}; the acknowledged entry was replaced or removed`,
      { index },
    );
  }

  const proof = await log.getInclusionProof(index, checkpoint.treeSize);
  try {
    verifyInclusion(
      index,
      checkpoint.treeSize,
      rehashed.leafHash,
      proof.proof.map((h) => fromHex(h)),
      fromHex(checkpoint.rootHash),
    );
  } catch (err) {
    if (!(err instanceof MerkleError)) throw err;
    throw new VerifierError(
      'BAD_PROOF',
      `the inclusion proof of entry ${index} in size ${checkpoint.treeSize} does not lead to the root of checkpoint ${anchor} on chain: ${err.message}`,
      { index, anchor, cause: err },
    );
  }
  return {
    index,
    treeSize: checkpoint.treeSize,
    anchor,
    leafHash: toHex(rehashed.leafHash),
    rootHash: checkpoint.rootHash,
    proof: proof.proof,
    event: rehashed.event,
    eventJson: entry.event,
    chainId: reader.chainId,
    contract: reader.address,
  };
}

async function findAnchoredCheckpoint(reader: AnchorReader, index: number, treeSize?: number): Promise<OnChainCheckpoint> {
  if (treeSize !== undefined) {
    if (!Number.isSafeInteger(treeSize) || treeSize <= index) {
      throw new VerifierError('INVALID_ARGUMENT', `treeSize must be an integer beyond index ${index}, got ${treeSize}`);
    }
    const checkpoint = await reader.findCheckpointByTreeSize(treeSize);
    if (!checkpoint) throw new VerifierError('NOT_ANCHORED', `no checkpoint of size ${treeSize} is on ${reader.address}`, { index });
    return checkpoint;
  }
  const count = await reader.checkpointCount();
  if (count === 0) throw new VerifierError('NOT_ANCHORED', `no checkpoint is anchored on ${reader.address}`, { index });
  const latest = await reader.checkpoint(count - 1);
  if (index >= latest.treeSize) {
    throw new VerifierError(
      'NOT_ANCHORED',
      `entry ${index} is not anchored yet: the latest checkpoint (${latest.number}) covers ${latest.treeSize} entries`,
      {
        index,
        anchor: latest.number,
      },
    );
  }
  return latest;
}
