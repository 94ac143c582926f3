//! The node's HTTP API.
//!
//! * `GET /v1/offers?q=QUERY&order=FIELD[-]&limit=N&cursor=C&include_conflicts=1` →
//!   [`api::OfferList`]; `q` is the [`crate::search`] language, `cursor` the `next_cursor` of
//!   the previous page (same order), `include_conflicts` also lists offers whose GPU UUIDs
//!   another live offer claims too (hidden by default).
//! * `GET /v1/offers/{id}` → [`api::OfferDetail`], including the signed envelope
//! * `GET /v1/providers/{peer_id}` → [`api::ProviderDetail`]: first sighting, offer, last
//!   heartbeat and the GPU health it reported
//! * `GET /v1/providers/{peer_id}/evidence` → [`api::Evidence`]: the uptime buckets and
//!   rentals the provider's scores are computed from, to recompute them
//! * `GET /v1/rentals/{id}` → [`api::RentalDetail`] from the escrow's events, or 501 when
//!   the node runs without `--rpc` and `--escrow`
//! * `POST /v1/rentals/{id}/downtime` → [`api::DowntimeAttestation`] signed by the node's
//!   attester key for the downtime it measured, or 501 without an attester key; an optional
//!   [`api::DowntimeRequest`] body aligns the terms with other attesters
//! * `GET /healthz` → [`api::Health`]
//! * `GET /metrics` → Prometheus (OpenMetrics) text, see [`crate::metrics`]
//! * `GET /openapi.json` → the OpenAPI 3.1 description, generated from these handlers
//!
//! Errors are [`api::ApiErrorBody`] (`{"error":"..."}`) with status 400 for bad input, 404
//! for unknown offers, providers and routes, 409 when there is nothing to attest, 501 for
//! what this node does not do, and 500,
//! with a generic message, when the store fails. Bodies are 16 KiB at most (only the
//! downtime request takes one), and requests are cut off after 10 s.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{MatchedPath, Path, Query as UrlQuery, Request, State, rejection::QueryRejection},
    http::{StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use gpuflow_p2p::PeerId;
use gpuflow_protocol::{
    OfferId, api,
    search::{SearchField, wrap_words},
    unix_now,
};
use serde::Deserialize;
use tower_http::{
    LatencyUnit,
    limit::RequestBodyLimitLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    Search, Store, StoreError,
    metrics::Metrics,
    reliability::{AttestError, Attester},
    search::{Cursor, Order, Query, QueryError},
    store::{RentalMachine, scores_of},
};

/// Results returned by a search that does not set `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most results one search may ask for.
pub const MAX_LIMIT: u32 = 1000;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body accepted; the API only has GET routes.
pub const MAX_BODY: usize = 16 * 1024;

/// What the HTTP handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The offer index.
    pub store: Store,
    /// Decimals of the payment token, to convert `dph` in queries to token units.
    pub token_decimals: u8,
    /// The node's metrics, served on `/metrics` and fed by every request.
    pub metrics: Arc<Metrics>,
    /// Whether the chain watcher runs, so that `/v1/rentals/{id}` has something to serve.
    pub rentals_indexed: bool,
    /// The reliability model's parameters.
    pub params: api::ModelParams,
    /// Signs downtime attestations; `None` when the node has no attester key.
    pub attester: Option<Attester>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gpuflow node API",
        description = "Search the offers of the gpuflow GPU marketplace. Every offer is \
                       served with the envelope its provider signed, so clients can verify it \
                       instead of trusting the node."
    ),
    tags((name = "offers"), (name = "providers"), (name = "rentals"), (name = "node"))
)]
struct ApiDoc;

/// The API's routes over `state`, with request limits, tracing and latency metrics.
pub fn app(state: ApiState) -> Router {
    let (router, openapi) = routes(state.clone());
    let openapi = Arc::new(openapi);
    let router = router
        .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .fallback(no_route);
    with_layers(router, state.metrics)
}

/// Wraps `router` in the request limits, tracing and latency metrics, and gives the errors
/// answered outside the handlers the JSON shape. The latency layer wraps the limits, so
/// that a request answered by a timeout or refused for its size is timed too.
fn with_layers(router: Router, metrics: Arc<Metrics>) -> Router {
    let router = router
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(middleware::from_fn_with_state(metrics, track_latency))
        .layer(
            // One `info` line per answered request; bodies and headers are never logged.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let (method, path) = (request.method(), request.uri().path());
                    tracing::info_span!("http", %method, %path)
                })
                .on_response(
                    DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros),
                ),
        );
    // Around the whole router rather than each route (as `Router::layer` is), so that it sees
    // the `Allow` header axum adds to a 405 after the route's layers.
    Router::new().fallback_service(router).layer(middleware::from_fn(json_errors))
}

/// The documented routes and the OpenAPI description generated from them.
fn routes(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(search))
        .routes(routes!(offer))
        .routes(routes!(provider))
        .routes(routes!(evidence))
        .routes(routes!(rental))
        .routes(routes!(downtime))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .split_for_parts();
    let mut openapi = openapi;
    describe_order(&mut openapi);
    (router.with_state(state), openapi)
}

/// Describes the `order` parameter of `GET /v1/offers` with the sortable fields of the
/// protocol's table, so that the OpenAPI text cannot fall behind the parser.
fn describe_order(openapi: &mut utoipa::openapi::OpenApi) {
    let sortable = format!("{}.", SearchField::sortable_names());
    let description = format!(
        "{}\nDefault `dph`.",
        wrap_words("Sort field, `-` appended for descending: ", &sortable, 80)
    );
    let search = openapi.paths.paths.get_mut("/v1/offers").and_then(|item| item.get.as_mut());
    let parameters = search.and_then(|operation| operation.parameters.as_mut());
    for parameter in parameters.into_iter().flatten().filter(|p| p.name == "order") {
        parameter.description = Some(description.clone());
    }
}

/// `GET /v1/offers` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchParams {
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
async fn search(
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
async fn offer(
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

/// What this node knows about a provider: first sighting, live offer, last heartbeat.
#[utoipa::path(
    get,
    path = "/v1/providers/{peer_id}",
    tag = "providers",
    params(("peer_id" = String, Path, description = "The provider's libp2p peer id")),
    responses(
        (status = 200, description = "The provider", body = api::ProviderDetail),
        (status = 400, description = "Not a peer id", body = api::ApiErrorBody),
        (status = 404, description = "No offer of this provider was ever indexed",
         body = api::ApiErrorBody),
    )
)]
async fn provider(
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
    Ok(Json(api::ProviderDetail {
        peer_id: info.peer_id,
        first_seen: info.first_seen,
        offer: info.offer.map(|o| o.into_wire(state.token_decimals)),
        heartbeat_count: info.heartbeat_count,
        last_heartbeat: info.last_heartbeat,
        scores,
    }))
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
        (status = 404, description = "No offer of this provider was ever indexed",
         body = api::ApiErrorBody),
    )
)]
async fn evidence(
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

/// A rental as indexed from the escrow's events, `confirmations` blocks behind the head.
#[utoipa::path(
    get,
    path = "/v1/rentals/{id}",
    tag = "rentals",
    params(("id" = u64, Path, description = "Rental id in GpuEscrow")),
    responses(
        (status = 200, description = "The rental", body = api::RentalDetail),
        (status = 400, description = "Not a rental id", body = api::ApiErrorBody),
        (status = 404, description = "No such rental indexed (yet)", body = api::ApiErrorBody),
        (status = 501, description = "This node does not index the chain",
         body = api::ApiErrorBody),
    )
)]
async fn rental(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<api::RentalDetail>, ApiError> {
    if !state.rentals_indexed {
        return Err(ApiError::NotImplemented("chain indexing not enabled on this node".into()));
    }
    let id = rental_of(&id)?;
    let rental = state.store.rental(id).await?;
    let r = rental.ok_or_else(|| ApiError::NotFound(format!("no rental {id} is indexed")))?;
    let machine = match state.store.rental_machine(id).await? {
        Some(RentalMachine::Known(peer)) => Some(peer),
        _ => None,
    };
    Ok(Json(api::RentalDetail {
        id: r.id,
        renter: format!("{:#x}", r.renter),
        provider: format!("{:#x}", r.provider),
        rate_per_second: r.rate_per_second.to_string(),
        start: r.start,
        end: r.end,
        stopped_at: r.stopped_at,
        deposit: r.deposit.to_string(),
        refund: r.refund.to_string(),
        withdrawn: r.withdrawn.to_string(),
        fees: r.fees.to_string(),
        credited: r.credited.to_string(),
        credited_seconds: r.credited_seconds,
        refused: r.refused.map(|refund| refund.to_string()),
        opened_block: r.opened_block,
        updated_block: r.updated_block,
        offer_id: format!("{:#x}", r.offer_id),
        machine,
    }))
}

/// Signs an EIP-712 `Downtime` attestation for the downtime this node measured in a rental,
/// from the end of its last credited window (or its start) to its end or, while it runs,
/// the start of the current uptime bucket. Submit it with `creditDowntime` (or
/// `gpuflow claim-sla`); the refund goes to the renter. With a body, the window ends at
/// its `to` (no later than this node could attest), and the downtime is at most its
/// `down_seconds`, so that several attesters can sign identical terms.
#[utoipa::path(
    post,
    path = "/v1/rentals/{id}/downtime",
    tag = "rentals",
    params(("id" = u64, Path, description = "Rental id in GpuEscrow")),
    request_body(content = Option<api::DowntimeRequest>,
                 description = "Optional: the window's end and the most down seconds to sign"),
    responses(
        (status = 200, description = "The signed attestation", body = api::DowntimeAttestation),
        (status = 400, description = "Not a rental id, or a malformed body",
         body = api::ApiErrorBody),
        (status = 404, description = "Rental or its provider unknown here",
         body = api::ApiErrorBody),
        (status = 409, description = "No downtime measured, nothing uncredited has ended, \
         `to` is later than this node can attest, or the rental names no known machine and \
         several share its payout address",
         body = api::ApiErrorBody),
        (status = 501, description = "This node has no attester key", body = api::ApiErrorBody),
    )
)]
async fn downtime(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<api::DowntimeAttestation>, ApiError> {
    let attester = state.attester.as_ref().ok_or_else(|| {
        ApiError::NotImplemented(
            "this node signs no downtime attestations (it runs without --attester-keystore); \
             ask a node registered as attester on the escrow"
                .into(),
        )
    })?;
    let id = rental_of(&id)?;
    // Read by hand rather than with `Json`, so that no body (and no content type) is fine.
    let ask = match body.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => Some(serde_json::from_slice::<api::DowntimeRequest>(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be {{\"to\": UNIX_SECONDS, \"down_seconds\": SECONDS}} \
                 (down_seconds optional) or empty: {e}"
            ))
        })?),
    };
    match attester.attest(&state.store, state.params, id, unix_now(), ask).await {
        Ok(attestation) => Ok(Json(attestation)),
        Err(error @ (AttestError::UnknownRental(_) | AttestError::UnknownProvider(_))) => {
            Err(ApiError::NotFound(error.to_string()))
        }
        Err(
            error @ (AttestError::NothingToAttest { .. }
            | AttestError::NoDowntime { .. }
            | AttestError::BeyondEvidence { .. }
            | AttestError::AmbiguousProvider { .. }),
        ) => Err(ApiError::Conflict(error.to_string())),
        Err(AttestError::Store(error)) => Err(ApiError::Internal(error)),
        Err(error) => Err(ApiError::Internal(StoreError::Read(error.to_string()))),
    }
}

/// Liveness, and the number of live offers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "node",
    responses((status = 200, description = "The node is up", body = api::Health))
)]
async fn healthz(State(state): State<ApiState>) -> Result<Json<api::Health>, ApiError> {
    let offers = state.store.count_offers(unix_now()).await?;
    Ok(Json(api::Health { status: "ok".into(), offers }))
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    responses((status = 200, description = "OpenMetrics text", body = String,
               content_type = "application/openmetrics-text"))
)]
async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    state.metrics.set_offers(state.store.count_offers(unix_now()).await?);
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], state.metrics.encode()).into_response())
}

/// Times every request under its route pattern (never the raw path, which would make
/// label values unbounded).
async fn track_latency(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    metrics.observe_request(method.as_str(), &route, response.status().as_u16(), seconds);
    response
}

/// Gives the errors answered outside the handlers (a method a route does not take, a body
/// over [`MAX_BODY`], the timeout), which axum and tower-http send as plain text or with no
/// body, the same `{"error": "..."}` shape as every other error.
async fn json_errors(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let message = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = response
                .headers()
                .get(header::ALLOW)
                .and_then(|allow| allow.to_str().ok())
                .unwrap_or_default();
            format!("{method} is not allowed on {path}; it takes {allowed}")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the {MAX_BODY} bytes allowed")
        }
        StatusCode::SERVICE_UNAVAILABLE => format!(
            "the request was not answered within {} s; try again",
            REQUEST_TIMEOUT.as_secs()
        ),
        _ => return response,
    };
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|kind| kind.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, Json(api::ApiErrorBody { error: message })).into_response()
}

/// The peer id in a path.
fn peer_of(text: &str) -> Result<PeerId, ApiError> {
    text.parse().map_err(|_| ApiError::BadRequest(format!("`{text}` is not a libp2p peer id")))
}

/// The rental id in a path.
fn rental_of(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| ApiError::BadRequest(format!("`{text}` is not a rental id")))
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// Every way a request can fail, and the response it gets.
#[derive(Debug)]
enum ApiError {
    /// The request is malformed; the message says how and is safe to show.
    BadRequest(String),
    /// Nothing lives at what the request names.
    NotFound(String),
    /// What was asked conflicts with the current state.
    Conflict(String),
    /// This node does not offer what was asked.
    NotImplemented(String),
    /// The node failed; details go to the log, never to the client.
    Internal(StoreError),
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        Self::BadRequest(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, message),
            Self::Conflict(message) => (StatusCode::CONFLICT, message),
            Self::NotImplemented(message) => (StatusCode::NOT_IMPLEMENTED, message),
            Self::Internal(error) => {
                tracing::error!(%error, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
            }
        };
        (status, Json(api::ApiErrorBody { error: message })).into_response()
    }
}

#[cfg(test)]
mod tests;
