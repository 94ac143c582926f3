//! End to end: a real anvil chain, a real node and provider agent on loopback libp2p,
//! and the real `gpuflow` binary, through one rental's whole life.

mod agents;
mod approve;
mod auto_extend;
mod binaries;
mod browser;
mod challenges;
mod deploy;
mod devnet_files;
mod docker;
mod images;
mod sla;

use std::{path::Path, time::Duration};

use alloy::primitives::{Address, U256};
use gpuflow_devnet::{Devnet, DevnetOptions, RENTER_FUNDS};
use gpuflow_escrow::Escrow;
use serde_json::Value;

/// Price in the devnet: 0.36 tokens per hour is 100 units per second.
const RATE: u64 = 100;
const FEE_BPS: u64 = 1000;

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the real `gpuflow` binary against the devnet.
async fn gpuflow(devnet: &Devnet, args: &[&str]) -> Output {
    gpuflow_with(devnet, &[], args).await
}

/// Runs the real `gpuflow` binary against the devnet, with `extra` variables on top of the
/// devnet's.
async fn gpuflow_with(devnet: &Devnet, extra: &[(&str, String)], args: &[&str]) -> Output {
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow");
    let out = tokio::process::Command::new(&bin)
        .args(args)
        .envs(devnet.env())
        .envs(extra.iter().map(|(k, v)| (*k, v)))
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}; build the binaries first", bin.display()));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn gpuflow_json(devnet: &Devnet, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = gpuflow(devnet, &full).await;
    assert!(out.ok, "gpuflow {args:?} failed:\n{}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("gpuflow {args:?} printed no JSON ({e}):\n{}", out.stdout))
}

fn amount(value: &Value) -> U256 {
    value.as_str().unwrap_or_else(|| panic!("{value} is not a decimal string")).parse().unwrap()
}

/// Polls `check` until it yields, failing after `timeout` with `what` and the
/// provider's log.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    devnet: &Devnet,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(&devnet.provider_log).unwrap_or_default();
            panic!("timed out after {timeout:?} waiting for {what}; provider log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start(dir: &Path) -> (Devnet, Escrow) {
    start_with(DevnetOptions::for_checkout(dir.to_owned()).unwrap()).await
}

async fn start_with(options: DevnetOptions) -> (Devnet, Escrow) {
    let devnet = Devnet::start(options).await.unwrap();
    let chain = gpuflow_escrow::connect(&devnet.rpc_url, None).unwrap();
    let escrow = Escrow::new(chain, devnet.escrow).await.unwrap();
    (devnet, escrow)
}

async fn balance(escrow: &Escrow, who: Address) -> U256 {
    escrow.balance_of(who).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rent_run_stop_refund_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;

    // Search finds the simulated offer, marked unverified, with its exact price.
    let offers =
        gpuflow_json(&devnet, &["search", "gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 dph<=0.5"])
            .await;
    let offers = offers.as_array().expect("search prints a list");
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0]["id"], devnet.offer_id.as_str());
    assert_eq!(offers[0]["verified"], false);
    assert_eq!(offers[0]["price_per_second"], RATE.to_string());
    // What one of its two GPUs costs, as `--gpus 1` pays it.
    let per_gpu = gpuflow_protocol::format_units(u128::from(RATE) * 3600 / 2, 6);
    assert_eq!(offers[0]["dph_per_gpu"], per_gpu.as_str(), "{}", offers[0]);
    // The searches the READMEs show find the devnet's offer.
    for readme in ["../README.md", "../renter-cli/README.md"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(readme);
        let text = std::fs::read_to_string(&path).unwrap();
        let examples: Vec<&str> =
            text.lines().filter_map(|line| line.trim().strip_prefix("gpuflow search '")).collect();
        assert!(!examples.is_empty(), "{readme} shows a search");
        for example in examples {
            let (query, rest) = example.split_once('\'').expect("a quoted query");
            let order = rest.split_whitespace().skip_while(|word| *word != "-o").nth(1);
            let mut args = vec!["search", query];
            args.extend(order.map(|order| ["-o", order]).into_iter().flatten());
            let found = gpuflow_json(&devnet, &args).await;
            let found = found.as_array().expect("search prints a list");
            assert_eq!(found.len(), 1, "{readme}: gpuflow search '{query}' finds the offer");
        }
    }

    // The machine around the GPUs is read from the host, and searchable.
    let machine =
        gpuflow_json(&devnet, &["search", "cpu_cores>=1 cpu_ram>=0.5 disk_space>0"]).await;
    let machine = machine.as_array().expect("search prints a list");
    assert_eq!(machine.len(), 1, "{machine:?}");
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(machine[0]["cpu_cores"].as_u64(), Some(cpus), "{}", machine[0]);
    assert!(machine[0]["disk_mb"].as_u64().is_some_and(|mb| mb > 0), "{}", machine[0]);
    let more = format!("cpu_cores>{cpus}");
    assert_eq!(gpuflow_json(&devnet, &["search", &more]).await, serde_json::json!([]));
    let none = gpuflow_json(&devnet, &["search", "dph<0.36"]).await;
    assert_eq!(none.as_array().unwrap().len(), 0, "0.36/h is not below 0.36/h");

    // Rent: the deposit is locked and the provider reports the workload running.
    let rented = gpuflow_json(&devnet, &["rent", &devnet.offer_id, "--hours", "1", "--yes"]).await;
    let id = rented["rental_id"].as_u64().unwrap();
    assert_eq!(rented["share"], Value::Null, "a process is not limited, so no share is quoted");
    let deposit = U256::from(RATE * 3600);
    assert_eq!(amount(&rented["deposit"]), deposit);
    assert_eq!(rented["workload"]["state"], "running", "{rented}");
    assert_eq!(rented["workload"]["gpus"].as_array().unwrap().len(), 2);
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS) - deposit);
    assert_eq!(balance(&escrow, devnet.escrow).await, deposit);

    // The workload really runs, with the rented GPUs.
    let log = devnet.workload_dir.join(format!("{id}.log"));
    let line =
        eventually(&devnet, "the workload's first line", Duration::from_secs(10), || async {
            std::fs::read_to_string(&log).ok().filter(|t| t.ends_with('\n'))
        })
        .await;
    assert!(line.starts_with(&format!("workload up for rental {id} on GPU-")), "{line}");

    let status = gpuflow_json(&devnet, &["status", &id.to_string()]).await;
    assert_eq!(status["active"], true);
    assert_eq!(status["workload"]["state"], "running");

    // Stop early, three chain seconds later: charged exactly rate × elapsed seconds, the
    // rest refunded at once.
    devnet.advance_time(3).await.unwrap();
    let stopped = gpuflow_json(&devnet, &["stop", &id.to_string()]).await;
    let start = rented["start"].as_u64().unwrap();
    let stopped_at = stopped["stopped_at"].as_u64().unwrap();
    assert!(stopped_at >= start + 3, "stopped at {stopped_at}, started at {start}");
    let charged = U256::from(RATE * (stopped_at - start));
    assert_eq!(amount(&stopped["charged"]), charged);
    assert_eq!(amount(&stopped["refund"]), deposit - charged);
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS) - charged);

    // The agent ends the workload and withdraws: provider gets charged − fee.
    let fee = charged * U256::from(FEE_BPS) / U256::from(10_000);
    let paid =
        eventually(&devnet, "the provider's withdrawal", Duration::from_secs(30), || async {
            let history = escrow.history(id).await.unwrap();
            (!history.provider_paid.is_zero() || history.fees != U256::ZERO).then_some(history)
        })
        .await;
    assert_eq!(paid.fees, fee);
    assert_eq!(paid.provider_paid, charged - fee);
    assert_eq!(balance(&escrow, devnet.provider).await, charged - fee);
    assert_eq!(balance(&escrow, devnet.escrow).await, fee, "only the treasury's fee is left");

    let status = gpuflow_json(&devnet, &["status", &id.to_string()]).await;
    assert_eq!(status["active"], false);
    assert_eq!(status["stopped"], true);
    assert_eq!(amount(&status["refund"]), deposit - charged);
    eventually(&devnet, "the workload to be reported ended", Duration::from_secs(15), || async {
        let status = gpuflow_json(&devnet, &["status", &id.to_string()]).await;
        (status["workload"]["state"] == "ended").then_some(())
    })
    .await;

    // A second stop moves no money and says why.
    let again = gpuflow(&devnet, &["stop", &id.to_string()]).await;
    assert!(!again.ok);
    assert!(again.stderr.contains("already stopped"), "{}", again.stderr);
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS) - charged);

    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_rental_ends_on_time_and_provider_is_paid_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;

    // One GPU of the two, at half the machine's rate, for 0.0025 h (9 s); extended by as
    // much again at the same rate.
    let half = RATE / 2;
    let args = ["rent", &devnet.offer_id, "--hours", "0.0025", "--gpus", "1", "--yes"];
    let rented = gpuflow_json(&devnet, &args).await;
    let id = rented["rental_id"].as_u64().unwrap();
    assert_eq!(rented["gpus"], 1);
    assert_eq!(rented["workload"]["gpus"].as_array().unwrap().len(), 1, "{rented}");
    assert_eq!(amount(&rented["deposit"]), U256::from(half * 9));
    let extend = ["extend", &id.to_string(), "--hours", "0.0025", "--yes"];
    let extended = gpuflow_json(&devnet, &extend).await;
    assert_eq!(amount(&extended["cost"]), U256::from(half * 9));
    assert_eq!(extended["new_end"].as_u64().unwrap(), rented["end"].as_u64().unwrap() + 9);
    let total = U256::from(half * 18);

    // The other GPU stays on offer, at its share of the price; asking for more is refused
    // before any money moves.
    eventually(&devnet, "the offer to shrink to one GPU", Duration::from_secs(15), || async {
        let offers = gpuflow_json(&devnet, &["search", "num_gpus=1"]).await;
        (offers.as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    let too_many =
        gpuflow(&devnet, &["rent", &devnet.offer_id, "--hours", "1", "--gpus", "2"]).await;
    assert!(!too_many.ok);
    assert!(too_many.stderr.contains("at most 1 with --gpus"), "{}", too_many.stderr);
    let before = balance(&escrow, devnet.renter).await;

    let history = eventually(
        &devnet,
        "the provider's payout after the rental's end",
        Duration::from_secs(60),
        || async {
            let history = escrow.history(id).await.unwrap();
            (history.provider_paid + history.fees == total).then_some(history)
        },
    )
    .await;
    let fee = total * U256::from(FEE_BPS) / U256::from(10_000);
    assert_eq!(history.fees, fee);
    assert_eq!(history.refund, None);
    assert_eq!(balance(&escrow, devnet.provider).await, total - fee);
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS) - total);
    assert_eq!(before, U256::from(RENTER_FUNDS) - total, "the refused rent moved no money");

    // The offer is back once the machine is free.
    let status = gpuflow_json(&devnet, &["status", &id.to_string()]).await;
    assert_eq!(status["workload"]["state"], "ended");
    assert_eq!(status["active"], false);
    // An ended rental cannot be extended: refused before anything is sent.
    let late = gpuflow(&devnet, &["extend", &id.to_string(), "--hours", "0.0025", "--yes"]).await;
    assert!(!late.ok);
    assert!(late.stderr.contains("cannot be extended, rent again"), "{}", late.stderr);
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS) - total);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;

    let bad_query = gpuflow(&devnet, &["search", "gpu_nam=RTX_4090"]).await;
    assert!(!bad_query.ok);
    assert!(bad_query.stderr.contains("gpu_nam"), "{}", bad_query.stderr);

    let unknown = gpuflow(&devnet, &["rent", "00000000000000ff", "--hours", "1"]).await;
    assert!(!unknown.ok);
    assert!(unknown.stderr.contains("no live offer"), "{}", unknown.stderr);

    let fractional = gpuflow(&devnet, &["rent", &devnet.offer_id, "--hours", "0.0001"]).await;
    assert!(!fractional.ok);
    assert!(fractional.stderr.contains("whole number of seconds"), "{}", fractional.stderr);

    let mut wrong_password = devnet.env();
    wrong_password.retain(|(k, _)| *k != "GPUFLOW_PASSWORD");
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow");
    let out = tokio::process::Command::new(&bin)
        .args(["rent", &devnet.offer_id, "--hours", "1"])
        .envs(wrong_password)
        .env("GPUFLOW_PASSWORD", "not-the-password")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let not_found = gpuflow(&devnet, &["status", "42"]).await;
    assert!(!not_found.ok);
    assert!(not_found.stderr.contains("rental 42 does not exist"), "{}", not_found.stderr);

    // None of it moved money.
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS));
    devnet.shutdown().await;
}

/// The README's quick start runs this script (`make demo`): one rental's whole life,
/// with its own checks of the amounts. It must keep passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_one_rental_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/demo.sh");
    let demo = tokio::process::Command::new("bash")
        .arg(script)
        .env("GPUFLOW_BIN_DIR", gpuflow_devnet::bin_dir().unwrap())
        .env("GPUFLOW_DEMO_DIR", dir.path().join("devnet"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), demo)
        .await
        .expect("the demo ends within 5 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok: deposit = charged + downtime refund + refund"), "{stdout}");
}
