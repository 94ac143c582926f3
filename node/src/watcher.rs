//! The chain watcher: indexes `GpuEscrow` events into the store, `confirmations` blocks
//! behind the head, and survives reorgs.
//!
//! Each step first checks that the last indexed block is still on the chain. When its
//! hash changed, the watcher walks back over the hashes it kept (the store keeps
//! [`KEPT_HASHES`]) to the newest block that is still canonical, and rolls back
//! everything above it in one transaction; the next steps re-read from there. New blocks
//! are then read in ranges: the logs of the range, and the headers of its first and last
//! block and of every block with a log (every block, near the head, so that a later fork
//! can be located). The range is stored only if it hangs together: the first header's
//! parent is the last indexed block, consecutive headers chain, and each log's block hash
//! is the header's. A reorg in the middle of reading shows up as a mismatch, and the step
//! is tried again.
//!
//! Logs are read with the provider directly rather than through `Escrow::events`, because
//! the reorg checks need each log's block number, hash and index.
//!
//! The cursor lives in the database with the events, so a restarted node resumes where it
//! stopped.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
};
use futures::{StreamExt, TryStreamExt};
use gpuflow_escrow::EscrowEvent;

use crate::{
    ChainConfig, Store, StoreError,
    metrics::Metrics,
    store::{ChainCursor, ChainUpdate, KEPT_HASHES, LoggedEvent, RentalEvent},
};

/// Most blocks read in one step far behind the head (the limit most RPC providers put on
/// `eth_getLogs` ranges is larger).
const MAX_RANGE: u64 = 2_000;
/// Most blocks read in one step within [`KEPT_HASHES`] of the head, where every header is
/// fetched.
const MAX_RECENT_RANGE: u64 = 64;
/// Headers fetched at once.
const HEADER_CONCURRENCY: usize = 8;
/// Longest pause after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a watcher step failed; the watcher logs it and tries again later.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The RPC endpoint failed or refused a request.
    #[error("RPC request failed while {action}: {reason}")]
    Rpc {
        /// What the watcher was doing.
        action: &'static str,
        /// The endpoint's error.
        reason: String,
    },
    /// The store could not read or write the index.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a step achieved.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Blocks were indexed and more are ready.
    More,
    /// Every block confirmed at this head is indexed: wait for new blocks.
    CaughtUp(u64),
    /// A reorg was rolled back, or the chain changed while reading; step again at once.
    Retry,
}

/// The hash and parent hash of a block.
#[derive(Clone, Copy, Debug)]
struct Header {
    hash: B256,
    parent: B256,
}

/// Indexes the escrow of `config` into `store` until the task is aborted.
pub(crate) async fn run(config: ChainConfig, store: Store, metrics: Arc<Metrics>) {
    let provider = match gpuflow_escrow::connect(&config.rpc_url, None) {
        Ok(provider) => provider,
        Err(error) => {
            tracing::error!(%error, "chain watcher not started");
            return;
        }
    };
    let watcher = Watcher { provider, store, config, metrics };
    let mut failures = 0u32;
    loop {
        let pause = match watcher.step().await {
            Ok(Progress::More | Progress::Retry) => {
                failures = 0;
                continue;
            }
            Ok(Progress::CaughtUp(head)) => {
                failures = 0;
                watcher.metrics.set_chain_head(head);
                watcher.config.poll_interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, "chain watcher step failed");
                watcher.config.poll_interval.saturating_mul(1 << failures.min(6)).min(MAX_BACKOFF)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// One watcher: an RPC connection, the store and the settings.
struct Watcher {
    provider: DynProvider,
    store: Store,
    config: ChainConfig,
    metrics: Arc<Metrics>,
}

impl Watcher {
    fn escrow(&self) -> String {
        format!("{:#x}", self.config.escrow)
    }

    /// Checks for a reorg, then indexes the next range of confirmed blocks.
    async fn step(&self) -> Result<Progress, WatchError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| rpc("reading the block number", e))?;
        let cursor = self.store.chain_cursor(self.escrow()).await?;
        if let Some(keep) = self.fork_point(&cursor, head).await? {
            tracing::warn!(keep, "chain reorganised; rolling back the blocks above");
            self.store
                .apply_chain(ChainUpdate {
                    escrow: self.escrow(),
                    rollback_above: Some(keep),
                    next_block: keep + 1,
                    ..ChainUpdate::default()
                })
                .await?;
            self.metrics.chain_reorg();
            self.metrics.set_chain_next_block(keep + 1);
            return Ok(Progress::Retry);
        }
        let next = cursor.next_block.unwrap_or(self.config.from_block);
        let safe = head.saturating_sub(self.config.confirmations);
        if next > safe {
            return Ok(Progress::CaughtUp(head));
        }
        let recent = head.saturating_sub(next) < KEPT_HASHES;
        let to = safe.min(next + if recent { MAX_RECENT_RANGE } else { MAX_RANGE } - 1);

        let filter = Filter::new().address(self.config.escrow).from_block(next).to_block(to);
        let logs =
            self.provider.get_logs(&filter).await.map_err(|e| rpc("reading escrow events", e))?;
        let mut wanted: Vec<u64> = if recent {
            (next..=to).collect()
        } else {
            let mut wanted = vec![next, to];
            wanted.extend(logs.iter().filter_map(|log| log.block_number));
            wanted
        };
        wanted.sort_unstable();
        wanted.dedup();
        let headers: BTreeMap<u64, Option<Header>> = futures::stream::iter(wanted)
            .map(|number| async move { Ok::<_, WatchError>((number, self.header(number).await?)) })
            .buffered(HEADER_CONCURRENCY)
            .try_collect()
            .await?;
        let Some(headers) = headers
            .into_iter()
            .map(|(number, header)| header.map(|header| (number, header)))
            .collect::<Option<BTreeMap<u64, Header>>>()
        else {
            // A block vanished: the chain got shorter since the head was read.
            return Ok(Progress::Retry);
        };
        if !hangs_together(&cursor, next, &headers, &logs) {
            return Ok(Progress::Retry);
        }
        let events = logs.iter().filter_map(decode).collect();
        self.store
            .apply_chain(ChainUpdate {
                escrow: self.escrow(),
                rollback_above: None,
                blocks: headers.iter().map(|(n, h)| (*n, format!("{:#x}", h.hash))).collect(),
                events,
                next_block: to + 1,
            })
            .await?;
        self.metrics.set_chain_next_block(to + 1);
        tracing::debug!(from = next, to, "indexed escrow events");
        Ok(if to < safe { Progress::More } else { Progress::CaughtUp(head) })
    }

    /// When the last indexed block is no longer canonical, the newest kept block that is,
    /// above which everything must be rolled back. `None` when nothing changed.
    async fn fork_point(&self, cursor: &ChainCursor, head: u64) -> Result<Option<u64>, WatchError> {
        let Some((last, _)) = cursor.recent.first() else { return Ok(None) };
        for (index, (number, hash)) in cursor.recent.iter().enumerate() {
            let canonical = match *number <= head {
                true => self.header(*number).await?.map(|h| format!("{:#x}", h.hash)),
                false => None,
            };
            if canonical.as_deref() == Some(hash.as_str()) {
                return Ok((index > 0).then_some(*number));
            }
        }
        // Deeper than every kept hash: start again below the oldest one.
        let oldest = cursor.recent.last().map_or(*last, |(number, _)| *number);
        tracing::error!(oldest, "reorg deeper than the kept block hashes");
        Ok(Some(oldest.saturating_sub(1)))
    }

    async fn header(&self, number: u64) -> Result<Option<Header>, WatchError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(|e| rpc("reading a block header", e))?;
        Ok(block.map(|block| Header { hash: block.header.hash, parent: block.header.parent_hash }))
    }
}

/// Whether freshly read `headers` and `logs` from block `next` on continue the indexed
/// chain and agree with each other.
fn hangs_together(
    cursor: &ChainCursor,
    next: u64,
    headers: &BTreeMap<u64, Header>,
    logs: &[Log],
) -> bool {
    let previous = cursor.recent.first().filter(|(number, _)| *number + 1 == next);
    if let (Some((_, hash)), Some(first)) = (previous, headers.get(&next))
        && format!("{:#x}", first.parent) != *hash
    {
        return false;
    }
    let chained = headers
        .iter()
        .zip(headers.iter().skip(1))
        .all(|((n, a), (m, b))| *m != n + 1 || b.parent == a.hash);
    let logs_match = logs.iter().all(|log| {
        let header = log.block_number.and_then(|number| headers.get(&number));
        matches!((header, log.block_hash), (Some(h), Some(hash)) if h.hash == hash)
    });
    chained && logs_match
}

/// The escrow event in `log`, if it is one the index keeps.
fn decode(log: &Log) -> Option<LoggedEvent> {
    let small = |value: U256| u64::try_from(value).ok();
    let (rental_id, event) = match EscrowEvent::decode(log)? {
        EscrowEvent::Opened(e) => {
            let event = RentalEvent::Opened {
                renter: e.renter,
                provider: e.provider,
                offer_id: e.offerId,
                rate_per_second: e.ratePerSecond,
                start: small(e.start)?,
                end: small(e.end)?,
                deposit: e.deposit,
            };
            (e.rentalId, event)
        }
        EscrowEvent::Extended(e) => {
            (e.rentalId, RentalEvent::Extended { new_end: small(e.newEnd)?, cost: e.cost })
        }
        EscrowEvent::Stopped(e) => {
            (e.rentalId, RentalEvent::Stopped { stopped_at: small(e.stoppedAt)?, refund: e.refund })
        }
        EscrowEvent::Withdrawn(e) => {
            (e.rentalId, RentalEvent::Withdrawn { amount: e.amount, fee: e.fee })
        }
        EscrowEvent::Credited(e) => {
            let event = RentalEvent::Credited {
                from: small(e.from)?,
                to: small(e.to)?,
                down_seconds: small(e.downSeconds)?,
                refund: e.refund,
            };
            (e.rentalId, event)
        }
        EscrowEvent::Refused(e) => (e.rentalId, RentalEvent::Refused { refund: e.refund }),
    };
    Some(LoggedEvent {
        block: log.block_number?,
        log_index: log.log_index?,
        rental_id: small(rental_id)?,
        event,
    })
}

fn rpc(action: &'static str, error: impl std::fmt::Display) -> WatchError {
    WatchError::Rpc { action, reason: error.to_string() }
}
