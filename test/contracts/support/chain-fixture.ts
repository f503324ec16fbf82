import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Wallet, type JsonRpcProvider } from 'ethers';
import { hashLeaf, MerkleTree } from '@lethe/merkle';
import {
  AnchorClient,
  ChainError,
  connectProvider,
  deployAuditAnchor,
  HARDHAT_DEV_PRIVATE_KEYS,
  startHardhatNode,
  type ChainErrorCode,
} from '@lethe/chain';
import { LocalNode, startAnvilNode } from '../../support/anvil-node';

/** The JSON-RPC implementations the chain suites run against: Hardhat's, and Foundry's anvil. */
export type ChainKind = 'hardhat' | 'anvil';
export const CHAIN_KINDS: readonly ChainKind[] = ['hardhat', 'anvil'];

/** A fresh local node of `kind` on a free port of 127.0.0.1. */
export function startLocalNode(kind: ChainKind): Promise<LocalNode> {
  return kind === 'anvil' ? startAnvilNode() : startHardhatNode({ port: 0 });
}

/** A local node (Hardhat's unless told) with one freshly deployed AuditAnchor and clients for three keys, reset between tests. */
export interface ChainFixture {
  kind: ChainKind;
  node: LocalNode;
  provider: JsonRpcProvider;
  admin: Wallet;
  anchorer: Wallet;
  stranger: Wallet;
  /** Connected with the anchorer's key. */
  client: AnchorClient;
  adminClient: AnchorClient;
  strangerClient: AnchorClient;
  /** Puts the chain back to just after deployment (evm_revert to a snapshot). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startChainFixture(kind: ChainKind = 'hardhat'): Promise<ChainFixture> {
  const node = await startLocalNode(kind);
  try {
    const provider = await connectProvider(node.rpcUrl, { pollingIntervalMs: 50 });
    const [admin, anchorer, stranger] = HARDHAT_DEV_PRIVATE_KEYS.slice(0, 3).map((k) => new Wallet(k, provider));
    const adminClient = await deployAuditAnchor(admin, admin.address, anchorer.address);
    const client = await AnchorClient.connect(adminClient.address, anchorer);
    const strangerClient = await AnchorClient.connect(adminClient.address, stranger);
    let snapshot = (await provider.send('evm_snapshot', [])) as string;
    return {
      kind,
      node,
      provider,
      admin,
      anchorer,
      stranger,
      client,
      adminClient,
      strangerClient,
      async reset() {
        const reverted = (await provider.send('evm_revert', [snapshot])) as boolean;
        if (!reverted) throw new Error(`evm_revert ${snapshot} failed`);
        snapshot = (await provider.send('evm_snapshot', [])) as string;
      },
      async stop() {
        provider.destroy();
        await node.stop();
      },
    };
  } catch (err) {
    await node.stop();
    throw err;
  }
}

/**
 * The fixture of a describe block: started before its tests, reset before each, stopped after them. The object
 * is filled in by beforeAll, so read its fields inside tests and hooks only.
 */
export function useChainFixture(): ChainFixture {
  const fixture = {} as ChainFixture;
  beforeAll(async () => {
    Object.assign(fixture, await startChainFixture());
  });
  afterAll(async () => {
    await fixture.stop?.();
  });
  beforeEach(async () => {
    await fixture.reset();
  });
  return fixture;
}

/** A tree of `size` distinct leaves; `variant` changes every leaf from index `shared` on, so two variants share only their first `shared`. */
export function buildTree(size: number, variant = 'a', shared = 0): MerkleTree {
  return MerkleTree.fromLeafHashes(Array.from({ length: size }, (_, i) => hashLeaf(Buffer.from(`${i < shared ? 'a' : variant}:${i}`))));
}

/** Awaits `promise`, expecting a ChainError with `code` (and `errorName` when given); returns it. */
export async function expectChainError(promise: Promise<unknown>, code: ChainErrorCode, errorName?: string): Promise<ChainError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ChainError);
  const error = caught as ChainError;
  expect({ code: error.code, errorName: errorName === undefined ? undefined : error.errorName }).toEqual({ code, errorName });
  return error;
}

/** The shared test vectors folder (../shared/testdata beside the repo), or null when absent. */
export function findTestdata(...parts: string[]): string | null {
  const dir = resolve(__dirname, '..', '..', '..', '..', 'shared', 'testdata', ...parts);
  return existsSync(dir) ? dir : null;
}

/** Every JSON file under `dir`, one level of case folders deep, as [relative path, parsed]. */
export function readVectors<T>(dir: string): [string, T][] {
  const out: [string, T][] = [];
  for (const folder of readdirSync(dir).sort()) {
    const sub = join(dir, folder);
    for (const file of readdirSync(sub).filter((f) => f.endsWith('.json')).sort()) {
      out.push([`${folder}/${file}`, JSON.parse(readFileSync(join(sub, file), 'utf8')) as T]);
    }
  }
  return out;
}

/** base64 (as in the transparency-dev vectors) to bytes. */
export function fromBase64(value: string): Uint8Array {
  return new Uint8Array(Buffer.from(value, 'base64'));
}
