// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC1271 } from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Downtime, Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { BlocklistUSDC } from "../mocks/BlocklistUSDC.sol";
import { MockERC1271Wallet } from "../mocks/MockERC1271Wallet.sol";

contract CreditDowntime_Unit_Test is Base_Test {
    uint256 internal rentalId;

    function setUp() public override {
        Base_Test.setUp();
        rentalId = openDefault();
        vm.warp(START_TIME + 3 hours);
    }

    function submit(Downtime memory downtime, bytes[] memory entries) internal returns (uint256 refund) {
        vm.prank(stranger);
        refund = escrow.creditDowntime(packDowntime(downtime), packEntries(entries));
    }

    /// @dev A window of the default rental that has ended and is still unpaid.
    function window(uint256 downSeconds) internal view returns (Downtime memory) {
        return downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 3 hours, downSeconds);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                 REVERTS: THE WINDOW
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_Expired() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        vm.warp(downtime.deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_DowntimeExpired.selector, downtime.deadline, downtime.deadline + 1)
        );
        submit(downtime, entries);
    }

    function test_RevertWhen_RentalNotFound() external {
        Downtime memory downtime = window(60);
        downtime.rentalId = 2;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_WindowEmpty() external {
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 1 hours, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeWindowInvalid.selector, START_TIME + 1 hours, START_TIME + 1 hours
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_WindowReversed() external {
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 1 hours, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeWindowInvalid.selector, START_TIME + 2 hours, START_TIME + 1 hours
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_DownSecondsZero() external {
        Downtime memory downtime = window(0);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_DowntimeSecondsInvalid.selector, 0, 1 hours));
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_DownSecondsLongerThanWindow() external {
        Downtime memory downtime = window(1 hours + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_DowntimeSecondsInvalid.selector, 1 hours + 1, 1 hours));
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_WindowInFuture() external {
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 3 hours + 1, 60);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeInFuture.selector, START_TIME + 3 hours + 1, block.timestamp
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_WindowBeforeStart() external {
        Downtime memory downtime = downtimeOf(rentalId, START_TIME - 1, START_TIME + 10, 5);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOutsideRental.selector, rentalId, START_TIME - 1, START_TIME + 10
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_WindowAfterStop() external {
        stopAs(renter, rentalId); // end = START_TIME + 3 hours
        vm.warp(START_TIME + 5 hours);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 3 hours, START_TIME + 4 hours, 60);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOutsideRental.selector, rentalId, START_TIME + 3 hours, START_TIME + 4 hours
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_WindowPastEnd() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + DURATION - 10, START_TIME + DURATION + 10, 5);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOutsideRental.selector,
                rentalId,
                START_TIME + DURATION - 10,
                START_TIME + DURATION + 10
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_Replayed() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        submit(downtime, entries);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOverlaps.selector, rentalId, START_TIME + 2 hours, START_TIME + 3 hours
            )
        );
        submit(downtime, entries);
    }

    function test_RevertWhen_Overlapping() external {
        credit(window(60));
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 3 hours - 1, START_TIME + 3 hours, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOverlaps.selector, rentalId, START_TIME + 3 hours - 1, START_TIME + 3 hours
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_EarlierThanLastWindow() external {
        credit(window(60));
        Downtime memory downtime = downtimeOf(rentalId, START_TIME, START_TIME + 1 hours, 60);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOverlaps.selector, rentalId, START_TIME, START_TIME + 3 hours
            )
        );
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_WindowAlreadyPaid() external {
        // The provider was paid up to the cutoff, two hours in; a window before it is settled for good.
        withdrawAs(provider, rentalId);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 1 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToCredit.selector, rentalId));
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_FullyPaidRental() external {
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 5 hours, START_TIME + 6 hours, 600);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToCredit.selector, rentalId));
        submit(downtime, attest(downtime, 1));
    }

    /*//////////////////////////////////////////////////////////////////////////
                              REVERTS: THE ATTESTATION
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_NoSignatures() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationsBelowThreshold.selector, 0, 1));
        submit(window(60), new bytes[](0));
    }

    function test_RevertWhen_BelowThreshold() external {
        registerAttesters(3);
        vm.prank(owner);
        escrow.setAttesterThreshold(2);
        Downtime memory downtime = window(60);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationsBelowThreshold.selector, 1, 2));
        submit(downtime, attest(downtime, 1));
    }

    function test_RevertWhen_SameAttesterTwice() external {
        registerAttesters(2);
        vm.prank(owner);
        escrow.setAttesterThreshold(2);
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        bytes[] memory doubled = new bytes[](2);
        doubled[0] = entries[0];
        doubled[1] = entries[0];
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AttestersNotAscending.selector, attesters[0], attesters[0])
        );
        submit(downtime, doubled);
    }

    function test_RevertWhen_AttestersDescending() external {
        registerAttesters(2);
        vm.prank(owner);
        escrow.setAttesterThreshold(2);
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 2);
        (entries[0], entries[1]) = (entries[1], entries[0]);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AttestersNotAscending.selector, attesters[1], attesters[0])
        );
        submit(downtime, entries);
    }

    function test_RevertWhen_AttesterNotRegistered() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = new bytes[](1);
        entries[0] = attestationEntry(
            attesters[1], signDigest(attesterKeys[1], downtimeDigest(downtime, address(escrow), block.chainid))
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NotAttester.selector, attesters[1]));
        submit(downtime, entries);
    }

    function test_RevertWhen_AttesterUnregistered() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        // The last attester cannot be unregistered, so a successor comes first.
        registerAttesters(2);
        vm.prank(owner);
        escrow.setAttester(attesters[0], false);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NotAttester.selector, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_EntryClaimsOtherAttester() external {
        // A registered attester's address in front of someone else's signature.
        Downtime memory downtime = window(60);
        bytes[] memory entries = new bytes[](1);
        entries[0] = attestationEntry(
            attesters[0], signDigest(attesterKeys[1], downtimeDigest(downtime, address(escrow), block.chainid))
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_SecondEntrySignedByOtherKey() external {
        // The error names the entry and its attester, so the submitter knows whose signature to fetch again.
        registerAttesters(2);
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 2);
        entries[1] = attestationEntry(
            attesters[1], signDigest(attesterKeys[2], downtimeDigest(downtime, address(escrow), block.chainid))
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 1, attesters[1]));
        submit(downtime, entries);
    }

    function test_RevertWhen_TermsAlteredAfterSigning() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        downtime.downSeconds = 3600;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_SignedForOtherRental() external {
        // Both rentals cover the window, so only the signature can tell them apart.
        uint256 otherRental = openDefault();
        vm.warp(START_TIME + 4 hours);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 3 hours, START_TIME + 4 hours, 60);
        bytes[] memory entries = attest(downtime, 1);
        downtime.rentalId = otherRental;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_SignedForOtherChain() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = new bytes[](1);
        entries[0] = attestationEntry(
            attesters[0], signDigest(attesterKeys[0], downtimeDigest(downtime, address(escrow), block.chainid + 1))
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_ChainForked() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_SignedForOtherEscrow() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = new bytes[](1);
        entries[0] = attestationEntry(
            attesters[0], signDigest(attesterKeys[0], downtimeDigest(downtime, address(token), block.chainid))
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_EntryHeaderCutShort() external {
        // 21 bytes: shorter than the 22 bytes of an attester and a signature length.
        bytes[] memory entries = new bytes[](1);
        entries[0] = hex"00112233445566778899aabbccddeeff0011223344";
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationMalformed.selector, 0));
        submit(window(60), entries);
    }

    function test_RevertWhen_EntryCutShortAfterValidEntry() external {
        registerAttesters(2);
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 2);
        entries[1] = hex"00112233445566778899aabbccddeeff001122"; // 19 bytes
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationMalformed.selector, 1));
        submit(downtime, entries);
    }

    function test_RevertWhen_SignatureShorterThanItsLength() external {
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        bytes memory entry = entries[0];
        assembly ("memory-safe") {
            mstore(entry, 86) // the attester, the length (65) and 64 of the 65 signature bytes
        }
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationMalformed.selector, 0));
        submit(downtime, entries);
    }

    function test_RevertWhen_SignatureLongerThanItsLength() external {
        // One byte too many: it is read as the start of a second entry, which is cut short.
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        entries[0] = bytes.concat(entries[0], hex"00");
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationMalformed.selector, 1));
        submit(downtime, entries);
    }

    function test_RevertWhen_SignatureTruncated() external {
        // A consistent entry whose signature is 64 of the 65 bytes: well-formed, but not a valid signature.
        Downtime memory downtime = window(60);
        bytes memory signature = signDigest(attesterKeys[0], downtimeDigest(downtime, address(escrow), block.chainid));
        assembly ("memory-safe") {
            mstore(signature, 64)
        }
        bytes[] memory entries = new bytes[](1);
        entries[0] = attestationEntry(attesters[0], signature);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_CompactSignature() external {
        // EIP-2098 `r || vs` signatures are not accepted from EOAs: only 65-byte `r || s || v` ones are.
        Downtime memory downtime = window(60);
        (bytes32 r, bytes32 vs) =
            vm.signCompact(attesterKeys[0], downtimeDigest(downtime, address(escrow), block.chainid));
        bytes[] memory entries = new bytes[](1);
        entries[0] = attestationEntry(attesters[0], abi.encodePacked(r, vs));
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, attesters[0]));
        submit(downtime, entries);
    }

    function test_RevertWhen_MalformedEntryBelowThreshold() external {
        // Entries are checked before their count: a malformed one is reported as such.
        registerAttesters(3);
        vm.prank(owner);
        escrow.setAttesterThreshold(3);
        bytes[] memory entries = new bytes[](2);
        entries[0] = hex"01";
        entries[1] = hex"02";
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationMalformed.selector, 0));
        submit(window(60), entries);
    }

    function test_RevertWhen_RentalIdBeyond64Bits() external {
        // The packed attestation carries 96 bits of rental id; ids past the 64-bit counter name no rental.
        Downtime memory downtime = window(60);
        downtime.rentalId = uint256(type(uint96).max);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, type(uint96).max));
        submit(downtime, attest(downtime, 1));
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_CreditDowntime() external {
        Downtime memory downtime = window(600);
        uint256 refund = RATE * 600;
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.DowntimeCredited({
            rentalId: rentalId, from: START_TIME + 2 hours, to: START_TIME + 3 hours, downSeconds: 600, refund: refund
        });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (renter, refund)));

        uint256 returned = submit(downtime, attest(downtime, 1));

        assertEq(returned, refund, "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT + refund, "renter balance");
        assertEq(balanceOf(stranger), INITIAL_BALANCE, "submitter gets nothing");
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 600, "credited");
        assertEq(rental.creditedUntil, START_TIME + 3 hours, "creditedUntil");
        assertEq(escrow.earned(rentalId), RATE * (3 hours - 600), "earned");
    }

    function test_CreditDowntime_ProviderNeverPaidForCreditedSeconds() external {
        credit(window(600));
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        uint256 gross = RATE * (DURATION - 600);
        assertEq(withdrawAs(provider, rentalId), gross - feeOf(gross, FEE_BPS), "paid");
        assertEq(balanceOf(address(escrow)), feeOf(gross, FEE_BPS), "escrow keeps the fee only");
    }

    function test_CreditDowntime_WholeWindow() external {
        assertEq(credit(window(1 hours)), RATE * 1 hours, "refund");
    }

    function test_CreditDowntime_AdjacentWindows() external {
        credit(downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 60));
        credit(downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 3 hours, 60));
        assertEq(escrow.getRental(rentalId).credited, 120, "credited");
    }

    function test_CreditDowntime_PartlyPaidWindowIsClipped() external {
        // Paid up to two hours in; the window [1h30, 3h) has only its last hour unpaid.
        withdrawAs(provider, rentalId);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 1.5 hours, START_TIME + 3 hours, 1.5 hours);
        assertEq(credit(downtime), RATE * 1 hours, "refund clipped to the unpaid hour");
        assertEq(escrow.getRental(rentalId).credited, 1 hours, "credited");
    }

    function test_CreditDowntime_DownSecondsBelowUnpaidPart() external {
        withdrawAs(provider, rentalId);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + 1.5 hours, START_TIME + 3 hours, 600);
        assertEq(credit(downtime), RATE * 600, "refund");
    }

    function test_CreditDowntime_AfterStop() external {
        stopAs(renter, rentalId);
        vm.warp(START_TIME + 4 hours);
        assertEq(credit(window(600)), RATE * 600, "refund");
        vm.warp(START_TIME + 3 hours + DISPUTE_WINDOW);
        uint256 gross = RATE * (3 hours - 600);
        assertEq(withdrawAs(provider, rentalId), gross - feeOf(gross, FEE_BPS), "paid");
        assertEq(balanceOf(address(escrow)), feeOf(gross, FEE_BPS), "escrow keeps the fee only");
    }

    function test_CreditDowntime_AfterEndBeforePayout() external {
        vm.warp(START_TIME + DURATION + 30 minutes);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + DURATION - 1 hours, START_TIME + DURATION, 1 hours);
        assertEq(credit(downtime), RATE * 1 hours, "refund");
    }

    function test_CreditDowntime_WhilePaused() external {
        vm.prank(owner);
        escrow.pause();
        assertEq(credit(window(60)), RATE * 60, "refund");
    }

    function test_CreditDowntime_ProviderBlocklisted() external {
        token.setBlocklisted(provider, true);
        assertEq(credit(window(60)), RATE * 60, "refund");
    }

    function test_RevertWhen_RenterBlocklisted() external {
        // The refund can only go to the renter; a blocklisted renter has to wait for the blocklist to lift.
        token.setBlocklisted(renter, true);
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 1);
        vm.expectRevert(abi.encodeWithSelector(BlocklistUSDC.Blocklisted.selector, renter));
        submit(downtime, entries);
    }

    function test_CreditDowntime_Threshold() external {
        registerAttesters(3);
        vm.prank(owner);
        escrow.setAttesterThreshold(2);
        Downtime memory downtime = window(60);
        assertEq(submit(downtime, attest(downtime, 2)), RATE * 60, "refund with 2 of 3");
    }

    function test_CreditDowntime_MoreSignaturesThanThreshold() external {
        registerAttesters(3);
        vm.prank(owner);
        escrow.setAttesterThreshold(2);
        Downtime memory downtime = window(60);
        assertEq(submit(downtime, attest(downtime, 3)), RATE * 60, "refund with 3 of 3");
    }

    function test_CreditDowntime_ThresholdRaised() external {
        // Both attesters were registered before the change, and both now need a co-signer.
        vm.startPrank(owner);
        escrow.setAttester(attesters[1], true);
        escrow.setAttesterThreshold(2);
        vm.stopPrank();
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 2);
        bytes[] memory single = new bytes[](1);
        for (uint256 i = 0; i < 2; ++i) {
            single[0] = entries[i];
            vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationsBelowThreshold.selector, 1, 2));
            submit(downtime, single);
        }
        assertEq(submit(downtime, entries), RATE * 60, "refund with 2 of 2");
    }

    function test_CreditDowntime_ThresholdLowered() external {
        registerAttesters(2);
        vm.startPrank(owner);
        escrow.setAttesterThreshold(2);
        escrow.setAttesterThreshold(1);
        vm.stopPrank();
        Downtime memory downtime = window(60);
        bytes[] memory entries = attest(downtime, 2);
        bytes[] memory single = new bytes[](1);
        single[0] = entries[1];
        assertEq(submit(downtime, single), RATE * 60, "refund with 1 of 2");
    }

    function test_CreditDowntime_ReregisteredAttester() external {
        // Unregistered while the threshold changes, registered again afterwards: it follows the current threshold.
        registerAttesters(3);
        vm.startPrank(owner);
        escrow.setAttester(attesters[0], false);
        escrow.setAttesterThreshold(2);
        escrow.setAttester(attesters[0], true);
        vm.stopPrank();
        Downtime memory downtime = window(60);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AttestationsBelowThreshold.selector, 1, 2));
        submit(downtime, attest(downtime, 1));

        vm.prank(owner);
        escrow.setAttesterThreshold(1);
        assertEq(submit(downtime, attest(downtime, 1)), RATE * 60, "refund");
    }

    function test_RevertWhen_UnregisteredAttesterAfterThresholdChange() external {
        // A threshold change must not bring an unregistered attester back.
        registerAttesters(2);
        vm.startPrank(owner);
        escrow.setAttester(attesters[0], false);
        escrow.setAttesterThreshold(1);
        vm.stopPrank();
        assertFalse(escrow.isAttester(attesters[0]), "isAttester");
        Downtime memory downtime = window(60);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NotAttester.selector, attesters[0]));
        submit(downtime, attest(downtime, 1));
    }

    function test_CreditDowntime_ERC1271Attester() external {
        // A multisig-like contract attester, signed through its owner key, next to an EOA attester.
        MockERC1271Wallet multisig = registerWalletBesideTwoAttesters();

        Downtime memory downtime = window(60);
        bytes32 digest = downtimeDigest(downtime, address(escrow), block.chainid);
        bytes memory eoaEntry = attestationEntry(attesters[0], signDigest(attesterKeys[0], digest));
        bytes memory walletEntry = attestationEntry(address(multisig), signDigest(attesterKeys[2], digest));
        bytes[] memory entries = new bytes[](2);
        (entries[0], entries[1]) = attesters[0] < address(multisig) ? (eoaEntry, walletEntry) : (walletEntry, eoaEntry);

        assertEq(submit(downtime, entries), RATE * 60, "refund");
    }

    function test_CreditDowntime_ERC1271AttesterLongSignature() external {
        // A contract attester's signature can be of any length (here two signatures, as a 2-of-n multisig would
        // send); the escrow hands it over byte for byte, and the entry after it is still found.
        MockERC1271Wallet multisig = registerWalletBesideTwoAttesters();

        Downtime memory downtime = window(60);
        bytes32 digest = downtimeDigest(downtime, address(escrow), block.chainid);
        bytes memory long = bytes.concat(signDigest(attesterKeys[2], digest), signDigest(attesterKeys[1], digest));
        vm.mockCall(
            address(multisig),
            abi.encodeCall(IERC1271.isValidSignature, (digest, long)),
            abi.encode(IERC1271.isValidSignature.selector)
        );
        bytes memory eoaEntry = attestationEntry(attesters[0], signDigest(attesterKeys[0], digest));
        bytes memory walletEntry = attestationEntry(address(multisig), long);
        bytes[] memory entries = new bytes[](2);
        (entries[0], entries[1]) = attesters[0] < address(multisig) ? (eoaEntry, walletEntry) : (walletEntry, eoaEntry);

        vm.expectCall(address(multisig), abi.encodeCall(IERC1271.isValidSignature, (digest, long)));
        assertEq(submit(downtime, entries), RATE * 60, "refund");
    }

    function test_CreditDowntime_PackedMembersAtTheirWidths() external {
        // A rental whose window ends at the last 40-bit second, attested with every member at its widest: the packed
        // members unpack to exactly what the attester signed.
        vm.warp(type(uint40).max - 3 hours);
        uint256 id = openWith(defaultQuote(), 3 hours);
        vm.warp(type(uint40).max);
        Downtime memory downtime = Downtime({
            rentalId: id,
            from: type(uint40).max - 1 hours,
            to: type(uint40).max,
            downSeconds: 1 hours,
            deadline: type(uint40).max
        });
        assertEq(submit(downtime, attest(downtime, 1)), RATE * 1 hours, "refund");
        Rental memory rental = escrow.getRental(id);
        assertEq(rental.credited, 1 hours, "credited");
        assertEq(rental.creditedUntil, type(uint40).max, "creditedUntil");
    }

    function test_CreditDowntime_DelegatedAttester() external {
        // An attester EOA that delegated its code (EIP-7702) still signs with its key: ECDSA is checked first, as for
        // quotes, and the contract is only asked when that fails.
        vm.etch(attesters[0], address(new MockERC1271Wallet(address(0))).code);
        Downtime memory downtime = window(60);
        assertEq(submit(downtime, attest(downtime, 1)), RATE * 60, "refund");
    }

    function test_RevertWhen_ERC1271AttesterRejects() external {
        MockERC1271Wallet multisig = new MockERC1271Wallet(attesters[2]);
        vm.prank(owner);
        escrow.setAttester(address(multisig), true);
        vm.prank(attesters[2]);
        multisig.setRevoked(true);

        Downtime memory downtime = window(60);
        bytes[] memory entries = new bytes[](1);
        entries[0] = attestationEntry(
            address(multisig), signDigest(attesterKeys[2], downtimeDigest(downtime, address(escrow), block.chainid))
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidAttestation.selector, 0, address(multisig)));
        submit(downtime, entries);
    }

    /// @dev Registers attesters 0 and 1 and a contract wallet owned by attester 2's key, with a threshold of two.
    function registerWalletBesideTwoAttesters() internal returns (MockERC1271Wallet multisig) {
        multisig = new MockERC1271Wallet(attesters[2]);
        registerAttesters(2);
        vm.startPrank(owner);
        escrow.setAttester(address(multisig), true);
        escrow.setAttesterThreshold(2);
        vm.stopPrank();
    }

    function registerAttesters(uint256 count) internal {
        vm.startPrank(owner);
        for (uint256 i = 0; i < count; ++i) {
            escrow.setAttester(attesters[i], true);
        }
        vm.stopPrank();
    }
}
