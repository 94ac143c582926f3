//! `gpuflow-node`: indexes signed offers from the gpuflow network and serves search.

use clap::Parser;
use gpuflow_node::{Args, NodeConfig};

#[tokio::main]
async fn main() {
    gpuflow_cli_util::exit_quietly_on_closed_pipe();
    gpuflow_cli_util::init_tracing("info,libp2p=warn");
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let from = args.bootstrap_from.clone();
    let mut config = NodeConfig::resolve(args)?;
    for url in from {
        for addr in
            gpuflow_cli_util::bootstrap::node_addrs(&url).await.map_err(anyhow::Error::msg)?
        {
            let addr =
                addr.parse().map_err(|e| anyhow::anyhow!("{url} gave the address {addr}: {e}"))?;
            if !config.bootstrap.contains(&addr) {
                config.bootstrap.push(addr);
            }
        }
    }
    let node = gpuflow_node::start(config).await?;
    // One line on stdout tells supervisors (and the devnet) where the node is.
    println!("{}", node.ready_line());
    gpuflow_cli_util::shutdown_signal().await;
    node.shutdown().await?;
    Ok(())
}
