// The shape of GET /v1/receipts/:commitment, checked field by field: a field of the wrong type is SERVER_ERROR
// naming the field. Values are only parsed here; verify-receipt.ts decides whether they are true.
import { VerifierError } from './errors';
import { describe } from './server-data';

/** An anchor as the service describes it (txHash and blockNumber are checked against the chain). */
export interface ServerReceiptAnchor {
  chainId: string;
  /** Lowercase 0x address. */
  contract: string;
  txHash: string;
  blockNumber: number;
  treeSize: number;
  rootHash: string;
}

export interface ServerEntryReceipt {
  ledgerIndex: number;
  leafHash: string;
  /** The entry's canonical JSON. */
  event: string;
  inclusionProof: { treeSize: number; rootHash: string; proof: string[] };
  anchor: ServerReceiptAnchor | null;
  firstAnchor: ServerReceiptAnchor | null;
}

export interface ServerCommittedReceipt extends ServerEntryReceipt {
  commitmentsRoot: string;
  count: number;
  position: number;
  commitmentProof: string[];
}

export interface ServerForgetReceipt extends ServerEntryReceipt {
  requestId: string;
  state: string;
}

export interface ServerSampleReceipt {
  commitment: string;
  datasetId: string;
  forgotten: boolean;
  committed: ServerCommittedReceipt;
  forgetRequests: ServerForgetReceipt[];
}

const HEX32 = /^[0-9a-f]{64}$/;

export function parseSampleReceipt(value: unknown, route: string): ServerSampleReceipt {
  const fail = (field: string, got: unknown, want: string) =>
    new VerifierError('SERVER_ERROR', `${route}: ${field} is ${describe(got)}, want ${want}`);
  const object = (v: unknown, field: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(field, v, 'a JSON object');
    return v as Record<string, unknown>;
  };
  const count = (o: Record<string, unknown>, name: string, at: string): number => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw fail(`${at}${name}`, v, 'an integer >= 0');
    return v;
  };
  const string = (o: Record<string, unknown>, name: string, at: string, pattern?: RegExp, want = 'a string'): string => {
    const v = o[name];
    if (typeof v !== 'string' || (pattern && !pattern.test(v))) throw fail(`${at}${name}`, v, want);
    return v;
  };
  const hex32 = (o: Record<string, unknown>, name: string, at: string) => string(o, name, at, HEX32, '32 bytes of lowercase hex');
  const hexList = (o: Record<string, unknown>, name: string, at: string): string[] => {
    const v = o[name];
    if (!Array.isArray(v)) throw fail(`${at}${name}`, v, 'an array of hashes');
    v.forEach((h, i) => {
      if (typeof h !== 'string' || !HEX32.test(h)) throw fail(`${at}${name}[${i}]`, h, '32 bytes of lowercase hex');
    });
    return v as string[];
  };
  const anchor = (v: unknown, at: string): ServerReceiptAnchor | null => {
    if (v === null || v === undefined) return null;
    const o = object(v, at);
    return {
      chainId: string(o, 'chainId', `${at}.`, /^[0-9]{1,78}$/, 'a decimal chain id'),
      contract: string(o, 'contract', `${at}.`, /^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed address').toLowerCase(),
      txHash: string(o, 'txHash', `${at}.`, /^0x[0-9a-fA-F]{64}$/, 'a 0x-prefixed transaction hash').toLowerCase(),
      blockNumber: count(o, 'blockNumber', `${at}.`),
      treeSize: count(o, 'treeSize', `${at}.`),
      rootHash: hex32(o, 'rootHash', `${at}.`),
    };
  };
  const entry = (v: unknown, at: string): ServerEntryReceipt => {
    const o = object(v, at);
    const p = object(o.inclusionProof, `${at}.inclusionProof`);
    return {
      ledgerIndex: count(o, 'ledgerIndex', `${at}.`),
      leafHash: hex32(o, 'leafHash', `${at}.`),
      event: string(o, 'event', `${at}.`),
      inclusionProof: {
        treeSize: count(p, 'treeSize', `${at}.inclusionProof.`),
        rootHash: hex32(p, 'rootHash', `${at}.inclusionProof.`),
        proof: hexList(p, 'proof', `${at}.inclusionProof.`),
      },
      anchor: anchor(o.anchor, `${at}.anchor`),
      firstAnchor: anchor(o.firstAnchor, `${at}.firstAnchor`),
    };
  };
  const root = object(value, 'the answer');
  const c = object(root.committed, 'committed');
  const committed: ServerCommittedReceipt = {
    ...entry(c, 'committed'),
    commitmentsRoot: hex32(c, 'commitmentsRoot', 'committed.'),
    count: count(c, 'count', 'committed.'),
    position: count(c, 'position', 'committed.'),
    commitmentProof: hexList(c, 'commitmentProof', 'committed.'),
  };
  if (!Array.isArray(root.forgetRequests)) throw fail('forgetRequests', root.forgetRequests, 'an array');
  const forgetRequests = root.forgetRequests.map((r: unknown, i: number): ServerForgetReceipt => {
    const at = `forgetRequests[${i}]`;
    const o = object(r, at);
    return { ...entry(o, at), requestId: string(o, 'requestId', `${at}.`), state: string(o, 'state', `${at}.`) };
  });
  if (typeof root.forgotten !== 'boolean') throw fail('forgotten', root.forgotten, 'a boolean');
  return {
    commitment: hex32(root, 'commitment', ''),
    datasetId: string(root, 'datasetId', ''),
    forgotten: root.forgotten,
    committed,
    forgetRequests,
  };
}
