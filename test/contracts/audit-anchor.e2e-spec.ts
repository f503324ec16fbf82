import { MerkleTree, toHex } from '@lethe/merkle';
import { Contract, ZeroAddress } from 'ethers';
import { AUDIT_ANCHOR_ABI, ChainError, decodeChainError, deployAuditAnchor, type AnchoredCheckpoint } from '@lethe/chain';
import { buildTree, expectChainError, useChainFixture } from './support/chain-fixture';

describe('AuditAnchor', () => {
  const f = useChainFixture();
  const tree = buildTree(64);

  async function anchorHonestly(oldSize: number, newSize: number, t: MerkleTree = tree): Promise<string> {
    const proof = oldSize === 0 ? [] : t.consistencyProof(oldSize, newSize);
    const txHash = await f.client.anchor(oldSize, newSize, toHex(t.root(newSize)), proof);
    await f.client.waitForAnchor(txHash);
    return txHash;
  }

  async function allCheckpoints(): Promise<AnchoredCheckpoint[]> {
    const count = await f.client.checkpointCount();
    return Promise.all(Array.from({ length: count }, (_, n) => f.client.checkpoint(n)));
  }

  describe('anchoring', () => {
    it('accepts the first checkpoint from the empty tree without a proof and emits CheckpointAnchored', async () => {
      const txHash = await f.client.anchor(0, 5, tree.root(5), []);
      const receipt = await f.client.waitForAnchor(txHash);
      expect(receipt.checkpoint).toEqual({ number: 0, treeSize: 5, rootHash: toHex(tree.root(5)), oldSize: 0 });
      const block = await f.provider.getBlock(receipt.blockNumber);
      expect(await f.client.latestCheckpoint()).toEqual({ number: 0, treeSize: 5, rootHash: toHex(tree.root(5)), timestamp: block!.timestamp });
      expect(await f.client.checkpointCount()).toBe(1);
    });

    it('accepts a sequence of consistent checkpoints and keeps every one readable by number', async () => {
      const sizes = [1, 2, 3, 4, 7, 8, 13, 16, 31, 32, 33, 64];
      let old = 0;
      for (const size of sizes) {
        await anchorHonestly(old, size);
        old = size;
      }
      const checkpoints = await allCheckpoints();
      expect(checkpoints.map((c) => [c.number, c.treeSize, c.rootHash])).toEqual(sizes.map((s, n) => [n, s, toHex(tree.root(s))]));
      expect(new Set(checkpoints.map((c) => c.timestamp)).size).toBeGreaterThan(0);
      expect(checkpoints.every((c) => c.timestamp > 1_600_000_000)).toBe(true);
    });

    it('refuses a root that rewrites history (inconsistent with the anchored one) with AuditAnchorInconsistentRoot', async () => {
      await anchorHonestly(0, 10);
      const forged = buildTree(20, 'forged'); // a different history whose own proof 10 -> 20 is valid for it
      const error = await expectChainError(
        f.client.anchor(10, 20, forged.root(20), forged.consistencyProof(10, 20)),
        'INCONSISTENT_ROOT',
        'AuditAnchorInconsistentRoot',
      );
      expect(error.args).toEqual({ oldSize: 10, newSize: 20, newRoot: toHex(forged.root(20)) });
      expect(await allCheckpoints()).toHaveLength(1);
    });

    it('refuses the honest proof sent with a root of another size', async () => {
      await anchorHonestly(0, 10);
      await expectChainError(f.client.anchor(10, 20, tree.root(21), tree.consistencyProof(10, 20)), 'INCONSISTENT_ROOT');
    });

    it('refuses an empty proof after the first checkpoint', async () => {
      await anchorHonestly(0, 10);
      await expectChainError(f.client.anchor(10, 20, tree.root(20), []), 'INCONSISTENT_ROOT');
    });

    it('refuses a proof for the first checkpoint with AuditAnchorUnexpectedProof', async () => {
      const error = await expectChainError(f.client.anchor(0, 4, tree.root(4), [tree.root(2)]), 'UNEXPECTED_PROOF', 'AuditAnchorUnexpectedProof');
      expect(error.args).toEqual({ proofLength: 1 });
    });

    it('refuses an oldSize that is not the anchored size with AuditAnchorStaleOldSize', async () => {
      await anchorHonestly(0, 8);
      const error = await expectChainError(
        f.client.anchor(4, 16, tree.root(16), tree.consistencyProof(4, 16)),
        'STALE_OLD_SIZE',
        'AuditAnchorStaleOldSize',
      );
      expect(error.args).toEqual({ oldSize: 4, storedSize: 8 });
    });

    it('refuses a newSize that is not larger with AuditAnchorSizeNotIncreasing', async () => {
      await expectChainError(f.client.anchor(0, 0, tree.root(1), []), 'SIZE_NOT_INCREASING');
      await anchorHonestly(0, 8);
      const same = await expectChainError(f.client.anchor(8, 8, tree.root(8), []), 'SIZE_NOT_INCREASING', 'AuditAnchorSizeNotIncreasing');
      expect(same.args).toEqual({ oldSize: 8, newSize: 8 });
      await expectChainError(f.client.anchor(8, 5, tree.root(5), []), 'SIZE_NOT_INCREASING');
    });

    it('refuses a tree size above MAX_TREE_SIZE with AuditAnchorTreeSizeTooLarge', async () => {
      const error = await expectChainError(f.client.anchor(0, 2 ** 40, tree.root(1), []), 'TREE_SIZE_TOO_LARGE', 'AuditAnchorTreeSizeTooLarge');
      expect(error.args).toEqual({ newSize: 2 ** 40, maxSize: 2 ** 40 - 1 });
      const max = 2 ** 40 - 1; // the largest size is storable (the first anchor trusts its root)
      await f.client.waitForAnchor(await f.client.anchor(0, max, tree.root(1), []));
      expect(await f.client.latestCheckpoint()).toMatchObject({ number: 0, treeSize: max });
    });

    it('lets only one of two anchorers racing from the same checkpoint win (compare-and-set on oldSize)', async () => {
      await anchorHonestly(0, 8);
      const rival = buildTree(64, 'rival');
      // Same first 8 leaves as `tree`, different afterwards: both extensions are consistent with checkpoint 8.
      const rivalTree = MerkleTree.fromLeafHashes([...Array.from({ length: 8 }, (_, i) => tree.leafHash(i)), ...Array.from({ length: 24 }, (_, i) => rival.leafHash(i))]);
      await f.adminClient.waitForTransaction(await f.adminClient.grantAnchorer(f.stranger.address));
      await f.provider.send('evm_setAutomine', [false]);
      try {
        const gasLimit = 500_000n; // no simulation: both are sent against the same state and mined together
        const first = await f.client.anchor(8, 16, tree.root(16), tree.consistencyProof(8, 16), { gasLimit });
        const second = await f.strangerClient.anchor(8, 32, rivalTree.root(32), rivalTree.consistencyProof(8, 32), { gasLimit });
        await f.provider.send('evm_mine', []);
        const winner = await f.client.waitForAnchor(first);
        expect(winner.checkpoint).toMatchObject({ number: 1, treeSize: 16 });
        await expectChainError(f.strangerClient.waitForAnchor(second), 'STALE_OLD_SIZE', 'AuditAnchorStaleOldSize');
      } finally {
        await f.provider.send('evm_setAutomine', [true]);
      }
      expect((await allCheckpoints()).map((c) => c.treeSize)).toEqual([8, 16]);
    });

    it('only ever extends its state: failed anchors leave every stored checkpoint unchanged', async () => {
      await anchorHonestly(0, 3);
      await anchorHonestly(3, 9);
      const before = await allCheckpoints();
      const attempts: Promise<unknown>[] = [
        f.client.anchor(9, 12, buildTree(12, 'x').root(12), buildTree(12, 'x').consistencyProof(9, 12)),
        f.client.anchor(3, 12, tree.root(12), tree.consistencyProof(3, 12)),
        f.client.anchor(9, 9, tree.root(9), []),
        f.client.anchor(0, 12, tree.root(12), []),
      ];
      for (const attempt of attempts) await expect(attempt).rejects.toBeInstanceOf(ChainError);
      expect(await allCheckpoints()).toEqual(before);
      await anchorHonestly(9, 12);
      const after = await allCheckpoints();
      expect(after.slice(0, before.length)).toEqual(before);
      expect(after).toHaveLength(before.length + 1);
    });
  });

  describe('roles', () => {
    it('refuses anchor from a key without ANCHORER_ROLE (NOT_ANCHORER)', async () => {
      const error = await expectChainError(f.strangerClient.anchor(0, 4, tree.root(4), []), 'NOT_ANCHORER', 'AccessControlUnauthorizedAccount');
      expect(error.args?.account).toBe(f.stranger.address.toLowerCase());
    });

    it('lets the admin grant and revoke ANCHORER_ROLE', async () => {
      await f.adminClient.waitForTransaction(await f.adminClient.grantAnchorer(f.stranger.address));
      expect(await f.client.isAnchorer(f.stranger.address)).toBe(true);
      await f.strangerClient.waitForAnchor(await f.strangerClient.anchor(0, 4, tree.root(4), []));
      await f.adminClient.waitForTransaction(await f.adminClient.revokeAnchorer(f.stranger.address));
      expect(await f.client.isAnchorer(f.stranger.address)).toBe(false);
      await expectChainError(f.strangerClient.anchor(4, 8, tree.root(8), tree.consistencyProof(4, 8)), 'NOT_ANCHORER');
    });

    it('refuses role changes and pausing from a non-admin (NOT_AUTHORIZED)', async () => {
      await expectChainError(f.client.grantAnchorer(f.stranger.address), 'NOT_AUTHORIZED', 'AccessControlUnauthorizedAccount');
      await expectChainError(f.client.revokeAnchorer(f.anchorer.address), 'NOT_AUTHORIZED');
      await expectChainError(f.strangerClient.pause(), 'NOT_AUTHORIZED');
    });
  });

  describe('deployment', () => {
    it('may start without an anchorer (the admin grants the role later)', async () => {
      const client = await deployAuditAnchor(f.admin, f.admin.address, ZeroAddress);
      expect(await client.isAnchorer(f.anchorer.address)).toBe(false);
      await expectChainError(client.anchor(0, 4, tree.root(4), []), 'NOT_ANCHORER');
    });
  });

  describe('pause', () => {
    it('refuses anchors while paused (PAUSED), keeps the checkpoints, and accepts anchors again after unpause', async () => {
      await anchorHonestly(0, 2);
      await anchorHonestly(2, 4); // checkpoints 0 and 1 share the slot that also holds the paused flag
      const before = await allCheckpoints();
      await f.adminClient.waitForTransaction(await f.adminClient.pause());
      expect(await f.client.isPaused()).toBe(true);
      await expectChainError(f.client.anchor(4, 9, tree.root(9), tree.consistencyProof(4, 9)), 'PAUSED', 'EnforcedPause');
      await expectChainError(f.client.unpause(), 'NOT_AUTHORIZED');
      expect(await allCheckpoints()).toEqual(before);
      await f.adminClient.waitForTransaction(await f.adminClient.unpause());
      expect(await f.client.isPaused()).toBe(false);
      await anchorHonestly(4, 9);
      expect((await allCheckpoints()).map((c) => c.treeSize)).toEqual([2, 4, 9]);
    });
  });

  describe('views', () => {
    it('reports no checkpoint before the first anchor', async () => {
      expect(await f.client.checkpointCount()).toBe(0);
      expect(await f.client.latestCheckpoint()).toBeNull();
      await expectChainError(f.client.checkpoint(0), 'UNKNOWN_CHECKPOINT', 'AuditAnchorUnknownCheckpoint');
    });

    it('reverts latestCheckpoint() before the first anchor with AuditAnchorNoCheckpoint', async () => {
      const contract = new Contract(f.client.address, AUDIT_ANCHOR_ABI, f.provider);
      const call = contract.latestCheckpoint().catch((err: unknown) => {
        throw decodeChainError(err, contract.interface, 'latestCheckpoint()');
      });
      await expectChainError(call, 'UNKNOWN_CHECKPOINT', 'AuditAnchorNoCheckpoint');
      await anchorHonestly(0, 6);
      expect((await contract.latestCheckpoint()).treeSize).toBe(6n);
    });

    it('reverts checkpoint(n) beyond the count with AuditAnchorUnknownCheckpoint', async () => {
      await anchorHonestly(0, 4);
      const error = await expectChainError(f.client.checkpoint(1), 'UNKNOWN_CHECKPOINT', 'AuditAnchorUnknownCheckpoint');
      expect(error.args).toEqual({ number: 1, count: 1 });
    });

    it('finds a checkpoint by tree size, and returns null for a size never anchored', async () => {
      const sizes = [2, 5, 6, 9, 17, 30, 31];
      let old = 0;
      for (const size of sizes) {
        await anchorHonestly(old, size);
        old = size;
      }
      for (const [number, size] of sizes.entries()) {
        expect(await f.client.findCheckpointByTreeSize(size)).toMatchObject({ number, treeSize: size, rootHash: toHex(tree.root(size)) });
      }
      for (const size of [0, 1, 3, 7, 18, 32, 1000]) expect(await f.client.findCheckpointByTreeSize(size)).toBeNull();
    });

    it('verifies inclusion proofs against an anchored size and rejects wrong ones', async () => {
      await anchorHonestly(0, 13);
      for (let index = 0; index < 13; index++) {
        expect(await f.client.verifyInclusion(tree.leafHash(index), index, 13, tree.inclusionProof(index, 13))).toBe(true);
      }
      const proof = tree.inclusionProof(4, 13);
      expect(await f.client.verifyInclusion(tree.leafHash(5), 4, 13, proof)).toBe(false);
      expect(await f.client.verifyInclusion(tree.leafHash(4), 5, 13, proof)).toBe(false);
      expect(await f.client.verifyInclusion(tree.leafHash(4), 4, 13, proof.slice(1))).toBe(false);
      expect(await f.client.verifyInclusion(tree.leafHash(4), 4, 13, [...proof, proof[0]])).toBe(false);
      expect(await f.client.verifyInclusion(tree.leafHash(4), 13, 13, proof)).toBe(false);
    });

    it('reverts verifyInclusion for a tree size that was never anchored (UNKNOWN_TREE_SIZE)', async () => {
      await anchorHonestly(0, 13);
      const error = await expectChainError(
        f.client.verifyInclusion(tree.leafHash(0), 0, 12, tree.inclusionProof(0, 12)),
        'UNKNOWN_TREE_SIZE',
        'AuditAnchorUnknownTreeSize',
      );
      expect(error.args).toEqual({ treeSize: 12 });
    });
  });
});
