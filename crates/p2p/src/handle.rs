use gpuflow_protocol::{
    CHALLENGE_PROTOCOL, HEARTBEATS_TOPIC, MAX_SYNC_PAGE, OFFERS_TOPIC, RENTAL_PROTOCOL,
    RentalRequest, RentalResponse, SYNC_PROTOCOL, SignedEnvelope, SyncRequest, SyncResponse,
    challenge::{ChallengeRequest, ChallengeResponse},
};
use libp2p::{Multiaddr, PeerId, gossipsub::MessageId, request_response::ResponseChannel};
use tokio::sync::{mpsc, oneshot};

use crate::{
    NetworkError,
    behaviour::{MAX_CHALLENGE_REQUEST_SIZE, MAX_RENTAL_REQUEST_SIZE, MAX_SYNC_REQUEST_SIZE},
};

/// What the application hears from the network.
///
/// New kinds of events are added as the protocol grows; match with a wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
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
    /// A heartbeat arrived on `gpuflow/heartbeats/1`; report it like an offer.
    Heartbeat {
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
    /// Another index connected and serves `/gpuflow/sync/1`: ask it for its offers with
    /// [`Network::sync`]. Reported once per connection, and only to indexes.
    IndexPeer(PeerId),
    /// An index asked for a page of our offers; answer with [`Network::respond_sync`].
    SyncRequest {
        /// Who asked.
        peer: PeerId,
        /// Which page.
        request: SyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<SyncResponse>,
    },
    /// A node challenged us on `/gpuflow/challenge/1`; answer with
    /// [`Network::respond_challenge`].
    ChallengeRequest {
        /// Who asked.
        peer: PeerId,
        /// What they asked.
        request: ChallengeRequest,
        /// Where the answer goes.
        channel: ResponseChannel<ChallengeResponse>,
    },
    /// The number of connected peers changed.
    PeersChanged {
        /// Peers with at least one open connection.
        connected: usize,
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
    Sync {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetworkError>>,
    },
    RespondSync {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    Challenge {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: ChallengeRequest,
        reply: oneshot::Sender<Result<ChallengeResponse, NetworkError>>,
    },
    RespondChallenge {
        channel: ResponseChannel<ChallengeResponse>,
        response: ChallengeResponse,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
}

/// A verdict on a gossiped message, on its way to gossipsub.
pub(crate) type Report = (MessageId, PeerId, Acceptance);

/// Cloneable handle to the [`crate::EventLoop`] that owns the swarm.
#[derive(Clone, Debug)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    /// Unbounded: the event loop may be waiting for the application to take an event while
    /// the application reports on earlier ones, and neither may wait for the other. There is
    /// at most one report per message the event loop handed out.
    reports: mpsc::UnboundedSender<Report>,
    peer_id: PeerId,
}

impl Network {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        reports: mpsc::UnboundedSender<Report>,
        peer_id: PeerId,
    ) -> Self {
        Self { commands, reports, peer_id }
    }

    /// Our own peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Publishes a signed offer on `gpuflow/offers/1`.
    pub async fn publish_offer(&self, offer: &SignedEnvelope) -> Result<(), NetworkError> {
        self.publish(OFFERS_TOPIC, offer).await
    }

    /// Publishes a signed [`gpuflow_protocol::Heartbeat`] on `gpuflow/heartbeats/1`.
    ///
    /// Fails with [`NetworkError::Publish`] (`NoPeersSubscribedToTopic`) while no index is
    /// connected; a heartbeat is worthless later, so callers just log it and go on.
    pub async fn publish_heartbeat(&self, heartbeat: &SignedEnvelope) -> Result<(), NetworkError> {
        self.publish(HEARTBEATS_TOPIC, heartbeat).await
    }

    async fn publish(
        &self,
        topic: &'static str,
        envelope: &SignedEnvelope,
    ) -> Result<(), NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Publish { topic, data: envelope.to_bytes(), reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Reports the verdict on a gossiped message, so gossipsub forwards or drops it. Never
    /// waits for the event loop.
    pub async fn report(
        &self,
        message_id: MessageId,
        source: PeerId,
        acceptance: Acceptance,
    ) -> Result<(), NetworkError> {
        self.reports.send((message_id, source, acceptance)).map_err(|_| NetworkError::Stopped)
    }

    /// Sends `request` to `peer`, dialing `addrs` if not yet connected, and waits for
    /// its answer (bounded by the protocol's request timeout). A request larger than a
    /// provider reads fails at once with [`NetworkError::RequestTooLarge`].
    pub async fn request(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RentalRequest,
    ) -> Result<RentalResponse, NetworkError> {
        within_limit(RENTAL_PROTOCOL, &request, MAX_RENTAL_REQUEST_SIZE)?;
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

    /// Asks the index `peer` (connected, see [`NetworkEvent::IndexPeer`]) for the page of
    /// its offers after `after`, at most [`MAX_SYNC_PAGE`] of them.
    pub async fn sync(
        &self,
        peer: PeerId,
        after: Option<String>,
    ) -> Result<SyncResponse, NetworkError> {
        let (reply, rx) = oneshot::channel();
        let request = SyncRequest { after, limit: MAX_SYNC_PAGE };
        // `after` comes from the peer's previous page, so it may be anything.
        within_limit(SYNC_PROTOCOL, &request, MAX_SYNC_REQUEST_SIZE)?;
        self.send(Command::Sync { peer, request, reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Answers a [`NetworkEvent::SyncRequest`].
    pub async fn respond_sync(
        &self,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    ) -> Result<(), NetworkError> {
        self.send(Command::RespondSync { channel, response }).await
    }

    /// Sends a challenge request to the provider `peer`, dialing `addrs` if not yet
    /// connected, and waits for its answer (up to two minutes: the products are computed
    /// before the commitment comes back).
    pub async fn challenge(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: ChallengeRequest,
    ) -> Result<ChallengeResponse, NetworkError> {
        within_limit(CHALLENGE_PROTOCOL, &request, MAX_CHALLENGE_REQUEST_SIZE)?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::Challenge { peer, addrs, request, reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Answers a [`NetworkEvent::ChallengeRequest`].
    pub async fn respond_challenge(
        &self,
        channel: ResponseChannel<ChallengeResponse>,
        response: ChallengeResponse,
    ) -> Result<(), NetworkError> {
        self.send(Command::RespondChallenge { channel, response }).await
    }

    /// The addresses the swarm listens on now.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ListenAddrs { reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    /// The peers we have at least one connection with.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ConnectedPeers { reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    /// Gossipsub's score of `peer`, if it is known; negative after invalid messages.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::PeerScore { peer, reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    async fn send(&self, command: Command) -> Result<(), NetworkError> {
        self.commands.send(command).await.map_err(|_| NetworkError::Stopped)
    }
}

/// Fails with [`NetworkError::RequestTooLarge`] when `request` encodes to more than the
/// `limit` its receiver reads: the receiver would close the stream without an answer, and
/// the requester would learn only that it got none.
fn within_limit(
    protocol: &'static str,
    request: &impl serde::Serialize,
    limit: usize,
) -> Result<(), NetworkError> {
    // What does not encode is the codec's to report.
    let size = serde_json::to_vec(request).map_or(0, |encoded| encoded.len());
    if size > limit {
        return Err(NetworkError::RequestTooLarge { protocol, size, limit });
    }
    Ok(())
}
