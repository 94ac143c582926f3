//! The node's own probes: providers renting out their machine, and in turn every listed
//! provider, are asked for a status over `/gpuflow/rental/1` once a round. Any answer
//! counts as heard; silence (a failed dial or a timeout), twice in a row [`RETRY_DELAY`]
//! apart, marks the bucket failed, which outweighs heartbeats: a provider that gossips but
//! cannot be reached cannot serve a rental.
//!
//! A round in which most providers stayed silent says more about the node's own
//! connectivity than about theirs, so none of its failures are recorded (see
//! [`to_record`]); its answers still are.

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
/// Pause before asking a silent provider again: long enough for a lost packet or a
/// restarting listener, short enough to stay in the same bucket most of the time.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Fewest probes in a round for its failures to say anything about the node itself.
pub const MIN_SUSPECT_ROUND: usize = 3;

/// The outcome of probing one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The provider.
    pub peer_id: String,
    /// When it answered, or when the first unanswered probe was sent.
    pub at: u64,
    /// Whether it answered the probe or its retry.
    pub answered: bool,
}

/// What a round records: every outcome, unless the probes of at least
/// [`MIN_SUSPECT_ROUND`] providers mostly failed; then only the answers, and how many
/// failures were left out.
pub fn to_record(outcomes: Vec<Outcome>) -> (Vec<Outcome>, usize) {
    let failed = outcomes.iter().filter(|o| !o.answered).count();
    if outcomes.len() < MIN_SUSPECT_ROUND || failed * 2 <= outcomes.len() {
        return (outcomes, 0);
    }
    (outcomes.into_iter().filter(|o| o.answered).collect(), failed)
}

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
        let probed = targets.len();
        let outcomes: Vec<Outcome> = futures::stream::iter(targets)
            .map(|(peer_id, addrs)| {
                let network = network.clone();
                async move { probe(&network, peer_id, addrs).await }
            })
            .buffer_unordered(CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        let (outcomes, ignored) = to_record(outcomes);
        if ignored > 0 {
            tracing::warn!(
                probed,
                failed = ignored,
                "most probes of this round failed: this node's own connectivity is suspect, \
                 so none of the round's failures are recorded"
            );
        }
        for Outcome { peer_id, at, answered } in outcomes {
            if let Err(error) = store.record_probe(peer_id, at, answered).await {
                tracing::warn!(%error, "cannot record a probe");
            }
        }
    }
}

/// Asks `peer_id` for a status, once more after [`RETRY_DELAY`] if it stays silent; `None`
/// for a peer id that does not parse.
async fn probe(network: &Network, peer_id: String, addrs: Vec<String>) -> Option<Outcome> {
    let peer = peer_id.parse::<PeerId>().ok()?;
    let addrs: Vec<Multiaddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
    // Rental 0 never exists: the provider answers that it has not seen it.
    let ask = || network.request(peer, addrs.clone(), RentalRequest::Status { rental_id: 0 });
    let sent = unix_now();
    let mut answered = ask().await;
    if let Err(error) = &answered {
        tracing::debug!(%peer, %error, "probe unanswered; asking again");
        tokio::time::sleep(RETRY_DELAY).await;
        answered = ask().await;
    }
    // An answer shows the provider up when it came; silence, that it was not up when first
    // asked (a hung machine only times out much later).
    let at = if answered.is_ok() { unix_now() } else { sent };
    if let Err(error) = &answered {
        tracing::debug!(%peer, %error, "probe unanswered twice");
    }
    Some(Outcome { peer_id, at, answered: answered.is_ok() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(answers: &[bool]) -> Vec<Outcome> {
        answers
            .iter()
            .enumerate()
            .map(|(i, &answered)| Outcome { peer_id: format!("p{i}"), at: 100, answered })
            .collect()
    }

    #[test]
    fn a_round_that_mostly_failed_records_its_answers_only() {
        let mostly_failed = round(&[false, true, false, false]);
        let (kept, ignored) = to_record(mostly_failed.clone());
        assert_eq!(ignored, 3);
        assert_eq!(kept, [mostly_failed[1].clone()]);
        // Every probe failed: nothing at all is recorded.
        assert_eq!(to_record(round(&[false; 5])), (vec![], 5));
    }

    #[test]
    fn failures_count_when_at_most_half_failed_or_the_round_is_small() {
        for answers in [
            &[false, false, true, true][..], // exactly half
            &[false, true, true],
            &[false, false], // too few providers to suspect the node
            &[false],
            &[],
        ] {
            let outcomes = round(answers);
            assert_eq!(to_record(outcomes.clone()), (outcomes, 0), "{answers:?}");
        }
    }
}
