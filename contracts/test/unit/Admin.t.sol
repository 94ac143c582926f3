// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Ownable } from "@openzeppelin/contracts/access/Ownable.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Downtime, Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract Admin_Unit_Test is Base_Test {
    /*//////////////////////////////////////////////////////////////////////////
                                   ACCESS CONTROL
    //////////////////////////////////////////////////////////////////////////*/

    function expectNotOwner(address caller) internal {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        vm.prank(caller);
    }

    function test_RevertWhen_NotOwner_SetFeeBps() external {
        expectNotOwner(stranger);
        escrow.setFeeBps(100);
    }

    function test_RevertWhen_NotOwner_SetTreasury() external {
        expectNotOwner(treasury);
        escrow.setTreasury(stranger);
    }

    function test_RevertWhen_NotOwner_SetAttester() external {
        expectNotOwner(attesters[0]);
        escrow.setAttester(stranger, true);
    }

    function test_RevertWhen_NotOwner_SetAttesterThreshold() external {
        expectNotOwner(provider);
        escrow.setAttesterThreshold(2);
    }

    function test_RevertWhen_NotOwner_Pause() external {
        expectNotOwner(renter);
        escrow.pause();
    }

    function test_RevertWhen_NotOwner_Unpause() external {
        vm.prank(owner);
        escrow.pause();
        expectNotOwner(renter);
        escrow.unpause();
    }

    function test_RevertWhen_NotOwner_TransferOwnership() external {
        expectNotOwner(stranger);
        escrow.transferOwnership(stranger);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                        FEE
    //////////////////////////////////////////////////////////////////////////*/

    function test_SetFeeBps() external {
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.FeeBpsChanged({ oldFeeBps: FEE_BPS, newFeeBps: 1500 });
        vm.prank(owner);
        escrow.setFeeBps(1500);
        assertEq(escrow.feeBps(), 1500, "feeBps");
    }

    function test_SetFeeBps_Zero() external {
        vm.prank(owner);
        escrow.setFeeBps(0);
        assertEq(escrow.feeBps(), 0, "feeBps");
    }

    function test_RevertWhen_FeeTooHigh() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_FeeTooHigh.selector, 1501, 1500));
        vm.prank(owner);
        escrow.setFeeBps(1501);
    }

    function test_SetFeeBps_ExistingRentalsUntouched() external {
        uint256 rentalId = openDefault();
        Rental memory before = escrow.getRental(rentalId);
        vm.prank(owner);
        escrow.setFeeBps(1500);
        Rental memory afterwards = escrow.getRental(rentalId);
        assertEq(abi.encode(afterwards), abi.encode(before), "rental unchanged");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      TREASURY
    //////////////////////////////////////////////////////////////////////////*/

    function test_SetTreasury() external {
        address newTreasury = makeAddr("new treasury");
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.TreasuryChanged({ oldTreasury: treasury, newTreasury: newTreasury });
        vm.prank(owner);
        escrow.setTreasury(newTreasury);
        assertEq(escrow.treasury(), newTreasury, "treasury");
    }

    function test_RevertWhen_TreasuryZeroAddress() external {
        vm.expectRevert(Errors.GpuEscrow_TreasuryZeroAddress.selector);
        vm.prank(owner);
        escrow.setTreasury(address(0));
    }

    /*//////////////////////////////////////////////////////////////////////////
                                     ATTESTERS
    //////////////////////////////////////////////////////////////////////////*/

    function test_SetAttester() external {
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.AttesterSet({ attester: attesters[1], allowed: true });
        vm.prank(owner);
        escrow.setAttester(attesters[1], true);
        assertTrue(escrow.isAttester(attesters[1]), "registered");

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.AttesterSet({ attester: attesters[1], allowed: false });
        vm.prank(owner);
        escrow.setAttester(attesters[1], false);
        assertFalse(escrow.isAttester(attesters[1]), "unregistered");
    }

    function test_SetAttester_UnregisterUnknownAccount() external {
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.AttesterSet({ attester: stranger, allowed: false });
        vm.startPrank(owner);
        escrow.setAttester(stranger, false);
        // Unregistering an account that was never registered does not count as removing an attester.
        escrow.setAttester(attesters[1], true);
        escrow.setAttesterThreshold(2);
        vm.stopPrank();
        assertFalse(escrow.isAttester(stranger), "isAttester");
    }

    function test_SetAttester_Twice() external {
        vm.startPrank(owner);
        escrow.setAttester(attesters[1], true);
        escrow.setAttester(attesters[1], true);
        // Registering twice counts once: two attesters, not three.
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_ThresholdAboveAttesters.selector, 3, 2));
        escrow.setAttesterThreshold(3);
        escrow.setAttesterThreshold(2);
        escrow.setAttester(attesters[2], true);
        escrow.setAttester(attesters[1], false);
        escrow.setAttester(attesters[1], true);
        vm.stopPrank();
        assertTrue(escrow.isAttester(attesters[1]), "isAttester");
        assertEq(escrow.attesterThreshold(), 2, "threshold");
    }

    function test_RevertWhen_AttesterZeroAddress() external {
        vm.expectRevert(Errors.GpuEscrow_AttesterZeroAddress.selector);
        vm.prank(owner);
        escrow.setAttester(address(0), true);
    }

    function test_SetAttesterThreshold() external {
        vm.startPrank(owner);
        escrow.setAttester(attesters[1], true);
        escrow.setAttester(attesters[2], true);
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.AttesterThresholdChanged({ oldThreshold: 1, newThreshold: 3 });
        escrow.setAttesterThreshold(3);
        vm.stopPrank();
        assertEq(escrow.attesterThreshold(), 3, "threshold");
    }

    function test_RevertWhen_AttesterThresholdAboveAttesters() external {
        // One attester is registered: a threshold of two would block every credit, running rentals' included.
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_ThresholdAboveAttesters.selector, 2, 1));
        vm.prank(owner);
        escrow.setAttesterThreshold(2);
    }

    function test_RevertWhen_UnregisterBelowThreshold() external {
        vm.startPrank(owner);
        escrow.setAttester(attesters[1], true);
        escrow.setAttesterThreshold(2);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestersBelowThreshold.selector, 1, 2));
        escrow.setAttester(attesters[0], false);
        escrow.setAttesterThreshold(1);
        escrow.setAttester(attesters[0], false);
        vm.stopPrank();
        assertFalse(escrow.isAttester(attesters[0]), "unregistered after lowering the threshold");
    }

    function test_RevertWhen_UnregisterLastAttester() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestersBelowThreshold.selector, 0, 1));
        vm.prank(owner);
        escrow.setAttester(attesters[0], false);
    }

    function test_SetAttester_ReplaceLastAttester() external {
        // A running rental keeps receiving credits across the rotation.
        uint256 rentalId = openDefault();
        vm.startPrank(owner);
        escrow.setAttester(attesters[1], true);
        escrow.setAttester(attesters[0], false);
        vm.stopPrank();
        vm.warp(START_TIME + 2 hours);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME, START_TIME + 1 hours, 60);
        bytes memory signature = signDigest(attesterKeys[1], downtimeDigest(downtime, address(escrow), block.chainid));
        escrow.creditDowntime(packDowntime(downtime), attestationEntry(attesters[1], signature));
        assertEq(escrow.getRental(rentalId).credited, 60, "credited");
    }

    function test_RevertWhen_AttesterThresholdZero() external {
        vm.expectRevert(Errors.GpuEscrow_AttesterThresholdZero.selector);
        vm.prank(owner);
        escrow.setAttesterThreshold(0);
    }

    function test_SetAttester_CreditsAlreadyMadeStay() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 2 hours);
        credit(downtimeOf(rentalId, START_TIME, START_TIME + 1 hours, 60));
        vm.startPrank(owner);
        escrow.setAttester(attesters[1], true);
        escrow.setAttester(attesters[2], true);
        escrow.setAttesterThreshold(2);
        escrow.setAttester(attesters[0], false);
        vm.stopPrank();
        assertEq(escrow.getRental(rentalId).credited, 60, "credited");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                       PAUSE
    //////////////////////////////////////////////////////////////////////////*/

    function test_Pause() external {
        vm.expectEmit({ emitter: address(escrow) });
        emit Pausable.Paused(owner);
        vm.prank(owner);
        escrow.pause();
        assertTrue(escrow.paused(), "paused");
    }

    function test_Unpause() external {
        vm.prank(owner);
        escrow.pause();
        vm.expectEmit({ emitter: address(escrow) });
        emit Pausable.Unpaused(owner);
        vm.prank(owner);
        escrow.unpause();
        assertFalse(escrow.paused(), "paused");
        assertEq(openDefault(), 1, "opens again");
    }

    function test_RevertWhen_PauseTwice() external {
        vm.prank(owner);
        escrow.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(owner);
        escrow.pause();
    }

    function test_RevertWhen_UnpauseNotPaused() external {
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(owner);
        escrow.unpause();
    }

    function test_Pause_OnlyOpeningAndExtending() external {
        uint256 rentalId = openDefault();
        uint256 other = openDefault();
        vm.prank(owner);
        escrow.pause();
        vm.warp(START_TIME + 3 hours);

        // Withdrawing, crediting, stopping and claiming all keep working.
        withdrawAs(provider, rentalId);
        credit(downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 3 hours, 60));
        stopAs(renter, other);
        vm.prank(treasury);
        escrow.claimFees();
        vm.prank(provider);
        escrow.invalidateNonce(999);

        vm.expectRevert(Pausable.EnforcedPause.selector);
        extendAs(renter, rentalId, 1);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                     OWNERSHIP
    //////////////////////////////////////////////////////////////////////////*/

    function test_TransferOwnership_TwoSteps() external {
        address newOwner = makeAddr("new owner");
        vm.prank(owner);
        escrow.transferOwnership(newOwner);
        assertEq(escrow.owner(), owner, "owner until accepted");
        assertEq(escrow.pendingOwner(), newOwner, "pendingOwner");

        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        escrow.acceptOwnership();

        vm.prank(newOwner);
        escrow.acceptOwnership();
        assertEq(escrow.owner(), newOwner, "owner");
        assertEq(escrow.pendingOwner(), address(0), "pendingOwner");

        expectNotOwner(owner);
        escrow.setFeeBps(0);
        vm.prank(newOwner);
        escrow.setFeeBps(0);
    }

    function test_RevertWhen_RenounceOwnership() external {
        vm.expectRevert(Errors.GpuEscrow_RenounceOwnershipDisabled.selector);
        vm.prank(owner);
        escrow.renounceOwnership();
        assertEq(escrow.owner(), owner, "owner");
    }

    function test_TransferOwnership_KeepsConfiguration() external {
        // The pending owner shares a storage slot with the pause flag, the fee and the rental counter.
        openDefault();
        vm.prank(owner);
        escrow.pause();
        vm.prank(owner);
        escrow.transferOwnership(makeAddr("new owner"));
        assertTrue(escrow.paused(), "paused");
        assertEq(escrow.feeBps(), FEE_BPS, "feeBps");
        assertEq(escrow.nextRentalId(), 2, "nextRentalId");
        vm.prank(makeAddr("new owner"));
        escrow.acceptOwnership();
        assertTrue(escrow.paused(), "paused after");
        assertEq(escrow.feeBps(), FEE_BPS, "feeBps after");
        assertEq(escrow.nextRentalId(), 2, "nextRentalId after");
    }
}
