use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use gpuflow_protocol::{OFFERS_TOPIC, RentalResponse};
use libp2p::{
    Multiaddr, Swarm, gossipsub, noise,
    request_response::{self, OutboundRequestId},
    swarm::SwarmEvent,
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Acceptance, NetworkConfig, NetworkError, NetworkEvent,
    behaviour::{Behaviour, BehaviourEvent},
    handle::Command,
};

/// How often a peer with no connections dials its bootstrap peers again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(5);

type PendingRequest = oneshot::Sender<Result<RentalResponse, NetworkError>>;

/// Owns the `Swarm`; drive it with [`EventLoop::run`]. Stops when every [`crate::Network`]
/// handle is dropped.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    bootstrap: Vec<Multiaddr>,
    pending: HashMap<OutboundRequestId, (libp2p::PeerId, PendingRequest)>,
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
        events: mpsc::Sender<NetworkEvent>,
    ) -> Result<Self, NetworkError> {
        let transport_err = |e: &dyn std::fmt::Display| NetworkError::Transport(e.to_string());
        let serve_requests = config.serve_requests;
        let mut swarm =
            libp2p::SwarmBuilder::with_existing_identity(config.identity.libp2p_keypair())
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .map_err(|e| transport_err(&e))?
                .with_behaviour(|key| Behaviour::new(key, serve_requests).map_err(Into::into))
                .map_err(|e| transport_err(&e))?
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build();
        if config.subscribe_offers {
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&gossipsub::IdentTopic::new(OFFERS_TOPIC))
                .map_err(|e| transport_err(&e))?;
        }
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetworkError::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        let mut event_loop = Self {
            swarm,
            commands,
            events,
            bootstrap: config.bootstrap.clone(),
            pending: HashMap::new(),
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

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.emit(NetworkEvent::Listening(address)).await;
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connected");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => match event {
                gossipsub::Event::Message { propagation_source, message_id, message } => {
                    if message.topic == gossipsub::IdentTopic::new(OFFERS_TOPIC).hash() {
                        self.emit(NetworkEvent::Offer {
                            message_id,
                            source: propagation_source,
                            data: message.data,
                        })
                        .await;
                    } else {
                        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            gossipsub::MessageAcceptance::Ignore,
                        );
                    }
                }
                gossipsub::Event::Subscribed { peer_id, topic, .. }
                    if topic == gossipsub::IdentTopic::new(OFFERS_TOPIC).hash() =>
                {
                    self.emit(NetworkEvent::OffersSubscriber(peer_id)).await;
                }
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Rental(event)) => {
                self.on_rental_event(event).await
            }
            _ => {}
        }
    }

    async fn on_rental_event(
        &mut self,
        event: request_response::Event<gpuflow_protocol::RentalRequest, RentalResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.emit(NetworkEvent::RentalRequest { peer, request, channel }).await;
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some((_, reply)) = self.pending.remove(&request_id) {
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

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), data)
                    .map(drop)
                    .map_err(NetworkError::from);
                let _ = reply.send(result);
            }
            Command::Report { message_id, source, acceptance } => {
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
            Command::Request { peer, addrs, request, reply } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .rental
                    .send_request_with_addresses(&peer, request, addrs);
                self.pending.insert(id, (peer, reply));
            }
            Command::Respond { channel, response } => {
                if self.swarm.behaviour_mut().rental.send_response(channel, response).is_err() {
                    tracing::debug!("rental requester went away before the answer");
                }
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
        }
    }
}
