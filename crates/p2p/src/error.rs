/// Failures of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The transport could not be set up.
    #[error("could not set up the libp2p transport: {0}")]
    Transport(String),
    /// A listen address could not be bound.
    #[error("could not listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: libp2p::Multiaddr,
        /// Why.
        reason: String,
    },
    /// Another process already listens on a listen address's port. libp2p would bind it
    /// beside that process (SO_REUSEPORT), and the kernel would split incoming dials
    /// between the two peers.
    #[error("the listen address {0} is already in use by another process; pick another port")]
    AddrInUse(libp2p::Multiaddr),
    /// Gossipsub refused to publish.
    #[error("could not publish: {0}")]
    Publish(#[from] libp2p::gossipsub::PublishError),
    /// A request is larger than the peer reads, so it was not sent: the peer would close the
    /// stream without an answer.
    #[error(
        "the request is {size} bytes, over the {limit}-byte limit of {protocol}; it was not sent"
    )]
    RequestTooLarge {
        /// The request-response protocol.
        protocol: &'static str,
        /// The encoded request's size in bytes.
        size: usize,
        /// The most the peer reads.
        limit: usize,
    },
    /// The remote peer could not be reached or did not answer.
    #[error("peer {peer} did not answer: {reason}")]
    Request {
        /// The peer asked.
        peer: libp2p::PeerId,
        /// Why the request failed.
        reason: String,
    },
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Stopped,
}
