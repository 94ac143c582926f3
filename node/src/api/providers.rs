//! `GET /v1/providers/{peer_id}` and the evidence its scores are computed from.

use axum::{
    Json,
    extract::{Path, State},
};
use gpuflow_protocol::{api, unix_now};

use super::{ApiError, ApiState, peer_of};
use crate::store::scores_of;

/// What this node knows about a provider: first sighting, live offer, last heartbeat.
#[utoipa::path(
    get,
    path = "/v1/providers/{peer_id}",
    tag = "providers",
    params(("peer_id" = String, Path, description = "The provider's libp2p peer id")),
    responses(
        (status = 200, description = "The provider", body = api::ProviderDetail),
        (status = 400, description = "Not a peer id", body = api::ApiErrorBody),
        (status = 404, description = "No offer or heartbeat of this provider was ever stored",
         body = api::ApiErrorBody),
    )
)]
pub(super) async fn provider(
    State(state): State<ApiState>,
    Path(peer_id): Path<String>,
) -> Result<Json<api::ProviderDetail>, ApiError> {
    let peer = peer_of(&peer_id)?;
    let now = unix_now();
    let info = state.store.provider(peer, now).await?;
    let info = info.ok_or_else(|| ApiError::NotFound(format!("no provider {peer} is known")))?;
    let scores = state
        .store
        .evidence(state.params, info.peer_id.clone(), now)
        .await?
        .map(|(window, facts)| scores_of(&window, &facts, now));
    let challenge = state.store.latest_challenge(info.peer_id.clone()).await?;
    Ok(Json(api::ProviderDetail {
        peer_id: info.peer_id,
        first_seen: info.first_seen,
        offer: info.offer.map(|o| o.into_wire(state.token_decimals)),
        heartbeat_count: info.heartbeat_count,
        last_heartbeat: info.last_heartbeat,
        scores,
        challenge,
    }))
}

/// This node's matrix-product challenges of a provider, newest first, each signed by the
/// node. `CHALLENGE.md` says what was checked and how to check it again.
#[utoipa::path(
    get,
    path = "/v1/providers/{peer_id}/challenges",
    tag = "providers",
    params(("peer_id" = String, Path, description = "The provider's libp2p peer id")),
    responses(
        (status = 200, description = "The signed results, newest first (empty when never \
         challenged)", body = api::ChallengeList),
        (status = 400, description = "Not a peer id", body = api::ApiErrorBody),
    )
)]
pub(super) async fn challenges(
    State(state): State<ApiState>,
    Path(peer_id): Path<String>,
) -> Result<Json<api::ChallengeList>, ApiError> {
    let peer = peer_of(&peer_id)?;
    let challenges =
        state.store.challenges(peer.to_string(), crate::store::KEPT_CHALLENGES).await?;
    Ok(Json(api::ChallengeList { node: state.node.peer_id.clone(), challenges }))
}

/// The evidence a provider's scores are computed from: per-bucket uptime bitmaps over the
/// window and the rentals of its machine. `RELIABILITY.md` says how to recompute
/// the scores from it.
#[utoipa::path(
    get,
    path = "/v1/providers/{peer_id}/evidence",
    tag = "providers",
    params(("peer_id" = String, Path, description = "The provider's libp2p peer id")),
    responses(
        (status = 200, description = "The evidence and the scores computed from it",
         body = api::Evidence),
        (status = 400, description = "Not a peer id", body = api::ApiErrorBody),
        (status = 404, description = "No offer or heartbeat of this provider was ever stored",
         body = api::ApiErrorBody),
    )
)]
pub(super) async fn evidence(
    State(state): State<ApiState>,
    Path(peer_id): Path<String>,
) -> Result<Json<api::Evidence>, ApiError> {
    let peer = peer_of(&peer_id)?;
    let now = unix_now();
    let (window, facts) = state
        .store
        .evidence(state.params, peer.to_string(), now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no provider {peer} is known")))?;
    let hex = |runs: &crate::reliability::model::Runs| {
        alloy::hex::encode(runs.to_bitmap(window.buckets).to_bytes())
    };
    Ok(Json(api::Evidence {
        peer_id: peer.to_string(),
        payout: facts.payout.clone(),
        first_seen: facts.first_seen,
        now,
        params: state.params,
        from: window.from,
        buckets: window.buckets,
        heard: hex(&window.heard),
        failed: hex(&window.failed),
        listed: hex(&window.listed),
        observed: Some(hex(&window.observed)),
        scores: scores_of(&window, &facts, now),
        rentals: facts.rentals,
    }))
}
