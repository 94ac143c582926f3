//! Signed wire messages of the gpuflow marketplace.
//!
//! Everything that crosses the network is a [`SignedEnvelope`]: a versioned, size-limited
//! JSON document whose body is signed with the sender's ed25519 key, which is also its
//! libp2p identity. Receivers call [`SignedEnvelope::open`] before they look at a body.

mod amount;
pub mod api;
mod envelope;
mod error;
mod identity;
mod offer;
mod rental;

pub use amount::{format_units, parse_units};
pub use envelope::{Message, MessageKind, SignedEnvelope, Verified};
pub use error::ProtocolError;
pub use identity::Identity;
pub use offer::{
    GpuInfo, MAX_GPUS, MAX_OFFER_TTL, MAX_PRICE_PER_SECOND, Offer, OfferId, payout_binding_message,
};
pub use rental::{RentalRequest, RentalResponse, WorkloadState, WorkloadStatus};

/// Gossipsub topic on which providers publish their offers.
pub const OFFERS_TOPIC: &str = "gpuflow/offers/1";
/// Gossipsub topic on which providers publish heartbeats.
pub const HEARTBEATS_TOPIC: &str = "gpuflow/heartbeats/1";
/// Request-response protocol spoken between renters, nodes and providers.
pub const RENTAL_PROTOCOL: &str = "/gpuflow/rental/1";
/// Version of the envelope format; receivers reject any other.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest encoded message accepted from the network, in bytes.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
