//! A local gpuflow network in one call: anvil from the npm-installed Foundry, `MockUSDC`
//! and `GpuEscrow` deployed from the forge artifacts, a funded renter with an encrypted
//! keystore, and a real `gpuflow-node` and `gpuflow-provider` on free ports.
//!
//! The `gpuflow-devnet` binary runs it for `make demo`; the end-to-end tests use the
//! library directly. Everything started is stopped when the [`Devnet`] is dropped.
//! [`deploy`] is the deployment path for any EVM chain; the devnet uses it too.

pub mod deploy;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use alloy::{
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail};
use gpuflow_escrow::keystore::Kdf;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// Password of the devnet's keystores (renter, provider, attesters). Devnet only.
pub const DEVNET_PASSWORD: &str = "devnet-password";
/// Tokens minted to the devnet renter, in units (1,000 mUSDC).
pub const RENTER_FUNDS: u64 = 1_000_000_000;
/// Environment variable through which the devnet hands the provider its key.
const PROVIDER_KEY_ENV: &str = "GPUFLOW_DEVNET_PROVIDER_KEY";
/// Longest wait for a started process to report ready, or for the first offer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How to set up the devnet.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    /// Where logs, keystores and data go.
    pub dir: PathBuf,
    /// Where `gpuflow-node` and `gpuflow-provider` are.
    pub bin_dir: PathBuf,
    /// The anvil binary.
    pub anvil: PathBuf,
    /// The provider's simulated inventory.
    pub gpus: PathBuf,
    /// The provider's price per hour, in tokens.
    pub price_per_hour: String,
    /// Platform fee in basis points.
    pub fee_bps: u16,
    /// Seconds before earned seconds can be withdrawn; short on a devnet so the demo
    /// can show the provider being paid.
    pub dispute_window: u64,
    /// Command each rental runs.
    pub workload: String,
    /// Mine a block every this many seconds instead of on every transaction.
    pub block_time: Option<u64>,
    /// Width of the node's uptime buckets, seconds; short on a devnet so that downtime
    /// shows within seconds.
    pub uptime_bucket_secs: u64,
    /// Silence the node forgives before counting downtime, seconds.
    pub grace_secs: u64,
    /// Seconds between the provider's heartbeats, and between the node's probes.
    pub heartbeat_interval_secs: u64,
    /// Nodes started, each with an attester key registered on the escrow; the first is
    /// the one searches and rentals use, the others join through it.
    pub nodes: usize,
    /// Distinct attester signatures a downtime credit needs (at most `nodes`).
    pub attester_threshold: u8,
}

impl DevnetOptions {
    /// Defaults for a checkout of the repository: binaries next to the running
    /// executable, anvil from `contracts/node_modules`.
    pub fn for_checkout(dir: PathBuf) -> anyhow::Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("deploy/ has a parent")
            .to_owned();
        Ok(Self {
            dir,
            bin_dir: bin_dir()?,
            anvil: std::env::var_os("GPUFLOW_ANVIL").map(PathBuf::from).unwrap_or_else(|| {
                root.join("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
            }),
            gpus: root.join("deploy/devnet-gpus.json"),
            price_per_hour: "0.36".into(),
            fee_bps: 1000,
            dispute_window: 5,
            // Runs until the rental ends, or until this process does: workloads outlive
            // their agent (a restarted agent re-attaches them), not the devnet.
            workload: format!(
                "echo \"workload up for rental $GPUFLOW_RENTAL_ID on $CUDA_VISIBLE_DEVICES\"; \
                 exec tail -f /dev/null --pid={}",
                std::process::id()
            ),
            block_time: None,
            uptime_bucket_secs: 2,
            grace_secs: 4,
            heartbeat_interval_secs: 1,
            nodes: 1,
            attester_threshold: 1,
        })
    }
}

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    /// JSON-RPC URL of anvil.
    pub rpc_url: String,
    /// Chain id.
    pub chain_id: u64,
    /// `GpuEscrow` address.
    pub escrow: Address,
    /// `MockUSDC` address.
    pub token: Address,
    /// Treasury that collects fees.
    pub treasury: Address,
    /// The funded renter.
    pub renter: Address,
    /// The renter's encrypted keystore (password [`DEVNET_PASSWORD`]).
    pub renter_keystore: PathBuf,
    /// The provider's payout address.
    pub provider: Address,
    /// The provider's payout keystore (password [`DEVNET_PASSWORD`]).
    pub provider_keystore: PathBuf,
    /// The node's HTTP base URL.
    pub node_url: String,
    /// The node's libp2p address.
    pub node_p2p: String,
    /// The provider's offer id.
    pub offer_id: String,
    /// The provider agent's log file.
    pub provider_log: PathBuf,
    /// Where workload logs go.
    pub workload_dir: PathBuf,
    /// The node's attester address, registered on the escrow.
    pub attester: Address,
    /// HTTP base URL of every node, the first being [`Devnet::node_url`]'s.
    pub node_urls: Vec<String>,
    nodes: Vec<Child>,
    agent: Child,
    /// How the agent was started, to start it again.
    agent_command: Vec<std::ffi::OsString>,
    provider_key: String,
    dir: PathBuf,
    _anvil: AnvilInstance,
}

impl Devnet {
    /// Starts everything and waits until the node lists the provider's offer.
    pub async fn start(options: DevnetOptions) -> anyhow::Result<Self> {
        for (what, path) in [
            ("anvil", &options.anvil),
            ("gpuflow-node", &options.bin_dir.join("gpuflow-node")),
            ("gpuflow-provider", &options.bin_dir.join("gpuflow-provider")),
        ] {
            if !path.exists() {
                bail!("{what} not found at {}; run `make build` first", path.display());
            }
        }
        std::fs::create_dir_all(&options.dir)?;
        let mut anvil = Anvil::at(&options.anvil);
        if let Some(seconds) = options.block_time {
            anvil = anvil.block_time(seconds);
        }
        let anvil = anvil.try_spawn().context("starting anvil")?;
        let rpc_url = anvil.endpoint();
        let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
        let (deployer, treasury, provider, renter) = (key(0), key(1), key(2), key(3));
        anyhow::ensure!((1..=5).contains(&options.nodes), "a devnet runs 1 to 5 nodes");
        // Anvil's keys 4 and up, one per node.
        let attesters: Vec<PrivateKeySigner> = (0..options.nodes).map(|i| key(4 + i)).collect();

        let chain = gpuflow_escrow::connect(&rpc_url, Some(deployer.clone()))?;
        let deployment = deploy::deploy(
            &chain,
            &deploy::DeployParams {
                token: None,
                treasury: treasury.address(),
                fee_bps: options.fee_bps,
                dispute_window: options.dispute_window,
                owner: deployer.address(),
                attesters: attesters.iter().map(|a| a.address()).collect(),
                attester_threshold: options.attester_threshold,
            },
        )
        .await?;
        std::fs::write(
            options.dir.join("deployment.json"),
            serde_json::to_string_pretty(&deployment)?,
        )?;
        deploy::mint(&chain, deployment.token, renter.address(), U256::from(RENTER_FUNDS)).await?;

        let keystore_dir = options.dir.join("keystore");
        let renter_keystore = devnet_keystore(&keystore_dir, "renter.json", &renter)?;
        // For `gpuflow-provider earnings`/`withdraw` in a shell with the env file sourced;
        // the devnet's own agent takes its key from the environment.
        let provider_keystore = devnet_keystore(&keystore_dir, "provider.json", &provider)?;
        let seconds = |n: u64| n.to_string();
        let mut nodes = Vec::new();
        let mut node_urls = Vec::new();
        let mut node_p2p = String::new();
        for (i, attester) in attesters.iter().enumerate() {
            let name = match i {
                0 => "node".to_owned(),
                i => format!("node-{i}"),
            };
            let keystore = devnet_keystore(&keystore_dir, &format!("attester-{i}.json"), attester)?;
            let mut command = Command::new(options.bin_dir.join("gpuflow-node"));
            command
                // The devnet's processes never read the developer's own configuration.
                .env("XDG_CONFIG_HOME", &options.dir)
                .arg("--data-dir")
                .arg(options.dir.join(&name))
                .args(["--http", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
                // Index the escrow too; anvil does not reorg on its own, so no confirmations.
                .args(["--rpc", &rpc_url, "--escrow", &deployment.escrow.to_string()])
                .args([
                    "--escrow-from-block",
                    &deployment.block.to_string(),
                    "--confirmations",
                    "0",
                ])
                // Sign downtime attestations with a registered attester key.
                .arg("--attester-keystore")
                .arg(&keystore)
                .env(gpuflow_escrow::PASSWORD_ENV, DEVNET_PASSWORD)
                .args(["--uptime-bucket-secs", &seconds(options.uptime_bucket_secs)])
                .args(["--grace-secs", &seconds(options.grace_secs)])
                .args(["--probe-interval-secs", &seconds(options.heartbeat_interval_secs)])
                .args(["--score-interval-secs", &seconds(options.heartbeat_interval_secs)]);
            if i > 0 {
                command.args(["--bootstrap", &node_p2p]);
            }
            let (node, ready) = spawn_ready(
                &mut command,
                &options.dir.join(format!("{name}.log")),
                "gpuflow-node ready",
                READY_TIMEOUT,
            )
            .await?;
            nodes.push(node);
            node_urls.push(ready_field(&ready, "http")?);
            if i == 0 {
                node_p2p = ready_field(&ready, "p2p")?;
            }
        }
        let node_url = node_urls[0].clone();

        let provider_log = options.dir.join("provider.log");
        let provider_dir = options.dir.join("provider");
        let mut agent_command: Vec<std::ffi::OsString> = vec![
            options.bin_dir.join("gpuflow-provider").into(),
            "run".into(),
            "--data-dir".into(),
            provider_dir.clone().into(),
            "--simulate-gpus".into(),
            options.gpus.clone().into(),
        ];
        agent_command.extend(
            [
                "--rpc",
                &rpc_url,
                "--escrow",
                &deployment.escrow.to_string(),
                "--key-env",
                PROVIDER_KEY_ENV,
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--bootstrap",
                &node_p2p,
                "--price-per-hour",
                &options.price_per_hour,
                "--region",
                "devnet",
                "--workload",
                &options.workload,
                "--poll-interval-ms",
                "250",
                "--heartbeat-interval-secs",
                &seconds(options.heartbeat_interval_secs),
            ]
            .map(Into::into),
        );
        // The key only ever travels in the agent's environment.
        let provider_key = provider.to_bytes().to_string();
        let (agent, ready) =
            start_agent(&agent_command, &options.dir, &provider_key, &provider_log).await?;
        let offer_id = ready_field(&ready, "offer")?;

        let devnet = Self {
            rpc_url,
            chain_id: deployment.chain_id,
            escrow: deployment.escrow,
            token: deployment.token,
            treasury: treasury.address(),
            renter: renter.address(),
            renter_keystore,
            provider: provider.address(),
            provider_keystore,
            node_url,
            node_p2p,
            offer_id,
            provider_log,
            workload_dir: provider_dir.join("workloads"),
            attester: attesters[0].address(),
            node_urls,
            nodes,
            agent,
            agent_command,
            provider_key,
            dir: options.dir.clone(),
            _anvil: anvil,
        };
        // The provider's offer crossed gossipsub.
        devnet.wait_listed(&devnet.offer_id, true, READY_TIMEOUT).await?;
        Ok(devnet)
    }

    /// Waits until the node serves `offer` (`listed`), or no longer does, for at most
    /// `timeout`.
    pub async fn wait_listed(
        &self,
        offer: &str,
        listed: bool,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let url = format!("{}/v1/offers/{offer}", self.node_url);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let served = reqwest::get(&url).await.map(|r| r.status().is_success());
            if served.as_ref().is_ok_and(|served| *served == listed) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the node still {} offer {offer} after {timeout:?} ({served:?})",
                    if listed { "does not list" } else { "lists" }
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the provider agent at once (SIGKILL), as a crash or a power cut would.
    pub async fn kill_provider(&mut self) -> anyhow::Result<()> {
        self.agent.kill().await.context("killing the provider agent")
    }

    /// Starts the provider agent again on its data directory, after
    /// [`Devnet::kill_provider`]; its log continues in the same file.
    pub async fn restart_provider(&mut self) -> anyhow::Result<()> {
        let (agent, _) =
            start_agent(&self.agent_command, &self.dir, &self.provider_key, &self.provider_log)
                .await?;
        self.agent = agent;
        Ok(())
    }

    /// Moves the chain's clock `seconds` ahead and mines a block, so tests can let
    /// rented time pass without waiting for it.
    pub async fn advance_time(&self, seconds: u64) -> anyhow::Result<()> {
        use alloy::providers::Provider;
        let chain = gpuflow_escrow::connect(&self.rpc_url, None)?;
        chain
            .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (seconds,))
            .await
            .context("evm_increaseTime")?;
        chain
            .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .context("evm_mine")?;
        Ok(())
    }

    /// The variables a `gpuflow` command needs to use this devnet.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GPUFLOW_RPC", self.rpc_url.clone()),
            ("GPUFLOW_ESCROW", self.escrow.to_string()),
            ("GPUFLOW_NODE", self.node_url.clone()),
            // The renter's wallet, for `gpuflow`.
            ("GPUFLOW_KEYSTORE", self.renter_keystore.display().to_string()),
            ("GPUFLOW_PASSWORD", DEVNET_PASSWORD.to_owned()),
            // The provider's, for `gpuflow-provider earnings` and `withdraw`.
            ("GPUFLOW_PROVIDER_KEYSTORE", self.provider_keystore.display().to_string()),
            ("GPUFLOW_PROVIDER_PASSWORD", DEVNET_PASSWORD.to_owned()),
            ("GPUFLOW_TOKEN", self.token.to_string()),
            ("GPUFLOW_TREASURY", self.treasury.to_string()),
            ("GPUFLOW_RENTER", self.renter.to_string()),
            ("GPUFLOW_PROVIDER", self.provider.to_string()),
            ("GPUFLOW_OFFER", self.offer_id.clone()),
            ("GPUFLOW_PROVIDER_LOG", self.provider_log.display().to_string()),
            ("GPUFLOW_WORKLOAD_DIR", self.workload_dir.display().to_string()),
            (
                "GPUFLOW_PROVIDER_PID",
                self.agent.id().map(|pid| pid.to_string()).unwrap_or_default(),
            ),
            ("GPUFLOW_ATTESTER", self.attester.to_string()),
            ("GPUFLOW_NODES", self.node_urls.join(" ")),
        ]
    }

    /// Writes [`Devnet::env`] as a shell-sourceable file, readable by its owner only
    /// (`0600`) since it holds the keystore password: the text goes to a file created
    /// `0600` beside `path`, which then replaces `path`, so no other mode ever shows.
    pub fn write_env(&self, path: &Path) -> std::io::Result<()> {
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        let text: String = self.env().iter().map(|(k, v)| format!("export {k}='{v}'\n")).collect();
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let staged = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&staged);
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&staged)?;
        let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
        match written.and_then(|()| std::fs::rename(&staged, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&staged);
                Err(e)
            }
        }
    }

    /// Starts a second provider agent beside the devnet's, with the same payout key (one
    /// agent per GPU model, say) but its own data directory `dir`, its GPUs from `gpus` (a
    /// simulated inventory) and its own port. Returns it, killed when dropped, with its
    /// ready line (see [`ready_field`]).
    pub async fn start_sibling_agent(
        &self,
        dir: &Path,
        gpus: &Path,
    ) -> anyhow::Result<(Child, String)> {
        let mut command = self.agent_command.clone();
        for (flag, value) in [("--data-dir", dir), ("--simulate-gpus", gpus)] {
            let at = command.iter().position(|a| a == flag).context("the agent's command")?;
            command[at + 1] = value.into();
        }
        std::fs::create_dir_all(dir)?;
        start_agent(&command, &self.dir, &self.provider_key, &dir.join("agent.log")).await
    }

    /// Stops the agent and the nodes gracefully (SIGTERM), then anvil.
    pub async fn shutdown(mut self) {
        for child in std::iter::once(&mut self.agent).chain(&mut self.nodes) {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

/// Writes a devnet keystore (`0600`, in a `0700` directory) with [`Kdf::Light`]: its keys
/// are anvil's well-known development keys and its password is [`DEVNET_PASSWORD`], so
/// geth's standard scrypt cost would protect nothing and only slow every unlock down.
/// Wallets a developer creates against the devnet (`gpuflow wallet new`) still get the
/// standard cost: the devnet's env file does not set `GPUFLOW_TEST_LIGHT_KDF`.
fn devnet_keystore(dir: &Path, name: &str, signer: &PrivateKeySigner) -> anyhow::Result<PathBuf> {
    gpuflow_escrow::keystore::create_with(dir, name, signer, DEVNET_PASSWORD, Kdf::Light)
        .with_context(|| format!("writing the devnet keystore {name}"))
}

/// Where the gpuflow binaries are: `GPUFLOW_BIN_DIR`, or the directory of the running
/// executable (its parent for test binaries in `deps/`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("GPUFLOW_BIN_DIR") {
        return Ok(dir.into());
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("executable has no directory")?.to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Starts the provider agent with `command` and waits until it is ready.
async fn start_agent(
    command: &[std::ffi::OsString],
    dir: &Path,
    key: &str,
    log: &Path,
) -> anyhow::Result<(Child, String)> {
    let (program, args) = command.split_first().context("an agent command")?;
    spawn_ready(
        Command::new(program).args(args).env("XDG_CONFIG_HOME", dir).env(PROVIDER_KEY_ENV, key),
        log,
        "gpuflow-provider ready",
        READY_TIMEOUT,
    )
    .await
}

/// Spawns a daemon with stdin closed and stderr appended to `log`, and waits at most
/// `timeout` for its one-line ready report starting with `marker` (e.g.
/// `gpuflow-provider ready`), which it returns; see [`ready_field`]. The child is killed
/// when dropped.
pub async fn spawn_ready(
    command: &mut Command,
    log: &Path,
    marker: &str,
    timeout: Duration,
) -> anyhow::Result<(Child, String)> {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {marker}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with(marker) {
                return Ok(line);
            }
        }
        bail!("exited before reporting ready; see {}", log.display())
    })
    .await
    .with_context(|| format!("no `{marker}` within {timeout:?}; see {}", log.display()))??;
    Ok((child, ready))
}

/// Reads `key=value` from a ready line, e.g. `offer` from the provider's.
pub fn ready_field(line: &str, key: &str) -> anyhow::Result<String> {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
        .with_context(|| format!("`{line}` has no {key}="))
}
