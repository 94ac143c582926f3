// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { Rental } from "../types/DataTypes.sol";

/// @title IGpuEscrow
/// @notice Escrow for GPU rentals paid by the second. A renter deposits the full price of a rental up front; the
/// payment then streams to the provider linearly over time. The renter may stop early and get the unstreamed part
/// back, while the provider withdraws what has streamed whenever it likes, less a protocol fee that accrues to the
/// treasury.
/// @dev All amounts are in base units of {token}; all times are Unix timestamps in seconds.
///
/// The escrow assumes that {token} transfers exactly the requested amount and that balances only change through
/// transfers. Fee-on-transfer, rebasing and other tokens with non-standard balance accounting are NOT supported:
/// with them the escrow becomes insolvent and the last parties to withdraw are short-changed.
interface IGpuEscrow {
    /*//////////////////////////////////////////////////////////////////////////
                                       EVENTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Emitted when a rental is opened and its deposit is pulled into escrow.
    /// @param rentalId The id of the new rental.
    /// @param renter The account that funded the rental.
    /// @param provider The account that will earn the streamed payment.
    /// @param ratePerSecond The price, in token base units per second.
    /// @param start The start time of the rental.
    /// @param end The scheduled end time of the rental.
    /// @param deposit The amount pulled from the renter, equal to `ratePerSecond * (end - start)`.
    event RentalOpened(
        uint256 indexed rentalId,
        address indexed renter,
        address indexed provider,
        uint256 ratePerSecond,
        uint256 start,
        uint256 end,
        uint256 deposit
    );

    /// @notice Emitted when a renter stops a rental before its scheduled end.
    /// @param rentalId The id of the stopped rental.
    /// @param renter The account that stopped the rental and received the refund.
    /// @param stoppedAt The time at which the rental was stopped, which becomes its new end time.
    /// @param refund The unstreamed amount sent back to the renter.
    event RentalStopped(uint256 indexed rentalId, address indexed renter, uint256 stoppedAt, uint256 refund);

    /// @notice Emitted when a provider withdraws streamed earnings.
    /// @param rentalId The id of the rental.
    /// @param provider The account that received the earnings.
    /// @param amount The net amount sent to the provider, after the fee.
    /// @param fee The protocol fee retained for the treasury by this withdrawal.
    event EarningsWithdrawn(uint256 indexed rentalId, address indexed provider, uint256 amount, uint256 fee);

    /// @notice Emitted when the treasury claims the accrued protocol fees.
    /// @param treasury The account that received the fees.
    /// @param amount The amount of fees claimed.
    event FeesClaimed(address indexed treasury, uint256 amount);

    /*//////////////////////////////////////////////////////////////////////////
                                 CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice The hard cap on the protocol fee, in basis points (15%).
    function MAX_FEE_BPS() external view returns (uint256);

    /// @notice The ERC-20 token in which rentals are paid.
    function token() external view returns (IERC20);

    /// @notice The account that collects protocol fees.
    function treasury() external view returns (address);

    /// @notice The protocol fee, in basis points of the provider's gross earnings, applied to newly opened rentals.
    function feeBps() external view returns (uint16);

    /// @notice The protocol fees withheld from providers and not yet claimed by the treasury, in token base units.
    function feesAccrued() external view returns (uint256);

    /// @notice The id that the next opened rental will receive. Ids start at 1, so 0 never refers to a rental.
    function nextRentalId() external view returns (uint256);

    /// @notice Returns the stored record of a rental.
    /// @dev Reverts if `rentalId` does not refer to an opened rental.
    /// @param rentalId The id of the rental to look up.
    function getRental(uint256 rentalId) external view returns (Rental memory);

    /// @notice Returns the gross amount streamed to the provider so far, fee included and withdrawals not deducted.
    /// @dev Equals `ratePerSecond * (min(block.timestamp, end) - start)`.
    ///
    /// Reverts if `rentalId` does not refer to an opened rental.
    /// @param rentalId The id of the rental to look up.
    function earned(uint256 rentalId) external view returns (uint256);

    /// @notice Returns the gross amount the provider could withdraw now, fee included.
    /// @dev Equals {earned} minus what was already withdrawn. The provider receives this amount less the fee.
    ///
    /// Reverts if `rentalId` does not refer to an opened rental.
    /// @param rentalId The id of the rental to look up.
    function withdrawable(uint256 rentalId) external view returns (uint256 gross);

    /*//////////////////////////////////////////////////////////////////////////
                               NON-CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Opens a rental that starts now and pulls `ratePerSecond * duration` tokens from the caller into escrow.
    ///
    /// @dev Emits a {RentalOpened} event.
    ///
    /// The caller must have approved this contract to spend at least the deposit beforehand.
    ///
    /// Requirements:
    /// - `provider` must not be the zero address.
    /// - `provider` must not be the caller.
    /// - `ratePerSecond` must be greater than zero and fit in 128 bits.
    /// - `duration` must be greater than zero, and `block.timestamp + duration` must fit in 40 bits.
    /// - `ratePerSecond * duration` must fit in 128 bits.
    ///
    /// @param provider The account that supplies the GPU and earns the payment.
    /// @param ratePerSecond The price, in token base units per second.
    /// @param duration The length of the rental, in seconds.
    /// @return rentalId The id of the new rental.
    function open(address provider, uint256 ratePerSecond, uint256 duration) external returns (uint256 rentalId);

    /// @notice Stops a rental now and refunds the unstreamed part of the deposit to the renter.
    ///
    /// @dev Emits a {RentalStopped} event.
    ///
    /// The rental's end time becomes `block.timestamp`. What the provider earned up to then stays withdrawable.
    ///
    /// Requirements:
    /// - `rentalId` must refer to an opened rental.
    /// - The caller must be the rental's renter.
    /// - The rental must not have been stopped already.
    /// - `block.timestamp` must be before the rental's end time.
    ///
    /// @param rentalId The id of the rental to stop.
    /// @return refund The amount sent back to the renter, equal to `ratePerSecond * (end - block.timestamp)`.
    function stop(uint256 rentalId) external returns (uint256 refund);

    /// @notice Pays the provider everything streamed on a rental since its last withdrawal, less the protocol fee.
    ///
    /// @dev Emits an {EarningsWithdrawn} event.
    ///
    /// The fee is computed on cumulative earnings, as `fee(earned) - fee(withdrawn)` with
    /// `fee(x) = x * feeBps / 10_000` rounded down, so the total fee paid on a rental does not depend on how often
    /// or when the provider withdraws.
    ///
    /// Requirements:
    /// - `rentalId` must refer to an opened rental.
    /// - The caller must be the rental's provider.
    /// - The withdrawable amount must be greater than zero.
    ///
    /// @param rentalId The id of the rental to withdraw from.
    /// @return paid The net amount sent to the provider.
    function withdraw(uint256 rentalId) external returns (uint256 paid);

    /// @notice Sends all accrued protocol fees to the treasury.
    ///
    /// @dev Emits a {FeesClaimed} event.
    ///
    /// Requirements:
    /// - The caller must be the treasury.
    /// - Some fees must have accrued since the last claim.
    ///
    /// @return amount The amount of fees sent to the treasury.
    function claimFees() external returns (uint256 amount);
}
