//! Machines ready for a template: the provider's image allow-list travels in its signed
//! offer, the node matches `image=` against it, `gpuflow search --template` asks for the
//! template's image and GPU memory, and `rent --template` refuses a machine that would not
//! run the image before asking for a quote.

use std::time::Duration;

use alloy::primitives::U256;
use gpuflow_devnet::RENTER_FUNDS;
use serde_json::Value;

use super::{balance, gpuflow, gpuflow_json, start};

/// The ids of the offers a `--json` search printed.
fn ids(found: &Value) -> Vec<&str> {
    let offers = found.as_array().unwrap_or_else(|| panic!("search prints a list: {found}"));
    offers.iter().map(|offer| offer["id"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_by_template_finds_the_machines_whose_provider_allows_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;

    // Beside the devnet's provider, which allows any image, one that allows only ubuntu.
    let ubuntu_dir = dir.path().join("ubuntu-only");
    std::fs::create_dir_all(&ubuntu_dir).unwrap();
    let gpus = ubuntu_dir.join("gpus.json");
    std::fs::write(
        &gpus,
        r#"[{"name":"NVIDIA A100-SXM4-80GB","uuid":"GPU-ubuntu-only-0","memory_bytes":85899345920,
            "pci_bus_id":"00000000:07:00.0","compute_capability":"8.0",
            "driver_version":"550.54.14","cuda_version":"12.4"}]"#,
    )
    .unwrap();
    let mut spec = devnet.agent(&ubuntu_dir.join("data"), &gpus);
    spec.extra.extend(["--allow-image", "ubuntu:*"].map(Into::into));
    let (_agent, ready) =
        spec.spawn(&ubuntu_dir.join("agent.log"), Duration::from_secs(60)).await.unwrap();
    let ubuntu_only = gpuflow_devnet::ready_field(&ready, "offer").unwrap();
    devnet.wait_listed(&ubuntu_only, true, Duration::from_secs(60)).await.unwrap();

    // The allow-list is in the offer the provider signed, as the CLI verifies it.
    let shown = gpuflow_json(&devnet, &["offer", &ubuntu_only]).await;
    assert_eq!(shown["allowed_images"], serde_json::json!(["ubuntu:*"]), "{shown}");

    // Both run an ubuntu image; only the devnet's runs the CUDA box's.
    let ubuntu = gpuflow_json(&devnet, &["search", "image=ubuntu:22.04", "-o", "gpu_ram-"]).await;
    assert_eq!(ids(&ubuntu), [ubuntu_only.as_str(), devnet.offer_id.as_str()], "{ubuntu}");
    let found = gpuflow_json(&devnet, &["search", "--template", "cuda-dev"]).await;
    assert_eq!(ids(&found), [devnet.offer_id.as_str()], "{found}");
    assert_eq!(found[0]["image_pulled"], false, "the process runtime pulls nothing: {found}");
    let narrowed =
        gpuflow_json(&devnet, &["search", "--template", "cuda-dev", "gpu_name=A100"]).await;
    assert_eq!(ids(&narrowed), Vec::<&str>::new(), "{narrowed}");
    let not_ubuntu = gpuflow_json(&devnet, &["search", "image!=ubuntu:22.04 num_gpus>=1"]).await;
    assert_eq!(ids(&not_ubuntu), Vec::<&str>::new(), "{not_ubuntu}");

    // The template's GPU memory counts too: 80 GB is more than the devnet's two 24 GB GPUs.
    let big =
        gpuflow_json(&devnet, &["search", "--template", "cuda-dev", "gpu_total_ram>=80"]).await;
    assert_eq!(ids(&big), Vec::<&str>::new(), "{big}");

    // The table says whether the image is on the machine already.
    let table = gpuflow(&devnet, &["search", "--template", "cuda-dev"]).await;
    assert!(table.ok, "{}\n{}", table.stdout, table.stderr);
    assert!(table.stdout.contains("PULLED") && table.stdout.contains(&devnet.offer_id));
    assert!(!table.stdout.contains(&ubuntu_only), "{}", table.stdout);
    let unknown = gpuflow(&devnet, &["search", "--template", "tensorflow"]).await;
    assert!(!unknown.ok && unknown.stderr.contains("pytorch-jupyter, vllm"), "{}", unknown.stderr);

    // Renting the ubuntu-only machine with the CUDA box is refused before any quote.
    let refused = gpuflow(
        &devnet,
        &["--json", "rent", &ubuntu_only, "--hours", "1", "--template", "cuda-dev", "--yes"],
    )
    .await;
    assert!(!refused.ok, "{}", refused.stdout);
    let doc: Value = serde_json::from_str(&refused.stdout).unwrap();
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    // The CLI's own refusal (a usage error naming the search), not the provider's answer
    // to a quote request (exit 4).
    assert_eq!(doc["error"]["code"], 2, "{doc}");
    assert!(
        message.contains("allows only ubuntu:*")
            && message.contains("nothing was asked or paid")
            && message.contains("`gpuflow search --template cuda-dev`"),
        "{doc}"
    );
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS));
    devnet.shutdown().await;
}
