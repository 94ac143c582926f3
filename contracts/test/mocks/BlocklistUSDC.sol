// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { MockUSDC } from "src/MockUSDC.sol";

/// @notice MockUSDC with a USDC-style blocklist: a blocklisted account can neither send nor receive tokens.
contract BlocklistUSDC is MockUSDC {
    error Blocklisted(address account);

    mapping(address account => bool) public isBlocklisted;

    function setBlocklisted(address account, bool blocked) external {
        isBlocklisted[account] = blocked;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (isBlocklisted[from]) revert Blocklisted(from);
        if (isBlocklisted[to]) revert Blocklisted(to);
        super._update(from, to, value);
    }
}
