//! `gpuflow rentals`.
use alloy::{
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use clap::Args;
use gpuflow_escrow::GpuEscrow::RentalOpened;
use gpuflow_protocol::unix_now;
use serde_json::json;

use super::{Ctx, print_json, tokens};
use crate::{
    error::{Exit, fail},
    ui,
};

/// Most blocks one `eth_getLogs` asks for: public RPCs refuse (or time out on) wider ranges.
const LOG_RANGE: u64 = 10_000;
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
escrow's deployment block on public chains), 10,000 blocks per request.")]
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
        let latest = escrow.block_number().await?;
        let filter = Filter::new()
            .address(escrow.address())
            .event_signature(RentalOpened::SIGNATURE_HASH)
            .topic2(B256::left_padding_from(renter.as_slice()));
        let mut logs = Vec::new();
        for (first, last) in block_ranges(from.value, latest, LOG_RANGE) {
            let range = filter.clone().from_block(first).to_block(last);
            logs.extend(escrow.provider().get_logs(&range).await.map_err(|e| {
                fail(
                    Exit::Unreachable,
                    format!(
                        "reading the escrow's rentals in blocks {first}..={last} from the chain: \
                         {e}; check the RPC, or set from_block ({}) to the escrow's deployment \
                         block",
                        from.source
                    ),
                )
            })?);
        }
        let decimals = escrow.decimals().await?;
        let now = unix_now();
        let mut rows = Vec::new();
        for log in &logs {
            let Ok(opened) = log.log_decode::<RentalOpened>() else { continue };
            let id = opened.inner.data.rentalId.to::<u64>();
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
            rows.push((id, rental, start, end, state));
        }
        if ctx.json {
            let list: Vec<_> = rows
                .iter()
                .map(|(id, r, start, end, state)| {
                    json!({
                        "rental_id": id,
                        "provider": r.provider,
                        "rate_per_second": r.ratePerSecond.to_string(),
                        "start": start,
                        "end": end,
                        "state": state,
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
        let mut table = ui::table(&["ID", "STATE", "PROVIDER", "$/HOUR", "LENGTH", "LEFT"]);
        for (id, r, start, end, state) in &rows {
            let per_hour = U256::from(r.ratePerSecond) * U256::from(3600);
            let left = if *state == "active" { ui::duration(end - now) } else { "-".into() };
            table.add_row(vec![
                id.to_string(),
                (*state).to_owned(),
                r.provider.to_string(),
                tokens(per_hour, decimals),
                ui::duration(end - start),
                left,
            ]);
        }
        println!("{table}");
        Ok(())
    }
}

/// Inclusive block ranges of at most `step` blocks that cover `from..=to` in order; none
/// when `from` is past `to`.
fn block_ranges(from: u64, to: u64, step: u64) -> impl Iterator<Item = (u64, u64)> {
    let step = step.max(1);
    let mut next = (from <= to).then_some(from);
    std::iter::from_fn(move || {
        let first = next?;
        let last = first.saturating_add(step - 1).min(to);
        next = last.checked_add(1).filter(|n| *n <= to);
        Some((first, last))
    })
}

#[cfg(test)]
mod tests {
    use super::block_ranges;

    #[test]
    fn ranges_cover_every_block_once_and_stay_bounded() {
        let ranges = |from, to, step| block_ranges(from, to, step).collect::<Vec<_>>();
        assert_eq!(ranges(0, 0, 10_000), [(0, 0)]);
        assert_eq!(ranges(0, 9_999, 10_000), [(0, 9_999)]);
        assert_eq!(ranges(0, 10_000, 10_000), [(0, 9_999), (10_000, 10_000)]);
        assert_eq!(
            ranges(5_200_000, 5_225_000, 10_000),
            [(5_200_000, 5_209_999), (5_210_000, 5_219_999), (5_220_000, 5_225_000)]
        );
        assert_eq!(ranges(7, 6, 10_000), []);
        assert_eq!(ranges(u64::MAX - 1, u64::MAX, 10_000), [(u64::MAX - 1, u64::MAX)]);
        assert_eq!(ranges(3, 5, 1), [(3, 3), (4, 4), (5, 5)]);
        // Contiguous and bounded for odd sizes too.
        for (from, to, step) in [(1, 99_999, 10_000), (17, 123_456, 777), (0, 50, 7)] {
            let all = ranges(from, to, step);
            assert_eq!(all.first().unwrap().0, from);
            assert_eq!(all.last().unwrap().1, to);
            assert!(all.iter().all(|(a, b)| a <= b && b - a < step));
            assert!(all.windows(2).all(|w| w[1].0 == w[0].1 + 1));
        }
    }
}
