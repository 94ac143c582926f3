//! Several agents and several renters on one devnet: a machine is never sold twice,
//! agents sharing a payout key each run only their own rentals, and renters reach the
//! agent that serves their rental, from another machine or after it moved to another port.

use std::{path::Path, time::Duration};

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use gpuflow_devnet::{DEVNET_PASSWORD, Devnet, RENTER_FUNDS};
use serde_json::Value;

use super::{Output, amount, balance, eventually, gpuflow_with, start};

/// Runs the real `gpuflow` against the devnet with `config` as its configuration home
/// (another directory is another renter machine) and `extra` variables.
async fn gpuflow_at(
    devnet: &Devnet,
    config: &Path,
    extra: &[(&str, String)],
    args: &[&str],
) -> Output {
    let mut env = vec![("XDG_CONFIG_HOME", config.display().to_string())];
    env.extend(extra.iter().cloned());
    gpuflow_with(devnet, &env, args).await
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .or_else(|_| serde_json::from_str(&out.stderr))
        .unwrap_or_else(|e| panic!("no JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// A second funded renter with a keystore of its own; its `gpuflow` variables.
async fn second_renter(
    devnet: &Devnet,
    dir: &Path,
) -> (alloy::primitives::Address, Vec<(&'static str, String)>) {
    let key = PrivateKeySigner::random();
    let chain = gpuflow_escrow::connect(&devnet.rpc_url, None).unwrap();
    chain
        .raw_request::<_, Value>(
            "anvil_setBalance".into(),
            (key.address(), U256::from(10u128.pow(20))),
        )
        .await
        .unwrap();
    let funder =
        ProviderBuilder::new().wallet(key.clone()).connect_http(devnet.rpc_url.parse().unwrap());
    let token = gpuflow_escrow::MockUSDC::new(devnet.token, funder);
    let minted = token.mint(key.address(), U256::from(RENTER_FUNDS)).send().await.unwrap();
    assert!(minted.get_receipt().await.unwrap().status());
    std::fs::create_dir_all(dir).unwrap();
    PrivateKeySigner::encrypt_keystore(
        dir,
        &mut rand::thread_rng(),
        key.to_bytes(),
        DEVNET_PASSWORD,
        Some("second.json"),
    )
    .unwrap();
    (key.address(), vec![("GPUFLOW_KEYSTORE", dir.join("second.json").display().to_string())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_renters_racing_for_one_machine_never_both_pay() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;
    let (second, second_env) = second_renter(&devnet, &dir.path().join("second")).await;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let rent = ["--json", "rent", devnet.offer_id.as_str(), "--hours", "0.25", "--yes"];
    let (first_out, second_out) = tokio::join!(
        gpuflow_at(&devnet, &a, &[], &rent),
        gpuflow_at(&devnet, &b, &second_env, &rent),
    );
    let outcomes = [(devnet.renter, &first_out), (second, &second_out)];
    let winners: Vec<_> = outcomes.iter().filter(|(_, out)| out.ok).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one renter gets the machine:\n{}\n{}\n{}\n{}",
        first_out.stdout,
        first_out.stderr,
        second_out.stdout,
        second_out.stderr
    );
    let (winner, won) = winners[0];
    let rented = json_of(won);
    assert_eq!(rented["workload"]["state"], "running", "{rented}");
    let deposit = amount(&rented["deposit"]);
    assert_eq!(balance(&escrow, *winner).await, U256::from(RENTER_FUNDS) - deposit);

    // The other paid nothing: refused a quote before any money moved, or refunded in full
    // with the provider's signed refusal.
    let (loser, lost) = outcomes.iter().find(|(_, out)| !out.ok).unwrap();
    assert_eq!(balance(&escrow, *loser).await, U256::from(RENTER_FUNDS), "{}", lost.stderr);
    let refused = json_of(lost);
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no money moved") || message.contains("whole deposit"), "{refused}");
    // Only the winner's deposit is in the escrow.
    assert_eq!(balance(&escrow, devnet.escrow).await, deposit);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_sharing_a_payout_key_each_run_their_own_rentals_and_renters_reach_them() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, _escrow) = start(dir.path()).await;
    let gpus = dir.path().join("sibling-gpus.json");
    std::fs::write(
        &gpus,
        r#"[{"name":"NVIDIA A100-SXM4-80GB","uuid":"GPU-sibling-0","memory_bytes":85899345920,
            "pci_bus_id":"00000000:07:00.0","compute_capability":"8.0",
            "driver_version":"550.54.14","cuda_version":"12.4"}]"#,
    )
    .unwrap();
    let sibling_dir = dir.path().join("sibling");
    let (_sibling, ready) = devnet.start_sibling_agent(&sibling_dir, &gpus).await.unwrap();
    let sibling_offer = gpuflow_devnet::ready_field(&ready, "offer").unwrap();
    devnet.wait_listed(&sibling_offer, true, Duration::from_secs(30)).await.unwrap();

    // One rental on each machine, both paid to the same address.
    let laptop = dir.path().join("laptop");
    let mut ids = Vec::new();
    for offer in [&devnet.offer_id, &sibling_offer] {
        let out = gpuflow_at(
            &devnet,
            &laptop,
            &[],
            &["--json", "rent", offer, "--hours", "0.25", "--yes"],
        )
        .await;
        assert!(out.ok, "renting {offer}:\n{}\n{}", out.stdout, out.stderr);
        let rented = json_of(&out);
        assert_eq!(rented["workload"]["state"], "running", "{rented}");
        ids.push(rented["rental_id"].as_u64().unwrap().to_string());
    }

    // The node names each rental's machine, from its on-chain offerId.
    let sibling_peer = gpuflow_devnet::ready_field(&ready, "peer").unwrap();
    let url = format!("{}/v1/rentals/{}", devnet.node_url, ids[1]);
    let machine = eventually(
        &devnet,
        "the node to index the sibling's rental",
        Duration::from_secs(30),
        || async {
            let detail: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            detail["machine"].as_str().map(str::to_owned)
        },
    )
    .await;
    assert_eq!(machine, sibling_peer);

    // From another machine, which never talked to either agent: each rental's status comes
    // from the agent that runs it.
    let elsewhere = dir.path().join("elsewhere");
    for (id, gpu) in ids.iter().zip(["GPU-", "GPU-sibling-0"]) {
        let status =
            json_of(&gpuflow_at(&devnet, &elsewhere, &[], &["--json", "status", id]).await);
        assert_eq!(status["workload"]["state"], "running", "rental {id}: {status}");
        let first = status["workload"]["gpus"][0].as_str().unwrap_or_default();
        assert!(first.starts_with(gpu), "rental {id} runs on {first}: {status}");
        let logs = gpuflow_at(&devnet, &elsewhere, &[], &["logs", id]).await;
        assert!(
            logs.ok && logs.stdout.contains(&format!("rental {id}")),
            "{}\n{}",
            logs.stdout,
            logs.stderr
        );
    }
    // Neither agent refused the other's rental.
    let sibling_log = std::fs::read_to_string(sibling_dir.join("agent.log")).unwrap();
    let devnet_log = std::fs::read_to_string(&devnet.provider_log).unwrap();
    for log in [&sibling_log, &devnet_log] {
        assert!(!log.contains("rental refused"), "{log}");
    }
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renter_reaches_an_agent_restarted_on_another_port() {
    let dir = tempfile::tempdir().unwrap();
    let (mut devnet, _escrow) = start(dir.path()).await;
    let laptop = dir.path().join("laptop");
    let out = gpuflow_at(
        &devnet,
        &laptop,
        &[],
        &["--json", "rent", &devnet.offer_id, "--hours", "0.25", "--yes"],
    )
    .await;
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let id = json_of(&out)["rental_id"].as_u64().unwrap().to_string();

    // The agent crashes and comes back on another ephemeral port, every GPU still rented
    // (so it publishes no offer): the address remembered at rent time is dead.
    devnet.kill_provider().await.unwrap();
    devnet.restart_provider().await.unwrap();
    let status =
        eventually(&devnet, "the restarted agent's status", Duration::from_secs(30), || async {
            let status =
                json_of(&gpuflow_at(&devnet, &laptop, &[], &["--json", "status", &id]).await);
            (status["workload"]["state"] == "running").then_some(status)
        })
        .await;
    assert_eq!(status["workload"]["gpus"].as_array().unwrap().len(), 2, "{status}");
    let logs = gpuflow_at(&devnet, &laptop, &[], &["logs", &id]).await;
    assert!(
        logs.ok && logs.stdout.contains(&format!("rental {id}")),
        "{}\n{}",
        logs.stdout,
        logs.stderr
    );
    devnet.shutdown().await;
}
