//! Deploys `GpuEscrow` (and, for devnets, `MockUSDC`) to any EVM chain.

use alloy::{
    network::Ethereum,
    primitives::{Address, U256},
    providers::{DynProvider, PendingTransactionBuilder, Provider},
    rpc::types::TransactionReceipt,
};
use anyhow::Context;
use gpuflow_escrow::admin::{self, EscrowTerms};
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
    /// Accounts registered as downtime attesters right after deployment, by the owner,
    /// which must then be the deploying wallet.
    pub attesters: Vec<Address>,
    /// How many distinct attesters must sign a downtime attestation; at most
    /// `attesters.len()` when attesters are named. The escrow starts at 1.
    pub attester_threshold: u8,
}

impl DeployParams {
    /// Refuses attester settings the escrow would reject, before anything is sent.
    pub fn check_attesters(&self) -> anyhow::Result<()> {
        let count = self.attesters.len();
        anyhow::ensure!(self.attester_threshold > 0, "the attester threshold must be at least 1");
        if count == 0 {
            anyhow::ensure!(
                self.attester_threshold == 1,
                "an attester threshold of {} needs at least {} attesters, and none was named \
                 (--attester ADDRESS)",
                self.attester_threshold,
                self.attester_threshold
            );
            return Ok(());
        }
        anyhow::ensure!(
            usize::from(self.attester_threshold) <= count,
            "an attester threshold of {} is more than the {count} attester(s) named; name more \
             with --attester or lower --threshold",
            self.attester_threshold
        );
        for (i, attester) in self.attesters.iter().enumerate() {
            anyhow::ensure!(!attester.is_zero(), "the zero address cannot be an attester");
            anyhow::ensure!(
                !self.attesters[..i].contains(attester),
                "attester {attester} is named twice"
            );
        }
        Ok(())
    }
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
    /// Registered downtime attesters.
    pub attesters: Vec<Address>,
    /// Distinct attester signatures a downtime credit needs.
    pub attester_threshold: u8,
}

/// Deploys with the wallet of `provider`, then registers the attesters and sets the
/// threshold with the same wallet, the owner's.
pub async fn deploy(provider: &DynProvider, params: &DeployParams) -> anyhow::Result<Deployment> {
    params.check_attesters()?;
    let chain_id = provider.get_chain_id().await.context("reading the chain id")?;
    let (token, mock_token) = match params.token {
        Some(token) => (token, false),
        None => {
            let mock = admin::deploy_mock_token(provider).await.context("deploying MockUSDC")?;
            (mock, true)
        }
    };
    let window = Some(params.dispute_window)
        .filter(|w| *w < 1 << 40)
        .context("the dispute window does not fit 40 bits")?;
    let terms = EscrowTerms {
        token,
        treasury: params.treasury,
        fee_bps: params.fee_bps,
        dispute_window: alloy::primitives::aliases::U40::from(window),
        owner: params.owner,
    };
    let sent = admin::deploy_escrow(provider, terms).await;
    let receipt = confirmed("the GpuEscrow deployment", sent).await?;
    let escrow = receipt.contract_address.context("the deployment created no contract")?;
    let block = receipt.block_number.context("receipt without block")?;
    let deployed = || format!("GpuEscrow was deployed at {escrow} in block {block}, but");
    // Attesters first: the escrow refuses a threshold above the number registered.
    for attester in &params.attesters {
        register_attester(provider, escrow, *attester).await.with_context(deployed)?;
    }
    if params.attester_threshold != 1 {
        set_attester_threshold(provider, escrow, params.attester_threshold)
            .await
            .with_context(deployed)?;
    }
    Ok(Deployment {
        chain_id,
        escrow,
        token,
        mock_token,
        treasury: params.treasury,
        owner: params.owner,
        fee_bps: params.fee_bps,
        dispute_window: params.dispute_window,
        block,
        attesters: params.attesters.clone(),
        attester_threshold: params.attester_threshold,
    })
}

/// Registers `attester` on the escrow, so its downtime attestations are honoured; needs
/// the owner's wallet in `provider`.
async fn register_attester(
    provider: &DynProvider,
    escrow: Address,
    attester: Address,
) -> anyhow::Result<()> {
    let sent = admin::set_attester(provider, escrow, attester).await;
    confirmed(&format!("registering attester {attester}"), sent).await?;
    Ok(())
}

/// Sets how many distinct attesters must sign a downtime attestation; needs the owner's
/// wallet in `provider`.
async fn set_attester_threshold(
    provider: &DynProvider,
    escrow: Address,
    threshold: u8,
) -> anyhow::Result<()> {
    let sent = admin::set_attester_threshold(provider, escrow, threshold).await;
    confirmed(&format!("setting the attester threshold to {threshold}"), sent).await?;
    Ok(())
}

/// Mints devnet tokens to `to` (only works on a `MockUSDC`).
pub async fn mint(
    provider: &DynProvider,
    token: Address,
    to: Address,
    amount: U256,
) -> anyhow::Result<()> {
    confirmed("minting devnet tokens", admin::mint(provider, token, to, amount).await).await?;
    Ok(())
}

/// Waits for the transaction `what` names to be mined and checks that it succeeded; a call
/// refused before it was sent is explained in plain words.
async fn confirmed(
    what: &str,
    sent: Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>,
) -> anyhow::Result<TransactionReceipt> {
    let receipt = sent
        .map_err(|e| anyhow::anyhow!("{what}: {}", gpuflow_escrow::explain(&e)))?
        .get_receipt()
        .await
        .with_context(|| format!("waiting for {what}"))?;
    anyhow::ensure!(receipt.status(), "{what} reverted");
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use alloy::{node_bindings::Anvil, signers::local::PrivateKeySigner};
    use gpuflow_escrow::GpuEscrow;

    use super::*;

    fn params(attesters: &[u8], threshold: u8) -> DeployParams {
        DeployParams {
            token: None,
            treasury: Address::repeat_byte(0xee),
            fee_bps: 1000,
            dispute_window: 3600,
            owner: Address::repeat_byte(0xdd),
            attesters: attesters.iter().map(|b| Address::repeat_byte(*b)).collect(),
            attester_threshold: threshold,
        }
    }

    #[test]
    fn attester_settings_the_escrow_would_refuse_are_refused_up_front() {
        assert!(params(&[], 1).check_attesters().is_ok());
        assert!(params(&[1, 2], 2).check_attesters().is_ok());
        let error = |p: DeployParams| p.check_attesters().unwrap_err().to_string();
        assert!(error(params(&[1, 2], 3)).contains("threshold of 3 is more than the 2"));
        assert!(error(params(&[], 2)).contains("none was named"));
        assert!(error(params(&[1], 0)).contains("at least 1"));
        assert!(error(params(&[1, 1], 1)).contains("named twice"));
        assert!(error(params(&[0], 1)).contains("zero address"));
    }

    #[tokio::test]
    async fn deploys_with_attesters_and_threshold_on_anvil() {
        let anvil = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        let anvil = Anvil::at(anvil).try_spawn().expect("anvil from contracts/node_modules");
        let deployer = PrivateKeySigner::from(anvil.keys()[0].clone());
        let owner = deployer.address();
        let chain = gpuflow_escrow::connect(&anvil.endpoint(), Some(deployer)).unwrap();
        let attesters = [Address::repeat_byte(1), Address::repeat_byte(2)];
        let deployment = deploy(
            &chain,
            &DeployParams { owner, attesters: attesters.to_vec(), ..params(&[], 2) },
        )
        .await
        .unwrap();

        let escrow = GpuEscrow::new(deployment.escrow, chain.clone());
        assert_eq!(escrow.attesterThreshold().call().await.unwrap(), 2);
        for attester in attesters {
            assert!(escrow.isAttester(attester).call().await.unwrap());
        }
        let json = serde_json::to_value(&deployment).unwrap();
        assert_eq!(json["attester_threshold"], 2);
        assert_eq!(json["attesters"].as_array().unwrap().len(), 2);
    }
}
