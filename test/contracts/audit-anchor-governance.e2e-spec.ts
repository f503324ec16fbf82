// Finding 5 of issue 15 at the contract: one admin handed over only after a delay, anchorers that can do
// nothing but anchor, a bound on how far one anchor may jump, and successors that start from a checkpoint
// of their predecessor the operator vouches for.
import { Contract, ZeroAddress, ZeroHash, id, type TransactionReceipt, type Wallet } from 'ethers';
import { MerkleTree, toHex } from '@lethe/merkle';
import { AUDIT_ANCHOR_ABI, AnchorClient, MAX_TREE_SIZE, decodeChainError, deployAuditAnchor } from '@lethe/chain';
import { buildTree, expectChainError, useChainFixture } from './support/chain-fixture';

const DAY = 86_400;

describe('AuditAnchor governance: admin rules, the jump bound and successors', () => {
  const f = useChainFixture();
  const tree = buildTree(64);

  async function anchorHonestly(client: AnchorClient, oldSize: number, newSize: number, t: MerkleTree = tree): Promise<void> {
    await client.waitForAnchor(await client.anchor(oldSize, newSize, t.root(newSize), oldSize === 0 ? [] : t.consistencyProof(oldSize, newSize)));
  }

  /** Sends `method(...args)` to the contract at `address` from `wallet`; resolves with the receipt or throws the decoded ChainError. */
  async function send(wallet: Wallet, address: string, method: string, ...args: unknown[]): Promise<TransactionReceipt> {
    const contract = new Contract(address, AUDIT_ANCHOR_ABI, wallet);
    try {
      const tx = await contract.getFunction(method)(...args);
      return (await tx.wait()) as TransactionReceipt;
    } catch (err) {
      throw decodeChainError(err, contract.interface, method);
    }
  }

  function view(address: string): Contract {
    return new Contract(address, AUDIT_ANCHOR_ABI, f.provider);
  }

  /** The events of `name` the contract at `address` emitted in `receipt`, as plain arguments. */
  function eventsOf(receipt: TransactionReceipt, address: string, name: string): unknown[][] {
    const { interface: iface } = view(address);
    return receipt.logs
      .filter((l) => l.address.toLowerCase() === address.toLowerCase())
      .map((l) => iface.parseLog(l))
      .filter((e) => e?.name === name)
      .map((e) => [...e!.args]);
  }

  describe('admin', () => {
    it('hands DEFAULT_ADMIN_ROLE over only in two steps, after the delay set at deployment', async () => {
      const client = await deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, { adminDelaySeconds: 3 * DAY });
      expect(await view(client.address).defaultAdminDelay()).toBe(BigInt(3 * DAY));
      await send(f.admin, client.address, 'beginDefaultAdminTransfer', f.stranger.address);
      const [, schedule] = (await view(client.address).pendingDefaultAdmin()) as [string, bigint];
      const early = await expectChainError(
        send(f.stranger, client.address, 'acceptDefaultAdminTransfer'),
        'NOT_AUTHORIZED',
        'AccessControlEnforcedDefaultAdminDelay',
      );
      expect(early.args).toEqual({ schedule: Number(schedule) });
      expect(await view(client.address).defaultAdmin()).toBe(f.admin.address);
      await f.provider.send('evm_increaseTime', [3 * DAY + 1]);
      await f.provider.send('evm_mine', []);
      await send(f.stranger, client.address, 'acceptDefaultAdminTransfer');
      expect(await view(client.address).defaultAdmin()).toBe(f.stranger.address);
      expect(await view(client.address).hasRole(ZeroHash, f.admin.address)).toBe(false);
      await expectChainError(send(f.admin, client.address, 'pause'), 'NOT_AUTHORIZED', 'AccessControlUnauthorizedAccount');
    });

    it('refuses DEFAULT_ADMIN_ROLE granted directly, even by the admin', async () => {
      await expectChainError(
        send(f.admin, f.client.address, 'grantRole', ZeroHash, f.stranger.address),
        'NOT_AUTHORIZED',
        'AccessControlEnforcedDefaultAdminRules',
      );
    });

    it('refuses the zero address as admin with AccessControlInvalidDefaultAdmin', async () => {
      await expectChainError(deployAuditAnchor(f.admin, ZeroAddress, f.anchorer.address), 'INVALID_ARGUMENT', 'AccessControlInvalidDefaultAdmin');
    });

    it('lets the deployer be neither admin nor anchorer', async () => {
      const client = await deployAuditAnchor(f.stranger, f.admin.address, f.anchorer.address);
      expect(await view(client.address).defaultAdmin()).toBe(f.admin.address);
      expect(await client.isAnchorer(f.stranger.address)).toBe(false);
      expect(await view(client.address).hasRole(ZeroHash, f.stranger.address)).toBe(false);
    });
  });

  describe('the anchorer', () => {
    it('cannot grant roles, make itself admin, change the bound or pause', async () => {
      const anchorerRole = id('ANCHORER_ROLE');
      for (const [method, args] of [
        ['grantRole', [anchorerRole, f.stranger.address]],
        ['revokeRole', [anchorerRole, f.anchorer.address]],
        ['beginDefaultAdminTransfer', [f.anchorer.address]],
        ['setMaxAnchorJump', [1]],
        ['pause', []],
      ] as [string, unknown[]][]) {
        const error = await expectChainError(send(f.anchorer, f.client.address, method, ...args), 'NOT_AUTHORIZED', 'AccessControlUnauthorizedAccount');
        expect(error.args).toEqual({ account: f.anchorer.address.toLowerCase(), neededRole: ZeroHash.slice(2) });
      }
      await expectChainError(
        send(f.anchorer, f.client.address, 'grantRole', ZeroHash, f.anchorer.address),
        'NOT_AUTHORIZED',
        'AccessControlEnforcedDefaultAdminRules',
      );
      expect(await f.client.isAnchorer(f.stranger.address)).toBe(false);
      expect(await f.client.maxAnchorJump()).toBe(MAX_TREE_SIZE);
    });
  });

  describe('the jump bound', () => {
    it('refuses an anchor that adds more than maxAnchorJump entries with AuditAnchorJumpTooLarge, the first one included', async () => {
      const client = await deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, { maxAnchorJump: 5 });
      const anchorer = await AnchorClient.connect(client.address, f.anchorer);
      expect(await anchorer.maxAnchorJump()).toBe(5);
      const first = await expectChainError(anchorer.anchor(0, 6, tree.root(6), []), 'JUMP_TOO_LARGE', 'AuditAnchorJumpTooLarge');
      expect(first.args).toEqual({ oldSize: 0, newSize: 6, maxJump: 5 });
      await anchorHonestly(anchorer, 0, 5);
      const later = await expectChainError(anchorer.anchor(5, 11, tree.root(11), tree.consistencyProof(5, 11)), 'JUMP_TOO_LARGE', 'AuditAnchorJumpTooLarge');
      expect(later.args).toEqual({ oldSize: 5, newSize: 11, maxJump: 5 });
      await anchorHonestly(anchorer, 5, 10);
      expect((await anchorer.latestCheckpoint())?.treeSize).toBe(10);
    });

    it('lets the admin change the bound, with MaxAnchorJumpChanged, and keeps the checkpoints packed beside it', async () => {
      const client = await deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, { maxAnchorJump: 3 });
      const deployment = await f.provider.getTransactionReceipt((await f.provider.getBlock(client.deploymentBlock, true))!.transactions[0]);
      expect(eventsOf(deployment!, client.address, 'MaxAnchorJumpChanged')).toEqual([[0n, 3n]]);
      const anchorer = await AnchorClient.connect(client.address, f.anchorer);
      await anchorHonestly(anchorer, 0, 3);
      await anchorHonestly(anchorer, 3, 5);
      const receipt = await send(f.admin, client.address, 'setMaxAnchorJump', 40);
      expect(eventsOf(receipt, client.address, 'MaxAnchorJumpChanged')).toEqual([[3n, 40n]]);
      expect(await anchorer.maxAnchorJump()).toBe(40);
      await anchorHonestly(anchorer, 5, 45); // the third checkpoint: moves the pending metas to their own slot
      await anchorHonestly(anchorer, 45, 46);
      const checkpoints = await Promise.all([0, 1, 2, 3].map((n) => anchorer.checkpoint(n)));
      expect(checkpoints.map((c) => [c.treeSize, c.rootHash])).toEqual([3, 5, 45, 46].map((s) => [s, toHex(tree.root(s))]));
      expect(await anchorer.maxAnchorJump()).toBe(40); // anchoring kept it
      await send(f.admin, client.address, 'setMaxAnchorJump', 1);
      expect((await anchorer.latestCheckpoint())?.treeSize).toBe(46); // changing it kept the checkpoints
      await expectChainError(anchorer.anchor(46, 48, tree.root(48), tree.consistencyProof(46, 48)), 'JUMP_TOO_LARGE');
    });

    it('refuses a bound of 0 or beyond MAX_TREE_SIZE with AuditAnchorMaxJumpOutOfRange', async () => {
      for (const bound of [0, MAX_TREE_SIZE + 1]) {
        const error = await expectChainError(send(f.admin, f.client.address, 'setMaxAnchorJump', bound), 'INVALID_ARGUMENT', 'AuditAnchorMaxJumpOutOfRange');
        expect(error.args).toEqual({ maxJump: bound, maxSize: MAX_TREE_SIZE });
        await expectChainError(deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, { maxAnchorJump: bound }), 'INVALID_ARGUMENT', 'AuditAnchorMaxJumpOutOfRange');
      }
    });
  });

  describe('successors', () => {
    it('records its predecessor and the vouched checkpoint, which becomes its checkpoint 0, and goes on from there', async () => {
      await anchorHonestly(f.client, 0, 8);
      await anchorHonestly(f.client, 8, 13);
      const successor = await deployAuditAnchor(f.admin, f.admin.address, f.stranger.address, {
        maxAnchorJump: 20,
        vouched: { predecessor: f.client.address, treeSize: 8, rootHash: tree.root(8) },
      });
      expect(await successor.predecessor()).toEqual({ address: f.client.address.toLowerCase(), vouchedSize: 8, vouchedRoot: toHex(tree.root(8)) });
      const block = await f.provider.getBlock(successor.deploymentBlock, true);
      expect(await successor.latestCheckpoint()).toEqual({ number: 0, treeSize: 8, rootHash: toHex(tree.root(8)), timestamp: block!.timestamp });
      const deployment = await f.provider.getTransactionReceipt(block!.transactions[0]);
      expect(eventsOf(deployment!, successor.address, 'PredecessorVouched')).toEqual([
        [f.client.address, 8n, `0x${toHex(tree.root(8))}`],
      ]);
      expect(eventsOf(deployment!, successor.address, 'CheckpointAnchored')).toEqual([]); // vouched, not anchored
      expect(await f.client.predecessor()).toBeNull();

      // It goes on from the vouched checkpoint, with a history other than the predecessor's beyond it.
      const other = buildTree(30, 'b', 8);
      const anchorer = await AnchorClient.connect(successor.address, f.stranger);
      await expectChainError(anchorer.anchor(0, 4, other.root(4), []), 'STALE_OLD_SIZE', 'AuditAnchorStaleOldSize');
      await expectChainError(anchorer.anchor(8, 20, buildTree(20, 'c').root(20), buildTree(20, 'c').consistencyProof(8, 20)), 'INCONSISTENT_ROOT');
      await anchorHonestly(anchorer, 8, 20, other);
      await anchorHonestly(anchorer, 20, 30, other);
      expect((await Promise.all([0, 1, 2].map((n) => successor.checkpoint(n)))).map((c) => c.treeSize)).toEqual([8, 20, 30]);
      expect(await successor.findCheckpointByTreeSize(8)).toMatchObject({ number: 0 });
      expect(await successor.verifyInclusion(other.leafHash(3), 3, 8, other.inclusionProof(3, 8))).toBe(true);
      expect((await f.client.latestCheckpoint())?.treeSize).toBe(13); // the predecessor is left as it was
    });

    it('refuses a vouched checkpoint its predecessor does not hold with AuditAnchorUnknownVouchedCheckpoint', async () => {
      await anchorHonestly(f.client, 0, 8);
      const cases: [string, number, Uint8Array][] = [
        [f.client.address, 8, tree.root(7)], // the root of another size
        [f.client.address, 7, tree.root(7)], // a size never anchored
        [f.client.address, 0, new Uint8Array(32)], // nothing
        [f.stranger.address, 8, tree.root(8)], // an account without code
      ];
      for (const [predecessor, treeSize, rootHash] of cases) {
        const error = await expectChainError(
          deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, { vouched: { predecessor, treeSize, rootHash } }),
          'INVALID_ARGUMENT',
          'AuditAnchorUnknownVouchedCheckpoint',
        );
        expect(error.args).toEqual({ predecessor: predecessor.toLowerCase(), treeSize, rootHash: toHex(rootHash) });
      }
    });

    it('refuses a vouched checkpoint without a predecessor with AuditAnchorVouchedWithoutPredecessor', async () => {
      const error = await expectChainError(
        deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, { vouched: { predecessor: ZeroAddress, treeSize: 8, rootHash: tree.root(8) } }),
        'INVALID_ARGUMENT',
        'AuditAnchorVouchedWithoutPredecessor',
      );
      expect(error.args).toEqual({ treeSize: 8, rootHash: toHex(tree.root(8)) });
    });

    it('succeeds a successor, vouching for any checkpoint it holds (its vouched checkpoint 0 included)', async () => {
      await anchorHonestly(f.client, 0, 8);
      const second = await deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, {
        vouched: { predecessor: f.client.address, treeSize: 8, rootHash: tree.root(8) },
      });
      const third = await deployAuditAnchor(f.admin, f.admin.address, f.anchorer.address, {
        vouched: { predecessor: second.address, treeSize: 8, rootHash: tree.root(8) },
      });
      expect(await third.predecessor()).toMatchObject({ address: second.address.toLowerCase(), vouchedSize: 8 });
      await anchorHonestly(await AnchorClient.connect(third.address, f.anchorer), 8, 9);
    });
  });
});
