//! The Docker runtime: each rental runs in a container given exactly the rented GPUs,
//! with the renter's SSH key installed and the container's SSH port mapped to the host.

use std::collections::HashMap;

use bollard::{
    Docker,
    exec::StartExecOptions,
    models::{ContainerCreateBody, DeviceRequest, HostConfig, PortBinding},
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
            self.pull(image_of(&self.image, spec)).await?;
            let name = container_name(spec.rental_id);
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            let created = self
                .docker
                .create_container(Some(options), container_config(&self.image, spec))
                .await
                .map_err(docker_err)?;
            self.docker.start_container(&created.id, None).await.map_err(docker_err)?;
            if let Some(key) = &spec.ssh_key {
                self.install_key(&created.id, key).await?;
            }
            let port = self.ssh_port(&created.id).await?;
            let detail = connect_detail(&name, port.as_deref(), &self.ssh_host);
            Ok(Started { handle: created.id, detail })
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

    #[test]
    fn image_tags_are_split_from_registry_ports() {
        assert_eq!(split_image("ubuntu:22.04"), ("ubuntu", "22.04"));
        assert_eq!(split_image("ubuntu"), ("ubuntu", "latest"));
        assert_eq!(split_image("registry:5000/team/img"), ("registry:5000/team/img", "latest"));
        assert_eq!(split_image("registry:5000/img:v1"), ("registry:5000/img", "v1"));
    }
}
