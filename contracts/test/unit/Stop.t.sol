// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { BlocklistUSDC } from "../mocks/BlocklistUSDC.sol";

contract Stop_Unit_Test is Base_Test {
    uint256 internal rentalId;

    function setUp() public override {
        Base_Test.setUp();
        rentalId = openDefault();
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_RentalNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        stopAs(renter, 2);
    }

    function test_RevertWhen_RentalIdZero() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 0));
        stopAs(renter, 0);
    }

    function test_RevertWhen_CallerProvider() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, provider));
        stopAs(provider, rentalId);
    }

    function test_RevertWhen_CallerStranger() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, stranger));
        stopAs(stranger, rentalId);
    }

    function test_RevertWhen_CallerOwner() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, owner));
        stopAs(owner, rentalId);
    }

    function test_RevertWhen_AlreadyStopped() external {
        vm.warp(START_TIME + 100);
        stopAs(renter, rentalId);
        vm.warp(START_TIME + 200);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        stopAs(renter, rentalId);
    }

    function test_RevertWhen_AlreadyStopped_SameBlock() external {
        vm.warp(START_TIME + 100);
        stopAs(renter, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        stopAs(renter, rentalId);
    }

    function test_RevertWhen_AlreadyEnded_AtEnd() external {
        vm.warp(START_TIME + DURATION);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyEnded.selector, rentalId, START_TIME + DURATION)
        );
        stopAs(renter, rentalId);
    }

    function test_RevertWhen_AlreadyEnded_AfterEnd() external {
        vm.warp(START_TIME + DURATION + 1 days);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyEnded.selector, rentalId, START_TIME + DURATION)
        );
        stopAs(renter, rentalId);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_Stop() external {
        uint256 elapsed = 1234;
        uint256 refund = RATE * (DURATION - elapsed);
        vm.warp(START_TIME + elapsed);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalStopped({
            rentalId: rentalId, renter: renter, stoppedAt: START_TIME + elapsed, refund: refund
        });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (renter, refund)));

        uint256 returned = stopAs(renter, rentalId);

        assertEq(returned, refund, "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT + refund, "renter balance");
        assertEq(balanceOf(address(escrow)), RATE * elapsed, "escrow keeps the earned part");
        assertEq(balanceOf(provider), 0, "provider is not paid by a stop");

        Rental memory rental = escrow.getRental(rentalId);
        assertTrue(rental.stopped, "stopped");
        assertEq(rental.end, START_TIME + elapsed, "end");
        assertEq(escrow.earned(rentalId), RATE * elapsed, "earned");
    }

    function test_Stop_InFirstSecond_RefundsEverything() external {
        uint256 refund = stopAs(renter, rentalId);
        assertEq(refund, DEPOSIT, "refund");
        assertEq(balanceOf(address(escrow)), 0, "escrow balance");
        assertEq(escrow.earned(rentalId), 0, "earned");
    }

    function test_Stop_InLastSecond() external {
        vm.warp(START_TIME + DURATION - 1);
        assertEq(stopAs(renter, rentalId), RATE, "refund");
    }

    function test_Stop_ProviderStillWithdrawsEarned() external {
        vm.warp(START_TIME + 2 hours);
        stopAs(renter, rentalId);
        // Nothing is payable before the dispute window has passed over the earned seconds.
        assertEq(escrow.withdrawable(rentalId), RATE * (2 hours - DISPUTE_WINDOW), "withdrawable now");
        vm.warp(START_TIME + 2 hours + DISPUTE_WINDOW);
        uint256 paid = withdrawAs(provider, rentalId);
        uint256 gross = RATE * 2 hours;
        assertEq(paid, gross - feeOf(gross, FEE_BPS), "paid");
        assertEq(balanceOf(address(escrow)), feeOf(gross, FEE_BPS), "escrow keeps the fee");
    }

    function test_Stop_AfterPartialWithdrawal() external {
        vm.warp(START_TIME + 3 hours);
        withdrawAs(provider, rentalId);
        uint256 refund = stopAs(renter, rentalId);
        assertEq(refund, RATE * (DURATION - 3 hours), "refund");
    }

    function test_Stop_WhilePaused() external {
        vm.prank(owner);
        escrow.pause();
        vm.warp(START_TIME + 100);
        assertEq(stopAs(renter, rentalId), RATE * (DURATION - 100), "refund");
    }

    function test_Stop_ProviderBlocklisted() external {
        // The token refuses any transfer to the provider, yet the renter can stop and is refunded.
        token.setBlocklisted(provider, true);
        vm.warp(START_TIME + 100);
        assertEq(stopAs(renter, rentalId), RATE * (DURATION - 100), "refund");

        vm.warp(START_TIME + 100 + DISPUTE_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(BlocklistUSDC.Blocklisted.selector, provider));
        withdrawAs(provider, rentalId);
    }

    function test_Stop_PausedAndProviderBlocklisted() external {
        vm.prank(owner);
        escrow.pause();
        token.setBlocklisted(provider, true);
        vm.warp(START_TIME + 100);
        assertEq(stopAs(renter, rentalId), RATE * (DURATION - 100), "refund");
    }

    function test_Stop_AfterCredit() external {
        vm.warp(START_TIME + 2 hours);
        credit(downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 600));
        uint256 refund = stopAs(renter, rentalId);
        assertEq(refund, RATE * (DURATION - 2 hours), "refund is the unused time only");
        assertEq(escrow.earned(rentalId), RATE * (2 hours - 600), "earned excludes the credit");
    }
}
