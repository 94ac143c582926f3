//! `gpuflow-provider doctor`: checks, with the same flags and config as `run`, everything a
//! machine needs to take rentals, and says for each failure what to do. Exits non-zero if
//! anything fails.

use alloy::{primitives::U256, providers::Provider};
use gpuflow_protocol::{Identity, OfferId, api};

use super::{
    connect::{Chain, connect_with, load_config},
    run::offered_inventory,
};
use crate::{
    config::{self, DockerSettings, RuntimeKind},
    docker::DockerRuntime,
    lock::{DataDirLock, LockError},
    opts::DoctorArgs,
};

/// Gas the agent's first transactions take (a withdrawal, a refusal), to judge its balance.
const GAS_NEEDED: u64 = 300_000;

/// One check: what it found, or what is wrong and what to do.
struct Check {
    name: &'static str,
    result: Result<String, String>,
}

pub(super) async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let DoctorArgs { run: args, node, json } = args;
    let file = load_config(args.chain.config.as_deref())?;
    let mut checks = Vec::new();
    let mut check = |name, result| checks.push(Check { name, result });

    let inventory = offered_inventory(&args, &file);
    check(
        "gpus",
        match &inventory {
            Ok(inv) => Ok(format!(
                "{} × {}{}",
                inv.gpus.len(),
                inv.gpus[0].name,
                if inv.verified { ", read through NVML" } else { ", simulated (development only)" }
            )),
            Err(e) => Err(format!(
                "{e:#}; install the NVIDIA driver so NVML can be read (`nvidia-smi` should list \
                 the GPUs), or pass --simulate-gpus FILE on a development machine"
            )),
        },
    );

    let data_dir = super::data_dir(args.data_dir.clone(), &file)?;
    // An agent running on this data dir holds its lock, and its listen port.
    let agent_running = matches!(DataDirLock::acquire(&data_dir), Err(LockError::Held { .. }));
    check("listen port", listen_check(&args.listen, agent_running).await);

    let runtime = args.runtime.or(file.runtime).unwrap_or_default();
    let docker = match runtime {
        RuntimeKind::Process => Ok("process runtime: no engine needed (development)".to_owned()),
        RuntimeKind::Docker => {
            docker_check(
                args.image.clone().or(file.image.clone()),
                args.ssh_host.clone().or(file.ssh_host.clone()),
                inventory.as_ref().ok().and_then(|inv| inv.gpus.first()).map(|g| g.uuid.clone()),
            )
            .await
        }
    };
    check("docker", docker);

    let price_per_hour = args.price_per_hour.clone();
    let chain = connect_with(args.chain, file).await;
    match chain {
        Err(e) => {
            check("chain", Err(format!("{e:#}")));
            check("payout wallet", Err("not checked: the chain is not reachable".into()));
            check("prices", Err("not checked: the token's decimals come from the chain".into()));
        }
        Ok(Chain { escrow, payout, rpc, chain_id, file }) => {
            let symbol = escrow.symbol().await.unwrap_or_default();
            check(
                "chain",
                Ok(format!(
                    "chain {chain_id} at {rpc}, escrow {} paying in {symbol}",
                    escrow.address()
                )),
            );
            let chain = escrow.provider();
            let gas = async {
                let price = chain.get_gas_price().await?;
                let balance = chain.get_balance(payout.address()).await?;
                Ok::<_, alloy::transports::TransportError>((price, balance))
            };
            check(
                "payout wallet",
                match gas.await {
                    Ok((price, balance))
                        if balance >= U256::from(price) * U256::from(GAS_NEEDED) =>
                    {
                        Ok(format!("{} unlocks and holds {balance} wei for gas", payout.address()))
                    }
                    Ok((_, balance)) => Err(format!(
                        "{} holds {balance} wei, too little gas for its withdrawals; send it some \
                         ETH on chain {chain_id}",
                        payout.address()
                    )),
                    Err(e) => Err(format!("reading its balance: {e}")),
                },
            );
            let prices = match (&inventory, escrow.decimals().await) {
                (Ok(inv), Ok(decimals)) => {
                    config::gpu_rates(&inv.gpus, price_per_hour.as_deref(), &file.prices, decimals)
                        .map(|rates| {
                            let per_gpu: Vec<String> =
                                rates.values().map(|r| format!("{r}")).collect();
                            format!("{} token units per GPU-second", per_gpu.join(", "))
                        })
                        .map_err(|e| format!("{e}"))
                }
                (Err(_), _) => Err("not checked: no GPUs to price".into()),
                (_, Err(e)) => Err(format!("reading the token's decimals: {e}")),
            };
            check("prices", prices);
        }
    }

    check("offer", offer_check(&data_dir, node.as_deref()).await);

    let failed = checks.iter().filter(|c| c.result.is_err()).count();
    if json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| match &c.result {
                Ok(found) => serde_json::json!({"check": c.name, "ok": true, "detail": found}),
                Err(why) => serde_json::json!({"check": c.name, "ok": false, "detail": why}),
            })
            .collect();
        println!("{}", serde_json::json!({"ok": failed == 0, "checks": list}));
    } else {
        for c in &checks {
            match &c.result {
                Ok(found) => println!("ok    {:<14} {found}", c.name),
                Err(why) => println!("FAIL  {:<14} {why}", c.name),
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} checks failed; fix them as each says, then run doctor again",
            checks.len()
        );
    }
    Ok(())
}

/// The listen address's TCP port is free, or held by this data dir's running agent.
async fn listen_check(
    listen: &gpuflow_p2p::Multiaddr,
    agent_running: bool,
) -> Result<String, String> {
    use gpuflow_p2p::Protocol;
    let (mut ip, mut port) = (None, None);
    for part in listen.iter() {
        match part {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(format!("{listen} is not a TCP address; not checked"));
    };
    match tokio::net::TcpListener::bind((ip, port)).await {
        Ok(_) => Ok(format!("{listen} is free")),
        Err(_) if agent_running => Ok(format!("{listen} is held by this machine's running agent")),
        Err(e) => Err(format!(
            "{listen} cannot be bound ({e}); stop what holds it, or pick another port with --listen"
        )),
    }
}

/// The engine answers and starts a container with a request for the first GPU.
async fn docker_check(
    image: Option<String>,
    ssh_host: Option<String>,
    gpu: Option<String>,
) -> Result<String, String> {
    let settings = DockerSettings::resolve(image, ssh_host).map_err(|e| e.to_string())?;
    let image = settings.image.clone();
    let docker = DockerRuntime::connect(settings.image, settings.ssh_host, "gpuflow-doctor".into())
        .await
        .map_err(|e| e.to_string())?;
    let Some(gpu) = gpu else {
        return Err("the engine answers, but there is no GPU to request in a test container".into());
    };
    docker.self_test(&gpu).await.map_err(|e| {
        format!(
            "the engine could not run {image} with GPU {gpu} ({e}); install the NVIDIA Container \
             Toolkit and restart the engine (`nvidia-ctk runtime configure --runtime=docker`)"
        )
    })?;
    Ok(format!("the engine ran {image} with GPU {gpu}"))
}

/// The machine's offer is listed by the node at `node`.
async fn offer_check(data_dir: &std::path::Path, node: Option<&str>) -> Result<String, String> {
    let Some(node) = node else {
        return Err("not checked: give a node's HTTP API with --node URL (or GPUFLOW_NODE)".into());
    };
    let key = data_dir.join("identity.key");
    if !key.exists() {
        return Err(format!(
            "no identity in {}: run `gpuflow-provider init` and `run` first",
            data_dir.display()
        ));
    }
    let identity =
        Identity::load_or_create(&key).map_err(|e| format!("reading {}: {e}", key.display()))?;
    let offer = OfferId::of(&identity.peer_id());
    let url = format!("{}/v1/offers/{offer}", node.trim_end_matches('/'));
    let response =
        reqwest::get(&url).await.map_err(|e| format!("asking {url}: {e}; check --node"))?;
    match response.status() {
        s if s.is_success() => {
            let detail: api::OfferDetail =
                response.json().await.map_err(|e| format!("{url} answered no offer: {e}"))?;
            let offer = detail.summary;
            Ok(format!(
                "{node} lists offer {} ({} GPU(s), reliability {:.3})",
                offer.id, offer.num_gpus, offer.reliability
            ))
        }
        reqwest::StatusCode::NOT_FOUND => Err(format!(
            "{node} does not list offer {offer}: start `gpuflow-provider run` with this data dir, \
             bootstrapped to that node (`init --node URL`), and check it is not drained or fully \
             rented"
        )),
        status => Err(format!("{url} answered {status}")),
    }
}
