//! The search index: every stored offer's searchable facts in memory, grouped by GPU name,
//! so that a search scans the compact [`Facts`] of the few groups whose name matches
//! instead of querying a table many times the size of SQLite's page cache.
//!
//! SQLite stays the source of truth. [`OfferIndex::reload`] fills the index from the
//! database when the store opens. After every commit that touched what search shows, the
//! writer numbers the commit and hands its [`Changes`] to the index thread
//! ([`OfferIndex::follow`]), which reloads the rows of those offers through a read-only
//! connection. The writer answers without waiting for that, so a search in progress never
//! delays an answer; a search instead first waits until the index shows every commit
//! numbered before it started ([`OfferIndex::caught_up`]), so it never misses an answered
//! write, and never sees an uncommitted one. Expiry and GPU UUID conflicts depend on the time
//! of the search and are evaluated then.

use std::{
    cmp::Ordering,
    collections::{BTreeSet, BinaryHeap, HashMap, HashSet},
    sync::{
        OnceLock, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering as AtomicOrdering},
        mpsc,
    },
};

use gpuflow_p2p::PeerId;
use gpuflow_protocol::{
    OfferId,
    api::{ModelStats, NetworkStats, PriceSpread},
    search::SearchField,
};
use rusqlite::{Connection, Row};
use tokio::sync::watch;

use super::{Page, Search, StoredScores, clamp, reader};
use crate::{
    StoreError,
    search::{Candidate, Cursor, Facts, OfferSummary, Order, SearchScores, millionths},
};

/// Offers whose rows a batch of writes changed; the index thread reloads them after the
/// commit. Marking too much only costs a reload.
#[derive(Debug, Default)]
pub(super) struct Changes {
    offers: BTreeSet<String>,
    /// New scores of providers, by their offer's id: applied in place, as rescoring every
    /// provider would otherwise reload every offer.
    scores: Vec<(OfferId, SearchScores)>,
}

/// Rows read from SQLite and applied under the lock at a time when many offers changed, so
/// that searches never wait long and the index is never held twice in memory.
const CHUNK: usize = 4096;

impl Changes {
    /// Whether nothing that search shows changed.
    pub(super) fn is_empty(&self) -> bool {
        self.offers.is_empty() && self.scores.is_empty()
    }

    /// Adds the changes of a later commit.
    fn absorb(&mut self, later: Changes) {
        self.offers.extend(later.offers);
        self.scores.extend(later.scores);
    }

    /// The row of offer `id` (16 hex digits) may have changed, appeared or gone.
    pub(super) fn offer(&mut self, id: impl Into<String>) {
        self.offers.insert(id.into());
    }

    /// The `providers` row of `peer_id` changed: search shows provider columns with the
    /// provider's offer, whose id derives from the peer id.
    pub(super) fn provider(&mut self, peer_id: &str) {
        if let Some(id) = offer_of(peer_id) {
            self.offer(id.to_string());
        }
    }

    /// The provider's scores were stored as `scores`.
    pub(super) fn scores(&mut self, scores: &StoredScores) {
        if let Some(id) = offer_of(&scores.peer_id) {
            self.scores.push((id, scores.scores));
        }
    }
}

/// The id of the offer of the provider `peer_id`.
fn offer_of(peer_id: &str) -> Option<OfferId> {
    match peer_id.parse::<PeerId>() {
        Ok(peer) => Some(OfferId::of(&peer)),
        Err(_) => {
            tracing::warn!(%peer_id, "a stored peer id does not parse");
            None
        }
    }
}

/// The changes of the commit numbered `.0`, for the index thread.
pub(super) type Update = (u64, Changes);

/// The in-memory index of every stored offer, expired or not (pruning removes them).
#[derive(Debug)]
pub(super) struct OfferIndex {
    inner: RwLock<Inner>,
    /// The number of the last commit whose changes searches must see; raised by the writer
    /// before it answers the commit's writes.
    committed: AtomicU64,
    /// The number of the last commit whose changes the index shows.
    applied: watch::Sender<u64>,
}

impl Default for OfferIndex {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            committed: AtomicU64::new(0),
            applied: watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// One group per GPU name word list (see `search::name_words`).
    groups: Vec<Group>,
    group_of: HashMap<String, usize>,
    /// Where each offer is: group, then position in it.
    place: HashMap<OfferId, (usize, usize)>,
    /// Region and driver texts, shared by many offers.
    symbols: Symbols,
}

/// A group's offers as two parallel lists: what searches scan, and what they return.
#[derive(Debug)]
struct Group {
    words: String,
    facts: Vec<Facts>,
    summaries: Vec<OfferSummary>,
    /// Positions in each order (see [`slot`]), sorted by the first search in that order
    /// after a change to the group, so that searches stop once they have enough.
    sorted: [OnceLock<Vec<u32>>; ORDERS],
    /// The smallest and the largest known value of each number, `None` when empty.
    range: OnceLock<Option<(Facts, Facts)>>,
}

/// Sortable fields times directions.
const ORDERS: usize = 2 * SearchField::SORTABLE.len();

/// Where the positions sorted by `order` are kept: two slots per sortable field, in the
/// order of [`SearchField::SORTABLE`].
fn slot(order: Order) -> usize {
    let key = SearchField::SORTABLE.iter().position(|&field| field == order.key).unwrap_or(0);
    key * 2 + usize::from(order.descending)
}

impl Group {
    fn new(words: String) -> Self {
        Self {
            words,
            facts: Vec::new(),
            summaries: Vec::new(),
            sorted: std::array::from_fn(|_| OnceLock::new()),
            range: OnceLock::new(),
        }
    }

    /// The smallest and the largest known value of each number of the group's offers.
    fn range(&self) -> Option<&(Facts, Facts)> {
        self.range
            .get_or_init(|| {
                let (first, rest) = self.facts.split_first()?;
                let (mut low, mut high) = (*first, *first);
                let least = |a: Option<i64>, b: Option<i64>| match (a, b) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let most = |a: Option<i64>, b: Option<i64>| match (a, b) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                for f in rest {
                    // Only the latest matters: a group none of whose offers conflicts
                    // now is skipped when hidden conflicts are counted.
                    high.conflict_until = high.conflict_until.max(f.conflict_until);
                    low.price_per_hour = low.price_per_hour.min(f.price_per_hour);
                    high.price_per_hour = high.price_per_hour.max(f.price_per_hour);
                    low.gpu_ram_mb = low.gpu_ram_mb.min(f.gpu_ram_mb);
                    high.gpu_ram_mb = high.gpu_ram_mb.max(f.gpu_ram_mb);
                    low.num_gpus = low.num_gpus.min(f.num_gpus);
                    high.num_gpus = high.num_gpus.max(f.num_gpus);
                    low.first_seen = low.first_seen.min(f.first_seen);
                    high.first_seen = high.first_seen.max(f.first_seen);
                    low.cuda = least(low.cuda, f.cuda);
                    high.cuda = most(high.cuda, f.cuda);
                    low.inet_down_mbps = least(low.inet_down_mbps, f.inet_down_mbps);
                    high.inet_down_mbps = most(high.inet_down_mbps, f.inet_down_mbps);
                    low.inet_up_mbps = least(low.inet_up_mbps, f.inet_up_mbps);
                    high.inet_up_mbps = most(high.inet_up_mbps, f.inet_up_mbps);
                    low.disk_mb = least(low.disk_mb, f.disk_mb);
                    high.disk_mb = most(high.disk_mb, f.disk_mb);
                    low.cpu_cores = least(low.cpu_cores, f.cpu_cores);
                    high.cpu_cores = most(high.cpu_cores, f.cpu_cores);
                    low.cpu_ram_mb = least(low.cpu_ram_mb, f.cpu_ram_mb);
                    high.cpu_ram_mb = most(high.cpu_ram_mb, f.cpu_ram_mb);
                    low.reliability = low.reliability.min(f.reliability);
                    high.reliability = high.reliability.max(f.reliability);
                    low.uptime = least(low.uptime, f.uptime);
                    high.uptime = most(high.uptime, f.uptime);
                    low.rentals = low.rentals.min(f.rentals);
                    high.rentals = high.rentals.max(f.rentals);
                    low.completed_rentals = low.completed_rentals.min(f.completed_rentals);
                    high.completed_rentals = high.completed_rentals.max(f.completed_rentals);
                    low.sla_credits = low.sla_credits.min(f.sla_credits);
                    high.sla_credits = high.sla_credits.max(f.sla_credits);
                    low.proven_mtflops = least(low.proven_mtflops, f.proven_mtflops);
                    high.proven_mtflops = most(high.proven_mtflops, f.proven_mtflops);
                }
                Some((low, high))
            })
            .as_ref()
    }

    /// Positions of the offers, sorted by the first key of `order` (ties by offer id).
    fn sorted(&self, order: Order) -> &[u32] {
        let order = order.primary();
        self.sorted[slot(order)].get_or_init(|| {
            // Sorting copies of the keys side by side, instead of reaching into the facts
            // for every comparison, keeps the sort in cache: at a million offers this is
            // what the first search in an order after a change waits for.
            let mut keyed: Vec<(Option<i64>, u64, u32)> = (self.facts.iter().enumerate())
                .map(|(i, f)| (order.value(f), u64::from_be_bytes(f.id.to_bytes()), i as u32))
                .collect();
            keyed.sort_unstable_by(|a, b| {
                order.compare_primary_values(a.0, b.0).then(a.1.cmp(&b.1))
            });
            keyed.into_iter().map(|(_, _, position)| position).collect()
        })
    }

    /// Forgets the sorted positions, after a change.
    fn changed(&mut self) {
        self.sorted = std::array::from_fn(|_| OnceLock::new());
        self.range = OnceLock::new();
    }
}

/// Interned texts, counted so that texts no offer uses any more are dropped.
#[derive(Debug, Default)]
struct Symbols {
    texts: Vec<(String, usize)>,
    ids: HashMap<String, u32>,
    free: Vec<u32>,
}

impl Symbols {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            self.texts[id as usize].1 += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.texts[id as usize] = (text.to_owned(), 1);
                id
            }
            None => {
                self.texts.push((text.to_owned(), 1));
                u32::try_from(self.texts.len() - 1).expect("fewer texts than offers")
            }
        };
        self.ids.insert(text.to_owned(), id);
        id
    }

    fn release(&mut self, id: u32) {
        let (text, uses) = &mut self.texts[id as usize];
        *uses -= 1;
        if *uses == 0 {
            self.ids.remove(text.as_str());
            text.clear();
            self.free.push(id);
        }
    }

    fn text(&self, id: u32) -> &str {
        &self.texts[id as usize].0
    }
}

/// One offer as read from SQLite.
struct Loaded {
    words: String,
    summary: OfferSummary,
    cuda: Option<i64>,
    conflict_until: i64,
}

impl OfferIndex {
    /// Numbers a commit whose changes searches must see from now on; the writer calls it
    /// before answering the commit's writes, and then hands the changes to [`Self::follow`].
    pub(super) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, AtomicOrdering::SeqCst) + 1
    }

    /// Waits until the index shows every commit numbered before the call.
    pub(super) async fn caught_up(&self) {
        let target = self.committed.load(AtomicOrdering::SeqCst);
        let mut applied = self.applied.subscribe();
        // Fails only if the sender, which lives as long as `self`, is gone.
        let _ = applied.wait_for(|applied| *applied >= target).await;
    }

    /// The index thread: applies each commit's changes in order, reading the rows through
    /// `conn`, until the writer stops. Updates queued meanwhile are applied together.
    pub(super) fn follow(&self, conn: &Connection, updates: mpsc::Receiver<Update>) {
        /// Should this thread end, even by a panic, searches must not wait for it forever.
        struct Release<'a>(&'a watch::Sender<u64>);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.send_replace(u64::MAX);
            }
        }
        let _release = Release(&self.applied);
        while let Ok((mut number, mut changes)) = updates.recv() {
            while let Ok((later, more)) = updates.try_recv() {
                number = later;
                changes.absorb(more);
            }
            if let Err(e) = self.refresh(conn, &changes) {
                tracing::error!(error = %e, "cannot update the search index; reloading it");
                if let Err(e) = self.reload(conn) {
                    tracing::error!(error = %e, "cannot reload the search index");
                }
            }
            self.applied.send_replace(number);
        }
    }

    /// Holds the index as a search does, until the guard is dropped.
    #[cfg(test)]
    pub(super) fn read_guard(&self) -> impl Sized + '_ {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reloads what `changes` names from `conn`, which must see the committed rows.
    fn refresh(&self, conn: &Connection, changes: &Changes) -> Result<(), StoreError> {
        for scores in changes.scores.chunks(CHUNK) {
            let mut inner = self.write();
            for &(id, scores) in scores {
                if let Some(&(group, position)) = inner.place.get(&id) {
                    let group = &mut inner.groups[group];
                    let summary = &mut group.summaries[position];
                    summary.reliability = scores.reliability;
                    summary.uptime = scores.uptime;
                    summary.rentals = scores.rentals;
                    summary.completed_rentals = scores.completed_rentals;
                    summary.sla_credits = scores.sla_credits;
                    // Search filters and sorts on the scores: a change re-sorts the group.
                    if group.facts[position].set_scores(scores) {
                        group.changed();
                    }
                }
            }
        }
        if changes.offers.is_empty() {
            // Heartbeats, probes, chain updates: nothing search shows.
            return Ok(());
        }
        if changes.offers.len() > CHUNK {
            return self.reload(conn);
        }
        // Read outside the lock; searches wait only for the updates below.
        let mut rows = Vec::new();
        for id in &changes.offers {
            select(conn, "WHERE id = ?1", [id], |row| {
                rows.push(row);
                Ok(())
            })?;
        }
        let found: HashSet<OfferId> = rows.iter().map(|row| row.summary.id).collect();
        let mut inner = self.write();
        for id in changes.offers.iter().filter_map(|id| id.parse().ok()) {
            if !found.contains(&id) {
                inner.remove(id);
            }
        }
        for row in rows {
            inner.insert(row);
        }
        Ok(())
    }

    /// Brings the whole index in line with `conn`, a chunk of rows at a time.
    pub(super) fn reload(&self, conn: &Connection) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        select(conn, "", (), |row| {
            seen.insert(row.summary.id);
            chunk.push(row);
            if chunk.len() == CHUNK {
                let mut inner = self.write();
                chunk.drain(..).for_each(|row| inner.insert(row));
            }
            Ok(())
        })?;
        let mut inner = self.write();
        chunk.drain(..).for_each(|row| inner.insert(row));
        let gone: Vec<OfferId> =
            inner.place.keys().filter(|id| !seen.contains(*id)).copied().collect();
        gone.into_iter().for_each(|id| inner.remove(id));
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// One page of the offers live at `now` that match `search`.
    pub(super) fn search(&self, search: &Search, now: u64) -> Page {
        let now = clamp(now);
        let query = &search.query;
        let order = search.order;
        // With one key the group's sorted positions are in the search's whole order.
        let one_key = order == order.primary();
        let hide_conflicts = !search.include_conflicts && !query.mentions_conflicts();
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let symbols = &inner.symbols;
        let text = |id| symbols.text(id);
        // The first `wanted` matches in the order, worst on top; one more than asked tells
        // whether there is a next page.
        let wanted = search.limit as usize + 1;
        let mut best: BinaryHeap<Ranked<'_>> = BinaryHeap::with_capacity(wanted + 1);
        for group in inner.groups.iter().filter(|g| query.matches_name(&g.words)) {
            match group.range() {
                Some((low, high)) if !query.rules_out(low, high, now) => {}
                _ => continue,
            }
            // Sorted on the first key: what sorts before the cursor's first value was on
            // earlier pages, and so was what ties with it but the cursor's offer preceded.
            let sorted = group.sorted(order);
            let start = search.after.as_ref().map_or(0, |after| {
                sorted.partition_point(|&i| after.passed(&group.facts[i as usize]))
            });
            for &i in &sorted[start..] {
                let (facts, summary) = (&group.facts[i as usize], &group.summaries[i as usize]);
                if facts.expires_at <= now || (hide_conflicts && facts.conflicts(now)) {
                    continue;
                }
                if search.after.as_ref().is_some_and(|after| !after.precedes(facts)) {
                    continue;
                }
                let hit = Ranked { order, facts, summary };
                // Once there are enough, what sorts later on the first key is out; what
                // ties on it may still win on the others.
                let full = best.len() == wanted;
                if let Some(worst) = best.peek().filter(|_| full) {
                    if order.compare_primary(facts, worst.facts).is_gt()
                        || (one_key && hit >= *worst)
                    {
                        break;
                    }
                    if hit >= *worst {
                        continue;
                    }
                }
                if !query.matches(Candidate { facts, text: &text, summary }, now) {
                    continue;
                }
                if full {
                    if let Some(mut worst) = best.peek_mut() {
                        *worst = hit;
                    }
                } else {
                    best.push(hit);
                }
            }
        }
        // What matched but is hidden: conflicts are few, and only the groups where one
        // lasts until after now are read again.
        let mut hidden_conflicts = 0u32;
        if hide_conflicts {
            let conflicted =
                |g: &&Group| g.range().is_some_and(|(_, high)| high.conflict_until > now);
            let groups = inner.groups.iter().filter(conflicted);
            for group in groups.filter(|g| query.matches_name(&g.words)) {
                for (facts, summary) in group.facts.iter().zip(&group.summaries) {
                    if facts.conflicts(now)
                        && facts.expires_at > now
                        && query.matches(Candidate { facts, text: &text, summary }, now)
                    {
                        hidden_conflicts += 1;
                    }
                }
            }
        }
        let mut hits = best.into_sorted_vec();
        let next = if hits.len() > search.limit as usize {
            hits.truncate(search.limit as usize);
            hits.last().map(|last| Cursor::after(order, last.facts))
        } else {
            None
        };
        let offers = hits
            .into_iter()
            .map(|hit| OfferSummary { conflicts: hit.facts.conflicts(now), ..hit.summary.clone() })
            .collect();
        Page { offers, next, hidden_conflicts }
    }
}

impl OfferIndex {
    /// The `seq` of each offer of `ids` that the index holds, live or expired.
    pub(super) fn held_seqs(&self, ids: &[OfferId]) -> Vec<Option<u64>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        ids.iter()
            .map(|id| {
                let &(group, position) = inner.place.get(id)?;
                Some(inner.groups[group].summaries[position].seq)
            })
            .collect()
    }

    /// The offers live at `now`, summed up per GPU model and per reliability decile;
    /// conflicting offers are counted apart, as search hides them.
    pub(super) fn network(&self, now: u64) -> NetworkStats {
        let now_i = clamp(now);
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut models: HashMap<&str, (u64, u64, Vec<i64>)> = HashMap::new();
        let mut reliability = vec![0u64; 10];
        let (mut offers, mut gpus, mut hidden_conflicts) = (0u64, 0u64, 0u64);
        for group in &inner.groups {
            for (facts, summary) in group.facts.iter().zip(&group.summaries) {
                if facts.expires_at <= now_i || facts.num_gpus <= 0 {
                    continue;
                }
                if facts.conflicts(now_i) {
                    hidden_conflicts += 1;
                    continue;
                }
                let count = facts.num_gpus.unsigned_abs();
                let model = models.entry(summary.gpu_name.as_str()).or_default();
                model.0 += 1;
                model.1 += count;
                model.2.push(facts.price_per_hour / facts.num_gpus);
                let decile = (facts.reliability.clamp(0, 1_000_000) / 100_000).min(9);
                reliability[decile as usize] += 1;
                offers += 1;
                gpus += count;
            }
        }
        let mut models: Vec<ModelStats> = models
            .into_iter()
            .map(|(name, (offers, gpus, prices))| ModelStats {
                gpu_name: name.to_owned(),
                offers,
                gpus,
                price_per_gpu_hour: spread(prices),
            })
            .collect();
        models.sort_by(|a, b| b.gpus.cmp(&a.gpus).then_with(|| a.gpu_name.cmp(&b.gpu_name)));
        NetworkStats { now, offers, gpus, models, reliability, hidden_conflicts }
    }
}

/// The lowest, quartiles, median and highest of `prices` (not empty), each by the nearest
/// rank, so that each is a price some offer asks.
fn spread(mut prices: Vec<i64>) -> PriceSpread {
    prices.sort_unstable();
    let rank = |percent: usize| {
        // Nearest rank: the smallest value with at least `percent` % at or below it.
        let n = prices.len();
        let index = (percent * n).div_ceil(100).clamp(1, n) - 1;
        prices[index].to_string()
    };
    PriceSpread { min: rank(0), p25: rank(25), median: rank(50), p75: rank(75), max: rank(100) }
}

/// A search hit, ordered by the search's order.
struct Ranked<'a> {
    order: Order,
    facts: &'a Facts,
    summary: &'a OfferSummary,
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked<'_> {}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order.compare(self.facts, other.facts)
    }
}

impl Inner {
    fn insert(&mut self, row: Loaded) {
        let Loaded { words, summary, cuda, conflict_until } = row;
        let id = summary.id;
        if let Some(&(group, position)) = self.place.get(&id) {
            let (group, facts) = (&self.groups[group], &self.groups[group].facts[position]);
            // Most reloads change nothing (a rescore that moved no score): keep the memory.
            if group.words == words
                && (facts.cuda, facts.conflict_until) == (cuda, conflict_until)
                && group.summaries[position] == summary
            {
                return;
            }
        }
        let stored = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let facts = Facts {
            id,
            price_per_hour: i64::try_from(summary.price_per_hour).unwrap_or(i64::MAX),
            gpu_ram_mb: stored(summary.gpu_ram_mb),
            num_gpus: i64::from(summary.num_gpus),
            first_seen: stored(summary.first_seen),
            expires_at: stored(summary.expires_at),
            conflict_until,
            cuda,
            inet_down_mbps: summary.inet_down_mbps.map(stored),
            inet_up_mbps: summary.inet_up_mbps.map(stored),
            disk_mb: summary.disk_mb.map(stored),
            cpu_cores: summary.cpu_cores.map(stored),
            cpu_ram_mb: summary.cpu_ram_mb.map(stored),
            reliability: millionths(summary.reliability),
            uptime: summary.uptime.map(millionths),
            rentals: stored(summary.rentals),
            completed_rentals: stored(summary.completed_rentals),
            sla_credits: stored(summary.sla_credits),
            proven_mtflops: summary.proven_tflops.map(|t| (t * 1000.0).floor() as i64),
            challenge_ok: summary.challenge_ok == Some(true),
            region: self.symbols.intern(&summary.region),
            driver: self.symbols.intern(&summary.driver),
            verified: summary.verified,
        };
        if let Some(&(group, position)) = self.place.get(&id) {
            if self.groups[group].words == words {
                let old = std::mem::replace(&mut self.groups[group].facts[position], facts);
                self.groups[group].summaries[position] = summary;
                self.groups[group].changed();
                self.symbols.release(old.region);
                self.symbols.release(old.driver);
                return;
            }
            self.remove(id);
        }
        let group = match self.group_of.get(&words) {
            Some(&group) => group,
            None => {
                self.groups.push(Group::new(words.clone()));
                self.group_of.insert(words, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let offers = &mut self.groups[group];
        offers.facts.push(facts);
        offers.summaries.push(summary);
        offers.changed();
        self.place.insert(id, (group, offers.facts.len() - 1));
    }

    fn remove(&mut self, id: OfferId) {
        let Some((group, position)) = self.place.remove(&id) else {
            return;
        };
        let offers = &mut self.groups[group];
        let old = offers.facts.swap_remove(position);
        offers.summaries.swap_remove(position);
        offers.changed();
        if let Some(moved) = offers.facts.get(position) {
            self.place.insert(moved.id, (group, position));
        }
        self.symbols.release(old.region);
        self.symbols.release(old.driver);
    }
}

/// Reads the offers (with their providers) selected by `filter`, handing each to `each`.
fn select<P: rusqlite::Params>(
    conn: &Connection,
    filter: &str,
    params: P,
    mut each: impl FnMut(Loaded) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {}, 0 AS conflicts, gpu_name_words, cuda, conflict_until \
         FROM offers JOIN providers USING (peer_id) {filter}",
        reader::SUMMARY_COLUMNS
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params)?;
    while let Some(row) = rows.next()? {
        each(loaded(row)?)?;
    }
    Ok(())
}

fn loaded(row: &Row<'_>) -> rusqlite::Result<Loaded> {
    Ok(Loaded {
        words: row.get("gpu_name_words")?,
        summary: reader::summary_from_row(row)?,
        cuda: row.get("cuda")?,
        conflict_until: row.get("conflict_until")?,
    })
}
