//! SLA refunds end to end: the provider is killed mid-rental, the node measures the outage
//! from heartbeats and its own probes, signs a downtime attestation, `gpuflow claim-sla`
//! gets the renter refunded, and the provider is never paid for those seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use gpuflow_devnet::{DEVNET_PASSWORD, Devnet, DevnetOptions, RENTER_FUNDS};
use gpuflow_escrow::{DowntimeTerms, Escrow, pack_signatures};
use gpuflow_protocol::api::DowntimeAttestation;

use super::{FEE_BPS, RATE, amount, balance, eventually, gpuflow, gpuflow_json, start, start_with};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Asks the node for an attestation of `rental`; `None` while it has nothing to attest.
async fn attestation(node_url: &str, rental: u64) -> Option<DowntimeAttestation> {
    let url = format!("{node_url}/v1/rentals/{rental}/downtime");
    let response = reqwest::Client::new().post(url).send().await.ok()?;
    if response.status() == reqwest::StatusCode::CONFLICT {
        return None;
    }
    assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
    Some(response.json().await.unwrap())
}

/// Waits until the node at `node_url` has heard several of the provider's heartbeats.
async fn hears_the_provider(devnet: &Devnet, node_url: &str) {
    let offer: serde_json::Value =
        reqwest::get(format!("{node_url}/v1/offers/{}", devnet.offer_id))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let provider_url = format!("{node_url}/v1/providers/{}", offer["peer_id"].as_str().unwrap());
    eventually(devnet, "the node to hear the provider", Duration::from_secs(30), || {
        let url = provider_url.clone();
        async move {
            let detail: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            (detail["heartbeat_count"].as_u64()? >= 3).then_some(())
        }
    })
    .await;
}

/// Waits until the node at `node_url` has indexed rental `id` from the chain.
async fn indexes_the_rental(devnet: &Devnet, node_url: &str, id: u64) {
    eventually(devnet, "the node to index the rental", Duration::from_secs(30), || {
        let url = format!("{node_url}/v1/rentals/{id}");
        async move { reqwest::get(url).await.ok().filter(|r| r.status().is_success()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downtime_mid_rental_is_measured_attested_and_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let (mut devnet, escrow) = start(dir.path()).await;
    let options = DevnetOptions::for_checkout(dir.path().to_owned()).unwrap();
    let (bucket, grace) = (options.uptime_bucket_secs, options.grace_secs);

    // The node has heard the provider for a while before the rental starts.
    hears_the_provider(&devnet, &devnet.node_url).await;

    let rented = gpuflow_json(&devnet, &["rent", &devnet.offer_id, "--hours", "1", "--yes"]).await;
    let id = rented["rental_id"].as_u64().unwrap();
    let start_at = rented["start"].as_u64().unwrap();
    assert_eq!(rented["workload"]["state"], "running", "{rented}");

    // Up so far: once the node indexed the rental, it has nothing to attest.
    indexes_the_rental(&devnet, &devnet.node_url, id).await;
    let refused = gpuflow(&devnet, &["claim-sla", &id.to_string()]).await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("no downtime") || refused.stderr.contains("no uncredited time"),
        "{}",
        refused.stderr
    );

    // The provider dies; the node notices from missing heartbeats and failed probes.
    let killed_at = now();
    devnet.kill_provider().await.unwrap();
    eventually(&devnet, "the node to measure 10 s of downtime", Duration::from_secs(60), || {
        let url = devnet.node_url.clone();
        async move { attestation(&url, id).await.filter(|a| a.down_seconds >= 10) }
    })
    .await;
    devnet.restart_provider().await.unwrap();
    let back_at = now();
    // Wait until the buckets after the restart are complete and heard.
    let attested =
        eventually(&devnet, "the restarted provider to be heard", Duration::from_secs(60), || {
            let url = devnet.node_url.clone();
            async move { attestation(&url, id).await.filter(|a| a.to >= back_at + 3 * bucket) }
        })
        .await;
    let outage = back_at - killed_at;
    let down = attested.down_seconds;
    assert!(
        down + grace + 2 * bucket >= outage && down <= outage + 2 * bucket,
        "measured {down} s of downtime for an outage of {outage} s (grace {grace} s, \
         buckets of {bucket} s)"
    );
    assert_eq!(attested.from, start_at);

    // The renter claims: refunded exactly rate × credited seconds.
    let before = balance(&escrow, devnet.renter).await;
    let claimed = gpuflow_json(&devnet, &["claim-sla", &id.to_string()]).await;
    let credited = claimed["credited_seconds"].as_u64().unwrap();
    assert!(credited >= attested.down_seconds, "{claimed}");
    assert_eq!(credited, claimed["attested_seconds"].as_u64().unwrap(), "nothing was paid yet");
    let refund = amount(&claimed["refund"]);
    assert_eq!(refund, U256::from(RATE * credited));
    assert_eq!(balance(&escrow, devnet.renter).await, before + refund);
    let claimed_to = claimed["to"].as_u64().unwrap();

    // The same window cannot be credited twice: the escrow refuses the first attestation.
    let renter =
        PrivateKeySigner::decrypt_keystore(&devnet.renter_keystore, DEVNET_PASSWORD).unwrap();
    let chain = gpuflow_escrow::connect(&devnet.rpc_url, Some(renter)).unwrap();
    let submitter = Escrow::new(chain, devnet.escrow).await.unwrap();
    let terms = DowntimeTerms {
        rental_id: id,
        from: attested.from,
        to: attested.to,
        down_seconds: attested.down_seconds,
        deadline: attested.deadline,
    };
    let signature = (attested.attester.parse().unwrap(), attested.signature.parse().unwrap());
    let replay = submitter.credit_downtime(&terms, pack_signatures(vec![signature]).unwrap()).await;
    let error = replay.expect_err("a credited window is credited once").to_string();
    assert!(error.contains("overlap") || error.contains("already"), "{error}");
    // And the node has no new downtime to attest after the credited window.
    let again = gpuflow(&devnet, &["claim-sla", &id.to_string()]).await;
    assert!(!again.ok, "{}", again.stdout);
    assert!(
        again.stderr.contains("measured no downtime")
            || again.stderr.contains("no uncredited time that has ended"),
        "{}",
        again.stderr
    );
    assert_eq!(balance(&escrow, devnet.renter).await, before + refund);

    // Stop: the provider is paid for the rented seconds less the credited ones, never more.
    let stopped = gpuflow_json(&devnet, &["stop", &id.to_string()]).await;
    let stopped_at = stopped["stopped_at"].as_u64().unwrap();
    assert!(stopped_at >= claimed_to);
    let earned = U256::from(RATE * (stopped_at - start_at - credited));
    // What the renter is shown as charged leaves the refunded downtime out.
    assert_eq!(amount(&stopped["charged"]), earned);
    assert_eq!(stopped["sla_credited_seconds"], credited);
    let fee = earned * U256::from(FEE_BPS) / U256::from(10_000);
    let paid =
        eventually(&devnet, "the provider's withdrawal", Duration::from_secs(60), || async {
            let history = escrow.history(id).await.unwrap();
            (!history.provider_paid.is_zero()).then_some(history)
        })
        .await;
    assert_eq!((paid.provider_paid, paid.fees), (earned - fee, fee));
    assert_eq!(paid.credited, refund);
    let deposit = U256::from(RATE * 3600);
    assert_eq!(
        balance(&escrow, devnet.renter).await,
        U256::from(RENTER_FUNDS) - deposit + amount(&stopped["refund"]) + refund
    );
    assert_eq!(balance(&escrow, devnet.escrow).await, fee, "only the treasury's fee is left");
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_threshold_of_two_attesters_both_nodes_must_sign_the_same_terms() {
    let dir = tempfile::tempdir().unwrap();
    let options = DevnetOptions {
        nodes: 2,
        attester_threshold: 2,
        ..DevnetOptions::for_checkout(dir.path().to_owned()).unwrap()
    };
    let bucket = options.uptime_bucket_secs;
    let (mut devnet, escrow) = start_with(options).await;
    let nodes = devnet.node_urls.clone();
    for node in &nodes {
        hears_the_provider(&devnet, node).await;
    }
    let rented = gpuflow_json(&devnet, &["rent", &devnet.offer_id, "--hours", "1", "--yes"]).await;
    let id = rented["rental_id"].as_u64().unwrap();
    for node in &nodes {
        indexes_the_rental(&devnet, node, id).await;
    }

    // An outage both nodes measure, each from its own heartbeats and probes.
    devnet.kill_provider().await.unwrap();
    for node in &nodes {
        eventually(&devnet, "a node to measure 6 s of downtime", Duration::from_secs(60), || {
            let url = node.clone();
            async move { attestation(&url, id).await.filter(|a| a.down_seconds >= 6) }
        })
        .await;
    }
    devnet.restart_provider().await.unwrap();
    let back_at = now();
    for node in &nodes {
        eventually(&devnet, "a node to hear the provider again", Duration::from_secs(60), || {
            let url = node.clone();
            async move { attestation(&url, id).await.filter(|a| a.to >= back_at + 3 * bucket) }
        })
        .await;
    }

    // One attester is not enough for the escrow: refused before anything is sent.
    let before = balance(&escrow, devnet.renter).await;
    let one = gpuflow(&devnet, &["claim-sla", &id.to_string(), "--from-node", &nodes[0]]).await;
    assert!(!one.ok, "{}", one.stdout);
    assert!(one.stderr.contains("the escrow needs 2"), "{}", one.stderr);
    assert_eq!(balance(&escrow, devnet.renter).await, before);

    // Both: asked again for the same window and the least downtime either measured, they
    // sign identical terms, and the escrow refunds exactly rate × credited seconds.
    let both = ["claim-sla", &id.to_string(), "--from-node", &nodes[0], "--from-node", &nodes[1]];
    let claimed = gpuflow_json(&devnet, &both).await;
    let attesters = claimed["attesters"].as_array().unwrap();
    assert_eq!(attesters.len(), 2, "{claimed}");
    assert_ne!(attesters[0], attesters[1]);
    let credited = claimed["credited_seconds"].as_u64().unwrap();
    assert!(credited >= 6, "{claimed}");
    let refund = amount(&claimed["refund"]);
    assert_eq!(refund, U256::from(RATE * credited));
    assert_eq!(balance(&escrow, devnet.renter).await, before + refund);
    devnet.shutdown().await;
}
