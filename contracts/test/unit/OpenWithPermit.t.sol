// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract OpenWithPermit_Unit_Test is Base_Test {
    /// @dev A renter that never approved the escrow, as a permit user would be.
    address internal permitRenter;
    uint256 internal permitRenterKey;

    function setUp() public override {
        Base_Test.setUp();
        (permitRenter, permitRenterKey) = makeAddrAndKey("permit renter");
        token.mint(permitRenter, INITIAL_BALANCE);
    }

    function permitQuote() internal returns (Quote memory quote) {
        quote = defaultQuote();
        quote.renter = permitRenter;
    }

    function openWithPermitAs(Quote memory quote, uint256 duration, uint8 v, bytes32 r, bytes32 s, uint256 deadline)
        internal
        returns (uint256 rentalId)
    {
        bytes memory signature = signQuote(providerKey, quote);
        vm.prank(quote.renter);
        rentalId = escrow.openWithPermit(quote, duration, signature, deadline, v, r, s);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_OpenWithPermit() external {
        Quote memory quote = permitQuote();
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalOpened({
            rentalId: 1,
            renter: permitRenter,
            provider: provider,
            nonce: quote.nonce,
            offerId: quote.offerId,
            ratePerSecond: RATE,
            start: START_TIME,
            end: START_TIME + DURATION,
            deposit: DEPOSIT
        });
        uint256 rentalId = openWithPermitAs(quote, DURATION, v, r, s, deadline);

        assertEq(rentalId, 1, "rentalId");
        assertEq(balanceOf(permitRenter), INITIAL_BALANCE - DEPOSIT, "renter balance");
        assertEq(balanceOf(address(escrow)), DEPOSIT, "escrow balance");
        assertEq(token.allowance(permitRenter, address(escrow)), 0, "allowance consumed");
        assertEq(token.nonces(permitRenter), 1, "permit nonce");
    }

    function test_OpenWithPermit_FrontRunPermit() external {
        Quote memory quote = permitQuote();
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);

        // Someone copies the permit from the mempool and submits it first.
        vm.prank(stranger);
        token.permit(permitRenter, address(escrow), DEPOSIT, deadline, v, r, s);

        uint256 rentalId = openWithPermitAs(quote, DURATION, v, r, s, deadline);

        assertEq(rentalId, 1, "rentalId");
        assertEq(balanceOf(address(escrow)), DEPOSIT, "escrow balance");
        assertEq(token.allowance(permitRenter, address(escrow)), 0, "allowance consumed");
    }

    function test_OpenWithPermit_InvalidPermitButApproved() external {
        // A garbage permit is ignored when an earlier approval covers the deposit.
        vm.prank(permitRenter);
        token.approve(address(escrow), DEPOSIT);
        uint256 rentalId = openWithPermitAs(permitQuote(), DURATION, 27, bytes32(0), bytes32(0), block.timestamp);
        assertEq(rentalId, 1, "rentalId");
    }

    function test_OpenWithPermit_PermitForMoreThanDepositFails_ButApproved() external {
        // The escrow permits exactly the deposit, so a permit signed for another value fails; an existing allowance
        // still lets the open through.
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT * 2, deadline);
        vm.prank(permitRenter);
        token.approve(address(escrow), DEPOSIT);
        openWithPermitAs(permitQuote(), DURATION, v, r, s, deadline);
        assertEq(token.nonces(permitRenter), 0, "permit not used");
    }

    function test_OpenWithPermit_TokenPermitCalledWithDeposit() external {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        vm.expectCall(
            address(token), abi.encodeCall(token.permit, (permitRenter, address(escrow), DEPOSIT, deadline, v, r, s))
        );
        vm.expectCall(address(token), abi.encodeCall(IERC20.transferFrom, (permitRenter, address(escrow), DEPOSIT)));
        openWithPermitAs(permitQuote(), DURATION, v, r, s, deadline);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_PermitInvalidAndNoAllowance() external {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT - 1, deadline);
        Quote memory quote = permitQuote();
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_PermitFailed.selector, 0, DEPOSIT));
        vm.prank(permitRenter);
        escrow.openWithPermit(quote, DURATION, signature, deadline, v, r, s);
    }

    function test_RevertWhen_PermitExpiredAndAllowanceShort() external {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        vm.prank(permitRenter);
        token.approve(address(escrow), DEPOSIT - 1);
        Quote memory quote = permitQuote();
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_PermitFailed.selector, DEPOSIT - 1, DEPOSIT));
        vm.prank(permitRenter);
        escrow.openWithPermit(quote, DURATION, signature, deadline, v, r, s);
    }

    function test_RevertWhen_PermitSignedByOtherAccount() external {
        // A permit signed by the renter cannot fund a rental opened by someone else: the escrow permits for the caller.
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        address other = makeAddr("other renter");
        token.mint(other, INITIAL_BALANCE);
        Quote memory quote = defaultQuote();
        quote.renter = other;
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_PermitFailed.selector, 0, DEPOSIT));
        vm.prank(other);
        escrow.openWithPermit(quote, DURATION, signature, deadline, v, r, s);
    }

    function test_RevertWhen_Paused() external {
        vm.prank(owner);
        escrow.pause();
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        Quote memory quote = permitQuote();
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(permitRenter);
        escrow.openWithPermit(quote, DURATION, signature, deadline, v, r, s);
    }

    function test_RevertWhen_QuoteInvalid() external {
        // Quote checks come before the permit, so a bad quote never consumes the renter's permit.
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        Quote memory quote = permitQuote();
        bytes memory signature = signQuote(providerKey, quote);
        quote.maxDuration = MAX_DURATION * 2;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(permitRenter);
        escrow.openWithPermit(quote, DURATION, signature, deadline, v, r, s);
        assertEq(token.nonces(permitRenter), 0, "permit unused");
    }

    function test_RevertWhen_QuoteReplayedWithPermit() external {
        Quote memory quote = permitQuote();
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        openWithPermitAs(quote, DURATION, v, r, s, deadline);
        (v, r, s) = signPermit(permitRenterKey, address(escrow), DEPOSIT, deadline);
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, quote.nonce));
        vm.prank(permitRenter);
        escrow.openWithPermit(quote, DURATION, signature, deadline, v, r, s);
    }
}
