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
//! * `GET /v1/providers/{peer_id}/challenges` → [`api::ChallengeList`]: this node's
//!   matrix-product challenges of the provider, each signed by the node (`CHALLENGE.md`)
//! * `GET /v1/rentals/{id}` → [`api::RentalDetail`] from the escrow's events, or 501 when
//!   the node runs without `--rpc` and `--escrow`
//! * `POST /v1/rentals/{id}/downtime` → [`api::DowntimeAttestation`] signed by the node's
//!   attester key for the downtime it measured, or 501 without an attester key; an optional
//!   [`api::DowntimeRequest`] body aligns the terms with other attesters
//! * `GET /v1/node` → [`api::NodeInfo`]: the node's peer id, p2p addresses, version and
//!   payment token
//! * `GET /v1/network` → [`api::NetworkStats`]: the live offers summed up per GPU model and
//!   per reliability decile
//! * `GET /healthz` → [`api::Health`]
//! * `GET /metrics` → Prometheus (OpenMetrics) text, see [`crate::metrics`]
//! * `GET /openapi.json` → the OpenAPI 3.1 description, generated from these handlers
//! * `GET /`, `/offers/{id}`, `/network`, `/assets/{file}` → the marketplace page
//!   ([`crate::web`])
//!
//! Errors are [`api::ApiErrorBody`] (`{"error":"..."}`) with status 400 for bad input, 404
//! for unknown offers, providers and routes, 409 when there is nothing to attest, 501 for
//! what this node does not do, and 500,
//! with a generic message, when the store fails. Bodies are 16 KiB at most (only the
//! downtime request takes one), and requests are cut off after 10 s.

mod offers;
mod providers;
mod rentals;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{MatchedPath, Request, State},
    http::{StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use gpuflow_p2p::PeerId;
use gpuflow_protocol::{
    api,
    search::{SearchField, wrap_words},
    unix_now,
};
use tower_http::{
    LatencyUnit,
    limit::RequestBodyLimitLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{Store, StoreError, metrics::Metrics, reliability::Attester, search::QueryError};

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
    /// What `GET /v1/node` answers.
    pub node: Arc<api::NodeInfo>,
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
        .merge(crate::web::router())
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
        .routes(routes!(offers::search))
        .routes(routes!(offers::offer))
        .routes(routes!(providers::provider))
        .routes(routes!(providers::evidence))
        .routes(routes!(providers::challenges))
        .routes(routes!(rentals::rental))
        .routes(routes!(rentals::downtime))
        .routes(routes!(node))
        .routes(routes!(network))
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
        "{}\nUp to three, comma separated, each breaking the ties of the one before \
         (`reliability-,dph`). Default `dph`.",
        wrap_words("Sort field, `-` appended for descending: ", &sortable, 80)
    );
    let search = openapi.paths.paths.get_mut("/v1/offers").and_then(|item| item.get.as_mut());
    let parameters = search.and_then(|operation| operation.parameters.as_mut());
    for parameter in parameters.into_iter().flatten().filter(|p| p.name == "order") {
        parameter.description = Some(description.clone());
    }
}

/// The node's peer id, p2p addresses and version: what a node or provider agent needs to
/// join the network through this one.
#[utoipa::path(
    get,
    path = "/v1/node",
    tag = "node",
    responses((status = 200, description = "The node", body = api::NodeInfo))
)]
async fn node(State(state): State<ApiState>) -> Json<api::NodeInfo> {
    Json(state.node.as_ref().clone())
}

/// The live offers summed up: GPUs and prices per model, offers per reliability decile.
#[utoipa::path(
    get,
    path = "/v1/network",
    tag = "node",
    responses((status = 200, description = "The network as this node sees it",
               body = api::NetworkStats))
)]
async fn network(State(state): State<ApiState>) -> Result<Json<api::NetworkStats>, ApiError> {
    Ok(Json(state.store.network(unix_now()).await?))
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
