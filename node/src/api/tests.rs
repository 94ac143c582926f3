use axum::{body::Body, http::Request};
use gpuflow_protocol::{Offer, OfferId};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::testing::{self, Provider, gpus};

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
            if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

fn state(store: Store) -> ApiState {
    ApiState {
        store,
        token_decimals: 6,
        metrics: Arc::new(Metrics::new()),
        rentals_indexed: false,
        params: crate::reliability::params(60, 60, 30),
        attester: None,
        node: Arc::new(api::NodeInfo {
            peer_id: "12D3KooWtest".into(),
            addrs: vec!["/ip4/0.0.0.0/tcp/4001/p2p/12D3KooWtest".into()],
            version: "0.1.0".into(),
            token_symbol: "USDC".into(),
            token_decimals: 6,
        }),
    }
}

struct Market {
    app: Router,
    ids: Vec<String>,
    providers: Vec<Provider>,
    _dir: tempfile::TempDir,
}

/// An API over three offers: one RTX 4090 at 100 units/s, two GPUs at 200, eight at 300.
async fn market() -> Market {
    let (store, dir) = testing::store();
    let mut ids = Vec::new();
    let mut providers = Vec::new();
    for (count, price) in [(1, 100), (2, 200), (8, 300)] {
        let provider = Provider::new();
        let offer = provider.offer(|o: &mut Offer| {
            o.gpus = gpus(o, count);
            o.price_per_second = price;
        });
        ids.push(OfferId::of(&offer.signer).to_string());
        store.upsert_offer(offer, unix_now()).await.unwrap();
        providers.push(provider);
    }
    Market { app: app(state(store)), ids, providers, _dir: dir }
}

fn offers(body: &Value) -> Vec<api::OfferSummary> {
    serde_json::from_value(body["offers"].clone()).unwrap()
}

#[tokio::test]
async fn healthz_counts_live_offers() {
    let market = market().await;
    assert_eq!(
        get(&market.app, "/healthz").await,
        (StatusCode::OK, json!({"status": "ok", "offers": 3}))
    );
}

#[tokio::test]
async fn search_filters_orders_and_limits() {
    let Market { app, ids, _dir, .. } = market().await;
    let (status, body) = get(&app, "/v1/offers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offers(&body).into_iter().map(|o| o.id).collect::<Vec<_>>(), ids);
    assert!(body.get("next_cursor").is_none(), "{body}");

    let uri = format!("/v1/offers?q={}&order=num_gpus-", encode("gpu_name=RTX_4090 num_gpus >= 2"));
    let found = offers(&get(&app, &uri).await.1);
    assert_eq!(found.iter().map(|o| o.num_gpus).collect::<Vec<_>>(), [8, 2]);
    assert_eq!(body["offers"][0]["price_per_second"], "100");
    assert_eq!(body["offers"][0]["price_per_hour"], "360000");
    assert_eq!(body["offers"][0]["dph"], "0.36");
    assert_eq!(body["offers"][0]["conflicts"], false);

    // 200 units/s is exactly 0.72 dollars per hour.
    let uri = format!("/v1/offers?q={}", encode("dph<=0.72"));
    assert_eq!(offers(&get(&app, &uri).await.1).len(), 2);

    let found = offers(&get(&app, "/v1/offers?order=dph-&limit=1").await.1);
    assert_eq!(found.into_iter().map(|o| o.id).collect::<Vec<_>>(), [ids[2].clone()]);
    assert_eq!(offers(&get(&app, "/v1/offers?limit=1000").await.1).len(), 3);
}

#[tokio::test]
async fn cursors_page_through_results() {
    let Market { app, ids, _dir, .. } = market().await;
    let mut seen = Vec::new();
    let mut uri = "/v1/offers?order=dph-&limit=2".to_owned();
    loop {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(offers(&body).into_iter().map(|o| o.id));
        match body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/v1/offers?order=dph-&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids.iter().rev().cloned().collect::<Vec<_>>());

    let (_, first) = get(&app, "/v1/offers?order=dph-&limit=2").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, body) = get(&app, &format!("/v1/offers?order=dph&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "invalid `cursor`: it continues a search sorted by `dph-`, not `dph`; repeat that \
         order, or start again without a cursor"
    );
}

#[tokio::test]
async fn bad_search_input_is_a_400_naming_it() {
    let Market { app, _dir, .. } = market().await;
    let cases = [
        (
            format!("/v1/offers?q={}", encode("num_gpus>=1 gpu_nam=RTX_4090")),
            "unknown field `gpu_nam` in `gpu_nam=RTX_4090`; known fields: gpu_name \
             num_gpus gpu_ram gpu_total_ram dph dph_per_gpu verified cuda driver region payout age_days inet_down \
             inet_up disk_space cpu_cores cpu_ram reliability uptime rentals completed_rentals sla_credits \
             conflicts proven_tflops challenge_ok image",
        ),
        (
            format!("/v1/offers?q={}", encode("gpu_ram>=abc")),
            "`gpu_ram>=abc`: expected GB per GPU such as 24 or 79.5 (at most 3 decimals), \
             found `abc`",
        ),
        (
            format!("/v1/offers?q={}", encode("reliability>=99%")),
            "`reliability>=99%`: expected a share from 0 to 1 such as 0.99 (at most 6 \
             decimals), found `99%`",
        ),
        (
            "/v1/offers?order=region".into(),
            "cannot sort by `region`; sortable fields: dph dph_per_gpu gpu_ram gpu_total_ram num_gpus cuda age_days \
             inet_down inet_up disk_space cpu_cores cpu_ram reliability uptime rentals completed_rentals \
             sla_credits proven_tflops, add `-` for descending (e.g. `dph-`)",
        ),
        ("/v1/offers?limit=0".into(), "`limit` must be a whole number from 1 to 1000, found `0`"),
        (
            "/v1/offers?limit=1001".into(),
            "`limit` must be a whole number from 1 to 1000, found `1001`",
        ),
        (
            "/v1/offers?limit=ten".into(),
            "`limit` must be a whole number from 1 to 1000, found `ten`",
        ),
        (
            "/v1/offers?cursor=zz".into(),
            "invalid `cursor`: it is not a cursor from this API, or start again without a \
             cursor",
        ),
        (
            "/v1/offers?include_conflicts=yes".into(),
            "`include_conflicts` must be 1, true, 0 or false, found `yes`",
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
async fn conflicting_offers_are_hidden_unless_asked_for() {
    let (store, _dir) = testing::store();
    let honest = Provider::new();
    let original = honest.offer(|_| {});
    let copy = Provider::new().offer(|o| o.gpus[0].uuid = original.body.gpus[0].uuid.clone());
    store.upsert_offer(original, unix_now()).await.unwrap();
    store.upsert_offer(copy, unix_now()).await.unwrap();
    let app = app(state(store));
    assert!(offers(&get(&app, "/v1/offers").await.1).is_empty());
    for uri in ["/v1/offers?include_conflicts=1", "/v1/offers?include_conflicts=true"] {
        let found = offers(&get(&app, uri).await.1);
        assert_eq!(found.len(), 2, "{uri}");
        assert!(found.iter().all(|o| o.conflicts));
    }
    let uri = format!("/v1/offers?q={}", encode("conflicts=true"));
    assert_eq!(offers(&get(&app, &uri).await.1).len(), 2);
    let (status, body) = get(&app, &format!("/v1/offers/{}", honest.id())).await;
    assert_eq!((status, &body["conflicts"]), (StatusCode::OK, &json!(true)));
}

#[tokio::test]
async fn offer_detail_carries_a_verifiable_envelope() {
    let Market { app, ids, _dir, .. } = market().await;
    let uri = format!("/v1/offers/{}", ids[1]);
    let (status, body) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], ids[1]);
    assert_eq!(body["dph"], "0.72");
    assert_eq!(body["num_gpus"], 2);
    // Decoded straight from the response bytes: going through `serde_json::Value` would
    // reorder the signed body's keys and break its signature.
    let detail: api::OfferDetail = serde_json::from_slice(&get_raw(&app, &uri).await.1).unwrap();
    let verified = detail.envelope.open::<Offer>().unwrap();
    assert_eq!(OfferId::of(&verified.signer).to_string(), ids[1]);
    assert_eq!(verified.signer.to_string(), detail.summary.peer_id);
    assert_eq!(verified.body.price_per_second.to_string(), detail.summary.price_per_second);
}

#[tokio::test]
async fn providers_show_offer_and_last_heartbeat() {
    let (store, _dir) = testing::store();
    let provider = Provider::new();
    store.upsert_offer(provider.offer(|_| {}), unix_now() - 30).await.unwrap();
    store.upsert_heartbeat(provider.heartbeat(9), unix_now()).await.unwrap();
    let app = app(state(store));
    let peer = provider.identity.peer_id();
    let (status, body) = get_raw(&app, &format!("/v1/providers/{peer}")).await;
    assert_eq!(status, StatusCode::OK);
    let detail: api::ProviderDetail = serde_json::from_slice(&body).unwrap();
    assert_eq!(detail.peer_id, peer.to_string());
    assert_eq!(detail.offer.unwrap().id, provider.id().to_string());
    assert_eq!(detail.heartbeat_count, 1);
    let last = detail.last_heartbeat.unwrap();
    assert_eq!((last.seq, last.active_rentals, last.gpus[0].utilization_pct), (9, 1, 87));
    assert_eq!(last.envelope.open::<gpuflow_protocol::Heartbeat>().unwrap().signer, peer);

    let stranger = Provider::new().identity.peer_id();
    assert_eq!(
        get(&app, &format!("/v1/providers/{stranger}")).await,
        (StatusCode::NOT_FOUND, json!({ "error": format!("no provider {stranger} is known") }))
    );
    assert_eq!(
        get(&app, "/v1/providers/nope").await,
        (StatusCode::BAD_REQUEST, json!({ "error": "`nope` is not a libp2p peer id" }))
    );
}

#[tokio::test]
async fn rentals_are_not_served_yet() {
    let Market { app, _dir, .. } = market().await;
    assert_eq!(
        get(&app, "/v1/rentals/7").await,
        (
            StatusCode::NOT_IMPLEMENTED,
            json!({ "error": "chain indexing not enabled on this node" })
        )
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let Market { app, _dir, .. } = market().await;
    let unknown = Provider::new().id();
    assert_eq!(
        get(&app, &format!("/v1/offers/{unknown}")).await,
        (StatusCode::NOT_FOUND, json!({ "error": format!("no live offer with id {unknown}") }))
    );
    assert_eq!(
        get(&app, "/v1/offers/xyz").await,
        (StatusCode::BAD_REQUEST, json!({ "error": "`xyz` is not an offer id (16 hex digits)" }))
    );
    assert_eq!(
        get(&app, "/v2/offers").await,
        (StatusCode::NOT_FOUND, json!({ "error": "no route for /v2/offers" }))
    );
}

#[tokio::test]
async fn metrics_count_requests_and_offers() {
    let market = market().await;
    get(&market.app, "/v1/offers").await;
    get(&market.app, &format!("/v1/offers/{}", market.ids[0])).await;
    let peer = market.providers[0].identity.peer_id();
    get(&market.app, &format!("/v1/providers/{peer}")).await;
    get(&market.app, "/v1/offers/ffffffffffffffff").await;
    let (status, body) = get_raw(&market.app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.lines().any(|l| l == "gpuflow_offers 3"), "{text}");
    // Labelled by route pattern, never by the raw path, and by status.
    for (route, status) in [
        ("/v1/offers", 200),
        ("/v1/offers/{id}", 200),
        ("/v1/offers/{id}", 404),
        ("/v1/providers/{peer_id}", 200),
    ] {
        let line = format!(
            "gpuflow_http_request_duration_seconds_count\
             {{method=\"GET\",route=\"{route}\",status=\"{status}\"}} 1"
        );
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn requests_answered_by_the_timeout_are_timed() {
    let metrics = Arc::new(Metrics::new());
    let slow = Router::new().route("/slow", axum::routing::get(std::future::pending::<()>));
    let app = with_layers(slow, metrics.clone());
    let (status, body) = get(&app, "/slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"].as_str().unwrap().contains("10 s"), "{body}");
    let line = "gpuflow_http_request_duration_seconds_count\
                {method=\"GET\",route=\"/slow\",status=\"503\"} 1";
    let text = metrics.encode();
    assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
}

/// The response to `request`, its `Allow` header and its body, which must be JSON.
async fn send_json(app: &Router, request: Request<Body>) -> (StatusCode, String, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let kind = response.headers().get(header::CONTENT_TYPE).cloned();
    assert_eq!(kind.as_ref().map(|k| k.to_str().unwrap()), Some("application/json"));
    let allow = response.headers().get(header::ALLOW).map(|a| a.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, allow.unwrap_or_default(), serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn routing_errors_are_json_naming_the_allowed_methods() {
    let app = app(state(testing::store().0));
    let request = Request::delete("/v1/offers").body(Body::empty()).unwrap();
    let (status, allow, body) = send_json(&app, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(allow.contains("GET"), "{allow}");
    assert_eq!(
        body,
        json!({ "error": format!("DELETE is not allowed on /v1/offers; it takes {allow}") })
    );
    let request = Request::get("/v1/rentals/1/downtime").body(Body::empty()).unwrap();
    let (status, _, body) = send_json(&app, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].as_str().unwrap().contains("takes POST"), "{body}");
    let request = Request::get("/v2/nothing").body(Body::empty()).unwrap();
    let (status, _, body) = send_json(&app, request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "error": "no route for /v2/nothing" }));
}

#[tokio::test]
async fn oversized_bodies_are_json_naming_the_limit() {
    let app = app(state(testing::store().0));
    let big = vec![b' '; MAX_BODY + 1];
    // Refused from its declared length by the limit layer, and without one while the
    // handler reads it.
    for declared in [true, false] {
        let mut request = Request::post("/v1/rentals/1/downtime");
        if declared {
            request = request.header(header::CONTENT_LENGTH, big.len());
        }
        let request = request.body(Body::from(big.clone())).unwrap();
        let (status, _, body) = send_json(&app, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "declared: {declared}");
        assert_eq!(
            body,
            json!({ "error": "the request body is larger than the 16384 bytes allowed" }),
            "declared: {declared}"
        );
    }
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let market = market().await;
    let (status, body) = get(&market.app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["openapi"].as_str().unwrap().starts_with("3."), "{body}");
    for path in [
        "/v1/offers",
        "/v1/offers/{id}",
        "/v1/providers/{peer_id}",
        "/v1/rentals/{id}",
        "/healthz",
        "/metrics",
    ] {
        assert!(body["paths"][path]["get"].is_object(), "{path} missing");
    }
    let params: Vec<_> = body["paths"]["/v1/offers"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(params, ["q", "order", "limit", "cursor", "include_conflicts"]);
    for schema in ["OfferList", "OfferSummary", "OfferDetail", "ProviderDetail", "GpuHealth"] {
        assert!(body["components"]["schemas"][schema].is_object(), "{schema} missing");
    }
}

#[tokio::test]
async fn store_failures_are_a_generic_500() {
    let app = app(state(Store::closed()));
    for uri in [
        "/healthz",
        "/v1/offers",
        "/v1/offers/0011223344556677",
        "/metrics",
        "/v1/providers/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
    ] {
        assert_eq!(
            get(&app, uri).await,
            (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": "internal error" })),
            "{uri}"
        );
    }
}

async fn post(app: &Router, uri: &str) -> (StatusCode, Value) {
    post_body(app, uri, "").await
}

async fn post_body(app: &Router, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A provider heard every 15 s over the last hour except for ten silent minutes, and
/// one rental of its payout address over most of that hour; the rental's id is 1.
async fn outage() -> (Store, tempfile::TempDir, Provider, u64, (u64, u64)) {
    let (store, dir) = testing::store();
    let provider = Provider::new();
    let now = unix_now();
    let first = now - 3_700;
    // The node itself restarted early in the rental, ten seconds away; the buckets that
    // took are neither up nor down.
    store.mark_alive(now - 4_000, now - 3_000).await.unwrap();
    store.mark_alive(now - 2_990, now).await.unwrap();
    store.upsert_offer(provider.offer(|_| {}), first).await.unwrap();
    let silent = (now - 2_400)..(now - 1_800);
    let mut seq = 0;
    for at in (first..now - 300).step_by(15).filter(|at| !silent.contains(at)) {
        seq += 1;
        store.upsert_heartbeat(provider.heartbeat(seq), at).await.unwrap();
    }
    let (start, end) = (now - 3_600, now - 600);
    testing::index_rental(&store, &provider, 1, 10, (start, end)).await;
    (store, dir, provider, now, (start, end))
}

#[tokio::test]
async fn evidence_recomputes_to_the_served_scores() {
    let (store, _dir, provider, now, (start, end)) = outage().await;
    let app = app(state(store.clone()));
    let peer = provider.identity.peer_id();
    // Before the first rescore the provider sits at the prior; after it, search sees
    // the score its downtime earned.
    let found = |query: &str| {
        let (app, uri) = (app.clone(), format!("/v1/offers?q={}", encode(query)));
        async move {
            let (status, body) = get(&app, &uri).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["offers"].as_array().unwrap().len()
        }
    };
    assert_eq!(found("reliability=0.9 rentals=0").await, 1);
    assert_eq!(store.rescore(state(store.clone()).params, unix_now()).await.unwrap(), 1);
    assert_eq!(found("reliability<0.9 rentals=1 uptime<1").await, 1);
    // The rental ended uncredited.
    assert_eq!(found("completed_rentals=1 sla_credits=0").await, 1);
    assert_eq!(found("sla_credits>0").await, 0);
    assert_eq!(found("reliability>=0.9").await, 0);
    let (status, body) = get(&app, &format!("/v1/providers/{peer}/evidence")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evidence: api::Evidence = serde_json::from_value(body).unwrap();
    assert!(evidence.now >= now);

    // The formulas of RELIABILITY.md, applied to the exported bits.
    let n = evidence.buckets as usize;
    let bits = |hex: &str| -> Vec<bool> {
        let bytes = alloy::hex::decode(hex).unwrap();
        (0..n).map(|i| bytes.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)).collect()
    };
    let (heard, failed, listed) =
        (bits(&evidence.heard), bits(&evidence.failed), bits(&evidence.listed));
    let observed = bits(evidence.observed.as_deref().unwrap());
    let g = evidence.params.grace_buckets as usize;
    let up: Vec<bool> = (0..n)
        .map(|i| observed[i] && !failed[i] && (i.saturating_sub(g)..=i).any(|j| heard[j]))
        .collect();
    let w = evidence.params.bucket_secs;
    let window_end = evidence.from + n as u64 * w;
    let (mut rented, mut up_rented) = (0u64, 0u64);
    for rental in &evidence.rentals {
        for second in rental.start.max(evidence.from)..rental.end.min(window_end) {
            let i = ((second - evidence.from) / w) as usize;
            rented += u64::from(observed[i]);
            up_rented += u64::from(up[i]);
        }
    }
    let (prior, weight) = (evidence.params.prior, evidence.params.prior_weight_secs as f64);
    let reliability = (up_rented as f64 + prior * weight) / (rented as f64 + weight);
    let listed_seconds = (0..n).filter(|&i| listed[i] && observed[i]).count() as u64 * w;
    let up_listed = (0..n).filter(|&i| listed[i] && up[i]).count() as u64 * w;

    let scores = &evidence.scores;
    assert_eq!(evidence.rentals.len(), 1);
    assert_eq!((scores.rented_seconds, scores.up_rented_seconds), (rented, up_rented));
    assert_eq!(scores.reliability, reliability);
    assert_eq!(scores.uptime, Some(up_listed as f64 / listed_seconds as f64));
    // The node's own ten seconds away took two or three buckets out of the rented time.
    assert!((2 * 60..=3 * 60).contains(&(end - start - rented)), "{rented} s rented");
    // Ten minutes of silence, less at most the grace period and a bucket at each edge.
    let down = rented - up_rented;
    assert!((600 - 60 - 2 * 60..=600).contains(&down), "{down} s down");
    assert!(reliability < 1.0 && reliability > 0.8, "{reliability}");

    // The provider's page serves the same scores.
    let (_, detail) = get(&app, &format!("/v1/providers/{peer}")).await;
    let detail: api::ProviderDetail = serde_json::from_value(detail).unwrap();
    let served = detail.scores.unwrap();
    assert_eq!((served.reliability, served.rentals), (reliability, 1));
}

#[tokio::test]
async fn downtime_attestations_sign_the_measured_downtime() {
    use alloy::signers::local::PrivateKeySigner;
    use gpuflow_escrow::{DowntimeTerms, downtime_signer};

    let (store, _dir, _provider, _now, (start, end)) = outage().await;
    let plain = app(ApiState { rentals_indexed: true, ..state(store.clone()) });
    let (status, body) = post(&plain, "/v1/rentals/1/downtime").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(body["error"].as_str().unwrap().contains("--attester-keystore"), "{body}");

    let signer = PrivateKeySigner::random();
    let domain = gpuflow_escrow::domain(31_337, alloy::primitives::Address::repeat_byte(0xee));
    let attester = crate::reliability::Attester::new(signer.clone(), domain.clone());
    let app = app(ApiState { rentals_indexed: true, attester: Some(attester), ..state(store) });
    let (status, body) = post(&app, "/v1/rentals/1/downtime").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signed: api::DowntimeAttestation = serde_json::from_value(body).unwrap();
    assert_eq!((signed.rental_id, signed.from, signed.to), (1, start, end));
    assert!((600 - 60 - 2 * 60..=600).contains(&signed.down_seconds), "{signed:?}");
    assert_eq!(signed.deadline % 3_600, 0);
    assert!(signed.deadline > unix_now() + 3_600 - 1);
    let terms = DowntimeTerms {
        rental_id: 1,
        from: signed.from,
        to: signed.to,
        down_seconds: signed.down_seconds,
        deadline: signed.deadline,
    };
    let signature = alloy::hex::decode(&signed.signature).unwrap();
    assert_eq!(downtime_signer(&terms, &signature, &domain), Some(signer.address()));
    assert_eq!(signed.attester, format!("{:#x}", signer.address()));

    for (uri, status) in [
        ("/v1/rentals/2/downtime", StatusCode::NOT_FOUND),
        ("/v1/rentals/x/downtime", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(post(&app, uri).await.0, status, "{uri}");
    }
}

#[tokio::test]
async fn downtime_attestations_align_on_the_asked_terms() {
    use alloy::signers::local::PrivateKeySigner;
    use gpuflow_escrow::{DowntimeTerms, downtime_signer};

    let (store, _dir, _provider, _now, (start, end)) = outage().await;
    let signer = PrivateKeySigner::random();
    let domain = gpuflow_escrow::domain(31_337, alloy::primitives::Address::repeat_byte(0xee));
    let attester = crate::reliability::Attester::new(signer.clone(), domain.clone());
    let app = app(ApiState { rentals_indexed: true, attester: Some(attester), ..state(store) });
    let ask = |body: Value| {
        let app = app.clone();
        async move { post_body(&app, "/v1/rentals/1/downtime", &body.to_string()).await }
    };
    let signed = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value::<api::DowntimeAttestation>(body).unwrap()
    };
    let (_, own) = post(&app, "/v1/rentals/1/downtime").await;
    let own = signed((StatusCode::OK, own));

    // The silence lies in [start + 1200, start + 1800): a window ending inside it holds
    // part of it only.
    let to = start + 1_500;
    let shorter = signed(ask(json!({ "to": to })).await);
    assert_eq!((shorter.from, shorter.to), (start, to));
    assert!(shorter.down_seconds > 0 && shorter.down_seconds < own.down_seconds, "{shorter:?}");
    // At most the downtime asked for, never more than measured.
    let capped = signed(ask(json!({ "to": to, "down_seconds": 100 })).await);
    assert_eq!((capped.to, capped.down_seconds, capped.deadline), (to, 100, shorter.deadline));
    let terms = DowntimeTerms {
        rental_id: 1,
        from: capped.from,
        to: capped.to,
        down_seconds: capped.down_seconds,
        deadline: capped.deadline,
    };
    let signature = alloy::hex::decode(&capped.signature).unwrap();
    assert_eq!(downtime_signer(&terms, &signature, &domain), Some(signer.address()));
    let more = signed(ask(json!({ "to": to, "down_seconds": 1_000_000 })).await);
    assert_eq!(more.down_seconds, shorter.down_seconds);
    // Asking for the node's own terms signs them again.
    let same = signed(ask(json!({ "to": own.to, "down_seconds": own.down_seconds })).await);
    assert_eq!((same.from, same.to, same.down_seconds), (own.from, own.to, own.down_seconds));

    let (status, body) = ask(json!({ "to": end + 1 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains(&format!("only up to {end}")), "{body}");
    assert_eq!(ask(json!({ "to": start })).await.0, StatusCode::CONFLICT);
    // Before the silence there is nothing to refund.
    assert_eq!(ask(json!({ "to": start + 900 })).await.0, StatusCode::CONFLICT);
    for bad in ["{\"down_seconds\": 5}", "{\"to\": -1}", "\"soon\"", "{\"to\": 1, \"x\": 2}"] {
        let (status, body) = post_body(&app, "/v1/rentals/1/downtime", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("\"to\""), "{body}");
    }
}

#[tokio::test]
async fn two_nodes_with_the_same_evidence_give_the_same_scores() {
    use alloy::primitives::{Address, B256, U256};

    use crate::store::{ChainUpdate, LoggedEvent, RentalEvent, scores_of};

    let provider = Provider::new();
    let offer = provider.offer(|_| {});
    let now = unix_now();
    let heartbeats: Vec<_> = (1..=200).map(|seq| provider.heartbeat(seq)).collect();
    let opened = RentalEvent::Opened {
        renter: Address::repeat_byte(1),
        provider: provider.payout.address(),
        offer_id: B256::ZERO,
        rate_per_second: U256::from(10),
        start: now - 3_000,
        end: now - 100,
        deposit: U256::from(29_000),
    };
    let mut scored = Vec::new();
    for _ in 0..2 {
        let (store, dir) = testing::store();
        store.mark_alive(now - 3_300, now).await.unwrap();
        store.upsert_offer(offer.clone(), now - 3_200).await.unwrap();
        // Heard every 15 s except in two silent stretches.
        for (i, heartbeat) in heartbeats.iter().enumerate() {
            let at = now - 3_200 + 15 * i as u64;
            if !(600..900).contains(&(i * 15)) && !(2_000..2_100).contains(&(i * 15)) {
                store.upsert_heartbeat(heartbeat.clone(), at).await.unwrap();
            }
        }
        store
            .record_probe(provider.identity.peer_id().to_string(), now - 500, false)
            .await
            .unwrap();
        store
            .apply_chain(ChainUpdate {
                escrow: format!("{:#x}", Address::repeat_byte(0xee)),
                rollback_above: None,
                blocks: vec![(1, format!("{:#x}", B256::repeat_byte(1)))],
                events: vec![LoggedEvent {
                    block: 1,
                    log_index: 0,
                    rental_id: 1,
                    event: opened.clone(),
                }],
                next_block: 2,
            })
            .await
            .unwrap();
        let params = state(store.clone()).params;
        let peer = provider.identity.peer_id().to_string();
        let (window, facts) = store.evidence(params, peer, now).await.unwrap().unwrap();
        scored.push((window.clone(), scores_of(&window, &facts, now)));
        drop(dir);
    }
    assert_eq!(scored[0], scored[1]);
    let scores = &scored[0].1;
    // The silences and the failed probe inside the rental show as downtime.
    assert!(scores.up_rented_seconds < scores.rented_seconds, "{scores:?}");
    assert_eq!(scores.rented_seconds, 2_900);
}

#[tokio::test]
async fn the_network_sums_up_live_gpus_prices_and_reliability() {
    let Market { app, _dir, .. } = market().await;
    let (status, body) = get(&app, "/v1/network").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats: api::NetworkStats = serde_json::from_value(body).unwrap();
    assert_eq!((stats.offers, stats.gpus, stats.hidden_conflicts), (3, 11, 0));
    assert_eq!(stats.models.len(), 1, "{stats:?}");
    let model = &stats.models[0];
    assert_eq!((model.offers, model.gpus), (3, 11));
    // One GPU per hour: 360000 (1 GPU at 100/s), 360000 (2 at 200/s), 135000 (8 at 300/s).
    let spread = &model.price_per_gpu_hour;
    let five = [&spread.min, &spread.p25, &spread.median, &spread.p75, &spread.max];
    assert_eq!(five, ["135000", "135000", "360000", "360000", "360000"]);
    // Newcomers sit at the prior, 0.9: the top decile.
    assert_eq!(stats.reliability, [0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
}

#[tokio::test]
async fn the_marketplace_page_is_served_with_a_strict_policy() {
    let Market { app, ids, _dir, .. } = market().await;
    for path in ["/".to_owned(), format!("/offers/{}", ids[0]), "/network".to_owned()] {
        let request = Request::get(&path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], crate::web::CONTENT_SECURITY_POLICY);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains(r#"<script src="/assets/app.js" defer></script>"#), "{path}");
    }
    for (asset, kind) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let request = Request::get(format!("/assets/{asset}")).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], kind, "{asset}");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        // Nothing is fetched from another host: the only absolute URL is SVG's namespace.
        let text = String::from_utf8(body.to_vec()).unwrap();
        let foreign = text.matches("://").count();
        let namespaces = text.matches("http://www.w3.org/2000/svg").count();
        assert_eq!(foreign, namespaces, "{asset} names another host");
    }
    let (status, _) = get_raw(&app, "/assets/absent.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The page never shadows the API: an unknown path is still the API's JSON 404.
    let (status, body) = get(&app, "/offers").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no route for /offers");
}
