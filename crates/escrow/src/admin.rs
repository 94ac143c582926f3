//! What only a deployer or the escrow's owner sends: deploying the contracts, registering
//! attesters, setting the attester threshold, minting devnet tokens.
//!
//! Each call returns the transaction as sent, for the caller to wait on and report in its
//! own words; the bindings themselves stay in this crate.

use alloy::{
    network::Ethereum,
    primitives::{Address, U256, aliases::U40},
    providers::{DynProvider, PendingTransactionBuilder},
};

use crate::{GpuEscrow, MockUSDC};

/// A transaction sent, or the call refused before it was sent.
pub type Sent = Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>;

/// What a new `GpuEscrow` is constructed with.
#[derive(Clone, Copy, Debug)]
pub struct EscrowTerms {
    /// Payment token.
    pub token: Address,
    /// Receives the platform fees.
    pub treasury: Address,
    /// Platform fee in basis points.
    pub fee_bps: u16,
    /// Seconds before earned seconds can be withdrawn.
    pub dispute_window: U40,
    /// Admin of the escrow.
    pub owner: Address,
}

/// Sends the deployment of a `GpuEscrow`; its receipt names the contract's address.
pub async fn deploy_escrow(provider: &DynProvider, terms: EscrowTerms) -> Sent {
    GpuEscrow::deploy_builder(
        provider.clone(),
        terms.token,
        terms.treasury,
        terms.fee_bps,
        terms.dispute_window,
        terms.owner,
    )
    .send()
    .await
}

/// Deploys a `MockUSDC` (devnets only) and returns its address.
pub async fn deploy_mock_token(provider: &DynProvider) -> Result<Address, alloy::contract::Error> {
    Ok(*MockUSDC::deploy(provider.clone()).await?.address())
}

/// Registers `attester` on the escrow, so its downtime attestations are honoured; needs
/// the owner's wallet in `provider`.
pub async fn set_attester(provider: &DynProvider, escrow: Address, attester: Address) -> Sent {
    GpuEscrow::new(escrow, provider.clone()).setAttester(attester, true).send().await
}

/// Sets how many distinct attesters must sign a downtime attestation; needs the owner's
/// wallet in `provider`.
pub async fn set_attester_threshold(
    provider: &DynProvider,
    escrow: Address,
    threshold: u8,
) -> Sent {
    GpuEscrow::new(escrow, provider.clone()).setAttesterThreshold(threshold).send().await
}

/// Mints `amount` of a `MockUSDC` at `token` to `to`.
pub async fn mint(provider: &DynProvider, token: Address, to: Address, amount: U256) -> Sent {
    MockUSDC::new(token, provider.clone()).mint(to, amount).send().await
}
