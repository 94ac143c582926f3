//! The node's matrix-product challenges of providers (`/gpuflow/challenge/1`, protocol and
//! formulas in `node/CHALLENGE.md`).
//!
//! Every [`ChallengeConfig::scan_interval`] the node walks its live offers and challenges,
//! one at a time, each provider it has not challenged within
//! [`ChallengeConfig::per_provider`], on the GPUs its offer lists. A rented GPU is never
//! among them (an agent withdraws rented GPUs from its offer, and refuses a challenge that
//! names one), so a challenge never disturbs a rental. Each answered challenge is checked,
//! signed by the node and stored; a provider that does not answer or refuses is only
//! logged: silence is the probes' business, and a refusal leaves the offer unproven, not
//! flagged.

use std::{collections::HashMap, time::Duration};

use alloy::primitives::B256;
use gpuflow_p2p::{Multiaddr, Network, NetworkError, PeerId};
use gpuflow_protocol::{
    Identity, Offer, SignedEnvelope,
    challenge::{
        Challenge, ChallengeRequest, ChallengeResponse, ChallengeResult,
        check::{CheckError, Verifier},
        verdict,
    },
    unix_now,
};

use crate::Store;

/// What the node asks of providers, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeConfig {
    /// Shortest time between two challenges of one provider; zero turns challenges off.
    pub per_provider: Duration,
    /// Pause between two walks over the live offers.
    pub scan_interval: Duration,
    /// Matrix size.
    pub n: u32,
    /// Products per GPU.
    pub rounds: u32,
    /// Rows opened.
    pub rows: usize,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        Self {
            per_provider: Duration::from_secs(3600),
            scan_interval: Duration::from_secs(60),
            n: 8192,
            rounds: 16,
            rows: 4,
        }
    }
}

/// Challenges providers for as long as the store and the network live.
pub(crate) async fn challenge_every(
    network: Network,
    store: Store,
    identity: Identity,
    config: ChallengeConfig,
) {
    let mut ticks = tokio::time::interval(config.scan_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When each provider was last challenged; filled from the store the first time a
    // provider comes up, so a restart does not challenge everyone again.
    let mut last: HashMap<PeerId, u64> = HashMap::new();
    loop {
        ticks.tick().await;
        for (peer, offer) in live_offers(&store).await {
            let since = match last.get(&peer) {
                Some(&at) => at,
                None => match store.latest_challenge(peer.to_string()).await {
                    Ok(result) => result.map_or(0, |r| r.issued_at),
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the last challenge");
                        continue;
                    }
                },
            };
            if unix_now() < since.saturating_add(config.per_provider.as_secs()) {
                last.insert(peer, since);
                continue;
            }
            last.insert(peer, unix_now());
            let Some(result) = challenge(&network, peer, &offer, &config).await else { continue };
            tracing::info!(
                %peer,
                outcome = result.outcome.as_str(),
                proven_tflops = result.proven_tflops,
                reason = result.reason,
                "challenged a provider"
            );
            let envelope = SignedEnvelope::seal(&identity, &result);
            if let Err(error) = store.record_challenge(result, envelope).await {
                tracing::warn!(%error, "cannot record a challenge");
            }
        }
    }
}

/// The live offers whose providers can be dialed, from the store.
async fn live_offers(store: &Store) -> Vec<(PeerId, Offer)> {
    let mut offers = Vec::new();
    let mut after = None;
    loop {
        let page = match store.sync_page(after, gpuflow_protocol::MAX_SYNC_PAGE, unix_now()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "cannot list offers to challenge");
                return offers;
            }
        };
        for envelope in page.offers {
            // Stored offers were checked when they came; one that no longer opens is skipped.
            if let Ok(verified) = envelope.open::<Offer>()
                && !verified.body.listen_addrs.is_empty()
            {
                offers.push((verified.signer, verified.body));
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return offers,
        }
    }
}

/// The model an offer claims (every GPU of an offer is the same model) and what one of
/// them computes, per the table.
fn claimed(offer: &Offer) -> (String, Option<f64>) {
    let name = offer.gpus.first().map(|g| g.name.clone()).unwrap_or_default();
    let expected = verdict::expected_tflops(&name);
    (name, expected)
}

/// Runs one challenge of `peer` on the GPUs of `offer`; `None` when it went unanswered or
/// was refused.
pub(crate) async fn challenge(
    network: &Network,
    peer: PeerId,
    offer: &Offer,
    config: &ChallengeConfig,
) -> Option<ChallengeResult> {
    let addrs: Vec<Multiaddr> = offer.listen_addrs.iter().filter_map(|a| a.parse().ok()).collect();
    let challenge = Challenge {
        seed: B256::from(rand::random::<[u8; 32]>()),
        n: config.n,
        rounds: config.rounds,
        gpus: offer.gpus.iter().map(|g| g.uuid.clone()).collect(),
    };
    let mut verifier =
        Verifier::new(challenge.clone(), peer, B256::from(rand::random::<[u8; 32]>()), config.rows);
    let issued_at = unix_now();
    let sent = tokio::time::Instant::now();
    let answer =
        network.challenge(peer, addrs.clone(), ChallengeRequest::Challenge(challenge)).await;
    let elapsed_ms = sent.elapsed().as_millis() as u64;
    let envelope = match answer {
        Ok(ChallengeResponse::Commitment { envelope }) => envelope,
        Ok(ChallengeResponse::Refused { reason }) => {
            tracing::info!(%peer, reason, "a provider refused a challenge");
            return None;
        }
        Ok(ChallengeResponse::Opening { .. }) => {
            let error = CheckError::Malformed("an opening where the commitment was due".into());
            return Some(conclude(&verifier, Err(error), issued_at, elapsed_ms, offer));
        }
        Err(error) => {
            tracing::info!(%peer, %error, "a provider did not answer a challenge");
            return None;
        }
    };
    let checked = match verifier.on_commitment(envelope) {
        Ok(rows) => {
            let seed = verifier.challenge().seed;
            let opened =
                network.challenge(peer, addrs, ChallengeRequest::Open { seed, rows }).await;
            check_opening(&verifier, opened).await
        }
        Err(error) => Err(error),
    };
    Some(conclude(&verifier, checked, issued_at, elapsed_ms, offer))
}

/// Checks the answer to the opening, off the async runtime (`O(n²)` per product opened).
async fn check_opening(
    verifier: &Verifier,
    opened: Result<ChallengeResponse, NetworkError>,
) -> Result<(), CheckError> {
    let envelope = match opened {
        Ok(ChallengeResponse::Opening { envelope }) => envelope,
        Ok(ChallengeResponse::Refused { reason }) => {
            return Err(CheckError::Malformed(format!(
                "committed, then refused to open: {reason}"
            )));
        }
        Ok(ChallengeResponse::Commitment { .. }) => {
            return Err(CheckError::Malformed("a commitment where the opening was due".into()));
        }
        Err(error) => {
            return Err(CheckError::Malformed(format!("committed, then did not open: {error}")));
        }
    };
    let verifier = verifier.clone();
    tokio::task::spawn_blocking(move || verifier.on_opening(envelope))
        .await
        .unwrap_or_else(|e| Err(CheckError::Malformed(format!("the check failed: {e}"))))
}

fn conclude(
    verifier: &Verifier,
    checked: Result<(), CheckError>,
    issued_at: u64,
    elapsed_ms: u64,
    offer: &Offer,
) -> ChallengeResult {
    let (gpu_name, expected) = claimed(offer);
    verifier.conclude(checked, issued_at, elapsed_ms, &gpu_name, expected)
}
