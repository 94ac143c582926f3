//! `gpuflow`: find GPUs on the gpuflow network and rent them with funds held in escrow.

use clap::Parser;
use gpuflow_cli::Cli;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GPUFLOW_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = Cli::parse().run().await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
