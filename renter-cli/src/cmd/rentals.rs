//! `gpuflow rentals`.
use clap::Args;
use gpuflow_escrow::Party;
use serde_json::json;

use super::{Ctx, per_hour, print_json, tokens};
use crate::{
    error::{Exit, fail},
    ui,
};

/// Chain ids of local development chains (anvil, hardhat, ganache), where block 0 is near.
const DEVNETS: [u64; 2] = [31337, 1337];

/// `gpuflow rentals`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow rentals
  gpuflow rentals --all --wallet work --json

Rentals are read from the escrow's RentalOpened events for the wallet's address, so
they are found from any machine; only the address is needed, not the password. They are
read from the profile's `from_block` (--from-block, GPUFLOW_FROM_BLOCK; set it to the
escrow's deployment block on public chains), 2,000 blocks per request.")]
pub struct RentalsArgs {
    /// Show ended and stopped rentals too, not only active ones.
    #[arg(long)]
    all: bool,
}

impl RentalsArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let settings = ctx.settings()?;
        let renter = settings.address()?;
        let (escrow, chain_id) = settings.escrow(None).await?;
        let from = &settings.from_block;
        if from.value == 0 && !DEVNETS.contains(&chain_id) && !ctx.json {
            eprintln!(
                "note: reading the escrow's events from block 0; set `from_block` in the \
                 profile (or --from-block) to the escrow's deployment block to read fewer"
            );
        }
        let ids = escrow
            .opened_rentals(Party::Renter(renter), "reading the wallet's rentals")
            .await
            .map_err(|e| {
            fail(
                Exit::Unreachable,
                format!(
                    "{e}; check the RPC, or set from_block ({}) to the escrow's deployment block",
                    from.source
                ),
            )
        })?;
        let token = super::Token::of(&escrow).await?;
        // The chain's clock decides when a rental ends, not this machine's.
        let (_, now) = escrow.latest_block().await?;
        let mut rows = Vec::new();
        for id in ids {
            let rental = escrow.rental(id).await?;
            let (start, end) = (rental.start.to::<u64>(), rental.end.to::<u64>());
            let state = if rental.stopped {
                "stopped"
            } else if now < end {
                "active"
            } else {
                "ended"
            };
            if !self.all && state != "active" {
                continue;
            }
            let cost = super::charged_by(&rental, now);
            let rented = crate::provider::rented(escrow.address(), id, &rental).unwrap_or_default();
            rows.push((id, rental, start, end, state, cost, rented));
        }
        if ctx.json {
            let list: Vec<_> = rows
                .iter()
                .map(|(id, r, start, end, state, cost, rented)| {
                    json!({
                        "rental_id": id,
                        "provider": r.provider,
                        "rate_per_second": r.ratePerSecond.to_string(),
                        "start": start,
                        "end": end,
                        "state": state,
                        "charged": cost.to_string(),
                        "left": if *state == "active" { end - now } else { 0 },
                        "gpu": rented.gpu,
                        "gpus": rented.gpus,
                        "image": rented.image,
                    })
                })
                .collect();
            print_json(&serde_json::Value::Array(list));
            return Ok(());
        }
        if rows.is_empty() {
            let what =
                if self.all { "no rentals" } else { "no active rentals (--all shows every one)" };
            println!("{renter}: {what}");
            return Ok(());
        }
        let per_hour_header = format!("{}/H", token.symbol.to_uppercase());
        let cost_header = format!("COST, {}", token.symbol.to_uppercase());
        let mut table = ui::table(&[
            "ID",
            "STATE",
            "GPU",
            "IMAGE",
            &per_hour_header,
            &cost_header,
            "LEFT",
            "ENDS",
        ]);
        let mut warnings = Vec::new();
        for (id, r, _, end, state, cost, rented) in &rows {
            let active = *state == "active";
            let left = if active { ui::duration(end - now) } else { "-".into() };
            if let Some(warning) = ui::ending_soon(*id, end.saturating_sub(now)).filter(|_| active)
            {
                warnings.push(format!("rental {id}: {warning}"));
            }
            let gpu = match (&rented.gpu, rented.gpus) {
                (Some(name), Some(n)) => format!("{n} × {}", short_gpu(name)),
                _ => "-".into(),
            };
            table.add_row(vec![
                id.to_string(),
                (*state).to_owned(),
                gpu,
                rented.image.clone().unwrap_or_else(|| "(provider's)".into()),
                tokens(per_hour(r.ratePerSecond), &token),
                tokens(*cost, &token),
                left,
                ui::local_time(*end),
            ]);
        }
        println!("{table}");
        for warning in warnings {
            println!("warning: {warning}");
        }
        Ok(())
    }
}

/// A GPU name without the vendor's words: `RTX 4090` for `NVIDIA GeForce RTX 4090`.
fn short_gpu(name: &str) -> String {
    let words: Vec<&str> =
        name.split_whitespace().filter(|w| !matches!(*w, "NVIDIA" | "GeForce")).collect();
    if words.is_empty() { name.to_owned() } else { words.join(" ") }
}
