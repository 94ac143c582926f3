use crate::{GpuEscrow::GpuEscrowErrors as E, IERC20::IERC20Errors as T};

/// Turns a failed contract call into a sentence a renter or provider understands.
pub fn explain(error: &alloy::contract::Error) -> String {
    if let Some(e) = error.as_decoded_interface_error::<E>() {
        return explain_escrow(&e);
    }
    if let Some(e) = error.as_decoded_interface_error::<T>() {
        return explain_token(&e);
    }
    if let Some(data) = error.as_revert_data() {
        return format!("the contract reverted with unrecognised data {data}");
    }
    error.to_string()
}

fn explain_escrow(error: &E) -> String {
    match error {
        E::GpuEscrow_TokenZeroAddress(_) => "the payment token address is zero".into(),
        E::GpuEscrow_TreasuryZeroAddress(_) => "the treasury address is zero".into(),
        E::GpuEscrow_FeeTooHigh(e) => {
            format!("a fee of {} basis points is above the maximum of {}", e.feeBps, e.max)
        }
        E::GpuEscrow_DisputeWindowTooLong(e) => format!(
            "a dispute window of {} s is longer than the maximum of {} s",
            e.disputeWindow, e.max
        ),
        E::GpuEscrow_AttesterZeroAddress(_) => "the attester address is zero".into(),
        E::GpuEscrow_AttesterThresholdZero(_) => "the attester threshold must be at least 1".into(),
        E::GpuEscrow_QuoteExpired(e) => format!(
            "the provider's quote expired at {} (now {}); run the command again for a fresh quote",
            e.deadline, e.timestamp
        ),
        E::GpuEscrow_CallerNotQuoteRenter(e) => format!(
            "the quote was made for {}, not for {}; ask the provider with your own wallet",
            e.renter, e.caller
        ),
        E::GpuEscrow_ProviderZeroAddress(_) => "the offer has no payout address".into(),
        E::GpuEscrow_ProviderIsRenter(e) => format!("{} cannot rent its own machine", e.account),
        E::GpuEscrow_RateZero(_) => "the price per second is zero".into(),
        E::GpuEscrow_RateTooHigh(e) => format!(
            "the price of {} units per second is above the maximum of {}",
            e.ratePerSecond, e.max
        ),
        E::GpuEscrow_DurationZero(_) => {
            "the rental duration is zero; ask for at least one second".into()
        }
        E::GpuEscrow_DurationAboveMax(e) => format!(
            "{} s is longer than the {} s allowed (the provider's quote, at most about 136 years); \
             rent for less",
            e.duration, e.max
        ),
        E::GpuEscrow_NonceAlreadyUsed(e) => format!(
            "quote {} of {} was already used or cancelled; ask for a fresh quote",
            e.nonce, e.provider
        ),
        E::GpuEscrow_InvalidSignature(e) => {
            format!("the quote is not validly signed by {}; no money moved", e.signer)
        }
        E::GpuEscrow_PermitFailed(e) => format!(
            "the token permit failed and the allowance is {} of the {} needed; approve the escrow",
            e.allowance, e.deposit
        ),
        E::GpuEscrow_RentalNotFound(e) => format!(
            "rental {} does not exist on this escrow; check the id and the --escrow address",
            e.rentalId
        ),
        E::GpuEscrow_CallerNotRenter(e) => {
            format!("rental {} belongs to another renter, not {}", e.rentalId, e.caller)
        }
        E::GpuEscrow_CallerNotProvider(e) => {
            format!("rental {} pays another provider, not {}", e.rentalId, e.caller)
        }
        E::GpuEscrow_RentalAlreadyStopped(e) => {
            format!("rental {} is already stopped; its remainder was refunded then", e.rentalId)
        }
        E::GpuEscrow_RentalAlreadyEnded(e) => {
            format!("rental {} already ended at {}; nothing is left to refund", e.rentalId, e.end)
        }
        E::GpuEscrow_ExtensionZero(_) => "an extension must add at least one second".into(),
        E::GpuEscrow_ExtensionAboveMax(e) => format!(
            "rental {} can be extended by at most {} s more under its quote, not {} s",
            e.rentalId, e.maxExtraSeconds, e.extraSeconds
        ),
        E::GpuEscrow_NothingToWithdraw(e) => {
            format!("rental {} has no earnings to withdraw yet (dispute window)", e.rentalId)
        }
        E::GpuEscrow_BatchNothingToWithdraw(e) => {
            format!("none of the {} rentals has earnings to withdraw yet", e.rentalCount)
        }
        E::GpuEscrow_DowntimeExpired(e) => format!(
            "the downtime attestation expired at {} (now {}); fetch a fresh one",
            e.deadline, e.timestamp
        ),
        E::GpuEscrow_DowntimeWindowInvalid(e) => {
            format!("the downtime window {}..{} is empty or reversed", e.from, e.to)
        }
        E::GpuEscrow_DowntimeSecondsInvalid(e) => format!(
            "{} downtime seconds do not fit a window of {} s",
            e.downSeconds, e.windowSeconds
        ),
        E::GpuEscrow_DowntimeInFuture(e) => {
            format!("the downtime window ends at {}, after now ({})", e.to, e.timestamp)
        }
        E::GpuEscrow_DowntimeOutsideRental(e) => {
            format!("the downtime window {}..{} is outside rental {}", e.from, e.to, e.rentalId)
        }
        E::GpuEscrow_DowntimeOverlaps(e) => format!(
            "downtime of rental {} up to {} was already credited; the window from {} overlaps it",
            e.rentalId, e.creditedUntil, e.from
        ),
        E::GpuEscrow_NothingToCredit(e) => {
            format!("rental {} has no unpaid seconds left to credit for this downtime", e.rentalId)
        }
        E::GpuEscrow_AttestationsBelowThreshold(e) => format!(
            "{} attester signatures, but the escrow needs {}; ask more nodes",
            e.count, e.threshold
        ),
        E::GpuEscrow_AttestationMalformed(e) => {
            format!(
                "attestation entry {} is cut short: its attester, signature length or \
                 signature runs past the end of the signatures",
                e.index
            )
        }
        E::GpuEscrow_AttestersNotAscending(e) => format!(
            "attester signatures must be sorted by attester address ({} came after {})",
            e.attester, e.previous
        ),
        E::GpuEscrow_NotAttester(e) => format!("{} is not a registered attester", e.account),
        E::GpuEscrow_CallerNotTreasury(e) => format!("{} is not the treasury", e.caller),
        E::GpuEscrow_NoFeesToClaim(_) => "there are no fees to claim".into(),
        E::SafeERC20FailedOperation(e) => format!("the token {} refused the transfer", e.token),
        E::EnforcedPause(_) => {
            "the escrow is paused: no rental can be opened or extended now; stopping still works"
                .into()
        }
        E::ExpectedPause(_) => "the escrow is not paused".into(),
        E::OwnableUnauthorizedAccount(e) => format!("{} is not the escrow's admin", e.account),
        E::OwnableInvalidOwner(e) => format!("{} cannot own the escrow", e.owner),
        E::InvalidShortString(_) | E::StringTooLong(_) => {
            "the escrow's EIP-712 domain is malformed".into()
        }
    }
}

fn explain_token(error: &T) -> String {
    match error {
        T::ERC20InsufficientBalance(e) => format!(
            "{} holds {} token units but {} are needed; fund the wallet and try again",
            e.sender, e.balance, e.needed
        ),
        T::ERC20InsufficientAllowance(e) => format!(
            "the escrow {} may spend only {} token units of the needed {}; approve more",
            e.spender, e.allowance, e.needed
        ),
        T::ERC20InvalidSender(e) => format!("the token refuses to send from {}", e.sender),
        T::ERC20InvalidReceiver(e) => format!("the token refuses to pay {}", e.receiver),
    }
}
