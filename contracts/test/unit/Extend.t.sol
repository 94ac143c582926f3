// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { IERC20Errors } from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract Extend_Unit_Test is Base_Test {
    uint256 internal rentalId;

    /// @dev What the default quote still allows on top of the default duration.
    uint256 internal constant HEADROOM = MAX_DURATION - DURATION;

    function setUp() public override {
        Base_Test.setUp();
        rentalId = openDefault();
        vm.warp(START_TIME + 1 hours);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_Paused() external {
        vm.prank(owner);
        escrow.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        extendAs(renter, rentalId, 1 hours);
    }

    function test_RevertWhen_RentalNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        extendAs(renter, 2, 1 hours);
    }

    function test_RevertWhen_CallerProvider() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, provider));
        extendAs(provider, rentalId, 1 hours);
    }

    function test_RevertWhen_CallerStranger() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, stranger));
        extendAs(stranger, rentalId, 1 hours);
    }

    function test_RevertWhen_Stopped() external {
        stopAs(renter, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        extendAs(renter, rentalId, 1 hours);
    }

    function test_RevertWhen_Ended() external {
        vm.warp(START_TIME + DURATION);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyEnded.selector, rentalId, START_TIME + DURATION)
        );
        extendAs(renter, rentalId, 1 hours);
    }

    function test_RevertWhen_ExtensionZero() external {
        vm.expectRevert(Errors.GpuEscrow_ExtensionZero.selector);
        extendAs(renter, rentalId, 0);
    }

    function test_RevertWhen_ExtensionAboveMax() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_ExtensionAboveMax.selector, rentalId, HEADROOM + 1, HEADROOM)
        );
        extendAs(renter, rentalId, HEADROOM + 1);
    }

    function test_RevertWhen_ExtensionMaxUint256() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_ExtensionAboveMax.selector, rentalId, type(uint256).max, HEADROOM)
        );
        extendAs(renter, rentalId, type(uint256).max);
    }

    function test_RevertWhen_SecondExtensionAboveMax() external {
        extendAs(renter, rentalId, HEADROOM - 10);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_ExtensionAboveMax.selector, rentalId, 11, 10));
        extendAs(renter, rentalId, 11);
    }

    function test_RevertWhen_AllowanceInsufficient() external {
        vm.prank(renter);
        token.approve(address(escrow), RATE * 1 hours - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), RATE * 1 hours - 1, RATE * 1 hours
            )
        );
        extendAs(renter, rentalId, 1 hours);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_Extend() external {
        uint256 cost = RATE * 2 hours;
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalExtended({ rentalId: rentalId, newEnd: START_TIME + DURATION + 2 hours, cost: cost });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transferFrom, (renter, address(escrow), cost)));

        uint256 returned = extendAs(renter, rentalId, 2 hours);

        assertEq(returned, cost, "cost");
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, START_TIME + DURATION + 2 hours, "end");
        assertEq(rental.start, START_TIME, "start");
        assertEq(balanceOf(address(escrow)), DEPOSIT + cost, "escrow balance");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - cost, "renter balance");
    }

    function test_Extend_UpToMax() external {
        extendAs(renter, rentalId, HEADROOM);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, rental.maxEnd, "end == maxEnd");
        assertEq(rental.end - rental.start, MAX_DURATION, "total duration");
    }

    function test_Extend_InLastSecond() external {
        vm.warp(START_TIME + DURATION - 1);
        extendAs(renter, rentalId, 1);
        assertEq(escrow.getRental(rentalId).end, START_TIME + DURATION + 1, "end");
    }

    function test_Extend_KeepsSnapshottedFee() external {
        vm.prank(owner);
        escrow.setFeeBps(1500);
        extendAs(renter, rentalId, 1 hours);
        assertEq(escrow.getRental(rentalId).feeBps, FEE_BPS, "feeBps");
    }

    function test_Extend_ThenStop_RefundsExtension() external {
        extendAs(renter, rentalId, 2 hours);
        uint256 refund = stopAs(renter, rentalId);
        assertEq(refund, RATE * (DURATION + 2 hours - 1 hours), "refund");
    }
}
