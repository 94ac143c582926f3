//! Offer propagation: one provider and N index peers on loopback, each an in-process
//! `gpuflow-p2p` network subscribed to offers that, like a node, verifies every offer,
//! commits it to a `Store` of its own and only then lets gossipsub forward it. The clock
//! runs from the provider's publish to the commit at each index.

use std::{collections::HashMap, fmt::Write as _, time::Duration};

use anyhow::{Context, bail};
use gpuflow_node::Store;
use gpuflow_p2p::{Acceptance, Multiaddr, Network, NetworkConfig, NetworkEvent};
use gpuflow_protocol::{Offer, SignedEnvelope, unix_now};
use tokio::{sync::mpsc, time::Instant};

use crate::{
    data::Provider,
    report::{Figure, Section, Target, ms, quantile},
};

/// Parameters of the propagation benchmark.
#[derive(Clone, Debug)]
pub struct PropagationParams {
    /// Seed of the identities.
    pub seed: u64,
    /// Index peers.
    pub nodes: usize,
    /// Offers published after the mesh formed.
    pub offers: u64,
    /// The command line to print beside the figures.
    pub command: String,
}

/// Starts a network listening on a free loopback port and returns it with its address.
async fn network(
    identity: gpuflow_protocol::Identity,
    bootstrap: Vec<Multiaddr>,
    subscribe_offers: bool,
) -> anyhow::Result<(Network, mpsc::Receiver<NetworkEvent>, Multiaddr)> {
    let (network, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        bootstrap,
        subscribe_offers,
        serve_requests: false,
    })?;
    tokio::spawn(event_loop.run());
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Listening(addr) = event {
                return Some(addr);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .context("a swarm did not listen within 10 s")?;
    let addr: Multiaddr = format!("{addr}/p2p/{}", network.peer_id()).parse()?;
    Ok((network, events, addr))
}

/// Runs the propagation benchmark.
pub async fn run(params: &PropagationParams) -> anyhow::Result<Section> {
    let dir = tempfile::tempdir()?;
    let (received_tx, mut received) = mpsc::unbounded_channel::<(usize, u64, Instant)>();
    let mut addrs: Vec<Multiaddr> = Vec::new();
    let mut keep = Vec::new();
    for i in 0..params.nodes {
        // Each index knows the first one and the one before it; Kademlia finds the rest.
        let mut bootstrap: Vec<Multiaddr> = addrs.first().cloned().into_iter().collect();
        if i > 1 {
            bootstrap.push(addrs[i - 1].clone());
        }
        let (network, mut events, addr) =
            network(Provider::new(params.seed ^ 0x9e7, i as u64).identity, bootstrap, true).await?;
        addrs.push(addr);
        let store = Store::open(&dir.path().join(format!("node-{i}/index.sqlite")))?;
        let tx = received_tx.clone();
        let handle = network.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let NetworkEvent::Offer { message_id, source, data } = event {
                    let verdict = match SignedEnvelope::decode::<Offer>(&data) {
                        Ok(offer) => {
                            let seq = offer.body.seq;
                            match store.upsert_offer(offer, unix_now()).await {
                                Ok(_) => {
                                    let _ = tx.send((i, seq, Instant::now()));
                                    Acceptance::Accept
                                }
                                Err(_) => Acceptance::Ignore,
                            }
                        }
                        Err(_) => Acceptance::Reject,
                    };
                    let _ = handle.report(message_id, source, verdict).await;
                }
            }
        });
        keep.push(network);
    }
    let provider_bootstrap = vec![addrs[0].clone(), addrs[params.nodes / 2].clone()];
    let signer = Provider::new(params.seed, 1 << 40);
    let (provider, mut provider_events, _) =
        network(signer.identity.clone(), provider_bootstrap, false).await?;
    tokio::spawn(async move { while provider_events.recv().await.is_some() {} });

    // Warm-up: publish probes until one reaches every index (the mesh has formed).
    let formed = Instant::now();
    let mut seq = 0;
    let mut ready = false;
    while formed.elapsed() < Duration::from_secs(60) {
        seq += 1;
        let _ = provider.publish_offer(&signer.offer(params.seed, seq)).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut seen = std::collections::HashSet::new();
        while let Ok(Some((node, s, _))) = tokio::time::timeout_at(deadline, received.recv()).await
        {
            if s == seq {
                seen.insert(node);
            }
            if seen.len() == params.nodes {
                break;
            }
        }
        if seen.len() == params.nodes {
            ready = true;
            break;
        }
    }
    if !ready {
        bail!("no probe reached all {} indexes within 60 s", params.nodes);
    }
    let mesh_secs = formed.elapsed().as_secs_f64();
    // Let the gossipsub mesh settle for a couple of heartbeats before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while received.try_recv().is_ok() {}

    let first = seq + 1;
    let envelopes: Vec<_> =
        (first..first + params.offers).map(|s| (s, signer.offer(params.seed, s))).collect();
    let mut published = HashMap::new();
    for (s, envelope) in &envelopes {
        published.insert(*s, Instant::now());
        provider.publish_offer(envelope).await.context("publishing an offer")?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut latencies = Vec::new();
    let mut last: HashMap<u64, Instant> = HashMap::new();
    let expected = params.nodes * params.offers as usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.len() < expected {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some((_, s, at))) => {
                if let Some(sent) = published.get(&s) {
                    latencies.push(ms(at - *sent));
                    let entry = last.entry(s).or_insert(at);
                    *entry = (*entry).max(at);
                }
            }
            _ => break,
        }
    }
    let delivered = latencies.len();
    let p50 = quantile(&mut latencies, 0.5);
    let p95 = quantile(&mut latencies, 0.95);
    let max = quantile(&mut latencies, 1.0);
    let mut to_all: Vec<f64> = last.iter().map(|(s, at)| ms(*at - published[s])).collect();
    let all_median = quantile(&mut to_all, 0.5);
    drop(keep);

    let mut details = String::from("## Offer propagation\n\n");
    let _ = writeln!(
        details,
        "One provider and {} index peers, each an in-process `gpuflow-p2p` swarm on loopback TCP \
         (index i bootstraps from index 0 and index i−1, the provider from indexes 0 and {}). \
         Each index verifies an offer, commits it to a `Store` of its own and only then reports \
         it valid, so gossipsub forwards it after the commit, as `gpuflow-node` does. After \
         the mesh formed ({mesh_secs:.1} s to the first probe seen by all) the provider \
         published {} offers 200 ms apart. {delivered} of {expected} deliveries arrived; \
         publish → committed at an index: p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms; \
         publish → committed at the last index, median over offers {all_median:.1} ms.",
        params.nodes,
        params.nodes / 2,
        params.offers,
    );
    let mut figures = vec![
        Figure::new("offer propagation p50", p50, "ms", None, &params.command),
        Figure::new(
            "offer propagation p95",
            p95,
            "ms",
            Some(Target::AtMost(500.0)),
            &params.command,
        ),
    ];
    for f in &mut figures {
        f.note = format!("1 provider, {} nodes", params.nodes);
    }
    if delivered < expected {
        details.push_str(&format!(
            "\n{} deliveries did not arrive within 10 s of the last publish.\n",
            expected - delivered
        ));
    }
    if figures.iter().any(Figure::missed) {
        details.push_str(
            "\nWhere the time goes: each hop waits for the index's commit (an fsync with \
             `synchronous=FULL`) before gossipsub forwards the offer. Plan: accept on \
             successful verification and commit in the background, or lower the fsync cost \
             with `synchronous=NORMAL` for offers, which are re-gossiped anyway.\n",
        );
    }
    Ok(Section { figures, details })
}
