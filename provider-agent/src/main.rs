//! `gpuflow-provider`: rents out this machine's GPUs on the gpuflow network.

use std::{path::PathBuf, time::Duration};

use alloy::providers::Provider;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gpuflow_escrow::Escrow;
use gpuflow_p2p::{Multiaddr, NetworkConfig};
use gpuflow_protocol::{Identity, MAX_OFFER_TTL, format_units, parse_units};

use gpuflow_provider::{
    agent::{Agent, AgentConfig, ChainContext},
    gpus,
};

/// Rent out this machine's GPUs on the gpuflow network.
#[derive(Debug, Parser)]
#[command(name = "gpuflow-provider", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  gpuflow-provider gpus
  gpuflow-provider run --rpc http://127.0.0.1:8545 --escrow 0x... --key-env PROVIDER_KEY \\
      --bootstrap /ip4/127.0.0.1/tcp/4001 --price-per-hour 0.36";

#[derive(Debug, Subcommand)]
enum Command {
    /// List the GPUs this machine would offer.
    Gpus {
        /// Use a simulated inventory (development only; offers say `verified: false`).
        #[arg(long, value_name = "FILE")]
        simulate_gpus: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Advertise the GPUs, run rented workloads and withdraw earnings.
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Ethereum JSON-RPC endpoint.
    #[arg(long, env = "GPUFLOW_RPC", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Address of the GpuEscrow contract.
    #[arg(long, env = "GPUFLOW_ESCROW")]
    escrow: alloy::primitives::Address,
    /// Encrypted keystore of the payout wallet (password in GPUFLOW_PASSWORD).
    #[arg(long, env = "GPUFLOW_KEYSTORE", value_name = "PATH")]
    keystore: Option<PathBuf>,
    /// Name of an environment variable holding the payout private key instead.
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
    /// Directory for the identity key and workload logs.
    #[arg(long, env = "GPUFLOW_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// libp2p listen address.
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/4002")]
    listen: Multiaddr,
    /// Node to join the network through (repeatable).
    #[arg(long, env = "GPUFLOW_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Price of the whole machine per hour, in tokens (e.g. 0.36); billed per second.
    #[arg(long)]
    price_per_hour: String,
    /// Region label shown to renters.
    #[arg(long, default_value = "unknown")]
    region: String,
    /// Download bandwidth to declare in offers, Mbit/s.
    #[arg(long)]
    inet_down_mbps: Option<u64>,
    /// Upload bandwidth to declare in offers, Mbit/s.
    #[arg(long)]
    inet_up_mbps: Option<u64>,
    /// Disk offered to workloads, in GB (10^9 bytes).
    #[arg(long)]
    disk_gb: Option<u64>,
    /// Shell command each rental runs (process runtime).
    #[arg(long, default_value = "exec sleep 2147483647")]
    workload: String,
    /// Use a simulated inventory (development only; offers say `verified: false`).
    #[arg(long, value_name = "FILE")]
    simulate_gpus: Option<PathBuf>,
    /// Chain polling interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_interval_ms: u64,
    /// Offer republish interval in seconds.
    #[arg(long, default_value_t = 120)]
    offer_interval_secs: u64,
    /// Shortest rental accepted, in seconds.
    #[arg(long, default_value_t = 1)]
    min_duration_secs: u64,
    /// Longest rental accepted, extensions included, in seconds.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    max_duration_secs: u64,
    /// How long a signed quote stays usable, in seconds.
    #[arg(long, default_value_t = 300)]
    quote_validity_secs: u64,
}

#[tokio::main]
async fn main() {
    gpuflow_cli_util::init_tracing("info,libp2p=warn");
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Gpus { simulate_gpus, json } => {
            let inventory = gpus::inventory(simulate_gpus.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inventory.gpus)?);
            } else {
                println!(
                    "{:<4} {:<28} {:>9} {:<18} {:<5} {:<8} UUID",
                    "#", "NAME", "VRAM_GB", "PCI", "CC", "CUDA"
                );
                for (i, g) in inventory.gpus.iter().enumerate() {
                    println!(
                        "{:<4} {:<28} {:>9} {:<18} {:<5} {:<8} {}",
                        i,
                        g.name,
                        format_units(u128::from(g.memory_bytes / 1_000_000), 3),
                        g.pci_bus_id,
                        g.compute_capability,
                        g.cuda_version,
                        g.uuid
                    );
                }
                if !inventory.verified {
                    println!("(simulated inventory: offers will say verified: false)");
                }
            }
            Ok(())
        }
        Command::Run(args) => run_agent(*args).await,
    }
}

async fn run_agent(args: RunArgs) -> anyhow::Result<()> {
    let inventory = gpus::inventory(args.simulate_gpus.as_deref())?;
    let payout = gpuflow_escrow::load_signer(args.keystore.as_deref(), args.key_env.as_deref())?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => gpuflow_cli_util::config_dir().map_err(anyhow::Error::msg)?.join("provider"),
    };
    let identity = Identity::load_or_create(&data_dir.join("identity.key"))
        .with_context(|| format!("loading the identity in {}", data_dir.display()))?;

    let client = gpuflow_escrow::connect(&args.rpc, Some(payout.clone()))?;
    let chain_id = client
        .get_chain_id()
        .await
        .with_context(|| format!("cannot reach the chain at {}", args.rpc))?;
    let escrow = Escrow::new(client, args.escrow).await?;
    let decimals = escrow.decimals().await?;
    let per_hour = parse_units(&args.price_per_hour, decimals)
        .map_err(|e| anyhow::anyhow!("--price-per-hour: {e}"))?;
    let price_per_second = per_hour / 3600;
    anyhow::ensure!(
        price_per_second > 0,
        "--price-per-hour {} is below one token unit per second; raise it",
        args.price_per_hour
    );
    if per_hour % 3600 != 0 {
        tracing::warn!(
            billed_per_hour = %format_units(price_per_second * 3600, decimals),
            "price rounded down to whole token units per second"
        );
    }
    let chain = ChainContext {
        chain_id,
        domain: escrow.domain().await?,
        dispute_window: escrow.dispute_window().await?,
        next_block: escrow.block_number().await?,
    };

    let (network, events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: identity.clone(),
        listen: vec![args.listen],
        bootstrap: args.bootstrap,
        subscribe_offers: false,
        serve_requests: true,
    })?;
    tokio::spawn(event_loop.run());

    let agent = Agent::new(
        AgentConfig {
            identity,
            payout: payout.clone(),
            inventory,
            price_per_second,
            region: args.region,
            inet_down_mbps: args.inet_down_mbps,
            inet_up_mbps: args.inet_up_mbps,
            disk_bytes: args.disk_gb.map(|gb| gb.saturating_mul(1_000_000_000)),
            workload: args.workload,
            data_dir,
            poll_interval: Duration::from_millis(args.poll_interval_ms),
            offer_interval: Duration::from_secs(args.offer_interval_secs),
            offer_ttl: Duration::from_secs((args.offer_interval_secs * 3).clamp(60, MAX_OFFER_TTL)),
            min_duration: args.min_duration_secs,
            max_duration: args.max_duration_secs,
            quote_validity: Duration::from_secs(args.quote_validity_secs),
        },
        network.clone(),
        escrow,
        chain,
    );
    // One line on stdout tells supervisors (and the devnet) that the agent is up.
    println!(
        "gpuflow-provider ready peer={} offer={} payout={}",
        network.peer_id(),
        agent.offer_id(),
        payout.address()
    );
    agent.run(events, gpuflow_cli_util::shutdown_signal()).await
}
