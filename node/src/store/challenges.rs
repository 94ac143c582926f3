//! The results of this node's matrix-product challenges, each kept as the node signed it
//! (see `node/CHALLENGE.md`). The newest [`KEPT_PER_PROVIDER`] per provider are kept.

use gpuflow_protocol::{SignedEnvelope, challenge::ChallengeResult};
use rusqlite::{Connection, OptionalExtension, params};

use super::storable;
use crate::StoreError;

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
