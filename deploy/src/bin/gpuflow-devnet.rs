//! `gpuflow-devnet`: runs a local gpuflow network until Ctrl-C.

use std::{io::Write, path::PathBuf};

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
    /// Mine a block every N seconds, so that time passes on chain and a rental's cost
    /// grows as it runs; 0 mines a block for each transaction instead.
    #[arg(long, default_value_t = 1, value_name = "SECONDS")]
    block_time: u64,
    /// Nodes to start (1 to 5), each a registered attester; `GPUFLOW_NODES` lists their
    /// URLs for `gpuflow claim-sla --from-node`.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Attester signatures a downtime credit needs (at most --nodes).
    #[arg(long, default_value_t = 1)]
    threshold: u8,
    /// Where rentals run: `process` (a local process each) or `docker` (a container each,
    /// on the local Docker engine, SSH published on 127.0.0.1).
    #[arg(long, value_enum, default_value = "process")]
    runtime: Runtime,
    /// The image rentals run when the renter names none (with --runtime docker); it must
    /// be pullable, e.g. from a registry on 127.0.0.1.
    #[arg(long, value_name = "IMAGE", required_if_eq("runtime", "docker"))]
    image: Option<String>,
    /// Offer this machine's real GPUs, read through NVML, instead of the simulated two
    /// (a GPU machine; see deploy/gpu-smoke.sh).
    #[arg(long)]
    real_gpus: bool,
    /// The shell command each rental runs (process runtime); the default waits.
    #[arg(long, value_name = "COMMAND")]
    workload: Option<String>,
}

/// Where the devnet's rentals run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Runtime {
    /// A local process per rental.
    Process,
    /// A Docker container per rental.
    Docker,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gpuflow_cli_util::exit_quietly_on_closed_pipe();
    gpuflow_cli_util::init_tracing("info");
    let args = Args::parse();
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let mut options = DevnetOptions::for_checkout(args.dir)?;
    options.block_time = (args.block_time > 0).then_some(args.block_time);
    options.nodes = args.nodes;
    options.attester_threshold = args.threshold;
    options.docker_image = args.image.filter(|_| args.runtime == Runtime::Docker);
    if args.real_gpus {
        options.gpus = None;
    }
    if let Some(workload) = args.workload {
        options.workload = workload;
    }
    let devnet = Devnet::start(options).await?;
    devnet.write_env(&args.env_file)?;
    let mut stderr = std::io::stderr();
    for (key, value) in devnet.env() {
        if !key.ends_with("_PASSWORD") {
            let _ = writeln!(stderr, "{key:<26} {value}");
        }
    }
    // The env file appears only once everything is up; this line says so to scripts. When
    // nobody reads it any more, the devnet stops (its processes with it) and ends quietly.
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "gpuflow-devnet ready env={}", args.env_file.display())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        devnet.shutdown().await;
        gpuflow_cli_util::exit_closed_pipe();
    }
    gpuflow_cli_util::shutdown_signal().await;
    let _ = writeln!(stderr, "stopping the devnet");
    devnet.shutdown().await;
    Ok(())
}
