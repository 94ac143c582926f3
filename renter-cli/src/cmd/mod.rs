//! One file per subcommand.
//!
//! Each exposes an `Args` struct (clap derive) with `async fn run(self, &Ctx)`.

pub mod claim_sla;
pub mod completions;
pub mod config;
pub mod extend;
pub mod logs;
pub mod offer;
pub mod rent;
pub mod rentals;
pub mod search;
pub mod status;
pub mod stop;
pub mod wallet;

use alloy::primitives::U256;
use gpuflow_protocol::{format_units, parse_units};

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

/// A token amount for humans: whole tokens and the exact integer units.
pub(crate) fn money(units: U256, decimals: u8) -> String {
    match u128::try_from(units) {
        Ok(u) => format!("{} ({u} units)", format_units(u, decimals)),
        Err(_) => format!("{units} units"),
    }
}

/// Whole tokens only, for tables: `0.36`.
pub(crate) fn tokens(units: U256, decimals: u8) -> String {
    u128::try_from(units).map(|u| format_units(u, decimals)).unwrap_or_else(|_| units.to_string())
}

/// Prints `value` as pretty JSON.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values print"));
}

/// Converts decimal hours to whole seconds, exactly.
pub(crate) fn hours_to_seconds(hours: &str) -> anyhow::Result<u64> {
    let usage = |m: String| fail(Exit::Usage, m);
    let micro_hours = parse_units(hours, 6).map_err(|e| usage(format!("--hours: {e}")))?;
    let micro_seconds = micro_hours * 3600;
    if micro_seconds % 1_000_000 != 0 {
        return Err(usage(format!("--hours {hours} is not a whole number of seconds")));
    }
    let seconds = u64::try_from(micro_seconds / 1_000_000)
        .map_err(|_| usage(format!("--hours {hours} is too long")))?;
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
