//! Prometheus metrics, served as OpenMetrics text on `GET /metrics`.
//!
//! * `gpuflow_peers`: peers with an open connection.
//! * `gpuflow_offers`: live offers in the index (read at scrape time).
//! * `gpuflow_messages_accepted_total{topic}`: messages stored and forwarded.
//! * `gpuflow_messages_rejected_total{topic,reason}`: invalid messages (the relaying peer is
//!   penalised), e.g. `bad_signature`, `too_large`, `malformed`, `invalid_field`.
//! * `gpuflow_messages_ignored_total{topic,reason}`: valid-looking messages dropped for local
//!   reasons: `stale`, `expired`, `from_the_future`, `rate_limited`, `unknown_provider`,
//!   `store_error`.
//! * `gpuflow_http_request_duration_seconds{method,route,status}`: request latency.
//! * `gpuflow_challenges_total{outcome}`: matrix-product challenges of providers, by how they
//!   ended: the verdict of an answered one (`passed`, `unrated`, and those that flag the
//!   offer: `too_slow`, `wrong_row`, `commitment_mismatch`, `replayed`, `malformed`), or
//!   `refused`, or `unanswered` (unreachable, or no answer in time).
//! * `gpuflow_challenges_running`: challenges started and not ended yet.
//! * `gpuflow_challenge_check_seconds`: the node's own work on an answered challenge
//!   (drawing the rows, checking the opening), network waits excluded.
//!
//! `topic` is `offers`, `heartbeats` or `sync` (offers fetched from another node).

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Where a message came from, for the `topic` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `gpuflow/offers/1`.
    Offers,
    /// `gpuflow/heartbeats/1`.
    Heartbeats,
    /// A `/gpuflow/sync/1` answer from another node.
    Sync,
}

impl Topic {
    fn label(self) -> &'static str {
        match self {
            Self::Offers => "offers",
            Self::Heartbeats => "heartbeats",
            Self::Sync => "sync",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TopicLabels {
    topic: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    topic: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChallengeLabels {
    outcome: &'static str,
}

#[derive(Clone, Copy)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        // 0.25 ms to about 4 s.
        Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
    }
}

/// The node's metrics; cheap to share behind an `Arc`, every update is atomic.
pub struct Metrics {
    registry: Registry,
    peers: Gauge,
    offers: Gauge,
    accepted: Family<TopicLabels, Counter>,
    rejected: Family<RefusalLabels, Counter>,
    ignored: Family<RefusalLabels, Counter>,
    requests: Family<RequestLabels, Histogram, LatencyBuckets>,
    chain_next_block: Gauge,
    chain_head: Gauge,
    chain_reorgs: Counter,
    challenges: Family<ChallengeLabels, Counter>,
    challenges_running: Gauge,
    challenge_check: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gpuflow");
        let peers = Gauge::default();
        registry.register("peers", "Peers with an open connection", peers.clone());
        let offers = Gauge::default();
        registry.register("offers", "Live offers in the index", offers.clone());
        let accepted = Family::default();
        registry.register("messages_accepted", "Messages stored and forwarded", accepted.clone());
        let rejected = Family::default();
        registry.register(
            "messages_rejected",
            "Invalid messages, by reason; the relaying peer is penalised",
            rejected.clone(),
        );
        let ignored = Family::default();
        registry.register(
            "messages_ignored",
            "Messages dropped for local reasons (stale, expired, rate limited...), by reason",
            ignored.clone(),
        );
        let requests = Family::new_with_constructor(LatencyBuckets);
        registry.register(
            "http_request_duration_seconds",
            "HTTP API request latency",
            requests.clone(),
        );
        let chain_next_block = Gauge::default();
        registry.register(
            "chain_next_block",
            "First escrow block the chain watcher has not indexed yet",
            chain_next_block.clone(),
        );
        let chain_head = Gauge::default();
        registry.register(
            "chain_head",
            "Chain head the watcher last caught up with: every block confirmed at it is indexed",
            chain_head.clone(),
        );
        let chain_reorgs = Counter::default();
        registry.register(
            "chain_reorgs",
            "Chain reorganisations the watcher rolled back",
            chain_reorgs.clone(),
        );
        let challenges = Family::default();
        registry.register(
            "challenges",
            "Matrix-product challenges of providers, by outcome (a verdict, refused or unanswered)",
            challenges.clone(),
        );
        let challenges_running = Gauge::default();
        registry.register(
            "challenges_running",
            "Challenges started and not ended yet",
            challenges_running.clone(),
        );
        // 1 ms to about 16 s: a 16384-row opening takes seconds in a debug build.
        let challenge_check = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "challenge_check_seconds",
            "Time the node spent checking an answered challenge, network waits excluded",
            challenge_check.clone(),
        );
        Self {
            registry,
            peers,
            offers,
            accepted,
            rejected,
            ignored,
            requests,
            chain_next_block,
            chain_head,
            chain_reorgs,
            challenges,
            challenges_running,
            challenge_check,
        }
    }

    /// Counts a stored message.
    pub fn accepted(&self, topic: Topic) {
        self.accepted.get_or_create(&TopicLabels { topic: topic.label() }).inc();
    }

    /// Counts an invalid message.
    pub fn rejected(&self, topic: Topic, reason: &'static str) {
        self.rejected.get_or_create(&RefusalLabels { topic: topic.label(), reason }).inc();
    }

    /// Counts a message dropped for a local reason.
    pub fn ignored(&self, topic: Topic, reason: &'static str) {
        self.ignored.get_or_create(&RefusalLabels { topic: topic.label(), reason }).inc();
    }

    /// Records the number of connected peers.
    pub fn set_peers(&self, connected: usize) {
        self.peers.set(i64::try_from(connected).unwrap_or(i64::MAX));
    }

    /// Records the number of live offers.
    pub fn set_offers(&self, offers: u64) {
        self.offers.set(i64::try_from(offers).unwrap_or(i64::MAX));
    }

    /// Records where the chain watcher stands.
    pub fn set_chain_next_block(&self, block: u64) {
        self.chain_next_block.set(i64::try_from(block).unwrap_or(i64::MAX));
    }

    /// Records the head at which the chain watcher has indexed every confirmed block.
    pub fn set_chain_head(&self, block: u64) {
        self.chain_head.set(i64::try_from(block).unwrap_or(i64::MAX));
    }

    /// Counts a rolled-back reorg.
    pub fn chain_reorg(&self) {
        self.chain_reorgs.inc();
    }

    /// Counts a challenge that ended with `outcome`: a verdict's name
    /// (`Outcome::as_str`), `refused` or `unanswered`.
    pub fn challenge(&self, outcome: &'static str) {
        self.challenges.get_or_create(&ChallengeLabels { outcome }).inc();
    }

    /// Records the number of challenges running.
    pub fn set_challenges_running(&self, running: usize) {
        self.challenges_running.set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    /// Records the time the node spent checking an answered challenge.
    pub fn observe_challenge_check(&self, seconds: f64) {
        self.challenge_check.observe(seconds);
    }

    /// Records one HTTP request; `route` is the matched route pattern, never the raw path,
    /// so that label values stay few.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.requests.get_or_create(&labels).observe(seconds);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_labelled() {
        let metrics = Metrics::new();
        metrics.accepted(Topic::Offers);
        metrics.rejected(Topic::Heartbeats, "bad_signature");
        metrics.rejected(Topic::Heartbeats, "bad_signature");
        metrics.ignored(Topic::Sync, "stale");
        metrics.set_peers(3);
        metrics.observe_request("GET", "/v1/offers", 200, 0.002);
        metrics.challenge("wrong_row");
        metrics.challenge("unanswered");
        metrics.challenge("unanswered");
        metrics.observe_challenge_check(0.004);
        let text = metrics.encode();
        for line in [
            "gpuflow_peers 3",
            "gpuflow_messages_accepted_total{topic=\"offers\"} 1",
            "gpuflow_messages_rejected_total{topic=\"heartbeats\",reason=\"bad_signature\"} 2",
            "gpuflow_messages_ignored_total{topic=\"sync\",reason=\"stale\"} 1",
            "gpuflow_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/offers\",status=\"200\"} 1",
            "gpuflow_challenges_total{outcome=\"wrong_row\"} 1",
            "gpuflow_challenges_total{outcome=\"unanswered\"} 2",
            "gpuflow_challenge_check_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
