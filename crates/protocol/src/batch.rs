//! Ed25519 batch verification that judges every signature as
//! [`ed25519_dalek::VerifyingKey::verify_strict`] does, with one exception stated below.
//!
//! [`Prepared::new`] takes apart what one signature needs: the canonical scalar `s`, the
//! nonce point `R` (decompressed once, here), the key's point `A` and the challenge
//! `k = SHA-512(R ‖ A ‖ M)`. It refuses what `verify_strict` refuses before its equation (a
//! non-canonical `s` or `R`, a small-order `R` or `A`), so those signatures are never
//! batched. [`holds`] then checks the cofactorless equations of all of them at once: with
//! fresh random 128-bit `z_i`, `Σ z_i·R_i + Σ (z_i·k_i)·A_i − (Σ z_i·s_i)·B` is the
//! identity when every `R_i = s_i·B − k_i·A_i`, and otherwise with probability at most
//! `2^-128`, except when the only fault of a signature is a component of small order,
//! which the sum can cancel (a chance of at most 1 in 8). Only the key's owner can make
//! such a signature: it can never pass a batch as someone else's.

use curve25519_dalek::{
    constants::ED25519_BASEPOINT_POINT,
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
    traits::{IsIdentity, VartimeMultiscalarMul},
};
use rand::Rng;
use sha2::{Digest, Sha512};

/// One signature, taken apart for a batch.
pub(crate) struct Prepared {
    r: EdwardsPoint,
    a: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Prepared {
    /// Takes apart `signature` of `message` under `key`, or `None` when a batch could not
    /// judge it as `verify_strict` would: verify it alone instead.
    pub(crate) fn new(
        key: &ed25519_dalek::VerifyingKey,
        signature: &ed25519_dalek::Signature,
        message: &[u8],
    ) -> Option<Self> {
        if key.is_weak() {
            return None;
        }
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes()))?;
        let r_bytes = signature.r_bytes();
        // `verify_strict` compares the canonical encoding of the point it computes with
        // these bytes, so a non-canonical `y` (at least p = 2^255 − 19) never verifies.
        if !canonical_y(r_bytes) {
            return None;
        }
        let r = CompressedEdwardsY(*r_bytes).decompress()?;
        if r.is_small_order() {
            return None;
        }
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(key.as_bytes());
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        Some(Self { r, a: key.to_edwards(), s, k })
    }
}

/// Whether the 255-bit `y` of an encoded point is below p = 2^255 − 19.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    // y ≥ p only when its bits are all ones but the lowest byte's, which is at least 0xed.
    !(bytes[0] >= 0xed && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[31] & 0x7f == 0x7f)
}

/// Whether every prepared signature verifies (see the module's documentation). An empty
/// batch holds.
pub(crate) fn holds(batch: &[&Prepared]) -> bool {
    if batch.is_empty() {
        return true;
    }
    let mut rng = rand::thread_rng();
    let mut scalars = Vec::with_capacity(2 * batch.len() + 1);
    let mut points = Vec::with_capacity(2 * batch.len() + 1);
    let mut s_sum = Scalar::ZERO;
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    for prepared in batch {
        let z = Scalar::from(rng.r#gen::<u128>());
        s_sum += z * prepared.s;
        scalars.push(z);
        points.push(prepared.r);
        scalars.push(z * prepared.k);
        points.push(prepared.a);
    }
    scalars[0] = -s_sum;
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points).is_identity()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn signed(count: u8) -> Vec<(ed25519_dalek::VerifyingKey, ed25519_dalek::Signature, Vec<u8>)> {
        (1..=count)
            .map(|i| {
                let key = SigningKey::from_bytes(&[i; 32]);
                let message = format!("message {i}").into_bytes();
                (key.verifying_key(), key.sign(&message), message)
            })
            .collect()
    }

    fn verdict(
        entries: &[(ed25519_dalek::VerifyingKey, ed25519_dalek::Signature, Vec<u8>)],
    ) -> Option<bool> {
        let prepared: Option<Vec<Prepared>> =
            entries.iter().map(|(key, sig, message)| Prepared::new(key, sig, message)).collect();
        Some(holds(&prepared?.iter().collect::<Vec<_>>()))
    }

    #[test]
    fn good_signatures_hold_and_any_change_breaks_the_batch() {
        let entries = signed(16);
        assert_eq!(verdict(&entries), Some(true));
        for i in [0, 7, 15] {
            // Another message under the same signature.
            let mut changed = entries.clone();
            changed[i].2.push(b'!');
            assert_eq!(verdict(&changed), Some(false), "message {i}");
            // Another key.
            let mut changed = entries.clone();
            changed[i].0 = entries[(i + 1) % 16].0;
            assert_eq!(verdict(&changed), Some(false), "key {i}");
            // A flipped bit of s, still canonical.
            let mut changed = entries.clone();
            let mut bytes = changed[i].1.to_bytes();
            bytes[40] ^= 1;
            changed[i].1 = ed25519_dalek::Signature::from_bytes(&bytes);
            assert_eq!(verdict(&changed), Some(false), "s {i}");
        }
        // Two signatures swapped between their messages.
        let mut swapped = entries.clone();
        let (a, b) = (swapped[2].1, swapped[3].1);
        swapped[2].1 = b;
        swapped[3].1 = a;
        assert_eq!(verdict(&swapped), Some(false));
    }

    #[test]
    fn what_verify_strict_refuses_before_its_equation_is_never_batched() {
        let (key, sig, message) = signed(1).remove(0);
        // s ≥ ℓ: ℓ added to s.
        let mut bytes = sig.to_bytes();
        bytes[63] |= 0x80;
        let not_canonical = ed25519_dalek::Signature::from_bytes(&bytes);
        assert!(Prepared::new(&key, &not_canonical, &message).is_none());
        // A small-order nonce: the identity point.
        let mut bytes = sig.to_bytes();
        bytes[..32].copy_from_slice(&{
            let mut identity = [0u8; 32];
            identity[0] = 1;
            identity
        });
        let small = ed25519_dalek::Signature::from_bytes(&bytes);
        assert!(Prepared::new(&key, &small, &message).is_none());
        assert!(key.verify_strict(&message, &small).is_err());
        // A non-canonical y: p + 1, which decodes to y = 1 by reduction.
        let mut bytes = sig.to_bytes();
        let mut p_plus_one = [0xffu8; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        bytes[..32].copy_from_slice(&p_plus_one);
        assert!(!canonical_y(&p_plus_one));
        assert!(
            Prepared::new(&key, &ed25519_dalek::Signature::from_bytes(&bytes), &message).is_none()
        );
        // The largest canonical y is p − 1.
        let mut p_minus_one = p_plus_one;
        p_minus_one[0] = 0xec;
        assert!(canonical_y(&p_minus_one));
        // A good signature is batched.
        assert!(Prepared::new(&key, &sig, &message).is_some());
    }
}
