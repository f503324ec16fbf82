// The shape of GET /v1/receipts/:commitment, checked field by field (server-data.ts's Fields): a field of the
// wrong type is SERVER_ERROR naming its path. Values are only parsed here; verify-receipt.ts decides whether
// they are true.
import { Fields, readAnchorTransaction, type ServerAnchorTransaction } from './server-data';

/** An anchor as the service describes it (txHash and blockNumber are checked against the chain). */
export type ServerReceiptAnchor = ServerAnchorTransaction;

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

/** A BATCH_LEARNED entry whose batch (the service says) holds the commitment, and its proof in the batch root. */
export interface ServerLearnedReceipt extends ServerEntryReceipt {
  position: number;
  batchProof: string[];
}

export interface ServerSampleReceipt {
  commitment: string;
  datasetId: string;
  forgotten: boolean;
  committed: ServerCommittedReceipt;
  forgetRequests: ServerForgetReceipt[];
  /** Absent from a service older than retirement: read as empty. */
  learnedIn: ServerLearnedReceipt[];
  unlearnedIn: ServerEntryReceipt[];
  retiredVersions: ServerEntryReceipt[];
  checkpointsDeleted: ServerEntryReceipt[];
}

export function parseSampleReceipt(value: unknown, route: string): ServerSampleReceipt {
  const root = new Fields(value, route);
  const c = root.nested('committed');
  const committed: ServerCommittedReceipt = {
    ...readEntryReceipt(c),
    commitmentsRoot: c.hex32('commitmentsRoot'),
    count: c.count('count'),
    position: c.count('position'),
    commitmentProof: c.hex32List('commitmentProof'),
  };
  const forgetRequests = root
    .list('forgetRequests')
    .map((r): ServerForgetReceipt => ({ ...readEntryReceipt(r), requestId: r.string('requestId'), state: r.string('state') }));
  const forgotten = root.boolean('forgotten');
  return {
    commitment: root.hex32('commitment'),
    datasetId: root.string('datasetId'),
    forgotten,
    committed,
    forgetRequests,
    learnedIn: root
      .listOrEmpty('learnedIn')
      .map((l): ServerLearnedReceipt => ({ ...readEntryReceipt(l), position: l.count('position'), batchProof: l.hex32List('batchProof') })),
    unlearnedIn: root.listOrEmpty('unlearnedIn').map(readEntryReceipt),
    retiredVersions: root.listOrEmpty('retiredVersions').map(readEntryReceipt),
    checkpointsDeleted: root.listOrEmpty('checkpointsDeleted').map(readEntryReceipt),
  };
}

/** What every entry of a receipt has: the entry, its inclusion proof, and the anchors the service names. */
function readEntryReceipt(f: Fields): ServerEntryReceipt {
  const proof = f.nested('inclusionProof');
  const anchor = (name: string) => {
    const a = f.nestedOrNull(name);
    return a && readAnchorTransaction(a);
  };
  return {
    ledgerIndex: f.count('ledgerIndex'),
    leafHash: f.hex32('leafHash'),
    event: f.string('event'),
    inclusionProof: { treeSize: proof.count('treeSize'), rootHash: proof.hex32('rootHash'), proof: proof.hex32List('proof') },
    anchor: anchor('anchor'),
    firstAnchor: anchor('firstAnchor'),
  };
}
