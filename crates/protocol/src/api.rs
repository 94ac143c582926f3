//! JSON shapes of the node's HTTP API (`/v1/...`), shared by the node and its clients.

use serde::{Deserialize, Serialize};

use crate::SignedEnvelope;

/// One live offer as listed by `GET /v1/offers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// `GET /v1/offers` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfferList {
    /// Matching offers, in the requested order.
    pub offers: Vec<OfferSummary>,
}

/// `GET /v1/offers/{id}` answer: the summary plus the signed envelope, so clients can
/// verify the offer themselves instead of trusting the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfferDetail {
    /// The indexed fields.
    #[serde(flatten)]
    pub summary: OfferSummary,
    /// The offer as the provider signed it.
    pub envelope: SignedEnvelope,
}

/// Body of every error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}
