//! The agent's durable state in SQLite: issued quotes, rentals, GPU allocations and the
//! last chain block processed, so a restart resumes where the agent stopped.
//!
//! One thread owns the connection; [`Store`] is a cloneable handle that sends it jobs.
//! A GPU is allocated by inserting its UUID into a table keyed by that UUID, so the
//! database itself refuses to hand one GPU to two live rentals.

use std::{path::Path, str::FromStr};

use alloy::primitives::{Address, U256};
use gpuflow_protocol::Launch;
use rusqlite::{Connection, OptionalExtension, params, types::Type};
use tokio::sync::oneshot;

use crate::runtime::Reach;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("provider database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread owning the connection is gone.
    #[error("the provider database thread stopped")]
    Closed,
    /// The database directory or its thread could not be created.
    #[error("provider database: {0}")]
    Io(#[from] std::io::Error),
}

/// A renter's volume the agent keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeRecord {
    /// Its machine-wide key ([`crate::runtime::volume_key`]).
    pub key: String,
    /// Whose it is.
    pub renter: Address,
    /// The renter's name for it.
    pub name: String,
    /// When it is deleted (chain time), unless a rental uses it again first; `None` while
    /// a rental uses it.
    pub delete_after: Option<u64>,
}

/// A quote the agent signed, kept until its nonce is used or its deadline passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteRecord {
    /// The quote's nonce (stored in decimal).
    pub nonce: U256,
    /// The renter it was signed for.
    pub renter: Address,
    /// Token units per second (stored in decimal).
    pub rate_per_second: u128,
    /// Longest rental it allows, in seconds.
    pub max_duration: u64,
    /// Unix time after which it cannot open a rental.
    pub deadline: u64,
    /// The GPUs it was issued for.
    pub gpus: Vec<String>,
    /// The container image the renter asked for (`None`: the provider's default).
    pub image: Option<String>,
    /// The renter's SSH public key, if given.
    pub ssh_key: Option<String>,
    /// The renter's environment, ports and command.
    pub launch: Launch,
}

/// A rental the agent has seen on chain, and what it did about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RentalRecord {
    /// Rental id in `GpuEscrow`.
    pub id: u64,
    /// The renter's address.
    pub renter: Address,
    /// Scheduled end, unix seconds (chain time).
    pub ends_at: u64,
    /// GPUs allocated to it (empty when refused).
    pub gpus: Vec<String>,
    /// Workload state, as in `WorkloadState`'s display form.
    pub state: String,
    /// How to reach the workload, or why it is not running.
    pub detail: String,
    /// When the workload started.
    pub started_at: Option<u64>,
    /// When it ended.
    pub ended_at: Option<u64>,
    /// Runtime handle of the workload (process group id or container id).
    pub handle: Option<String>,
    /// True once nothing more is owed to the provider.
    pub paid_out: bool,
    /// The container image the renter asked for in the quote (`None`: the default).
    pub image: Option<String>,
    /// The renter's SSH public key from the quote, installed in the workload.
    pub ssh_key: Option<String>,
    /// The block whose `RentalOpened` the agent acted on.
    pub opened_block: Option<u64>,
    /// The nonce of the quote it was opened with (stored in decimal): a rental id taken
    /// over by another rental in a chain reorganisation shows a different one.
    pub nonce: Option<U256>,
    /// For a refused rental, the provider's signed refusal (0x-hex), which returns the whole
    /// deposit to the renter through `GpuEscrow.refuse`.
    pub refusal: Option<String>,
    /// The renter's environment, ports and command, from the quote.
    pub launch: Launch,
    /// Where the renter reaches the running workload; read from the runtime, never
    /// stored (a restarted workload may be elsewhere).
    pub reach: Reach,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Cloneable handle to the thread that owns the database connection.
#[derive(Clone, Debug)]
pub struct Store {
    jobs: std::sync::mpsc::Sender<Job>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quotes (
    nonce TEXT PRIMARY KEY, renter TEXT NOT NULL, rate_per_second TEXT NOT NULL,
    max_duration INTEGER NOT NULL, deadline INTEGER NOT NULL, gpus TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rentals (
    id INTEGER PRIMARY KEY, renter TEXT NOT NULL, ends_at INTEGER NOT NULL,
    gpus TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL,
    started_at INTEGER, ended_at INTEGER, handle TEXT, paid_out INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS allocations (
    gpu TEXT PRIMARY KEY, rental_id INTEGER NOT NULL REFERENCES rentals(id));
CREATE TABLE IF NOT EXISTS volumes (
    key TEXT PRIMARY KEY, renter TEXT NOT NULL, name TEXT NOT NULL, delete_after INTEGER);
";

/// Columns added after the first release, with their types: created on databases that
/// lack them.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("quotes", "image", "TEXT"),
    ("quotes", "ssh_key", "TEXT"),
    ("rentals", "image", "TEXT"),
    ("rentals", "ssh_key", "TEXT"),
    ("rentals", "opened_block", "INTEGER"),
    ("rentals", "nonce", "TEXT"),
    ("rentals", "refusal", "TEXT"),
    ("quotes", "launch", "TEXT"),
    ("rentals", "launch", "TEXT"),
];

const QUOTE_COLUMNS: &str = "nonce, renter, rate_per_second, max_duration, deadline, gpus, \
                             image, ssh_key, launch";
const RENTAL_COLUMNS: &str = "id, renter, ends_at, gpus, state, detail, started_at, ended_at, \
                              handle, paid_out, image, ssh_key, opened_block, nonce, refusal, launch";

/// Adds the columns of [`ADDED_COLUMNS`] a database made by an older agent lacks.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let present = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .any(|name| name == column);
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the database at `path` and starts its owning thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path)?;
        // WAL keeps readers of the file (operators with sqlite3) from blocking the agent;
        // FULL sync makes a committed allocation survive power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new().name("provider-db".into()).spawn(move || {
            for job in queue {
                job(&mut conn);
            }
        })?;
        Ok(Self { jobs })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = reply.send(f(conn));
            }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// The last chain block whose events were all processed.
    pub async fn last_block(&self) -> Result<Option<u64>, StoreError> {
        self.call(|c| {
            Ok(c.query_row("SELECT value FROM meta WHERE key = 'last_block'", [], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// The counter of the next quote nonce, once this store has recorded a quote.
    pub async fn next_quote_counter(&self) -> Result<Option<u64>, StoreError> {
        self.call(|c| {
            Ok(c.query_row("SELECT value FROM meta WHERE key = 'next_quote_counter'", [], |r| {
                r.get(0)
            })
            .optional()?)
        })
        .await
    }

    /// Records that every event up to `block` was processed.
    pub async fn set_last_block(&self, block: u64) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('last_block', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![block],
            )?;
            Ok(())
        })
        .await
    }

    /// Stores a signed quote and forgets quotes whose deadline is before `processed`: the
    /// time of the latest block whose events the agent has handled. A quote opens a rental
    /// only in a block no later than its deadline, so once such blocks are all handled the
    /// quote can match nothing more, however long the agent was down before. `next_counter`
    /// is where the next run's quote nonces continue (see agent/nonces.rs); the stored value
    /// only ever grows.
    pub async fn record_quote(
        &self,
        quote: QuoteRecord,
        next_counter: u64,
        processed: u64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM quotes WHERE deadline < ?1", params![processed])?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('next_quote_counter', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                params![i64::try_from(next_counter).unwrap_or(i64::MAX)],
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO quotes ({QUOTE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    quote.nonce.to_string(),
                    quote.renter.to_string(),
                    quote.rate_per_second.to_string(),
                    quote.max_duration,
                    quote.deadline,
                    quote.gpus.join(","),
                    quote.image,
                    quote.ssh_key,
                    launch_text(&quote.launch)
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The quote issued with `nonce`, if this agent issued it.
    pub async fn quote(&self, nonce: U256) -> Result<Option<QuoteRecord>, StoreError> {
        self.call(move |c| {
            let sql = format!("SELECT {QUOTE_COLUMNS} FROM quotes WHERE nonce = ?1");
            Ok(c.query_row(&sql, params![nonce.to_string()], quote_row).optional()?)
        })
        .await
    }

    /// Quotes that may still open a rental at or after `now` (chain time) and have opened
    /// none yet: their GPUs stay reserved across a restart.
    pub async fn pending_quotes(&self, now: u64) -> Result<Vec<QuoteRecord>, StoreError> {
        self.call(move |c| {
            let sql = format!(
                "SELECT {QUOTE_COLUMNS} FROM quotes WHERE deadline >= ?1 AND nonce NOT IN \
                 (SELECT nonce FROM rentals WHERE nonce IS NOT NULL) ORDER BY nonce"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params![now], quote_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Stores a new rental and allocates its GPUs in one transaction. Returns the GPUs
    /// already held by another rental, and stores nothing, when any of them is busy.
    pub async fn open_rental(&self, rental: RentalRecord) -> Result<Vec<String>, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let mut busy = Vec::new();
            for gpu in &rental.gpus {
                let held: Option<u64> = tx
                    .query_row(
                        "SELECT rental_id FROM allocations WHERE gpu = ?1",
                        params![gpu],
                        |r| r.get(0),
                    )
                    .optional()?;
                if held.is_some() {
                    busy.push(gpu.clone());
                }
            }
            if !busy.is_empty() {
                return Ok(busy);
            }
            upsert(&tx, &rental)?;
            for gpu in &rental.gpus {
                tx.execute("INSERT INTO allocations VALUES (?1, ?2)", params![gpu, rental.id])?;
            }
            tx.commit()?;
            Ok(Vec::new())
        })
        .await
    }

    /// Stores a rental's new state; an ended or refused rental gives its GPUs back.
    pub async fn save_rental(&self, rental: RentalRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            upsert(&tx, &rental)?;
            if rental.state != "running" && rental.state != "starting" {
                tx.execute("DELETE FROM allocations WHERE rental_id = ?1", params![rental.id])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Records that a rental uses the volume: kept, with no deletion time, until released.
    pub async fn use_volume(&self, volume: VolumeRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO volumes (key, renter, name, delete_after) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT (key) DO UPDATE SET delete_after = NULL",
                params![volume.key, volume.renter.to_string(), volume.name],
            )?;
            Ok(())
        })
        .await
    }

    /// Sets when the volume `key`, no longer used, is deleted.
    pub async fn release_volume(&self, key: String, delete_after: u64) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE volumes SET delete_after = ?2 WHERE key = ?1",
                params![key, delete_after],
            )?;
            Ok(())
        })
        .await
    }

    /// Every volume kept, by key.
    pub async fn volumes(&self) -> Result<Vec<VolumeRecord>, StoreError> {
        self.call(|c| {
            let mut stmt =
                c.prepare("SELECT key, renter, name, delete_after FROM volumes ORDER BY key")?;
            let rows = stmt.query_map([], |r| {
                Ok(VolumeRecord {
                    key: r.get(0)?,
                    renter: parsed(r, 1)?,
                    name: r.get(2)?,
                    delete_after: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Forgets the volume `key`, once the runtime deleted it.
    pub async fn forget_volume(&self, key: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM volumes WHERE key = ?1", params![key])?;
            Ok(())
        })
        .await
    }

    /// Every rental, by id.
    pub async fn rentals(&self) -> Result<Vec<RentalRecord>, StoreError> {
        self.call(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {RENTAL_COLUMNS} FROM rentals ORDER BY id"))?;
            let rows = stmt.query_map([], |r| {
                Ok(RentalRecord {
                    id: r.get(0)?,
                    renter: parsed(r, 1)?,
                    ends_at: r.get(2)?,
                    gpus: split(r.get::<_, String>(3)?),
                    state: r.get(4)?,
                    detail: r.get(5)?,
                    started_at: r.get(6)?,
                    ended_at: r.get(7)?,
                    handle: r.get(8)?,
                    paid_out: r.get(9)?,
                    image: r.get(10)?,
                    ssh_key: r.get(11)?,
                    opened_block: r.get(12)?,
                    nonce: r.get::<_, Option<String>>(13)?.map(|n| parse(13, &n)).transpose()?,
                    refusal: r.get(14)?,
                    launch: launch_of(r, 15)?,
                    reach: Reach::default(),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Deletes a rental and frees its GPUs: a chain reorganisation took it away.
    pub async fn delete_rental(&self, id: u64) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM allocations WHERE rental_id = ?1", params![id])?;
            tx.execute("DELETE FROM rentals WHERE id = ?1", params![id])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// UUIDs of the GPUs allocated to live rentals.
    pub async fn allocated(&self) -> Result<Vec<String>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare("SELECT gpu FROM allocations ORDER BY gpu")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

fn upsert(tx: &rusqlite::Transaction<'_>, r: &RentalRecord) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO rentals ({RENTAL_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT(id) DO UPDATE SET ends_at = excluded.ends_at, state = excluded.state,
           detail = excluded.detail, started_at = excluded.started_at,
           ended_at = excluded.ended_at, handle = excluded.handle, paid_out = excluded.paid_out,
           opened_block = excluded.opened_block, refusal = excluded.refusal"
        ),
        params![
            r.id,
            r.renter.to_string(),
            r.ends_at,
            r.gpus.join(","),
            r.state,
            r.detail,
            r.started_at,
            r.ended_at,
            r.handle,
            r.paid_out,
            r.image,
            r.ssh_key,
            r.opened_block,
            r.nonce.map(|n| n.to_string()),
            r.refusal,
            launch_text(&r.launch)
        ],
    )
}

fn quote_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QuoteRecord> {
    Ok(QuoteRecord {
        nonce: parsed(r, 0)?,
        renter: parsed(r, 1)?,
        rate_per_second: parsed(r, 2)?,
        max_duration: r.get(3)?,
        deadline: r.get(4)?,
        gpus: split(r.get::<_, String>(5)?),
        image: r.get(6)?,
        ssh_key: r.get(7)?,
        launch: launch_of(r, 8)?,
    })
}

/// A launch as stored: JSON, or NULL when empty (as rows of older agents are).
fn launch_text(launch: &Launch) -> Option<String> {
    (!launch.is_empty()).then(|| serde_json::to_string(launch).expect("a launch serializes"))
}

/// The launch in column `index` of `row`.
fn launch_of(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Launch> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(Launch::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        }),
    }
}

/// Column `index` of `row`, stored as text, parsed into its type.
fn parsed<T>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    parse(index, &row.get::<_, String>(index)?)
}

/// `text`, read from column `index`, parsed into its type; a value that does not parse is
/// reported as the column's conversion failure.
fn parse<T>(index: usize, text: &str) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

fn split(text: String) -> Vec<String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rental(id: u64, gpus: &[&str]) -> RentalRecord {
        RentalRecord {
            id,
            renter: Address::repeat_byte(1),
            ends_at: 100,
            gpus: gpus.iter().map(|g| g.to_string()).collect(),
            state: "running".into(),
            detail: String::new(),
            started_at: Some(1),
            ended_at: None,
            handle: Some("42".into()),
            paid_out: false,
            image: Some("ubuntu:22.04".into()),
            ssh_key: None,
            opened_block: Some(7),
            nonce: Some(U256::from(77)),
            refusal: None,
            launch: Launch::default(),
            reach: Reach::default(),
        }
    }

    #[tokio::test]
    async fn a_gpu_is_never_allocated_twice_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provider.db");
        let store = Store::open(&path).unwrap();
        assert!(store.open_rental(rental(1, &["GPU-a", "GPU-b"])).await.unwrap().is_empty());
        assert_eq!(store.open_rental(rental(2, &["GPU-b"])).await.unwrap(), vec!["GPU-b"]);
        store.set_last_block(9).await.unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.last_block().await.unwrap(), Some(9));
        assert_eq!(store.rentals().await.unwrap(), vec![rental(1, &["GPU-a", "GPU-b"])]);
        assert_eq!(store.allocated().await.unwrap(), vec!["GPU-a", "GPU-b"]);
        let mut ended = rental(1, &["GPU-a", "GPU-b"]);
        ended.state = "ended".into();
        store.save_rental(ended).await.unwrap();
        assert!(store.allocated().await.unwrap().is_empty());
        assert!(store.open_rental(rental(2, &["GPU-b"])).await.unwrap().is_empty());

        // A rental a reorganisation took away leaves nothing behind.
        store.delete_rental(2).await.unwrap();
        assert!(store.allocated().await.unwrap().is_empty());
        assert_eq!(store.rentals().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn quotes_are_found_by_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("provider.db")).unwrap();
        let quote = QuoteRecord {
            nonce: U256::from(77),
            renter: Address::repeat_byte(2),
            rate_per_second: 100,
            max_duration: 3600,
            deadline: 1_000,
            gpus: vec!["GPU-a".into()],
            image: Some("pytorch/pytorch:2.4.0".into()),
            ssh_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 renter".into()),
            launch: Launch { ports: vec![8888], ..Launch::default() },
        };
        store.record_quote(quote.clone(), 1, 500).await.unwrap();
        assert_eq!(store.quote(U256::from(77)).await.unwrap(), Some(quote.clone()));
        assert_eq!(store.quote(U256::from(78)).await.unwrap(), None);
        // Blocks up to the deadline handled: still kept, a rental may open at the deadline.
        let later = QuoteRecord { nonce: U256::from(78), deadline: 5_000, ..quote.clone() };
        store.record_quote(later.clone(), 2, 1_000).await.unwrap();
        assert_eq!(store.quote(U256::from(77)).await.unwrap(), Some(quote));
        // Past it: forgotten; the newer quote stays.
        let last = QuoteRecord { nonce: U256::from(79), deadline: 5_000, ..later.clone() };
        store.record_quote(last, 3, 1_001).await.unwrap();
        assert_eq!(store.quote(U256::from(77)).await.unwrap(), None);
        assert_eq!(store.quote(U256::from(78)).await.unwrap(), Some(later.clone()));
        // Both later quotes still hold their GPUs, until one opens a rental.
        let nonces =
            |quotes: Vec<QuoteRecord>| quotes.into_iter().map(|q| q.nonce.to_string()).collect();
        let pending: Vec<String> = nonces(store.pending_quotes(5_000).await.unwrap());
        assert_eq!(pending, ["78", "79"]);
        assert!(store.pending_quotes(5_001).await.unwrap().is_empty());
        let opened = RentalRecord { nonce: Some(U256::from(78)), ..rental(1, &["GPU-a"]) };
        assert!(store.open_rental(opened).await.unwrap().is_empty());
        let pending: Vec<String> = nonces(store.pending_quotes(2_000).await.unwrap());
        assert_eq!(pending, ["79"]);
    }

    #[tokio::test]
    async fn a_database_of_an_older_agent_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provider.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE quotes (
                nonce TEXT PRIMARY KEY, renter TEXT NOT NULL, rate_per_second TEXT NOT NULL,
                max_duration INTEGER NOT NULL, deadline INTEGER NOT NULL, gpus TEXT NOT NULL);
             INSERT INTO quotes VALUES
                 ('5', '0x0202020202020202020202020202020202020202', '100', 60, 1000, 'GPU-a');",
        )
        .unwrap();
        drop(old);
        let store = Store::open(&path).unwrap();
        let quote = store.quote(U256::from(5)).await.unwrap().unwrap();
        assert_eq!((quote.image, quote.ssh_key), (None, None));
        assert_eq!(quote.gpus, vec!["GPU-a"]);
        drop(store);
        Store::open(&path).expect("migrating twice is harmless");
    }
}
