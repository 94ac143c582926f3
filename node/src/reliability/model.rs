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
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn params(grace_buckets: u64) -> ModelParams {
        ModelParams {
            bucket_secs: 60,
            grace_buckets,
            window_days: 1,
            prior: 0.9,
            prior_weight_secs: 3_600,
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn rental(start: u64, end: u64) -> EvidenceRental {
        EvidenceRental { id: 1, start, end, credited_seconds: 0, credits: 0 }
    }

    fn standing() -> Standing {
        Standing { first_seen: NOW - 2 * DAY, now: NOW }
    }

    fn runs(list: &[(u64, u64)]) -> Runs {
        let mut runs = Runs::default();
        for &(s, e) in list {
            runs.insert(s, e);
        }
        runs
    }

    /// `up` bucket by bucket, straight from the definition.
    fn up_by_definition(window: &Window, i: u64) -> bool {
        window.observed.contains(i)
            && !window.failed.contains(i)
            && (i.saturating_sub(window.params.grace_buckets)..=i).any(|j| window.heard.contains(j))
    }

    #[test]
    fn grace_covers_the_buckets_after_a_heard_one_and_failures_cut_it() {
        let mut window = Window::ending_at(params(2), NOW);
        window.heard = runs(&[(10, 11), (100, 101)]);
        window.failed = runs(&[(101, 102)]);
        assert_eq!(window.up().0, [(10, 13), (100, 101), (102, 103)]);
        for i in 0..window.buckets {
            assert_eq!(window.up().contains(i), up_by_definition(&window, i), "bucket {i}");
        }
    }

    #[test]
    fn a_newcomer_sits_at_the_prior() {
        let window = Window::ending_at(params(1), NOW);
        let scores = score(&window, &[], standing());
        assert_eq!(scores.reliability, 0.9);
        assert_eq!(scores.uptime, None);
        assert_eq!((scores.rentals, scores.rented_seconds), (0, 0));
        assert_eq!(scores.age_days, 2.0);
    }

    #[test]
    fn rented_time_up_and_down_moves_the_score_by_the_formula() {
        let mut window = Window::ending_at(params(0), NOW);
        let start = window.from + 600; // bucket 10
        // Up for buckets 10..40, down for 40..70 (an hour rented, half of it down).
        window.heard = runs(&[(10, 40)]);
        window.listed = runs(&[(10, 70)]);
        let scores = score(&window, &[rental(start, start + 3_600)], standing());
        assert_eq!((scores.rented_seconds, scores.up_rented_seconds), (3_600, 1_800));
        assert_eq!(scores.reliability, (1_800.0 + 0.9 * 3_600.0) / (3_600.0 + 3_600.0));
        assert_eq!(scores.uptime, Some(0.5));
        assert_eq!((scores.listed_seconds, scores.up_listed_seconds), (3_600, 1_800));
        assert_eq!(window.down_seconds(start, start + 3_600), 1_800);
        // Partial buckets count their seconds only.
        assert_eq!(window.down_seconds(start + 30, start + 90), 0);
        assert_eq!(window.down_seconds(start + 1_790, start + 1_830), 30);
    }

    #[test]
    fn days_cover_the_window() {
        let mut window = Window::ending_at(params(0), NOW);
        window.listed = runs(&[(0, window.buckets)]);
        window.heard = runs(&[(0, window.buckets)]);
        let scores = score(&window, &[], standing());
        assert_eq!(scores.daily.len(), 2, "yesterday and the part of today before now");
        assert!(scores.daily.iter().all(|d| d.uptime == Some(1.0)));
        assert_eq!(scores.daily[0].day % DAY, 0);
    }

    #[test]
    fn bitmaps_round_trip_through_bytes_and_runs() {
        let set = runs(&[(0, 1), (7, 9), (63, 65), (1_439, 1_440)]);
        let bitmap = set.to_bitmap(1_440);
        assert_eq!(bitmap.to_bytes().len(), 180);
        assert_eq!(bitmap.to_bytes()[0], 0b1000_0001);
        assert_eq!(Bitmap::from_bytes(1_440, bitmap.to_bytes()), bitmap);
        assert_eq!(bitmap.to_runs(), set);
        assert_eq!(Bitmap::from_bytes(9, &[0xff, 0xff]).to_runs().0, [(0, 9)]);
    }

    #[test]
    fn runs_merge_forget_and_round_trip() {
        let mut runs = Runs::default();
        runs.insert(10, 20);
        runs.insert(30, 40);
        runs.insert(20, 21); // touches the first
        runs.insert(25, 26);
        assert_eq!(runs.0, [(10, 21), (25, 26), (30, 40)]);
        runs.insert(15, 35); // swallows the middle, joins both ends
        assert_eq!(runs.0, [(10, 40)]);
        runs.insert(41, 42);
        runs.insert(5, 6);
        assert_eq!(runs.0, [(5, 6), (10, 40), (41, 42)]);
        assert!(runs.contains(5) && !runs.contains(6) && runs.contains(39) && !runs.contains(40));
        assert_eq!(Runs::decode(&runs.encode()), runs);
        runs.forget_before(12);
        assert_eq!(runs.0, [(12, 40), (41, 42)]);
        runs.insert(7, 7);
        assert_eq!(runs.0.len(), 2, "an empty range adds nothing");
    }

    #[test]
    fn stored_runs_land_at_their_place_in_the_window() {
        let params = params(0);
        let first = (NOW / DAY - 1) * DAY / 60;
        let heard = Runs(vec![(first - 100, first + 2), (first + 1_439, first + 1_441)]);
        let window = Window::from_runs(params, NOW, &heard, &Runs::default(), &heard, &heard);
        assert_eq!(window.from, first * 60);
        assert_eq!(window.heard.0, [(0, 2), (1_439, 1_441)]);
        assert_eq!(window.listed, window.heard);
        assert_eq!(window.observed, window.heard);
        // Runs past `now` are cut at the window's end.
        let future = Runs(vec![(NOW / 60 - 1, NOW / 60 + 1_000)]);
        let window = Window::from_runs(params, NOW, &future, &future, &future, &future);
        assert_eq!(window.heard.0, [(window.buckets - 1, window.buckets)]);
        assert_eq!(window.observed.0, [(window.buckets - 1, window.buckets)]);
    }

    #[test]
    fn a_node_observes_the_buckets_it_was_up_through_after_a_grace_period() {
        // Up from 30 s into bucket 1 until 30 s into bucket 10, and over buckets 12 to 19.
        let periods = [(90, 630), (720, 1_200)];
        // Bucket 1 is partial, and with no grace the node judges buckets 2 to 9.
        assert_eq!(observed(params(0), &periods).0, [(2, 10), (12, 20)]);
        // With a grace bucket, the first bucket of each run only serves to hear from.
        assert_eq!(observed(params(1), &periods).0, [(3, 10), (13, 20)]);
        // A run shorter than the grace period observes nothing.
        assert_eq!(observed(params(9), &periods).0, []);
        // Touching runs (a restart within the same second) are one.
        assert_eq!(observed(params(1), &[(120, 300), (300, 600)]).0, [(3, 10)]);
    }

    #[test]
    fn unobserved_buckets_are_neither_up_nor_down() {
        let mut window = Window::ending_at(params(0), NOW);
        let start = window.from + 600; // bucket 10
        // Heard for buckets 10..40, silent for 40..70, and the node itself away for 30..60.
        window.heard = runs(&[(10, 40)]);
        window.listed = runs(&[(10, 70)]);
        window.observed = runs(&[(0, 30), (60, window.buckets)]);
        let scores = score(&window, &[rental(start, start + 3_600)], standing());
        assert_eq!((scores.rented_seconds, scores.up_rented_seconds), (1_800, 1_200));
        assert_eq!((scores.listed_seconds, scores.up_listed_seconds), (1_800, 1_200));
        assert_eq!(window.down_seconds(start, start + 3_600), 600);
        assert_eq!(window.down_seconds(start + 1_200, start + 3_000), 0, "all of it unobserved");
        // Nothing observed: the prior.
        window.observed = Runs::default();
        let scores = score(&window, &[rental(start, start + 3_600)], standing());
        assert_eq!((scores.reliability, scores.uptime), (0.9, None));
        assert_eq!(window.down_seconds(start, start + 3_600), 0);
    }

    fn set(bits: &[bool]) -> Runs {
        let mut runs = Runs::default();
        for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
            runs.insert(i as u64, i as u64 + 1);
        }
        runs
    }

    prop_compose! {
        fn evidence()(
            grace in 0u64..4,
            prior in prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0],
            weight in prop_oneof![Just(1u64), 1u64..10_000_000],
            heard in proptest::collection::vec(any::<bool>(), 1_440),
            failed in proptest::collection::vec(prop::bool::weighted(0.05), 1_440),
            spans in proptest::collection::vec((0u64..1_440, 1u64..400), 0..4),
            away in proptest::collection::vec((0u64..1_440, 1u64..120), 0..3),
        ) -> (Window, Vec<EvidenceRental>) {
            let params = ModelParams { prior, prior_weight_secs: weight, ..params(grace) };
            let mut window = Window::ending_at(params, NOW);
            window.heard = set(&heard);
            window.failed = set(&failed);
            let mut unobserved = Runs::default();
            for (start, len) in away {
                unobserved.insert(start, start + len);
            }
            window.observed = window.observed.minus(&unobserved);
            window.listed = runs(&[(0, 1_440)]);
            let rentals = spans
                .into_iter()
                .map(|(at, minutes)| {
                    let start = window.from + at * 60 + 17;
                    rental(start, start + minutes * 60)
                })
                .collect();
            (window, rentals)
        }
    }

    proptest! {
        #[test]
        fn runs_hold_exactly_the_inserted_buckets(
            ranges in proptest::collection::vec((0u64..200, 0u64..20), 0..30),
            cut in proptest::collection::vec((0u64..200, 0u64..20), 0..10),
        ) {
            let (mut runs, mut plain) = (Runs::default(), [false; 220]);
            let (mut other, mut removed) = (Runs::default(), [false; 220]);
            for (start, len) in ranges {
                runs.insert(start, start + len);
                plain[start as usize..(start + len) as usize].fill(true);
            }
            for (start, len) in cut {
                other.insert(start, start + len);
                removed[start as usize..(start + len) as usize].fill(true);
            }
            let rest = runs.minus(&other);
            for (bucket, &expected) in plain.iter().enumerate() {
                prop_assert_eq!(runs.contains(bucket as u64), expected);
                prop_assert_eq!(rest.contains(bucket as u64), expected && !removed[bucket]);
            }
            let both = (0..220).filter(|&i| plain[i] && removed[i]).count() as u64;
            prop_assert_eq!(runs.overlap(&other, 0, 220), both);
            prop_assert_eq!(runs.count(0, 220), plain.iter().filter(|&&b| b).count() as u64);
            for pair in runs.0.windows(2) {
                prop_assert!(pair[0].1 < pair[1].0, "runs are disjoint and never touch");
            }
        }

        #[test]
        fn up_runs_follow_the_definition((window, _) in evidence()) {
            let up = window.up();
            for i in 0..window.buckets {
                prop_assert_eq!(up.contains(i), up_by_definition(&window, i), "bucket {}", i);
            }
        }

        #[test]
        fn scores_stay_in_the_unit_interval((window, rentals) in evidence()) {
            // `score` clamps nothing: the formula itself stays in [0, 1], for any prior in
            // [0, 1] and any positive weight.
            let scores = score(&window, &rentals, standing());
            prop_assert!((0.0..=1.0).contains(&scores.reliability), "{}", scores.reliability);
            prop_assert!(scores.uptime.is_none_or(|u| (0.0..=1.0).contains(&u)));
            prop_assert!(scores.up_rented_seconds <= scores.rented_seconds);
        }

        #[test]
        fn more_downtime_never_raises_the_score(
            (window, rentals) in evidence(),
            lost in proptest::collection::vec(0u64..1_440, 0..20),
            silenced in proptest::collection::vec((0u64..1_440, 1u64..120), 0..6),
        ) {
            let before = score(&window, &rentals, standing());
            // Failed probes, and heartbeats that never arrived: up buckets turn down.
            let mut worse = window.clone();
            for i in lost {
                worse.failed.insert(i, i + 1);
            }
            let mut unheard = Runs::default();
            for (start, len) in silenced {
                unheard.insert(start, start + len);
            }
            worse.heard = worse.heard.minus(&unheard);
            prop_assert!(worse.up().minus(&window.up()).0.is_empty(), "nothing turned up");
            let after = score(&worse, &rentals, standing());
            prop_assert!(after.reliability <= before.reliability);
            prop_assert!(after.uptime <= before.uptime);
            prop_assert!(after.up_rented_seconds <= before.up_rented_seconds);
            for rental in &rentals {
                prop_assert!(
                    worse.down_seconds(rental.start, rental.end)
                        >= window.down_seconds(rental.start, rental.end)
                );
            }
        }

        #[test]
        fn identical_evidence_gives_identical_scores((window, rentals) in evidence()) {
            // Through the exported form: bits, then back to runs.
            let copy = Window {
                heard: window.heard.to_bitmap(window.buckets).to_runs(),
                failed: window.failed.to_bitmap(window.buckets).to_runs(),
                listed: window.listed.to_bitmap(window.buckets).to_runs(),
                observed: window.observed.to_bitmap(window.buckets).to_runs(),
                ..window.clone()
            };
            prop_assert_eq!(score(&window, &rentals, standing()), score(&copy, &rentals, standing()));
        }
    }
}
