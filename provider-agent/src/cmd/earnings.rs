//! `gpuflow-provider earnings`: what each rental earned, is withdrawable and was
//! withdrawn, from the chain.

use alloy::primitives::U256;
use gpuflow_protocol::format_units;

use super::connect::connect;
use crate::{earnings, opts::EarningsArgs};

pub(super) async fn run(args: EarningsArgs) -> anyhow::Result<()> {
    let EarningsArgs { chain, json } = args;
    let chain = connect(chain).await?;
    let rows = earnings::earnings(&chain.escrow, chain.payout.address()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let decimals = chain.escrow.decimals().await?;
    let tokens = |v: U256| format_units(v.to::<u128>(), decimals);
    println!(
        "{:>8} {:<42} {:>8} {:>14} {:>14} {:>14}",
        "RENTAL", "RENTER", "STATE", "EARNED", "WITHDRAWABLE", "WITHDRAWN"
    );
    for r in &rows {
        let state = if r.stopped {
            "stopped"
        } else if r.end <= gpuflow_protocol::unix_now() {
            "ended"
        } else {
            "active"
        };
        println!(
            "{:>8} {:<42} {:>8} {:>14} {:>14} {:>14}",
            r.rental_id,
            r.renter,
            state,
            tokens(r.earned),
            tokens(r.withdrawable),
            tokens(r.withdrawn)
        );
    }
    println!("(gross amounts; the platform fee is taken from each withdrawal)");
    Ok(())
}
