//! Reliability recomputation: every provider's scores from 30 days of one-minute uptime
//! buckets and its rentals, as the node's scorer does it every minute (`Store::rescore`:
//! read the evidence, run the model, store the scores for search).

use std::{fmt::Write as _, time::Instant};

use alloy::primitives::Address;
use anyhow::Context;
use gpuflow_node::{Store, reliability, reliability::model::Runs};
use gpuflow_protocol::{Identity, OfferId, QuoteTerms, unix_now};
use rand::Rng;
use rusqlite::params;

use crate::{
    data::{parallel, rng_for},
    report::{Figure, Section, Target, number, quantile},
};

/// Parameters of the reliability benchmark.
#[derive(Clone, Debug)]
pub struct ReliabilityParams {
    /// Seed of the data.
    pub seed: u64,
    /// Providers scored.
    pub providers: u64,
    /// Recomputations timed; the figure is their median.
    pub runs: usize,
    /// The command line to print beside the figure.
    pub command: String,
}

const BUCKET: u64 = 60;
const DAY_BUCKETS: u64 = 86_400 / BUCKET;
const WINDOW_DAYS: u64 = 30;

/// One generated provider: its row, its evidence and its rentals.
struct Generated {
    peer_id: String,
    /// The offer id of its machine, which its rentals' `offerId` names.
    machine: OfferId,
    payout: String,
    first_seen: u64,
    heard: Runs,
    failed: Runs,
    listed: Runs,
    rentals: Vec<(u64, u64)>,
}

/// A provider listed for most of the window, down a dozen times at most for up to two hours,
/// a probe failure now and then, and up to four rentals of up to two days.
fn provider(seed: u64, index: u64, now: u64) -> Generated {
    let mut rng = rng_for(seed ^ 0x7e1a_b1e5, index);
    let identity = Identity::from_secret(rng.r#gen());
    let now_bucket = now / BUCKET;
    let first = now_bucket - WINDOW_DAYS * DAY_BUCKETS;
    let listed_from = first + rng.gen_range(0..DAY_BUCKETS);
    let listed = Runs(vec![(listed_from, now_bucket + 10)]);
    let mut heard = Runs::default();
    let mut cursor = listed_from;
    let mut outages: Vec<u64> =
        (0..rng.gen_range(0..=12)).map(|_| rng.gen_range(listed_from..now_bucket)).collect();
    outages.sort_unstable();
    for at in outages {
        if at > cursor {
            heard.insert(cursor, at);
        }
        cursor = cursor.max(at + rng.gen_range(1..=120));
    }
    heard.insert(cursor, now_bucket);
    let mut failed = Runs::default();
    if rng.gen_bool(0.1) {
        let at = rng.gen_range(listed_from..now_bucket);
        failed.insert(at, at + rng.gen_range(1..=10));
    }
    let rentals = (0..rng.gen_range(0..=4))
        .map(|_| {
            let start = rng.gen_range(listed_from..now_bucket) * BUCKET;
            (start, start + rng.gen_range(600..=172_800))
        })
        .collect();
    Generated {
        peer_id: identity.peer_id().to_string(),
        machine: OfferId::of(&identity.peer_id()),
        payout: format!("{:#x}", Address::from(rng.r#gen::<[u8; 20]>())),
        first_seen: (listed_from * BUCKET).saturating_sub(rng.gen_range(0..86_400 * 30)),
        heard,
        failed,
        listed,
        rentals,
    }
}

/// Writes the generated providers straight into the node's tables (the schema the store
/// created), in one transaction.
fn fill(path: &std::path::Path, providers: &[Generated]) -> anyhow::Result<(u64, u64)> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    let (mut rentals, mut runs) = (0u64, 0u64);
    {
        let mut provider = tx.prepare(
            "INSERT INTO providers (peer_id, first_seen, offer_seq, payout, uptime_bucket_secs, \
                 heard, failed, listed, uptime_written_at) \
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut rental = tx.prepare(
            "INSERT INTO rentals (id, renter, provider, rate_per_second, start_at, end_at, \
                 stopped_at, deposit, refund, withdrawn, fees, credited, credited_seconds, \
                 opened_block, updated_block, offer_id, machine) \
             VALUES (?1, ?2, ?3, '100', ?4, ?5, NULL, '0', '0', '0', '0', '0', 0, 1, 1, ?6, ?7)",
        )?;
        // The node was up throughout, including the minutes the runs below score ahead.
        tx.execute(
            "INSERT INTO node_runs (started_at, alive_until) VALUES (0, ?1)",
            [(unix_now() + 365 * 86_400) as i64],
        )?;
        let renter = format!("{:#x}", Address::repeat_byte(0x11));
        for p in providers {
            provider.execute(params![
                p.peer_id,
                p.first_seen as i64,
                p.payout,
                BUCKET as i64,
                p.heard.encode(),
                p.failed.encode(),
                p.listed.encode(),
                unix_now() as i64,
            ])?;
            runs += (p.heard.0.len() + p.failed.0.len() + p.listed.0.len()) as u64;
            for &(start, end) in &p.rentals {
                rentals += 1;
                // As the chain watcher stores them: the quote's offerId (one GPU of the
                // machine) and the machine it names.
                let offer_id = QuoteTerms::machine(p.machine, 1);
                rental.execute(params![
                    rentals as i64,
                    renter,
                    p.payout,
                    start as i64,
                    end as i64,
                    format!("{offer_id:#x}"),
                    p.machine.to_string()
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok((rentals, runs))
}

/// Runs the reliability benchmark.
pub async fn run(params: &ReliabilityParams) -> anyhow::Result<Section> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("index.sqlite");
    drop(Store::open(&path)?); // creates the schema
    let now = unix_now();
    let generated = parallel(0..params.providers, |i| provider(params.seed, i, now));
    let (rentals, runs) = fill(&path, &generated).context("writing the evidence")?;
    drop(generated);
    let size = std::fs::metadata(&path)?.len();
    let store = Store::open(&path)?;
    let model = reliability::params(BUCKET, 60, WINDOW_DAYS);
    let mut seconds = Vec::new();
    for run in 0..params.runs as u64 {
        // A minute later each run, as the node's scorer runs: the newest minute is unheard,
        // so every listed provider's uptime moves and its scores are written again.
        let started = Instant::now();
        let scored = store.rescore(model, now + run * BUCKET).await?;
        seconds.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(scored as u64 == params.providers, "scored {scored} providers");
    }
    let mut lines = String::new();
    for (i, s) in seconds.iter().enumerate() {
        let _ = writeln!(lines, "| {} | {s:.2} s |", i + 1);
    }
    let median = quantile(&mut seconds, 0.5);
    let mut details = String::from("## Reliability recomputation\n\n");
    let _ = writeln!(
        details,
        "{} providers (seed {}), each listed for most of the last 30 days with up to a dozen \
         outages of up to two hours, a probe failure now and then, and up to four rentals of \
         up to two days: {} runs of one-minute buckets and {} rentals (each naming its \
         provider's machine by `offerId`, as the chain watcher stores them), written into the \
         node's tables ({:.1} MiB database). Each run is `Store::rescore`: read every \
         provider's evidence and rentals, compute the model of `node/RELIABILITY.md` over \
         43,200+ buckets each, and store the reliability, uptime and rentals that changed \
         beside each provider for search; each run is a minute later than the one before, \
         so the scores change as they do between two runs of the node's scorer. Median of {} runs: {:.2} s.\n",
        number(params.providers as f64),
        params.seed,
        number(runs as f64),
        number(rentals as f64),
        size as f64 / (1024.0 * 1024.0),
        params.runs,
        median
    );
    details.push_str("| run | time |\n| ---: | ---: |\n");
    details.push_str(&lines);
    let figure = Figure::new(
        format!(
            "reliability recomputation ({} providers, 30 days)",
            number(params.providers as f64)
        ),
        median,
        "s",
        Some(Target::AtMost(2.0)),
        &params.command,
    );
    Ok(Section { figures: vec![figure], details })
}
