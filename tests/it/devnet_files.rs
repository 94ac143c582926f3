//! The real `gpuflow-devnet` binary: the files it leaves for a developer to source and
//! use hold a password and keys, so only their owner may read them.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::process::{Child, Command};

/// A running `gpuflow-devnet` and its directory; stopped with SIGTERM, as Ctrl-C would.
struct DevnetProcess {
    child: Child,
    dir: PathBuf,
    env_file: PathBuf,
}

impl DevnetProcess {
    async fn start(root: &Path) -> Self {
        let dir = root.join("run");
        let env_file = root.join("env");
        let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-devnet");
        let mut command = Command::new(&bin);
        command.arg("--dir").arg(&dir).arg("--env-file").arg(&env_file);
        let log = root.join("devnet.log");
        let (child, _) = gpuflow_devnet::spawn_ready(
            &mut command,
            &log,
            "gpuflow-devnet ready",
            Duration::from_secs(120),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e:#}\n{}",
                bin.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Self { child, dir, env_file }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// The `export NAME='value'` lines of the env file.
    fn env(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.env_file)
            .unwrap()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.strip_prefix("export ")?.split_once('=')?;
                Some((name.to_owned(), value.trim_matches('\'').to_owned()))
            })
            .collect()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_writes_its_keystores_and_env_file_for_its_owner_only() {
    let root = tempfile::tempdir().unwrap();
    // An env file left world-readable by an earlier run is replaced by a private one.
    std::fs::write(root.path().join("env"), "stale").unwrap();
    std::fs::set_permissions(root.path().join("env"), std::fs::Permissions::from_mode(0o644))
        .unwrap();
    let devnet = DevnetProcess::start(root.path()).await;

    let env = devnet.env();
    assert!(env.iter().any(|(name, _)| name == "GPUFLOW_PASSWORD"), "{env:?}");
    assert_eq!(mode(&devnet.env_file), 0o600, "the env file holds the password");
    let keystores = devnet.dir.join("keystore");
    assert_eq!(mode(&keystores), 0o700);
    for name in ["renter.json", "provider.json", "attester-0.json"] {
        assert_eq!(mode(&keystores.join(name)), 0o600, "{name}");
    }

    // With the env file's variables (a shell that sourced it), `gpuflow-provider` opens
    // the provider's wallet, not the renter's, and says so.
    let value = |name: &str| env.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let out = Command::new(gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider"))
        .args(["earnings", "--json"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("XDG_CONFIG_HOME", root.path().join("config"))
        .env_remove("GPUFLOW_LOG")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let opened = stderr
        .lines()
        .find(|l| l.contains("payout wallet opened"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(opened.contains(&value("GPUFLOW_PROVIDER")), "{opened}");
    assert!(opened.contains("GPUFLOW_PROVIDER_KEYSTORE"), "{opened}");
    assert!(!stderr.contains(&value("GPUFLOW_RENTER")), "{stderr}");
    assert!(!stderr.contains(&value("GPUFLOW_PASSWORD")), "{stderr}");
    devnet.stop().await;
}
