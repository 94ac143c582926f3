//! A million offers: the node's memory and search latency over HTTP with that many offers,
//! the time a new node takes to sync them from a peer over libp2p, and the gossip load that
//! 100,000 providers' heartbeats put on one node (modelled from measured message sizes).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use gpuflow_protocol::{Heartbeat, MAX_SYNC_PAGE, SignedEnvelope, api::NetworkStats};

use crate::{
    data,
    report::{Figure, Section, Target, number, rss_mib},
    search::{self, NodeProcess},
};

/// Parameters of the million-offer benchmark.
#[derive(Clone, Debug)]
pub struct MillionParams {
    /// Seed of the data and the queries.
    pub seed: u64,
    /// Offers (and providers) in the node.
    pub offers: u64,
    /// Sequential queries for the latency figures.
    pub queries: usize,
    /// Providers whose heartbeats the gossip model carries.
    pub gossipers: u64,
    /// The `gpuflow-node` binary.
    pub node_bin: PathBuf,
    /// The command line to print beside the figures.
    pub command: String,
}

/// Seconds between two heartbeats of a provider (`gpuflow-provider --heartbeat-interval-secs`'s
/// default).
const HEARTBEAT_INTERVAL_SECS: f64 = 15.0;
/// gossipsub's mesh degree (`mesh_n`, the default the node keeps).
const MESH_DEGREE: f64 = 6.0;
/// Peers each gossip round's IHAVE goes to (`gossip_lazy`, default).
const GOSSIP_LAZY: f64 = 6.0;
/// Most message ids in one IHAVE (`max_ihave_length`, default).
const MAX_IHAVE_LENGTH: f64 = 5000.0;
/// Heartbeats of gossipsub whose messages an IHAVE names (`history_gossip`, default).
const HISTORY_GOSSIP: f64 = 3.0;
/// Bytes of one message id: the node's ids are 20 bytes of SHA-256 of the data.
const MESSAGE_ID_BYTES: f64 = 20.0;
/// What a signed gossipsub message adds around the data: the protobuf fields `from`
/// (a 38-byte ed25519 peer id), `seqno` (8), `topic` (`gpuflow/heartbeats/1`, 20) and
/// `signature` (64), each with a tag and a length, the RPC's own framing and length
/// prefix; then yamux's 12-byte frame header and noise's 16-byte tag and 2-byte length.
const GOSSIP_FRAMING_BYTES: f64 = 38.0 + 8.0 + 20.0 + 64.0 + 4.0 * 2.0 + 3.0 + 3.0 + 12.0 + 18.0;

/// Runs the benchmark.
pub async fn run(params: &MillionParams) -> anyhow::Result<Section> {
    let (dir, _temp, filled) = search::data_dir(params.seed, params.offers).await?;
    let mut details = format!(
        "## A million offers\n\nThe same data, made and stored the same way as for the \
         search figures, at {} offers:\n\n",
        number(params.offers as f64)
    );
    details.push_str(&filled);

    let node = NodeProcess::start(&params.node_bin, &dir, &[]).await?;
    let loaded_rss = rss_mib(node.pid).context("reading the node's VmRSS")?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(4).build()?;
    let latency = search::latencies(&client, &node.url, params.seed, params.queries).await?;
    let queried_rss = rss_mib(node.pid).context("reading the node's VmRSS")?;
    let sync = sync_from(&params.node_bin, &client, &node, params.offers).await;
    node.stop().await;
    let _ = writeln!(
        details,
        "- Latency: {} queries one after the other from one client over HTTP/1.1 keep-alive, \
         as for the search figures; {:.1} offers per answer on average; p50 {:.2} ms, p99 \
         {:.2} ms, max {:.2} ms.",
        params.queries, latency.hits, latency.p50, latency.p99, latency.max,
    );
    let _ = writeln!(
        details,
        "- Memory: VmRSS of the `gpuflow-node` process {loaded_rss:.1} MiB once it was ready, \
         {queried_rss:.1} MiB after the queries."
    );
    let cmd = &params.command;
    let at = format!("{} offers", number(params.offers as f64));
    // Every memory figure has the same goal: a node with a million offers in 1 GiB.
    let memory = |name: &str, mib: f64, note: String| {
        Figure::new(name, mib, "MiB", Some(Target::AtMost(1024.0)), cmd).note(note)
    };
    let mut figures = vec![
        memory("node memory after loading", loaded_rss, at.clone()),
        memory("node memory after the queries", queried_rss, at.clone()),
        Figure::new("search latency p50", latency.p50, "ms", None, cmd)
            .note(format!("{at}, over HTTP")),
        Figure::new("search latency p99", latency.p99, "ms", Some(Target::AtMost(10.0)), cmd)
            .note(format!("{at}, over HTTP")),
    ];
    match sync {
        Ok(sync) => {
            let _ = writeln!(
                details,
                "- Sync: a second `gpuflow-node` on an empty data directory, bootstrapped from \
                 the first over libp2p on loopback, pages through its offers with \
                 `/gpuflow/sync/1` ({MAX_SYNC_PAGE} a page), checks each page's signatures \
                 together and stores it through its own writer; from its start until its \
                 `GET /v1/network` counted all {} offers: {:.1} s ({}/s); its VmRSS then \
                 {:.1} MiB. The first node, which also syncs from the new one on connecting \
                 (every offer it gets back is one it holds), had a VmRSS of {:.1} MiB then.",
                number(params.offers as f64),
                sync.elapsed.as_secs_f64(),
                number(params.offers as f64 / sync.elapsed.as_secs_f64()),
                sync.rss_mib,
                sync.peer_rss_mib,
            );
            figures.push(
                Figure::new(
                    "time for a new node to sync",
                    sync.elapsed.as_secs_f64(),
                    "s",
                    None,
                    cmd,
                )
                .note(format!("{at} from one peer over libp2p")),
            );
            let new_node = format!("the new node, {at}");
            figures.push(memory("node memory after syncing", sync.rss_mib, new_node));
            let first_node = format!("the first node, {at}");
            figures.push(memory("node memory after serving a sync", sync.peer_rss_mib, first_node));
        }
        Err(e) => figures.push(Figure::missing(
            "time for a new node to sync",
            "s",
            None,
            cmd,
            format!("failed: {e:#}"),
        )),
    }
    let gossip = gossip_model(params);
    details.push_str(&gossip.details);
    figures.push(
        Figure::new("gossip load: heartbeat messages in", gossip.messages_in, "msg/s", None, cmd)
            .note(format!("{} providers every 15 s, modelled", number(params.gossipers as f64))),
    );
    figures.push(
        Figure::new("gossip load: heartbeat bytes in + out", gossip.bytes / 1e6, "MB/s", None, cmd)
            .note(format!("{} providers every 15 s, modelled", number(params.gossipers as f64))),
    );
    Ok(Section { figures, details })
}

/// How a sync went.
struct Synced {
    elapsed: Duration,
    rss_mib: f64,
    /// The serving node's VmRSS once the new node listed every offer.
    peer_rss_mib: f64,
}

/// Starts a second node on an empty data directory, bootstrapped from `peer`, and waits
/// until it lists `offers` offers.
async fn sync_from(
    bin: &Path,
    client: &reqwest::Client,
    peer: &NodeProcess,
    offers: u64,
) -> anyhow::Result<Synced> {
    let info: serde_json::Value = client
        .get(format!("{}/v1/node", peer.url))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let addr = info["addrs"]
        .as_array()
        .and_then(|addrs| addrs.iter().filter_map(|a| a.as_str()).find(|a| a.contains("127.0.0.1")))
        .context("the first node lists no loopback address")?
        .to_owned();
    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    let node = NodeProcess::start(bin, dir.path(), &["--bootstrap".into(), addr]).await?;
    // Bounded: a sync that stalls fails the figure instead of hanging the run.
    let deadline = start + Duration::from_secs(1800);
    let mut listed = 0;
    while listed < offers {
        if Instant::now() > deadline {
            bail!("the new node listed {listed} of {offers} offers after 30 minutes");
        }
        // `GET /v1/network` walks every offer: asked more often, it would slow the sync
        // it measures.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stats: NetworkStats = client
            .get(format!("{}/v1/network", node.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        listed = stats.offers + stats.hidden_conflicts;
    }
    let elapsed = start.elapsed();
    let synced = Synced {
        elapsed,
        rss_mib: rss_mib(node.pid).unwrap_or(f64::NAN),
        peer_rss_mib: rss_mib(peer.pid).unwrap_or(f64::NAN),
    };
    node.stop().await;
    Ok(synced)
}

/// The gossip load of `params.gossipers` providers' heartbeats on one node.
struct GossipLoad {
    messages_in: f64,
    bytes: f64,
    details: String,
}

/// Heartbeats in the sample whose size and checking cost the model uses.
const SAMPLE: u64 = 8192;

/// Models what one node receives and sends for the heartbeats topic, from the measured size
/// and checking cost of the seeded heartbeats and gossipsub's parameters.
fn gossip_model(params: &MillionParams) -> GossipLoad {
    let sample = data::heartbeats(params.seed, 0..SAMPLE.min(params.gossipers), 1);
    let data_bytes = sample.iter().map(Vec::len).sum::<usize>() as f64 / sample.len() as f64;
    // One core checks the sample in batches the size of one core's share of the node's
    // chunk.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = gpuflow_node::CHECK_CHUNK.div_ceil(cores);
    let t = Instant::now();
    let valid = sample
        .chunks(share)
        .flat_map(SignedEnvelope::decode_batch::<Heartbeat>)
        .filter(Result::is_ok)
        .count();
    let check_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
    debug_assert_eq!(valid, sample.len());
    let cores = cores as f64;
    let wire = data_bytes + GOSSIP_FRAMING_BYTES;
    let published = params.gossipers as f64 / HEARTBEAT_INTERVAL_SECS;
    // Each node forwards a new message to its mesh peers but the one it came from, and every
    // forward is another node's receipt: on average as many copies in as out.
    let copies = MESH_DEGREE - 1.0;
    let messages_in = published * copies;
    let full_bytes = 2.0 * messages_in * wire;
    // Every gossipsub heartbeat (1 s) names the ids of the last `history_gossip` heartbeats'
    // messages to `gossip_lazy` peers outside the mesh, at most `max_ihave_length` ids each.
    let ids = (published * HISTORY_GOSSIP).min(MAX_IHAVE_LENGTH);
    let ihave_bytes = 2.0 * GOSSIP_LAZY * ids * (MESSAGE_ID_BYTES + 2.0);
    let bytes = full_bytes + ihave_bytes;
    let mut details = String::new();
    let _ = writeln!(
        details,
        "- Gossip load (modelled, not measured: this machine cannot run 100,000 providers): \
         {} providers each publish a heartbeat every {HEARTBEAT_INTERVAL_SECS:.0} s, {}/s \
         over the network. A seeded heartbeat is {data_bytes:.0} bytes (mean of the sample, \
         measured), {wire:.0} bytes on the wire with gossipsub's signed-message fields and \
         the yamux and noise framing. With a mesh degree of {MESH_DEGREE:.0} a node \
         receives and sends about {copies:.0} copies of each message, {}/s each way, \
         {:.1} MB/s in and out together; IHAVE gossip adds at most \
         {:.2} MB/s ({GOSSIP_LAZY:.0} peers a second, up to {MAX_IHAVE_LENGTH:.0} ids of \
         {MESSAGE_ID_BYTES:.0} bytes each). In all {}/s heartbeat messages in and {:.1} MB/s \
         ({:.0} Mbit/s) on each node. gossipsub drops the copies it has seen by message \
         id before validation, so only the {}/s distinct ones are decoded and verified: at \
         {check_us:.1} µs of one core each (measured here on {} seeded heartbeats, checked \
         in batches of {share} with `SignedEnvelope::decode_batch`), {:.0} % of this machine's \
         {cores:.0} cores, before the store's writes.",
        number(params.gossipers as f64),
        number(published),
        number(messages_in),
        full_bytes / 1e6,
        ihave_bytes / 1e6,
        number(messages_in),
        bytes / 1e6,
        bytes * 8.0 / 1e6,
        number(published),
        sample.len(),
        100.0 * published * check_us / 1e6 / cores,
    );
    GossipLoad { messages_in, bytes, details }
}
