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

    function test_RevertWhen_OnlyTheDustIsAccrued() external {
        // A fee of exactly one unit (2.5 % of 40): all of it is the unit a claim leaves.
        Quote memory quote = defaultQuote();
        quote.ratePerSecond = 40;
        uint256 cheap = openWith(quote, 1);
        vm.warp(START_TIME + 1 + DISPUTE_WINDOW);
        withdrawAs(provider, cheap);
        assertEq(escrow.feesAccrued(), 1, "one unit accrued");
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
        emit IGpuEscrow.FeesClaimed({ treasury: treasury, amount: fee - 1 });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (treasury, fee - 1)));

        uint256 amount = claimAs(treasury);

        assertEq(amount, fee - 1, "amount: all but the unit left accrued");
        assertEq(balanceOf(treasury), fee - 1, "treasury balance");
        assertEq(escrow.feesAccrued(), 1, "feesAccrued keeps one unit");
        assertEq(balanceOf(address(escrow)), 1, "escrow holds the unit");
    }

    function test_ClaimFees_TheUnitLeftIsClaimedWithTheNextFees() external {
        vm.warp(START_TIME + DISPUTE_WINDOW + 1 hours);
        withdrawAs(provider, rentalId);
        uint256 first = feeOf(RATE * 1 hours, FEE_BPS);
        assertEq(claimAs(treasury), first - 1, "first claim");

        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        uint256 total = feeOf(DEPOSIT, FEE_BPS);
        assertEq(escrow.feesAccrued(), total - first + 1, "new fees on top of the unit");
        assertEq(claimAs(treasury), total - first, "second claim: the new fees, the unit stays");
        assertEq(balanceOf(treasury) + escrow.feesAccrued(), total, "every fee is the treasury's");
    }

    function test_ClaimFees_NewTreasuryGetsAccruedFees() external {
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        address newTreasury = makeAddr("new treasury");
        vm.prank(owner);
        escrow.setTreasury(newTreasury);
        assertEq(claimAs(newTreasury), feeOf(DEPOSIT, FEE_BPS) - 1, "amount");
        assertEq(balanceOf(newTreasury), feeOf(DEPOSIT, FEE_BPS) - 1, "new treasury balance");
    }

    function test_ClaimFees_WhilePaused() external {
        vm.warp(START_TIME + 2 hours);
        withdrawAs(provider, rentalId);
        vm.prank(owner);
        escrow.pause();
        assertEq(claimAs(treasury), feeOf(RATE * 1 hours, FEE_BPS) - 1, "amount");
    }

    function test_ClaimFees_AcrossRentals_DoesNotTouchDeposits() external {
        Quote memory quote = defaultQuote();
        quote.ratePerSecond = uint128(RATE * 2);
        uint256 otherId = openWith(quote, DURATION);
        vm.warp(START_TIME + DISPUTE_WINDOW + 1000);
        withdrawAs(provider, rentalId);
        withdrawAs(provider, otherId);
        uint256 expected = feeOf(RATE * 1000, FEE_BPS) + feeOf(RATE * 2 * 1000, FEE_BPS);

        assertEq(claimAs(treasury), expected - 1, "amount");

        // What is left is exactly the unpaid part of both deposits, and the unit of fees.
        assertEq(balanceOf(address(escrow)), 3 * DEPOSIT - 3 * RATE * 1000 + 1, "escrow balance");
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        withdrawAs(provider, otherId);
        assertEq(claimAs(treasury), feeOf(DEPOSIT, FEE_BPS) + feeOf(2 * DEPOSIT, FEE_BPS) - expected, "second claim");
        assertEq(balanceOf(address(escrow)), 1, "escrow drained but for the unit of fees");
    }
}
