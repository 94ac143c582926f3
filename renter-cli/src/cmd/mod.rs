//! One file per subcommand.
//!
//! Each exposes an `Args` struct (clap derive) with `async fn run(self, json)`.

pub mod rent;
pub mod search;
pub mod status;
pub mod stop;

use alloy::primitives::U256;
use gpuflow_protocol::format_units;

/// A token amount for humans: whole tokens and the exact integer units.
pub(crate) fn money(units: U256, decimals: u8) -> String {
    match u128::try_from(units) {
        Ok(u) => format!("{} ({u} units)", format_units(u, decimals)),
        Err(_) => format!("{units} units"),
    }
}

/// Prints `value` as pretty JSON.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values print"));
}
