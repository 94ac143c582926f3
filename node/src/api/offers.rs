//! `GET /v1/offers` (search) and `GET /v1/offers/{id}`.

use axum::{
    Json,
    extract::{Path, Query as UrlQuery, State, rejection::QueryRejection},
};
use gpuflow_protocol::{OfferId, api, unix_now};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, ApiState, DEFAULT_LIMIT, MAX_LIMIT};
use crate::{
    Search,
    search::{Cursor, Order, Query},
};

/// `GET /v1/offers` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SearchParams {
    /// Search query, e.g. `gpu_name=RTX_4090 num_gpus>=2 dph<=0.5`; empty matches all.
    q: Option<String>,
    /// Sort field, `-` appended for descending (the sortable fields are filled in from the
    /// protocol's table by `describe_order`).
    order: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    // Text, so that a bad limit gets the same clear message as any other bad input.
    limit: Option<String>,
    /// `next_cursor` of the previous page, with the same `order`.
    cursor: Option<String>,
    /// `1` or `true` also lists offers in a GPU UUID conflict.
    include_conflicts: Option<String>,
}

/// Searches live offers.
#[utoipa::path(
    get,
    path = "/v1/offers",
    tag = "offers",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of matching offers", body = api::OfferList),
        (status = 400, description = "A malformed query, named", body = api::ApiErrorBody),
    )
)]
pub(super) async fn search(
    State(state): State<ApiState>,
    params: Result<UrlQuery<SearchParams>, QueryRejection>,
) -> Result<Json<api::OfferList>, ApiError> {
    let UrlQuery(params) =
        params.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let query = Query::parse(params.q.as_deref().unwrap_or_default(), state.token_decimals)?;
    let order = params.order.as_deref().map(Order::parse).transpose()?.unwrap_or_default();
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => {
            text.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`limit` must be a whole number from 1 to {MAX_LIMIT}, found `{text}`"
                ))
            })?
        }
    };
    let after = params.cursor.as_deref().map(|c| Cursor::decode(c, order)).transpose()?;
    let include_conflicts = match params.include_conflicts.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`include_conflicts` must be 1, true, 0 or false, found `{other}`"
            )));
        }
    };
    let search = Search { query, order, limit, after, include_conflicts };
    let page = state.store.search(search, unix_now()).await?;
    Ok(Json(api::OfferList {
        offers: page.offers.into_iter().map(|o| o.into_wire(state.token_decimals)).collect(),
        next_cursor: page.next.map(|cursor| cursor.encode()),
        hidden_conflicts: page.hidden_conflicts,
    }))
}

/// One live offer, with the envelope its provider signed.
#[utoipa::path(
    get,
    path = "/v1/offers/{id}",
    tag = "offers",
    params(("id" = String, Path, description = "Offer id, 16 hex digits")),
    responses(
        (status = 200, description = "The offer", body = api::OfferDetail),
        (status = 400, description = "Not an offer id", body = api::ApiErrorBody),
        (status = 404, description = "No live offer with this id", body = api::ApiErrorBody),
    )
)]
pub(super) async fn offer(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<api::OfferDetail>, ApiError> {
    let id: OfferId = id.parse().map_err(ApiError::BadRequest)?;
    let detail = state.store.get_offer(id, unix_now()).await?;
    let detail = detail.ok_or_else(|| ApiError::NotFound(format!("no live offer with id {id}")))?;
    Ok(Json(api::OfferDetail {
        summary: detail.summary.into_wire(state.token_decimals),
        envelope: detail.envelope,
    }))
}
