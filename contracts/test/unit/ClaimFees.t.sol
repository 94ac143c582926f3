// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract ClaimFees_Unit_Test is Base_Test {
    uint256 internal rentalId;

    function setUp() public override {
        Base_Test.setUp();
        rentalId = openDefault();
    }

    function claimAs(address caller) internal returns (uint256 amount) {
        vm.prank(caller);
        amount = escrow.claimFees();
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_CallerStranger() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotTreasury.selector, stranger));
        claimAs(stranger);
    }

    function test_RevertWhen_CallerOwner() external {
        vm.warp(START_TIME + 2 hours);
        withdrawAs(provider, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotTreasury.selector, owner));
        claimAs(owner);
    }

    function test_RevertWhen_CallerProvider() external {
        vm.warp(START_TIME + 2 hours);
        withdrawAs(provider, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotTreasury.selector, provider));
        claimAs(provider);
    }

    function test_RevertWhen_CallerFormerTreasury() external {
        vm.warp(START_TIME + 2 hours);
        withdrawAs(provider, rentalId);
        address newTreasury = makeAddr("new treasury");
        vm.prank(owner);
        escrow.setTreasury(newTreasury);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotTreasury.selector, treasury));
        claimAs(treasury);
    }

    function test_RevertWhen_NoFeesAccrued() external {
        vm.expectRevert(Errors.GpuEscrow_NoFeesToClaim.selector);
        claimAs(treasury);
    }

    function test_RevertWhen_AlreadyClaimed() external {
        vm.warp(START_TIME + 2 hours);
        withdrawAs(provider, rentalId);
        claimAs(treasury);
        vm.expectRevert(Errors.GpuEscrow_NoFeesToClaim.selector);
        claimAs(treasury);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_ClaimFees() external {
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        uint256 fee = feeOf(DEPOSIT, FEE_BPS);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.FeesClaimed({ treasury: treasury, amount: fee });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (treasury, fee)));

        uint256 amount = claimAs(treasury);

        assertEq(amount, fee, "amount");
        assertEq(balanceOf(treasury), fee, "treasury balance");
        assertEq(escrow.feesAccrued(), 0, "feesAccrued");
        assertEq(balanceOf(address(escrow)), 0, "escrow balance");
    }

    function test_ClaimFees_NewTreasuryGetsAccruedFees() external {
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        address newTreasury = makeAddr("new treasury");
        vm.prank(owner);
        escrow.setTreasury(newTreasury);
        assertEq(claimAs(newTreasury), feeOf(DEPOSIT, FEE_BPS), "amount");
        assertEq(balanceOf(newTreasury), feeOf(DEPOSIT, FEE_BPS), "new treasury balance");
    }

    function test_ClaimFees_WhilePaused() external {
        vm.warp(START_TIME + 2 hours);
        withdrawAs(provider, rentalId);
        vm.prank(owner);
        escrow.pause();
        assertEq(claimAs(treasury), feeOf(RATE * 1 hours, FEE_BPS), "amount");
    }

    function test_ClaimFees_AcrossRentals_DoesNotTouchDeposits() external {
        Quote memory quote = defaultQuote();
        quote.ratePerSecond = uint128(RATE * 2);
        uint256 otherId = openWith(quote, DURATION);
        vm.warp(START_TIME + DISPUTE_WINDOW + 1000);
        withdrawAs(provider, rentalId);
        withdrawAs(provider, otherId);
        uint256 expected = feeOf(RATE * 1000, FEE_BPS) + feeOf(RATE * 2 * 1000, FEE_BPS);

        assertEq(claimAs(treasury), expected, "amount");

        // What is left is exactly the unpaid part of both deposits.
        assertEq(balanceOf(address(escrow)), 3 * DEPOSIT - 3 * RATE * 1000, "escrow balance");
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        withdrawAs(provider, otherId);
        assertEq(claimAs(treasury), feeOf(DEPOSIT, FEE_BPS) + feeOf(2 * DEPOSIT, FEE_BPS) - expected, "second claim");
        assertEq(balanceOf(address(escrow)), 0, "escrow drained");
    }
}
