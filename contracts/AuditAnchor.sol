// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title AuditAnchor: append-only anchor for the roots of an RFC 9162 Merkle log
/// @notice Stores the checkpoints (tree size, root hash, block timestamp) of Lethe's transparency log.
/// A new checkpoint is accepted only with an RFC 9162 consistency proof from the last anchored checkpoint,
/// checked here with the SHA-256 precompile, so the anchored history can be extended but never rewritten.
/// The first checkpoint (from the empty tree) is trusted as sent and needs no proof.
/// Roles: one admin (DEFAULT_ADMIN_ROLE, handed over only in two steps with a delay, OpenZeppelin's
/// AccessControlDefaultAdminRules) grants and revokes ANCHORER_ROLE, pauses, and sets `maxAnchorJump`, the
/// most entries one anchor may add; anchorers only anchor. A stolen anchorer key can still anchor a made-up
/// extension of the log, after which no honest anchor fits: the recovery is a successor AuditAnchor, deployed
/// with this one as its `predecessor` and the last checkpoint on it the operator vouches for, from which the
/// successor goes on (auditors follow the chain of predecessors, disregarding anchors beyond each vouch).
/// @dev Hashes follow RFC 9162: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right).
/// Storage is packed for gas: per checkpoint one fresh slot holds the root; (treeSize, timestamp) pairs of
/// 40 + 40 bits wait in the slot holding the count and the jump bound (shared with Pausable) and move three
/// at a time to a slot.
contract AuditAnchor is AccessControlDefaultAdminRules, Pausable {
    /// @notice One anchored checkpoint of the log.
    /// @param treeSize number of leaves in the log at this checkpoint
    /// @param rootHash RFC 9162 root hash of the first `treeSize` leaves
    /// @param timestamp block timestamp (seconds) of the block that anchored it
    struct Checkpoint {
        uint64 treeSize;
        bytes32 rootHash;
        uint64 timestamp;
    }

    /// @notice Role allowed to call `anchor`.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    /// @notice Largest tree size this contract can store (2^40 - 1, about 1.1e12 leaves).
    uint64 public constant MAX_TREE_SIZE = type(uint40).max;

    uint256 private constant _MASK40 = type(uint40).max;
    uint256 private constant _META_MASK = type(uint80).max;
    uint256 private constant _META_BITS = 80;
    uint256 private constant _METAS_PER_SLOT = 3;
    uint256 private constant _JUMP_SHIFT = 40;
    uint256 private constant _REGION_SHIFT = 80;

    // One slot shared with Pausable._paused (declared just before it, so `whenNotPaused` has already made the
    // slot warm when `anchor` reads it). Bits 0-39: checkpoint count; 40-79: maxAnchorJump; 80-239: a region
    // of two 80-bit metas. A meta is treeSize (bits 0-39) | timestamp << 40. While count % 3 is 1 or 2, the
    // region holds the metas of the checkpoints numbered from count - count % 3 that are not yet in `_metas`,
    // the latest last; when count % 3 is 0 (they have all moved), it holds a copy of the latest meta, so the
    // latest tree size is always in this slot. Every third anchor moves three metas to a fresh `_metas` slot;
    // the other two cost no extra storage write.
    uint248 private _head;
    mapping(uint256 number => bytes32 rootHash) private _roots;
    mapping(uint256 group => uint256 threeMetas) private _metas;

    address private immutable _PREDECESSOR;
    uint64 private immutable _VOUCHED_SIZE;
    bytes32 private immutable _VOUCHED_ROOT;

    /// @notice Emitted once per accepted checkpoint, right after it is stored.
    /// @param number checkpoint number (0 for the first)
    /// @param treeSize tree size of the new checkpoint
    /// @param rootHash root hash of the new checkpoint
    /// @param oldSize tree size of the previous checkpoint (0 for the first)
    event CheckpointAnchored(uint256 indexed number, uint64 indexed treeSize, bytes32 indexed rootHash, uint64 oldSize);

    /// @notice Emitted when the most entries one anchor may add is set (at deployment, `oldMaxJump` 0) or changed.
    /// @param oldMaxJump the bound before (0 at deployment)
    /// @param newMaxJump the bound from now on
    event MaxAnchorJumpChanged(uint64 indexed oldMaxJump, uint64 indexed newMaxJump);

    /// @notice Emitted at the deployment of a successor: the checkpoint on `predecessor` the operator vouches for,
    /// stored as this contract's checkpoint 0.
    /// @param predecessor the AuditAnchor this one succeeds (its anchorer key was compromised)
    /// @param treeSize tree size of the vouched checkpoint
    /// @param rootHash root hash of the vouched checkpoint
    event PredecessorVouched(address indexed predecessor, uint64 indexed treeSize, bytes32 indexed rootHash);

    /// @notice `oldSize` is not the tree size of the last anchored checkpoint (another anchor won the race).
    error AuditAnchorStaleOldSize(uint64 oldSize, uint64 storedSize);
    /// @notice `newSize` is not larger than the tree size of the last anchored checkpoint.
    error AuditAnchorSizeNotIncreasing(uint64 oldSize, uint64 newSize);
    /// @notice `newSize` exceeds `MAX_TREE_SIZE`.
    error AuditAnchorTreeSizeTooLarge(uint64 newSize, uint64 maxSize);
    /// @notice `newSize - oldSize` exceeds `maxAnchorJump`: anchor the entries in several steps.
    error AuditAnchorJumpTooLarge(uint64 oldSize, uint64 newSize, uint64 maxJump);
    /// @notice A jump bound of 0 (nothing could be anchored) or beyond `MAX_TREE_SIZE`.
    error AuditAnchorMaxJumpOutOfRange(uint64 maxJump, uint64 maxSize);
    /// @notice The first checkpoint (from the empty tree) was sent with a non-empty proof.
    error AuditAnchorUnexpectedProof(uint256 proofLength);
    /// @notice The consistency proof does not prove that `newRoot` extends the last anchored checkpoint.
    error AuditAnchorInconsistentRoot(uint64 oldSize, uint64 newSize, bytes32 newRoot);
    /// @notice No checkpoint has that number.
    error AuditAnchorUnknownCheckpoint(uint256 number, uint256 count);
    /// @notice No checkpoint has been anchored yet.
    error AuditAnchorNoCheckpoint();
    /// @notice No anchored checkpoint has that tree size.
    error AuditAnchorUnknownTreeSize(uint64 treeSize);
    /// @notice A successor must vouch for a checkpoint its predecessor holds (that tree size with that root).
    error AuditAnchorUnknownVouchedCheckpoint(address predecessor, uint64 treeSize, bytes32 rootHash);
    /// @notice A vouched checkpoint was given without a predecessor to hold it.
    error AuditAnchorVouchedWithoutPredecessor(uint64 treeSize, bytes32 rootHash);

    /// @notice Deploys the anchor: a fresh one (predecessor 0, vouched checkpoint (0, 0)), or the successor of a
    /// compromised one, starting from the checkpoint on it that the operator vouches for.
    /// @param admin receives DEFAULT_ADMIN_ROLE (may differ from the deployer); reverts with OpenZeppelin's
    /// AccessControlInvalidDefaultAdmin when it is the zero address
    /// @param adminDelay seconds a new admin waits between `beginDefaultAdminTransfer` and accepting it
    /// @param anchorer receives ANCHORER_ROLE unless it is the zero address
    /// @param maxAnchorJump_ most entries one anchor may add, 1 to MAX_TREE_SIZE
    /// @param predecessor_ the AuditAnchor this one succeeds, or the zero address
    /// @param vouchedSize tree size of a checkpoint `predecessor_` holds (0 without a predecessor)
    /// @param vouchedRoot its root hash, which must be the one `predecessor_` holds (0 without a predecessor)
    constructor(
        address admin,
        uint48 adminDelay,
        address anchorer,
        uint64 maxAnchorJump_,
        address predecessor_,
        uint64 vouchedSize,
        bytes32 vouchedRoot
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        if (anchorer != address(0)) _grantRole(ANCHORER_ROLE, anchorer);
        _checkMaxAnchorJump(maxAnchorJump_);
        uint256 head = uint256(maxAnchorJump_) << _JUMP_SHIFT;
        if (predecessor_ == address(0)) {
            if (vouchedSize != 0 || vouchedRoot != bytes32(0)) revert AuditAnchorVouchedWithoutPredecessor(vouchedSize, vouchedRoot);
        } else {
            if (!_holdsCheckpoint(predecessor_, vouchedSize, vouchedRoot)) {
                revert AuditAnchorUnknownVouchedCheckpoint(predecessor_, vouchedSize, vouchedRoot);
            }
            _roots[0] = vouchedRoot;
            uint256 meta = (uint256(uint40(block.timestamp)) << 40) | vouchedSize;
            head |= (meta << _REGION_SHIFT) | 1;
        }
        _head = uint248(head);
        _PREDECESSOR = predecessor_;
        _VOUCHED_SIZE = vouchedSize;
        _VOUCHED_ROOT = vouchedRoot;
        emit MaxAnchorJumpChanged(0, maxAnchorJump_);
        if (predecessor_ != address(0)) emit PredecessorVouched(predecessor_, vouchedSize, vouchedRoot);
    }

    /// @notice Anchors checkpoint (`newSize`, `newRoot`) after checking that it extends the last one.
    /// @dev Compare-and-set on `oldSize`: of two anchorers racing from the same checkpoint only one succeeds.
    /// @param oldSize tree size of the last anchored checkpoint (0 when none)
    /// @param newSize tree size of the new checkpoint, larger than `oldSize` by at most `maxAnchorJump`
    /// @param newRoot RFC 9162 root hash of the first `newSize` leaves
    /// @param consistencyProof RFC 9162 consistency proof from `oldSize` to `newSize`; empty when `oldSize` is 0
    function anchor(uint64 oldSize, uint64 newSize, bytes32 newRoot, bytes32[] calldata consistencyProof)
        external
        onlyRole(ANCHORER_ROLE)
        whenNotPaused
    {
        uint256 head = _head;
        uint256 count = head & _MASK40;
        uint256 position = count % _METAS_PER_SLOT; // of the new checkpoint's meta in the region
        uint256 region = head >> _REGION_SHIFT;
        uint64 storedSize;
        unchecked {
            // The latest meta: the last pending one, or (position 0) the copy.
            storedSize = uint64((region >> ((position == 0 ? 0 : position - 1) * _META_BITS)) & _MASK40);
        }
        if (oldSize != storedSize) revert AuditAnchorStaleOldSize(oldSize, storedSize);
        if (newSize <= oldSize) revert AuditAnchorSizeNotIncreasing(oldSize, newSize);
        if (newSize > MAX_TREE_SIZE) revert AuditAnchorTreeSizeTooLarge(newSize, MAX_TREE_SIZE);
        uint256 maxJump = (head >> _JUMP_SHIFT) & _MASK40;
        if (newSize - oldSize > maxJump) revert AuditAnchorJumpTooLarge(oldSize, newSize, uint64(maxJump));
        if (oldSize == 0) {
            if (consistencyProof.length != 0) revert AuditAnchorUnexpectedProof(consistencyProof.length);
        } else if (!_verifyConsistency(oldSize, newSize, _roots[count - 1], newRoot, consistencyProof)) {
            revert AuditAnchorInconsistentRoot(oldSize, newSize, newRoot);
        }

        _roots[count] = newRoot;
        unchecked {
            uint256 meta = (uint256(uint40(block.timestamp)) << 40) | newSize;
            if (position == 0) {
                region = meta; // replaces the copy of the previous latest meta
            } else if (position == _METAS_PER_SLOT - 1) {
                _metas[count / _METAS_PER_SLOT] = region | (meta << (position * _META_BITS));
                region = meta; // the copy
            } else {
                region |= meta << (position * _META_BITS);
            }
            _head = uint248((region << _REGION_SHIFT) | (maxJump << _JUMP_SHIFT) | (count + 1));
        }
        emit CheckpointAnchored(count, newSize, newRoot, oldSize);
    }

    /// @notice Sets the most entries one anchor may add. Only the admin.
    /// @param newMaxJump the new bound, 1 to MAX_TREE_SIZE
    function setMaxAnchorJump(uint64 newMaxJump) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkMaxAnchorJump(newMaxJump);
        uint256 head = _head;
        uint64 oldMaxJump = uint64((head >> _JUMP_SHIFT) & _MASK40);
        _head = uint248((head & ~(_MASK40 << _JUMP_SHIFT)) | (uint256(newMaxJump) << _JUMP_SHIFT));
        emit MaxAnchorJumpChanged(oldMaxJump, newMaxJump);
    }

    /// @notice Stops `anchor` until `unpause`. Only the admin.
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @notice Lets `anchor` run again. Only the admin.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @notice Number of anchored checkpoints.
    /// @return count the number of checkpoints; checkpoint numbers run from 0 to count - 1
    function checkpointCount() external view returns (uint256 count) {
        return _head & _MASK40;
    }

    /// @notice The most entries one anchor may add (`newSize - oldSize`).
    /// @return maxJump the bound, set by the admin
    function maxAnchorJump() external view returns (uint64 maxJump) {
        return uint64((_head >> _JUMP_SHIFT) & _MASK40);
    }

    /// @notice The AuditAnchor this one succeeds and the checkpoint on it the operator vouched for (this
    /// contract's checkpoint 0); all zero for a contract that succeeds none. Anchors on the predecessor beyond
    /// `vouchedSize` are not part of the history this contract carries on.
    /// @return predecessor_ the predecessor's address, or the zero address
    /// @return vouchedSize tree size of the vouched checkpoint
    /// @return vouchedRoot root hash of the vouched checkpoint
    function predecessor() external view returns (address predecessor_, uint64 vouchedSize, bytes32 vouchedRoot) {
        return (_PREDECESSOR, _VOUCHED_SIZE, _VOUCHED_ROOT);
    }

    /// @notice The last anchored checkpoint. Reverts with AuditAnchorNoCheckpoint when there is none.
    /// @return checkpoint_ the checkpoint with the largest tree size
    function latestCheckpoint() external view returns (Checkpoint memory checkpoint_) {
        uint256 head = _head;
        uint256 count = head & _MASK40;
        if (count == 0) revert AuditAnchorNoCheckpoint();
        return _readCheckpoint(count - 1, head);
    }

    /// @notice Checkpoint number `number`. Reverts with AuditAnchorUnknownCheckpoint when out of range.
    /// @param number checkpoint number, from 0
    /// @return checkpoint_ the checkpoint
    function checkpoint(uint256 number) external view returns (Checkpoint memory checkpoint_) {
        uint256 head = _head;
        uint256 count = head & _MASK40;
        if (number >= count) revert AuditAnchorUnknownCheckpoint(number, count);
        return _readCheckpoint(number, head);
    }

    /// @notice Finds the checkpoint anchored at tree size `treeSize` (binary search; sizes strictly increase).
    /// @param treeSize tree size to look for
    /// @return found whether a checkpoint has exactly that tree size
    /// @return number its checkpoint number (0 when not found)
    function checkpointNumberOf(uint64 treeSize) public view returns (bool found, uint256 number) {
        uint256 head = _head;
        uint256 count = head & _MASK40;
        uint256 low = 0;
        uint256 high = count;
        while (low < high) {
            uint256 mid = (low + high) >> 1;
            if (_metaAt(mid, head) & _MASK40 < treeSize) low = mid + 1;
            else high = mid;
        }
        if (low < count && _metaAt(low, head) & _MASK40 == treeSize) return (true, low);
        return (false, 0);
    }

    /// @notice Checks an RFC 9162 inclusion proof against the root anchored at tree size `treeSize`.
    /// @dev Returns false for any proof that does not verify (wrong length, `index` >= `treeSize`, wrong hashes).
    /// Reverts with AuditAnchorUnknownTreeSize when no checkpoint has tree size `treeSize`.
    /// @param leafHash RFC 9162 leaf hash, SHA-256(0x00 || entry)
    /// @param index leaf index, from 0
    /// @param treeSize an anchored tree size
    /// @param proof audit path from the leaf to the root, bottom up
    /// @return valid whether the leaf is at `index` in the anchored tree of size `treeSize`
    function verifyInclusion(bytes32 leafHash, uint64 index, uint64 treeSize, bytes32[] calldata proof)
        external
        view
        returns (bool valid)
    {
        (bool found, uint256 number) = checkpointNumberOf(treeSize);
        if (!found) revert AuditAnchorUnknownTreeSize(treeSize);
        if (index >= treeSize) return false;
        (bool complete, bytes32 root) = _rootFromInclusionProof(index, treeSize, leafHash, proof);
        return complete && root == _roots[number];
    }

    /// @notice Checks an RFC 9162 consistency proof between two tree heads, as `anchor` does (no storage read).
    /// @dev Never reverts; returns false for size1 = 0 (no proof from the empty tree), size1 > size2,
    /// equal sizes with a non-empty proof or different roots, and any proof that does not verify.
    /// @param size1 size of the older tree
    /// @param size2 size of the newer tree
    /// @param root1 root of the older tree
    /// @param root2 root of the newer tree
    /// @param proof consistency proof
    /// @return valid whether the tree (size2, root2) extends the tree (size1, root1)
    function verifyConsistency(uint64 size1, uint64 size2, bytes32 root1, bytes32 root2, bytes32[] calldata proof)
        external
        view
        returns (bool valid)
    {
        return _verifyConsistency(size1, size2, root1, root2, proof);
    }

    function _checkMaxAnchorJump(uint64 maxJump) private pure {
        if (maxJump == 0 || maxJump > MAX_TREE_SIZE) revert AuditAnchorMaxJumpOutOfRange(maxJump, MAX_TREE_SIZE);
    }

    /// Whether `predecessor_` holds a checkpoint of tree size `treeSize` with root `rootHash` (false for an
    /// address without code or one that does not answer as AuditAnchor).
    function _holdsCheckpoint(address predecessor_, uint64 treeSize, bytes32 rootHash) private view returns (bool) {
        if (predecessor_.code.length == 0) return false;
        try AuditAnchor(predecessor_).checkpointNumberOf(treeSize) returns (bool found, uint256 number) {
            if (!found) return false;
            try AuditAnchor(predecessor_).checkpoint(number) returns (Checkpoint memory held) {
                return held.rootHash == rootHash;
            } catch {
                return false;
            }
        } catch {
            return false;
        }
    }

    function _readCheckpoint(uint256 number, uint256 head) private view returns (Checkpoint memory) {
        uint256 meta = _metaAt(number, head);
        return Checkpoint({treeSize: uint64(meta & _MASK40), rootHash: _roots[number], timestamp: uint64(meta >> 40)});
    }

    /// The 80-bit meta (treeSize | timestamp << 40) of checkpoint `number` < count, from `_metas` or `_head`'s region.
    function _metaAt(uint256 number, uint256 head) private view returns (uint256) {
        unchecked {
            uint256 count = head & _MASK40;
            uint256 moved = count - (count % _METAS_PER_SLOT);
            uint256 packed = number < moved ? _metas[number / _METAS_PER_SLOT] : head >> _REGION_SHIFT;
            return (packed >> ((number % _METAS_PER_SLOT) * _META_BITS)) & _META_MASK;
        }
    }

    /// RFC 9162 section 2.1.4.2, with the proof in calldata.
    function _verifyConsistency(uint256 size1, uint256 size2, bytes32 root1, bytes32 root2, bytes32[] calldata proof)
        private
        view
        returns (bool valid)
    {
        if (size1 == 0 || size2 < size1) return false;
        if (size1 == size2) return proof.length == 0 && root1 == root2;
        if (proof.length == 0) return false;
        // The loop of RFC 9162 section 2.1.4.2 in assembly: it runs once per proof hash inside `anchor`, and
        // Solidity's calldata bounds checks and call overhead were a third of its cost. Names as in the RFC:
        // fn, sn the node indices, fr, sr the running roots of the old and new trees, c the proof hash.
        assembly ("memory-safe") {
            let buf := mload(0x40) // 0x01 || left || right, past the free memory pointer (scratch)
            mstore8(buf, 0x01)
            let fn := sub(size1, 1)
            let sn := sub(size2, 1)
            let ptr := proof.offset
            let end := add(ptr, shl(5, proof.length))
            let fr := root1 // size1 a power of two: the old tree is a complete subtree, root1 comes first
            if and(size1, fn) {
                fr := calldataload(ptr)
                ptr := add(ptr, 32)
            }
            let sr := fr
            for {} and(fn, 1) {} {
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            valid := 1
            for {} lt(ptr, end) { ptr := add(ptr, 32) } {
                if iszero(sn) {
                    valid := 0 // more hashes than the tree has levels
                    break
                }
                let c := calldataload(ptr)
                switch or(and(fn, 1), eq(fn, sn))
                case 0 {
                    mstore(add(buf, 1), sr)
                    mstore(add(buf, 33), c)
                    if iszero(staticcall(gas(), 0x02, buf, 65, 0x00, 0x20)) { revert(0, 0) }
                    sr := mload(0x00)
                }
                default {
                    mstore(add(buf, 1), c)
                    mstore(add(buf, 33), fr)
                    if iszero(staticcall(gas(), 0x02, buf, 65, 0x00, 0x20)) { revert(0, 0) }
                    fr := mload(0x00)
                    mstore(add(buf, 33), sr)
                    if iszero(staticcall(gas(), 0x02, buf, 65, 0x00, 0x20)) { revert(0, 0) }
                    sr := mload(0x00)
                    for {} and(iszero(and(fn, 1)), iszero(iszero(fn))) {} {
                        fn := shr(1, fn)
                        sn := shr(1, sn)
                    }
                }
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            valid := and(valid, and(iszero(sn), and(eq(fr, root1), eq(sr, root2))))
        }
    }

    /// RFC 9162 section 2.1.3.2; returns (false, 0) when the proof has too many hashes or too few.
    function _rootFromInclusionProof(uint256 index, uint256 size, bytes32 leafHash, bytes32[] calldata proof)
        private
        view
        returns (bool complete, bytes32 root)
    {
        unchecked {
            uint256 fn = index;
            uint256 sn = size - 1;
            bytes32 r = leafHash;
            uint256 length = proof.length;
            for (uint256 i; i < length; ++i) {
                if (sn == 0) return (false, 0);
                bytes32 p = proof[i];
                if (fn & 1 == 1 || fn == sn) {
                    r = _hashChildren(p, r);
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                } else {
                    r = _hashChildren(r, p);
                }
                fn >>= 1;
                sn >>= 1;
            }
            if (sn != 0) return (false, 0);
            return (true, r);
        }
    }

    /// SHA-256(0x01 || left || right) with the precompile at address 0x02; the input sits past the free pointer.
    function _hashChildren(bytes32 left, bytes32 right) private view returns (bytes32 hash) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x01)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            if iszero(staticcall(gas(), 0x02, p, 65, 0x00, 0x20)) { revert(0, 0) }
            hash := mload(0x00)
        }
    }
}
