//! Quote nonces that keep opens cheap: each nonce is a 32-bit counter, which the store keeps
//! across restarts, in a range of this machine's own (chosen by 24 bits of its offer id).
//!
//! The escrow records used nonces in a bitmap of 224 per storage word (`nonce / 224`), and
//! setting a bit in a word still at zero costs about 17k gas more than in a word already
//! written. Counting up from where the last run stopped fills each word before starting the
//! next; each machine's range starts on a word, so its first 224 quotes share one. A nonce
//! stays under 2^64 (8 bytes of calldata), and the ranges keep the machines that share one
//! payout address out of each other's nonces (two of a hundred such machines pick the same
//! range with a chance of about 3 in 10,000; the escrow then refuses the second use of a
//! nonce, and nothing is paid).

use alloy::primitives::{Address, U256};
use gpuflow_protocol::OfferId;

use crate::store::{Store, StoreError};

/// Nonces per word of the escrow's bitmap (`NONCES_PER_WORD` in GpuEscrow.sol).
pub(crate) const NONCES_PER_WORD: u64 = 224;
/// Bits of the counter.
pub(crate) const COUNTER_BITS: usize = 32;

/// The size of one machine's range: a whole number of words, more than any counter.
fn range() -> U256 {
    U256::from(NONCES_PER_WORD) << COUNTER_BITS
}

/// The nonce of `counter` on the machine `offer_id`.
pub(crate) fn nonce(offer_id: OfferId, counter: u64) -> U256 {
    let [a, b, c, ..] = offer_id.to_bytes();
    let tag = u32::from_be_bytes([0, a, b, c]);
    U256::from(tag) * range() + U256::from(counter & ((1 << COUNTER_BITS) - 1))
}

/// The counter a nonce of this layout carries.
pub(crate) fn counter_of(nonce: U256) -> u64 {
    (nonce % range()).saturating_to::<u64>()
}

/// The counter the first quote of this run uses: where the store's last quote left off;
/// with no quote in the store, 0 unless the chain shows that a lost store of this machine
/// already used it, and then the time in seconds (beyond any count a store reaches).
pub(crate) async fn first_counter(
    store: &Store,
    escrow: &gpuflow_escrow::Escrow,
    payout: Address,
    offer_id: OfferId,
    now: u64,
) -> Result<u64, StoreError> {
    if let Some(next) = store.next_quote_counter().await? {
        return Ok(next);
    }
    match escrow.is_nonce_used(payout, nonce(offer_id, 0)).await {
        Ok(false) => Ok(0),
        Ok(true) => Ok(now),
        Err(error) => {
            tracing::warn!(%error, "cannot read the escrow's nonces; quote nonces start from the time");
            Ok(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machines_nonces_start_on_a_word_and_count_within_its_own_range() {
        let id: OfferId = "0123456789abcdef".parse().unwrap();
        let first = nonce(id, 0);
        let word = |n: U256| n / U256::from(NONCES_PER_WORD);
        assert_eq!(first % U256::from(NONCES_PER_WORD), U256::ZERO, "a word's first bit");
        assert_eq!(counter_of(nonce(id, 223)), 223);
        // 224 quotes share one word of the escrow's bitmap, the next starts the next word.
        assert_eq!(word(nonce(id, 223)), word(first));
        assert_eq!(word(nonce(id, 224)), word(first) + U256::from(1));
        // Another machine of the same payout address never meets these nonces.
        let other: OfferId = "0124456789abcdef".parse().unwrap();
        let last = nonce(id, (1 << COUNTER_BITS) - 1);
        assert!(nonce(other, 0) > last || nonce(other, (1 << COUNTER_BITS) - 1) < first);
        // At most 8 bytes of calldata are not zero.
        assert!(
            nonce(OfferId::from_bytes([0xff; 8]), (1 << COUNTER_BITS) - 1) < U256::from(1) << 64
        );
    }
}
