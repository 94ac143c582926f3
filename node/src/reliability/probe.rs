//! The node's own probes: providers renting out their machine, and in turn every listed
//! provider, are asked for a status over `/gpuflow/rental/1` once a round. Any answer counts as heard; silence (a failed dial or
//! a timeout) marks the bucket failed, which outweighs heartbeats: a provider that gossips
//! but cannot be reached cannot serve a rental.

use std::time::Duration;

use futures::StreamExt;
use gpuflow_p2p::{Multiaddr, Network, PeerId};
use gpuflow_protocol::{RentalRequest, unix_now};

use crate::Store;

/// Probes in flight at once.
const CONCURRENCY: usize = 16;
/// Most providers probed in one round: rented ones first, then the listed ones in turn, so
/// a large index is probed round-robin instead of all at once.
pub const MAX_PER_ROUND: usize = 1024;

/// Probes providers every `interval`, for as long as the store and the network live.
pub async fn probe_every(network: Network, store: Store, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut after = String::new();
    loop {
        ticks.tick().await;
        let targets = match store.probe_targets(unix_now(), after.clone(), MAX_PER_ROUND).await {
            Ok(targets) => targets,
            Err(error) => {
                tracing::warn!(%error, "cannot list providers to probe");
                continue;
            }
        };
        // Start again from the first listed provider once the last one was probed.
        after = match targets.len() < MAX_PER_ROUND {
            true => String::new(),
            false => targets.last().map(|(peer, _)| peer.clone()).unwrap_or_default(),
        };
        futures::stream::iter(targets)
            .for_each_concurrent(CONCURRENCY, |(peer_id, addrs)| {
                let (network, store) = (network.clone(), store.clone());
                async move { probe(&network, &store, peer_id, addrs).await }
            })
            .await;
    }
}

async fn probe(network: &Network, store: &Store, peer_id: String, addrs: Vec<String>) {
    let Ok(peer) = peer_id.parse::<PeerId>() else { return };
    let addrs: Vec<Multiaddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
    // Rental 0 never exists: the provider answers that it has not seen it.
    let sent = unix_now();
    let answered = network.request(peer, addrs, RentalRequest::Status { rental_id: 0 }).await;
    // An answer shows the provider up when it came; silence, that it was not up when asked
    // (a hung machine only times out much later).
    let at = if answered.is_ok() { unix_now() } else { sent };
    if let Err(error) = &answered {
        tracing::debug!(%peer, %error, "probe unanswered");
    }
    if let Err(error) = store.record_probe(peer_id, at, answered.is_ok()).await {
        tracing::warn!(%error, "cannot record a probe");
    }
}
