// The anchoring engine of @lethe/chain on its own, against a local chain (Hardhat, and anvil as a second JSON-RPC
// implementation): it needs nothing but its ports.
// Here the log is libs/merkle's in-memory tree and the attempt records a list (the service's are the Ledger
// and the `anchors` table on PostgreSQL: anchoring-loop.e2e-spec.ts drives those).
import {
  AnchorAttempt,
  AnchorClient,
  AnchorAttemptChange,
  AnchorAttemptStore,
  AnchoringEngine,
  AnchoringLog,
  AnchoringPolicy,
  ChainConnection,
  ChainKey,
  ConfirmedAnchor,
  NewAnchorAttempt,
  deployAuditAnchor,
  describeConnection,
} from '@lethe/chain';
import { MerkleTree, hashLeaf, toHex } from '@lethe/merkle';
import { CHAIN_KINDS, ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';

const POLICY: AnchoringPolicy = { everyEntries: 5, everySeconds: 3600, confirmations: 1, replaceAfterSeconds: 3600, pollMs: 50 };

/** A log in memory: entries are leaves of a libs/merkle tree; the engine's anchor records are leaves too. */
class MemoryLog implements AnchoringLog {
  readonly tree = MerkleTree.empty();
  readonly anchors: { index: number; anchor: ConfirmedAnchor }[] = [];

  add(count: number): void {
    for (let i = 0; i < count; i++) this.tree.append(hashLeaf(Buffer.from(`entry ${this.tree.size}`)));
  }

  async getCheckpoint(): Promise<{ treeSize: number; rootHash: string }> {
    return { treeSize: this.tree.size, rootHash: toHex(this.tree.root()) };
  }

  async getRoot(treeSize: number): Promise<string> {
    return toHex(this.tree.root(treeSize));
  }

  async getConsistencyProof(from: number, to: number): Promise<{ proof: string[] }> {
    return { proof: this.tree.consistencyProof(from, to).map(toHex) };
  }

  async countWaiting(start: number, atMost: number): Promise<number> {
    const records = this.anchors.filter((a) => a.index >= start).length;
    return Math.min(atMost, Math.max(0, this.tree.size - start - records));
  }

  async findAnchorEntry(txHash: string): Promise<number | null> {
    return this.anchors.find((a) => a.anchor.txHash === txHash)?.index ?? null;
  }

  async appendAnchorEntry(anchor: ConfirmedAnchor): Promise<number> {
    const index = this.tree.size;
    this.tree.append(hashLeaf(Buffer.from(JSON.stringify(anchor))));
    this.anchors.push({ index, anchor });
    return index;
  }
}

/** Attempt records in a list, kept across "restarts" (new engines given the same store). */
class MemoryAttempts implements AnchorAttemptStore {
  readonly records: (AnchorAttempt & ChainKey & { ledgerIndex?: number })[] = [];

  async findInFlight(chain: ChainKey): Promise<AnchorAttempt | null> {
    const mine = this.on(chain);
    return mine.find((r) => r.state === 'sending') ?? mine.find((r) => r.state === 'sent') ?? null;
  }

  async findConfirmed(chain: ChainKey, limit: number): Promise<AnchorAttempt[]> {
    return this.on(chain)
      .filter((r) => r.state === 'confirmed')
      .sort((a, b) => b.treeSize - a.treeSize)
      .slice(0, limit);
  }

  async create(chain: ChainKey, attempt: NewAnchorAttempt): Promise<AnchorAttempt> {
    const record = { txHashes: [], txHash: null, nonce: null, blockNumber: null, ...attempt, ...chain, id: String(this.records.length + 1), updatedAt: new Date() };
    this.records.push(record);
    return { ...record };
  }

  async update(id: string, change: AnchorAttemptChange): Promise<void> {
    Object.assign(this.records.find((r) => r.id === id)!, change, { updatedAt: new Date() });
  }

  private on(chain: ChainKey) {
    return this.records.filter((r) => r.chainId === chain.chainId && r.genesisHash === chain.genesisHash && r.contract === chain.contract);
  }
}

describe.each(CHAIN_KINDS)('AnchoringEngine with nothing but its ports (on %s)', (kind) => {
  let chain: ChainFixture;
  let connection: ChainConnection;

  beforeAll(async () => {
    chain = await startChainFixture(kind);
  });

  afterAll(async () => {
    await chain.stop();
  });

  beforeEach(async () => {
    await chain.reset();
    connection = await describeConnection(chain.provider, chain.client, { rpcUrl: chain.node.rpcUrl, local: true, close: async () => undefined });
  });

  function newEngine(
    log: AnchoringLog,
    attempts: AnchorAttemptStore,
    now: () => number,
    messages: string[] = [],
    on: ChainConnection = connection,
    policy: AnchoringPolicy = POLICY,
  ): AnchoringEngine {
    const logger = { log: (m: string) => messages.push(`log: ${m}`), warn: (m: string) => messages.push(`warn: ${m}`), error: (m: string) => messages.push(`error: ${m}`) };
    return new AnchoringEngine({ connect: async () => on, policy, log, attempts, logger, now });
  }

  /** The same chain, another AuditAnchor, anchored with `anchorer`'s key. */
  async function connectionTo(address: string, anchorer = chain.anchorer): Promise<ChainConnection> {
    return { ...connection, contract: address.toLowerCase(), client: await AnchorClient.connect(address, anchorer) };
  }

  /** Ticks until a pass changes nothing more on the chain or in the log (at most `max` passes). */
  async function tickUntilSettled(engine: AnchoringEngine, log: MemoryLog, client: AnchorClient, max = 30): Promise<void> {
    let last = '';
    for (let i = 0; i < max; i++) {
      await engine.tick();
      const state = `${log.tree.size}/${await client.checkpointCount()}/${JSON.stringify(engine.getStatus().pendingTreeSize)}`;
      if (state === last) return;
      last = state;
    }
    throw new Error(`still moving after ${max} passes`);
  }

  /** Tree sizes of every checkpoint on `client`'s contract, oldest first. */
  async function onChainSizes(client: AnchorClient): Promise<number[]> {
    const count = await client.checkpointCount();
    return Promise.all(Array.from({ length: count }, async (_, n) => (await client.checkpoint(n)).treeSize));
  }

  it('anchors the log, records each anchor in it once across a restart, and extends it with a consistency proof', async () => {
    let now = 1_000_000;
    const log = new MemoryLog();
    const attempts = new MemoryAttempts();
    log.add(5);
    await newEngine(log, attempts, () => now).tick(); // sends, then the process "dies"
    expect(attempts.records.map((r) => r.state)).toEqual(['sent']);
    const engine = newEngine(log, attempts, () => now);
    await engine.tick(); // confirms and records
    await engine.tick(); // its own record is not a reason to anchor again
    expect(log.anchors).toEqual([
      { index: 5, anchor: expect.objectContaining({ treeSize: 5, rootHash: toHex(log.tree.root(5)), txHash: attempts.records[0].txHash!.toLowerCase() }) },
    ]);
    log.add(3);
    await engine.tick();
    expect(await chain.client.checkpointCount()).toBe(1); // 3 < everyEntries, and not everySeconds yet
    now += 3600 * 1000;
    await engine.tick();
    await engine.tick();
    expect((await chain.client.latestCheckpoint())!).toMatchObject({ treeSize: 9, rootHash: toHex(log.tree.root(9)) });
    expect(log.anchors.map((a) => [a.index, a.anchor.treeSize])).toEqual([
      [5, 5],
      [9, 9],
    ]);
    expect(attempts.records.map((r) => [r.state, r.ledgerIndex])).toEqual([
      ['confirmed', 5],
      ['confirmed', 9],
    ]);
    expect(engine.getStatus()).toMatchObject({ state: 'ok', chainId: connection.chainId, contract: connection.contract, anchoredTreeSize: 9 });
    const { chainId, genesisHash, contract } = connection;
    expect(await engine.getChainHead()).toEqual({ chainId, genesisHash, contract, blockNumber: await chain.provider.getBlockNumber() });
  });

  it('raises the alarm once through its logger and anchors nothing when the chain holds another history', async () => {
    await chain.client.waitForAnchor(await chain.client.anchor(0, 3, 'ab'.repeat(32), []));
    const log = new MemoryLog();
    log.add(6);
    const messages: string[] = [];
    const engine = newEngine(log, new MemoryAttempts(), Date.now, messages);
    for (let i = 0; i < 3; i++) await engine.tick();
    expect(engine.getStatus()).toMatchObject({ state: 'inconsistent', lastError: expect.stringContaining('is not a state of this log') });
    expect(messages.filter((m) => m.startsWith('error:'))).toEqual([expect.stringContaining('anchoring stops until this is resolved')]);
    expect(await chain.client.checkpointCount()).toBe(1);
    expect(log.anchors).toEqual([]);
  });

  it("splits a backlog larger than the contract's maxAnchorJump into anchors of at most that many entries", async () => {
    const deployed = await deployAuditAnchor(chain.admin, chain.admin.address, chain.anchorer.address, { maxAnchorJump: 3 });
    const on = await connectionTo(deployed.address);
    const log = new MemoryLog();
    const attempts = new MemoryAttempts();
    log.add(10);
    const messages: string[] = [];
    const engine = newEngine(log, attempts, () => 1_000_000, messages, on);
    await tickUntilSettled(engine, log, on.client);
    const sizes = await onChainSizes(on.client);
    expect(sizes).toEqual([3, 6, 9, 12]); // 10 entries, then the anchor records at 10 and 11 came along
    expect(sizes.map((size, i) => size - (i === 0 ? 0 : sizes[i - 1])).every((jump) => jump <= 3)).toBe(true);
    expect(attempts.records.map((r) => r.state)).toEqual(['confirmed', 'confirmed', 'confirmed', 'confirmed']); // never refused
    expect(log.anchors.map((a) => a.anchor.treeSize)).toEqual([3, 6, 9, 12]);
    expect(messages.some((m) => m.includes('the contract takes at most 3 per anchor'))).toBe(true);
    expect(engine.getStatus()).toMatchObject({ state: 'ok', anchoredTreeSize: 12 });
  });

  it('resumes on a successor from the vouched checkpoint after a made-up extension froze the old contract', async () => {
    const log = new MemoryLog();
    const attempts = new MemoryAttempts();
    log.add(8);
    const old = newEngine(log, attempts, Date.now);
    await tickUntilSettled(old, log, chain.client); // anchors 8 (ANCHORED at index 8)
    expect(await onChainSizes(chain.client)).toEqual([8]);
    // The anchorer key is stolen: a consistent extension the log never had is anchored with it.
    const fake = MerkleTree.fromLeafHashes([...Array.from({ length: 8 }, (_, i) => log.tree.leafHash(i)), ...Array.from({ length: 12 }, (_, i) => hashLeaf(Buffer.from(`fake ${i}`)))]);
    await chain.client.waitForAnchor(await chain.client.anchor(8, 20, fake.root(20), fake.consistencyProof(8, 20)));
    log.add(20);
    await tickUntilSettled(old, log, chain.client);
    expect(old.getStatus()).toMatchObject({ state: 'inconsistent' }); // no honest anchor fits any more
    expect(await onChainSizes(chain.client)).toEqual([8, 20]);

    // The admin deploys a successor vouching for the last honest checkpoint, with a new anchorer key.
    const successor = await deployAuditAnchor(chain.admin, chain.admin.address, chain.stranger.address, {
      vouched: { predecessor: chain.client.address, treeSize: 8, rootHash: log.tree.root(8) },
    });
    const on = await connectionTo(successor.address, chain.stranger);
    const engine = newEngine(log, attempts, Date.now, [], on);
    await engine.tick();
    expect(engine.getStatus()).toMatchObject({
      state: 'ok',
      anchoredTreeSize: 8,
      predecessor: { contract: chain.client.address.toLowerCase(), vouchedSize: 8, vouchedRoot: toHex(log.tree.root(8)) },
    });
    await tickUntilSettled(engine, log, on.client);
    expect(await onChainSizes(on.client)).toEqual([8, 29]); // from the vouched checkpoint, with a consistency proof
    expect((await on.client.latestCheckpoint())!.rootHash).toBe(toHex(log.tree.root(29)));
    expect(log.anchors.map((a) => [a.anchor.contract, a.anchor.treeSize])).toEqual([
      [chain.client.address.toLowerCase(), 8],
      [successor.address.toLowerCase(), 29],
    ]);
    expect(engine.getStatus()).toMatchObject({ state: 'ok', anchoredTreeSize: 29 });
  });

  it('raises the alarm on a successor whose vouched checkpoint is not a state of this log, and anchors nothing there', async () => {
    const log = new MemoryLog();
    log.add(6);
    await chain.client.waitForAnchor(await chain.client.anchor(0, 6, 'ab'.repeat(32), [])); // a root this log never had
    const successor = await deployAuditAnchor(chain.admin, chain.admin.address, chain.stranger.address, {
      vouched: { predecessor: chain.client.address, treeSize: 6, rootHash: 'ab'.repeat(32) },
    });
    const on = await connectionTo(successor.address, chain.stranger);
    const messages: string[] = [];
    const engine = newEngine(log, new MemoryAttempts(), Date.now, messages, on);
    log.add(10);
    for (let i = 0; i < 3; i++) await engine.tick();
    expect(engine.getStatus()).toMatchObject({ state: 'inconsistent', lastError: expect.stringContaining('is not a state of this log') });
    expect(await onChainSizes(on.client)).toEqual([6]);
    expect(log.anchors).toEqual([]);
  });

  it('replaces an anchor stuck in the mempool once, shows it pending (not an error) meanwhile, and records it once mined', async () => {
    let now = Date.now(); // the records' updatedAt is the wall clock
    const log = new MemoryLog();
    const attempts = new MemoryAttempts();
    log.add(5);
    const messages: string[] = [];
    const engine = newEngine(log, attempts, () => now, messages, connection, { ...POLICY, replaceAfterSeconds: 10 });
    await chain.provider.send('evm_setAutomine', [false]);
    try {
      await engine.tick(); // sent; the node does not mine it
      expect(engine.getStatus()).toMatchObject({ state: 'ok', pendingTreeSize: 5, pendingTransactions: 1 });
      // Each pass after replaceAfterSeconds: the first replaces it; the node's fees do not move while it mines
      // nothing, so a second replacement would be the same transaction again (the node refuses it as known).
      for (let pass = 0; pass < 4; pass++) {
        now += 11_000;
        await engine.tick();
        expect(engine.getStatus()).toMatchObject({ state: 'ok', pendingTreeSize: 5, pendingTransactions: 2 });
      }
      expect(attempts.records).toHaveLength(1);
      expect(new Set(attempts.records[0].txHashes).size).toBe(2);
      expect(messages.filter((m) => m.includes('replaced it with'))).toHaveLength(1);
    } finally {
      await chain.provider.send('evm_setAutomine', [true]);
    }
    await chain.provider.send('evm_mine', []);
    await tickUntilSettled(engine, log, chain.client);
    expect(await onChainSizes(chain.client)).toEqual([5]);
    expect(log.anchors.map((a) => a.anchor.txHash)).toEqual([attempts.records[0].txHashes[1]]); // the replacement, logged once
    expect(engine.getStatus()).toMatchObject({ state: 'ok', anchoredTreeSize: 5, pendingTreeSize: undefined });
  });
});
