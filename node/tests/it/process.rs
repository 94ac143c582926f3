//! The real `gpuflow-node` binary: crash safety under `kill -9`, layered configuration,
//! the ready line, and graceful shutdown.

use std::{path::Path, process::Stdio};

use gpuflow_node::Store;
use gpuflow_protocol::{api, unix_now};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::support::{Provider, Publisher, WAIT, eventually, get_json, metric, offer_ids};

const BIN: &str = env!("CARGO_BIN_EXE_gpuflow-node");

/// A running `gpuflow-node` process and what its ready line said.
struct Process {
    child: Child,
    ready: String,
}

impl Process {
    /// `gpuflow-node` with `args`, isolated from the caller's config and `GPUFLOW_*`
    /// variables (`config_home` stands in for `$XDG_CONFIG_HOME`), plus `env`.
    async fn spawn(config_home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("GPUFLOW_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(args)
            .env("XDG_CONFIG_HOME", config_home)
            .env("GPUFLOW_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("gpuflow-node starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("a ready line in time")
            .unwrap()
            .expect("gpuflow-node printed its ready line before exiting");
        assert!(ready.starts_with("gpuflow-node ready "), "{ready}");
        Self { child, ready }
    }

    /// The value of `key=` in the ready line.
    fn field(&self, key: &str) -> String {
        self.ready
            .split_whitespace()
            .find_map(|part| part.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
            .unwrap_or_else(|| panic!("no {key}= in `{}`", self.ready))
    }

    fn url(&self) -> String {
        self.field("http")
    }

    fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("still running") as i32;
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    async fn wait(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("exit in time").unwrap()
    }
}

/// Runs the binary to completion, for configurations it must refuse.
async fn refused(config_home: &Path, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8(output.stderr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_offer() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let args =
        ["--data-dir", data_dir, "--http", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"];
    let node = Process::spawn(home.path(), &args, &[]).await;
    let url = node.url();
    let peer = node.field("p2p");

    // Offers stream in while the node is killed mid-flight.
    let publisher = Publisher::join(peer.parse().unwrap()).await;
    let providers: Vec<Provider> = (0..150).map(|_| Provider::default()).collect();
    let offers: Vec<_> = providers.iter().map(|p| p.offer(|_| {})).collect();
    let publishing = tokio::spawn(async move {
        for offer in &offers {
            // Fails once the node is gone; what was sent before counts.
            if publisher.network.publish_offer(offer).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        publisher
    });
    let accepted = "gpuflow_messages_accepted_total{topic=\"offers\"}";
    eventually("some offers to be accepted", || async {
        (metric(&url, accepted).await >= 40).then_some(())
    })
    .await;
    // Everything reported Accept is committed: read both, then kill at once.
    let acknowledged = metric(&url, accepted).await;
    let listed = offer_ids(&url).await;
    node.signal(libc::SIGKILL);
    let status = node.wait().await;
    assert!(!status.success());
    drop(publishing.await.unwrap());

    // The file is intact and holds at least everything acknowledged.
    {
        let conn = rusqlite::Connection::open(data.path().join("index.sqlite")).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    let node = Process::spawn(home.path(), &args, &[]).await;
    assert_eq!(node.field("p2p").rsplit('/').next(), peer.rsplit('/').next(), "same identity");
    let after = offer_ids(&node.url()).await;
    assert!(
        after.len() as u64 >= acknowledged,
        "{} stored, {acknowledged} acknowledged",
        after.len()
    );
    for id in &listed {
        assert!(after.contains(id), "offer {id} was served before the crash, not after");
    }
    node.signal(libc::SIGTERM);
    assert!(node.wait().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_layer_file_then_environment_then_flags() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    // An offer to read `dph` from: its display depends on the token's decimals.
    let provider = Provider::default();
    {
        let store = Store::open(&data.path().join("index.sqlite")).unwrap();
        store.upsert_offer(provider.offer(|_| {}).open().unwrap(), unix_now()).await.unwrap();
    }
    std::fs::create_dir_all(home.path().join("gpuflow")).unwrap();
    std::fs::write(
        home.path().join("gpuflow/node.toml"),
        format!(
            "data_dir = {:?}\nhttp = \"127.0.0.1:0\"\n\
             p2p_listen = [\"/ip4/127.0.0.1/tcp/0\", \"/ip4/127.0.0.1/udp/0/quic-v1\"]\n\
             token_decimals = 18\n",
            data.path()
        ),
    )
    .unwrap();
    let dph = |process: &Process| {
        let url = format!("{}/v1/offers/{}", process.url(), provider.id());
        async move { get_json::<api::OfferDetail>(&url).await.summary.dph }
    };
    // 100 units per second is 360 000 per hour.
    // (environment, flags, expected dph)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case<'_>; 3] = [
        (&[], &[], "0.00000000000036"),
        (&[("GPUFLOW_TOKEN_DECIMALS", "9")], &[], "0.00036"),
        (&[("GPUFLOW_TOKEN_DECIMALS", "9")], &["--token-decimals", "6"], "0.36"),
    ];
    for (env, args, expected) in cases {
        let node = Process::spawn(home.path(), args, env).await;
        assert_eq!(dph(&node).await, expected, "env {env:?}, flags {args:?}");
        // Both listen addresses from the file came up.
        assert!(node.field("p2p").contains("/tcp/"), "{}", node.ready);
        assert!(
            node.field("quic").contains("/udp/") && node.field("quic").contains("/quic-v1/p2p/")
        );
        node.signal(libc::SIGTERM);
        assert!(node.wait().await.success(), "a graceful shutdown exits 0");
    }

    // Mistakes are named, and stop the node.
    std::fs::write(home.path().join("gpuflow/node.toml"), "token_decimal = 6\n").unwrap();
    let message = refused(home.path(), &[]).await;
    assert!(message.contains("unknown field `token_decimal`"), "{message}");
    let message = refused(home.path(), &["--config", "/nonexistent/node.toml"]).await;
    assert!(message.contains("cannot read the config file /nonexistent/node.toml"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_openapi_and_metrics() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let args = [
        "--data-dir",
        data.path().to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
        "--p2p-listen",
        "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
    ];
    let node = Process::spawn(home.path(), &args, &[]).await;
    let openapi: serde_json::Value = get_json(&format!("{}/openapi.json", node.url())).await;
    assert!(openapi["paths"]["/v1/offers"].is_object());
    let health: api::Health = get_json(&format!("{}/healthz", node.url())).await;
    assert_eq!(health, api::Health { status: "ok".into(), offers: 0 });
    let text = reqwest::get(format!("{}/metrics", node.url())).await.unwrap().text().await.unwrap();
    assert!(text.contains("gpuflow_peers 0"), "{text}");
    // The QUIC address takes publications too.
    let publisher = Publisher::join(node.field("quic").parse().unwrap()).await;
    let provider = Provider::default();
    publisher.offer(&provider.offer(|_| {})).await;
    let url = node.url();
    eventually("the offer over QUIC", || async {
        (offer_ids(&url).await == [provider.id()]).then_some(())
    })
    .await;
    node.signal(libc::SIGTERM);
    assert!(node.wait().await.success());
}
