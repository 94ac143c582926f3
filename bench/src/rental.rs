//! Time to a running rental: the devnet (anvil mining a block every second, the contracts,
//! a node and a provider agent), then `gpuflow --json rent` until the JSON says the
//! workload runs, `gpuflow stop`, and again.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use gpuflow_devnet::{Devnet, DevnetOptions};
use tokio::process::Command;

use crate::report::{Figure, Section, Target, quantile};

/// Parameters of the rental benchmark.
#[derive(Clone, Debug)]
pub struct RentalParams {
    /// Rentals to time.
    pub rentals: usize,
    /// Where `gpuflow`, `gpuflow-node` and `gpuflow-provider` are.
    pub bin_dir: PathBuf,
    /// The command line to print beside the figure.
    pub command: String,
}

/// Runs the rental benchmark.
pub async fn run(params: &RentalParams) -> anyhow::Result<Section> {
    let dir = tempfile::tempdir()?;
    let options = DevnetOptions {
        bin_dir: params.bin_dir.clone(),
        block_time: Some(1),
        ..DevnetOptions::for_checkout(dir.path().join("devnet"))?
    };
    let devnet = Devnet::start(options).await.context("starting the devnet")?;
    let result = rentals(params, &devnet, dir.path()).await;
    devnet.shutdown().await;
    result
}

/// `gpuflow` as the devnet's renter: the devnet's settings, none of this process's
/// `GPUFLOW_*`, and a configuration directory of its own.
pub(crate) struct Renter<'a> {
    gpuflow: PathBuf,
    config: PathBuf,
    devnet: &'a Devnet,
}

impl<'a> Renter<'a> {
    /// The renter of `devnet`, running `gpuflow` from `bin_dir`, its configuration in `dir`.
    pub(crate) fn new(bin_dir: &Path, devnet: &'a Devnet, dir: &Path) -> Self {
        Self { gpuflow: bin_dir.join("gpuflow"), config: dir.join("config"), devnet }
    }

    /// `gpuflow ARGS`, ready to run.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.gpuflow);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GPUFLOW_")) {
            command.env_remove(key);
        }
        command.envs(self.devnet.env()).env("XDG_CONFIG_HOME", &self.config).args(args);
        command
    }

    /// Stops rental `id`, then waits at most `patience` for the provider to end its
    /// workload; whether it did.
    pub(crate) async fn stop_and_wait(&self, id: &str, patience: Duration) -> anyhow::Result<bool> {
        let stop = self.command(&["--json", "stop", id]).output().await?;
        if !stop.status.success() {
            bail!("gpuflow stop {id} failed: {}", String::from_utf8_lossy(&stop.stderr).trim());
        }
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            let status = self.command(&["--json", "status", id]).output().await?;
            let json: serde_json::Value =
                serde_json::from_slice(&status.stdout).unwrap_or_default();
            if json["workload"].is_null() || json["workload"]["state"] == "ended" {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(false)
    }
}

async fn rentals(params: &RentalParams, devnet: &Devnet, dir: &Path) -> anyhow::Result<Section> {
    let renter = Renter::new(&params.bin_dir, devnet, dir);
    let cli = |args: &[&str]| renter.command(args);
    let mut times = Vec::new();
    let mut rows = String::new();
    for n in 1..=params.rentals {
        let args = ["--json", "rent", &devnet.offer_id, "--hours", "0.01", "--yes"];
        let start = Instant::now();
        let out = cli(&args).output().await?;
        let took = start.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "rental {n}: gpuflow rent failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("gpuflow --json rent printed no JSON")?;
        let state = json["workload"]["state"].as_str().unwrap_or("none").to_owned();
        if state != "running" {
            bail!("rental {n}: the workload is `{state}`, not running: {json}");
        }
        let id = json["rental_id"].to_string();
        let _ = writeln!(rows, "| {n} | {id} | {took:.2} s |");
        times.push(took);
        // The next rental starts once the provider has ended this workload (or 30 s on).
        renter.stop_and_wait(&id, Duration::from_secs(30)).await?;
    }
    let median = quantile(&mut times, 0.5);
    let mut details = String::from("## Time to a running rental\n\n");
    let _ = writeln!(
        details,
        "`Devnet::start` with `block_time: Some(1)` (anvil mines a block every second; one node, \
         one provider agent with the local process runtime), then {} times `gpuflow --json \
         rent OFFER --hours 0.01 --yes` timed from spawn to exit — the CLI exits once the provider \
         reports the workload running, which the JSON confirms — then `gpuflow stop` and a wait \
         for the workload to end. Median {median:.2} s.\n",
        params.rentals,
    );
    details.push_str("| # | rental | rent → running |\n| ---: | ---: | ---: |\n");
    details.push_str(&rows);
    let figure = Figure::new(
        "time to a running rental",
        median,
        "s",
        Some(Target::AtMost(5.0)),
        &params.command,
    )
    .note(format!("1 s blocks, median of {}", params.rentals));
    if figure.missed() {
        details.push_str(
            "\nWhere the time goes: a rental waits for at least two blocks (the deposit's \
             approval or permit and `open`) and for the agent to see `RentalOpened` in a mined \
             block and start the workload; with one-second blocks that is two to three \
             seconds before any process starts. Plan: open with permit in one transaction, \
             have the agent watch pending logs, and report readiness on the request-response \
             channel instead of being polled.\n",
        );
    }
    Ok(Section { figures: vec![figure], details })
}
