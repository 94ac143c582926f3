//! The real `gpuflow-node` binary: crash safety under `kill -9`, layered configuration,
//! the ready line, and graceful shutdown.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use alloy::signers::local::PrivateKeySigner;
use gpuflow_node::Store;
use gpuflow_p2p::{NetworkConfig, NetworkEvent};
use gpuflow_protocol::{QuoteTerms, RentalResponse, api, unix_now};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{
    chain::Chain,
    support::{Provider, Publisher, WAIT, eventually, get_json, metric, offer_ids, try_get_json},
};

const BIN: &str = env!("CARGO_BIN_EXE_gpuflow-node");

/// `gpuflow-node` with `args`, isolated from the caller's config and `GPUFLOW_*` variables
/// (`config_home` stands in for `$XDG_CONFIG_HOME`), plus `env`; killed when dropped.
fn command(config_home: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("GPUFLOW_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env("GPUFLOW_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A running `gpuflow-node` process and what its ready line said.
struct Process {
    child: Child,
    ready: String,
}

impl Process {
    /// Starts [`command`] and waits for its ready line.
    async fn spawn(config_home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = command(config_home, args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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

/// When a crash test kills the node.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// During start-up, once the store is open and the swarm is coming up.
    StartingUp,
    /// Right after the ready line, before anything is asked of it.
    Ready,
    /// Once `n` offers were acknowledged, while a stream of offers is still arriving.
    Acknowledged(u64),
}

/// The node's life in [`kill_9_at_any_moment_loses_no_acknowledged_offer`]: a kill on the
/// first accept of a fresh file, then the other moments, with counts drawn from `seed`.
fn kill_plan(seed: u64) -> [Kill; 5] {
    // splitmix64: a few well-mixed numbers from one seed, without a dependency.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (few, many) = (2 + next() % 8, 20 + next() % 61);
    [
        Kill::Acknowledged(1),
        Kill::StartingUp,
        Kill::Acknowledged(few),
        Kill::Ready,
        Kill::Acknowledged(many),
    ]
}

/// Offers published beyond the number a round waits for, so that its kill lands while
/// they are being checked and written.
const IN_FLIGHT: u64 = 64;

/// Publishes `count` offers at `seq`, or fewer if `stop` is set or the node is gone,
/// alternating fresh providers with new offers of the earlier `providers`. Returns every
/// provider, the ids published, and the publisher, which must outlive the kill: dropped,
/// it would stop before its queue is sent.
async fn publish(
    publisher: Publisher,
    mut providers: Vec<Provider>,
    seq: u64,
    count: u64,
    stop: Arc<AtomicBool>,
) -> (Vec<Provider>, Vec<String>, Publisher) {
    let earlier = providers.len();
    let mut published = Vec::new();
    let mut replaced = 0;
    while (published.len() as u64) < count && !stop.load(Ordering::Relaxed) {
        let index = if published.len() % 2 == 1 && replaced < earlier {
            replaced += 1;
            replaced - 1
        } else {
            providers.push(Provider::default());
            providers.len() - 1
        };
        let offer = providers[index].offer(|o| o.seq = seq);
        // Fails once the node is gone; what was sent before counts.
        if publisher.network.publish_offer(&offer).await.is_err() {
            break;
        }
        published.push(providers[index].id());
        tokio::task::yield_now().await;
    }
    (providers, published, publisher)
}

/// `PRAGMA integrity_check` of the store in `data`, on a copy so that the node, not this
/// check, is the one to recover the write-ahead log.
fn integrity_of_a_copy(data: &Path) -> String {
    let copy = tempfile::tempdir().unwrap();
    for file in ["index.sqlite", "index.sqlite-wal"] {
        if data.join(file).exists() {
            std::fs::copy(data.join(file), copy.path().join(file)).unwrap();
        }
    }
    let conn = rusqlite::Connection::open(copy.path().join("index.sqlite")).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

/// Every offer a node lists, with its `seq`.
async fn offer_seqs(url: &str) -> BTreeMap<String, u64> {
    let list: api::OfferList =
        get_json(&format!("{url}/v1/offers?limit=1000&include_conflicts=1")).await;
    assert!(list.next_cursor.is_none(), "more than one page of offers");
    list.offers.into_iter().map(|o| (o.id, o.seq)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_moment_loses_no_acknowledged_offer() {
    // Fixed, so every run kills at the same moments; set GPUFLOW_KILL_SEED to try others.
    let seed = std::env::var("GPUFLOW_KILL_SEED")
        .map_or(0x0067_7075_666c_6f77, |s| s.parse().expect("GPUFLOW_KILL_SEED is a number"));
    let plan = kill_plan(seed);
    println!("GPUFLOW_KILL_SEED={seed}: {plan:?}");
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let args =
        ["--data-dir", data_dir, "--http", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"];
    let accepted = "gpuflow_messages_accepted_total{topic=\"offers\"}";

    // Every offer ever served, with the highest seq served: a restarted node must serve each
    // at that seq or a newer one.
    let mut served = BTreeMap::<String, u64>::new();
    // What the last round with offers must have kept: its ids, its seq, and how many of
    // its offers were acknowledged before the kill.
    let mut owed: Option<(Vec<String>, u64, u64)> = None;
    let mut providers = Vec::new();
    let mut peer: Option<String> = None;
    for (round, kill) in plan.into_iter().enumerate() {
        if let Kill::StartingUp = kill {
            let mut child = command(home.path(), &args, &[("GPUFLOW_LOG", "info")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
            tokio::time::timeout(WAIT, async {
                while let Some(line) = logs.next_line().await.unwrap() {
                    if line.contains("listening") {
                        return;
                    }
                }
                panic!("gpuflow-node exited before listening");
            })
            .await
            .expect("gpuflow-node to start listening");
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            assert_eq!(integrity_of_a_copy(data.path()), "ok", "after the kill during start-up");
            continue;
        }
        let node = Process::spawn(home.path(), &args, &[]).await;
        if let Kill::Ready = kill {
            node.signal(libc::SIGKILL);
            assert!(!node.wait().await.success());
            assert_eq!(integrity_of_a_copy(data.path()), "ok", "after the kill when ready");
            continue;
        }
        let url = node.url();
        let this_peer = node.field("p2p");
        let identity = this_peer.rsplit('/').next().unwrap().to_owned();
        assert_eq!(identity, *peer.get_or_insert(identity.clone()), "same identity");
        verify_restart(data.path(), &url, &mut served, owed.take()).await;

        let Kill::Acknowledged(n) = kill else { unreachable!() };
        // Offers stream in while the node is killed mid-flight.
        let seq = round as u64 + 1;
        let publisher = Publisher::join(this_peer.parse().unwrap()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let earlier = std::mem::take(&mut providers);
        let publishing =
            tokio::spawn(publish(publisher, earlier, seq, n + IN_FLIGHT, stop.clone()));
        // Asked back to back rather than every 50 ms, so that the kill lands while the rest
        // of the burst is being written.
        tokio::time::timeout(WAIT, async {
            while metric(&url, accepted).await < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} offers acknowledged within {WAIT:?}"));
        // Everything reported Accept is committed, and so is everything listed: read both,
        // then kill at once.
        let acknowledged = metric(&url, accepted).await;
        served.extend(offer_seqs(&url).await);
        node.signal(libc::SIGKILL);
        assert!(!node.wait().await.success());
        stop.store(true, Ordering::Relaxed);
        let (all, published, publisher) = publishing.await.unwrap();
        drop(publisher);
        providers = all;
        println!("round {round}: killed with {acknowledged} of {} acknowledged", published.len());
        assert_eq!(integrity_of_a_copy(data.path()), "ok", "after the kill at {kill:?}");
        owed = Some((published, seq, acknowledged));
    }

    // The last restart keeps everything too, and shuts down gracefully.
    let node = Process::spawn(home.path(), &args, &[]).await;
    verify_restart(data.path(), &node.url(), &mut served, owed).await;
    node.signal(libc::SIGTERM);
    assert!(node.wait().await.success());
}

/// Checks a restarted node at `url` over the store in `data`: the file is intact, it serves
/// everything `served` (at that seq or newer), and of the last round's offers (`owed`: ids,
/// seq, count acknowledged) at least as many as were acknowledged. Then adds what it serves
/// to `served`.
async fn verify_restart(
    data: &Path,
    url: &str,
    served: &mut BTreeMap<String, u64>,
    owed: Option<(Vec<String>, u64, u64)>,
) {
    {
        // Read-only beside the running node, which recovered the file itself.
        let conn = rusqlite::Connection::open_with_flags(
            data.join("index.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    let now = offer_seqs(url).await;
    for (id, seq) in served.iter() {
        match now.get(id) {
            Some(kept) => assert!(kept >= seq, "offer {id} was served at seq {seq}, now {kept}"),
            None => panic!("offer {id} was served before the crash, not after"),
        }
    }
    if let Some((ids, seq, acknowledged)) = owed {
        // Every message of that round, new provider or not, carried `seq`.
        let kept = ids.iter().filter(|id| now.get(*id) == Some(&seq)).count() as u64;
        println!("{kept} of {} kept, {acknowledged} acknowledged", ids.len());
        assert!(kept >= acknowledged, "{kept} stored at seq {seq}, {acknowledged} acknowledged");
    }
    served.extend(now);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_through_another_nodes_http_api() {
    let home = tempfile::tempdir().unwrap();
    let (first_data, second_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let listen = ["--http", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"];
    let first_args = [&["--data-dir", first_data.path().to_str().unwrap()][..], &listen].concat();
    let first = Process::spawn(home.path(), &first_args, &[]).await;

    // GET /v1/node says what the ready line says.
    let info: api::NodeInfo = get_json(&format!("{}/v1/node", first.url())).await;
    let p2p = first.field("p2p");
    assert_eq!(info.addrs, std::slice::from_ref(&p2p));
    assert!(p2p.ends_with(&format!("/p2p/{}", info.peer_id)), "{p2p} vs {}", info.peer_id);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));

    // A second node given only the first's URL joins it and gets its offers.
    let publisher = Publisher::join(p2p.parse().unwrap()).await;
    let provider = Provider::default();
    publisher.offer(&provider.offer(|_| {})).await;
    let first_url = first.url();
    eventually("the offer on the first node", || async {
        (offer_ids(&first_url).await == [provider.id()]).then_some(())
    })
    .await;
    let second_args = [
        &["--data-dir", second_data.path().to_str().unwrap(), "--bootstrap-from", &first_url][..],
        &listen,
    ]
    .concat();
    let second = Process::spawn(home.path(), &second_args, &[]).await;
    let second_url = second.url();
    eventually("the offer on the node that joined through the URL", || async {
        (offer_ids(&second_url).await == [provider.id()]).then_some(())
    })
    .await;

    // A URL where no node answers stops the node, naming the URL and the fix.
    let third_data = tempfile::tempdir().unwrap();
    let nobody = "http://127.0.0.1:9";
    let args = [
        &["--data-dir", third_data.path().to_str().unwrap(), "--bootstrap-from", nobody][..],
        &listen,
    ]
    .concat();
    let error = refused(home.path(), &args).await;
    assert!(
        error.contains("http://127.0.0.1:9/v1/node") && error.contains("check the URL"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p2p_port_in_use_stops_the_node_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let (data, other_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let listen = |data: &Path, p2p: &str| {
        let data = data.to_str().unwrap().to_owned();
        ["--data-dir".to_owned(), data, "--http".into(), "127.0.0.1:0".into()]
            .into_iter()
            .chain(["--p2p-listen".to_owned(), p2p.to_owned()])
            .collect::<Vec<_>>()
    };
    let args = listen(data.path(), "/ip4/127.0.0.1/tcp/0");
    let first =
        Process::spawn(home.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
            .await;
    let p2p = first.field("p2p");
    let taken = p2p.split("/p2p/").next().unwrap();

    let args = listen(other_data.path(), taken);
    let args: Vec<_> = args.iter().map(String::as_str).collect();
    let second =
        command(home.path(), &args, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).output();
    let output = tokio::time::timeout(WAIT, second)
        .await
        .expect("a node on a port in use exits instead of serving beside the other")
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8(output.stderr).unwrap();
    let expected = format!(
        "the listen address {taken} is already in use by another process; pick another port \
         with --p2p-listen"
    );
    assert!(message.contains(&expected), "{message}");
    // The first node still serves.
    let health: api::Health = get_json(&format!("{}/healthz", first.url())).await;
    assert_eq!(health.status, "ok");
    first.signal(libc::SIGTERM);
    assert!(first.wait().await.success());
}

/// Seconds the node stays down in [`a_node_never_attests_its_own_outage_as_the_providers`]:
/// well past its 3-second grace period, so that counting it would show as downtime.
const OUTAGE: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_never_attests_its_own_outage_as_the_providers() {
    let mut chain = Chain::start().await;
    let provider = Arc::new(Provider::with_payout(chain.provider.clone()));
    let peer = provider.identity.peer_id();

    // The rented machine: its own swarm, which answers the node's probes and heartbeats
    // every 250 ms (republishing its offer every second) throughout.
    let (machine, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: provider.identity.clone(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: Vec::new(),
        subscribe_offers: false,
        serve_requests: true,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    let listen = loop {
        match tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap() {
            NetworkEvent::Listening(addr) => break addr,
            _ => continue,
        }
    };
    tokio::spawn({
        let machine = machine.clone();
        async move {
            while let Some(event) = events.recv().await {
                if let NetworkEvent::RentalRequest { channel, .. } = event {
                    let answer = RentalResponse::Error { message: "no such rental".into() };
                    let _ = machine.respond(channel, answer).await;
                }
            }
        }
    });
    let _beating = AbortOnDrop(tokio::spawn({
        let (machine, provider, listen) = (machine.clone(), provider.clone(), listen.clone());
        async move {
            for seq in 1.. {
                // Publishing fails while the node is down; the machine carries on.
                let _ = machine.publish_heartbeat(&provider.heartbeat(seq)).await;
                if seq % 4 == 1 {
                    let offer = provider.offer(|o| {
                        o.seq = seq;
                        o.listen_addrs = vec![listen.to_string()];
                    });
                    let _ = machine.publish_offer(&offer).await;
                }
                // The machine's own cadence, not a wait for anything.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }));

    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let keystore = gpuflow_escrow::keystore::create(
        &home.path().join("keys"),
        "attester.json",
        &PrivateKeySigner::random(),
        "attester password",
    )
    .unwrap();
    let (rpc, escrow, from_block) =
        (chain.local.rpc_url(), chain.escrow.to_string(), chain.deployed_at.to_string());
    let args = |port: u16| -> Vec<String> {
        [
            "--data-dir",
            data.path().to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--p2p-listen",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
            "--bootstrap",
            &format!("{listen}/p2p/{peer}"),
            "--rpc",
            &rpc,
            "--escrow",
            &escrow,
            "--escrow-from-block",
            &from_block,
            "--confirmations",
            "0",
            "--uptime-bucket-secs",
            "1",
            "--grace-secs",
            "3",
            "--attester-keystore",
            keystore.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let env = [("GPUFLOW_PASSWORD", "attester password")];
    let spawn = |args: Vec<String>| {
        let home = home.path().to_owned();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Process::spawn(&home, &args, &env).await
        }
    };

    let node = spawn(args(0)).await;
    let url = node.url();
    eventually("the machine's offer", || async {
        (offer_ids(&url).await == [provider.id()]).then_some(())
    })
    .await;
    let offer_id: gpuflow_protocol::OfferId = provider.id().parse().unwrap();
    let rental = chain.open_machine(QuoteTerms::machine(offer_id, 1), 600).await;
    let rental_url = format!("{url}/v1/rentals/{rental}");
    eventually("the rental indexed", || try_get_json::<api::RentalDetail>(&rental_url)).await;

    // kill -9, then the same node again on the same port after a real outage, while the
    // machine kept heart-beating.
    let port: u16 = node
        .field("p2p")
        .split("/tcp/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let killed = unix_now();
    node.signal(libc::SIGKILL);
    assert!(!node.wait().await.success());
    tokio::time::sleep(OUTAGE).await;
    let node = spawn(args(port)).await;
    let restarted = unix_now();
    assert!(restarted >= killed + OUTAGE.as_secs());
    let url = node.url();

    // Once the node has judged a bucket after its restart (heard in the grace period before
    // it), the attestation covers the rental from its start across the outage.
    let evidence_url = format!("{url}/v1/providers/{peer}/evidence");
    let evidence = eventually("a judged bucket after the restart", || async {
        let evidence: api::Evidence = try_get_json(&evidence_url).await?;
        let bit = |hex: &str, at: u64| {
            let i = ((at - evidence.from) / evidence.params.bucket_secs) as usize;
            alloy::hex::decode(hex).unwrap().get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)
        };
        let observed = evidence.observed.clone().unwrap();
        let judged = (restarted + 1..evidence.from + evidence.buckets)
            .any(|at| bit(&observed, at) && bit(&evidence.heard, at));
        // The outage itself is not observed.
        assert!((killed + 1..restarted).all(|at| !bit(&observed, at)), "{evidence:?}");
        judged.then_some(evidence)
    })
    .await;
    let detail: api::RentalDetail = get_json(&format!("{url}/v1/rentals/{rental}")).await;
    assert!(detail.start < killed, "the rental covers the outage");
    assert!(evidence.scores.rented_seconds > 0);
    assert_eq!(evidence.scores.up_rented_seconds, evidence.scores.rented_seconds);

    let response = reqwest::Client::new()
        .post(format!("{url}/v1/rentals/{rental}/downtime"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: api::ApiErrorBody = response.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "{}", body.error);
    assert!(body.error.contains("measured no downtime"), "{}", body.error);
    node.signal(libc::SIGTERM);
    assert!(node.wait().await.success());
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
