//! `gpuflow-provider`: rents out this machine's GPUs on the gpuflow network.

use clap::Parser;
use gpuflow_provider::opts::Cli;

#[tokio::main]
async fn main() {
    gpuflow_cli_util::exit_quietly_on_closed_pipe();
    gpuflow_cli_util::init_tracing("info,libp2p=warn");
    if let Err(e) = gpuflow_provider::cmd::run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
