// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title EventStore: naive baseline for the anchoring benchmark
/// @notice One transaction per logged event that stores its hash in a fresh slot and emits it.
contract EventStore {
    mapping(uint256 number => bytes32 eventHash) private _hashes;
    uint256 private _count;

    /// @notice Emitted for each logged event, after it is stored.
    /// @param number event number, from 0
    /// @param eventHash hash of the logged event
    event EventStored(uint256 indexed number, bytes32 indexed eventHash);

    /// @notice Stores and logs one event.
    /// @param eventHash hash of the logged event
    function storeEvent(bytes32 eventHash) external {
        uint256 number = _count;
        _hashes[number] = eventHash;
        _count = number + 1;
        emit EventStored(number, eventHash);
    }

    /// @notice The hash of event `number` (zero when absent).
    /// @param number event number
    /// @return eventHash the stored hash
    function hashAt(uint256 number) external view returns (bytes32) {
        return _hashes[number];
    }
}
