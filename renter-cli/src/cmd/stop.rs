//! `gpuflow stop`.
use clap::Args;
use serde_json::json;

use gpuflow_protocol::WorkloadState;

use super::{
    Ctx, charged, money, print_json,
    rent::{refusal_reason, submit_refusal},
};
use crate::{provider::ProviderClient, ui};

/// How long `stop` asks the provider whether it refused the rental before stopping it.
const ASK_PROVIDER: std::time::Duration = std::time::Duration::from_secs(10);

/// `gpuflow stop`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow stop 7
  gpuflow stop 7 --json

You pay for the seconds used up to the block that stops the rental, less downtime
already refunded; the rest of the deposit comes back to the wallet in the same
transaction. A rental the provider refused, or could not start, costs nothing: stop
submits the provider's signed refusal, and the whole deposit comes back.")]
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
        // A refused rental is not stopped but refunded in full, with the provider's refusal.
        let asked = tokio::time::timeout(ASK_PROVIDER, async {
            let provider = ProviderClient::for_rental(
                &settings.node(),
                escrow.address(),
                self.rental,
                &rental,
            )
            .await?;
            provider.status(self.rental).await
        })
        .await;
        if let Ok(Ok(status)) = asked
            && status.state == WorkloadState::Refused
            && let Some(signature) = status.refusal.clone()
        {
            let refused = submit_refusal(&escrow, self.rental, signature, ctx.json).await?;
            let token = super::Token::of(&escrow).await?;
            let why = refusal_reason(&status);
            if ctx.json {
                print_json(&json!({
                    "rental_id": self.rental,
                    "refused": why,
                    "charged": "0",
                    "refund": refused.refund.to_string(),
                    "tx": refused.tx,
                }));
            } else {
                println!("rental {} was refused by the provider ({why})", self.rental);
                println!("  charged   {}", money(alloy::primitives::U256::ZERO, &token));
                println!("  refunded  {} (the whole deposit)", money(refused.refund, &token));
            }
            return Ok(());
        }
        let spinner = ui::spinner(ctx.json, format!("stopping rental {}", self.rental));
        let stopped = escrow.stop(self.rental).await;
        spinner.finish_and_clear();
        let stopped = stopped?;
        let token = super::Token::of(&escrow).await?;
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
            println!("  charged   {}", money(charged, &token));
            if credited > 0 {
                println!(
                    "  ({} of downtime refunded earlier is not charged)",
                    ui::duration(credited)
                );
            }
            println!("  refunded  {}", money(stopped.refund, &token));
        }
        Ok(())
    }
}
