//! The node's attester key and the downtime attestations it signs.
//!
//! An attestation covers the part of a rental not covered by an earlier credit, from
//! `max(start, end of the last credited window)` to the rental's end or, while it runs,
//! the start of the current bucket (every earlier bucket is final). Its downtime is the
//! model's: the rented seconds of that window in buckets that were not up.

use std::path::Path;

use alloy::{primitives::Address, signers::local::PrivateKeySigner, sol_types::Eip712Domain};
use gpuflow_escrow::{DowntimeTerms, WalletError, sign_downtime};
use gpuflow_protocol::api::{self, ModelParams};

use crate::{ChainConfig, Store, StoreError};

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
    #[error("attester key: {0}")]
    Wallet(#[from] WalletError),
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
}

impl Attester {
    /// The attester key from an encrypted keystore (password in `GPUFLOW_PASSWORD`), signing
    /// for the escrow of `chain` (whose chain id is read from its RPC endpoint).
    pub async fn load(keystore: &Path, chain: &ChainConfig) -> Result<Self, AttestError> {
        let signer = gpuflow_escrow::load_signer(Some(keystore), None)?;
        let provider = gpuflow_escrow::connect(&chain.rpc_url, None)?;
        let chain_id = alloy::providers::Provider::get_chain_id(&provider).await.map_err(|e| {
            gpuflow_escrow::EscrowError::Rpc {
                action: "reading the chain id",
                reason: e.to_string(),
            }
        })?;
        Ok(Self::new(signer, gpuflow_escrow::domain(chain_id, chain.escrow)))
    }

    /// An attester signing with `signer` in `domain`.
    pub fn new(signer: PrivateKeySigner, domain: Eip712Domain) -> Self {
        Self { signer, domain }
    }

    /// The address the escrow must have registered.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The attestation of the downtime this node measured in rental `rental_id` at `now`.
    pub async fn attest(
        &self,
        store: &Store,
        params: ModelParams,
        rental_id: u64,
        now: u64,
    ) -> Result<api::DowntimeAttestation, AttestError> {
        let terms = downtime_terms(store, params, rental_id, now).await?;
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

/// What this node would attest for rental `rental_id` at `now`.
pub async fn downtime_terms(
    store: &Store,
    params: ModelParams,
    rental_id: u64,
    now: u64,
) -> Result<DowntimeTerms, AttestError> {
    let rental = store.rental(rental_id).await?.ok_or(AttestError::UnknownRental(rental_id))?;
    let payout = format!("{:#x}", rental.provider);
    let credited_until = store.credited_until(rental_id).await?;
    let peer = store
        .peer_of_payout(payout.clone())
        .await?
        .ok_or_else(|| AttestError::UnknownProvider(payout.clone()))?;
    let (window, _) = store
        .evidence(params, peer, now)
        .await?
        .ok_or_else(|| AttestError::UnknownProvider(payout))?;
    let end = rental.stopped_at.unwrap_or(rental.end);
    let from = rental.start.max(credited_until.unwrap_or(0)).max(window.from);
    let to = end.min(window.to());
    if from >= to {
        return Err(AttestError::NothingToAttest { rental_id, from, to });
    }
    let down_seconds = window.down_seconds(from, to);
    if down_seconds == 0 {
        return Err(AttestError::NoDowntime { rental_id, from, to });
    }
    Ok(DowntimeTerms { rental_id, from, to, down_seconds, deadline: deadline(now) })
}
