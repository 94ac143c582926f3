//! The search index: every stored offer's searchable facts in memory, grouped by GPU name,
//! so that a search scans the compact [`Facts`] of the few groups whose name matches
//! instead of querying a table many times the size of SQLite's page cache.
//!
//! The index holds what a search compares and sorts on, and no more: a page's offers are
//! read back from SQLite by id once the search has chosen them ([`Matched`]), so that a
//! million offers fit in a few hundred megabytes. Each group keeps its offers sorted in
//! the orders searches asked for, sorted by the index thread outside the lock and moved
//! one by one as offers change (or sorted again after a large batch). A search never sorts:
//! until its order is sorted, it scans the group.
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
    borrow::Borrow,
    cmp::Ordering,
    collections::{BTreeSet, BinaryHeap, HashMap, HashSet},
    hash::Hash,
    sync::{
        OnceLock, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering},
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

use super::{Search, StoredScores, clamp, reader};
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

/// Longest time the index thread waits for changes before it sorts the orders searches
/// asked for.
const SORT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

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
    /// Region, driver and GPU name texts, shared by many offers.
    symbols: Symbols<String>,
    /// Image lists, shared by many offers.
    lists: Symbols<Vec<String>>,
}

/// A group's offers as two parallel lists: what searches sort and compare, and what
/// rarer conditions and other readers need.
#[derive(Debug)]
struct Group {
    words: String,
    facts: Vec<Facts>,
    beside: Vec<Beside>,
    /// Positions in each order (see [`slot`]), sorted by the index thread once a search
    /// asked for that order, so that later searches stop once they have enough; kept in
    /// step with every change from then on.
    sorted: [OnceLock<Vec<u32>>; ORDERS],
    /// The orders searches asked for: the index thread sorts those it does not hold.
    wanted: [AtomicBool; ORDERS],
    /// Offers moved in the sorted orders one by one since the index thread's last batch
    /// began (see [`edit_budget`]).
    edits: usize,
    /// The smallest and the largest known value of each number, `None` when empty.
    range: OnceLock<Option<(Facts, Facts)>>,
}

/// What the index keeps of an offer beside its [`Facts`]: what `payout` and `image`
/// conditions read, the network's per-model figures, and the sync's known seqs.
#[derive(Debug, PartialEq)]
struct Beside {
    seq: u64,
    /// Interned in [`Inner::symbols`].
    gpu_name: u32,
    /// Interned in [`Inner::lists`].
    images: u32,
    allowed_images: u32,
    payout: Box<str>,
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
            beside: Vec::new(),
            sorted: std::array::from_fn(|_| OnceLock::new()),
            wanted: std::array::from_fn(|_| AtomicBool::new(false)),
            edits: 0,
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

    /// Positions of the offers sorted by the first key of `order` (ties by offer id), if
    /// the index holds them; else `None`, and the index thread is asked to sort them.
    fn sorted(&self, order: Order) -> Option<&[u32]> {
        let slot = slot(order.primary());
        let sorted = self.sorted[slot].get().map(Vec::as_slice);
        if sorted.is_none() {
            self.wanted[slot].store(true, AtomicOrdering::Relaxed);
        }
        sorted
    }

    /// Each offer's place in the one-key `order`, as plain integers beside its position:
    /// what [`sort`] sorts, outside the index's lock.
    fn keys(&self, order: Order) -> Vec<((bool, u64, u64), u32)> {
        let keyed = self.facts.iter().enumerate();
        keyed.map(|(position, f)| (sort_key(order, f), position as u32)).collect()
    }

    /// The slots of the orders searches asked for that the group does not hold sorted.
    fn unsorted_wanted(&self) -> impl Iterator<Item = usize> + '_ {
        (0..ORDERS).filter(|&slot| {
            self.wanted[slot].load(AtomicOrdering::Relaxed) && self.sorted[slot].get().is_none()
        })
    }

    /// Adds an offer, placing it in each sorted order.
    fn push(&mut self, facts: Facts, beside: Beside) -> usize {
        self.facts.push(facts);
        self.beside.push(beside);
        let position = self.facts.len() - 1;
        if self.within_budget(&|_| true) {
            self.edit_orders(position, Edit::Put, &|_| true);
        }
        self.range = OnceLock::new();
        position
    }

    /// Removes the offer at `position`; the last offer takes its place.
    fn swap_remove(&mut self, position: usize) -> (Facts, Beside) {
        let last = self.facts.len() - 1;
        if self.within_budget(&|_| true) {
            self.edit_orders(position, Edit::Take, &|_| true);
            if position != last {
                self.edit_orders(last, Edit::Rename(position), &|_| true);
            }
        }
        self.range = OnceLock::new();
        (self.facts.swap_remove(position), self.beside.swap_remove(position))
    }

    /// Sets the offer at `position` to `facts`, moving it in the orders whose value
    /// changed; answers the old facts.
    fn set_facts(&mut self, position: usize, facts: Facts) -> Facts {
        let old = self.facts[position];
        if old == facts {
            return old;
        }
        let moved = |order: Order| order.value(&old) != order.value(&facts);
        let sorted_moved =
            (0..ORDERS).any(|s| self.sorted[s].get().is_some() && moved(order_of(s)));
        let edit = sorted_moved && self.within_budget(&moved);
        if edit {
            self.edit_orders(position, Edit::Take, &moved);
        }
        self.facts[position] = facts;
        if edit {
            self.edit_orders(position, Edit::Put, &moved);
        }
        self.range = OnceLock::new();
        old
    }

    /// Counts an edit of the sorted orders `moves` names; past the budget, forgets them
    /// instead, for the index thread to sort again once the batch is applied.
    fn within_budget(&mut self, moves: &dyn Fn(Order) -> bool) -> bool {
        self.edits += 1;
        if self.edits <= edit_budget(self.facts.len()) {
            return true;
        }
        for (slot, sorted) in self.sorted.iter_mut().enumerate() {
            if moves(order_of(slot)) && sorted.take().is_some() {
                self.wanted[slot].store(true, AtomicOrdering::Relaxed);
            }
        }
        false
    }

    /// Applies `edit` to the offer at `position` in each sorted order `moves` names, where
    /// the offer's current facts place it.
    fn edit_orders(&mut self, position: usize, edit: Edit, moves: &dyn Fn(Order) -> bool) {
        let facts = &self.facts;
        for (slot, sorted) in self.sorted.iter_mut().enumerate() {
            let order = order_of(slot);
            let Some(positions) = sorted.get_mut().filter(|_| moves(order)) else {
                continue;
            };
            let key = sort_key(order, &facts[position]);
            let at = positions.partition_point(|&i| sort_key(order, &facts[i as usize]) < key);
            match edit {
                Edit::Put => positions.insert(at, position as u32),
                Edit::Take => {
                    debug_assert_eq!(positions.get(at), Some(&(position as u32)));
                    positions.remove(at);
                }
                Edit::Rename(to) => positions[at] = to as u32,
            }
        }
    }
}

/// Positions sorted by the keys [`Group::keys`] gave them.
fn sort(mut keyed: Vec<((bool, u64, u64), u32)>) -> Vec<u32> {
    // Plain integers side by side: a sort that stays in cache.
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, position)| position).collect()
}

/// What [`Group::edit_orders`] does to an offer's place in an order.
#[derive(Clone, Copy)]
enum Edit {
    /// Insert it.
    Put,
    /// Remove it.
    Take,
    /// It now lives at another position.
    Rename(usize),
}

/// Offers a group moves one by one in its sorted orders in one batch of updates, for
/// `len` offers; more, and it sorts them again instead. One move shifts part of each order
/// (`O(len)`), a sort costs `O(len log len)`.
fn edit_budget(len: usize) -> usize {
    16 + len / 64
}

/// Where `offer` goes in the one-key `order`: by value, unknown values last, then by id.
fn sort_key(order: Order, offer: &Facts) -> (bool, u64, u64) {
    let rank = order.primary_rank(order.value(offer));
    (rank.is_none(), rank.unwrap_or(0), u64::from_be_bytes(offer.id.to_bytes()))
}

/// The one-key order kept in `slot` (see [`slot`]).
fn order_of(slot: usize) -> Order {
    Order { key: SearchField::SORTABLE[slot / 2], descending: slot % 2 == 1, ..Order::default() }
}

/// Interned values (texts, image lists), counted so that values no offer uses any more
/// are dropped.
#[derive(Debug)]
struct Symbols<T> {
    values: Vec<(T, usize)>,
    ids: HashMap<T, u32>,
    free: Vec<u32>,
}

impl<T> Default for Symbols<T> {
    fn default() -> Self {
        Self { values: Vec::new(), ids: HashMap::new(), free: Vec::new() }
    }
}

impl<T: Clone + Default + Eq + Hash> Symbols<T> {
    fn intern<Q>(&mut self, value: &Q) -> u32
    where
        Q: ToOwned<Owned = T> + Eq + Hash + ?Sized,
        T: Borrow<Q>,
    {
        if let Some(&id) = self.ids.get(value) {
            self.values[id as usize].1 += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.values[id as usize] = (value.to_owned(), 1);
                id
            }
            None => {
                self.values.push((value.to_owned(), 1));
                u32::try_from(self.values.len() - 1).expect("fewer values than offers")
            }
        };
        self.ids.insert(value.to_owned(), id);
        id
    }

    fn release(&mut self, id: u32) {
        let (value, uses) = &mut self.values[id as usize];
        *uses -= 1;
        if *uses == 0 {
            self.ids.remove(value);
            *value = T::default();
            self.free.push(id);
        }
    }

    fn get(&self, id: u32) -> &T {
        &self.values[id as usize].0
    }
}

/// One offer as read from SQLite.
struct Loaded {
    words: String,
    summary: OfferSummary,
    cuda: Option<i64>,
    conflict_until: i64,
}

/// The offers a search chose, in order, by id: the store reads their summaries.
#[derive(Debug)]
pub(super) struct Matched {
    /// Each offer's id, and whether it shares a GPU UUID with another live offer.
    pub(super) offers: Vec<(OfferId, bool)>,
    pub(super) next: Option<Cursor>,
    pub(super) hidden_conflicts: u32,
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
        loop {
            match updates.recv_timeout(SORT_EVERY) {
                Ok((mut number, mut changes)) => {
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
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            self.sort_wanted();
        }
    }

    /// Sorts the orders searches asked for that the index does not hold sorted (never
    /// asked before, or forgotten after a large batch of changes). Only this thread
    /// changes the index, so the positions stay valid while it sorts them outside the
    /// lock: searches meanwhile scan the group unsorted, and never wait for a sort.
    fn sort_wanted(&self) {
        let read = || self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let groups = read().groups.len();
        for group in 0..groups {
            let slots: Vec<usize> = read().groups[group].unsorted_wanted().collect();
            for slot in slots {
                let keyed = read().groups[group].keys(order_of(slot));
                let sorted = sort(keyed);
                // Cannot be set already: this thread alone sets it.
                let _ = read().groups[group].sorted[slot].set(sorted);
            }
            // The value ranges, too, before a search has to compute them.
            read().groups[group].range();
        }
    }

    /// Holds the index as a search does, until the guard is dropped.
    #[cfg(test)]
    pub(super) fn read_guard(&self) -> impl Sized + '_ {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reloads what `changes` names from `conn`, which must see the committed rows.
    fn refresh(&self, conn: &Connection, changes: &Changes) -> Result<(), StoreError> {
        self.write().groups.iter_mut().for_each(|group| group.edits = 0);
        for scores in changes.scores.chunks(CHUNK) {
            let mut inner = self.write();
            for &(id, scores) in scores {
                if let Some(&(group, position)) = inner.place.get(&id) {
                    // Search filters and sorts on the scores: a change moves the offer in
                    // the orders on them, and only those.
                    let group = &mut inner.groups[group];
                    let mut facts = group.facts[position];
                    if facts.set_scores(scores) {
                        group.set_facts(position, facts);
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

    /// One page of the offers live at `now` that match `search`, by id.
    pub(super) fn search(&self, search: &Search, now: u64) -> Matched {
        let now = clamp(now);
        let query = &search.query;
        let order = search.order;
        // With one key the group's sorted positions are in the search's whole order.
        let one_key = order == order.primary();
        let hide_conflicts = !search.include_conflicts && !query.mentions_conflicts();
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let (symbols, lists) = (&inner.symbols, &inner.lists);
        let text = |id| symbols.get(id).as_str();
        let candidate = |facts, beside| candidate(facts, beside, &text, lists);
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
            // Until the index thread has sorted the group in this order, the whole group is
            // scanned instead, which costs more than a walk but far less than a sort.
            let sorted = group.sorted(order);
            let positions: Box<dyn Iterator<Item = u32>> = match sorted {
                Some(sorted) => {
                    let start = search.after.as_ref().map_or(0, |after| {
                        sorted.partition_point(|&i| after.passed(&group.facts[i as usize]))
                    });
                    Box::new(sorted[start..].iter().copied())
                }
                None => Box::new(0..group.facts.len() as u32),
            };
            for i in positions {
                let facts = &group.facts[i as usize];
                if facts.expires_at <= now || (hide_conflicts && facts.conflicts(now)) {
                    continue;
                }
                if search.after.as_ref().is_some_and(|after| !after.precedes(facts)) {
                    continue;
                }
                let hit = Ranked { order, facts };
                // Once there are enough, what sorts later on the first key is out; what
                // ties on it may still win on the others.
                let full = best.len() == wanted;
                if let Some(worst) = best.peek().filter(|_| full) {
                    if sorted.is_some()
                        && (order.compare_primary(facts, worst.facts).is_gt()
                            || (one_key && hit >= *worst))
                    {
                        break;
                    }
                    if hit >= *worst {
                        continue;
                    }
                }
                if !query.matches(candidate(facts, &group.beside[i as usize]), now) {
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
                for (facts, beside) in group.facts.iter().zip(&group.beside) {
                    if facts.conflicts(now)
                        && facts.expires_at > now
                        && query.matches(candidate(facts, beside), now)
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
        let offers = hits.into_iter().map(|hit| (hit.facts.id, hit.facts.conflicts(now))).collect();
        Matched { offers, next, hidden_conflicts }
    }
}

impl OfferIndex {
    /// The `seq` of each offer of `ids` that the index holds, live or expired.
    pub(super) fn held_seqs(&self, ids: &[OfferId]) -> Vec<Option<u64>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        ids.iter()
            .map(|id| {
                let &(group, position) = inner.place.get(id)?;
                Some(inner.groups[group].beside[position].seq)
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
            for (facts, beside) in group.facts.iter().zip(&group.beside) {
                if facts.expires_at <= now_i || facts.num_gpus <= 0 {
                    continue;
                }
                if facts.conflicts(now_i) {
                    hidden_conflicts += 1;
                    continue;
                }
                let count = facts.num_gpus.unsigned_abs();
                let model = models.entry(inner.symbols.get(beside.gpu_name)).or_default();
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

/// Offer `facts` as a query sees it.
fn candidate<'a>(
    facts: &'a Facts,
    beside: &'a Beside,
    text: &'a dyn Fn(u32) -> &'a str,
    lists: &'a Symbols<Vec<String>>,
) -> Candidate<'a> {
    Candidate {
        facts,
        text,
        payout: &beside.payout,
        images: lists.get(beside.images),
        allowed_images: lists.get(beside.allowed_images),
    }
}

/// A search hit, ordered by the search's order.
struct Ranked<'a> {
    order: Order,
    facts: &'a Facts,
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
            region: self.symbols.intern(summary.region.as_str()),
            driver: self.symbols.intern(summary.driver.as_str()),
            verified: summary.verified,
        };
        let beside = Beside {
            seq: summary.seq,
            gpu_name: self.symbols.intern(summary.gpu_name.as_str()),
            images: self.lists.intern(summary.images.as_slice()),
            allowed_images: self.lists.intern(summary.allowed_images.as_slice()),
            payout: summary.payout.into_boxed_str(),
        };
        if let Some(&(group, position)) = self.place.get(&id) {
            if self.groups[group].words == words {
                // Most reloads change nothing (a rescore that moved no score), and most
                // changes move the offer in few orders: the others stay sorted.
                let group = &mut self.groups[group];
                let old_facts = group.set_facts(position, facts);
                let old_beside = std::mem::replace(&mut group.beside[position], beside);
                self.release(&old_facts, &old_beside);
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
        let position = self.groups[group].push(facts, beside);
        self.place.insert(id, (group, position));
    }

    fn remove(&mut self, id: OfferId) {
        let Some((group, position)) = self.place.remove(&id) else {
            return;
        };
        let offers = &mut self.groups[group];
        let (old_facts, old_beside) = offers.swap_remove(position);
        if let Some(moved) = offers.facts.get(position) {
            self.place.insert(moved.id, (group, position));
        }
        self.release(&old_facts, &old_beside);
    }

    /// Releases the interned values an offer's old entry used.
    fn release(&mut self, facts: &Facts, beside: &Beside) {
        self.symbols.release(facts.region);
        self.symbols.release(facts.driver);
        self.symbols.release(beside.gpu_name);
        self.lists.release(beside.images);
        self.lists.release(beside.allowed_images);
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

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

    use super::*;

    impl Group {
        /// Sorts the orders asked for, as the index thread does.
        fn sort_wanted(&self) {
            for slot in self.unsorted_wanted().collect::<Vec<_>>() {
                self.sorted[slot].set(sort(self.keys(order_of(slot)))).unwrap();
            }
        }
    }

    /// An offer of `gpu_name` with id `id` and numbers drawn from `rng`, some unknown.
    fn loaded(rng: &mut StdRng, id: u64, gpu_name: &str) -> Loaded {
        let maybe = |rng: &mut StdRng, most: u64| rng.gen_bool(0.8).then(|| rng.gen_range(0..most));
        let images = [vec![], vec!["pytorch/pytorch:2.3".to_owned()]];
        Loaded {
            words: crate::search::name_words(gpu_name),
            summary: OfferSummary {
                id: format!("{id:016x}").parse().expect("16 hex digits"),
                peer_id: format!("peer-{id}"),
                payout: format!("0x{id:040x}"),
                gpu_name: gpu_name.into(),
                num_gpus: rng.gen_range(1..9),
                gpu_ram_mb: rng.gen_range(1..4) * 16_000,
                price_per_second: 1,
                // Few distinct prices: many ties for the id to break.
                price_per_hour: u128::from(rng.gen_range(1..20u32)) * 1_000,
                verified: rng.gen_bool(0.5),
                region: ["EU", "US"].choose(rng).expect("two").to_string(),
                cuda: "12.4".into(),
                driver: "550".into(),
                listen_addrs: Vec::new(),
                seq: rng.gen_range(1..100),
                issued_at: 1_000,
                expires_at: 1_000_000,
                first_seen: rng.gen_range(1..1_000),
                conflicts: false,
                inet_down_mbps: maybe(rng, 10),
                inet_up_mbps: maybe(rng, 10_000),
                disk_mb: maybe(rng, 10),
                cpu_cores: maybe(rng, 64),
                cpu_ram_mb: maybe(rng, 10),
                reliability: rng.gen_range(0.0..1.0),
                uptime: rng.gen_bool(0.5).then(|| rng.gen_range(0.0..1.0)),
                rentals: rng.gen_range(0..5),
                completed_rentals: rng.gen_range(0..5),
                sla_credits: rng.gen_range(0..3),
                proven_tflops: rng.gen_bool(0.3).then(|| rng.gen_range(0.0..1000.0)),
                challenge_ok: None,
                images: images.choose(rng).expect("two").clone(),
                allowed_images: Vec::new(),
            },
            cuda: Some(12_400),
            conflict_until: 0,
        }
    }

    /// Every order a group keeps sorted holds each offer once, in the order's place, as
    /// a sort from scratch by [`Order::compare`] puts them.
    fn assert_sorted(group: &Group) {
        for slot in 0..ORDERS {
            let Some(positions) = group.sorted[slot].get() else {
                continue;
            };
            let order = order_of(slot);
            let mut expected: Vec<u32> = (0..group.facts.len() as u32).collect();
            expected.sort_by(|&a, &b| {
                order.compare(&group.facts[a as usize], &group.facts[b as usize])
            });
            assert_eq!(positions, &expected, "order {order}");
        }
    }

    #[test]
    fn sorted_orders_follow_every_change_one_by_one_or_sorted_again() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut inner = Inner::default();
        let mut next_id = 0u64;
        for _ in 0..400 {
            inner.insert(loaded(&mut rng, next_id, "H100"));
            next_id += 1;
        }
        for slot in 0..ORDERS {
            assert!(inner.groups[0].sorted(order_of(slot)).is_none(), "asked for, not sorted");
        }
        inner.groups[0].sort_wanted();
        assert!((0..ORDERS).all(|slot| inner.groups[0].sorted(order_of(slot)).is_some()));
        assert_sorted(&inner.groups[0]);
        // Small batches are edited in place; the large ones pass the budget and the
        // forgotten orders are sorted again as the index thread does after a batch.
        for batch in [1, 3, 10, 20, 200, 5, 400] {
            inner.groups[0].edits = 0;
            let mut edited_in_place = true;
            for _ in 0..batch {
                let ids: Vec<OfferId> = inner.place.keys().copied().collect();
                match rng.gen_range(0..3) {
                    0 => {
                        inner.insert(loaded(&mut rng, next_id, "H100"));
                        next_id += 1;
                    }
                    1 => {
                        let id = u64::from_be_bytes(ids.choose(&mut rng).unwrap().to_bytes());
                        inner.insert(loaded(&mut rng, id, "H100"));
                    }
                    _ => inner.remove(*ids.choose(&mut rng).unwrap()),
                }
                edited_in_place &=
                    (0..ORDERS).all(|slot| inner.groups[0].sorted[slot].get().is_some());
                assert_sorted(&inner.groups[0]);
            }
            assert_eq!(edited_in_place, batch <= edit_budget(400), "batch of {batch}");
            inner.groups[0].sort_wanted();
            assert!((0..ORDERS).all(|slot| inner.groups[0].sorted[slot].get().is_some()));
            assert_sorted(&inner.groups[0]);
            let group = &inner.groups[0];
            for (position, facts) in group.facts.iter().enumerate() {
                assert_eq!(inner.place[&facts.id], (0, position));
            }
        }
    }

    /// Every page of `query` in `order`, `limit` a page, as the index answers it now.
    fn pages(index: &OfferIndex, query: &str, order: &str, limit: u32) -> Vec<Vec<OfferId>> {
        let order: Order = order.parse().unwrap();
        let mut search = Search {
            query: crate::search::Query::parse(query, 6).unwrap(),
            order,
            limit,
            after: None,
            include_conflicts: false,
        };
        let mut pages = Vec::new();
        loop {
            let matched = index.search(&search, 1_000);
            pages.push(matched.offers.iter().map(|(id, _)| *id).collect());
            match matched.next {
                Some(next) => search.after = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn a_search_scans_what_is_not_sorted_yet_and_answers_the_same_pages() {
        let mut rng = StdRng::seed_from_u64(10);
        let index = OfferIndex::default();
        {
            let mut inner = index.write();
            for id in 0..600 {
                let name = ["H100", "A100"].choose(&mut rng).unwrap();
                inner.insert(loaded(&mut rng, id, name));
            }
        }
        let searches = [
            ("", "dph"),
            ("gpu_name=H100 num_gpus>=2", "inet_down-"),
            ("region=EU", "cpu_ram,dph-"),
            ("verified=true", "proven_tflops-"),
            ("dph<=10", "reliability-,age_days"),
        ];
        for (query, order) in searches {
            let scanned = pages(&index, query, order, 7);
            assert!(scanned.len() > 2, "{query} {order}: several pages");
            let inner = index.inner.read().unwrap();
            // Asked for by the search, in the groups it read, not sorted by it.
            assert!(inner.groups.iter().any(|g| g.unsorted_wanted().count() == 1));
            assert!(inner.groups.iter().all(|g| g.unsorted_wanted().count() <= 1));
            inner.groups.iter().for_each(Group::sort_wanted);
            drop(inner);
            assert_eq!(pages(&index, query, order, 7), scanned, "{query} {order}");
        }
    }

    #[test]
    fn a_change_of_scores_keeps_the_orders_on_other_fields() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut inner = Inner::default();
        for id in 0..100 {
            inner.insert(loaded(&mut rng, id, "H100"));
        }
        let (dph, reliability) = (Order::default(), "reliability-".parse::<Order>().unwrap());
        let group = &mut inner.groups[0];
        group.sorted(dph);
        group.sorted(reliability);
        group.sort_wanted();
        let mut facts = group.facts[17];
        let scores = SearchScores {
            reliability: 1.0 - f64::from(facts.reliability as u32) / 1e6,
            uptime: None,
            rentals: 9,
            completed_rentals: 9,
            sla_credits: 0,
        };
        assert!(facts.set_scores(scores));
        // Past the budget, so the moved orders are forgotten rather than edited.
        group.edits = edit_budget(group.facts.len());
        group.set_facts(17, facts);
        assert!(group.sorted[slot(dph)].get().is_some(), "the price order did not move");
        assert!(group.sorted[slot(reliability)].get().is_none());
        group.sort_wanted();
        assert_sorted(group);
    }

    #[test]
    fn interned_values_go_with_the_last_offer_using_them() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut inner = Inner::default();
        for id in 0..50 {
            inner.insert(loaded(&mut rng, id, if id % 2 == 0 { "H100" } else { "A100" }));
        }
        // Re-inserting unchanged offers neither leaks nor drops a use.
        for id in 0..50 {
            inner.insert(loaded(&mut StdRng::seed_from_u64(id), id, "H100"));
        }
        assert!(inner.symbols.ids.contains_key("H100"));
        assert!(!inner.symbols.ids.contains_key("A100"), "no offer is an A100 any more");
        for id in 0..50 {
            inner.remove(format!("{id:016x}").parse().unwrap());
        }
        assert!(inner.symbols.ids.is_empty(), "{:?}", inner.symbols.ids);
        assert!(inner.lists.ids.is_empty(), "{:?}", inner.lists.ids);
        assert!(inner.place.is_empty());
    }
}
