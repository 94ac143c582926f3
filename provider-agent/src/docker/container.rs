//! What a rental's container is — its image, GPUs, SSH port and label — and how it is
//! brought up again after a restart without taking the renter's files.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, DeviceRequest, HostConfig, Mount, MountType,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use gpuflow_protocol::{PublishedPort, Share, SshEndpoint};

use crate::runtime::{BoxFuture, Reach, RuntimeError, WorkloadSpec};

/// Port sshd listens on inside the container.
pub(super) const SSH_PORT: &str = "22/tcp";
/// Where the rental's end time lives in the container: written when it is created,
/// rewritten when the renter extends, and read into `GPUFLOW_RENTAL_ENDS_AT` each time
/// the container starts, so a restarted container sees the extended end.
pub const ENDS_AT_FILE: &str = "/etc/gpuflow/ends_at";
/// The container's entrypoint (`sh -c START gpuflow-start IMAGE_COMMAND...`), run on
/// every start, restarts included: installs `$PUBLIC_KEY` for root once, refreshes the
/// end time from [`ENDS_AT_FILE`], hands the rental's variables to SSH sessions through
/// `/etc/environment`, starts the image's SSH server when it has one, then
/// becomes the image's own entrypoint and command (a shell kept open when it has none),
/// whose pid it leaves in `/run/gpuflow.pid`. In the rental's last ten minutes a login
/// shell says so (`/etc/profile.d/gpuflow.sh`) and `/etc/gpuflow/warning` holds the same
/// words, written by a watcher started here; an extension clears it.
/// `GPUFLOW_ROOT` exists for the tests only.
pub const START: &str = r#"set -e
root="${GPUFLOW_ROOT:-}"
if [ -n "${PUBLIC_KEY:-}" ]; then
  dir="$root/root/.ssh"
  mkdir -p "$dir" && chmod 700 "$dir"
  touch "$dir/authorized_keys"
  grep -qxF "$PUBLIC_KEY" "$dir/authorized_keys" || printf '%s\n' "$PUBLIC_KEY" >> "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
fi
ends="$root/etc/gpuflow/ends_at"
mkdir -p "${ends%/*}"
if [ -s "$ends" ]; then GPUFLOW_RENTAL_ENDS_AT="$(cat "$ends")"; export GPUFLOW_RENTAL_ENDS_AT
else printf '%s\n' "${GPUFLOW_RENTAL_ENDS_AT:-}" > "$ends"; fi
# SSH sessions start from a clean environment: sshd's PAM reads the rental's variables,
# and the renter's own (named in GPUFLOW_RENTER_ENV), from /etc/environment.
keys='GPUFLOW_RENTAL_|NVIDIA_VISIBLE_DEVICES='
for key in $(printf '%s' "${GPUFLOW_RENTER_ENV:-}" | tr ',' ' '); do keys="$keys|$key="; done
envfile="$root/etc/environment"
{ grep -v -E "^($keys)" "$envfile" 2>/dev/null || true
  env | grep -E "^($keys)" || true; } > "$envfile.gpuflow"
mv "$envfile.gpuflow" "$envfile"
# The rental's last ten minutes: said at login, and written where scripts can look.
mkdir -p "$root/etc/profile.d"
cat > "$root/etc/profile.d/gpuflow.sh" <<'WARN'
[ -s /etc/gpuflow/warning ] && cat /etc/gpuflow/warning >&2
WARN
if [ -z "$root" ]; then
  (while :; do
    left=$(( $(cat /etc/gpuflow/ends_at 2>/dev/null || echo 0) - $(date +%s) ))
    if [ "$left" -gt 0 ] && [ "$left" -le 600 ]; then
      printf 'gpuflow: this rental ends in %s min, and everything on this machine is deleted then; keep it with `gpuflow extend %s --hours 1`\n' \
        "$(( (left + 59) / 60 ))" "${GPUFLOW_RENTAL_ID:-ID}" > /etc/gpuflow/warning
    fi
    sleep 20
  done) </dev/null >/dev/null 2>&1 &
fi
if [ -z "$root" ] && command -v sshd >/dev/null 2>&1; then
  mkdir -p /run/sshd
  ssh-keygen -A >/dev/null 2>&1 || true
  "$(command -v sshd)" || echo "gpuflow: the SSH server did not start" >&2
fi
# A bare shell (most base images' command) ignores SIGTERM and would hold a stop for the
# whole grace period; the machine is used through SSH, so a sleep keeps it up instead.
case "$*" in ""|sh|bash|/bin/sh|/bin/bash|/usr/bin/bash) set -- sleep 2147483647 ;; esac
mkdir -p "$root/run" && echo "$$" > "$root/run/gpuflow.pid"
exec "$@"
"#;
/// Run in the container when the renter extends: the new end time (`$1`) replaces the
/// old one in [`ENDS_AT_FILE`].
pub const WRITE_ENDS_AT: &str = r#"mkdir -p /etc/gpuflow && printf '%s\n' "$1" > /etc/gpuflow/ends_at && rm -f /etc/gpuflow/warning"#;
/// Capabilities a container keeps, of Docker's default set: what sshd and a root shell
/// need to log a user in and manage their own files and processes. The rest (raw
/// sockets, mknod, setpcap, ...) are dropped.
pub const CAPABILITIES: [&str; 9] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SYS_CHROOT",
    "AUDIT_WRITE",
];
/// Label that marks containers as gpuflow workloads, with the rental id as value.
pub const RENTAL_LABEL: &str = "io.gpuflow.rental";
/// The label of a renter's volume: its key (the renter and the renter's name for it).
pub const VOLUME_LABEL: &str = "io.gpuflow.volume";

/// The image a rental runs: the renter's choice (checked against the allow-list when the
/// quote was issued), else the provider's default.
pub(super) fn image_of<'a>(default: &'a str, spec: &'a WorkloadSpec) -> &'a str {
    spec.image.as_deref().unwrap_or(default)
}

/// What the renter is told to type: `ssh -p PORT root@HOST` once Docker mapped the port.
pub fn connect_detail(name: &str, ssh: Option<&SshEndpoint>) -> String {
    match ssh {
        Some(ssh) => ssh.to_string(),
        None => format!("container {name} runs; it exposes no SSH port"),
    }
}

/// The container a rental runs in: the renter's image (or `default_image`), its GPUs by
/// UUID and nothing else, the SSH port published on an ephemeral host port, labelled with
/// the rental so it can be found again. It is not the host: no privileges, the default
/// bridge network and its own PID namespace, nothing of the host mounted, capabilities cut
/// to [`CAPABILITIES`], no privilege gained through setuid binaries, an init as PID 1 (so
/// a stop takes a moment, not the whole grace), and restarted by the engine when its main
/// process dies, until the agent stops it. The image's own entrypoint and command are
/// added by [`with_image_command`] once the image is pulled.
pub fn container_config(default_image: &str, spec: &WorkloadSpec) -> ContainerCreateBody {
    let mut env = vec![
        format!("GPUFLOW_RENTAL_ID={}", spec.rental_id),
        format!("GPUFLOW_RENTAL_ENDS_AT={}", spec.ends_at),
    ];
    if let Some(key) = &spec.ssh_key {
        // The variable most GPU-cloud images read to install a key at boot.
        env.push(format!("PUBLIC_KEY={key}"));
    }
    let launch = &spec.launch;
    if !launch.env.is_empty() {
        env.extend(launch.env.iter().cloned());
        env.push(format!("GPUFLOW_RENTER_ENV={}", launch.env_keys().collect::<Vec<_>>().join(",")));
    }
    let ports: Vec<String> = std::iter::once(SSH_PORT.to_owned())
        .chain(launch.ports.iter().map(|port| format!("{port}/tcp")))
        .collect();
    // Empty host ports: Docker picks free ones, read back after start.
    let ephemeral = || {
        Some(vec![PortBinding {
            host_ip: Some("0.0.0.0".to_owned()),
            host_port: Some(String::new()),
        }])
    };
    ContainerCreateBody {
        image: Some(image_of(default_image, spec).to_owned()),
        env: Some(env),
        labels: Some(HashMap::from([(RENTAL_LABEL.to_owned(), spec.rental_id.to_string())])),
        exposed_ports: Some(ports.clone()),
        // The renter's command replaces the image's; without one the image's is added
        // once the image is pulled (`with_image_command`).
        cmd: launch.cmd.as_ref().map(|cmd| ["/bin/sh", "-c", cmd].map(str::to_owned).to_vec()),
        entrypoint: Some(["/bin/sh", "-c", START, "gpuflow-start"].map(str::to_owned).to_vec()),
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
            port_bindings: Some(ports.into_iter().map(|port| (port, ephemeral())).collect()),
            init: Some(true),
            privileged: Some(false),
            network_mode: Some("bridge".to_owned()),
            cap_drop: Some(vec!["ALL".to_owned()]),
            cap_add: Some(CAPABILITIES.map(str::to_owned).to_vec()),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Adds the image's entrypoint and command (from `docker image inspect`) as the arguments
/// [`START`] ends by running.
pub fn with_image_command(
    mut config: ContainerCreateBody,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
) -> ContainerCreateBody {
    let command: Vec<String> =
        entrypoint.unwrap_or_default().into_iter().chain(cmd.unwrap_or_default()).collect();
    config.cmd = (!command.is_empty()).then_some(command);
    config
}

/// Sets a rental's share of the machine (see [`crate::host::Host::share`]) as its
/// container's CPU, memory, `/dev/shm` and process limits; an unknown memory size (0)
/// leaves memory unlimited.
pub fn with_limits(mut config: ContainerCreateBody, share: &Share) -> ContainerCreateBody {
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let host = config.host_config.get_or_insert_with(HostConfig::default);
    host.nano_cpus = Some(signed(share.cpu_millis.saturating_mul(1_000_000)));
    host.memory = (share.memory_bytes > 0).then(|| signed(share.memory_bytes));
    host.shm_size = (share.shm_bytes > 0).then(|| signed(share.shm_bytes));
    host.pids_limit = Some(signed(share.pids));
    config
}

/// Where a running container's SSH port (22, logged in to as root at `ssh_host`) and the
/// renter's ports are published, read from its inspection; `None` while it does not run:
/// a container the engine is restarting has no ports mapped yet, and its rental keeps
/// the ones it had until it runs again.
pub fn reach_in(info: ContainerInspectResponse, ssh_host: &str) -> Option<Reach> {
    if info.state.and_then(|s| s.running) != Some(true) {
        return None;
    }
    let mut reach = Reach::default();
    let published = info.network_settings.and_then(|n| n.ports).unwrap_or_default();
    for (port, bindings) in published {
        let host = bindings
            .unwrap_or_default()
            .into_iter()
            .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
        let container = port.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok());
        match (container, host) {
            (Some(22), Some(port)) => {
                let (host, user) = (ssh_host.to_owned(), "root".to_owned());
                reach.ssh = Some(SshEndpoint { host, port, user });
            }
            (Some(container), Some(host)) => reach.ports.push(PublishedPort { container, host }),
            _ => {}
        }
    }
    reach.ports.sort_by_key(|p| p.container);
    Some(reach)
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

/// An image's own entrypoint and command, which the rental's container ends by running.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ImageCommand {
    /// `Entrypoint` of the image's config.
    pub(super) entrypoint: Option<Vec<String>>,
    /// `Cmd` of the image's config.
    pub(super) cmd: Option<Vec<String>>,
}

/// The engine calls that bring a rental's container up; the Docker engine in production,
/// a recording fake in tests.
pub(super) trait Engine: Sync {
    /// The container called `name`, or `None` when there is none.
    fn inspect<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerInspectResponse>, RuntimeError>>;
    /// The entrypoint and command of `image` (before a container is created from it),
    /// pulling it when the engine does not have it.
    fn image_command<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageCommand, RuntimeError>>;
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
    let config = match config.image.clone() {
        Some(image) if config.cmd.is_some() => {
            engine.image_command(&image).await?;
            config
        }
        Some(image) => {
            let command = engine.image_command(&image).await?;
            with_image_command(config, command.entrypoint, command.cmd)
        }
        None => config,
    };
    let id = engine.create(name, config).await?;
    engine.start(&id).await?;
    Ok(id)
}

/// `PREFIX-volume-KEY`: the agent's prefix and the volume's key (renter and name).
pub(super) fn volume_name(prefix: &str, key: &str) -> String {
    format!("{prefix}-volume-{key}")
}

/// Mounts the engine volume `name` at `path` in the container, the only part of the host
/// a rental sees.
pub fn with_volume(mut config: ContainerCreateBody, name: &str, path: &str) -> ContainerCreateBody {
    let host = config.host_config.get_or_insert_with(HostConfig::default);
    host.mounts = Some(vec![Mount {
        target: Some(path.to_owned()),
        source: Some(name.to_owned()),
        typ: Some(MountType::VOLUME),
        ..Default::default()
    }]);
    config
}

/// `PREFIX-rental-ID`: the agent's prefix (its chain and escrow) and the rental.
pub(super) fn container_name(prefix: &str, rental_id: u64) -> String {
    format!("{prefix}-rental-{rental_id}")
}
