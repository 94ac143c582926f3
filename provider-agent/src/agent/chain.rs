//! The agent's chain work, done off its event loop.
//!
//! Nothing the loop must keep doing (answering quotes and status requests, heartbeats,
//! signals) may wait on the chain: an RPC that hangs would silence the heartbeats, and the
//! nodes would count a working machine as down. So every chain call runs in a task of its
//! own, bounded by [`CHAIN_TASK_TIMEOUT`] (each HTTP request also by the client's own
//! timeout), and reports back to the loop as a [`ChainDone`]; at most one poll and one
//! payout are in flight at a time. A failing RPC is retried with exponential [`Backoff`].
//!
//! The agent's clock for rentals and payouts is the chain's ([`ChainClock`]): the latest
//! block's timestamp plus the time elapsed since it was read, never the machine's own wall
//! clock, which may be off.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use gpuflow_escrow::{Escrow, EscrowError, EscrowEvent, Extended, LOG_RANGE, Withdrawn};

/// Longest one chain task may take, all its calls together.
pub const CHAIN_TASK_TIMEOUT: Duration = Duration::from_secs(240);
/// Most [`LOG_RANGE`]-block ranges one poll reads; an agent far behind catches up over
/// several polls.
const MAX_RANGES_PER_POLL: usize = 16;

/// Events read by one poll.
#[derive(Debug)]
pub struct Polled {
    /// Timestamp of the latest block when the poll began.
    pub latest_time: u64,
    /// First block of the reorganisation tail: blocks from here on are read again later.
    pub tail: u64,
    /// The ranges read, in order.
    pub ranges: Vec<EventRange>,
    /// Whether the ranges reach that latest block (false while catching up).
    pub reached: bool,
}

/// The escrow's events in one range of blocks.
#[derive(Debug)]
pub struct EventRange {
    /// Its last block.
    pub last: u64,
    /// Its events, in chain order, each with its block number.
    pub events: Vec<(u64, EscrowEvent)>,
}

/// What a chain task reports to the loop.
#[derive(Debug)]
pub enum ChainDone {
    /// A poll ended. `observed` is the chain time at which it began: every block up to
    /// then has been read when it succeeded and reached the head.
    Polled {
        /// Chain time when the poll began.
        observed: u64,
        /// What it read.
        result: Result<Polled, EscrowError>,
    },
    /// A payout ended.
    Paid {
        /// The withdrawal, or why it failed.
        result: Result<Vec<Withdrawn>, EscrowError>,
        /// Rentals now owing the provider nothing more.
        settled: Vec<u64>,
    },
    /// Automatic extensions were tried: each rental's extension, `None` where its budget
    /// buys no second (or none is set), or why it failed.
    AutoExtended {
        /// Per rental.
        results: Vec<(u64, Result<Option<Extended>, EscrowError>)>,
    },
}

/// Reads the escrow's events from `next_block` (or the start of the reorganisation tail,
/// `tail_len` blocks, if that is earlier) to the latest block.
pub async fn poll(escrow: Escrow, next_block: u64, tail_len: u64) -> Result<Polled, EscrowError> {
    let work = async {
        let (latest, latest_time) = escrow.latest_block().await?;
        let tail = latest.saturating_sub(tail_len - 1);
        let from = next_block.min(tail);
        let mut ranges = Vec::new();
        for (first, last) in
            gpuflow_escrow::block_ranges(from, latest, LOG_RANGE).take(MAX_RANGES_PER_POLL)
        {
            ranges.push(EventRange { last, events: escrow.events(first, last).await? });
        }
        let reached = ranges.last().is_none_or(|range| range.last == latest);
        Ok(Polled { latest_time, tail, ranges, reached })
    };
    bounded("reading the escrow's events", work).await
}

/// Withdraws `ids` in one transaction, then reports which of them owe nothing more (the
/// block that paid may be a little older than the agent's clock: whatever is still owed
/// is withdrawn on a later poll).
pub async fn pay_out(escrow: Escrow, ids: Vec<u64>) -> ChainDone {
    let result = bounded("withdrawing earnings", escrow.withdraw_many(&ids, None)).await;
    let mut settled = Vec::new();
    if result.is_ok() {
        for id in ids {
            match bounded("reading the rental", escrow.outstanding(id)).await {
                Ok(owed) if owed.is_zero() => settled.push(id),
                Ok(owed) => tracing::debug!(rental = id, %owed, "earnings still owed"),
                Err(e) => tracing::debug!(rental = id, error = %e, "could not read the rental"),
            }
        }
    }
    ChainDone::Paid { result, settled }
}

/// Withdraws from `ids` once what they hold together reaches `threshold`, so long rentals
/// pay the provider as they go.
pub async fn pay_out_over(escrow: Escrow, ids: Vec<u64>, threshold: U256) -> ChainDone {
    let mut total = U256::ZERO;
    let mut due = Vec::new();
    for id in ids {
        match bounded("reading what is withdrawable", escrow.withdrawable(id)).await {
            Ok(amount) if !amount.is_zero() => {
                total += amount;
                due.push(id);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(rental = id, error = %e, "withdrawable unknown"),
        }
    }
    if due.is_empty() || total < threshold {
        return ChainDone::Paid { result: Ok(Vec::new()), settled: Vec::new() };
    }
    tracing::info!(%total, rentals = due.len(), "withdrawable earnings passed the threshold");
    let result = bounded("withdrawing earnings", escrow.withdraw_many(&due, None)).await;
    ChainDone::Paid { result, settled: Vec::new() }
}

/// Extends `rental_id` from its automatic extension budget if that buys at least a second
/// below the quote's maximum duration; `None` if it does not.
pub async fn auto_extend(escrow: Escrow, rental_id: u64) -> Result<Option<Extended>, EscrowError> {
    let work = async {
        let (budget, _) = escrow.auto_extension(rental_id).await?;
        if budget.is_zero() {
            return Ok(None);
        }
        let rental = escrow.rental(rental_id).await?;
        if budget < U256::from(rental.ratePerSecond) || rental.end >= rental.maxEnd {
            return Ok(None);
        }
        escrow.auto_extend(rental_id).await.map(Some)
    };
    bounded("extending a rental from its budget", work).await
}

async fn bounded<T>(
    action: &'static str,
    work: impl Future<Output = Result<T, EscrowError>>,
) -> Result<T, EscrowError> {
    tokio::time::timeout(CHAIN_TASK_TIMEOUT, work).await.unwrap_or_else(|_| {
        Err(EscrowError::Rpc {
            action,
            reason: format!("no answer within {} s", CHAIN_TASK_TIMEOUT.as_secs()),
        })
    })
}

/// The chain's clock as last read: a block's timestamp and when it was read.
#[derive(Clone, Copy, Debug)]
pub struct ChainClock {
    time: u64,
    read_at: Instant,
}

impl ChainClock {
    /// The clock at a block of timestamp `time`, read now.
    pub fn at(time: u64) -> Self {
        Self { time, read_at: Instant::now() }
    }

    /// The chain's time now: the block's timestamp plus the seconds elapsed since it was
    /// read. Chains stamp a new block with the time it is made, so this is what the next
    /// block will roughly say; an idle devnet makes no blocks but keeps counting.
    pub fn now(&self) -> u64 {
        self.time + self.read_at.elapsed().as_secs()
    }

    /// Moves the clock to a block ahead of it; one it already counted past (the same block
    /// read again, or a lagging RPC) is ignored, so the time elapsed since keeps counting.
    pub fn advance(&mut self, time: u64) {
        if time > self.now() {
            *self = Self::at(time);
        }
    }
}

/// Exponential backoff for a failing RPC: the first retry after `base`, doubling up to
/// `max`.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// A backoff starting at `base`, never waiting longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, failures: 0, until: None }
    }

    /// Whether a new attempt may start at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now >= until)
    }

    /// Records a failure at `now`; returns how long to wait before the next attempt and
    /// whether this failure starts a run of them (worth a warning; the others are not).
    pub fn failed(&mut self, now: Instant) -> (Duration, bool) {
        self.failures = self.failures.saturating_add(1);
        let factor = 1u32 << self.failures.min(16);
        let wait = self.base.saturating_mul(factor).min(self.max);
        self.until = Some(now + wait);
        (wait, self.failures == 1)
    }

    /// Records a success; returns how many failures came before it.
    pub fn succeeded(&mut self) -> u32 {
        self.until = None;
        std::mem::take(&mut self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets_on_success() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let now = Instant::now();
        assert!(backoff.ready(now));
        let waits: Vec<(Duration, bool)> = (0..10).map(|_| backoff.failed(now)).collect();
        assert_eq!(waits[0], (Duration::from_millis(500), true));
        assert_eq!(waits[1], (Duration::from_secs(1), false));
        assert_eq!(waits[9].0, Duration::from_secs(30));
        // An unreachable RPC is asked about a dozen times in its first two minutes, not 480.
        let total: Duration = waits.iter().map(|(w, _)| *w).sum();
        assert!(total > Duration::from_secs(120), "{total:?}");
        assert!(!backoff.ready(now));
        assert!(backoff.ready(now + Duration::from_secs(30)));
        assert_eq!(backoff.succeeded(), 10);
        assert!(backoff.ready(now));
        assert_eq!(backoff.failed(now), (Duration::from_millis(500), true));
    }

    #[test]
    fn the_chain_clock_never_goes_back_and_keeps_counting_over_the_same_block() {
        let read = Instant::now() - Duration::from_secs(3);
        let mut clock = ChainClock { time: 1_000, read_at: read };
        assert_eq!(clock.now(), 1_003);
        // The same block, read again by every poll of an idle chain: still counting.
        clock.advance(1_000);
        assert_eq!(clock.now(), 1_003);
        clock.advance(900);
        assert_eq!(clock.now(), 1_003, "an older block does not move the clock back");
        clock.advance(5_000);
        assert!((5_000..5_002).contains(&clock.now()));
    }
}
