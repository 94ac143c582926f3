//! The chain index: `GpuEscrow` events kept as a log, the rentals folded from them, and the
//! hashes of recently indexed blocks.
//!
//! Rentals are never edited in place: every write replays the events of the rentals it
//! touched. A reorg then only has to delete the events of the orphaned blocks and replay
//! what remains, so a rolled-back `RentalStopped` or `RentalExtended` leaves exactly the
//! rental the surviving chain describes.

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256, U256};
use gpuflow_protocol::OfferId;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{clamp, storable};
use crate::StoreError;

/// Block hashes kept below the last indexed block, to find where a reorg forked. Reorgs
/// deeper than this on a chain with confirmations are not expected; see the watcher.
pub const KEPT_HASHES: u64 = 256;

/// What happened to a rental in one escrow event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RentalEvent {
    /// `RentalOpened`.
    Opened {
        /// The renter.
        renter: Address,
        /// The provider's payout address.
        provider: Address,
        /// The quote's `offerId`: what was rented, as the provider signed it.
        offer_id: B256,
        /// Token units per second.
        rate_per_second: U256,
        /// Start, unix seconds.
        start: u64,
        /// Scheduled end, unix seconds.
        end: u64,
        /// Tokens locked.
        deposit: U256,
    },
    /// `RentalExtended`.
    Extended {
        /// The new scheduled end.
        new_end: u64,
        /// Tokens paid for the extra time.
        cost: U256,
    },
    /// `RentalStopped`.
    Stopped {
        /// When it stopped.
        stopped_at: u64,
        /// Tokens returned to the renter.
        refund: U256,
    },
    /// `EarningsWithdrawn`.
    Withdrawn {
        /// Net tokens paid to the provider.
        amount: U256,
        /// Platform fee.
        fee: U256,
    },
    /// `DowntimeCredited`.
    Credited {
        /// Start of the credited downtime.
        from: u64,
        /// End of the credited downtime.
        to: u64,
        /// Seconds credited.
        down_seconds: u64,
        /// Tokens refunded to the renter.
        refund: U256,
    },
    /// `RentalRefused`: the provider refused the rental, the renter got back everything
    /// the escrow held for it and nothing is owed to the provider.
    Refused {
        /// Tokens returned to the renter.
        refund: U256,
    },
}

/// One escrow event at its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Block number.
    pub block: u64,
    /// Position of the log in its block.
    pub log_index: u64,
    /// The rental it concerns.
    pub rental_id: u64,
    /// What happened.
    pub event: RentalEvent,
}

/// One step of the watcher, applied atomically: roll back, add blocks, move the cursor.
#[derive(Clone, Debug, Default)]
pub struct ChainUpdate {
    /// The escrow indexed; a different one than the stored cursor's discards the old index.
    pub escrow: String,
    /// Forget everything indexed above this block (a reorg orphaned it) before adding.
    pub rollback_above: Option<u64>,
    /// Hashes of newly indexed blocks, `(number, hash)`.
    pub blocks: Vec<(u64, String)>,
    /// Their escrow events, in chain order.
    pub events: Vec<LoggedEvent>,
    /// The next block to index once this update is stored.
    pub next_block: u64,
}

/// Where the watcher stands, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainCursor {
    /// The next block to index; `None` when this escrow was never indexed here.
    pub next_block: Option<u64>,
    /// Hashes of the most recently indexed blocks, `(number, hash)`, newest first.
    pub recent: Vec<(u64, String)>,
}

/// A rental as indexed. Amounts are token units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RentalRecord {
    /// Rental id.
    pub id: u64,
    /// The renter.
    pub renter: Address,
    /// The provider's payout address.
    pub provider: Address,
    /// The quote's `offerId`, as signed by the provider.
    pub offer_id: B256,
    /// Token units per second.
    pub rate_per_second: U256,
    /// Start, unix seconds.
    pub start: u64,
    /// Scheduled end, unix seconds, after extensions.
    pub end: u64,
    /// When the renter stopped it early.
    pub stopped_at: Option<u64>,
    /// Opening deposit plus extension costs.
    pub deposit: U256,
    /// Refund on an early stop.
    pub refund: U256,
    /// Net paid to the provider.
    pub withdrawn: U256,
    /// Platform fees.
    pub fees: U256,
    /// Downtime refunds.
    pub credited: U256,
    /// Downtime seconds credited.
    pub credited_seconds: u64,
    /// Refund of the provider's refusal, if it refused the rental.
    pub refused: Option<U256>,
    /// Block that opened it.
    pub opened_block: u64,
    /// Last block whose events changed it.
    pub updated_block: u64,
}

/// Folds a rental's events, in chain order, into its state; `None` without an opening
/// event (one before the block the node started indexing from).
fn fold(id: u64, events: &[LoggedEvent]) -> Option<RentalRecord> {
    let mut rental: Option<RentalRecord> = None;
    for logged in events {
        if let RentalEvent::Opened {
            renter,
            provider,
            offer_id,
            rate_per_second,
            start,
            end,
            deposit,
        } = &logged.event
        {
            rental = Some(RentalRecord {
                id,
                renter: *renter,
                provider: *provider,
                offer_id: *offer_id,
                rate_per_second: *rate_per_second,
                start: *start,
                end: *end,
                stopped_at: None,
                deposit: *deposit,
                refund: U256::ZERO,
                withdrawn: U256::ZERO,
                fees: U256::ZERO,
                credited: U256::ZERO,
                credited_seconds: 0,
                refused: None,
                opened_block: logged.block,
                updated_block: logged.block,
            });
            continue;
        }
        let Some(r) = rental.as_mut() else { continue };
        r.updated_block = logged.block;
        // Saturating: the contract's own accounting bounds every sum by the deposit.
        match &logged.event {
            RentalEvent::Opened { .. } => {}
            RentalEvent::Extended { new_end, cost } => {
                r.end = *new_end;
                r.deposit = r.deposit.saturating_add(*cost);
            }
            RentalEvent::Stopped { stopped_at, refund } => {
                r.stopped_at = Some(*stopped_at);
                r.refund = r.refund.saturating_add(*refund);
            }
            RentalEvent::Withdrawn { amount, fee } => {
                r.withdrawn = r.withdrawn.saturating_add(*amount);
                r.fees = r.fees.saturating_add(*fee);
            }
            RentalEvent::Credited { down_seconds, refund, .. } => {
                r.credited = r.credited.saturating_add(*refund);
                r.credited_seconds = r.credited_seconds.saturating_add(*down_seconds);
            }
            RentalEvent::Refused { refund } => r.refused = Some(*refund),
        }
    }
    rental
}

/// Applies `update` inside the writer's transaction.
pub(super) fn apply(db: &Connection, update: &ChainUpdate) -> Result<(), StoreError> {
    let stored: Option<String> = db
        .prepare_cached("SELECT escrow FROM chain_cursor WHERE id = 1")?
        .query_row([], |row| row.get(0))
        .optional()?;
    if stored.as_deref().is_some_and(|stored| !stored.eq_ignore_ascii_case(&update.escrow)) {
        // Events of another contract say nothing about this one.
        tracing::warn!(old = ?stored, new = %update.escrow, "escrow changed; re-indexing");
        db.execute_batch(
            "DELETE FROM chain_events; DELETE FROM rentals; DELETE FROM chain_blocks;",
        )?;
    }
    let mut touched = BTreeSet::new();
    if let Some(keep) = update.rollback_above {
        let keep = clamp(keep);
        let mut orphaned =
            db.prepare_cached("SELECT DISTINCT rental_id FROM chain_events WHERE block > ?1")?;
        for id in orphaned.query_map([keep], |row| row.get::<_, i64>(0))? {
            touched.insert(id?);
        }
        db.prepare_cached("DELETE FROM chain_events WHERE block > ?1")?.execute([keep])?;
        db.prepare_cached("DELETE FROM chain_blocks WHERE number > ?1")?.execute([keep])?;
    }
    let mut insert_block =
        db.prepare_cached("INSERT OR REPLACE INTO chain_blocks (number, hash) VALUES (?1, ?2)")?;
    for (number, hash) in &update.blocks {
        insert_block.execute(params![storable("block", *number)?, hash])?;
    }
    let mut insert_event = db.prepare_cached(
        "INSERT OR REPLACE INTO chain_events (block, log_index, rental_id, event) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for logged in &update.events {
        let id = storable("rental_id", logged.rental_id)?;
        insert_event.execute(params![
            storable("block", logged.block)?,
            storable("log_index", logged.log_index)?,
            id,
            serde_json::to_string(&logged.event)?,
        ])?;
        touched.insert(id);
    }
    for id in touched {
        replay(db, id)?;
    }
    let next = storable("next_block", update.next_block)?;
    db.prepare_cached("DELETE FROM chain_blocks WHERE number < ?1")?
        .execute([next.saturating_sub(KEPT_HASHES as i64)])?;
    db.prepare_cached(
        "INSERT OR REPLACE INTO chain_cursor (id, escrow, next_block) VALUES (1, ?1, ?2)",
    )?
    .execute(params![update.escrow, next])?;
    Ok(())
}

/// Rebuilds rental `id` from its stored events.
fn replay(db: &Connection, id: i64) -> Result<(), StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT block, log_index, event FROM chain_events WHERE rental_id = ?1 \
         ORDER BY block, log_index",
    )?;
    let events = statement
        .query_map([id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
        })?
        .map(|row| {
            let (block, log_index, event) = row?;
            Ok(LoggedEvent {
                block: block as u64,
                log_index: log_index as u64,
                rental_id: id as u64,
                event: serde_json::from_str(&event)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    db.prepare_cached("DELETE FROM rentals WHERE id = ?1")?.execute([id])?;
    let Some(r) = fold(id as u64, &events) else { return Ok(()) };
    db.prepare_cached(
        "INSERT INTO rentals (id, renter, provider, rate_per_second, start_at, end_at, \
         stopped_at, deposit, refund, withdrawn, fees, credited, credited_seconds, \
         opened_block, updated_block, offer_id, machine, refused) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        id,
        format!("{:#x}", r.renter),
        format!("{:#x}", r.provider),
        r.rate_per_second.to_string(),
        storable("start", r.start)?,
        storable("end", r.end)?,
        r.stopped_at.map(|at| storable("stopped_at", at)).transpose()?,
        r.deposit.to_string(),
        r.refund.to_string(),
        r.withdrawn.to_string(),
        r.fees.to_string(),
        r.credited.to_string(),
        storable("credited_seconds", r.credited_seconds)?,
        storable("block", r.opened_block)?,
        storable("block", r.updated_block)?,
        format!("{:#x}", r.offer_id),
        machine(r.offer_id).map(|offer| offer.to_string()),
        r.refused.map(|refund| refund.to_string()),
    ])?;
    Ok(())
}

/// The machine a rental's `offerId` names: the offer id of gpuflow's form (see
/// `QuoteTerms::machine`); `None` for any other value.
pub(super) fn machine(offer_id: B256) -> Option<OfferId> {
    gpuflow_protocol::QuoteTerms::rented_machine(offer_id).map(|(offer, _)| offer)
}

/// The stored cursor for `escrow`.
pub(super) fn cursor(db: &Connection, escrow: &str) -> Result<ChainCursor, StoreError> {
    let next: Option<(String, i64)> = db
        .prepare_cached("SELECT escrow, next_block FROM chain_cursor WHERE id = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((_, next)) = next.filter(|(stored, _)| stored.eq_ignore_ascii_case(escrow)) else {
        return Ok(ChainCursor::default());
    };
    let recent = db
        .prepare_cached("SELECT number, hash FROM chain_blocks ORDER BY number DESC")?
        .query_map([], |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(ChainCursor { next_block: Some(next as u64), recent })
}

/// The indexed rental `id`.
pub(super) fn rental(db: &Connection, id: u64) -> Result<Option<RentalRecord>, StoreError> {
    let Ok(id) = i64::try_from(id) else { return Ok(None) };
    let row = db
        .prepare_cached(
            "SELECT renter, provider, rate_per_second, start_at, end_at, stopped_at, deposit, \
             refund, withdrawn, fees, credited, credited_seconds, opened_block, updated_block, \
             offer_id, refused FROM rentals WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok((
                [
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, String>(9)?,
                    row.get::<_, String>(10)?,
                ],
                [row.get::<_, i64>(3)?, row.get::<_, i64>(4)?, row.get::<_, i64>(11)?],
                row.get::<_, Option<i64>>(5)?,
                [row.get::<_, i64>(12)?, row.get::<_, i64>(13)?],
                row.get::<_, String>(14)?,
                row.get::<_, Option<String>>(15)?,
            ))
        })
        .optional()?;
    let Some((text, times, stopped_at, blocks, offer_id, refused)) = row else { return Ok(None) };
    let corrupt = |what: &str| StoreError::Corrupt(format!("rental {id}: bad {what}"));
    let address = |s: &str| s.parse::<Address>().map_err(|_| corrupt("address"));
    let amount = |s: &str| s.parse::<U256>().map_err(|_| corrupt("amount"));
    Ok(Some(RentalRecord {
        id: id as u64,
        renter: address(&text[0])?,
        provider: address(&text[1])?,
        offer_id: offer_id.parse().map_err(|_| corrupt("offer id"))?,
        rate_per_second: amount(&text[2])?,
        start: times[0] as u64,
        end: times[1] as u64,
        stopped_at: stopped_at.map(|at| at as u64),
        deposit: amount(&text[3])?,
        refund: amount(&text[4])?,
        withdrawn: amount(&text[5])?,
        fees: amount(&text[6])?,
        credited: amount(&text[7])?,
        credited_seconds: times[2] as u64,
        refused: refused.as_deref().map(amount).transpose()?,
        opened_block: blocks[0] as u64,
        updated_block: blocks[1] as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(block: u64, id: u64) -> LoggedEvent {
        LoggedEvent {
            block,
            log_index: 0,
            rental_id: id,
            event: RentalEvent::Opened {
                renter: Address::repeat_byte(1),
                provider: Address::repeat_byte(2),
                offer_id: B256::ZERO,
                rate_per_second: U256::from(10),
                start: 1000,
                end: 2000,
                deposit: U256::from(10_000),
            },
        }
    }

    #[test]
    fn events_fold_into_totals() {
        let later = |block, event| LoggedEvent { block, log_index: 1, rental_id: 7, event };
        let events = [
            opened(5, 7),
            later(6, RentalEvent::Extended { new_end: 2500, cost: U256::from(5000) }),
            later(
                7,
                RentalEvent::Credited {
                    from: 1100,
                    to: 1160,
                    down_seconds: 60,
                    refund: U256::from(600),
                },
            ),
            later(8, RentalEvent::Stopped { stopped_at: 1500, refund: U256::from(10_000) }),
            later(9, RentalEvent::Withdrawn { amount: U256::from(3000), fee: U256::from(400) }),
        ];
        let r = fold(7, &events).unwrap();
        assert_eq!((r.end, r.stopped_at, r.credited_seconds), (2500, Some(1500), 60));
        assert_eq!(r.deposit, U256::from(15_000));
        assert_eq!((r.refund, r.credited), (U256::from(10_000), U256::from(600)));
        assert_eq!((r.withdrawn, r.fees), (U256::from(3000), U256::from(400)));
        assert_eq!((r.opened_block, r.updated_block), (5, 9));
        assert_eq!(r.refused, None);
        // Without its opening (before the indexed range) there is no rental to show.
        assert_eq!(fold(7, &events[1..]), None);
    }

    #[tokio::test]
    async fn a_refusal_is_stored_with_its_refund_and_rolled_back_with_its_block() {
        let (store, _dir) = crate::testing::store();
        let credit = LoggedEvent {
            block: 6,
            log_index: 0,
            rental_id: 1,
            event: RentalEvent::Credited {
                from: 1000,
                to: 1100,
                down_seconds: 60,
                refund: U256::from(600),
            },
        };
        store.apply_chain(update(&[5, 6], vec![opened(5, 1), credit], 7)).await.unwrap();
        assert_eq!(store.rental(1).await.unwrap().unwrap().refused, None);

        let refusal = LoggedEvent {
            block: 7,
            log_index: 0,
            rental_id: 1,
            event: RentalEvent::Refused { refund: U256::from(9_400) },
        };
        store.apply_chain(update(&[7], vec![refusal], 8)).await.unwrap();
        let refused = store.rental(1).await.unwrap().unwrap();
        assert_eq!(refused.refused, Some(U256::from(9_400)));
        // The refusal refunds what the credit left: together they are the whole deposit,
        // and nothing went to the provider.
        assert_eq!(refused.credited + U256::from(9_400), refused.deposit);
        assert_eq!(
            (refused.withdrawn, refused.refund, refused.updated_block),
            (U256::ZERO, U256::ZERO, 7)
        );

        let rollback = ChainUpdate { rollback_above: Some(6), ..update(&[], vec![], 7) };
        store.apply_chain(rollback).await.unwrap();
        assert_eq!(store.rental(1).await.unwrap().unwrap().refused, None);
    }

    fn update(blocks: &[u64], events: Vec<LoggedEvent>, next_block: u64) -> ChainUpdate {
        ChainUpdate {
            escrow: "0xe5c0".into(),
            rollback_above: None,
            blocks: blocks.iter().map(|n| (*n, format!("0x{n:x}"))).collect(),
            events,
            next_block,
        }
    }

    #[tokio::test]
    async fn rollbacks_replay_what_the_surviving_chain_says() {
        let (store, _dir) = crate::testing::store();
        assert_eq!(store.chain_cursor("0xe5c0".into()).await.unwrap(), ChainCursor::default());
        store.apply_chain(update(&[5], vec![opened(5, 1)], 6)).await.unwrap();
        let stop = LoggedEvent {
            block: 6,
            log_index: 0,
            rental_id: 1,
            event: RentalEvent::Stopped { stopped_at: 1200, refund: U256::from(8000) },
        };
        let second = LoggedEvent { log_index: 1, ..opened(6, 2) };
        store.apply_chain(update(&[6], vec![stop, second], 7)).await.unwrap();
        assert_eq!(store.rental(1).await.unwrap().unwrap().stopped_at, Some(1200));
        assert!(store.rental(2).await.unwrap().is_some());
        let cursor = store.chain_cursor("0xE5C0".into()).await.unwrap();
        assert_eq!(cursor.next_block, Some(7));
        assert_eq!(cursor.recent, vec![(6, "0x6".into()), (5, "0x5".into())]);

        // Block 6 is orphaned: the stop and the second rental never happened.
        let rollback = ChainUpdate { rollback_above: Some(5), ..update(&[], vec![], 6) };
        store.apply_chain(rollback).await.unwrap();
        let first = store.rental(1).await.unwrap().unwrap();
        assert_eq!((first.stopped_at, first.refund, first.updated_block), (None, U256::ZERO, 5));
        assert_eq!(store.rental(2).await.unwrap(), None);
        assert_eq!(store.chain_cursor("0xe5c0".into()).await.unwrap().recent.len(), 1);

        // Another escrow starts from scratch.
        assert_eq!(store.chain_cursor("0xbeef".into()).await.unwrap().next_block, None);
        store
            .apply_chain(ChainUpdate { escrow: "0xbeef".into(), ..update(&[9], vec![], 10) })
            .await
            .unwrap();
        assert_eq!(store.rental(1).await.unwrap(), None);
    }

    #[tokio::test]
    async fn migrating_to_version_6_indexes_the_chain_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        {
            // A version 5 index whose events lack the offer id.
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for migration in &super::super::schema::MIGRATIONS[..5] {
                tx.execute_batch(migration).unwrap();
            }
            tx.pragma_update(None, "user_version", 5).unwrap();
            tx.commit().unwrap();
            conn.execute_batch(
                "INSERT INTO chain_cursor (id, escrow, next_block) VALUES (1, '0xe5c0', 7);
                 INSERT INTO chain_blocks (number, hash) VALUES (6, '0x6');",
            )
            .unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        let cursor = store.chain_cursor("0xe5c0".into()).await.unwrap();
        assert_eq!(cursor, ChainCursor::default(), "the watcher starts from its first block");

        let machine_id = gpuflow_protocol::QuoteTerms::machine(OfferId::from_bytes([7; 8]), 2);
        let mut named = opened(5, 1);
        if let RentalEvent::Opened { offer_id, .. } = &mut named.event {
            *offer_id = machine_id;
        }
        store.apply_chain(update(&[5], vec![named], 6)).await.unwrap();
        assert_eq!(store.rental(1).await.unwrap().unwrap().offer_id, machine_id);
        assert_eq!(machine(machine_id), Some(OfferId::from_bytes([7; 8])));
        assert_eq!(machine(B256::ZERO), None, "no GPUs rented");
        assert_eq!(machine(B256::repeat_byte(7)), None, "not gpuflow's layout");
    }
}
