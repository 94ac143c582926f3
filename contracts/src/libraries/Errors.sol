// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Errors
/// @notice Custom errors raised by the gpuflow contracts.
library Errors {
    /*//////////////////////////////////////////////////////////////////////////
                                    CONSTRUCTOR
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when deploying with the zero address as the payment token.
    error GpuEscrow_TokenZeroAddress();

    /// @notice Thrown when deploying with the zero address as the treasury.
    error GpuEscrow_TreasuryZeroAddress();

    /// @notice Thrown when deploying with a protocol fee above the hard cap.
    error GpuEscrow_FeeTooHigh(uint256 feeBps, uint256 max);

    /*//////////////////////////////////////////////////////////////////////////
                                        OPEN
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when opening a rental with the zero address as the provider.
    error GpuEscrow_ProviderZeroAddress();

    /// @notice Thrown when the renter names itself as the provider.
    error GpuEscrow_ProviderIsRenter(address account);

    /// @notice Thrown when opening a rental with a zero rate per second.
    error GpuEscrow_RateZero();

    /// @notice Thrown when the rate per second does not fit in 128 bits.
    error GpuEscrow_RateTooHigh(uint256 ratePerSecond, uint256 max);

    /// @notice Thrown when opening a rental with a zero duration.
    error GpuEscrow_DurationZero();

    /// @notice Thrown when the end time would not fit in 40 bits.
    error GpuEscrow_DurationTooLong(uint256 duration, uint256 max);

    /// @notice Thrown when the deposit, rate times duration, does not fit in 128 bits.
    error GpuEscrow_DepositTooLarge(uint256 deposit, uint256 max);

    /*//////////////////////////////////////////////////////////////////////////
                                    RENTAL ACCESS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when referencing a rental id that was never opened.
    error GpuEscrow_RentalNotFound(uint256 rentalId);

    /// @notice Thrown when someone other than the renter tries to stop a rental.
    error GpuEscrow_CallerNotRenter(uint256 rentalId, address caller);

    /// @notice Thrown when someone other than the provider tries to withdraw earnings.
    error GpuEscrow_CallerNotProvider(uint256 rentalId, address caller);

    /*//////////////////////////////////////////////////////////////////////////
                                        STOP
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when stopping a rental that was already stopped.
    error GpuEscrow_RentalAlreadyStopped(uint256 rentalId);

    /// @notice Thrown when stopping a rental whose scheduled end has been reached.
    error GpuEscrow_RentalAlreadyEnded(uint256 rentalId, uint256 end);

    /*//////////////////////////////////////////////////////////////////////////
                                      WITHDRAW
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when the provider has no unsettled earnings on the rental.
    error GpuEscrow_NothingToWithdraw(uint256 rentalId);

    /*//////////////////////////////////////////////////////////////////////////
                                        FEES
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when someone other than the treasury tries to claim fees.
    error GpuEscrow_CallerNotTreasury(address caller);

    /// @notice Thrown when the treasury claims while no fees have accrued.
    error GpuEscrow_NoFeesToClaim();
}
