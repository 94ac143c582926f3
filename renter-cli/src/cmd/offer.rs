//! `gpuflow offer`.
use clap::Args;
use gpuflow_protocol::{format_units, unix_now};
use serde_json::json;

use super::{Ctx, print_json};
use crate::ui;

/// `gpuflow offer`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow offer 3f9c2a1b7d4e5f60
  gpuflow offer 3f9c2a1b7d4e5f60 --json

The offer is checked against the provider's own signature, so a node cannot alter it.
Reliability is the share of rented time the machine was up over the last 30 days, smoothed
toward 90 % for newcomers; uptime the share of listed time it was up. The history shows one
bar per day, oldest first (`·`: not listed that day). The node's evidence for these numbers:
GET <node>/v1/providers/<peer id>/evidence. A rental of one of the ready images (already
pulled on the machine) starts without a download; the provider runs only the allowed
images (a trailing `*` matches any ending).")]
pub struct OfferArgs {
    /// Offer id from `gpuflow search`.
    offer: String,
}

impl OfferArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let node = ctx.settings()?.node();
        let (summary, offer) = node.offer(&self.offer).await?;
        let provider = node.provider(&summary.peer_id).await?;
        if ctx.json {
            print_json(&json!({
                "offer": summary,
                "chain_id": offer.body.chain_id,
                "escrow": offer.body.escrow,
                "gpus": offer.body.gpus,
                "images": offer.body.images,
                "allowed_images": offer.body.allowed_images,
                "volume_grace_secs": offer.body.volume_grace_secs,
                "provider": provider,
                "uptime_history": provider.as_ref().and_then(|p| p.scores.as_ref()).map(|s| &s.daily),
            }));
            return Ok(());
        }
        let b = &offer.body;
        println!("offer {} by {}", summary.id, summary.peer_id);
        let mut table = ui::table(&["", ""]);
        let rows = [
            (
                "price",
                format!(
                    "{} per hour for {} GPU(s), {} per GPU ({} units/s)",
                    summary.dph, summary.num_gpus, summary.dph_per_gpu, summary.price_per_second
                ),
            ),
            ("payout", summary.payout.clone()),
            ("chain / escrow", format!("{} / {}", b.chain_id, b.escrow)),
            ("region", summary.region.clone()),
            (
                "verified",
                if b.verified { "yes (read through NVML)" } else { "no: simulated GPUs" }.into(),
            ),
            ("cuda / driver", format!("{} / {}", summary.cuda, summary.driver)),
            (
                "network",
                format!(
                    "{} down / {} up Mbit/s",
                    opt(summary.inet_down_mbps),
                    opt(summary.inet_up_mbps)
                ),
            ),
            (
                "machine",
                format!(
                    "{} CPUs, {} RAM, {} free disk",
                    opt(summary.cpu_cores),
                    gigabytes(summary.cpu_ram_mb),
                    gigabytes(summary.disk_mb)
                ),
            ),
            ("ready images", if b.images.is_empty() { "-".into() } else { b.images.join(", ") }),
            (
                "allowed images",
                if b.allowed_images.is_empty() {
                    "any".into()
                } else {
                    b.allowed_images.join(", ")
                },
            ),
            (
                "volumes",
                match b.volume_grace_secs {
                    0 => "none kept".into(),
                    grace => {
                        format!("kept {} after the rental (rent --volume)", ui::duration(grace))
                    }
                },
            ),
            ("expires in", ui::duration(b.expires_at.saturating_sub(unix_now()))),
        ];
        for (k, v) in rows {
            table.add_row(vec![k.to_owned(), v]);
        }
        println!("{table}");
        let mut gpus = ui::table(&["GPU", "UUID", "VRAM", "PCI", "SM"]);
        for g in &b.gpus {
            gpus.add_row(vec![
                g.name.clone(),
                g.uuid.clone(),
                format!("{} GB", format_units(u128::from(g.memory_bytes / 1_000_000), 3)),
                g.pci_bus_id.clone(),
                g.compute_capability.clone(),
            ]);
        }
        println!("{gpus}");
        match &provider {
            Some(p) => {
                let seen = unix_now().saturating_sub(p.first_seen);
                println!(
                    "provider: first seen {} ago, {} heartbeats{}",
                    ui::duration(seen),
                    p.heartbeat_count,
                    p.last_heartbeat
                        .as_ref()
                        .map(|h| format!(
                            ", last {} ago",
                            ui::duration(unix_now().saturating_sub(h.received_at))
                        ))
                        .unwrap_or_default()
                );
            }
            None => println!("provider: this node does not publish provider details"),
        }
        match provider.as_ref().and_then(|p| p.scores.as_ref()) {
            Some(scores) => {
                println!(
                    "reliability {:.2}% over {} rented, uptime {}, {} rentals ({} completed), \
                     {} SLA credits",
                    scores.reliability * 100.0,
                    ui::duration(scores.rented_seconds),
                    scores.uptime.map_or("-".into(), |u| format!("{:.2}%", u * 100.0)),
                    scores.rentals,
                    scores.completed_rentals,
                    scores.sla_credits,
                );
                println!(
                    "uptime history ({} days): {}",
                    scores.daily.len(),
                    history(&scores.daily)
                );
            }
            None => println!("uptime history: not published by this node"),
        }
        Ok(())
    }
}

/// One bar per day, higher for more uptime; `·` for a day the provider was not listed.
fn history(days: &[gpuflow_protocol::api::DayUptime]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    days.iter()
        .map(|day| match day.uptime {
            None => '·',
            Some(u) => BARS[((u.clamp(0.0, 1.0) * 7.0).round()) as usize],
        })
        .collect()
}

/// Megabytes as `257.698 GB`, `-` when unknown.
fn gigabytes(mb: Option<u64>) -> String {
    mb.map_or_else(|| "-".into(), |mb| format!("{} GB", format_units(u128::from(mb), 3)))
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}
