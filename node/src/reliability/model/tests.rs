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
