//! A real node challenges the real provider agent, which computes the matrix products on
//! the CPU; the renter sees the machine proven through the real `gpuflow`, and anyone can
//! check the node's signed result.

use std::time::Duration;

use gpuflow_devnet::DevnetOptions;
use gpuflow_protocol::{
    api::ChallengeList,
    challenge::{ChallengeResult, Outcome},
};
use serde_json::Value;

use super::{eventually, gpuflow_json, start_with};

/// A model missing from the table of expected throughputs: a CPU's answer gets an
/// `unrated` verdict, which leaves the offer unflagged, where a named GPU would be too slow.
const MODEL: &str = "gpuflow simulated GPU";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_challenges_the_agent_and_the_renter_sees_it_proven() {
    let dir = tempfile::tempdir().unwrap();
    let gpus = dir.path().join("gpus.json");
    let inventory: Vec<Value> = (1..=2)
        .map(|i| {
            serde_json::json!({
                "name": MODEL,
                "uuid": format!("GPU-challenged-{i}"),
                "memory_bytes": 25_757_220_864u64,
                "pci_bus_id": format!("00000000:0{i}:00.0"),
                "compute_capability": "8.9",
                "driver_version": "550.54.14",
                "cuda_version": "12.4",
            })
        })
        .collect();
    std::fs::write(&gpus, serde_json::to_string(&inventory).unwrap()).unwrap();
    let mut options = DevnetOptions::for_checkout(dir.path().join("devnet")).unwrap();
    options.gpus = Some(gpus);
    // Small products, due again every few seconds, so the first walk after the agent's
    // offer arrives challenges it.
    options.node_args = ["--challenge-interval-secs", "3", "--challenge-size", "64"]
        .into_iter()
        .chain(["--challenge-rounds", "2"])
        .map(Into::into)
        .collect();
    let (devnet, _escrow) = start_with(options).await;

    // The renter's view: `gpuflow offer` shows the machine proven.
    let offer = eventually(&devnet, "gpuflow offer to show a challenge", WAIT, || async {
        let offer = gpuflow_json(&devnet, &["offer", &devnet.offer_id]).await;
        (offer["challenge_ok"] != Value::Null).then_some(offer)
    })
    .await;
    assert_eq!(offer["challenge_ok"], true, "{offer}");
    let proven = offer["proven_tflops"].as_f64().unwrap_or_default();
    assert!(proven > 0.0, "a throughput was proven: {offer}");
    assert_eq!(offer["provider"]["challenge"]["outcome"], "unrated", "{offer}");
    // Search shows it too, and finds it by it. (64³ products answered in milliseconds
    // prove about a GFLOP/s at most, the unit search compares in: no `proven_tflops>0`.)
    let found = gpuflow_json(&devnet, &["search", "challenge_ok=true"]).await;
    let found = found.as_array().expect("search prints a list");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], devnet.offer_id.as_str());
    assert_eq!(found[0]["challenge_ok"], true);
    assert!(found[0]["proven_tflops"].as_f64().is_some_and(|t| t > 0.0), "{}", found[0]);

    // The evidence: results signed by the node, about this provider and its two GPUs.
    let peer = offer["offer"]["peer_id"].as_str().expect("the offer names its provider");
    let url = format!("{}/v1/providers/{peer}/challenges", devnet.node_url);
    let list: ChallengeList = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let newest = list.challenges.into_iter().next().expect("the challenge the renter saw");
    let verified = newest.open::<ChallengeResult>().expect("the node's signature holds");
    assert_eq!(verified.signer.to_string(), list.node, "signed by the node that serves it");
    let result = verified.body;
    assert_eq!(result.provider, peer);
    assert_eq!(result.outcome, Outcome::Unrated, "{}", result.reason);
    assert_eq!((result.n, result.rounds), (64, 2));
    assert_eq!(result.gpus, ["GPU-challenged-1", "GPU-challenged-2"]);
    assert_eq!(result.gpu_name, MODEL);
    assert_eq!(result.expected_tflops, None);
    assert!(result.proven_tflops > 0.0, "{result:?}");
    let text = reqwest::get(format!("{}/metrics", devnet.node_url)).await.unwrap();
    let text = text.text().await.unwrap();
    let unrated = text
        .lines()
        .find_map(|l| l.strip_prefix("gpuflow_challenges_total{outcome=\"unrated\"} "))
        .and_then(|count| count.parse::<u64>().ok());
    assert!(unrated.is_some_and(|count| count >= 1), "the node counts it:\n{text}");
    devnet.shutdown().await;
}

/// How long the first challenge may take: the node walks its offers every 3 s here, and
/// the products are small, but debug binaries on a loaded machine are slow.
const WAIT: Duration = Duration::from_secs(60);
