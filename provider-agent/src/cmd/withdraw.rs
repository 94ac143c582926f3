//! `gpuflow-provider withdraw`: everything withdrawable now, in one transaction.

use gpuflow_protocol::format_units;

use super::connect::connect;
use crate::{earnings, opts::WithdrawArgs};

pub(super) async fn run(args: WithdrawArgs) -> anyhow::Result<()> {
    let WithdrawArgs { chain, to, json } = args;
    if to.is_some_and(|to| to.is_zero()) {
        anyhow::bail!("--to is the zero address, where tokens would be lost; name the recipient");
    }
    let chain = connect(chain).await?;
    let rows = earnings::earnings(&chain.escrow, chain.payout.address()).await?;
    let due: Vec<u64> =
        rows.iter().filter(|r| !r.withdrawable.is_zero()).map(|r| r.rental_id).collect();
    let paid =
        if due.is_empty() { Vec::new() } else { chain.escrow.withdraw_many(&due, to).await? };
    if json {
        let paid: Vec<_> = paid
            .iter()
            .map(|w| {
                serde_json::json!({
                    "rental_id": w.rental_id,
                    "amount": w.amount.to_string(),
                    "fee": w.fee.to_string(),
                    "tx": w.tx.to_string(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&paid)?);
        return Ok(());
    }
    if paid.is_empty() {
        println!("nothing is withdrawable yet (earned seconds wait out the dispute window)");
        return Ok(());
    }
    let decimals = chain.escrow.decimals().await?;
    println!("{:>8} {:>14} {:>14} TX", "RENTAL", "PAID", "FEE");
    for w in &paid {
        println!(
            "{:>8} {:>14} {:>14} {}",
            w.rental_id,
            format_units(w.amount.to::<u128>(), decimals),
            format_units(w.fee.to::<u128>(), decimals),
            w.tx
        );
    }
    Ok(())
}
