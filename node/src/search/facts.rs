//! What a query compares: the packed numbers of one offer ([`Facts`]) and the offer as a
//! condition sees it ([`Candidate`]).

use gpuflow_protocol::OfferId;

use super::SearchScores;

/// The numbers of one offer that conditions compare and results are sorted by, as stored in
/// SQLite, packed small so that a search scans little memory. Text that many offers share
/// (region, driver) is interned by the index; [`Candidate`] carries its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Facts {
    pub(crate) id: OfferId,
    pub(crate) price_per_hour: i64,
    pub(crate) gpu_ram_mb: i64,
    pub(crate) num_gpus: i64,
    /// Unix time this node first saw the provider (its first stored offer or heartbeat).
    pub(crate) first_seen: i64,
    pub(crate) expires_at: i64,
    /// The latest expiry of another offer sharing a GPU UUID with this one, 0 when none.
    pub(crate) conflict_until: i64,
    /// CUDA version in thousandths, `None` when unreadable.
    pub(crate) cuda: Option<i64>,
    pub(crate) inet_down_mbps: Option<i64>,
    pub(crate) inet_up_mbps: Option<i64>,
    pub(crate) disk_mb: Option<i64>,
    pub(crate) cpu_cores: Option<i64>,
    pub(crate) cpu_ram_mb: Option<i64>,
    /// The provider's reliability, in millionths.
    pub(crate) reliability: i64,
    /// The provider's uptime, in millionths; `None` before any listed time was measured.
    pub(crate) uptime: Option<i64>,
    /// Rentals of the provider's machine.
    pub(crate) rentals: i64,
    /// Those that ended without a downtime credit.
    pub(crate) completed_rentals: i64,
    /// Downtime credits paid back to the machine's renters.
    pub(crate) sla_credits: i64,
    /// TFLOP/s per GPU the latest challenge proved, in thousandths; `None` if never
    /// challenged.
    pub(crate) proven_mtflops: Option<i64>,
    /// The latest challenge passed (or was unrated); false also when never challenged.
    pub(crate) challenge_ok: bool,
    /// Interned region and driver (see `store/index.rs`).
    pub(crate) region: u32,
    pub(crate) driver: u32,
    pub(crate) verified: bool,
}

/// A share in [0, 1] in millionths, as conditions compare it.
pub(crate) fn millionths(share: f64) -> i64 {
    (share.clamp(0.0, 1.0) * 1_000_000.0).round() as i64
}

impl Facts {
    /// Sets the provider's scores; answers whether any changed.
    pub(crate) fn set_scores(&mut self, scores: SearchScores) -> bool {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let scores = (
            millionths(scores.reliability),
            scores.uptime.map(millionths),
            count(scores.rentals),
            count(scores.completed_rentals),
            count(scores.sla_credits),
        );
        let changed =
            (self.reliability, self.uptime, self.rentals, self.completed_rentals, self.sla_credits)
                != scores;
        (self.reliability, self.uptime, self.rentals, self.completed_rentals, self.sla_credits) =
            scores;
        changed
    }

    /// Whether the offer shares a GPU UUID with another offer live at `now`.
    pub(crate) fn conflicts(&self, now: i64) -> bool {
        self.conflict_until > now
    }
}

/// One offer as a query sees it.
#[derive(Clone, Copy)]
pub(crate) struct Candidate<'a> {
    pub(crate) facts: &'a Facts,
    /// The text of an interned region or driver.
    pub(crate) text: &'a dyn Fn(u32) -> &'a str,
    /// Read only by `payout` conditions, which are rare: the rest of a search stays in
    /// [`Facts`].
    pub(crate) payout: &'a str,
    /// Read only by `image` conditions: the images pulled ahead, and those allowed.
    pub(crate) images: &'a [String],
    pub(crate) allowed_images: &'a [String],
}
