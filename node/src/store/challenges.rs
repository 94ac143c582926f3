//! The results of this node's matrix-product challenges, each kept as the node signed it
//! (see `node/CHALLENGE.md`). The newest [`KEPT_PER_PROVIDER`] per provider are kept.

use gpuflow_protocol::{OfferId, SignedEnvelope, challenge::ChallengeResult};
use rusqlite::{Connection, OptionalExtension, params};

use super::{clamp, storable};
use crate::StoreError;

/// What the challenger needs of a provider with a live offer, read from the columns the
/// offer was stored in, so that walking every offer verifies no signature again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeTarget {
    /// The id of the provider's offer; targets come in its order.
    pub offer: OfferId,
    /// The provider's libp2p peer id.
    pub peer_id: String,
    /// The GPU model the offer claims (every GPU of an offer is the same model).
    pub gpu_name: String,
    /// The UUIDs of the GPUs the offer lists, in UUID order.
    pub gpus: Vec<String>,
    /// Where the provider listens; never empty.
    pub listen_addrs: Vec<String>,
    /// When the newest stored challenge of the provider was issued, if any.
    pub last_challenged: Option<u64>,
}

/// Results kept per provider; older ones are deleted as new ones come.
pub const KEPT_PER_PROVIDER: u32 = 100;

pub(super) fn insert(
    db: &Connection,
    result: &ChallengeResult,
    envelope: &SignedEnvelope,
) -> Result<(), StoreError> {
    let envelope_json = serde_json::to_string(envelope).expect("envelopes serialize");
    db.execute(
        "INSERT OR REPLACE INTO challenges \
         (provider, seed, issued_at, outcome, ok, proven_tflops, envelope) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            result.provider,
            result.seed.to_string(),
            storable("issued_at", result.issued_at)?,
            result.outcome.as_str(),
            result.outcome.ok(),
            result.proven_tflops,
            envelope_json,
        ],
    )?;
    db.execute(
        "DELETE FROM challenges WHERE provider = ?1 AND seed NOT IN \
         (SELECT seed FROM challenges WHERE provider = ?1 ORDER BY issued_at DESC, seed \
          LIMIT ?2)",
        params![result.provider, KEPT_PER_PROVIDER],
    )?;
    // Search shows the latest result with the provider's offer.
    db.execute(
        "UPDATE providers SET proven_tflops = ?2, challenge_ok = ?3 WHERE peer_id = ?1",
        params![result.provider, result.proven_tflops, result.outcome.ok()],
    )?;
    Ok(())
}

/// The providers with an offer live at `now` that can be dialed, at most `limit`, in offer id
/// order after `after`.
pub(super) fn targets(
    conn: &Connection,
    now: u64,
    after: Option<OfferId>,
    limit: u32,
) -> Result<Vec<ChallengeTarget>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, peer_id, gpu_name, listen_addrs, \
         (SELECT json_group_array(uuid) FROM offer_gpus WHERE offer_id = offers.id) AS gpus, \
         (SELECT max(issued_at) FROM challenges WHERE provider = offers.peer_id) AS last \
         FROM offers WHERE expires_at > ?1 AND id > ?2 AND listen_addrs <> '[]' \
         ORDER BY id LIMIT ?3",
    )?;
    let after = after.map(|id| id.to_string()).unwrap_or_default();
    let mut rows = statement.query(params![clamp(now), after, i64::from(limit)])?;
    let mut targets = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get("id")?;
        let addrs: String = row.get("listen_addrs")?;
        let gpus: String = row.get("gpus")?;
        let last: Option<i64> = row.get("last")?;
        targets.push(ChallengeTarget {
            offer: id.parse().map_err(|_| StoreError::Corrupt(format!("offer id {id}")))?,
            peer_id: row.get("peer_id")?,
            gpu_name: row.get("gpu_name")?,
            gpus: serde_json::from_str(&gpus)?,
            listen_addrs: serde_json::from_str(&addrs)?,
            last_challenged: last.map(|at| at.max(0) as u64),
        });
    }
    Ok(targets)
}

/// The newest `limit` results for `provider`, newest first, as signed.
pub(super) fn of_provider(
    conn: &Connection,
    provider: &str,
    limit: u32,
) -> Result<Vec<SignedEnvelope>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT envelope FROM challenges WHERE provider = ?1 \
         ORDER BY issued_at DESC, seed LIMIT ?2",
    )?;
    let rows = statement.query_map(params![provider, limit], |row| row.get::<_, String>(0))?;
    rows.map(|json| {
        let json = json?;
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
    })
    .collect()
}

/// The newest result for `provider`, if it was ever challenged.
pub(super) fn latest(
    conn: &Connection,
    provider: &str,
) -> Result<Option<ChallengeResult>, StoreError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT envelope FROM challenges WHERE provider = ?1 \
             ORDER BY issued_at DESC, seed LIMIT 1",
            params![provider],
            |row| row.get(0),
        )
        .optional()?;
    let Some(json) = json else { return Ok(None) };
    let envelope: SignedEnvelope =
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let result = serde_json::from_str(envelope.body.get())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(result))
}
