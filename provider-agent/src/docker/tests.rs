use super::{
    container::{Existing, ImageCommand, classify},
    *,
};

fn spec() -> WorkloadSpec {
    WorkloadSpec {
        rental_id: 42,
        gpus: vec!["GPU-a".into(), "GPU-c".into()],
        ends_at: 1_700_000_000,
        image: None,
        ssh_key: Some("ssh-ed25519 AAAA renter@laptop".into()),
        launch: gpuflow_protocol::Launch::default(),
        volume: None,
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
fn a_volume_is_the_one_mount_and_named_for_its_agent_and_renter() {
    let name = super::container::volume_name("gpuflow-abc-31337-5fbdb23157", "f39f-data");
    assert_eq!(name, "gpuflow-abc-31337-5fbdb23157-volume-f39f-data");
    let config = super::with_volume(container_config("img", &spec()), &name, "/workspace");
    let mounts = config.host_config.unwrap().mounts.unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].source.as_deref(), Some(name.as_str()));
    assert_eq!(mounts[0].target.as_deref(), Some("/workspace"));
    assert_eq!(mounts[0].typ, Some(bollard::models::MountType::VOLUME));
    assert_eq!(mounts[0].read_only, None);
}

#[test]
fn the_renters_image_replaces_the_default() {
    let chosen = WorkloadSpec { image: Some("ubuntu:22.04".into()), ..spec() };
    assert_eq!(container_config("default:1", &chosen).image.as_deref(), Some("ubuntu:22.04"));
    assert_eq!(container_config("default:1", &spec()).image.as_deref(), Some("default:1"));
}

#[test]
fn the_renter_is_told_how_to_connect() {
    let ssh = gpuflow_protocol::SshEndpoint {
        host: "203.0.113.7".into(),
        port: 32768,
        user: "root".into(),
    };
    assert_eq!(connect_detail("c", Some(&ssh)), "ssh -p 32768 root@203.0.113.7");
    assert!(connect_detail("c", None).contains("no SSH port"));
}

#[test]
fn the_renters_environment_ports_and_command_are_the_containers() {
    let launch = gpuflow_protocol::Launch {
        env: vec!["HF_TOKEN=abc".into(), "MODE=train".into()],
        ports: vec![8888],
        cmd: Some("jupyter lab --port 8888".into()),
        volume: None,
    };
    let config = container_config("img", &WorkloadSpec { launch, ..spec() });
    let env = config.env.clone().unwrap();
    for wanted in ["HF_TOKEN=abc", "MODE=train", "GPUFLOW_RENTER_ENV=HF_TOKEN,MODE"] {
        assert!(env.contains(&wanted.to_owned()), "{wanted} not in {env:?}");
    }
    assert_eq!(config.exposed_ports, Some(vec!["22/tcp".to_owned(), "8888/tcp".to_owned()]));
    let bindings = config.host_config.as_ref().unwrap().port_bindings.clone().unwrap();
    assert_eq!(bindings["8888/tcp"].as_ref().unwrap()[0].host_port.as_deref(), Some(""));
    let cmd = ["/bin/sh", "-c", "jupyter lab --port 8888"].map(str::to_owned).to_vec();
    assert_eq!(config.cmd, Some(cmd.clone()));
    // The image's own command does not replace the renter's.
    let engine = FakeEngine::new(None);
    engine.bring_up(config).unwrap();
    assert_eq!(engine.calls()[2], format!("create gpuflow-rental-42 {}", cmd.join(" ")));
}

#[test]
fn a_rentals_share_of_the_machine_is_its_containers_limits() {
    let share =
        crate::host::Host { cpus: 32, memory_bytes: 256_000_000_000, disk_free_bytes: None }
            .share(8, 2);
    let config = with_limits(container_config("img", &spec()), &share);
    let host = config.host_config.unwrap();
    assert_eq!(host.nano_cpus, Some(8_000_000_000), "a quarter of 32 CPUs");
    assert_eq!(host.memory, Some(54_931 << 20));
    assert_eq!(host.shm_size, Some(27_465 << 20));
    assert_eq!(host.pids_limit, Some(8192));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]), "the rest of the configuration stays");
    let unknown_memory = gpuflow_protocol::Share { memory_bytes: 0, shm_bytes: 0, ..share };
    let host = with_limits(container_config("img", &spec()), &unknown_memory).host_config.unwrap();
    assert_eq!((host.memory, host.shm_size), (None, None), "no limit rather than zero bytes");
}

#[test]
fn a_container_is_not_the_host() {
    let config = container_config("img", &spec());
    let host = config.host_config.unwrap();
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.network_mode.as_deref(), Some("bridge"));
    assert_eq!((host.pid_mode, host.ipc_mode, host.binds, host.mounts), (None, None, None, None));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    let kept = host.cap_add.unwrap();
    for dangerous in ["SYS_ADMIN", "NET_ADMIN", "NET_RAW", "MKNOD", "SYS_PTRACE", "SETPCAP"] {
        assert!(!kept.iter().any(|c| c == dangerous), "{dangerous} kept");
    }
    assert_eq!(host.security_opt, Some(vec!["no-new-privileges".to_owned()]));
    assert_eq!(host.init, Some(true), "an init as PID 1 passes SIGTERM on");
    let restart = host.restart_policy.unwrap().name;
    assert_eq!(restart, Some(bollard::models::RestartPolicyNameEnum::UNLESS_STOPPED));
}

#[test]
fn the_image_command_runs_after_the_start_script() {
    let config = container_config("img", &spec());
    let entrypoint = config.entrypoint.clone().unwrap();
    assert_eq!(entrypoint[..2], ["/bin/sh".to_owned(), "-c".to_owned()]);
    assert_eq!(entrypoint[2], START);
    let config = with_image_command(config, Some(vec!["/e".into()]), Some(vec!["c".into()]));
    assert_eq!(config.cmd, Some(vec!["/e".to_owned(), "c".to_owned()]));
    assert_eq!(with_image_command(container_config("i", &spec()), None, None).cmd, None);
}

#[test]
fn a_shell_image_is_kept_running() {
    let config = container_config("ubuntu:22.04", &spec());
    assert_eq!((config.tty, config.open_stdin), (Some(true), Some(true)));
}

/// Runs [`START`] with `root` as the container's root, then `args` as the image command.
fn run_start(root: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", START, "gpuflow-start"])
        .args(args)
        .env("GPUFLOW_ROOT", root)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_start_script_installs_the_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey renter@laptop";
    for _ in 0..2 {
        run_start(dir.path(), &[("PUBLIC_KEY", key)], &["true"]);
    }
    let authorized = dir.path().join("root/.ssh/authorized_keys");
    let keys = std::fs::read_to_string(&authorized).unwrap();
    assert_eq!(keys, format!("{key}\n"), "installed once, even when run again");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&authorized).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_restarted_container_sees_the_extended_end() {
    let dir = tempfile::tempdir().unwrap();
    let show = ["sh", "-c", "echo $GPUFLOW_RENTAL_ENDS_AT"];
    // First start: the end time of the container's environment is written down.
    let first = run_start(dir.path(), &[("GPUFLOW_RENTAL_ENDS_AT", "100")], &show);
    assert_eq!(first.trim(), "100");
    // The renter extends: the agent rewrites the file in the running container.
    let file = dir.path().join(ENDS_AT_FILE.trim_start_matches('/'));
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &WRITE_ENDS_AT.replace("/etc/gpuflow", &file.parent().unwrap().display().to_string()),
            "x",
            "200",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The engine restarts the container with its first environment: the file wins.
    let again = run_start(dir.path(), &[("GPUFLOW_RENTAL_ENDS_AT", "100")], &show);
    assert_eq!(again.trim(), "200");
    // SSH sessions read the rental's variables from /etc/environment, the image's own kept.
    let environment = dir.path().join("etc/environment");
    std::fs::write(&environment, "LANG=C.UTF-8\nGPUFLOW_RENTAL_ENDS_AT=1\n").unwrap();
    run_start(
        dir.path(),
        &[("GPUFLOW_RENTAL_ID", "42"), ("GPUFLOW_RENTAL_ENDS_AT", "100")],
        &["true"],
    );
    let lines = std::fs::read_to_string(&environment).unwrap();
    let mut lines: Vec<&str> = lines.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["GPUFLOW_RENTAL_ENDS_AT=200", "GPUFLOW_RENTAL_ID=42", "LANG=C.UTF-8"]);
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
    fn image_command<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageCommand, RuntimeError>> {
        self.record(format!("pull {image}"));
        let command = ImageCommand {
            entrypoint: Some(vec!["/entry.sh".into()]),
            cmd: Some(vec!["python3".into(), "serve.py".into()]),
        };
        Box::pin(std::future::ready(Ok(command)))
    }
    fn create<'a>(
        &'a self,
        name: &'a str,
        config: ContainerCreateBody,
    ) -> BoxFuture<'a, Result<String, RuntimeError>> {
        self.record(format!("create {name} {}", config.cmd.unwrap_or_default().join(" ")));
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
fn inspected(id: &str, config: &ContainerCreateBody, running: bool) -> ContainerInspectResponse {
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
        [
            "inspect gpuflow-rental-42",
            "pull img:1",
            "create gpuflow-rental-42 /entry.sh python3 serve.py",
            "start new"
        ]
    );
}

#[test]
fn a_resumed_rental_starts_its_stopped_container_again() {
    let config = container_config("img:1", &spec());
    let engine = FakeEngine::new(Some(inspected("old", &config, false)));
    assert_eq!(engine.bring_up(config).unwrap(), "old", "the renter's filesystem is kept");
    assert_eq!(engine.calls(), ["inspect gpuflow-rental-42", "start old"]);

    // An extension moved the end time: still the rental's container.
    let extended = container_config("img:1", &WorkloadSpec { ends_at: 1_800_000_000, ..spec() });
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
            "create gpuflow-rental-42 /entry.sh python3 serve.py",
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
                "create gpuflow-rental-42 /entry.sh python3 serve.py",
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

#[test]
fn a_container_the_engine_is_restarting_has_no_reach_yet() {
    let config = container_config("img:1", &spec());
    let published = |ports: &[(&str, &str)]| bollard::models::NetworkSettings {
        ports: Some(
            ports
                .iter()
                .map(|(container, host)| {
                    let binding = bollard::models::PortBinding {
                        host_ip: Some("0.0.0.0".into()),
                        host_port: Some((*host).to_owned()),
                    };
                    ((*container).to_owned(), Some(vec![binding]))
                })
                .collect(),
        ),
        ..Default::default()
    };
    let running = ContainerInspectResponse {
        network_settings: Some(published(&[("22/tcp", "40022"), ("8888/tcp", "40888")])),
        ..inspected("c1", &config, true)
    };
    let reach = reach_in(running, "203.0.113.7").expect("a running container's ports");
    let ssh = reach.ssh.expect("the SSH port");
    assert_eq!((ssh.host.as_str(), ssh.port, ssh.user.as_str()), ("203.0.113.7", 40022, "root"));
    assert_eq!(reach.ports, [gpuflow_protocol::PublishedPort { container: 8888, host: 40888 }]);
    // Restarting: Docker has unmapped the ports; that is not a rental without SSH.
    let restarting = ContainerInspectResponse {
        network_settings: Some(published(&[])),
        ..inspected("c1", &config, false)
    };
    assert_eq!(reach_in(restarting, "203.0.113.7"), None);
}
