//! `gpuflow-deploy`: deploys GpuEscrow to any EVM chain and writes a deployment JSON.

use std::path::PathBuf;

use alloy::primitives::Address;
use clap::Parser;
use gpuflow_devnet::deploy::{DeployParams, deploy};

/// Deploy GpuEscrow (and MockUSDC on devnets) to the chain at --rpc.
#[derive(Debug, Parser)]
#[command(
    name = "gpuflow-deploy",
    version,
    about,
    after_help = "Example:
  gpuflow-deploy --rpc https://rpc.example --key-env DEPLOYER_KEY \\
      --token 0xA0b8...eB48 --treasury 0x... --fee-bps 1000 \\
      --attester 0x... --attester 0x... --threshold 2 --out deployment.json"
)]
struct Args {
    /// Ethereum JSON-RPC endpoint.
    #[arg(long, env = "GPUFLOW_RPC", hide_env_values = true)]
    rpc: String,
    /// Encrypted keystore of the deployer (password in GPUFLOW_PASSWORD).
    #[arg(long, value_name = "PATH")]
    keystore: Option<PathBuf>,
    /// Name of an environment variable holding the deployer's private key instead.
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
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
    let signer = gpuflow_escrow::load_signer(args.keystore.as_deref(), args.key_env.as_deref())?;
    let deployer = signer.address();
    let owner = args.owner.unwrap_or(deployer);
    anyhow::ensure!(
        args.attesters.is_empty() || owner == deployer,
        "attesters are registered by the escrow's owner {owner}, but the deployer is {deployer}; \
         deploy without --attester and register them with the owner's key"
    );
    let provider = gpuflow_escrow::connect(&args.rpc, Some(signer))?;
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
