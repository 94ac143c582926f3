//! Escrow gas: runs `contracts/script/measure-gas.sh` (full transaction gas on anvil) and
//! reads the `contracts/gas-report.json` it writes.

use std::{fmt::Write as _, path::Path};

use tokio::process::Command;

use crate::report::{Figure, Section, Target, number};

/// A limit: the environment variable that overrides it, and the script's default.
type Limit = Option<(&'static str, f64)>;

/// The operations reported, their names in the report and their limits (the script's
/// defaults, overridable with the same variables; they apply to the MockUSDC column).
const OPERATIONS: &[(&str, &str, Limit)] = &[
    ("open", "escrow gas: open", Some(("GAS_LIMIT_OPEN", 100_000.0))),
    (
        "openWithPermit",
        "escrow gas: open with permit",
        Some(("GAS_LIMIT_OPEN_WITH_PERMIT", 125_000.0)),
    ),
    ("extend", "escrow gas: extend", None),
    ("extendWithPermit", "escrow gas: extend with permit", None),
    ("approveThenExtend", "escrow gas: approve + extend (no allowance left)", None),
    ("withdraw", "escrow gas: withdraw", Some(("GAS_LIMIT_WITHDRAW", 58_000.0))),
    ("withdrawMany", "escrow gas: withdrawMany (5 rentals)", None),
    ("stop", "escrow gas: stop", Some(("GAS_LIMIT_STOP", 52_000.0))),
    (
        "creditDowntime",
        "escrow gas: downtime credit",
        Some(("GAS_LIMIT_CREDIT_DOWNTIME", 75_000.0)),
    ),
    ("refuse", "escrow gas: refuse", Some(("GAS_LIMIT_REFUSE", 60_000.0))),
    ("setAutoExtend", "escrow gas: setAutoExtend", None),
    ("autoExtend", "escrow gas: autoExtend", None),
    ("claimFees", "escrow gas: claimFees", None),
    ("invalidateNonce", "escrow gas: invalidateNonce", None),
];

/// One rental's whole life, each way it is really lived, and the report's name for it.
const LIVES: &[(&str, &str)] = &[
    ("wholeLife", "escrow gas, whole life: open + stop + withdraw"),
    ("wholeLifePermit", "escrow gas, whole life: openWithPermit + stop + withdraw"),
    (
        "wholeLifePermitExtended",
        "escrow gas, whole life: openWithPermit + extendWithPermit + stop + withdraw",
    ),
    ("wholeLifeBatch10", "escrow gas, whole life: open + stop + withdrawMany(10) / 10"),
    (
        "wholeLifePermitBatch10",
        "escrow gas, whole life: openWithPermit + stop + withdrawMany(10) / 10",
    ),
    (
        "wholeLifePermitExtendedBatch10",
        "escrow gas, whole life: openWithPermit + extendWithPermit + stop + withdrawMany(10) / 10",
    ),
];

/// The whole-life goal: 0.45 of Sablier Lockup v4's create + cancel + withdraw (398.5k gas),
/// rounded; `GAS_GOAL_LIFE` overrides it, as it does for the script.
const LIFE_GOAL: (&str, f64) = ("GAS_GOAL_LIFE", 180_000.0);

/// The report's two columns: its key for each token and the token's name in figure names.
const TOKENS: &[(&str, &str)] = &[("mockUSDC", "MockUSDC"), ("circleUSDC", "Circle-like USDC")];

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
            "`{COMMAND}` deploys `GpuEscrow` to a throwaway anvil twice, once paid in \
             `MockUSDC` (the devnet's token) and once in a Circle-like USDC \
             (`contracts/test/mocks/FiatTokenLike.sol`, written for this measurement to cost \
             what Circle's FiatTokenV2_2 behind its proxy costs: proxy, pause and blocklist \
             checks, an allowance written on every pull; it is not Circle's code). Each time it \
             warms up (first rental, first nonce word, non-zero balances and fees) and records \
             the receipt's `gasUsed` of each operation, intrinsic and calldata cost included. \
             One transaction per operation: gas is deterministic, so the median is that value. \
             Limits are the script's (`contracts/README.md`, *Storage and gas*) and apply to \
             the MockUSDC column of open, open with permit, withdraw, stop, downtime credit and \
             refuse; the other figures are reported without one. One rental's whole life is \
             measured each way it is really lived (a standing approval or the CLI's permits, \
             with or without one extension by permit, withdrawn alone or, as the provider agent \
             does, with nine others in one withdrawMany), against the goal of at most 0.45 of \
             Sablier Lockup v4's create + cancel + withdraw (398.5k gas), 180,000 gas, in both \
             columns. The full report:\n"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The script prints two tables, the operations and the whole lives, apart.
        let mut in_table = false;
        for line in stdout.lines() {
            let row = line.starts_with('|');
            if row && !in_table && details.ends_with("|\n") {
                details.push('\n');
            }
            if row {
                details.push_str(line);
                details.push('\n');
            }
            in_table = row;
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
    let mut push = |column: &str, key: &str, name: String, target: Option<Target>| match report
        .as_ref()
        .and_then(|r| r[column][key].as_f64())
    {
        Some(gas) => figures.push(Figure::new(name, gas, "gas", target, COMMAND)),
        None => {
            let why = if note.is_empty() {
                format!("`{column}.{key}` missing from the report")
            } else {
                note.clone()
            };
            figures.push(Figure::missing(name, "gas", target, COMMAND, why));
        }
    };
    for (key, name, limit) in OPERATIONS {
        for (column, token) in TOKENS {
            // The limits were set for MockUSDC; the Circle-like column is reported beside it.
            let target = limit.filter(|_| *column == "mockUSDC").map(|(var, default)| {
                Target::AtMost(
                    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default),
                )
            });
            push(column, key, format!("{name} ({token})"), target);
        }
    }
    let goal = std::env::var(LIFE_GOAL.0).ok().and_then(|v| v.parse().ok()).unwrap_or(LIFE_GOAL.1);
    for (key, name) in LIVES {
        for (column, token) in TOKENS {
            push(column, key, format!("{name} ({token})"), Some(Target::AtMost(goal)));
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
            "\nOver the limit or the goal: {}. Where the gas of each operation and of a whole \
             life goes is itemised in `contracts/README.md` (*Storage and gas*): an open writes \
             one new slot (the rental's packed terms) and updates the nonce word, a downtime \
             credit writes the rental's credits slot for the first time, and the token \
             transfer, `ecrecover`, the log and the intrinsic and calldata cost make up most \
             of the rest before any of the escrow's code runs; a whole life pays the intrinsic \
             cost and a token transfer once per transaction, so a rental withdrawn alone \
             misses the goal where one withdrawn in a batch meets it, and each permit adds the \
             token's signature check, nonce and allowance write. Compare the table with that \
             itemisation to see which part grew, then re-run the script.",
            list.join(", ")
        );
    }
    Ok(Section { figures, details })
}
