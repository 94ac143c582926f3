//! The node's matrix-product challenges of providers (`/gpuflow/challenge/1`, protocol and
//! formulas in `node/CHALLENGE.md`).
//!
//! Every [`ChallengeConfig::scan_interval`] the node walks on through its live offers and
//! challenges, up to [`ChallengeConfig::parallel`] at once and never one provider twice at
//! once, each provider it has not challenged within [`ChallengeConfig::per_provider`], on
//! the GPUs its offer lists. A scan starts at most [`ChallengeConfig::per_minute`]
//! challenges a minute and reads at most [`READ_PER_SCAN`] offers, and the next scan goes
//! on from there: a node with a million offers walks them in pieces, round after round,
//! instead of dialling every provider at once. The walk reads the columns each offer was stored in
//! ([`Store::challenge_targets`]), not the signed envelopes: their signatures were checked
//! when they came, and a walk checks none again. A rented GPU is never among them (an
//! agent withdraws rented GPUs from its offer, and refuses a challenge that names one), so
//! a challenge never disturbs a rental. Each answered challenge is checked,
//! signed by the node and stored; a provider that does not answer or refuses is only
//! logged: silence is the probes' business, and a refusal leaves the offer unproven, not
//! flagged.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use alloy::primitives::B256;
use gpuflow_p2p::{Multiaddr, Network, NetworkError, PeerId};
use gpuflow_protocol::{
    Identity, OfferId, SignedEnvelope,
    challenge::{
        Challenge, ChallengeRequest, ChallengeResponse, ChallengeResult,
        check::{CheckError, Verifier},
        verdict,
    },
    unix_now,
};
use tokio::task::{JoinError, JoinSet};

use crate::{Store, StoreError, metrics::Metrics, store::ChallengeTarget};

/// Providers read from the store at a time during a walk.
const PAGE: u32 = 256;
/// Most offers one scan reads; the next scan goes on from there.
const READ_PER_SCAN: usize = 16 * PAGE as usize;

/// What the node asks of providers, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeConfig {
    /// Shortest time between two challenges of one provider; zero turns challenges off.
    pub per_provider: Duration,
    /// Pause between two walks over the live offers.
    pub scan_interval: Duration,
    /// Matrix size.
    pub n: u32,
    /// Products per GPU.
    pub rounds: u32,
    /// Rows opened.
    pub rows: usize,
    /// Challenges running at once, each of another provider; at least one.
    pub parallel: usize,
    /// Most challenges started a minute, spread over the scans; at least one.
    pub per_minute: u32,
}

impl ChallengeConfig {
    /// Most challenges one scan starts: [`Self::per_minute`] over a scan's share of a
    /// minute, at least one.
    fn per_scan(&self) -> usize {
        let per_scan = u128::from(self.per_minute) * self.scan_interval.as_millis() / 60_000;
        usize::try_from(per_scan).unwrap_or(usize::MAX).max(1)
    }
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        Self {
            per_provider: Duration::from_secs(3600),
            scan_interval: Duration::from_secs(60),
            n: 8192,
            rounds: 16,
            rows: 4,
            parallel: 4,
            per_minute: 60,
        }
    }
}

/// Challenges providers for as long as the store and the network live.
pub(crate) async fn challenge_every(
    network: Network,
    store: Store,
    identity: Identity,
    metrics: Arc<Metrics>,
    config: ChallengeConfig,
) {
    let mut ticks = tokio::time::interval(config.scan_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut schedule = Schedule::new(config.per_provider);
    let mut running = Running::new(config.parallel);
    let mut walk = Walk::new(PAGE);
    let challenger = Arc::new(Challenger { network, store, identity, metrics, config });
    loop {
        tokio::select! {
            _ = ticks.tick() => scan(&challenger, &mut walk, &mut schedule, &mut running).await,
            // Disabled while none runs.
            Some(done) = running.tasks.join_next_with_id() => {
                running.finish(done, &mut schedule, &challenger.metrics);
            }
        }
    }
}

/// One scan: walks on over the live offers, within the scan's [`Budget`], and starts a
/// challenge of each due provider, first waiting for one to end while as many as allowed
/// run. A scan does not wait for its challenges: one provider slow to answer never holds
/// back the next scan.
async fn scan(
    challenger: &Arc<Challenger>,
    walk: &mut Walk,
    schedule: &mut Schedule,
    running: &mut Running,
) {
    let mut budget = Budget { challenges: challenger.config.per_scan(), reads: READ_PER_SCAN };
    while !budget.spent() {
        let due = match walk.next_due(&challenger.store, schedule, unix_now(), &mut budget).await {
            Ok(Some(due)) => due,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot list the providers to challenge");
                return;
            }
        };
        for target in due {
            while running.full() {
                if let Some(done) = running.tasks.join_next_with_id().await {
                    running.finish(done, schedule, &challenger.metrics);
                }
            }
            running.start(Arc::clone(challenger), target);
        }
    }
}

/// The challenges running, at most `parallel`, and whose they are.
#[derive(Debug)]
struct Running {
    parallel: usize,
    tasks: JoinSet<()>,
    peers: HashMap<tokio::task::Id, String>,
}

impl Running {
    fn new(parallel: usize) -> Self {
        Self { parallel: parallel.max(1), tasks: JoinSet::new(), peers: HashMap::new() }
    }

    fn full(&self) -> bool {
        self.tasks.len() >= self.parallel
    }

    /// Starts the challenge of `target`, which [`Schedule::take`] found due.
    fn start(&mut self, challenger: Arc<Challenger>, target: ChallengeTarget) {
        let peer = target.peer_id.clone();
        let metrics = Arc::clone(&challenger.metrics);
        let task = self.tasks.spawn(async move { challenger.challenge_and_record(&target).await });
        self.peers.insert(task.id(), peer);
        metrics.set_challenges_running(self.tasks.len());
    }

    /// Takes note that a challenge ended, so that its provider may be challenged again.
    fn finish(
        &mut self,
        done: Result<(tokio::task::Id, ()), JoinError>,
        schedule: &mut Schedule,
        metrics: &Metrics,
    ) {
        metrics.set_challenges_running(self.tasks.len());
        let id = match done {
            Ok((id, ())) => id,
            Err(error) => {
                tracing::error!(%error, "a challenge failed");
                error.id()
            }
        };
        if let Some(peer) = self.peers.remove(&id) {
            schedule.finish(&peer);
        }
    }
}

/// What every challenge needs, shared by those running at once.
#[derive(Debug)]
struct Challenger {
    network: Network,
    store: Store,
    identity: Identity,
    metrics: Arc<Metrics>,
    config: ChallengeConfig,
}

impl Challenger {
    /// Challenges `target`, and signs and stores the result if it answered.
    async fn challenge_and_record(&self, target: &ChallengeTarget) {
        let Ok(peer) = target.peer_id.parse::<PeerId>() else {
            tracing::warn!(peer_id = target.peer_id, "a stored peer id does not parse");
            return;
        };
        let metrics = &self.metrics;
        let result = match challenge(&self.network, peer, target, &self.config).await {
            Ending::Answered(result, checked) => {
                metrics.challenge(result.outcome.as_str());
                metrics.observe_challenge_check(checked.as_secs_f64());
                result
            }
            Ending::Refused => {
                metrics.challenge("refused");
                return;
            }
            Ending::Unanswered => {
                metrics.challenge("unanswered");
                return;
            }
        };
        tracing::info!(
            %peer,
            outcome = result.outcome.as_str(),
            proven_tflops = result.proven_tflops,
            reason = result.reason,
            "challenged a provider"
        );
        let envelope = SignedEnvelope::seal(&self.identity, &result);
        if let Err(error) = self.store.record_challenge(result, envelope).await {
            tracing::warn!(%error, "cannot record a challenge");
        }
    }
}

/// Which providers are due for a challenge. A stored result says when a provider was last
/// challenged, also after a restart, so that a restart does not challenge everyone again;
/// a challenge that went unanswered or was refused stores nothing, so this run remembers
/// when it started each challenge too, and which are still running: a provider is never
/// challenged twice at once, however short `per_provider`.
#[derive(Debug)]
struct Schedule {
    per_provider: u64,
    /// When this run last started a challenge of each provider, by peer id, for the last
    /// `per_provider` seconds.
    started: HashMap<String, u64>,
    /// The providers whose challenge has not ended yet.
    running: HashSet<String>,
}

impl Schedule {
    fn new(per_provider: Duration) -> Self {
        Self {
            per_provider: per_provider.as_secs(),
            started: HashMap::new(),
            running: HashSet::new(),
        }
    }

    /// Whether `target` is due at `now`: not being challenged, and challenged neither by
    /// this run nor, as stored, within `per_provider`. A due target counts as challenged
    /// at `now`, and as running until [`Schedule::finish`], from then on.
    fn take(&mut self, target: &ChallengeTarget, now: u64) -> bool {
        if self.running.contains(&target.peer_id) {
            return false;
        }
        let started = self.started.get(&target.peer_id).copied();
        let since = started.max(target.last_challenged).unwrap_or(0);
        if now < since.saturating_add(self.per_provider) {
            return false;
        }
        self.started.insert(target.peer_id.clone(), now);
        self.running.insert(target.peer_id.clone());
        true
    }

    /// The challenge of `peer` ended.
    fn finish(&mut self, peer: &str) {
        self.running.remove(peer);
    }

    /// Forgets the challenges that no longer hold their provider back at `now`.
    fn forget_before(&mut self, now: u64) {
        let per_provider = self.per_provider;
        self.started.retain(|_, at| now < at.saturating_add(per_provider));
    }
}

/// What one scan may still do.
#[derive(Debug)]
struct Budget {
    /// Challenges it may start.
    challenges: usize,
    /// Offers it may read.
    reads: usize,
}

impl Budget {
    fn spent(&self) -> bool {
        self.challenges == 0 || self.reads == 0
    }
}

/// A walk over the providers with a live offer, a page at a time, in offer id order; it
/// starts over once it is through.
#[derive(Debug)]
struct Walk {
    page: u32,
    after: Option<OfferId>,
    done: bool,
}

impl Walk {
    fn new(page: u32) -> Self {
        Self { page: page.max(1), after: None, done: false }
    }

    /// The due providers among the next offers (maybe none), within `budget` and taken
    /// from it, each marked in `schedule` as challenged at `now`; `None` once the walk is
    /// through, and the next call starts it over.
    async fn next_due(
        &mut self,
        store: &Store,
        schedule: &mut Schedule,
        now: u64,
        budget: &mut Budget,
    ) -> Result<Option<Vec<ChallengeTarget>>, StoreError> {
        if self.done {
            *self = Self::new(self.page);
            return Ok(None);
        }
        if self.after.is_none() {
            schedule.forget_before(now);
        }
        let limit = self.page.min(u32::try_from(budget.reads).unwrap_or(u32::MAX));
        let page = store.challenge_targets(now, self.after, limit).await?;
        self.done = page.len() < limit as usize;
        let mut due = Vec::new();
        for target in page {
            if budget.challenges == 0 {
                // The rest of the page is for the next scan.
                self.done = false;
                break;
            }
            budget.reads -= 1;
            self.after = Some(target.offer);
            if schedule.take(&target, now) {
                budget.challenges -= 1;
                due.push(target);
            }
        }
        Ok(Some(due))
    }
}

/// How a challenge ended.
#[derive(Debug)]
enum Ending {
    /// The provider answered, and the node concluded `.0` after checking for `.1`.
    Answered(ChallengeResult, Duration),
    /// The provider refused the challenge.
    Refused,
    /// The provider could not be reached or did not answer in time.
    Unanswered,
}

/// Runs one challenge of `peer` on the GPUs of its live offer, `target`.
async fn challenge(
    network: &Network,
    peer: PeerId,
    target: &ChallengeTarget,
    config: &ChallengeConfig,
) -> Ending {
    let addrs: Vec<Multiaddr> = target.listen_addrs.iter().filter_map(|a| a.parse().ok()).collect();
    let challenge = Challenge {
        seed: B256::from(rand::random::<[u8; 32]>()),
        n: config.n,
        rounds: config.rounds,
        gpus: target.gpus.clone(),
    };
    let mut verifier =
        Verifier::new(challenge.clone(), peer, B256::from(rand::random::<[u8; 32]>()), config.rows);
    let issued_at = unix_now();
    let sent = tokio::time::Instant::now();
    let answer =
        network.challenge(peer, addrs.clone(), ChallengeRequest::Challenge(challenge)).await;
    let elapsed_ms = sent.elapsed().as_millis() as u64;
    let conclude = |verifier: &Verifier, checked: Result<(), CheckError>, spent| {
        let expected = verdict::expected_tflops(&target.gpu_name);
        let result = verifier.conclude(checked, issued_at, elapsed_ms, &target.gpu_name, expected);
        Ending::Answered(result, spent)
    };
    let envelope = match answer {
        Ok(ChallengeResponse::Commitment { envelope }) => envelope,
        Ok(ChallengeResponse::Refused { reason }) => {
            tracing::info!(%peer, reason, "a provider refused a challenge");
            return Ending::Refused;
        }
        Ok(ChallengeResponse::Opening { .. }) => {
            let error = CheckError::Malformed("an opening where the commitment was due".into());
            return conclude(&verifier, Err(error), Duration::ZERO);
        }
        Err(error) => {
            tracing::info!(%peer, %error, "a provider did not answer a challenge");
            return Ending::Unanswered;
        }
    };
    let drawing = std::time::Instant::now();
    let drawn = verifier.on_commitment(envelope);
    let mut spent = drawing.elapsed();
    let checked = match drawn {
        Ok(rows) => {
            let seed = verifier.challenge().seed;
            let opened =
                network.challenge(peer, addrs, ChallengeRequest::Open { seed, rows }).await;
            let (checked, checking) = check_opening(&verifier, opened).await;
            spent += checking;
            checked
        }
        Err(error) => Err(error),
    };
    conclude(&verifier, checked, spent)
}

/// Checks the answer to the opening, off the async runtime (`O(n²)` per product opened);
/// also answers how long the check itself took.
async fn check_opening(
    verifier: &Verifier,
    opened: Result<ChallengeResponse, NetworkError>,
) -> (Result<(), CheckError>, Duration) {
    let envelope = match opened {
        Ok(ChallengeResponse::Opening { envelope }) => envelope,
        Ok(ChallengeResponse::Refused { reason }) => {
            let error = format!("committed, then refused to open: {reason}");
            return (Err(CheckError::Malformed(error)), Duration::ZERO);
        }
        Ok(ChallengeResponse::Commitment { .. }) => {
            let error = "a commitment where the opening was due".into();
            return (Err(CheckError::Malformed(error)), Duration::ZERO);
        }
        Err(error) => {
            let error = format!("committed, then did not open: {error}");
            return (Err(CheckError::Malformed(error)), Duration::ZERO);
        }
    };
    let verifier = verifier.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let checked = verifier.on_opening(envelope);
        (checked, started.elapsed())
    })
    .await
    .unwrap_or_else(|e| {
        (Err(CheckError::Malformed(format!("the check failed: {e}"))), Duration::ZERO)
    })
}

#[cfg(test)]
mod tests {
    use gpuflow_protocol::challenge::Outcome;

    use super::*;
    use crate::testing::{self, Provider, gpus};

    const PER_PROVIDER: Duration = Duration::from_secs(100);

    /// A result of a challenge of `provider` issued at `issued_at`, stored as the node would.
    async fn record(store: &Store, provider: &Provider, issued_at: u64) {
        let result = ChallengeResult {
            provider: provider.identity.peer_id().to_string(),
            seed: B256::from(rand::random::<[u8; 32]>()),
            n: 64,
            rounds: 1,
            gpus: vec![provider.gpu_uuid()],
            gpu_name: "NVIDIA GeForce RTX 4090".into(),
            issued_at,
            elapsed_ms: 10,
            proven_tflops: 0.001,
            expected_tflops: Some(165.0),
            outcome: Outcome::TooSlow,
            reason: String::new(),
        };
        let envelope = SignedEnvelope::seal(&Identity::generate(), &result);
        store.record_challenge(result, envelope).await.unwrap();
    }

    /// Every due provider of one walk at `now`, by peer id, sorted, two to a page.
    async fn walk(store: &Store, schedule: &mut Schedule, now: u64) -> Vec<ChallengeTarget> {
        let mut walk = Walk::new(2);
        let mut due = Vec::new();
        let mut budget = Budget { challenges: usize::MAX, reads: usize::MAX };
        while let Some(page) = walk.next_due(store, schedule, now, &mut budget).await.unwrap() {
            due.extend(page);
        }
        due.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        due
    }

    fn peers(targets: &[ChallengeTarget]) -> Vec<String> {
        targets.iter().map(|t| t.peer_id.clone()).collect()
    }

    fn sorted(providers: &[&Provider]) -> Vec<String> {
        let mut peers: Vec<String> =
            providers.iter().map(|p| p.identity.peer_id().to_string()).collect();
        peers.sort();
        peers
    }

    #[tokio::test]
    async fn a_walk_finds_each_due_provider_once_per_interval() {
        let (store, _dir) = testing::store();
        let now = unix_now();
        let [never, recent, long_ago, expired, silent, unlisted] =
            std::array::from_fn(|_| Provider::new());
        let offer = never.offer(|o| {
            o.gpus = gpus(o, 2);
            o.gpus.iter_mut().for_each(|g| g.name = "NVIDIA L40S".into());
        });
        store.upsert_offer(offer, now).await.unwrap();
        for provider in [&recent, &long_ago, &silent] {
            store.upsert_offer(provider.offer(|_| {}), now).await.unwrap();
        }
        let offer = expired.offer(|o| o.expires_at = o.issued_at + 5);
        store.upsert_offer(offer, now).await.unwrap();
        let offer = unlisted.offer(|o| o.listen_addrs.clear());
        store.upsert_offer(offer, now).await.unwrap();
        record(&store, &recent, now - 1).await;
        record(&store, &long_ago, now - 2 * PER_PROVIDER.as_secs()).await;
        record(&store, &expired, now - 2 * PER_PROVIDER.as_secs()).await;

        let mut schedule = Schedule::new(PER_PROVIDER);
        let due = walk(&store, &mut schedule, now).await;
        // Not `recent` (challenged a second ago), `expired` (no live offer), nor `unlisted`
        // (nowhere to dial).
        assert_eq!(peers(&due), sorted(&[&never, &long_ago, &silent]));
        let target = due.iter().find(|t| t.peer_id == never.identity.peer_id().to_string());
        let target = target.unwrap();
        let mut uuids = vec![format!("{}-0", never.gpu_uuid()), format!("{}-1", never.gpu_uuid())];
        uuids.sort();
        assert_eq!(target.gpus, uuids);
        assert_eq!(target.gpu_name, "NVIDIA L40S");
        assert_eq!(target.listen_addrs, vec!["/ip4/127.0.0.1/tcp/4001".to_owned()]);
        assert_eq!(target.last_challenged, None);
        let target = due.iter().find(|t| t.peer_id == long_ago.identity.peer_id().to_string());
        assert_eq!(target.unwrap().last_challenged, Some(now - 2 * PER_PROVIDER.as_secs()));

        // Those just challenged are not due again within the interval, whether their
        // challenge stored a result or went unanswered.
        record(&store, &never, now).await;
        assert!(walk(&store, &mut schedule, now + 1).await.is_empty());
        let almost = now + PER_PROVIDER.as_secs() - 2;
        assert!(walk(&store, &mut schedule, almost).await.is_empty());
        // Once it has passed, every listed provider is due again, `recent` too, but one
        // whose challenge is still running.
        for provider in [&never, &long_ago] {
            schedule.finish(&provider.identity.peer_id().to_string());
        }
        let later = now + PER_PROVIDER.as_secs();
        let due = walk(&store, &mut schedule, later).await;
        assert_eq!(peers(&due), sorted(&[&never, &recent, &long_ago]));
        schedule.finish(&silent.identity.peer_id().to_string());
        let due = walk(&store, &mut schedule, later).await;
        assert_eq!(peers(&due), sorted(&[&silent]));
        // A restart forgets the unanswered challenges, not the stored results.
        let mut restarted = Schedule::new(PER_PROVIDER);
        let due = walk(&store, &mut restarted, now + 1).await;
        assert_eq!(peers(&due), sorted(&[&long_ago, &silent]));
    }

    #[tokio::test]
    async fn scans_go_on_where_the_last_one_spent_its_budget() {
        let (store, _dir) = testing::store();
        let now = unix_now();
        let providers: Vec<Provider> = (0..7).map(|_| Provider::new()).collect();
        for provider in &providers {
            store.upsert_offer(provider.offer(|_| {}), now).await.unwrap();
        }
        // Walked in offer id order; one of them was challenged a moment ago.
        let mut order: Vec<&Provider> = providers.iter().collect();
        order.sort_by_key(|p| OfferId::of(&p.identity.peer_id()).to_string());
        record(&store, order[1], now - 1).await;
        let (mut walk, mut schedule) = (Walk::new(2), Schedule::new(PER_PROVIDER));
        // One scan's share: the due providers it reached, and whether the walk is through.
        let mut scan = async |challenges, reads| {
            let mut budget = Budget { challenges, reads };
            let mut due = Vec::new();
            while !budget.spent() {
                match walk.next_due(&store, &mut schedule, now, &mut budget).await.unwrap() {
                    Some(page) => due.extend(page),
                    None => return (peers(&due), true),
                }
            }
            (peers(&due), false)
        };
        let ids = |providers: &[&Provider]| -> Vec<String> {
            providers.iter().map(|p| p.identity.peer_id().to_string()).collect()
        };
        // Two challenges a scan: the first scan stops after the third offer, having
        // passed over the one challenged a moment ago.
        assert_eq!(scan(2, usize::MAX).await, (ids(&[order[0], order[2]]), false));
        // Three offers read a scan: the next scan reads the fourth to the sixth.
        assert_eq!(scan(usize::MAX, 3).await, (ids(&[order[3], order[4], order[5]]), false));
        assert_eq!(scan(usize::MAX, usize::MAX).await, (ids(&[order[6]]), true));
        // Through: the walk starts over, and finds no one due.
        assert_eq!(scan(usize::MAX, usize::MAX).await, (Vec::new(), true));
    }

    #[test]
    fn a_scan_starts_its_share_of_the_challenges_a_minute() {
        let config = |per_minute, scan_secs| ChallengeConfig {
            per_minute,
            scan_interval: Duration::from_secs(scan_secs),
            ..ChallengeConfig::default()
        };
        assert_eq!(config(60, 60).per_scan(), 60);
        assert_eq!(config(60, 5).per_scan(), 5);
        assert_eq!(config(1, 5).per_scan(), 1, "at least one");
        assert_eq!(config(6000, 60).per_scan(), 6000);
    }
}
