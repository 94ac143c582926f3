//! Versioned schema migrations. The database's `user_version` counts how many have been
//! applied; each runs in its own transaction together with the version bump, so a crash
//! mid-migration leaves the previous version intact.

use rusqlite::Connection;

use crate::StoreError;

/// Every migration, oldest first. Never edit one that has shipped: append a new one.
pub(super) const MIGRATIONS: [&str; 11] = [
    // 1: offers, one row per provider.
    r#"
CREATE TABLE offers (
    id TEXT PRIMARY KEY NOT NULL,          -- OfferId, 16 hex digits
    peer_id TEXT NOT NULL,
    payout TEXT NOT NULL COLLATE NOCASE,   -- lower-case 0x hex
    seq INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    gpu_name TEXT NOT NULL,
    gpu_name_words TEXT NOT NULL,          -- see search::name_words
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
"#,
    // 2: providers (first sighting, offer high-water mark, last heartbeat), the GPU UUIDs
    // of every offer for conflict detection, and the optional machine facts.
    r#"
CREATE TABLE providers (
    peer_id TEXT PRIMARY KEY NOT NULL,
    first_seen INTEGER NOT NULL,           -- unix time this node first stored an offer of the peer
    offer_seq INTEGER NOT NULL,            -- highest offer seq ever stored; outlives pruning
    heartbeat_seq INTEGER,
    heartbeat_issued_at INTEGER,
    heartbeat_received_at INTEGER,
    heartbeat_count INTEGER NOT NULL DEFAULT 0,
    heartbeat TEXT                         -- the last heartbeat envelope, JSON
) STRICT;
INSERT INTO providers (peer_id, first_seen, offer_seq)
    SELECT peer_id, min(received_at), max(seq) FROM offers GROUP BY peer_id;

CREATE TABLE offer_gpus (
    offer_id TEXT NOT NULL,
    uuid TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (offer_id, uuid)
) STRICT, WITHOUT ROWID;
CREATE INDEX offer_gpus_uuid ON offer_gpus (uuid);
INSERT OR IGNORE INTO offer_gpus (offer_id, uuid)
    SELECT offers.id, gpu.value ->> '$.uuid'
    FROM offers, json_each(offers.envelope, '$.body.gpus') AS gpu;

ALTER TABLE offers ADD COLUMN inet_down_mbps INTEGER;
ALTER TABLE offers ADD COLUMN inet_up_mbps INTEGER;
ALTER TABLE offers ADD COLUMN disk_mb INTEGER;
UPDATE offers SET
    inet_down_mbps = envelope ->> '$.body.inet_down_mbps',
    inet_up_mbps = envelope ->> '$.body.inet_up_mbps',
    disk_mb = (envelope ->> '$.body.disk_bytes') / 1000000;
"#,
    // 3: the chain index (see store/chain.rs): escrow events as a log, rentals folded from
    // them, recent block hashes for reorg detection, and where the watcher resumes.
    r#"
CREATE TABLE chain_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    escrow TEXT NOT NULL,                  -- the indexed GpuEscrow, 0x hex
    next_block INTEGER NOT NULL            -- first block not indexed yet
) STRICT;
CREATE TABLE chain_blocks (
    number INTEGER PRIMARY KEY NOT NULL,
    hash TEXT NOT NULL                     -- 0x hex, as indexed
) STRICT;
CREATE TABLE chain_events (
    block INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    rental_id INTEGER NOT NULL,
    event TEXT NOT NULL,                   -- chain::RentalEvent, JSON
    PRIMARY KEY (block, log_index)
) STRICT;
CREATE INDEX chain_events_rental ON chain_events (rental_id, block, log_index);
CREATE TABLE rentals (
    id INTEGER PRIMARY KEY NOT NULL,
    renter TEXT NOT NULL,                  -- lower-case 0x hex
    provider TEXT NOT NULL COLLATE NOCASE, -- payout address, lower-case 0x hex
    rate_per_second TEXT NOT NULL,         -- token units, decimal (uint256)
    start_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL,               -- scheduled end after extensions
    stopped_at INTEGER,
    deposit TEXT NOT NULL,                 -- opening deposit + extensions, decimal
    refund TEXT NOT NULL,
    withdrawn TEXT NOT NULL,
    fees TEXT NOT NULL,
    credited TEXT NOT NULL,
    credited_seconds INTEGER NOT NULL,
    opened_block INTEGER NOT NULL,
    updated_block INTEGER NOT NULL
) STRICT;
CREATE INDEX rentals_provider ON rentals (provider, start_at);
"#,
    // 4: GPU UUID conflicts kept by the writer (store/writer.rs) instead of looked up per
    // searched row: the latest expiry of the other offers sharing a GPU UUID with this one,
    // 0 when none, so that a conflict still ends when the other offer expires. Search runs
    // on the in-memory index (store/index.rs), so the price index has no reader left.
    r#"
ALTER TABLE offers ADD COLUMN conflict_until INTEGER NOT NULL DEFAULT 0;
UPDATE offers SET conflict_until = coalesce((
    SELECT max(other.expires_at) FROM offer_gpus mine
    CROSS JOIN offer_gpus theirs ON theirs.uuid = mine.uuid AND theirs.offer_id <> mine.offer_id
    CROSS JOIN offers other ON other.id = theirs.offer_id
    WHERE mine.offer_id = offers.id), 0)
WHERE id IN (SELECT mine.offer_id FROM offer_gpus mine
    CROSS JOIN offer_gpus theirs ON theirs.uuid = mine.uuid AND theirs.offer_id <> mine.offer_id);
DROP INDEX offers_price_per_hour;
"#,
    // 5: uptime evidence (see store/uptime.rs) and the scores computed from it, beside each
    // provider for search; the payout address links a provider to its rentals.
    r#"
-- Uptime evidence lives in the provider's row, which every heartbeat updates anyway.
ALTER TABLE providers ADD COLUMN uptime_bucket_secs INTEGER;  -- width of the buckets the runs count
ALTER TABLE providers ADD COLUMN heard BLOB;       -- runs [start, end) of bucket numbers, u32 LE pairs
ALTER TABLE providers ADD COLUMN failed BLOB;
ALTER TABLE providers ADD COLUMN listed BLOB;
ALTER TABLE providers ADD COLUMN uptime_written_at INTEGER;  -- unix time of the latest mark

ALTER TABLE providers ADD COLUMN payout TEXT COLLATE NOCASE;
ALTER TABLE providers ADD COLUMN last_listen_addrs TEXT;  -- JSON array, kept when the offer is pruned
UPDATE providers SET
    payout = (SELECT payout FROM offers WHERE offers.peer_id = providers.peer_id),
    last_listen_addrs = (SELECT listen_addrs FROM offers WHERE offers.peer_id = providers.peer_id);
CREATE INDEX providers_payout ON providers (payout);
ALTER TABLE providers ADD COLUMN reliability REAL NOT NULL DEFAULT 0.9;
ALTER TABLE providers ADD COLUMN uptime REAL;
ALTER TABLE providers ADD COLUMN rentals INTEGER NOT NULL DEFAULT 0;
"#,
    // 6: the quote's offerId of each rental, which names the rented machine (a provider may
    // run several under one payout address). Events indexed before did not keep it, so the
    // chain index starts again: the watcher re-reads the escrow from its first block.
    r#"
DELETE FROM chain_events;
DELETE FROM rentals;
DELETE FROM chain_blocks;
DELETE FROM chain_cursor;
ALTER TABLE rentals ADD COLUMN offer_id TEXT NOT NULL DEFAULT '';  -- bytes32, 0x hex
ALTER TABLE rentals ADD COLUMN machine TEXT;  -- OfferId of offer_id in gpuflow's form, else NULL
CREATE INDEX rentals_machine ON rentals (machine);
"#,
    // 7: more scores beside each provider for search: rentals that ended without a
    // downtime credit, and downtime credits paid.
    r#"
ALTER TABLE providers ADD COLUMN completed_rentals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN sla_credits INTEGER NOT NULL DEFAULT 0;
"#,
    // 8: the refund of the provider's refusal of a rental (`RentalRefused`), decimal; NULL
    // for a rental that was not refused. The event is new with the refusal, so no event
    // indexed before is missing.
    r#"
ALTER TABLE rentals ADD COLUMN refused TEXT;
"#,
    // 9: the periods this node was up and listening (see store/uptime.rs): a run starts
    // when the node is ready and is marked alive every few seconds, so that after a crash
    // the gap to the next start is known; no provider is judged outside them. Earlier
    // nodes kept no such record, so the evidence they gathered counts as observed from the
    // first provider stored to this migration, as it did.
    r#"
CREATE TABLE node_runs (
    started_at INTEGER PRIMARY KEY NOT NULL,  -- unix time the node was ready
    alive_until INTEGER NOT NULL              -- the latest unix time it marked itself alive
) STRICT;
INSERT INTO node_runs (started_at, alive_until)
    SELECT min(first_seen), CAST(strftime('%s', 'now') AS INTEGER) FROM providers
    WHERE uptime_written_at IS NOT NULL HAVING count(*) > 0;
"#,
    // 10: the machine's CPUs and memory, read from the host by agents that know them.
    r#"
ALTER TABLE offers ADD COLUMN cpu_cores INTEGER;
ALTER TABLE offers ADD COLUMN cpu_ram_mb INTEGER;
UPDATE offers SET
    cpu_cores = envelope ->> '$.body.cpu_cores',
    cpu_ram_mb = (envelope ->> '$.body.cpu_ram_bytes') / 1000000;
"#,
    // 11: the results of this node's matrix-product challenges (see node/CHALLENGE.md), each
    // as the node signed it; the newest few per provider are kept.
    r#"
CREATE TABLE challenges (
    provider TEXT NOT NULL,                -- peer id
    seed TEXT NOT NULL,                    -- 0x hex, names the challenge
    issued_at INTEGER NOT NULL,            -- unix time it was sent
    outcome TEXT NOT NULL,                 -- challenge::Outcome, snake_case
    ok INTEGER NOT NULL,                   -- 1 unless the outcome flags the offer
    proven_tflops REAL NOT NULL,           -- per GPU
    envelope TEXT NOT NULL,                -- the node's signed ChallengeResult, JSON
    PRIMARY KEY (provider, seed)
) STRICT, WITHOUT ROWID;
CREATE INDEX challenges_latest ON challenges (provider, issued_at);
-- The latest result beside the provider, for search.
ALTER TABLE providers ADD COLUMN proven_tflops REAL;     -- per GPU; NULL: never challenged
ALTER TABLE providers ADD COLUMN challenge_ok INTEGER;   -- NULL: never challenged
"#,
];

/// Brings the schema up to date, one transaction per migration.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(found)
        .ok()
        .filter(|&applied| applied <= MIGRATIONS.len())
        .ok_or(StoreError::UnknownSchema { found, supported })?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = index + 1;
        let failed = |source| StoreError::Migrate { version, source };
        let tx = conn.transaction().map_err(failed)?;
        tx.execute_batch(migration).map_err(failed)?;
        tx.pragma_update(None, "user_version", version as i64).map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}
