//! What every gpuflow binary owes its user, run as built: nothing that looks like a secret
//! is echoed back.

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
