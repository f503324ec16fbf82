import { Logger } from '@nestjs/common';
import { Wallet } from 'ethers';
import { DataSource } from 'typeorm';
import { AnchorClient, AnchoringPolicy, ChainConnection, HARDHAT_DEV_PRIVATE_KEYS } from '@lethe/chain';
import { Anchored } from '@lethe/events';
import { Ledger, fsckLedger, openDatabase } from '@lethe/ledger';
import { AnchorRecordEntity } from '../../apps/api/src/anchoring/anchor-record.entity';
import { AnchoringLoop } from '../../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../../apps/api/src/anchoring/chain-connection';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { CHAIN_KINDS, ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents } from '../support/factories';
import { startCappedRpcProxy } from '../support/capped-rpc-proxy';
import { waitFor } from '../support/probe';
import { TcpProxy, startTcpProxy } from '../support/tcp-proxy';

const POLICY: AnchoringPolicy = { everyEntries: 5, everySeconds: 3600, confirmations: 1, replaceAfterSeconds: 3600, pollMs: 50 };

describe.each(CHAIN_KINDS)('AnchoringLoop against a local chain (on %s)', (kind) => {
  let chain: ChainFixture;
  let proxy: TcpProxy;
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;
  let loops: AnchoringLoop[];

  beforeAll(async () => {
    Logger.overrideLogger(false);
    chain = await startChainFixture(kind);
    proxy = await startTcpProxy(Number(new URL(chain.node.rpcUrl).port));
  });

  afterAll(async () => {
    await proxy.close();
    await chain.stop();
  });

  beforeEach(async () => {
    await chain.reset();
    db = await createTestDatabase('anchoring');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    ledger = new Ledger(dataSource);
    loops = [];
  });

  afterEach(async () => {
    for (const loop of loops) await loop.stop();
    await dataSource.destroy();
    await db.drop();
  });

  /** A loop that reaches the chain through the proxy (or `rpcUrl`), as a service with RPC_URL (and `env`) would. */
  function newLoop(
    options: {
      key?: string;
      now?: () => number;
      policy?: Partial<AnchoringPolicy>;
      rpcUrl?: string;
      env?: Record<string, string>;
      /** Another process's connection pool on the same database. */
      dataSource?: DataSource;
    } = {},
  ): AnchoringLoop {
    const config = loadConfig({
      RPC_URL: options.rpcUrl ?? proxy.url,
      CONTRACT_ADDRESS: chain.client.address,
      ANCHORER_PRIVATE_KEY: options.key ?? HARDHAT_DEV_PRIVATE_KEYS[1],
      ...options.env,
    });
    const connect = remoteChainConnector(config.chain, { ANCHORER_PRIVATE_KEY: options.key ?? HARDHAT_DEV_PRIVATE_KEYS[1] });
    const pool = options.dataSource ?? dataSource;
    const loop = new AnchoringLoop(pool, pool === dataSource ? ledger : new Ledger(pool), connect, { ...POLICY, ...options.policy }, options.now);
    loops.push(loop);
    return loop;
  }

  async function anchoredEvents(): Promise<Anchored[]> {
    const rows: { event: string }[] = await dataSource.query(`SELECT event FROM ledger_entries WHERE type = 'ANCHORED' ORDER BY idx`);
    return rows.map((r) => JSON.parse(r.event));
  }

  async function onChainSizes(): Promise<number[]> {
    const count = await chain.client.checkpointCount();
    const sizes: number[] = [];
    for (let i = 0; i < count; i++) sizes.push((await chain.client.checkpoint(i)).treeSize);
    return sizes;
  }

  it('anchors once ANCHOR_EVERY_ENTRIES entries wait, then logs ANCHORED with the transaction', async () => {
    const loop = newLoop();
    await ledger.append(buildEvents(0, 4));
    await loop.tick();
    expect(await chain.client.checkpointCount()).toBe(0); // 4 < 5: not due yet
    await ledger.append(buildEvents(4, 3));
    await loop.tick(); // sends
    await loop.tick(); // confirms and logs
    const onChain = await chain.client.latestCheckpoint();
    expect(onChain).toMatchObject({ treeSize: 7, rootHash: await ledger.getRoot(7) });
    const [anchored] = await anchoredEvents();
    expect(anchored).toMatchObject({
      type: 'ANCHORED',
      chainId: '31337',
      contract: chain.client.address.toLowerCase(),
      treeSize: 7,
      rootHash: await ledger.getRoot(7),
      txHash: expect.stringMatching(/^0x[0-9a-f]{64}$/),
    });
    const receipt = await chain.provider.getTransactionReceipt(anchored.txHash);
    expect(receipt?.blockNumber).toBe(anchored.blockNumber);
    expect(loop.report()).toMatchObject({ ok: true, state: 'ok', anchoredTreeSize: 7 });
    // Its own ANCHORED entry is not a reason to anchor again.
    await loop.tick();
    await loop.tick();
    expect(await chain.client.checkpointCount()).toBe(1);
  });

  it('anchors after ANCHOR_EVERY_SECONDS even with fewer entries, extending with a consistency proof', async () => {
    let now = 1_000_000;
    const loop = newLoop({ now: () => now });
    await ledger.append(buildEvents(0, 5));
    await loop.tick();
    await loop.tick();
    await ledger.append(buildEvents(5, 2));
    await loop.tick();
    expect(await onChainSizes()).toEqual([5]);
    now += 3600 * 1000;
    await loop.tick();
    await loop.tick();
    expect(await onChainSizes()).toEqual([5, 8]); // 5 + ANCHORED + 2
    expect((await anchoredEvents()).map((e) => e.treeSize)).toEqual([5, 8]);
  });

  it('survives a restart between sending and confirming: the next process confirms it, once', async () => {
    await ledger.append(buildEvents(0, 6));
    await chain.provider.send('evm_setAutomine', [false]);
    try {
      const first = newLoop();
      await first.tick(); // sent, not mined
      const [record] = await dataSource.getRepository(AnchorRecordEntity).find();
      expect(record.state).toBe('sent');
      await first.stop(); // "killed"
    } finally {
      await chain.provider.send('evm_setAutomine', [true]);
    }
    await chain.provider.send('evm_mine', []);
    const second = newLoop();
    await second.tick();
    await second.tick();
    expect(await onChainSizes()).toEqual([6]);
    expect((await anchoredEvents()).map((e) => e.treeSize)).toEqual([6]);
  });

  it('replaces a transaction stuck in the mempool (same nonce, higher fees) and confirms the replacement', async () => {
    let now = Date.now();
    const loop = newLoop({ now: () => now, policy: { replaceAfterSeconds: 60 } });
    await ledger.append(buildEvents(0, 6));
    await chain.provider.send('evm_setAutomine', [false]);
    try {
      await loop.tick(); // sent, stuck
      await loop.tick(); // still pending, not old enough
      now += 120_000;
      await loop.tick(); // replaced
    } finally {
      await chain.provider.send('evm_setAutomine', [true]);
    }
    const [record] = await dataSource.getRepository(AnchorRecordEntity).find();
    expect(record.txHashes).toHaveLength(2);
    const [original, replacement] = await Promise.all(record.txHashes.map((h) => chain.provider.getTransaction(h)));
    expect(original).toBeNull(); // pushed out of the mempool by its replacement
    expect(replacement!.nonce).toBe(record.nonce);
    await chain.provider.send('evm_mine', []);
    await loop.tick();
    expect(await onChainSizes()).toEqual([6]);
    const [anchored] = await anchoredEvents();
    expect(anchored.txHash).toBe(record.txHashes[1]);
  });

  it('adopts an anchor it sent but never recorded (killed right after sending)', async () => {
    await ledger.append(buildEvents(0, 6));
    // The anchor reaches the chain, but the process dies before writing anything down.
    await chain.client.anchor(0, 6, await ledger.getRoot(6), []);
    const loop = newLoop();
    await loop.tick();
    expect(await onChainSizes()).toEqual([6]);
    expect((await anchoredEvents()).map((e) => e.treeSize)).toEqual([6]);
    expect(await dataSource.getRepository(AnchorRecordEntity).count({ where: { state: 'confirmed' } })).toBe(1);
  });

  it('finds an unrecorded anchor through an RPC that caps eth_getLogs, ANCHOR_LOG_RANGE_BLOCKS at a time', async () => {
    await ledger.append(buildEvents(0, 6));
    const txHash = await chain.client.anchor(0, 6, await ledger.getRoot(6), []);
    for (let i = 0; i < 10; i++) await chain.provider.send('evm_mine', []); // the anchor is 10 blocks deep
    const capped = await startCappedRpcProxy(chain.node.rpcUrl, 3);
    try {
      // One eth_getLogs over the whole chain, as the loop once sent, is refused: the loop says so and records nothing.
      await expect(newLoop({ rpcUrl: capped.url }).tick()).rejects.toMatchObject({ code: 'LOGS_REFUSED' });
      expect(await anchoredEvents()).toEqual([]);
      const refusedBefore = capped.getLogsCalls.filter((c) => c.refused).length;
      const loop = newLoop({ rpcUrl: capped.url, env: { ANCHOR_LOG_RANGE_BLOCKS: '3' } });
      await loop.tick();
      expect((await anchoredEvents()).map((e) => [e.treeSize, e.txHash])).toEqual([[6, txHash]]);
      expect(capped.getLogsCalls.filter((c) => c.refused)).toHaveLength(refusedBefore);
      expect(loop.report()).toMatchObject({ ok: true, state: 'ok', anchoredTreeSize: 6 });
    } finally {
      await capped.close();
    }
  });

  it('detects a reorg that removed an anchor and anchors again', async () => {
    const loop = newLoop();
    await ledger.append(buildEvents(0, 5));
    const snapshot = await chain.provider.send('evm_snapshot', []);
    await loop.tick();
    await loop.tick();
    expect(await onChainSizes()).toEqual([5]);
    expect(loop.report().lastReorg).toBeUndefined();
    const [removed] = await dataSource.getRepository(AnchorRecordEntity).find({ order: { id: 'ASC' } });
    await chain.provider.send('evm_revert', [snapshot]); // the block with the anchor is gone
    expect(await onChainSizes()).toEqual([]);
    await loop.tick(); // notices, anchors again
    // Health names the anchor the reorg removed.
    expect(loop.report().lastReorg).toEqual({ treeSize: 5, txHash: removed.txHash, detectedAt: expect.any(String) });
    await loop.tick();
    const sizes = await onChainSizes();
    expect(sizes).toHaveLength(1);
    expect(sizes[0]).toBeGreaterThanOrEqual(5);
    const records = await dataSource.getRepository(AnchorRecordEntity).find({ order: { id: 'ASC' } });
    expect(records.map((r) => r.state)).toEqual(['dropped', 'confirmed']);
    expect((await fsckLedger(dataSource)).ok).toBe(true);
  });

  it('keeps the log going while the RPC is down, says so, and anchors when it is back', async () => {
    const loop = newLoop({ policy: { pollMs: 20 } });
    await proxy.down();
    try {
      loop.start();
      await ledger.append(buildEvents(0, 6)); // the log does not need the chain
      await waitFor(async () => loop.report().state, (state) => state === 'chain-unavailable', 60_000);
      expect(loop.report()).toMatchObject({ ok: false, state: 'chain-unavailable', lastError: expect.stringContaining('does not answer') });
      expect((await ledger.getCheckpoint()).treeSize).toBe(6);
    } finally {
      await proxy.up();
    }
    await waitFor(anchoredEvents, (events) => events.length === 1, 60_000);
    expect(await onChainSizes()).toEqual([6]);
    expect(loop.report()).toMatchObject({ ok: true, state: 'ok' });
  }, 240_000); // its waits are deadlines, long for a loaded machine

  it('says reconnecting, not error, while the chain back after an outage lacks the contract, and anchors once it is there', async () => {
    // A restarted node answers before AuditAnchor is deployed on it again: code removed and put back stands for that.
    const setCode = kind === 'anvil' ? 'anvil_setCode' : 'hardhat_setCode';
    const code = await chain.provider.getCode(chain.client.address);
    const loop = newLoop({ policy: { pollMs: 20 } });
    await ledger.append(buildEvents(0, 6));
    loop.start();
    await waitFor(anchoredEvents, (events) => events.length === 1, 15_000);
    await proxy.down();
    try {
      await waitFor(async () => loop.report().state, (state) => state === 'chain-unavailable', 15_000);
      await chain.provider.send(setCode, [chain.client.address, '0x']);
    } finally {
      await proxy.up();
    }
    try {
      const state = await waitFor(async () => loop.report().state, (s) => s !== 'chain-unavailable', 30_000);
      expect(state).toBe('reconnecting');
      expect(loop.report()).toMatchObject({ ok: false, state: 'reconnecting', lastError: expect.stringMatching(new RegExp(`no contract at ${chain.client.address}`, 'i')) });
      await ledger.append(buildEvents(6, 6)); // the log keeps taking entries
    } finally {
      await chain.provider.send(setCode, [chain.client.address, code]);
    }
    await waitFor(anchoredEvents, (events) => events.length === 2, 60_000);
    expect(loop.report()).toMatchObject({ ok: true, state: 'ok', anchoredTreeSize: 13 });
  });

  it('says error, not reconnecting, when its first connection finds no contract (a wrong CONTRACT_ADDRESS)', async () => {
    const loop = newLoop({ policy: { pollMs: 20 }, env: { CONTRACT_ADDRESS: chain.stranger.address } });
    loop.start();
    await waitFor(async () => loop.report().state, (state) => state !== 'starting', 15_000);
    expect(loop.report()).toMatchObject({ ok: false, state: 'error', lastError: expect.stringMatching(new RegExp(`no contract at ${chain.stranger.address}`, 'i')) });
  });

  it('anchors from one process per database: another stands by until the first stops, then takes over', async () => {
    const otherProcess = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    try {
      const first = newLoop({ policy: { pollMs: 20 } });
      const second = newLoop({ policy: { pollMs: 20 }, dataSource: otherProcess });
      first.start();
      await ledger.append(buildEvents(0, 6));
      await waitFor(anchoredEvents, (events) => events.length === 1, 60_000);
      second.start();
      await new Promise((r) => setTimeout(r, 500));
      expect(second.report()).toEqual({ ok: true, state: 'starting' }); // never looked at the chain
      await first.stop();
      await ledger.append(buildEvents(6, 6));
      // It retries the lock every 5 s; its report follows the ANCHORED entry at the end of the same pass.
      await waitFor(
        async () => ({ events: await anchoredEvents(), report: second.report() }),
        ({ events, report }) => events.length === 2 && report.anchoredTreeSize === 13,
        60_000,
      );
      expect(second.report()).toMatchObject({ ok: true, state: 'ok', anchoredTreeSize: 13 });
      expect((await anchoredEvents()).map((e) => e.treeSize)).toEqual([6, 13]);
      await second.stop();
    } finally {
      await otherProcess.destroy();
    }
  }, 240_000); // its waits are deadlines, long for a loaded machine

  it('reports a key without ANCHORER_ROLE clearly and changes nothing on the chain', async () => {
    const loop = newLoop({ key: HARDHAT_DEV_PRIVATE_KEYS[2] });
    await ledger.append(buildEvents(0, 6));
    await expect(loop.tick()).rejects.toMatchObject({ code: 'NOT_ANCHORER' });
    expect(await chain.client.checkpointCount()).toBe(0);
    expect(await anchoredEvents()).toEqual([]);
    await ledger.append(buildEvents(6, 1)); // the log still takes entries
    expect((await ledger.getCheckpoint()).treeSize).toBe(7);
  });

  it('stops anchoring and raises the alarm when the chain holds a history that is not this log', async () => {
    await ledger.append(buildEvents(0, 6));
    // Someone with the key anchors a root this log never had.
    await chain.client.anchor(0, 3, 'ab'.repeat(32), []);
    const loop = newLoop();
    await loop.tick();
    await loop.tick();
    expect(loop.report()).toMatchObject({ ok: false, state: 'inconsistent', lastError: expect.stringContaining('not a state of this log') });
    expect(await onChainSizes()).toEqual([3]);
    expect(await anchoredEvents()).toEqual([]);
  });

  it('lets the contract refuse an inconsistent root sent on purpose, leaving its state as it was', async () => {
    await ledger.append(buildEvents(0, 6));
    const loop = newLoop();
    await loop.tick();
    await loop.tick();
    const before = await onChainSizes();
    const connection = loop.getConnection() as ChainConnection;
    const anchorer = new Wallet(HARDHAT_DEV_PRIVATE_KEYS[1], chain.provider);
    const client = await AnchorClient.connect(connection.contract, anchorer);
    await ledger.append(buildEvents(6, 4));
    const proof = (await ledger.getConsistencyProof(6, 11)).proof;
    await expect(client.anchor(6, 11, 'cd'.repeat(32), proof)).rejects.toMatchObject({ code: 'INCONSISTENT_ROOT' });
    expect(await onChainSizes()).toEqual(before);
  });
});
