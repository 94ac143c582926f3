//! Joining the network through a node's HTTP API: `GET /v1/node` gives the node's p2p
//! addresses, which become bootstrap addresses (`gpuflow-node --bootstrap-from URL`,
//! `gpuflow-provider init --node URL`), so nobody copies a peer id from a log line.

use std::time::Duration;

use gpuflow_protocol::api::NodeInfo;

/// Longest a node may take to answer `GET /v1/node`.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The p2p addresses of the node whose HTTP API is at `url`, each ending in `/p2p/PEER`.
/// An address the node listens on at an unspecified IP (`0.0.0.0`, `::`) is given the
/// URL's host instead, which is what reaches it from here.
pub async fn node_addrs(url: &str) -> Result<Vec<String>, String> {
    let base = url.trim_end_matches('/');
    let endpoint = format!("{base}/v1/node");
    let fail = |why: String| {
        format!(
            "could not learn the node's addresses from {endpoint}: {why}; check the URL (the node's http= address) and that the node runs"
        )
    };
    let client =
        reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| fail(e.to_string()))?;
    let response = client.get(&endpoint).send().await.map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("it answered {}", response.status())));
    }
    let node: NodeInfo =
        response.json().await.map_err(|e| fail(format!("not a node's answer ({e})")))?;
    if node.addrs.is_empty() {
        return Err(fail("the node listens on no p2p address".into()));
    }
    let host = reqwest::Url::parse(base).ok().and_then(|u| u.host_str().map(str::to_owned));
    Ok(node.addrs.iter().map(|addr| reachable(addr, host.as_deref())).collect())
}

/// `addr` with an unspecified IP replaced by `host` (an IP literal, or a DNS name).
fn reachable(addr: &str, host: Option<&str>) -> String {
    let Some(host) = host else { return addr.to_owned() };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let to = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("/ip4/{ip}/"),
        Ok(std::net::IpAddr::V6(ip)) => format!("/ip6/{ip}/"),
        Err(_) => format!("/dns/{host}/"),
    };
    ["/ip4/0.0.0.0/", "/ip6/::/"]
        .iter()
        .find_map(|any| {
            addr.strip_prefix(any.trim_end_matches('/'))
                .map(|rest| format!("{}{}", to.trim_end_matches('/'), rest))
        })
        .unwrap_or_else(|| addr.to_owned())
}

#[cfg(test)]
mod tests {
    use super::reachable;

    #[test]
    fn an_unspecified_ip_becomes_the_urls_host() {
        let any = "/ip4/0.0.0.0/tcp/4001/p2p/12D3KooW";
        assert_eq!(reachable(any, Some("203.0.113.7")), "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW");
        assert_eq!(
            reachable(any, Some("node.example.org")),
            "/dns/node.example.org/tcp/4001/p2p/12D3KooW"
        );
        assert_eq!(
            reachable("/ip6/::/udp/4001/quic-v1/p2p/P", Some("[2001:db8::1]")),
            "/ip6/2001:db8::1/udp/4001/quic-v1/p2p/P"
        );
        let fixed = "/ip4/10.0.0.2/tcp/4001/p2p/12D3KooW";
        assert_eq!(reachable(fixed, Some("203.0.113.7")), fixed, "a fixed IP stays");
        assert_eq!(reachable(any, None), any);
    }
}
