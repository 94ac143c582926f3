//! Workload runtimes: where a rental's workload runs, behind one [`Runtime`] trait.
//!
//! Production providers run containers ([`crate::docker`]); the [`ProcessRuntime`] serves
//! development and tests with the same contract: start with the rented GPUs, capture
//! logs, stop on time, and find the workload again after the agent restarts.

use std::{
    collections::HashMap,
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    process::Stdio,
    sync::Mutex,
    time::Duration,
};

use gpuflow_protocol::{Launch, PublishedPort, Share, SshEndpoint};
use tokio::process::{Child, Command};

/// How long a workload gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Most log lines returned to a renter.
pub const MAX_LOG_LINES: usize = 200;

/// A boxed future, so runtimes can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a workload could not be started or inspected.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Spawning or reading the workload's files failed.
    #[error("workload: {0}")]
    Io(#[from] std::io::Error),
    /// The Docker engine refused or is unreachable.
    #[error("docker: {0}")]
    Docker(String),
}

/// What a workload is given.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// The rental it serves.
    pub rental_id: u64,
    /// UUIDs of the GPUs it may use.
    pub gpus: Vec<String>,
    /// Unix time the rental ends.
    pub ends_at: u64,
    /// The container image the renter asked for; `None` runs the provider's default.
    pub image: Option<String>,
    /// The renter's SSH public key, installed where the runtime supports it.
    pub ssh_key: Option<String>,
    /// The renter's environment, ports and command.
    pub launch: Launch,
    /// The renter's volume, when the rental asked for one.
    pub volume: Option<VolumeSpec>,
}

/// A renter's volume as a runtime keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Names it on this machine, whoever the renter: [`volume_key`].
    pub key: String,
    /// Where it is mounted in the workload.
    pub path: String,
}

/// The machine-wide name of a renter's volume: the renter's address (lowercase hex,
/// without `0x`) and the renter's name for it, so two renters' volumes never meet.
pub fn volume_key(renter: alloy::primitives::Address, name: &str) -> String {
    format!("{}-{name}", format!("{renter:x}").trim_start_matches("0x"))
}

/// How a renter reaches a running workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The SSH server the renter logs in to, in a runtime that gives one.
    pub ssh: Option<SshEndpoint>,
    /// The renter's other published ports.
    pub ports: Vec<PublishedPort>,
}

/// A started workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// Opaque id the runtime finds the workload by again, even after a restart.
    pub handle: String,
    /// How the renter reaches it, in words.
    pub detail: String,
    /// How the renter reaches it, as data.
    pub reach: Reach,
}

/// Starts, watches and stops workloads.
pub trait Runtime: Send + Sync {
    /// Starts the workload for `spec`.
    fn start<'a>(&'a self, spec: &'a WorkloadSpec) -> BoxFuture<'a, Result<Started, RuntimeError>>;
    /// The CPUs, memory and processes a workload of `rented` GPUs gets, in a runtime that
    /// sets them; shown in quotes.
    fn share(&self, _rented: usize) -> Option<Share> {
        None
    }
    /// Downloads `image` now, so that a rental of it starts without waiting for a pull;
    /// a runtime without images refuses.
    fn pull_ahead<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            Err(RuntimeError::Io(std::io::Error::other(format!(
                "this runtime runs no images, so {image} is not pulled"
            ))))
        })
    }
    /// True while the workload `handle` of `rental_id` runs.
    fn is_running<'a>(&'a self, rental_id: u64, handle: &'a str) -> BoxFuture<'a, bool>;
    /// Where the workload's SSH server and ports are published now; `None` in a runtime
    /// without them. A container the engine restarted may be on other ports than at its
    /// start.
    fn reach<'a>(&'a self, _rental_id: u64, _handle: &'a str) -> BoxFuture<'a, Option<Reach>> {
        Box::pin(async { None })
    }
    /// Tells the running workload its rental now ends at `ends_at` (an extension); a
    /// runtime that cannot reach a running workload leaves it at its start's value.
    fn extend<'a>(
        &'a self,
        _rental_id: u64,
        _handle: &'a str,
        _ends_at: u64,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async { Ok(()) })
    }
    /// Stops the workload; returns once it is gone.
    fn stop<'a>(&'a self, rental_id: u64, handle: &'a str) -> BoxFuture<'a, ()>;
    /// Deletes the volume `key` ([`VolumeSpec::key`]) and everything in it; a volume that
    /// is already gone is no error.
    fn remove_volume<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// The last lines the workload wrote.
    fn logs<'a>(
        &'a self,
        rental_id: u64,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, RuntimeError>>;
}

/// Runs each workload as a local process group (`sh -c COMMAND`), logs to a file. The
/// rental's image and SSH key, when the renter gave them, are in `GPUFLOW_IMAGE` and
/// `GPUFLOW_SSH_KEY`.
#[derive(Debug)]
pub struct ProcessRuntime {
    command: String,
    log_dir: PathBuf,
    /// Children this agent spawned, kept so their exit is reaped.
    children: Mutex<HashMap<u32, Child>>,
}

impl ProcessRuntime {
    /// A runtime running `command` for every rental, logging under `log_dir`.
    pub fn new(command: String, log_dir: PathBuf) -> Self {
        Self { command, log_dir, children: Mutex::default() }
    }

    /// The directory that holds the volume `key`.
    pub fn volume_dir(&self, key: &str) -> PathBuf {
        self.log_dir.join("volumes").join(key)
    }

    /// Where the workload of `rental_id` logs.
    pub fn log_path(&self, rental_id: u64) -> PathBuf {
        self.log_dir.join(format!("{rental_id}.log"))
    }

    fn spawn(&self, spec: &WorkloadSpec) -> std::io::Result<Started> {
        std::fs::create_dir_all(&self.log_dir)?;
        let log_path = self.log_path(spec.rental_id);
        // Append: a workload restarted after an agent restart keeps its earlier lines.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let devices = spec.gpus.join(",");
        let mut command = Command::new("sh");
        // No container here: the renter's image and key are handed to the command, which
        // may use them (a development setup may start sshd with the key, say).
        if let Some(image) = &spec.image {
            command.env("GPUFLOW_IMAGE", image);
        }
        if let Some(key) = &spec.ssh_key {
            command.env("GPUFLOW_SSH_KEY", key);
        }
        // The renter's variables; ports and a command need a container.
        command.envs(spec.launch.env.iter().filter_map(|entry| entry.split_once('=')));
        // A volume is a directory here, kept between rentals like a container's volume.
        if let Some(volume) = &spec.volume {
            let dir = self.volume_dir(&volume.key);
            std::fs::create_dir_all(&dir)?;
            command.env("GPUFLOW_VOLUME_DIR", dir);
        }
        let child = command
            .arg("-c")
            .arg(&self.command)
            .env("GPUFLOW_RENTAL_ID", spec.rental_id.to_string())
            .env("GPUFLOW_RENTAL_ENDS_AT", spec.ends_at.to_string())
            .env("NVIDIA_VISIBLE_DEVICES", &devices)
            .env("CUDA_VISIBLE_DEVICES", &devices)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            // A crashed agent leaves the workload running, so a restart can re-attach;
            // only a clean drop of the runtime would kill it, and the agent stops
            // workloads explicitly instead.
            .kill_on_drop(false)
            .spawn()?;
        let pid = child.id().ok_or_else(|| std::io::Error::other("workload exited at once"))?;
        let started =
            proc_stat(pid).ok_or_else(|| std::io::Error::other("workload exited at once"))?.1;
        self.children.lock().unwrap_or_else(|p| p.into_inner()).insert(pid, child);
        let given = match (&spec.image, &spec.ssh_key) {
            (None, None) => String::new(),
            (image, key) => format!(
                ", {} and {} handed over as GPUFLOW_IMAGE and GPUFLOW_SSH_KEY",
                image.as_deref().map_or("no image".into(), |i| format!("image {i}")),
                if key.is_some() { "the SSH key" } else { "no SSH key" }
            ),
        };
        Ok(Started {
            handle: Handle { pid, started }.to_string(),
            detail: format!(
                "process runtime: pid {pid}, logs at {}{given} (no SSH endpoint in this runtime)",
                log_path.display()
            ),
            reach: Reach::default(),
        })
    }

    /// True if the workload `handle` is alive. A handle names the process and its start
    /// time: after a restart the pid may have been reused by an unrelated process, which
    /// must never be signalled, and the start time (unlike the command line or
    /// environment) stays the same across the workload's own `exec`s.
    fn owns(&self, handle: &Handle) -> bool {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = children.get_mut(&handle.pid) {
            return matches!(child.try_wait(), Ok(None));
        }
        drop(children);
        proc_stat(handle.pid).is_some_and(|(state, started)| {
            state != "Z" && state != "X" && started == handle.started
        })
    }
}

/// A workload process: its pid and its start time in clock ticks since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Handle {
    pid: u32,
    started: u64,
}

impl Handle {
    fn parse(text: &str) -> Option<Self> {
        let (pid, started) = text.split_once(':')?;
        Some(Self { pid: pid.parse().ok()?, started: started.parse().ok()? })
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.started)
    }
}

/// State letter and start time of process `pid`, from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.to_owned();
    // `starttime` is field 22; `state` was field 3.
    let started = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, started))
}

fn signal_group(pid: u32, signal: i32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) with a negative pid signals the workload's own process group,
    // checked to be ours by `owns` before every call.
    unsafe { libc::kill(-pid, signal) };
}

impl Runtime for ProcessRuntime {
    fn start<'a>(&'a self, spec: &'a WorkloadSpec) -> BoxFuture<'a, Result<Started, RuntimeError>> {
        Box::pin(async move { Ok(self.spawn(spec)?) })
    }

    fn is_running<'a>(&'a self, _rental_id: u64, handle: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move { Handle::parse(handle).is_some_and(|h| self.owns(&h)) })
    }

    fn stop<'a>(&'a self, _rental_id: u64, handle: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(handle) = Handle::parse(handle) else { return };
            if !self.owns(&handle) {
                return;
            }
            let pid = handle.pid;
            signal_group(pid, libc::SIGTERM);
            let child = self.children.lock().unwrap_or_else(|p| p.into_inner()).remove(&pid);
            let exited = async {
                match child {
                    Some(mut child) => {
                        let _ = child.wait().await;
                    }
                    // Re-attached after a restart: not our child, so poll until it is gone.
                    None => {
                        while self.owns(&handle) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            };
            if tokio::time::timeout(STOP_GRACE, exited).await.is_err() {
                signal_group(pid, libc::SIGKILL);
            }
        })
    }

    fn remove_volume<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            match tokio::fs::remove_dir_all(self.volume_dir(key)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            }
        })
    }

    fn logs<'a>(
        &'a self,
        rental_id: u64,
        _handle: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, RuntimeError>> {
        Box::pin(async move { Ok(tail(&self.log_path(rental_id), MAX_LOG_LINES)?) })
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..].iter().map(|l| (*l).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_for(path: &Path) -> String {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(text) = std::fs::read_to_string(path)
                    && text.ends_with('\n')
                {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} was not written within 10 s", path.display()))
    }

    #[tokio::test]
    async fn workload_runs_with_its_gpus_logs_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let runtime = ProcessRuntime::new(
            format!(
                "echo hello; echo \"$GPUFLOW_RENTAL_ID $CUDA_VISIBLE_DEVICES $GPUFLOW_IMAGE \
                 $GPUFLOW_SSH_KEY\" > {}; exec sleep 600",
                ready.display()
            ),
            dir.path().join("logs"),
        );
        let spec = WorkloadSpec {
            rental_id: 7,
            gpus: vec!["GPU-a".into(), "GPU-b".into()],
            ends_at: 0,
            image: Some("ubuntu:22.04".into()),
            ssh_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@laptop".into()),
            launch: Launch::default(),
            volume: None,
        };
        let started = runtime.start(&spec).await.unwrap();
        assert!(
            started.detail.contains("image ubuntu:22.04 and the SSH key"),
            "{}",
            started.detail
        );
        assert_eq!(
            wait_for(&ready).await,
            "7 GPU-a,GPU-b ubuntu:22.04 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@laptop\n"
        );
        assert!(runtime.is_running(7, &started.handle).await);
        assert!(!runtime.is_running(8, "1:0").await, "pid 1 started at boot is not ours");
        assert_eq!(runtime.logs(7, &started.handle).await.unwrap(), vec!["hello"]);
        runtime.stop(7, &started.handle).await;
        assert!(!runtime.is_running(7, &started.handle).await);
        let pid = Handle::parse(&started.handle).unwrap().pid as i32;
        // SAFETY: signal 0 only checks whether the process exists.
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "workload process still exists");
    }

    #[tokio::test]
    async fn a_workload_is_found_again_by_a_new_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let command = "exec sleep 600".to_owned();
        let spec = WorkloadSpec {
            rental_id: 9,
            gpus: vec![],
            ends_at: 0,
            image: None,
            ssh_key: None,
            launch: Launch::default(),
            volume: None,
        };
        let first = ProcessRuntime::new(command.clone(), dir.path().to_owned());
        let started = first.start(&spec).await.unwrap();
        // The agent restarted: a fresh runtime knows only the stored handle.
        let second = ProcessRuntime::new(command, dir.path().to_owned());
        assert!(second.is_running(9, &started.handle).await);
        let handle = Handle::parse(&started.handle).unwrap();
        let reused = Handle { started: handle.started + 1, ..handle };
        assert!(!second.is_running(9, &reused.to_string()).await, "a reused pid is not ours");
        second.stop(9, &reused.to_string()).await;
        assert!(second.is_running(9, &started.handle).await, "a reused pid is never signalled");
        second.stop(9, &started.handle).await;
        assert!(!second.is_running(9, &started.handle).await);
        // The first runtime is its parent and reaps it.
        let pid = handle.pid;
        let mut child = first.children.lock().unwrap().remove(&pid).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        assert!(status.is_ok(), "the workload did not exit within 10 s");
    }
}
