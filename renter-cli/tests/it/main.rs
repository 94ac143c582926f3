//! The real `gpuflow` binary against a real devnet (anvil, node, provider agent), with a
//! throw-away `XDG_CONFIG_HOME` per test so wallets and profiles never leak between runs.
//!
//! Every command runs with a cleared environment plus exactly the variables a test
//! gives it, and with stdin closed, as in a script.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::primitives::{Address, U256};
use gpuflow_devnet::{AgentSpec, DEVNET_PASSWORD, Devnet, DevnetOptions, RENTER_FUNDS};
use gpuflow_escrow::Escrow;
use serde_json::Value;

/// 0.36 tokens per hour is 100 units per second on the devnet.
const RATE: u64 = 100;
/// Longest wait for an agent, an offer or a workload.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Anvil's fourth well-known development key: the devnet's funded renter.
const RENTER_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "failed:\n{}\n{}", self.stdout, self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    fn ok(&self) {
        assert_eq!(self.code, 0, "failed:\n{}\n{}", self.stdout, self.stderr);
    }

    /// Asserts the exit code and that stderr says `needle`.
    fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "expected exit {code}:\n{}\n{}", self.stdout, self.stderr);
        assert!(self.stderr.contains(needle), "stderr lacks `{needle}`:\n{}", self.stderr);
    }

    /// Asserts a `--json` run failed with `code` and a message saying `needle`, and returns
    /// the error document it printed on stdout.
    fn json_error(&self, code: i32, needle: &str) -> Value {
        self.fails(code, needle);
        let doc: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON error ({e}):\n{}\n{}", self.stdout, self.stderr));
        assert_eq!(doc["error"]["code"], code, "{doc}");
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "the JSON error lacks `{needle}`: {doc}");
        doc
    }
}

/// A provider agent of the test's own beside the devnet's: its own GPU (so the node sees
/// no UUID conflict), payout key, data directory and flags.
struct Agent {
    child: tokio::process::Child,
    offer: String,
    data: PathBuf,
    log: PathBuf,
}

impl Agent {
    async fn start(devnet: &Devnet, dir: &Path, name: &str, flags: &[&str]) -> Self {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let gpus = dir.join("gpus.json");
        std::fs::write(
            &gpus,
            format!(
                r#"[{{"name":"NVIDIA GeForce RTX 4090","uuid":"GPU-{name}","memory_bytes":25757220864,
                    "pci_bus_id":"00000000:01:00.0","compute_capability":"8.9",
                    "driver_version":"550.54.14","cuda_version":"12.4"}}]"#
            ),
        )
        .unwrap();
        let log = dir.join("agent.log");
        let spec = AgentSpec {
            key: alloy::signers::local::PrivateKeySigner::random().to_bytes().to_string(),
            config_home: dir.join("config"),
            region: "test".into(),
            price_per_hour: (!flags.contains(&"--price-per-hour")).then(|| "0.36".into()),
            workload: None,
            poll_interval_ms: None,
            heartbeat_interval_secs: None,
            extra: flags.iter().map(Into::into).collect(),
            ..devnet.agent(&dir.join("data"), &gpus)
        };
        let (child, ready) = spec.spawn(&log, TIMEOUT).await.unwrap_or_else(|e| {
            panic!(
                "agent {name} ({}): {e:#}\n{}",
                spec.bin().display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let offer = gpuflow_devnet::ready_field(&ready, "offer").unwrap();
        let agent = Self { child, offer, data: dir.join("data"), log };
        agent.wait_listed(devnet, true).await;
        agent
    }

    /// Waits until the devnet's node lists this agent's offer (`listed`), or no longer does.
    async fn wait_listed(&self, devnet: &Devnet, listed: bool) {
        if let Err(e) = devnet.wait_listed(&self.offer, listed, TIMEOUT).await {
            panic!("{e:#}; agent log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
    }
}

/// Runs `gpuflow args` with only `env` (and PATH) set.
async fn gpuflow(env: &[(&str, String)], args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gpuflow"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .await
        .expect("the gpuflow binary runs");
    Run {
        code: out.status.code().expect("gpuflow exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Makes the keystores a test writes cheap to open (test-only, insecure).
const LIGHT_KDF: &str = "GPUFLOW_TEST_LIGHT_KDF";

/// The devnet's chain and node, a private config directory, and no wallet chosen.
fn env_for(devnet: &Devnet, config: &Path) -> Vec<(&'static str, String)> {
    vec![
        (LIGHT_KDF, "1".to_owned()),
        ("GPUFLOW_RPC", devnet.rpc_url.clone()),
        ("GPUFLOW_ESCROW", devnet.escrow.to_string()),
        ("GPUFLOW_NODE", devnet.node_url.clone()),
        ("GPUFLOW_PASSWORD", DEVNET_PASSWORD.to_owned()),
        ("XDG_CONFIG_HOME", config.display().to_string()),
    ]
}

async fn start(dir: &Path) -> (Devnet, Escrow) {
    let devnet = Devnet::start(DevnetOptions::for_checkout(dir.join("devnet")).unwrap())
        .await
        .expect("devnet starts; run `cargo build --workspace --bins` first");
    let escrow =
        Escrow::new(gpuflow_escrow::connect(&devnet.rpc_url, None).unwrap(), devnet.escrow)
            .await
            .unwrap();
    (devnet, escrow)
}

/// Sets `account`'s ETH balance on anvil; returns what it was.
async fn set_eth(escrow: &Escrow, account: Address, wei: U256) -> U256 {
    use alloy::providers::Provider;
    let chain = escrow.provider();
    let was = chain.get_balance(account).await.unwrap();
    chain.raw_request::<_, ()>("anvil_setBalance".into(), (account, wei)).await.unwrap();
    was
}

fn amount(value: &Value) -> U256 {
    value.as_str().unwrap_or_else(|| panic!("{value} is not a decimal string")).parse().unwrap()
}

#[tokio::test]
async fn without_a_chain_settings_wallets_and_unreachable_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let mut env = vec![
        ("XDG_CONFIG_HOME", config.display().to_string()),
        ("GPUFLOW_PASSWORD", "correct horse".to_owned()),
    ];

    // Wallets: none, then two; the first by name is the default.
    assert_eq!(gpuflow(&env, &["--json", "wallet", "list"]).await.json(), Value::Array(vec![]));
    gpuflow(&env, &["rent", "00000000000000ff", "--hours", "1"])
        .await
        .fails(2, "gpuflow wallet new");
    let created = gpuflow(&env, &["--json", "wallet", "new", "--name", "zeta"]).await.json();
    // Without the test-only setting a new keystore gets geth's standard scrypt cost.
    let zeta = std::fs::read_to_string(config.join("gpuflow/keystores/zeta.json")).unwrap();
    let kdf = &serde_json::from_str::<Value>(&zeta).unwrap()["crypto"]["kdfparams"];
    assert_eq!(
        (&kdf["n"], &kdf["r"], &kdf["p"], &kdf["dklen"]),
        (&262144.into(), &8.into(), &1.into(), &32.into()),
        "{kdf}"
    );
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&config.join("gpuflow/keystores/zeta.json")), 0o600);
    assert_eq!(mode(&config.join("gpuflow/keystores")), 0o700);
    // The rest of the test writes and opens keystores cheaply.
    env.push((LIGHT_KDF, "1".to_owned()));
    env.push(("RENTER_KEY", RENTER_KEY.to_owned()));
    let imported = gpuflow(
        &env,
        &["--json", "wallet", "import", "--key-env", "RENTER_KEY", "--name", "alpha"],
    )
    .await
    .json();
    let renter: Address = "0x90F79bf6EB2c4f870365E785982E1f101E93b906".parse().unwrap();
    assert_eq!(imported["address"].as_str().unwrap().parse::<Address>().unwrap(), renter);
    let list = gpuflow(&env, &["--json", "wallet", "list"]).await.json();
    let names: Vec<_> = list.as_array().unwrap().iter().map(|w| w["name"].clone()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(list[0]["default"], true);
    let address = |v: Value| v["address"].as_str().unwrap().parse::<Address>().unwrap();
    assert_eq!(address(gpuflow(&env, &["--json", "wallet", "address"]).await.json()), renter);
    assert_eq!(
        address(gpuflow(&env, &["--json", "wallet", "address", "--wallet", "zeta"]).await.json()),
        address(created)
    );
    gpuflow(&env, &["wallet", "new", "--name", "zeta"]).await.fails(2, "already exists");
    // Empty and short passwords are refused, with the minimum named, and nothing is written.
    for short in ["", "a", "seven77"] {
        let mut weak = env.clone();
        weak.retain(|(k, _)| *k != "GPUFLOW_PASSWORD");
        weak.push(("GPUFLOW_PASSWORD", short.to_owned()));
        gpuflow(&weak, &["wallet", "new", "--name", "weak"])
            .await
            .fails(2, "at least 8 characters");
        let import = ["--json", "wallet", "import", "--key-env", "RENTER_KEY", "--name", "weak"];
        gpuflow(&weak, &import).await.json_error(2, "at least 8 characters");
        assert!(!config.join("gpuflow/keystores/weak.json").exists());
    }
    gpuflow(&env, &["wallet", "address", "--wallet", "nope"])
        .await
        .fails(3, "no wallet named `nope`");

    // No secret reaches the output, and the keystore is geth's format with its address.
    let keystore = std::fs::read_to_string(config.join("gpuflow/keystores/alpha.json")).unwrap();
    let key_hex = RENTER_KEY.trim_start_matches("0x");
    assert!(!keystore.contains(key_hex));
    let keystore: Value = serde_json::from_str(&keystore).unwrap();
    assert_eq!(keystore["crypto"]["kdf"], "scrypt");
    assert_eq!(keystore["address"], "90f79bf6eb2c4f870365e785982e1f101e93b906");
    let everything = gpuflow(&env, &["wallet", "list"]).await;
    assert!(!everything.stdout.contains(key_hex) && !everything.stderr.contains("correct horse"));

    // A key typed where a variable name, a keystore path or a wallet name belongs is never
    // echoed: the error says the flag takes the NAME of a variable.
    for key in [RENTER_KEY, key_hex] {
        for args in [
            &["--key-env", key, "wallet", "address"][..],
            &["--json", "--key-env", key, "wallet", "address"],
            &["wallet", "import", "--key-env", key, "--name", "pasted"],
            &["--key-env", key, "rent", "00000000000000ff", "--hours", "1"],
        ] {
            let run = gpuflow(&env, args).await;
            run.fails(2, "looks like a secret");
            assert!(run.stderr.contains("NAME of an environment variable"), "{}", run.stderr);
            assert!(!run.stdout.contains(key_hex) && !run.stderr.contains(key_hex), "{args:?}");
        }
        let shown = gpuflow(&env, &["--json", "--key-env", key, "config"]).await;
        assert!(!shown.stdout.contains(key_hex), "{}", shown.stdout);
        let shown = gpuflow(&env, &["--key-env", key, "config"]).await;
        assert!(shown.code == 0 && !shown.stdout.contains(key_hex), "{}", shown.stdout);
        for args in [
            &["--keystore", key, "wallet", "address"][..],
            &["--wallet", key_hex, "wallet", "address"],
            &["wallet", "new", "--name", key_hex],
        ] {
            let run = gpuflow(&env, args).await;
            assert_ne!(run.code, 0, "{args:?}");
            assert!(!run.stdout.contains(key_hex) && !run.stderr.contains(key_hex), "{args:?}");
        }
    }
    let run = gpuflow(&env, &["--key-env", "my key", "wallet", "address"]).await;
    run.fails(2, "NAME of an environment variable");
    assert!(!run.stderr.contains("my key"), "{}", run.stderr);

    // A keystore file (geth's format) imports as its key; a raw key and a file at once, or
    // neither, is a usage error.
    let file = config.join("gpuflow/keystores/alpha.json").display().to_string();
    let copied =
        gpuflow(&env, &["--json", "wallet", "import", "--file", &file, "--name", "copy"]).await;
    assert_eq!(address(copied.json()), renter);
    gpuflow(&env, &["wallet", "import", "--file", &file, "--key-env", "RENTER_KEY"])
        .await
        .fails(2, "not both");
    gpuflow(&env, &["wallet", "import", "--name", "empty"]).await.fails(2, "--file PATH");

    // A wrong password is named as such.
    let mut wrong = env.clone();
    wrong.retain(|(k, _)| *k != "GPUFLOW_PASSWORD");
    wrong.push(("GPUFLOW_PASSWORD", "wrong".into()));
    let node = format!("http://127.0.0.1:{}", closed_port());
    let run = gpuflow(&wrong, &["--node", &node, "rent", "00000000000000ff", "--hours", "1"]).await;
    run.fails(2, "wrong password");
    // It says which wallet was opened, and what chose it.
    for needle in [&renter.to_string(), "alpha.json", "the first wallet"] {
        assert!(run.stderr.contains(needle), "no `{needle}` in {}", run.stderr);
    }
    wrong.push(("GPUFLOW_KEYSTORE", file.clone()));
    let run = gpuflow(&wrong, &["--node", &node, "rent", "00000000000000ff", "--hours", "1"]).await;
    run.fails(2, "from environment GPUFLOW_KEYSTORE");

    // Layers: defaults < config file < GPUFLOW_* < flags, each with its source.
    std::fs::write(
        config.join("gpuflow/config.toml"),
        "profile = \"dev\"\n[profiles.dev]\nnode = \"http://file:1\"\nrpc = \"http://file:2\"\n\
         chain_id = 7\nwallet = \"zeta\"\nfrom_block = 42\n[profiles.other]\nrpc = \"http://other:2\"\n",
    )
    .unwrap();
    let mut layered = env.clone();
    layered.push(("GPUFLOW_RPC", "http://env:2".into()));
    let shown = gpuflow(&layered, &["--json", "--chain-id", "9", "config"]).await.json();
    let s = &shown["settings"];
    assert_eq!(s["node"]["value"], "http://file:1");
    assert_eq!(s["node"]["source"], serde_json::json!({"kind": "file", "name": "dev"}));
    assert_eq!(s["rpc"]["value"], "http://env:2");
    assert_eq!(s["rpc"]["source"]["kind"], "env");
    assert_eq!(s["chain_id"]["value"], 9);
    assert_eq!(s["chain_id"]["source"]["kind"], "flag");
    assert_eq!(s["key"]["value"]["value"], "zeta");
    assert_eq!(s["from_block"]["value"], 42);
    assert_eq!(s["from_block"]["source"]["kind"], "file");
    let other = gpuflow(&env, &["--json", "--profile", "other", "config"]).await.json();
    assert_eq!(other["settings"]["rpc"]["value"], "http://other:2");
    assert_eq!(other["settings"]["node"]["source"]["kind"], "default");
    gpuflow(&env, &["--profile", "nope", "config"]).await.fails(3, "profile `nope`");
    let text = gpuflow(&env, &["config"]).await;
    assert!(text.stdout.contains("config file, profile dev"), "{}", text.stdout);
    std::fs::remove_file(config.join("gpuflow/config.toml")).unwrap();

    // Unreachable node and RPC: exit 5, the flag to fix named, nothing else attempted.
    gpuflow(&env, &["--node", &node, "search"]).await.fails(5, "cannot reach the node");
    let rpc = format!("http://127.0.0.1:{}", closed_port());
    let escrow = "0x0000000000000000000000000000000000000001";
    gpuflow(&env, &["--rpc", &rpc, "--escrow", escrow, "wallet", "balance"])
        .await
        .fails(5, "cannot reach the chain");
    gpuflow(&env, &["--rpc", &rpc, "--escrow", escrow, "status", "1"]).await.fails(5, "--rpc");
    gpuflow(&env, &["status", "1"]).await.fails(2, "no escrow address");

    // Completions, and examples on every command's help.
    for shell in ["bash", "zsh", "fish"] {
        let script = gpuflow(&env, &["completions", shell]).await;
        assert!(
            script.code == 0 && script.stdout.contains("gpuflow"),
            "{shell}: {}",
            script.stderr
        );
    }
    for command in [
        &["search"][..],
        &["offer"],
        &["rent"],
        &["rentals"],
        &["status"],
        &["extend"],
        &["stop"],
        &["config"],
        &["completions"],
        &["wallet", "new"],
        &["wallet", "import"],
        &["wallet", "list"],
        &["wallet", "address"],
        &["wallet", "balance"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = gpuflow(&env, &args).await;
        assert!(help.stdout.contains("Examples:"), "{command:?} --help has no examples");
    }
    let help = gpuflow(&env, &["--help"]).await;
    assert!(help.stdout.contains("Exit codes:"));
    let help = gpuflow(&env, &["rent", "--help"]).await;
    assert!(help.stdout.contains("--image pytorch/") && help.stdout.contains("--ssh-key ~/.ssh/"));

    // The SSH key file is checked before anything else, and a private key is never read.
    let rent = ["rent", "00000000000000ff", "--hours", "1", "--ssh-key"];
    let missing = dir.path().join("missing.pub").display().to_string();
    gpuflow(&env, &[&rent[..], &[&missing]].concat()).await.fails(2, "ssh-keygen -t ed25519");
    let private = dir.path().join("id_ed25519");
    std::fs::write(&private, "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n").unwrap();
    let run =
        gpuflow(&env, &[&["--json"][..], &rent, &[&private.display().to_string()]].concat()).await;
    run.json_error(2, "not a public key file");
    assert!(!run.stdout.contains("c2VjcmV0") && !run.stderr.contains("c2VjcmV0"));
    gpuflow(&env, &["rent", "00000000000000ff", "--hours", "1", "--image", "a b"])
        .await
        .fails(2, "--image");
    gpuflow(&env, &["rent", "--hours"]).await.fails(2, "--hours");
}

/// A tiny HTTP server on an ephemeral port that answers every request with `response`;
/// its thread ends with the test process.
fn serve(response: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

fn http_response(status: &str, content_type: Option<&str>, body: &str) -> String {
    let content_type = content_type.map(|t| format!("Content-Type: {t}\r\n")).unwrap_or_default();
    format!(
        "HTTP/1.1 {status}\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn a_url_that_is_not_a_gpuflow_node_is_named_with_what_answered() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("XDG_CONFIG_HOME", dir.path().display().to_string())];
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body>{}</body></html>",
        "<p>filler text of a long page</p>\n".repeat(200)
    );
    let html = serve(http_response("200 OK", Some("text/html; charset=utf-8"), &page));
    let missing = serve(http_response("404 Not Found", None, ""));
    let broken = serve(http_response("500 Internal Server Error", Some("text/plain"), ""));
    let other_api = serve(http_response("200 OK", Some("application/json"), r#"{"ok":true}"#));
    for (url, needles) in [
        (&html, &["HTTP 200 OK", "text/html", "Welcome to nginx!"][..]),
        (&missing, &["HTTP 404 Not Found", "content type none", "an empty body"]),
        (&broken, &["HTTP 500 Internal Server Error", "text/plain", "an empty body"]),
    ] {
        for args in [
            &["--node", url, "search"][..],
            &["--node", url, "offer", "00000000000000ff"],
            &["--json", "--node", url, "search", "gpu_ram>=24"],
        ] {
            let run = gpuflow(&env, args).await;
            run.fails(5, &format!("{url} does not answer as a gpuflow node"));
            for needle in needles.iter().chain(&["check --node / GPUFLOW_NODE"]) {
                assert!(run.stderr.contains(needle), "{args:?}: no `{needle}` in {}", run.stderr);
            }
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "one line: {}", run.stderr);
            assert!(
                !run.stderr.contains("<html") && !run.stderr.contains("filler"),
                "{}",
                run.stderr
            );
            if args[0] == "--json" {
                run.json_error(5, "does not answer as a gpuflow node");
            }
        }
    }
    gpuflow(&env, &["--node", &other_api, "search"])
        .await
        .fails(5, "does not answer as a gpuflow node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_rent_extend_stop_with_exact_money() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;
    let mut env = env_for(&devnet, &dir.path().join("config"));
    env.push(("RENTER_KEY", RENTER_KEY.to_owned()));

    let imported = gpuflow(
        &env,
        &["--json", "wallet", "import", "--key-env", "RENTER_KEY", "--name", "renter"],
    )
    .await
    .json();
    assert_eq!(imported["address"].as_str().unwrap().parse::<Address>().unwrap(), devnet.renter);
    let balance = gpuflow(&env, &["--json", "wallet", "balance"]).await.json();
    assert_eq!(amount(&balance["balance"]), U256::from(RENTER_FUNDS));
    assert_eq!(balance["chain_id"], devnet.chain_id);
    assert!(amount(&balance["eth_wei"]) > U256::ZERO);

    // Search: filters, ordering and limits reach the node; the table shows every column.
    let found =
        gpuflow(&env, &["--json", "search", "num_gpus>=2 dph<=0.36", "-o", "dph-"]).await.json();
    assert_eq!(found[0]["id"], devnet.offer_id.as_str());
    assert_eq!(found[0]["price_per_second"], RATE.to_string());
    assert_eq!(found[0]["verified"], false);
    let none = gpuflow(&env, &["--json", "search", "num_gpus>2"]).await.json();
    assert_eq!(none, Value::Array(vec![]));
    let limited =
        gpuflow(&env, &["--json", "search", "", "--limit", "1", "-o", "gpu_ram"]).await.json();
    assert_eq!(limited.as_array().unwrap().len(), 1);
    gpuflow(&env, &["search", "-o", "nonsense"]).await.fails(2, "nonsense");
    let table = gpuflow(&env, &["search"]).await;
    for column in ["GPU", "VRAM", "$/HOUR", "RELIAB", "UPTIME", "AGE", "REGION", "VERIFIED"] {
        assert!(table.stdout.contains(column), "no {column} in\n{}", table.stdout);
    }
    assert!(table.stdout.contains(&devnet.offer_id) && table.stdout.contains("0.36"));
    // The node scores the provider every few seconds on a devnet: today's uptime shows as
    // one bar of the history, in the table and in the JSON.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let offer = loop {
        let offer = gpuflow(&env, &["--json", "offer", &devnet.offer_id]).await.json();
        let today = offer["uptime_history"].as_array().and_then(|days| days.last().cloned());
        if today.is_some_and(|day| day["uptime"].as_f64().is_some_and(|u| u > 0.0)) {
            break offer;
        }
        assert!(tokio::time::Instant::now() < deadline, "no uptime history: {offer}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(offer["offer"]["id"], devnet.offer_id.as_str());
    let shown = gpuflow(&env, &["offer", &devnet.offer_id]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let line = shown.stdout.lines().find(|l| l.starts_with("uptime history (")).unwrap_or_default();
    assert!(line.ends_with(['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']), "{}", shown.stdout);
    gpuflow(&env, &["offer", "00000000000000ff"]).await.fails(3, "no live offer");

    // Rent with the default wallet at exactly the price cap, confirmed by --yes.
    let rented =
        gpuflow(&env, &["rent", &devnet.offer_id, "--hours", "1", "--max-price", "0.36", "--yes"])
            .await;
    assert_eq!(rented.code, 0, "{}\n{}", rented.stdout, rented.stderr);
    assert!(rented.stdout.contains("workload running"), "{}", rented.stdout);
    assert!(rented.stdout.contains("connect:"), "{}", rented.stdout);
    assert!(rented.stderr.contains("platform fee"), "{}", rented.stderr);
    let deposit = U256::from(RATE * 3600);
    assert_eq!(escrow.balance_of(devnet.renter).await.unwrap(), U256::from(RENTER_FUNDS) - deposit);

    let rentals = gpuflow(&env, &["--json", "rentals"]).await.json();
    assert_eq!(rentals.as_array().unwrap().len(), 1, "{rentals}");
    assert_eq!(rentals[0]["state"], "active");
    let id = rentals[0]["rental_id"].as_u64().unwrap();
    let id_text = id.to_string();
    // Events are read from the profile's first block on: none past the latest block.
    let later = gpuflow(&env, &["--json", "--from-block", "999999999", "rentals"]).await.json();
    assert_eq!(later, Value::Array(vec![]));
    let start = rentals[0]["start"].as_u64().unwrap();

    // Logs, signed by the renter: the workload's first line, polled within a bound.
    let want = format!("workload up for rental {id} on GPU-");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let logs = gpuflow(&env, &["--json", "logs", &id_text]).await.json();
        let lines = logs["lines"].as_array().unwrap();
        if lines.iter().any(|l| l.as_str().unwrap().starts_with(&want)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no `{want}` in the logs within 30 s: {logs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Following with --json: one object per line, the first ones already there.
    let mut follow = tokio::process::Command::new(env!("CARGO_BIN_EXE_gpuflow"))
        .args(["--json", "logs", &id_text, "-f"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(TIMEOUT, lines.next_line()).await.expect("a line in time");
    let first: Value = serde_json::from_str(&first.unwrap().expect("a line")).unwrap();
    assert_eq!(first["rental_id"], id);
    assert!(first["line"].as_str().unwrap().starts_with(&want), "{first}");
    follow.kill().await.unwrap();
    // Another wallet is not the renter: the provider refuses.
    gpuflow(&env, &["wallet", "new", "--name", "stranger"]).await.ok();
    gpuflow(&env, &["logs", &id_text, "--wallet", "stranger"])
        .await
        .fails(4, "only the rental's renter");

    // Extending asks first: with no terminal and no --yes nobody can consent.
    let before = escrow.balance_of(devnet.renter).await.unwrap();
    let extend = ["extend", &id_text, "--hours", "0.0025"];
    gpuflow(&env, &extend).await.fails(2, "--yes");
    // Past the quote's maximum (the devnet provider's 7 days): refused before anything is
    // sent, and refused by the contract too, its revert decoded into the same advice.
    gpuflow(&env, &["extend", &id_text, "--hours", "200", "--yes"])
        .await
        .fails(4, "more at most under its quote");
    let signer: alloy::signers::local::PrivateKeySigner = RENTER_KEY.parse().unwrap();
    let renters = gpuflow_escrow::connect(&devnet.rpc_url, Some(signer.clone())).unwrap();
    let renters = Escrow::new(renters, devnet.escrow).await.unwrap();
    let reverted = renters.extend(&signer, id, 200 * 3600).await.unwrap_err().to_string();
    assert!(
        reverted.contains("can be extended by at most") && reverted.contains("extend by less"),
        "{reverted}"
    );
    // Tokens but no ETH for gas.
    let eth = set_eth(&escrow, devnet.renter, U256::ZERO).await;
    let broke = gpuflow(&env, &["--json", "extend", &id_text, "--hours", "0.0025"]).await;
    let doc = broke.json_error(4, "not enough ETH for gas");
    assert!(doc["error"]["message"].as_str().unwrap().contains("No money moved"), "{doc}");
    set_eth(&escrow, devnet.renter, eth).await;
    assert_eq!(escrow.balance_of(devnet.renter).await.unwrap(), before, "no money moved");

    // Extend by 9 s at the same rate with --yes, then by 9 s more with --json (consent for
    // scripts), then stop 3 chain seconds in: exact refund. The rental was opened by permit,
    // which its deposit used up: each extension pays by permit too, in one transaction
    // (`extendWithPermit`), not an approval and an extension, and leaves no allowance.
    assert_eq!(renters.allowance(devnet.renter).await.unwrap(), U256::ZERO, "permit used up");
    use alloy::providers::Provider as _;
    let chain = gpuflow_escrow::connect(&devnet.rpc_url, None).unwrap();
    let sent_before = chain.get_transaction_count(devnet.renter).await.unwrap();
    let extended = gpuflow(&env, &[&extend[..], &["--yes"]].concat()).await;
    extended.ok();
    let sent = chain.get_transaction_count(devnet.renter).await.unwrap() - sent_before;
    assert_eq!(sent, 1, "one transaction per extension");
    assert_eq!(renters.allowance(devnet.renter).await.unwrap(), U256::ZERO, "no allowance left");
    for row in ["added time", "9s (9 s)", "cost, locked now", "900 units", "new end"] {
        assert!(extended.stderr.contains(row), "no `{row}` in\n{}", extended.stderr);
    }
    assert!(
        extended.stdout.contains(&format!("rental {id} extended by 9s")),
        "{}",
        extended.stdout
    );
    let end = rentals[0]["end"].as_u64().unwrap();
    assert_eq!(gpuflow(&env, &["--json", "rentals"]).await.json()[0]["end"], end + 9);
    assert_eq!(escrow.balance_of(devnet.renter).await.unwrap(), before - U256::from(RATE * 9));
    // --json never prompts: a script confirms with --yes, or nothing happens.
    gpuflow(&env, &[&["--json"][..], &extend].concat()).await.json_error(2, "add --yes");
    let extended = gpuflow(&env, &[&["--json"][..], &extend, &["--yes"]].concat()).await.json();
    assert_eq!(amount(&extended["cost"]), U256::from(RATE * 9));
    assert_eq!(extended["new_end"].as_u64().unwrap(), end + 18);
    let locked = deposit + U256::from(RATE * 18);
    devnet.advance_time(3).await.unwrap();
    let stopped = gpuflow(&env, &["--json", "stop", &id_text]).await.json();
    let stopped_at = stopped["stopped_at"].as_u64().unwrap();
    assert!(stopped_at >= start + 3);
    let charged = U256::from(RATE * (stopped_at - start));
    assert_eq!(amount(&stopped["charged"]), charged);
    assert_eq!(amount(&stopped["refund"]), locked - charged);
    assert_eq!(escrow.balance_of(devnet.renter).await.unwrap(), U256::from(RENTER_FUNDS) - charged);

    let status = gpuflow(&env, &["--json", "status", &id_text]).await.json();
    assert_eq!(status["active"], false);
    assert_eq!(amount(&status["refund"]), locked - charged);
    assert_eq!(gpuflow(&env, &["--json", "rentals"]).await.json(), Value::Array(vec![]));
    let all = gpuflow(&env, &["--json", "rentals", "--all"]).await.json();
    assert_eq!(all[0]["state"], "stopped");
    gpuflow(&env, &["stop", &id_text]).await.fails(4, "already stopped");
    gpuflow(&env, &["status", "42"]).await.fails(3, "rental 42 does not exist");
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_says_why_and_moves_no_money() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;
    let config = dir.path().join("config");
    let mut env = env_for(&devnet, &config);
    env.push(("GPUFLOW_KEYSTORE", devnet.renter_keystore.display().to_string()));
    let offer = devnet.offer_id.as_str();
    let funds = U256::from(RENTER_FUNDS);

    // A price cap below the offer: refused before any quote.
    gpuflow(&env, &["--json", "rent", offer, "--hours", "1", "--max-price", "0.35"])
        .await
        .json_error(4, "above your --max-price");

    // No terminal and no --yes: nobody can consent; --json never asks.
    gpuflow(&env, &["rent", offer, "--hours", "1"]).await.fails(2, "--yes");
    gpuflow(&env, &["--json", "rent", offer, "--hours", "1"])
        .await
        .json_error(2, "--json never asks, so add --yes");
    // A command line clap refuses is a JSON document too.
    gpuflow(&env, &["--json", "rent", offer]).await.json_error(2, "--hours");

    // A profile expecting another chain.
    std::fs::create_dir_all(config.join("gpuflow")).unwrap();
    std::fs::write(config.join("gpuflow/config.toml"), "[profiles.main]\nchain_id = 1\n").unwrap();
    gpuflow(&env, &["--json", "--profile", "main", "rent", offer, "--hours", "1"])
        .await
        .json_error(2, "wrong chain");

    // A fresh wallet with neither tokens nor ETH.
    let mut fresh = env.clone();
    fresh.retain(|(k, _)| *k != "GPUFLOW_KEYSTORE");
    gpuflow(&fresh, &["wallet", "new", "--name", "empty"]).await.ok();
    gpuflow(&fresh, &["--json", "rent", offer, "--hours", "1"])
        .await
        .json_error(4, "not enough tokens");

    // Tokens but no ETH for gas: refused before any quote.
    let eth = set_eth(&escrow, devnet.renter, U256::ZERO).await;
    let doc = gpuflow(&env, &["--json", "rent", offer, "--hours", "1"])
        .await
        .json_error(4, "not enough ETH for gas");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("renting for 1h 0m needs about"), "{doc}");
    assert!(
        message.contains("send ETH to it first") && message.contains("No money moved"),
        "{doc}"
    );
    set_eth(&escrow, devnet.renter, eth).await;
    assert_eq!(escrow.balance_of(devnet.renter).await.unwrap(), funds);

    // Unreachable node and RPC while renting.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    gpuflow(&env, &["--json", "--node", &closed, "rent", offer, "--hours", "1"])
        .await
        .json_error(5, "cannot reach the node");
    gpuflow(&env, &["--json", "--rpc", &closed, "rent", offer, "--hours", "1"])
        .await
        .json_error(5, "cannot reach the chain");
    assert_eq!(escrow.balance_of(devnet.renter).await.unwrap(), funds);

    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renters_image_and_key_reach_the_workload_and_provider_failures_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, escrow) = start(dir.path()).await;
    let mut env = env_for(&devnet, &dir.path().join("config"));
    env.push(("GPUFLOW_KEYSTORE", devnet.renter_keystore.display().to_string()));
    let balance = || async { escrow.balance_of(devnet.renter).await.unwrap() };
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtestkeyfortherenter renter@laptop";
    let key_file = dir.path().join("id_ed25519.pub");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let key_path = key_file.display().to_string();

    // A provider that allows only ubuntu images, and whose workload prints what it got.
    let mut allowing = Agent::start(
        &devnet,
        dir.path(),
        "allowing",
        &[
            "--allow-image",
            "ubuntu:*",
            "--workload",
            "echo \"image=$GPUFLOW_IMAGE key=$GPUFLOW_SSH_KEY\"; exec sleep 600",
        ],
    )
    .await;
    let before = balance().await;
    let refused = gpuflow(
        &env,
        &["--json", "rent", &allowing.offer, "--hours", "1", "--image", "evil/miner:1"],
    )
    .await;
    let doc = refused.json_error(4, "not allowed on this provider");
    assert!(doc["error"]["message"].as_str().unwrap().contains("ubuntu:*"), "{doc}");
    assert_eq!(balance().await, before, "a refused quote moves no money");

    let rented = gpuflow(
        &env,
        &[
            "--json",
            "rent",
            &allowing.offer,
            "--hours",
            "1",
            "--image",
            "ubuntu:22.04",
            "--ssh-key",
            &key_path,
            "--yes",
        ],
    )
    .await
    .json();
    let id = rented["rental_id"].as_u64().unwrap();
    assert_eq!(rented["image"], "ubuntu:22.04");
    assert_eq!(rented["workload"]["state"], "running", "{rented}");
    assert_eq!(rented["workload"]["gpus"], serde_json::json!(["GPU-allowing"]));
    let log = allowing.data.join(format!("workloads/{id}.log"));
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let line = loop {
        if let Ok(text) = std::fs::read_to_string(&log)
            && text.ends_with('\n')
        {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} not written", log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(line, format!("image=ubuntu:22.04 key={key}\n"));

    // Its only GPU is rented, so searches stop listing the machine; its renter still
    // reaches it for status and logs.
    allowing.wait_listed(&devnet, false).await;
    let status = gpuflow(&env, &["--json", "status", &id.to_string()]).await.json();
    assert_eq!(status["workload"]["state"], "running", "{status}");
    let logs = gpuflow(&env, &["--json", "logs", &id.to_string()]).await.json();
    assert_eq!(logs["lines"], serde_json::json!([line.trim_end()]));
    gpuflow(&env, &["--json", "stop", &id.to_string()]).await.json();

    // The provider goes down while its offer is listed again: unreachable, nothing moved.
    allowing.wait_listed(&devnet, true).await;
    allowing.child.kill().await.unwrap();
    let before = balance().await;
    let down = gpuflow(&env, &["--json", "rent", &allowing.offer, "--hours", "1"]).await;
    down.json_error(5, "unreachable");
    assert!(down.stderr.contains("no money moved"), "{}", down.stderr);
    assert_eq!(balance().await, before);

    // A provider whose quotes lapse before a transaction could be mined, and which asks
    // twice the others' price: searches order by it.
    let hasty = Agent::start(
        &devnet,
        dir.path(),
        "hasty",
        &["--quote-validity-secs", "5", "--price-per-hour", "0.72"],
    )
    .await;
    let dearest =
        gpuflow(&env, &["--json", "search", "", "-o", "dph-", "--limit", "1"]).await.json();
    let ids = |found: &Value| -> Vec<String> {
        found.as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&dearest), std::slice::from_ref(&hasty.offer), "{dearest}");
    assert_eq!(dearest[0]["price_per_second"], (2 * RATE).to_string());
    let cheapest = gpuflow(&env, &["--json", "search", "", "-o", "dph"]).await.json();
    let prices: Vec<u64> = cheapest
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["price_per_second"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(prices.len() >= 2 && prices.is_sorted(), "{cheapest}");
    assert_eq!(ids(&cheapest).last(), Some(&hasty.offer), "{cheapest}");
    assert!(ids(&cheapest).contains(&devnet.offer_id), "{cheapest}");
    let expired = gpuflow(&env, &["--json", "rent", &hasty.offer, "--hours", "1", "--yes"]).await;
    let doc = expired.json_error(4, "quote expired");
    assert!(doc["error"]["message"].as_str().unwrap().contains("No money moved"), "{doc}");
    assert_eq!(balance().await, before);

    // A provider that quotes but reads the chain only once an hour never starts the
    // workload: the wait is bounded and says how to get the deposit back.
    let asleep =
        Agent::start(&devnet, dir.path(), "asleep", &["--poll-interval-ms", "3600000"]).await;
    let rent = ["--json", "rent", &asleep.offer, "--hours", "1", "--wait", "3", "--yes"];
    let waited = gpuflow(&env, &rent).await;
    // Exit 6: the deposit is locked, the workload is not running.
    let doc = waited.json_error(6, "did not report the workload running within 3 s");
    let id = doc["rental_id"].as_u64().expect("the open rental's id is in the JSON error");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(&format!("gpuflow stop {id}")),
        "{doc}"
    );
    assert_eq!(doc["workload"], Value::Null);
    let deposit = amount(&doc["deposit"]);
    assert_eq!(deposit, U256::from(RATE * 3600));
    assert_eq!(balance().await, before - deposit);
    let stopped = gpuflow(&env, &["--json", "stop", &id.to_string()]).await.json();
    let charged = amount(&stopped["charged"]);
    assert_eq!(amount(&stopped["refund"]), deposit - charged);
    assert_eq!(balance().await, before - charged, "the unused deposit came back");
    devnet.shutdown().await;
}

#[tokio::test]
async fn an_rpc_that_never_answers_times_out_naming_the_fix() {
    // Accepts connections and never answers, as a frozen RPC does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("XDG_CONFIG_HOME", dir.path().display().to_string()),
        ("GPUFLOW_RPC", rpc),
        ("GPUFLOW_ESCROW", Address::repeat_byte(0xee).to_string()),
        ("GPUFLOW_RPC_TIMEOUT_SECS", "1".to_owned()),
    ];
    let run =
        tokio::time::timeout(std::time::Duration::from_secs(60), gpuflow(&env, &["status", "1"]))
            .await
            .expect("gpuflow gives up on a frozen RPC instead of waiting for ever");
    run.fails(5, "did not answer within 1 s");
    assert!(run.stderr.contains("GPUFLOW_RPC_TIMEOUT_SECS"), "{}", run.stderr);
    held.abort();
}
