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
        E::GpuEscrow_TokenZeroAddress(_) => {
            "the payment token address is zero; deploy the escrow with the token's address".into()
        }
        E::GpuEscrow_TreasuryZeroAddress(_) => {
            "the treasury address is zero; name a treasury that can receive the fees".into()
        }
        E::GpuEscrow_FeeTooHigh(e) => {
            format!(
                "a fee of {} basis points is above the maximum of {}; set a fee of at most {}",
                e.feeBps, e.max, e.max
            )
        }
        E::GpuEscrow_DisputeWindowTooLong(e) => format!(
            "a dispute window of {} s is longer than the maximum of {} s; choose one of at most {} s",
            e.disputeWindow, e.max, e.max
        ),
        E::GpuEscrow_AttesterZeroAddress(_) => {
            "the attester address is zero; name the attester's own address".into()
        }
        E::GpuEscrow_AttesterThresholdZero(_) => {
            "the attester threshold is zero; set it to at least 1".into()
        }
        E::GpuEscrow_ThresholdAboveAttesters(e) => format!(
            "a threshold of {} attester signatures is more than the {} registered attesters, so no \
             downtime could be credited; register more attesters first",
            e.threshold, e.attesterCount
        ),
        E::GpuEscrow_AttestersBelowThreshold(e) => format!(
            "unregistering this attester would leave {} attesters, fewer than the threshold of {}; \
             register a successor or lower the threshold first",
            e.remaining, e.threshold
        ),
        E::GpuEscrow_RenounceOwnershipDisabled(_) => {
            "the escrow always keeps an admin, so ownership cannot be renounced; transfer it to \
             another account instead"
                .into()
        }
        E::GpuEscrow_QuoteExpired(e) => format!(
            "the provider's quote expired at {} (now {}); run the command again for a fresh quote",
            e.deadline, e.timestamp
        ),
        E::GpuEscrow_CallerNotQuoteRenter(e) => format!(
            "the quote was made for {}, not for {}; ask the provider with your own wallet",
            e.renter, e.caller
        ),
        E::GpuEscrow_ProviderZeroAddress(_) => {
            "the quote names no payout address (zero); rent from another offer".into()
        }
        E::GpuEscrow_ProviderIsRenter(e) => {
            format!("{} cannot rent its own machine; rent with another wallet", e.account)
        }
        E::GpuEscrow_RateZero(_) => {
            "the quoted price per second is zero; ask the provider for a fresh quote".into()
        }
        E::GpuEscrow_RateTooHigh(e) => format!(
            "the price of {} units per second is above the escrow's maximum of {}; rent from a \
             cheaper offer",
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
            format!(
                "the quote is not validly signed by {}; ask the provider for a fresh quote",
                e.signer
            )
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
            format!(
                "rental {} belongs to another renter, not {}; use the wallet that rented it",
                e.rentalId, e.caller
            )
        }
        E::GpuEscrow_CallerNotProvider(e) => {
            format!(
                "rental {} pays another provider, not {}; use that provider's payout key",
                e.rentalId, e.caller
            )
        }
        E::GpuEscrow_RentalAlreadyStopped(e) => {
            format!(
                "rental {} is already stopped and its remainder was refunded then; rent again for \
                 more time",
                e.rentalId
            )
        }
        E::GpuEscrow_RentalAlreadyEnded(e) => {
            format!(
                "rental {} already ended at {}, so nothing is left to refund or extend; rent again \
                 for more time",
                e.rentalId, e.end
            )
        }
        E::GpuEscrow_ExtensionZero(_) => {
            "the extension adds no time; ask for at least one second more".into()
        }
        E::GpuEscrow_ExtensionAboveMax(e) => format!(
            "rental {} can be extended by at most {} s more under its quote, not {} s; extend by \
             less or rent again",
            e.rentalId, e.maxExtraSeconds, e.extraSeconds
        ),
        E::GpuEscrow_AutoExtendBudgetTooLarge(e) => format!(
            "an automatic extension budget can be at most {} token units, not {}; set a smaller \
             budget",
            e.max, e.budget
        ),
        E::GpuEscrow_AutoExtendStepOutOfRange(e) => format!(
            "an automatic extension buys between {} s and {} s at a time, not {} s; choose a step \
             in that range (e.g. 1h)",
            e.min, e.max, e.step
        ),
        E::GpuEscrow_AutoExtendTooEarly(e) => format!(
            "rental {} can be extended automatically only in its last ten minutes; wait until \
             unix time {}",
            e.rentalId, e.opensAt
        ),
        E::GpuEscrow_AutoExtendNothingLeft(e) => format!(
            "rental {} cannot be extended automatically: its budget ({} token units left) buys \
             no second, or it already lasts its quote's maximum ({} s more allowed); set a \
             larger budget with gpuflow auto-extend, or rent again",
            e.rentalId, e.budget, e.maxExtraSeconds
        ),
        E::GpuEscrow_NothingToWithdraw(e) => {
            format!(
                "rental {} has no earnings to withdraw yet; wait until its seconds are older than \
                 the dispute window",
                e.rentalId
            )
        }
        E::GpuEscrow_BatchNothingToWithdraw(e) => {
            format!(
                "none of the {} rentals has earnings to withdraw yet; wait until their seconds are \
                 older than the dispute window",
                e.rentalCount
            )
        }
        E::GpuEscrow_RecipientZeroAddress(_) => {
            "the earnings recipient is the zero address; name an address that can hold the token"
                .into()
        }
        E::GpuEscrow_DowntimeExpired(e) => format!(
            "the downtime attestation expired at {} (now {}); fetch a fresh one",
            e.deadline, e.timestamp
        ),
        E::GpuEscrow_DowntimeWindowInvalid(e) => {
            format!(
                "the downtime window {}..{} is empty or reversed; fetch a fresh attestation",
                e.from, e.to
            )
        }
        E::GpuEscrow_DowntimeSecondsInvalid(e) => format!(
            "{} downtime seconds do not fit a window of {} s; fetch a fresh attestation",
            e.downSeconds, e.windowSeconds
        ),
        E::GpuEscrow_DowntimeInFuture(e) => {
            format!(
                "the downtime window ends at {}, after now ({}); wait until then and claim again",
                e.to, e.timestamp
            )
        }
        E::GpuEscrow_DowntimeOutsideRental(e) => {
            format!(
                "the downtime window {}..{} is outside rental {}; fetch an attestation for the \
                 rental's own time",
                e.from, e.to, e.rentalId
            )
        }
        E::GpuEscrow_DowntimeOverlaps(e) => format!(
            "downtime of rental {} up to {} was already credited and the window from {} overlaps \
             it; claim again once later downtime is measured",
            e.rentalId, e.creditedUntil, e.from
        ),
        E::GpuEscrow_NothingToCredit(e) => {
            format!(
                "rental {} has no unpaid seconds left to credit for this downtime (the provider was \
                 paid for them); claim within the dispute window next time",
                e.rentalId
            )
        }
        E::GpuEscrow_AttestationsBelowThreshold(e) => format!(
            "{} attester signatures, but the escrow needs {}; ask more nodes",
            e.count, e.threshold
        ),
        E::GpuEscrow_AttestationMalformed(e) => {
            format!(
                "attestation entry {} is cut short: its attester, signature length or \
                 signature runs past the end of the signatures; fetch the attestations again",
                e.index
            )
        }
        E::GpuEscrow_AttestersNotAscending(e) => format!(
            "attester signatures are out of order ({} came after {}); sort them by attester \
             address",
            e.attester, e.previous
        ),
        E::GpuEscrow_InvalidAttestation(e) => format!(
            "the downtime signature of attester {} (entry {}) does not match these downtime terms \
             on this escrow and chain; fetch a fresh attestation from that attester",
            e.attester, e.index
        ),
        E::GpuEscrow_NotAttester(e) => format!(
            "{} is not a registered attester; ask nodes whose attester key is registered",
            e.account
        ),
        E::GpuEscrow_InvalidRefusal(e) => format!(
            "the refusal of rental {} is not validly signed by its provider {} for this escrow \
             and chain; ask that provider to sign the refusal of this rental again",
            e.rentalId, e.provider
        ),
        E::GpuEscrow_RefusalAfterWithdrawal(e) => format!(
            "rental {} can no longer be refused: its provider already withdrew {} token units of \
             it; use `gpuflow stop` instead to get the unused time back",
            e.rentalId, e.withdrawn
        ),
        E::GpuEscrow_NothingToRefund(e) => format!(
            "rental {} has nothing left to refund: it was refused already or all of it was \
             credited; check the rental with `gpuflow status`",
            e.rentalId
        ),
        E::GpuEscrow_CallerNotTreasury(e) => {
            format!("{} is not the treasury; claim with the treasury's key", e.caller)
        }
        E::GpuEscrow_NoFeesToClaim(_) => {
            "there are no fees to claim (a claim leaves one unit); wait until providers withdraw earnings".into()
        }
        E::SafeERC20FailedOperation(e) => format!(
            "the token {} refused the transfer; check the wallet's token balance and allowance",
            e.token
        ),
        E::EnforcedPause(_) => {
            "the escrow is paused: no rental can be opened or extended now; wait until it is \
             unpaused (stopping still works)"
                .into()
        }
        E::ExpectedPause(_) => "the escrow is not paused; check `paused()` before unpausing".into(),
        E::OwnableUnauthorizedAccount(e) => {
            format!("{} is not the escrow's admin; use the admin's key", e.account)
        }
        E::OwnableInvalidOwner(e) => {
            format!("{} cannot own the escrow; name a non-zero owner", e.owner)
        }
        E::InvalidShortString(_) => {
            "the escrow's EIP-712 name or version is malformed; redeploy it with valid ones".into()
        }
        E::StringTooLong(e) => format!(
            "the escrow's EIP-712 name or version `{}` is too long; redeploy it with a shorter one",
            e.str
        ),
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
        T::ERC20InvalidSender(e) => {
            format!("the token refuses to send from {}; use another wallet", e.sender)
        }
        T::ERC20InvalidReceiver(e) => {
            format!("the token refuses to pay {}; use another address", e.receiver)
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::{hex, sol_types::SolInterface, transports::RpcError};

    use super::*;

    /// Verbs a sentence's advice may start with.
    const ACTIONS: &[&str] = &[
        "approve", "ask", "check", "choose", "claim", "deploy", "extend", "fetch", "fund", "name",
        "redeploy", "register", "rent", "run", "set", "sort", "transfer", "use", "wait",
    ];

    /// A node's answer to a call that reverted with `data`, as alloy sees it.
    fn reverted(data: &[u8]) -> alloy::contract::Error {
        let payload = serde_json::json!({
            "code": 3,
            "message": "execution reverted",
            "data": hex::encode_prefixed(data),
        });
        alloy::contract::Error::TransportError(RpcError::ErrorResp(
            serde_json::from_value(payload).expect("an error payload"),
        ))
    }

    /// Revert data for `selector` with every argument zero (an empty string for strings).
    fn zero_args(selector: [u8; 4]) -> Vec<u8> {
        let mut data = selector.to_vec();
        data.extend([0u8; 32 * 8]);
        data
    }

    /// Asserts `sentence` says what happened and then, after a `; `, what to do.
    fn advises(sentence: &str) {
        let advice = sentence.split("; ").skip(1).find(|clause| {
            ACTIONS.iter().any(|verb| clause.split_whitespace().next() == Some(verb))
        });
        assert!(advice.is_some(), "`{sentence}` does not say what to do");
        assert!(!sentence.contains("unrecognised"), "{sentence}");
    }

    #[test]
    fn every_escrow_error_is_a_sentence_saying_what_to_do() {
        let mut sentences = std::collections::BTreeSet::new();
        for selector in E::SELECTORS {
            let data = zero_args(*selector);
            let decoded = E::abi_decode(&data).expect("zero arguments decode");
            let sentence = explain(&reverted(&data));
            assert_eq!(
                sentence,
                explain_escrow(&decoded),
                "explain decodes {}",
                hex::encode(selector)
            );
            advises(&sentence);
            sentences.insert(sentence);
        }
        assert_eq!(sentences.len(), E::SELECTORS.len(), "two errors read the same");
        // Every error the contract's artifact declares is covered by the bindings.
        assert!(E::SELECTORS.len() >= 40, "{} errors", E::SELECTORS.len());
    }

    #[test]
    fn every_token_error_is_a_sentence_saying_what_to_do() {
        for selector in T::SELECTORS {
            advises(&explain(&reverted(&zero_args(*selector))));
        }
    }

    #[test]
    fn a_bad_attestation_is_not_blamed_on_the_quote() {
        let attester = alloy::primitives::Address::repeat_byte(0xaa);
        let error = crate::GpuEscrow::GpuEscrow_InvalidAttestation {
            index: alloy::primitives::U256::from(1),
            attester,
        };
        let sentence = explain(&reverted(&E::GpuEscrow_InvalidAttestation(error).abi_encode()));
        assert!(sentence.contains(&attester.to_string()), "{sentence}");
        assert!(sentence.contains("(entry 1)"), "{sentence}");
        assert!(!sentence.contains("quote"), "{sentence}");
        let quote = crate::GpuEscrow::GpuEscrow_InvalidSignature { signer: attester };
        let sentence = explain(&reverted(&E::GpuEscrow_InvalidSignature(quote).abi_encode()));
        assert!(sentence.contains("quote"), "{sentence}");
    }

    #[test]
    fn arguments_reach_the_sentence() {
        let error = crate::GpuEscrow::GpuEscrow_ExtensionAboveMax {
            rentalId: alloy::primitives::U256::from(7),
            extraSeconds: alloy::primitives::U256::from(90_000),
            maxExtraSeconds: alloy::primitives::U256::from(3_600),
        };
        let sentence = explain(&reverted(&E::GpuEscrow_ExtensionAboveMax(error).abi_encode()));
        assert_eq!(
            sentence,
            "rental 7 can be extended by at most 3600 s more under its quote, not 90000 s; \
             extend by less or rent again"
        );
        let unknown = explain(&reverted(&[0xde, 0xad, 0xbe, 0xef, 1, 2]));
        assert!(unknown.contains("unrecognised data 0xdeadbeef0102"), "{unknown}");
    }
}
