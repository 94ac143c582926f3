//! What every gpuflow binary shares: the config directory, logging and shutdown.

use std::path::PathBuf;

/// `$XDG_CONFIG_HOME/gpuflow`, or `~/.config/gpuflow`.
pub fn config_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("gpuflow"));
    }
    let home = std::env::var_os("HOME")
        .ok_or("neither XDG_CONFIG_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".config/gpuflow"))
}

/// Logs to stderr (stdout is for results), filtered by `GPUFLOW_LOG` or `default`.
pub fn init_tracing(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GPUFLOW_LOG")
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
