//! The one thread that writes. It takes whatever writes are queued (up to [`MAX_BATCH`]),
//! applies them in a single transaction, each in its own savepoint so that one bad write
//! fails alone, commits, and only then answers each writer: an answer means the data is on
//! disk. It never waits for searches: the search index follows the commits on a thread of
//! its own (see `index.rs`).

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use gpuflow_p2p::PeerId;
use gpuflow_protocol::{
    Heartbeat, Offer, OfferId, SignedEnvelope, Verified, challenge::ChallengeResult,
};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    HeartbeatUpsert, Upsert,
    chain::{self, ChainUpdate},
    challenges, clamp,
    index::{Changes, OfferIndex, Update},
    storable,
    uptime::{self, Mark, StoredScores},
};
use crate::{
    StoreError,
    search::{cuda_thousandths, name_words},
};

/// Most writes committed together; bounds how long the first of them waits.
pub(super) const MAX_BATCH: usize = 256;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Write {
    Offer {
        offer: Box<Verified<Offer>>,
        received_at: u64,
        reply: Reply<Upsert>,
    },
    Heartbeat {
        heartbeat: Box<Verified<Heartbeat>>,
        received_at: u64,
        reply: Reply<HeartbeatUpsert>,
    },
    Prune {
        now: u64,
        reply: Reply<u64>,
    },
    Chain {
        update: Box<ChainUpdate>,
        reply: Reply<()>,
    },
    Probe {
        peer_id: String,
        at: u64,
        answered: bool,
        reply: Reply<()>,
    },
    Scores {
        scores: Vec<StoredScores>,
        reply: Reply<()>,
    },
    Alive {
        started_at: u64,
        at: u64,
        reply: Reply<()>,
    },
    Challenge {
        result: Box<(ChallengeResult, SignedEnvelope)>,
        reply: Reply<()>,
    },
    /// Holds the writer, inside its batch, until `until`'s sender is dropped, so that a test
    /// can queue writes behind it.
    #[cfg(test)]
    Hold {
        until: std::sync::mpsc::Receiver<()>,
        reply: Reply<()>,
    },
}

/// A write applied inside the open transaction, waiting for the commit to be answered.
enum Done {
    Offer(Reply<Upsert>, Result<Upsert, StoreError>),
    Heartbeat(Reply<HeartbeatUpsert>, Result<HeartbeatUpsert, StoreError>),
    Prune(Reply<u64>, Result<u64, StoreError>),
    Chain(Reply<()>, Result<(), StoreError>),
    Unit(Reply<()>, Result<(), StoreError>),
}

impl Done {
    fn answer(self, commit: &Result<(), String>) {
        fn send<T>(reply: Reply<T>, result: Result<T, StoreError>, commit: &Result<(), String>) {
            let result = match commit {
                Ok(()) => result,
                Err(e) => Err(StoreError::Commit(e.clone())),
            };
            // Fails only when the writer stopped waiting; there is no one left to tell.
            let _ = reply.send(result);
        }
        match self {
            Self::Offer(reply, result) => send(reply, result, commit),
            Self::Heartbeat(reply, result) => send(reply, result, commit),
            Self::Prune(reply, result) => send(reply, result, commit),
            Self::Chain(reply, result) => send(reply, result, commit),
            Self::Unit(reply, result) => send(reply, result, commit),
        }
    }
}

/// What the writer remembers between batches.
#[derive(Debug, Default)]
struct State {
    /// Width of the uptime buckets.
    bucket_secs: u64,
    /// The last bucket marked heard per provider, committed: later heartbeats in the same
    /// bucket need no write.
    heard: HashMap<String, u64>,
    /// Transactions committed, shared with the [`super::Store`] handles.
    commits: Arc<AtomicU64>,
}

pub(super) fn run(
    mut conn: Connection,
    mut writes: mpsc::Receiver<Write>,
    bucket_secs: u64,
    index: &OfferIndex,
    updates: std::sync::mpsc::Sender<Update>,
    commits: Arc<AtomicU64>,
) {
    let mut state = State { bucket_secs, commits, ..State::default() };
    while let Some(first) = writes.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        apply(&mut conn, batch, &mut state, index, &updates);
    }
}

fn apply(
    conn: &mut Connection,
    batch: Vec<Write>,
    state: &mut State,
    index: &OfferIndex,
    updates: &std::sync::mpsc::Sender<Update>,
) {
    let bucket_secs = state.bucket_secs;
    let mut heard = Vec::new();
    let mut changes = Changes::default();
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin a write transaction");
            let failed = Err(e.to_string());
            batch.into_iter().for_each(|write| write.abandon().answer(&failed));
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    for write in batch {
        done.push(match write {
            Write::Offer { offer, received_at, reply } => Done::Offer(
                reply,
                savepoint(&mut tx, |db| {
                    let upsert = upsert_offer(db, &offer, received_at, &mut changes)?;
                    if upsert != Upsert::Stale {
                        uptime::offer_listed(db, bucket_secs, &offer, received_at)?;
                    }
                    Ok(upsert)
                }),
            ),
            Write::Heartbeat { heartbeat, received_at, reply } => Done::Heartbeat(
                reply,
                savepoint(&mut tx, |db| {
                    let peer_id = heartbeat.signer.to_string();
                    let bucket = received_at / bucket_secs;
                    // Later heartbeats in a bucket already marked need no uptime write.
                    let mark = (state.heard.get(&peer_id) != Some(&bucket))
                        .then_some((bucket_secs, bucket));
                    let upsert = upsert_heartbeat(db, &peer_id, &heartbeat, received_at, mark)?;
                    if upsert == HeartbeatUpsert::Stored && mark.is_some() {
                        heard.push((peer_id, bucket));
                    }
                    Ok(upsert)
                }),
            ),
            Write::Probe { peer_id, at, answered, reply } => Done::Unit(
                reply,
                savepoint(&mut tx, |db| {
                    let mark = if answered { Mark::Heard } else { Mark::Failed };
                    uptime::mark(db, bucket_secs, &peer_id, mark, at, at + 1)
                }),
            ),
            Write::Scores { scores, reply } => {
                let saved = savepoint(&mut tx, |db| uptime::save_scores(db, &scores));
                if saved.is_ok() {
                    // Search shows the scores with each provider's offer.
                    scores.iter().for_each(|s| changes.scores(s));
                }
                Done::Unit(reply, saved)
            }
            Write::Alive { started_at, at, reply } => {
                Done::Unit(reply, savepoint(&mut tx, |db| uptime::node_alive(db, started_at, at)))
            }
            Write::Challenge { result, reply } => {
                let saved = savepoint(&mut tx, |db| challenges::insert(db, &result.0, &result.1));
                if saved.is_ok() {
                    // Search shows the latest result with the provider's offer.
                    changes.provider(&result.0.provider);
                }
                Done::Unit(reply, saved)
            }
            Write::Prune { now, reply } => {
                Done::Prune(reply, savepoint(&mut tx, |db| prune(db, now, &mut changes)))
            }
            Write::Chain { update, reply } => {
                Done::Chain(reply, savepoint(&mut tx, |db| chain::apply(db, &update)))
            }
            #[cfg(test)]
            Write::Hold { until, reply } => {
                // Returns once the sender is dropped.
                let _ = until.recv();
                Done::Unit(reply, Ok(()))
            }
        });
    }
    let commit = tx.commit().map_err(|e| {
        tracing::error!(error = %e, "cannot commit writes");
        e.to_string()
    });
    if commit.is_ok() {
        state.commits.fetch_add(1, Ordering::Relaxed);
        state.heard.extend(heard);
        if !changes.is_empty() {
            // Numbered before answering, so that a search after an answered write waits for
            // the index to show it; applied by the index thread, so that no answer waits for
            // a search.
            let number = index.committed();
            if updates.send((number, changes)).is_err() {
                tracing::error!("the search index thread stopped");
            }
        }
    }
    for d in done {
        d.answer(&commit);
    }
}

impl Write {
    /// The write, not applied; answered with the failure that stopped its batch.
    fn abandon(self) -> Done {
        match self {
            Self::Offer { reply, .. } => Done::Offer(reply, Err(StoreError::Closed)),
            Self::Heartbeat { reply, .. } => Done::Heartbeat(reply, Err(StoreError::Closed)),
            Self::Prune { reply, .. } => Done::Prune(reply, Err(StoreError::Closed)),
            Self::Chain { reply, .. } => Done::Chain(reply, Err(StoreError::Closed)),
            Self::Probe { reply, .. }
            | Self::Scores { reply, .. }
            | Self::Alive { reply, .. }
            | Self::Challenge { reply, .. } => Done::Unit(reply, Err(StoreError::Closed)),
            #[cfg(test)]
            Self::Hold { reply, .. } => Done::Unit(reply, Err(StoreError::Closed)),
        }
    }
}

/// Runs `work` in a savepoint of `tx`, rolled back if it fails, so one refused write does
/// not undo the others of its batch.
fn savepoint<T>(
    tx: &mut rusqlite::Transaction<'_>,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let savepoint = tx.savepoint()?;
    let result = work(&savepoint)?;
    savepoint.commit()?;
    Ok(result)
}

/// The other offers that list one of the GPU UUIDs of offer `?1`. `CROSS JOIN` fixes the
/// join order (SQLite never reorders it): this offer's few GPUs, then the UUID index.
const SHARING_SQL: &str = "SELECT DISTINCT theirs.offer_id FROM offer_gpus mine \
    CROSS JOIN offer_gpus theirs ON theirs.uuid = mine.uuid AND theirs.offer_id <> mine.offer_id \
    WHERE mine.offer_id = ?1";

/// Sets `conflict_until` of offer `?1`: the latest expiry of the other offers sharing one of
/// its GPU UUIDs, 0 when none. Search compares it with the time of the search, so a
/// conflict ends as soon as the other offer expires.
const CONFLICT_UNTIL_SQL: &str = "UPDATE offers SET conflict_until = coalesce(( \
    SELECT max(other.expires_at) FROM offer_gpus mine \
    CROSS JOIN offer_gpus theirs ON theirs.uuid = mine.uuid AND theirs.offer_id <> mine.offer_id \
    CROSS JOIN offers other ON other.id = theirs.offer_id \
    WHERE mine.offer_id = offers.id), 0) WHERE id = ?1";

fn sharing(db: &Connection, id: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = db.prepare_cached(SHARING_SQL)?;
    let ids = statement.query_map([id], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Recomputes `conflict_until` of the offers `ids` and marks them changed.
fn update_conflicts<'a>(
    db: &Connection,
    ids: impl IntoIterator<Item = &'a String>,
    changes: &mut Changes,
) -> Result<(), StoreError> {
    let mut update = db.prepare_cached(CONFLICT_UNTIL_SQL)?;
    for id in ids {
        update.execute([id])?;
        changes.offer(id.as_str());
    }
    Ok(())
}

fn upsert_offer(
    db: &Connection,
    offer: &Verified<Offer>,
    received_at: u64,
    changes: &mut Changes,
) -> Result<Upsert, StoreError> {
    let id = OfferId::of(&offer.signer).to_string();
    let peer_id = offer.signer.to_string();
    let body = &offer.body;
    let seq = storable("seq", body.seq)?;
    let received_at = storable("received_at", received_at)?;
    // The provider's high-water mark outlives pruned offers, so a replay of an old offer
    // that is still within its lifetime cannot come back once a newer one was seen.
    let stored: Option<i64> = db
        .prepare_cached("SELECT offer_seq FROM providers WHERE peer_id = ?1")?
        .query_row([&peer_id], |row| row.get(0))
        .optional()?;
    if stored.is_some_and(|stored| stored >= seq) {
        return Ok(Upsert::Stale);
    }
    db.prepare_cached(
        "INSERT INTO providers (peer_id, first_seen, offer_seq) VALUES (?1, ?2, ?3) \
         ON CONFLICT (peer_id) DO UPDATE SET offer_seq = excluded.offer_seq",
    )?
    .execute(params![peer_id, received_at, seq])?;
    // Validation guarantees at least one GPU, all of one model and driver.
    let (gpu_name, cuda_version, driver) = body.gpus.first().map_or(("", "", ""), |gpu| {
        (gpu.name.as_str(), gpu.cuda_version.as_str(), gpu.driver_version.as_str())
    });
    let replaced = db.prepare_cached("SELECT 1 FROM offers WHERE id = ?1")?.exists([&id])?;
    db.prepare_cached(
        "INSERT OR REPLACE INTO offers (id, peer_id, payout, seq, issued_at, expires_at, \
             gpu_name, gpu_name_words, num_gpus, gpu_ram_mb, price_per_second, \
             price_per_hour, verified, region, cuda, cuda_version, driver, listen_addrs, \
             received_at, envelope, inet_down_mbps, inet_up_mbps, disk_mb, cpu_cores, \
             cpu_ram_mb) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
    )?
    .execute(params![
        id,
        peer_id,
        format!("{:#x}", body.payout),
        seq,
        storable("issued_at", body.issued_at)?,
        storable("expires_at", body.expires_at)?,
        gpu_name,
        name_words(gpu_name),
        body.gpus.len() as i64,
        storable("gpu_ram_mb", body.gpu_memory_bytes() / 1_000_000)?,
        storable("price_per_second", body.price_per_second)?,
        storable("price_per_hour", body.price_per_hour())?,
        body.verified,
        body.region,
        cuda_thousandths(cuda_version),
        cuda_version,
        driver,
        serde_json::to_string(&body.listen_addrs)?,
        received_at,
        serde_json::to_string(&offer.envelope)?,
        body.inet_down_mbps.map(|v| storable("inet_down_mbps", v)).transpose()?,
        body.inet_up_mbps.map(|v| storable("inet_up_mbps", v)).transpose()?,
        body.disk_bytes.map(|v| storable("disk_mb", v / 1_000_000)).transpose()?,
        body.cpu_cores.map(|v| storable("cpu_cores", v)).transpose()?,
        body.cpu_ram_bytes.map(|v| storable("cpu_ram_mb", v / 1_000_000)).transpose()?,
    ])?;
    // The offers that shared a GPU with the replaced offer or share one with this one.
    let mut affected: BTreeSet<String> = sharing(db, &id)?.into_iter().collect();
    db.prepare_cached("DELETE FROM offer_gpus WHERE offer_id = ?1")?.execute([&id])?;
    let mut insert =
        db.prepare_cached("INSERT INTO offer_gpus (offer_id, uuid) VALUES (?1, ?2)")?;
    for gpu in &body.gpus {
        insert.execute(params![id, gpu.uuid])?;
    }
    affected.extend(sharing(db, &id)?);
    affected.insert(id);
    update_conflicts(db, &affected, changes)?;
    Ok(if replaced { Upsert::Replaced } else { Upsert::Inserted })
}

/// `offer_seq` of a provider known only from its heartbeats: below every storable `seq`, so
/// that its first offer is never stale.
const NO_OFFER_SEQ: i64 = -1;

/// Whether a rental in the chain index pays for `peer`'s machine (its `offerId` names the
/// peer's offer id) and runs at `at`. Such a machine may have withdrawn its offer, every
/// GPU being rented, and a node that never stored that offer must still hear it: the
/// rental counts against the machine's reliability from its start, whenever the node learns
/// the payout address. Only a rental opened on chain makes a provider known this way, so
/// made-up peer ids cannot fill the database.
fn machine_rented(db: &Connection, peer: &PeerId, at: u64) -> Result<bool, StoreError> {
    Ok(db
        .prepare_cached(
            "SELECT 1 FROM rentals WHERE machine = ?1 AND refused IS NULL AND start_at <= ?2 \
             AND coalesce(stopped_at, end_at) > ?2",
        )?
        .exists(params![OfferId::of(peer).to_string(), clamp(at)])?)
}

/// Stores the heartbeat and, when `heard` names a bucket (`(width, bucket number)`), marks
/// the provider heard in it, in the same row update.
fn upsert_heartbeat(
    db: &Connection,
    peer_id: &str,
    heartbeat: &Verified<Heartbeat>,
    received_at: u64,
    heard: Option<(u64, u64)>,
) -> Result<HeartbeatUpsert, StoreError> {
    let seq = storable("seq", heartbeat.body.seq)?;
    let heartbeat_fields = params![
        peer_id,
        seq,
        storable("issued_at", heartbeat.body.issued_at)?,
        storable("received_at", received_at)?,
        serde_json::to_string(&heartbeat.envelope)?,
    ];
    if heard.is_none() {
        // Most heartbeats: a known provider, newer than the stored one, in a bucket already
        // marked. One update stores it; reading the row first is only for the rest.
        let updated = db
            .prepare_cached(
                "UPDATE providers SET heartbeat_seq = ?2, heartbeat_issued_at = ?3, \
                 heartbeat_received_at = ?4, heartbeat_count = heartbeat_count + 1, \
                 heartbeat = ?5 WHERE peer_id = ?1 AND coalesce(heartbeat_seq < ?2, 1)",
            )?
            .execute(heartbeat_fields)?;
        if updated == 1 {
            return Ok(HeartbeatUpsert::Stored);
        }
    }
    let stored: Option<(Option<i64>, uptime::StoredSets)> = db
        .prepare_cached(
            "SELECT heartbeat_seq, uptime_bucket_secs, heard, failed, listed FROM providers \
             WHERE peer_id = ?1",
        )?
        .query_row([peer_id], |row| Ok((row.get(0)?, uptime::stored_sets(row, 1)?)))
        .optional()?;
    let sets = match stored {
        None if !machine_rented(db, &heartbeat.signer, received_at)? => {
            return Ok(HeartbeatUpsert::UnknownProvider);
        }
        None => {
            db.prepare_cached(
                "INSERT INTO providers (peer_id, first_seen, offer_seq) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                peer_id,
                storable("received_at", received_at)?,
                NO_OFFER_SEQ
            ])?;
            (None, None, None, None)
        }
        Some((Some(stored), _)) if stored >= seq => return Ok(HeartbeatUpsert::Stale),
        Some((_, sets)) => sets,
    };
    let Some((bucket_secs, bucket)) = heard else {
        db.prepare_cached(
            "UPDATE providers SET heartbeat_seq = ?2, heartbeat_issued_at = ?3, \
             heartbeat_received_at = ?4, heartbeat_count = heartbeat_count + 1, heartbeat = ?5 \
             WHERE peer_id = ?1",
        )?
        .execute(heartbeat_fields)?;
        return Ok(HeartbeatUpsert::Stored);
    };
    let at = bucket * bucket_secs;
    let (width, heard, failed, listed, written_at) =
        uptime::marked(sets, bucket_secs, Mark::Heard, at, at + 1)?;
    // Only what is still ahead of the announcement is excused: a window cannot be claimed
    // for time already past.
    let listed = match heartbeat.body.maintenance {
        Some(window) if window.until > received_at => {
            uptime::excused(listed, bucket_secs, window.from.max(received_at), window.until)
        }
        _ => listed,
    };
    let mut update = db.prepare_cached(
        "UPDATE providers SET heartbeat_seq = ?2, heartbeat_issued_at = ?3, \
         heartbeat_received_at = ?4, heartbeat_count = heartbeat_count + 1, heartbeat = ?5, \
         uptime_bucket_secs = ?6, heard = ?7, failed = ?8, listed = ?9, uptime_written_at = ?10 \
         WHERE peer_id = ?1",
    )?;
    let fields: Vec<&dyn rusqlite::ToSql> = heartbeat_fields
        .iter()
        .copied()
        .chain([&width as &dyn rusqlite::ToSql, &heard, &failed, &listed, &written_at])
        .collect();
    update.execute(fields.as_slice())?;
    Ok(HeartbeatUpsert::Stored)
}

fn prune(db: &Connection, now: u64, changes: &mut Changes) -> Result<u64, StoreError> {
    uptime::prune(db, now)?;
    let expired: Vec<String> = db
        .prepare_cached("SELECT id FROM offers WHERE expires_at <= ?1")?
        .query_map([clamp(now)], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    // Offers that shared a GPU with a pruned one no longer conflict with it.
    let mut affected = BTreeSet::new();
    for id in &expired {
        affected.extend(sharing(db, id)?);
        changes.offer(id.as_str());
    }
    db.prepare_cached(
        "DELETE FROM offer_gpus WHERE offer_id IN (SELECT id FROM offers WHERE expires_at <= ?1)",
    )?
    .execute([clamp(now)])?;
    let deleted =
        db.prepare_cached("DELETE FROM offers WHERE expires_at <= ?1")?.execute([clamp(now)])?;
    for id in &expired {
        affected.remove(id);
    }
    update_conflicts(db, &affected, changes)?;
    Ok(deleted as u64)
}
