//! `gpuflow`: find GPUs on the gpuflow network and rent them with funds held in escrow.

use clap::Parser;
use gpuflow_cli::Cli;

#[tokio::main]
async fn main() {
    gpuflow_cli_util::init_tracing("warn");
    if let Err(e) = Cli::parse().run().await {
        eprintln!("error: {e:#}");
        std::process::exit(gpuflow_cli::exit_code(&e));
    }
}
