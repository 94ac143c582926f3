use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use gpuflow_protocol::{
    CHALLENGE_PROTOCOL, HEARTBEATS_TOPIC, MAX_HEARTBEAT_SIZE, MAX_MESSAGE_SIZE,
    MAX_SYNC_RESPONSE_SIZE, OFFERS_TOPIC, RENTAL_PROTOCOL, RentalRequest, RentalResponse,
    SYNC_PROTOCOL, SyncRequest, SyncResponse,
    challenge::{ChallengeRequest, ChallengeResponse, MAX_OPENING_SIZE},
};
use libp2p::{
    PeerId, StreamProtocol, gossipsub, identify, identity::Keypair, kad, request_response,
    swarm::NetworkBehaviour,
};

use crate::{NetworkError, codec::JsonCodec};

/// Room for gossipsub's own framing around an envelope.
const GOSSIP_OVERHEAD: usize = 4 * 1024;
/// Largest request a provider reads on `/gpuflow/rental/1`; a larger one is not sent.
pub(crate) const MAX_RENTAL_REQUEST_SIZE: usize = MAX_MESSAGE_SIZE;
/// Largest answer accepted on `/gpuflow/rental/1`.
const MAX_RESPONSE_SIZE: usize = 1024 * 1024;
/// Largest request an index reads on `/gpuflow/sync/1`; a larger one is not sent.
pub(crate) const MAX_SYNC_REQUEST_SIZE: usize = 1024;
/// Largest request a provider reads on `/gpuflow/challenge/1`; a larger one is not sent.
pub(crate) const MAX_CHALLENGE_REQUEST_SIZE: usize = 4 * 1024;
/// Largest answer accepted on `/gpuflow/challenge/1`: an opening, in its envelope.
const MAX_CHALLENGE_RESPONSE_SIZE: usize = MAX_OPENING_SIZE + 64 * 1024;
/// How long a node waits for a challenge's answer: the products are computed before the
/// commitment is sent.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(120);
/// Our own Kademlia protocol, so gpuflow peers never mix with the public IPFS DHT.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/gpuflow/kad/1");

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) rental: request_response::Behaviour<JsonCodec<RentalRequest, RentalResponse>>,
    pub(crate) sync: request_response::Behaviour<JsonCodec<SyncRequest, SyncResponse>>,
    pub(crate) challenge:
        request_response::Behaviour<JsonCodec<ChallengeRequest, ChallengeResponse>>,
}

/// What the local peer does on the network, which decides which protocols it serves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Roles {
    /// Indexes offers: subscribes to the topics and serves `/gpuflow/sync/1`.
    pub(crate) index: bool,
    /// Serves `/gpuflow/rental/1` and `/gpuflow/challenge/1` (providers).
    pub(crate) rental: bool,
    /// Listens, so it can answer Kademlia queries.
    pub(crate) reachable: bool,
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, roles: Roles) -> Result<Self, NetworkError> {
        let setup = |e: &dyn std::fmt::Display| NetworkError::Transport(e.to_string());
        let offers = gossipsub::IdentTopic::new(OFFERS_TOPIC).hash();
        let heartbeats = gossipsub::IdentTopic::new(HEARTBEATS_TOPIC).hash();
        let gossipsub_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(Duration::from_secs(1))
            .max_transmit_size(MAX_MESSAGE_SIZE + GOSSIP_OVERHEAD)
            .max_transmit_size_for_topic(MAX_HEARTBEAT_SIZE + GOSSIP_OVERHEAD, heartbeats.clone())
            // The application checks every envelope before it is forwarded.
            .validate_messages()
            .validation_mode(gossipsub::ValidationMode::Strict)
            // Identical bytes are the same message, whoever relays them.
            .message_id_fn(|message| {
                use sha2::Digest;
                gossipsub::MessageId::from(sha2::Sha256::digest(&message.data)[..20].to_vec())
            })
            .build()
            .map_err(|e| setup(&e))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossipsub_config,
        )
        .map_err(|e| setup(&e))?;
        let (params, thresholds) = peer_scoring([offers, heartbeats]);
        gossipsub.with_peer_score(params, thresholds).map_err(|e| setup(&e))?;

        let identify = identify::Behaviour::new(identify::Config::new(
            "/gpuflow/1.0.0".to_owned(),
            key.public(),
        ));

        let local = PeerId::from(key.public());
        let mut kad = kad::Behaviour::with_config(
            local,
            kad::store::MemoryStore::new(local),
            kad::Config::new(KAD_PROTOCOL),
        );
        // Without a confirmed external address (always the case on loopback and behind NAT
        // until AutoNAT says otherwise) Kademlia would stay a client and never answer, so
        // listening peers serve the DHT from the start.
        kad.set_mode(Some(if roles.reachable { kad::Mode::Server } else { kad::Mode::Client }));

        let support = |serve: bool| {
            if serve {
                request_response::ProtocolSupport::Full
            } else {
                request_response::ProtocolSupport::Outbound
            }
        };
        let rental = request_response::Behaviour::with_codec(
            JsonCodec::new(MAX_RENTAL_REQUEST_SIZE, MAX_RESPONSE_SIZE),
            [(StreamProtocol::new(RENTAL_PROTOCOL), support(roles.rental))],
            request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
        );
        let sync = request_response::Behaviour::with_codec(
            JsonCodec::new(MAX_SYNC_REQUEST_SIZE, MAX_SYNC_RESPONSE_SIZE),
            [(StreamProtocol::new(SYNC_PROTOCOL), support(roles.index))],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        let challenge = request_response::Behaviour::with_codec(
            JsonCodec::new(MAX_CHALLENGE_REQUEST_SIZE, MAX_CHALLENGE_RESPONSE_SIZE),
            [(StreamProtocol::new(CHALLENGE_PROTOCOL), support(roles.rental))],
            request_response::Config::default().with_request_timeout(CHALLENGE_TIMEOUT),
        );
        Ok(Self { gossipsub, identify, kad, rental, sync, challenge })
    }
}

/// Gossipsub peer scoring tuned for two quiet topics where every message is checked by the
/// application.
///
/// The only penalty is for invalid messages (P4, squared): a peer's third invalid message
/// in about a minute takes it below the graylist threshold, after which everything it
/// sends is dropped until the penalty decays (half-life ≈ 70 s). Time spent in the mesh and
/// first deliveries earn a little credit, capped, so an established relay survives one
/// unlucky message but not a stream of them. Mesh delivery-rate penalties (P3) are off:
/// offers and heartbeats are sparse, and an honest peer with nothing to relay must not look
/// like a lazy one. Messages that fail only for local reasons (expired in transit, already
/// known, rate limited) are *ignored*, never rejected, so they cost nothing.
fn peer_scoring(
    topics: [gossipsub::TopicHash; 2],
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.1,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -15.0,
        invalid_message_deliveries_decay: 0.99,
        ..Default::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: topics.into_iter().map(|t| (t, topic.clone())).collect(),
        // Positive credit is bounded so that it never outweighs more than two invalid messages.
        topic_score_cap: 20.0,
        // Several peers on one host are normal for development and tests on loopback; elsewhere
        // more than ten peers behind one address look like a Sybil attempt.
        ip_colocation_factor_whitelist: [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 3.0,
    };
    (params, thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_parameters_are_valid() {
        let topics = [OFFERS_TOPIC, HEARTBEATS_TOPIC].map(|t| gossipsub::IdentTopic::new(t).hash());
        let (params, thresholds) = peer_scoring(topics);
        params.validate().unwrap();
        thresholds.validate().unwrap();
        // Three invalid messages graylist a peer even at full positive credit; one does not
        // cut an established relay off from gossip.
        let p4 = |n: f64| {
            n * n * params.topics.values().next().unwrap().invalid_message_deliveries_weight
        };
        assert!(params.topic_score_cap + p4(3.0) < thresholds.graylist_threshold);
        assert!(params.topic_score_cap + p4(1.0) >= thresholds.gossip_threshold);
    }

    #[test]
    fn behaviour_builds_for_every_role() {
        for (index, rental, reachable) in
            [(true, false, true), (false, true, true), (false, false, false)]
        {
            Behaviour::new(&Keypair::generate_ed25519(), Roles { index, rental, reachable })
                .unwrap();
        }
    }
}
