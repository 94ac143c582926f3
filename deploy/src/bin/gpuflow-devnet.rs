//! `gpuflow-devnet`: runs a local gpuflow network until Ctrl-C.

use std::path::PathBuf;

use clap::Parser;
use gpuflow_devnet::{Devnet, DevnetOptions};

/// Start anvil, the contracts, a node and a provider agent on free ports.
#[derive(Debug, Parser)]
#[command(name = "gpuflow-devnet", version, about)]
struct Args {
    /// Directory for logs, keystores and data (emptied first).
    #[arg(long, default_value = ".devnet")]
    dir: PathBuf,
    /// Where to write the environment (addresses, URLs) for `gpuflow` commands.
    #[arg(long, default_value = ".devnet/env")]
    env_file: PathBuf,
    /// Mine a block every N seconds instead of on each transaction.
    #[arg(long)]
    block_time: Option<u64>,
    /// Nodes to start (1 to 5), each a registered attester; `GPUFLOW_NODES` lists their
    /// URLs for `gpuflow claim-sla --from-node`.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Attester signatures a downtime credit needs (at most --nodes).
    #[arg(long, default_value_t = 1)]
    threshold: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gpuflow_cli_util::init_tracing("info");
    let args = Args::parse();
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let mut options = DevnetOptions::for_checkout(args.dir)?;
    options.block_time = args.block_time;
    options.nodes = args.nodes;
    options.attester_threshold = args.threshold;
    let devnet = Devnet::start(options).await?;
    devnet.write_env(&args.env_file)?;
    for (key, value) in devnet.env() {
        if !key.ends_with("_PASSWORD") {
            eprintln!("{key:<22} {value}");
        }
    }
    // The env file appears only once everything is up; this line says so to scripts.
    println!("gpuflow-devnet ready env={}", args.env_file.display());
    gpuflow_cli_util::shutdown_signal().await;
    eprintln!("stopping the devnet");
    devnet.shutdown().await;
    Ok(())
}
