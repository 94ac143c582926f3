//! The reliability model: scores and downtime from per-bucket evidence. Pure functions of
//! [`Window`] and the provider's rentals, so that anyone holding the evidence a node exports
//! gets the same numbers (see `node/RELIABILITY.md`).
//!
//! The evidence is kept and computed on as runs of buckets, so scoring a provider costs in
//! proportion to how often its state changed, not to the number of buckets in the window;
//! [`Runs::to_bitmap`] gives the per-bucket form the evidence is exported in.

use gpuflow_protocol::api::{DayUptime, EvidenceRental, ModelParams, ProviderScores};

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// A set of buckets, one bit each, least significant bit first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bitmap {
    bytes: Vec<u8>,
    len: u64,
}

impl Bitmap {
    /// Bit `i`; bits past the end are clear.
    pub fn get(&self, i: u64) -> bool {
        i < self.len && self.bytes[(i / 8) as usize] >> (i % 8) & 1 == 1
    }

    /// The bits as bytes, bit `i` in bit `i % 8` of byte `i / 8`.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Reads `len` bits laid out as [`Bitmap::to_bytes`] gives them.
    pub fn from_bytes(len: u64, bytes: &[u8]) -> Self {
        let mut bytes = bytes.to_vec();
        bytes.resize(len.div_ceil(8) as usize, 0);
        if !len.is_multiple_of(8)
            && let Some(last) = bytes.last_mut()
        {
            *last &= (1 << (len % 8)) - 1;
        }
        Self { bytes, len }
    }

    /// The runs of set bits.
    pub fn to_runs(&self) -> Runs {
        let mut runs = Runs::default();
        let mut i = 0;
        while i < self.len {
            if self.get(i) {
                let start = i;
                while i < self.len && self.get(i) {
                    i += 1;
                }
                runs.0.push((start, i));
            }
            i += 1;
        }
        runs
    }
}

/// A set of buckets as sorted, disjoint, non-touching runs `[start, end)` of bucket numbers
/// (absolute, unix time / bucket width, when stored; from the window's start in a
/// [`Window`]): a provider that is up for a month is one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Runs(pub Vec<(u64, u64)>);

impl Runs {
    /// Reads what [`Runs::encode`] wrote; a malformed tail is dropped.
    pub fn decode(bytes: &[u8]) -> Self {
        let number = |b: &[u8]| u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes")));
        Self(bytes.chunks_exact(8).map(|run| (number(&run[..4]), number(&run[4..]))).collect())
    }

    /// Little-endian `u32` pairs, 8 bytes a run.
    pub fn encode(&self) -> Vec<u8> {
        let number = |n: u64| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        self.0.iter().flat_map(|&(start, end)| [number(start), number(end)]).flatten().collect()
    }

    /// Adds the buckets `start..end`, merging runs that overlap or touch.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Runs entirely before, then those merging with [start, end), then those after.
        let before = self.0.partition_point(|&(_, e)| e < start);
        let after = self.0.partition_point(|&(s, _)| s <= end);
        let (mut merged_start, mut merged_end) = (start, end);
        if before < after {
            merged_start = merged_start.min(self.0[before].0);
            merged_end = merged_end.max(self.0[after - 1].1);
        }
        self.0.splice(before..after, [(merged_start, merged_end)]);
    }

    /// Forgets the buckets before `cutoff`.
    pub fn forget_before(&mut self, cutoff: u64) {
        self.0.retain(|&(_, end)| end > cutoff);
        if let Some(first) = self.0.first_mut() {
            first.0 = first.0.max(cutoff);
        }
    }

    /// Whether bucket `bucket` is in the set.
    pub fn contains(&self, bucket: u64) -> bool {
        let i = self.0.partition_point(|&(_, end)| end <= bucket);
        self.0.get(i).is_some_and(|&(start, _)| start <= bucket)
    }

    /// The buckets of `self` in `first..end`, renumbered from `first`.
    pub fn window(&self, first: u64, end: u64) -> Self {
        Self(
            self.0
                .iter()
                .filter(|&&(s, e)| e > first && s < end)
                .map(|&(s, e)| (s.max(first) - first, e.min(end) - first))
                .collect(),
        )
    }

    /// The buckets of `self` that are not in `other`.
    pub fn minus(&self, other: &Self) -> Self {
        let mut out = Vec::with_capacity(self.0.len());
        let mut j = 0;
        for &(start, end) in &self.0 {
            let mut at = start;
            while j < other.0.len() && other.0[j].1 <= at {
                j += 1;
            }
            let mut k = j;
            while at < end {
                match other.0.get(k) {
                    Some(&(s, e)) if s < end => {
                        if s > at {
                            out.push((at, s));
                        }
                        at = at.max(e);
                        k += 1;
                    }
                    _ => {
                        out.push((at, end));
                        at = end;
                    }
                }
            }
        }
        Self(out)
    }

    /// The buckets in both `self` and `other`.
    pub fn intersect(&self, other: &Self) -> Self {
        self.minus(&self.minus(other))
    }

    /// How many buckets of `from..to` are in both `self` and `other`.
    pub fn overlap(&self, other: &Self, from: u64, to: u64) -> u64 {
        let (mut i, mut j, mut total) = (0, 0, 0);
        while i < self.0.len() && j < other.0.len() {
            let (a, b) = (self.0[i], other.0[j]);
            let start = a.0.max(b.0).max(from);
            let end = a.1.min(b.1).min(to);
            total += end.saturating_sub(start);
            if a.1 < b.1 { i += 1 } else { j += 1 }
        }
        total
    }

    /// How many buckets of `from..to` are in the set.
    pub fn count(&self, from: u64, to: u64) -> u64 {
        self.0.iter().map(|&(s, e)| e.min(to).saturating_sub(s.max(from))).sum()
    }

    /// The set as `len` bits.
    pub fn to_bitmap(&self, len: u64) -> Bitmap {
        let mut bytes = vec![0u8; len.div_ceil(8) as usize];
        for &(start, end) in &self.0 {
            for i in start..end.min(len) {
                bytes[(i / 8) as usize] |= 1 << (i % 8);
            }
        }
        Bitmap { bytes, len }
    }
}

/// The evidence of one provider over one window: bucket numbers count from the window's
/// first bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Model parameters.
    pub params: ModelParams,
    /// Unix time of the first bucket's start: midnight UTC.
    pub from: u64,
    /// Buckets in the window.
    pub buckets: u64,
    /// Buckets heard from: a heartbeat received or a probe answered.
    pub heard: Runs,
    /// Buckets with an unanswered probe.
    pub failed: Runs,
    /// Buckets covered by a live offer.
    pub listed: Runs,
    /// Buckets this node observed (see [`observed`]); the others count neither as up nor
    /// as down.
    pub observed: Runs,
}

/// The buckets (absolute numbers) a node observed, given the periods `[start, end)` in unix
/// seconds it was up and listening: those it was up through, together with the
/// `grace_buckets` before them. A provider is judged in a bucket only when the node could
/// have heard it in the whole grace period that bucket looks back on, so neither the node's
/// own outage nor the minutes after its restart, before the provider's next heartbeat
/// reached it, count as the provider's downtime.
pub fn observed(params: ModelParams, up_periods: &[(u64, u64)]) -> Runs {
    let width = params.bucket_secs;
    let mut through = Runs::default();
    for &(start, end) in up_periods {
        through.insert(start.div_ceil(width), end / width);
    }
    let grace = params.grace_buckets;
    Runs(
        through
            .0
            .into_iter()
            .filter(|&(s, e)| e > s + grace)
            .map(|(s, e)| (s + grace, e))
            .collect(),
    )
}

impl Window {
    /// The window ending at the start of the bucket holding `now` and starting at midnight
    /// UTC `params.window_days` days before that day, with no bucket set and every bucket
    /// observed.
    pub fn ending_at(params: ModelParams, now: u64) -> Self {
        let to = now / params.bucket_secs * params.bucket_secs;
        let from = (now / DAY).saturating_sub(params.window_days) * DAY;
        let buckets = (to - from) / params.bucket_secs;
        Self {
            params,
            from,
            buckets,
            heard: Runs::default(),
            failed: Runs::default(),
            listed: Runs::default(),
            observed: Runs(vec![(0, buckets)]).window(0, buckets),
        }
    }

    /// The window ending at `now` of a provider's stored runs and the node's observed
    /// buckets (absolute bucket numbers); what lies outside the window is cut off.
    pub fn from_runs(
        params: ModelParams,
        now: u64,
        heard: &Runs,
        failed: &Runs,
        listed: &Runs,
        observed: &Runs,
    ) -> Self {
        let mut window = Self::ending_at(params, now);
        let first = window.from / params.bucket_secs;
        let end = first + window.buckets;
        window.heard = heard.window(first, end);
        window.failed = failed.window(first, end);
        window.listed = listed.window(first, end);
        window.observed = observed.window(first, end);
        window
    }

    /// End of the window (the start of the bucket after the last).
    pub fn to(&self) -> u64 {
        self.from + self.buckets * self.params.bucket_secs
    }

    /// The buckets in which the machine counts as up: observed, no probe failed in it, and
    /// it or one of the `grace_buckets` before it was heard.
    pub fn up(&self) -> Runs {
        let grace = self.params.grace_buckets;
        let mut covered = Runs::default();
        for &(start, end) in &self.heard.0 {
            covered.insert(start, (end + grace).min(self.buckets));
        }
        covered.minus(&self.failed).intersect(&self.observed)
    }

    /// Seconds of `[start, end)` clipped to the window in observed buckets, and how many of
    /// them fall in up buckets.
    fn span(&self, up: &Runs, start: u64, end: u64) -> (u64, u64) {
        let (start, end) = (start.max(self.from), end.min(self.to()));
        if start >= end {
            return (0, 0);
        }
        let width = self.params.bucket_secs;
        let seconds = |runs: &Runs| -> u64 {
            runs.0
                .iter()
                .map(|&(s, e)| {
                    let (s, e) = (self.from + s * width, self.from + e * width);
                    e.min(end).saturating_sub(s.max(start))
                })
                .sum()
        };
        (seconds(&self.observed), seconds(up))
    }

    /// Seconds of `[start, end)` (clipped to the window) in observed buckets in which the
    /// machine was down, for a downtime attestation.
    pub fn down_seconds(&self, start: u64, end: u64) -> u64 {
        let (total, up) = self.span(&self.up(), start, end);
        total - up
    }
}

/// Facts from outside the buckets that the scores also use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// When this node first saw the provider.
    pub first_seen: u64,
    /// The moment scored.
    pub now: u64,
}

/// The scores of the provider whose evidence is `window` and `rentals`.
pub fn score(window: &Window, rentals: &[EvidenceRental], standing: Standing) -> ProviderScores {
    let params = window.params;
    let up = window.up();
    let (mut rented, mut up_rented) = (0, 0);
    for rental in rentals {
        let (total, up_seconds) = window.span(&up, rental.start, rental.end);
        rented += total;
        up_rented += up_seconds;
    }
    // In [0, 1] without clamping whenever the prior is and the weight is positive: then
    // `up_rented + prior × W <= rented + W`, and rounding is monotone.
    let weight = params.prior_weight_secs as f64;
    let reliability = (up_rented as f64 + params.prior * weight) / (rented as f64 + weight);

    let width = params.bucket_secs;
    let listed = window.listed.intersect(&window.observed);
    let listed_up = |from: u64, to: u64| {
        (listed.count(from, to) * width, listed.overlap(&up, from, to) * width)
    };
    let share = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
    let (listed, up_listed) = listed_up(0, window.buckets);

    let per_day = DAY / width;
    let daily = (window.from..window.to())
        .step_by(DAY as usize)
        .enumerate()
        .map(|(n, day)| {
            let first = n as u64 * per_day;
            let (listed, up_listed) = listed_up(first, first + per_day);
            DayUptime { day, uptime: share(up_listed, listed) }
        })
        .collect();

    let ended = |r: &&EvidenceRental| r.end <= standing.now;
    ProviderScores {
        reliability,
        uptime: share(up_listed, listed),
        rented_seconds: rented,
        up_rented_seconds: up_rented,
        listed_seconds: listed,
        up_listed_seconds: up_listed,
        age_days: standing.now.saturating_sub(standing.first_seen) as f64 / DAY as f64,
        rentals: rentals.len() as u64,
        completed_rentals: rentals.iter().filter(ended).filter(|r| r.credits == 0).count() as u64,
        sla_credits: rentals.iter().map(|r| r.credits).sum(),
        sla_credited_seconds: rentals.iter().map(|r| r.credited_seconds).sum(),
        daily,
        scored_at: standing.now,
    }
}

#[cfg(test)]
mod tests;
