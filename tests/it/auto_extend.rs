//! Automatic extension: the renter sets a capped budget once and goes offline; the
//! provider's agent extends the rental from it in its last ten minutes, step by step, and
//! never takes more than the budget. Other payments leave the budget's allowance standing.

use std::time::Duration;

use alloy::primitives::U256;
use gpuflow_devnet::RENTER_FUNDS;
use gpuflow_protocol::format_units;

use super::{RATE, amount, balance, eventually, gpuflow, gpuflow_json, start};

/// Units of the devnet's token per whole token.
const DECIMALS: u8 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_extends_from_the_budget_and_never_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;
    let half = RATE / 2;
    let tokens = |units: u64| format_units(u128::from(units), DECIMALS);

    // Rental A lasts half an hour: its last ten minutes are far off, so nobody may extend
    // it yet. Its budget is allowed, and stays allowed while rental B is paid for.
    let rent_a = ["rent", &devnet.offer_id, "--hours", "0.5", "--gpus", "1", "--yes"];
    let a = gpuflow_json(&devnet, &rent_a).await;
    let a_id = a["rental_id"].as_u64().unwrap();
    let budget_a = half * 90;
    let set_a = [
        "auto-extend",
        &a_id.to_string(),
        "--budget",
        &tokens(budget_a),
        "--step",
        "0.02",
        "--yes",
    ];
    let set = gpuflow_json(&devnet, &set_a).await;
    assert_eq!(amount(&set["budget"]), U256::from(budget_a));
    assert_eq!(set["step"], 72);
    assert_eq!(escrow.allowance(devnet.renter).await.unwrap(), U256::from(budget_a));

    // Rental B, 36 s, is in its last ten minutes at once. Paying for it with a permit
    // leaves A's allowance as it was.
    let rent_b = ["rent", &devnet.offer_id, "--hours", "0.01", "--gpus", "1", "--yes"];
    let b = gpuflow_json(&devnet, &rent_b).await;
    let b_id = b["rental_id"].as_u64().unwrap();
    let (b_start, b_end) = (b["start"].as_u64().unwrap(), b["end"].as_u64().unwrap());
    assert_eq!(b_end - b_start, 36);
    assert_eq!(escrow.allowance(devnet.renter).await.unwrap(), U256::from(budget_a));

    // B's budget buys one 72 s step and 30 s more, and nothing after: the agent extends it
    // with no command from the renter.
    let budget_b = half * (72 + 30);
    let set_b = [
        "auto-extend",
        &b_id.to_string(),
        "--budget",
        &tokens(budget_b),
        "--step",
        "0.02",
        "--yes",
    ];
    gpuflow_json(&devnet, &set_b).await;
    assert_eq!(escrow.allowance(devnet.renter).await.unwrap(), U256::from(budget_a + budget_b));
    let extended =
        eventually(&devnet, "the agent to spend B's budget", Duration::from_secs(90), || async {
            let rental = escrow.rental(b_id).await.unwrap();
            let (left, _) = escrow.auto_extension(b_id).await.unwrap();
            (left.is_zero()).then_some(rental)
        })
        .await;
    assert_eq!(extended.end.to::<u64>(), b_end + 102, "one step and what was left, no more");
    let deposits = U256::from(half * 36 + half * 1800);
    assert_eq!(
        balance(&escrow, devnet.renter).await,
        U256::from(RENTER_FUNDS) - deposits - U256::from(budget_b),
        "the extensions took exactly B's budget"
    );
    assert_eq!(escrow.allowance(devnet.renter).await.unwrap(), U256::from(budget_a));

    // The agent serves the new end, and status shows what is left of each budget.
    eventually(&devnet, "the provider to serve B's new end", Duration::from_secs(30), || async {
        let status = gpuflow_json(&devnet, &["status", &b_id.to_string()]).await;
        (status["end"] == b_end + 102 && status["workload"]["state"] == "running").then_some(())
    })
    .await;
    let status_a = gpuflow_json(&devnet, &["status", &a_id.to_string()]).await;
    assert_eq!(amount(&status_a["auto_extend"]["budget"]), U256::from(budget_a));
    assert_eq!(status_a["auto_extend"]["active"], true);
    assert_eq!(status_a["end"], a["end"], "A is not in its last ten minutes: untouched");
    let status_b = gpuflow_json(&devnet, &["status", &b_id.to_string()]).await;
    assert_eq!(status_b["auto_extend"]["active"], false);

    // Turning A's off gives its allowance back; a budget that buys no second is refused
    // before anything is signed.
    let off = gpuflow_json(&devnet, &["auto-extend", &a_id.to_string(), "--off", "--yes"]).await;
    assert_eq!(amount(&off["budget"]), U256::ZERO);
    assert_eq!(escrow.allowance(devnet.renter).await.unwrap(), U256::ZERO);
    let tiny = gpuflow(&devnet, &["auto-extend", &a_id.to_string(), "--budget", "0.000001"]).await;
    assert!(!tiny.ok);
    assert!(tiny.stderr.contains("buys no second"), "{}", tiny.stderr);

    // Stopping both refunds exactly the unused seconds, extended ones included.
    let mut charged = U256::ZERO;
    for (id, deposit) in [(a_id, half * 1800), (b_id, half * (36 + 102))] {
        let stopped = gpuflow_json(&devnet, &["stop", &id.to_string()]).await;
        charged += U256::from(deposit) - amount(&stopped["refund"]);
    }
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS) - charged);
    devnet.shutdown().await;
}
