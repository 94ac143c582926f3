//! What a rental's container is — its image, GPUs, SSH port and label — and how it is
//! brought up again after a restart without taking the renter's files.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, DeviceRequest, HostConfig, PortBinding,
};

use crate::runtime::{BoxFuture, RuntimeError, WorkloadSpec};

/// Port sshd listens on inside the container.
pub(super) const SSH_PORT: &str = "22/tcp";
/// Run in the container once it started: installs `$GPUFLOW_SSH_KEY` for root and, when
/// the image has an SSH server that is not running yet, starts it (host keys created if
/// missing). `GPUFLOW_SSH_DIR` exists for the tests only.
pub const INSTALL_KEY: &str = r#"set -e
dir="${GPUFLOW_SSH_DIR:-/root/.ssh}"
mkdir -p "$dir" && chmod 700 "$dir"
touch "$dir/authorized_keys"
grep -qxF "$GPUFLOW_SSH_KEY" "$dir/authorized_keys" || printf '%s
' "$GPUFLOW_SSH_KEY" >> "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"
if command -v sshd >/dev/null 2>&1 && ! pgrep -x sshd >/dev/null 2>&1; then
  mkdir -p /run/sshd
  ssh-keygen -A >/dev/null 2>&1 || true
  "$(command -v sshd)"
fi
"#;
/// Label that marks containers as gpuflow workloads, with the rental id as value.
pub const RENTAL_LABEL: &str = "io.gpuflow.rental";

/// The image a rental runs: the renter's choice (checked against the allow-list when the
/// quote was issued), else the provider's default.
pub(super) fn image_of<'a>(default: &'a str, spec: &'a WorkloadSpec) -> &'a str {
    spec.image.as_deref().unwrap_or(default)
}

/// What the renter is told to type: `ssh -p PORT root@HOST` once Docker mapped the port.
pub fn connect_detail(name: &str, ssh_port: Option<&str>, ssh_host: &str) -> String {
    match ssh_port {
        Some(port) => format!("ssh -p {port} root@{ssh_host}"),
        None => format!("container {name} runs; it exposes no SSH port"),
    }
}

/// The container a rental runs in: the renter's image (or `default_image`), its GPUs by
/// UUID and nothing else, the SSH port published on an ephemeral host port, labelled with
/// the rental so it can be found again.
pub fn container_config(default_image: &str, spec: &WorkloadSpec) -> ContainerCreateBody {
    let mut env = vec![
        format!("GPUFLOW_RENTAL_ID={}", spec.rental_id),
        format!("GPUFLOW_RENTAL_ENDS_AT={}", spec.ends_at),
    ];
    if let Some(key) = &spec.ssh_key {
        // The variable most GPU-cloud images read to install a key at boot.
        env.push(format!("PUBLIC_KEY={key}"));
    }
    ContainerCreateBody {
        image: Some(image_of(default_image, spec).to_owned()),
        env: Some(env),
        labels: Some(HashMap::from([(RENTAL_LABEL.to_owned(), spec.rental_id.to_string())])),
        exposed_ports: Some(vec![SSH_PORT.to_owned()]),
        // A terminal and an open stdin keep an image whose command is a shell (most base
        // images) running, as `docker run -dit` does, so the renter has a machine to use.
        tty: Some(true),
        open_stdin: Some(true),
        host_config: Some(HostConfig {
            device_requests: Some(vec![DeviceRequest {
                driver: Some("nvidia".to_owned()),
                device_ids: Some(spec.gpus.clone()),
                capabilities: Some(vec![vec!["gpu".to_owned()]]),
                ..Default::default()
            }]),
            port_bindings: Some(HashMap::from([(
                SSH_PORT.to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("0.0.0.0".to_owned()),
                    // Empty: Docker picks a free host port, read back after start.
                    host_port: Some(String::new()),
                }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What already holds a rental's container name when the rental (re)starts, e.g. after
/// the agent restarted and found the rental's workload dead.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Existing {
    /// No container: create one.
    Absent,
    /// The rental's own container, still running: keep it.
    Running(String),
    /// The rental's own container, stopped: start it again, so the renter keeps its
    /// filesystem.
    Stopped(String),
    /// A container with another image, other GPUs or not this rental's: replace it, since
    /// starting it would hand the renter something they did not rent.
    Stale(String),
}

/// Sorts what `inspect` found under the rental's name against the container it should be.
/// The environment is not compared: it holds the end time, which an extension moves, and a
/// renter would rather keep their files than that variable's update.
pub(super) fn classify(
    found: Option<&ContainerInspectResponse>,
    wanted: &ContainerCreateBody,
) -> Existing {
    let Some(found) = found else { return Existing::Absent };
    let id = found.id.clone().unwrap_or_default();
    let label = |labels: Option<&HashMap<String, String>>| {
        labels.and_then(|l| l.get(RENTAL_LABEL)).cloned()
    };
    let gpus = |host: Option<&HostConfig>| {
        host.and_then(|h| h.device_requests.as_ref())
            .map(|requests| requests.iter().map(|r| r.device_ids.clone()).collect::<Vec<_>>())
    };
    let config = found.config.as_ref();
    let same = config.and_then(|c| c.image.as_ref()) == wanted.image.as_ref()
        && label(config.and_then(|c| c.labels.as_ref())) == label(wanted.labels.as_ref())
        && gpus(found.host_config.as_ref()) == gpus(wanted.host_config.as_ref());
    let state = found.state.as_ref();
    let running = state.and_then(|s| s.running).unwrap_or(false)
        && !state.and_then(|s| s.paused).unwrap_or(false);
    match (same, running) {
        (false, _) => Existing::Stale(id),
        (true, true) => Existing::Running(id),
        (true, false) => Existing::Stopped(id),
    }
}

/// The engine calls that bring a rental's container up; the Docker engine in production,
/// a recording fake in tests.
pub(super) trait Engine: Sync {
    /// The container called `name`, or `None` when there is none.
    fn inspect<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerInspectResponse>, RuntimeError>>;
    /// Pulls `image` (before a container is created from it).
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Creates a container called `name`; returns its id.
    fn create<'a>(
        &'a self,
        name: &'a str,
        config: ContainerCreateBody,
    ) -> BoxFuture<'a, Result<String, RuntimeError>>;
    /// Starts a created or stopped container.
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Removes a container, running or not.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
}

/// Runs the rental's container under `name` and returns its id. A container already
/// holding the name (Docker refuses a second one) is kept when it is the rental's own:
/// left running, or started again with its filesystem; it is removed and created afresh
/// only when it is not the rental's or cannot be started.
pub(super) async fn bring_up(
    engine: &dyn Engine,
    rental_id: u64,
    name: &str,
    config: ContainerCreateBody,
) -> Result<String, RuntimeError> {
    match classify(engine.inspect(name).await?.as_ref(), &config) {
        Existing::Absent => {}
        Existing::Running(id) => {
            tracing::info!(rental = rental_id, container = %id, "the rental's container still runs");
            return Ok(id);
        }
        Existing::Stopped(id) => match engine.start(&id).await {
            Ok(()) => {
                tracing::info!(rental = rental_id, container = %id, "restarted the rental's container");
                return Ok(id);
            }
            Err(e) => {
                tracing::warn!(
                    rental = rental_id, container = %id, error = %e,
                    "the rental's container does not start again; replacing it"
                );
                engine.remove(&id).await?;
            }
        },
        Existing::Stale(id) => {
            tracing::warn!(
                rental = rental_id, container = %id,
                "a container of another configuration holds the rental's name; replacing it"
            );
            engine.remove(&id).await?;
        }
    }
    if let Some(image) = config.image.clone() {
        engine.pull(&image).await?;
    }
    let id = engine.create(name, config).await?;
    engine.start(&id).await?;
    Ok(id)
}

pub(super) fn container_name(rental_id: u64) -> String {
    format!("gpuflow-rental-{rental_id}")
}
