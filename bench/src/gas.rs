//! Escrow gas: runs `contracts/script/measure-gas.sh` (full transaction gas on anvil) and
//! reads the `contracts/gas-report.json` it writes.

use std::{fmt::Write as _, path::Path};

use tokio::process::Command;

use crate::report::{Figure, Section, Target, number};

/// A limit: the environment variable that overrides it, and the script's default.
type Limit = Option<(&'static str, f64)>;

/// The operations reported, their names in the report and their limits (the script's
/// defaults, overridable with the same variables).
const OPERATIONS: &[(&str, &str, Limit)] = &[
    ("open", "escrow gas: open", Some(("GAS_LIMIT_OPEN", 100_000.0))),
    (
        "openWithPermit",
        "escrow gas: open with permit",
        Some(("GAS_LIMIT_OPEN_WITH_PERMIT", 125_000.0)),
    ),
    ("withdraw", "escrow gas: withdraw", Some(("GAS_LIMIT_WITHDRAW", 58_000.0))),
    ("stop", "escrow gas: stop", Some(("GAS_LIMIT_STOP", 52_000.0))),
    (
        "creditDowntime",
        "escrow gas: downtime credit",
        Some(("GAS_LIMIT_CREDIT_DOWNTIME", 75_000.0)),
    ),
];

const COMMAND: &str = "bash contracts/script/measure-gas.sh";

/// Runs the gas script in the checkout at `root` and reports its figures.
pub async fn run(root: &Path) -> anyhow::Result<Section> {
    let script = root.join("contracts/script/measure-gas.sh");
    let mut details = String::from("## Escrow gas\n\n");
    let mut note = String::new();
    if script.exists() {
        let out = Command::new("bash").arg(&script).current_dir(root).output().await?;
        let _ = writeln!(
            details,
            "`{COMMAND}` deploys `GpuEscrow` and `MockUSDC` to a throwaway anvil, warms up \
             (first rental, first nonce word, non-zero balances and fees) and records the \
             receipt's `gasUsed` of each operation, intrinsic and calldata cost included. One \
             transaction per operation: gas is deterministic, so the median is that value. \
             Limits are the script's (`contracts/README.md`, *Storage and gas*) and apply to \
             open, open with permit, withdraw, stop and downtime credit; the other operations \
             are reported without one. The full report, every operation:\n"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout.lines().filter(|l| l.starts_with('|')) {
            details.push_str(line);
            details.push('\n');
        }
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            let last = why.lines().last().unwrap_or("no message").trim().to_owned();
            let _ = writeln!(details, "\nThe script exited with {}: {last}.", out.status);
        }
    } else {
        note = format!("{COMMAND} is not in this checkout yet");
    }
    let report = std::fs::read_to_string(root.join("contracts/gas-report.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    if report.is_none() && note.is_empty() {
        note = "the gas script wrote no contracts/gas-report.json".into();
    }
    let mut figures = Vec::new();
    for (key, name, limit) in OPERATIONS {
        let target = limit.map(|(var, default)| {
            Target::AtMost(std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
        });
        match report.as_ref().and_then(|r| r[*key].as_f64()) {
            Some(gas) => figures.push(Figure::new(*name, gas, "gas", target, COMMAND)),
            None => {
                let why = if note.is_empty() {
                    format!("`{key}` missing from the report")
                } else {
                    note.clone()
                };
                figures.push(Figure::missing(*name, "gas", target, COMMAND, why));
            }
        }
    }
    if !note.is_empty() {
        let _ = writeln!(details, "Not measured: {note}.");
    }
    let missed: Vec<_> = figures.iter().filter(|f| f.missed()).collect();
    if !missed.is_empty() {
        let list: Vec<_> = missed
            .iter()
            .map(|f| format!("{} ({})", f.name, number(f.value.unwrap_or_default())))
            .collect();
        let _ = writeln!(
            details,
            "\nOver the limit: {}. Where the gas of each operation goes is itemised in \
             `contracts/README.md` (*Storage and gas*): an open writes one new slot (the \
             rental's packed terms) and updates the nonce word, a downtime credit writes the \
             rental's credits slot for the first time, and the token transfer, `ecrecover`, \
             the log and the intrinsic and calldata cost make up most of the rest before any \
             of the escrow's code runs. Compare the table with that itemisation to see which \
             part grew, then re-run the script.",
            list.join(", ")
        );
    }
    Ok(Section { figures, details })
}
