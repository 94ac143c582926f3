//! EIP-712 downtime attestations: attesters sign the downtime they measured during a
//! rental, anyone submits the signatures with `creditDowntime`, the renter is refunded.

use alloy::{
    primitives::{Address, Bytes, U256, aliases::U40},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolStruct},
};

use crate::{EscrowError, GpuEscrow};

/// The terms of a `Downtime` attestation: in rental `rental_id`, the provider was down
/// `down_seconds` of `[from, to)`; valid until `deadline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DowntimeTerms {
    /// Rental id in `GpuEscrow`.
    pub rental_id: u64,
    /// Window start, unix seconds.
    pub from: u64,
    /// Window end (exclusive).
    pub to: u64,
    /// Seconds of the window the provider was down.
    pub down_seconds: u64,
    /// Unix time after which the escrow refuses the attestation.
    pub deadline: u64,
}

impl DowntimeTerms {
    /// The contract's `Downtime` struct.
    pub fn to_sol(&self) -> Result<GpuEscrow::Downtime, EscrowError> {
        let u40 = |value: u64, what: &str| {
            U40::try_from(value)
                .map_err(|_| EscrowError::OutOfRange(format!("{what} {value} does not fit 40 bits")))
        };
        Ok(GpuEscrow::Downtime {
            rentalId: U256::from(self.rental_id),
            from: u40(self.from, "window start")?,
            to: u40(self.to, "window end")?,
            downSeconds: u40(self.down_seconds, "down seconds")?,
            deadline: u40(self.deadline, "deadline")?,
        })
    }
}

/// Signs `terms` with an attester key: 65 bytes `r ‖ s ‖ v`.
pub fn sign_downtime(
    signer: &PrivateKeySigner,
    terms: &DowntimeTerms,
    domain: &Eip712Domain,
) -> Result<Bytes, EscrowError> {
    let hash = terms.to_sol()?.eip712_signing_hash(domain);
    let signature = signer
        .sign_hash_sync(&hash)
        .map_err(|e| EscrowError::OutOfRange(format!("signing the attestation: {e}")))?;
    Ok(signature.as_bytes().to_vec().into())
}

/// The attester that signed `signature` over `terms`, for an EOA attester.
pub fn downtime_signer(
    terms: &DowntimeTerms,
    signature: &[u8],
    domain: &Eip712Domain,
) -> Option<Address> {
    let hash = terms.to_sol().ok()?.eip712_signing_hash(domain);
    let signature = alloy::primitives::Signature::try_from(signature).ok()?;
    signature.recover_address_from_prehash(&hash).ok()
}

/// The `signatures` argument of `creditDowntime`: each entry the attester's address followed
/// by its signature, sorted by ascending attester, one entry per attester.
pub fn pack_signatures(mut signed: Vec<(Address, Bytes)>) -> Vec<Bytes> {
    signed.sort_by_key(|(attester, _)| *attester);
    signed.dedup_by_key(|(attester, _)| *attester);
    signed
        .into_iter()
        .map(|(attester, signature)| [attester.as_slice(), &signature].concat().into())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_recover_and_pack_in_attester_order() {
        let domain = crate::domain(31_337, Address::repeat_byte(9));
        let terms =
            DowntimeTerms { rental_id: 7, from: 100, to: 200, down_seconds: 40, deadline: 300 };
        let (a, b) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let sa = sign_downtime(&a, &terms, &domain).unwrap();
        let sb = sign_downtime(&b, &terms, &domain).unwrap();
        assert_eq!(downtime_signer(&terms, &sa, &domain), Some(a.address()));
        let other = DowntimeTerms { down_seconds: 41, ..terms };
        assert_ne!(downtime_signer(&other, &sa, &domain), Some(a.address()));

        let packed = pack_signatures(vec![
            (b.address(), sb.clone()),
            (a.address(), sa.clone()),
            (a.address(), sa.clone()),
        ]);
        assert_eq!(packed.len(), 2);
        let (first, first_signature) =
            if a.address() < b.address() { (a.address(), sa) } else { (b.address(), sb) };
        assert_eq!(&packed[0][..20], first.as_slice());
        assert_eq!(&packed[0][20..], &first_signature[..]);
    }

    #[test]
    fn out_of_range_times_are_refused() {
        let terms = DowntimeTerms { rental_id: 1, from: 0, to: 1 << 41, down_seconds: 1, deadline: 1 };
        assert!(terms.to_sol().is_err());
    }
}
