//! `gpuflow-node`: indexes signed offers from the gpuflow network and serves search.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::Parser;
use gpuflow_node::{ApiState, Store, Upsert, app};
use gpuflow_p2p::{Acceptance, Multiaddr, Network, NetworkConfig, NetworkEvent};
use gpuflow_protocol::{Identity, Offer, SignedEnvelope, unix_now};
use tokio::sync::mpsc;

/// Index the offers of the gpuflow network and serve them over HTTP.
#[derive(Debug, Parser)]
#[command(
    name = "gpuflow-node",
    version,
    about,
    after_help = "Example:
  gpuflow-node --http 0.0.0.0:8080 --p2p-listen /ip4/0.0.0.0/tcp/4001"
)]
struct Args {
    /// Directory for the identity key and the SQLite index.
    #[arg(long, env = "GPUFLOW_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP API listen address (port 0 picks a free port).
    #[arg(long, env = "GPUFLOW_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// libp2p listen address.
    #[arg(long, env = "GPUFLOW_P2P_LISTEN", default_value = "/ip4/0.0.0.0/tcp/4001")]
    p2p_listen: Multiaddr,
    /// Peers to join the network through (repeatable).
    #[arg(long, env = "GPUFLOW_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Decimals of the payment token, to read `dph` in queries.
    #[arg(long, default_value_t = 6)]
    token_decimals: u8,
}

/// Offers signed further ahead than this are refused: the signer's clock is wrong.
const MAX_CLOCK_SKEW: u64 = 60;

#[tokio::main]
async fn main() {
    gpuflow_cli_util::init_tracing("info,libp2p=warn");
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => gpuflow_cli_util::config_dir().map_err(anyhow::Error::msg)?.join("node"),
    };
    let identity = Identity::load_or_create(&data_dir.join("identity.key"))
        .with_context(|| format!("loading the identity in {}", data_dir.display()))?;
    let store = Store::open(&data_dir.join("index.sqlite"))?;

    let (network, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity,
        listen: vec![args.p2p_listen],
        bootstrap: args.bootstrap,
        subscribe_offers: true,
        serve_requests: false,
    })?;
    tokio::spawn(event_loop.run());
    let p2p_addr = loop {
        match events.recv().await {
            Some(NetworkEvent::Listening(addr)) => break addr,
            Some(_) => continue,
            None => anyhow::bail!("the network stopped before listening"),
        }
    };

    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {}; pick another --http address", args.http))?;
    let http_addr = listener.local_addr()?;
    tokio::spawn(ingest(network.clone(), events, store.clone()));

    // One line on stdout tells supervisors (and the devnet) where the node is.
    println!("gpuflow-node ready http=http://{http_addr} p2p={p2p_addr}/p2p/{}", network.peer_id());
    let state = ApiState { store, token_decimals: args.token_decimals };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(gpuflow_cli_util::shutdown_signal())
        .await?;
    Ok(())
}

/// Verifies every gossiped offer, stores the good ones and tells gossipsub which to
/// forward.
async fn ingest(network: Network, mut events: mpsc::Receiver<NetworkEvent>, store: Store) {
    while let Some(event) = events.recv().await {
        let NetworkEvent::Offer { message_id, source, data } = event else {
            continue;
        };
        let acceptance = match check(&data) {
            Err(reason) => {
                tracing::warn!(%source, reason, "offer rejected");
                Acceptance::Reject
            }
            Ok(offer) => {
                let signer = offer.signer;
                match store.upsert_offer(offer, unix_now()).await {
                    Ok(Upsert::Stale) => Acceptance::Ignore,
                    Ok(outcome) => {
                        tracing::info!(%signer, ?outcome, "offer stored");
                        Acceptance::Accept
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not store an offer");
                        Acceptance::Ignore
                    }
                }
            }
        };
        if network.report(message_id, source, acceptance).await.is_err() {
            return;
        }
    }
}

fn check(data: &[u8]) -> Result<gpuflow_protocol::Verified<Offer>, String> {
    let offer = SignedEnvelope::from_bytes(data)
        .and_then(SignedEnvelope::open::<Offer>)
        .map_err(|e| format!("{}: {e}", e.reason()))?;
    let now = unix_now();
    if offer.body.expires_at <= now {
        return Err("expired".into());
    }
    if offer.body.issued_at > now + MAX_CLOCK_SKEW {
        return Err("issued in the future".into());
    }
    Ok(offer)
}
