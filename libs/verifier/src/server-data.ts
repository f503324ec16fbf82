// Shapes of the service's answers, checked field by field: an auditor trusts none of them, so a field of the
// wrong type or a hash of the wrong length is reported as SERVER_ERROR naming the route and the field.
import { VerifierError } from './errors';

/** The service's latest checkpoint (GET /v1/ledger/checkpoint). */
export interface ServerCheckpoint {
  treeSize: number;
  /** Lowercase hex. */
  rootHash: string;
}

/** One entry (GET /v1/ledger/entries). */
export interface ServerEntry {
  index: number;
  /** Lowercase hex, as the server claims it; the verifier recomputes it. */
  leafHash: string;
  /** The event as canonical JSON: the bytes that were hashed. */
  event: string;
}

/** GET /v1/ledger/proofs/inclusion. */
export interface ServerInclusionProof {
  index: number;
  treeSize: number;
  leafHash: string;
  rootHash: string;
  proof: string[];
}

/** GET /v1/ledger/proofs/consistency. */
export interface ServerConsistencyProof {
  from: number;
  to: number;
  fromRoot: string;
  toRoot: string;
  proof: string[];
}

/** An anchor's transaction as the service describes it (the verifier checks it against the chain). */
export interface ServerAnchorTransaction {
  chainId: string;
  /** Lowercase 0x address. */
  contract: string;
  /** Lowercase 0x hash. */
  txHash: string;
  blockNumber: number;
  treeSize: number;
  rootHash: string;
}

/** A confirmed anchor as the service recorded it (GET /v1/anchors/latest). */
export interface ServerAnchor extends ServerAnchorTransaction {
  confirmations: number | null;
  /** Index of the ANCHORED entry that records it. */
  ledgerIndex: number;
}

const HEX32 = /^[0-9a-f]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const TX_HASH = /^0x[0-9a-fA-F]{64}$/;

/**
 * Reads fields of one JSON object answered by `route`, failing with SERVER_ERROR naming the field by its path
 * in the answer (`prefix.name`: `[1].event`, `committed.inclusionProof.treeSize`).
 */
export class Fields {
  private readonly object: Record<string, unknown>;

  constructor(
    value: unknown,
    private readonly route: string,
    private readonly prefix = '',
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw this.error(prefix || 'the answer', value, 'a JSON object');
    }
    this.object = value as Record<string, unknown>;
  }

  count(name: string): number {
    const value = this.object[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw this.error(name, value, 'an integer >= 0');
    return value;
  }

  hex32(name: string): string {
    return this.matching(name, HEX32, '32 bytes of lowercase hex');
  }

  hex32List(name: string): string[] {
    const value = this.object[name];
    if (!Array.isArray(value)) throw this.error(name, value, 'an array of hashes');
    value.forEach((hash, i) => {
      if (typeof hash !== 'string' || !HEX32.test(hash)) throw this.error(`${name}[${i}]`, hash, '32 bytes of lowercase hex');
    });
    return value as string[];
  }

  string(name: string): string {
    const value = this.object[name];
    if (typeof value !== 'string') throw this.error(name, value, 'a string');
    return value;
  }

  boolean(name: string): boolean {
    const value = this.object[name];
    if (typeof value !== 'boolean') throw this.error(name, value, 'a boolean');
    return value;
  }

  matching(name: string, pattern: RegExp, want: string): string {
    const value = this.object[name];
    if (typeof value !== 'string' || !pattern.test(value)) throw this.error(name, value, want);
    return value;
  }

  countOrNull(name: string): number | null {
    return this.object[name] === null ? null : this.count(name);
  }

  /** The fields of a nested object. */
  nested(name: string): Fields {
    return new Fields(this.object[name], this.route, this.path(name));
  }

  /** The fields of a nested object, or null when it is null or missing. */
  nestedOrNull(name: string): Fields | null {
    const value = this.object[name];
    return value === null || value === undefined ? null : this.nested(name);
  }

  /** The fields of each object of a nested array. */
  list(name: string): Fields[] {
    const value = this.object[name];
    if (!Array.isArray(value)) throw this.error(name, value, 'an array');
    return value.map((item, i) => new Fields(item, this.route, this.path(`${name}[${i}]`)));
  }

  /** As `list`, and an absent field is an empty list (a field a service of an earlier version does not send). */
  listOrEmpty(name: string): Fields[] {
    return this.object[name] === undefined ? [] : this.list(name);
  }

  private path(name: string): string {
    return this.prefix && name !== this.prefix ? `${this.prefix}.${name}` : name;
  }

  private error(name: string, value: unknown, want: string): VerifierError {
    return new VerifierError('SERVER_ERROR', `${this.route}: ${this.path(name)} is ${describe(value)}, want ${want}`);
  }
}

export function parseCheckpoint(value: unknown, route: string): ServerCheckpoint {
  const f = new Fields(value, route);
  return { treeSize: f.count('treeSize'), rootHash: f.hex32('rootHash') };
}

export function parseEntries(value: unknown, route: string): ServerEntry[] {
  if (!Array.isArray(value)) throw new VerifierError('SERVER_ERROR', `${route}: the answer is ${describe(value)}, want an array of entries`);
  return value.map((item, i) => {
    const f = new Fields(item, route, `[${i}]`);
    return { index: f.count('index'), leafHash: f.hex32('leafHash'), event: f.string('event') };
  });
}

export function parseInclusionProof(value: unknown, route: string): ServerInclusionProof {
  const f = new Fields(value, route);
  return {
    index: f.count('index'),
    treeSize: f.count('treeSize'),
    leafHash: f.hex32('leafHash'),
    rootHash: f.hex32('rootHash'),
    proof: f.hex32List('proof'),
  };
}

export function parseConsistencyProof(value: unknown, route: string): ServerConsistencyProof {
  const f = new Fields(value, route);
  return {
    from: f.count('from'),
    to: f.count('to'),
    fromRoot: f.hex32('fromRoot'),
    toRoot: f.hex32('toRoot'),
    proof: f.hex32List('proof'),
  };
}

export function parseAnchor(value: unknown, route: string): ServerAnchor {
  const f = new Fields(value, route);
  return { ...readAnchorTransaction(f), confirmations: f.countOrNull('confirmations'), ledgerIndex: f.count('ledgerIndex') };
}

/** Where an anchor is on the chain and what it holds: the fields every answer describing an anchor has. */
export function readAnchorTransaction(f: Fields): ServerAnchorTransaction {
  return {
    chainId: f.matching('chainId', /^[0-9]{1,78}$/, 'a decimal chain id'),
    contract: f.matching('contract', ADDRESS, 'a 0x-prefixed 20-byte address').toLowerCase(),
    txHash: f.matching('txHash', TX_HASH, 'a 0x-prefixed 32-byte transaction hash').toLowerCase(),
    blockNumber: f.count('blockNumber'),
    treeSize: f.count('treeSize'),
    rootHash: f.hex32('rootHash'),
  };
}

/** A value for an error message: short, quoted, never the whole answer. */
export function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
