//! The SQLite index of offers, providers and heartbeats.
//!
//! [`Store`] is a cheap, cloneable handle. Writes go over a channel to the one thread that
//! owns the writing connection (`writer.rs`), which commits them in batches and answers each
//! only after its commit: an answered write survives `kill -9`. Reads run on a small pool
//! of read-only connections (`reader.rs`) and never wait for the writer: WAL gives them the
//! last committed snapshot. Searches read an in-memory index of the offers (`index.rs`)
//! that a thread of its own updates after each commit; the writer answers without waiting
//! for it, and a search waits until it shows every write answered before the search began.

mod chain;
mod challenges;
pub(crate) mod index;
mod reader;
mod schema;
mod uptime;
mod writer;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use gpuflow_protocol::{
    Heartbeat, Offer, OfferId, SignedEnvelope, Verified, api, api::ModelParams,
    challenge::ChallengeResult,
};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{
    StoreError,
    reliability::model::Window,
    search::{Cursor, OfferSummary, Order, Query},
};
pub use chain::{ChainCursor, ChainUpdate, KEPT_HASHES, LoggedEvent, RentalEvent, RentalRecord};
pub use challenges::{ChallengeTarget, KEPT_PER_PROVIDER as KEPT_CHALLENGES};
use index::OfferIndex;
use reader::Readers;
pub use uptime::{ProviderFacts, RETENTION_DAYS, RentalMachine, StoredScores, scores_of};
use writer::{Reply, Write};

/// Width of the uptime buckets unless configured: one minute.
pub const DEFAULT_BUCKET_SECS: u64 = 60;

/// Writes waiting for the writer thread before senders are made to wait.
const QUEUE_DEPTH: usize = 1024;

/// Handle to the index; clones share the writer thread, which stops once every handle is
/// dropped (after committing what it was given).
#[derive(Clone, Debug)]
pub struct Store {
    writes: mpsc::Sender<Write>,
    readers: Arc<Readers>,
    index: Arc<OfferIndex>,
    commits: Arc<AtomicU64>,
    /// When this process's node run started (see [`Store::mark_alive`]); 0 before.
    running: Arc<AtomicU64>,
}

/// What [`Store::upsert_offer`] did with an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// The provider had no offer stored; this one was added.
    Inserted,
    /// It carried a higher `seq` than the stored offer, which it replaced.
    Replaced,
    /// Its `seq` was not higher than the provider's latest (a replay or a duplicate);
    /// nothing changed.
    Stale,
}

/// What [`Store::upsert_heartbeat`] did with a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatUpsert {
    /// Stored as the provider's latest heartbeat.
    Stored,
    /// Its `seq` was not higher than the latest one; nothing changed.
    Stale,
    /// The index does not know this provider: no offer of it was ever stored, and no
    /// running rental in the chain index pays for its machine. Made-up peer ids cannot fill
    /// the database.
    UnknownProvider,
}

/// A live offer together with the signed envelope it arrived in, so that clients can verify
/// the provider's signature themselves.
#[derive(Clone, Debug)]
pub struct OfferDetail {
    /// The indexed facts.
    pub summary: OfferSummary,
    /// The envelope exactly as signed by the provider.
    pub envelope: SignedEnvelope,
}

/// What the index knows about one provider.
#[derive(Clone, Debug)]
pub struct ProviderInfo {
    /// The provider's peer id.
    pub peer_id: String,
    /// Unix time this node first stored an offer or a heartbeat of the provider.
    pub first_seen: u64,
    /// Its live offer, if any.
    pub offer: Option<OfferSummary>,
    /// Heartbeats stored.
    pub heartbeat_count: u64,
    /// The latest heartbeat.
    pub last_heartbeat: Option<api::HeartbeatSummary>,
}

/// A search: which offers, in which order, which page.
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// Conditions every offer must meet.
    pub query: Query,
    /// Sort order; ties go by offer id.
    pub order: Order,
    /// Most offers returned.
    pub limit: u32,
    /// Continue after this cursor (from a previous page with the same order).
    pub after: Option<Cursor>,
    /// Also list offers in a GPU UUID conflict, which are hidden by default.
    pub include_conflicts: bool,
}

/// One page of search results.
#[derive(Clone, Debug)]
pub struct Page {
    /// The offers, in order.
    pub offers: Vec<OfferSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
    /// Offers that match but are hidden because they share a GPU UUID with another live
    /// offer (0 when conflicts are shown).
    pub hidden_conflicts: u32,
}

/// One page of live offers for another node, in id order.
#[derive(Clone, Debug)]
pub struct SyncPage {
    /// Envelopes as signed.
    pub offers: Vec<SignedEnvelope>,
    /// The last id of a full page; `None` when there is nothing after it.
    pub next: Option<OfferId>,
}

impl Store {
    /// Opens (creating it and its directory when missing) the database at `path`, brings its
    /// schema up to date and starts the writer thread. Uptime evidence goes in buckets of
    /// [`DEFAULT_BUCKET_SECS`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, DEFAULT_BUCKET_SECS)
    }

    /// [`Store::open`] with uptime buckets `bucket_secs` wide (a divisor of 10 800, so that
    /// a day's bitmap is whole bytes).
    pub fn open_with(path: &Path, bucket_secs: u64) -> Result<Self, StoreError> {
        if bucket_secs == 0 || 10_800 % bucket_secs != 0 {
            return Err(StoreError::BucketWidth(bucket_secs));
        }
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateDir { path: dir.to_owned(), source })?;
        }
        let open_error = |source| StoreError::Open { path: path.to_owned(), source };
        let mut conn = Connection::open(path).map_err(open_error)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), %mode, "SQLite refused WAL journaling");
        }
        // FULL syncs the WAL at every commit: an acknowledged write survives a power cut,
        // not only a crash. Batching keeps that to one fsync per batch.
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_error)?;
        schema::migrate(&mut conn)?;
        // Search runs on memory rebuilt from the database at every start, by the writer
        // thread that keeps it up to date (so the allocator reuses what updates free).
        let index = Arc::new(OfferIndex::default());
        let (loaded, load) = std::sync::mpsc::sync_channel(1);
        let readers = Arc::new(Readers::new(path.to_owned()));
        let index_conn = readers.open()?;
        let (writes, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (updates, updated) = std::sync::mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        std::thread::Builder::new()
            .name("gpuflow-store".into())
            .spawn({
                let index = Arc::clone(&index);
                let commits = Arc::clone(&commits);
                move || {
                    let result = index.reload(&conn);
                    let ready = result.is_ok();
                    let _ = loaded.send(result);
                    if ready {
                        writer::run(conn, receiver, bucket_secs, &index, updates, commits);
                    }
                }
            })
            .map_err(StoreError::Spawn)?;
        load.recv().map_err(|_| StoreError::Closed)??;
        std::thread::Builder::new()
            .name("gpuflow-index".into())
            .spawn({
                let index = Arc::clone(&index);
                move || index.follow(&index_conn, updated)
            })
            .map_err(StoreError::Spawn)?;
        Ok(Self { writes, readers, index, commits, running: Arc::default() })
    }

    /// Stores a verified offer unless the provider already had one with the same or a
    /// higher `seq`. Answers once the offer is committed.
    ///
    /// Fails with [`StoreError::OutOfRange`] when a number of the offer (its `seq` or a
    /// timestamp) exceeds `i64::MAX`; such an offer is invalid input, not a store failure.
    pub async fn upsert_offer(
        &self,
        offer: Verified<Offer>,
        received_at: u64,
    ) -> Result<Upsert, StoreError> {
        self.queue_offer(offer, received_at).await.await
    }

    /// Queues [`Store::upsert_offer`] and returns the future of its outcome without waiting
    /// for it: writes queued before awaiting it are applied in queue order and share commits.
    pub async fn queue_offer(
        &self,
        offer: Verified<Offer>,
        received_at: u64,
    ) -> impl Future<Output = Result<Upsert, StoreError>> + Send + 'static {
        self.queue(move |reply| Write::Offer { offer: Box::new(offer), received_at, reply }).await
    }

    /// Stores a verified heartbeat as its provider's latest, unless it is not newer than
    /// the stored one or the provider is unknown. Answers once it is committed.
    pub async fn upsert_heartbeat(
        &self,
        heartbeat: Verified<Heartbeat>,
        received_at: u64,
    ) -> Result<HeartbeatUpsert, StoreError> {
        self.queue_heartbeat(heartbeat, received_at).await.await
    }

    /// Queues [`Store::upsert_heartbeat`], like [`Store::queue_offer`].
    pub async fn queue_heartbeat(
        &self,
        heartbeat: Verified<Heartbeat>,
        received_at: u64,
    ) -> impl Future<Output = Result<HeartbeatUpsert, StoreError>> + Send + 'static {
        self.queue(move |reply| Write::Heartbeat {
            heartbeat: Box::new(heartbeat),
            received_at,
            reply,
        })
        .await
    }

    /// Deletes offers expired at `now`, returning how many went. Expired offers are already
    /// invisible; pruning only reclaims space. Providers and their history stay.
    pub async fn prune_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.queue(move |reply| Write::Prune { now, reply }).await.await
    }

    /// One page of the live offers (`expires_at > now`) matching `search`.
    /// Chosen by the in-memory index (`index.rs`) once it shows every write answered
    /// before the call; the chosen offers' summaries are then read from the database, so
    /// a write committed in between shows in them (an offer deleted in between is left
    /// out of the page).
    pub async fn search(&self, search: Search, now: u64) -> Result<Page, StoreError> {
        // Without its writer the index no longer follows the database.
        if self.writes.is_closed() {
            return Err(StoreError::Closed);
        }
        self.index.caught_up().await;
        let index::Matched { offers, next, hidden_conflicts } = self.index.search(&search, now);
        let offers = self.readers.run(move |conn| reader::summaries(conn, &offers)).await?;
        Ok(Page { offers, next, hidden_conflicts })
    }

    /// The `seq` of each offer of `ids` that the store holds, as far as the search index
    /// shows it (a commit not yet applied may hold a later one).
    pub fn held_seqs(&self, ids: &[OfferId]) -> Vec<Option<u64>> {
        self.index.held_seqs(ids)
    }

    /// The offers live at `now`, summed up for the marketplace page's charts.
    pub async fn network(&self, now: u64) -> Result<api::NetworkStats, StoreError> {
        if self.writes.is_closed() {
            return Err(StoreError::Closed);
        }
        self.index.caught_up().await;
        Ok(self.index.network(now))
    }

    /// The offer with `id`, unless it is unknown or expired at `now`.
    pub async fn get_offer(
        &self,
        id: OfferId,
        now: u64,
    ) -> Result<Option<OfferDetail>, StoreError> {
        self.readers.run(move |conn| reader::get(conn, id, now)).await
    }

    /// How many offers are live at `now`.
    pub async fn count_offers(&self, now: u64) -> Result<u64, StoreError> {
        self.readers.run(move |conn| reader::count(conn, now)).await
    }

    /// What the index knows about the provider `peer_id`, or `None` if it never stored one
    /// of its offers.
    pub async fn provider(
        &self,
        peer_id: gpuflow_p2p::PeerId,
        now: u64,
    ) -> Result<Option<ProviderInfo>, StoreError> {
        self.readers
            .run(move |conn| {
                reader::provider(conn, &peer_id.to_string(), OfferId::of(&peer_id), now)
            })
            .await
    }

    /// Live offers with ids after `after`, at most `limit`, for another node's sync.
    pub async fn sync_page(
        &self,
        after: Option<OfferId>,
        limit: u32,
        now: u64,
    ) -> Result<SyncPage, StoreError> {
        self.readers.run(move |conn| reader::sync_page(conn, after, limit, now)).await
    }

    /// Applies one step of the chain watcher atomically: its rollback, new blocks and
    /// events, and the cursor. Answers once committed.
    pub async fn apply_chain(&self, update: ChainUpdate) -> Result<(), StoreError> {
        self.queue(move |reply| Write::Chain { update: Box::new(update), reply }).await.await
    }

    /// Where the watcher of `escrow` left off.
    pub async fn chain_cursor(&self, escrow: String) -> Result<ChainCursor, StoreError> {
        self.readers.run(move |conn| chain::cursor(conn, &escrow)).await
    }

    /// The indexed rental `id`, if its opening was indexed.
    pub async fn rental(&self, id: u64) -> Result<Option<RentalRecord>, StoreError> {
        self.readers.run(move |conn| chain::rental(conn, id)).await
    }

    /// Records the outcome of the node's probe of `peer_id` at `at`: an answer counts as
    /// heard, silence as a failed bucket.
    pub async fn record_probe(
        &self,
        peer_id: String,
        at: u64,
        answered: bool,
    ) -> Result<(), StoreError> {
        self.queue(move |reply| Write::Probe { peer_id, at, answered, reply }).await.await
    }

    /// The uptime evidence of `peer_id` for the window of `params` ending at `now`, with
    /// the facts the scores also use; `None` for an unknown provider.
    pub async fn evidence(
        &self,
        params: ModelParams,
        peer_id: String,
        now: u64,
    ) -> Result<Option<(Window, ProviderFacts)>, StoreError> {
        let running = self.running();
        self.readers.run(move |conn| uptime::evidence(conn, params, &peer_id, now, running)).await
    }

    /// Records that the node, ready since `started_at`, is up and listening at `now`; answers
    /// once that is committed. The node calls it when it is ready and every few seconds
    /// after, so that after a crash the time until its next start is known to be its own
    /// outage: evidence counts only while the node was up (see `RELIABILITY.md`). Until
    /// the next start, this run counts as lasting until the moment scored.
    pub async fn mark_alive(&self, started_at: u64, now: u64) -> Result<(), StoreError> {
        self.queue(move |reply| Write::Alive { started_at, at: now, reply }).await.await?;
        self.running.store(started_at, Ordering::Relaxed);
        Ok(())
    }

    /// The start of this process's node run, once marked.
    fn running(&self) -> Option<u64> {
        Some(self.running.load(Ordering::Relaxed)).filter(|&at| at > 0)
    }

    /// Recomputes every provider's scores at `now` and stores those that changed, for
    /// search; answers how many providers were scored.
    pub async fn rescore(&self, params: ModelParams, now: u64) -> Result<usize, StoreError> {
        let running = self.running();
        let (scored, changed) =
            self.readers.run(move |conn| uptime::score_all(conn, params, now, running)).await?;
        if !changed.is_empty() {
            self.queue(move |reply| Write::Scores { scores: changed, reply }).await.await?;
        }
        Ok(scored)
    }

    /// End of the last downtime window credited on rental `id`, if any.
    pub async fn credited_until(&self, id: u64) -> Result<Option<u64>, StoreError> {
        self.readers.run(move |conn| uptime::credited_until(conn, id)).await
    }

    /// The machine rental `id` paid for; `None` for a rental not indexed here.
    pub async fn rental_machine(&self, id: u64) -> Result<Option<RentalMachine>, StoreError> {
        self.readers.run(move |conn| uptime::rental_machine(conn, id)).await
    }

    /// Providers to probe and where they listen, at most `limit`: those renting out their
    /// machine at `now` first, then listed ones in peer id order after `after`.
    pub async fn probe_targets(
        &self,
        now: u64,
        after: String,
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.readers.run(move |conn| uptime::probe_targets(conn, now, &after, limit)).await
    }

    /// Stores the result of a challenge of its provider, as the node signed it (`envelope`
    /// holds `result`); answers once committed.
    pub async fn record_challenge(
        &self,
        result: ChallengeResult,
        envelope: SignedEnvelope,
    ) -> Result<(), StoreError> {
        self.queue(move |reply| Write::Challenge { result: Box::new((result, envelope)), reply })
            .await
            .await
    }

    /// The newest `limit` challenge results of `peer_id`, newest first, as signed.
    pub async fn challenges(
        &self,
        peer_id: String,
        limit: u32,
    ) -> Result<Vec<SignedEnvelope>, StoreError> {
        self.readers.run(move |conn| challenges::of_provider(conn, &peer_id, limit)).await
    }

    /// The newest challenge result of `peer_id`, if it was ever challenged.
    pub async fn latest_challenge(
        &self,
        peer_id: String,
    ) -> Result<Option<ChallengeResult>, StoreError> {
        self.readers.run(move |conn| challenges::latest(conn, &peer_id)).await
    }

    /// Providers whose offer is live at `now` and lists where they listen, at most `limit`,
    /// in offer id order after `after`, with what a challenge of them needs.
    pub async fn challenge_targets(
        &self,
        now: u64,
        after: Option<OfferId>,
        limit: u32,
    ) -> Result<Vec<ChallengeTarget>, StoreError> {
        self.readers.run(move |conn| challenges::targets(conn, now, after, limit)).await
    }

    /// Hands a write to the writer thread (waiting while its queue is full) and returns
    /// the future of its answer.
    async fn queue<T>(
        &self,
        write: impl FnOnce(Reply<T>) -> Write,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let queued = self.writes.send(write(reply)).await.map_err(|_| StoreError::Closed);
        async move {
            queued?;
            answer.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// A handle whose writer has stopped and whose database cannot be opened, to exercise
    /// failure paths.
    #[cfg(test)]
    pub(crate) fn closed() -> Self {
        Self {
            writes: mpsc::channel(1).0,
            readers: Arc::new(Readers::new("/nonexistent/gpuflow/index.sqlite".into())),
            index: Arc::default(),
            commits: Arc::default(),
            running: Arc::default(),
        }
    }

    /// Transactions the writer has committed since the store opened; batching keeps this
    /// below the number of writes.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Holds the writer until the returned sender is dropped; writes queued meanwhile wait
    /// and are then committed together.
    #[cfg(test)]
    pub(crate) async fn hold_writer(&self) -> std::sync::mpsc::SyncSender<()> {
        let (release, until) = std::sync::mpsc::sync_channel(0);
        // Not awaited: its answer comes only after the release.
        drop(self.queue(move |reply| Write::Hold { until, reply }).await);
        release
    }
}

/// Converts an offer's number to SQLite's `i64`, refusing what does not fit.
fn storable(field: &'static str, value: impl Into<u128>) -> Result<i64, StoreError> {
    let value = value.into();
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// A time for comparison: past `i64::MAX` every stored time is earlier anyway.
fn clamp(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
