//! EIP-712 refusals: a provider that will not serve a rental (other terms than it quoted,
//! a GPU already rented, a workload that failed to start) signs `Refusal(uint256
//! rentalId)`, anyone submits it with `refuse`, and the renter gets its whole deposit
//! back while the provider is never paid for the rental.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol,
    sol_types::{Eip712Domain, SolStruct},
};

use crate::EscrowError;

sol! {
    /// The struct a provider signs to refuse a rental; the contract's `hashRefusal`.
    #[derive(Debug)]
    struct Refusal {
        uint256 rentalId;
    }
}

/// The EIP-712 digest of the refusal of `rental_id`: what the contract's `hashRefusal`
/// returns.
pub fn refusal_hash(rental_id: u64, domain: &Eip712Domain) -> B256 {
    Refusal { rentalId: U256::from(rental_id) }.eip712_signing_hash(domain)
}

/// Signs the refusal of `rental_id` with the provider's payout key: 65 bytes `r ‖ s ‖ v`.
pub fn sign_refusal(
    signer: &PrivateKeySigner,
    rental_id: u64,
    domain: &Eip712Domain,
) -> Result<Bytes, EscrowError> {
    let signature = signer
        .sign_hash_sync(&refusal_hash(rental_id, domain))
        .map_err(|e| EscrowError::OutOfRange(format!("signing the refusal: {e}")))?;
    Ok(signature.as_bytes().to_vec().into())
}

/// The address that signed `signature` as the refusal of `rental_id`, for an EOA
/// signature; contract wallets (ERC-1271) are checked by the escrow itself.
pub fn refusal_signer(rental_id: u64, signature: &[u8], domain: &Eip712Domain) -> Option<Address> {
    let signature = alloy::primitives::Signature::try_from(signature).ok()?;
    signature.recover_address_from_prehash(&refusal_hash(rental_id, domain)).ok()
}

#[cfg(test)]
mod tests {
    use alloy::primitives::keccak256;

    use super::*;

    #[test]
    fn type_string_matches_the_contract() {
        assert_eq!(Refusal::eip712_encode_type(), "Refusal(uint256 rentalId)");
    }

    #[test]
    fn digest_is_the_contracts_formula() {
        // `hashRefusal`: keccak256("\x19\x01" ‖ domainSeparator ‖ keccak256(typeHash ‖
        // rentalId)), written out independently of alloy's struct hashing.
        let domain = crate::domain(31_337, Address::repeat_byte(9));
        let mut encoded = keccak256("Refusal(uint256 rentalId)").to_vec();
        encoded.extend_from_slice(&U256::from(42).to_be_bytes::<32>());
        let mut message = b"\x19\x01".to_vec();
        message.extend_from_slice(domain.separator().as_slice());
        message.extend_from_slice(keccak256(&encoded).as_slice());
        assert_eq!(refusal_hash(42, &domain), keccak256(&message));
        assert_ne!(refusal_hash(43, &domain), refusal_hash(42, &domain));
    }

    #[test]
    fn signed_refusal_recovers_to_the_provider_only_for_its_rental_and_domain() {
        let provider = PrivateKeySigner::random();
        let escrow = Address::repeat_byte(9);
        let here = crate::domain(31_337, escrow);
        let signature = sign_refusal(&provider, 7, &here).unwrap();
        assert_eq!(signature.len(), 65);
        assert_eq!(refusal_signer(7, &signature, &here), Some(provider.address()));
        assert_ne!(refusal_signer(8, &signature, &here), Some(provider.address()));
        assert_ne!(
            refusal_signer(7, &signature, &crate::domain(1, escrow)),
            Some(provider.address())
        );
        assert_ne!(
            refusal_signer(7, &signature, &crate::domain(31_337, Address::ZERO)),
            Some(provider.address())
        );
        assert_eq!(refusal_signer(7, &signature[..64], &here), None);
    }
}
