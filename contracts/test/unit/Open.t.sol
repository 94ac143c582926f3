// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { IERC20Errors } from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract Open_Unit_Test is Base_Test {
    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_ProviderZeroAddress() external {
        vm.expectRevert(Errors.GpuEscrow_ProviderZeroAddress.selector);
        openRental(renter, address(0), RATE, DURATION);
    }

    function test_RevertWhen_ProviderIsRenter() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_ProviderIsRenter.selector, renter));
        openRental(renter, renter, RATE, DURATION);
    }

    function test_RevertWhen_RateZero() external {
        vm.expectRevert(Errors.GpuEscrow_RateZero.selector);
        openRental(renter, provider, 0, DURATION);
    }

    function test_RevertWhen_RateTooHigh() external {
        uint256 rate = uint256(type(uint128).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RateTooHigh.selector, rate, type(uint128).max));
        openRental(renter, provider, rate, 1);
    }

    function test_RevertWhen_RateMaxUint256() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_RateTooHigh.selector, type(uint256).max, type(uint128).max)
        );
        openRental(renter, provider, type(uint256).max, 1);
    }

    function test_RevertWhen_DurationZero() external {
        vm.expectRevert(Errors.GpuEscrow_DurationZero.selector);
        openRental(renter, provider, RATE, 0);
    }

    function test_RevertWhen_DurationTooLong() external {
        uint256 maxDuration = uint256(type(uint40).max) - START_TIME;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_DurationTooLong.selector, maxDuration + 1, maxDuration));
        openRental(renter, provider, 1, maxDuration + 1);
    }

    function test_RevertWhen_DurationMaxUint256() external {
        uint256 maxDuration = uint256(type(uint40).max) - START_TIME;
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_DurationTooLong.selector, type(uint256).max, maxDuration)
        );
        openRental(renter, provider, 1, type(uint256).max);
    }

    function test_RevertWhen_DepositTooLarge() external {
        uint256 rate = type(uint128).max;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_DepositTooLarge.selector, rate * 2, type(uint128).max));
        openRental(renter, provider, rate, 2);
    }

    function test_RevertWhen_AllowanceInsufficient() external {
        vm.prank(renter);
        token.approve(address(escrow), DEPOSIT - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), DEPOSIT - 1, DEPOSIT
            )
        );
        openDefault();
    }

    function test_RevertWhen_BalanceInsufficient() external {
        address poor = makeAddr("poor");
        fundAndApprove(poor, DEPOSIT - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, DEPOSIT - 1, DEPOSIT)
        );
        openRental(poor, provider, RATE, DURATION);
    }

    function test_RevertWhen_Reverted_StateUnchanged() external {
        vm.expectRevert(Errors.GpuEscrow_RateZero.selector);
        openRental(renter, provider, 0, DURATION);
        assertEq(escrow.nextRentalId(), 1, "nextRentalId");
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 1));
        escrow.getRental(1);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                     SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_Open() external {
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalOpened({
            rentalId: 1,
            renter: renter,
            provider: provider,
            ratePerSecond: RATE,
            start: START_TIME,
            end: START_TIME + DURATION,
            deposit: DEPOSIT
        });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transferFrom, (renter, address(escrow), DEPOSIT)));

        uint256 rentalId = openDefault();

        assertEq(rentalId, 1, "rentalId");
        assertEq(escrow.nextRentalId(), 2, "nextRentalId");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT, "renter balance");
        assertEq(balanceOf(address(escrow)), DEPOSIT, "escrow balance");
        assertEq(balanceOf(provider), 0, "provider balance");

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.renter, renter, "renter");
        assertEq(rental.start, START_TIME, "start");
        assertEq(rental.end, START_TIME + DURATION, "end");
        assertFalse(rental.stopped, "stopped");
        assertEq(rental.provider, provider, "provider");
        assertEq(rental.feeBps, FEE_BPS, "feeBps");
        assertEq(rental.ratePerSecond, RATE, "ratePerSecond");
        assertEq(rental.withdrawn, 0, "withdrawn");
    }

    function test_Open_IdsAreSequential() external {
        assertEq(openDefault(), 1, "first");
        assertEq(openRental(stranger, provider, RATE * 2, DURATION * 2), 2, "second");
        vm.warp(START_TIME + 10);
        assertEq(openRental(renter, stranger, 1, 1), 3, "third");
        assertEq(escrow.nextRentalId(), 4, "nextRentalId");

        Rental memory second = escrow.getRental(2);
        assertEq(second.renter, stranger, "second renter");
        assertEq(second.ratePerSecond, RATE * 2, "second rate");
        Rental memory third = escrow.getRental(3);
        assertEq(third.provider, stranger, "third provider");
        assertEq(third.start, START_TIME + 10, "third start");
        assertEq(third.end, START_TIME + 11, "third end");
        assertEq(balanceOf(address(escrow)), DEPOSIT + 4 * DEPOSIT + 1, "escrow balance");
    }

    function test_Open_MaxRate() external {
        uint256 rate = type(uint128).max;
        fundAndApprove(renter, rate);
        uint256 rentalId = openRental(renter, provider, rate, 1);
        assertEq(escrow.getRental(rentalId).ratePerSecond, rate, "ratePerSecond");
        assertEq(balanceOf(address(escrow)), rate, "escrow balance");
    }

    function test_Open_MaxDuration() external {
        uint256 maxDuration = uint256(type(uint40).max) - START_TIME;
        fundAndApprove(renter, maxDuration);
        uint256 rentalId = openRental(renter, provider, 1, maxDuration);
        assertEq(escrow.getRental(rentalId).end, type(uint40).max, "end");
    }

    function test_Open_MaxDeposit() external {
        // uint128.max is odd, so the largest deposit with duration 2 is one below it.
        uint256 rate = uint256(type(uint128).max) / 2;
        fundAndApprove(renter, rate * 2);
        uint256 rentalId = openRental(renter, provider, rate, 2);
        assertEq(escrow.getRental(rentalId).ratePerSecond, rate, "ratePerSecond");
        assertEq(balanceOf(address(escrow)), rate * 2, "escrow balance");
    }
}
