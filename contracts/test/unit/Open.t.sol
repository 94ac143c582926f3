// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { IERC20Errors } from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote, Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { MockERC1271Wallet } from "../mocks/MockERC1271Wallet.sol";
import { IEscrow } from "../utils/IEscrow.sol";

contract Open_Unit_Test is Base_Test {
    /*//////////////////////////////////////////////////////////////////////////
                                 REVERTS: THE QUOTE
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_Paused() external {
        vm.prank(owner);
        escrow.pause();
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_QuoteExpired() external {
        Quote memory quote = defaultQuote();
        vm.warp(quote.deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_QuoteExpired.selector, quote.deadline, quote.deadline + 1)
        );
        openWith(quote, DURATION);
    }

    function test_Open_AtDeadline() external {
        Quote memory quote = defaultQuote();
        vm.warp(quote.deadline);
        assertEq(openWith(quote, DURATION), 1, "rentalId");
    }

    function test_RevertWhen_CallerNotQuoteRenter() external {
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotQuoteRenter.selector, renter, stranger));
        vm.prank(stranger);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_ProviderZeroAddress() external {
        Quote memory quote = defaultQuote();
        quote.provider = address(0);
        vm.expectRevert(Errors.GpuEscrow_ProviderZeroAddress.selector);
        openWith(quote, DURATION);
    }

    function test_RevertWhen_ProviderIsRenter() external {
        Quote memory quote = defaultQuote();
        quote.provider = renter;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_ProviderIsRenter.selector, renter));
        openWith(quote, DURATION);
    }

    function test_RevertWhen_RateZero() external {
        Quote memory quote = defaultQuote();
        quote.ratePerSecond = 0;
        vm.expectRevert(Errors.GpuEscrow_RateZero.selector);
        openWith(quote, DURATION);
    }

    function test_RevertWhen_RateTooHigh() external {
        Quote memory quote = defaultQuote();
        quote.ratePerSecond = uint128(MAX_STORED_RATE) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_RateTooHigh.selector, MAX_STORED_RATE + 1, MAX_STORED_RATE)
        );
        openWith(quote, 1);
    }

    function test_RevertWhen_RateMaxUint128() external {
        Quote memory quote = defaultQuote();
        quote.ratePerSecond = type(uint128).max;
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_RateTooHigh.selector, type(uint128).max, MAX_STORED_RATE)
        );
        openWith(quote, 1);
    }

    function test_RevertWhen_DurationZero() external {
        vm.expectRevert(Errors.GpuEscrow_DurationZero.selector);
        openWith(defaultQuote(), 0);
    }

    function test_RevertWhen_DurationAboveMax() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_DurationAboveMax.selector, MAX_DURATION + 1, MAX_DURATION)
        );
        openWith(defaultQuote(), MAX_DURATION + 1);
    }

    function test_RevertWhen_DurationMaxUint256() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_DurationAboveMax.selector, type(uint256).max, MAX_DURATION)
        );
        openWith(defaultQuote(), type(uint256).max);
    }

    function test_RevertWhen_DurationPastMaxRentalDuration() external {
        Quote memory quote = defaultQuote();
        quote.maxDuration = type(uint40).max;
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DurationAboveMax.selector, MAX_RENTAL_DURATION + 1, MAX_RENTAL_DURATION
            )
        );
        openWith(quote, MAX_RENTAL_DURATION + 1);
    }

    function test_RevertWhen_DurationPastUint40() external {
        // Late enough that the 32-bit duration cap would end the rental after `type(uint40).max`.
        vm.warp(uint256(type(uint40).max) - 2 hours);
        Quote memory quote = defaultQuote();
        quote.maxDuration = type(uint40).max;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_DurationAboveMax.selector, 2 hours + 1, 2 hours));
        openWith(quote, 2 hours + 1);
    }

    /*//////////////////////////////////////////////////////////////////////////
                               REVERTS: THE SIGNATURE
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_SignedByStranger() external {
        Quote memory quote = defaultQuote();
        (, uint256 strangerKey) = makeAddrAndKey("stranger");
        bytes memory signature = signQuote(strangerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_TermsAlteredAfterSigning() external {
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        quote.ratePerSecond = uint128(RATE - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_OfferIdAlteredAfterSigning() external {
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        quote.offerId = keccak256("another rig");
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_SignatureForOtherChain() external {
        Quote memory quote = defaultQuote();
        bytes memory signature = signDigest(providerKey, quoteDigest(quote, address(escrow), block.chainid + 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_ChainForked() external {
        // A quote signed before a fork is not valid on the forked chain: the domain separator follows the chain id.
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_SignatureForOtherEscrow() external {
        IEscrow other = deployEscrow(FEE_BPS, DISPUTE_WINDOW);
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote); // for `escrow`
        vm.prank(renter);
        token.approve(address(other), type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        other.open(quote, DURATION, signature);
    }

    function test_RevertWhen_SignatureMalformed() external {
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        bytes memory truncated = new bytes(64);
        for (uint256 i = 0; i < 64; ++i) {
            truncated[i] = signature[i];
        }
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, truncated);
    }

    function test_RevertWhen_SignatureMalleable() external {
        // The same signature with `s` flipped to the upper half of the curve order recovers the same key; ECDSA rejects
        // it so that signatures stay unique.
        Quote memory quote = defaultQuote();
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(providerKey, quoteDigest(quote, address(escrow), block.chainid));
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes memory flipped = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, flipped);
    }

    function test_RevertWhen_QuoteReplayed() external {
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, quote.nonce));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_NonceReusedWithOtherTerms() external {
        Quote memory first = defaultQuote();
        openWith(first, DURATION);
        Quote memory second = defaultQuote();
        second.nonce = first.nonce;
        second.ratePerSecond = uint128(RATE * 2);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, first.nonce));
        openWith(second, DURATION);
    }

    function test_RevertWhen_NonceInvalidated() external {
        Quote memory quote = defaultQuote();
        vm.prank(provider);
        escrow.invalidateNonce(quote.nonce);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, quote.nonce));
        openWith(quote, DURATION);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                 REVERTS: THE TOKEN
    //////////////////////////////////////////////////////////////////////////*/

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
        vm.prank(renter);
        token.transfer(stranger, INITIAL_BALANCE - (DEPOSIT - 1));
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, renter, DEPOSIT - 1, DEPOSIT)
        );
        openDefault();
    }

    function test_RevertWhen_Reverted_NonceStaysUsable() external {
        Quote memory quote = defaultQuote();
        vm.prank(renter);
        token.approve(address(escrow), 0);
        vm.expectRevert();
        openWith(quote, DURATION);
        assertFalse(escrow.isNonceUsed(provider, quote.nonce), "nonce used");
        assertEq(escrow.nextRentalId(), 1, "nextRentalId");

        vm.prank(renter);
        token.approve(address(escrow), DEPOSIT);
        assertEq(openWith(quote, DURATION), 1, "rentalId");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_Open() external {
        Quote memory quote = defaultQuote();
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalOpened({
            rentalId: 1,
            renter: renter,
            provider: provider,
            nonce: quote.nonce,
            offerId: quote.offerId,
            ratePerSecond: RATE,
            start: START_TIME,
            end: START_TIME + DURATION,
            deposit: DEPOSIT
        });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transferFrom, (renter, address(escrow), DEPOSIT)));

        uint256 rentalId = openWith(quote, DURATION);

        assertEq(rentalId, 1, "rentalId");
        assertEq(escrow.nextRentalId(), 2, "nextRentalId");
        assertTrue(escrow.isNonceUsed(provider, quote.nonce), "nonce used");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT, "renter balance");
        assertEq(balanceOf(address(escrow)), DEPOSIT, "escrow balance");
        assertEq(balanceOf(provider), 0, "provider balance");

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.renter, renter, "renter");
        assertEq(rental.provider, provider, "provider");
        assertEq(rental.start, START_TIME, "start");
        assertEq(rental.end, START_TIME + DURATION, "end");
        assertEq(rental.maxEnd, START_TIME + MAX_DURATION, "maxEnd");
        assertFalse(rental.stopped, "stopped");
        assertEq(rental.ratePerSecond, RATE, "ratePerSecond");
        assertEq(rental.feeBps, FEE_BPS, "feeBps");
        assertEq(rental.withdrawn, 0, "withdrawn");
        assertEq(rental.credited, 0, "credited");
        assertEq(rental.creditedUntil, 0, "creditedUntil");
    }

    function test_Open_FullMaxDuration() external {
        uint256 rentalId = openWith(defaultQuote(), MAX_DURATION);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, rental.maxEnd, "end == maxEnd");
    }

    function test_Open_IdsAreSequential() external {
        assertEq(openDefault(), 1, "first");
        assertEq(openDefault(), 2, "second");
        vm.warp(START_TIME + 10);
        assertEq(openDefault(), 3, "third");
        assertEq(escrow.nextRentalId(), 4, "nextRentalId");
        assertEq(escrow.getRental(3).start, START_TIME + 10, "third start");
    }

    function test_Open_NoncesAreUnordered() external {
        Quote memory high = defaultQuote();
        high.nonce = 1_000_000;
        Quote memory low = defaultQuote();
        low.nonce = 3;
        openWith(high, DURATION);
        openWith(low, DURATION);
        assertTrue(escrow.isNonceUsed(provider, 1_000_000), "high");
        assertTrue(escrow.isNonceUsed(provider, 3), "low");
        assertFalse(escrow.isNonceUsed(provider, 4), "untouched");
    }

    function test_Open_NoncesAcrossWordBoundaries() external {
        uint256[6] memory nonces = [uint256(0), 223, 224, 447, 448, type(uint256).max];
        for (uint256 i = 0; i < nonces.length; ++i) {
            Quote memory quote = defaultQuote();
            quote.nonce = nonces[i];
            uint256 rentalId = openWith(quote, DURATION);
            assertEq(escrow.getRental(rentalId).provider, provider, "provider");
        }
        for (uint256 i = 0; i < nonces.length; ++i) {
            assertTrue(escrow.isNonceUsed(provider, nonces[i]), "used");
        }
        assertFalse(escrow.isNonceUsed(provider, 1), "1");
        assertFalse(escrow.isNonceUsed(provider, 225), "225");
        assertFalse(escrow.isNonceUsed(provider, type(uint256).max - 1), "max - 1");
    }

    function test_Open_NoncesArePerProvider() external {
        (address other, uint256 otherKey) = makeAddrAndKey("other provider");
        Quote memory quote = defaultQuote();
        openWith(quote, DURATION);

        Quote memory otherQuote = defaultQuote();
        otherQuote.provider = other;
        otherQuote.nonce = quote.nonce;
        bytes memory signature = signQuote(otherKey, otherQuote);
        vm.prank(renter);
        uint256 rentalId = escrow.open(otherQuote, DURATION, signature);
        assertEq(escrow.getRental(rentalId).provider, other, "provider");
        assertEq(escrow.getRental(1).provider, provider, "first provider");
    }

    function test_Open_ManyProviders() external {
        for (uint256 i = 0; i < 5; ++i) {
            (address other, uint256 otherKey) = makeAddrAndKey(string.concat("provider", vm.toString(i)));
            Quote memory quote = defaultQuote();
            quote.provider = other;
            bytes memory signature = signQuote(otherKey, quote);
            vm.prank(renter);
            uint256 rentalId = escrow.open(quote, DURATION, signature);
            assertEq(escrow.getRental(rentalId).provider, other, "provider");
        }
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(escrow.getRental(i + 1).provider, makeAddr(string.concat("provider", vm.toString(i))), "kept");
        }
    }

    function test_Open_SnapshotsFee() external {
        uint256 first = openDefault();
        vm.prank(owner);
        escrow.setFeeBps(1500);
        uint256 second = openDefault();
        assertEq(escrow.getRental(first).feeBps, FEE_BPS, "first fee");
        assertEq(escrow.getRental(second).feeBps, 1500, "second fee");
    }

    function test_Open_MaxRate() external {
        Quote memory quote = defaultQuote();
        quote.ratePerSecond = uint128(MAX_STORED_RATE);
        fundAndApprove(renter, MAX_STORED_RATE * 2);
        uint256 rentalId = openWith(quote, 2);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.ratePerSecond, MAX_STORED_RATE, "ratePerSecond");
        assertEq(rental.end, START_TIME + 2, "end");
        assertEq(balanceOf(address(escrow)), MAX_STORED_RATE * 2, "deposit");
    }

    function test_Open_MaxEndCappedAtMaxRentalDuration() external {
        Quote memory quote = defaultQuote();
        quote.maxDuration = type(uint40).max;
        uint256 rentalId = openWith(quote, DURATION);
        assertEq(escrow.getRental(rentalId).maxEnd, START_TIME + MAX_RENTAL_DURATION, "maxEnd");
    }

    function test_Open_LongestRental() external {
        Quote memory quote = defaultQuote();
        quote.maxDuration = type(uint40).max;
        fundAndApprove(renter, RATE * MAX_RENTAL_DURATION);
        uint256 rentalId = openWith(quote, MAX_RENTAL_DURATION);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, START_TIME + MAX_RENTAL_DURATION, "end");
        assertEq(rental.maxEnd, START_TIME + MAX_RENTAL_DURATION, "maxEnd");
        assertEq(balanceOf(address(escrow)), RATE * MAX_RENTAL_DURATION, "deposit");

        // The whole rental can still be withdrawn, to the last second.
        vm.warp(START_TIME + MAX_RENTAL_DURATION + DISPUTE_WINDOW);
        uint256 gross = RATE * MAX_RENTAL_DURATION;
        assertEq(withdrawAs(provider, rentalId), gross - feeOf(gross, FEE_BPS), "paid");
    }

    function test_Open_MaxEndCappedAtUint40() external {
        vm.warp(uint256(type(uint40).max) - 2 hours);
        Quote memory quote = defaultQuote();
        quote.maxDuration = type(uint40).max;
        uint256 rentalId = openWith(quote, 1 hours);
        assertEq(escrow.getRental(rentalId).maxEnd, type(uint40).max, "maxEnd");
    }

    function test_Open_ExactApproval() external {
        vm.prank(renter);
        token.approve(address(escrow), DEPOSIT);
        openDefault();
        assertEq(token.allowance(renter, address(escrow)), 0, "allowance");
    }

    /*//////////////////////////////////////////////////////////////////////////
                              CONTRACT-WALLET PROVIDERS
    //////////////////////////////////////////////////////////////////////////*/

    function test_Open_ERC1271Provider() external {
        MockERC1271Wallet wallet = new MockERC1271Wallet(provider);
        Quote memory quote = defaultQuote();
        quote.provider = address(wallet);
        bytes memory signature = signQuote(providerKey, quote); // signed by the wallet's owner key

        vm.prank(renter);
        uint256 rentalId = escrow.open(quote, DURATION, signature);

        assertEq(escrow.getRental(rentalId).provider, address(wallet), "provider");
        assertTrue(escrow.isNonceUsed(address(wallet), quote.nonce), "nonce used");
    }

    function test_RevertWhen_ERC1271ProviderRejects() external {
        MockERC1271Wallet wallet = new MockERC1271Wallet(provider);
        vm.prank(provider);
        wallet.setRevoked(true);
        Quote memory quote = defaultQuote();
        quote.provider = address(wallet);
        bytes memory signature = signQuote(providerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, address(wallet)));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_RevertWhen_ERC1271ProviderSignedByStranger() external {
        MockERC1271Wallet wallet = new MockERC1271Wallet(provider);
        Quote memory quote = defaultQuote();
        quote.provider = address(wallet);
        (, uint256 strangerKey) = makeAddrAndKey("stranger");
        bytes memory signature = signQuote(strangerKey, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, address(wallet)));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    function test_Open_ProviderWithCodeSigningWithItsKey() external {
        // An EOA that delegated its code (EIP-7702) still signs with its key: ECDSA is checked before ERC-1271, and
        // here the delegate's ERC-1271 would reject everything.
        vm.etch(provider, address(new MockERC1271Wallet(address(0))).code);
        uint256 rentalId = openDefault();
        assertEq(escrow.getRental(rentalId).provider, provider, "provider");
    }

    function test_RevertWhen_ProviderHasNoCodeAndSignatureMismatches() external {
        // The ERC-1271 fallback must not accept anything from an account without code.
        Quote memory quote = defaultQuote();
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, hex"1234");
    }
}
