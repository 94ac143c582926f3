//! `gpuflow status`.
use alloy::primitives::U256;
use clap::Args;
use serde_json::json;

use super::{Ctx, charged_by, money, print_json};
use crate::{provider::ProviderClient, ui};

/// `gpuflow status`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow status 7
  gpuflow status 7 --json

The money side comes from the escrow; the workload's state from the provider itself,
found through the node (shown as unavailable when it cannot be reached).")]
pub struct StatusArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
}

impl StatusArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let json = ctx.json;
        let settings = ctx.settings()?;
        let (escrow, _) = settings.escrow(None).await?;
        let rental = escrow.rental(self.rental).await?;
        let history = escrow.history(self.rental).await?;
        let token = super::Token::of(&escrow).await?;
        // The chain's clock decides when a rental ends, not this machine's.
        let (_, now) = escrow.latest_block().await?;
        let (start, end) = (rental.start.to::<u64>(), rental.end.to::<u64>());
        let charged = charged_by(&rental, now);
        let active = !rental.stopped && now < end;
        let (auto_budget, auto_step) = escrow.auto_extension(self.rental).await?;
        let auto_extends = active && auto_budget >= U256::from(rental.ratePerSecond);

        // The workload's state comes from the provider itself.
        let provider =
            ProviderClient::for_rental(&settings.node(), escrow.address(), self.rental, &rental)
                .await;
        let workload = match async { provider?.status(self.rental).await }.await {
            Ok(status) => Some(status),
            Err(e) => {
                if !json {
                    eprintln!("note: provider not reachable for workload status: {e:#}");
                }
                None
            }
        };
        if json {
            print_json(&json!({
                "rental_id": self.rental,
                "renter": rental.renter,
                "provider": rental.provider,
                "rate_per_second": rental.ratePerSecond.to_string(),
                "start": start,
                "end": end,
                "stopped": rental.stopped,
                "active": active,
                "charged": charged.to_string(),
                "left": if active { end - now } else { 0 },
                "ending_soon": active && ui::ending_soon(self.rental, end - now).is_some(),
                "auto_extend": {
                    "budget": auto_budget.to_string(),
                    "step": auto_step,
                    "active": auto_extends,
                },
                "refund": history.refund.map(|r| r.to_string()),
                "provider_paid": history.provider_paid.to_string(),
                "fees": history.fees.to_string(),
                "sla_credited": history.credited.to_string(),
                "workload": workload,
            }));
            return Ok(());
        }
        let state = if active {
            "active"
        } else if rental.stopped {
            "stopped"
        } else {
            "ended"
        };
        println!("rental {}: {state}", self.rental);
        println!("  renter          {}", rental.renter);
        println!("  provider        {}", rental.provider);
        println!(
            "  rate            {} per second",
            money(U256::from(rental.ratePerSecond), &token)
        );
        println!("                  {}", super::hourly(rental.ratePerSecond, &token));
        println!(
            "  period          {} for {} ({start} .. {end} unix seconds)",
            ui::local_time(start),
            ui::duration(end - start)
        );
        if active {
            println!("  ends            {} (in {})", ui::local_time(end), ui::duration(end - now));
        }
        println!("  charged so far  {}", money(charged, &token));
        if auto_extends {
            println!(
                "  auto-extend     {} at a time, {} of budget left",
                ui::duration(auto_step),
                money(auto_budget, &token)
            );
        }
        if let Some(refund) = history.refund {
            println!("  refunded        {}", money(refund, &token));
        }
        println!("  provider paid   {}", money(history.provider_paid, &token));
        println!("  platform fee    {}", money(history.fees, &token));
        if !history.credited.is_zero() {
            println!("  downtime refund {}", money(history.credited, &token));
        }
        if let Some(w) = workload {
            println!("  workload        {} ({})", w.state, w.detail);
            if let Some(ssh) = &w.ssh {
                println!("  ssh             gpuflow ssh {}   ({ssh})", self.rental);
                for port in &w.ports {
                    println!("  port {:<10} {}:{}", port.container, ssh.host, port.host);
                }
            }
            if w.state == gpuflow_protocol::WorkloadState::Refused && !rental.stopped {
                println!(
                    "the provider refused this rental: run `gpuflow stop {}` to get {} back",
                    self.rental,
                    if w.refusal.is_some() { "the whole deposit" } else { "the unused deposit" }
                );
            }
        }
        if let Some(warning) =
            ui::ending_soon(self.rental, end.saturating_sub(now)).filter(|_| active)
        {
            println!("warning: {warning}");
        }
        Ok(())
    }
}
