//! The Docker runtime: each rental runs in a container given exactly the rented GPUs,
//! with the renter's SSH key installed and the container's SSH port mapped to the host.

use std::collections::HashMap;

use bollard::{
    Docker,
    exec::StartExecOptions,
    models::{
        ContainerCreateBody, ContainerInspectResponse, DeviceRequest, HostConfig, PortBinding,
    },
    query_parameters::{
        CreateContainerOptionsBuilder, CreateImageOptionsBuilder, LogsOptionsBuilder,
        RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    },
};
use futures::StreamExt;

use crate::runtime::{BoxFuture, MAX_LOG_LINES, Runtime, RuntimeError, Started, WorkloadSpec};

/// Port sshd listens on inside the container.
const SSH_PORT: &str = "22/tcp";
/// Seconds a container gets to exit after SIGTERM.
const STOP_GRACE_SECS: i32 = 10;
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

/// Runs workloads as Docker containers through the Docker Engine API.
#[derive(Debug)]
pub struct DockerRuntime {
    docker: Docker,
    /// The image of rentals whose renter asked for none.
    image: String,
    ssh_host: String,
}

impl DockerRuntime {
    /// Connects to the local Docker engine (`DOCKER_HOST` or the default socket) and
    /// checks that it answers, so a missing engine stops the agent at start, not a rental.
    pub async fn connect(image: String, ssh_host: String) -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(docker_err)?;
        docker.ping().await.map_err(|e| {
            RuntimeError::Docker(format!(
                "the Docker engine does not answer ({e}); start it (and the NVIDIA Container \
                 Toolkit), or run with --runtime process for development"
            ))
        })?;
        Ok(Self { docker, image, ssh_host })
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        let (repo, tag) = split_image(image);
        let options = CreateImageOptionsBuilder::new().from_image(repo).tag(tag).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            let step = step.map_err(docker_err)?;
            if let Some(error) = step.error_detail.and_then(|e| e.message) {
                return Err(RuntimeError::Docker(format!("pulling {image}: {error}")));
            }
            tracing::info!(
                image,
                layer = step.id.as_deref().unwrap_or(""),
                status = step.status.as_deref().unwrap_or(""),
                current = step.progress_detail.as_ref().and_then(|p| p.current).unwrap_or(0),
                total = step.progress_detail.as_ref().and_then(|p| p.total).unwrap_or(0),
                "pulling image"
            );
        }
        Ok(())
    }

    async fn install_key(&self, container: &str, key: &str) -> Result<(), RuntimeError> {
        let exec = self
            .docker
            .create_exec(
                container,
                bollard::exec::CreateExecOptions {
                    cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), INSTALL_KEY.to_owned()]),
                    env: Some(vec![format!("GPUFLOW_SSH_KEY={key}")]),
                    ..Default::default()
                },
            )
            .await
            .map_err(docker_err)?;
        self.docker
            .start_exec(&exec.id, Some(StartExecOptions { detach: true, ..Default::default() }))
            .await
            .map_err(docker_err)?;
        Ok(())
    }

    async fn ssh_port(&self, container: &str) -> Result<Option<String>, RuntimeError> {
        let info = self.docker.inspect_container(container, None).await.map_err(docker_err)?;
        Ok(info
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|mut ports| ports.remove(SSH_PORT))
            .flatten()
            .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port)))
    }
}

/// The image a rental runs: the renter's choice (checked against the allow-list when the
/// quote was issued), else the provider's default.
fn image_of<'a>(default: &'a str, spec: &'a WorkloadSpec) -> &'a str {
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
enum Existing {
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
fn classify(found: Option<&ContainerInspectResponse>, wanted: &ContainerCreateBody) -> Existing {
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
trait Engine: Sync {
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
async fn bring_up(
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

impl Engine for DockerRuntime {
    fn inspect<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerInspectResponse>, RuntimeError>> {
        Box::pin(async move {
            match self.docker.inspect_container(name, None).await {
                Ok(found) => Ok(Some(found)),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(None),
                Err(e) => Err(docker_err(e)),
            }
        })
    }

    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(DockerRuntime::pull(self, image))
    }

    fn create<'a>(
        &'a self,
        name: &'a str,
        config: ContainerCreateBody,
    ) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(async move {
            let options = CreateContainerOptionsBuilder::new().name(name).build();
            let created =
                self.docker.create_container(Some(options), config).await.map_err(docker_err)?;
            Ok(created.id)
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.docker.start_container(id, None).await.map_err(docker_err) })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let remove = RemoveContainerOptionsBuilder::new().force(true).build();
            self.docker.remove_container(id, Some(remove)).await.map_err(docker_err)
        })
    }
}

fn container_name(rental_id: u64) -> String {
    format!("gpuflow-rental-{rental_id}")
}

fn split_image(image: &str) -> (&str, &str) {
    // A colon after the last slash separates the tag; one before it is a registry port.
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

fn docker_err(e: bollard::errors::Error) -> RuntimeError {
    RuntimeError::Docker(e.to_string())
}

impl Runtime for DockerRuntime {
    fn start<'a>(&'a self, spec: &'a WorkloadSpec) -> BoxFuture<'a, Result<Started, RuntimeError>> {
        Box::pin(async move {
            let name = container_name(spec.rental_id);
            let config = container_config(&self.image, spec);
            let id = bring_up(self, spec.rental_id, &name, config).await?;
            if let Some(key) = &spec.ssh_key {
                self.install_key(&id, key).await?;
            }
            let port = self.ssh_port(&id).await?;
            let detail = connect_detail(&name, port.as_deref(), &self.ssh_host);
            Ok(Started { handle: id, detail })
        })
    }

    fn is_running<'a>(&'a self, _rental_id: u64, handle: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.docker
                .inspect_container(handle, None)
                .await
                .ok()
                .and_then(|c| c.state)
                .and_then(|s| s.running)
                .unwrap_or(false)
        })
    }

    fn stop<'a>(&'a self, rental_id: u64, handle: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let stop = StopContainerOptionsBuilder::new().t(STOP_GRACE_SECS).build();
            if let Err(e) = self.docker.stop_container(handle, Some(stop)).await {
                tracing::warn!(rental = rental_id, error = %e, "could not stop the container");
            }
            let remove = RemoveContainerOptionsBuilder::new().force(true).build();
            if let Err(e) = self.docker.remove_container(handle, Some(remove)).await {
                tracing::warn!(rental = rental_id, error = %e, "could not remove the container");
            }
        })
    }

    fn logs<'a>(
        &'a self,
        _rental_id: u64,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, RuntimeError>> {
        Box::pin(async move {
            let options = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .tail(&MAX_LOG_LINES.to_string())
                .build();
            let mut stream = self.docker.logs(handle, Some(options));
            let mut lines = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(docker_err)?.to_string();
                lines.extend(chunk.lines().map(str::to_owned));
            }
            Ok(lines)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkloadSpec {
        WorkloadSpec {
            rental_id: 42,
            gpus: vec!["GPU-a".into(), "GPU-c".into()],
            ends_at: 1_700_000_000,
            image: None,
            ssh_key: Some("ssh-ed25519 AAAA renter@laptop".into()),
        }
    }

    #[test]
    fn the_container_gets_exactly_the_rented_gpus() {
        let config = container_config("pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", &spec());
        let host = config.host_config.unwrap();
        let requests = host.device_requests.unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].device_ids.as_deref(), Some(&["GPU-a".into(), "GPU-c".into()][..]));
        assert_eq!(requests[0].driver.as_deref(), Some("nvidia"));
        assert_eq!(requests[0].count, None, "a count would hand out any GPU, not the rented ones");
        assert_eq!(requests[0].capabilities, Some(vec![vec!["gpu".to_owned()]]));
        assert_eq!(config.image.as_deref(), Some("pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"));
    }

    #[test]
    fn ssh_is_published_and_the_key_handed_over() {
        let config = container_config("img", &spec());
        assert_eq!(config.exposed_ports, Some(vec!["22/tcp".to_owned()]));
        let bindings = config.host_config.unwrap().port_bindings.unwrap();
        let ssh = bindings["22/tcp"].as_ref().unwrap();
        assert_eq!(ssh[0].host_port.as_deref(), Some(""), "ephemeral host port");
        let env = config.env.unwrap();
        assert!(env.contains(&"GPUFLOW_RENTAL_ID=42".to_owned()), "{env:?}");
        assert!(env.contains(&"PUBLIC_KEY=ssh-ed25519 AAAA renter@laptop".to_owned()), "{env:?}");
        assert_eq!(config.labels.unwrap()[RENTAL_LABEL], "42");
        let no_key = container_config("img", &WorkloadSpec { ssh_key: None, ..spec() });
        assert!(!no_key.env.unwrap().iter().any(|v| v.starts_with("PUBLIC_KEY=")));
    }

    #[test]
    fn the_renters_image_replaces_the_default() {
        let chosen = WorkloadSpec { image: Some("ubuntu:22.04".into()), ..spec() };
        assert_eq!(container_config("default:1", &chosen).image.as_deref(), Some("ubuntu:22.04"));
        assert_eq!(container_config("default:1", &spec()).image.as_deref(), Some("default:1"));
    }

    #[test]
    fn the_renter_is_told_how_to_connect() {
        assert_eq!(
            connect_detail("c", Some("32768"), "203.0.113.7"),
            "ssh -p 32768 root@203.0.113.7"
        );
        assert!(connect_detail("c", None, "h").contains("no SSH port"));
    }

    #[test]
    fn a_shell_image_is_kept_running() {
        let config = container_config("ubuntu:22.04", &spec());
        assert_eq!((config.tty, config.open_stdin), (Some(true), Some(true)));
    }

    #[test]
    fn the_key_script_installs_the_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("ssh");
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey renter@laptop";
        for _ in 0..2 {
            let out = std::process::Command::new("sh")
                .args(["-c", INSTALL_KEY])
                .env("GPUFLOW_SSH_DIR", &ssh)
                .env("GPUFLOW_SSH_KEY", key)
                // No sshd on this PATH: nothing is started.
                .env("PATH", "/usr/bin:/bin")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let keys = std::fs::read_to_string(ssh.join("authorized_keys")).unwrap();
        assert_eq!(keys, format!("{key}\n"), "installed once, even when run again");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ssh.join("authorized_keys")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// An engine that records the calls `bring_up` makes.
    struct FakeEngine {
        found: Option<ContainerInspectResponse>,
        /// Containers whose start fails.
        broken: Vec<String>,
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl FakeEngine {
        fn new(found: Option<ContainerInspectResponse>) -> Self {
            Self { found, broken: Vec::new(), calls: Default::default() }
        }

        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }

        fn bring_up(&self, config: ContainerCreateBody) -> Result<String, RuntimeError> {
            futures::executor::block_on(bring_up(self, 42, "gpuflow-rental-42", config))
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Engine for FakeEngine {
        fn inspect<'a>(
            &'a self,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<ContainerInspectResponse>, RuntimeError>> {
            self.record(format!("inspect {name}"));
            Box::pin(std::future::ready(Ok(self.found.clone())))
        }
        fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
            self.record(format!("pull {image}"));
            Box::pin(std::future::ready(Ok(())))
        }
        fn create<'a>(
            &'a self,
            name: &'a str,
            _config: ContainerCreateBody,
        ) -> BoxFuture<'a, Result<String, RuntimeError>> {
            self.record(format!("create {name}"));
            Box::pin(std::future::ready(Ok("new".to_owned())))
        }
        fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
            self.record(format!("start {id}"));
            let result = if self.broken.iter().any(|b| b == id) {
                Err(RuntimeError::Docker("cannot start container".into()))
            } else {
                Ok(())
            };
            Box::pin(std::future::ready(result))
        }
        fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
            self.record(format!("remove {id}"));
            Box::pin(std::future::ready(Ok(())))
        }
    }

    /// What `docker inspect` reports for a container created from `config`.
    fn inspected(
        id: &str,
        config: &ContainerCreateBody,
        running: bool,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some(id.to_owned()),
            config: Some(bollard::models::ContainerConfig {
                image: config.image.clone(),
                // Docker adds the image's own variables.
                env: config.env.clone().map(|mut env| {
                    env.push("PATH=/usr/bin".into());
                    env
                }),
                labels: config.labels.clone(),
                ..Default::default()
            }),
            host_config: config.host_config.clone(),
            state: Some(bollard::models::ContainerState {
                running: Some(running),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_rental_gets_a_new_container() {
        let engine = FakeEngine::new(None);
        assert_eq!(engine.bring_up(container_config("img:1", &spec())).unwrap(), "new");
        assert_eq!(
            engine.calls(),
            ["inspect gpuflow-rental-42", "pull img:1", "create gpuflow-rental-42", "start new"]
        );
    }

    #[test]
    fn a_resumed_rental_starts_its_stopped_container_again() {
        let config = container_config("img:1", &spec());
        let engine = FakeEngine::new(Some(inspected("old", &config, false)));
        assert_eq!(engine.bring_up(config).unwrap(), "old", "the renter's filesystem is kept");
        assert_eq!(engine.calls(), ["inspect gpuflow-rental-42", "start old"]);

        // An extension moved the end time: still the rental's container.
        let extended =
            container_config("img:1", &WorkloadSpec { ends_at: 1_800_000_000, ..spec() });
        let engine =
            FakeEngine::new(Some(inspected("old", &container_config("img:1", &spec()), false)));
        assert_eq!(engine.bring_up(extended).unwrap(), "old");
    }

    #[test]
    fn a_running_container_of_the_rental_is_kept() {
        let config = container_config("img:1", &spec());
        let engine = FakeEngine::new(Some(inspected("old", &config, true)));
        assert_eq!(engine.bring_up(config).unwrap(), "old");
        assert_eq!(engine.calls(), ["inspect gpuflow-rental-42"]);
    }

    #[test]
    fn a_container_that_does_not_start_is_replaced() {
        let config = container_config("img:1", &spec());
        let mut engine = FakeEngine::new(Some(inspected("old", &config, false)));
        engine.broken.push("old".into());
        assert_eq!(engine.bring_up(config).unwrap(), "new");
        assert_eq!(
            engine.calls(),
            [
                "inspect gpuflow-rental-42",
                "start old",
                "remove old",
                "pull img:1",
                "create gpuflow-rental-42",
                "start new"
            ]
        );
    }

    #[test]
    fn a_container_of_another_configuration_is_replaced_never_started() {
        let wanted = container_config("img:1", &spec());
        let others = [
            container_config("img:2", &spec()),
            container_config("img:1", &WorkloadSpec { gpus: vec!["GPU-b".into()], ..spec() }),
            container_config("img:1", &WorkloadSpec { rental_id: 7, ..spec() }),
        ];
        for other in others {
            let engine = FakeEngine::new(Some(inspected("old", &other, false)));
            assert_eq!(engine.bring_up(wanted.clone()).unwrap(), "new");
            assert_eq!(
                engine.calls(),
                [
                    "inspect gpuflow-rental-42",
                    "remove old",
                    "pull img:1",
                    "create gpuflow-rental-42",
                    "start new"
                ],
                "{:?}",
                other.image
            );
        }
        let foreign = ContainerInspectResponse { id: Some("x".into()), ..Default::default() };
        assert_eq!(classify(Some(&foreign), &wanted), Existing::Stale("x".into()));
    }

    #[test]
    fn image_tags_are_split_from_registry_ports() {
        assert_eq!(split_image("ubuntu:22.04"), ("ubuntu", "22.04"));
        assert_eq!(split_image("ubuntu"), ("ubuntu", "latest"));
        assert_eq!(split_image("registry:5000/team/img"), ("registry:5000/team/img", "latest"));
        assert_eq!(split_image("registry:5000/img:v1"), ("registry:5000/img", "v1"));
    }
}
