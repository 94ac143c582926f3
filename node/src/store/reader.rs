//! Reads, on a small pool of read-only connections in blocking tasks. WAL gives each read a
//! consistent snapshot of the last commit and never makes it wait for the writer, nor the
//! writer for it.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use gpuflow_protocol::{Heartbeat, OfferId, SignedEnvelope, api};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::Semaphore;

use super::{OfferDetail, ProviderInfo, SyncPage, clamp};
use crate::{StoreError, search::OfferSummary};

/// Reads running at once; more wait for a connection. Two cores, so a few suffice.
pub(super) const MAX_READERS: usize = 4;

/// The columns of an [`OfferSummary`] but `conflicts`, from `offers JOIN providers`. The
/// image lists are read from the signed offer itself, which every stored row keeps.
pub(super) const SUMMARY_COLUMNS: &str = "id, peer_id, offers.payout, gpu_name, num_gpus, gpu_ram_mb, \
    price_per_second, price_per_hour, verified, region, cuda_version, driver, listen_addrs, \
    seq, issued_at, expires_at, first_seen, inet_down_mbps, inet_up_mbps, disk_mb, \
    cpu_cores, cpu_ram_mb, \
    reliability, uptime, rentals, completed_rentals, sla_credits, proven_tflops, challenge_ok, \
    envelope -> '$.body.images' AS images, envelope -> '$.body.allowed_images' AS allowed_images";

#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(MAX_READERS)) }
    }

    /// Runs `read` on a pooled connection in a blocking task.
    pub(super) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| StoreError::Closed)?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = readers.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => readers.open()?,
            };
            let result = read(&conn);
            readers.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Read(e.to_string()))?
    }

    /// A new read-only connection to the database.
    pub(super) fn open(&self) -> Result<Connection, StoreError> {
        let open_error = |source| StoreError::Open { path: self.path.clone(), source };
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        // Only a checkpoint that restarts the WAL can make a reader wait, briefly.
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_error)?;
        Ok(conn)
    }
}

pub(super) fn get(
    conn: &Connection,
    id: OfferId,
    now: u64,
) -> Result<Option<OfferDetail>, StoreError> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, conflict_until > ?1 AS conflicts, envelope \
         FROM offers JOIN providers USING (peer_id) WHERE expires_at > ?1 AND id = ?2"
    );
    let found = conn
        .prepare_cached(&sql)?
        .query_row(params![clamp(now), id.to_string()], |row| {
            Ok((summary_from_row(row)?, row.get::<_, String>("envelope")?))
        })
        .optional()?;
    let Some((summary, envelope)) = found else {
        return Ok(None);
    };
    Ok(Some(OfferDetail { summary, envelope: serde_json::from_str(&envelope)? }))
}

/// The summaries of the offers `chosen` (ids, each with whether it conflicts now), in that
/// order, as a search hands them over. An offer deleted since it was chosen is left out.
pub(super) fn summaries(
    conn: &Connection,
    chosen: &[(OfferId, bool)],
) -> Result<Vec<OfferSummary>, StoreError> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, 0 AS conflicts FROM offers JOIN providers USING (peer_id) \
         WHERE id = ?1"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut offers = Vec::with_capacity(chosen.len());
    for &(id, conflicts) in chosen {
        let found = statement.query_row([id.to_string()], summary_from_row).optional()?;
        offers.extend(found.map(|summary| OfferSummary { conflicts, ..summary }));
    }
    Ok(offers)
}

pub(super) fn count(conn: &Connection, now: u64) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM offers WHERE expires_at > ?1")?
        .query_row([clamp(now)], |row| unsigned(row, 0))?)
}

pub(super) fn provider(
    conn: &Connection,
    peer_id: &str,
    offer: OfferId,
    now: u64,
) -> Result<Option<ProviderInfo>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT first_seen, heartbeat_count, heartbeat_seq, heartbeat_issued_at, \
             heartbeat_received_at, heartbeat FROM providers WHERE peer_id = ?1",
        )?
        .query_row([peer_id], |row| {
            Ok((
                unsigned(row, "first_seen")?,
                unsigned(row, "heartbeat_count")?,
                row.get::<_, Option<String>>("heartbeat")?,
                row.get::<_, Option<i64>>("heartbeat_received_at")?,
            ))
        })
        .optional()?;
    let Some((first_seen, heartbeat_count, heartbeat, received_at)) = found else {
        return Ok(None);
    };
    let last_heartbeat = match (heartbeat, received_at) {
        (Some(envelope), Some(received_at)) => {
            let envelope: SignedEnvelope = serde_json::from_str(&envelope)?;
            // Verified when it arrived; only its fields are needed here.
            let body: Heartbeat = serde_json::from_str(envelope.body.get())?;
            Some(api::HeartbeatSummary {
                seq: body.seq,
                issued_at: body.issued_at,
                received_at: u64::try_from(received_at).unwrap_or_default(),
                active_rentals: body.active_rentals,
                gpus: body.gpus,
                envelope,
            })
        }
        _ => None,
    };
    let offer = get(conn, offer, now)?.map(|detail| detail.summary);
    Ok(Some(ProviderInfo {
        peer_id: peer_id.to_owned(),
        first_seen,
        offer,
        heartbeat_count,
        last_heartbeat,
    }))
}

pub(super) fn sync_page(
    conn: &Connection,
    after: Option<OfferId>,
    limit: u32,
    now: u64,
) -> Result<SyncPage, StoreError> {
    let after = after.map(|id| id.to_string()).unwrap_or_default();
    let mut statement = conn.prepare_cached(
        "SELECT id, envelope FROM offers WHERE expires_at > ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = statement
        .query_map(params![clamp(now), after, i64::from(limit)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let next = if rows.len() == limit as usize {
        rows.last().and_then(|(id, _)| id.parse().ok())
    } else {
        None
    };
    let offers = rows
        .into_iter()
        .map(|(_, envelope)| serde_json::from_str(&envelope))
        .collect::<Result<_, _>>()?;
    Ok(SyncPage { offers, next })
}

pub(super) fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<OfferSummary> {
    let invalid = |column: &str, error: Box<dyn std::error::Error + Send + Sync>| {
        let index = row.as_ref().column_index(column).unwrap_or_default();
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error)
    };
    let optional = |column: &str| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(column)?.and_then(|v| u64::try_from(v).ok()))
    };
    // A JSON array, or NULL when the offer lists none.
    let list = |column: &str| -> rusqlite::Result<Vec<String>> {
        match row.get::<_, Option<String>>(column)? {
            Some(json) => serde_json::from_str(&json).map_err(|e| invalid(column, e.into())),
            None => Ok(Vec::new()),
        }
    };
    let id: String = row.get("id")?;
    let listen_addrs: String = row.get("listen_addrs")?;
    Ok(OfferSummary {
        id: id.parse().map_err(|e: String| invalid("id", e.into()))?,
        peer_id: row.get("peer_id")?,
        payout: row.get("payout")?,
        gpu_name: row.get("gpu_name")?,
        num_gpus: row.get("num_gpus")?,
        gpu_ram_mb: unsigned(row, "gpu_ram_mb")?,
        price_per_second: unsigned(row, "price_per_second")?.into(),
        price_per_hour: unsigned(row, "price_per_hour")?.into(),
        verified: row.get("verified")?,
        region: row.get("region")?,
        cuda: row.get("cuda_version")?,
        driver: row.get("driver")?,
        listen_addrs: serde_json::from_str(&listen_addrs)
            .map_err(|e| invalid("listen_addrs", e.into()))?,
        seq: unsigned(row, "seq")?,
        issued_at: unsigned(row, "issued_at")?,
        expires_at: unsigned(row, "expires_at")?,
        first_seen: unsigned(row, "first_seen")?,
        conflicts: row.get("conflicts")?,
        inet_down_mbps: optional("inet_down_mbps")?,
        inet_up_mbps: optional("inet_up_mbps")?,
        disk_mb: optional("disk_mb")?,
        cpu_cores: optional("cpu_cores")?,
        cpu_ram_mb: optional("cpu_ram_mb")?,
        reliability: row.get("reliability")?,
        uptime: row.get("uptime")?,
        rentals: unsigned(row, "rentals")?,
        completed_rentals: unsigned(row, "completed_rentals")?,
        sla_credits: unsigned(row, "sla_credits")?,
        proven_tflops: row.get("proven_tflops")?,
        challenge_ok: row.get("challenge_ok")?,
        images: list("images")?,
        allowed_images: list("allowed_images")?,
    })
}

/// Reads a column that only ever holds numbers stored from `u64`s.
fn unsigned<I: rusqlite::RowIndex + Copy>(row: &Row<'_>, column: I) -> rusqlite::Result<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value).map_err(|_| {
        let index = column.idx(row.as_ref()).unwrap_or_default();
        rusqlite::Error::IntegralValueOutOfRange(index, value)
    })
}
