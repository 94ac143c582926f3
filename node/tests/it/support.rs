//! Nodes, providers and polling for the integration tests.

use std::{future::Future, path::Path, time::Duration};

use alloy::signers::local::PrivateKeySigner;
use gpuflow_node::{NodeConfig, RateLimit, RunningNode};
use gpuflow_p2p::{Multiaddr, Network, NetworkConfig, NetworkEvent};
use gpuflow_protocol::{GpuHealth, Identity, SignedEnvelope, api, testing::TestProvider};

/// Longest wait for anything to happen; generous for a loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it yields, failing after [`WAIT`] with `what`.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The settings of a loopback test node keeping its data in `dir`.
pub(crate) fn config(dir: &Path, bootstrap: Vec<Multiaddr>) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_owned(),
        http: "127.0.0.1:0".parse().unwrap(),
        p2p_listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap,
        token_decimals: 6,
        token_symbol: None,
        rate_limit: RateLimit { per_second: 1000, burst: 1000 },
        chain: None,
        reliability: Default::default(),
        challenge: Default::default(),
    }
}

/// A node started in this process, with its data directory.
pub(crate) struct TestNode {
    pub(crate) node: RunningNode,
    pub(crate) url: String,
    pub(crate) _dir: tempfile::TempDir,
}

impl TestNode {
    pub(crate) async fn start(bootstrap: Vec<Multiaddr>) -> Self {
        Self::start_with(bootstrap, |_| {}).await
    }

    pub(crate) async fn start_with(
        bootstrap: Vec<Multiaddr>,
        edit: impl FnOnce(&mut NodeConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), bootstrap);
        edit(&mut config);
        let node = gpuflow_node::start(config).await.expect("the node starts");
        let url = format!("http://{}", node.http_addr);
        Self { node, url, _dir: dir }
    }

    pub(crate) fn addr(&self) -> Multiaddr {
        self.node.bootstrap_addr()
    }

    /// Ids of the offers `GET /v1/offers` lists, sorted.
    pub(crate) async fn offer_ids(&self) -> Vec<String> {
        offer_ids(&self.url).await
    }

    pub(crate) async fn metric(&self, line: &str) -> u64 {
        metric(&self.url, line).await
    }
}

/// Ids of every offer a node lists (with conflicts), sorted.
pub(crate) async fn offer_ids(url: &str) -> Vec<String> {
    let list: api::OfferList =
        get_json(&format!("{url}/v1/offers?limit=1000&include_conflicts=1")).await;
    let mut ids: Vec<_> = list.offers.into_iter().map(|o| o.id).collect();
    ids.sort();
    ids
}

/// `GET url` as JSON, or `None` while it answers an error status.
pub(crate) async fn try_get_json<T: serde::de::DeserializeOwned>(url: &str) -> Option<T> {
    let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    if !response.status().is_success() {
        return None;
    }
    Some(response.json().await.unwrap())
}

pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.unwrap()
}

/// The value of the metric sample `line` (`name{labels}`), 0 when absent.
pub(crate) async fn metric(url: &str, line: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
}

/// A provider identity with a payout key, signing offers of one GPU of its own.
#[derive(Default)]
pub(crate) struct Provider(TestProvider);

impl std::ops::Deref for Provider {
    type Target = TestProvider;

    fn deref(&self) -> &TestProvider {
        &self.0
    }
}

impl Provider {
    /// A provider paid at `payout`.
    pub(crate) fn with_payout(payout: PrivateKeySigner) -> Self {
        Self(TestProvider::with_payout(payout))
    }

    pub(crate) fn id(&self) -> String {
        self.0.id().to_string()
    }

    pub(crate) fn heartbeat(&self, seq: u64) -> SignedEnvelope {
        let health = GpuHealth {
            uuid: String::new(),
            temperature_c: 70,
            utilization_pct: 99,
            memory_used_bytes: 20_000_000_000,
            ecc_errors: None,
        };
        self.0.heartbeat(seq, health)
    }
}

/// A libp2p peer that publishes what the tests give it, connected to one node. Envelopes
/// are signed by their providers, not by the publisher, so one publisher can relay many.
pub(crate) struct Publisher {
    pub(crate) network: Network,
}

impl Publisher {
    /// Joins through `node` and waits until `node` subscribed, so that publications reach it.
    pub(crate) async fn join(node: Multiaddr) -> Self {
        let node_peer = match node.iter().last() {
            Some(gpuflow_p2p::Protocol::P2p(peer)) => peer,
            _ => panic!("{node} has no /p2p/ peer id"),
        };
        let (network, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
            identity: Identity::generate(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: vec![node],
            subscribe_offers: false,
            serve_requests: false,
        })
        .unwrap();
        tokio::spawn(event_loop.run());
        tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await.expect("the event loop runs") {
                    NetworkEvent::OffersSubscriber(peer) if peer == node_peer => return,
                    _ => {}
                }
            }
        })
        .await
        .expect("the node subscribes to offers");
        Self { network }
    }

    pub(crate) async fn offer(&self, envelope: &SignedEnvelope) {
        self.network.publish_offer(envelope).await.expect("gossipsub publishes");
    }

    pub(crate) async fn heartbeat(&self, envelope: &SignedEnvelope) {
        self.network.publish_heartbeat(envelope).await.expect("gossipsub publishes");
    }
}
