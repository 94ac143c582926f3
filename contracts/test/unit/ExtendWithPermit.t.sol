// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote, Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract ExtendWithPermit_Unit_Test is Base_Test {
    /// @dev A signed EIP-2612 permit, as `extendWithPermit` takes it.
    struct Permit {
        uint256 deadline;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @dev A renter that opened with a permit and so has no allowance left, as the CLI's renters do.
    address internal permitRenter;
    uint256 internal permitRenterKey;
    uint256 internal rentalId;

    /// @dev What the default quote still allows on top of the default duration.
    uint256 internal constant HEADROOM = MAX_DURATION - DURATION;

    uint256 internal constant COST = RATE * 2 hours;

    function setUp() public override {
        Base_Test.setUp();
        (permitRenter, permitRenterKey) = makeAddrAndKey("permit renter");
        token.mint(permitRenter, INITIAL_BALANCE);

        Quote memory quote = defaultQuote();
        quote.renter = permitRenter;
        bytes memory signature = signQuote(providerKey, quote);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        vm.prank(permitRenter);
        rentalId = escrow.openWithPermit(quote, DURATION, signature, deadline, v, r, s);
        vm.warp(START_TIME + 1 hours);
    }

    /// @dev Extends the rental by `extraSeconds` as `caller` with a permit of `value` signed by the permit renter.
    function extendWithPermitAs(address caller, uint256 id, uint256 extraSeconds, uint256 value)
        internal
        returns (uint256 cost)
    {
        Permit memory permit = permitOf(value);
        cost = extendWithPermitAs(caller, id, extraSeconds, permit);
    }

    /// @dev Extends the rental with a permit signed beforehand, so that `vm.expectRevert` sees the extension itself.
    function extendWithPermitAs(address caller, uint256 id, uint256 extraSeconds, Permit memory permit)
        internal
        returns (uint256 cost)
    {
        vm.prank(caller);
        cost = escrow.extendWithPermit(id, extraSeconds, permit.deadline, permit.v, permit.r, permit.s);
    }

    /// @dev The permit renter's permit of `value` to the escrow, valid for an hour.
    function permitOf(uint256 value) internal view returns (Permit memory permit) {
        permit.deadline = block.timestamp + 1 hours;
        (permit.v, permit.r, permit.s) = signPermit(permitRenterKey, address(escrow), value, permit.deadline);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_ExtendWithPermit() external {
        assertEq(token.allowance(permitRenter, address(escrow)), 0, "no allowance before");
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), COST, deadline);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalExtended({ rentalId: rentalId, newEnd: START_TIME + DURATION + 2 hours, cost: COST });
        vm.expectCall(
            address(token), abi.encodeCall(token.permit, (permitRenter, address(escrow), COST, deadline, v, r, s))
        );
        vm.expectCall(address(token), abi.encodeCall(IERC20.transferFrom, (permitRenter, address(escrow), COST)));
        vm.prank(permitRenter);
        uint256 cost = escrow.extendWithPermit(rentalId, 2 hours, deadline, v, r, s);

        assertEq(cost, COST, "cost");
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, START_TIME + DURATION + 2 hours, "end");
        assertEq(rental.start, START_TIME, "start");
        assertEq(balanceOf(address(escrow)), DEPOSIT + COST, "escrow balance");
        assertEq(balanceOf(permitRenter), INITIAL_BALANCE - DEPOSIT - COST, "renter balance");
        assertEq(token.allowance(permitRenter, address(escrow)), 0, "allowance consumed");
        assertEq(token.nonces(permitRenter), 2, "permit nonce");
    }

    function test_ExtendWithPermit_Twice() external {
        extendWithPermitAs(permitRenter, rentalId, 1 hours, RATE * 1 hours);
        extendWithPermitAs(permitRenter, rentalId, 3 hours, RATE * 3 hours);
        assertEq(escrow.getRental(rentalId).end, START_TIME + DURATION + 4 hours, "end");
        assertEq(balanceOf(address(escrow)), DEPOSIT + RATE * 4 hours, "escrow balance");
    }

    function test_ExtendWithPermit_UpToMax() external {
        extendWithPermitAs(permitRenter, rentalId, HEADROOM, RATE * HEADROOM);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, rental.maxEnd, "end == maxEnd");
    }

    function test_ExtendWithPermit_FrontRunPermit() external {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), COST, deadline);

        // Someone copies the permit from the mempool and submits it first: the allowance is in place all the same.
        vm.prank(stranger);
        token.permit(permitRenter, address(escrow), COST, deadline, v, r, s);

        vm.prank(permitRenter);
        uint256 cost = escrow.extendWithPermit(rentalId, 2 hours, deadline, v, r, s);

        assertEq(cost, COST, "cost");
        assertEq(balanceOf(address(escrow)), DEPOSIT + COST, "escrow balance");
        assertEq(token.allowance(permitRenter, address(escrow)), 0, "allowance consumed");
    }

    function test_ExtendWithPermit_InvalidPermitButApproved() external {
        // A garbage permit is ignored when an earlier approval covers the cost, and the approval is spent as usual.
        vm.prank(permitRenter);
        token.approve(address(escrow), COST + 1);
        vm.prank(permitRenter);
        uint256 cost = escrow.extendWithPermit(rentalId, 2 hours, block.timestamp, 27, bytes32(0), bytes32(0));
        assertEq(cost, COST, "cost");
        assertEq(token.allowance(permitRenter, address(escrow)), 1, "approval spent");
        assertEq(token.nonces(permitRenter), 1, "no permit used");
    }

    function test_ExtendWithPermit_ReplacesStandingApproval() external {
        // A permit sets the allowance rather than adding to it: a standing approval is replaced by the cost, which the
        // extension then uses up (documented in the interface).
        vm.prank(permitRenter);
        token.approve(address(escrow), type(uint256).max);
        extendWithPermitAs(permitRenter, rentalId, 2 hours, COST);
        assertEq(token.allowance(permitRenter, address(escrow)), 0, "allowance replaced and spent");
    }

    function test_ExtendWithPermit_ThenStop_RefundsExtension() external {
        extendWithPermitAs(permitRenter, rentalId, 2 hours, COST);
        uint256 refund = stopAs(permitRenter, rentalId);
        assertEq(refund, RATE * (DURATION + 2 hours - 1 hours), "refund");
        assertEq(balanceOf(address(escrow)), RATE * 1 hours, "escrow holds the hour used");
    }

    function test_ExtendWithPermit_KeepsSnapshottedFee() external {
        vm.prank(owner);
        escrow.setFeeBps(1500);
        extendWithPermitAs(permitRenter, rentalId, 1 hours, RATE * 1 hours);
        assertEq(escrow.getRental(rentalId).feeBps, FEE_BPS, "feeBps");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_PermitForOtherValueAndNoAllowance() external {
        // The escrow permits exactly the cost, so a permit signed for another value fails to verify.
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), COST + 1, deadline);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_PermitFailed.selector, 0, COST));
        vm.prank(permitRenter);
        escrow.extendWithPermit(rentalId, 2 hours, deadline, v, r, s);
    }

    function test_RevertWhen_PermitExpiredAndAllowanceShort() external {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), COST, deadline);
        vm.prank(permitRenter);
        token.approve(address(escrow), COST - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_PermitFailed.selector, COST - 1, COST));
        vm.prank(permitRenter);
        escrow.extendWithPermit(rentalId, 2 hours, deadline, v, r, s);
        assertEq(escrow.getRental(rentalId).end, START_TIME + DURATION, "end unchanged");
    }

    function test_RevertWhen_PermitSignedByOtherAccount() external {
        // The renter of another rental cannot pay with the permit renter's permit: the escrow permits for the caller.
        uint256 otherId = openDefault();
        vm.prank(renter);
        token.approve(address(escrow), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), COST, deadline);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_PermitFailed.selector, 0, COST));
        vm.prank(renter);
        escrow.extendWithPermit(otherId, 2 hours, deadline, v, r, s);
    }

    function test_RevertWhen_CallerNotRenter() external {
        // A stranger with the renter's permit in hand still cannot extend the rental, and the permit stays unused.
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), COST, deadline);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, stranger));
        vm.prank(stranger);
        escrow.extendWithPermit(rentalId, 2 hours, deadline, v, r, s);
        assertEq(token.nonces(permitRenter), 1, "permit unused");
    }

    function test_RevertWhen_Paused() external {
        vm.prank(owner);
        escrow.pause();
        Permit memory permit = permitOf(COST);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        extendWithPermitAs(permitRenter, rentalId, 2 hours, permit);
    }

    function test_RevertWhen_RentalNotFound() external {
        Permit memory permit = permitOf(COST);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, rentalId + 1));
        extendWithPermitAs(permitRenter, rentalId + 1, 2 hours, permit);
    }

    function test_RevertWhen_Stopped() external {
        stopAs(permitRenter, rentalId);
        Permit memory permit = permitOf(COST);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        extendWithPermitAs(permitRenter, rentalId, 2 hours, permit);
    }

    function test_RevertWhen_Ended() external {
        vm.warp(START_TIME + DURATION);
        Permit memory permit = permitOf(COST);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyEnded.selector, rentalId, START_TIME + DURATION)
        );
        extendWithPermitAs(permitRenter, rentalId, 2 hours, permit);
    }

    function test_RevertWhen_ExtensionZero() external {
        Permit memory permit = permitOf(0);
        vm.expectRevert(Errors.GpuEscrow_ExtensionZero.selector);
        extendWithPermitAs(permitRenter, rentalId, 0, permit);
    }

    function test_RevertWhen_ExtensionAboveMax() external {
        Permit memory permit = permitOf(RATE * (HEADROOM + 1));
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_ExtensionAboveMax.selector, rentalId, HEADROOM + 1, HEADROOM)
        );
        extendWithPermitAs(permitRenter, rentalId, HEADROOM + 1, permit);
        assertEq(token.nonces(permitRenter), 1, "permit unused");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                        FUZZ
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Any extension within the quote's maximum costs the rate times its seconds, paid by its permit alone.
    function testFuzz_ExtendWithPermit(uint256 extraSeconds, uint256 elapsed) external {
        elapsed = bound(elapsed, 0, DURATION - 1 hours - 1);
        vm.warp(block.timestamp + elapsed);
        extraSeconds = bound(extraSeconds, 1, HEADROOM);
        uint256 cost = extendWithPermitAs(permitRenter, rentalId, extraSeconds, RATE * extraSeconds);
        assertEq(cost, RATE * extraSeconds, "cost");
        assertEq(escrow.getRental(rentalId).end, START_TIME + DURATION + extraSeconds, "end");
        assertEq(balanceOf(address(escrow)), DEPOSIT + cost, "escrow balance");
        assertEq(token.allowance(permitRenter, address(escrow)), 0, "allowance consumed");
    }
}
