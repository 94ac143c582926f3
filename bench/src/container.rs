//! Time to a shell in a rented container: the devnet with the Docker runtime (anvil mining
//! a block every second, a node, an agent whose default image is pulled ahead), then
//! `gpuflow rent --ssh-key` and `gpuflow ssh RENTAL -- true`, timed from the moment the
//! block that opens the rental appears on the RPC to the end of the successful login.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use gpuflow_devnet::{Devnet, DevnetOptions};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::{
    rental::Renter,
    report::{Figure, Section, Target, quantile},
};

/// How long the agent gets to pull its image ahead, and a rental to run or end.
const PATIENCE: Duration = Duration::from_secs(180);
/// How often the block watcher asks for the chain's height.
const BLOCK_POLL: Duration = Duration::from_millis(10);

/// Parameters of the container benchmark.
#[derive(Clone, Debug)]
pub struct ContainerParams {
    /// Rentals to time.
    pub rentals: usize,
    /// The image the agent pulls ahead and the renter runs (it must have an SSH server).
    pub image: String,
    /// Where `gpuflow`, `gpuflow-node` and `gpuflow-provider` are.
    pub bin_dir: PathBuf,
    /// The command line to print beside the figures.
    pub command: String,
}

/// Runs the container benchmark.
pub async fn run(params: &ContainerParams) -> anyhow::Result<Section> {
    let dir = tempfile::tempdir()?;
    let options = DevnetOptions {
        bin_dir: params.bin_dir.clone(),
        block_time: Some(1),
        docker_image: Some(params.image.clone()),
        ..DevnetOptions::for_checkout(dir.path().join("devnet"))?
    };
    let devnet = Devnet::start(options).await.context("starting the devnet")?;
    let result = rentals(params, &devnet, dir.path()).await;
    devnet.shutdown().await;
    result
}

/// When each block was first seen on the RPC, by number.
type Seen = Arc<Mutex<BTreeMap<u64, Instant>>>;

/// Asks for the chain's height every [`BLOCK_POLL`] and notes when each block appeared.
fn watch_blocks(rpc: String) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let noted = seen.clone();
    let task = tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            if let Ok(height) = call(&client, &rpc, "eth_blockNumber", json!([])).await
                && let Some(number) = height.as_str().and_then(hex_number)
            {
                noted.lock().expect("not poisoned").entry(number).or_insert_with(Instant::now);
            }
            tokio::time::sleep(BLOCK_POLL).await;
        }
    });
    (seen, task)
}

async fn call(
    client: &reqwest::Client,
    rpc: &str,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer: Value = client.post(rpc).json(&body).send().await?.json().await?;
    Ok(answer["result"].clone())
}

fn hex_number(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

async fn rentals(params: &ContainerParams, devnet: &Devnet, dir: &Path) -> anyhow::Result<Section> {
    let renter = Renter::new(&params.bin_dir, devnet, dir);
    let cli = |args: &[&str]| renter.command(args);
    let json_of = |what: &str, out: std::process::Output| -> anyhow::Result<Value> {
        if !out.status.success() {
            bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        serde_json::from_slice(&out.stdout).with_context(|| format!("{what} printed no JSON"))
    };
    let key = dir.join("id_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
        .arg(&key)
        .output()
        .await
        .context("running ssh-keygen (install openssh-client)")?;
    if !keygen.status.success() {
        bail!("ssh-keygen: {}", String::from_utf8_lossy(&keygen.stderr).trim());
    }
    let public_key = format!("{}.pub", key.display());

    // The agent pulls its image at start; the offer lists it once it is on the machine.
    let ready = Instant::now() + PATIENCE;
    loop {
        let offer =
            json_of("gpuflow offer", cli(&["--json", "offer", &devnet.offer_id]).output().await?)?;
        if offer["images"]
            .as_array()
            .is_some_and(|images| images.iter().any(|i| i == params.image.as_str()))
        {
            break;
        }
        if Instant::now() > ready {
            bail!("the agent did not list {} as pulled within {PATIENCE:?}", params.image);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let (seen, watcher) = watch_blocks(devnet.rpc_url.clone());
    let client = reqwest::Client::new();
    let (mut from_block, mut from_rent, mut rows) = (Vec::new(), Vec::new(), String::new());
    for n in 1..=params.rentals {
        let args = [
            "--json",
            "rent",
            &devnet.offer_id,
            "--hours",
            "0.1",
            "--gpus",
            "1",
            "--image",
            &params.image,
            "--ssh-key",
            &public_key,
            "--yes",
        ];
        let start = Instant::now();
        let rented = json_of("gpuflow rent", cli(&args).output().await?)?;
        let state = rented["workload"]["state"].as_str().unwrap_or("none").to_owned();
        if state != "running" {
            bail!("rental {n}: the workload is `{state}`, not running: {rented}");
        }
        let id = rented["rental_id"].to_string();
        let login = cli(&["ssh", &id, "--", "true"]).output().await?;
        let done = Instant::now();
        if !login.status.success() {
            bail!(
                "rental {n}: gpuflow ssh {id} -- true failed: {}",
                String::from_utf8_lossy(&login.stderr).trim()
            );
        }
        let tx = rented["tx"].as_str().context("rent printed no transaction")?;
        let receipt =
            call(&client, &devnet.rpc_url, "eth_getTransactionReceipt", json!([tx])).await?;
        let block = receipt["blockNumber"].as_str().and_then(hex_number).context("no receipt")?;
        let opened = seen.lock().expect("not poisoned").get(&block).copied();
        let opened =
            opened.with_context(|| format!("block {block} was not seen by the watcher"))?;
        let (after_block, after_rent) =
            ((done - opened).as_secs_f64(), (done - start).as_secs_f64());
        let _ = writeln!(rows, "| {n} | {id} | {after_block:.2} s | {after_rent:.2} s |");
        from_block.push(after_block);
        from_rent.push(after_rent);

        // The next rental starts once the provider has removed this container.
        if !renter.stop_and_wait(&id, PATIENCE).await? {
            bail!("rental {id} did not end within {PATIENCE:?} of its stop");
        }
    }
    watcher.abort();
    let (block_median, rent_median) =
        (quantile(&mut from_block, 0.5), quantile(&mut from_rent, 0.5));
    let mut details = String::from("## Time to a shell in a container\n\n");
    let _ = writeln!(
        details,
        "`Devnet::start` with `block_time: Some(1)` and the Docker runtime, its default image \
         `{image}` served by a registry on 127.0.0.1 and pulled by the agent at start (the \
         offer lists it once it is on the machine). Then {n} times `gpuflow --json rent OFFER \
         --gpus 1 --image {image} --ssh-key KEY --yes` and `gpuflow ssh RENTAL -- true`. \
         \"Block → ssh\" runs from the moment the block holding the rental's `open` first \
         answered `eth_blockNumber` (polled every 10 ms) to the end of the successful login: \
         the agent seeing the rental, creating and starting the container, sshd answering, \
         and the renter's login. \"rent → ssh\" adds the quote and the deposit's \
         transactions. Then `gpuflow stop` and a wait for the container's removal. Medians \
         {block_median:.2} s and {rent_median:.2} s.\n",
        image = params.image,
        n = params.rentals,
    );
    details.push_str("| # | rental | block → ssh | rent → ssh |\n| ---: | ---: | ---: | ---: |\n");
    details.push_str(&rows);
    let note = format!("pre-pulled image, 1 s blocks, median of {}", params.rentals);
    let figures = vec![
        Figure::new(
            "time from the opening block to a shell in the container",
            block_median,
            "s",
            Some(Target::AtMost(3.0)),
            &params.command,
        )
        .note(note.clone()),
        Figure::new(
            "time from gpuflow rent to a shell in the container",
            rent_median,
            "s",
            None,
            &params.command,
        )
        .note(note),
    ];
    Ok(Section { figures, details })
}
