//! EIP-712 quotes: the provider signs the terms, the escrow checks the signature.

use alloy::{
    primitives::{Address, U256, aliases::U40},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};
use gpuflow_protocol::{QuoteTerms, SignedQuote};

use crate::{EscrowError, GpuEscrow};

/// The escrow's EIP-712 domain on `chain_id` at `escrow`.
pub fn domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: "GpuEscrow",
        version: "1",
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

/// The quote as the contract's `Quote` struct.
pub fn to_sol(terms: &QuoteTerms) -> Result<GpuEscrow::Quote, EscrowError> {
    let u40 = |value: u64, what: &str| {
        U40::try_from(value)
            .map_err(|_| EscrowError::OutOfRange(format!("{what} {value} does not fit 40 bits")))
    };
    Ok(GpuEscrow::Quote {
        provider: terms.provider,
        renter: terms.renter,
        ratePerSecond: terms.rate_per_second,
        maxDuration: u40(terms.max_duration, "max duration")?,
        deadline: u40(terms.deadline, "deadline")?,
        offerId: terms.offer_id,
        nonce: terms.nonce,
    })
}

/// Signs `terms` with the provider's payout key.
pub fn sign_quote(
    signer: &PrivateKeySigner,
    terms: QuoteTerms,
    domain: &Eip712Domain,
) -> Result<SignedQuote, EscrowError> {
    let hash = to_sol(&terms)?.eip712_signing_hash(domain);
    let signature = signer
        .sign_hash_sync(&hash)
        .map_err(|e| EscrowError::OutOfRange(format!("signing the quote: {e}")))?;
    Ok(SignedQuote { terms, signature: signature.as_bytes().to_vec().into(), share: None })
}

/// The address that signed `quote`, for an EOA signature; contract wallets (ERC-1271)
/// are checked by the escrow itself.
pub fn quote_signer(quote: &SignedQuote, domain: &Eip712Domain) -> Option<Address> {
    let hash = to_sol(&quote.terms).ok()?.eip712_signing_hash(domain);
    let signature = alloy::primitives::Signature::try_from(quote.signature.as_ref()).ok()?;
    signature.recover_address_from_prehash(&hash).ok()
}

/// `rate × duration`, checked.
pub fn cost(rate_per_second: u128, seconds: u64) -> Result<U256, EscrowError> {
    U256::from(rate_per_second)
        .checked_mul(U256::from(seconds))
        .ok_or_else(|| EscrowError::OutOfRange("rate × duration overflows".into()))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;

    fn terms(provider: Address) -> QuoteTerms {
        QuoteTerms {
            provider,
            renter: Address::repeat_byte(2),
            rate_per_second: 100,
            max_duration: 3600,
            deadline: 2_000_000_000,
            offer_id: B256::repeat_byte(3),
            nonce: U256::from(7),
        }
    }

    #[test]
    fn signed_quote_recovers_to_the_provider_only_in_its_domain() {
        let provider = PrivateKeySigner::random();
        let escrow = Address::repeat_byte(9);
        let here = domain(31337, escrow);
        let quote = sign_quote(&provider, terms(provider.address()), &here).unwrap();
        assert_eq!(quote_signer(&quote, &here), Some(provider.address()));
        assert_ne!(quote_signer(&quote, &domain(1, escrow)), Some(provider.address()));
        assert_ne!(quote_signer(&quote, &domain(31337, Address::ZERO)), Some(provider.address()));
        let mut tampered = quote.clone();
        tampered.terms.rate_per_second = 1;
        assert_ne!(quote_signer(&tampered, &here), Some(provider.address()));
    }

    #[test]
    fn type_string_matches_the_contract() {
        assert_eq!(
            GpuEscrow::Quote::eip712_encode_type(),
            "Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,\
             uint40 deadline,bytes32 offerId,uint256 nonce)"
        );
    }
}
