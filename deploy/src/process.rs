//! Starting gpuflow daemons and reading their one-line ready reports.

use std::{path::Path, path::PathBuf, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// Where the gpuflow binaries are: `GPUFLOW_BIN_DIR`, or the directory of the running
/// executable (its parent for test binaries in `deps/`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("GPUFLOW_BIN_DIR") {
        return Ok(dir.into());
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("executable has no directory")?.to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Spawns a daemon with stdin closed and stderr appended to `log`, and waits at most
/// `timeout` for its one-line ready report starting with `marker` (e.g.
/// `gpuflow-provider ready`), which it returns; see [`ready_field`]. The child is killed
/// when dropped.
pub async fn spawn_ready(
    command: &mut Command,
    log: &Path,
    marker: &str,
    timeout: Duration,
) -> anyhow::Result<(Child, String)> {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {marker}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with(marker) {
                return Ok(line);
            }
        }
        bail!("exited before reporting ready; see {}", log.display())
    })
    .await
    .with_context(|| format!("no `{marker}` within {timeout:?}; see {}", log.display()))??;
    Ok((child, ready))
}

/// Reads `key=value` from a ready line, e.g. `offer` from the provider's.
pub fn ready_field(line: &str, key: &str) -> anyhow::Result<String> {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
        .with_context(|| format!("`{line}` has no {key}="))
}
