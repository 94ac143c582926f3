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

/// Logs to stderr (stdout is for results), filtered by `GPUFLOW_LOG` or `default`: as text,
/// or as one JSON object a line with `GPUFLOW_LOG_FORMAT=json`.
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GPUFLOW_LOG")
        .unwrap_or_else(|_| default.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("GPUFLOW_LOG_FORMAT") {
        Ok(format) if format.eq_ignore_ascii_case("json") => logs.json().init(),
        Ok(format) if !format.is_empty() && !format.eq_ignore_ascii_case("text") => {
            logs.init();
            tracing::warn!(%format, "unknown GPUFLOW_LOG_FORMAT (json or text); logging text");
        }
        _ => logs.init(),
    }
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
