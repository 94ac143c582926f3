//! The Docker runtime: each rental runs in a container given exactly the rented GPUs,
//! with the renter's SSH key installed and the container's SSH port mapped to the host.

mod container;
#[cfg(test)]
mod tests;

use bollard::{
    Docker,
    exec::StartExecOptions,
    models::{ContainerCreateBody, ContainerInspectResponse},
    query_parameters::{
        CreateContainerOptionsBuilder, CreateImageOptionsBuilder, LogsOptionsBuilder,
        RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    },
};
use futures::StreamExt;

use self::container::{Engine, SSH_PORT, bring_up, container_name};
pub use self::container::{INSTALL_KEY, RENTAL_LABEL, connect_detail, container_config};
use crate::runtime::{BoxFuture, MAX_LOG_LINES, Runtime, RuntimeError, Started, WorkloadSpec};

/// Seconds a container gets to exit after SIGTERM.
const STOP_GRACE_SECS: i32 = 10;

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
