//! JSON shapes of the node's HTTP API (`/v1/...`), shared by the node and its clients.
//!
//! Fields added after the first release carry `#[serde(default)]`, so a newer client still
//! reads an older node's answers.

use serde::{Deserialize, Serialize};

use crate::{GpuHealth, SignedEnvelope};

/// One live offer as listed by `GET /v1/offers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Number of GPUs rented together.
    pub num_gpus: u32,
    /// Memory per GPU, in megabytes (10^6 bytes).
    pub gpu_ram_mb: u64,
    /// Price of the whole machine, token units per second (decimal string).
    pub price_per_second: String,
    /// Price of the whole machine, token units per hour (decimal string).
    pub price_per_hour: String,
    /// Price per hour in whole tokens, for display (`price_per_hour` scaled by the
    /// token's decimals, exact).
    pub dph: String,
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
    /// Declared disk space, in megabytes (10^6 bytes).
    #[serde(default)]
    pub disk_mb: Option<u64>,
}

/// `GET /v1/offers` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferList {
    /// Matching offers, in the requested order.
    pub offers: Vec<OfferSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
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
    /// Block that opened the rental.
    pub opened_block: u64,
    /// Last block whose events changed the rental.
    pub updated_block: u64,
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
