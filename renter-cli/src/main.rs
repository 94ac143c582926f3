//! `gpuflow`: find GPUs on the gpuflow network and rent them with funds held in escrow.

use clap::Parser;
use gpuflow_cli::Cli;

#[tokio::main]
async fn main() {
    gpuflow_cli_util::init_tracing("warn");
    let cli = Cli::parse();
    let json = cli.json;
    if let Err(e) = cli.run().await {
        eprintln!("error: {e:#}");
        if json {
            // Scripts read stdout: the same error, with its exit code, as one JSON document.
            println!("{}", gpuflow_cli::error::error_json(&e));
        }
        std::process::exit(gpuflow_cli::exit_code(&e));
    }
}
