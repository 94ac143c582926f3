//! Real swarms on loopback: gossip of signed offers and the rental request-response.

use std::time::Duration;

use alloy::{
    primitives::Address,
    signers::{SignerSync, local::PrivateKeySigner},
};
use gpuflow_p2p::{Acceptance, Multiaddr, Network, NetworkConfig, NetworkEvent};
use gpuflow_protocol::{
    GpuInfo, Identity, Offer, RentalRequest, RentalResponse, SignedEnvelope, WorkloadState,
    WorkloadStatus, payout_binding_message, unix_now,
};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(20);

fn peer(
    listen: bool,
    bootstrap: Vec<Multiaddr>,
    subscribe: bool,
    serve: bool,
) -> (Network, Receiver<NetworkEvent>) {
    let (network, events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: Identity::generate(),
        listen: if listen { vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()] } else { Vec::new() },
        bootstrap,
        subscribe_offers: subscribe,
        serve_requests: serve,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    (network, events)
}

/// Waits, bounded, for the first event `pick` accepts.
async fn next<T>(
    events: &mut Receiver<NetworkEvent>,
    what: &str,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("event loop running");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

fn offer(identity: &Identity) -> SignedEnvelope {
    let payout = PrivateKeySigner::random();
    let now = unix_now();
    let offer = Offer {
        seq: 1,
        issued_at: now,
        expires_at: now + 300,
        chain_id: 31337,
        escrow: Address::repeat_byte(1),
        payout: payout.address(),
        payout_proof: payout
            .sign_message_sync(payout_binding_message(&identity.peer_id()).as_bytes())
            .unwrap(),
        price_per_second: 100,
        gpus: vec![GpuInfo {
            name: "NVIDIA GeForce RTX 4090".into(),
            uuid: "GPU-1".into(),
            memory_bytes: 25_757_220_864,
            pci_bus_id: "00000000:01:00.0".into(),
            compute_capability: "8.9".into(),
            driver_version: "550.54.14".into(),
            cuda_version: "12.4".into(),
        }],
        verified: false,
        region: "test".into(),
        listen_addrs: Vec::new(),
    };
    SignedEnvelope::seal(identity, &offer)
}

#[tokio::test]
async fn offer_crosses_gossipsub_and_requests_get_answers() {
    // The index subscribes to offers.
    let (index, mut index_events) = peer(true, Vec::new(), true, false);
    let index_addr = next(&mut index_events, "listen address", |e| match e {
        NetworkEvent::Listening(addr) => Some(addr),
        _ => None,
    })
    .await;

    // The provider joins through the index and publishes once the index subscribed.
    let provider_identity = Identity::generate();
    let (provider, mut provider_events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: provider_identity.clone(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![index_addr],
        subscribe_offers: false,
        serve_requests: true,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    let subscriber = next(&mut provider_events, "offers subscriber", |e| match e {
        NetworkEvent::OffersSubscriber(peer) => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(subscriber, index.peer_id());
    let sent = offer(&provider_identity);
    provider.publish_offer(&sent).await.unwrap();

    let (message_id, source, data) = next(&mut index_events, "offer", |e| match e {
        NetworkEvent::Offer { message_id, source, data } => Some((message_id, source, data)),
        _ => None,
    })
    .await;
    assert_eq!(source, provider.peer_id());
    let received = SignedEnvelope::from_bytes(&data).unwrap().open::<Offer>().unwrap();
    assert_eq!(received.signer, provider.peer_id());
    assert_eq!(received.envelope.to_bytes(), sent.to_bytes());
    index.report(message_id, source, Acceptance::Accept).await.unwrap();

    // A client with no listener asks the provider directly.
    let provider_addrs = provider.listen_addrs().await.unwrap();
    let (client, _client_events) = peer(false, Vec::new(), false, false);
    let ask = tokio::spawn({
        let client = client.clone();
        let peer = provider.peer_id();
        async move { client.request(peer, provider_addrs, RentalRequest::Status { rental_id: 7 }).await }
    });
    let (request, channel) = next(&mut provider_events, "rental request", |e| match e {
        NetworkEvent::RentalRequest { request, channel, .. } => Some((request, channel)),
        _ => None,
    })
    .await;
    assert_eq!(request, RentalRequest::Status { rental_id: 7 });
    let status = WorkloadStatus {
        rental_id: 7,
        state: WorkloadState::Running,
        gpus: vec!["GPU-1".into()],
        started_at: Some(1),
        ended_at: None,
        detail: "pid 1".into(),
    };
    provider.respond(channel, RentalResponse::Status(status.clone())).await.unwrap();
    let answer = tokio::time::timeout(WAIT, ask).await.expect("answer in time").unwrap().unwrap();
    assert_eq!(answer, RentalResponse::Status(status));
}

#[tokio::test]
async fn unreachable_provider_is_an_error_not_a_hang() {
    let (client, _events) = peer(false, Vec::new(), false, false);
    // Nothing listens on port 9 of loopback.
    let addr: Multiaddr = "/ip4/127.0.0.1/tcp/9".parse().unwrap();
    let result = tokio::time::timeout(
        WAIT,
        client.request(
            Identity::generate().peer_id(),
            vec![addr],
            RentalRequest::Status { rental_id: 1 },
        ),
    )
    .await
    .expect("the request fails within the timeout");
    assert!(result.is_err(), "{result:?}");
}
