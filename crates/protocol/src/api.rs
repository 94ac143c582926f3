//! JSON shapes of the node's HTTP API (`/v1/...`), shared by the node and its clients.
//!
//! Fields added after the first release carry `#[serde(default)]`, so a newer client still
//! reads an older node's answers.

use serde::{Deserialize, Serialize};

use crate::{GpuHealth, SignedEnvelope};

/// One live offer as listed by `GET /v1/offers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferSummary {
    /// Offer id (16 hex digits), see [`crate::OfferId`].
    pub id: String,
    /// Provider's libp2p peer id.
    pub peer_id: String,
    /// Provider's payout address (lowercase hex).
    pub payout: String,
    /// GPU model.
    pub gpu_name: String,
    /// Number of GPUs free to rent; a renter takes all or some of them.
    pub num_gpus: u32,
    /// Memory per GPU, in megabytes (10^6 bytes).
    pub gpu_ram_mb: u64,
    /// Price of all `num_gpus` GPUs, token units per second (decimal string); a part
    /// of them costs its share.
    pub price_per_second: String,
    /// Price of the whole machine, token units per hour (decimal string).
    pub price_per_hour: String,
    /// Price per hour in whole tokens, for display (`price_per_hour` scaled by the
    /// token's decimals, exact).
    pub dph: String,
    /// Price of one of the GPUs per hour in whole tokens, for display: what `--gpus 1`
    /// pays (`dph` divided by `num_gpus`, rounded down to a token unit).
    #[serde(default)]
    pub dph_per_gpu: String,
    /// True only when the provider read its GPUs through NVML.
    pub verified: bool,
    /// Region label.
    pub region: String,
    /// CUDA version, e.g. `12.4`.
    pub cuda: String,
    /// Driver version.
    pub driver: String,
    /// Where the provider answers `/gpuflow/rental/1`.
    pub listen_addrs: Vec<String>,
    /// Publication sequence number.
    pub seq: u64,
    /// Unix time the offer was signed.
    pub issued_at: u64,
    /// Unix time the offer expires.
    pub expires_at: u64,
    /// Unix time this node first saw the provider (the base of `age_days`).
    #[serde(default)]
    pub first_seen: u64,
    /// True when another live offer lists one of the same GPU UUIDs: at least one of the
    /// two providers advertises hardware it does not have. Hidden from search unless asked.
    #[serde(default)]
    pub conflicts: bool,
    /// Declared download bandwidth, Mbit/s.
    #[serde(default)]
    pub inet_down_mbps: Option<u64>,
    /// Declared upload bandwidth, Mbit/s.
    #[serde(default)]
    pub inet_up_mbps: Option<u64>,
    /// Free disk space on the provider's machine, in megabytes (10^6 bytes).
    #[serde(default)]
    pub disk_mb: Option<u64>,
    /// The machine's logical CPUs.
    #[serde(default)]
    pub cpu_cores: Option<u64>,
    /// The machine's memory, in megabytes (10^6 bytes).
    #[serde(default)]
    pub cpu_ram_mb: Option<u64>,
    /// The provider's reliability score in [0, 1]: the share of rented time its machine was
    /// up, smoothed toward the prior for newcomers (see the node's `RELIABILITY.md`).
    #[serde(default = "default_reliability")]
    pub reliability: f64,
    /// Share of listed time the machine was up, in [0, 1]; absent before any listed time
    /// was measured.
    #[serde(default)]
    pub uptime: Option<f64>,
    /// Rentals the provider's payout address received on the indexed escrow.
    #[serde(default)]
    pub rentals: u64,
    /// Dense TFLOP/s per GPU the node's latest matrix-product challenge of the machine
    /// proved (see the node's `CHALLENGE.md`); absent if never challenged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven_tflops: Option<f64>,
    /// Whether that challenge left the offer unflagged: false after a wrong, replayed or
    /// too slow answer; absent if never challenged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_ok: Option<bool>,
    /// Container images pulled ahead on the machine: a rental of one starts without a
    /// download.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// The images renters may ask for, a trailing `*` matching any ending (see
    /// [`crate::image_allowed`]); empty: any image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_images: Vec<String>,
}

fn default_reliability() -> f64 {
    RELIABILITY_PRIOR
}

/// Reliability of a provider with no rented time measured yet.
pub const RELIABILITY_PRIOR: f64 = 0.9;

/// `GET /v1/offers` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferList {
    /// Matching offers, in the requested order.
    pub offers: Vec<OfferSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Offers that match but are not listed because they share a GPU UUID with another
    /// live offer; ask with `include_conflicts=1` (or `conflicts=true`) to see them.
    #[serde(default)]
    pub hidden_conflicts: u32,
}

/// `GET /v1/offers/{id}` answer: the summary plus the signed envelope, so clients can
/// verify the offer themselves instead of trusting the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferDetail {
    /// The indexed fields.
    #[serde(flatten)]
    pub summary: OfferSummary,
    /// The offer as the provider signed it.
    pub envelope: SignedEnvelope,
}

/// `GET /v1/providers/{peer_id}` answer: what this node knows about one provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderDetail {
    /// The provider's libp2p peer id.
    pub peer_id: String,
    /// Unix time this node first saw the provider.
    pub first_seen: u64,
    /// The provider's live offer, if it has one (a rented machine stops advertising).
    pub offer: Option<OfferSummary>,
    /// Heartbeats this node accepted from the provider.
    pub heartbeat_count: u64,
    /// The latest heartbeat, if any.
    pub last_heartbeat: Option<HeartbeatSummary>,
    /// Reliability, uptime and rental counts, as last scored by this node.
    #[serde(default)]
    pub scores: Option<ProviderScores>,
    /// The latest matrix-product challenge of the provider by this node, if any (all of
    /// them, signed: `GET /v1/providers/{peer_id}/challenges`).
    #[serde(default)]
    pub challenge: Option<crate::challenge::ChallengeResult>,
}

/// `GET /v1/providers/{peer_id}/challenges` answer: this node's challenges of one
/// provider, newest first, each a signed [`crate::challenge::ChallengeResult`] anyone can
/// verify against the node's peer id.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeList {
    /// The node that challenged and signed.
    pub node: String,
    /// The signed results, newest first.
    pub challenges: Vec<SignedEnvelope>,
}

/// A provider's scores, computed from the evidence of `GET /v1/providers/{peer_id}/evidence`
/// by the model in the node's `RELIABILITY.md`. Times are unix seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderScores {
    /// `(up_rented_seconds + prior × prior_weight) / (rented_seconds + prior_weight)`.
    pub reliability: f64,
    /// `up_listed_seconds / listed_seconds`; absent when nothing was listed in the window.
    pub uptime: Option<f64>,
    /// Rented seconds in the window (a second rented twice counts twice).
    pub rented_seconds: u64,
    /// Of those, seconds the machine was up.
    pub up_rented_seconds: u64,
    /// Seconds the provider had a live offer in the window.
    pub listed_seconds: u64,
    /// Of those, seconds the machine was up.
    pub up_listed_seconds: u64,
    /// Days since this node first saw the provider.
    pub age_days: f64,
    /// Rentals ever opened with the provider's payout address.
    pub rentals: u64,
    /// Of those, rentals that ended (ran out or were stopped) without a downtime credit.
    pub completed_rentals: u64,
    /// Downtime credits paid back to renters of the provider.
    pub sla_credits: u64,
    /// Seconds those credits covered.
    pub sla_credited_seconds: u64,
    /// Uptime per UTC day of the window, oldest first.
    pub daily: Vec<DayUptime>,
    /// When these scores were computed.
    pub scored_at: u64,
}

/// Uptime of one UTC day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayUptime {
    /// Unix time of the day's start (midnight UTC).
    pub day: u64,
    /// Share of the day's listed time up; absent when the provider was not listed that day.
    pub uptime: Option<f64>,
}

/// `GET /v1/providers/{peer_id}/evidence` answer: everything the scores are computed from,
/// so that anyone can recompute them.
///
/// Time is cut in buckets of `bucket_secs` seconds, numbered from unix time 0; the window
/// holds `buckets` of them, the first starting at `from`. Each bitmap is hex, bucket `i` of
/// the window in bit `i % 8` (least significant first) of byte `i / 8`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// The provider's peer id.
    pub peer_id: String,
    /// Its payout address, which the escrow's rentals name.
    pub payout: Option<String>,
    /// When this node first saw the provider.
    pub first_seen: u64,
    /// The moment scored; the window ends at the start of its bucket.
    pub now: u64,
    /// Model parameters.
    pub params: ModelParams,
    /// Start of the window's first bucket.
    pub from: u64,
    /// Buckets in the window.
    pub buckets: u64,
    /// Buckets in which a signed heartbeat was received or a probe was answered.
    pub heard: String,
    /// Buckets in which a probe of the node went unanswered.
    pub failed: String,
    /// Buckets covered by a live offer of the provider.
    pub listed: String,
    /// Buckets this node observed: it was up and listening through the bucket and the grace
    /// period before it. The others count neither as up nor as down. Absent from nodes
    /// that kept no record of their own outages, whose every bucket counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Every indexed rental of the provider's payout address.
    pub rentals: Vec<EvidenceRental>,
    /// The scores this node computed from the above.
    pub scores: ProviderScores,
}

/// The parameters of the reliability model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelParams {
    /// Width of a bucket, seconds.
    pub bucket_secs: u64,
    /// A bucket is up when it or one of the `grace_buckets` before it was heard, and no
    /// probe failed in it.
    pub grace_buckets: u64,
    /// Length of the window, days.
    pub window_days: u64,
    /// Score of a provider with no rented time.
    pub prior: f64,
    /// Weight of the prior, in rented seconds.
    pub prior_weight_secs: u64,
}

/// A rental as the scores see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceRental {
    /// Rental id in `GpuEscrow`.
    pub id: u64,
    /// Start, unix seconds.
    pub start: u64,
    /// End: the stop time if it was stopped, else the scheduled end.
    pub end: u64,
    /// Seconds of downtime credited to the renter.
    pub credited_seconds: u64,
    /// Downtime credits (windows) paid.
    pub credits: u64,
}

/// Optional body of `POST /v1/rentals/{id}/downtime`: terms to align on, so that several
/// attesters sign identical ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DowntimeRequest {
    /// End of the window to attest, unix seconds: at most the end of the node's latest final
    /// bucket and the rental's end.
    pub to: u64,
    /// Attest at most this many down seconds: the node signs the smaller of this and its own
    /// measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_seconds: Option<u64>,
}

/// `POST /v1/rentals/{id}/downtime` answer: an EIP-712 `Downtime` attestation of
/// `GpuEscrow`, signed by the node's attester key, ready for `creditDowntime`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DowntimeAttestation {
    /// Rental id.
    pub rental_id: u64,
    /// Start of the attested window, unix seconds.
    pub from: u64,
    /// End of the window (exclusive).
    pub to: u64,
    /// Seconds of the window the provider was down.
    pub down_seconds: u64,
    /// Unix time after which the escrow refuses the attestation.
    pub deadline: u64,
    /// The attester's address (0x hex).
    pub attester: String,
    /// 65-byte signature `r ‖ s ‖ v`, 0x hex.
    pub signature: String,
}

/// A rental as a node indexed it from `GpuEscrow` events (`GET /v1/rentals/{id}`).
/// Amounts are token units as decimal strings; times are unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RentalDetail {
    /// Rental id in the escrow.
    pub id: u64,
    /// The renter's address (lowercase hex).
    pub renter: String,
    /// The provider's payout address (lowercase hex).
    pub provider: String,
    /// Price, token units per second.
    pub rate_per_second: String,
    /// When the rental started (the opening block's timestamp).
    pub start: u64,
    /// Scheduled end, after any extensions.
    pub end: u64,
    /// When the renter stopped it early, if it did.
    pub stopped_at: Option<u64>,
    /// Everything the renter paid in: the opening deposit plus extensions.
    pub deposit: String,
    /// Returned to the renter when it stopped the rental early.
    pub refund: String,
    /// Paid to the provider so far, net of fees.
    pub withdrawn: String,
    /// Platform fees taken so far.
    pub fees: String,
    /// Downtime refunds credited to the renter.
    pub credited: String,
    /// Seconds of downtime credited.
    pub credited_seconds: u64,
    /// Returned to the renter when the provider refused the rental: everything the escrow
    /// held for it, and nothing is owed to the provider. Absent unless refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Block that opened the rental.
    pub opened_block: u64,
    /// Last block whose events changed the rental.
    pub updated_block: u64,
    /// The quote's `offerId` (0x hex): the machine rented and how many of its GPUs.
    #[serde(default)]
    pub offer_id: String,
    /// Peer id of the machine serving the rental, when this node knows it: the one its
    /// `offerId` names, or else the only machine with its payout address. Renters reach
    /// that provider's agent, and no other agent sharing the payout address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

/// The latest heartbeat of a provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatSummary {
    /// Its sequence number.
    pub seq: u64,
    /// Unix time the provider signed it.
    pub issued_at: u64,
    /// Unix time this node received it.
    pub received_at: u64,
    /// Rentals the provider reported serving.
    pub active_rentals: u32,
    /// Health of each GPU.
    pub gpus: Vec<GpuHealth>,
    /// The heartbeat as the provider signed it.
    pub envelope: SignedEnvelope,
}

/// `GET /v1/node` answer: how other nodes and provider agents join the network through
/// this node (`gpuflow-node --bootstrap-from URL`, `gpuflow-provider init --node URL`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeInfo {
    /// The node's libp2p peer id.
    pub peer_id: String,
    /// Its p2p listen addresses, each ending in `/p2p/PEER_ID`; an unspecified IP
    /// (`0.0.0.0`) stands for whatever address reaches the node's host.
    pub addrs: Vec<String>,
    /// The node's version (`gpuflow-node --version`).
    pub version: String,
    /// The payment token's symbol, as prices are shown (`USDC`).
    pub token_symbol: String,
    /// The payment token's decimals: a price in token units divided by 10^decimals is in
    /// whole tokens.
    pub token_decimals: u8,
}

/// `GET /v1/network` answer: the live offers summed up, as the marketplace page charts
/// them. Conflicting offers (the same GPU claimed twice) are left out, as search hides
/// them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkStats {
    /// Unix time the figures are for.
    pub now: u64,
    /// Live offers counted.
    pub offers: u64,
    /// GPUs in them.
    pub gpus: u64,
    /// Per GPU model, most GPUs first.
    pub models: Vec<ModelStats>,
    /// Offers per reliability decile: `[0, 0.1)`, `[0.1, 0.2)`, …, `[0.9, 1]`.
    pub reliability: Vec<u64>,
    /// Offers hidden because another live offer claims one of their GPUs.
    pub hidden_conflicts: u64,
}

/// One GPU model's live offers, and what one of its GPUs costs per hour across them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelStats {
    /// The GPU model, as offers name it.
    pub gpu_name: String,
    /// Offers of it.
    pub offers: u64,
    /// GPUs in them.
    pub gpus: u64,
    /// Price of one GPU per hour across the offers, token units (`dph_per_gpu` of each
    /// offer, in units): lowest, quartiles, median and highest, each an offer's price.
    pub price_per_gpu_hour: PriceSpread,
}

/// How prices spread: five values, each a price some offer asks (token units, decimal
/// strings), the quartiles by the nearest rank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceSpread {
    /// The lowest.
    pub min: String,
    /// The first quartile.
    pub p25: String,
    /// The median.
    pub median: String,
    /// The third quartile.
    pub p75: String,
    /// The highest.
    pub max: String,
}

/// `GET /healthz` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `ok` when the node answers.
    pub status: String,
    /// Live offers in the index.
    pub offers: u64,
}

/// Body of every error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}
