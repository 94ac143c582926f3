//! The one record of a live offer that the store keeps and search returns, and the scores
//! search reads.

use gpuflow_protocol::{
    OfferId,
    api::{self, ProviderScores},
    format_units,
};

/// The searchable facts of a live offer, as the store keeps them and search reads them.
///
/// The API serves them as [`api::OfferSummary`] ([`OfferSummary::into_wire`]): amounts as
/// decimal strings, plus `dph`. `completed_rentals` and `sla_credits` are searched and
/// sorted on here but not in that JSON, whose shape clients already read; their numbers are
/// served with the provider's scores (`GET /v1/providers/{peer_id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct OfferSummary {
    /// The offer's id.
    pub id: OfferId,
    /// The provider's libp2p peer id.
    pub peer_id: String,
    /// Address paid for rentals, lower-case 0x hex.
    pub payout: String,
    /// GPU model, e.g. `NVIDIA GeForce RTX 4090`.
    pub gpu_name: String,
    /// Number of GPUs rented together.
    pub num_gpus: u32,
    /// Memory per GPU, in MB (10⁶ bytes).
    pub gpu_ram_mb: u64,
    /// Price of the whole machine, in token units per second.
    pub price_per_second: u128,
    /// Price of the whole machine, in token units per hour.
    pub price_per_hour: u128,
    /// Whether the inventory was read through NVML rather than simulated.
    pub verified: bool,
    /// Region label chosen by the provider.
    pub region: String,
    /// Highest CUDA version the driver supports, as advertised (e.g. `12.4`).
    pub cuda: String,
    /// NVIDIA driver version.
    pub driver: String,
    /// Multiaddrs where the provider answers rental requests.
    pub listen_addrs: Vec<String>,
    /// The offer's sequence number.
    pub seq: u64,
    /// Unix time the offer was signed.
    pub issued_at: u64,
    /// Unix time after which the offer is void.
    pub expires_at: u64,
    /// Unix time this node first saw the provider (its first stored offer or heartbeat).
    pub first_seen: u64,
    /// Whether another live offer lists one of the same GPU UUIDs.
    pub conflicts: bool,
    /// Declared download bandwidth, Mbit/s.
    pub inet_down_mbps: Option<u64>,
    /// Declared upload bandwidth, Mbit/s.
    pub inet_up_mbps: Option<u64>,
    /// Free disk space, MB.
    pub disk_mb: Option<u64>,
    /// The machine's logical CPUs.
    pub cpu_cores: Option<u64>,
    /// The machine's memory, MB.
    pub cpu_ram_mb: Option<u64>,
    /// The provider's reliability score, as last computed.
    pub reliability: f64,
    /// The provider's uptime share, as last computed.
    pub uptime: Option<f64>,
    /// Rentals of the provider's machine (see `RELIABILITY.md`).
    pub rentals: u64,
    /// Those that ended without a downtime credit.
    pub completed_rentals: u64,
    /// Downtime credits paid back to the machine's renters.
    pub sla_credits: u64,
    /// Dense TFLOP/s per GPU the latest challenge proved; `None` if never challenged.
    pub proven_tflops: Option<f64>,
    /// Whether the latest challenge left the offer unflagged; `None` if never challenged.
    pub challenge_ok: Option<bool>,
    /// Container images pulled ahead on the machine.
    pub images: Vec<String>,
    /// The images renters may ask for; empty: any.
    pub allowed_images: Vec<String>,
}

impl OfferSummary {
    /// The JSON shape of a summary: amounts as exact decimal strings, plus `dph` in whole
    /// tokens for display.
    pub fn into_wire(self, token_decimals: u8) -> api::OfferSummary {
        let offer = self;
        api::OfferSummary {
            id: offer.id.to_string(),
            peer_id: offer.peer_id,
            payout: offer.payout,
            gpu_name: offer.gpu_name,
            num_gpus: offer.num_gpus,
            gpu_ram_mb: offer.gpu_ram_mb,
            price_per_second: offer.price_per_second.to_string(),
            price_per_hour: offer.price_per_hour.to_string(),
            dph: format_units(offer.price_per_hour, token_decimals),
            dph_per_gpu: format_units(
                offer.price_per_hour / u128::from(offer.num_gpus.max(1)),
                token_decimals,
            ),
            verified: offer.verified,
            region: offer.region,
            cuda: offer.cuda,
            driver: offer.driver,
            listen_addrs: offer.listen_addrs,
            seq: offer.seq,
            issued_at: offer.issued_at,
            expires_at: offer.expires_at,
            first_seen: offer.first_seen,
            conflicts: offer.conflicts,
            inet_down_mbps: offer.inet_down_mbps,
            inet_up_mbps: offer.inet_up_mbps,
            disk_mb: offer.disk_mb,
            cpu_cores: offer.cpu_cores,
            cpu_ram_mb: offer.cpu_ram_mb,
            reliability: offer.reliability,
            uptime: offer.uptime,
            rentals: offer.rentals,
            proven_tflops: offer.proven_tflops,
            challenge_ok: offer.challenge_ok,
            images: offer.images,
            allowed_images: offer.allowed_images,
        }
    }
}

/// The scores search filters and sorts on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchScores {
    /// See [`ProviderScores::reliability`].
    pub reliability: f64,
    /// See [`ProviderScores::uptime`].
    pub uptime: Option<f64>,
    /// See [`ProviderScores::rentals`].
    pub rentals: u64,
    /// See [`ProviderScores::completed_rentals`].
    pub completed_rentals: u64,
    /// See [`ProviderScores::sla_credits`].
    pub sla_credits: u64,
}

impl From<&ProviderScores> for SearchScores {
    fn from(scores: &ProviderScores) -> Self {
        Self {
            reliability: scores.reliability,
            uptime: scores.uptime,
            rentals: scores.rentals,
            completed_rentals: scores.completed_rentals,
            sla_credits: scores.sla_credits,
        }
    }
}
