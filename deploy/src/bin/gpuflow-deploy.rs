//! `gpuflow-deploy`: deploys GpuEscrow to any EVM chain and writes a deployment JSON.

use std::path::PathBuf;

use alloy::primitives::Address;
use anyhow::Context;
use clap::Parser;
use gpuflow_cli_util::{KeyOpts, RpcOpts};
use gpuflow_devnet::deploy::{DeployParams, deploy};
use gpuflow_escrow::{PASSWORD_ENV, WalletError};

/// The variable that may name the deployer's keystore instead of `--keystore`.
const KEYSTORE_ENV: &str = "GPUFLOW_DEPLOYER_KEYSTORE";

/// Deploy GpuEscrow (and MockUSDC on devnets) to the chain at --rpc.
#[derive(Debug, Parser)]
#[command(
    mut_arg("keystore", |a| a.help(
        "Encrypted keystore of the deployer [env: GPUFLOW_DEPLOYER_KEYSTORE] (password in GPUFLOW_PASSWORD, or asked)"
    )),
    name = "gpuflow-deploy",
    version,
    after_help = "Example:
  gpuflow-deploy --rpc https://rpc.example --key-env DEPLOYER_KEY \\
      --token 0xA0b8...eB48 --treasury 0x... --fee-bps 1000 \\
      --attester 0x... --attester 0x... --threshold 2 --out deployment.json"
)]
struct Args {
    /// The chain to deploy to.
    #[command(flatten)]
    rpc: RpcOpts,
    /// The deployer's key.
    #[command(flatten)]
    key: KeyOpts,
    /// ERC-20 to pay in (fee-on-transfer and rebasing tokens are unsupported).
    #[arg(long, required_unless_present = "mock_token")]
    token: Option<Address>,
    /// Deploy a MockUSDC to pay in (devnets only).
    #[arg(long, conflicts_with = "token")]
    mock_token: bool,
    /// Receives the platform fees.
    #[arg(long)]
    treasury: Address,
    /// Platform fee in basis points (at most 1500).
    #[arg(long, default_value_t = 1000)]
    fee_bps: u16,
    /// Seconds before earned seconds can be withdrawn, so downtime can be credited first.
    #[arg(long, default_value_t = 3600)]
    dispute_window: u64,
    /// Admin of the escrow; defaults to the deployer. Must be the deployer when
    /// --attester is given, since the admin registers them.
    #[arg(long)]
    owner: Option<Address>,
    /// Register ADDRESS as a downtime attester after deploying (repeatable).
    #[arg(long = "attester", value_name = "ADDRESS")]
    attesters: Vec<Address>,
    /// Distinct attester signatures a downtime credit needs; at most the number of
    /// --attester.
    #[arg(long, value_name = "N", default_value_t = 1)]
    threshold: u8,
    /// Where to write the deployment JSON.
    #[arg(long, default_value = "deployment.json")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gpuflow_cli_util::exit_quietly_on_closed_pipe();
    gpuflow_cli_util::init_tracing("warn");
    let args = Args::parse();
    let rpc = args.rpc.resolve(None)?.context("no chain: pass --rpc URL or set GPUFLOW_RPC")?;
    let key = args.key.resolve(KEYSTORE_ENV, None).ok_or(WalletError::Missing)?;
    let signer = gpuflow_cli_util::wallet::signer(&key, "deployer key", PASSWORD_ENV)?;
    let deployer = signer.address();
    let owner = args.owner.unwrap_or(deployer);
    anyhow::ensure!(
        args.attesters.is_empty() || owner == deployer,
        "attesters are registered by the escrow's owner {owner}, but the deployer is {deployer}; \
         deploy without --attester and register them with the owner's key"
    );
    let provider = gpuflow_escrow::connect(&rpc.value, Some(signer))?;
    let deployment = deploy(
        &provider,
        &DeployParams {
            token: args.token,
            treasury: args.treasury,
            fee_bps: args.fee_bps,
            dispute_window: args.dispute_window,
            owner,
            attesters: args.attesters,
            attester_threshold: args.threshold,
        },
    )
    .await?;
    let json = serde_json::to_string_pretty(&deployment)?;
    std::fs::write(&args.out, format!("{json}\n"))?;
    println!("{json}");
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
