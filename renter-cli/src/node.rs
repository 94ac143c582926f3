//! Client of the node's HTTP API.

use anyhow::Context;
use gpuflow_protocol::{
    Offer, SignedEnvelope, Verified,
    api::{
        ApiErrorBody, DowntimeAttestation, DowntimeRequest, OfferDetail, OfferList, OfferSummary,
        ProviderDetail, RentalDetail,
    },
};
use reqwest::StatusCode;

use crate::error::{Exit, fail};

/// A node's `/v1` API.
/// One page of search results, each offer with its raw JSON, and what the page left out.
pub(crate) struct Found {
    pub(crate) offers: Vec<(OfferSummary, serde_json::Value)>,
    /// More offers match than the page holds.
    pub(crate) more: bool,
    /// Offers that match but are hidden in a GPU UUID conflict.
    pub(crate) hidden_conflicts: u64,
}

pub(crate) struct NodeClient {
    base: String,
    http: reqwest::Client,
}

impl NodeClient {
    pub(crate) fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("HTTP client builds");
        Self { base: base.trim_end_matches('/').to_owned(), http }
    }

    pub(crate) async fn search(
        &self,
        query: &str,
        order: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<OfferSummary>> {
        let mut params = vec![("q", query.to_owned()), ("limit", limit.to_string())];
        if let Some(order) = order {
            params.push(("order", order.to_owned()));
        }
        let list: OfferList = self.get("/v1/offers", &params).await?;
        Ok(list.offers)
    }

    /// Like [`Self::search`], keeping each offer's raw JSON beside it, so fields this
    /// client does not know yet (scores a newer node adds) still reach the user.
    pub(crate) async fn search_raw(
        &self,
        query: &str,
        order: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Found> {
        let mut params = vec![("q", query.to_owned()), ("limit", limit.to_string())];
        if let Some(order) = order {
            params.push(("order", order.to_owned()));
        }
        let list: serde_json::Value = self.get("/v1/offers", &params).await?;
        let more = list.get("next_cursor").is_some_and(|cursor| !cursor.is_null());
        let hidden_conflicts = list.get("hidden_conflicts").and_then(|n| n.as_u64()).unwrap_or(0);
        let offers = list.get("offers").and_then(|o| o.as_array()).cloned().ok_or_else(|| {
            fail(
                Exit::Unreachable,
                format!(
                    "{} does not answer as a gpuflow node: GET /v1/offers answered JSON without \
                     an `offers` list; {FIX_NODE}",
                    self.base
                ),
            )
        })?;
        let offers = offers
            .into_iter()
            .map(|raw| {
                let summary = serde_json::from_value(raw.clone()).with_context(|| {
                    format!("the node at {} listed an offer this client cannot read", self.base)
                })?;
                Ok((summary, raw))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Found { offers, more, hidden_conflicts })
    }

    /// Fetches an offer and verifies its signature locally: the node is not trusted.
    pub(crate) async fn offer(&self, id: &str) -> anyhow::Result<(OfferSummary, Verified<Offer>)> {
        let detail: OfferDetail = self.get(&format!("/v1/offers/{id}"), &[]).await?;
        let verified = SignedEnvelope::open::<Offer>(detail.envelope).map_err(|e| {
            anyhow::anyhow!("offer {id} from {} failed verification: {e}", self.base)
        })?;
        anyhow::ensure!(
            verified.signer.to_string() == detail.summary.peer_id,
            "node {} served offer {id} signed by another peer; use another node",
            self.base
        );
        Ok((detail.summary, verified))
    }

    /// What the node knows about a provider; `None` when it does not serve that route.
    pub(crate) async fn provider(&self, peer_id: &str) -> anyhow::Result<Option<ProviderDetail>> {
        match self.get(&format!("/v1/providers/{peer_id}"), &[]).await {
            Ok(detail) => Ok(Some(detail)),
            Err(e) if e.downcast_ref::<NotServed>().is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The rental as the node indexed it from the chain; `None` when the node does not
    /// index rentals.
    pub(crate) async fn rental(&self, id: u64) -> anyhow::Result<Option<RentalDetail>> {
        match self.get(&format!("/v1/rentals/{id}"), &[]).await {
            Ok(detail) => Ok(Some(detail)),
            Err(e) if e.downcast_ref::<NotServed>().is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A downtime attestation for rental `id`, signed by the node's attester key; aligned
    /// on `ask` when given.
    pub(crate) async fn downtime(
        &self,
        id: u64,
        ask: Option<DowntimeRequest>,
    ) -> anyhow::Result<DowntimeAttestation> {
        let path = format!("/v1/rentals/{id}/downtime");
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(ask) = ask {
            request = request.json(&ask);
        }
        match self.send(request, &path).await {
            Err(e) if e.downcast_ref::<NotServed>().is_some() => Err(fail(
                Exit::Refused,
                format!(
                    "the node at {} signs no downtime attestations; ask a node registered as \
                     attester on the escrow (--from-node URL)",
                    self.base
                ),
            )),
            other => other,
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url).query(params), path).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let response = request.send().await.map_err(|e| {
            fail(
                Exit::Unreachable,
                format!(
                    "cannot reach the node at {} ({e}); check that it runs, or fix --node / \
                     GPUFLOW_NODE",
                    self.base
                ),
            )
        })?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| snippet(v.as_bytes(), 40).unwrap_or_default());
        let body =
            response.bytes().await.with_context(|| format!("reading the answer of {url}"))?;
        // A gpuflow node answers JSON, its errors included; anything else is not one.
        let not_a_node = || {
            let content_type = content_type.as_deref().unwrap_or("none");
            let body = match snippet(&body, 60) {
                Some(text) => format!("body \u{201c}{text}\u{201d}"),
                None => "an empty body".to_owned(),
            };
            fail(
                Exit::Unreachable,
                format!(
                    "{} does not answer as a gpuflow node: {path} answered HTTP {status}, content type \
                     {content_type}, {body}; {FIX_NODE}",
                    self.base
                ),
            )
        };
        if !status.is_success() {
            let Ok(ApiErrorBody { error: message, .. }) = serde_json::from_slice(&body) else {
                return Err(not_a_node());
            };
            return Err(match status {
                StatusCode::NOT_IMPLEMENTED => NotServed.into(),
                StatusCode::NOT_FOUND => fail(Exit::NotFound, message),
                StatusCode::BAD_REQUEST => fail(Exit::Usage, message),
                StatusCode::CONFLICT => fail(Exit::Refused, message),
                _ => anyhow::anyhow!("the node at {} answered {status}: {message}", self.base),
            });
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
            return Err(not_a_node());
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("the node at {} answered something unexpected", self.base))
    }
}

/// What to do about a `--node` URL that is not a gpuflow node.
const FIX_NODE: &str = "check --node / GPUFLOW_NODE (a gpuflow node's base URL, such as \
                        http://127.0.0.1:8080)";

/// At most `max` characters of what a server answered, on one line and safe to print: an
/// HTML page's title or its text without tags, control and invisible characters dropped,
/// whitespace collapsed; `None` when nothing is left.
fn snippet(body: &[u8], max: usize) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let text = match (lower.find("<title>"), lower.find("</title>")) {
        (Some(start), Some(end)) if start + 7 <= end => &text[start + 7..end],
        _ => &text[..],
    };
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            _ if in_tag => {}
            c if c.is_control()
                || c.is_whitespace()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                plain.push(' ')
            }
            c => plain.push(c),
        }
    }
    let words = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        return None;
    }
    let mut shown: String = words.chars().take(max).collect();
    if shown.len() < words.len() {
        shown.push('…');
    }
    Some(shown)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_snippet_is_one_short_clean_line() {
        let page = b"<!DOCTYPE html>\n<html><head><title>Welcome to\n nginx!</title></head></html>";
        assert_eq!(super::snippet(page, 60).as_deref(), Some("Welcome to nginx!"));
        let noisy = "\u{1b}[31mred\u{1b}[0m \u{202e}evil\r\nnext line <b>bold</b>";
        assert_eq!(
            super::snippet(noisy.as_bytes(), 60).as_deref(),
            Some("[31mred [0m evil next line bold")
        );
        assert_eq!(super::snippet(&[b'x'; 500], 5).as_deref(), Some("xxxxx…"));
        assert_eq!(super::snippet(b"  \n ", 5), None);
    }
}

/// The node does not implement a route (501).
#[derive(Debug, thiserror::Error)]
#[error("this node does not serve that yet")]
struct NotServed;
