//! The Docker runtime: each rental runs in a container given exactly the rented GPUs,
//! with the renter's SSH key installed and the container's SSH port mapped to the host.

mod container;
#[cfg(test)]
mod tests;

use std::{collections::HashMap, path::PathBuf, time::Duration};

use bollard::{
    Docker,
    exec::StartExecResults,
    models::{ContainerCreateBody, ContainerInspectResponse},
    query_parameters::{
        CreateContainerOptionsBuilder, CreateImageOptionsBuilder, LogsOptionsBuilder,
        RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
    },
};
use futures::StreamExt;
use gpuflow_protocol::Share;

pub use self::container::{
    CAPABILITIES, ENDS_AT_FILE, RENTAL_LABEL, START, VOLUME_LABEL, WRITE_ENDS_AT, connect_detail,
    container_config, reach_in, with_image_command, with_limits, with_volume,
};
use self::container::{Engine, ImageCommand, bring_up, container_name, volume_name};
use crate::host::Host;
use crate::runtime::{
    BoxFuture, MAX_LOG_LINES, Reach, Runtime, RuntimeError, Started, WorkloadSpec,
};

/// Seconds a container gets to exit after SIGTERM. Its init (PID 1) passes the signal
/// on, so a container stops in a moment; the grace is for workloads that save first.
const STOP_GRACE_SECS: i32 = 10;
/// How long a container's SSH server gets to answer after the container started.
const SSH_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs workloads as Docker containers through the Docker Engine API.
#[derive(Debug)]
pub struct DockerRuntime {
    docker: Docker,
    /// The image of rentals whose renter asked for none.
    image: String,
    ssh_host: String,
    /// Starts every container name, with the rental id after it: names this agent's
    /// containers apart from other agents' on the same engine.
    prefix: String,
    /// The machine whose CPUs and memory rentals share, and how many GPUs share it; see
    /// [`DockerRuntime::sharing`].
    shares: Option<(Host, usize)>,
}

impl DockerRuntime {
    /// Connects to the local Docker engine (`DOCKER_HOST` or the default socket) and
    /// checks that it answers, so a missing engine stops the agent at start, not a rental.
    pub async fn connect(
        image: String,
        ssh_host: String,
        prefix: String,
    ) -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(docker_err)?;
        docker.ping().await.map_err(|e| {
            RuntimeError::Docker(format!(
                "the Docker engine does not answer ({e}); start it (and the NVIDIA Container \
                 Toolkit), or run with --runtime process for development"
            ))
        })?;
        Ok(Self { docker, image, ssh_host, prefix, shares: None })
    }

    /// Gives every rental of `rented` GPUs its share of `host`'s CPUs and memory, shared by
    /// `offered` GPUs; without it containers run unlimited.
    pub fn sharing(mut self, host: Host, offered: usize) -> Self {
        self.shares = Some((host, offered));
        self
    }

    /// Starts a throwaway container of the default image with a request for the GPU
    /// `gpu` (by UUID), as a rental's would be, waits for it to exit and removes it; an
    /// engine without the NVIDIA runtime refuses the request. Pulls the image if missing.
    pub async fn self_test(&self, gpu: &str) -> Result<(), RuntimeError> {
        self.image_command(&self.image).await?;
        let config = ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint: Some(vec!["/bin/sh".to_owned()]),
            cmd: Some(["-c", "exit 0"].map(str::to_owned).to_vec()),
            host_config: Some(bollard::models::HostConfig {
                device_requests: Some(vec![bollard::models::DeviceRequest {
                    driver: Some("nvidia".to_owned()),
                    device_ids: Some(vec![gpu.to_owned()]),
                    capabilities: Some(vec![vec!["gpu".to_owned()]]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!("{}-doctor-{}", self.prefix, std::process::id());
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created =
            self.docker.create_container(Some(options), config).await.map_err(docker_err)?;
        let started = self.docker.start_container(&created.id, None).await.map_err(docker_err);
        let exited = match started {
            Ok(()) => {
                let mut wait = self.docker.wait_container(&created.id, None);
                match wait.next().await {
                    Some(Ok(done)) if done.status_code == 0 => Ok(()),
                    Some(Ok(done)) => Err(RuntimeError::Docker(format!(
                        "the test container exited with {}",
                        done.status_code
                    ))),
                    Some(Err(e)) => Err(docker_err(e)),
                    None => Ok(()),
                }
            }
            Err(e) => Err(e),
        };
        let remove = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = self.docker.remove_container(&created.id, Some(remove)).await;
        exited
    }

    /// Where the engine keeps images, containers and volumes, if it says.
    pub async fn data_root(&self) -> Option<PathBuf> {
        let info = self.docker.info().await.ok()?;
        info.docker_root_dir.map(PathBuf::from)
    }

    /// The command of `image`, pulled only when the engine does not have it yet: an image
    /// pulled ahead (or by an earlier rental) starts at once.
    async fn image_command(&self, image: &str) -> Result<ImageCommand, RuntimeError> {
        let config = match self.docker.inspect_image(image).await {
            Ok(found) => found.config,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                self.pull(image).await?;
                self.docker.inspect_image(image).await.map_err(docker_err)?.config
            }
            Err(e) => return Err(docker_err(e)),
        };
        Ok(ImageCommand {
            entrypoint: config.as_ref().and_then(|c| c.entrypoint.clone()),
            cmd: config.and_then(|c| c.cmd),
        })
    }

    /// Pulls `image` from its registry, logging the progress of each layer.
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

    /// Runs `cmd` in the container and waits for it to exit; fails when it fails.
    async fn exec(&self, container: &str, cmd: Vec<String>) -> Result<(), RuntimeError> {
        let exec = self
            .docker
            .create_exec(
                container,
                bollard::exec::CreateExecOptions {
                    cmd: Some(cmd),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(docker_err)?;
        let mut output = String::new();
        if let StartExecResults::Attached { output: mut stream, .. } =
            self.docker.start_exec(&exec.id, None).await.map_err(docker_err)?
        {
            while let Some(chunk) = stream.next().await {
                output.push_str(&chunk.map_err(docker_err)?.to_string());
            }
        }
        let code = self.docker.inspect_exec(&exec.id).await.map_err(docker_err)?.exit_code;
        match code {
            Some(0) => Ok(()),
            code => Err(RuntimeError::Docker(format!(
                "a command in the container exited with {code:?}: {}",
                output.trim()
            ))),
        }
    }

    /// Where the container's SSH port and the renter's ports are published; `None` while
    /// it does not run (the engine is restarting it), when Docker has mapped none.
    async fn reach_of(&self, container: &str) -> Result<Option<Reach>, RuntimeError> {
        let info = self.docker.inspect_container(container, None).await.map_err(docker_err)?;
        Ok(reach_in(info, &self.ssh_host))
    }
}

/// Waits until an SSH server answers on `port` of this machine (where Docker publishes
/// it): a renter is told the rental runs only once they can log in.
async fn ssh_ready(port: u16, timeout: Duration) -> Result<(), RuntimeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match ssh_banner(port).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(RuntimeError::Docker(format!(
                "the container's SSH server did not answer within {} s ({last}); the image \
                 needs an SSH server (openssh-server) for a rental with --ssh-key",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects to `127.0.0.1:port` and reads the server's identification line (`SSH-2.0-...`).
async fn ssh_banner(port: u16) -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let mut banner = [0u8; 4];
        stream.read_exact(&mut banner).await.map_err(|e| format!("reading the banner: {e}"))?;
        match &banner {
            b"SSH-" => Ok(()),
            other => {
                Err(format!("not an SSH server (it said {:?})", String::from_utf8_lossy(other)))
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or_else(|_| Err("no banner within 5 s".to_owned()))
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

    fn image_command<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageCommand, RuntimeError>> {
        Box::pin(DockerRuntime::image_command(self, image))
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
    fn pull_ahead<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.pull(image))
    }

    fn share(&self, rented: usize) -> Option<Share> {
        self.shares.map(|(host, offered)| host.share(offered, rented))
    }

    fn start<'a>(&'a self, spec: &'a WorkloadSpec) -> BoxFuture<'a, Result<Started, RuntimeError>> {
        Box::pin(async move {
            let name = container_name(&self.prefix, spec.rental_id);
            let mut config = container_config(&self.image, spec);
            if let Some(share) = self.share(spec.gpus.len()) {
                config = with_limits(config, &share);
            }
            if let Some(volume) = &spec.volume {
                // Created with its label, so an operator can tell renters' volumes apart;
                // creating one that exists returns it as it is.
                let name = volume_name(&self.prefix, &volume.key);
                let create = bollard::models::VolumeCreateRequest {
                    name: Some(name.clone()),
                    labels: Some(HashMap::from([(VOLUME_LABEL.to_owned(), volume.key.clone())])),
                    ..Default::default()
                };
                self.docker.create_volume(create).await.map_err(docker_err)?;
                config = with_volume(config, &name, &volume.path);
            }
            let id = bring_up(self, spec.rental_id, &name, config).await?;
            let reach = self.reach_of(&id).await?.unwrap_or_default();
            if let (Some(_), Some(ssh)) = (&spec.ssh_key, &reach.ssh) {
                ssh_ready(ssh.port, SSH_READY_TIMEOUT).await?;
            }
            let detail = connect_detail(&name, reach.ssh.as_ref());
            Ok(Started { handle: id, detail, reach })
        })
    }

    fn is_running<'a>(&'a self, _rental_id: u64, handle: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            // A container the engine is restarting (its main process died) still serves
            // the rental: it is back in a moment.
            self.docker
                .inspect_container(handle, None)
                .await
                .ok()
                .and_then(|c| c.state)
                .is_some_and(|s| s.running == Some(true) || s.restarting == Some(true))
        })
    }

    fn reach<'a>(&'a self, _rental_id: u64, handle: &'a str) -> BoxFuture<'a, Option<Reach>> {
        Box::pin(async move { self.reach_of(handle).await.ok().flatten() })
    }

    fn extend<'a>(
        &'a self,
        rental_id: u64,
        handle: &'a str,
        ends_at: u64,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let cmd = ["/bin/sh", "-c", WRITE_ENDS_AT, "gpuflow-extend"]
                .into_iter()
                .map(str::to_owned)
                .chain([ends_at.to_string()])
                .collect();
            self.exec(handle, cmd).await?;
            tracing::info!(rental = rental_id, ends_at, "the container knows the new end");
            Ok(())
        })
    }

    fn stop<'a>(&'a self, rental_id: u64, handle: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let stop = StopContainerOptionsBuilder::new().t(STOP_GRACE_SECS).build();
            if let Err(e) = self.docker.stop_container(handle, Some(stop)).await {
                tracing::warn!(rental = rental_id, error = %e, "could not stop the container");
            }
            // With its anonymous volumes: nothing of the renter's stays on the machine.
            let remove = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            if let Err(e) = self.docker.remove_container(handle, Some(remove)).await {
                tracing::warn!(rental = rental_id, error = %e, "could not remove the container");
            }
        })
    }

    fn remove_volume<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let name = volume_name(&self.prefix, key);
            let remove = RemoveVolumeOptionsBuilder::new().force(true).build();
            match self.docker.remove_volume(&name, Some(remove)).await {
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                })
                | Ok(()) => Ok(()),
                Err(e) => Err(docker_err(e)),
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
