//! The devnet: a [`LocalChain`], one or more real `gpuflow-node`s and a real
//! `gpuflow-provider`, on free ports, started in that order.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail};
use gpuflow_escrow::keystore::Kdf;
use tokio::process::{Child, Command};

use crate::{
    agent::AgentSpec,
    chain::{ChainOptions, LocalChain, anvil_bin},
    process::{bin_dir, ready_field, spawn_ready},
};

/// Password of the devnet's keystores (renter, provider, attesters). Devnet only.
pub const DEVNET_PASSWORD: &str = "devnet-password";
/// Tokens minted to the devnet renter, in units (1,000 mUSDC).
pub const RENTER_FUNDS: u64 = 1_000_000_000;
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
    /// The provider's simulated inventory; `None` offers the machine's real GPUs, read
    /// through NVML (`gpuflow-devnet --real-gpus`, on a GPU machine).
    pub gpus: Option<PathBuf>,
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
    /// Run rentals in containers of the local Docker engine, this image by default, with
    /// their SSH ports published on 127.0.0.1; `None` runs them as processes.
    pub docker_image: Option<String>,
    /// More flags for `gpuflow-provider run` (e.g. `--volume-grace-hours 0.02`).
    pub provider_args: Vec<String>,
    /// More flags for every `gpuflow-node` (e.g. `--challenge-size 64`).
    pub node_args: Vec<String>,
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
            anvil: anvil_bin(),
            gpus: Some(root.join("deploy/devnet-gpus.json")),
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
            docker_image: None,
            provider_args: Vec::new(),
            node_args: Vec::new(),
        })
    }

    /// Fails naming what is missing when a binary the devnet runs is not there.
    fn check_binaries(&self) -> anyhow::Result<()> {
        for (what, path) in [
            ("anvil", &self.anvil),
            ("gpuflow-node", &self.bin_dir.join("gpuflow-node")),
            ("gpuflow-provider", &self.bin_dir.join("gpuflow-provider")),
        ] {
            if !path.exists() {
                bail!("{what} not found at {}; run `make build` first", path.display());
            }
        }
        Ok(())
    }

    /// The chain under the devnet: one attester per node.
    fn chain(&self) -> ChainOptions {
        ChainOptions {
            anvil: self.anvil.clone(),
            block_time: self.block_time,
            fee_bps: self.fee_bps,
            dispute_window: self.dispute_window,
            attesters: self.nodes,
            attester_threshold: self.attester_threshold,
            renter_funds: U256::from(RENTER_FUNDS),
        }
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
    agent_spec: AgentSpec,
    _chain: LocalChain,
}

impl Devnet {
    /// Starts everything and waits until the node lists the provider's offer.
    pub async fn start(options: DevnetOptions) -> anyhow::Result<Self> {
        options.check_binaries()?;
        std::fs::create_dir_all(&options.dir)?;
        anyhow::ensure!((1..=5).contains(&options.nodes), "a devnet runs 1 to 5 nodes");
        let chain = LocalChain::start(&options.chain()).await?;
        std::fs::write(
            options.dir.join("deployment.json"),
            serde_json::to_string_pretty(&chain.deployment)?,
        )?;
        let keystores = Keystores::write(&options.dir.join("keystore"), &chain)?;
        let nodes = Nodes::start(&options, &chain, &keystores.attesters).await?;
        let provider_dir = options.dir.join("provider");
        let agent_spec = AgentSpec {
            bin_dir: options.bin_dir.clone(),
            rpc_url: chain.rpc_url(),
            escrow: chain.deployment.escrow,
            bootstrap: nodes.p2p.clone(),
            key: chain.provider.to_bytes().to_string(),
            data_dir: provider_dir.clone(),
            // The devnet's processes never read the developer's own configuration.
            config_home: options.dir.clone(),
            gpus: options.gpus.clone(),
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            price_per_hour: Some(options.price_per_hour.clone()),
            region: "devnet".into(),
            workload: Some(options.workload.clone()),
            poll_interval_ms: Some(250),
            heartbeat_interval_secs: Some(options.heartbeat_interval_secs),
            extra: match &options.docker_image {
                Some(image) => ["--runtime", "docker", "--image", image, "--ssh-host", "127.0.0.1"]
                    .map(Into::into)
                    .to_vec(),
                None => Vec::new(),
            }
            .into_iter()
            .chain(options.provider_args.iter().map(Into::into))
            .collect(),
            env: Vec::new(),
        };
        let provider_log = options.dir.join("provider.log");
        let (agent, ready) = agent_spec.spawn(&provider_log, READY_TIMEOUT).await?;
        let offer_id = ready_field(&ready, "offer")?;

        let devnet = Self {
            rpc_url: chain.rpc_url(),
            chain_id: chain.deployment.chain_id,
            escrow: chain.deployment.escrow,
            token: chain.deployment.token,
            treasury: chain.treasury.address(),
            renter: chain.renter.address(),
            renter_keystore: keystores.renter,
            provider: chain.provider.address(),
            provider_keystore: keystores.provider,
            node_url: nodes.urls[0].clone(),
            node_p2p: nodes.p2p,
            offer_id,
            provider_log,
            workload_dir: provider_dir.join("workloads"),
            attester: chain.attesters[0].address(),
            node_urls: nodes.urls,
            nodes: nodes.children,
            agent,
            agent_spec,
            _chain: chain,
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
        let (agent, _) = self.agent_spec.spawn(&self.provider_log, READY_TIMEOUT).await?;
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
            // Where another node or agent joins this network (`gpuflow-node` and
            // `gpuflow-provider run` read it).
            ("GPUFLOW_BOOTSTRAP", self.node_p2p.clone()),
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

    /// A provider agent like the devnet's own (same chain, node, payout key and flags)
    /// but on its own data directory `data_dir` and simulated inventory `gpus`, and on a
    /// port of its own; tests change the rest of the returned spec as they need.
    pub fn agent(&self, data_dir: &Path, gpus: &Path) -> AgentSpec {
        AgentSpec {
            data_dir: data_dir.to_owned(),
            gpus: Some(gpus.to_owned()),
            ..self.agent_spec.clone()
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
        std::fs::create_dir_all(dir)?;
        self.agent(dir, gpus).spawn(&dir.join("agent.log"), READY_TIMEOUT).await
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

/// The devnet's keystores (`0600`, in a `0700` directory).
struct Keystores {
    renter: PathBuf,
    provider: PathBuf,
    attesters: Vec<PathBuf>,
}

impl Keystores {
    fn write(dir: &Path, chain: &LocalChain) -> anyhow::Result<Self> {
        Ok(Self {
            renter: devnet_keystore(dir, "renter.json", &chain.renter)?,
            // For `gpuflow-provider earnings`/`withdraw` in a shell with the env file
            // sourced; the devnet's own agent takes its key from the environment.
            provider: devnet_keystore(dir, "provider.json", &chain.provider)?,
            attesters: (chain.attesters.iter().enumerate())
                .map(|(i, key)| devnet_keystore(dir, &format!("attester-{i}.json"), key))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

/// The devnet's nodes, each signing downtime attestations with its own registered
/// attester key; the first is the one the others join through.
struct Nodes {
    children: Vec<Child>,
    urls: Vec<String>,
    /// The first node's libp2p address.
    p2p: String,
}

impl Nodes {
    async fn start(
        options: &DevnetOptions,
        chain: &LocalChain,
        attester_keystores: &[PathBuf],
    ) -> anyhow::Result<Self> {
        let mut nodes = Self { children: Vec::new(), urls: Vec::new(), p2p: String::new() };
        for (i, keystore) in attester_keystores.iter().enumerate() {
            let name = match i {
                0 => "node".to_owned(),
                i => format!("node-{i}"),
            };
            let mut command = node_command(options, chain, &name, keystore);
            if i > 0 {
                command.args(["--bootstrap", &nodes.p2p]);
            }
            let (node, ready) = spawn_ready(
                &mut command,
                &options.dir.join(format!("{name}.log")),
                "gpuflow-node ready",
                READY_TIMEOUT,
            )
            .await?;
            nodes.children.push(node);
            nodes.urls.push(ready_field(&ready, "http")?);
            if i == 0 {
                nodes.p2p = ready_field(&ready, "p2p")?;
            }
        }
        Ok(nodes)
    }
}

/// The `gpuflow-node` command of the devnet's node `name`.
fn node_command(
    options: &DevnetOptions,
    chain: &LocalChain,
    name: &str,
    keystore: &Path,
) -> Command {
    let seconds = |n: u64| n.to_string();
    let mut command = Command::new(options.bin_dir.join("gpuflow-node"));
    command
        // The devnet's processes never read the developer's own configuration, nor join
        // another devnet whose env file the shell sourced.
        .env("XDG_CONFIG_HOME", &options.dir)
        .env_remove("GPUFLOW_BOOTSTRAP")
        .arg("--data-dir")
        .arg(options.dir.join(name))
        .args(["--http", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
        // Index the escrow too; anvil does not reorg on its own, so no confirmations.
        .args(["--rpc", &chain.rpc_url(), "--escrow", &chain.deployment.escrow.to_string()])
        .args(["--escrow-from-block", &chain.deployment.block.to_string(), "--confirmations", "0"])
        // Sign downtime attestations with a registered attester key.
        .arg("--attester-keystore")
        .arg(keystore)
        .env(gpuflow_escrow::PASSWORD_ENV, DEVNET_PASSWORD)
        .args(["--uptime-bucket-secs", &seconds(options.uptime_bucket_secs)])
        .args(["--grace-secs", &seconds(options.grace_secs)])
        .args(["--probe-interval-secs", &seconds(options.heartbeat_interval_secs)])
        .args(["--score-interval-secs", &seconds(options.heartbeat_interval_secs)])
        .args(&options.node_args);
    command
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
