//! `gpuflow stop`.
use alloy::primitives::U256;
use clap::Args;
use serde_json::json;

use super::{money, print_json};
use crate::opts::{ChainOpts, WalletOpts};

/// `gpuflow stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    #[command(flatten)]
    chain: ChainOpts,
    #[command(flatten)]
    wallet: WalletOpts,
}

impl StopArgs {
    pub(crate) async fn run(self, json: bool) -> anyhow::Result<()> {
        let signer = self.wallet.signer()?;
        let (escrow, _) = self.chain.escrow(Some(signer)).await?;
        let rental = escrow.rental(self.rental).await?;
        let stopped = escrow.stop(self.rental).await?;
        let decimals = escrow.decimals().await?;
        let start = rental.start.to::<u64>();
        let charged = U256::from(rental.ratePerSecond) * U256::from(stopped.stopped_at - start);
        if json {
            print_json(&json!({
                "rental_id": self.rental,
                "stopped_at": stopped.stopped_at,
                "seconds_used": stopped.stopped_at - start,
                "charged": charged.to_string(),
                "refund": stopped.refund.to_string(),
                "tx": stopped.tx,
            }));
        } else {
            println!("rental {} stopped after {} s", self.rental, stopped.stopped_at - start);
            println!("  charged   {}", money(charged, decimals));
            println!("  refunded  {}", money(stopped.refund, decimals));
        }
        Ok(())
    }
}
