//! `gpuflow-provider`: rents out this machine's GPUs on the gpuflow network.

use std::{
    io::{BufRead, Write},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gpuflow_escrow::{Escrow, WalletError};
use gpuflow_p2p::{Multiaddr, NetworkConfig};
use gpuflow_protocol::{Identity, MAX_OFFER_TTL, format_units, parse_units};

use gpuflow_provider::{
    agent::{Agent, AgentConfig, AgentParts, ChainContext},
    config::{self, DockerSettings, FileConfig, KEYSTORE_ENV, PASSWORD_ENV, RuntimeKind},
    docker::DockerRuntime,
    earnings, gpus,
    lock::DataDirLock,
    runtime::{ProcessRuntime, Runtime},
    store::Store,
};

/// Rent out this machine's GPUs on the gpuflow network.
#[derive(Debug, Parser)]
#[command(name = "gpuflow-provider", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  gpuflow-provider init --escrow 0x...
  gpuflow-provider gpus
  gpuflow-provider run --bootstrap /ip4/203.0.113.1/tcp/4001
  gpuflow-provider earnings
  gpuflow-provider withdraw --to 0x...
  gpuflow-provider run --offer-gpus 0,1 --data-dir ~/.config/gpuflow/provider-4090
  gpuflow-provider run --runtime docker --image nvidia/cuda:12.4.1-base-ubuntu22.04 \\
      --allow-image 'pytorch/pytorch:*' --allow-image ubuntu:22.04 --ssh-host 203.0.113.7
  gpuflow-provider run --rpc http://127.0.0.1:8545 --escrow 0x... --key-env PROVIDER_KEY \\
      --bootstrap /ip4/127.0.0.1/tcp/4001 --price-per-hour 0.36";

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the identity, an encrypted payout keystore and a commented config file.
    Init(InitArgs),
    /// List the GPUs this machine would offer.
    Gpus {
        /// Use a simulated inventory (development only; offers say `verified: false`).
        #[arg(long, value_name = "FILE")]
        simulate_gpus: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Advertise the GPUs, run rented workloads and withdraw earnings.
    Run(Box<RunArgs>),
    /// What each rental earned, is withdrawable and was withdrawn, from the chain.
    Earnings {
        #[command(flatten)]
        chain: ChainArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw everything withdrawable now, in one transaction.
    #[command(after_help = "Examples:
  gpuflow-provider withdraw
  gpuflow-provider withdraw --to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8

--to sends the earnings to another address (the escrow's withdrawTo), for a payout
address the token blocklists; the payout wallet still signs.")]
    Withdraw {
        #[command(flatten)]
        chain: ChainArgs,
        /// Send the earnings to this address instead of the payout address.
        #[arg(long, value_name = "ADDRESS")]
        to: Option<Address>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Address of the GpuEscrow contract, written to the config file.
    #[arg(long, env = "GPUFLOW_ESCROW", hide_env_values = true)]
    escrow: Option<Address>,
    /// Directory for the identity key, database and workload logs.
    #[arg(long, env = "GPUFLOW_DATA_DIR", hide_env_values = true)]
    data_dir: Option<PathBuf>,
    /// Replace an existing config file and keystore.
    #[arg(long)]
    force: bool,
}

/// Where the chain, the escrow and the payout wallet are; each falls back to the config
/// file.
#[derive(Debug, Args)]
struct ChainArgs {
    /// Config file (default `$XDG_CONFIG_HOME/gpuflow/provider.toml`).
    #[arg(long, env = "GPUFLOW_PROVIDER_CONFIG", hide_env_values = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Ethereum JSON-RPC endpoint.
    #[arg(long, env = "GPUFLOW_RPC", hide_env_values = true)]
    rpc: Option<String>,
    /// Address of the GpuEscrow contract.
    #[arg(long, env = "GPUFLOW_ESCROW", hide_env_values = true)]
    escrow: Option<Address>,
    /// Encrypted keystore of the payout wallet [env: GPUFLOW_PROVIDER_KEYSTORE] (password in
    /// GPUFLOW_PROVIDER_PASSWORD or prompted); else `keystore` of the config file.
    #[arg(long, value_name = "PATH")]
    keystore: Option<PathBuf>,
    /// Name of an environment variable holding the payout private key instead.
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Directory for the identity key, database and workload logs.
    #[arg(long, env = "GPUFLOW_DATA_DIR", hide_env_values = true)]
    data_dir: Option<PathBuf>,
    /// libp2p listen address.
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/4002")]
    listen: Multiaddr,
    /// Node to join the network through (repeatable).
    #[arg(long, env = "GPUFLOW_BOOTSTRAP", hide_env_values = true, value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Price of the whole machine per hour, in tokens (e.g. 0.36), split evenly over its
    /// GPUs and billed per second; overrides the per-model prices of the config file.
    #[arg(long)]
    price_per_hour: Option<String>,
    /// Region label shown to renters.
    #[arg(long)]
    region: Option<String>,
    /// Download bandwidth to declare in offers, Mbit/s.
    #[arg(long)]
    inet_down_mbps: Option<u64>,
    /// Upload bandwidth to declare in offers, Mbit/s.
    #[arg(long)]
    inet_up_mbps: Option<u64>,
    /// Disk offered to workloads, in GB (10^9 bytes).
    #[arg(long)]
    disk_gb: Option<u64>,
    /// Where rentals run: `process` (development) or `docker`.
    #[arg(long, value_enum)]
    runtime: Option<RuntimeKind>,
    /// Shell command each rental runs (process runtime).
    #[arg(long)]
    workload: Option<String>,
    /// Container image rentals run when the renter asks for none (docker runtime).
    #[arg(long)]
    image: Option<String>,
    /// Host name or IP renters reach the mapped SSH port on (docker runtime).
    #[arg(long, value_name = "HOST")]
    ssh_host: Option<String>,
    /// An image renters may ask for (repeatable; a trailing `*` matches any tag);
    /// replaces `allowed_images` of the config file. Without any, every image is allowed.
    #[arg(long = "allow-image", value_name = "IMAGE")]
    allowed_images: Vec<String>,
    /// Use a simulated inventory (development only; offers say `verified: false`).
    #[arg(long, value_name = "FILE")]
    simulate_gpus: Option<PathBuf>,
    /// Offer only these GPUs, by the index `gpuflow-provider gpus` shows (e.g. 0,1);
    /// replaces `offer_gpus` of the config file. All of them without either.
    #[arg(long, value_name = "INDICES", value_delimiter = ',')]
    offer_gpus: Vec<usize>,
    /// Chain polling interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_interval_ms: u64,
    /// Offer republish interval in seconds.
    #[arg(long, default_value_t = 120)]
    offer_interval_secs: u64,
    /// Heartbeat interval in seconds.
    #[arg(long, default_value_t = 15)]
    heartbeat_interval_secs: u64,
    /// Shortest rental accepted, in seconds.
    #[arg(long)]
    min_duration_secs: Option<u64>,
    /// Longest rental accepted, extensions included, in seconds.
    #[arg(long)]
    max_duration_secs: Option<u64>,
    /// How long a signed quote stays usable, in seconds; its GPUs are held for it meanwhile.
    #[arg(long, default_value_t = 120)]
    quote_validity_secs: u64,
    /// Withdraw from running rentals once this many tokens are withdrawable; 0 withdraws
    /// only ended rentals.
    #[arg(long)]
    withdraw_threshold: Option<String>,
}

#[tokio::main]
async fn main() {
    gpuflow_cli_util::exit_quietly_on_closed_pipe();
    gpuflow_cli_util::init_tracing("info,libp2p=warn");
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => init(args),
        Command::Gpus { simulate_gpus, json } => {
            let inventory = gpus::inventory(simulate_gpus.as_deref())?;
            let report = inventory.report();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            println!(
                "{:<4} {:<28} {:>9} {:<18} {:<5} {:<10} {:<6} {:>7} UUID",
                "#", "NAME", "VRAM_GB", "PCI", "CC", "DRIVER", "CUDA", "POWER_W"
            );
            for gpu in &report.gpus {
                let g = gpu.info;
                println!(
                    "{:<4} {:<28} {:>9} {:<18} {:<5} {:<10} {:<6} {:>7} {}",
                    gpu.index,
                    g.name,
                    format_units(u128::from(g.memory_bytes / 1_000_000), 3),
                    g.pci_bus_id,
                    g.compute_capability,
                    g.driver_version,
                    g.cuda_version,
                    gpu.power_limit_w.map_or("-".into(), |w| w.to_string()),
                    g.uuid
                );
            }
            if !report.verified {
                println!("(simulated inventory: offers will say verified: false)");
            }
            Ok(())
        }
        Command::Run(args) => run_agent(*args).await,
        Command::Earnings { chain, json } => show_earnings(chain, json).await,
        Command::Withdraw { chain, to, json } => withdraw(chain, to, json).await,
    }
}

fn default_config_path() -> anyhow::Result<PathBuf> {
    Ok(gpuflow_cli_util::config_dir().map_err(anyhow::Error::msg)?.join("provider.toml"))
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    Ok(gpuflow_cli_util::config_dir().map_err(anyhow::Error::msg)?.join("provider"))
}

/// The keystore password from GPUFLOW_PROVIDER_PASSWORD, or asked on the terminal.
fn password(confirm: bool) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    let first = prompt("Keystore password: ")?;
    if confirm {
        gpuflow_escrow::keystore::check_password(&first)?;
        anyhow::ensure!(prompt("Repeat it: ")? == first, "the passwords differ; nothing written");
    }
    Ok(first)
}

/// Reads a line from the terminal with echo off.
fn prompt(text: &str) -> anyhow::Result<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .with_context(|| format!("no terminal to ask for the password; set {PASSWORD_ENV}"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&tty);
    // SAFETY: termios calls on a file descriptor we own; the state is restored below.
    let saved = unsafe {
        let mut term: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(fd, &mut term) == 0).then(|| {
            let saved = term;
            term.c_lflag &= !libc::ECHO;
            libc::tcsetattr(fd, libc::TCSANOW, &term);
            saved
        })
    };
    let mut out = &tty;
    out.write_all(text.as_bytes())?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if let Some(saved) = saved {
        // SAFETY: restores the state saved above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    out.write_all(b"\n")?;
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let config_path = default_config_path()?;
    let config_dir = config_path.parent().context("config path has a directory")?.to_owned();
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let keystore = config_dir.join("keystore").join("provider.json");
    for path in [&config_path, &keystore] {
        anyhow::ensure!(
            args.force || !path.exists(),
            "{} exists; pass --force to replace it (a replaced keystore loses its earnings \
             address unless you keep a copy)",
            path.display()
        );
    }
    // Refused before anything is written.
    let password = password(true)?;
    gpuflow_escrow::keystore::check_password(&password)
        .map_err(|e| anyhow::anyhow!("{e}; choose a longer one ({PASSWORD_ENV} or the prompt)"))?;
    let identity = Identity::load_or_create(&data_dir.join("identity.key"))
        .with_context(|| format!("creating the identity in {}", data_dir.display()))?;
    let keystore_dir = keystore.parent().context("keystore path has a directory")?;
    let signer = PrivateKeySigner::random();
    gpuflow_escrow::keystore::create(keystore_dir, "provider.json", &signer, &password)?;
    std::fs::write(&config_path, config::template(args.escrow, &keystore, &data_dir))
        .with_context(|| format!("writing {}", config_path.display()))?;
    println!("peer id:        {}", identity.peer_id());
    println!("payout address: {}", signer.address());
    println!("keystore:       {}", keystore.display());
    println!("config:         {}", config_path.display());
    println!("Fund the payout address with a little gas, set prices in the config, then run");
    println!("`gpuflow-provider run --bootstrap <node multiaddr>`.");
    Ok(())
}

/// The chain, escrow and wallet from flags, then the config file.
struct Chain {
    escrow: Escrow,
    payout: PrivateKeySigner,
    rpc: String,
    chain_id: u64,
    file: FileConfig,
}

/// The config file named by `--config`, else the default one.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<FileConfig> {
    Ok(match path {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::load(&default_config_path()?)?,
    })
}

async fn connect(args: ChainArgs) -> anyhow::Result<Chain> {
    let file = load_config(args.config.as_deref())?;
    connect_with(args, file).await
}

async fn connect_with(args: ChainArgs, file: FileConfig) -> anyhow::Result<Chain> {
    let rpc =
        args.rpc.clone().or(file.rpc.clone()).unwrap_or_else(|| "http://127.0.0.1:8545".into());
    let escrow = args.escrow.or(file.escrow).context(
        "no escrow address: pass --escrow, set GPUFLOW_ESCROW, or add `escrow = \"0x...\"` to provider.toml",
    )?;
    let payout = payout_signer(&args, &file)?;
    let client = gpuflow_escrow::connect(&rpc, Some(payout.clone()))?;
    let chain_id =
        client.get_chain_id().await.with_context(|| format!("cannot reach the chain at {rpc}"))?;
    let escrow = Escrow::new(client, escrow).await?;
    Ok(Chain { escrow, payout, rpc, chain_id, file })
}

/// The payout key: `--key-env VAR`, else the keystore of `--keystore`,
/// `GPUFLOW_PROVIDER_KEYSTORE` or the config file, opened with `GPUFLOW_PROVIDER_PASSWORD`
/// or a prompt. Says (on success, in the log) which wallet was opened and from where;
/// never the renter's `GPUFLOW_KEYSTORE`.
fn payout_signer(args: &ChainArgs, file: &FileConfig) -> anyhow::Result<PrivateKeySigner> {
    if let Some(var) = &args.key_env {
        let signer = gpuflow_escrow::load_signer(None, Some(var))?;
        let from = format!("--key-env {var}");
        tracing::info!(address = %signer.address(), %from, "payout wallet opened");
        return Ok(signer);
    }
    let from_env = std::env::var_os(KEYSTORE_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (path, from) = match (&args.keystore, from_env, &file.keystore) {
        (Some(path), _, _) => (path.clone(), "--keystore".to_owned()),
        (None, Some(path), _) => (path, KEYSTORE_ENV.to_owned()),
        (None, None, Some(path)) => {
            let config = match &args.config {
                Some(config) => config.clone(),
                None => default_config_path()?,
            };
            (path.clone(), format!("`keystore` in {}", config.display()))
        }
        (None, None, None) => {
            let renters = match std::env::var_os("GPUFLOW_KEYSTORE") {
                Some(_) => {
                    "; GPUFLOW_KEYSTORE is set, but it names the renter's wallet (`gpuflow`) \
                     and gpuflow-provider never reads it"
                }
                None => "",
            };
            anyhow::bail!(
                "no payout wallet: pass --keystore PATH, set {KEYSTORE_ENV} or `keystore` in \
                 provider.toml (password in {PASSWORD_ENV}), or pass --key-env VAR{renters}"
            );
        }
    };
    let shown = gpuflow_escrow::shown_path(&path);
    let wallet = match gpuflow_escrow::keystore_address(&path) {
        Some(address) => format!("payout wallet {address} (keystore {shown}, from {from})"),
        None => format!("payout wallet in keystore {shown} (from {from})"),
    };
    let password = password(false).with_context(|| format!("opening the {wallet}"))?;
    let signer =
        gpuflow_escrow::open_keystore(&path, &password, PASSWORD_ENV).map_err(|e| match e {
            WalletError::Keystore { reason, .. } => {
                anyhow::anyhow!("could not open the {wallet}: {reason}")
            }
            e => e.into(),
        })?;
    tracing::info!(address = %signer.address(), keystore = %shown, %from, "payout wallet opened");
    Ok(signer)
}

async fn run_agent(args: RunArgs) -> anyhow::Result<()> {
    let file = load_config(args.chain.config.as_deref())?;
    let mut inventory = gpus::inventory(args.simulate_gpus.as_deref())?;
    let offer_gpus = match args.offer_gpus.is_empty() {
        true => file.offer_gpus.clone(),
        false => Some(args.offer_gpus),
    };
    if let Some(indices) = &offer_gpus {
        inventory = inventory.select(indices)?;
    }
    inventory.check_offerable()?;
    let default_image = args.image.or(file.image.clone());
    // Checked before the chain is reached (and a password asked for).
    let docker = match args.runtime.or(file.runtime).unwrap_or_default() {
        RuntimeKind::Process => None,
        RuntimeKind::Docker => Some(DockerSettings::resolve(
            default_image.clone(),
            args.ssh_host.or(file.ssh_host.clone()),
        )?),
    };
    let data_dir = match args.data_dir.or(file.data_dir.clone()) {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    // Before the chain is reached (and a password asked for): a second agent on this data
    // dir fails at once, naming the first.
    let _lock = DataDirLock::acquire(&data_dir)?;
    let Chain { escrow, payout, rpc, chain_id, file } = connect_with(args.chain, file).await?;
    let identity = Identity::load_or_create(&data_dir.join("identity.key"))
        .with_context(|| format!("loading the identity in {}", data_dir.display()))?;
    let decimals = escrow.decimals().await?;
    let gpu_rates =
        config::gpu_rates(&inventory.gpus, args.price_per_hour.as_deref(), &file.prices, decimals)?;
    let withdraw_threshold = match args.withdraw_threshold.or(file.withdraw_threshold.clone()) {
        Some(tokens) => U256::from(
            parse_units(&tokens, decimals)
                .map_err(|e| anyhow::anyhow!("withdraw threshold: {e}"))?,
        ),
        None => U256::ZERO,
    };
    let chain = ChainContext {
        chain_id,
        domain: escrow.domain().await?,
        dispute_window: escrow.dispute_window().await?,
        next_block: escrow.block_number().await?,
    };
    tracing::debug!(%rpc, chain_id, "chain reached");

    let runtime: Arc<dyn Runtime> = match docker {
        None => Arc::new(ProcessRuntime::new(
            args.workload
                .or(file.workload.clone())
                .unwrap_or_else(|| "exec sleep 2147483647".into()),
            data_dir.join("workloads"),
        )),
        Some(DockerSettings { image, ssh_host }) => {
            Arc::new(DockerRuntime::connect(image, ssh_host).await?)
        }
    };
    let mut allowed_images = if args.allowed_images.is_empty() {
        file.allowed_images.clone()
    } else {
        args.allowed_images
    };
    // The provider's own default is always allowed, asked for by name or not.
    if let Some(image) = &default_image
        && !allowed_images.is_empty()
    {
        allowed_images.push(image.clone());
    }
    for image in &allowed_images {
        gpuflow_protocol::RentalRequest::check_image(image.trim_end_matches('*'))
            .map_err(|e| anyhow::anyhow!("allowed image `{image}`: {e}"))?;
    }
    let store = Store::open(&data_dir.join("provider.db"))?;
    let heartbeat_interval = Duration::from_secs(args.heartbeat_interval_secs.max(1));
    let health = gpus::watch_health(&inventory, heartbeat_interval);

    let (network, events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: identity.clone(),
        listen: vec![args.listen],
        bootstrap: args.bootstrap,
        subscribe_offers: false,
        serve_requests: true,
    })
    .map_err(|error| match error {
        gpuflow_p2p::NetworkError::AddrInUse(addr) => anyhow::anyhow!(
            "the listen address {addr} is already in use by another process; pick another port \
             with --listen"
        ),
        error => error.into(),
    })?;
    tokio::spawn(event_loop.run());

    let agent = Agent::start(
        AgentConfig {
            identity,
            payout: payout.clone(),
            inventory,
            gpu_rates,
            region: args.region.or(file.region).unwrap_or_else(|| "unknown".into()),
            inet_down_mbps: args.inet_down_mbps.or(file.inet_down_mbps),
            inet_up_mbps: args.inet_up_mbps.or(file.inet_up_mbps),
            disk_bytes: args.disk_gb.or(file.disk_gb).map(|gb| gb.saturating_mul(1_000_000_000)),
            data_dir,
            poll_interval: Duration::from_millis(args.poll_interval_ms),
            offer_interval: Duration::from_secs(args.offer_interval_secs),
            offer_ttl: Duration::from_secs((args.offer_interval_secs * 3).clamp(60, MAX_OFFER_TTL)),
            heartbeat_interval,
            min_duration: args.min_duration_secs.or(file.min_duration_secs).unwrap_or(1),
            max_duration: args
                .max_duration_secs
                .or(file.max_duration_secs)
                .unwrap_or(7 * 24 * 3600),
            quote_validity: Duration::from_secs(args.quote_validity_secs),
            withdraw_threshold,
            allowed_images,
        },
        AgentParts { network: network.clone(), escrow, store, runtime, health },
        chain,
    )
    .await?;
    // One line on stdout tells supervisors (and the devnet) that the agent is up.
    println!(
        "gpuflow-provider ready peer={} offer={} payout={}",
        network.peer_id(),
        agent.offer_id(),
        payout.address()
    );
    agent.run(events, gpuflow_cli_util::shutdown_signal()).await
}

async fn show_earnings(args: ChainArgs, json: bool) -> anyhow::Result<()> {
    let chain = connect(args).await?;
    let rows = earnings::earnings(&chain.escrow, chain.payout.address()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let decimals = chain.escrow.decimals().await?;
    let tokens = |v: U256| format_units(v.to::<u128>(), decimals);
    println!(
        "{:>8} {:<42} {:>8} {:>14} {:>14} {:>14}",
        "RENTAL", "RENTER", "STATE", "EARNED", "WITHDRAWABLE", "WITHDRAWN"
    );
    for r in &rows {
        let state = if r.stopped {
            "stopped"
        } else if r.end <= gpuflow_protocol::unix_now() {
            "ended"
        } else {
            "active"
        };
        println!(
            "{:>8} {:<42} {:>8} {:>14} {:>14} {:>14}",
            r.rental_id,
            r.renter,
            state,
            tokens(r.earned),
            tokens(r.withdrawable),
            tokens(r.withdrawn)
        );
    }
    println!("(gross amounts; the platform fee is taken from each withdrawal)");
    Ok(())
}

async fn withdraw(args: ChainArgs, to: Option<Address>, json: bool) -> anyhow::Result<()> {
    if to.is_some_and(|to| to.is_zero()) {
        anyhow::bail!("--to is the zero address, where tokens would be lost; name the recipient");
    }
    let chain = connect(args).await?;
    let rows = earnings::earnings(&chain.escrow, chain.payout.address()).await?;
    let due: Vec<u64> =
        rows.iter().filter(|r| !r.withdrawable.is_zero()).map(|r| r.rental_id).collect();
    let paid =
        if due.is_empty() { Vec::new() } else { chain.escrow.withdraw_many(&due, to).await? };
    if json {
        let paid: Vec<_> = paid
            .iter()
            .map(|w| {
                serde_json::json!({
                    "rental_id": w.rental_id,
                    "amount": w.amount.to_string(),
                    "fee": w.fee.to_string(),
                    "tx": w.tx.to_string(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&paid)?);
        return Ok(());
    }
    if paid.is_empty() {
        println!("nothing is withdrawable yet (earned seconds wait out the dispute window)");
        return Ok(());
    }
    let decimals = chain.escrow.decimals().await?;
    println!("{:>8} {:>14} {:>14} TX", "RENTAL", "PAID", "FEE");
    for w in &paid {
        println!(
            "{:>8} {:>14} {:>14} {}",
            w.rental_id,
            format_units(w.amount.to::<u128>(), decimals),
            format_units(w.fee.to::<u128>(), decimals),
            w.tx
        );
    }
    Ok(())
}
