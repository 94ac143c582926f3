// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { ERC20 } from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A 6-decimal token without EIP-2612 permit or an ERC-5267 domain, as some stablecoins are: renters pay
/// the escrow by approving it first, then opening. Used by the Rust end-to-end tests of that path.
contract PlainUSDC is ERC20 {
    constructor() ERC20("Plain USD Coin", "pUSDC") { }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
