//! Deploys `GpuEscrow` (and, for devnets, `MockUSDC`) to any EVM chain.

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
};
use anyhow::Context;
use gpuflow_escrow::{GpuEscrow, MockUSDC};
use serde::Serialize;

/// What to deploy.
#[derive(Clone, Debug)]
pub struct DeployParams {
    /// Payment token; `None` deploys a `MockUSDC` (devnets only).
    pub token: Option<Address>,
    /// Receives the platform fees.
    pub treasury: Address,
    /// Platform fee in basis points (at most 1500).
    pub fee_bps: u16,
    /// Seconds a provider waits before earned seconds can be withdrawn.
    pub dispute_window: u64,
    /// Admin of the escrow (two-step ownership).
    pub owner: Address,
}

/// A deployment, as written to `deployment.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Deployment {
    /// Chain id.
    pub chain_id: u64,
    /// `GpuEscrow` address.
    pub escrow: Address,
    /// Payment token address.
    pub token: Address,
    /// Whether `token` is a `MockUSDC` deployed here.
    pub mock_token: bool,
    /// Fee receiver.
    pub treasury: Address,
    /// Escrow admin.
    pub owner: Address,
    /// Fee in basis points.
    pub fee_bps: u16,
    /// Dispute window in seconds.
    pub dispute_window: u64,
    /// Block in which the escrow was deployed: where indexers start.
    pub block: u64,
}

/// Deploys with the wallet of `provider`.
pub async fn deploy(provider: &DynProvider, params: &DeployParams) -> anyhow::Result<Deployment> {
    let chain_id = provider.get_chain_id().await.context("reading the chain id")?;
    let (token, mock_token) = match params.token {
        Some(token) => (token, false),
        None => {
            let mock = MockUSDC::deploy(provider.clone()).await.context("deploying MockUSDC")?;
            (*mock.address(), true)
        }
    };
    let window = Some(params.dispute_window)
        .filter(|w| *w < 1 << 40)
        .context("the dispute window does not fit 40 bits")?;
    let builder = GpuEscrow::deploy_builder(
        provider.clone(),
        token,
        params.treasury,
        params.fee_bps,
        alloy::primitives::aliases::U40::from(window),
        params.owner,
    );
    let receipt = builder
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("deploying GpuEscrow: {}", gpuflow_escrow::explain(&e)))?
        .get_receipt()
        .await
        .context("waiting for the GpuEscrow deployment")?;
    let escrow = receipt.contract_address.context("the deployment created no contract")?;
    anyhow::ensure!(receipt.status(), "the GpuEscrow deployment reverted");
    Ok(Deployment {
        chain_id,
        escrow,
        token,
        mock_token,
        treasury: params.treasury,
        owner: params.owner,
        fee_bps: params.fee_bps,
        dispute_window: params.dispute_window,
        block: receipt.block_number.context("receipt without block")?,
    })
}

/// Registers `attester` on the escrow, so its downtime attestations are honoured; needs
/// the owner's wallet in `provider`.
pub async fn register_attester(
    provider: &DynProvider,
    escrow: Address,
    attester: Address,
) -> anyhow::Result<()> {
    let receipt = GpuEscrow::new(escrow, provider.clone())
        .setAttester(attester, true)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!("registering attester {attester}: {}", gpuflow_escrow::explain(&e))
        })?
        .get_receipt()
        .await
        .context("waiting for the attester registration")?;
    anyhow::ensure!(receipt.status(), "registering attester {attester} reverted");
    Ok(())
}

/// Mints devnet tokens to `to` (only works on a `MockUSDC`).
pub async fn mint(
    provider: &DynProvider,
    token: Address,
    to: Address,
    amount: U256,
) -> anyhow::Result<()> {
    MockUSDC::new(token, provider.clone())
        .mint(to, amount)
        .send()
        .await?
        .get_receipt()
        .await
        .context("minting devnet tokens")?;
    Ok(())
}
