//! `gpuflow offer`.
use clap::Args;
use gpuflow_protocol::{challenge::ChallengeResult, format_units, unix_now};
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
images (a trailing `*` matches any ending). Proof of compute is the node's latest
matrix-product challenge of the machine: the dense throughput per GPU it proved and whether
that fits the GPU model offered; a wrong, replayed or too slow answer flags the offer, with
the reason. All of them, signed by the node: GET <node>/v1/providers/<peer id>/challenges.")]
pub struct OfferArgs {
    /// Offer id from `gpuflow search`.
    offer: String,
}

impl OfferArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let node = ctx.settings()?.node();
        let (summary, offer) = node.offer(&self.offer).await?;
        let provider = node.provider(&summary.peer_id).await?;
        let challenge = provider.as_ref().and_then(|p| p.challenge.as_ref());
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
                "proven_tflops": challenge.map(|c| c.proven_tflops),
                "challenge_ok": challenge.map(|c| c.outcome.ok()),
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
        println!("{}", proof_line(challenge, unix_now()));
        Ok(())
    }
}

/// What the node's latest challenge of the machine proved, or why it flags the offer.
fn proof_line(challenge: Option<&ChallengeResult>, now: u64) -> String {
    let Some(c) = challenge else {
        return "proof of compute: not challenged by this node yet".into();
    };
    let when = format!(
        "{} products of {}³ per GPU in {} ms, {} ago",
        c.rounds,
        c.n,
        c.elapsed_ms,
        ui::duration(now.saturating_sub(c.issued_at))
    );
    if c.outcome.ok() {
        format!(
            "proof of compute: {} TFLOP/s per GPU ({when}); {}",
            tflops(c.proven_tflops),
            c.reason
        )
    } else {
        format!("proof of compute: FLAGGED, {} ({when}): {}", c.outcome.as_str(), c.reason)
    }
}

/// TFLOP/s with three significant digits at most, however small.
fn tflops(value: f64) -> String {
    if value >= 1.0 { format!("{value:.1}") } else { format!("{value:.3e}") }
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

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;
    use gpuflow_protocol::challenge::Outcome;

    use super::*;

    fn result(outcome: Outcome, proven_tflops: f64, reason: &str) -> ChallengeResult {
        ChallengeResult {
            provider: "12D3KooW".into(),
            seed: B256::ZERO,
            n: 8192,
            rounds: 16,
            gpus: vec!["GPU-1".into()],
            gpu_name: "NVIDIA H200".into(),
            issued_at: 1_000,
            elapsed_ms: 30,
            proven_tflops,
            expected_tflops: Some(989.0),
            outcome,
            reason: reason.into(),
        }
    }

    #[test]
    fn the_proof_line_says_what_was_proved_or_why_the_offer_is_flagged() {
        assert_eq!(proof_line(None, 0), "proof of compute: not challenged by this node yet");
        let passed = proof_line(Some(&result(Outcome::Passed, 586.4, "correct; fast")), 1_060);
        assert!(passed.starts_with("proof of compute: 586.4 TFLOP/s per GPU (16 products of 8192³ per GPU in 30 ms, 1m 0s ago)"), "{passed}");
        assert!(passed.ends_with("; correct; fast"), "{passed}");
        let flagged = proof_line(
            Some(&result(Outcome::WrongRow, 0.0, "row 3 of product 0 is not the product's row")),
            1_000,
        );
        assert!(flagged.starts_with("proof of compute: FLAGGED, wrong_row ("), "{flagged}");
        assert!(flagged.ends_with("row 3 of product 0 is not the product's row"), "{flagged}");
        assert_eq!(tflops(0.000123), "1.230e-4");
    }
}
