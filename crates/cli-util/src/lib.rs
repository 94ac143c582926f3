//! What every gpuflow binary shares, as `foundry-cli` is for forge, cast and anvil: the
//! rpc, escrow and key option groups ([`opts`]), the one layered resolver ([`layers`]),
//! the one keystore unlock and password prompt ([`wallet`]), the config directory,
//! logging, shutdown, a quiet end when the reader of its output goes away, and joining
//! the network through a node's HTTP API ([`bootstrap`]).

use std::path::PathBuf;

pub mod bootstrap;
pub mod layers;
pub mod opts;
pub mod wallet;

pub use layers::{LayerError, Setting, Source};
pub use opts::{EscrowOpts, KeyChoice, KeyOpts, RpcOpts};
pub use wallet::{UnlockError, prompt_secret};

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

/// Makes the process end quietly, as a Unix tool does, when its output's reader goes away
/// (`gpuflow search '' | head -1`): call it first thing in `main`.
///
/// Rust ignores SIGPIPE, so printing to a pipe nobody reads fails, and `println!` panics
/// (exit 101, a backtrace hint). Restoring SIGPIPE's default action instead would also
/// kill the process whenever a network peer hangs up during a write (hyper and libp2p
/// write to sockets without `MSG_NOSIGNAL`), mid-payment. So only a panic decides: when
/// one happens while stdout or stderr has lost its reader, nothing is printed and the
/// process ends through [`exit_closed_pipe`].
pub fn exit_quietly_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if reader_gone(libc::STDOUT_FILENO) || reader_gone(libc::STDERR_FILENO) {
            exit_closed_pipe();
        }
        default(info);
    }));
}

/// Ends the process as SIGPIPE's default action does (the status a shell shows as 141),
/// without a message: for output whose reader went away.
pub fn exit_closed_pipe() -> ! {
    // SAFETY: restores the default action of one signal and raises it in this thread,
    // which ends the whole process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}

/// Whether `fd` is a pipe (or socket) whose reading end is closed: `poll` reports an
/// error condition for writing to it.
fn reader_gone(fd: libc::c_int) -> bool {
    let mut poll = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: polls one descriptor we pass by pointer, without waiting.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & libc::POLLERR != 0
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn a_pipe_without_reader_is_told_apart() {
        let (reader, writer) = std::io::pipe().unwrap();
        assert!(!super::reader_gone(writer.as_raw_fd()));
        drop(reader);
        assert!(super::reader_gone(writer.as_raw_fd()));
    }
}
