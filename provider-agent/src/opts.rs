//! Every command and flag of `gpuflow-provider`, as clap parses them; what each command
//! does is in [`crate::cmd`].
//!
//! The rpc, escrow and payout key flags are the groups every binary shares
//! ([`gpuflow_cli_util::opts`]), flattened into [`ChainArgs`].

use std::path::PathBuf;

use alloy::primitives::Address;
use clap::{Args, Parser, Subcommand};
use gpuflow_cli_util::{EscrowOpts, KeyOpts, RpcOpts};
use gpuflow_p2p::Multiaddr;

use crate::config::RuntimeKind;

/// Rent out this machine's GPUs on the gpuflow network.
#[derive(Debug, Parser)]
#[command(name = "gpuflow-provider", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  gpuflow-provider init --escrow 0x...
  gpuflow-provider gpus
  gpuflow-provider run --bootstrap /ip4/203.0.113.1/tcp/4001
  gpuflow-provider earnings
  gpuflow-provider withdraw --to 0x...
  gpuflow-provider drain                 # maintenance: no new rentals, running ones go on
  gpuflow-provider run --offer-gpus 0,1 --data-dir ~/.config/gpuflow/provider-4090
  gpuflow-provider run --runtime docker --image nvidia/cuda:12.4.1-base-ubuntu22.04 \\
      --allow-image 'pytorch/pytorch:*' --allow-image ubuntu:22.04 --ssh-host 203.0.113.7
  gpuflow-provider run --rpc http://127.0.0.1:8545 --escrow 0x... --key-env PROVIDER_KEY \\
      --bootstrap /ip4/127.0.0.1/tcp/4001 --price-per-hour 0.36";

/// The subcommands, one file each under [`crate::cmd`].
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the identity, an encrypted payout keystore and a commented config file.
    Init(InitArgs),
    /// List the GPUs this machine would offer.
    Gpus(GpusArgs),
    /// Answer a matrix-product challenge here, as the agent answers a node's, and check it
    /// as a node does.
    #[command(after_help = "Examples:
  gpuflow-provider challenge                     # every CUDA device, n = 8192, 16 rounds
  gpuflow-provider challenge --n 1024 --rounds 2 --cpu

Computes on the GPUs through CUDA (the driver, cuBLAS and NVRTC, loaded at run time) and
fails naming what is missing; --cpu computes on the CPU instead. Before the timed part it
compares each GPU's generated matrix with the protocol's generator. Then it prints the
throughput a node would record (without the network), where the time went, and what
checking the answer cost. Exits 1 if the generator differs or the answer fails the check.")]
    Challenge(ChallengeArgs),
    /// Advertise the GPUs, run rented workloads and withdraw earnings.
    Run(Box<RunArgs>),
    /// What each rental earned, is withdrawable and was withdrawn, from the chain.
    Earnings(EarningsArgs),
    /// Withdraw everything withdrawable now, in one transaction.
    #[command(after_help = "Examples:
  gpuflow-provider withdraw
  gpuflow-provider withdraw --to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8

--to sends the earnings to another address (the escrow's withdrawTo), for a payout
address the token blocklists; the payout wallet still signs.")]
    Withdraw(WithdrawArgs),
    /// This machine as nodes see it, its running rentals and its earnings.
    #[command(after_help = "Examples:
  gpuflow-provider status --node http://203.0.113.1:8080
  gpuflow-provider status --node URL1 --node URL2 --json

Shows the offer on each node given (listed, hidden in a GPU UUID conflict, reliability,
uptime, rentals), whether the agent runs or drains, the rentals running with their time
left, and earnings: withdrawable now, earned but in the dispute window, and still to earn
from running rentals (gross, before the platform fee).")]
    Status(StatusArgs),
    /// Check everything this machine needs to take rentals, each failure with its fix.
    #[command(after_help = "Examples:
  gpuflow-provider doctor --node http://203.0.113.1:8080
  gpuflow-provider doctor --simulate-gpus gpus.json --price-per-hour 0.36 --json

Takes the same flags and config as `run`, and checks: the GPUs (NVML), the listen port,
the Docker engine starting a container with a GPU request (docker runtime), the RPC and
escrow, the payout wallet unlocking and holding gas, the prices converting to whole
token units per second, and, with --node, the offer listed on that node (so `run` must
be running). Exits 1 if any check fails.")]
    Doctor(Box<DoctorArgs>),
    /// Take no new rentals (maintenance): the offer is withdrawn, running rentals go on.
    #[command(after_help = "Examples:
  gpuflow-provider drain
  gpuflow-provider drain --data-dir ~/.config/gpuflow/provider-4090
  gpuflow-provider undrain

The running agent of that data directory stops quoting and withdraws its offer within
seconds; its rentals run to their end and it keeps sending heartbeats, so nodes do not
count the machine down. `undrain` takes rentals again.")]
    Drain(DrainArgs),
    /// Take rentals again after `drain`.
    Undrain(DrainArgs),
    /// Announce a maintenance window ahead, during which nodes do not count the machine
    /// down while it is not rented.
    #[command(after_help = "Examples:
  gpuflow-provider maintenance --in 24 --hours 2     # tomorrow, for two hours
  gpuflow-provider maintenance --off

The running agent announces the window in its signed heartbeats from then on, refuses
rentals that would run into it (quotes are capped at its start), and withdraws its offer
during it. Nodes do not count the listed time inside the part of the window they heard
of before it began, so a machine with no rentals may go down then without losing uptime.
Rented time still counts: a rental running into a window is the provider's to serve.")]
    Maintenance(MaintenanceArgs),
}

/// `gpuflow-provider maintenance`.
#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    /// Which agent.
    #[command(flatten)]
    pub dir: DrainArgs,
    /// Hours from now until the window begins (decimals allowed).
    #[arg(long = "in", value_name = "HOURS", required_unless_present = "off")]
    pub r#in: Option<String>,
    /// How long it lasts, in hours (at most a week).
    #[arg(long, value_name = "HOURS", required_unless_present = "off")]
    pub hours: Option<String>,
    /// Withdraw the announced window.
    #[arg(long, conflicts_with_all = ["in", "hours"])]
    pub off: bool,
}

/// `gpuflow-provider status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Where the chain, the escrow and the payout wallet are.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The agent's data directory (default: the config's `data_dir`, else
    /// `$XDG_CONFIG_HOME/gpuflow/provider`).
    #[arg(long, env = "GPUFLOW_DATA_DIR", hide_env_values = true)]
    pub data_dir: Option<PathBuf>,
    /// A node's HTTP API to ask about the offer (repeatable, or comma separated).
    #[arg(long = "node", env = "GPUFLOW_NODE", value_name = "URL", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// `gpuflow-provider doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The flags of `run`, checked as `run` would use them.
    #[command(flatten)]
    pub run: RunArgs,
    /// A node's HTTP API, asked whether it lists this machine's offer.
    #[arg(long, env = "GPUFLOW_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// `gpuflow-provider drain` and `undrain`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The agent's data directory (default: the config's `data_dir`, else
    /// `$XDG_CONFIG_HOME/gpuflow/provider`).
    #[arg(long, env = "GPUFLOW_DATA_DIR", hide_env_values = true)]
    pub data_dir: Option<PathBuf>,
    /// Config file (default `$XDG_CONFIG_HOME/gpuflow/provider.toml`).
    #[arg(long, env = "GPUFLOW_PROVIDER_CONFIG", hide_env_values = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// `gpuflow-provider init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Address of the GpuEscrow contract, written to the config file.
    #[arg(long, env = "GPUFLOW_ESCROW", hide_env_values = true)]
    pub escrow: Option<Address>,
    /// Directory for the identity key, database and workload logs.
    #[arg(long, env = "GPUFLOW_DATA_DIR", hide_env_values = true)]
    pub data_dir: Option<PathBuf>,
    /// Replace an existing config file and keystore.
    #[arg(long)]
    pub force: bool,
    /// The HTTP API of a node to join the network through: its p2p addresses (`GET
    /// URL/v1/node`) are written to the config's bootstrap list.
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
}

/// `gpuflow-provider gpus`.
#[derive(Debug, Args)]
pub struct GpusArgs {
    /// Use a simulated inventory (development only; offers say `verified: false`).
    #[arg(long, value_name = "FILE")]
    pub simulate_gpus: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `gpuflow-provider challenge`.
#[derive(Debug, Args)]
pub struct ChallengeArgs {
    /// Matrix size: a power of two from 64 to 16384.
    #[arg(long, default_value_t = 8192)]
    pub n: u32,
    /// Products per GPU.
    #[arg(long, default_value_t = 16)]
    pub rounds: u32,
    /// Compute on the CPU (one product per round) instead of the GPUs.
    #[arg(long)]
    pub cpu: bool,
    /// Rows to open and check, as a node does.
    #[arg(long, default_value_t = 4)]
    pub rows: usize,
}

/// `gpuflow-provider earnings`.
#[derive(Debug, Args)]
pub struct EarningsArgs {
    /// Where the chain, the escrow and the payout wallet are.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `gpuflow-provider withdraw`.
#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// Where the chain, the escrow and the payout wallet are.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Send the earnings to this address instead of the payout address.
    #[arg(long, value_name = "ADDRESS")]
    pub to: Option<Address>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Where the chain, the escrow and the payout wallet are; each falls back to the config
/// file.
#[derive(Debug, Args)]
#[command(mut_arg("keystore", |a| a.help(
    "Encrypted keystore of the payout wallet [env: GPUFLOW_PROVIDER_KEYSTORE] (password in \
     GPUFLOW_PROVIDER_PASSWORD or prompted); else `keystore` of the config file"
)))]
pub struct ChainArgs {
    /// Config file (default `$XDG_CONFIG_HOME/gpuflow/provider.toml`).
    #[arg(long, env = "GPUFLOW_PROVIDER_CONFIG", hide_env_values = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The chain's JSON-RPC endpoint.
    #[command(flatten)]
    pub rpc: RpcOpts,
    /// The escrow contract.
    #[command(flatten)]
    pub escrow: EscrowOpts,
    /// The payout wallet.
    #[command(flatten)]
    pub key: KeyOpts,
}

/// `gpuflow-provider run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the chain, the escrow and the payout wallet are.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Directory for the identity key, database and workload logs.
    #[arg(long, env = "GPUFLOW_DATA_DIR", hide_env_values = true)]
    pub data_dir: Option<PathBuf>,
    /// libp2p listen address.
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/4002")]
    pub listen: Multiaddr,
    /// Node to join the network through (repeatable).
    #[arg(long, env = "GPUFLOW_BOOTSTRAP", hide_env_values = true, value_delimiter = ',')]
    pub bootstrap: Vec<Multiaddr>,
    /// Price of the whole machine per hour, in tokens (e.g. 0.36), split evenly over its
    /// GPUs and billed per second; overrides the per-model prices of the config file.
    #[arg(long)]
    pub price_per_hour: Option<String>,
    /// Region label shown to renters.
    #[arg(long)]
    pub region: Option<String>,
    /// Download bandwidth to declare in offers, Mbit/s.
    #[arg(long)]
    pub inet_down_mbps: Option<u64>,
    /// Upload bandwidth to declare in offers, Mbit/s.
    #[arg(long)]
    pub inet_up_mbps: Option<u64>,
    /// Where rentals run: `process` (development) or `docker`.
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeKind>,
    /// Shell command each rental runs (process runtime).
    #[arg(long)]
    pub workload: Option<String>,
    /// Container image rentals run when the renter asks for none (docker runtime).
    #[arg(long)]
    pub image: Option<String>,
    /// Host name or IP renters reach the mapped SSH port on (docker runtime).
    #[arg(long, value_name = "HOST")]
    pub ssh_host: Option<String>,
    /// An image renters may ask for (repeatable; a trailing `*` matches any tag);
    /// replaces `allowed_images` of the config file. Without any, every image is allowed.
    #[arg(long = "allow-image", value_name = "IMAGE")]
    pub allowed_images: Vec<String>,
    /// Use a simulated inventory (development only; offers say `verified: false`).
    #[arg(long, value_name = "FILE")]
    pub simulate_gpus: Option<PathBuf>,
    /// Offer only these GPUs, by the index `gpuflow-provider gpus` shows (e.g. 0,1);
    /// replaces `offer_gpus` of the config file. All of them without either.
    #[arg(long, value_name = "INDICES", value_delimiter = ',')]
    pub offer_gpus: Vec<usize>,
    /// Chain polling interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub poll_interval_ms: u64,
    /// Offer republish interval in seconds.
    #[arg(long, default_value_t = 120)]
    pub offer_interval_secs: u64,
    /// Heartbeat interval in seconds.
    #[arg(long, default_value_t = 15)]
    pub heartbeat_interval_secs: u64,
    /// Shortest rental accepted, in seconds.
    #[arg(long)]
    pub min_duration_secs: Option<u64>,
    /// Longest rental accepted, extensions included, in seconds.
    #[arg(long)]
    pub max_duration_secs: Option<u64>,
    /// How long a signed quote stays usable, in seconds; its GPUs are held for it meanwhile.
    #[arg(long, default_value_t = 120)]
    pub quote_validity_secs: u64,
    /// Withdraw from running rentals once this many tokens are withdrawable; 0 withdraws
    /// only ended rentals.
    #[arg(long)]
    pub withdraw_threshold: Option<String>,
    /// How long a renter's volume outlives the rental that last used it, in hours
    /// (decimals allowed; default 24); 0 keeps no volumes.
    #[arg(long, value_name = "HOURS")]
    pub volume_grace_hours: Option<String>,
}
