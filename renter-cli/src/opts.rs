//! Option groups shared by several subcommands.

use std::path::PathBuf;

use alloy::{primitives::Address, providers::Provider, signers::local::PrivateKeySigner};
use anyhow::Context;
use clap::Args;
use gpuflow_escrow::Escrow;

/// Where the node's HTTP API is.
#[derive(Clone, Debug, Args)]
pub struct NodeOpts {
    /// gpuflow node to search.
    #[arg(long, env = "GPUFLOW_NODE", default_value = "http://127.0.0.1:8080")]
    pub node: String,
}

/// The chain and the escrow on it.
#[derive(Clone, Debug, Args)]
pub struct ChainOpts {
    /// Ethereum JSON-RPC endpoint.
    #[arg(long, env = "GPUFLOW_RPC", default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
    /// Address of the GpuEscrow contract.
    #[arg(long, env = "GPUFLOW_ESCROW")]
    pub escrow: Address,
}

/// The renter's wallet.
#[derive(Clone, Debug, Args)]
pub struct WalletOpts {
    /// Encrypted keystore (geth format); its password comes from GPUFLOW_PASSWORD.
    #[arg(long, env = "GPUFLOW_KEYSTORE", value_name = "PATH")]
    pub keystore: Option<PathBuf>,
    /// Name of an environment variable holding a raw private key instead.
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
}

impl WalletOpts {
    /// Loads the signer.
    pub fn signer(&self) -> anyhow::Result<PrivateKeySigner> {
        Ok(gpuflow_escrow::load_signer(self.keystore.as_deref(), self.key_env.as_deref())?)
    }
}

impl ChainOpts {
    /// Connects to the escrow, signing with `signer` if given; fails with the fix when the
    /// chain is unreachable.
    pub async fn escrow(&self, signer: Option<PrivateKeySigner>) -> anyhow::Result<(Escrow, u64)> {
        let provider = gpuflow_escrow::connect(&self.rpc, signer)?;
        let chain_id = provider.get_chain_id().await.with_context(|| {
            format!("cannot reach the chain at {}; check --rpc or GPUFLOW_RPC", self.rpc)
        })?;
        Ok((Escrow::new(provider, self.escrow).await?, chain_id))
    }
}
