// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

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
        // The end time now equals block.timestamp, but the stopped flag is what the renter must hear about.
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
        uint256 elapsed = 1000;
        uint256 expectedRefund = RATE * (DURATION - elapsed);
        vm.warp(START_TIME + elapsed);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalStopped({
            rentalId: rentalId, renter: renter, stoppedAt: START_TIME + elapsed, refund: expectedRefund
        });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (renter, expectedRefund)));

        uint256 refund = stopAs(renter, rentalId);

        assertEq(refund, expectedRefund, "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT + expectedRefund, "renter balance");
        assertEq(balanceOf(address(escrow)), RATE * elapsed, "escrow balance");
        assertEq(balanceOf(provider), 0, "provider balance");

        Rental memory rental = escrow.getRental(rentalId);
        assertTrue(rental.stopped, "stopped");
        assertEq(rental.end, START_TIME + elapsed, "end");
        assertEq(rental.start, START_TIME, "start");
        assertEq(rental.withdrawn, 0, "withdrawn");
    }

    function test_Stop_SameBlockAsOpen_RefundsEverything() external {
        uint256 refund = stopAs(renter, rentalId);
        assertEq(refund, DEPOSIT, "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter balance");
        assertEq(balanceOf(address(escrow)), 0, "escrow balance");
        assertEq(escrow.earned(rentalId), 0, "earned");

        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_Stop_OneSecondBeforeEnd() external {
        vm.warp(START_TIME + DURATION - 1);
        assertEq(stopAs(renter, rentalId), RATE, "refund");
    }

    function test_Stop_FreezesEarnings() external {
        vm.warp(START_TIME + 600);
        stopAs(renter, rentalId);
        vm.warp(START_TIME + DURATION + 1 days);
        assertEq(escrow.earned(rentalId), RATE * 600, "earned");
        assertEq(escrow.withdrawable(rentalId), RATE * 600, "withdrawable");

        uint256 paid = withdrawAs(provider, rentalId);
        uint256 fee = feeOf(RATE * 600, FEE_BPS);
        assertEq(paid, RATE * 600 - fee, "paid");
        assertEq(balanceOf(provider), RATE * 600 - fee, "provider balance");
        assertEq(escrow.feesAccrued(), fee, "feesAccrued");
        assertEq(balanceOf(address(escrow)), fee, "escrow keeps only the fee");
    }

    function test_Stop_AfterPartialWithdraw() external {
        vm.warp(START_TIME + 300);
        withdrawAs(provider, rentalId);
        vm.warp(START_TIME + 900);

        uint256 refund = stopAs(renter, rentalId);

        assertEq(refund, RATE * (DURATION - 900), "refund");
        assertEq(escrow.withdrawable(rentalId), RATE * 600, "withdrawable");
        assertEq(escrow.getRental(rentalId).withdrawn, RATE * 300, "withdrawn");
    }

    function test_Stop_LeavesOtherRentalsUntouched() external {
        uint256 otherId = openRental(stranger, provider, RATE, DURATION);
        vm.warp(START_TIME + 100);
        stopAs(renter, rentalId);

        Rental memory other = escrow.getRental(otherId);
        assertFalse(other.stopped, "other stopped");
        assertEq(other.end, START_TIME + DURATION, "other end");
        assertEq(balanceOf(address(escrow)), RATE * 100 + DEPOSIT, "escrow balance");
    }
}
