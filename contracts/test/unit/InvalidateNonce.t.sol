// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract InvalidateNonce_Unit_Test is Base_Test {
    function test_InvalidateNonce() external {
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.NonceInvalidated({ provider: provider, nonce: 42 });
        vm.prank(provider);
        escrow.invalidateNonce(42);
        assertTrue(escrow.isNonceUsed(provider, 42), "used");
        assertFalse(escrow.isNonceUsed(provider, 41), "neighbour");
        assertFalse(escrow.isNonceUsed(stranger, 42), "other provider");
    }

    function test_RevertWhen_AlreadyInvalidated() external {
        vm.prank(provider);
        escrow.invalidateNonce(42);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, 42));
        vm.prank(provider);
        escrow.invalidateNonce(42);
    }

    function test_RevertWhen_AlreadyUsedByRental() external {
        Quote memory quote = defaultQuote();
        openWith(quote, DURATION);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, quote.nonce));
        vm.prank(provider);
        escrow.invalidateNonce(quote.nonce);
    }

    function test_InvalidateNonce_OnlyOwnNonces() external {
        // A stranger invalidating "42" only burns its own nonce, never the provider's.
        vm.prank(stranger);
        escrow.invalidateNonce(42);
        Quote memory quote = defaultQuote();
        quote.nonce = 42;
        assertEq(openWith(quote, DURATION), 1, "provider's quote still opens");
    }

    function test_InvalidateNonce_BeforeFirstRentalOfWord() external {
        // Invalidating the first nonce of a word leaves no provider id cached in it; the next open must still record
        // the right provider.
        vm.prank(provider);
        escrow.invalidateNonce(224);
        Quote memory quote = defaultQuote();
        quote.nonce = 225;
        uint256 rentalId = openWith(quote, DURATION);
        assertEq(escrow.getRental(rentalId).provider, provider, "provider");
        assertTrue(escrow.isNonceUsed(provider, 224), "224");
        assertTrue(escrow.isNonceUsed(provider, 225), "225");
    }

    function test_InvalidateNonce_AfterRentalInSameWord() external {
        Quote memory quote = defaultQuote(); // nonce 0
        openWith(quote, DURATION);
        vm.prank(provider);
        escrow.invalidateNonce(1);
        Quote memory next = defaultQuote(); // nonce 1
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, 1));
        openWith(next, DURATION);
        Quote memory later = defaultQuote(); // nonce 2
        assertEq(escrow.getRental(openWith(later, DURATION)).provider, provider, "provider");
    }

    function test_InvalidateNonce_MaxNonce() external {
        vm.prank(provider);
        escrow.invalidateNonce(type(uint256).max);
        assertTrue(escrow.isNonceUsed(provider, type(uint256).max), "used");
    }
}
