// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Errors } from "src/libraries/Errors.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract Views_Unit_Test is Base_Test {
    function test_RevertWhen_GetRental_NotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 0));
        escrow.getRental(0);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 1));
        escrow.getRental(1);
    }

    function test_RevertWhen_Earned_NotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 1));
        escrow.earned(1);
    }

    function test_RevertWhen_Withdrawable_NotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 1));
        escrow.withdrawable(1);
    }

    function test_RevertWhen_NextIdNotOpenedYet() external {
        openDefault();
        uint256 next = escrow.nextRentalId();
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, next));
        escrow.getRental(next);
    }

    function test_Earned_StreamsLinearlyAndCapsAtEnd() external {
        uint256 rentalId = openDefault();
        assertEq(escrow.earned(rentalId), 0, "at start");
        vm.warp(START_TIME + 1);
        assertEq(escrow.earned(rentalId), RATE, "after 1s");
        vm.warp(START_TIME + DURATION / 2);
        assertEq(escrow.earned(rentalId), DEPOSIT / 2, "halfway");
        vm.warp(START_TIME + DURATION);
        assertEq(escrow.earned(rentalId), DEPOSIT, "at end");
        vm.warp(START_TIME + DURATION + 365 days);
        assertEq(escrow.earned(rentalId), DEPOSIT, "long after end");
    }

    function test_Earned_NotReducedByWithdrawals() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 100);
        withdrawAs(provider, rentalId);
        assertEq(escrow.earned(rentalId), RATE * 100, "earned");
    }

    function test_Withdrawable_ExcludesWithdrawn() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 100);
        assertEq(escrow.withdrawable(rentalId), RATE * 100, "before withdraw");
        withdrawAs(provider, rentalId);
        assertEq(escrow.withdrawable(rentalId), 0, "right after withdraw");
        vm.warp(START_TIME + 250);
        assertEq(escrow.withdrawable(rentalId), RATE * 150, "later");
        vm.warp(START_TIME + DURATION * 2);
        assertEq(escrow.withdrawable(rentalId), DEPOSIT - RATE * 100, "after end");
    }

    function test_GetRental_ReflectsLifecycle() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 60);
        withdrawAs(provider, rentalId);
        vm.warp(START_TIME + 90);
        stopAs(renter, rentalId);

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.renter, renter, "renter");
        assertEq(rental.provider, provider, "provider");
        assertEq(rental.start, START_TIME, "start");
        assertEq(rental.end, START_TIME + 90, "end");
        assertTrue(rental.stopped, "stopped");
        assertEq(rental.feeBps, FEE_BPS, "feeBps");
        assertEq(rental.ratePerSecond, RATE, "ratePerSecond");
        assertEq(rental.withdrawn, RATE * 60, "withdrawn");
    }

    /// @dev Guards the packed layout promised in the struct's slot comments: three slots per rental.
    function test_Rental_OccupiesThreeSlots() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 60);
        withdrawAs(provider, rentalId);

        // `_rentals` is the third storage variable, after `feesAccrued` and `nextRentalId`.
        bytes32 base = keccak256(abi.encode(rentalId, uint256(2)));
        bytes32 slot0 = vm.load(address(escrow), base);
        bytes32 slot1 = vm.load(address(escrow), bytes32(uint256(base) + 1));
        bytes32 slot2 = vm.load(address(escrow), bytes32(uint256(base) + 2));
        bytes32 slot3 = vm.load(address(escrow), bytes32(uint256(base) + 3));

        assertEq(address(uint160(uint256(slot0))), renter, "slot0 renter");
        assertEq(uint40(uint256(slot0) >> 160), START_TIME, "slot0 start");
        assertEq(uint40(uint256(slot0) >> 200), START_TIME + DURATION, "slot0 end");
        assertEq(address(uint160(uint256(slot1))), provider, "slot1 provider");
        assertEq(uint16(uint256(slot1) >> 160), FEE_BPS, "slot1 feeBps");
        assertEq(uint128(uint256(slot2)), RATE, "slot2 rate");
        assertEq(uint128(uint256(slot2) >> 128), RATE * 60, "slot2 withdrawn");
        assertEq(slot3, bytes32(0), "no fourth slot");
    }
}
