// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC5267 } from "@openzeppelin/contracts/interfaces/IERC5267.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";

/// @notice The whole external surface of a deployed GpuEscrow: {IGpuEscrow} plus what it inherits from OpenZeppelin
/// (Ownable2Step, Pausable, EIP-712 domain).
/// @dev Tests reach the escrow only through this interface and deploy the artifact built with the IR pipeline
/// (`vm.getCode`), so that they never import `src/GpuEscrow.sol` and compile with the much faster legacy pipeline.
interface IEscrow is IGpuEscrow, IERC5267 {
    function owner() external view returns (address);

    function pendingOwner() external view returns (address);

    function transferOwnership(address newOwner) external;

    function acceptOwnership() external;

    function renounceOwnership() external;

    function paused() external view returns (bool);
}
