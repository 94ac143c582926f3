//! The SQLite index of offers.
//!
//! One thread owns the [`rusqlite::Connection`]; [`Store`] is a cheap, cloneable handle that
//! sends it commands over a channel and awaits the replies, so async tasks never block on
//! SQLite and never share the connection.

use std::path::Path;

use gpuflow_protocol::{Offer, OfferId, SignedEnvelope, Verified};
use rusqlite::{
    Connection, OptionalExtension, Row, params, params_from_iter, types::Value as SqlValue,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Order, Query, StoreError,
    query::{cuda_thousandths, name_words},
};

/// Schema migrations; the database's `user_version` counts how many have been applied.
const MIGRATIONS: [&str; 1] = [r#"
CREATE TABLE offers (
    id TEXT PRIMARY KEY NOT NULL,          -- OfferId, 16 hex digits
    peer_id TEXT NOT NULL,
    payout TEXT NOT NULL COLLATE NOCASE,   -- lower-case 0x hex
    seq INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    gpu_name TEXT NOT NULL,
    gpu_name_words TEXT NOT NULL,          -- see query::name_words
    num_gpus INTEGER NOT NULL,
    gpu_ram_mb INTEGER NOT NULL,           -- smallest GPU memory, 10^6 bytes
    price_per_second INTEGER NOT NULL,     -- token units
    price_per_hour INTEGER NOT NULL,       -- token units
    verified INTEGER NOT NULL,
    region TEXT NOT NULL COLLATE NOCASE,
    cuda INTEGER,                          -- thousandths (12.4 -> 12400), NULL when unreadable
    cuda_version TEXT NOT NULL,            -- as advertised
    driver TEXT NOT NULL COLLATE NOCASE,
    listen_addrs TEXT NOT NULL,            -- JSON array of multiaddrs
    received_at INTEGER NOT NULL,
    envelope TEXT NOT NULL                 -- the signed envelope, JSON, served for re-verification
) STRICT;
CREATE INDEX offers_expires_at ON offers (expires_at);
CREATE INDEX offers_price_per_hour ON offers (price_per_hour);
"#];

/// Requests waiting for the store thread before senders are made to wait.
const QUEUE_DEPTH: usize = 256;

const SUMMARY_COLUMNS: &str = "id, peer_id, payout, gpu_name, num_gpus, gpu_ram_mb, \
    price_per_second, price_per_hour, verified, region, cuda_version, driver, listen_addrs, \
    seq, issued_at, expires_at";

/// Handle to the offer index; clones share the same database thread, which stops once every
/// handle is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    commands: mpsc::Sender<Command>,
}

/// What [`Store::upsert_offer`] did with an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// The provider had no offer stored; this one was added.
    Inserted,
    /// It carried a higher `seq` than the stored offer, which it replaced.
    Replaced,
    /// Its `seq` was not higher than the stored one (a replay or a duplicate); nothing changed.
    Stale,
}

/// The searchable facts of a live offer. The API serves them as
/// [`gpuflow_protocol::api::OfferSummary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferSummary {
    /// The offer's id.
    pub id: OfferId,
    /// The provider's libp2p peer id.
    pub peer_id: String,
    /// Address paid for rentals, lower-case 0x hex.
    pub payout: String,
    /// GPU model, e.g. `NVIDIA GeForce RTX 4090`.
    pub gpu_name: String,
    /// Number of GPUs rented together.
    pub num_gpus: u32,
    /// Memory per GPU, in MB (10⁶ bytes).
    pub gpu_ram_mb: u64,
    /// Price of the whole machine, in token units per second.
    pub price_per_second: u128,
    /// Price of the whole machine, in token units per hour.
    pub price_per_hour: u128,
    /// Whether the inventory was read through NVML rather than simulated.
    pub verified: bool,
    /// Region label chosen by the provider.
    pub region: String,
    /// Highest CUDA version the driver supports, as advertised (e.g. `12.4`).
    pub cuda: String,
    /// NVIDIA driver version.
    pub driver: String,
    /// Multiaddrs where the provider answers rental requests.
    pub listen_addrs: Vec<String>,
    /// The offer's sequence number.
    pub seq: u64,
    /// Unix time the offer was signed.
    pub issued_at: u64,
    /// Unix time after which the offer is void.
    pub expires_at: u64,
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

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Upsert { offer: Box<Verified<Offer>>, received_at: u64, reply: Reply<Upsert> },
    Search { query: Query, order: Order, limit: u32, now: u64, reply: Reply<Vec<OfferSummary>> },
    Get { id: OfferId, now: u64, reply: Reply<Option<OfferDetail>> },
    Count { now: u64, reply: Reply<u64> },
    Prune { now: u64, reply: Reply<u64> },
}

impl Store {
    /// Opens (creating it and its directory when missing) the database at `path`, brings its
    /// schema up to date and starts the thread that owns it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
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
        // With WAL, NORMAL only risks the last transactions on power loss, never corruption;
        // offers are re-gossiped every few minutes anyway.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_error)?;
        migrate(&mut conn)?;
        spawn(conn)
    }

    /// An empty store that lives in memory only.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        spawn(conn)
    }

    /// Stores a verified offer unless the same provider's stored offer is as new or newer.
    ///
    /// Fails with [`StoreError::OutOfRange`] when a number of the offer (its `seq` or a
    /// timestamp) exceeds `i64::MAX`; such an offer is invalid input, not a store failure.
    pub async fn upsert_offer(
        &self,
        offer: Verified<Offer>,
        received_at: u64,
    ) -> Result<Upsert, StoreError> {
        self.request(|reply| Command::Upsert { offer: Box::new(offer), received_at, reply }).await
    }

    /// Live offers (those with `expires_at > now`) matching `query`, sorted by `order` then
    /// by id, at most `limit` of them.
    pub async fn search(
        &self,
        query: Query,
        order: Order,
        limit: u32,
        now: u64,
    ) -> Result<Vec<OfferSummary>, StoreError> {
        self.request(|reply| Command::Search { query, order, limit, now, reply }).await
    }

    /// The offer with `id`, unless it is unknown or expired at `now`.
    pub async fn get_offer(
        &self,
        id: OfferId,
        now: u64,
    ) -> Result<Option<OfferDetail>, StoreError> {
        self.request(|reply| Command::Get { id, now, reply }).await
    }

    /// How many offers are live at `now`.
    pub async fn count_offers(&self, now: u64) -> Result<u64, StoreError> {
        self.request(|reply| Command::Count { now, reply }).await
    }

    /// Deletes offers expired at `now`, returning how many went. Expired offers are already
    /// invisible; pruning only reclaims space.
    pub async fn prune_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.request(|reply| Command::Prune { now, reply }).await
    }

    async fn request<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// A handle whose thread has already stopped, to exercise failure paths.
    #[cfg(test)]
    pub(crate) fn closed() -> Self {
        Self { commands: mpsc::channel(1).0 }
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(found)
        .ok()
        .filter(|&applied| applied <= MIGRATIONS.len())
        .ok_or(StoreError::UnknownSchema { found, supported })?;
    let tx = conn.transaction()?;
    for migration in &MIGRATIONS[applied..] {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(())
}

fn spawn(conn: Connection) -> Result<Store, StoreError> {
    let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
    std::thread::Builder::new()
        .name("gpuflow-store".into())
        .spawn(move || Db { conn }.run(receiver))
        .map_err(StoreError::Spawn)?;
    Ok(Store { commands })
}

/// The state owned by the store thread.
struct Db {
    conn: Connection,
}

impl Db {
    fn run(self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.blocking_recv() {
            // A reply fails only when the requester stopped waiting; there is no one to tell.
            let _delivered = match command {
                Command::Upsert { offer, received_at, reply } => {
                    reply.send(self.upsert(&offer, received_at)).is_ok()
                }
                Command::Search { query, order, limit, now, reply } => {
                    reply.send(self.search(&query, order, limit, now)).is_ok()
                }
                Command::Get { id, now, reply } => reply.send(self.get(id, now)).is_ok(),
                Command::Count { now, reply } => reply.send(self.count(now)).is_ok(),
                Command::Prune { now, reply } => reply.send(self.prune(now)).is_ok(),
            };
        }
    }

    fn upsert(&self, offer: &Verified<Offer>, received_at: u64) -> Result<Upsert, StoreError> {
        let id = OfferId::of(&offer.signer).to_string();
        let body = &offer.body;
        let seq = storable("seq", body.seq)?;
        let stored: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM offers WHERE id = ?1")?
            .query_row([&id], |row| row.get(0))
            .optional()?;
        if stored.is_some_and(|stored| stored >= seq) {
            return Ok(Upsert::Stale);
        }
        // Validation guarantees at least one GPU, all of one model and driver.
        let (gpu_name, cuda_version, driver) = body.gpus.first().map_or(("", "", ""), |gpu| {
            (gpu.name.as_str(), gpu.cuda_version.as_str(), gpu.driver_version.as_str())
        });
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO offers (id, peer_id, payout, seq, issued_at, expires_at, \
                 gpu_name, gpu_name_words, num_gpus, gpu_ram_mb, price_per_second, \
                 price_per_hour, verified, region, cuda, cuda_version, driver, listen_addrs, \
                 received_at, envelope) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?20)",
            )?
            .execute(params![
                id,
                offer.signer.to_string(),
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
                storable("received_at", received_at)?,
                serde_json::to_string(&offer.envelope)?,
            ])?;
        Ok(if stored.is_some() { Upsert::Replaced } else { Upsert::Inserted })
    }

    fn search(
        &self,
        query: &Query,
        order: Order,
        limit: u32,
        now: u64,
    ) -> Result<Vec<OfferSummary>, StoreError> {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM offers WHERE expires_at > ?");
        let mut params = vec![SqlValue::Integer(clamp(now))];
        query.push_sql(&mut sql, &mut params);
        sql.push_str(" ORDER BY ");
        sql.push_str(order.sql());
        sql.push_str(" LIMIT ?");
        params.push(SqlValue::Integer(limit.into()));
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params_from_iter(params), summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get(&self, id: OfferId, now: u64) -> Result<Option<OfferDetail>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, envelope FROM offers WHERE id = ?1 AND expires_at > ?2"
        );
        let found = self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![id.to_string(), clamp(now)], |row| {
                Ok((summary_from_row(row)?, row.get::<_, String>("envelope")?))
            })
            .optional()?;
        let Some((summary, envelope)) = found else {
            return Ok(None);
        };
        Ok(Some(OfferDetail { summary, envelope: serde_json::from_str(&envelope)? }))
    }

    fn count(&self, now: u64) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT count(*) FROM offers WHERE expires_at > ?1")?
            .query_row([clamp(now)], |row| unsigned(row, 0))?)
    }

    fn prune(&self, now: u64) -> Result<u64, StoreError> {
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM offers WHERE expires_at <= ?1")?
            .execute([clamp(now)])?;
        Ok(deleted as u64)
    }
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<OfferSummary> {
    let invalid = |column: &str, error: Box<dyn std::error::Error + Send + Sync>| {
        let index = row.as_ref().column_index(column).unwrap_or_default();
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error)
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
mod tests {
    use gpuflow_protocol::unix_now;

    use super::*;
    use crate::testing::Provider;

    async fn search(store: &Store, query: &str, order: &str) -> Vec<OfferSummary> {
        let query = Query::parse(query, 6).unwrap();
        store.search(query, Order::parse(order).unwrap(), 100, unix_now()).await.unwrap()
    }

    /// Names of the GPUs of the offers a query finds, in result order.
    async fn names(store: &Store, query: &str) -> Vec<String> {
        search(store, query, "dph").await.into_iter().map(|o| o.gpu_name).collect()
    }

    /// A store holding four distinct machines, cheapest first.
    async fn market() -> Store {
        let store = Store::open_in_memory().unwrap();
        let machines = [
            ("NVIDIA GeForce RTX 4090", 1, 25_757_220_864, 100, "12.4", "eu-west", false),
            ("NVIDIA A100-SXM4-80GB", 4, 85_899_345_920, 800, "12.2", "us-east", true),
            ("NVIDIA H100 80GB HBM3", 8, 85_520_809_984, 2_000, "12.8", "US-East", true),
            ("NVIDIA L40S", 2, 48_305_799_168, 300, "N/A", "ap-south", false),
        ];
        for (name, count, memory, price, cuda, region, verified) in machines {
            let offer = Provider::new().offer(|o| {
                o.gpus = (0..count)
                    .map(|i| {
                        let mut gpu = o.gpus[0].clone();
                        gpu.name = name.into();
                        gpu.uuid = format!("GPU-{i}");
                        gpu.memory_bytes = memory;
                        gpu.cuda_version = cuda.into();
                        gpu
                    })
                    .collect();
                o.price_per_second = price;
                o.region = region.into();
                o.verified = verified;
            });
            assert_eq!(store.upsert_offer(offer, unix_now()).await.unwrap(), Upsert::Inserted);
        }
        store
    }

    #[tokio::test]
    async fn newer_seq_replaces_and_replays_are_stale() {
        let store = Store::open_in_memory().unwrap();
        let provider = Provider::new();
        let now = unix_now();
        let first = provider.offer(|o| o.seq = 5);
        assert_eq!(store.upsert_offer(first.clone(), now).await.unwrap(), Upsert::Inserted);
        assert_eq!(store.upsert_offer(first, now).await.unwrap(), Upsert::Stale);
        let older = provider.offer(|o| {
            o.seq = 4;
            o.price_per_second = 1;
        });
        assert_eq!(store.upsert_offer(older, now).await.unwrap(), Upsert::Stale);
        let same_seq = provider.offer(|o| {
            o.seq = 5;
            o.price_per_second = 1;
        });
        assert_eq!(store.upsert_offer(same_seq, now).await.unwrap(), Upsert::Stale);
        let all = search(&store, "", "dph").await;
        assert_eq!((all.len(), all[0].seq, all[0].price_per_second), (1, 5, 100));

        let newer = provider.offer(|o| {
            o.seq = 6;
            o.price_per_second = 7;
        });
        assert_eq!(store.upsert_offer(newer, now).await.unwrap(), Upsert::Replaced);
        let all = search(&store, "", "dph").await;
        assert_eq!((all.len(), all[0].seq, all[0].price_per_second), (1, 6, 7));
        assert_eq!(store.count_offers(now).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn expired_offers_are_invisible_and_pruned() {
        let store = Store::open_in_memory().unwrap();
        let offer = Provider::new().offer(|_| {});
        let id = OfferId::of(&offer.signer);
        let expires_at = offer.body.expires_at;
        store.upsert_offer(offer, unix_now()).await.unwrap();
        let before = expires_at - 1;
        assert_eq!(store.count_offers(before).await.unwrap(), 1);
        assert!(store.get_offer(id, before).await.unwrap().is_some());
        assert_eq!(
            store.search(Query::default(), Order::default(), 10, before).await.unwrap().len(),
            1
        );

        assert_eq!(store.count_offers(expires_at).await.unwrap(), 0);
        assert!(store.get_offer(id, expires_at).await.unwrap().is_none());
        assert!(
            store
                .search(Query::default(), Order::default(), 10, expires_at)
                .await
                .unwrap()
                .is_empty()
        );

        assert_eq!(store.prune_expired(before).await.unwrap(), 0);
        assert_eq!(store.prune_expired(expires_at).await.unwrap(), 1);
        assert_eq!(store.count_offers(before).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn summaries_carry_the_indexed_facts() {
        let store = Store::open_in_memory().unwrap();
        let provider = Provider::new();
        let offer = provider.offer(|_| {});
        let expected_peer = offer.signer.to_string();
        store.upsert_offer(offer.clone(), unix_now()).await.unwrap();
        let summary = search(&store, "", "dph").await.remove(0);
        assert_eq!(summary.id, OfferId::of(&offer.signer));
        assert_eq!(summary.peer_id, expected_peer);
        assert_eq!(summary.payout, format!("{:#x}", provider.payout.address()));
        assert_eq!(summary.payout, summary.payout.to_lowercase());
        assert_eq!(summary.gpu_name, "NVIDIA GeForce RTX 4090");
        assert_eq!((summary.num_gpus, summary.gpu_ram_mb), (1, 25_757));
        assert_eq!((summary.price_per_second, summary.price_per_hour), (100, 360_000));
        assert_eq!((summary.cuda.as_str(), summary.driver.as_str()), ("12.4", "550.54.14"));
        assert_eq!(summary.listen_addrs, offer.body.listen_addrs);
        assert_eq!(
            (summary.issued_at, summary.expires_at),
            (offer.body.issued_at, offer.body.expires_at)
        );
    }

    #[tokio::test]
    async fn detail_serves_an_envelope_that_verifies() {
        let store = Store::open_in_memory().unwrap();
        let offer = Provider::new().offer(|_| {});
        let id = OfferId::of(&offer.signer);
        store.upsert_offer(offer.clone(), unix_now()).await.unwrap();
        let detail = store.get_offer(id, unix_now()).await.unwrap().unwrap();
        assert_eq!(detail.summary.id, id);

        let reopened = detail.envelope.open::<Offer>().unwrap();
        assert_eq!(reopened.signer, offer.signer);
        assert_eq!(reopened.body, offer.body);

        let unknown = OfferId::of(&Provider::new().identity.peer_id());
        assert!(store.get_offer(unknown, unix_now()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn filters_select_the_right_machines() {
        let store = market().await;
        let cases: [(&str, &[&str]); 20] = [
            ("", &["RTX 4090", "L40S", "A100", "H100"]),
            ("gpu_name=RTX_4090", &["RTX 4090"]),
            ("gpu_name=nvidia_geforce_rtx_4090", &["RTX 4090"]),
            ("gpu_name=RTX_409", &[]),
            ("gpu_name=L40", &[]),
            ("gpu_name=a100", &["A100"]),
            ("gpu_name!=RTX_4090", &["L40S", "A100", "H100"]),
            ("gpu_name in [H100,L40S]", &["L40S", "H100"]),
            ("gpu_name notin [H100,L40S]", &["RTX 4090", "A100"]),
            ("num_gpus>=4", &["A100", "H100"]),
            ("num_gpus in [1,8]", &["RTX 4090", "H100"]),
            ("gpu_ram>=80", &["A100", "H100"]),
            ("gpu_ram>=25.757 gpu_ram<=25.757", &["RTX 4090"]),
            ("gpu_ram=25.758", &[]),
            // 800 units/s is 2.88 dollars per hour at 6 decimals.
            ("dph<=2.88", &["RTX 4090", "L40S", "A100"]),
            ("dph<2.88", &["RTX 4090", "L40S"]),
            ("verified=true", &["A100", "H100"]),
            ("region=us_east", &[]),
            ("region=US-EAST", &["A100", "H100"]),
            ("cuda>=12.4", &["RTX 4090", "H100"]),
        ];
        for (query, expected) in cases {
            let found = names(&store, query).await;
            let short: Vec<_> = found
                .iter()
                .map(|n| expected.iter().find(|e| n.contains(*e)).copied().unwrap_or(n.as_str()))
                .collect();
            assert_eq!(short, expected, "{query}: found {found:?}");
        }
        // Unknown CUDA versions match no condition on `cuda`, not even a negative one.
        assert_eq!(names(&store, "cuda!=12.4").await.len(), 2);
        assert_eq!(names(&store, "cuda notin [12.4]").await.len(), 2);
        assert_eq!(names(&store, "driver=550.54.14").await.len(), 4);
        assert_eq!(names(&store, "region in [EU-WEST,ap-south]").await.len(), 2);
        assert_eq!(names(&store, "region notin [eu-west]").await.len(), 3);
        assert_eq!(names(&store, "verified!=true").await.len(), 2);
    }

    #[tokio::test]
    async fn payout_matches_any_case() {
        let store = market().await;
        let provider = Provider::new();
        store.upsert_offer(provider.offer(|_| {}), unix_now()).await.unwrap();
        let upper = format!("0x{}", alloy::hex::encode_upper(provider.payout.address()));
        let found = search(&store, &format!("payout={upper}"), "dph").await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].payout, format!("{:#x}", provider.payout.address()));
        assert_eq!(search(&store, &format!("payout!={upper}"), "dph").await.len(), 4);
    }

    #[tokio::test]
    async fn orders_and_limits_are_deterministic() {
        let store = market().await;
        let ram: Vec<_> =
            search(&store, "", "gpu_ram-").await.iter().map(|o| o.gpu_ram_mb).collect();
        assert_eq!(ram, [85_899, 85_520, 48_305, 25_757]);
        let gpus: Vec<_> =
            search(&store, "", "num_gpus").await.iter().map(|o| o.num_gpus).collect();
        assert_eq!(gpus, [1, 2, 4, 8]);
        let prices: Vec<_> =
            search(&store, "", "dph-").await.iter().map(|o| o.price_per_second).collect();
        assert_eq!(prices, [2_000, 800, 300, 100]);
        let cuda: Vec<_> = search(&store, "", "cuda").await.into_iter().map(|o| o.cuda).collect();
        assert_eq!(cuda, ["12.2", "12.4", "12.8", "N/A"], "unknown versions sort last");
        let cuda: Vec<_> = search(&store, "", "cuda-").await.into_iter().map(|o| o.cuda).collect();
        assert_eq!(cuda, ["12.8", "12.4", "12.2", "N/A"]);

        // Equal prices fall back to id order, whichever way the price is sorted.
        let store = Store::open_in_memory().unwrap();
        for _ in 0..5 {
            store.upsert_offer(Provider::new().offer(|_| {}), unix_now()).await.unwrap();
        }
        let ids = |offers: Vec<OfferSummary>| {
            offers.into_iter().map(|o| o.id.to_string()).collect::<Vec<_>>()
        };
        let ascending = ids(search(&store, "", "dph").await);
        let mut sorted = ascending.clone();
        sorted.sort();
        assert_eq!(ascending, sorted);
        assert_eq!(ids(search(&store, "", "dph-").await), sorted);
        let first_two =
            store.search(Query::default(), Order::default(), 2, unix_now()).await.unwrap();
        assert_eq!(ids(first_two), sorted[..2]);
    }

    #[tokio::test]
    async fn file_store_uses_wal_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/offers.sqlite");
        let offer = Provider::new().offer(|_| {});
        {
            let store = Store::open(&path).unwrap();
            store.upsert_offer(offer.clone(), unix_now()).await.unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, 1);
        drop(conn);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.upsert_offer(offer, unix_now()).await.unwrap(), Upsert::Stale);
        assert_eq!(store.count_offers(unix_now()).await.unwrap(), 1);
    }

    #[test]
    fn unknown_schemas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for version in [99, -1] {
            let path = dir.path().join(format!("offers{version}.sqlite"));
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
            drop(conn);
            match Store::open(&path) {
                Err(StoreError::UnknownSchema { found, supported: 1 }) => {
                    assert_eq!(found, version)
                }
                other => panic!("version {version}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn numbers_beyond_i64_are_refused() {
        let store = Store::open_in_memory().unwrap();
        let offer = Provider::new().offer(|o| o.seq = u64::MAX);
        assert!(matches!(
            store.upsert_offer(offer, unix_now()).await,
            Err(StoreError::OutOfRange { field: "seq", .. })
        ));
    }

    #[tokio::test]
    async fn a_closed_store_says_so() {
        let err = Store::closed().count_offers(0).await.unwrap_err();
        assert!(matches!(err, StoreError::Closed));
    }
}
