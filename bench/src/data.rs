//! Seeded data: provider identities, signed offers and heartbeats, and the ingest that
//! stores them the way a node does (decode and verify, then queue to the batched writer).
//!
//! Provider `i` of seed `s` is always the same machine: its ed25519 identity, payout key,
//! GPUs, price and region come from a PRNG seeded with `(s, i)` alone, so data can be made
//! on every core in any order and still be identical between runs.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256},
    signers::{SignerSync, local::PrivateKeySigner},
};
use anyhow::Context;
use futures::{StreamExt, stream::FuturesUnordered};
use gpuflow_node::{CHECK_CHUNK, HeartbeatUpsert, Store, Upsert, on_every_core};
use gpuflow_protocol::{
    GpuHealth, GpuInfo, Heartbeat, Identity, MAX_OFFER_TTL, Message, Offer, OfferId, ProtocolError,
    SignedEnvelope, Verified, payout_binding_message, unix_now,
};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

/// GPU models the generator draws from: name, memory, compute capability, price per GPU
/// hour in token units (6 decimals).
const MODELS: &[(&str, u64, &str, u128)] = &[
    ("NVIDIA GeForce RTX 4090", 24, "8.9", 400_000),
    ("NVIDIA GeForce RTX 3090", 24, "8.6", 220_000),
    ("NVIDIA A100-SXM4-80GB", 80, "8.0", 1_100_000),
    ("NVIDIA H100 80GB HBM3", 80, "9.0", 2_200_000),
    ("NVIDIA L40S", 48, "8.9", 850_000),
    ("NVIDIA RTX A6000", 48, "8.6", 500_000),
    ("NVIDIA A10", 24, "8.6", 300_000),
    ("Tesla T4", 16, "7.5", 120_000),
];

/// The words a query uses for each model, in the order of [`MODELS`].
pub const MODEL_QUERIES: &[&str] =
    &["RTX_4090", "RTX_3090", "A100", "H100", "L40S", "RTX_A6000", "A10", "T4"];

/// Regions offers come from.
pub const REGIONS: &[&str] = &["us-east", "us-west", "eu-west", "eu-central", "ap-southeast"];

const GPU_COUNTS: &[usize] = &[1, 1, 1, 2, 2, 4, 8];

/// The PRNG of item `index` of seed `seed`.
pub fn rng_for(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One simulated provider: its peer identity and payout key.
pub struct Provider {
    /// Its libp2p / offer-signing identity.
    pub identity: Identity,
    /// Its Ethereum payout key.
    pub payout: PrivateKeySigner,
    /// Its place in the generated set.
    pub index: u64,
}

impl Provider {
    /// Provider `index` of `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut rng = rng_for(seed, index);
        let identity = Identity::from_secret(rng.r#gen());
        let payout = loop {
            // A random 32-byte string is a valid secp256k1 secret but for ~2^-128 of them.
            if let Ok(key) = PrivateKeySigner::from_bytes(&B256::from(rng.r#gen::<[u8; 32]>())) {
                break key;
            }
        };
        Self { identity, payout, index }
    }

    /// The id nodes give this provider's offer.
    pub fn offer_id(&self) -> OfferId {
        OfferId::of(&self.identity.peer_id())
    }

    /// A signed offer with sequence number `seq`, valid from now for most of a day: one
    /// to eight GPUs of one model, a price around that model's going rate, a region.
    pub fn offer(&self, seed: u64, seq: u64) -> SignedEnvelope {
        let mut rng = rng_for(seed ^ 0x0ffe, self.index);
        let (name, memory_gib, cc, price) = MODELS[rng.gen_range(0..MODELS.len())];
        let count = *GPU_COUNTS.choose(&mut rng).expect("non-empty");
        // ±30 % around the going rate, for the whole machine, per second.
        let per_hour = price * count as u128 * rng.gen_range(70..=130) / 100;
        let proof = self
            .payout
            .sign_message_sync(payout_binding_message(&self.identity.peer_id()).as_bytes())
            .expect("signing with a local key succeeds");
        let issued_at = unix_now() - 5;
        let gpus = (0..count)
            .map(|k| GpuInfo {
                name: name.into(),
                uuid: format!("GPU-{:016x}-{k}", self.index),
                memory_bytes: memory_gib << 30,
                pci_bus_id: format!("00000000:{:02x}:00.0", k + 1),
                compute_capability: cc.into(),
                driver_version: "550.54.14".into(),
                cuda_version: ["12.2", "12.4", "12.6"][rng.gen_range(0..3)].into(),
            })
            .collect();
        let offer = Offer {
            seq,
            issued_at,
            expires_at: issued_at + MAX_OFFER_TTL - 3600,
            chain_id: 31337,
            escrow: Address::repeat_byte(0xee),
            payout: self.payout.address(),
            payout_proof: proof,
            price_per_second: (per_hour / 3600).max(1),
            gpus,
            verified: false,
            region: REGIONS[rng.gen_range(0..REGIONS.len())].into(),
            listen_addrs: vec![format!(
                "/ip4/10.{}.{}.{}/tcp/4001",
                rng.r#gen::<u8>(),
                rng.r#gen::<u8>(),
                rng.r#gen::<u8>()
            )],
            inet_down_mbps: Some(rng.gen_range(100..=10_000)),
            inet_up_mbps: Some(rng.gen_range(100..=10_000)),
            disk_bytes: Some(rng.gen_range(100..=4000) << 30),
            cpu_cores: Some(rng.gen_range(8..=256)),
            cpu_ram_bytes: Some(rng.gen_range(32..=2048) << 30),
            images: Vec::new(),
            volume_grace_secs: 0,
            allowed_images: Vec::new(),
        };
        SignedEnvelope::seal(&self.identity, &offer)
    }

    /// A signed heartbeat with sequence number `seq`, issued now, for the GPUs of
    /// [`Provider::offer`].
    pub fn heartbeat(&self, seed: u64, seq: u64) -> SignedEnvelope {
        let mut rng = rng_for(seed ^ 0x0ffe, self.index);
        let _model = rng.gen_range(0..MODELS.len());
        let count = *GPU_COUNTS.choose(&mut rng).expect("non-empty");
        let mut rng = rng_for(seed ^ 0xbea7, self.index.wrapping_add(seq << 40));
        let heartbeat = Heartbeat {
            seq,
            issued_at: unix_now(),
            gpus: (0..count)
                .map(|k| GpuHealth {
                    uuid: format!("GPU-{:016x}-{k}", self.index),
                    temperature_c: rng.gen_range(35..85),
                    utilization_pct: rng.gen_range(0..=100),
                    memory_used_bytes: rng.gen_range(0..16) << 30,
                    ecc_errors: Some(0),
                })
                .collect(),
            active_rentals: rng.gen_range(0..2),
            listen_addrs: Vec::new(),
            maintenance: None,
        };
        SignedEnvelope::seal(&self.identity, &heartbeat)
    }
}

/// Runs `make(i)` for every `i` in `range` on every core, results in order.
pub fn parallel<T: Send>(range: std::ops::Range<u64>, make: impl Fn(u64) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as u64;
    let len = range.end - range.start;
    let chunk = len.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = range.start + t * chunk;
                let end = (start + chunk).min(range.end);
                let make = &make;
                scope.spawn(move || (start..end).map(make).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a generator thread panicked")).collect()
    })
}

/// Signed offers of providers `0..count`, each as the bytes gossip carries.
pub fn offers(seed: u64, count: u64) -> Vec<Vec<u8>> {
    parallel(0..count, |i| Provider::new(seed, i).offer(seed, 1).to_bytes())
}

/// Signed heartbeats (sequence `seq`) of providers `range`, as the bytes gossip carries.
pub fn heartbeats(seed: u64, range: std::ops::Range<u64>, seq: u64) -> Vec<Vec<u8>> {
    parallel(range, |i| Provider::new(seed, i).heartbeat(seed, seq).to_bytes())
}

/// Most writes an ingest keeps in flight, like the node's ingest loop does.
const IN_FLIGHT: usize = 4096;

/// How an ingest went.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Messages stored.
    pub stored: u64,
    /// Messages refused (invalid, stale or of an unknown provider).
    pub refused: u64,
    /// Wall time from the first decode to the last commit.
    pub elapsed: Duration,
    /// Time spent decoding and verifying signatures, summed over the cores that did it.
    pub verifying: Duration,
}

impl Ingested {
    /// Stored messages per second.
    pub fn rate(&self) -> f64 {
        self.stored as f64 / self.elapsed.as_secs_f64()
    }
}

/// Decodes and verifies `chunk` with the node's own [`on_every_core`], each core's share
/// with [`SignedEnvelope::decode_batch`] as the node's ingest does, with the time the checks
/// took summed over the cores.
async fn check_chunk<T: Message + Send + 'static>(
    chunk: &[Vec<u8>],
) -> anyhow::Result<(Vec<Result<Verified<T>, ProtocolError>>, Duration)> {
    let timed = on_every_core(chunk.to_vec(), |slice: &[Vec<u8>]| {
        let t = Instant::now();
        let checked = SignedEnvelope::decode_batch::<T>(slice);
        let took = t.elapsed();
        // The share's time goes with its first result.
        let times = std::iter::once(took).chain(std::iter::repeat(Duration::ZERO));
        checked.into_iter().zip(times).collect::<Vec<_>>()
    })
    .await;
    let (mut checked, mut took) = (Vec::with_capacity(chunk.len()), Duration::ZERO);
    for outcome in timed {
        let (result, time) = outcome.context("a check panicked")?;
        checked.push(result);
        took += time;
    }
    Ok((checked, took))
}

/// Stores gossip-format offers the node's way: checked in chunks on every core, queued to
/// the batched writer in order without waiting for each commit.
pub async fn ingest_offers(store: &Store, messages: &[Vec<u8>]) -> anyhow::Result<Ingested> {
    let mut report = Ingested::default();
    let mut pending = FuturesUnordered::new();
    let start = Instant::now();
    for chunk in messages.chunks(CHECK_CHUNK) {
        let (checked, took) = check_chunk::<Offer>(chunk).await?;
        report.verifying += took;
        for checked in checked {
            match checked {
                Ok(offer) => pending.push(store.queue_offer(offer, unix_now()).await),
                Err(_) => report.refused += 1,
            }
            while pending.len() >= IN_FLIGHT {
                count_offer(&mut report, pending.next().await)?;
            }
        }
    }
    while let Some(outcome) = pending.next().await {
        count_offer(&mut report, Some(outcome))?;
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

fn count_offer(
    report: &mut Ingested,
    outcome: Option<Result<Upsert, gpuflow_node::StoreError>>,
) -> anyhow::Result<()> {
    match outcome {
        Some(Ok(Upsert::Inserted | Upsert::Replaced)) => report.stored += 1,
        Some(Ok(Upsert::Stale)) => report.refused += 1,
        Some(Err(e)) => return Err(e.into()),
        None => {}
    }
    Ok(())
}

/// Stores gossip-format heartbeats like [`ingest_offers`].
pub async fn ingest_heartbeats(store: &Store, messages: &[Vec<u8>]) -> anyhow::Result<Ingested> {
    let mut report = Ingested::default();
    let mut pending = FuturesUnordered::new();
    let start = Instant::now();
    for chunk in messages.chunks(CHECK_CHUNK) {
        let (checked, took) = check_chunk::<Heartbeat>(chunk).await?;
        report.verifying += took;
        for checked in checked {
            match checked {
                Ok(heartbeat) => pending.push(store.queue_heartbeat(heartbeat, unix_now()).await),
                Err(_) => report.refused += 1,
            }
            while pending.len() >= IN_FLIGHT {
                count_heartbeat(&mut report, pending.next().await)?;
            }
        }
    }
    while let Some(outcome) = pending.next().await {
        count_heartbeat(&mut report, Some(outcome))?;
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

fn count_heartbeat(
    report: &mut Ingested,
    outcome: Option<Result<HeartbeatUpsert, gpuflow_node::StoreError>>,
) -> anyhow::Result<()> {
    match outcome {
        Some(Ok(HeartbeatUpsert::Stored)) => report.stored += 1,
        Some(Ok(HeartbeatUpsert::Stale | HeartbeatUpsert::UnknownProvider)) => report.refused += 1,
        Some(Err(e)) => return Err(e.into()),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_providers_and_offers() {
        let a = Provider::new(7, 3);
        let b = Provider::new(7, 3);
        assert_eq!(a.identity.peer_id(), b.identity.peer_id());
        assert_eq!(a.payout.address(), b.payout.address());
        assert_ne!(a.identity.peer_id(), Provider::new(7, 4).identity.peer_id());
        assert_ne!(a.identity.peer_id(), Provider::new(8, 3).identity.peer_id());
        let offer = |p: &Provider| {
            SignedEnvelope::decode::<Offer>(&p.offer(7, 1).to_bytes()).expect("valid").body
        };
        let (x, y) = (offer(&a), offer(&b));
        assert_eq!((x.gpus, x.price_per_second, x.region), (y.gpus, y.price_per_second, y.region));
    }

    #[test]
    fn heartbeats_name_the_offer_gpus() {
        let p = Provider::new(1, 9);
        let offer = SignedEnvelope::decode::<Offer>(&p.offer(1, 1).to_bytes()).unwrap().body;
        let beat = SignedEnvelope::decode::<Heartbeat>(&p.heartbeat(1, 2).to_bytes()).unwrap().body;
        let uuids = |v: Vec<String>| v;
        assert_eq!(
            uuids(offer.gpus.into_iter().map(|g| g.uuid).collect()),
            uuids(beat.gpus.into_iter().map(|g| g.uuid).collect())
        );
    }

    #[tokio::test]
    async fn offers_and_heartbeats_go_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("index.sqlite")).unwrap();
        let stored = ingest_offers(&store, &offers(5, 50)).await.unwrap();
        assert_eq!((stored.stored, stored.refused), (50, 0));
        let beats = ingest_heartbeats(&store, &heartbeats(5, 0..50, 1)).await.unwrap();
        assert_eq!((beats.stored, beats.refused), (50, 0));
    }
}
