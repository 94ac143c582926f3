//! The Docker runtime against a real engine: a rental runs in a container of the renter's
//! image on exactly the rented GPUs, the renter logs in with their key, the engine's
//! restarts and the renter's extensions reach it, and a stop removes it and refunds
//! exactly.
//!
//! `make test` provides the engine, the image and its registry (`tests/docker/engine.sh`)
//! and names them in `GPUFLOW_TEST_IMAGE`; without them these tests fail, saying so.

use std::{path::Path, time::Duration};

use alloy::primitives::U256;
use gpuflow_devnet::{Devnet, DevnetOptions, RENTER_FUNDS};
use gpuflow_escrow::Escrow;
use serde_json::Value;

use super::{Output, RATE, amount, balance, eventually, gpuflow_with, start_with};

/// How long a container gets to be reported running: a pull from the local registry and
/// sshd's start, on a loaded machine.
const RUNNING: Duration = Duration::from_secs(120);

/// The test image in the local registry, or a failure naming how to get one.
pub(super) fn test_image() -> String {
    match std::env::var("GPUFLOW_TEST_IMAGE") {
        Ok(image) if !image.is_empty() => image,
        _ => panic!(
            "no Docker engine for the container tests: GPUFLOW_TEST_IMAGE is not set. `make \
             test` starts one; by hand: `bash tests/docker/engine.sh up /tmp/engine.env && \
             set -a && . /tmp/engine.env && set +a`, then run the tests"
        ),
    }
}

/// Runs `gpuflow` with a configuration directory of this devnet's own: what `rent`
/// remembers (the provider's address, the SSH key) must not be read by a test running
/// beside it, whose devnet has the same chain id, escrow address and rental ids.
async fn gpuflow(devnet: &Devnet, args: &[&str]) -> Output {
    gpuflow_in(devnet, &[], args).await
}

/// The renter's configuration directory on this devnet.
fn renter_home(devnet: &Devnet) -> std::path::PathBuf {
    devnet.provider_log.parent().expect("the devnet has a directory").join("renter")
}

/// [`gpuflow`] with more variables in its environment.
async fn gpuflow_in(devnet: &Devnet, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut vars = vec![("XDG_CONFIG_HOME", renter_home(devnet).display().to_string())];
    vars.extend(env.iter().map(|(key, value)| (*key, (*value).to_owned())));
    gpuflow_with(devnet, &vars, args).await
}

/// [`gpuflow`] with `--json`; the document it printed.
async fn gpuflow_json(devnet: &Devnet, args: &[&str]) -> Value {
    json_of(args, gpuflow(devnet, &[&["--json"], args].concat()).await)
}

/// What `gpuflow --json ARGS` printed, or a failure showing why it printed nothing.
fn json_of(args: &[&str], out: Output) -> Value {
    assert!(out.ok, "gpuflow {args:?} failed:\n{}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("gpuflow {args:?} printed no JSON ({e}):\n{}", out.stdout))
}

/// Runs the Docker CLI; its stdout, or a failure with its stderr.
pub(super) async fn docker(args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running docker {args:?}: {e}; install the Docker CLI"));
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
    }
}

/// `docker inspect` of one container, as JSON.
async fn inspect(container: &str) -> Option<Value> {
    let text = docker(&["inspect", container]).await.ok()?;
    let mut all: Vec<Value> = serde_json::from_str(&text).ok()?;
    all.pop()
}

/// A fresh ed25519 key pair; returns the public key's path.
fn key_pair(dir: &Path) -> String {
    let key = dir.join("id_ed25519");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "renter@test", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("{}.pub", key.display())
}

/// A devnet whose agent runs rentals as containers of the test image.
async fn docker_devnet(dir: &Path) -> (Devnet, Escrow) {
    let options = DevnetOptions {
        docker_image: Some(test_image()),
        ..DevnetOptions::for_checkout(dir.join("devnet")).unwrap()
    };
    start_with(options).await
}

/// Rents one GPU for an hour of the test image with the key; the `rent --json` document.
async fn rent_one_gpu(devnet: &Devnet, public_key: &str) -> Value {
    rent_gpu(devnet, public_key, "1", &test_image()).await
}

/// Rents one GPU for `hours` of `image` with the key, and checks it runs; the `rent --json`
/// document.
async fn rent_gpu(devnet: &Devnet, public_key: &str, hours: &str, image: &str) -> Value {
    rent_gpu_with(devnet, public_key, hours, image, &[]).await
}

/// [`rent_gpu`] with more flags for `gpuflow rent`.
async fn rent_gpu_with(
    devnet: &Devnet,
    public_key: &str,
    hours: &str,
    image: &str,
    extra: &[&str],
) -> Value {
    let args = [
        "rent",
        &devnet.offer_id,
        "--hours",
        hours,
        "--gpus",
        "1",
        "--image",
        image,
        "--ssh-key",
        public_key,
        "--wait",
        &RUNNING.as_secs().to_string(),
        "--yes",
    ];
    let rented = gpuflow_json(devnet, &[&args[..], extra].concat()).await;
    assert_eq!(rented["workload"]["state"], "running", "{rented}");
    rented
}

/// Stops rental `id` and waits until its container is gone.
async fn stop_and_see_removed(devnet: &Devnet, id: u64, container: &str) {
    gpuflow_json(devnet, &["stop", &id.to_string()]).await;
    eventually(devnet, "the container to be removed", RUNNING, || async {
        inspect(container).await.is_none().then_some(())
    })
    .await;
}

/// `gpuflow ssh ID -- COMMAND`: its stdout, or `None` when ssh failed.
async fn ssh(devnet: &Devnet, id: u64, command: &str) -> Option<String> {
    let out = gpuflow(devnet, &["ssh", &id.to_string(), "--", command]).await;
    if !out.ok {
        // Shown with the test's output when it fails.
        eprintln!("gpuflow ssh {id} -- {command}: {}", out.stderr.trim());
    }
    out.ok.then(|| out.stdout.trim().to_owned())
}

/// The container serving rental `id`: the one publishing the SSH port its status gives
/// (other devnets' containers, with rentals of the same ids, may share the engine).
async fn container_of(devnet: &Devnet, id: u64) -> String {
    let status = gpuflow_json(devnet, &["status", &id.to_string()]).await;
    let port =
        status["workload"]["ssh"]["port"].as_u64().expect("a running rental has an SSH port");
    let label = format!("label=io.gpuflow.rental={id}");
    let listed =
        docker(&["ps", "--filter", &label, "--format", "{{.Names}}\t{{.Ports}}"]).await.unwrap();
    let published = format!(":{port}->22/tcp");
    let line = listed
        .lines()
        .find(|line| line.contains(&published))
        .unwrap_or_else(|| panic!("no container of rental {id} publishes port {port}: {listed:?}"));
    line.split('\t').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rental_runs_in_a_container_the_renter_logs_in_to() {
    let dir = tempfile::tempdir().unwrap();
    let public_key = key_pair(dir.path());
    let (devnet, escrow) = docker_devnet(dir.path()).await;

    // Rent: running means usable, so the first login works at once.
    let rented = rent_one_gpu(&devnet, &public_key).await;
    let id = rented["rental_id"].as_u64().unwrap();
    let deposit = U256::from(RATE / 2 * 3600);
    assert_eq!(amount(&rented["deposit"]), deposit);
    let hello = ssh(&devnet, id, "echo in-$GPUFLOW_RENTAL_ID-as-$(id -un)").await;
    assert_eq!(hello.as_deref(), Some(format!("in-{id}-as-root").as_str()));
    let container = container_of(&devnet, id).await;

    // The container is not the host.
    let info = inspect(&container).await.expect("the rental's container exists");
    let host = &info["HostConfig"];
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["NetworkMode"], "bridge");
    assert_eq!(host["PidMode"], "");
    assert_eq!(host["Binds"], Value::Null);
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(host["SecurityOpt"], serde_json::json!(["no-new-privileges"]));
    assert_eq!(host["Init"], true);
    assert!(info["Mounts"].as_array().is_none_or(Vec::is_empty), "{}", info["Mounts"]);

    // One of the two GPUs: half the machine's CPUs (at least one) and memory, as quoted.
    let share = &rented["share"];
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(share["cpu_millis"].as_u64(), Some((cpus * 500).max(1000)), "{share}");
    assert_eq!(share["pids"], 4096);
    assert_eq!(host["NanoCpus"].as_u64(), share["cpu_millis"].as_u64().map(|m| m * 1_000_000));
    assert_eq!(host["Memory"], share["memory_bytes"]);
    assert_eq!(host["ShmSize"], share["shm_bytes"]);
    assert_eq!(host["PidsLimit"], share["pids"]);
    let shm = ssh(&devnet, id, "df -B1 --output=size /dev/shm | tail -1").await;
    let shm = shm.and_then(|s| s.trim().parse::<u64>().ok());
    assert_eq!(shm, share["shm_bytes"].as_u64(), "the container's /dev/shm is its share");

    // The logs are the container's output.
    let marker = format!("container-output-{id}");
    ssh(&devnet, id, &format!("echo {marker} > /proc/1/fd/1")).await.expect("ssh runs");
    eventually(&devnet, "the container's output in the logs", RUNNING, || async {
        let logs = gpuflow_json(&devnet, &["logs", &id.to_string()]).await;
        let lines = logs["lines"].as_array()?;
        lines.iter().any(|l| l.as_str().is_some_and(|l| l.contains(&marker))).then_some(())
    })
    .await;

    // An extension reaches the running container.
    let extended =
        gpuflow_json(&devnet, &["extend", &id.to_string(), "--hours", "1", "--yes"]).await;
    let new_end = extended["new_end"].as_u64().expect("extend prints the new end");
    let ends_at = || async {
        ssh(&devnet, id, "cat /etc/gpuflow/ends_at").await.filter(|t| t == &new_end.to_string())
    };
    eventually(&devnet, "the new end in the container", RUNNING, ends_at).await;

    // The main process dies: the engine restarts the container, the agent follows its new
    // port, and the renter logs in again without being told anything.
    let before = gpuflow_json(&devnet, &["status", &id.to_string()]).await;
    let kill = "kill -9 $(cat /run/gpuflow.pid)";
    let _ = ssh(&devnet, id, kill).await;
    eventually(&devnet, "the engine to restart the container", RUNNING, || async {
        let info = inspect(&container).await?;
        (info["RestartCount"].as_u64()? >= 1 && info["State"]["Running"] == true).then_some(())
    })
    .await;
    let port = || async {
        let info = inspect(&container).await?;
        info["NetworkSettings"]["Ports"]["22/tcp"][0]["HostPort"].as_str()?.parse::<u64>().ok()
    };
    let followed = eventually(&devnet, "status to follow the new port", RUNNING, || async {
        let status = gpuflow_json(&devnet, &["status", &id.to_string()]).await;
        let reported = status["workload"]["ssh"]["port"].as_u64()?;
        (Some(reported) == port().await).then_some(status)
    })
    .await;
    assert_eq!(followed["workload"]["state"], "running", "{before}\n{followed}");
    let again = eventually(&devnet, "a login after the restart", RUNNING, || async {
        let show = "tr '\\0' '\\n' < /proc/$(cat /run/gpuflow.pid)/environ | grep ENDS_AT";
        ssh(&devnet, id, show).await
    })
    .await;
    assert_eq!(
        again,
        format!("GPUFLOW_RENTAL_ENDS_AT={new_end}"),
        "the restart kept the extension"
    );

    // Stop: the container and the renter's files are gone, the refund is exact.
    devnet.advance_time(3).await.unwrap();
    let stopped = gpuflow_json(&devnet, &["stop", &id.to_string()]).await;
    let start = rented["start"].as_u64().unwrap();
    let stopped_at = stopped["stopped_at"].as_u64().unwrap();
    let charged = U256::from(RATE / 2 * (stopped_at - start));
    let paid = deposit + amount(&extended["cost"]);
    assert_eq!(amount(&stopped["charged"]), charged);
    assert_eq!(amount(&stopped["refund"]), paid - charged);
    assert_eq!(balance(&escrow, devnet.renter).await, U256::from(RENTER_FUNDS) - charged);
    eventually(&devnet, "the container to be removed", RUNNING, || async {
        inspect(&container).await.is_none().then_some(())
    })
    .await;
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rentals_of_one_gpu_each_get_one_gpu_each() {
    if std::env::var("GPUFLOW_TEST_GPU_HOOK").as_deref() == Ok("0") {
        panic!(
            "the Docker engine in use was not started with the stand-in \
             nvidia-container-runtime-hook on its PATH, so it refuses GPU requests; let \
             tests/docker/engine.sh start the engine"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let public_key = key_pair(dir.path());
    let (devnet, _) = docker_devnet(dir.path()).await;
    let (mut seen, mut ids) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let rented = rent_one_gpu(&devnet, &public_key).await;
        let id = rented["rental_id"].as_u64().unwrap();
        let rented_gpus = rented["workload"]["gpus"].as_array().unwrap().clone();
        assert_eq!(rented_gpus.len(), 1, "{rented}");
        // What the engine hands the container: exactly the rented GPU.
        let container = container_of(&devnet, id).await;
        ids.push((id, container.clone()));
        let info = inspect(&container).await.unwrap();
        let requests = &info["HostConfig"]["DeviceRequests"];
        assert_eq!(requests[0]["DeviceIDs"], serde_json::json!(rented_gpus), "{requests}");
        let visible =
            ssh(&devnet, id, "tr '\\0' '\\n' < /proc/1/environ | grep ^NVIDIA_VISIBLE_DEVICES=")
                .await
                .expect("ssh runs");
        assert_eq!(visible, format!("NVIDIA_VISIBLE_DEVICES={}", rented_gpus[0].as_str().unwrap()));
        seen.push(rented_gpus[0].as_str().unwrap().to_owned());
    }
    assert_ne!(seen[0], seen[1], "two rentals were given the same GPU");
    for (id, container) in ids {
        stop_and_see_removed(&devnet, id, &container).await;
    }
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renters_environment_port_and_command_reach_the_container() {
    let dir = tempfile::tempdir().unwrap();
    let public_key = key_pair(dir.path());
    let (devnet, _) = docker_devnet(dir.path()).await;
    let args = [
        "--json",
        "rent",
        &devnet.offer_id,
        "--hours",
        "1",
        "--gpus",
        "1",
        "--ssh-key",
        &public_key,
        "--env",
        "GREETING=hello renter",
        "--env",
        "RENTER_TOKEN",
        "--port",
        "8000",
        "--cmd",
        "exec python3 -m http.server 8000 --directory /etc/gpuflow",
        "--wait",
        &RUNNING.as_secs().to_string(),
        "--yes",
    ];
    // `--env KEY` takes the value from the renter's shell.
    let rented =
        json_of(&args, gpuflow_in(&devnet, &[("RENTER_TOKEN", "from-the-shell")], &args).await);
    assert_eq!(rented["workload"]["state"], "running", "{rented}");
    let id = rented["rental_id"].as_u64().unwrap();
    let ports = rented["workload"]["ports"].as_array().expect("the published ports").clone();
    assert_eq!(ports.len(), 1, "{rented}");
    assert_eq!(ports[0]["container"], 8000);
    let host_port = ports[0]["host"].as_u64().unwrap();

    // The renter's command serves on the renter's port, published on the host.
    let url = format!("http://127.0.0.1:{host_port}/ends_at");
    let served = eventually(&devnet, "the renter's server on its published port", RUNNING, || {
        let url = url.clone();
        async move { reqwest::get(&url).await.ok()?.error_for_status().ok()?.text().await.ok() }
    })
    .await;
    assert_eq!(served.trim(), rented["end"].as_u64().unwrap().to_string());

    // The renter's variable is in the container and in SSH sessions.
    let greeting = ssh(&devnet, id, "echo \"$GREETING/$RENTER_TOKEN\"").await;
    assert_eq!(greeting.as_deref(), Some("hello renter/from-the-shell"));
    let main = ssh(&devnet, id, "tr '\\0' '\\n' < /proc/$(cat /run/gpuflow.pid)/environ").await;
    assert!(main.unwrap_or_default().lines().any(|l| l == "GREETING=hello renter"));

    // The SSH address as a URL, the one the status gives.
    let status = gpuflow_json(&devnet, &["status", &id.to_string()]).await;
    let ssh_at = &status["workload"]["ssh"];
    let url = gpuflow(&devnet, &["ssh-url", &id.to_string()]).await;
    let expected = format!("ssh://root@{}:{}", ssh_at["host"].as_str().unwrap(), ssh_at["port"]);
    assert_eq!(url.stdout.trim(), expected, "{}", url.stderr);

    // A directory up with rsync; a file cut off midway is made whole by copying again.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), "alpha\n").unwrap();
    let blob: Vec<u8> =
        (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(data.join("sub/b.bin"), &blob).unwrap();
    let target = format!("{id}:/workspace");
    let up = gpuflow_json(&devnet, &["copy", data.to_str().unwrap(), &target]).await;
    assert_eq!(up["with"], "rsync", "rsync is on both ends: {up}");
    let sum = |path: &str| format!("md5sum < {path}");
    let local_sum = std::process::Command::new("sh")
        .args(["-c", &sum(data.join("sub/b.bin").to_str().unwrap())])
        .output()
        .unwrap();
    let local_sum = String::from_utf8(local_sum.stdout).unwrap().trim().to_owned();
    let remote_command = sum("/workspace/data/sub/b.bin");
    let remote_sum = || ssh(&devnet, id, &remote_command);
    assert_eq!(remote_sum().await.as_deref(), Some(local_sum.as_str()));
    let alpha = ssh(&devnet, id, "cat /workspace/data/a.txt").await;
    assert_eq!(alpha.as_deref(), Some("alpha"));
    ssh(&devnet, id, "truncate -s 1000000 /workspace/data/sub/b.bin").await.expect("ssh runs");
    gpuflow_json(&devnet, &["copy", data.to_str().unwrap(), &target]).await;
    assert_eq!(remote_sum().await.as_deref(), Some(local_sum.as_str()), "copied again, whole");

    // Results down with scp, which needs nothing but the SSH server.
    ssh(&devnet, id, "mkdir -p /workspace/out && echo result > /workspace/out/r.txt")
        .await
        .expect("ssh runs");
    let down = dir.path().join("down");
    let from = format!("{id}:/workspace/out");
    let copied =
        gpuflow_json(&devnet, &["copy", &from, down.to_str().unwrap(), "--with", "scp"]).await;
    assert_eq!(copied["with"], "scp");
    assert_eq!(std::fs::read_to_string(down.join("r.txt")).unwrap(), "result\n");
    let neither = gpuflow(&devnet, &["copy", "a", "b"]).await;
    assert!(!neither.ok && neither.stderr.contains("RENTAL:PATH"), "{}", neither.stderr);

    let container = container_of(&devnet, id).await;
    stop_and_see_removed(&devnet, id, &container).await;
    devnet.shutdown().await;
}

/// The image pulls of `image` the engine recorded since unix time `since`.
async fn pulls(image: &str, since: u64) -> usize {
    let until = (gpuflow_protocol::unix_now() + 1).to_string();
    let (since, filter) = (since.to_string(), format!("image={image}"));
    let args = ["events", "--since", &since, "--until", &until, "--filter", "event=pull"];
    let listed = docker(&[&args[..], &["--filter", &filter, "--format", "{{.ID}}"]].concat())
        .await
        .expect("the engine lists its events");
    listed.lines().filter(|line| *line == image).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pulled_ahead_is_offered_ready_and_starts_without_a_pull() {
    // An image name of this test's own in the local registry, so that the engine's pull
    // events of it are this agent's only.
    let base = test_image();
    let repository = base.rsplit_once('/').map(|(registry, _)| registry).expect("a registry");
    let tag = format!("{}-{}", std::process::id(), gpuflow_protocol::unix_now());
    let image = format!("{repository}/gpuflow/ahead:{tag}");
    docker(&["pull", &base]).await.expect("pulling the test image from the local registry");
    docker(&["tag", &base, &image]).await.expect("tagging the test image");
    docker(&["push", &image]).await.expect("pushing to the local registry");
    docker(&["rmi", &image]).await.expect("untagging it again");

    let dir = tempfile::tempdir().unwrap();
    let public_key = key_pair(dir.path());
    let since = gpuflow_protocol::unix_now();
    let options = DevnetOptions {
        docker_image: Some(image.clone()),
        ..DevnetOptions::for_checkout(dir.path().join("devnet")).unwrap()
    };
    let (devnet, _) = start_with(options).await;

    // The agent pulls its image at start and lists it in its offer once it is there.
    let listed = eventually(&devnet, "the pulled image in the offer", RUNNING, || async {
        let offer = gpuflow_json(&devnet, &["offer", &devnet.offer_id]).await;
        let images = offer["images"].as_array()?.clone();
        images.iter().any(|listed| listed == image.as_str()).then_some(images)
    })
    .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(pulls(&image, since).await, 1, "the agent pulled its image once, at start");

    // A rental of it starts from the machine's copy: no second pull.
    let rented = rent_gpu(&devnet, &public_key, "1", &image).await;
    let id = rented["rental_id"].as_u64().unwrap();
    assert_eq!(ssh(&devnet, id, "true").await.as_deref(), Some(""));
    assert_eq!(pulls(&image, since).await, 1, "the rental pulled the image again");

    let container = container_of(&devnet, id).await;
    stop_and_see_removed(&devnet, id, &container).await;
    devnet.shutdown().await;
    let _ = docker(&["rmi", &image]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_fills_the_rental_and_says_what_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let public_key = key_pair(dir.path());
    let (devnet, _) = docker_devnet(dir.path()).await;

    // An image without an SSH server cannot take a key: refused before anything moves.
    let no_ssh = ["rent", &devnet.offer_id, "--hours", "1", "--template", "vllm", "--ssh-key"];
    let refused = gpuflow(&devnet, &[&no_ssh[..], &[&public_key, "--yes"]].concat()).await;
    assert!(!refused.ok && refused.stderr.contains("no SSH server"), "{}", refused.stderr);

    // The Jupyter template on the local test image (no internet here), its server stood in
    // for by python's: the template's port, token and what to open are the renter's.
    let stand_in = "mkdir -p /srv/lab && cd /srv && exec python3 -m http.server 8888";
    let args = [
        "rent",
        &devnet.offer_id,
        "--hours",
        "1",
        "--gpus",
        "1",
        "--template",
        "pytorch-jupyter",
        "--image",
        &test_image(),
        "--cmd",
        stand_in,
        "--ssh-key",
        &public_key,
        "--wait",
        &RUNNING.as_secs().to_string(),
        "--yes",
    ];
    let rented = gpuflow_json(&devnet, &args).await;
    assert_eq!(rented["workload"]["state"], "running", "{rented}");
    assert_eq!(rented["template"], "pytorch-jupyter");
    let id = rented["rental_id"].as_u64().unwrap();
    let port = rented["workload"]["ports"][0]["host"].as_u64().expect("the template's port");
    assert_eq!(rented["workload"]["ports"][0]["container"], 8888);
    let url = rented["open"][0]["url"].as_str().expect("what to open").to_owned();
    let token = url.rsplit_once("token=").map(|(_, token)| token.to_owned()).unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}/lab?token={token}"));
    assert_eq!(token.len(), 32, "{url}");
    let in_container = ssh(&devnet, id, "echo $JUPYTER_TOKEN").await;
    assert_eq!(in_container.as_deref(), Some(token.as_str()), "the token the container has");
    eventually(&devnet, "the template's page to open", RUNNING, || {
        let url = url.clone();
        async move { reqwest::get(&url).await.ok()?.error_for_status().ok().map(|_| ()) }
    })
    .await;

    let container = container_of(&devnet, id).await;
    stop_and_see_removed(&devnet, id, &container).await;
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_ten_minutes_are_announced_and_the_logs_end_with_the_rental() {
    let dir = tempfile::tempdir().unwrap();
    let public_key = key_pair(dir.path());
    let (devnet, _) = docker_devnet(dir.path()).await;
    // Six minutes: in the last ten from the start.
    let rented = rent_gpu(&devnet, &public_key, "0.1", &test_image()).await;
    let id = rented["rental_id"].as_u64().unwrap();
    let id_text = id.to_string();

    // The renter's commands say so, with amounts in the token's symbol.
    let status = gpuflow(&devnet, &["status", &id_text]).await;
    assert!(status.stdout.contains("less than 10 minutes left"), "{}", status.stdout);
    assert!(status.stdout.contains(" mUSDC/h ("), "the mock token's symbol: {}", status.stdout);
    let listed = gpuflow_json(&devnet, &["rentals"]).await;
    let mine = listed.as_array().unwrap().iter().find(|r| r["rental_id"] == id).cloned().unwrap();
    assert_eq!(
        (mine["gpu"].as_str(), mine["gpus"].as_u64()),
        (Some("NVIDIA GeForce RTX 4090"), Some(1))
    );
    assert_eq!(mine["image"], test_image().as_str());
    assert!(mine["left"].as_u64().is_some_and(|left| left <= 360), "{mine}");
    let table = gpuflow(&devnet, &["rentals"]).await.stdout;
    assert!(table.contains("1 × RTX 4090") && table.contains("warning: rental"), "{table}");

    // The machine says so too: in a file, and to a login shell.
    let warning = eventually(&devnet, "the warning in the container", RUNNING, || async {
        ssh(&devnet, id, "cat /etc/gpuflow/warning").await.filter(|w| w.contains("ends in"))
    })
    .await;
    assert!(warning.contains(&format!("gpuflow extend {id}")), "{warning}");
    let login = ssh(&devnet, id, "sh -lc true 2>&1").await.unwrap_or_default();
    assert!(login.contains("ends in"), "a login shell is told: {login}");
    // An extension past the last ten minutes takes the warning back.
    gpuflow_json(&devnet, &["extend", &id_text, "--hours", "1", "--yes"]).await;
    let gone = eventually(&devnet, "the warning to go", RUNNING, || async {
        ssh(&devnet, id, "test -e /etc/gpuflow/warning || echo gone").await.filter(|g| g == "gone")
    })
    .await;
    assert_eq!(gone, "gone");

    // `logs -f` follows the rental and ends with it.
    let home = renter_home(&devnet);
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow");
    let mut follow = tokio::process::Command::new(&bin)
        .args(["logs", &id_text, "-f"])
        .envs(devnet.env())
        .env("XDG_CONFIG_HOME", &home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    gpuflow_json(&devnet, &["stop", &id_text]).await;
    let ended = tokio::time::timeout(RUNNING, follow.wait()).await;
    let ended = ended.expect("logs -f ends once the rental has ended").unwrap();
    assert!(ended.success(), "logs -f exits cleanly at the rental's end");
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_outlives_its_rental_for_the_grace_period_and_no_longer() {
    let dir = tempfile::tempdir().unwrap();
    let public_key = key_pair(dir.path());
    // Volumes are kept 72 s after their last rental.
    let options = DevnetOptions {
        docker_image: Some(test_image()),
        provider_args: vec!["--volume-grace-hours".into(), "0.02".into()],
        ..DevnetOptions::for_checkout(dir.path().join("devnet")).unwrap()
    };
    let (devnet, _escrow) = start_with(options).await;
    let offer = gpuflow_json(&devnet, &["offer", &devnet.offer_id]).await;
    assert_eq!(offer["volume_grace_secs"], 72, "the offer shows the grace period");
    let volumes = || async { gpuflow_json(&devnet, &["volumes"]).await };

    // The first rental with the volume writes into it, mounted at /workspace.
    let image = test_image();
    let with_volume = ["--volume", "data"];
    let first = rent_gpu_with(&devnet, &public_key, "1", &image, &with_volume).await;
    let first_id = first["rental_id"].as_u64().unwrap();
    let wrote =
        ssh(&devnet, first_id, "echo kept-by-$GPUFLOW_RENTAL_ID > /workspace/note.txt").await;
    assert_eq!(wrote.as_deref(), Some(""));
    let container = container_of(&devnet, first_id).await;
    let info = inspect(&container).await.expect("the rental's container exists");
    let mounts = info["Mounts"].as_array().expect("the volume is mounted").clone();
    assert_eq!(mounts.len(), 1, "the volume is the only mount: {mounts:?}");
    assert_eq!(
        (mounts[0]["Type"].as_str(), mounts[0]["Destination"].as_str()),
        (Some("volume"), Some("/workspace"))
    );
    let volume = mounts[0]["Name"].as_str().unwrap().to_owned();
    let renter = format!("{:x}", devnet.renter);
    assert!(
        volume.ends_with(&format!("-volume-{}-data", renter.trim_start_matches("0x"))),
        "{volume}"
    );
    let listed = volumes().await;
    assert_eq!(listed[0]["name"], "data", "{listed}");
    assert_eq!(listed[0]["in_use_by"], first_id, "{listed}");
    assert_eq!(listed[0]["delete_at"], Value::Null, "{listed}");

    // A second rental cannot mount it while the first has it; nothing is paid for asking.
    let args =
        ["rent", &devnet.offer_id, "--hours", "1", "--gpus", "1", "--volume", "data", "--yes"];
    let busy = gpuflow(&devnet, &args).await;
    assert!(!busy.ok);
    assert!(busy.stderr.contains(&format!("mounted in your rental {first_id}")), "{}", busy.stderr);

    // Stopped, it is kept for the grace period from the stop...
    let stopped = gpuflow_json(&devnet, &["stop", &first_id.to_string()]).await;
    let stopped_at = stopped["stopped_at"].as_u64().unwrap();
    let kept = eventually(&devnet, "the volume to be released", RUNNING, || async {
        let listed = volumes().await;
        listed[0]["delete_at"].as_u64().map(|at| (at, listed))
    })
    .await;
    let (delete_at, listed) = kept;
    assert_eq!(listed[0]["in_use_by"], Value::Null, "{listed}");
    assert!(
        (stopped_at + 72..=stopped_at + 72 + 30).contains(&delete_at),
        "{delete_at} vs {stopped_at}"
    );

    // ...and the same renter renting the same machine again finds its file.
    let second = rent_gpu_with(&devnet, &public_key, "1", &image, &with_volume).await;
    let second_id = second["rental_id"].as_u64().unwrap();
    let note = ssh(&devnet, second_id, "cat /workspace/note.txt").await;
    assert_eq!(note.as_deref(), Some(format!("kept-by-{first_id}").as_str()));
    assert_eq!(volumes().await[0]["in_use_by"], second_id);

    // Once the grace period after the last rental passed, the volume is gone.
    let container = container_of(&devnet, second_id).await;
    stop_and_see_removed(&devnet, second_id, &container).await;
    eventually(&devnet, "the volume to be deleted", Duration::from_secs(72 + 120), || async {
        let gone = docker(&["volume", "inspect", &volume]).await.is_err();
        (gone && volumes().await.as_array().is_some_and(Vec::is_empty)).then_some(())
    })
    .await;
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_starts_a_container_with_a_gpu_request_on_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, _escrow) = docker_devnet(dir.path()).await;
    let devnet_dir = devnet.provider_log.parent().unwrap().to_owned();
    let gpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/devnet-gpus.json");
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider");
    let image = test_image();
    let out = tokio::process::Command::new(&bin)
        .args(["doctor", "--json", "--runtime", "docker", "--image", &image])
        .args([
            "--ssh-host",
            "127.0.0.1",
            "--price-per-hour",
            "0.36",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .arg("--simulate-gpus")
        .arg(&gpus)
        .arg("--data-dir")
        .arg(devnet_dir.join("provider"))
        .envs(devnet.env())
        .env("XDG_CONFIG_HOME", devnet_dir.join("doctor-config"))
        .output()
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("doctor printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
    });
    assert!(out.status.success() && report["ok"] == true, "{report}");
    let docker_check = report["checks"].as_array().unwrap().iter().find(|c| c["check"] == "docker");
    let detail = docker_check.unwrap()["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("ran {image} with GPU GPU-")), "{detail}");
    // The test container is gone.
    let left =
        docker(&["ps", "-a", "--filter", "name=gpuflow-doctor", "--format", "{{.Names}}"]).await;
    assert_eq!(left.unwrap(), "", "the doctor's container was left behind");
    devnet.shutdown().await;
}
