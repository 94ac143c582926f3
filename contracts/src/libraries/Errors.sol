// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Errors
/// @notice Custom errors raised by the gpuflow contracts.
/// @dev Besides these, calls can revert with the errors of the OpenZeppelin building blocks: `EnforcedPause()` and
/// `ExpectedPause()` (Pausable), `OwnableUnauthorizedAccount(address)` and `OwnableInvalidOwner(address)` (Ownable),
/// `SafeERC20FailedOperation(address)`, and whatever the token itself reverts with.
library Errors {
    /*//////////////////////////////////////////////////////////////////////////
                                  CONFIGURATION
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when deploying with the zero address as the payment token.
    error GpuEscrow_TokenZeroAddress();

    /// @notice Thrown when the treasury is set to the zero address.
    error GpuEscrow_TreasuryZeroAddress();

    /// @notice Thrown when the platform fee is set above the hard cap.
    error GpuEscrow_FeeTooHigh(uint256 feeBps, uint256 max);

    /// @notice Thrown when deploying with a dispute window above the hard cap.
    error GpuEscrow_DisputeWindowTooLong(uint256 disputeWindow, uint256 max);

    /// @notice Thrown when the zero address is registered or unregistered as an attester.
    error GpuEscrow_AttesterZeroAddress();

    /// @notice Thrown when the attester threshold is set to zero.
    error GpuEscrow_AttesterThresholdZero();

    /// @notice Thrown when the attester threshold is set above the number of registered attesters, which would make
    /// every downtime credit impossible.
    error GpuEscrow_ThresholdAboveAttesters(uint256 threshold, uint256 attesterCount);

    /// @notice Thrown when unregistering an attester would leave fewer registered attesters than the threshold.
    error GpuEscrow_AttestersBelowThreshold(uint256 remaining, uint256 threshold);

    /// @notice Thrown by `renounceOwnership`: the escrow always keeps an owner.
    error GpuEscrow_RenounceOwnershipDisabled();

    /*//////////////////////////////////////////////////////////////////////////
                                       OPEN
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when a quote is used after its deadline.
    error GpuEscrow_QuoteExpired(uint256 deadline, uint256 timestamp);

    /// @notice Thrown when someone other than the renter named in a quote tries to open a rental with it.
    error GpuEscrow_CallerNotQuoteRenter(address renter, address caller);

    /// @notice Thrown when a quote names the zero address as its provider.
    error GpuEscrow_ProviderZeroAddress();

    /// @notice Thrown when a quote names the same account as provider and renter.
    error GpuEscrow_ProviderIsRenter(address account);

    /// @notice Thrown when a quote has a zero rate per second.
    error GpuEscrow_RateZero();

    /// @notice Thrown when a quote's rate per second does not fit in the 44 bits the escrow stores.
    error GpuEscrow_RateTooHigh(uint256 ratePerSecond, uint256 max);

    /// @notice Thrown when opening a rental for zero seconds.
    error GpuEscrow_DurationZero();

    /// @notice Thrown when the requested duration exceeds what the quote allows, or the escrow's cap of
    /// `type(uint32).max` seconds.
    error GpuEscrow_DurationAboveMax(uint256 duration, uint256 max);

    /// @notice Thrown when a provider nonce has already opened a rental or was invalidated.
    error GpuEscrow_NonceAlreadyUsed(address provider, uint256 nonce);

    /// @notice Thrown when a quote's signature does not verify for its provider.
    error GpuEscrow_InvalidSignature(address signer);

    /// @notice Thrown when the permit of {openWithPermit} or {extendWithPermit} failed and the allowance does not cover
    /// the amount to pull (`deposit`: the deposit of an open, the cost of an extension).
    error GpuEscrow_PermitFailed(uint256 allowance, uint256 deposit);

    /*//////////////////////////////////////////////////////////////////////////
                                  RENTAL ACCESS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when referencing a rental id that was never opened.
    error GpuEscrow_RentalNotFound(uint256 rentalId);

    /// @notice Thrown when someone other than the renter tries to stop or extend a rental.
    error GpuEscrow_CallerNotRenter(uint256 rentalId, address caller);

    /// @notice Thrown when someone other than the provider tries to withdraw earnings.
    error GpuEscrow_CallerNotProvider(uint256 rentalId, address caller);

    /*//////////////////////////////////////////////////////////////////////////
                                  STOP AND EXTEND
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when stopping or extending a rental that was already stopped.
    error GpuEscrow_RentalAlreadyStopped(uint256 rentalId);

    /// @notice Thrown when stopping or extending a rental whose end has been reached.
    error GpuEscrow_RentalAlreadyEnded(uint256 rentalId, uint256 end);

    /// @notice Thrown when extending a rental by zero seconds.
    error GpuEscrow_ExtensionZero();

    /// @notice Thrown when an extension would take the rental past the maximum duration of its quote.
    error GpuEscrow_ExtensionAboveMax(uint256 rentalId, uint256 extraSeconds, uint256 maxExtraSeconds);

    /// @notice Thrown when an automatic extension's budget does not fit in 96 bits.
    error GpuEscrow_AutoExtendBudgetTooLarge(uint256 budget, uint256 max);

    /// @notice Thrown when an automatic extension's step is shorter than a minute or longer than a rental can last.
    error GpuEscrow_AutoExtendStepOutOfRange(uint256 step, uint256 min, uint256 max);

    /// @notice Thrown when an automatic extension is triggered before the last {AUTO_EXTEND_LEAD} seconds of a
    /// rental; it can be triggered from `opensAt` on.
    error GpuEscrow_AutoExtendTooEarly(uint256 rentalId, uint256 opensAt);

    /// @notice Thrown when an automatic extension cannot buy a single second: the budget is below the rate (or was
    /// never set), or the rental already lasts the quote's maximum duration.
    error GpuEscrow_AutoExtendNothingLeft(uint256 rentalId, uint256 budget, uint256 maxExtraSeconds);

    /*//////////////////////////////////////////////////////////////////////////
                                     WITHDRAW
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when the provider has nothing withdrawable on the rental yet.
    error GpuEscrow_NothingToWithdraw(uint256 rentalId);

    /// @notice Thrown when none of the rentals of a batch withdrawal has anything withdrawable.
    error GpuEscrow_BatchNothingToWithdraw(uint256 rentalCount);

    /// @notice Thrown when earnings are to be sent to the zero address.
    error GpuEscrow_RecipientZeroAddress();

    /*//////////////////////////////////////////////////////////////////////////
                                  DOWNTIME CREDITS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when a downtime attestation is submitted after its deadline.
    error GpuEscrow_DowntimeExpired(uint256 deadline, uint256 timestamp);

    /// @notice Thrown when a downtime window is empty or reversed.
    error GpuEscrow_DowntimeWindowInvalid(uint256 from, uint256 to);

    /// @notice Thrown when the attested down seconds are zero or longer than their window.
    error GpuEscrow_DowntimeSecondsInvalid(uint256 downSeconds, uint256 windowSeconds);

    /// @notice Thrown when a downtime window ends in the future.
    error GpuEscrow_DowntimeInFuture(uint256 to, uint256 timestamp);

    /// @notice Thrown when a downtime window does not lie inside the rental's `[start, end)`.
    error GpuEscrow_DowntimeOutsideRental(uint256 rentalId, uint256 from, uint256 to);

    /// @notice Thrown when a downtime window starts before the end of the last window credited on the rental.
    error GpuEscrow_DowntimeOverlaps(uint256 rentalId, uint256 from, uint256 creditedUntil);

    /// @notice Thrown when every second of a downtime window has already been paid to the provider.
    error GpuEscrow_NothingToCredit(uint256 rentalId);

    /// @notice Thrown when fewer attestations are submitted than the attester threshold requires.
    error GpuEscrow_AttestationsBelowThreshold(uint256 count, uint256 threshold);

    /// @notice Thrown when the attestation entry at `index` is cut short: the signatures end inside its 22-byte header
    /// (attester and signature length) or inside its signature.
    error GpuEscrow_AttestationMalformed(uint256 index);

    /// @notice Thrown when attestations are not sorted by strictly ascending attester address.
    error GpuEscrow_AttestersNotAscending(address previous, address attester);

    /// @notice Thrown when an attestation is signed by an account that is not a registered attester.
    error GpuEscrow_NotAttester(address account);

    /// @notice Thrown when the signature in attestation entry `index` does not verify for its registered attester:
    /// signed by another key, for other downtime terms, another chain or another escrow, or refused by the attester's
    /// ERC-1271 contract.
    error GpuEscrow_InvalidAttestation(uint256 index, address attester);

    /*//////////////////////////////////////////////////////////////////////////
                                      REFUSAL
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when a refusal's signature does not verify for the rental's provider: signed by another key,
    /// for another rental, another chain or another escrow, or refused by the provider's ERC-1271 contract.
    error GpuEscrow_InvalidRefusal(uint256 rentalId, address provider);

    /// @notice Thrown when refusing a rental the provider has already withdrawn earnings from (`withdrawn` gross):
    /// a refusal refunds the whole deposit, which no longer lies in escrow.
    error GpuEscrow_RefusalAfterWithdrawal(uint256 rentalId, uint256 withdrawn);

    /// @notice Thrown when refusing a rental of which the escrow holds nothing any more: it was refused already, or
    /// every second of it was credited back to the renter.
    error GpuEscrow_NothingToRefund(uint256 rentalId);

    /*//////////////////////////////////////////////////////////////////////////
                                       FEES
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Thrown when someone other than the treasury tries to claim fees.
    error GpuEscrow_CallerNotTreasury(address caller);

    /// @notice Thrown when the treasury claims while no more than the one unit a claim leaves is accrued.
    error GpuEscrow_NoFeesToClaim();
}
