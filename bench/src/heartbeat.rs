//! Heartbeat ingestion: signed heartbeats decoded, verified and stored per second, in
//! process with the node library (the same `SignedEnvelope::decode` and `Store` calls the
//! node's ingest loop makes, minus gossipsub and the per-peer rate limiter).

use std::fmt::Write as _;

use anyhow::bail;
use gpuflow_node::Store;

use crate::{
    data,
    report::{Figure, Section, Target, number, quantile},
};

/// Parameters of the heartbeat benchmark.
#[derive(Clone, Debug)]
pub struct HeartbeatParams {
    /// Seed of the data.
    pub seed: u64,
    /// Providers known to the store (their offers are stored first).
    pub providers: u64,
    /// Rounds; each round sends one heartbeat of every provider.
    pub rounds: u64,
    /// The command line to print beside the figure.
    pub command: String,
}

/// Runs the heartbeat benchmark.
pub async fn run(params: &HeartbeatParams) -> anyhow::Result<Section> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("index.sqlite"))?;
    let offers = data::ingest_offers(&store, &data::offers(params.seed, params.providers)).await?;
    if offers.stored != params.providers {
        bail!("only {} of {} offers were stored", offers.stored, params.providers);
    }
    let mut rates = Vec::new();
    let mut lines = String::new();
    for round in 1..=params.rounds {
        // Signing is the providers' work, not the node's: done before the clock starts.
        let beats = data::heartbeats(params.seed, 0..params.providers, round);
        let done = data::ingest_heartbeats(&store, &beats).await?;
        if done.stored != params.providers {
            bail!("round {round}: {} of {} heartbeats stored", done.stored, params.providers);
        }
        let _ = writeln!(
            lines,
            "| {round} | {} | {:.2} s | {:.2} s | {}/s |",
            number(done.stored as f64),
            done.elapsed.as_secs_f64(),
            done.verifying.as_secs_f64(),
            number(done.rate())
        );
        rates.push(done.rate());
    }
    drop(store);
    let median = quantile(&mut rates, 0.5);
    let mut details = String::from("## Heartbeat ingestion\n\n");
    let _ = writeln!(
        details,
        "In process with the node library: {} providers' offers stored first, then {} rounds \
         of one signed heartbeat per provider, decoded and verified with \
         `SignedEnvelope::decode_batch::<Heartbeat>` the node's way (chunks of up to {} \
         messages, each split over one blocking task per core whose share's signatures are \
         checked together by ed25519 batch verification, results in order) and queued to the \
         store's batched writer (up to 4,096 in flight, committed with `synchronous=FULL`), \
         which also marks the provider's uptime bucket in the same row update. Signing \
         happens before the clock starts; verifying time is summed over the cores. Median of \
         the rounds: {}/s.\n",
        number(params.providers as f64),
        params.rounds,
        gpuflow_node::CHECK_CHUNK,
        number(median)
    );
    details.push_str("| round | stored | wall time | verifying (all cores) | rate |\n");
    details.push_str("| ---: | ---: | ---: | ---: | ---: |\n");
    details.push_str(&lines);
    let figure = Figure::new(
        "heartbeat ingestion",
        median,
        "/s",
        Some(Target::AtLeast(60_000.0)),
        &params.command,
    )
    .note("in process, verify + batched store");
    if figure.missed() {
        details.push_str(
            "\nWhere the time goes: the table splits decoding and ed25519 verification \
             (summed over the cores) from the wall time; the store's writer thread (one row \
             update per heartbeat, an fsync per batch of at most 256) shares the two cores \
             with it.\n",
        );
    }
    Ok(Section { figures: vec![figure], details })
}
