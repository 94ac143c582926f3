//! What the chain owes the provider, rental by rental, read from `GpuEscrow` itself.

use alloy::primitives::{Address, U256};
use gpuflow_escrow::{Escrow, EscrowError, Party};
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
    let ids =
        escrow.opened_rentals(Party::Provider(provider), "reading the provider's rentals").await?;
    let mut rows = Vec::new();
    for id in ids {
        let rental = escrow.rental(id).await?;
        let earned = escrow.earned(id).await.map_err(|e| rpc("reading what a rental earned", e))?;
        let withdrawable = escrow.withdrawable(id).await?;
        rows.push(RentalEarnings {
            rental_id: id,
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
