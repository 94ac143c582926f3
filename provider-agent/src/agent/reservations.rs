//! GPUs held for quotes that may still open a rental.
//!
//! A signed quote can open a rental on chain until its deadline, without asking the agent
//! again. Quoting the same free GPU to two renters would let both pay while only one can
//! run, so a quote reserves its GPUs until it is used or can no longer be used, and later
//! quotes only offer what is free after reservations.
//!
//! Asking for a quote costs nothing, so a reservation must not let anyone hold a machine
//! for free. Three bounds keep it cheap to lose: a quote is short-lived (the agent's
//! `--quote-validity-secs`, two minutes by default); each renter address and each
//! requesting peer holds at most one reservation, a newer quote releasing the older one;
//! and should a released or raced quote still be used, the agent refuses the rental with a
//! signed refusal that refunds the whole deposit (see `GpuEscrow.refuse`), so nobody pays
//! for it. `ARCHITECTURE.md` explains why requests are not signed.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, U256};

/// The GPUs one quote holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Renter the quote was signed for.
    pub renter: Address,
    /// The libp2p peer that asked for it, when known (not after a restart).
    pub peer: Option<String>,
    /// GPU UUIDs quoted.
    pub gpus: Vec<String>,
    /// The quote's deadline, unix seconds (chain time): no rental opens with it later.
    pub deadline: u64,
}

/// Reservations by quote nonce.
#[derive(Clone, Debug, Default)]
pub struct Reservations {
    by_nonce: BTreeMap<U256, Reservation>,
}

impl Reservations {
    /// GPUs some live reservation holds.
    pub fn reserved_gpus(&self) -> BTreeSet<&str> {
        self.by_nonce.values().flat_map(|r| r.gpus.iter().map(String::as_str)).collect()
    }

    /// How many reservations are held.
    pub fn len(&self) -> usize {
        self.by_nonce.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_nonce.is_empty()
    }

    /// Releases the reservation of the renter's, and of the peer's, earlier quote: each
    /// holds at most one. Returns the nonces released. Called before the free GPUs of a
    /// new quote are chosen, so that a renter asking again gets its own GPUs back.
    pub fn release_holder(&mut self, renter: Address, peer: Option<&str>) -> Vec<U256> {
        let released: Vec<U256> = self
            .by_nonce
            .iter()
            .filter(|(_, r)| r.renter == renter || (peer.is_some() && r.peer.as_deref() == peer))
            .map(|(nonce, _)| *nonce)
            .collect();
        for nonce in &released {
            self.by_nonce.remove(nonce);
        }
        released
    }

    /// Holds `reservation`'s GPUs for the quote with `nonce`.
    pub fn reserve(&mut self, nonce: U256, reservation: Reservation) {
        self.by_nonce.insert(nonce, reservation);
    }

    /// Ends the reservation of the quote with `nonce`: it opened a rental.
    pub fn release(&mut self, nonce: U256) -> Option<Reservation> {
        self.by_nonce.remove(&nonce)
    }

    /// Ends every reservation whose quote can no longer open a rental: its deadline lies
    /// before `observed`, a time up to which every block of the chain has been read (so a
    /// rental it opened would have been seen). Returns how many ended.
    pub fn expire(&mut self, observed: u64) -> usize {
        let before = self.by_nonce.len();
        self.by_nonce.retain(|_, r| r.deadline >= observed);
        before - self.by_nonce.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(renter: u8, peer: &str, gpus: &[&str], deadline: u64) -> Reservation {
        Reservation {
            renter: Address::repeat_byte(renter),
            peer: Some(peer.into()),
            gpus: gpus.iter().map(|g| g.to_string()).collect(),
            deadline,
        }
    }

    #[test]
    fn a_quote_holds_its_gpus_until_used_or_past_its_deadline() {
        let mut r = Reservations::default();
        r.reserve(U256::from(1), held(1, "p1", &["a"], 100));
        r.reserve(U256::from(2), held(2, "p2", &["b"], 200));
        assert_eq!(r.reserved_gpus(), BTreeSet::from(["a", "b"]));
        // Read up to the deadline itself: a block at that second could still use it.
        assert_eq!(r.expire(100), 0);
        assert_eq!(r.expire(101), 1);
        assert_eq!(r.reserved_gpus(), BTreeSet::from(["b"]));
        assert_eq!(r.release(U256::from(2)).map(|r| r.gpus), Some(vec!["b".to_string()]));
        assert!(r.is_empty());
    }

    #[test]
    fn each_renter_and_each_peer_holds_one_reservation() {
        let mut r = Reservations::default();
        r.reserve(U256::from(1), held(1, "p1", &["a"], 100));
        r.reserve(U256::from(2), held(2, "p2", &["b"], 100));
        // The same renter through another peer: its earlier quote is released.
        assert_eq!(r.release_holder(Address::repeat_byte(1), Some("p9")), vec![U256::from(1)]);
        // Another renter through the same peer: that peer's quote is released too.
        assert_eq!(r.release_holder(Address::repeat_byte(7), Some("p2")), vec![U256::from(2)]);
        assert!(r.is_empty());
        // A reservation loaded after a restart knows no peer and is released by renter only.
        r.reserve(U256::from(3), Reservation { peer: None, ..held(3, "", &["c"], 100) });
        assert!(r.release_holder(Address::repeat_byte(4), Some("p3")).is_empty());
        assert_eq!(r.len(), 1);
    }
}
