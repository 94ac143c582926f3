//! The libp2p network layer of gpuflow.
//!
//! [`new`] builds a swarm and splits it the way long-lived rust-libp2p services do: an
//! [`EventLoop`] that owns the `Swarm` and must be spawned, a cloneable [`Network`] handle
//! that sends it commands, and a stream of [`NetworkEvent`]s for the application. Nothing
//! else ever touches the swarm.
//!
//! The swarm speaks TCP and QUIC (noise + yamux on TCP), identify, Kademlia
//! (`/gpuflow/kad/1`, seeded with the bootstrap peers, used to find more peers), gossipsub
//! on `gpuflow/offers/1` and `gpuflow/heartbeats/1` with application validation, size limits
//! per topic and peer scoring, and three request-response protocols: `/gpuflow/rental/1`
//! (renters ask providers), `/gpuflow/sync/1` (a node asks another node for its offers)
//! and `/gpuflow/challenge/1` (a node challenges a provider to compute matrix products).

mod behaviour;
mod codec;
mod error;
mod event_loop;
mod handle;

pub use error::NetworkError;
pub use event_loop::EventLoop;
pub use handle::{Acceptance, Network, NetworkEvent};
pub use libp2p::{
    Multiaddr, PeerId, gossipsub::MessageId, multiaddr::Protocol, request_response::ResponseChannel,
};

use gpuflow_protocol::Identity;

/// How a peer joins the network.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The peer's key; also signs its messages.
    pub identity: Identity,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4001`. Empty for pure clients.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start, and again whenever the peer finds itself alone.
    pub bootstrap: Vec<Multiaddr>,
    /// Act as an index (nodes): subscribe to offers and heartbeats and serve
    /// `/gpuflow/sync/1`. Publishers need not subscribe.
    pub subscribe_offers: bool,
    /// Answer `/gpuflow/rental/1` and `/gpuflow/challenge/1` requests (providers); clients
    /// only send them.
    pub serve_requests: bool,
}

/// Builds the swarm and returns the handle, the application's event stream and the
/// event loop to spawn.
pub fn new(
    config: NetworkConfig,
) -> Result<(Network, tokio::sync::mpsc::Receiver<NetworkEvent>, EventLoop), NetworkError> {
    let peer_id = config.identity.peer_id();
    let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(256);
    let (reports_tx, reports_rx) = tokio::sync::mpsc::unbounded_channel();
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(1024);
    let event_loop = EventLoop::new(&config, commands_rx, reports_rx, events_tx)?;
    Ok((Network::new(commands_tx, reports_tx, peer_id), events_rx, event_loop))
}
