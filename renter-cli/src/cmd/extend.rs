//! `gpuflow extend`.

use clap::Args;
use serde_json::json;

use super::{Ctx, Payment, check_funds, hourly, hours_to_seconds, money, print_json};
use crate::{
    error::{Exit, fail},
    ui,
};

/// Gas an extension takes at most: an approval, then the extension itself (a renter with no
/// standing allowance pays by permit in the extension, one transaction).
const EXTEND_GAS: u64 = 250_000;

/// `gpuflow extend`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow extend 7 --hours 1
  gpuflow extend 7 --hours 0.5 --yes
  gpuflow --json extend 7 --hours 0.5 --wallet work --yes

Pays `rate × extra seconds` from the wallet at the rental's own rate; the provider's
quote caps the total length. Shows the cost and the new end and asks before any money
moves. --yes skips the question; with --json (which never prompts) or with no terminal
to ask on, it refuses without --yes.")]
pub struct ExtendArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    /// How much longer, in hours (decimals allowed, whole seconds only).
    #[arg(long)]
    hours: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
}

impl ExtendArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let json = ctx.json;
        let id = self.rental;
        let extra = hours_to_seconds(&self.hours)?;
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let renter = signer.address();
        let (escrow, _) = settings.escrow(Some(signer.clone())).await?;
        let rental = escrow.rental(id).await?;
        if rental.renter != renter {
            return Err(fail(
                Exit::Refused,
                format!(
                    "rental {id} was rented by {}, not by {renter}; extend it with that wallet \
                     (--wallet / --keystore). No money moved",
                    rental.renter
                ),
            ));
        }
        if rental.stopped {
            return Err(fail(
                Exit::Refused,
                format!("rental {id} is stopped; rent again instead. No money moved"),
            ));
        }
        let (end, max_end) = (rental.end.to::<u64>(), rental.maxEnd.to::<u64>());
        let (_, now) = escrow.latest_block().await?;
        if now >= end {
            return Err(fail(
                Exit::Refused,
                format!(
                    "rental {id} ended at unix time {end} (chain time is {now}); an ended rental \
                     cannot be extended, rent again instead. No money moved"
                ),
            ));
        }
        let most = max_end.saturating_sub(end);
        if extra > most {
            return Err(fail(
                Exit::Refused,
                format!(
                    "rental {id} can run {} more at most under its quote (until unix time \
                     {max_end}), not {}; extend by less (--hours) or rent again. No money moved",
                    ui::duration(most),
                    ui::duration(extra)
                ),
            ));
        }
        let rate = rental.ratePerSecond;
        let cost = gpuflow_escrow::cost(rate, extra)?;
        let new_end = end + extra;
        let token = super::Token::of(&escrow).await?;
        let extending = Payment {
            what: format!("extending rental {id} by {}", ui::duration(extra)),
            cost,
            gas: EXTEND_GAS,
            instead: "extend by less",
        };
        check_funds(&escrow, renter, &extending, &token).await?;
        if !json {
            eprintln!("extend rental {id}");
            let mut table = ui::table(&["", ""]);
            table.add_row(vec!["rate".to_owned(), hourly(rate, &token)]);
            table.add_row(vec![
                "added time".to_owned(),
                format!("{} ({extra} s)", ui::duration(extra)),
            ]);
            table.add_row(vec!["cost, locked now".to_owned(), money(cost, &token)]);
            table.add_row(vec![
                "new end".to_owned(),
                format!("unix time {new_end} (was {end}, at most {max_end})"),
            ]);
            table.add_row(vec!["from wallet".to_owned(), renter.to_string()]);
            eprintln!("{table}");
            eprintln!("stopping early refunds the unused seconds at once.");
        }
        if !self.yes {
            ui::consent(json, "lock the extra deposit and extend the rental?")?;
        }
        let spinner = ui::spinner(json, format!("extending rental {id}"));
        let extended = escrow.extend(&signer, id, extra).await;
        spinner.finish_and_clear();
        let extended = extended?;
        if json {
            print_json(&json!({
                "rental_id": id,
                "new_end": extended.new_end,
                "cost": extended.cost.to_string(),
                "tx": extended.tx,
            }));
        } else {
            println!(
                "rental {id} extended by {} to unix time {} for {}",
                ui::duration(extra),
                extended.new_end,
                money(extended.cost, &token)
            );
        }
        Ok(())
    }
}
