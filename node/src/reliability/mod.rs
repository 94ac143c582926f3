//! Reliability: uptime evidence turned into scores anyone can recompute, and downtime
//! attestations the escrow pays.
//!
//! * `model.rs`: the scoring model, pure functions of the evidence (see `RELIABILITY.md`).
//! * `probe.rs`: the node's own probes of providers over `/gpuflow/rental/1`.
//! * `attest.rs`: the attester key and the EIP-712 `Downtime` attestations it signs.
//!
//! Heartbeats become evidence in the store's writer (`store/uptime.rs`), counted only
//! while the node itself was up ([`mark_alive_every`] records that); the scores are
//! recomputed for every provider by [`rescore_every`] and stored beside each provider, so
//! that search can filter and sort on them.

pub mod attest;
pub mod model;
pub mod probe;

use std::time::Duration;

use gpuflow_protocol::{api::ModelParams, unix_now};

use crate::Store;

pub use attest::{AttestError, Attester};

/// Weight of the prior, in rented seconds: one day.
pub const PRIOR_WEIGHT_SECS: u64 = 86_400;

/// The model parameters a node scores with.
pub fn params(bucket_secs: u64, grace_secs: u64, window_days: u64) -> ModelParams {
    ModelParams {
        bucket_secs,
        grace_buckets: grace_secs.div_ceil(bucket_secs),
        window_days,
        prior: gpuflow_protocol::api::RELIABILITY_PRIOR,
        prior_weight_secs: PRIOR_WEIGHT_SECS,
    }
}

/// How often a running node marks itself alive, for buckets `bucket_secs` wide: after a
/// crash, at most this much of the time it was still up counts as its own outage.
pub fn alive_interval(bucket_secs: u64) -> Duration {
    Duration::from_secs(bucket_secs.clamp(1, 10))
}

/// Marks the node run started at `started_at` alive every `interval` (see
/// [`Store::mark_alive`]), for as long as the store lives.
pub async fn mark_alive_every(store: Store, started_at: u64, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = store.mark_alive(started_at, unix_now()).await {
            tracing::warn!(%error, "cannot record that this node is up");
        }
    }
}

/// Recomputes every provider's scores every `interval`, for as long as the store lives.
pub async fn rescore_every(store: Store, params: ModelParams, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = std::time::Instant::now();
        match store.rescore(params, unix_now()).await {
            Ok(scored) => tracing::debug!(scored, elapsed = ?started.elapsed(), "scores updated"),
            Err(error) => tracing::warn!(%error, "cannot update the scores"),
        }
    }
}
