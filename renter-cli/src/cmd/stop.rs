//! `gpuflow stop`.
use clap::Args;
use serde_json::json;

use super::{Ctx, charged, money, print_json};
use crate::ui;

/// `gpuflow stop`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow stop 7
  gpuflow stop 7 --json

You pay for the seconds used up to the block that stops the rental, less downtime
already refunded; the rest of the deposit comes back to the wallet in the same
transaction.")]
pub struct StopArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
}

impl StopArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let (escrow, _) = settings.escrow(Some(signer)).await?;
        let rental = escrow.rental(self.rental).await?;
        let spinner = ui::spinner(ctx.json, format!("stopping rental {}", self.rental));
        let stopped = escrow.stop(self.rental).await;
        spinner.finish_and_clear();
        let stopped = stopped?;
        let decimals = escrow.decimals().await?;
        let start = rental.start.to::<u64>();
        let used = stopped.stopped_at - start;
        let (charged, credited) = charged(&rental, used);
        if ctx.json {
            print_json(&json!({
                "rental_id": self.rental,
                "stopped_at": stopped.stopped_at,
                "seconds_used": used,
                "sla_credited_seconds": credited,
                "charged": charged.to_string(),
                "refund": stopped.refund.to_string(),
                "tx": stopped.tx,
            }));
        } else {
            println!("rental {} stopped after {}", self.rental, ui::duration(used));
            println!("  charged   {}", money(charged, decimals));
            if credited > 0 {
                println!(
                    "  ({} of downtime refunded earlier is not charged)",
                    ui::duration(credited)
                );
            }
            println!("  refunded  {}", money(stopped.refund, decimals));
        }
        Ok(())
    }
}
