//! `gpuflow rent`.
use std::time::Duration;

use alloy::primitives::U256;
use clap::Args;
use gpuflow_protocol::WorkloadState;
use serde_json::json;

use super::{hours_to_seconds, money, print_json};
use crate::{
    node::NodeClient,
    opts::{ChainOpts, NodeOpts, WalletOpts},
    provider::ProviderClient,
};

/// `gpuflow rent`.
#[derive(Debug, Args)]
pub struct RentArgs {
    /// Offer id from `gpuflow search`.
    offer: String,
    /// How long to rent, in hours (decimals allowed, whole seconds only).
    #[arg(long)]
    hours: String,
    /// Longest wait for the provider to report the workload running, in seconds.
    #[arg(long, default_value_t = 60)]
    wait: u64,
    #[command(flatten)]
    node: NodeOpts,
    #[command(flatten)]
    chain: ChainOpts,
    #[command(flatten)]
    wallet: WalletOpts,
}

impl RentArgs {
    pub(crate) async fn run(self, json: bool) -> anyhow::Result<()> {
        let duration = hours_to_seconds(&self.hours)?;
        let signer = self.wallet.signer()?;
        let renter = signer.address();
        let (_, offer) = NodeClient::new(&self.node.node).offer(&self.offer).await?;
        let (escrow, chain_id) = self.chain.escrow(Some(signer.clone())).await?;
        anyhow::ensure!(
            offer.body.chain_id == chain_id && offer.body.escrow == escrow.address(),
            "offer {} takes rentals on chain {} at escrow {}, but you are on chain {} at escrow {}; \
             use the offer's --rpc and --escrow",
            self.offer,
            offer.body.chain_id,
            offer.body.escrow,
            chain_id,
            escrow.address()
        );
        anyhow::ensure!(
            offer.body.expires_at > gpuflow_protocol::unix_now(),
            "offer {} has expired; search again",
            self.offer
        );
        let decimals = escrow.decimals().await?;
        let provider = ProviderClient::connect(&offer)?;
        let quote = provider.quote(renter, duration).await?;
        let terms = &quote.terms;
        let signer_ok = gpuflow_escrow::quote_signer(&quote, &escrow.domain().await?)
            .is_some_and(|a| a == offer.body.payout);
        anyhow::ensure!(
            signer_ok && terms.provider == offer.body.payout && terms.renter == renter,
            "the provider's quote is not signed by its payout address {}; no money moved",
            offer.body.payout
        );
        anyhow::ensure!(
            terms.rate_per_second <= offer.body.price_per_second,
            "the provider quoted {} units/s, more than the {} it advertises; no money moved",
            terms.rate_per_second,
            offer.body.price_per_second
        );
        anyhow::ensure!(
            terms.deadline > gpuflow_protocol::unix_now() && duration <= terms.max_duration,
            "the provider's quote is expired or too short; try again"
        );
        let rate = terms.rate_per_second;
        if !json {
            eprintln!(
                "renting offer {} ({} × {}) for {duration} s at {} per second: locking {} ...",
                self.offer,
                offer.body.gpus.len(),
                offer.body.gpus[0].name,
                money(U256::from(rate), decimals),
                money(U256::from(rate) * U256::from(duration), decimals),
            );
        }
        let opened = escrow.open(&signer, &quote, duration).await?;
        if !json {
            eprintln!(
                "rental {} opened in transaction {}; waiting for the provider ...",
                opened.rental_id, opened.tx
            );
        }
        let workload = provider.wait_ready(opened.rental_id, Duration::from_secs(self.wait)).await;
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
                "start": opened.start,
                "end": opened.end,
                "tx": opened.tx,
                "workload": workload,
            }));
        } else {
            println!(
                "rental {}: {} locked, runs until unix time {}",
                opened.rental_id,
                money(opened.deposit, decimals),
                opened.end
            );
            match &workload {
                Some(s) if s.state == WorkloadState::Running => {
                    println!("workload running on {} GPU(s): {}", s.gpus.len(), s.detail);
                }
                Some(s) => println!("the provider refused the rental: {}", s.detail),
                None => println!(
                    "the provider did not report the workload running within {} s; {refund_hint}",
                    self.wait
                ),
            }
        }
        match workload {
            Some(s) if s.state == WorkloadState::Refused => {
                anyhow::bail!(
                    "rental {} was refused by the provider; {refund_hint}",
                    opened.rental_id
                )
            }
            _ => Ok(()),
        }
    }
}
