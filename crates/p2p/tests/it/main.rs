//! Real swarms on loopback: gossip of signed offers and heartbeats, peer scoring, QUIC,
//! Kademlia discovery, and the rental, sync and challenge request-response protocols and
//! their limits.

use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use futures::StreamExt;
use gpuflow_p2p::{
    Acceptance, Multiaddr, Network, NetworkConfig, NetworkError, NetworkEvent, PeerId, Protocol,
};
use gpuflow_protocol::{
    GpuHealth, Heartbeat, Identity, MAX_MESSAGE_SIZE, Offer, RentalRequest, RentalResponse,
    SignedEnvelope, SyncResponse, WorkloadState, WorkloadStatus, testing::TestProvider, unix_now,
};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(20);

const TCP: &str = "/ip4/127.0.0.1/tcp/0";
const QUIC: &str = "/ip4/127.0.0.1/udp/0/quic-v1";

fn peer(
    listen: bool,
    bootstrap: Vec<Multiaddr>,
    subscribe: bool,
    serve: bool,
) -> (Network, Receiver<NetworkEvent>) {
    peer_on(if listen { &[TCP] } else { &[] }, bootstrap, subscribe, serve)
}

fn peer_on(
    listen: &[&str],
    bootstrap: Vec<Multiaddr>,
    subscribe: bool,
    serve: bool,
) -> (Network, Receiver<NetworkEvent>) {
    let (network, events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: Identity::generate(),
        listen: listen.iter().map(|a| a.parse().unwrap()).collect(),
        bootstrap,
        subscribe_offers: subscribe,
        serve_requests: serve,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    (network, events)
}

/// An index listening on `listen`, with its address (including `/p2p/PEER`).
async fn index_on(
    listen: &str,
    bootstrap: Vec<Multiaddr>,
) -> (Network, Receiver<NetworkEvent>, Multiaddr) {
    let (index, mut events) = peer_on(&[listen], bootstrap, true, false);
    let addr = first_listen_addr(&mut events).await;
    let addr = format!("{addr}/p2p/{}", index.peer_id()).parse().unwrap();
    (index, events, addr)
}

/// Waits, bounded, for the address a peer listens on.
async fn first_listen_addr(events: &mut Receiver<NetworkEvent>) -> Multiaddr {
    next(events, "listen address", |e| match e {
        NetworkEvent::Listening(addr) => Some(addr),
        _ => None,
    })
    .await
}

/// Polls, bounded, until `check` holds.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A provider that joined through `index`, once `index` subscribed to the topics (so that a
/// publication reaches it).
async fn provider_of(index: &Network, index_addr: Multiaddr) -> (Network, Identity) {
    let identity = Identity::generate();
    let (provider, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: identity.clone(),
        listen: vec![TCP.parse().unwrap()],
        bootstrap: vec![index_addr],
        subscribe_offers: false,
        serve_requests: true,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    let subscriber = next(&mut events, "offers subscriber", |e| match e {
        NetworkEvent::OffersSubscriber(peer) => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(subscriber, index.peer_id());
    (provider, identity)
}

fn heartbeat(identity: &Identity, seq: u64) -> SignedEnvelope {
    let health = GpuHealth {
        uuid: String::new(),
        temperature_c: 55,
        utilization_pct: 100,
        memory_used_bytes: 1 << 30,
        ecc_errors: Some(0),
    };
    provider(identity).heartbeat(seq, health)
}

/// A provider signing as `identity`, with a payout key of its own.
fn provider(identity: &Identity) -> TestProvider {
    TestProvider { identity: identity.clone(), payout: PrivateKeySigner::random() }
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
    provider(identity).offer_at(unix_now(), 300, |_| {})
}

#[tokio::test]
async fn offer_crosses_gossipsub_and_requests_get_answers() {
    // The index subscribes to offers.
    let (index, mut index_events) = peer(true, Vec::new(), true, false);
    let index_addr = first_listen_addr(&mut index_events).await;

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
        refusal: None,
        ssh: Some(gpuflow_protocol::SshEndpoint {
            host: "203.0.113.7".into(),
            port: 32768,
            user: "root".into(),
        }),
        ports: vec![gpuflow_protocol::PublishedPort { container: 8888, host: 32769 }],
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

#[tokio::test]
async fn heartbeats_cross_gossipsub_for_validation() {
    let (index, mut events, addr) = index_on(TCP, Vec::new()).await;
    let (provider, identity) = provider_of(&index, addr).await;
    let sent = heartbeat(&identity, 3);
    provider.publish_heartbeat(&sent).await.unwrap();
    let (message_id, source, data) = next(&mut events, "heartbeat", |e| match e {
        NetworkEvent::Heartbeat { message_id, source, data } => Some((message_id, source, data)),
        _ => None,
    })
    .await;
    assert_eq!(source, provider.peer_id());
    let received = SignedEnvelope::decode::<Heartbeat>(&data).unwrap();
    assert_eq!((received.signer, received.body.seq), (identity.peer_id(), 3));
    index.report(message_id, source, Acceptance::Accept).await.unwrap();
}

#[tokio::test]
async fn rejected_messages_cost_the_relay_its_score() {
    let (index, mut events, addr) = index_on(TCP, Vec::new()).await;
    let (provider, identity) = provider_of(&index, addr).await;
    for seq in 1..=3 {
        provider.publish_heartbeat(&heartbeat(&identity, seq)).await.unwrap();
        let (message_id, source) = next(&mut events, "heartbeat", |e| match e {
            NetworkEvent::Heartbeat { message_id, source, .. } => Some((message_id, source)),
            _ => None,
        })
        .await;
        index.report(message_id, source, Acceptance::Reject).await.unwrap();
    }
    let score = index.peer_score(provider.peer_id()).await.unwrap().expect("a known peer");
    // Three invalid messages: -15 × 3² = -135, less what has decayed, plus at most 20 of
    // credit.
    assert!(score < -50.0, "score {score}");
}

#[tokio::test]
async fn offers_cross_quic() {
    let (index, mut events, addr) = index_on(QUIC, Vec::new()).await;
    assert!(addr.to_string().contains("/quic-v1/"), "{addr}");
    let (provider, identity) = provider_of(&index, addr).await;
    provider.publish_offer(&offer(&identity)).await.unwrap();
    let data = next(&mut events, "offer over QUIC", |e| match e {
        NetworkEvent::Offer { data, .. } => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(SignedEnvelope::decode::<Offer>(&data).unwrap().signer, identity.peer_id());
}

#[tokio::test]
async fn kademlia_finds_peers_beyond_the_bootstrap_peer() {
    // a ← b ← c: c only knows b, and learns about a through the DHT.
    let (a, _a_events, a_addr) = index_on(TCP, Vec::new()).await;
    let (_b, _b_events, b_addr) = index_on(TCP, vec![a_addr]).await;
    let (c, _c_events, _) = index_on(TCP, vec![b_addr]).await;
    let a_id: PeerId = a.peer_id();
    until("c connecting to a", async || c.connected_peers().await.unwrap().contains(&a_id)).await;
}

#[tokio::test]
async fn indexes_find_each_other_and_sync() {
    let (a, mut a_events, a_addr) = index_on(TCP, Vec::new()).await;
    let (b, mut b_events, _) = index_on(TCP, vec![a_addr]).await;
    // Each side learns that the other is an index.
    let found = next(&mut b_events, "index peer", |e| match e {
        NetworkEvent::IndexPeer(peer) => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(found, a.peer_id());

    let stored = offer(&Identity::generate());
    let ask = tokio::spawn({
        let b = b.clone();
        async move { b.sync(found, None).await }
    });
    let (peer, request, channel) = next(&mut a_events, "sync request", |e| match e {
        NetworkEvent::SyncRequest { peer, request, channel } => Some((peer, request, channel)),
        _ => None,
    })
    .await;
    assert_eq!(peer, b.peer_id());
    assert_eq!(request.after, None);
    a.respond_sync(channel, SyncResponse { offers: vec![stored.clone()], next: None })
        .await
        .unwrap();
    let page = tokio::time::timeout(WAIT, ask).await.expect("answer in time").unwrap().unwrap();
    assert_eq!(page.next, None);
    assert_eq!(page.offers.len(), 1);
    assert_eq!(page.offers[0].to_bytes(), stored.to_bytes());
    // Providers are not indexes: they do not serve the protocol, so asking one fails.
    let (provider, _) = provider_of(&a, listen_addr(&a).await).await;
    assert!(a.sync(provider.peer_id(), None).await.is_err());
}

async fn listen_addr(index: &Network) -> Multiaddr {
    let addr = index.listen_addrs().await.unwrap().remove(0);
    format!("{addr}/p2p/{}", index.peer_id()).parse().unwrap()
}

fn listening_on(addr: &Multiaddr) -> Result<(), gpuflow_p2p::NetworkError> {
    let (_network, _events, _event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: Identity::generate(),
        listen: vec![addr.clone()],
        bootstrap: Vec::new(),
        subscribe_offers: true,
        serve_requests: false,
    })?;
    Ok(())
}

#[tokio::test]
async fn a_listen_port_in_use_is_refused_not_shared() {
    // Taken by another swarm (which binds with SO_REUSEPORT), over TCP and over QUIC.
    for unused in [TCP, QUIC] {
        let (_index, _events, addr) = index_on(unused, Vec::new()).await;
        let addr: Multiaddr = addr.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect();
        match listening_on(&addr) {
            Err(error @ gpuflow_p2p::NetworkError::AddrInUse(_)) => assert_eq!(
                error.to_string(),
                format!(
                    "the listen address {addr} is already in use by another process; \
                     pick another port"
                )
            ),
            other => panic!("listening on {addr} beside another swarm: {other:?}"),
        }
    }
    // Taken by a plain listener.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: Multiaddr =
        format!("/ip4/127.0.0.1/tcp/{}", plain.local_addr().unwrap().port()).parse().unwrap();
    assert!(matches!(listening_on(&addr), Err(gpuflow_p2p::NetworkError::AddrInUse(_))));
    // Port 0 picks a free port every time, and a freed port can be taken again.
    for ephemeral in [TCP, TCP, QUIC, QUIC] {
        listening_on(&ephemeral.parse().unwrap()).unwrap();
    }
    drop(plain);
    listening_on(&addr).unwrap();
}

/// A quote request whose JSON is exactly `size` bytes.
fn quote_request_of(size: usize) -> RentalRequest {
    let quote = |ssh_key: String| RentalRequest::Quote {
        renter: alloy::primitives::Address::repeat_byte(1),
        duration: 3600,
        image: None,
        ssh_key: Some(ssh_key),
        gpus: None,
        launch: Default::default(),
    };
    let overhead = serde_json::to_vec(&quote(String::new())).unwrap().len();
    quote("a".repeat(size - overhead))
}

#[tokio::test]
async fn a_rental_request_over_the_limit_is_refused_before_it_is_sent() {
    let (provider, mut provider_events) = peer(true, Vec::new(), false, true);
    let provider_addr = first_listen_addr(&mut provider_events).await;
    let (client, _client_events) = peer(false, Vec::new(), false, false);
    let over = client.request(
        provider.peer_id(),
        vec![provider_addr.clone()],
        quote_request_of(MAX_MESSAGE_SIZE + 1),
    );
    match tokio::time::timeout(Duration::from_secs(1), over).await.expect("an answer at once") {
        Err(error @ NetworkError::RequestTooLarge { .. }) => assert_eq!(
            error.to_string(),
            "the request is 65537 bytes, over the 65536-byte limit of /gpuflow/rental/1; it \
             was not sent"
        ),
        other => panic!("an oversized request: {other:?}"),
    }
    assert!(client.connected_peers().await.unwrap().is_empty(), "nothing was dialed");

    // A request of exactly the limit is the provider's to answer.
    let ask = tokio::spawn({
        let (client, peer) = (client.clone(), provider.peer_id());
        async move {
            client.request(peer, vec![provider_addr], quote_request_of(MAX_MESSAGE_SIZE)).await
        }
    });
    let (request, channel) = next(&mut provider_events, "rental request", |e| match e {
        NetworkEvent::RentalRequest { request, channel, .. } => Some((request, channel)),
        _ => None,
    })
    .await;
    assert_eq!(request, quote_request_of(MAX_MESSAGE_SIZE));
    let refused = RentalResponse::Error { message: "no".into() };
    provider.respond(channel, refused.clone()).await.unwrap();
    let answer = tokio::time::timeout(WAIT, ask).await.expect("answer in time").unwrap();
    assert_eq!(answer.unwrap(), refused);
}

#[tokio::test]
async fn a_provider_closes_the_stream_of_an_oversized_request_at_once() {
    use libp2p::{
        request_response::{self, ProtocolSupport},
        swarm::SwarmEvent,
    };
    let (provider, mut provider_events) = peer(true, Vec::new(), false, true);
    let provider_addr = first_listen_addr(&mut provider_events).await;
    // A requester without the size check: libp2p's own JSON codec, no limits.
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(Default::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| {
            request_response::json::Behaviour::<RentalRequest, RentalResponse>::new(
                [(libp2p::StreamProtocol::new("/gpuflow/rental/1"), ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(WAIT),
            )
        })
        .unwrap()
        .build();
    let started = std::time::Instant::now();
    swarm.behaviour_mut().send_request_with_addresses(
        &provider.peer_id(),
        quote_request_of(MAX_MESSAGE_SIZE + 1),
        vec![provider_addr],
    );
    let failure = tokio::time::timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    error, ..
                }) => return error,
                SwarmEvent::Behaviour(request_response::Event::Message { message, .. }) => {
                    panic!("the provider answered an oversized request: {message:?}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a failure before the request timeout");
    // The provider closed the stream without an answer, well before the requester's
    // timeout: it waits neither for the rest of the request nor for the application.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}: {failure}", started.elapsed());
    assert!(matches!(failure, request_response::OutboundFailure::Io(_)), "{failure}");
}

#[tokio::test]
async fn a_challenge_is_committed_then_opened_and_checked_over_the_wire() {
    use gpuflow_protocol::challenge::{
        Answer, Challenge, ChallengeRequest, ChallengeResponse, Outcome, check::Verifier,
    };

    // The provider answers on the CPU and signs with its identity, as the agent does.
    let signer = Identity::generate();
    let (provider, mut provider_events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: signer.clone(),
        listen: vec![TCP.parse().unwrap()],
        bootstrap: Vec::new(),
        subscribe_offers: false,
        serve_requests: true,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    let provider_addr = first_listen_addr(&mut provider_events).await;
    let provider_identity_peer = provider.peer_id();
    let (node, _node_events) = peer(false, Vec::new(), false, false);
    let seed = alloy::primitives::B256::repeat_byte(3);
    let challenge = Challenge { seed, n: 64, rounds: 2, gpus: vec!["GPU-0".into()] };
    let mut verifier = Verifier::new(
        challenge.clone(),
        provider_identity_peer,
        alloy::primitives::B256::repeat_byte(9),
        4,
    );
    let ask = tokio::spawn({
        let (node, challenge) = (node.clone(), challenge.clone());
        async move {
            node.challenge(
                provider_identity_peer,
                vec![provider_addr],
                ChallengeRequest::Challenge(challenge),
            )
            .await
        }
    });
    let (request, channel) = next(&mut provider_events, "challenge", |e| match e {
        NetworkEvent::ChallengeRequest { request, channel, .. } => Some((request, channel)),
        _ => None,
    })
    .await;
    let ChallengeRequest::Challenge(asked) = request else { panic!("{request:?}") };
    assert_eq!(asked, challenge);
    let answer = Answer::compute_cpu(&asked);
    let envelope = SignedEnvelope::seal(&signer, &answer.commitment());
    provider.respond_challenge(channel, ChallengeResponse::Commitment { envelope }).await.unwrap();
    let ChallengeResponse::Commitment { envelope } =
        tokio::time::timeout(WAIT, ask).await.expect("answer in time").unwrap().unwrap()
    else {
        panic!("not a commitment")
    };
    let rows = verifier.on_commitment(envelope).unwrap();

    let open = tokio::spawn({
        let node = node.clone();
        let rows = rows.clone();
        async move {
            node.challenge(
                provider_identity_peer,
                Vec::new(),
                ChallengeRequest::Open { seed, rows },
            )
            .await
        }
    });
    let (request, channel) = next(&mut provider_events, "opening request", |e| match e {
        NetworkEvent::ChallengeRequest { request, channel, .. } => Some((request, channel)),
        _ => None,
    })
    .await;
    assert_eq!(request, ChallengeRequest::Open { seed, rows: rows.clone() });
    let envelope = SignedEnvelope::seal(&signer, &answer.open(&rows).unwrap());
    provider.respond_challenge(channel, ChallengeResponse::Opening { envelope }).await.unwrap();
    let ChallengeResponse::Opening { envelope } =
        tokio::time::timeout(WAIT, open).await.expect("answer in time").unwrap().unwrap()
    else {
        panic!("not an opening")
    };
    let checked = verifier.on_opening(envelope);
    let result = verifier.conclude(checked, unix_now(), 10, "Simulated GPU", None);
    assert_eq!(result.outcome, Outcome::Unrated, "{}", result.reason);
}
