//! EIP-712 downtime attestations: attesters sign the downtime they measured during a
//! rental, anyone submits the signatures with `creditDowntime`, the renter is refunded.
//!
//! Attesters sign the typed `Downtime` struct; `creditDowntime` takes the same members
//! packed into one word ([`DowntimeTerms::packed`]) and the signatures as one byte string
//! ([`pack_signatures`]), which keeps its calldata short.

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
            U40::try_from(value).map_err(|_| {
                EscrowError::OutOfRange(format!("{what} {value} does not fit 40 bits"))
            })
        };
        Ok(GpuEscrow::Downtime {
            rentalId: U256::from(self.rental_id),
            from: u40(self.from, "window start")?,
            to: u40(self.to, "window end")?,
            downSeconds: u40(self.down_seconds, "down seconds")?,
            deadline: u40(self.deadline, "deadline")?,
        })
    }

    /// The `downtime` argument of `creditDowntime`: `abi.encodePacked(uint96(rentalId),
    /// from, to, downSeconds, deadline)` as one word, the deadline in the lowest 40 bits.
    pub fn packed(&self) -> Result<U256, EscrowError> {
        // The same range checks as the signed struct: every time fits in 40 bits.
        self.to_sol()?;
        Ok(U256::from(self.rental_id) << 160
            | U256::from(self.from) << 120
            | U256::from(self.to) << 80
            | U256::from(self.down_seconds) << 40
            | U256::from(self.deadline))
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

/// The `signatures` argument of `creditDowntime`: one entry per attester, sorted by
/// ascending attester, back to back, each the attester's address, the signature's length
/// as two big-endian bytes and the signature.
pub fn pack_signatures(mut signed: Vec<(Address, Bytes)>) -> Result<Bytes, EscrowError> {
    signed.sort_by_key(|(attester, _)| *attester);
    signed.dedup_by_key(|(attester, _)| *attester);
    let mut packed = Vec::with_capacity(signed.iter().map(|(_, s)| 22 + s.len()).sum());
    for (attester, signature) in signed {
        let length = u16::try_from(signature.len()).map_err(|_| {
            EscrowError::OutOfRange(format!(
                "the signature of attester {attester} is {} bytes, more than 65535",
                signature.len()
            ))
        })?;
        packed.extend_from_slice(attester.as_slice());
        packed.extend_from_slice(&length.to_be_bytes());
        packed.extend_from_slice(&signature);
    }
    Ok(packed.into())
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
        ])
        .unwrap();
        assert_eq!(packed.len(), 2 * (20 + 2 + 65));
        let ((first, first_signature), (second, second_signature)) = if a.address() < b.address() {
            ((a.address(), sa), (b.address(), sb))
        } else {
            ((b.address(), sb), (a.address(), sa))
        };
        assert_eq!(&packed[..20], first.as_slice());
        assert_eq!(&packed[20..22], &[0, 65]);
        assert_eq!(&packed[22..87], &first_signature[..]);
        assert_eq!(&packed[87..107], second.as_slice());
        assert_eq!(&packed[107..109], &[0, 65]);
        assert_eq!(&packed[109..], &second_signature[..]);
    }

    #[test]
    fn contract_signatures_of_any_length_pack_with_their_length() {
        let wallet = Address::repeat_byte(0x11);
        let packed = pack_signatures(vec![(wallet, Bytes::from(vec![7; 300]))]).unwrap();
        assert_eq!(&packed[20..22], &300u16.to_be_bytes());
        assert_eq!(packed.len(), 22 + 300);
        assert!(pack_signatures(vec![]).unwrap().is_empty());
        assert!(pack_signatures(vec![(wallet, Bytes::from(vec![7; 65_536]))]).is_err());
    }

    #[test]
    fn terms_pack_into_one_word() {
        let terms = DowntimeTerms {
            rental_id: 0x0a,
            from: 0x6b03_eedd,
            to: 0x6b03_f5e5,
            down_seconds: 600,
            deadline: 0x6b04_03f5,
        };
        let expected: U256 =
            "0x00000000000000000000000a006b03eedd006b03f5e50000000258006b0403f5".parse().unwrap();
        assert_eq!(terms.packed().unwrap(), expected);
        let widest = DowntimeTerms {
            rental_id: u64::MAX,
            from: (1 << 40) - 1,
            to: (1 << 40) - 1,
            down_seconds: (1 << 40) - 1,
            deadline: (1 << 40) - 1,
        };
        assert_eq!(widest.packed().unwrap(), (U256::from(u64::MAX) << 160) | (U256::MAX >> 96));
    }

    #[test]
    fn out_of_range_times_are_refused() {
        let terms =
            DowntimeTerms { rental_id: 1, from: 0, to: 1 << 41, down_seconds: 1, deadline: 1 };
        assert!(terms.to_sol().is_err());
        assert!(terms.packed().is_err());
    }
}
