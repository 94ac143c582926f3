//! `gpuflow-provider run`: advertise the GPUs, run rented workloads and withdraw earnings
//! until a signal stops the agent.

use std::{sync::Arc, time::Duration};

use alloy::primitives::U256;
use anyhow::Context;
use gpuflow_p2p::NetworkConfig;
use gpuflow_protocol::{Identity, MAX_OFFER_TTL, parse_units};

use super::connect::{Chain, connect_with, load_config};
use crate::{
    agent::{Agent, AgentConfig, AgentParts, ChainContext},
    config::{self, DockerSettings, FileConfig, RuntimeKind},
    docker::DockerRuntime,
    gpus::{self, Inventory},
    host::Host,
    lock::DataDirLock,
    opts::RunArgs,
    runtime::{ProcessRuntime, Runtime},
    store::Store,
};

/// How long a renter's volume outlives its last rental unless configured otherwise.
const DEFAULT_VOLUME_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The GPUs `run` offers: read through NVML (or simulated), narrowed to `--offer-gpus` or
/// the config's `offer_gpus`, one model.
pub(super) fn offered_inventory(args: &RunArgs, file: &FileConfig) -> anyhow::Result<Inventory> {
    let mut inventory = gpus::inventory(args.simulate_gpus.as_deref())?;
    let offer_gpus = match args.offer_gpus.is_empty() {
        true => file.offer_gpus.clone(),
        false => Some(args.offer_gpus.clone()),
    };
    if let Some(indices) = &offer_gpus {
        inventory = inventory.select(indices)?;
    }
    inventory.check_offerable()?;
    Ok(inventory)
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let file = load_config(args.chain.config.as_deref())?;
    let inventory = offered_inventory(&args, &file)?;
    let default_image = args.image.clone().or(file.image.clone());
    // Checked before the chain is reached (and a password asked for).
    let docker = match args.runtime.or(file.runtime).unwrap_or_default() {
        RuntimeKind::Process => None,
        RuntimeKind::Docker => Some(DockerSettings::resolve(
            default_image.clone(),
            args.ssh_host.clone().or(file.ssh_host.clone()),
        )?),
    };
    let data_dir = super::data_dir(args.data_dir.clone(), &file)?;
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
    let volume_grace = match args.volume_grace_hours.or(file.volume_grace_hours.clone()) {
        Some(hours) => Duration::from_secs(
            gpuflow_protocol::hours_to_seconds(&hours)
                .map_err(|e| anyhow::anyhow!("volume grace: {e}"))?,
        ),
        None => DEFAULT_VOLUME_GRACE,
    };
    let chain = ChainContext {
        chain_id,
        domain: escrow.domain().await?,
        dispute_window: escrow.dispute_window().await?,
        next_block: escrow.block_number().await?,
    };
    tracing::debug!(%rpc, chain_id, "chain reached");

    let publishes_ports = docker.is_some();
    // The image a container runtime starts when the renter names none.
    let runtime_image = docker.as_ref().map(|settings| settings.image.clone());
    // The machine's CPUs, memory and free disk (where the workloads write) for the offer.
    let (runtime, host): (Arc<dyn Runtime>, Host) = match docker {
        None => {
            let workloads = data_dir.join("workloads");
            let command = args
                .workload
                .or(file.workload.clone())
                .unwrap_or_else(|| "exec sleep 2147483647".into());
            (Arc::new(ProcessRuntime::new(command, workloads)), Host::read(&data_dir))
        }
        Some(DockerSettings { image, ssh_host }) => {
            // Containers are named for this agent (its peer id), chain and escrow: other
            // agents share the engine (one per GPU model, or devnets whose escrows have
            // the same address on their own chains), and rental ids are only unique
            // within one escrow.
            let peer = identity.peer_id().to_string();
            let escrow = format!("{:x}", escrow.address());
            let prefix = format!(
                "gpuflow-{}-{chain_id}-{}",
                &peer[peer.len().saturating_sub(12)..],
                &escrow.trim_start_matches("0x")[..10]
            );
            let docker = DockerRuntime::connect(image, ssh_host, prefix).await?;
            let disk = docker.data_root().await.filter(|root| root.exists());
            let host = Host::read(disk.as_deref().unwrap_or(&data_dir));
            (Arc::new(docker.sharing(host, inventory.gpus.len())), host)
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
        && !allowed_images.contains(image)
    {
        allowed_images.push(image.clone());
    }
    for image in &allowed_images {
        gpuflow_protocol::check_image_pattern(image)
            .map_err(|e| anyhow::anyhow!("allowed image `{image}`: {e}"))?;
    }
    // The offer carries the list, so that searches find the machines that run an image.
    let most = gpuflow_protocol::MAX_ALLOWED_IMAGES;
    if allowed_images.len() > most {
        anyhow::bail!(
            "{} allowed images (the default image included), but an offer carries at most \
             {most}; cover the tags of one image with a trailing `*` (e.g. `pytorch/pytorch:*`)",
            allowed_images.len()
        );
    }
    // A container runtime pulls its default image and the allowed images of exact tags at
    // start; a rental of one of them then starts without a download.
    let mut pull_ahead = Vec::new();
    if let Some(default) = runtime_image {
        pull_ahead.push(default);
        for image in allowed_images.iter().filter(|image| !image.ends_with('*')) {
            if !pull_ahead.contains(image) {
                pull_ahead.push(image.clone());
            }
        }
    }
    pull_ahead.truncate(gpuflow_protocol::MAX_OFFER_IMAGES);
    let bootstrap = match args.bootstrap {
        flags if !flags.is_empty() => flags,
        _ => file
            .bootstrap
            .iter()
            .map(|addr| {
                addr.parse().map_err(|e| {
                    anyhow::anyhow!(
                        "bootstrap address `{addr}` in the config: {e}; fix or remove it"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let store = Store::open(&data_dir.join("provider.db"))?;
    let heartbeat_interval = Duration::from_secs(args.heartbeat_interval_secs.max(1));
    let health = gpus::watch_health(&inventory, heartbeat_interval);

    let (network, events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: identity.clone(),
        listen: vec![args.listen],
        bootstrap,
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
            host,
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
            publishes_ports,
            pull_ahead,
            volume_grace,
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
    Ok(agent.run(events, gpuflow_cli_util::shutdown_signal()).await?)
}
