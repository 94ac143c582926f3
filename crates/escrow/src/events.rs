//! The escrow's events, decoded in one place: what each transaction reports, every event a
//! provider, renter or indexer reacts to, and a rental's history summed from them.

use alloy::{
    primitives::{Address, TxHash, U256},
    rpc::types::{Log, TransactionReceipt},
    sol_types::SolEvent,
};

use crate::{EscrowError, GpuEscrow};

/// A rental just opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Rental id.
    pub rental_id: u64,
    /// Start, unix seconds (the block's timestamp).
    pub start: u64,
    /// Scheduled end, unix seconds.
    pub end: u64,
    /// Tokens locked, `rate × duration`.
    pub deposit: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A rental just stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Rental id.
    pub rental_id: u64,
    /// When it stopped, unix seconds.
    pub stopped_at: u64,
    /// Tokens returned to the renter.
    pub refund: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A rental its provider refused: everything the escrow held for it went back to the
/// renter, and the provider can never be paid for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Rental id.
    pub rental_id: u64,
    /// The renter, who received the refund (whoever submitted the refusal).
    pub renter: Address,
    /// Tokens returned to the renter.
    pub refund: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A rental just extended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extended {
    /// Rental id.
    pub rental_id: u64,
    /// The new end, unix seconds.
    pub new_end: u64,
    /// Tokens paid for the extra time.
    pub cost: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A rental's automatic extension just set (or turned off, with a zero budget).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoExtendSet {
    /// Rental id.
    pub rental_id: u64,
    /// Tokens the extensions may take in all.
    pub budget: U256,
    /// Seconds bought at a time.
    pub step: u64,
    /// The transaction.
    pub tx: TxHash,
}

/// Earnings just paid to a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawn {
    /// Rental id.
    pub rental_id: u64,
    /// Net tokens paid to the provider.
    pub amount: U256,
    /// Platform fee kept for the treasury.
    pub fee: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A confirmed downtime credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credited {
    /// The rental.
    pub rental_id: u64,
    /// Start of the credited window.
    pub from: u64,
    /// End of the credited window.
    pub to: u64,
    /// Seconds credited (at most those attested: paid seconds are never clawed back).
    pub down_seconds: u64,
    /// Tokens refunded to the renter.
    pub refund: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// An escrow event a provider or renter reacts to.
#[derive(Clone, Debug)]
pub enum EscrowEvent {
    /// A rental was opened.
    Opened(GpuEscrow::RentalOpened),
    /// A rental was stopped early.
    Stopped(GpuEscrow::RentalStopped),
    /// A provider withdrew earnings.
    Withdrawn(GpuEscrow::EarningsWithdrawn),
    /// A renter bought more time.
    Extended(GpuEscrow::RentalExtended),
    /// Downtime was credited back to the renter.
    Credited(GpuEscrow::DowntimeCredited),
    /// The provider refused the rental and the renter got its deposit back.
    Refused(GpuEscrow::RentalRefused),
}

/// Everything that happened to one rental, from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RentalHistory {
    /// Refund paid when the renter stopped it, if stopped.
    pub refund: Option<U256>,
    /// Net tokens paid to the provider so far.
    pub provider_paid: U256,
    /// Fees kept for the treasury so far.
    pub fees: U256,
    /// Downtime refunds credited to the renter so far.
    pub credited: U256,
    /// Refund paid when the provider refused it, if refused.
    pub refused: Option<U256>,
}

impl EscrowEvent {
    /// The escrow event in `log`; `None` for any other log, or one that does not decode.
    pub fn decode(log: &Log) -> Option<Self> {
        Some(match *log.topic0()? {
            GpuEscrow::RentalOpened::SIGNATURE_HASH => {
                Self::Opened(log.log_decode().ok()?.inner.data)
            }
            GpuEscrow::RentalStopped::SIGNATURE_HASH => {
                Self::Stopped(log.log_decode().ok()?.inner.data)
            }
            GpuEscrow::EarningsWithdrawn::SIGNATURE_HASH => {
                Self::Withdrawn(log.log_decode().ok()?.inner.data)
            }
            GpuEscrow::RentalExtended::SIGNATURE_HASH => {
                Self::Extended(log.log_decode().ok()?.inner.data)
            }
            GpuEscrow::DowntimeCredited::SIGNATURE_HASH => {
                Self::Credited(log.log_decode().ok()?.inner.data)
            }
            GpuEscrow::RentalRefused::SIGNATURE_HASH => {
                Self::Refused(log.log_decode().ok()?.inner.data)
            }
            _ => return None,
        })
    }
}

impl RentalHistory {
    /// Adds one of the rental's events to its history; the others change nothing.
    pub(crate) fn add(&mut self, event: &EscrowEvent) {
        match event {
            EscrowEvent::Stopped(stopped) => self.refund = Some(stopped.refund),
            EscrowEvent::Withdrawn(paid) => {
                self.provider_paid += paid.amount;
                self.fees += paid.fee;
            }
            EscrowEvent::Credited(credit) => self.credited += credit.refund,
            EscrowEvent::Refused(refused) => self.refused = Some(refused.refund),
            EscrowEvent::Opened(_) | EscrowEvent::Extended(_) => {}
        }
    }
}

/// Whose rentals to list: `RentalOpened` indexes both parties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// Rentals this address rented.
    Renter(Address),
    /// Rentals this address provided.
    Provider(Address),
}

/// The first event of type `E` in the receipt's logs.
pub(crate) fn find_event<E: SolEvent>(
    action: &'static str,
    receipt: &TransactionReceipt,
) -> Result<E, EscrowError> {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<E>().ok())
        .map(|log| log.inner.data)
        .ok_or(EscrowError::MissingEvent {
            action,
            tx: receipt.transaction_hash,
            event: E::SIGNATURE,
        })
}

/// Most blocks read by one `eth_getLogs` call; public RPCs refuse wider ranges.
pub const LOG_RANGE: u64 = 2_000;

/// Inclusive block ranges of at most `step` blocks that cover `from..=to` in order; none
/// when `from` is past `to`.
pub fn block_ranges(from: u64, to: u64, step: u64) -> impl Iterator<Item = (u64, u64)> {
    let step = step.max(1);
    let mut next = (from <= to).then_some(from);
    std::iter::from_fn(move || {
        let first = next?;
        let last = first.saturating_add(step - 1).min(to);
        next = last.checked_add(1).filter(|n| *n <= to);
        Some((first, last))
    })
}

#[cfg(test)]
mod tests {
    use super::block_ranges;

    #[test]
    fn ranges_cover_every_block_once_and_stay_bounded() {
        let ranges = |from, to, step| block_ranges(from, to, step).collect::<Vec<_>>();
        assert_eq!(ranges(0, 0, 10_000), [(0, 0)]);
        assert_eq!(ranges(0, 9_999, 10_000), [(0, 9_999)]);
        assert_eq!(ranges(0, 10_000, 10_000), [(0, 9_999), (10_000, 10_000)]);
        assert_eq!(
            ranges(5_200_000, 5_225_000, 10_000),
            [(5_200_000, 5_209_999), (5_210_000, 5_219_999), (5_220_000, 5_225_000)]
        );
        assert_eq!(ranges(7, 6, 10_000), []);
        assert_eq!(ranges(u64::MAX - 1, u64::MAX, 10_000), [(u64::MAX - 1, u64::MAX)]);
        assert_eq!(ranges(3, 5, 1), [(3, 3), (4, 4), (5, 5)]);
        // Contiguous and bounded for odd sizes too.
        for (from, to, step) in [(1, 99_999, 10_000), (17, 123_456, 777), (0, 50, 7)] {
            let all = ranges(from, to, step);
            assert_eq!(all.first().unwrap().0, from);
            assert_eq!(all.last().unwrap().1, to);
            assert!(all.iter().all(|(a, b)| a <= b && b - a < step));
            assert!(all.windows(2).all(|w| w[1].0 == w[0].1 + 1));
        }
    }
}
