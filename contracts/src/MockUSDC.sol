// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { ERC20 } from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import { ERC20Permit } from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title MockUSDC
/// @notice A stand-in for USDC with 6 decimals and EIP-2612 permits, for local devnets and tests.
/// @dev FOR DEVNETS AND TESTS ONLY. Anyone can mint any amount to any account, so this token has no value and must
/// never be deployed to a public network.
contract MockUSDC is ERC20, ERC20Permit {
    constructor() ERC20("Mock USDC", "mUSDC") ERC20Permit("Mock USDC") { }

    /// @notice Mints `amount` tokens to `to`.
    /// @dev Deliberately unrestricted: that is the point on a devnet and the danger anywhere else.
    /// @param to The account receiving the new tokens.
    /// @param amount The amount to mint, in base units (6 decimals).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Returns 6, matching USDC, so that amounts on devnets look like amounts on mainnet.
    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
