//! `gpuflow`: find GPUs on the gpuflow network and rent them with funds held in escrow.

use clap::{Parser, error::ErrorKind};
use gpuflow_cli::Cli;

#[tokio::main]
async fn main() {
    gpuflow_cli_util::exit_quietly_on_closed_pipe();
    gpuflow_cli_util::init_tracing("warn");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
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

/// Ends the process for a command line clap refused. With `--json` among the arguments
/// the error is also one JSON document on stdout, as every other error is.
fn usage_error(error: clap::Error) -> ! {
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !std::env::args_os().any(|a| a == "--json") {
        error.exit();
    }
    let rendered = error.render().to_string();
    let _ = error.print();
    // The first paragraph is the error itself; usage and tips follow it.
    let message = rendered.split("\n\n").next().unwrap_or_default();
    let message = message.trim().trim_start_matches("error: ");
    let code = gpuflow_cli::error::Exit::Usage as i32;
    println!("{}", serde_json::json!({ "error": { "code": code, "message": message } }));
    std::process::exit(code);
}
