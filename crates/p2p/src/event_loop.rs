use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::StreamExt;
use gpuflow_protocol::{
    HEARTBEATS_TOPIC, OFFERS_TOPIC, RentalRequest, RentalResponse, SYNC_PROTOCOL, SyncRequest,
    SyncResponse,
    challenge::{ChallengeRequest, ChallengeResponse},
};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm,
    gossipsub::{self, MessageId},
    identify, kad,
    multiaddr::Protocol,
    noise,
    request_response::{self, OutboundRequestId},
    swarm::{
        SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Acceptance, NetworkConfig, NetworkError, NetworkEvent,
    behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL, Roles},
    handle::{Command, Report},
};

/// How often a peer with no connections dials its bootstrap peers again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(5);
/// Peers discovered through Kademlia are dialed while we have fewer connections than this,
/// so that gossipsub can build a mesh (it wants 6 to 12 peers per topic).
const TARGET_PEERS: usize = 8;
/// Listen addresses taken from one identify message, bounding what a peer can make us store.
const MAX_ADDRS_PER_PEER: usize = 8;

type Pending<T> = HashMap<OutboundRequestId, oneshot::Sender<Result<T, NetworkError>>>;

/// Owns the `Swarm`; drive it with [`EventLoop::run`]. Stops when every [`crate::Network`]
/// handle is dropped.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    reports: mpsc::UnboundedReceiver<Report>,
    events: mpsc::Sender<NetworkEvent>,
    bootstrap: Vec<Multiaddr>,
    roles: Roles,
    offers: gossipsub::TopicHash,
    heartbeats: gossipsub::TopicHash,
    pending_rental: Pending<RentalResponse>,
    pending_sync: Pending<SyncResponse>,
    pending_challenge: Pending<ChallengeResponse>,
    /// Indexes already reported as [`NetworkEvent::IndexPeer`] while connected; identify
    /// runs on every connection and again on pushes, a sync once per peer is enough.
    announced_indexes: HashSet<PeerId>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer_id", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    pub(crate) fn new(
        config: &NetworkConfig,
        commands: mpsc::Receiver<Command>,
        reports: mpsc::UnboundedReceiver<Report>,
        events: mpsc::Sender<NetworkEvent>,
    ) -> Result<Self, NetworkError> {
        let transport_err = |e: &dyn std::fmt::Display| NetworkError::Transport(e.to_string());
        let roles = Roles {
            index: config.subscribe_offers,
            rental: config.serve_requests,
            reachable: !config.listen.is_empty(),
        };
        let mut swarm =
            libp2p::SwarmBuilder::with_existing_identity(config.identity.libp2p_keypair())
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .map_err(|e| transport_err(&e))?
                .with_quic()
                .with_behaviour(|key| Behaviour::new(key, roles).map_err(Into::into))
                .map_err(|e| transport_err(&e))?
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build();
        let offers = gossipsub::IdentTopic::new(OFFERS_TOPIC);
        let heartbeats = gossipsub::IdentTopic::new(HEARTBEATS_TOPIC);
        if roles.index {
            for topic in [&offers, &heartbeats] {
                swarm.behaviour_mut().gossipsub.subscribe(topic).map_err(|e| transport_err(&e))?;
            }
        }
        for addr in &config.listen {
            ensure_unused(addr)?;
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetworkError::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        // Bootstrap addresses that name their peer seed the DHT right away; the others are
        // added once identify tells us who answered.
        for addr in &config.bootstrap {
            if let Some((peer, transport)) = split_peer(addr) {
                swarm.behaviour_mut().kad.add_address(&peer, transport);
            }
        }
        let mut event_loop = Self {
            swarm,
            commands,
            reports,
            events,
            bootstrap: config.bootstrap.clone(),
            roles,
            offers: offers.hash(),
            heartbeats: heartbeats.hash(),
            pending_rental: HashMap::new(),
            pending_sync: HashMap::new(),
            pending_challenge: HashMap::new(),
            announced_indexes: HashSet::new(),
        };
        event_loop.dial_bootstrap();
        Ok(event_loop)
    }

    /// Runs until every handle is dropped.
    pub async fn run(mut self) {
        let mut redial = tokio::time::interval(REDIAL_INTERVAL);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                Some((message_id, source, acceptance)) = self.reports.recv() => {
                    self.on_report(message_id, source, acceptance);
                }
                _ = redial.tick() => {
                    if self.swarm.connected_peers().next().is_none() {
                        self.dial_bootstrap();
                    }
                }
            }
        }
    }

    fn dial_bootstrap(&mut self) {
        for addr in &self.bootstrap {
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "could not dial bootstrap peer");
            }
        }
    }

    async fn emit(&mut self, event: NetworkEvent) {
        // A closed receiver means the application no longer listens; keep serving commands.
        let _ = self.events.send(event).await;
    }

    fn connected(&self) -> usize {
        self.swarm.connected_peers().count()
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.emit(NetworkEvent::Listening(address)).await;
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connected");
                if num_established.get() == 1 {
                    let connected = self.connected();
                    self.emit(NetworkEvent::PeersChanged { connected }).await;
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                tracing::debug!(%peer_id, "disconnected");
                self.announced_indexes.remove(&peer_id);
                let connected = self.connected();
                self.emit(NetworkEvent::PeersChanged { connected }).await;
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => {
                self.on_gossipsub_event(event).await
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identified(peer_id, info).await,
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) => self.on_discovered(peer, addresses.into_vec()),
            SwarmEvent::Behaviour(BehaviourEvent::Rental(event)) => {
                self.on_rental_event(event).await
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event).await,
            SwarmEvent::Behaviour(BehaviourEvent::Challenge(event)) => {
                self.on_challenge_event(event).await
            }
            _ => {}
        }
    }

    async fn on_gossipsub_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message { propagation_source: source, message_id, message } => {
                let data = message.data;
                if message.topic == self.offers {
                    self.emit(NetworkEvent::Offer { message_id, source, data }).await;
                } else if message.topic == self.heartbeats {
                    self.emit(NetworkEvent::Heartbeat { message_id, source, data }).await;
                } else {
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &source,
                        gossipsub::MessageAcceptance::Ignore,
                    );
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } if topic == self.offers => {
                self.emit(NetworkEvent::OffersSubscriber(peer_id)).await;
            }
            _ => {}
        }
    }

    async fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        let speaks = |protocol: &StreamProtocol| info.protocols.contains(protocol);
        if speaks(&KAD_PROTOCOL) {
            for addr in info.listen_addrs.into_iter().take(MAX_ADDRS_PER_PEER) {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
            }
        }
        if self.roles.index
            && speaks(&StreamProtocol::new(SYNC_PROTOCOL))
            && self.swarm.is_connected(&peer)
            && self.announced_indexes.insert(peer)
        {
            self.emit(NetworkEvent::IndexPeer(peer)).await;
        }
    }

    /// Dials peers that Kademlia found while we are short of connections: this is how a
    /// node that bootstrapped through one peer ends up meshed with the others.
    fn on_discovered(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) {
        if self.swarm.is_connected(&peer) || self.connected() >= TARGET_PEERS {
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(addresses)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "could not dial a discovered peer");
        }
    }

    async fn on_rental_event(
        &mut self,
        event: request_response::Event<RentalRequest, RentalResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.emit(NetworkEvent::RentalRequest { peer, request, channel }).await;
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.pending_rental.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some(reply) = self.pending_rental.remove(&request_id) {
                    let _ =
                        reply.send(Err(NetworkError::Request { peer, reason: error.to_string() }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound rental request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    async fn on_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.emit(NetworkEvent::SyncRequest { peer, request, channel }).await;
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.pending_sync.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some(reply) = self.pending_sync.remove(&request_id) {
                    let _ =
                        reply.send(Err(NetworkError::Request { peer, reason: error.to_string() }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    async fn on_challenge_event(
        &mut self,
        event: request_response::Event<ChallengeRequest, ChallengeResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.emit(NetworkEvent::ChallengeRequest { peer, request, channel }).await;
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.pending_challenge.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some(reply) = self.pending_challenge.remove(&request_id) {
                    let _ =
                        reply.send(Err(NetworkError::Request { peer, reason: error.to_string() }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound challenge failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_report(&mut self, message_id: MessageId, source: PeerId, acceptance: Acceptance) {
        let acceptance = match acceptance {
            Acceptance::Accept => gossipsub::MessageAcceptance::Accept,
            Acceptance::Reject => gossipsub::MessageAcceptance::Reject,
            Acceptance::Ignore => gossipsub::MessageAcceptance::Ignore,
        };
        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
            &message_id,
            &source,
            acceptance,
        );
    }

    fn on_command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::Publish { topic, data, reply } => {
                let result = behaviour
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), data)
                    .map(drop)
                    .map_err(NetworkError::from);
                let _ = reply.send(result);
            }
            Command::Request { peer, addrs, request, reply } => {
                let id = behaviour.rental.send_request_with_addresses(&peer, request, addrs);
                self.pending_rental.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                if behaviour.rental.send_response(channel, response).is_err() {
                    tracing::debug!("rental requester went away before the answer");
                }
            }
            Command::Sync { peer, request, reply } => {
                let id = behaviour.sync.send_request(&peer, request);
                self.pending_sync.insert(id, reply);
            }
            Command::RespondSync { channel, response } => {
                if behaviour.sync.send_response(channel, response).is_err() {
                    tracing::debug!("sync requester went away before the answer");
                }
            }
            Command::Challenge { peer, addrs, request, reply } => {
                let id = behaviour.challenge.send_request_with_addresses(&peer, request, addrs);
                self.pending_challenge.insert(id, reply);
            }
            Command::RespondChallenge { channel, response } => {
                if behaviour.challenge.send_response(channel, response).is_err() {
                    tracing::debug!("challenger went away before the answer");
                }
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(behaviour.gossipsub.peer_score(&peer));
            }
        }
    }
}

/// Splits `/ip4/…/tcp/…/p2p/PEER` into the peer and its transport address.
fn split_peer(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut transport = addr.clone();
    match transport.pop()? {
        Protocol::P2p(peer) => Some((peer, transport)),
        _ => None,
    }
}

/// Fails with [`NetworkError::AddrInUse`] when another socket is bound to `addr`'s TCP or
/// UDP port. libp2p-tcp binds every listener with SO_REUSEPORT (so that dials can leave
/// from the listening port), so its own bind succeeds beside another process listening
/// there, and the kernel then splits incoming connections between two peers. A plain bind
/// without that option conflicts with any listener, and is released at once. Port 0 is
/// always free; errors other than "in use" are left for the swarm's own bind to report.
fn ensure_unused(addr: &Multiaddr) -> Result<(), NetworkError> {
    use socket2::{Domain, Socket, Type};

    let mut protocols = addr.iter();
    let ip: std::net::IpAddr = match protocols.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let (kind, port) = match protocols.next() {
        Some(Protocol::Tcp(port)) => (Type::STREAM, port),
        Some(Protocol::Udp(port)) => (Type::DGRAM, port),
        _ => return Ok(()),
    };
    if port == 0 {
        return Ok(());
    }
    let socket_addr = std::net::SocketAddr::new(ip, port);
    let bound = Socket::new(Domain::for_address(socket_addr), kind, None).and_then(|socket| {
        if ip.is_ipv6() {
            // As libp2p binds it: an IPv6 listener beside an IPv4 one on the same port.
            socket.set_only_v6(true)?;
        }
        if kind == Type::STREAM {
            // As libp2p binds it, so that connections of a previous run in TIME_WAIT do not
            // count; a listening socket still conflicts.
            socket.set_reuse_address(true)?;
        }
        socket.bind(&socket_addr.into())
    });
    match bound {
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            Err(NetworkError::AddrInUse(addr.clone()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_addresses_split_into_peer_and_transport() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}").parse().unwrap();
        assert_eq!(split_peer(&addr), Some((peer, "/ip4/127.0.0.1/tcp/4001".parse().unwrap())));
        assert_eq!(split_peer(&"/ip4/127.0.0.1/tcp/4001".parse().unwrap()), None);
    }
}
