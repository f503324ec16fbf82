// A sample's receipt, checked on the auditor's side: every entry re-hashed, the commitment proven in its
// batch, every entry proven against a root the chain holds, and the anchoring transactions read from the chain.
import { isAddress } from 'ethers';
import { MerkleError, fromHex, hashLeaf, toHex, verifyInclusion } from '@lethe/merkle';
import type { LedgerEvent } from '@lethe/events';
import { redactRpcUrl } from '@lethe/redact';
import { AnchorReader, type OnChainCheckpoint } from './anchor-reader';
import { VerifierError, type VerificationFailure } from './errors';
import { collector, type Fail } from './failure-list';
import { fetchJson } from './fetch-json';
import { connectAnchorReader } from './find-contract';
import { LogClient } from './log-client';
import { parseSampleReceipt, type ServerEntryReceipt, type ServerReceiptAnchor, type ServerSampleReceipt } from './receipt-data';
import { checkRetirements, type ReceiptRetirement } from './receipt-retirement';
import { rehashEntry } from './rehash-entry';

export const COMMITMENT_PATTERN = /^[0-9a-f]{64}$/;

export interface VerifyReceiptOptions {
  apiUrl: string;
  rpcUrl: string;
  /** The sample commitment: 32 bytes of lowercase hex. */
  commitment: string;
  /** AuditAnchor's address; unless given, taken from the log's latest ANCHORED entry. */
  contract?: string;
  /** Per HTTP request and per JSON-RPC call; 30 s unless given. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Where an entry is anchored: the on-chain checkpoint its proof leads to, and the transaction that put it there. */
export interface ReceiptAnchor {
  /** Checkpoint number on the contract. */
  anchor: number;
  treeSize: number;
  rootHash: string;
  /** Block timestamp (s) of the checkpoint. */
  timestamp: number;
  /** The transaction, when the service named one and the chain confirms it anchored this checkpoint. */
  txHash: string | null;
  blockNumber: number | null;
}

/** One entry of the receipt and what was found about it. */
export interface ReceiptEntryCheck {
  /** The log index the service gives. */
  index: number;
  /** Event type once re-hashed (null when it does not parse). */
  type: string | null;
  /** Leaf hash recomputed from the event. */
  leafHash: string;
  /** Set when the entry's proof verified against a root the chain holds. */
  anchored: ReceiptAnchor | null;
  /** The first anchor covering the entry, as the service names it and the chain confirms (may be anchored). */
  firstAnchored: ReceiptAnchor | null;
  verified: boolean;
}

export interface VerifyReceiptReport {
  ok: boolean;
  commitment: string;
  apiUrl: string;
  /** The JSON-RPC endpoint as it may be shown: scheme, host and port (redactRpcUrl). */
  rpcUrl: string;
  chainId: string | null;
  contract: string | null;
  /** As the service says (not checkable: the data is gone once forgotten). */
  datasetId: string | null;
  forgottenClaimed: boolean | null;
  /** The SAMPLES_COMMITTED entry and the commitment's position in its batch. */
  learned: (ReceiptEntryCheck & { position: number; count: number; commitmentsRoot: string | null }) | null;
  /** FORGET_REQUESTED entries naming the commitment, oldest first. */
  forgetRequests: (ReceiptEntryCheck & { requestId: string; state: string })[];
  /** What learned the commitment, and what was unlearned, retired and deleted for its forget requests. */
  retirement: ReceiptRetirement;
  failures: VerificationFailure[];
}

/**
 * Fetches the receipt of `commitment` (GET /v1/receipts/:commitment) and checks it trusting only the chain:
 * each entry's canonical JSON re-hashes to its leaf hash and says what the receipt says (SAMPLES_COMMITTED of
 * the dataset, FORGET_REQUESTED naming the commitment and the request); the commitment's proof leads to the
 * batch's commitmentsRoot from the re-hashed event; each entry's inclusion proof leads to the root the
 * contract holds at that tree size; each named anchor transaction anchored that checkpoint in that block.
 *
 * Then what forgetting did (checkRetirements): the BATCH_LEARNED entries whose batch holds the commitment
 * (its proof in each batch root) are the model versions that learned it; once the service says it is
 * forgotten, each of those versions, up to the one an UNLEARN_COMPLETED of its request published, must be
 * retired by a VERSION_RETIRED entry (after the request, or earlier for another request: NOT_RETIRED otherwise).
 *
 * Findings are failures in the report (codes BAD_ENTRY, BAD_PROOF, NOT_ANCHORED, INCONSISTENT_WITH_CHAIN,
 * SERVER_ERROR, CHAIN_ERROR, NOT_AUDIT_ANCHOR, NOT_RETIRED); only a malformed argument throws (INVALID_ARGUMENT).
 */
export async function verifyReceipt(options: VerifyReceiptOptions): Promise<VerifyReceiptReport> {
  if (typeof options.commitment !== 'string' || !COMMITMENT_PATTERN.test(options.commitment)) {
    throw new VerifierError(
      'INVALID_ARGUMENT',
      `commitment ${JSON.stringify(options.commitment)} is not 32 bytes of lowercase hex (64 characters)`,
    );
  }
  const log = new LogClient(options.apiUrl, { timeoutMs: options.timeoutMs, fetch: options.fetch });
  if (options.contract !== undefined && !(isAddress(options.contract) && options.contract.startsWith('0x'))) {
    throw new VerifierError('INVALID_ARGUMENT', `contract ${JSON.stringify(options.contract)} is not a 0x-prefixed 20-byte address`);
  }
  const report: VerifyReceiptReport = {
    ok: false,
    commitment: options.commitment,
    apiUrl: log.apiUrl,
    rpcUrl: redactRpcUrl(options.rpcUrl),
    chainId: null,
    contract: null,
    datasetId: null,
    forgottenClaimed: null,
    learned: null,
    forgetRequests: [],
    retirement: { learnedIn: [], unlearnedIn: [], retiredVersions: [], checkpointsDeleted: [], models: [] },
    failures: [],
  };
  let reader: AnchorReader | undefined;
  // The chain connection (finding the contract, probing it) is made while the receipt is fetched.
  const connection = { failures: [] as VerificationFailure[], chainId: null as string | null, contract: null as string | null };
  const connecting = connectAnchorReader(log, options, connection);
  connecting.catch(() => undefined); // awaited below, or closed in `finally`
  try {
    const route = `GET /v1/receipts/${options.commitment}`;
    const receipt = parseSampleReceipt(
      await fetchJson(log.apiUrl, `v1/receipts/${options.commitment}`, route, { timeoutMs: options.timeoutMs, fetch: options.fetch }),
      route,
    );
    if (receipt.commitment !== options.commitment) {
      report.failures.push({ code: 'SERVER_ERROR', message: `${route}: answered the receipt of ${receipt.commitment}` });
    }
    report.datasetId = receipt.datasetId;
    report.forgottenClaimed = receipt.forgotten;
    try {
      reader = await connecting;
    } finally {
      report.failures.push(...connection.failures);
      report.chainId = connection.chainId;
      report.contract = connection.contract;
    }
    await checkReceipt(receipt, reader, report);
  } catch (err) {
    if (!(err instanceof VerifierError) || err.code === 'INVALID_ARGUMENT') throw err;
    report.failures.push(err.toFailure());
  } finally {
    if (reader) reader.close();
    else
      void connecting.then(
        (r) => r.close(),
        () => undefined,
      );
  }
  report.ok = report.failures.length === 0;
  return report;
}

async function checkReceipt(receipt: ServerSampleReceipt, reader: AnchorReader, report: VerifyReceiptReport): Promise<void> {
  // Every entry is proven at once (their chain reads are independent); each collects its own failures, which
  // are reported in the receipt's order whatever order the answers come in.
  const committed = receipt.committed;
  const lists = [receipt.learnedIn, receipt.unlearnedIn, receipt.retiredVersions, receipt.checkpointsDeleted];
  const [learned, ...checked] = await Promise.all(
    [committed, ...receipt.forgetRequests, ...lists.flat()].map((entry) => checkEntry(entry, reader)),
  );
  const requests = checked.splice(0, receipt.forgetRequests.length);
  const [learnedIn, unlearnedIn, retiredVersions, checkpointsDeleted] = lists.map((list) => checked.splice(0, list.length));
  const fail = collector(report.failures);
  report.failures.push(...learned.failures);
  let commitmentsRoot: string | null = null;
  if (learned.event) {
    const index = committed.ledgerIndex;
    if (learned.event.type !== 'SAMPLES_COMMITTED') {
      fail(
        'BAD_ENTRY',
        `entry ${index}, given as where the commitment was committed, is ${learned.event.type}, not SAMPLES_COMMITTED`,
        index,
      );
    } else {
      const event = learned.event;
      commitmentsRoot = event.commitmentsRoot;
      if (event.datasetId !== receipt.datasetId) {
        fail('BAD_ENTRY', `entry ${index} commits samples of dataset ${event.datasetId}, the receipt says ${receipt.datasetId}`, index);
      }
      try {
        // Position and size from the receipt, root from the re-hashed entry: a wrong position or count fails too.
        verifyInclusion(
          committed.position,
          event.count,
          hashLeaf(fromHex(receipt.commitment)),
          committed.commitmentProof.map((h) => fromHex(h)),
          fromHex(event.commitmentsRoot),
        );
      } catch (err) {
        if (!(err instanceof MerkleError)) throw err;
        fail(
          'BAD_PROOF',
          `the proof of commitment ${receipt.commitment} at position ${committed.position} does not lead to the commitmentsRoot of entry ${index}: ${err.message}`,
          index,
        );
      }
    }
  }
  report.learned = {
    ...learned.check,
    position: committed.position,
    count: committed.count,
    commitmentsRoot,
    verified: learned.check.verified && report.failures.every((f) => f.index !== committed.ledgerIndex),
  };

  receipt.forgetRequests.forEach((request, i) => {
    const checked = requests[i];
    const before = report.failures.length;
    report.failures.push(...checked.failures);
    const index = request.ledgerIndex;
    if (checked.event) {
      if (checked.event.type !== 'FORGET_REQUESTED') {
        fail(
          'BAD_ENTRY',
          `entry ${index}, given as forget request ${request.requestId}, is ${checked.event.type}, not FORGET_REQUESTED`,
          index,
        );
      } else if (!checked.event.commitments.includes(receipt.commitment)) {
        fail(
          'BAD_ENTRY',
          `entry ${index} (FORGET_REQUESTED ${checked.event.requestId}) does not name commitment ${receipt.commitment}`,
          index,
        );
      } else if (checked.event.requestId !== request.requestId) {
        fail('BAD_ENTRY', `entry ${index} is forget request ${checked.event.requestId}, the receipt says ${request.requestId}`, index);
      }
    }
    report.forgetRequests.push({
      ...checked.check,
      requestId: request.requestId,
      state: request.state,
      verified: checked.check.verified && report.failures.length === before,
    });
  });

  report.retirement = checkRetirements(receipt, { learnedIn, unlearnedIn, retiredVersions, checkpointsDeleted }, report.forgetRequests, report.failures);
}


/** An entry of the receipt re-hashed and proven against the chain, with what was found wrong with it. */
export interface CheckedEntry {
  check: ReceiptEntryCheck;
  event: LedgerEvent | null;
  failures: VerificationFailure[];
}


/**
 * Re-hashes one entry of the receipt and proves it against the chain's root at the proof's tree size; the
 * anchor transactions the receipt names are checked at the same time.
 */
async function checkEntry(receipt: ServerEntryReceipt, reader: AnchorReader): Promise<CheckedEntry> {
  const index = receipt.ledgerIndex;
  const failures: VerificationFailure[] = [];
  const fail = collector(failures);
  const rehashed = rehashEntry({ index, leafHash: receipt.leafHash, event: receipt.event });
  const check: ReceiptEntryCheck = {
    index,
    type: rehashed.event?.type ?? null,
    leafHash: toHex(rehashed.leafHash),
    anchored: null,
    firstAnchored: null,
    verified: false,
  };
  if (rehashed.failure) {
    fail('BAD_ENTRY', rehashed.failure.message, index);
    return { check, event: null, failures };
  }
  const { treeSize, rootHash } = receipt.inclusionProof;
  if (index >= treeSize) {
    fail('BAD_PROOF', `the inclusion proof of entry ${index} is for size ${treeSize}, which does not contain it`, index);
    return { check, event: rehashed.event, failures };
  }
  const anchorFailures: VerificationFailure[] = [];
  const firstFailures: VerificationFailure[] = [];
  const [checkpoint, anchorTx, first] = await Promise.all([
    reader.findCheckpointByTreeSize(treeSize),
    receipt.anchor ? checkAnchorTransaction(receipt.anchor, reader, index, collector(anchorFailures)) : null,
    receipt.firstAnchor ? checkFirstAnchor(receipt.firstAnchor, reader, index, collector(firstFailures)) : null,
  ]);
  if (!checkpoint) {
    fail(
      'NOT_ANCHORED',
      `the inclusion proof of entry ${index} is for size ${treeSize} (root ${rootHash}), but ${reader.address} holds no checkpoint of that size`,
      index,
    );
    return { check, event: rehashed.event, failures };
  }
  const proven = proveInclusion(receipt, rehashed.leafHash, checkpoint, fail);
  if (proven) {
    check.anchored = {
      anchor: checkpoint.number,
      treeSize,
      rootHash: checkpoint.rootHash,
      timestamp: checkpoint.timestamp,
      txHash: null,
      blockNumber: null,
    };
    if (receipt.anchor) {
      failures.push(...anchorFailures);
      if (anchorTx) nameAnchorTransaction(check.anchored, receipt.anchor, anchorTx, index, fail);
    }
  }
  check.verified = proven;
  failures.push(...firstFailures);
  check.firstAnchored = first;
  return { check, event: rehashed.event, failures };
}

/**
 * The receipt's root at the proof's size is the checkpoint's, and its inclusion proof leads from the entry's
 * leaf hash to the checkpoint's root. False when the proof fails (a root that differs is reported as well).
 */
function proveInclusion(receipt: ServerEntryReceipt, leafHash: Uint8Array, checkpoint: OnChainCheckpoint, fail: Fail): boolean {
  const index = receipt.ledgerIndex;
  const { treeSize, rootHash, proof } = receipt.inclusionProof;
  const anchor = checkpoint.number;
  if (rootHash !== checkpoint.rootHash) {
    fail(
      'INCONSISTENT_WITH_CHAIN',
      `the receipt of entry ${index} gives root ${rootHash} at size ${treeSize}, but checkpoint ${anchor} on chain has ${checkpoint.rootHash}`,
      index,
      anchor,
    );
  }
  try {
    verifyInclusion(
      index,
      treeSize,
      leafHash,
      proof.map((h) => fromHex(h)),
      fromHex(checkpoint.rootHash),
    );
    return true;
  } catch (err) {
    if (!(err instanceof MerkleError)) throw err;
    fail(
      'BAD_PROOF',
      `the inclusion proof of entry ${index} in size ${treeSize} does not lead to the root of checkpoint ${anchor} on chain: ${err.message}`,
      index,
      anchor,
    );
    return false;
  }
}

/** The anchor transaction the receipt names, confirmed by the chain, goes on the proven anchor if it is of the proof's size. */
function nameAnchorTransaction(
  anchored: ReceiptAnchor,
  named: ServerReceiptAnchor,
  tx: { txHash: string; blockNumber: number },
  index: number,
  fail: Fail,
): void {
  if (named.treeSize === anchored.treeSize) {
    anchored.txHash = tx.txHash;
    anchored.blockNumber = tx.blockNumber;
  } else {
    fail(
      'BAD_PROOF',
      `the receipt of entry ${index} names the anchor of size ${named.treeSize}, but its proof is for size ${anchored.treeSize}`,
      index,
      anchored.anchor,
    );
  }
}

/** The anchor the receipt names as the first covering the entry: a mined anchor transaction of that size, and its checkpoint. */
async function checkFirstAnchor(
  first: ServerReceiptAnchor,
  reader: AnchorReader,
  index: number,
  fail: Fail,
): Promise<ReceiptAnchor | null> {
  if (first.treeSize <= index) {
    fail(
      'NOT_ANCHORED',
      `the receipt names the anchor of size ${first.treeSize} as the first covering entry ${index}, which it does not cover`,
      index,
    );
    return null;
  }
  const [tx, onChain] = await Promise.all([
    checkAnchorTransaction(first, reader, index, fail),
    reader.findCheckpointByTreeSize(first.treeSize),
  ]);
  if (!tx || !onChain) return null;
  return {
    anchor: onChain.number,
    treeSize: onChain.treeSize,
    rootHash: onChain.rootHash,
    timestamp: onChain.timestamp,
    txHash: tx.txHash,
    blockNumber: tx.blockNumber,
  };
}

/** The anchor the service names is a mined transaction of this contract that anchored that size and root. */
async function checkAnchorTransaction(
  named: ServerReceiptAnchor,
  reader: AnchorReader,
  index: number,
  fail: Fail,
): Promise<{ txHash: string; blockNumber: number } | null> {
  const what = `the anchor of entry ${index} (size ${named.treeSize}, tx ${named.txHash})`;
  if (named.chainId !== reader.chainId || named.contract !== reader.address) {
    fail(
      'NOT_ANCHORED',
      `${what} is on ${named.contract} of chain ${named.chainId}, not ${reader.address} of chain ${reader.chainId}`,
      index,
    );
    return null;
  }
  const tx = await reader.getAnchorTransaction(named.txHash);
  if (!tx) fail('NOT_ANCHORED', `${what}: the transaction is not on chain ${reader.chainId}`, index);
  else if (!tx.succeeded) fail('NOT_ANCHORED', `${what}: the transaction reverted`, index);
  else if (tx.blockNumber !== named.blockNumber)
    fail('NOT_ANCHORED', `${what}: the transaction is in block ${tx.blockNumber}, the receipt says ${named.blockNumber}`, index);
  else if (!tx.anchored.some((a) => a.treeSize === named.treeSize && a.rootHash === named.rootHash)) {
    fail('NOT_ANCHORED', `${what}: the transaction did not anchor size ${named.treeSize} with root ${named.rootHash}`, index);
  } else return { txHash: tx.txHash, blockNumber: tx.blockNumber };
  return null;
}
