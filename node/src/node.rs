//! A whole node in one call: identity, store, swarm, ingest and HTTP API, wired together.
//! The binary only adds config parsing, the ready line and signals; tests start nodes
//! in-process the same way.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use gpuflow_p2p::{Multiaddr, Network, NetworkConfig, NetworkError, NetworkEvent, PeerId};
use gpuflow_protocol::{Identity, unix_now};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    ApiState, NodeConfig, Store, StoreError, app, ingest,
    metrics::Metrics,
    reliability::{self, AttestError, Attester},
};

/// Longest wait for the swarm to report every listen address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The identity key could not be read or created.
    #[error("cannot load the identity in {dir}: {source}")]
    Identity {
        /// The data directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The index could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The swarm could not be built or could not listen.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// Another process listens on a `--p2p-listen` port.
    #[error(
        "the listen address {0} is already in use by another process; pick another port with \
         --p2p-listen"
    )]
    P2pAddrInUse(Multiaddr),
    /// Not every listen address came up.
    #[error("the swarm did not listen on {missing} within {LISTEN_TIMEOUT:?}")]
    NotListening {
        /// The addresses still missing.
        missing: String,
    },
    /// The attester key could not be loaded.
    #[error(transparent)]
    Attester(#[from] AttestError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}; pick another --http address: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A started node. Dropping it leaves the node running until the runtime stops; call
/// [`RunningNode::shutdown`] to stop it.
#[derive(Debug)]
pub struct RunningNode {
    /// Where the HTTP API answers.
    pub http_addr: SocketAddr,
    /// The addresses the swarm listens on, one per configured listen address, in order.
    pub p2p_addrs: Vec<Multiaddr>,
    /// The node's peer id.
    pub peer_id: PeerId,
    network: Network,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// The line the binary prints on stdout once it is ready, which supervisors (and the
    /// devnet) parse: `gpuflow-node ready http=http://ADDR p2p=MULTIADDR/p2p/PEER`, then
    /// ` quic=MULTIADDR/p2p/PEER` when a QUIC address is configured. `p2p` is the first TCP
    /// address (the first address when there is no TCP one).
    pub fn ready_line(&self) -> String {
        let is_quic = |a: &&Multiaddr| a.iter().any(|p| matches!(p, gpuflow_p2p::Protocol::QuicV1));
        let tcp = self.p2p_addrs.iter().find(|a| !is_quic(a)).or(self.p2p_addrs.first());
        let mut line = format!("gpuflow-node ready http=http://{}", self.http_addr);
        if let Some(tcp) = tcp {
            line.push_str(&format!(" p2p={tcp}/p2p/{}", self.peer_id));
        }
        if let Some(quic) = self.p2p_addrs.iter().find(is_quic) {
            line.push_str(&format!(" quic={quic}/p2p/{}", self.peer_id));
        }
        line
    }

    /// The p2p address to bootstrap other peers from (the first, with `/p2p/PEER`).
    pub fn bootstrap_addr(&self) -> Multiaddr {
        let addr = self.p2p_addrs.first().expect("a node listens on at least one address");
        format!("{addr}/p2p/{}", self.peer_id).parse().expect("an address with a peer id parses")
    }

    /// The handle to the node's swarm.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Stops taking requests, lets those in flight finish, and stops the swarm, ingest and
    /// chain watcher.
    /// Everything the node acknowledged is already committed.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.server.await.unwrap_or(Ok(()));
        for task in self.background {
            task.abort();
        }
        served
    }
}

/// Starts a node with `config` on the current Tokio runtime.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    let identity =
        Identity::load_or_create(&config.data_dir.join("identity.key")).map_err(|source| {
            NodeError::Identity { dir: config.data_dir.display().to_string(), source }
        })?;
    let store =
        Store::open_with(&config.data_dir.join("index.sqlite"), config.reliability.bucket_secs)?;
    let attester = match (&config.reliability.attester_keystore, &config.chain) {
        (Some(keystore), Some(chain)) => {
            let attester = Attester::load(keystore, chain).await?;
            tracing::info!(attester = %attester.address(), "signing downtime attestations");
            Some(attester)
        }
        _ => None,
    };
    let metrics = Arc::new(Metrics::new());

    let (network, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: identity.clone(),
        listen: config.p2p_listen.clone(),
        bootstrap: config.bootstrap.clone(),
        subscribe_offers: true,
        serve_requests: false,
    })
    .map_err(|error| match error {
        NetworkError::AddrInUse(addr) => NodeError::P2pAddrInUse(addr),
        error => error.into(),
    })?;
    let swarm = tokio::spawn(event_loop.run());
    let (p2p_addrs, backlog) = await_listeners(&config.p2p_listen, &mut events).await?;

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|source| NodeError::Http { addr: config.http, source })?;
    let http_addr =
        listener.local_addr().map_err(|source| NodeError::Http { addr: config.http, source })?;
    // Evidence counts from here: the node is up and listening. Committed before the ready
    // line, so that a crash right after it still leaves the start on record.
    let params = config.reliability.params();
    let started_at = unix_now();
    store.mark_alive(started_at, started_at).await?;
    let alive = tokio::spawn(reliability::mark_alive_every(
        store.clone(),
        started_at,
        reliability::alive_interval(params.bucket_secs),
    ));
    let ingest = tokio::spawn(ingest::run(
        network.clone(),
        events,
        backlog,
        store.clone(),
        metrics.clone(),
        config.rate_limit,
    ));

    let prober = tokio::spawn(reliability::probe::probe_every(
        network.clone(),
        store.clone(),
        config.reliability.probe_interval,
    ));
    let scorer = tokio::spawn(reliability::rescore_every(
        store.clone(),
        params,
        config.reliability.score_interval,
    ));
    let mut background = vec![swarm, alive, ingest, prober, scorer];
    if !config.challenge.per_provider.is_zero() {
        let challenger = crate::challenger::challenge_every(
            network.clone(),
            store.clone(),
            identity,
            metrics.clone(),
            config.challenge.clone(),
        );
        background.push(tokio::spawn(challenger));
    }
    if let Some(chain) = config.chain.clone() {
        tracing::info!(escrow = %chain.escrow, confirmations = chain.confirmations, "indexing the escrow");
        let watcher = crate::watcher::run(chain, store.clone(), metrics.clone());
        background.push(tokio::spawn(watcher));
    }

    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    let peer_id = network.peer_id();
    let node = gpuflow_protocol::api::NodeInfo {
        peer_id: peer_id.to_string(),
        addrs: p2p_addrs.iter().map(|addr| format!("{addr}/p2p/{peer_id}")).collect(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        token_symbol: token_symbol(&config).await,
        token_decimals: config.token_decimals,
    };
    let state = ApiState {
        store,
        token_decimals: config.token_decimals,
        metrics,
        rentals_indexed: config.chain.is_some(),
        params,
        attester,
        node: Arc::new(node),
    };
    let server = tokio::spawn(async move {
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(RunningNode {
        http_addr,
        p2p_addrs,
        peer_id: network.peer_id(),
        network,
        shutdown,
        server,
        background,
    })
}

/// The payment token's symbol as configured, else as the escrow's token names itself
/// (`tokens` when it cannot be read or shown), else `USDC`.
async fn token_symbol(config: &NodeConfig) -> String {
    if let Some(symbol) = &config.token_symbol {
        return symbol.clone();
    }
    let Some(chain) = &config.chain else { return "USDC".to_owned() };
    let read = async {
        let provider = gpuflow_escrow::connect(&chain.rpc_url, None)?;
        gpuflow_escrow::Escrow::new(provider, chain.escrow).await?.symbol().await
    };
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(symbol)) if gpuflow_protocol::is_shown_symbol(&symbol) => symbol,
        Ok(Ok(_)) => "tokens".to_owned(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read the token's symbol; set token_symbol");
            "tokens".to_owned()
        }
        Err(_) => {
            tracing::warn!("no answer reading the token's symbol; set token_symbol");
            "tokens".to_owned()
        }
    }
}

/// Waits until every configured listen address reported an actual address (the port is
/// known only then), keeping every other event for the ingest.
async fn await_listeners(
    configured: &[Multiaddr],
    events: &mut mpsc::Receiver<NetworkEvent>,
) -> Result<(Vec<Multiaddr>, Vec<NetworkEvent>), NodeError> {
    let mut found: Vec<Option<Multiaddr>> = vec![None; configured.len()];
    let mut backlog = Vec::new();
    let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
    while found.iter().any(Option::is_none) {
        let event = tokio::time::timeout_at(deadline, events.recv()).await;
        match event {
            Ok(Some(NetworkEvent::Listening(addr))) => {
                let slot = configured
                    .iter()
                    .zip(&mut found)
                    .find(|(wanted, slot)| slot.is_none() && shape(wanted) == shape(&addr));
                if let Some((_, slot)) = slot {
                    *slot = Some(addr);
                }
            }
            Ok(Some(other)) => backlog.push(other),
            Ok(None) => return Err(NetworkError::Stopped.into()),
            Err(_) => {
                let missing = configured
                    .iter()
                    .zip(&found)
                    .filter(|(_, slot)| slot.is_none())
                    .map(|(addr, _)| addr.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(NodeError::NotListening { missing });
            }
        }
    }
    Ok((found.into_iter().flatten().collect(), backlog))
}

/// The protocol stack of an address without its values: `/ip4/0.0.0.0/tcp/0` and
/// `/ip4/127.0.0.1/tcp/4001` have the same shape.
fn shape(addr: &Multiaddr) -> Vec<&'static str> {
    addr.iter().map(|protocol| protocol.tag()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_match_by_shape() {
        let parse = |a: &str| a.parse::<Multiaddr>().unwrap();
        assert_eq!(shape(&parse("/ip4/0.0.0.0/tcp/0")), shape(&parse("/ip4/10.1.2.3/tcp/4001")));
        assert_ne!(
            shape(&parse("/ip4/0.0.0.0/tcp/0")),
            shape(&parse("/ip4/0.0.0.0/udp/0/quic-v1"))
        );
        assert_ne!(shape(&parse("/ip4/0.0.0.0/tcp/0")), shape(&parse("/ip6/::/tcp/0")));
    }
}
