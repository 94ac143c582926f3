//! One file per subcommand of `gpuflow-provider`; their flags are in [`crate::opts`].
//!
//! `anyhow` stays at this edge: what each command prints on failure is the error chain,
//! as `main` formats it.

mod challenge;
mod connect;
mod doctor;
mod drain;
mod earnings;
mod gpus;
mod init;
mod run;
mod status;
mod withdraw;

use std::path::PathBuf;

use crate::opts::{Cli, Command};

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => init::run(args).await,
        Command::Gpus(args) => gpus::run(args),
        Command::Challenge(args) => {
            tokio::task::spawn_blocking(move || challenge::run(args)).await?
        }
        Command::Run(args) => run::run(*args).await,
        Command::Earnings(args) => earnings::run(args).await,
        Command::Withdraw(args) => withdraw::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Doctor(args) => doctor::run(*args).await,
        Command::Drain(args) => drain::drain(args),
        Command::Undrain(args) => drain::undrain(args),
        Command::Maintenance(args) => drain::maintenance(args),
    }
}

fn default_config_path() -> anyhow::Result<PathBuf> {
    Ok(gpuflow_cli_util::config_dir().map_err(anyhow::Error::msg)?.join("provider.toml"))
}

/// The agent's data directory: `flag` (`--data-dir`), the config's `data_dir`, or the
/// default.
fn data_dir(flag: Option<PathBuf>, file: &crate::config::FileConfig) -> anyhow::Result<PathBuf> {
    match flag.or(file.data_dir.clone()) {
        Some(dir) => Ok(dir),
        None => default_data_dir(),
    }
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    Ok(gpuflow_cli_util::config_dir().map_err(anyhow::Error::msg)?.join("provider"))
}
