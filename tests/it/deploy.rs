//! What operators install, checked as they would use it: the systemd units of
//! `deploy/systemd/` pass `systemd-analyze verify` and agree with the example configs of
//! `deploy/examples/`, which the binaries read; the node image of `deploy/node.Dockerfile`
//! builds on a real engine, offline, and its container answers `/healthz` and reports
//! itself healthy.
//!
//! `make test` installs `systemd-analyze` and provides the engine and the base image
//! (`tests/docker/engine.sh`); without them these tests fail, saying so.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use super::docker::{docker, test_image};

/// How long the node's container gets to answer and to be reported healthy.
const HEALTHY: Duration = Duration::from_secs(60);

/// A file of the checkout, by its path from the root.
fn checkout(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A built binary of this checkout.
fn built(name: &str) -> PathBuf {
    let path = gpuflow_devnet::bin_dir().unwrap().join(name);
    assert!(path.is_file(), "{} is missing; build the binaries first", path.display());
    path
}

/// The values of `key` in a unit file, in order.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .collect()
}

/// `key` of an example config, as a string.
fn example_value(example: &str, key: &str) -> String {
    let text = std::fs::read_to_string(checkout(example)).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{example}: {e}"));
    let value = table.get(key).unwrap_or_else(|| panic!("{example} sets no `{key}`"));
    value.as_str().unwrap_or_else(|| panic!("{example}: `{key}` is not a string")).to_owned()
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify_and_match_the_examples() {
    let dir = tempfile::tempdir().unwrap();
    for (binary, run, example) in [
        ("gpuflow-node", "--config /etc/gpuflow/node.toml", "deploy/examples/node.toml"),
        (
            "gpuflow-provider",
            "run --config /etc/gpuflow/provider.toml",
            "deploy/examples/provider.toml",
        ),
    ] {
        let name = format!("{binary}.service");
        let unit = std::fs::read_to_string(checkout(&format!("deploy/systemd/{name}"))).unwrap();

        // The binary where deploy/README.md installs it, reading the config file the
        // unit's configuration directory holds.
        let installed = format!("/usr/local/bin/{binary}");
        assert_eq!(unit_values(&unit, "ExecStart"), [format!("{installed} {run}")], "{name}");
        assert_eq!(unit_values(&unit, "ConfigurationDirectory"), ["gpuflow"], "{name}");
        // The example's data directory is the state directory: with ProtectSystem=strict
        // it is the only place the service may write.
        let state = unit_values(&unit, "StateDirectory");
        assert_eq!(state.len(), 1, "{name} has one state directory");
        assert_eq!(example_value(example, "data_dir"), format!("/var/lib/{}", state[0]), "{name}");

        // `verify` needs the ExecStart binary to exist: a copy of the unit runs the
        // built one. Unknown keys and bad values are only warnings for it (exit 0), so
        // any output at all fails the test.
        let copy = dir.path().join(&name);
        let binary_path = built(binary);
        std::fs::write(&copy, unit.replace(&installed, &binary_path.display().to_string()))
            .unwrap();
        let out =
            Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap_or_else(|e| {
                panic!(
                    "running systemd-analyze: {e}; it is missing: `make test` installs it \
                     (tests/docker/engine.sh up), by hand: apt-get install systemd"
                )
            });
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {name}:\n{said}"
        );
    }
}

#[test]
fn the_provider_reads_the_example_config() {
    // `undrain` reads the config as `run` does (every key known, every value of its type)
    // and names the data directory it found there, without writing anything.
    let out = Command::new(built("gpuflow-provider"))
        .args(["undrain", "--config"])
        .arg(checkout("deploy/examples/provider.toml"))
        .env_remove("GPUFLOW_DATA_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("/var/lib/gpuflow/provider was not draining"), "{stdout}");
}

/// Removes the image and its container when the test ends, passed or not.
struct Cleanup {
    image: String,
    container: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker").args(args).output();
        };
        if let Some(container) = &self.container {
            quiet(&["rm", "--force", "--volumes", container]);
        }
        quiet(&["rmi", "--force", &self.image]);
    }
}

/// Polls `check` every 200 ms until it yields; after `timeout`, the last error.
async fn within<T, F: std::future::Future<Output = Result<T, String>>>(
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(last) if tokio::time::Instant::now() > deadline => {
                return Err(format!("timed out after {timeout:?}; last: {last}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_image_builds_offline_and_its_container_is_healthy() {
    let base = test_image();
    // The build context holds the binary alone, as deploy/node.Dockerfile says.
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(built("gpuflow-node"), context.path().join("gpuflow-node")).unwrap();
    let tag = format!("{}-{}", std::process::id(), gpuflow_protocol::unix_now());
    let mut cleanup = Cleanup { image: format!("gpuflow-test/node:{tag}"), container: None };
    let image = cleanup.image.clone();
    let dockerfile = checkout("deploy/node.Dockerfile").display().to_string();
    let base_arg = format!("BASE={base}");
    let context_path = context.path().display().to_string();
    let build = ["build", "--quiet", "--build-arg", &base_arg, "-f", &dockerfile, "-t", &image];
    docker(&[&build[..], &[&context_path]].concat())
        .await
        .unwrap_or_else(|e| panic!("building the node image on {base}: {e}"));

    // The example config, mounted as an operator would; the image's variables keep the
    // data in the volume and the API where the health check asks.
    let config =
        format!("{}:/etc/gpuflow/node.toml:ro", checkout("deploy/examples/node.toml").display());
    let run = [
        "run",
        "--detach",
        "--health-interval",
        "1s",
        "--publish",
        "127.0.0.1::8080",
        "--volume",
        &config,
        &image,
        "--config",
        "/etc/gpuflow/node.toml",
    ];
    let container = docker(&run).await.unwrap_or_else(|e| panic!("starting {image}: {e}"));
    cleanup.container = Some(container.clone());
    // A node that stopped (a config it refused, say) fails the test at once, with its log.
    let running = || async {
        let state = docker(&["inspect", "--format", "{{.State.Running}}", &container]).await;
        if state.as_deref() != Ok("true") {
            let log = docker(&["logs", &container]).await.unwrap_or_else(|e| e);
            panic!("the node's container is not running ({state:?}); its log:\n{log}");
        }
    };

    let port = docker(&["port", &container, "8080/tcp"]).await.unwrap();
    let url = format!("http://{}/healthz", port.lines().next().unwrap());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let health = within(HEALTHY, || async {
        running().await;
        let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
        match response.status().is_success() {
            true => response.json::<serde_json::Value>().await.map_err(|e| e.to_string()),
            false => Err(response.status().to_string()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(health["status"], "ok", "{health}");

    // The image's own HEALTHCHECK, run by the engine, agrees.
    let status = ["inspect", "--format", "{{.State.Health.Status}}", &container];
    within(HEALTHY, || async {
        running().await;
        match docker(&status).await?.as_str() {
            "healthy" => Ok(()),
            "unhealthy" => {
                let checks = ["inspect", "--format", "{{json .State.Health.Log}}", &container];
                panic!("the engine reports the node unhealthy: {:?}", docker(&checks).await)
            }
            other => Err(other.to_owned()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("the engine's health status of the container: {e}"));

    // Not root, and the identity and index are in the volume.
    let user = docker(&["exec", &container, "id", "-un"]).await.unwrap();
    assert_eq!(user, "gpuflow");
    let data = docker(&["exec", &container, "ls", "/data"]).await.unwrap();
    assert!(data.contains("identity.key") && data.contains("index.sqlite"), "{data}");
    let volumes = docker(&["inspect", "--format", "{{json .Config.Volumes}}", &container]).await;
    assert!(volumes.as_deref().is_ok_and(|v| v.contains("\"/data\"")), "{volumes:?}");
    let ports = docker(&["inspect", "--format", "{{json .Config.ExposedPorts}}", &container])
        .await
        .unwrap();
    for exposed in ["8080/tcp", "4001/tcp", "4001/udp"] {
        assert!(ports.contains(exposed), "{exposed} is not exposed: {ports}");
    }
}
