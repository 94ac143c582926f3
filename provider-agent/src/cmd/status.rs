//! `gpuflow-provider status`: the machine as renters and nodes see it — its offer on each
//! node (listed, hidden in a GPU conflict, reliability, uptime, rentals), its running
//! rentals with their time left, and its earnings withdrawable now and later.

use alloy::primitives::U256;
use gpuflow_protocol::{Identity, OfferId, api, format_units, unix_now};
use serde_json::json;

use super::connect::{connect_with, load_config};
use crate::{
    agent::DRAIN_FILE,
    earnings,
    lock::{DataDirLock, LockError},
    opts::StatusArgs,
};

/// The offer of this machine as one node sees it.
async fn offer_on(node: &str, offer: &OfferId) -> Result<Option<api::OfferSummary>, String> {
    let url = format!("{}/v1/offers/{offer}", node.trim_end_matches('/'));
    let response = reqwest::get(&url).await.map_err(|e| format!("{url}: {e}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let detail: api::OfferDetail =
        response.json().await.map_err(|e| format!("{url} answered no offer: {e}"))?;
    Ok(Some(detail.summary).filter(|s| s.expires_at > unix_now()))
}

pub(super) async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let StatusArgs { chain, data_dir, nodes, json } = args;
    let file = load_config(chain.config.as_deref())?;
    let data_dir = super::data_dir(data_dir, &file)?;
    let key = data_dir.join("identity.key");
    anyhow::ensure!(
        key.exists(),
        "no agent identity in {}: run `gpuflow-provider init` and `run` first, or pass --data-dir",
        data_dir.display()
    );
    let peer = Identity::load_or_create(&key)?.peer_id();
    let offer = OfferId::of(&peer);
    let running = matches!(DataDirLock::acquire(&data_dir), Err(LockError::Held { .. }));
    let draining = data_dir.join(DRAIN_FILE).exists();

    let mut seen = Vec::new();
    for node in &nodes {
        seen.push((node.clone(), offer_on(node, &offer).await));
    }

    let chain = connect_with(chain, file).await?;
    let (_, now) = chain.escrow.latest_block().await?;
    let decimals = chain.escrow.decimals().await?;
    let symbol = chain.escrow.symbol().await.unwrap_or_default();
    let rows = earnings::earnings(&chain.escrow, chain.payout.address()).await?;
    let live: Vec<_> = rows.iter().filter(|r| !r.stopped && r.end > now).collect();
    let withdrawable_now: U256 = rows.iter().map(|r| r.withdrawable).sum();
    // Earned but still in the dispute window, and what running rentals earn by their end.
    let in_window: U256 =
        rows.iter().map(|r| r.earned.saturating_sub(r.withdrawn + r.withdrawable)).sum();
    let to_earn: U256 = live
        .iter()
        .map(|r| r.rate_per_second * U256::from(r.end.saturating_sub(now.max(r.start))))
        .sum();
    let tokens = |v: U256| format!("{} {symbol}", format_units(v.to::<u128>(), decimals));

    if json {
        let nodes: Vec<_> = seen
            .iter()
            .map(|(node, seen)| match seen {
                Ok(Some(s)) => {
                    json!({"node": node, "listed": true, "hidden_in_conflict": s.conflicts,
                    "num_gpus": s.num_gpus, "dph": s.dph, "reliability": s.reliability,
                    "uptime": s.uptime, "rentals": s.rentals})
                }
                Ok(None) => json!({"node": node, "listed": false}),
                Err(e) => json!({"node": node, "error": e}),
            })
            .collect();
        let rentals: Vec<_> = live
            .iter()
            .map(|r| {
                json!({"rental_id": r.rental_id, "renter": r.renter, "end": r.end,
                "left": r.end - now, "rate_per_second": r.rate_per_second.to_string()})
            })
            .collect();
        println!(
            "{}",
            json!({
                "peer_id": peer.to_string(), "offer_id": offer.to_string(),
                "payout": chain.payout.address(), "agent_running": running, "draining": draining,
                "nodes": nodes, "rentals": rentals,
                "withdrawable_now": withdrawable_now.to_string(),
                "in_dispute_window": in_window.to_string(),
                "to_earn_by_rental_ends": to_earn.to_string(),
            })
        );
        return Ok(());
    }
    println!("machine   offer {offer} (peer {peer})");
    println!("payout    {}", chain.payout.address());
    println!(
        "agent     {}{}",
        if running { "running" } else { "not running on this data dir" },
        if draining { ", draining: no new rentals (`gpuflow-provider undrain`)" } else { "" }
    );
    if seen.is_empty() {
        println!(
            "nodes     not asked: give --node URL (or GPUFLOW_NODE) to see the offer as a node does"
        );
    }
    for (node, seen) in &seen {
        match seen {
            Ok(Some(s)) => println!(
                "node      {node}: listed{}, {} GPU(s) at {}/h, reliability {:.3}, uptime {}, {} rental(s)",
                if s.conflicts { " but hidden in a GPU UUID conflict" } else { "" },
                s.num_gpus,
                s.dph,
                s.reliability,
                s.uptime.map_or_else(
                    || "not measured yet".to_owned(),
                    |u| format!("{:.1} %", u * 100.0)
                ),
                s.rentals
            ),
            Ok(None) => println!(
                "node      {node}: not listed{}",
                if draining {
                    " (draining)"
                } else {
                    " (every GPU rented, the agent stopped, or not bootstrapped to it)"
                }
            ),
            Err(e) => println!("node      {node}: not reachable: {e}"),
        }
    }
    if live.is_empty() {
        println!("rentals   none running");
    }
    for r in &live {
        println!(
            "rental    {} for {}, {} left, {}/h",
            r.rental_id,
            r.renter,
            humanize(r.end - now),
            tokens(r.rate_per_second * U256::from(3600))
        );
    }
    println!("earnings  withdrawable now {}", tokens(withdrawable_now));
    println!(
        "          later: {} earned in the dispute window, {} more if running rentals run to their end",
        tokens(in_window),
        tokens(to_earn)
    );
    println!("          (gross; the platform fee is taken from each withdrawal)");
    Ok(())
}

/// Seconds as `2h 5m`, `42s`.
fn humanize(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}
