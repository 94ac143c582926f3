//! The node's attester key and the downtime attestations it signs.
//!
//! The rental's machine is the one its `offerId` names (see [`RentalMachine`]); a rental
//! naming no machine this node knows falls back to its payout address, and when several
//! machines share it the node refuses rather than guess, since the healthy one would hide
//! the rented one's downtime.
//!
//! An attestation covers the part of a rental not covered by an earlier credit nor already
//! paid, from `max(start, end of the last credited window, first unpaid second)` to the
//! rental's end or, while it runs, the start of the current bucket (every earlier bucket is
//! final). The credited window and the paid seconds are read from the escrow itself when
//! the node has a chain to ask, as its own index waits for confirmations: a credit or a
//! withdrawal in the latest blocks must already count. Its downtime is the model's: the
//! rented seconds of that window in buckets that were not up, so downtime in seconds the
//! provider was already paid for is never refunded out of later seconds it was up.

use std::path::Path;

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use gpuflow_cli_util::UnlockError;
use gpuflow_escrow::{DowntimeTerms, Escrow, sign_downtime};
use gpuflow_protocol::api::{self, ModelParams};

use crate::{ChainConfig, Store, StoreError, store::RentalMachine};

/// Attestations stay valid until the end of the hour after the current one: at least an
/// hour, and the same deadline on every node asked within the same hour, so that several
/// attesters can sign identical terms.
pub const ATTESTATION_TTL_SECS: u64 = 3_600;

fn deadline(now: u64) -> u64 {
    (now / ATTESTATION_TTL_SECS + 2) * ATTESTATION_TTL_SECS
}

/// Why no attestation could be made.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The attester keystore could not be opened.
    #[error(transparent)]
    Wallet(#[from] UnlockError),
    /// The chain id could not be read.
    #[error("attester: {0}")]
    Escrow(#[from] gpuflow_escrow::EscrowError),
    /// No rental with this id was indexed.
    #[error("no rental {0} is indexed on this node (yet); check the id, or wait for its block")]
    UnknownRental(u64),
    /// No provider known here advertised the rental's payout address.
    #[error(
        "no provider with payout address {0} is known to this node, so it has no uptime \
         evidence for this rental; ask a node that indexed the provider's offers"
    )]
    UnknownProvider(String),
    /// The rental names no machine known here, and several share its payout address.
    #[error(
        "rental {rental_id} does not name a machine this node knows, and {machines} machines \
         share its payout address {payout}; this node cannot tell which one was rented, so \
         it signs nothing for it"
    )]
    AmbiguousProvider {
        /// The rental.
        rental_id: u64,
        /// Its payout address.
        payout: String,
        /// How many known machines have that payout address.
        machines: usize,
    },
    /// Nothing of the rental is left to attest.
    #[error(
        "rental {rental_id} has no uncredited time that has ended yet ({from}..{to}); \
         ask again later"
    )]
    NothingToAttest {
        /// The rental.
        rental_id: u64,
        /// Start of what could be attested.
        from: u64,
        /// End of it.
        to: u64,
    },
    /// The window asked for ends after this node's evidence or the rental.
    #[error(
        "this node can attest rental {rental_id} only up to {latest} (its latest final uptime \
         bucket, or the rental's end), not up to {to}; ask with an earlier `to`, or later"
    )]
    BeyondEvidence {
        /// The rental.
        rental_id: u64,
        /// The end asked for.
        to: u64,
        /// The latest end this node can attest now.
        latest: u64,
    },
    /// The provider was up during the whole window.
    #[error(
        "this node measured no downtime in rental {rental_id} between {from} and {to}: the \
         provider was up, so there is nothing to refund"
    )]
    NoDowntime {
        /// The rental.
        rental_id: u64,
        /// Window start.
        from: u64,
        /// Window end.
        to: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Signs downtime attestations for one escrow.
#[derive(Clone, Debug)]
pub struct Attester {
    signer: PrivateKeySigner,
    domain: Eip712Domain,
    /// The escrow, read for the latest credits and payouts of a rental.
    escrow: Option<Escrow>,
}

impl Attester {
    /// The attester key from an encrypted keystore (password in `GPUFLOW_PASSWORD`), signing
    /// for the escrow of `chain` (whose chain id is read from its RPC endpoint).
    pub async fn load(keystore: &Path, chain: &ChainConfig) -> Result<Self, AttestError> {
        let signer = gpuflow_cli_util::wallet::unlock(
            keystore,
            "attester key",
            gpuflow_escrow::PASSWORD_ENV,
            "attester_keystore",
        )?;
        let provider = gpuflow_escrow::connect(&chain.rpc_url, None)?;
        let chain_id = alloy::providers::Provider::get_chain_id(&provider).await.map_err(|e| {
            gpuflow_escrow::EscrowError::Rpc {
                action: "reading the chain id",
                reason: e.to_string(),
            }
        })?;
        let escrow = Escrow::new(provider, chain.escrow).await?;
        let domain = gpuflow_escrow::domain(chain_id, chain.escrow);
        Ok(Self { escrow: Some(escrow), ..Self::new(signer, domain) })
    }

    /// An attester signing with `signer` in `domain`, from the node's index alone.
    pub fn new(signer: PrivateKeySigner, domain: Eip712Domain) -> Self {
        Self { signer, domain, escrow: None }
    }

    /// The address the escrow must have registered.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The attestation of the downtime this node measured in rental `rental_id` at `now`,
    /// aligned on `ask` when given (see [`downtime_terms`]).
    pub async fn attest(
        &self,
        store: &Store,
        params: ModelParams,
        rental_id: u64,
        now: u64,
        ask: Option<api::DowntimeRequest>,
    ) -> Result<api::DowntimeAttestation, AttestError> {
        let settled = match &self.escrow {
            Some(escrow) => Some(settled_until(&escrow.rental(rental_id).await?)),
            None => None,
        };
        let terms = downtime_terms(store, params, rental_id, now, settled, ask).await?;
        let signature = sign_downtime(&self.signer, &terms, &self.domain)?;
        Ok(api::DowntimeAttestation {
            rental_id,
            from: terms.from,
            to: terms.to,
            down_seconds: terms.down_seconds,
            deadline: terms.deadline,
            attester: format!("{:#x}", self.address()),
            signature: alloy::hex::encode_prefixed(signature),
        })
    }
}

/// The first second of a rental the escrow could still credit: after the last credited
/// window and after every second paid to the provider or credited (the contract's own
/// bound).
pub fn settled_until(rental: &gpuflow_escrow::Rental) -> u64 {
    let start = rental.start.to::<u64>();
    let rate = rental.ratePerSecond;
    let paid = match rate {
        0 => 0,
        rate => (rental.withdrawn / U256::from(rate)).saturating_to::<u64>(),
    };
    let credited = rental.credited.to::<u64>();
    start.saturating_add(paid).saturating_add(credited).max(rental.creditedUntil.to::<u64>())
}

/// What this node would attest for rental `rental_id` at `now`; `settled` is the first
/// second the escrow could still credit ([`settled_until`]), when read from the chain.
///
/// Without `ask` the window ends at the rental's end or this node's latest final bucket,
/// whichever is first, and counts every down second this node measured in it. Nodes
/// differ in both, so a claim needing several attesters asks each to align: the window
/// ends at `ask.to` (refused when this node could not attest that far), and the downtime is
/// at most `ask.down_seconds`, never more than this node measured.
pub async fn downtime_terms(
    store: &Store,
    params: ModelParams,
    rental_id: u64,
    now: u64,
    settled: Option<u64>,
    ask: Option<api::DowntimeRequest>,
) -> Result<DowntimeTerms, AttestError> {
    let rental = store.rental(rental_id).await?.ok_or(AttestError::UnknownRental(rental_id))?;
    let payout = format!("{:#x}", rental.provider);
    let credited_until = store.credited_until(rental_id).await?;
    let peer = match store.rental_machine(rental_id).await? {
        Some(RentalMachine::Known(peer)) => peer,
        Some(RentalMachine::Ambiguous(peers)) => {
            return Err(AttestError::AmbiguousProvider {
                rental_id,
                payout,
                machines: peers.len(),
            });
        }
        Some(RentalMachine::Unknown) | None => return Err(AttestError::UnknownProvider(payout)),
    };
    let (window, _) = store
        .evidence(params, peer, now)
        .await?
        .ok_or_else(|| AttestError::UnknownProvider(payout))?;
    let end = rental.stopped_at.unwrap_or(rental.end);
    let from =
        rental.start.max(credited_until.unwrap_or(0)).max(settled.unwrap_or(0)).max(window.from);
    let latest = end.min(window.to());
    let to = match ask {
        Some(ask) if ask.to > latest => {
            return Err(AttestError::BeyondEvidence { rental_id, to: ask.to, latest });
        }
        Some(ask) => ask.to,
        None => latest,
    };
    if from >= to {
        return Err(AttestError::NothingToAttest { rental_id, from, to });
    }
    let measured = window.down_seconds(from, to);
    let down_seconds =
        ask.and_then(|ask| ask.down_seconds).map_or(measured, |at_most| at_most.min(measured));
    if down_seconds == 0 {
        return Err(AttestError::NoDowntime { rental_id, from, to });
    }
    Ok(DowntimeTerms { rental_id, from, to, down_seconds, deadline: deadline(now) })
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, Uint, address};
    use gpuflow_protocol::{QuoteTerms, unix_now};

    use super::*;
    use crate::{
        store::{ChainUpdate, LoggedEvent, RentalEvent},
        testing::{self, Provider},
    };

    #[tokio::test]
    async fn a_rental_is_measured_on_the_machine_its_offer_id_names() {
        let (store, _dir) = testing::store();
        let params = crate::reliability::params(60, 60, 30);
        // Two machines under one payout address: the rented one falls silent for ten
        // minutes mid-rental, the other stays up and is heard last.
        let rented = Provider::new();
        let other = Provider::with_payout(rented.payout.clone());
        let now = unix_now();
        let first = now - 3_700;
        store.mark_alive(first - 60, now).await.unwrap();
        for machine in [&rented, &other] {
            store.upsert_offer(machine.offer(|_| {}), first).await.unwrap();
        }
        let silent = (now - 2_400)..(now - 1_800);
        for (seq, at) in (first..now - 300).step_by(15).enumerate() {
            let seq = seq as u64 + 1;
            if !silent.contains(&at) {
                store.upsert_heartbeat(rented.heartbeat(seq), at).await.unwrap();
            }
            store.upsert_heartbeat(other.heartbeat(seq), at + 5).await.unwrap();
        }
        let (start, end) = (now - 3_600, now - 600);
        let opened = |offer_id| RentalEvent::Opened {
            renter: Address::repeat_byte(1),
            provider: rented.payout.address(),
            offer_id,
            rate_per_second: U256::from(10),
            start,
            end,
            deposit: U256::from(10 * (end - start)),
        };
        let events = vec![
            LoggedEvent {
                block: 1,
                log_index: 0,
                rental_id: 1,
                event: opened(QuoteTerms::machine(rented.id(), 1)),
            },
            // A rental naming no machine: either of the two may have served it.
            LoggedEvent { block: 1, log_index: 1, rental_id: 2, event: opened(B256::ZERO) },
        ];
        store
            .apply_chain(ChainUpdate {
                escrow: format!("{:#x}", Address::repeat_byte(0xee)),
                rollback_above: None,
                blocks: vec![(1, format!("{:#x}", B256::repeat_byte(1)))],
                events,
                next_block: 2,
            })
            .await
            .unwrap();

        let terms = downtime_terms(&store, params, 1, now, None, None).await.unwrap();
        assert_eq!((terms.from, terms.to), (start, end));
        // Ten silent minutes, less up to the grace period and a bucket at each edge.
        assert!((420..=600).contains(&terms.down_seconds), "{terms:?}");
        let refused = downtime_terms(&store, params, 2, now, None, None).await.unwrap_err();
        assert!(
            matches!(refused, AttestError::AmbiguousProvider { rental_id: 2, machines: 2, .. }),
            "{refused}"
        );

        // The rented time joins the rented machine only; the rental naming none, both.
        let rentals_of = |provider: &Provider| {
            let peer = provider.identity.peer_id().to_string();
            let store = store.clone();
            async move {
                let (_, facts) = store.evidence(params, peer, now).await.unwrap().unwrap();
                facts.rentals.iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(rentals_of(&rented).await, [1, 2]);
        assert_eq!(rentals_of(&other).await, [2]);
        store.rescore(params, now).await.unwrap();
        let scored = |provider: &Provider| {
            let peer = provider.identity.peer_id();
            let store = store.clone();
            async move { store.provider(peer, now).await.unwrap().unwrap().offer.unwrap() }
        };
        let (rented, other) = (scored(&rented).await, scored(&other).await);
        assert_eq!((rented.rentals, other.rentals), (2, 1));
        assert!(rented.reliability < other.reliability, "{rented:?} {other:?}");
    }

    #[test]
    fn the_first_creditable_second_follows_payouts_credits_and_credited_windows() {
        let mut rental = gpuflow_escrow::Rental {
            renter: address!("0x00000000000000000000000000000000000000aa"),
            provider: address!("0x00000000000000000000000000000000000000bb"),
            start: Uint::from(1_000),
            end: Uint::from(5_000),
            maxEnd: Uint::from(9_000),
            stopped: false,
            ratePerSecond: 7,
            feeBps: 1_000,
            withdrawn: U256::ZERO,
            credited: Uint::ZERO,
            creditedUntil: Uint::ZERO,
        };
        assert_eq!(settled_until(&rental), 1_000);
        // 300 paid seconds and 40 credited ones come first, whatever window they were in.
        rental.withdrawn = U256::from(7 * 300);
        rental.credited = Uint::from(40);
        assert_eq!(settled_until(&rental), 1_340);
        // A credited window ending later bounds it too.
        rental.creditedUntil = Uint::from(2_000);
        assert_eq!(settled_until(&rental), 2_000);
    }
}
