//! One file per subcommand.
//!
//! Each exposes an `Args` struct (clap derive) with `async fn run(self, &Ctx)`.

pub mod auto_extend;
pub mod claim_sla;
pub mod completions;
pub mod config;
pub mod copy;
pub mod extend;
pub mod logs;
pub mod offer;
pub mod rent;
pub mod rentals;
pub mod search;
pub mod ssh;
pub mod status;
pub mod stop;
pub mod templates;
pub mod volumes;
pub mod wallet;

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};
use gpuflow_protocol::format_units;

use crate::{
    error::{Exit, fail},
    opts::{GlobalOpts, Settings},
};

/// What every command gets besides its own arguments.
#[derive(Debug)]
pub struct Ctx {
    /// `--json`: machine-readable output, no prompts, no spinners.
    pub json: bool,
    /// The shared connection and wallet options.
    pub globals: GlobalOpts,
}

impl Ctx {
    /// The effective settings.
    pub(crate) fn settings(&self) -> anyhow::Result<Settings> {
        self.globals.resolve()
    }
}

/// The payment token as amounts are shown: its decimals and symbol, read from its
/// contract.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) decimals: u8,
    /// `USDC`; `tokens` for a token whose symbol cannot be read or shown.
    pub(crate) symbol: String,
}

impl Token {
    /// The escrow's payment token.
    pub(crate) async fn of(escrow: &gpuflow_escrow::Escrow) -> anyhow::Result<Self> {
        let decimals = escrow.decimals().await?;
        let symbol = escrow
            .symbol()
            .await
            .ok()
            .filter(|symbol| gpuflow_protocol::is_shown_symbol(symbol))
            .unwrap_or_else(|| "tokens".to_owned());
        Ok(Self { decimals, symbol })
    }
}

/// A token amount for humans: whole tokens with the symbol, and the exact integer units.
pub(crate) fn money(units: U256, token: &Token) -> String {
    match u128::try_from(units) {
        Ok(u) => format!("{} {} ({u} units)", format_units(u, token.decimals), token.symbol),
        Err(_) => format!("{units} units"),
    }
}

/// Ether, for gas.
pub(crate) const ETH: Token = Token { decimals: 18, symbol: String::new() };

/// Whole tokens only, for tables: `0.36`.
pub(crate) fn tokens(units: U256, token: &Token) -> String {
    u128::try_from(units)
        .map(|u| format_units(u, token.decimals))
        .unwrap_or_else(|_| units.to_string())
}

/// Token units per hour of a rate in token units per second.
pub(crate) fn per_hour(rate_per_second: u128) -> U256 {
    U256::from(rate_per_second) * U256::from(3600)
}

/// A rate for the cost tables: `0.36 per hour (100 units/s)`.
pub(crate) fn hourly(rate_per_second: u128, token: &Token) -> String {
    let hour = tokens(per_hour(rate_per_second), token);
    format!("{hour} {}/h ({rate_per_second} units/s)", token.symbol)
}

/// What the first `used` seconds of `rental` cost the renter, and how many of them were
/// refunded as downtime: credited seconds are not part of the charge.
pub(crate) fn charged(rental: &gpuflow_escrow::Rental, used: u64) -> (U256, u64) {
    let credited = rental.credited.to::<u64>().min(used);
    (U256::from(rental.ratePerSecond) * U256::from(used - credited), credited)
}

/// What `rental` has cost its renter by the chain's time `now`: [`charged`] for the
/// seconds from its start to `now` or its end, whichever is first.
pub(crate) fn charged_by(rental: &gpuflow_escrow::Rental, now: u64) -> U256 {
    let (start, end) = (rental.start.to::<u64>(), rental.end.to::<u64>());
    charged(rental, end.min(now).max(start) - start).0
}

/// Prints `value` as pretty JSON.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values print"));
}

/// A payment about to be asked for, as [`check_funds`] describes it.
pub(crate) struct Payment {
    /// What it buys, for the messages: `renting for 2h 0m`.
    pub(crate) what: String,
    /// Most tokens it takes.
    pub(crate) cost: U256,
    /// Most gas its transactions take together.
    pub(crate) gas: u64,
    /// What to do instead when the tokens fall short: `rent for less`.
    pub(crate) instead: &'static str,
}

/// Refuses, before anything is signed, when `payer` lacks the tokens or the ETH for gas.
pub(crate) async fn check_funds(
    escrow: &gpuflow_escrow::Escrow,
    payer: Address,
    payment: &Payment,
    token: &Token,
) -> anyhow::Result<()> {
    let Payment { what, cost, gas, instead } = payment;
    let have = escrow.balance_of(payer).await?;
    if have < *cost {
        return Err(fail(
            Exit::Refused,
            format!(
                "not enough tokens: {what} would cost up to {}, but {payer} holds {}; fund the \
                 wallet (token {}) or {instead}. No money moved",
                money(*cost, token),
                money(have, token),
                escrow.token()
            ),
        ));
    }
    let chain = escrow.provider();
    let unreachable = |e: alloy::transports::TransportError| {
        fail(Exit::Unreachable, format!("reading the gas price and balance: {e}"))
    };
    let gas_price = chain.get_gas_price().await.map_err(unreachable)?;
    let eth = chain.get_balance(payer).await.map_err(unreachable)?;
    let need = U256::from(gas_price) * U256::from(*gas);
    if eth < need {
        return Err(fail(
            Exit::Refused,
            format!(
                "not enough ETH for gas: {payer} holds {} ETH, {what} needs about {} ETH; send \
                 ETH to it first. No money moved",
                tokens(eth, &ETH),
                tokens(need, &ETH)
            ),
        ));
    }
    Ok(())
}

/// Converts decimal hours to whole seconds, exactly.
pub(crate) fn hours_to_seconds(hours: &str) -> anyhow::Result<u64> {
    let usage = |m: String| fail(Exit::Usage, m);
    let seconds =
        gpuflow_protocol::hours_to_seconds(hours).map_err(|e| usage(format!("--hours: {e}")))?;
    if seconds == 0 {
        return Err(usage("--hours must be more than zero".into()));
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::hours_to_seconds;

    #[test]
    fn hours_convert_exactly() {
        assert_eq!(hours_to_seconds("1").unwrap(), 3600);
        assert_eq!(hours_to_seconds("0.5").unwrap(), 1800);
        assert_eq!(hours_to_seconds("0.0025").unwrap(), 9);
        assert!(hours_to_seconds("0.0001").is_err(), "0.36 s is not whole");
        assert!(hours_to_seconds("0").is_err());
        assert!(hours_to_seconds("-1").is_err());
        assert!(hours_to_seconds("two").is_err());
    }
}
