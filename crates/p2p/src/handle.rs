use gpuflow_protocol::{OFFERS_TOPIC, RentalRequest, RentalResponse, SignedEnvelope};
use libp2p::{Multiaddr, PeerId, gossipsub::MessageId, request_response::ResponseChannel};
use tokio::sync::{mpsc, oneshot};

use crate::NetworkError;

/// What the application hears from the network.
#[derive(Debug)]
pub enum NetworkEvent {
    /// The swarm is listening on a new address.
    Listening(Multiaddr),
    /// An offer arrived on `gpuflow/offers/1`. It is not forwarded to other peers until
    /// the application reports it valid with [`Network::report`].
    Offer {
        /// Gossipsub id, to report the verdict for.
        message_id: MessageId,
        /// The peer that relayed it to us.
        source: PeerId,
        /// The encoded envelope.
        data: Vec<u8>,
    },
    /// A peer subscribed to `gpuflow/offers/1`: a good moment to (re)publish.
    OffersSubscriber(PeerId),
    /// A peer asked us something on `/gpuflow/rental/1`; answer with [`Network::respond`].
    RentalRequest {
        /// Who asked.
        peer: PeerId,
        /// What they asked.
        request: RentalRequest,
        /// Where the answer goes.
        channel: ResponseChannel<RentalResponse>,
    },
}

/// The application's verdict on a gossiped message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: keep and forward.
    Accept,
    /// Invalid: drop and penalise the relaying peer.
    Reject,
    /// Not useful (stale, duplicate): drop without penalty.
    Ignore,
}

pub(crate) enum Command {
    Publish {
        topic: &'static str,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Report {
        message_id: MessageId,
        source: PeerId,
        acceptance: Acceptance,
    },
    Request {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RentalRequest,
        reply: oneshot::Sender<Result<RentalResponse, NetworkError>>,
    },
    Respond {
        channel: ResponseChannel<RentalResponse>,
        response: RentalResponse,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
}

/// Cloneable handle to the [`crate::EventLoop`] that owns the swarm.
#[derive(Clone, Debug)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl Network {
    pub(crate) fn new(commands: mpsc::Sender<Command>, peer_id: PeerId) -> Self {
        Self { commands, peer_id }
    }

    /// Our own peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Publishes a signed offer on `gpuflow/offers/1`.
    pub async fn publish_offer(&self, offer: &SignedEnvelope) -> Result<(), NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Publish { topic: OFFERS_TOPIC, data: offer.to_bytes(), reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Reports the verdict on a gossiped message, so gossipsub forwards or drops it.
    pub async fn report(
        &self,
        message_id: MessageId,
        source: PeerId,
        acceptance: Acceptance,
    ) -> Result<(), NetworkError> {
        self.send(Command::Report { message_id, source, acceptance }).await
    }

    /// Sends `request` to `peer`, dialing `addrs` if not yet connected, and waits for
    /// its answer (bounded by the protocol's request timeout).
    pub async fn request(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RentalRequest,
    ) -> Result<RentalResponse, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request { peer, addrs, request, reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Answers a [`NetworkEvent::RentalRequest`].
    pub async fn respond(
        &self,
        channel: ResponseChannel<RentalResponse>,
        response: RentalResponse,
    ) -> Result<(), NetworkError> {
        self.send(Command::Respond { channel, response }).await
    }

    /// The addresses the swarm listens on now.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ListenAddrs { reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    async fn send(&self, command: Command) -> Result<(), NetworkError> {
        self.commands.send(command).await.map_err(|_| NetworkError::Stopped)
    }
}
