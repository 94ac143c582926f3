//! `gpuflow extend`.

use clap::Args;
use serde_json::json;

use super::{hours_to_seconds, money, print_json};
use crate::opts::{ChainOpts, WalletOpts};

/// `gpuflow extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    /// How much longer, in hours (decimals allowed, whole seconds only).
    #[arg(long)]
    hours: String,
    #[command(flatten)]
    chain: ChainOpts,
    #[command(flatten)]
    wallet: WalletOpts,
}

impl ExtendArgs {
    pub(crate) async fn run(self, json: bool) -> anyhow::Result<()> {
        let extra = hours_to_seconds(&self.hours)?;
        let signer = self.wallet.signer()?;
        let renter = signer.address();
        let (escrow, _) = self.chain.escrow(Some(signer)).await?;
        let extended = escrow.extend(renter, self.rental, extra).await?;
        let decimals = escrow.decimals().await?;
        if json {
            print_json(&json!({
                "rental_id": self.rental,
                "new_end": extended.new_end,
                "cost": extended.cost.to_string(),
                "tx": extended.tx,
            }));
        } else {
            println!(
                "rental {} extended by {extra} s to unix time {} for {}",
                self.rental,
                extended.new_end,
                money(extended.cost, decimals)
            );
        }
        Ok(())
    }
}
