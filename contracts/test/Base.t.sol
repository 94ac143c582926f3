// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Test } from "forge-std/Test.sol";
import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { GpuEscrow } from "src/GpuEscrow.sol";
import { MockUSDC } from "src/MockUSDC.sol";
import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Rental } from "src/types/DataTypes.sol";

/// @notice Common fixture: labelled users, a freshly deployed token and escrow, and funded, approved accounts.
abstract contract Base_Test is Test {
    /*//////////////////////////////////////////////////////////////////////////
                                     CONSTANTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev 2.5%, chosen so that rounding of the fee is visible with small amounts.
    uint16 internal constant FEE_BPS = 250;

    /// @dev 0.001 mUSDC per second, i.e. 3.6 mUSDC per hour.
    uint256 internal constant RATE = 1000;

    uint256 internal constant DURATION = 1 hours;

    uint256 internal constant DEPOSIT = RATE * DURATION;

    /// @dev 2026-01-01T00:00:00Z, so that tests run at a realistic block time rather than at 1.
    uint40 internal constant START_TIME = 1_767_225_600;

    /// @dev One million mUSDC.
    uint256 internal constant INITIAL_BALANCE = 1_000_000e6;

    /*//////////////////////////////////////////////////////////////////////////
                                     TEST STATE
    //////////////////////////////////////////////////////////////////////////*/

    address internal renter;
    address internal provider;
    address internal treasury;
    address internal stranger;

    MockUSDC internal token;
    GpuEscrow internal escrow;

    /*//////////////////////////////////////////////////////////////////////////
                                       SET-UP
    //////////////////////////////////////////////////////////////////////////*/

    function setUp() public virtual {
        vm.warp(START_TIME);

        renter = makeAddr("renter");
        provider = makeAddr("provider");
        treasury = makeAddr("treasury");
        stranger = makeAddr("stranger");

        token = new MockUSDC();
        vm.label(address(token), "MockUSDC");

        escrow = new GpuEscrow(IERC20(address(token)), treasury, FEE_BPS);
        vm.label(address(escrow), "GpuEscrow");

        fundAndApprove(renter, INITIAL_BALANCE);
        fundAndApprove(stranger, INITIAL_BALANCE);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      HELPERS
    //////////////////////////////////////////////////////////////////////////*/

    function fundAndApprove(address account, uint256 amount) internal {
        token.mint(account, amount);
        vm.prank(account);
        token.approve(address(escrow), type(uint256).max);
    }

    /// @dev Opens the default rental: renter pays provider RATE per second for DURATION, starting now.
    function openDefault() internal returns (uint256 rentalId) {
        rentalId = openRental(renter, provider, RATE, DURATION);
    }

    function openRental(address from, address to, uint256 ratePerSecond, uint256 duration)
        internal
        returns (uint256 rentalId)
    {
        vm.prank(from);
        rentalId = escrow.open(to, ratePerSecond, duration);
    }

    function stopAs(address caller, uint256 rentalId) internal returns (uint256 refund) {
        vm.prank(caller);
        refund = escrow.stop(rentalId);
    }

    function withdrawAs(address caller, uint256 rentalId) internal returns (uint256 paid) {
        vm.prank(caller);
        paid = escrow.withdraw(rentalId);
    }

    /// @dev The reference fee formula, written independently of the contract.
    function feeOf(uint256 gross, uint256 bps) internal pure returns (uint256) {
        return gross * bps / 10_000;
    }

    function balanceOf(address account) internal view returns (uint256) {
        return token.balanceOf(account);
    }
}
