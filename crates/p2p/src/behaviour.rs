use std::time::Duration;

use gpuflow_protocol::{MAX_MESSAGE_SIZE, RENTAL_PROTOCOL, RentalRequest, RentalResponse};
use libp2p::{
    StreamProtocol, gossipsub, identify, identity::Keypair, request_response,
    swarm::NetworkBehaviour,
};

use crate::NetworkError;

/// Room for gossipsub's own framing around an envelope.
const GOSSIP_OVERHEAD: usize = 4 * 1024;
/// Largest answer accepted on `/gpuflow/rental/1`.
const MAX_RESPONSE_SIZE: u64 = 1024 * 1024;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) rental: request_response::json::Behaviour<RentalRequest, RentalResponse>,
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, serve_requests: bool) -> Result<Self, NetworkError> {
        let gossipsub_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(Duration::from_secs(1))
            .max_transmit_size(MAX_MESSAGE_SIZE + GOSSIP_OVERHEAD)
            // The application checks every envelope before it is forwarded.
            .validate_messages()
            .validation_mode(gossipsub::ValidationMode::Strict)
            // Identical bytes are the same message, whoever relays them.
            .message_id_fn(|message| {
                use sha2::Digest;
                gossipsub::MessageId::from(sha2::Sha256::digest(&message.data)[..20].to_vec())
            })
            .build()
            .map_err(|e| NetworkError::Transport(e.to_string()))?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossipsub_config,
        )
        .map_err(|e| NetworkError::Transport(e.to_string()))?;
        let identify = identify::Behaviour::new(identify::Config::new(
            "/gpuflow/1.0.0".to_owned(),
            key.public(),
        ));
        let support = if serve_requests {
            request_response::ProtocolSupport::Full
        } else {
            request_response::ProtocolSupport::Outbound
        };
        let codec = request_response::json::codec::Codec::default()
            .set_request_size_maximum(MAX_MESSAGE_SIZE as u64)
            .set_response_size_maximum(MAX_RESPONSE_SIZE);
        let rental = request_response::Behaviour::with_codec(
            codec,
            [(StreamProtocol::new(RENTAL_PROTOCOL), support)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
        );
        Ok(Self { gossipsub, identify, rental })
    }
}
