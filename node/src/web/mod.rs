//! The marketplace page every node serves at `/`: a read-only view of this node's own API
//! (search, an offer and its provider, the network), for renters who would rather look at
//! a page than a terminal.
//!
//! The page is three static files embedded in the binary; its script reads the JSON API
//! from the same origin, so it needs no build step, loads nothing from any other host, and
//! holds no keys: renting stays `gpuflow rent`, whose command the offer page shows. Every
//! page answer carries a strict Content-Security-Policy (same-origin scripts, styles,
//! images and requests only; no inline code; no framing).
//!
//! * `GET /`, `GET /offers/{id}`, `GET /network` → the page; its script draws the view the
//!   path names (query string: the search's `q`, filters, `order` and `cursor`)
//! * `GET /assets/{file}` → its script, style sheet and icon

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// What a page may load: its own script, style sheet, icon and API, nothing inline, from
/// nowhere else, in no frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = include_str!("assets/index.html");

/// The embedded assets: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("assets/style.css")),
    ("favicon.svg", "image/svg+xml", include_str!("assets/favicon.svg")),
];

/// The page's routes, each answer with the security headers.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let header = |name, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Router::new()
        .route("/", get(page))
        .route("/offers/{id}", get(page))
        .route("/network", get(page))
        .route("/assets/{file}", get(asset))
        .layer(header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
}

/// The page; its script reads the path and draws the view.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page follows the binary: a new version must not meet a cached script.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no asset {file}")).into_response(),
    }
}
