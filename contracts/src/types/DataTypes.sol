// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// The types below are declared at file level so that the ABI names them plainly (`Quote`, `Downtime`, `Rental`),
// which keeps the bindings generated on the Rust side free of interface-scoped type names.

/// @notice The terms on which a provider offers a rental to one renter, signed by the provider as EIP-712 typed data.
/// @dev EIP-712 type: `Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,uint40
/// deadline,bytes32 offerId,uint256 nonce)`.
/// @param provider The account that signs the quote and earns the payment. May be a contract wallet (ERC-1271).
/// @param renter The only account that may open a rental with this quote.
/// @param ratePerSecond The price, in token base units per second.
/// @param maxDuration The most seconds the rental may last in total, extensions included.
/// @param deadline The Unix time after which the quote can no longer open a rental.
/// @param offerId A provider-defined id of the machine or GPU set; the escrow does not interpret it, but emits it in
/// `RentalOpened` so that indexers can tell which machine a rental pays for.
/// @param nonce An unordered per-provider nonce; each can open at most one rental.
struct Quote {
    address provider;
    address renter;
    uint128 ratePerSecond;
    uint40 maxDuration;
    uint40 deadline;
    bytes32 offerId;
    uint256 nonce;
}

/// @notice An attestation that a rented machine was down for `downSeconds` within the window `[from, to)`, signed by
/// registered attesters as EIP-712 typed data.
/// @dev EIP-712 type: `Downtime(uint256 rentalId,uint40 from,uint40 to,uint40 downSeconds,uint40 deadline)`.
/// `creditDowntime` takes it packed into one word, `abi.encodePacked(uint96(rentalId), from, to, downSeconds,
/// deadline)`; `hashDowntime` takes it as is.
/// @param rentalId The rental the downtime belongs to.
/// @param from The start of the observed window, inclusive, as a Unix time.
/// @param to The end of the observed window, exclusive, as a Unix time.
/// @param downSeconds How many seconds of the window the machine was down; at most `to - from`.
/// @param deadline The Unix time after which the attestation can no longer be submitted.
struct Downtime {
    uint256 rentalId;
    uint40 from;
    uint40 to;
    uint40 downSeconds;
    uint40 deadline;
}

/// @notice A rental as returned by `getRental`, unpacked from storage.
/// @param renter The account that funded the rental and receives every refund.
/// @param provider The account that earns the payment.
/// @param start The Unix time at which the rental started.
/// @param end The Unix time at which the rental ends; moved forward by extensions, back to the stop time by a stop,
/// and back to `start + credited` by a refusal.
/// @param maxEnd The latest end that extensions may reach: `start + quote.maxDuration`, with the duration capped at
/// `type(uint32).max` seconds and the end at `type(uint40).max`.
/// @param stopped Whether the renter stopped the rental before its scheduled end, or its provider refused it.
/// @param ratePerSecond The price, in token base units per second.
/// @param feeBps The platform fee in basis points, snapshotted when the rental opened.
/// @param withdrawn The gross amount already paid out for this rental, fee included, in token base units.
/// @param credited The number of seconds credited back to the renter as downtime; they are never paid to the provider.
/// @param creditedUntil The end of the last credited downtime window; the next window must start at or after it.
struct Rental {
    address renter;
    address provider;
    uint40 start;
    uint40 end;
    uint40 maxEnd;
    bool stopped;
    uint128 ratePerSecond;
    uint16 feeBps;
    uint256 withdrawn;
    uint40 credited;
    uint40 creditedUntil;
}
