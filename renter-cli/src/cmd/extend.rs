//! `gpuflow extend`.

use clap::Args;
use serde_json::json;

use super::{Ctx, hours_to_seconds, money, print_json};
use crate::ui;

/// `gpuflow extend`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow extend 7 --hours 1
  gpuflow extend 7 --hours 0.5 --wallet work --json

Pays `rate × extra seconds` from the wallet at the rental's own rate; the provider's
quote caps the total length.")]
pub struct ExtendArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    /// How much longer, in hours (decimals allowed, whole seconds only).
    #[arg(long)]
    hours: String,
}

impl ExtendArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let extra = hours_to_seconds(&self.hours)?;
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let renter = signer.address();
        let (escrow, _) = settings.escrow(Some(signer)).await?;
        let spinner = ui::spinner(ctx.json, format!("extending rental {}", self.rental));
        let extended = escrow.extend(renter, self.rental, extra).await;
        spinner.finish_and_clear();
        let extended = extended?;
        let decimals = escrow.decimals().await?;
        if ctx.json {
            print_json(&json!({
                "rental_id": self.rental,
                "new_end": extended.new_end,
                "cost": extended.cost.to_string(),
                "tx": extended.tx,
            }));
        } else {
            println!(
                "rental {} extended by {} to unix time {} for {}",
                self.rental,
                ui::duration(extra),
                extended.new_end,
                money(extended.cost, decimals)
            );
        }
        Ok(())
    }
}
