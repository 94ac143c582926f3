//! The renter command line: find GPUs with `gpuflow search`, rent them with a wallet-signed
//! escrow deposit, and manage the rentals.
//!
//! Each subcommand lives in its own file under [`cmd`]; the options every subcommand
//! shares are in [`opts`], their layering (defaults < config file < env < flags) in
//! `config`, and the exit codes in [`error`].

pub mod cmd;
mod config;
pub mod error;
mod node;
pub mod opts;
mod provider;
mod templates;
mod ui;
mod wallet;

use clap::{CommandFactory, Parser, Subcommand};

pub use error::exit_code;

/// Rent GPUs from peers; pay through an on-chain escrow, per second.
#[derive(Debug, Parser)]
#[command(name = "gpuflow", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print JSON for scripts instead of text for humans: no spinner, no prompt (a payment
    /// needs --yes), errors as one JSON document on stdout too.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    globals: opts::GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "Examples:
  gpuflow wallet new
  gpuflow search 'gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 dph<=0.5' -o dph
  gpuflow offer 3f9c2a1b7d4e5f60
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2 --max-price 0.5
  gpuflow rentals
  gpuflow extend 1 --hours 1
  gpuflow logs 1 -f
  gpuflow stop 1

Settings: flags beat GPUFLOW_* variables, which beat the profile in
$XDG_CONFIG_HOME/gpuflow/config.toml, which beats the defaults; `gpuflow config`
shows each value and where it came from. Keystore passwords come from
GPUFLOW_PASSWORD or a prompt.

Exit codes:
  0  success
  1  any other error
  2  usage: bad flags, arguments or configuration (wrong chain id, no wallet, no --yes)
  3  not found: offer, rental, wallet or profile
  4  refused by the provider, the contract or your own limits (--max-price, balance,
     confirmation); no tokens moved (a transaction reverted on chain still cost gas)
  5  unreachable: the node, the chain's RPC or the provider; no tokens moved
  6  pending: tokens may have moved. A rental opened but its workload is not running
     (`gpuflow stop ID` refunds the rest), or a transaction was sent and not confirmed in
     time (`gpuflow rentals` shows whether it opened)";

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, import and inspect wallets (encrypted keystores).
    #[command(subcommand)]
    Wallet(cmd::wallet::WalletCommand),
    /// Search live offers with a Vast.ai-style query.
    Search(cmd::search::SearchArgs),
    /// Show one offer and its provider.
    Offer(cmd::offer::OfferArgs),
    /// Rent an offer: lock `price × duration` in the escrow and start the workload.
    Rent(cmd::rent::RentArgs),
    /// List the ready-made environments `rent --template` starts.
    Templates(cmd::templates::TemplatesArgs),
    /// List the wallet's rentals.
    Rentals(cmd::rentals::RentalsArgs),
    /// Show a rental's state on chain and on the provider.
    Status(cmd::status::StatusArgs),
    /// Buy more time on a running rental, at the same rate.
    Extend(cmd::extend::ExtendArgs),
    /// Let the escrow extend a rental from a capped budget while you are offline.
    AutoExtend(cmd::auto_extend::AutoExtendArgs),
    /// Print a rental's workload logs, signed as its renter.
    Logs(cmd::logs::LogsArgs),
    /// Log in to the rental's machine with your key, or run one command there.
    Ssh(cmd::ssh::SshArgs),
    /// Print the address of the rental's SSH server (`ssh://USER@HOST:PORT`).
    SshUrl(cmd::ssh::SshUrlArgs),
    /// Copy files to or from the rental's machine (rsync where possible, else scp).
    Copy(cmd::copy::CopyArgs),
    /// List your volumes on providers' machines and when each is deleted.
    Volumes(cmd::volumes::VolumesArgs),
    /// Stop a rental early and get the unused remainder back at once.
    Stop(cmd::stop::StopArgs),
    /// Get the provider's downtime during a rental refunded, on a node's signed evidence.
    ClaimSla(cmd::claim_sla::ClaimSlaArgs),
    /// Show the effective settings and where each comes from.
    Config(cmd::config::ConfigArgs),
    /// Print a shell completion script.
    Completions(cmd::completions::CompletionsArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        let ctx = cmd::Ctx { json: self.json, globals: self.globals };
        match self.command {
            Command::Wallet(c) => c.run(&ctx).await,
            Command::Search(args) => args.run(&ctx).await,
            Command::Offer(args) => args.run(&ctx).await,
            Command::Rent(args) => args.run(&ctx).await,
            Command::Templates(args) => args.run(&ctx).await,
            Command::Rentals(args) => args.run(&ctx).await,
            Command::Status(args) => args.run(&ctx).await,
            Command::Extend(args) => args.run(&ctx).await,
            Command::AutoExtend(args) => args.run(&ctx).await,
            Command::Logs(args) => args.run(&ctx).await,
            Command::Ssh(args) => args.run(&ctx).await,
            Command::SshUrl(args) => args.run(&ctx).await,
            Command::Copy(args) => args.run(&ctx).await,
            Command::Volumes(args) => args.run(&ctx).await,
            Command::Stop(args) => args.run(&ctx).await,
            Command::ClaimSla(args) => args.run(&ctx).await,
            Command::Config(args) => args.run(&ctx).await,
            Command::Completions(args) => args.run(&mut Cli::command()),
        }
    }
}
