// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The on-chain record of a single GPU rental.
/// @dev Declared at file level so that the ABI names it plainly `Rental`, which keeps the generated bindings on the
/// Rust side free of interface-scoped type names. Fields are ordered to fit in three storage slots.
/// @param renter The account that funded the rental and receives any refund.
/// @param start The Unix timestamp at which the rental started, in seconds.
/// @param end The Unix timestamp at which the rental ends, in seconds. Moved back to the stop time when stopped early.
/// @param stopped Whether the renter stopped the rental before its scheduled end.
/// @param provider The account that supplies the GPU and earns the streamed payment.
/// @param feeBps The protocol fee in basis points, snapshotted at open so later fee changes never apply retroactively.
/// @param ratePerSecond The price of the rental, in token base units per second.
/// @param withdrawn The gross amount already settled to the provider, fee included, in token base units.
struct Rental {
    // slot 0
    address renter;
    uint40 start;
    uint40 end;
    bool stopped;
    // slot 1
    address provider;
    uint16 feeBps;
    // slot 2
    uint128 ratePerSecond;
    uint128 withdrawn;
}
