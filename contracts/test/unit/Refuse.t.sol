// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote, Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { MockERC1271Wallet } from "../mocks/MockERC1271Wallet.sol";

contract Refuse_Unit_Test is Base_Test {
    uint256 internal rentalId;

    function setUp() public override {
        Base_Test.setUp();
        rentalId = openDefault();
    }

    /// @dev Submits `signature` as the refusal of `id`, from a third party.
    function submit(uint256 id, bytes memory signature) internal returns (uint256 refund) {
        vm.prank(stranger);
        refund = escrow.refuse(id, signature);
    }

    /// @dev The provider can be paid nothing on the rental, now or at any later time.
    function assertProviderGetsNothing(uint256 id) internal {
        assertEq(escrow.earned(id), 0, "earned");
        assertEq(escrow.withdrawable(id), 0, "withdrawable");
        vm.warp(block.timestamp + 365 days);
        assertEq(escrow.earned(id), 0, "earned a year later");
        assertEq(escrow.withdrawable(id), 0, "withdrawable a year later");
        address payee = escrow.getRental(id).provider;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, id));
        withdrawAs(payee, id);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  REVERTS: THE RENTAL
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_RentalNotFound() external {
        bytes memory signature = signRefusal(providerKey, 2);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        submit(2, signature);
    }

    function test_RevertWhen_RentalIdZero() external {
        bytes memory signature = signRefusal(providerKey, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 0));
        submit(0, signature);
    }

    function test_RevertWhen_ProviderWithdrew() external {
        vm.warp(START_TIME + DISPUTE_WINDOW + 10);
        withdrawAs(provider, rentalId);
        bytes memory signature = signRefusal(providerKey, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RefusalAfterWithdrawal.selector, rentalId, RATE * 10));
        submit(rentalId, signature);
    }

    function test_RevertWhen_ProviderWithdrewEverything() external {
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        bytes memory signature = signRefusal(providerKey, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RefusalAfterWithdrawal.selector, rentalId, DEPOSIT));
        submit(rentalId, signature);
    }

    function test_RevertWhen_AlreadyRefused() external {
        bytes memory signature = signRefusal(providerKey, rentalId);
        submit(rentalId, signature);
        vm.warp(START_TIME + 100);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToRefund.selector, rentalId));
        submit(rentalId, signature);
    }

    function test_RevertWhen_AlreadyRefused_AfterCredit() external {
        vm.warp(START_TIME + 2 hours);
        credit(downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 600));
        bytes memory signature = signRefusal(providerKey, rentalId);
        submit(rentalId, signature);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToRefund.selector, rentalId));
        submit(rentalId, signature);
    }

    function test_RevertWhen_FullyCredited() external {
        vm.warp(START_TIME + DURATION);
        credit(downtimeOf(rentalId, START_TIME, START_TIME + DURATION, DURATION));
        bytes memory signature = signRefusal(providerKey, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToRefund.selector, rentalId));
        submit(rentalId, signature);
    }

    function test_RevertWhen_StoppedInFirstSecond() external {
        // The stop refunded the whole deposit already.
        stopAs(renter, rentalId);
        bytes memory signature = signRefusal(providerKey, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToRefund.selector, rentalId));
        submit(rentalId, signature);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                REVERTS: THE SIGNATURE
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_SignedByRenter() external {
        bytes memory signature = signRefusal(renterKey, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        submit(rentalId, signature);
    }

    function test_RevertWhen_SignedByOtherKey() external {
        (, uint256 otherKey) = makeAddrAndKey("other provider");
        bytes memory signature = signRefusal(otherKey, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        submit(rentalId, signature);
    }

    function test_RevertWhen_SignedForOtherRental() external {
        uint256 otherId = openDefault();
        bytes memory signature = signRefusal(providerKey, otherId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        submit(rentalId, signature);
    }

    function test_RevertWhen_SignedForOtherChain() external {
        bytes memory signature = signDigest(providerKey, refusalDigest(rentalId, address(escrow), block.chainid + 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        submit(rentalId, signature);
    }

    function test_RevertWhen_SignedForOtherEscrow() external {
        IGpuEscrow other = deployEscrow(FEE_BPS, DISPUTE_WINDOW);
        bytes memory signature = signDigest(providerKey, refusalDigest(rentalId, address(other), block.chainid));
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        submit(rentalId, signature);
    }

    function test_RevertWhen_QuoteSignatureReused() external {
        // The provider's signature of the rental's own quote is no refusal.
        Quote memory quote = defaultQuote();
        uint256 otherId = openWith(quote, DURATION);
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, otherId, provider));
        submit(otherId, signature);
    }

    function test_RevertWhen_SignatureEmpty() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        submit(rentalId, "");
    }

    function test_RevertWhen_SignatureTruncated() external {
        bytes memory signature = signRefusal(providerKey, rentalId);
        assembly ("memory-safe") {
            mstore(signature, 64)
        }
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        submit(rentalId, signature);
    }

    function test_RevertWhen_WalletProviderRevoked() external {
        MockERC1271Wallet wallet = new MockERC1271Wallet(provider);
        Quote memory quote = defaultQuote();
        quote.provider = address(wallet);
        uint256 walletRentalId = openWith(quote, DURATION);
        vm.prank(provider);
        wallet.setRevoked(true);
        bytes memory signature = signRefusal(providerKey, walletRentalId);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, walletRentalId, address(wallet))
        );
        submit(walletRentalId, signature);
    }

    /*//////////////////////////////////////////////////////////////////////////
                              REVERTS: AFTER A REFUSAL
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_StopAfterRefusal() external {
        refuseAs(stranger, rentalId);
        vm.warp(START_TIME + 100);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        stopAs(renter, rentalId);
    }

    function test_RevertWhen_ExtendAfterRefusal() external {
        refuseAs(stranger, rentalId);
        vm.warp(START_TIME + 100);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        extendAs(renter, rentalId, 60);
    }

    function test_RevertWhen_WithdrawAfterRefusal() external {
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        refuseAs(stranger, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_CreditAfterRefusal() external {
        vm.warp(START_TIME + 2 hours);
        refuseAs(stranger, rentalId);
        // The rental now ends where it started: no window of it is left to credit.
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOutsideRental.selector, rentalId, START_TIME, START_TIME + 1 hours
            )
        );
        credit(downtimeOf(rentalId, START_TIME, START_TIME + 1 hours, 60));
    }

    function test_RevertWhen_CreditAfterCreditAndRefusal() external {
        vm.warp(START_TIME + 3 hours);
        credit(downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 600));
        refuseAs(stranger, rentalId);
        // The rental now ends 600 seconds after its start, before the credited window's end.
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOutsideRental.selector, rentalId, START_TIME + 2 hours, START_TIME + 3 hours
            )
        );
        credit(downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 3 hours, 60));
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOverlaps.selector, rentalId, START_TIME + 1, START_TIME + 2 hours
            )
        );
        credit(downtimeOf(rentalId, START_TIME + 1, START_TIME + 2, 1));
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_HashRefusal() external view {
        assertEq(escrow.hashRefusal(rentalId), refusalDigest(rentalId, address(escrow), block.chainid), "digest");
        assertEq(escrow.hashRefusal(7), refusalDigest(7, address(escrow), block.chainid), "any id");
        assertNotEq(escrow.hashRefusal(1), escrow.hashRefusal(2), "one digest per rental");
    }

    function test_Refuse() external {
        uint256 elapsed = 1234;
        vm.warp(START_TIME + elapsed);
        bytes memory signature = signRefusal(providerKey, rentalId);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalRefused({ rentalId: rentalId, renter: renter, refund: DEPOSIT });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (renter, DEPOSIT)));

        uint256 refund = submit(rentalId, signature);

        assertEq(refund, DEPOSIT, "refund is the whole deposit, used seconds included");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter made whole");
        assertEq(balanceOf(stranger), INITIAL_BALANCE, "submitter gets nothing");
        assertEq(balanceOf(address(escrow)), 0, "escrow holds nothing for it");
        assertEq(balanceOf(provider), 0, "provider is not paid");

        Rental memory rental = escrow.getRental(rentalId);
        assertTrue(rental.stopped, "stopped");
        assertEq(rental.end, START_TIME, "ends where it started");
        assertEq(rental.withdrawn, 0, "withdrawn");
        assertEq(rental.credited, 0, "credited");
        assertEq(rental.renter, renter, "renter");
        assertEq(rental.provider, provider, "provider");
        assertEq(rental.maxEnd, START_TIME + MAX_DURATION, "maxEnd");
        assertProviderGetsNothing(rentalId);
    }

    function test_Refuse_InFirstSecond() external {
        assertEq(refuseAs(provider, rentalId), DEPOSIT, "refund");
        assertProviderGetsNothing(rentalId);
    }

    function test_Refuse_SubmittedByRenter() external {
        vm.warp(START_TIME + 60);
        assertEq(refuseAs(renter, rentalId), DEPOSIT, "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter made whole");
    }

    function test_Refuse_SubmittedByProvider() external {
        vm.warp(START_TIME + 60);
        assertEq(refuseAs(provider, rentalId), DEPOSIT, "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "refund goes to the renter");
        assertEq(balanceOf(provider), 0, "not to the submitter");
    }

    function test_Refuse_AfterEnd() external {
        // The rental ran out and the dispute window passed, but the provider never withdrew.
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW + 1 days);
        assertEq(escrow.withdrawable(rentalId), DEPOSIT, "withdrawable before");
        assertEq(refuseAs(stranger, rentalId), DEPOSIT, "refund");
        assertProviderGetsNothing(rentalId);
    }

    function test_Refuse_AfterExtension() external {
        vm.warp(START_TIME + 1 hours);
        uint256 cost = extendAs(renter, rentalId, 2 hours);
        assertEq(refuseAs(stranger, rentalId), DEPOSIT + cost, "refund includes the extension");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter made whole");
        assertEq(balanceOf(address(escrow)), 0, "escrow balance");
    }

    function test_Refuse_AfterCredit() external {
        vm.warp(START_TIME + 3 hours);
        uint256 credited = credit(downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 600));
        assertEq(credited, RATE * 600, "credit");

        uint256 refund = refuseAs(stranger, rentalId);

        assertEq(refund, DEPOSIT - RATE * 600, "refund is what the credit left");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter made whole");
        assertEq(balanceOf(address(escrow)), 0, "escrow balance");
        Rental memory rental = escrow.getRental(rentalId);
        assertTrue(rental.stopped, "stopped");
        assertEq(rental.end, START_TIME + 600, "ends after the credited seconds");
        assertEq(rental.credited, 600, "credit kept");
        assertEq(rental.creditedUntil, START_TIME + 2 hours, "credited window kept");
        assertProviderGetsNothing(rentalId);
    }

    function test_Refuse_AfterStop() external {
        vm.warp(START_TIME + 2 hours);
        uint256 stopRefund = stopAs(renter, rentalId);
        assertEq(stopRefund, RATE * (DURATION - 2 hours), "stop refund");
        vm.warp(START_TIME + 2 hours + 10 minutes);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalRefused({ rentalId: rentalId, renter: renter, refund: RATE * 2 hours });
        uint256 refund = refuseAs(stranger, rentalId);

        assertEq(refund, RATE * 2 hours, "refund is the seconds the stop charged");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter made whole");
        assertEq(balanceOf(address(escrow)), 0, "escrow balance");
        Rental memory rental = escrow.getRental(rentalId);
        assertTrue(rental.stopped, "still stopped");
        assertEq(rental.end, START_TIME, "ends where it started");
        assertProviderGetsNothing(rentalId);
    }

    function test_Refuse_AfterStopAndCredit() external {
        vm.warp(START_TIME + 2 hours);
        stopAs(renter, rentalId);
        credit(downtimeOf(rentalId, START_TIME, START_TIME + 2 hours, 300));
        assertEq(refuseAs(stranger, rentalId), RATE * (2 hours - 300), "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter made whole");
        assertEq(balanceOf(address(escrow)), 0, "escrow balance");
        assertProviderGetsNothing(rentalId);
    }

    function test_Refuse_WalletProvider() external {
        MockERC1271Wallet wallet = new MockERC1271Wallet(provider);
        Quote memory quote = defaultQuote();
        quote.provider = address(wallet);
        uint256 walletRentalId = openWith(quote, DURATION);
        vm.warp(START_TIME + 60);
        // Signed by the wallet's owner key; the escrow asks the wallet through ERC-1271.
        bytes memory signature = signRefusal(providerKey, walletRentalId);

        assertEq(submit(walletRentalId, signature), DEPOSIT, "refund");
        assertEq(balanceOf(address(wallet)), 0, "wallet not paid");
        assertEq(balanceOf(address(escrow)), DEPOSIT, "only the other rental's deposit is left");
        assertProviderGetsNothing(walletRentalId);
    }

    function test_Refuse_WhilePaused() external {
        vm.prank(owner);
        escrow.pause();
        vm.warp(START_TIME + 100);
        assertEq(refuseAs(stranger, rentalId), DEPOSIT, "refund");
    }

    function test_Refuse_ProviderBlocklisted() external {
        token.setBlocklisted(provider, true);
        vm.warp(START_TIME + 100);
        assertEq(refuseAs(stranger, rentalId), DEPOSIT, "refund");
    }

    function test_Refuse_OtherRentalsUntouched() external {
        uint256 otherId = openDefault();
        refuseAs(stranger, rentalId);
        assertEq(balanceOf(address(escrow)), DEPOSIT, "the other deposit stays");

        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        uint256 paid = withdrawAs(provider, otherId);
        assertEq(paid, DEPOSIT - feeOf(DEPOSIT, FEE_BPS), "the other rental pays in full");
        assertEq(balanceOf(address(escrow)), feeOf(DEPOSIT, FEE_BPS), "only its fee is left");
    }

    function test_Refuse_ThenWithdrawManySkipsIt() external {
        uint256 otherId = openDefault();
        refuseAs(stranger, rentalId);
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        uint256[] memory ids = new uint256[](2);
        ids[0] = rentalId;
        ids[1] = otherId;
        vm.prank(provider);
        uint256 paid = escrow.withdrawMany(ids);
        assertEq(paid, DEPOSIT - feeOf(DEPOSIT, FEE_BPS), "only the other rental is paid");
        assertEq(escrow.getRental(rentalId).withdrawn, 0, "refused rental never paid");
    }
}
