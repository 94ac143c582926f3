//! `gpuflow auto-extend`.

use alloy::primitives::U256;
use clap::Args;
use gpuflow_escrow::AUTO_EXTEND_LEAD;
use gpuflow_protocol::parse_units;
use serde_json::json;

use super::{Ctx, Payment, check_funds, hourly, hours_to_seconds, money, print_json};
use crate::{
    error::{Exit, fail},
    ui,
};

/// Gas setting the budget takes at most: an approval, then the setting itself.
const SET_GAS: u64 = 150_000;

/// `gpuflow auto-extend`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow auto-extend 7 --budget 5            # up to 5 tokens of extra time, 1 h at a time
  gpuflow auto-extend 7 --budget 2 --step 0.5 --yes
  gpuflow auto-extend 7 --off
  gpuflow --json auto-extend 7 --budget 5 --yes

Lets the escrow extend the rental while your laptop is off: in the rental's last ten
minutes anyone (the provider's agent does) may buy one more step at the rental's own
rate, taken from your wallet, until the budget is spent or the quote's maximum length is
reached. Nothing is taken now, and never more than the budget: the escrow enforces it.
Setting a budget again replaces what is left of the old one; --off turns it off.
`gpuflow status` shows what is left. Asks before anything is signed; --yes skips the
question, and --json (which never prompts) requires it.")]
pub struct AutoExtendArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    /// Most the extensions may take in all, in tokens (e.g. 5 or 2.50).
    #[arg(long, required_unless_present = "off", conflicts_with = "off")]
    budget: Option<String>,
    /// Time bought at a time, in hours (decimals allowed; at least one minute).
    #[arg(long, default_value = "1")]
    step: String,
    /// Turn the automatic extension off.
    #[arg(long)]
    off: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
}

impl AutoExtendArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let json = ctx.json;
        let id = self.rental;
        let step = hours_to_seconds(&self.step)?;
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let renter = signer.address();
        let (escrow, _) = settings.escrow(Some(signer)).await?;
        let token = super::Token::of(&escrow).await?;
        let budget = match &self.budget {
            Some(text) => U256::from(
                parse_units(text, token.decimals)
                    .map_err(|e| fail(Exit::Usage, format!("--budget: {e}")))?,
            ),
            None => U256::ZERO,
        };
        let rental = escrow.rental(id).await?;
        if rental.renter != renter {
            return Err(fail(
                Exit::Refused,
                format!(
                    "rental {id} was rented by {}, not by {renter}; set its automatic extension \
                     with that wallet (--wallet / --keystore). Nothing was signed",
                    rental.renter
                ),
            ));
        }
        let (end, max_end) = (rental.end.to::<u64>(), rental.maxEnd.to::<u64>());
        let (_, now) = escrow.latest_block().await?;
        if rental.stopped || now >= end {
            return Err(fail(
                Exit::Refused,
                format!("rental {id} is no longer running; rent again instead. Nothing was signed"),
            ));
        }
        let rate = rental.ratePerSecond;
        let seconds = budget / U256::from(rate);
        if !self.off && seconds.is_zero() {
            return Err(fail(
                Exit::Usage,
                format!(
                    "a budget of {} buys no second at {}; set a larger --budget",
                    money(budget, &token),
                    hourly(rate, &token)
                ),
            ));
        }
        let room = max_end.saturating_sub(end);
        let buys = u64::try_from(seconds).unwrap_or(u64::MAX).min(room);
        if !json {
            eprintln!("automatic extension of rental {id}");
            let mut table = ui::table(&["", ""]);
            if self.off {
                table.add_row(vec!["budget".to_owned(), "none (off)".to_owned()]);
            } else {
                table.add_row(vec!["rate".to_owned(), hourly(rate, &token)]);
                table.add_row(vec!["budget, at most".to_owned(), money(budget, &token)]);
                table.add_row(vec!["step".to_owned(), ui::duration(step)]);
                table.add_row(vec![
                    "buys up to".to_owned(),
                    format!(
                        "{} more (the quote allows {} more)",
                        ui::duration(buys),
                        ui::duration(room)
                    ),
                ]);
                table.add_row(vec![
                    "first step".to_owned(),
                    format!(
                        "in the last {} before the end, {}",
                        ui::duration(AUTO_EXTEND_LEAD),
                        ui::local_time(end)
                    ),
                ]);
            }
            table.add_row(vec!["from wallet".to_owned(), renter.to_string()]);
            eprintln!("{table}");
            if !self.off {
                eprintln!(
                    "nothing is taken now; each step is taken from the wallet when it is bought, \
                     and stopping early refunds the unused seconds."
                );
            }
        }
        if !self.off {
            let setting = Payment {
                what: format!("the automatic extension of rental {id}"),
                cost: U256::ZERO,
                gas: SET_GAS,
                instead: "set a smaller budget",
            };
            check_funds(&escrow, renter, &setting, &token).await?;
            let have = escrow.balance_of(renter).await?;
            if have < budget && !json {
                eprintln!(
                    "note: {renter} holds {} now; a step it cannot pay is not bought and the \
                     rental ends.",
                    money(have, &token)
                );
            }
        }
        if !self.yes {
            let question = if self.off {
                "turn the automatic extension off?"
            } else {
                "allow the escrow to extend the rental from this budget?"
            };
            ui::consent(json, question)?;
        }
        let spinner = ui::spinner(json, format!("setting the automatic extension of rental {id}"));
        let set = escrow.set_auto_extend(renter, id, budget, if self.off { 0 } else { step }).await;
        spinner.finish_and_clear();
        let set = set?;
        if json {
            print_json(&json!({
                "rental_id": id,
                "budget": set.budget.to_string(),
                "step": set.step,
                "tx": set.tx,
            }));
        } else if self.off {
            println!("rental {id} is no longer extended automatically");
        } else {
            println!(
                "rental {id} extends itself by {} at a time, for at most {} in all",
                ui::duration(step),
                money(budget, &token)
            );
        }
        Ok(())
    }
}
