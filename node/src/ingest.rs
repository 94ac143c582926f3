//! Everything that reaches the index from the network passes here: gossiped offers and
//! heartbeats, and offers fetched from other nodes with `/gpuflow/sync/1`.
//!
//! A gossiped message is rate limited per relaying peer, checked (size, version, signature,
//! body rules, then time), stored, and only then reported to gossipsub: `Accept` (forward it)
//! goes out after the commit, so an accepted message survives a crash of this node.
//! Intrinsically invalid messages are rejected, which costs the relaying peer its gossipsub
//! score; messages that fail only for local reasons (stale, expired in transit, rate
//! limited) are ignored without penalty, since an honest relay can send those.
//!
//! Checks and stores are pipelined: the messages that are ready are taken together and
//! checked on every core at once (signatures are the bulk of the work), then queued to the
//! store in arrival order; the loop keeps reading events while they wait for their commit,
//! which lets the writer batch them.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::FuturesUnordered};
use gpuflow_p2p::{Acceptance, MessageId, Network, NetworkEvent, PeerId, ResponseChannel};
use gpuflow_protocol::{
    Heartbeat, MAX_SYNC_PAGE, Offer, OfferId, ProtocolError, SignedEnvelope, SyncRequest,
    SyncResponse, Verified, unix_now,
};
use tokio::sync::mpsc;

use crate::{
    HeartbeatUpsert, Store, StoreError, Upsert,
    config::RateLimit,
    metrics::{Metrics, Topic},
};

/// Messages signed further ahead than this are ignored: the signer's clock is wrong.
pub const MAX_CLOCK_SKEW: u64 = 60;
/// Heartbeats older than this are ignored: they say nothing about the provider now.
pub const MAX_HEARTBEAT_AGE: u64 = 120;
/// How often expired offers are pruned and idle rate-limit buckets forgotten.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// Most sync pages taken from one peer per connection (64 offers each): 4,194,304 offers,
/// four times the million a node is sized for (BENCHMARKS.md, *A million offers*).
const MAX_SYNC_PAGES: usize = 65_536;
/// Most ready events taken together; their gossiped messages are checked on every core,
/// each core's share in one signature batch (larger batches verify faster per signature).
pub const CHECK_CHUNK: usize = 1024;

/// Why a message is not stored: the verdict for gossipsub and the metric's reason label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) acceptance: Acceptance,
    pub(crate) reason: &'static str,
}

impl Refusal {
    fn reject(reason: &'static str) -> Self {
        Self { acceptance: Acceptance::Reject, reason }
    }

    fn ignore(reason: &'static str) -> Self {
        Self { acceptance: Acceptance::Ignore, reason }
    }
}

impl From<ProtocolError> for Refusal {
    fn from(error: ProtocolError) -> Self {
        Self::reject(error.reason())
    }
}

/// Checks an offer's bytes from gossipsub against everything but the store.
#[cfg(test)]
pub(crate) fn check_offer(data: &[u8], now: u64) -> Result<Verified<Offer>, Refusal> {
    check_offer_time(SignedEnvelope::decode::<Offer>(data)?, now)
}

fn check_offer_time(offer: Verified<Offer>, now: u64) -> Result<Verified<Offer>, Refusal> {
    if offer.body.expires_at <= now {
        return Err(Refusal::ignore("expired"));
    }
    if offer.body.issued_at > now + MAX_CLOCK_SKEW {
        return Err(Refusal::ignore("from_the_future"));
    }
    Ok(offer)
}

/// Checks a heartbeat's bytes from gossipsub against everything but the store.
#[cfg(test)]
pub(crate) fn check_heartbeat(data: &[u8], now: u64) -> Result<Verified<Heartbeat>, Refusal> {
    check_heartbeat_time(SignedEnvelope::decode::<Heartbeat>(data)?, now)
}

fn check_heartbeat_time(
    heartbeat: Verified<Heartbeat>,
    now: u64,
) -> Result<Verified<Heartbeat>, Refusal> {
    if heartbeat.body.issued_at > now + MAX_CLOCK_SKEW {
        return Err(Refusal::ignore("from_the_future"));
    }
    if heartbeat.body.issued_at + MAX_HEARTBEAT_AGE < now {
        return Err(Refusal::ignore("expired"));
    }
    Ok(heartbeat)
}

/// Maps a store outcome onto a verdict.
fn offer_stored(outcome: Result<Upsert, StoreError>) -> Result<(), Refusal> {
    match outcome {
        Ok(Upsert::Inserted | Upsert::Replaced) => Ok(()),
        Ok(Upsert::Stale) => Err(Refusal::ignore("stale")),
        // A number past what any node can store is the sender's fault.
        Err(StoreError::OutOfRange { .. }) => Err(Refusal::reject("out_of_range")),
        Err(error) => {
            tracing::error!(%error, "could not store an offer");
            Err(Refusal::ignore("store_error"))
        }
    }
}

fn heartbeat_stored(outcome: Result<HeartbeatUpsert, StoreError>) -> Result<(), Refusal> {
    match outcome {
        Ok(HeartbeatUpsert::Stored) => Ok(()),
        Ok(HeartbeatUpsert::Stale) => Err(Refusal::ignore("stale")),
        Ok(HeartbeatUpsert::UnknownProvider) => Err(Refusal::ignore("unknown_provider")),
        Err(StoreError::OutOfRange { .. }) => Err(Refusal::reject("out_of_range")),
        Err(error) => {
            tracing::error!(%error, "could not store a heartbeat");
            Err(Refusal::ignore("store_error"))
        }
    }
}

/// A token bucket per peer. Buckets of peers that went quiet are forgotten, so the map
/// holds only peers that sent something recently.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: HashMap<PeerId, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: HashMap::new() }
    }

    /// Takes a token from `peer`'s bucket, if it has one.
    pub(crate) fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let burst = f64::from(self.limit.burst);
        let bucket = self.buckets.entry(peer).or_insert(Bucket { tokens: burst, refilled: now });
        let refill = now.saturating_duration_since(bucket.refilled).as_secs_f64()
            * f64::from(self.limit.per_second);
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops the buckets that would be full by `now`: a new one would be the same.
    pub(crate) fn forget_idle(&mut self, now: Instant) {
        let (rate, burst) = (f64::from(self.limit.per_second), f64::from(self.limit.burst));
        self.buckets.retain(|_, bucket| {
            bucket.tokens + now.saturating_duration_since(bucket.refilled).as_secs_f64() * rate
                < burst
        });
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

type Verdict = Pin<Box<dyn Future<Output = (MessageId, PeerId, Acceptance)> + Send>>;

/// Runs until the network's event stream ends. `backlog` holds events that arrived before
/// the node was ready to handle them.
pub(crate) async fn run(
    network: Network,
    mut events: mpsc::Receiver<NetworkEvent>,
    backlog: Vec<NetworkEvent>,
    store: Store,
    metrics: Arc<Metrics>,
    limit: RateLimit,
) {
    let mut ingest = Ingest { network, store, metrics, limiter: RateLimiter::new(limit) };
    let mut verdicts = FuturesUnordered::<Verdict>::new();
    ingest.on_events(backlog, &mut verdicts).await;
    let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
    maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    let mut ready = vec![event];
                    while ready.len() < CHECK_CHUNK {
                        match events.try_recv() {
                            Ok(event) => ready.push(event),
                            Err(_) => break,
                        }
                    }
                    ingest.on_events(ready, &mut verdicts).await;
                }
                None => break,
            },
            Some((message_id, source, acceptance)) = verdicts.next(), if !verdicts.is_empty() => {
                if ingest.network.report(message_id, source, acceptance).await.is_err() {
                    break;
                }
            }
            _ = maintenance.tick() => ingest.maintain(),
        }
    }
    // Let what is already stored be reported, so gossipsub does not wait on it in vain.
    while let Some((message_id, source, acceptance)) = verdicts.next().await {
        let _ = ingest.network.report(message_id, source, acceptance).await;
    }
}

struct Ingest {
    network: Network,
    store: Store,
    metrics: Arc<Metrics>,
    limiter: RateLimiter,
}

/// A gossiped message that passed its checks.
pub(crate) enum Checked {
    Offer(Box<Verified<Offer>>),
    Heartbeat(Box<Verified<Heartbeat>>),
}

/// Checks gossiped messages, results in order: each topic's messages are decoded with
/// [`SignedEnvelope::decode_batch`], which verifies their signatures together and refuses
/// each bad one as checking it alone would.
pub(crate) fn check_many(messages: &[(Topic, Vec<u8>)], now: u64) -> Vec<Result<Checked, Refusal>> {
    let of = |wanted: Topic| -> Vec<&[u8]> {
        messages.iter().filter(|(topic, _)| *topic == wanted).map(|(_, d)| &d[..]).collect()
    };
    let mut offers = SignedEnvelope::decode_batch::<Offer>(&of(Topic::Offers)).into_iter();
    let mut heartbeats =
        SignedEnvelope::decode_batch::<Heartbeat>(&of(Topic::Heartbeats)).into_iter();
    let mut checked = Vec::with_capacity(messages.len());
    for (topic, _) in messages {
        let next = match topic {
            Topic::Offers => offers.next().map(|offer| {
                check_offer_time(offer?, now).map(|offer| Checked::Offer(Box::new(offer)))
            }),
            Topic::Heartbeats => heartbeats.next().map(|heartbeat| {
                check_heartbeat_time(heartbeat?, now)
                    .map(|heartbeat| Checked::Heartbeat(Box::new(heartbeat)))
            }),
            _ => None,
        };
        checked.push(next.unwrap_or(Err(Refusal::ignore("check_failed"))));
    }
    checked
}

/// Checks `messages` in order on every core (see [`on_every_core`]).
async fn check_all(messages: Vec<(Topic, Vec<u8>)>) -> Vec<Result<Checked, Refusal>> {
    let now = unix_now();
    on_every_core(messages, move |slice| check_many(slice, now))
        .await
        .into_iter()
        // A panicking check refuses its messages rather than the node.
        .map(|checked| checked.unwrap_or(Err(Refusal::ignore("check_failed"))))
        .collect()
}

/// Runs `work` on slices of `items`, results in order: split over one blocking task per
/// core when there are enough items to pay for the hand-off, in place otherwise. `work`
/// returns one result per item of its slice; the items of a slice whose task panicked (or
/// that answered a different number of results) get `None`.
pub async fn on_every_core<I, T, W>(items: Vec<I>, work: W) -> Vec<Option<T>>
where
    I: Send + 'static,
    T: Send + 'static,
    W: Fn(&[I]) -> Vec<T> + Clone + Send + 'static,
{
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let answered = |results: Vec<T>, len: usize| -> Vec<Option<T>> {
        match results.len() == len {
            true => results.into_iter().map(Some).collect(),
            false => (0..len).map(|_| None).collect(),
        }
    };
    if items.len() < 2 * cores {
        return answered(work(&items), items.len());
    }
    let size = items.len().div_ceil(cores);
    let mut items = items.into_iter();
    let tasks: Vec<_> = (0..cores)
        .map(|_| {
            let chunk: Vec<I> = items.by_ref().take(size).collect();
            let (len, work) = (chunk.len(), work.clone());
            (tokio::task::spawn_blocking(move || work(&chunk)), len)
        })
        .collect();
    let mut done = Vec::new();
    for (task, len) in tasks {
        match task.await {
            Ok(results) => done.extend(answered(results, len)),
            Err(_) => done.extend((0..len).map(|_| None)),
        }
    }
    done
}

type Stored = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send>>;

fn refused(refusal: Refusal) -> Stored {
    Box::pin(std::future::ready(Err(refusal)))
}

impl Ingest {
    /// Handles events that arrived together: gossiped messages are rate limited in arrival
    /// order, checked on every core, then queued to the store in arrival order.
    async fn on_events(
        &mut self,
        events: Vec<NetworkEvent>,
        verdicts: &mut FuturesUnordered<Verdict>,
    ) {
        let mut gossip = Vec::new();
        for event in events {
            match event {
                NetworkEvent::Offer { message_id, source, data } => {
                    gossip.push((message_id, source, Topic::Offers, data))
                }
                NetworkEvent::Heartbeat { message_id, source, data } => {
                    gossip.push((message_id, source, Topic::Heartbeats, data))
                }
                other => self.on_event(other).await,
            }
        }
        let mut admitted = Vec::new();
        let mut outcomes: Vec<Option<Refusal>> = Vec::with_capacity(gossip.len());
        for (_, source, topic, data) in &mut gossip {
            match self.limiter.allow(*source, Instant::now()) {
                true => {
                    admitted.push((*topic, std::mem::take(data)));
                    outcomes.push(None);
                }
                false => outcomes.push(Some(Refusal::ignore("rate_limited"))),
            }
        }
        let mut checked = check_all(admitted).await.into_iter();
        for ((message_id, source, topic, _), limited) in gossip.into_iter().zip(outcomes) {
            let outcome = match limited {
                Some(refusal) => Err(refusal),
                None => checked.next().unwrap_or(Err(Refusal::ignore("check_failed"))),
            };
            let stored: Stored = match outcome {
                Err(refusal) => {
                    if refusal.acceptance == Acceptance::Reject {
                        tracing::info!(%source, ?topic, reason = refusal.reason, "message rejected");
                    }
                    refused(refusal)
                }
                Ok(Checked::Offer(offer)) => {
                    // Queued now, in arrival order; awaited with the verdicts.
                    let outcome = self.store.queue_offer(*offer, unix_now()).await;
                    Box::pin(async move { offer_stored(outcome.await) })
                }
                Ok(Checked::Heartbeat(heartbeat)) => {
                    let outcome = self.store.queue_heartbeat(*heartbeat, unix_now()).await;
                    Box::pin(async move { heartbeat_stored(outcome.await) })
                }
            };
            verdicts.push(self.report_when_done(message_id, source, topic, stored));
        }
    }

    /// Handles an event that is not a gossiped message.
    async fn on_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::IndexPeer(peer) => {
                tracing::debug!(%peer, "syncing offers from another index");
                let sync =
                    sync_from(self.network.clone(), self.store.clone(), self.metrics.clone(), peer);
                tokio::spawn(sync);
            }
            NetworkEvent::SyncRequest { peer, request, channel } => {
                if self.limiter.allow(peer, Instant::now()) {
                    let serve =
                        serve_sync(self.network.clone(), self.store.clone(), request, channel);
                    tokio::spawn(serve);
                } else {
                    // Dropping the channel answers nothing; the asker sees a failed request.
                    self.metrics.ignored(Topic::Sync, "rate_limited");
                }
            }
            NetworkEvent::PeersChanged { connected } => self.metrics.set_peers(connected),
            _ => {}
        }
    }

    fn report_when_done(
        &self,
        message_id: MessageId,
        source: PeerId,
        topic: Topic,
        stored: Stored,
    ) -> Verdict {
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let acceptance = match stored.await {
                Ok(()) => {
                    metrics.accepted(topic);
                    Acceptance::Accept
                }
                Err(refusal) => {
                    count(&metrics, topic, refusal);
                    refusal.acceptance
                }
            };
            (message_id, source, acceptance)
        })
    }

    fn maintain(&mut self) {
        self.limiter.forget_idle(Instant::now());
        let store = self.store.clone();
        tokio::spawn(async move {
            match store.prune_expired(unix_now()).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "expired offers pruned"),
                Err(error) => tracing::warn!(%error, "could not prune expired offers"),
            }
        });
    }
}

fn count(metrics: &Metrics, topic: Topic, refusal: Refusal) {
    match refusal.acceptance {
        Acceptance::Reject => metrics.rejected(topic, refusal.reason),
        _ => metrics.ignored(topic, refusal.reason),
    }
}

/// Pages through `peer`'s live offers and stores each one that checks out, as if it had
/// come over gossipsub. A peer that serves an invalid offer is not asked for more.
async fn sync_from(network: Network, store: Store, metrics: Arc<Metrics>, peer: PeerId) {
    let mut after: Option<String> = None;
    let mut stored = 0usize;
    for _ in 0..MAX_SYNC_PAGES {
        let page = match network.sync(peer, after.clone()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::debug!(%peer, %error, "sync stopped");
                return;
            }
        };
        if page.offers.len() > MAX_SYNC_PAGE as usize {
            metrics.rejected(Topic::Sync, "oversized_page");
            return;
        }
        // Offers held at the seq they claim or a later one would only be stored as stale:
        // they are not checked again. On connecting, two nodes sync from each other, so
        // most of what a node gets back is what it holds.
        let claims: Vec<Option<(OfferId, u64)>> =
            page.offers.iter().map(SignedEnvelope::claimed_offer).collect();
        let ids: Vec<OfferId> = claims.iter().flatten().map(|(id, _)| *id).collect();
        let mut held = store.held_seqs(&ids).into_iter();
        let mut unknown = Vec::with_capacity(page.offers.len());
        for (envelope, claim) in page.offers.into_iter().zip(&claims) {
            let held = claim.and_then(|_| held.next().flatten());
            match (claim, held) {
                (Some((_, seq)), Some(held)) if held >= *seq => {
                    metrics.ignored(Topic::Sync, "known");
                }
                _ => unknown.push(envelope),
            }
        }
        // The page is checked on every core, then every offer that checks out is queued
        // before any is awaited, so that the writer commits the page together instead of
        // syncing the disk once per offer.
        let now = unix_now();
        let checked = on_every_core(unknown, move |envelopes| {
            let opened = SignedEnvelope::open_batch::<Offer>(envelopes.to_vec());
            opened.into_iter().map(|offer| check_offer_time(offer?, now)).collect()
        })
        .await;
        let mut queued = Vec::with_capacity(checked.len());
        let mut invalid = None;
        for checked in checked {
            // A panicking check refuses its offer rather than the node.
            match checked.unwrap_or(Err(Refusal::ignore("check_failed"))) {
                Ok(offer) => queued.push(store.queue_offer(offer, unix_now()).await),
                Err(refusal) => {
                    count(&metrics, Topic::Sync, refusal);
                    if refusal.acceptance == Acceptance::Reject {
                        invalid = Some(refusal.reason);
                        break;
                    }
                }
            }
        }
        for outcome in queued {
            match offer_stored(outcome.await) {
                Ok(()) => {
                    metrics.accepted(Topic::Sync);
                    stored += 1;
                }
                Err(refusal) => {
                    count(&metrics, Topic::Sync, refusal);
                    if refusal.acceptance == Acceptance::Reject {
                        invalid.get_or_insert(refusal.reason);
                    }
                }
            }
        }
        if let Some(reason) = invalid {
            tracing::info!(%peer, reason, "invalid offer in a sync; stopping");
            return;
        }
        // Pages must move forward; anything else would loop.
        match page.next {
            Some(next) if after.as_ref().is_none_or(|after| next > *after) => after = Some(next),
            _ => break,
        }
    }
    tracing::info!(%peer, stored, "synced offers from another index");
}

/// Answers another index's request for a page of our live offers.
async fn serve_sync(
    network: Network,
    store: Store,
    request: SyncRequest,
    channel: ResponseChannel<SyncResponse>,
) {
    let after = match request.after.as_deref().map(str::parse::<OfferId>).transpose() {
        Ok(after) => after,
        Err(_) => {
            // Not a cursor we hand out: an empty last page ends the asker's loop.
            let empty = SyncResponse { offers: Vec::new(), next: None };
            let _ = network.respond_sync(channel, empty).await;
            return;
        }
    };
    let page = store.sync_page(after, request.limit.clamp(1, MAX_SYNC_PAGE), unix_now()).await;
    let response = match page {
        Ok(page) => SyncResponse { offers: page.offers, next: page.next.map(|id| id.to_string()) },
        Err(error) => {
            tracing::warn!(%error, "could not read offers for a sync");
            return;
        }
    };
    let _ = network.respond_sync(channel, response).await;
}

#[cfg(test)]
mod tests;
