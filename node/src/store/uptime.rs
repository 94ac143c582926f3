//! Uptime evidence: each provider's row holds three sets of buckets (heard, probe failed,
//! listed) as runs of absolute bucket numbers (see [`Runs`]), 8 bytes a run; the row is
//! the one every heartbeat already updates, so evidence costs heartbeats little. A
//! provider that stays up costs a few runs however long it runs; one that flaps costs at
//! most one run per two buckets of the retained days. Runs older than [`RETENTION_DAYS`]
//! are forgotten whenever the row is written, and the sets of providers not marked for that
//! long are cleared with the expired offers.
//! Sets written with another bucket width than the store's are ignored and overwritten.
//!
//! Beside them, the node's own runs (`node_runs`): when each start of the node was ready,
//! and the latest moment it marked itself alive. Only the buckets they cover count as
//! evidence at all (see [`model::observed`]): a provider is never judged, up or down, for
//! time this node was not there to hear it.

use std::collections::{HashMap, HashSet};

use gpuflow_protocol::{
    Offer, OfferId, Verified,
    api::{EvidenceRental, ModelParams, ProviderScores},
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{clamp, storable};
use crate::{
    StoreError,
    reliability::model::{self, DAY, Runs, Standing, Window},
    search::SearchScores,
};

/// Days of evidence kept; the longest window the model may use.
pub const RETENTION_DAYS: u64 = 35;

/// Which of a provider's sets a mark goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mark {
    /// A heartbeat arrived or a probe was answered.
    Heard,
    /// A probe went unanswered.
    Failed,
    /// A live offer covered the time.
    Listed,
}

/// The three sets of one provider, as stored.
#[derive(Debug, Default)]
struct Sets {
    heard: Runs,
    failed: Runs,
    listed: Runs,
}

/// The provider's sets, empty when it has none of this bucket width; `None` for an
/// unknown provider.
fn load(db: &Connection, bucket_secs: u64, peer_id: &str) -> Result<Option<Sets>, StoreError> {
    Ok(stored(db, peer_id)?.map(|row| sets(row, bucket_secs)))
}

/// The uptime columns of `peer_id`'s row; `None` for an unknown provider.
fn stored(db: &Connection, peer_id: &str) -> Result<Option<StoredSets>, StoreError> {
    Ok(db
        .prepare_cached(
            "SELECT uptime_bucket_secs, heard, failed, listed FROM providers WHERE peer_id = ?1",
        )?
        .query_row([peer_id], |row| stored_sets(row, 0))
        .optional()?)
}

/// The uptime columns of a provider's row, as read.
pub(super) type StoredSets = (Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Reads the uptime columns starting at column `first` of `row`.
pub(super) fn stored_sets(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredSets> {
    Ok((row.get(first)?, row.get(first + 1)?, row.get(first + 2)?, row.get(first + 3)?))
}

/// The uptime columns to write back after a mark: width, heard, failed, listed, written at.
pub(super) type MarkedSets = (i64, Vec<u8>, Vec<u8>, Vec<u8>, i64);

/// `stored` with every bucket overlapping `[from, to)` added to the `mark` set, and what
/// is older than the retention forgotten.
pub(super) fn marked(
    stored: StoredSets,
    bucket_secs: u64,
    mark: Mark,
    from: u64,
    to: u64,
) -> Result<MarkedSets, StoreError> {
    let mut sets = sets(stored, bucket_secs);
    let (first, end) = (from / bucket_secs, to.div_ceil(bucket_secs));
    let runs = match mark {
        Mark::Heard => &mut sets.heard,
        Mark::Failed => &mut sets.failed,
        Mark::Listed => &mut sets.listed,
    };
    runs.insert(first, end);
    let cutoff = first.saturating_sub(RETENTION_DAYS * DAY / bucket_secs);
    for runs in [&mut sets.heard, &mut sets.failed, &mut sets.listed] {
        runs.forget_before(cutoff);
    }
    Ok((
        storable("bucket_secs", bucket_secs)?,
        sets.heard.encode(),
        sets.failed.encode(),
        sets.listed.encode(),
        storable("written_at", from)?,
    ))
}

/// `listed` (encoded runs) without the buckets wholly inside `[from, until)`: the part of a
/// maintenance window the provider announced before it began is not listed time, so its
/// silence counts against no uptime. Rented time, and so reliability, is untouched.
pub(super) fn excused(listed: Vec<u8>, bucket_secs: u64, from: u64, until: u64) -> Vec<u8> {
    let (first, end) = (from.div_ceil(bucket_secs), until / bucket_secs);
    if first >= end {
        return listed;
    }
    Runs::decode(&listed).minus(&Runs(vec![(first, end)])).encode()
}

/// The stored sets if they count buckets of `bucket_secs`, else empty ones.
fn sets((width, heard, failed, listed): StoredSets, bucket_secs: u64) -> Sets {
    if width.and_then(|w| u64::try_from(w).ok()) != Some(bucket_secs) {
        return Sets::default();
    }
    let decode = |bytes: Option<Vec<u8>>| Runs::decode(&bytes.unwrap_or_default());
    Sets { heard: decode(heard), failed: decode(failed), listed: decode(listed) }
}

/// Adds every bucket overlapping `[from, to)` to the `mark` set of `peer_id`.
pub(super) fn mark(
    db: &Connection,
    bucket_secs: u64,
    peer_id: &str,
    mark: Mark,
    from: u64,
    to: u64,
) -> Result<(), StoreError> {
    // Evidence is only kept for providers the index knows.
    let Some(stored) = stored(db, peer_id)? else {
        return Ok(());
    };
    let (width, heard, failed, listed, written_at) = marked(stored, bucket_secs, mark, from, to)?;
    db.prepare_cached(
        "UPDATE providers SET uptime_bucket_secs = ?2, heard = ?3, failed = ?4, listed = ?5, \
         uptime_written_at = ?6 WHERE peer_id = ?1",
    )?
    .execute(params![peer_id, width, heard, failed, listed, written_at])?;
    Ok(())
}

/// Longest stretch ahead that one offer marks as listed.
const MAX_LISTED_AHEAD: u64 = 2 * DAY;

/// Records a stored offer: its payout address links the provider to its rentals, and its
/// lifetime from `received_at` counts as listed time.
pub(super) fn offer_listed(
    db: &Connection,
    bucket_secs: u64,
    offer: &Verified<Offer>,
    received_at: u64,
) -> Result<(), StoreError> {
    let peer_id = offer.signer.to_string();
    db.prepare_cached(
        "UPDATE providers SET payout = ?2, last_listen_addrs = ?3 WHERE peer_id = ?1",
    )?
    .execute(params![
        peer_id,
        format!("{:#x}", offer.body.payout),
        serde_json::to_string(&offer.body.listen_addrs)?,
    ])?;
    let until = offer.body.expires_at.min(received_at.saturating_add(MAX_LISTED_AHEAD));
    mark(db, bucket_secs, &peer_id, Mark::Listed, received_at, until)
}

/// Records that the node run started at `started_at` (the moment it was ready) was still
/// up and listening at `at`, and forgets runs that ended before the retention.
pub(super) fn node_alive(db: &Connection, started_at: u64, at: u64) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO node_runs (started_at, alive_until) VALUES (?1, ?2) \
         ON CONFLICT (started_at) DO UPDATE SET \
         alive_until = max(alive_until, excluded.alive_until)",
    )?
    .execute(params![storable("started_at", started_at)?, storable("alive_until", at)?])?;
    db.prepare_cached("DELETE FROM node_runs WHERE alive_until < ?1")?
        .execute([clamp(at.saturating_sub(RETENTION_DAYS * DAY))])?;
    Ok(())
}

/// The buckets this node observed up to `now` (see [`model::observed`]): its stored runs,
/// the one started at `running` (this process's) lasting until `now`.
fn node_observed(
    db: &Connection,
    params: ModelParams,
    running: Option<u64>,
    now: u64,
) -> Result<Runs, StoreError> {
    let mut statement =
        db.prepare_cached("SELECT started_at, alive_until FROM node_runs ORDER BY started_at")?;
    let mut rows = statement.query([])?;
    let mut periods = Vec::new();
    while let Some(row) = rows.next()? {
        let number = |i| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or_default());
        let (started_at, alive_until) = (number(0)?, number(1)?);
        let until = match running == Some(started_at) {
            true => alive_until.max(now),
            false => alive_until,
        };
        periods.push((started_at, until));
    }
    Ok(model::observed(params, &periods))
}

/// Forgets the evidence of providers not heard of for [`RETENTION_DAYS`] before `now`.
pub(super) fn prune(db: &Connection, now: u64) -> Result<u64, StoreError> {
    let oldest = now.saturating_sub(RETENTION_DAYS * DAY);
    let forgotten = db
        .prepare_cached(
            "UPDATE providers SET uptime_bucket_secs = NULL, heard = NULL, failed = NULL, \
             listed = NULL, uptime_written_at = NULL WHERE uptime_written_at < ?1",
        )?
        .execute([clamp(oldest)])?;
    Ok(forgotten as u64)
}

/// What the scores need from outside the buckets, per provider.
#[derive(Clone, Debug, Default)]
pub struct ProviderFacts {
    /// Its payout address, lower-case 0x hex.
    pub payout: Option<String>,
    /// When this node first saw it.
    pub first_seen: u64,
    /// The indexed rentals of its machine (see [`RentalOwners`]).
    pub rentals: Vec<EvidenceRental>,
}

/// The id of the offer `peer_id` publishes, as a rental's `machine` column holds it.
fn offer_of(peer_id: &str) -> Option<String> {
    let peer = peer_id.parse::<gpuflow_p2p::PeerId>().ok()?;
    Some(OfferId::of(&peer).to_string())
}

/// Which provider each indexed rental paid for. A rental whose `offerId` names the machine
/// of a known provider with the rental's payout address belongs to that provider alone;
/// any other rental (an `offerId` not in gpuflow's form, or naming a machine this node does
/// not know under that payout address) belongs to every provider with its payout address.
#[derive(Debug, Default)]
struct RentalOwners {
    /// Rentals resolved to one machine, by (payout address, offer id).
    by_machine: HashMap<(String, String), Vec<EvidenceRental>>,
    /// The other rentals, by payout address.
    by_payout: HashMap<String, Vec<EvidenceRental>>,
    /// The payout addresses of `by_machine`, so that providers of the others need no offer
    /// id computed.
    resolved_payouts: HashSet<String>,
}

impl RentalOwners {
    /// The indexed rentals, of `payout` only when given, with their downtime credits.
    fn load(db: &Connection, payout: Option<&str>) -> Result<Self, StoreError> {
        let mut statement = db.prepare_cached(
            "SELECT r.provider, r.machine, r.id, r.start_at, coalesce(r.stopped_at, r.end_at), \
                 r.credited_seconds, \
                 (SELECT count(*) FROM chain_events e \
                  WHERE e.rental_id = r.id AND e.event ->> '$.kind' = 'credited') \
             FROM rentals r WHERE ?1 IS NULL OR r.provider = ?1 ORDER BY r.id",
        )?;
        let mut rows = statement.query([payout])?;
        let mut rentals = Vec::new();
        while let Some(row) = rows.next()? {
            let number = |i| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or_default());
            let rental = EvidenceRental {
                id: number(2)?,
                start: number(3)?,
                end: number(4)?,
                credited_seconds: number(5)?,
                credits: number(6)?,
            };
            let payout = row.get::<_, String>(0)?.to_lowercase();
            rentals.push((payout, row.get::<_, Option<String>>(1)?, rental));
        }
        // The machines known under the payout addresses that rentals name a machine of.
        let named: HashSet<&str> = rentals
            .iter()
            .filter(|(_, machine, _)| machine.is_some())
            .map(|(payout, _, _)| payout.as_str())
            .collect();
        let mut known = HashSet::new();
        if !named.is_empty() {
            let mut providers = db.prepare_cached(
                "SELECT peer_id, payout FROM providers \
                 WHERE payout IS NOT NULL AND (?1 IS NULL OR payout = ?1)",
            )?;
            let mut rows = providers.query([payout])?;
            while let Some(row) = rows.next()? {
                let payout = row.get::<_, String>(1)?.to_lowercase();
                if named.contains(payout.as_str())
                    && let Some(offer) = offer_of(&row.get::<_, String>(0)?)
                {
                    known.insert((payout, offer));
                }
            }
        }
        let mut owners = Self::default();
        for (payout, machine, rental) in rentals {
            match machine.map(|machine| (payout.clone(), machine)) {
                Some(key) if known.contains(&key) => {
                    owners.by_machine.entry(key).or_default().push(rental);
                    owners.resolved_payouts.insert(payout);
                }
                _ => owners.by_payout.entry(payout).or_default().push(rental),
            }
        }
        Ok(owners)
    }

    /// The rentals of provider `peer_id` whose payout address is `payout`, by id.
    fn of(&self, peer_id: &str, payout: Option<&str>) -> Vec<EvidenceRental> {
        let Some(payout) = payout.map(str::to_lowercase) else { return Vec::new() };
        let shared = self.by_payout.get(&payout).map_or(&[][..], Vec::as_slice);
        let own = match self.resolved_payouts.contains(&payout) {
            true => offer_of(peer_id).and_then(|offer| self.by_machine.get(&(payout, offer))),
            false => None,
        };
        let mut rentals: Vec<EvidenceRental> =
            shared.iter().chain(own.into_iter().flatten()).cloned().collect();
        rentals.sort_by_key(|r| r.id);
        rentals
    }
}

/// The evidence of `peer_id` for the window ending at `now`, with the facts beside it;
/// `None` for an unknown provider.
pub(super) fn evidence(
    db: &Connection,
    params: ModelParams,
    peer_id: &str,
    now: u64,
    running: Option<u64>,
) -> Result<Option<(Window, ProviderFacts)>, StoreError> {
    let found: Option<(Option<String>, i64)> = db
        .prepare_cached("SELECT payout, first_seen FROM providers WHERE peer_id = ?1")?
        .query_row([peer_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((payout, first_seen)) = found else {
        return Ok(None);
    };
    let sets = load(db, params.bucket_secs, peer_id)?.unwrap_or_default();
    let observed = node_observed(db, params, running, now)?;
    let window = Window::from_runs(params, now, &sets.heard, &sets.failed, &sets.listed, &observed);
    let rentals = match &payout {
        Some(payout) => RentalOwners::load(db, Some(payout))?.of(peer_id, Some(payout)),
        None => Vec::new(),
    };
    let first_seen = u64::try_from(first_seen).unwrap_or_default();
    Ok(Some((window, ProviderFacts { payout, first_seen, rentals })))
}

/// The searchable scores of one provider, as stored beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredScores {
    /// The provider.
    pub peer_id: String,
    /// Its scores.
    pub scores: SearchScores,
}

/// Scores every known provider from its evidence at `now`, in one pass over the providers:
/// how many were scored, and the scores that differ from those stored.
pub(super) fn score_all(
    db: &Connection,
    params: ModelParams,
    now: u64,
    running: Option<u64>,
) -> Result<(usize, Vec<StoredScores>), StoreError> {
    let rentals = RentalOwners::load(db, None)?;
    let observed = node_observed(db, params, running, now)?;
    let mut providers = db.prepare_cached(
        "SELECT peer_id, payout, first_seen, uptime_bucket_secs, heard, failed, listed, \
         reliability, uptime, rentals, completed_rentals, sla_credits FROM providers",
    )?;
    let mut rows = providers.query([])?;
    let (mut count, mut changed) = (0, Vec::new());
    while let Some(row) = rows.next()? {
        let peer_id: String = row.get(0)?;
        let payout: Option<String> = row.get(1)?;
        let first_seen = u64::try_from(row.get::<_, i64>(2)?).unwrap_or_default();
        let blob = |i| -> rusqlite::Result<Runs> {
            Ok(row.get_ref(i)?.as_blob_or_null()?.map(Runs::decode).unwrap_or_default())
        };
        let width = row.get::<_, Option<i64>>(3)?.and_then(|w| u64::try_from(w).ok());
        let sets = match width == Some(params.bucket_secs) {
            true => Sets { heard: blob(4)?, failed: blob(5)?, listed: blob(6)? },
            false => Sets::default(),
        };
        let window =
            Window::from_runs(params, now, &sets.heard, &sets.failed, &sets.listed, &observed);
        let own_rentals = rentals.of(&peer_id, payout.as_deref());
        let scores = model::score(&window, &own_rentals, Standing { first_seen, now });
        count += 1;
        let count_at = |i| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(u64::MAX));
        let stored = SearchScores {
            reliability: row.get(7)?,
            uptime: row.get(8)?,
            rentals: count_at(9)?,
            completed_rentals: count_at(10)?,
            sla_credits: count_at(11)?,
        };
        let scores = SearchScores::from(&scores);
        if stored != scores {
            changed.push(StoredScores { peer_id, scores });
        }
    }
    Ok((count, changed))
}

/// Stores the scores beside each provider, for search.
pub(super) fn save_scores(db: &Connection, scores: &[StoredScores]) -> Result<(), StoreError> {
    let mut update = db.prepare_cached(
        "UPDATE providers SET reliability = ?2, uptime = ?3, rentals = ?4, \
         completed_rentals = ?5, sla_credits = ?6 WHERE peer_id = ?1",
    )?;
    for StoredScores { peer_id, scores: s } in scores {
        update.execute(params![
            peer_id,
            s.reliability,
            s.uptime,
            storable("rentals", s.rentals)?,
            storable("completed_rentals", s.completed_rentals)?,
            storable("sla_credits", s.sla_credits)?
        ])?;
    }
    Ok(())
}

/// The scores of one provider, from [`evidence`].
pub fn scores_of(window: &Window, facts: &ProviderFacts, now: u64) -> ProviderScores {
    model::score(window, &facts.rentals, Standing { first_seen: facts.first_seen, now })
}

/// End of the last downtime window credited on rental `id`.
pub(super) fn credited_until(db: &Connection, id: u64) -> Result<Option<u64>, StoreError> {
    let until: Option<i64> = db
        .prepare_cached(
            "SELECT max(event ->> '$.to') FROM chain_events \
             WHERE rental_id = ?1 AND event ->> '$.kind' = 'credited'",
        )?
        .query_row([storable("rental id", id)?], |row| row.get(0))?;
    Ok(until.and_then(|until| u64::try_from(until).ok()))
}

/// Which machine a rental paid for, as far as this node can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RentalMachine {
    /// The provider whose offer id the rental's `offerId` names, with the rental's payout
    /// address; or, for a rental naming no machine known here, the only provider with that
    /// payout address.
    Known(String),
    /// No provider known here has the rental's payout address.
    Unknown,
    /// The rental names no machine known here, and these providers share its payout address.
    Ambiguous(Vec<String>),
}

/// The machine rental `id` paid for, see [`RentalMachine`]; `None` for an unknown rental.
pub(super) fn rental_machine(
    db: &Connection,
    id: u64,
) -> Result<Option<RentalMachine>, StoreError> {
    let found: Option<(String, Option<String>)> = db
        .prepare_cached("SELECT provider, machine FROM rentals WHERE id = ?1")?
        .query_row([storable("rental id", id)?], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((payout, machine)) = found else { return Ok(None) };
    let peers = db
        .prepare_cached("SELECT peer_id FROM providers WHERE payout = ?1 ORDER BY peer_id")?
        .query_map([&payout], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(machine) = machine
        && let Some(peer) = peers.iter().find(|peer| offer_of(peer).as_ref() == Some(&machine))
    {
        return Ok(Some(RentalMachine::Known(peer.clone())));
    }
    Ok(Some(match <[String; 1]>::try_from(peers) {
        Ok([peer]) => RentalMachine::Known(peer),
        Err(peers) if peers.is_empty() => RentalMachine::Unknown,
        Err(peers) => RentalMachine::Ambiguous(peers),
    }))
}

/// Where providers to probe listen, at most `limit` of them: first every provider renting
/// out its machine at `now` (its offer may be gone while every GPU is rented), then listed
/// providers in peer id order after `after`, so that successive calls go round them all.
pub(super) fn probe_targets(
    db: &Connection,
    now: u64,
    after: &str,
    limit: usize,
) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let mut targets: Vec<(String, Vec<String>)> = Vec::new();
    let mut push = |row: &rusqlite::Row<'_>| -> Result<(), StoreError> {
        let addrs: String = row.get(1)?;
        targets.push((row.get(0)?, serde_json::from_str(&addrs)?));
        Ok(())
    };
    let mut rented = db.prepare_cached(
        "SELECT peer_id, last_listen_addrs FROM providers WHERE last_listen_addrs IS NOT NULL \
         AND payout IN \
         (SELECT provider FROM rentals WHERE start_at <= ?1 AND coalesce(stopped_at, end_at) > ?1) \
         ORDER BY peer_id LIMIT ?2",
    )?;
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = rented.query(params![clamp(now), limit_sql])?;
    while let Some(row) = rows.next()? {
        push(row)?;
    }
    let mut listed = db.prepare_cached(
        "SELECT peer_id, listen_addrs FROM offers WHERE expires_at > ?1 AND peer_id > ?2 \
         ORDER BY peer_id LIMIT ?3",
    )?;
    let mut rows = listed.query(params![clamp(now), after, limit_sql])?;
    while let Some(row) = rows.next()? {
        push(row)?;
    }
    let mut seen = std::collections::HashSet::new();
    targets.retain(|(peer, _)| seen.insert(peer.clone()));
    targets.truncate(limit.max(1));
    Ok(targets)
}

#[cfg(test)]
mod tests;
