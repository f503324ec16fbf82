// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title AuditAnchor: append-only anchor for the roots of an RFC 9162 Merkle log
/// @notice Stores the checkpoints (tree size, root hash, block timestamp) of Lethe's transparency log.
/// A new checkpoint is accepted only with an RFC 9162 consistency proof from the last anchored checkpoint,
/// checked here with the SHA-256 precompile, so the anchored history can be extended but never rewritten.
/// The first checkpoint (from the empty tree) is trusted as sent and needs no proof.
/// @dev Hashes follow RFC 9162: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right).
/// Storage is packed for gas: per checkpoint one fresh slot holds the root; (treeSize, timestamp) pairs of
/// 40 + 40 bits wait in the slot holding the count (shared with Pausable) and move three at a time to a slot.
contract AuditAnchor is AccessControl, Pausable {
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

    // One slot shared with Pausable._paused (declared just before it, so `whenNotPaused` has already made the
    // slot warm when `anchor` reads it). Bits 0-39: checkpoint count; 40-79: latest tree size; 80-239: the
    // metas of the checkpoints numbered from count - count % 3 that are not yet in `_metas` (at most two).
    // A meta is treeSize (bits 0-39) | timestamp << 40, 80 bits. Every third anchor moves three metas to a
    // fresh `_metas` slot; the other two cost no extra storage write.
    uint248 private _head;
    mapping(uint256 number => bytes32 rootHash) private _roots;
    mapping(uint256 group => uint256 threeMetas) private _metas;

    /// @notice Emitted once per accepted checkpoint, right after it is stored.
    /// @param number checkpoint number (0 for the first)
    /// @param treeSize tree size of the new checkpoint
    /// @param rootHash root hash of the new checkpoint
    /// @param oldSize tree size of the previous checkpoint (0 for the first)
    event CheckpointAnchored(uint256 indexed number, uint64 indexed treeSize, bytes32 indexed rootHash, uint64 oldSize);

    /// @notice `oldSize` is not the tree size of the last anchored checkpoint (another anchor won the race).
    error AuditAnchorStaleOldSize(uint64 oldSize, uint64 storedSize);
    /// @notice `newSize` is not larger than the tree size of the last anchored checkpoint.
    error AuditAnchorSizeNotIncreasing(uint64 oldSize, uint64 newSize);
    /// @notice `newSize` exceeds `MAX_TREE_SIZE`.
    error AuditAnchorTreeSizeTooLarge(uint64 newSize, uint64 maxSize);
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
    /// @notice The admin address is the zero address.
    error AuditAnchorZeroAdmin();

    /// @notice Deploys the anchor with an admin (grants/revokes roles, pauses) and an optional first anchorer.
    /// @param admin receives DEFAULT_ADMIN_ROLE
    /// @param anchorer receives ANCHORER_ROLE unless it is the zero address
    constructor(address admin, address anchorer) {
        if (admin == address(0)) revert AuditAnchorZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (anchorer != address(0)) _grantRole(ANCHORER_ROLE, anchorer);
    }

    /// @notice Anchors checkpoint (`newSize`, `newRoot`) after checking that it extends the last one.
    /// @dev Compare-and-set on `oldSize`: of two anchorers racing from the same checkpoint only one succeeds.
    /// @param oldSize tree size of the last anchored checkpoint (0 when none)
    /// @param newSize tree size of the new checkpoint, larger than `oldSize`
    /// @param newRoot RFC 9162 root hash of the first `newSize` leaves
    /// @param consistencyProof RFC 9162 consistency proof from `oldSize` to `newSize`; empty when `oldSize` is 0
    function anchor(uint64 oldSize, uint64 newSize, bytes32 newRoot, bytes32[] calldata consistencyProof)
        external
        onlyRole(ANCHORER_ROLE)
        whenNotPaused
    {
        uint256 head = _head;
        uint256 count = head & _MASK40;
        uint64 storedSize = uint64((head >> 40) & _MASK40);
        if (oldSize != storedSize) revert AuditAnchorStaleOldSize(oldSize, storedSize);
        if (newSize <= oldSize) revert AuditAnchorSizeNotIncreasing(oldSize, newSize);
        if (newSize > MAX_TREE_SIZE) revert AuditAnchorTreeSizeTooLarge(newSize, MAX_TREE_SIZE);
        if (oldSize == 0) {
            if (consistencyProof.length != 0) revert AuditAnchorUnexpectedProof(consistencyProof.length);
        } else if (!_verifyConsistency(oldSize, newSize, _roots[count - 1], newRoot, consistencyProof)) {
            revert AuditAnchorInconsistentRoot(oldSize, newSize, newRoot);
        }

        _roots[count] = newRoot;
        unchecked {
            uint256 meta = (uint256(uint40(block.timestamp)) << 40) | newSize;
            uint256 position = count % _METAS_PER_SLOT;
            uint256 pending = head >> 80;
            if (position == _METAS_PER_SLOT - 1) {
                _metas[count / _METAS_PER_SLOT] = pending | (meta << (position * _META_BITS));
                pending = 0;
            } else {
                pending |= meta << (position * _META_BITS);
            }
            _head = uint248((pending << 80) | (uint256(newSize) << 40) | (count + 1));
        }
        emit CheckpointAnchored(count, newSize, newRoot, oldSize);
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

    function _readCheckpoint(uint256 number, uint256 head) private view returns (Checkpoint memory) {
        uint256 meta = _metaAt(number, head);
        return Checkpoint({treeSize: uint64(meta & _MASK40), rootHash: _roots[number], timestamp: uint64(meta >> 40)});
    }

    /// The 80-bit meta (treeSize | timestamp << 40) of checkpoint `number` < count, from `_metas` or `_head`.
    function _metaAt(uint256 number, uint256 head) private view returns (uint256) {
        unchecked {
            uint256 count = head & _MASK40;
            uint256 moved = count - (count % _METAS_PER_SLOT);
            uint256 packed = number < moved ? _metas[number / _METAS_PER_SLOT] : head >> 80;
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
