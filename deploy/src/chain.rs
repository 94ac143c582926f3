//! A local chain to rent on: anvil, `MockUSDC` and `GpuEscrow` deployed from the forge
//! artifacts, and a funded renter.

use std::path::{Path, PathBuf};

use alloy::{
    node_bindings::{Anvil, AnvilInstance},
    primitives::U256,
    signers::local::PrivateKeySigner,
};
use anyhow::Context;

use crate::deploy::{self, DeployParams, Deployment};

/// The anvil binary that `make deps` installs from npm, or `GPUFLOW_ANVIL`.
pub fn anvil_bin() -> PathBuf {
    std::env::var_os("GPUFLOW_ANVIL").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
    })
}

/// How to set up a [`LocalChain`].
#[derive(Clone, Debug)]
pub struct ChainOptions {
    /// The anvil binary.
    pub anvil: PathBuf,
    /// Mine a block every this many seconds instead of on every transaction.
    pub block_time: Option<u64>,
    /// Platform fee in basis points.
    pub fee_bps: u16,
    /// Seconds before earned seconds can be withdrawn.
    pub dispute_window: u64,
    /// Attester keys registered on the escrow (anvil's keys 4 and up), 0 to 5.
    pub attesters: usize,
    /// Distinct attester signatures a downtime credit needs.
    pub attester_threshold: u8,
    /// Tokens minted to the renter, in units.
    pub renter_funds: U256,
}

/// Anvil with the contracts deployed. Anvil's well-known keys play the roles: 0 deploys
/// and owns the escrow, 1 is the treasury, 2 the provider's payout, 3 the renter, 4 and
/// up the attesters. Anvil stops when this is dropped.
#[derive(Debug)]
pub struct LocalChain {
    /// The running anvil.
    pub anvil: AnvilInstance,
    /// What was deployed, as written to `deployment.json`.
    pub deployment: Deployment,
    /// Deployer and owner of the escrow.
    pub deployer: PrivateKeySigner,
    /// Receives the fees.
    pub treasury: PrivateKeySigner,
    /// The provider's payout key.
    pub provider: PrivateKeySigner,
    /// The funded renter.
    pub renter: PrivateKeySigner,
    /// The registered attesters.
    pub attesters: Vec<PrivateKeySigner>,
}

impl LocalChain {
    /// Starts anvil, deploys the contracts and funds the renter.
    pub async fn start(options: &ChainOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(options.attesters <= 5, "a local chain registers at most 5 attesters");
        let mut anvil = Anvil::at(&options.anvil);
        if let Some(seconds) = options.block_time {
            anvil = anvil.block_time(seconds);
        }
        let anvil = anvil.try_spawn().context("starting anvil")?;
        let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
        let (deployer, treasury, provider, renter) = (key(0), key(1), key(2), key(3));
        let attesters: Vec<PrivateKeySigner> = (0..options.attesters).map(|i| key(4 + i)).collect();
        let chain = gpuflow_escrow::connect(&anvil.endpoint(), Some(deployer.clone()))?;
        let deployment = deploy::deploy(
            &chain,
            &DeployParams {
                token: None,
                treasury: treasury.address(),
                fee_bps: options.fee_bps,
                dispute_window: options.dispute_window,
                owner: deployer.address(),
                attesters: attesters.iter().map(|a| a.address()).collect(),
                attester_threshold: options.attester_threshold,
            },
        )
        .await?;
        deploy::mint(&chain, deployment.token, renter.address(), options.renter_funds).await?;
        Ok(Self { anvil, deployment, deployer, treasury, provider, renter, attesters })
    }

    /// The JSON-RPC URL of anvil.
    pub fn rpc_url(&self) -> String {
        self.anvil.endpoint()
    }
}
