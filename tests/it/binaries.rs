//! What every gpuflow binary owes its user, run as built: nothing that looks like a secret
//! is echoed back, `--help` never shows what the environment holds, and a reader that
//! goes away (`| head -1`) ends the binary quietly instead of a panic.

use std::process::{Output, Stdio};

/// `name` from the binary directory with `args`, the caller's `GPUFLOW_*` variables
/// removed and `env` set, stdin closed.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = gpuflow_devnet::bin_dir().unwrap().join(name);
    let mut command = std::process::Command::new(&bin);
    for (key, _) in std::env::vars() {
        if key.starts_with("GPUFLOW_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; build the binaries first", bin.display()))
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn gpuflow_deploy_never_echoes_a_key_given_as_the_variable_name() {
    let key = alloy::signers::local::PrivateKeySigner::random().to_bytes().to_string();
    let hex = key.trim_start_matches("0x");
    let rpc = format!("http://127.0.0.1:{}", closed_port());
    let treasury = "0x0000000000000000000000000000000000000001";
    for given in [&["--key-env", &key][..], &["--key-env", hex], &["--keystore", &key]] {
        let out = run(
            "gpuflow-deploy",
            &[&["--rpc", &rpc, "--mock-token", "--treasury", treasury][..], given].concat(),
            &[("GPUFLOW_PASSWORD", "correct horse")],
        );
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{given:?}");
        assert!(!stdout.contains(hex) && !stderr.contains(hex), "{given:?}: {stderr}");
        if given[0] == "--key-env" {
            assert!(stderr.contains("NAME of an environment variable"), "{stderr}");
        }
    }
}

/// Every binary, and commands of each, whose help is checked.
const HELP: &[(&str, &[&str])] = &[
    ("gpuflow", &["--help"]),
    ("gpuflow", &["rent", "--help"]),
    ("gpuflow", &["wallet", "import", "--help"]),
    ("gpuflow-provider", &["--help"]),
    ("gpuflow-provider", &["run", "--help"]),
    ("gpuflow-provider", &["withdraw", "--help"]),
    ("gpuflow-provider", &["init", "--help"]),
    ("gpuflow-node", &["--help"]),
    ("gpuflow-deploy", &["--help"]),
    ("gpuflow-devnet", &["--help"]),
];

#[test]
fn help_names_the_variables_but_never_shows_their_values() {
    // An RPC URL often carries an API key; every variable gets a value that must not show.
    let sentinel = "https://rpc.example/v3/SENTINEL0API0KEY";
    let names = [
        "GPUFLOW_RPC",
        "GPUFLOW_NODE",
        "GPUFLOW_ESCROW",
        "GPUFLOW_CONFIG",
        "GPUFLOW_PROVIDER_CONFIG",
        "GPUFLOW_DATA_DIR",
        "GPUFLOW_HTTP",
        "GPUFLOW_P2P_LISTEN",
        "GPUFLOW_BOOTSTRAP",
        "GPUFLOW_KEYSTORE",
        "GPUFLOW_PROVIDER_KEYSTORE",
        "GPUFLOW_ATTESTER_KEYSTORE",
        "GPUFLOW_PASSWORD",
        "GPUFLOW_PROVIDER_PASSWORD",
        "GPUFLOW_TOKEN_DECIMALS",
        "GPUFLOW_CONFIRMATIONS",
        "GPUFLOW_ESCROW_FROM_BLOCK",
    ];
    let env: Vec<(&str, &str)> = names.iter().map(|name| (*name, sentinel)).collect();
    for (bin, args) in HELP {
        let out = run(bin, args, &env);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{bin} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!help.contains("SENTINEL0API0KEY"), "{bin} {args:?} shows a value:\n{help}");
        let names_rpc = !matches!(
            (*bin, args[0]),
            ("gpuflow-devnet", _) | ("gpuflow-provider", "--help" | "init") | ("gpuflow", "wallet")
        );
        if names_rpc {
            assert!(
                help.contains("GPUFLOW_RPC"),
                "{bin} {args:?} no longer names GPUFLOW_RPC:\n{help}"
            );
        }
    }
}

/// Runs `name args` with stdout a pipe whose reader is already gone, so every print fails;
/// returns how it ended and its stderr, after at most `timeout`.
fn run_into_closed_pipe(
    name: &str,
    args: &[&str],
    dir: &std::path::Path,
    timeout: std::time::Duration,
) -> (std::process::ExitStatus, String) {
    let bin = gpuflow_devnet::bin_dir().unwrap().join(name);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let log = dir.join(format!("{name}.stderr"));
    let mut command = std::process::Command::new(&bin);
    for (key, _) in std::env::vars() {
        if key.starts_with("GPUFLOW_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(args)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} {args:?} still runs after {timeout:?} with nobody reading its output");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&log).unwrap())
}

#[test]
fn a_closed_pipe_ends_every_binary_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let gpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/devnet-gpus.json");
    let data = dir.path().join("node").display().to_string();
    let devnet = dir.path().join("devnet").display().to_string();
    let env_file = dir.path().join("devnet.env").display().to_string();
    let seconds = std::time::Duration::from_secs;
    for (name, args, timeout) in [
        ("gpuflow", &["--json", "wallet", "list"][..], seconds(30)),
        ("gpuflow", &["config"], seconds(30)),
        ("gpuflow-provider", &["gpus", "--simulate-gpus", gpus, "--json"], seconds(30)),
        ("gpuflow-provider", &["gpus", "--simulate-gpus", gpus], seconds(30)),
        // Daemons whose ready line nobody reads.
        (
            "gpuflow-node",
            &["--data-dir", &data, "--http", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"],
            seconds(60),
        ),
        ("gpuflow-devnet", &["--dir", &devnet, "--env-file", &env_file], seconds(120)),
    ] {
        let (status, stderr) = run_into_closed_pipe(name, args, dir.path(), timeout);
        assert!(!stderr.contains("panicked"), "{name} {args:?} panicked:\n{stderr}");
        assert_ne!(status.code(), Some(101), "{name} {args:?}:\n{stderr}");
        assert!(
            status.signal() == Some(libc::SIGPIPE) || status.code() == Some(0),
            "{name} {args:?} ended with {status}:\n{stderr}"
        );
    }
}

/// `deploy/gpu-smoke.sh`, the check a GPU machine runs from the release bundle, run here
/// on a simulated inventory with a workload that prints like the real one: every step
/// (devnet, offer, rent, the workload's result, stop, settlement) must pass.
#[test]
fn the_gpu_smoke_script_runs_its_rental_on_a_simulated_inventory() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(root.join("deploy/gpu-smoke.sh"))
        .env("GPUFLOW_BIN_DIR", gpuflow_devnet::bin_dir().unwrap())
        .env("GPUFLOW_ANVIL", gpuflow_devnet::anvil_bin())
        .env("GPUFLOW_SMOKE_SIMULATE", root.join("deploy/devnet-gpus.json"))
        .env(
            "GPUFLOW_SMOKE_WORKLOAD",
            "echo \"smoke: simulated ($CUDA_VISIBLE_DEVICES)\"; exec sleep 2147483647",
        )
        .env("TMPDIR", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "gpu-smoke.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("time from gpuflow rent to a running workload"), "{stdout}");
    assert!(stdout.contains("smoke: simulated (GPU-"), "{stdout}");
    assert!(stdout.contains("refunded"), "{stdout}");
}
