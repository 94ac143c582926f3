//! The renter command line: `gpuflow search | rent | extend | status | stop`.
//!
//! Each subcommand lives in its own file under [`cmd`]; the option groups shared by
//! several of them are in [`opts`].

pub mod cmd;
mod node;
pub mod opts;
mod provider;

use clap::{Parser, Subcommand};

/// Rent GPUs from peers; pay through an on-chain escrow, per second.
#[derive(Debug, Parser)]
#[command(name = "gpuflow", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Print JSON for scripts instead of text for humans.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  gpuflow search 'gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 dph<=0.5' -o dph
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2
  gpuflow extend 1 --hours 1
  gpuflow status 1
  gpuflow stop 1

Configuration comes from flags or GPUFLOW_NODE, GPUFLOW_RPC, GPUFLOW_ESCROW,
GPUFLOW_KEYSTORE and GPUFLOW_PASSWORD.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Search live offers with a Vast.ai-style query.
    Search(cmd::search::SearchArgs),
    /// Rent an offer: lock `price × duration` in the escrow and start the workload.
    Rent(cmd::rent::RentArgs),
    /// Buy more time on a running rental, at the same rate.
    Extend(cmd::extend::ExtendArgs),
    /// Show a rental's state on chain and on the provider.
    Status(cmd::status::StatusArgs),
    /// Stop a rental early and get the unused remainder back at once.
    Stop(cmd::stop::StopArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Search(args) => args.run(self.json).await,
            Command::Rent(args) => args.run(self.json).await,
            Command::Extend(args) => args.run(self.json).await,
            Command::Status(args) => args.run(self.json).await,
            Command::Stop(args) => args.run(self.json).await,
        }
    }
}
