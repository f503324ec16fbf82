// libs/chain around the contract: the node launcher, connecting, signers, waiting, reorg detection.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystoreJsonSync, Interface, Wallet } from 'ethers';
import { hashLeaf, MerkleTree, toHex } from '@lethe/merkle';
import {
  AnchorClient,
  AUDIT_ANCHOR_ABI,
  ChainError,
  type CheckpointAnchoredEvent,
  connectProvider,
  HARDHAT_DEV_PRIVATE_KEYS,
  loadAuditAnchorArtifact,
  loadSigner,
  startHardhatNode,
} from '@lethe/chain';
import { startCappedRpcProxy } from '../support/capped-rpc-proxy';
import { expectChainError, useChainFixture } from './support/chain-fixture';

const tree = MerkleTree.fromLeafHashes(Array.from({ length: 40 }, (_, i) => hashLeaf(Buffer.from(`entry ${i}`))));

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

describe('libs/chain', () => {
  const f = useChainFixture();

  describe('startHardhatNode', () => {
    it('refuses a port that is in use with PORT_IN_USE', async () => {
      const server = createServer();
      const port = await listen(server);
      try {
        const error = await expectChainError(startHardhatNode({ port }), 'PORT_IN_USE');
        expect(error.message).toContain(String(port));
      } finally {
        server.close();
      }
    });

    it('stops the node so that its JSON-RPC no longer answers', async () => {
      const node = await startHardhatNode({ port: 0 });
      const provider = await connectProvider(node.rpcUrl);
      expect(await provider.getBlockNumber()).toBe(0);
      provider.destroy();
      await node.stop();
      await node.stop(); // idempotent
      await expectChainError(connectProvider(node.rpcUrl, { timeoutMs: 1000 }), 'RPC_UNAVAILABLE');
    });
  });

  describe('AnchorClient.connect', () => {
    it('refuses an address without code, or with another contract, with NOT_AUDIT_ANCHOR', async () => {
      await expectChainError(AnchorClient.connect(f.stranger.address, f.provider), 'NOT_AUDIT_ANCHOR');
      const other = new Wallet(HARDHAT_DEV_PRIVATE_KEYS[3], f.provider);
      const { ContractFactory } = await import('ethers');
      const { loadContractArtifact } = await import('@lethe/chain');
      const artifact = await loadContractArtifact('contracts/bench/EventOnly.sol', 'EventOnly');
      const eventOnly = await new ContractFactory(artifact.abi, artifact.bytecode, other).deploy();
      await eventOnly.waitForDeployment();
      await expectChainError(AnchorClient.connect(await eventOnly.getAddress(), f.provider), 'NOT_AUDIT_ANCHOR');
    });

    it('reads with a provider only (an auditor needs no key)', async () => {
      await f.client.waitForAnchor(await f.client.anchor(0, 7, tree.root(7), []));
      const reader = await AnchorClient.connect(f.client.address, f.provider);
      expect(await reader.latestCheckpoint()).toMatchObject({ treeSize: 7, rootHash: toHex(tree.root(7)) });
      expect(await reader.verifyInclusion(tree.leafHash(3), 3, 7, tree.inclusionProof(3, 7))).toBe(true);
    });

    it('has an ABI whose every fragment matches the compiled contract (types, mutability, returns)', async () => {
      const compiled = new Interface((await loadAuditAnchorArtifact()).abi);
      const ours = new Interface(AUDIT_ANCHOR_ABI);
      const signatures = (i: Interface): string[] => i.fragments.map((fr) => fr.format('minimal')).sort();
      const compiledSet = new Set(signatures(compiled));
      expect(signatures(ours).filter((s) => !compiledSet.has(s))).toEqual([]);
    });
  });

  describe('sending and waiting', () => {
    it('returns the transaction hash before it is mined, then waits for N confirmations', async () => {
      await f.provider.send('evm_setAutomine', [false]);
      let txHash: string;
      try {
        txHash = await f.client.anchor(0, 9, tree.root(9), []);
        expect(await f.client.transactionState(txHash)).toEqual({ status: 'pending' });
        const waiting = f.client.waitForAnchor(txHash, { confirmations: 3, timeoutMs: 30_000 });
        for (let i = 0; i < 3; i++) await f.provider.send('evm_mine', []);
        const receipt = await waiting;
        expect(receipt.confirmations).toBeGreaterThanOrEqual(3);
        expect(receipt.checkpoint).toEqual({ number: 0, treeSize: 9, rootHash: toHex(tree.root(9)), oldSize: 0 });
      } finally {
        await f.provider.send('evm_setAutomine', [true]);
      }
      expect(await f.client.transactionState(txHash)).toMatchObject({ status: 'mined', succeeded: true, confirmations: 3 });
    });

    it('times out waiting for a transaction that is not mined (TIMEOUT)', async () => {
      await f.provider.send('evm_setAutomine', [false]);
      try {
        const txHash = await f.client.anchor(0, 9, tree.root(9), []);
        await expectChainError(f.client.waitForAnchor(txHash, { timeoutMs: 500 }), 'TIMEOUT');
      } finally {
        await f.provider.send('evm_setAutomine', [true]);
      }
    });

    it('sends with an explicit nonce, and reports a reused nonce as NONCE_CONFLICT', async () => {
      const nonce = await f.provider.getTransactionCount(f.anchorer.address, 'pending');
      const txHash = await f.client.anchor(0, 4, tree.root(4), [], { nonce });
      await f.client.waitForAnchor(txHash);
      await expectChainError(f.client.anchor(4, 8, tree.root(8), tree.consistencyProof(4, 8), { nonce, gasLimit: 300_000n }), 'NONCE_CONFLICT');
    });

    it('decodes a revert that happened on-chain (sent unsimulated with a gas limit) in waitForAnchor', async () => {
      await f.client.waitForAnchor(await f.client.anchor(0, 4, tree.root(4), []));
      // Without automine Hardhat accepts the transaction as a public chain would, and mines it as reverted.
      await f.provider.send('evm_setAutomine', [false]);
      let txHash: string;
      try {
        txHash = await f.client.anchor(4, 8, tree.root(9), tree.consistencyProof(4, 8), { gasLimit: 300_000n });
        await f.provider.send('evm_mine', []);
      } finally {
        await f.provider.send('evm_setAutomine', [true]);
      }
      const error = await expectChainError(f.client.waitForAnchor(txHash), 'INCONSISTENT_ROOT', 'AuditAnchorInconsistentRoot');
      expect(error.txHash).toBe(txHash);
      expect(await f.client.transactionState(txHash)).toMatchObject({ status: 'mined', succeeded: false });
    });

    it('lets a restarted loop find an anchor by tree size instead of sending it twice', async () => {
      await f.client.waitForAnchor(await f.client.anchor(0, 10, tree.root(10), []));
      await f.client.waitForAnchor(await f.client.anchor(10, 25, tree.root(25), tree.consistencyProof(10, 25)));
      const found = await f.client.findCheckpointByTreeSize(25);
      expect(found).toMatchObject({ number: 1, treeSize: 25, rootHash: toHex(tree.root(25)) });
      await expectChainError(f.client.anchor(10, 25, tree.root(25), tree.consistencyProof(10, 25)), 'STALE_OLD_SIZE');
    });
  });

  describe('reorg detection', () => {
    it('sees the checkpoint count drop and the receipt disappear when the block is dropped', async () => {
      await f.client.waitForAnchor(await f.client.anchor(0, 5, tree.root(5), []));
      const fork = (await f.provider.send('evm_snapshot', [])) as string;
      const txHash = await f.client.anchor(5, 12, tree.root(12), tree.consistencyProof(5, 12));
      await f.client.waitForAnchor(txHash);
      expect(await f.client.checkpointCount()).toBe(2);
      expect(await f.client.transactionState(txHash)).toMatchObject({ status: 'mined' });
      await f.provider.send('evm_revert', [fork]); // what a reorg that drops the block looks like to a client
      expect(await f.client.checkpointCount()).toBe(1);
      expect(await f.client.transactionState(txHash)).toEqual({ status: 'missing' });
      expect(await f.client.findCheckpointByTreeSize(12)).toBeNull();
    });
  });

  describe('event scans in bounded block ranges', () => {
    const SIZES = [3, 7, 8, 13, 20, 21, 30];
    const GAPS = [2, 0, 1, 3, 0, 2, 1]; // empty blocks mined before each anchor, so that events fall on every position of a range

    /** Anchors SIZES after their GAPS and returns what each receipt says: the events a scan must find. */
    async function anchorWithGaps(): Promise<CheckpointAnchoredEvent[]> {
      const sent: CheckpointAnchoredEvent[] = [];
      let oldSize = 0;
      for (const [i, size] of SIZES.entries()) {
        for (let g = 0; g < GAPS[i]; g++) await f.provider.send('evm_mine', []);
        const proof = oldSize === 0 ? [] : tree.consistencyProof(oldSize, size);
        const receipt = await f.client.waitForAnchor(await f.client.anchor(oldSize, size, tree.root(size), proof));
        sent.push({ ...receipt.checkpoint, txHash: receipt.txHash, blockNumber: receipt.blockNumber });
        oldSize = size;
      }
      return sent;
    }

    it('finds every event once, at every position of ranges of 1, 2 and 3 blocks, through an RPC that refuses wider ones', async () => {
      const sent = await anchorWithGaps();
      const deploymentBlock = f.adminClient.deploymentBlock;
      expect(deploymentBlock).toBeGreaterThan(0);
      const proxy = await startCappedRpcProxy(f.node.rpcUrl, 3);
      const provider = await connectProvider(proxy.url, { pollingIntervalMs: 50 });
      try {
        const head = await provider.getBlockNumber();
        for (const logRangeBlocks of [1, 2, 3]) {
          // The premise: some event is on the first block of a range, some on the last.
          const offsets = new Set(sent.map((e) => (e.blockNumber - deploymentBlock) % logRangeBlocks));
          expect(offsets).toEqual(new Set(Array.from({ length: logRangeBlocks }, (_, i) => i)));
          const client = await AnchorClient.connect(f.client.address, provider, { logRangeBlocks, deploymentBlock });
          proxy.getLogsCalls.length = 0;
          expect(await client.checkpointEvents()).toEqual(sent);
          // Ranges of at most logRangeBlocks blocks that tile deploymentBlock..head, none refused.
          const calls = proxy.getLogsCalls;
          expect(calls.every((c) => !c.refused && c.toBlock - c.fromBlock < logRangeBlocks)).toBe(true);
          expect(calls.map((c) => [c.fromBlock, c.toBlock])).toEqual(
            calls.map((_, i) => [deploymentBlock + i * logRangeBlocks, Math.min(head, deploymentBlock + (i + 1) * logRangeBlocks - 1)]),
          );
          expect(calls.at(-1)!.toBlock).toBe(head);
          for (const event of sent) expect(await client.findCheckpointEvent(event.number)).toEqual(event);
          // Scanning back from the head, the latest anchor costs one call.
          proxy.getLogsCalls.length = 0;
          expect(await client.findCheckpointEvent(sent.length - 1)).toEqual(sent.at(-1));
          expect(proxy.getLogsCalls).toHaveLength(1);
          expect(await client.findCheckpointEvent(sent.length)).toBeNull();
        }
        // The control: one call over the whole chain, as before, is refused by such an RPC.
        const wide = await AnchorClient.connect(f.client.address, provider);
        expect(wide.logRangeBlocks).toBe(10_000);
        const error = await expectChainError(wide.checkpointEvents(), 'LOGS_REFUSED');
        expect(error.message).toContain(`blocks 0..${head}`);
      } finally {
        provider.destroy();
        await proxy.close();
      }
    });

    it('no longer finds an event that a reorg removed', async () => {
      const client = await AnchorClient.connect(f.client.address, f.anchorer, { logRangeBlocks: 2 });
      const first = await client.waitForAnchor(await client.anchor(0, 5, tree.root(5), []));
      const fork = (await f.provider.send('evm_snapshot', [])) as string;
      await client.waitForAnchor(await client.anchor(5, 12, tree.root(12), tree.consistencyProof(5, 12)));
      expect((await client.checkpointEvents()).map((e) => e.treeSize)).toEqual([5, 12]);
      await f.provider.send('evm_revert', [fork]);
      expect(await client.findCheckpointEvent(1)).toBeNull();
      expect(await client.checkpointEvents()).toEqual([{ ...first.checkpoint, txHash: first.txHash, blockNumber: first.blockNumber }]);
    });
  });

  describe('loadSigner', () => {
    const key = HARDHAT_DEV_PRIVATE_KEYS[4];
    const address = new Wallet(key).address;

    it('reads the key from ANCHORER_PRIVATE_KEY (or the variable named)', async () => {
      expect((await loadSigner({ provider: f.provider, env: { ANCHORER_PRIVATE_KEY: key } })).address).toBe(address);
      expect((await loadSigner({ provider: f.provider, env: { MY_KEY: key }, keyEnv: 'MY_KEY' })).address).toBe(address);
    });

    it('decrypts a keystore file with its password', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lethe-keystore-'));
      const path = join(dir, 'anchorer.json');
      writeFileSync(path, encryptKeystoreJsonSync({ address, privateKey: key }, 'correct horse', { scrypt: { N: 1024 } }));
      const signer = await loadSigner({ provider: f.provider, env: { ANCHORER_KEYSTORE: path, ANCHORER_KEYSTORE_PASSWORD: 'correct horse' } });
      expect(signer.address).toBe(address);
      const error = await expectChainError(
        loadSigner({ provider: f.provider, env: { ANCHORER_KEYSTORE: path, ANCHORER_KEYSTORE_PASSWORD: 'hunter2-not-it' } }),
        'SIGNER_UNAVAILABLE',
      );
      expect(error.message).not.toContain('hunter2');
    });

    it('fails with SIGNER_UNAVAILABLE without echoing a malformed key', async () => {
      const secret = '0xdeadbeefcafe';
      const error = await expectChainError(loadSigner({ provider: f.provider, env: { ANCHORER_PRIVATE_KEY: secret } }), 'SIGNER_UNAVAILABLE');
      expect(error.message).not.toContain('deadbeef');
      await expectChainError(loadSigner({ provider: f.provider, env: {} }), 'SIGNER_UNAVAILABLE');
    });
  });

  it('rejects a hash that is not 32 bytes before sending (INVALID_ARGUMENT)', async () => {
    await expectChainError(f.client.anchor(0, 4, 'abcd', []), 'INVALID_ARGUMENT');
    await expectChainError(f.client.anchor(0, 4, tree.root(4), [new Uint8Array(31)]), 'INVALID_ARGUMENT');
    await expectChainError(f.client.anchor(0, 1.5, tree.root(4), []), 'INVALID_ARGUMENT');
    expect(ChainError).toBeDefined();
  });
});
