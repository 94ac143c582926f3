//! Signed wire messages of the gpuflow marketplace.
//!
//! Everything that crosses the network is a [`SignedEnvelope`]: a versioned, size-limited
//! JSON document whose body is signed with the sender's ed25519 key, which is also its
//! libp2p identity. Receivers call [`SignedEnvelope::decode`] (network bytes) or
//! [`SignedEnvelope::open`] before they look at a body.
//!
//! Providers publish an [`Offer`] every few minutes and a [`Heartbeat`] every ~15 s; nodes
//! exchange their stored offers with [`SyncRequest`] / [`SyncResponse`]. The fields a
//! node's search knows are listed once, in [`search`].

mod amount;
pub mod api;
mod batch;
pub mod challenge;
mod envelope;
mod error;
mod heartbeat;
mod identity;
mod keys;
mod launch;
mod offer;
mod rental;
pub mod search;
mod sync;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

pub use amount::{format_units, hours_to_seconds, is_shown_symbol, parse_units};
pub use envelope::{Message, MessageKind, SignedEnvelope, Verified};
pub use error::ProtocolError;
pub use heartbeat::{
    GpuHealth, Heartbeat, MAX_ACTIVE_RENTALS, MAX_HEARTBEAT_SIZE, MAX_MAINTENANCE_AHEAD,
    MAX_MAINTENANCE_SECS, MAX_TEMPERATURE_C, Maintenance,
};
pub use identity::Identity;
pub use launch::{
    DEFAULT_VOLUME_PATH, Launch, MAX_ENV, MAX_PORTS, PublishedPort, Share, VolumeMount,
};
pub use offer::{
    GpuInfo, MAX_ALLOWED_IMAGES, MAX_ESCROW_RATE, MAX_GPUS, MAX_OFFER_IMAGES, MAX_OFFER_TTL, Offer,
    OfferId, check_image_pattern, image_allowed, image_ready, payout_binding_message,
};
pub use rental::{
    QuoteTerms, RentalRequest, RentalResponse, SignedQuote, SshEndpoint, VolumeInfo, WorkloadState,
    WorkloadStatus, logs_request_message, volumes_request_message,
};
pub use sync::{MAX_SYNC_PAGE, MAX_SYNC_RESPONSE_SIZE, SyncRequest, SyncResponse};

/// Gossipsub topic on which providers publish their offers.
pub const OFFERS_TOPIC: &str = "gpuflow/offers/1";
/// Gossipsub topic on which providers publish heartbeats.
pub const HEARTBEATS_TOPIC: &str = "gpuflow/heartbeats/1";
/// Request-response protocol spoken between renters, nodes and providers.
pub const RENTAL_PROTOCOL: &str = "/gpuflow/rental/1";
/// Request-response protocol over which nodes hand each other their stored offers.
pub const SYNC_PROTOCOL: &str = "/gpuflow/sync/1";
/// Request-response protocol over which a node challenges a provider to compute matrix
/// products (see [`challenge`]).
pub const CHALLENGE_PROTOCOL: &str = "/gpuflow/challenge/1";
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
