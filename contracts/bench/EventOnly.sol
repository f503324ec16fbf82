// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title EventOnly: naive baseline for the anchoring benchmark
/// @notice One transaction per logged event that only emits it; nothing is stored or verified.
contract EventOnly {
    /// @notice Emitted for each logged event.
    /// @param eventHash hash of the logged event
    event EventLogged(bytes32 indexed eventHash);

    /// @notice Logs one event.
    /// @param eventHash hash of the logged event
    function logEvent(bytes32 eventHash) external {
        emit EventLogged(eventHash);
    }
}
