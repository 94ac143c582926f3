//! The node's HTTP API.
//!
//! * `GET /healthz` → `{"status":"ok","offers":N}`
//! * `GET /v1/offers?q=QUERY&order=FIELD[-]&limit=N` → [`api::OfferList`]
//! * `GET /v1/offers/{id}` → [`api::OfferDetail`], including the signed envelope
//!
//! The JSON shapes are those of [`gpuflow_protocol::api`], shared with clients. Errors are
//! [`api::ApiErrorBody`] (`{"error":"..."}`) with status 400 for bad input, 404 for unknown offers and
//! routes, and 500, with a generic message, when the store fails.

use axum::{
    Json, Router,
    extract::{Path, Query as UrlQuery, State, rejection::QueryRejection},
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
};
use gpuflow_protocol::{OfferId, api, format_units, unix_now};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{OfferSummary, Order, Query, QueryError, Store, StoreError};

/// Results returned by a search that does not set `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most results one search may ask for.
pub const MAX_LIMIT: u32 = 1000;

/// What the HTTP handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The offer index.
    pub store: Store,
    /// Decimals of the payment token, to convert `dph` in queries to token units.
    pub token_decimals: u8,
}

/// The API's routes over `state`.
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/offers", get(search))
        .route("/v1/offers/{id}", get(offer))
        .fallback(no_route)
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    q: Option<String>,
    order: Option<String>,
    // Text, so that a bad limit gets the same clear message as any other bad input.
    limit: Option<String>,
}

async fn healthz(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let offers = state.store.count_offers(unix_now()).await?;
    Ok(Json(json!({ "status": "ok", "offers": offers })))
}

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
    let offers = state.store.search(query, order, limit, unix_now()).await?;
    let offers = offers.into_iter().map(|o| wire(o, state.token_decimals)).collect();
    Ok(Json(api::OfferList { offers }))
}

async fn offer(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<api::OfferDetail>, ApiError> {
    let id: OfferId = id.parse().map_err(ApiError::BadRequest)?;
    let detail = state.store.get_offer(id, unix_now()).await?;
    let detail = detail.ok_or_else(|| ApiError::NotFound(format!("no live offer with id {id}")))?;
    Ok(Json(api::OfferDetail {
        summary: wire(detail.summary, state.token_decimals),
        envelope: detail.envelope,
    }))
}

/// The JSON shape of a summary: amounts as exact decimal strings, plus `dph` in whole
/// tokens for display.
fn wire(offer: OfferSummary, token_decimals: u8) -> api::OfferSummary {
    api::OfferSummary {
        id: offer.id.to_string(),
        peer_id: offer.peer_id,
        payout: offer.payout,
        gpu_name: offer.gpu_name,
        num_gpus: offer.num_gpus,
        gpu_ram_mb: offer.gpu_ram_mb,
        price_per_second: offer.price_per_second.to_string(),
        price_per_hour: offer.price_per_hour.to_string(),
        dph: format_units(offer.price_per_hour, token_decimals),
        verified: offer.verified,
        region: offer.region,
        cuda: offer.cuda,
        driver: offer.driver,
        listen_addrs: offer.listen_addrs,
        seq: offer.seq,
        issued_at: offer.issued_at,
        expires_at: offer.expires_at,
    }
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
            Self::Internal(error) => {
                tracing::error!(%error, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
            }
        };
        (status, Json(api::ApiErrorBody { error: message })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use gpuflow_protocol::Offer;
    use tower::ServiceExt;

    use super::*;
    use crate::testing::Provider;

    async fn get_raw(app: &Router, uri: &str) -> (StatusCode, axum::body::Bytes) {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap())
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
        let (status, bytes) = get_raw(app, uri).await;
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    /// An API over three offers: one RTX 4090 at 100 units/s, two GPUs at 200, eight at 300.
    async fn market() -> (Router, Vec<String>) {
        let store = Store::open_in_memory().unwrap();
        let mut ids = Vec::new();
        for (count, price) in [(1, 100), (2, 200), (8, 300)] {
            let offer = Provider::new().offer(|o: &mut Offer| {
                o.gpus = (0..count)
                    .map(|i| {
                        let mut gpu = o.gpus[0].clone();
                        gpu.uuid = format!("GPU-{i}");
                        gpu
                    })
                    .collect();
                o.price_per_second = price;
            });
            ids.push(OfferId::of(&offer.signer).to_string());
            store.upsert_offer(offer, unix_now()).await.unwrap();
        }
        (app(ApiState { store, token_decimals: 6 }), ids)
    }

    fn offers(body: &Value) -> Vec<api::OfferSummary> {
        serde_json::from_value(body["offers"].clone()).unwrap()
    }

    #[tokio::test]
    async fn healthz_counts_live_offers() {
        let (app, _) = market().await;
        assert_eq!(
            get(&app, "/healthz").await,
            (StatusCode::OK, json!({"status": "ok", "offers": 3}))
        );
    }

    #[tokio::test]
    async fn search_filters_orders_and_limits() {
        let (app, ids) = market().await;
        let (status, body) = get(&app, "/v1/offers").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(offers(&body).into_iter().map(|o| o.id).collect::<Vec<_>>(), ids);

        let uri =
            format!("/v1/offers?q={}&order=num_gpus-", encode("gpu_name=RTX_4090 num_gpus >= 2"));
        let found = offers(&get(&app, &uri).await.1);
        assert_eq!(found.iter().map(|o| o.num_gpus).collect::<Vec<_>>(), [8, 2]);
        assert_eq!(body["offers"][0]["price_per_second"], "100");
        assert_eq!(body["offers"][0]["price_per_hour"], "360000");
        assert_eq!(body["offers"][0]["dph"], "0.36");

        // 200 units/s is exactly 0.72 dollars per hour.
        let uri = format!("/v1/offers?q={}", encode("dph<=0.72"));
        assert_eq!(offers(&get(&app, &uri).await.1).len(), 2);

        let found = offers(&get(&app, "/v1/offers?order=dph-&limit=1").await.1);
        assert_eq!(found.into_iter().map(|o| o.id).collect::<Vec<_>>(), [ids[2].clone()]);
        assert_eq!(offers(&get(&app, "/v1/offers?limit=1000").await.1).len(), 3);
    }

    #[tokio::test]
    async fn bad_search_input_is_a_400_naming_it() {
        let (app, _) = market().await;
        let cases = [
            (
                format!("/v1/offers?q={}", encode("num_gpus>=1 gpu_nam=RTX_4090")),
                "unknown field `gpu_nam` in `gpu_nam=RTX_4090`; known fields: gpu_name \
                 num_gpus gpu_ram dph verified cuda driver region payout",
            ),
            (
                format!("/v1/offers?q={}", encode("gpu_ram>=abc")),
                "`gpu_ram>=abc`: expected GB per GPU such as 24 or 79.5 (at most 3 decimals), \
                 found `abc`",
            ),
            (
                "/v1/offers?order=region".into(),
                "cannot sort by `region`; sortable fields: dph gpu_ram num_gpus cuda, add `-` \
                 for descending (e.g. `dph-`)",
            ),
            (
                "/v1/offers?limit=0".into(),
                "`limit` must be a whole number from 1 to 1000, found `0`",
            ),
            (
                "/v1/offers?limit=1001".into(),
                "`limit` must be a whole number from 1 to 1000, found `1001`",
            ),
            (
                "/v1/offers?limit=ten".into(),
                "`limit` must be a whole number from 1 to 1000, found `ten`",
            ),
        ];
        for (uri, message) in cases {
            assert_eq!(
                get(&app, &uri).await,
                (StatusCode::BAD_REQUEST, json!({ "error": message })),
                "{uri}"
            );
        }
        let (status, body) = get(&app, "/v1/offers?qq=num_gpus%3D1").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].as_str().unwrap().contains("unknown field `qq`"), "{body}");
    }

    #[tokio::test]
    async fn offer_detail_carries_a_verifiable_envelope() {
        let (app, ids) = market().await;
        let uri = format!("/v1/offers/{}", ids[1]);
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], ids[1]);
        assert_eq!(body["dph"], "0.72");
        assert_eq!(body["num_gpus"], 2);
        // Decoded straight from the response bytes: going through `serde_json::Value` would
        // reorder the signed body's keys and break its signature.
        let detail: api::OfferDetail =
            serde_json::from_slice(&get_raw(&app, &uri).await.1).unwrap();
        let verified = detail.envelope.open::<Offer>().unwrap();
        assert_eq!(OfferId::of(&verified.signer).to_string(), ids[1]);
        assert_eq!(verified.signer.to_string(), detail.summary.peer_id);
        assert_eq!(verified.body.price_per_second.to_string(), detail.summary.price_per_second);
    }

    #[tokio::test]
    async fn unknown_and_malformed_ids() {
        let (app, _) = market().await;
        let unknown = OfferId::of(&Provider::new().identity.peer_id());
        assert_eq!(
            get(&app, &format!("/v1/offers/{unknown}")).await,
            (StatusCode::NOT_FOUND, json!({ "error": format!("no live offer with id {unknown}") }))
        );
        assert_eq!(
            get(&app, "/v1/offers/xyz").await,
            (
                StatusCode::BAD_REQUEST,
                json!({ "error": "`xyz` is not an offer id (16 hex digits)" })
            )
        );
        assert_eq!(
            get(&app, "/v2/offers").await,
            (StatusCode::NOT_FOUND, json!({ "error": "no route for /v2/offers" }))
        );
    }

    #[tokio::test]
    async fn store_failures_are_a_generic_500() {
        let app = app(ApiState { store: Store::closed(), token_decimals: 6 });
        for uri in ["/healthz", "/v1/offers", "/v1/offers/0011223344556677"] {
            assert_eq!(
                get(&app, uri).await,
                (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": "internal error" })),
                "{uri}"
            );
        }
    }
}
