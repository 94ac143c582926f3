//! What the chain owes the provider, rental by rental, read from `GpuEscrow` itself.

use alloy::{
    primitives::{Address, B256, U256},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use gpuflow_escrow::{Escrow, EscrowError, GpuEscrow};
use serde::Serialize;

/// One rental's money, in token units, gross (before the platform fee).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RentalEarnings {
    /// Rental id.
    pub rental_id: u64,
    /// The renter.
    pub renter: Address,
    /// Start, unix seconds.
    pub start: u64,
    /// End (or stop), unix seconds.
    pub end: u64,
    /// Stopped early by the renter, or refused by the provider (a refused rental earns
    /// nothing and has nothing withdrawable, as the escrow reports).
    pub stopped: bool,
    /// Token units per second.
    #[serde(with = "decimal")]
    pub rate_per_second: U256,
    /// Platform fee, basis points.
    pub fee_bps: u16,
    /// Earned so far, withdrawn or not.
    #[serde(with = "decimal")]
    pub earned: U256,
    /// What a withdrawal would settle now (past the dispute window).
    #[serde(with = "decimal")]
    pub withdrawable: U256,
    /// Already settled.
    #[serde(with = "decimal")]
    pub withdrawn: U256,
}

mod decimal {
    use alloy::primitives::U256;

    pub(super) fn serialize<S: serde::Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
}

fn rpc(action: &'static str, e: impl std::fmt::Display) -> EscrowError {
    EscrowError::Rpc { action, reason: e.to_string() }
}

/// Every rental ever opened for `provider`, with what it earned, read from the chain.
pub async fn earnings(
    escrow: &Escrow,
    provider: Address,
) -> Result<Vec<RentalEarnings>, EscrowError> {
    let filter = Filter::new()
        .address(escrow.address())
        .event_signature(GpuEscrow::RentalOpened::SIGNATURE_HASH)
        .topic3(B256::left_padding_from(provider.as_slice()));
    let logs = escrow.all_logs(&filter, "reading the provider's rentals").await?;
    let contract = GpuEscrow::new(escrow.address(), escrow.provider().clone());
    let mut rows = Vec::new();
    for log in logs {
        let Ok(opened) = log.log_decode::<GpuEscrow::RentalOpened>() else { continue };
        let id = opened.inner.data.rentalId;
        let rental = escrow.rental(id.to::<u64>()).await?;
        let earned =
            contract.earned(id).call().await.map_err(|e| rpc("reading what a rental earned", e))?;
        let withdrawable = contract
            .withdrawable(id)
            .call()
            .await
            .map_err(|e| rpc("reading what is withdrawable", e))?;
        rows.push(RentalEarnings {
            rental_id: id.to::<u64>(),
            renter: rental.renter,
            start: rental.start.to::<u64>(),
            end: rental.end.to::<u64>(),
            stopped: rental.stopped,
            rate_per_second: U256::from(rental.ratePerSecond),
            fee_bps: rental.feeBps,
            earned,
            withdrawable,
            withdrawn: rental.withdrawn,
        });
    }
    Ok(rows)
}
