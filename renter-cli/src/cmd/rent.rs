//! `gpuflow rent`.
use std::time::Duration;

use alloy::{primitives::U256, providers::Provider};
use clap::Args;
use gpuflow_escrow::GpuEscrow;
use gpuflow_protocol::{WorkloadState, parse_units, unix_now};
use serde_json::json;

use super::{Ctx, hours_to_seconds, money, print_json, tokens};
use crate::{
    error::{Exit, fail},
    provider::ProviderClient,
    ui,
};

/// Gas an open takes at most (with permit), to check the wallet can pay for it.
const OPEN_GAS: u64 = 400_000;
/// A quote this close to its deadline may expire before the transaction is mined.
const QUOTE_MARGIN: u64 = 10;

/// `gpuflow rent`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 0.5 --max-price 0.4 --yes
  gpuflow --json rent 3f9c2a1b7d4e5f60 --hours 1

Asks the provider for a signed quote, shows the cost and asks before any money
moves. --yes skips the question; so does --json, which implies consent, for scripts.
Without either, and with no terminal to ask on, it refuses. Pays with an EIP-2612
permit where the token supports it (one transaction), else approves first.
If the provider never reports the workload running, `gpuflow stop ID` returns the
unused deposit at once.")]
pub struct RentArgs {
    /// Offer id from `gpuflow search`.
    offer: String,
    /// How long to rent, in hours (decimals allowed, whole seconds only).
    #[arg(long)]
    hours: String,
    /// Most you will pay, in tokens (dollars) per hour; a dearer quote is refused and
    /// no money moves.
    #[arg(long, value_name = "PRICE")]
    max_price: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Longest wait for the provider to report the workload running, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

impl RentArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let json = ctx.json;
        let duration = hours_to_seconds(&self.hours)?;
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let renter = signer.address();
        let (_, offer) = settings.node().offer(&self.offer).await?;
        let (escrow, chain_id) = settings.escrow(Some(signer.clone())).await?;
        if offer.body.chain_id != chain_id || offer.body.escrow != escrow.address() {
            return Err(fail(
                Exit::Usage,
                format!(
                    "offer {} takes rentals on chain {} at escrow {}, but you are on chain {} at \
                     escrow {}; use the offer's --rpc and --escrow",
                    self.offer,
                    offer.body.chain_id,
                    offer.body.escrow,
                    chain_id,
                    escrow.address()
                ),
            ));
        }
        if offer.body.expires_at <= unix_now() {
            return Err(fail(
                Exit::NotFound,
                format!("offer {} has expired; search again", self.offer),
            ));
        }
        let decimals = escrow.decimals().await?;
        let max_per_hour = self
            .max_price
            .as_deref()
            .map(|p| {
                parse_units(p, decimals).map_err(|e| fail(Exit::Usage, format!("--max-price: {e}")))
            })
            .transpose()?;
        let per_hour = |rate: u128| U256::from(rate) * U256::from(3600);
        let above_max =
            |rate: u128| max_per_hour.is_some_and(|max| per_hour(rate) > U256::from(max));
        let refuse_price = |who: &str, rate: u128| {
            fail(
                Exit::Refused,
                format!(
                    "{who} {} per hour, above your --max-price of {}; no money moved",
                    tokens(per_hour(rate), decimals),
                    self.max_price.as_deref().unwrap_or_default()
                ),
            )
        };
        if above_max(offer.body.price_per_second) {
            return Err(refuse_price("the offer asks", offer.body.price_per_second));
        }

        // Check the wallet can pay before bothering the provider: the quoted rate can
        // only be at or below the advertised one (checked below).
        let most = gpuflow_escrow::cost(offer.body.price_per_second, duration)?;
        check_funds(&escrow, renter, duration, most, decimals).await?;

        let provider = ProviderClient::connect(&offer)?;
        let spinner = ui::spinner(json, "asking the provider for a quote");
        let quote = provider.quote(renter, duration).await;
        spinner.finish_and_clear();
        let quote = quote?;
        let terms = &quote.terms;
        let signer_ok = gpuflow_escrow::quote_signer(&quote, &escrow.domain().await?)
            .is_some_and(|a| a == offer.body.payout);
        if !signer_ok || terms.provider != offer.body.payout || terms.renter != renter {
            return Err(fail(
                Exit::Refused,
                format!(
                    "the provider's quote is not signed by its payout address {}; no money moved",
                    offer.body.payout
                ),
            ));
        }
        if terms.rate_per_second > offer.body.price_per_second {
            return Err(fail(
                Exit::Refused,
                format!(
                    "the provider quoted {} units/s, more than the {} it advertises; no money moved",
                    terms.rate_per_second, offer.body.price_per_second
                ),
            ));
        }
        if above_max(terms.rate_per_second) {
            return Err(refuse_price("the provider quoted", terms.rate_per_second));
        }
        if duration > terms.max_duration {
            return Err(fail(
                Exit::Refused,
                format!(
                    "the provider rents for at most {}; ask for less. No money moved",
                    ui::duration(terms.max_duration)
                ),
            ));
        }
        let rate = terms.rate_per_second;
        let total = gpuflow_escrow::cost(rate, duration)?;
        let fee_bps = GpuEscrow::new(escrow.address(), escrow.provider().clone())
            .feeBps()
            .call()
            .await
            .map_err(|e| fail(Exit::Unreachable, format!("reading the escrow's fee: {e}")))?;
        let fee = total * U256::from(fee_bps) / U256::from(10_000);
        if !json {
            let gpus = &offer.body.gpus;
            eprintln!("rent offer {} ({} × {})", self.offer, gpus.len(), gpus[0].name);
            let mut table = ui::table(&["", ""]);
            table.add_row(vec![
                "rate".to_owned(),
                format!("{} per hour ({rate} units/s)", tokens(per_hour(rate), decimals)),
            ]);
            table.add_row(vec![
                "duration".to_owned(),
                format!("{} ({duration} s)", ui::duration(duration)),
            ]);
            table.add_row(vec!["total, locked now".to_owned(), money(total, decimals)]);
            table.add_row(vec![
                "platform fee".to_owned(),
                format!(
                    "{} ({}%), taken from the provider's earnings, not added",
                    money(fee, decimals),
                    gpuflow_protocol::format_units(u128::from(fee_bps), 2)
                ),
            ]);
            table.add_row(vec!["from wallet".to_owned(), renter.to_string()]);
            eprintln!("{table}");
            eprintln!("stopping early refunds the unused seconds at once.");
        }
        if !(self.yes || json) {
            ui::confirm("lock the deposit and start the rental?")?;
        }
        if terms.deadline <= unix_now() + QUOTE_MARGIN {
            return Err(fail(
                Exit::Refused,
                "the provider's quote expired before it could be used; run the command again for a \
                 fresh one. No money moved",
            ));
        }

        let spinner = ui::spinner(json, "locking the deposit in the escrow");
        let opened = escrow.open(&signer, &quote, duration).await;
        spinner.finish_and_clear();
        let opened = opened?;
        if !json {
            eprintln!("rental {} opened in transaction {}", opened.rental_id, opened.tx);
        }
        let spinner = ui::spinner(json, "waiting for the provider to start the workload");
        let workload = provider.wait_ready(opened.rental_id, Duration::from_secs(self.wait)).await;
        spinner.finish_and_clear();
        let refund_hint =
            format!("run `gpuflow stop {}` to get the unused deposit back", opened.rental_id);
        let workload = match workload {
            Ok(status) => status,
            Err(e) => {
                eprintln!("warning: {e:#}; {refund_hint}");
                None
            }
        };
        if json {
            print_json(&json!({
                "rental_id": opened.rental_id,
                "offer": self.offer,
                "provider": offer.body.payout,
                "rate_per_second": rate.to_string(),
                "duration": duration,
                "deposit": opened.deposit.to_string(),
                "fee": fee.to_string(),
                "start": opened.start,
                "end": opened.end,
                "tx": opened.tx,
                "workload": workload,
            }));
        } else {
            println!(
                "rental {}: {} locked, runs {} until unix time {}",
                opened.rental_id,
                money(opened.deposit, decimals),
                ui::duration(opened.end - opened.start),
                opened.end
            );
            match &workload {
                Some(s) if s.state == WorkloadState::Running => {
                    println!("workload running on {} GPU(s)", s.gpus.len());
                    println!("connect: {}", s.detail);
                    println!(
                        "then: `gpuflow status {0}`, `gpuflow extend {0} --hours H`, \
                         `gpuflow stop {0}`",
                        opened.rental_id
                    );
                }
                Some(s) => println!("the provider refused the rental: {}", s.detail),
                None => println!(
                    "the provider did not report the workload running within {} s; {refund_hint}",
                    self.wait
                ),
            }
        }
        match workload {
            Some(s) if s.state == WorkloadState::Refused => Err(fail(
                Exit::Refused,
                format!("rental {} was refused by the provider; {refund_hint}", opened.rental_id),
            )),
            _ => Ok(()),
        }
    }
}

/// Refuses, before any quote, when the wallet lacks the tokens or the ETH for gas.
async fn check_funds(
    escrow: &gpuflow_escrow::Escrow,
    renter: alloy::primitives::Address,
    duration: u64,
    most: U256,
    decimals: u8,
) -> anyhow::Result<()> {
    let have = escrow.balance_of(renter).await?;
    if have < most {
        return Err(fail(
            Exit::Refused,
            format!(
                "not enough tokens: {} would cost up to {}, but {renter} holds {}; fund the \
                     wallet (token {}) or rent for less. No money moved",
                ui::duration(duration),
                money(most, decimals),
                money(have, decimals),
                escrow.token()
            ),
        ));
    }
    let chain = escrow.provider();
    let unreachable = |e: alloy::transports::TransportError| {
        fail(Exit::Unreachable, format!("reading the gas price and balance: {e}"))
    };
    let gas_price = chain.get_gas_price().await.map_err(unreachable)?;
    let eth = chain.get_balance(renter).await.map_err(unreachable)?;
    let need = U256::from(gas_price) * U256::from(OPEN_GAS);
    if eth < need {
        return Err(fail(
            Exit::Refused,
            format!(
                "not enough ETH for gas: {renter} holds {} ETH, renting needs about {} ETH; \
                     send ETH to it first. No money moved",
                tokens(eth, 18),
                tokens(need, 18)
            ),
        ));
    }
    Ok(())
}
