//! The provider agent against a real chain: anvil with the deployed escrow (through
//! `gpuflow_devnet`), a real `gpuflow-provider` process of our own that we can kill and
//! restart, and real libp2p on loopback to ask it for quotes and status.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use alloy::signers::SignerSync;
use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use gpuflow_devnet::{AgentSpec, DEVNET_PASSWORD, Devnet, DevnetOptions};
use gpuflow_escrow::{Escrow, GpuEscrow};
use gpuflow_p2p::{Multiaddr, Network, NetworkConfig, PeerId};
use gpuflow_protocol::{
    Identity, QuoteTerms, RentalRequest, RentalResponse, SignedQuote, WorkloadState,
    WorkloadStatus, logs_request_message, unix_now,
};
use gpuflow_provider::{
    agent::{Agent, AgentConfig, AgentParts, ChainContext},
    host::Host,
    runtime::{BoxFuture, ProcessRuntime, Runtime, RuntimeError, Started, WorkloadSpec},
    store::Store,
};
use tokio::process::{Child, Command};

/// `--price-per-hour 0.36` over two GPUs: 100 token units per second.
const RATE: u64 = 100;
const KEY_ENV: &str = "GPUFLOW_TEST_PROVIDER_KEY";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Our own agent beside the devnet's: its own payout key, GPUs, data dir and port.
struct Harness {
    devnet: Devnet,
    dir: PathBuf,
    key: PrivateKeySigner,
    renter: PrivateKeySigner,
    port: u16,
    agent: Option<Child>,
    peer: Option<PeerId>,
    client: Network,
    starts: u32,
    /// The offer id the agent reported ready with.
    offer: String,
    /// Shell command each rental runs.
    workload: String,
    /// Flags added to `run`.
    extra: Vec<String>,
    /// The RPC the agent uses, when not the devnet's own (a proxy in front of it).
    rpc: Option<String>,
    /// Environment added to `run`.
    env: Vec<(String, String)>,
}

/// The end of a workload's command: it runs until stopped or until the test process exits,
/// since workloads outlive their agent.
fn until_test_ends() -> String {
    format!("exec tail -f /dev/null --pid={}", std::process::id())
}

/// A libp2p client of a renter's own, as the CLI runs: a fresh identity, listening nowhere.
fn renter_client() -> Network {
    let (client, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: Identity::generate(),
        listen: Vec::new(),
        bootstrap: Vec::new(),
        subscribe_offers: false,
        serve_requests: false,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    client
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Harness {
    async fn new(dir: &Path) -> Self {
        let devnet = Devnet::start(DevnetOptions::for_checkout(dir.join("devnet")).unwrap())
            .await
            .expect("devnet starts");
        let key = PrivateKeySigner::random();
        // Gas for the agent's withdrawals.
        let chain = gpuflow_escrow::connect(&devnet.rpc_url, None).unwrap();
        chain
            .raw_request::<_, serde_json::Value>(
                "anvil_setBalance".into(),
                (key.address(), U256::from(10u128.pow(20))),
            )
            .await
            .unwrap();
        let renter =
            PrivateKeySigner::decrypt_keystore(&devnet.renter_keystore, DEVNET_PASSWORD).unwrap();
        let gpus = dir.join("gpus.json");
        std::fs::write(
            &gpus,
            r#"[{"name":"NVIDIA GeForce RTX 4090","uuid":"GPU-test-a","memory_bytes":25757220864,
                "pci_bus_id":"00000000:01:00.0","compute_capability":"8.9",
                "driver_version":"550.54.14","cuda_version":"12.4"},
               {"name":"NVIDIA GeForce RTX 4090","uuid":"GPU-test-b","memory_bytes":25757220864,
                "pci_bus_id":"00000000:02:00.0","compute_capability":"8.9",
                "driver_version":"550.54.14","cuda_version":"12.4"}]"#,
        )
        .unwrap();
        let client = renter_client();
        Self {
            devnet,
            dir: dir.to_owned(),
            key,
            renter,
            port: free_port(),
            agent: None,
            peer: None,
            client,
            starts: 0,
            offer: String::new(),
            workload: format!("echo up $GPUFLOW_RENTAL_ID; {}", until_test_ends()),
            extra: Vec::new(),
            rpc: None,
            env: Vec::new(),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("agent-{}.log", self.starts))
    }

    fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("agent-{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// The `gpuflow-provider run` command of this agent, listening on `port`.
    fn run_command(&self, port: u16) -> Command {
        AgentSpec {
            rpc_url: self.rpc.clone().unwrap_or_else(|| self.devnet.rpc_url.clone()),
            key: self.key.to_bytes().to_string(),
            // No config file of the machine's user leaks in.
            config_home: self.dir.join("config"),
            listen: format!("/ip4/127.0.0.1/tcp/{port}"),
            price_per_hour: Some("0.36".into()),
            region: "test".into(),
            workload: Some(self.workload.clone()),
            poll_interval_ms: Some(200),
            heartbeat_interval_secs: Some(1),
            extra: self.extra.iter().map(Into::into).collect(),
            env: self.env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            ..self.devnet.agent(&self.dir.join("agent"), &self.dir.join("gpus.json"))
        }
        .command()
    }

    /// Starts the agent and waits for its ready line.
    async fn start_agent(&mut self) {
        self.starts += 1;
        let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider");
        let mut command = self.run_command(self.port);
        let (child, ready) = gpuflow_devnet::spawn_ready(
            &mut command,
            &self.log(),
            "gpuflow-provider ready",
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}; log:\n{}", bin.display(), self.logs()));
        let field = |key| gpuflow_devnet::ready_field(&ready, key).unwrap();
        self.peer = Some(field("peer").parse().unwrap());
        self.offer = field("offer");
        self.agent = Some(child);
    }

    /// Kills the agent without letting it clean up, as a crash or power cut would.
    async fn crash_agent(&mut self) {
        let mut child = self.agent.take().expect("agent running");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    async fn stop_agent(&mut self) {
        if let Some(mut child) = self.agent.take() {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(TIMEOUT, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }

    async fn request(&self, request: RentalRequest) -> RentalResponse {
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", self.port).parse().unwrap();
        // The agent may still be binding its port right after a restart: retry briefly.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match self.client.request(self.peer.unwrap(), vec![addr.clone()], request.clone()).await
            {
                Ok(response) => return response,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("the agent did not answer {request:?}: {e}; log:\n{}", self.logs())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn quote(&self, duration: u64) -> Result<SignedQuote, String> {
        self.quote_for(duration, None, None, None).await
    }

    async fn quote_for(
        &self,
        duration: u64,
        gpus: Option<u32>,
        image: Option<&str>,
        ssh_key: Option<&str>,
    ) -> Result<SignedQuote, String> {
        let request = RentalRequest::Quote {
            renter: self.renter.address(),
            duration,
            image: image.map(str::to_owned),
            ssh_key: ssh_key.map(str::to_owned),
            gpus,
            launch: Default::default(),
        };
        match self.request(request).await {
            RentalResponse::Quote(quote) => Ok(quote),
            RentalResponse::Error { message } => Err(message),
            other => panic!("unexpected answer to a quote request: {other:?}"),
        }
    }

    async fn status(&self, rental_id: u64) -> WorkloadStatus {
        match self.request(RentalRequest::Status { rental_id }).await {
            RentalResponse::Status(status) => status,
            other => panic!("unexpected answer to a status request: {other:?}"),
        }
    }

    /// Polls the rental's status until `done` holds, failing after `TIMEOUT` with the log.
    async fn wait_status(
        &self,
        rental_id: u64,
        what: &str,
        done: impl Fn(&WorkloadStatus) -> bool,
    ) -> WorkloadStatus {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let status = self.status(rental_id).await;
            if done(&status) {
                return status;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "rental {rental_id}: timed out after {TIMEOUT:?} waiting for {what}; last \
                     status {status:?}; agent log:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the devnet's node lists this agent's offer (`listed`) or no longer does.
    async fn wait_listed(&self, listed: bool) {
        if let Err(e) = self.devnet.wait_listed(&self.offer, listed, TIMEOUT).await {
            panic!("{e:#}; agent log:\n{}", self.logs());
        }
    }

    /// Waits until the devnet's node lists this agent's offer with `gpus` GPUs.
    async fn wait_offered(&self, gpus: u64) -> serde_json::Value {
        let url = format!("{}/v1/offers/{}", self.devnet.node_url, self.offer);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let offer: Option<serde_json::Value> = match reqwest::get(&url).await {
                Ok(r) if r.status().is_success() => r.json().await.ok(),
                _ => None,
            };
            if let Some(offer) = offer.filter(|o| o["num_gpus"] == gpus) {
                return offer;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the node does not list offer {} with {gpus} GPU(s) after {TIMEOUT:?}; agent \
                 log:\n{}",
                self.offer,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn renter_escrow(&self) -> Escrow {
        let chain =
            gpuflow_escrow::connect(&self.devnet.rpc_url, Some(self.renter.clone())).unwrap();
        Escrow::new(chain, self.devnet.escrow).await.unwrap()
    }

    async fn open(&self, quote: &SignedQuote, duration: u64) -> u64 {
        self.renter_escrow().await.open(&self.renter, quote, duration).await.unwrap().rental_id
    }
}

fn workload_pid(status: &WorkloadStatus) -> i32 {
    status
        .detail
        .split_once("pid ")
        .and_then(|(_, rest)| rest.split(',').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {:?}", status.detail))
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); the workload's parent may be gone, so look at /proc.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_the_rental_refuses_busy_gpus_ends_on_time_and_is_paid_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_listed(true).await;

    // Two quotes while every GPU is free: both name the same two GPUs.
    let duration = 3600;
    let first = h.quote(duration).await.unwrap();
    let second = h.quote(duration).await.unwrap();
    assert_eq!(first.terms.rate_per_second, u128::from(RATE));
    assert_eq!(first.terms.provider, h.key.address());

    let id = h.open(&first, duration).await;
    let running =
        h.wait_status(id, "the workload to run", |s| s.state == WorkloadState::Running).await;
    assert_eq!(running.gpus, vec!["GPU-test-a", "GPU-test-b"]);
    let pid = workload_pid(&running);
    assert!(alive(pid));
    // Every GPU is taken: searches stop listing the machine.
    h.wait_listed(false).await;

    // The second quote is valid on chain, but its GPUs are taken: refused, not run.
    let busy = h.open(&second, duration).await;
    let refused = h
        .wait_status(busy, "the busy rental's refusal", |s| s.state == WorkloadState::Refused)
        .await;
    assert!(refused.detail.contains("already rented"), "{}", refused.detail);
    assert!(refused.gpus.is_empty());
    let err = h.quote(duration).await.unwrap_err();
    assert!(err.contains("rented"), "{err}");

    // Crash in the middle of the rental, and come back.
    h.crash_agent().await;
    h.start_agent().await;
    let resumed = h.status(id).await;
    assert_eq!(resumed.state, WorkloadState::Running, "{resumed:?}");
    assert_eq!(workload_pid(&resumed), pid, "the running workload is re-attached");
    assert_eq!(resumed.started_at, running.started_at);
    assert_eq!(h.status(busy).await.state, WorkloadState::Refused);
    assert!(h.quote(duration).await.is_err(), "no GPU is free after the restart either");
    assert!(h.logs().contains("re-attached to the running workload"), "agent log:\n{}", h.logs());

    // A clean stop (an upgrade, a service restart) leaves the workload running too.
    h.stop_agent().await;
    assert!(alive(pid), "a clean stop of the agent ended the renter's workload");
    h.start_agent().await;
    let again = h.status(id).await;
    assert_eq!((again.state, workload_pid(&again)), (WorkloadState::Running, pid), "{again:?}");

    // The refused renter gets the whole deposit back with the provider's signed refusal,
    // seconds after opening: nothing is charged for the time it took to learn of it.
    let signature = h.status(busy).await.refusal.expect("a refused rental carries a refusal");
    let renter_before = h.renter_escrow().await.balance_of(h.renter.address()).await.unwrap();
    let refused = h.renter_escrow().await.refuse(busy, signature).await.unwrap();
    assert_eq!(refused.refund, U256::from(RATE * duration), "the whole deposit");
    let renter_after = h.renter_escrow().await.balance_of(h.renter.address()).await.unwrap();
    assert_eq!(renter_after - renter_before, U256::from(RATE * duration));

    // The rental's time runs out on chain: the workload is stopped within seconds.
    h.devnet.advance_time(duration).await.unwrap();
    let time_up = tokio::time::Instant::now();
    let ended = h.wait_status(id, "the rental's end", |s| s.state == WorkloadState::Ended).await;
    assert!(!alive(pid), "workload {pid} still runs after the rental ended");
    let took = time_up.elapsed();
    assert!(took < Duration::from_secs(10), "the workload took {took:?} to stop");
    assert!(ended.ended_at.is_some());

    // Past the dispute window the agent withdraws: exactly what the contract owes.
    h.devnet.advance_time(10).await.unwrap();
    let escrow =
        Escrow::new(gpuflow_escrow::connect(&h.devnet.rpc_url, None).unwrap(), h.devnet.escrow)
            .await
            .unwrap();
    let gross = U256::from(RATE * duration);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let history = loop {
        let history = escrow.history(id).await.unwrap();
        if history.provider_paid + history.fees == gross {
            break history;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no full withdrawal within {TIMEOUT:?} ({history:?}); agent log:\n{}",
            h.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let contract = GpuEscrow::new(h.devnet.escrow, escrow.provider().clone());
    let rental = escrow.rental(id).await.unwrap();
    assert_eq!(rental.withdrawn, gross);
    assert_eq!(contract.earned(U256::from(id)).call().await.unwrap(), gross);
    assert_eq!(contract.withdrawable(U256::from(id)).call().await.unwrap(), U256::ZERO);
    let fee = gross * U256::from(rental.feeBps) / U256::from(10_000);
    assert_eq!(history.fees, fee);
    assert_eq!(escrow.balance_of(h.key.address()).await.unwrap(), gross - fee);
    assert_eq!(escrow.history(busy).await.unwrap().provider_paid, U256::ZERO);
    assert_eq!(contract.earned(U256::from(busy)).call().await.unwrap(), U256::ZERO);
    assert_eq!(contract.withdrawable(U256::from(busy)).call().await.unwrap(), U256::ZERO);

    // `earnings --json` reads the same numbers from the chain.
    let out = Command::new(gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider"))
        .args(["earnings", "--json", "--rpc", &h.devnet.rpc_url])
        .args(["--escrow", &h.devnet.escrow.to_string(), "--key-env", KEY_ENV])
        .env(KEY_ENV, h.key.to_bytes().to_string())
        .env("XDG_CONFIG_HOME", h.dir.join("config"))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let refused_row = rows.iter().find(|r| r["rental_id"] == busy).unwrap();
    assert_eq!(refused_row["earned"], "0", "{refused_row}");
    assert_eq!(refused_row["withdrawable"], "0", "{refused_row}");
    let row = rows.iter().find(|r| r["rental_id"] == id).unwrap();
    assert_eq!(row["earned"], gross.to_string());
    assert_eq!(row["withdrawn"], gross.to_string());
    assert_eq!(row["withdrawable"], "0");

    // The GPUs are free again, and advertised again.
    h.wait_listed(true).await;
    assert!(h.quote(duration).await.is_ok());
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_machine_takes_no_rentals_and_keeps_the_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_listed(true).await;
    let quote = h.quote_for(600, Some(1), None, None).await.unwrap();
    let id = h.open(&quote, 600).await;
    let running = h.wait_status(id, "running", |s| s.state == WorkloadState::Running).await;
    let pid = workload_pid(&running);

    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider");
    let data_dir = dir.path().join("agent");
    let provider = |command: &str| {
        Command::new(&bin)
            .args([command, "--data-dir", data_dir.to_str().unwrap()])
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .output()
    };
    let escrow = h.devnet.escrow.to_string();
    let status = || async {
        let out = Command::new(&bin)
            .args(["status", "--json", "--rpc", &h.devnet.rpc_url, "--escrow", &escrow])
            .args(["--key-env", "STATUS_KEY", "--node", &h.devnet.node_url])
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .env("STATUS_KEY", h.key.to_bytes().to_string())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    // Before the drain: listed with the free GPU, the rental running with its time left.
    // The node learns of the free GPU from the agent's next offer, after the rental starts.
    h.wait_offered(1).await;
    let before = status().await;
    assert_eq!(before["offer_id"], h.offer.as_str(), "{before}");
    assert_eq!(
        (&before["agent_running"], &before["draining"]),
        (&serde_json::json!(true), &serde_json::json!(false))
    );
    assert_eq!(before["nodes"][0]["listed"], true, "{before}");
    assert_eq!(before["nodes"][0]["num_gpus"], 1, "{before}");
    assert_eq!(before["rentals"][0]["rental_id"], id, "{before}");
    let left = before["rentals"][0]["left"].as_u64().unwrap();
    assert!(left > 0 && left <= 600, "{before}");
    let to_earn: u128 = before["to_earn_by_rental_ends"].as_str().unwrap().parse().unwrap();
    assert_eq!(to_earn, u128::from(left) * u128::from(RATE / 2), "{before}");

    let out = provider("drain").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The offer goes, quotes are refused, and the running rental is untouched.
    h.wait_listed(false).await;
    let during = status().await;
    assert_eq!(
        (&during["draining"], &during["nodes"][0]["listed"]),
        (&serde_json::json!(true), &serde_json::json!(false))
    );
    assert_eq!(during["rentals"][0]["rental_id"], id, "{during}");
    let refused = h.quote_for(60, Some(1), None, None).await.unwrap_err();
    assert!(refused.contains("draining for maintenance"), "{refused}");
    assert_eq!(h.status(id).await.state, WorkloadState::Running);
    assert!(alive(pid), "the rental's workload still runs");

    // Undrained, the free GPU is offered and quoted again.
    let out = provider("undrain").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    h.wait_offered(1).await;
    h.quote_for(60, Some(1), None, None).await.expect("quotes again");
    assert_eq!(h.status(id).await.state, WorkloadState::Running);
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_working_machine_and_names_each_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_listed(true).await;
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider");
    let (escrow, gpus) = (h.devnet.escrow.to_string(), dir.path().join("gpus.json"));
    let data_dir = dir.path().join("agent");
    let listen = format!("/ip4/127.0.0.1/tcp/{}", h.port);
    let doctor = |key: String, extra: &[&str]| {
        let mut command = Command::new(&bin);
        command
            .args(["doctor", "--json", "--rpc", &h.devnet.rpc_url, "--escrow", &escrow])
            .args(["--key-env", "DOCTOR_KEY", "--data-dir", data_dir.to_str().unwrap()])
            .args(["--listen", &listen, "--node", &h.devnet.node_url])
            .args(extra)
            .env("DOCTOR_KEY", key)
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null());
        command.output()
    };
    let checks = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("doctor printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
        })
    };
    let detail = |report: &serde_json::Value, name: &str| -> (bool, String) {
        let check = report["checks"].as_array().unwrap().iter().find(|c| c["check"] == name);
        let check = check.unwrap_or_else(|| panic!("no {name} check in {report}"));
        (check["ok"].as_bool().unwrap(), check["detail"].as_str().unwrap().to_owned())
    };
    let simulated = ["--simulate-gpus", gpus.to_str().unwrap(), "--price-per-hour", "0.36"];

    // The running agent's machine passes every check.
    let out = doctor(h.key.to_bytes().to_string(), &simulated).await.unwrap();
    let report = checks(&out);
    assert!(out.status.success() && report["ok"] == true, "{report}");
    assert!(detail(&report, "listen port").1.contains("running agent"), "{report}");
    assert!(detail(&report, "offer").1.contains(&h.offer), "{report}");

    // No NVML here: the GPUs fail, with the fix.
    let out = doctor(h.key.to_bytes().to_string(), &["--price-per-hour", "0.36"]).await.unwrap();
    assert!(!out.status.success());
    let (ok, why) = detail(&checks(&out), "gpus");
    assert!(!ok && why.contains("install the NVIDIA driver"), "{why}");

    // A price that is not whole units per second, and a wallet without gas.
    let bad_price = ["--simulate-gpus", gpus.to_str().unwrap(), "--price-per-hour", "0.3601"];
    let empty = PrivateKeySigner::random().to_bytes().to_string();
    let out = doctor(empty, &bad_price).await.unwrap();
    assert!(!out.status.success());
    let report = checks(&out);
    let (ok, why) = detail(&report, "prices");
    assert!(!ok && why.contains("whole number of token units per second"), "{why}");
    let (ok, why) = detail(&report, "payout wallet");
    assert!(!ok && why.contains("send it some ETH"), "{why}");
    assert!(detail(&report, "chain").0, "{report}");
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_is_announced_and_no_rental_runs_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_listed(true).await;
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider");
    let data_dir = dir.path().join("agent");
    let maintenance = |args: &[&str]| {
        Command::new(&bin)
            .arg("maintenance")
            .args(args)
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .output()
    };
    // In 18 minutes, for an hour: a quote (usable for two minutes) may run 16 minutes.
    let out = maintenance(&["--in", "0.3", "--hours", "1"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let window: gpuflow_protocol::Maintenance =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("maintenance.json")).unwrap())
            .unwrap();
    assert_eq!(window.until - window.from, 3600);

    // The node hears it in the signed heartbeats.
    let peer = h.peer.unwrap().to_string();
    let url = format!("{}/v1/providers/{peer}", h.devnet.node_url);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let detail: gpuflow_protocol::api::ProviderDetail =
            reqwest::get(&url).await.unwrap().json().await.unwrap();
        let heard = detail.last_heartbeat.and_then(|hb| {
            hb.envelope.open::<gpuflow_protocol::Heartbeat>().ok()?.body.maintenance
        });
        if heard == Some(window) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no heartbeat announced the window");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Wait for the agent to read the file, then: a rental that would run into the window is
    // refused, a shorter one is quoted with its maximum capped before the window.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let refused = loop {
        match h.quote_for(1_800, Some(1), None, None).await {
            Err(why) => break why,
            Ok(_) => {
                assert!(tokio::time::Instant::now() < deadline, "the agent never read the window");
                tokio::time::sleep(Duration::from_millis(200)).await
            }
        }
    };
    assert!(refused.contains(&format!("maintenance from unix time {}", window.from)), "{refused}");
    let quote = h.quote_for(600, Some(1), None, None).await.unwrap();
    assert!(quote.terms.deadline + quote.terms.max_duration <= window.from, "{:?}", quote.terms);

    // Inside a window, the offer is withdrawn and nothing is quoted; withdrawn, it is back.
    let out = maintenance(&["--in", "0", "--hours", "1"]).await.unwrap();
    assert!(out.status.success());
    h.wait_listed(false).await;
    assert!(h.quote_for(60, Some(1), None, None).await.unwrap_err().contains("maintenance"));
    let out = maintenance(&["--off"]).await.unwrap();
    assert!(out.status.success());
    h.wait_listed(true).await;
    h.quote_for(60, Some(1), None, None).await.expect("quotes again");
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_settings_are_checked_before_a_quote_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_offered(2).await;
    let ask = |launch: gpuflow_protocol::Launch| RentalRequest::Quote {
        renter: h.renter.address(),
        duration: 600,
        image: None,
        ssh_key: None,
        gpus: Some(1),
        launch,
    };
    let reserved =
        gpuflow_protocol::Launch { env: vec!["GPUFLOW_RENTAL_ID=1".into()], ..Default::default() };
    match h.request(ask(reserved)).await {
        RentalResponse::Error { message } => {
            assert!(message.contains("set by the provider"), "{message}")
        }
        other => panic!("a reserved variable was quoted: {other:?}"),
    }
    // This agent runs processes: it cannot publish a port, and says so before any money.
    let port = gpuflow_protocol::Launch { ports: vec![8888], ..Default::default() };
    match h.request(ask(port)).await {
        RentalResponse::Error { message } => assert!(message.contains("--port"), "{message}"),
        other => panic!("a port was quoted by a process runtime: {other:?}"),
    }
    let env = gpuflow_protocol::Launch { env: vec!["MODE=train".into()], ..Default::default() };
    assert!(matches!(h.request(ask(env)).await, RentalResponse::Quote(_)));
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renters_share_a_machine_gpu_by_gpu_and_never_the_same_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_offered(2).await;
    let duration = 600;

    let none = h.quote_for(duration, Some(0), None, None).await.unwrap_err();
    assert!(none.contains("at least one GPU"), "{none}");
    let many = h.quote_for(duration, Some(3), None, None).await.unwrap_err();
    assert!(many.contains("only 2") && many.contains("--gpus"), "{many}");

    // One GPU of two, at half the machine's price, recorded in the signed terms.
    let one = h.quote_for(duration, Some(1), None, None).await.unwrap();
    assert_eq!(one.terms.rate_per_second, u128::from(RATE / 2));
    let rented = one.terms.rented().map(|(offer, n)| (offer.to_string(), n));
    assert_eq!(rented, Some((h.offer.clone(), 1)));
    // A second quote issued while both GPUs are free names the same first GPU.
    let stale = h.quote_for(duration, Some(1), None, None).await.unwrap();
    let first = h.open(&one, duration).await;
    let running =
        h.wait_status(first, "the first workload", |s| s.state == WorkloadState::Running).await;
    assert_eq!(running.gpus, vec!["GPU-test-a"]);

    // The offer shrinks to the GPU still free, at its share of the price.
    let offer = h.wait_offered(1).await;
    assert_eq!(offer["price_per_second"], (RATE / 2).to_string());
    let err = h.quote_for(duration, Some(2), None, None).await.unwrap_err();
    assert!(err.contains("only 1"), "{err}");

    // The stale quote's GPU is taken: refused, never run twice.
    let clash = h.open(&stale, duration).await;
    let refused =
        h.wait_status(clash, "the clash's refusal", |s| s.state == WorkloadState::Refused).await;
    assert!(refused.detail.contains("GPU-test-a is already rented"), "{}", refused.detail);

    // The other GPU goes to the next renter; both workloads run side by side.
    let rest = h.quote(duration).await.unwrap();
    assert_eq!(rest.terms.rented().map(|(_, n)| n), Some(1), "whole machine = what is free");
    assert_eq!(rest.terms.rate_per_second, u128::from(RATE / 2));
    let second = h.open(&rest, duration).await;
    let other =
        h.wait_status(second, "the second workload", |s| s.state == WorkloadState::Running).await;
    assert_eq!(other.gpus, vec!["GPU-test-b"]);
    assert!(alive(workload_pid(&running)) && alive(workload_pid(&other)));
    h.wait_listed(false).await;
    let err = h.quote_for(duration, Some(1), None, None).await.unwrap_err();
    assert!(err.contains("every GPU is rented"), "{err}");

    // Stopping the first rental frees its GPU, and only that one.
    h.renter_escrow().await.stop(first).await.unwrap();
    h.wait_status(first, "the first rental's end", |s| s.state == WorkloadState::Ended).await;
    let offer = h.wait_offered(1).await;
    assert_eq!(offer["envelope"]["body"]["gpus"][0]["uuid"], "GPU-test-a", "{offer}");
    assert_eq!(h.status(second).await.state, WorkloadState::Running);
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rental_whose_terms_differ_from_the_quote_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.extra =
        vec!["--allow-image".into(), "ubuntu:*".into(), "--min-duration-secs".into(), "60".into()];
    h.workload = format!(
        "echo up $GPUFLOW_RENTAL_ID $GPUFLOW_IMAGE $GPUFLOW_SSH_KEY; {}",
        until_test_ends()
    );
    h.start_agent().await;
    // The offer carries the allow-list, so that searches find only what the agent runs.
    let offer = h.wait_offered(2).await;
    assert_eq!(offer["envelope"]["body"]["allowed_images"], serde_json::json!(["ubuntu:*"]));

    // Only allowed images and real public keys are quoted for.
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtest renter@laptop";
    let err = h.quote_for(600, None, Some("evil/miner:latest"), None).await.unwrap_err();
    assert!(err.contains("not allowed on this provider") && err.contains("ubuntu:*"), "{err}");
    let err = h.quote_for(600, None, Some("ubuntu:22.04"), Some("hello")).await.unwrap_err();
    assert!(err.contains("not an SSH public key"), "{err}");
    let issued = h.quote_for(600, None, Some("ubuntu:22.04"), Some(key)).await.unwrap();

    // A quote the agent never issued, though validly signed with its key (a copied key,
    // another installation): a lower rate and a nonce the agent does not know.
    let chain_id = h.renter_escrow().await.provider().get_chain_id().await.unwrap();
    let domain = gpuflow_escrow::domain(chain_id, h.devnet.escrow);
    let forged = gpuflow_escrow::sign_quote(
        &h.key,
        QuoteTerms {
            rate_per_second: 1,
            nonce: issued.terms.nonce + U256::from(1_000),
            offer_id: B256::ZERO,
            renter: h.renter.address(),
            ..issued.terms.clone()
        },
        &domain,
    )
    .unwrap();
    let id = h.open(&forged, 600).await;
    let refused = h.wait_status(id, "the refusal", |s| s.state == WorkloadState::Refused).await;
    assert!(refused.detail.contains("terms differ from the quote"), "{}", refused.detail);
    assert!(refused.gpus.is_empty());
    assert!(h.logs().contains("rental refused"), "the refusal is logged:\n{}", h.logs());

    // A quote for 600 s used to open 30 s: below the provider's minimum, refused.
    let short = h.quote(600).await.unwrap();
    let brief = h.open(&short, 30).await;
    let refused = h.wait_status(brief, "the refusal", |s| s.state == WorkloadState::Refused).await;
    assert!(refused.detail.contains("shorter than this provider's minimum of 60 s"), "{refused:?}");

    // The renter sees it with `gpuflow status`, and how to get the deposit back.
    let status = |json: bool| {
        let mut command = Command::new(gpuflow_devnet::bin_dir().unwrap().join("gpuflow"));
        if json {
            command.arg("--json");
        }
        command
            .args(["status", &id.to_string()])
            .env("GPUFLOW_RPC", &h.devnet.rpc_url)
            .env("GPUFLOW_ESCROW", h.devnet.escrow.to_string())
            .env("GPUFLOW_NODE", &h.devnet.node_url)
            .env("XDG_CONFIG_HOME", h.dir.join("renter-config"))
            .output()
    };
    let out = status(true).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["workload"]["state"], "refused", "{shown}");
    assert!(shown["workload"]["detail"].as_str().unwrap().contains("signed a refusal"), "{shown}");
    assert!(shown["workload"]["refusal"].is_string(), "{shown}");
    let text = String::from_utf8_lossy(&status(false).await.unwrap().stdout).into_owned();
    assert!(text.contains(&format!("run `gpuflow stop {id}`")), "{text}");

    // No GPU was taken: the real quote still opens and runs.
    let real = h.open(&issued, 600).await;
    h.wait_status(real, "the quoted rental to run", |s| s.state == WorkloadState::Running).await;

    // Its renter reads the workload's logs; nobody else does.
    let logs = |signer: PrivateKeySigner, issued_at: u64| {
        let message = logs_request_message(chain_id, h.devnet.escrow, real, issued_at);
        let signature = signer.sign_message_sync(message.as_bytes()).unwrap();
        RentalRequest::Logs { rental_id: real, issued_at, signature }
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match h.request(logs(h.renter.clone(), unix_now())).await {
            // The image and key of the quote reached the workload.
            RentalResponse::Logs { lines }
                if lines == vec![format!("up {real} ubuntu:22.04 {key}")] =>
            {
                break;
            }
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "no workload line within {TIMEOUT:?}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match h.request(logs(PrivateKeySigner::random(), unix_now())).await {
        RentalResponse::Error { message } => assert!(message.contains("renter"), "{message}"),
        other => panic!("a stranger read the logs: {other:?}"),
    }
    // The renter's own signature, made for the same rental id on another chain: refused.
    let issued_at = unix_now();
    let elsewhere = logs_request_message(chain_id + 1, h.devnet.escrow, real, issued_at);
    let signature = h.renter.sign_message_sync(elsewhere.as_bytes()).unwrap();
    match h.request(RentalRequest::Logs { rental_id: real, issued_at, signature }).await {
        RentalResponse::Error { message } => assert!(message.contains("renter"), "{message}"),
        other => panic!("a signature for another chain was accepted: {other:?}"),
    }
    match h.request(logs(h.renter.clone(), unix_now() - 3600)).await {
        RentalResponse::Error { message } => assert!(message.contains("fresh"), "{message}"),
        other => panic!("an old signature was accepted: {other:?}"),
    }

    // Heartbeats reach the node, with the simulated GPUs' fixed health and the rental.
    let url = format!("{}/v1/providers/{}", h.devnet.node_url, h.peer.unwrap());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let heartbeat = loop {
        if let Ok(response) = reqwest::get(&url).await
            && let Ok(detail) = response.json::<serde_json::Value>().await
            && detail["last_heartbeat"]["active_rentals"] == 1
        {
            break detail["last_heartbeat"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no heartbeat at {url} within {TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let gpus = heartbeat["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2, "{heartbeat}");
    assert_eq!(gpus[0]["temperature_c"], 40, "{heartbeat}");
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rental_a_reorganisation_takes_away_is_forgotten_and_its_gpus_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_offered(2).await;
    let chain = gpuflow_escrow::connect(&h.devnet.rpc_url, None).unwrap();
    let snapshot: serde_json::Value = chain.raw_request("evm_snapshot".into(), ()).await.unwrap();

    let quote = h.quote(600).await.unwrap();
    let id = h.open(&quote, 600).await;
    let running = h.wait_status(id, "the workload", |s| s.state == WorkloadState::Running).await;
    let pid = workload_pid(&running);
    h.wait_listed(false).await;

    // The blocks since the snapshot are replaced by others without the rental.
    let reverted: bool = chain.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(reverted);
    let _: serde_json::Value = chain.raw_request("evm_mine".into(), ()).await.unwrap();
    let gone = h
        .wait_status(id, "the rental to be forgotten", |s| s.state == WorkloadState::Unknown)
        .await;
    assert!(gone.gpus.is_empty(), "{gone:?}");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while alive(pid) {
        assert!(tokio::time::Instant::now() < deadline, "workload {pid} still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.wait_offered(2).await;
    assert!(h.logs().contains("left the chain in a reorganisation"), "{}", h.logs());

    // The same quote opens it again on the new chain: the agent runs it like any other.
    let again = h.open(&quote, 600).await;
    assert_eq!(again, id, "the escrow's counter went back with the chain");
    let rerun =
        h.wait_status(id, "the reopened workload", |s| s.state == WorkloadState::Running).await;
    assert_ne!(workload_pid(&rerun), pid);
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_selected_gpus_are_offered_and_rented() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    // The machine's second GPU only; the machine price covers what is offered.
    h.extra = vec!["--offer-gpus".into(), "1".into()];
    h.start_agent().await;
    let offer = h.wait_offered(1).await;
    assert_eq!(offer["envelope"]["body"]["gpus"][0]["uuid"], "GPU-test-b", "{offer}");
    assert_eq!(offer["price_per_second"], RATE.to_string());
    let quote = h.quote(600).await.unwrap();
    let id = h.open(&quote, 600).await;
    let running = h.wait_status(id, "the workload", |s| s.state == WorkloadState::Running).await;
    assert_eq!(running.gpus, vec!["GPU-test-b"]);
    // GPU-test-a was never offered: with GPU-test-b rented, nothing is.
    h.wait_listed(false).await;
    let err = h.quote(600).await.unwrap_err();
    assert!(err.contains("every GPU is rented"), "{err}");
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdraw_to_sends_the_earnings_to_another_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    let quote = h.quote(600).await.unwrap();
    let id = h.open(&quote, 600).await;
    h.wait_status(id, "the workload to run", |s| s.state == WorkloadState::Running).await;
    // The agent is down while the rental ends and its dispute window passes, so what it
    // earned waits in the escrow for the command.
    h.stop_agent().await;
    h.devnet.advance_time(600 + 60).await.unwrap();

    let withdraw = |extra: &[&str]| {
        let mut command = Command::new(gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider"));
        command
            .args(["withdraw", "--json", "--rpc", &h.devnet.rpc_url])
            .args(["--escrow", &h.devnet.escrow.to_string(), "--key-env", KEY_ENV])
            .args(extra)
            .env(KEY_ENV, h.key.to_bytes().to_string())
            .env("XDG_CONFIG_HOME", h.dir.join("config"));
        command
    };
    let out = withdraw(&["--to", &Address::ZERO.to_string()]).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("zero address"));

    let recipient = PrivateKeySigner::random().address();
    let out = withdraw(&["--to", &recipient.to_string()]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let paid: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(paid[0]["rental_id"], id, "{paid}");
    let escrow = h.renter_escrow().await;
    let gross = U256::from(RATE * 600);
    let fee = gross * U256::from(escrow.rental(id).await.unwrap().feeBps) / U256::from(10_000);
    assert_eq!(escrow.balance_of(recipient).await.unwrap(), gross - fee);
    assert_eq!(escrow.balance_of(h.key.address()).await.unwrap(), U256::ZERO);
    // Nothing is left: a second withdrawal sends nothing and says so.
    let out = withdraw(&[]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earnings_past_the_threshold_are_withdrawn_while_the_rental_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    // 0.01 tokens is 10,000 units: 100 seconds at 100 units per second.
    h.extra = vec!["--withdraw-threshold".into(), "0.01".into()];
    h.start_agent().await;
    let quote = h.quote(3600).await.unwrap();
    let id = h.open(&quote, 3600).await;
    h.wait_status(id, "the workload to run", |s| s.state == WorkloadState::Running).await;

    let escrow = h.renter_escrow().await;
    h.devnet.advance_time(200).await.unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let history = loop {
        let history = escrow.history(id).await.unwrap();
        if !history.provider_paid.is_zero() {
            break history;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing withdrawn within {TIMEOUT:?}; agent log:\n{}",
            h.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rental = escrow.rental(id).await.unwrap();
    assert_eq!(history.provider_paid + history.fees, rental.withdrawn);
    assert!(rental.withdrawn >= U256::from(RATE * 100), "{}", rental.withdrawn);
    assert_eq!(escrow.balance_of(h.key.address()).await.unwrap(), history.provider_paid);
    assert_eq!(h.status(id).await.state, WorkloadState::Running, "still running");
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_with_a_node_url_writes_the_nodes_addresses_to_bootstrap_from() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(DevnetOptions::for_checkout(dir.path().join("devnet")).unwrap())
        .await
        .unwrap();
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider");
    let home = dir.path().join("home");
    let init = |node: &str| {
        Command::new(&bin)
            .args(["init", "--node", node])
            .env("XDG_CONFIG_HOME", &home)
            .env("GPUFLOW_PROVIDER_PASSWORD", "correct horse")
            .env_remove("GPUFLOW_DATA_DIR")
            .stdin(Stdio::null())
            .output()
    };
    // A URL where no node answers writes nothing and says what to check.
    let out = init("http://127.0.0.1:9").await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:9/v1/node") && stderr.contains("check the URL"), "{stderr}");
    assert!(!home.join("gpuflow").exists(), "something was written");

    let out = init(&devnet.node_url).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config =
        gpuflow_provider::config::FileConfig::load(&home.join("gpuflow/provider.toml")).unwrap();
    assert_eq!(config.bootstrap, std::slice::from_ref(&devnet.node_p2p));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&devnet.node_p2p));
    devnet.shutdown().await;
}

#[tokio::test]
async fn init_writes_identity_keystore_and_a_commented_config() {
    let dir = tempfile::tempdir().unwrap();
    let bin = gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider");
    let init_with = |password: &str| {
        let mut command = Command::new(&bin);
        command
            .arg("init")
            .args(["--escrow", "0x0000000000000000000000000000000000000001"])
            .env("XDG_CONFIG_HOME", dir.path())
            .env("GPUFLOW_PROVIDER_PASSWORD", password)
            .env_remove("GPUFLOW_DATA_DIR")
            .env_remove("GPUFLOW_TEST_LIGHT_KDF")
            .stdin(Stdio::null());
        command.output()
    };
    // Empty and short passwords are refused, with the minimum named, before anything is
    // written.
    for short in ["", "a", "seven77"] {
        let out = init_with(short).await.unwrap();
        assert!(!out.status.success(), "{short:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("at least 8 characters"), "{stderr}");
        assert!(!dir.path().join("gpuflow").exists(), "something was written for {short:?}");
    }
    let init = || init_with("correct horse");
    let out = init().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);

    let config_path = dir.path().join("gpuflow/provider.toml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    assert!(text.starts_with("# gpuflow provider configuration"), "{text}");
    let config = gpuflow_provider::config::FileConfig::load(&config_path).unwrap();
    assert_eq!(config.escrow, Some("0x0000000000000000000000000000000000000001".parse().unwrap()));
    let keystore = config.keystore.unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&keystore).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "only the provider reads its keystore");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keystore).unwrap()).unwrap();
    let kdf = &json["crypto"]["kdfparams"];
    assert_eq!(
        (&kdf["n"], &kdf["r"], &kdf["p"]),
        (&262144.into(), &8.into(), &1.into()),
        "geth's standard scrypt cost: {kdf}"
    );
    let signer = PrivateKeySigner::decrypt_keystore(&keystore, "correct horse").unwrap();
    assert!(stdout.contains(&signer.address().to_string()), "{stdout}");
    assert!(!text.contains(&signer.to_bytes().to_string()[2..]), "the key is not in the config");
    assert!(config.data_dir.unwrap().join("identity.key").exists());

    // A second init refuses to replace the keystore that holds the earnings address.
    let again = init().await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[tokio::test]
async fn a_key_given_instead_of_a_variable_name_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKeySigner::random().to_bytes().to_string();
    let hex = key.trim_start_matches("0x");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let escrow = "0x0000000000000000000000000000000000000001";
    for args in [
        vec!["earnings", "--key-env", &key],
        vec!["earnings", "--key-env", hex],
        vec!["withdraw", "--json", "--key-env", &key],
        vec!["earnings", "--key-env", "my key"],
        vec!["earnings", "--keystore", &key],
    ] {
        let out = Command::new(gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider"))
            .args(&args)
            .args(["--rpc", &closed, "--escrow", escrow])
            .env("XDG_CONFIG_HOME", dir.path())
            .env("GPUFLOW_PROVIDER_PASSWORD", "correct horse")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{args:?}");
        assert!(!stdout.contains(hex) && !stderr.contains(hex), "{args:?}: {stderr}");
        if args[1] == "--key-env" {
            assert!(stderr.contains("looks like a secret"), "{args:?}: {stderr}");
            assert!(stderr.contains("NAME of an environment variable"), "{stderr}");
            assert!(!stderr.contains("my key"), "{stderr}");
        }
    }
}

#[tokio::test]
async fn the_provider_opens_its_own_wallet_never_the_renters_and_says_which() {
    use gpuflow_escrow::keystore::{Kdf, create_with};
    let dir = tempfile::tempdir().unwrap();
    let (renter, provider) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let keystores = dir.path().join("keystores");
    let renter_keystore =
        create_with(&keystores, "renter.json", &renter, "renter pass", Kdf::Light);
    let renter_keystore = renter_keystore.unwrap().display().to_string();
    let provider_keystore =
        create_with(&keystores, "provider.json", &provider, "provider pass", Kdf::Light);
    let provider_keystore = provider_keystore.unwrap().display().to_string();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let earnings = |env: &[(&str, &str)], config: Option<&Path>| {
        let mut command = Command::new(gpuflow_devnet::bin_dir().unwrap().join("gpuflow-provider"));
        for var in ["KEYSTORE", "PASSWORD", "PROVIDER_KEYSTORE", "PROVIDER_PASSWORD", "LOG"] {
            command.env_remove(format!("GPUFLOW_{var}"));
        }
        command
            .args(["earnings", "--rpc", &closed])
            .args(["--escrow", "0x0000000000000000000000000000000000000001"])
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        async move {
            let out = command.output().await.unwrap();
            assert!(!out.status.success(), "the chain is unreachable");
            String::from_utf8_lossy(&out.stderr).into_owned()
        }
    };
    let provider_address = provider.address().to_string();
    let renter_address = renter.address().to_string();

    // With only the renter's variables set (a shell with the devnet's env file), the
    // renter's wallet is never opened: the error names the provider's own variables.
    let renters =
        [("GPUFLOW_KEYSTORE", renter_keystore.as_str()), ("GPUFLOW_PASSWORD", "renter pass")];
    let stderr = earnings(&renters, None).await;
    assert!(
        stderr.contains("no payout wallet") && stderr.contains("GPUFLOW_PROVIDER_KEYSTORE"),
        "{stderr}"
    );
    assert!(
        stderr.contains("GPUFLOW_KEYSTORE is set") && stderr.contains("GPUFLOW_PROVIDER_PASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains(&renter_address), "{stderr}");

    // Its own variables open its own wallet, and the log says which and from where.
    let own = [
        renters[0],
        renters[1],
        ("GPUFLOW_PROVIDER_KEYSTORE", provider_keystore.as_str()),
        ("GPUFLOW_PROVIDER_PASSWORD", "provider pass"),
    ];
    let stderr = earnings(&own, None).await;
    let opened = stderr
        .lines()
        .find(|l| l.contains("payout wallet opened"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(opened.contains(&provider_address) && opened.contains(&provider_keystore), "{opened}");
    assert!(
        opened.contains("GPUFLOW_PROVIDER_KEYSTORE") && !opened.contains("provider pass"),
        "{opened}"
    );
    assert!(stderr.contains("cannot reach the chain"), "{stderr}");
    assert!(!stderr.contains(&renter_address), "{stderr}");

    // A wrong password: the error names the wallet, its keystore, where it was chosen and
    // the variable to fix.
    let wrong = [
        ("GPUFLOW_PROVIDER_KEYSTORE", provider_keystore.as_str()),
        ("GPUFLOW_PROVIDER_PASSWORD", "renter pass"),
    ];
    let stderr = earnings(&wrong, None).await;
    for needle in [
        provider_address.as_str(),
        provider_keystore.as_str(),
        "from GPUFLOW_PROVIDER_KEYSTORE",
        "wrong password (check GPUFLOW_PROVIDER_PASSWORD)",
    ] {
        assert!(stderr.contains(needle), "no `{needle}` in {stderr}");
    }
    assert!(!stderr.contains("renter pass"), "{stderr}");

    // The config file's keystore, named as such.
    let config = dir.path().join("provider.toml");
    std::fs::write(&config, format!("keystore = \"{provider_keystore}\"\n")).unwrap();
    let stderr = earnings(&[("GPUFLOW_PROVIDER_PASSWORD", "provider pass")], Some(&config)).await;
    let opened = stderr
        .lines()
        .find(|l| l.contains("payout wallet opened"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(opened.contains(&provider_address) && opened.contains("provider.toml"), "{opened}");
}

/// A runtime whose starts wait for the test's permission, as a long image pull waits for
/// the registry; it records the rentals whose workload it stopped.
struct GatedRuntime {
    inner: ProcessRuntime,
    gate: tokio::sync::Semaphore,
    stopped: std::sync::Mutex<Vec<u64>>,
}

impl Runtime for GatedRuntime {
    fn start<'a>(&'a self, spec: &'a WorkloadSpec) -> BoxFuture<'a, Result<Started, RuntimeError>> {
        Box::pin(async move {
            let _permit = self.gate.acquire().await.expect("the gate stays open");
            self.inner.start(spec).await
        })
    }

    fn is_running<'a>(&'a self, rental_id: u64, handle: &'a str) -> BoxFuture<'a, bool> {
        self.inner.is_running(rental_id, handle)
    }

    fn stop<'a>(&'a self, rental_id: u64, handle: &'a str) -> BoxFuture<'a, ()> {
        self.stopped.lock().unwrap().push(rental_id);
        self.inner.stop(rental_id, handle)
    }

    fn remove_volume<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        self.inner.remove_volume(key)
    }

    fn logs<'a>(
        &'a self,
        rental_id: u64,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, RuntimeError>> {
        self.inner.logs(rental_id, handle)
    }
}

impl Harness {
    /// Runs the agent inside the test process with `runtime`, instead of as a process.
    async fn start_in_process(&mut self, runtime: Arc<dyn Runtime>) {
        let data_dir = self.dir.join("agent");
        let identity = Identity::generate();
        let client = gpuflow_escrow::connect(&self.devnet.rpc_url, Some(self.key.clone())).unwrap();
        let escrow = Escrow::new(client, self.devnet.escrow).await.unwrap();
        let inventory =
            gpuflow_provider::gpus::inventory(Some(&self.dir.join("gpus.json"))).unwrap();
        let gpu_rates = gpuflow_provider::config::gpu_rates(
            &inventory.gpus,
            Some("0.36"),
            &Default::default(),
            escrow.decimals().await.unwrap(),
        )
        .unwrap();
        let chain = ChainContext {
            chain_id: escrow.provider().get_chain_id().await.unwrap(),
            domain: escrow.domain().await.unwrap(),
            dispute_window: escrow.dispute_window().await.unwrap(),
            next_block: escrow.block_number().await.unwrap(),
        };
        let listen: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", self.port).parse().unwrap();
        let (network, events, event_loop) = gpuflow_p2p::new(NetworkConfig {
            identity: identity.clone(),
            listen: vec![listen],
            bootstrap: vec![self.devnet.node_p2p.parse().unwrap()],
            subscribe_offers: false,
            serve_requests: true,
        })
        .unwrap();
        tokio::spawn(event_loop.run());
        self.peer = Some(identity.peer_id());
        let config = AgentConfig {
            identity,
            payout: self.key.clone(),
            inventory,
            gpu_rates,
            region: "test".into(),
            inet_down_mbps: None,
            inet_up_mbps: None,
            host: Host { cpus: 12, memory_bytes: 96_000_000_000, disk_free_bytes: Some(2 << 40) },
            pull_ahead: Vec::new(),
            data_dir: data_dir.clone(),
            poll_interval: Duration::from_millis(200),
            offer_interval: Duration::from_secs(120),
            offer_ttl: Duration::from_secs(360),
            heartbeat_interval: Duration::from_secs(1),
            min_duration: 1,
            max_duration: 7 * 24 * 3600,
            quote_validity: Duration::from_secs(300),
            withdraw_threshold: U256::ZERO,
            allowed_images: Vec::new(),
            publishes_ports: false,
            volume_grace: Duration::from_secs(3600),
        };
        let store = Store::open(&data_dir.join("provider.db")).unwrap();
        let health = tokio::sync::watch::channel(Vec::new()).1;
        let parts = AgentParts { network, escrow, store, runtime, health };
        let agent = Agent::start(config, parts, chain).await.unwrap();
        tokio::spawn(agent.run(events, std::future::pending()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_workload_start_holds_up_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    let runtime = Arc::new(GatedRuntime {
        inner: ProcessRuntime::new(h.workload.clone(), dir.path().join("workloads")),
        gate: tokio::sync::Semaphore::new(0),
        stopped: Default::default(),
    });
    h.start_in_process(runtime.clone()).await;
    let duration = 600;

    // The first rental's workload is stuck starting...
    let quote = h.quote_for(duration, Some(1), None, None).await.unwrap();
    let first = h.open(&quote, duration).await;
    let starting =
        h.wait_status(first, "the first start", |s| s.state == WorkloadState::Starting).await;
    assert_eq!(starting.gpus, vec!["GPU-test-a"]);
    assert_eq!(starting.detail, "starting the workload");

    // ...while the agent still quotes, watches the chain and answers: a second rental opens,
    // is stopped by its renter before its workload is up, and ends.
    let quote = h.quote_for(duration, Some(1), None, None).await.unwrap();
    let second = h.open(&quote, duration).await;
    h.wait_status(second, "the second start", |s| s.state == WorkloadState::Starting).await;
    h.renter_escrow().await.stop(second).await.unwrap();
    h.wait_status(second, "the stopped rental's end", |s| s.state == WorkloadState::Ended).await;
    assert!(runtime.stopped.lock().unwrap().is_empty(), "nothing was running to stop yet");

    // The starts complete: the first runs; the stopped one's workload is stopped at once.
    runtime.gate.add_permits(2);
    let running =
        h.wait_status(first, "the first workload", |s| s.state == WorkloadState::Running).await;
    assert!(alive(workload_pid(&running)));
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !runtime.stopped.lock().unwrap().contains(&second) {
        assert!(tokio::time::Instant::now() < deadline, "the late workload was never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.status(second).await.state, WorkloadState::Ended);
    assert_eq!(*runtime.stopped.lock().unwrap(), vec![second]);
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_holds_its_gpus_from_other_renters_until_used_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.extra = vec!["--quote-validity-secs".into(), "30".into()];
    h.start_agent().await;
    h.wait_offered(2).await;
    let duration = 600;
    // The other renter asks from a machine of its own (a peer of its own).
    let client = renter_client();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", h.port).parse().unwrap();
    let ask_other = |gpus: Option<u32>| {
        let request = RentalRequest::Quote {
            renter: Address::repeat_byte(0x77),
            duration,
            image: None,
            ssh_key: None,
            gpus,
            launch: Default::default(),
        };
        let (client, peer, addr) = (client.clone(), h.peer.unwrap(), addr.clone());
        async move { client.request(peer, vec![addr], request).await.unwrap() }
    };

    // One renter's quote holds the whole machine: nobody else is quoted those GPUs, so two
    // renters can never both pay for them.
    let held = h.quote(duration).await.unwrap();
    for gpus in [None, Some(1)] {
        match ask_other(gpus).await {
            RentalResponse::Error { message } => {
                assert!(message.contains("pending quote") && message.contains("30 s"), "{message}")
            }
            answer => panic!("a second renter was quoted GPUs already quoted: {answer:?}"),
        }
    }
    // The renter asking again gets its own GPUs back (its earlier quote lets go of them).
    let again = h.quote(duration).await.unwrap();
    assert_ne!(again.terms.nonce, held.terms.nonce);

    // Once the chain's clock passed the deadline, the quote can open nothing: its GPUs are
    // free for others.
    h.devnet.advance_time(31).await.unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let quote = loop {
        match ask_other(Some(1)).await {
            RentalResponse::Quote(quote) => break quote,
            answer => assert!(
                tokio::time::Instant::now() < deadline,
                "the expired quote still holds the GPUs after {TIMEOUT:?}: {answer:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(quote.terms.renter, Address::repeat_byte(0x77));
    // The used quote lets go of its reservation for the rental itself: the rest is quoted.
    let rest = h.quote(duration).await.unwrap();
    assert_eq!(rest.terms.rented().map(|(_, n)| n), Some(1), "only the GPU not held");
    let id = h.open(&rest, duration).await;
    let running = h.wait_status(id, "the rental", |s| s.state == WorkloadState::Running).await;
    assert_eq!(running.gpus, vec!["GPU-test-b"]);
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

/// A runtime that cannot start anything, as when the renter's image cannot be pulled.
struct BrokenRuntime;

impl Runtime for BrokenRuntime {
    fn start<'a>(&'a self, _: &'a WorkloadSpec) -> BoxFuture<'a, Result<Started, RuntimeError>> {
        Box::pin(async { Err(RuntimeError::Docker("pull access denied for the image".into())) })
    }

    fn is_running<'a>(&'a self, _: u64, _: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async { false })
    }

    fn stop<'a>(&'a self, _: u64, _: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn remove_volume<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async { Ok(()) })
    }

    fn logs<'a>(&'a self, _: u64, _: &'a str) -> BoxFuture<'a, Result<Vec<String>, RuntimeError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_that_fails_to_start_costs_the_renter_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_in_process(Arc::new(BrokenRuntime)).await;
    let duration = 600;
    let quote = h.quote(duration).await.unwrap();
    let renter = h.renter_escrow().await;
    let before = renter.balance_of(h.renter.address()).await.unwrap();
    let id = h.open(&quote, duration).await;
    let refused = h.wait_status(id, "the refusal", |s| s.state == WorkloadState::Refused).await;
    assert!(refused.detail.contains("could not start"), "{refused:?}");

    // Anyone may submit the signed refusal (here a stranger); the renter gets everything.
    let stranger = PrivateKeySigner::random();
    let chain = gpuflow_escrow::connect(&h.devnet.rpc_url, None).unwrap();
    chain
        .raw_request::<_, serde_json::Value>(
            "anvil_setBalance".into(),
            (stranger.address(), U256::from(10u128.pow(18))),
        )
        .await
        .unwrap();
    let escrow = Escrow::new(
        gpuflow_escrow::connect(&h.devnet.rpc_url, Some(stranger)).unwrap(),
        h.devnet.escrow,
    )
    .await
    .unwrap();
    // Time passes first: the refund does not shrink with it.
    h.devnet.advance_time(120).await.unwrap();
    let done = escrow.refuse(id, refused.refusal.clone().unwrap()).await.unwrap();
    assert_eq!(done.refund, U256::from(RATE * duration));
    assert_eq!(renter.balance_of(h.renter.address()).await.unwrap(), before);
    // Past the dispute window, the provider still has nothing to withdraw; a second
    // submission moves nothing.
    h.devnet.advance_time(duration + 60).await.unwrap();
    let contract = GpuEscrow::new(h.devnet.escrow, escrow.provider().clone());
    assert_eq!(contract.withdrawable(U256::from(id)).call().await.unwrap(), U256::ZERO);
    assert!(escrow.refuse(id, refused.refusal.unwrap()).await.is_err());
    let provider = Escrow::new(
        gpuflow_escrow::connect(&h.devnet.rpc_url, Some(h.key.clone())).unwrap(),
        h.devnet.escrow,
    )
    .await
    .unwrap();
    assert!(provider.withdraw(id).await.unwrap().is_none(), "nothing to withdraw");
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_data_dir_fails_at_once_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    let first = h.agent.as_ref().unwrap().id().unwrap();
    // Another port: only the data dir is shared.
    let mut second = h.run_command(free_port());
    second.kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT, second.stdin(Stdio::null()).output())
        .await
        .expect("the second agent exits at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second agent started on the same data dir:\n{stderr}");
    assert!(
        stderr.contains("already running") && stderr.contains(&format!("pid {first}")),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
    // The first one is unaffected; once it is gone, the data dir is free again.
    assert!(h.quote(600).await.is_ok());
    h.crash_agent().await;
    h.start_agent().await;
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_the_nodes_port_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(dir.path()).await;
    // The node listens there through libp2p, as the agent would: the kernel would share
    // the port between them and split dials across two peer ids.
    let node: Multiaddr = h.devnet.node_p2p.parse().unwrap();
    let port = node
        .iter()
        .find_map(|p| match p {
            gpuflow_p2p::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let mut agent = h.run_command(port);
    agent.kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT, agent.stdin(Stdio::null()).output())
        .await
        .expect("the agent exits at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the agent shared the node's port:\n{stderr}");
    assert!(
        stderr.contains(&format!("/tcp/{port}")) && stderr.contains("already in use"),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "{stderr}");
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_longer_than_an_offer_carries_refuses_to_start_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    for i in 0..=gpuflow_protocol::MAX_ALLOWED_IMAGES {
        h.extra.extend(["--allow-image".to_owned(), format!("team/image-{i}:1")]);
    }
    let mut agent = h.run_command(h.port);
    agent.kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT, agent.stdin(Stdio::null()).output())
        .await
        .expect("the agent exits at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the agent started with an offer no node accepts:\n{stderr}");
    assert!(
        stderr.contains("33 allowed images") && stderr.contains("an offer carries at most 32"),
        "{stderr}"
    );
    assert!(stderr.contains("trailing `*`"), "{stderr}");
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_gas_estimate_reverts_leaves_no_nonce_gap() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(dir.path()).await;
    let provider = Escrow::new(
        gpuflow_escrow::connect(&h.devnet.rpc_url, Some(h.key.clone())).unwrap(),
        h.devnet.escrow,
    )
    .await
    .unwrap();
    // Withdrawing from a rental that does not exist reverts in the estimate: not sent.
    assert!(provider.withdraw_many(&[999], None).await.is_err());
    // The next transaction is mined at once, not queued behind a nonce never used.
    let to = Address::repeat_byte(0x42);
    let tx = alloy::rpc::types::TransactionRequest::default().to(to).value(U256::from(1));
    let sent = provider.provider().send_transaction(tx).await.unwrap();
    let receipt = tokio::time::timeout(Duration::from_secs(20), sent.get_receipt())
        .await
        .expect("the transaction after a failed estimate is mined at once")
        .unwrap();
    assert!(receipt.status());
    h.devnet.shutdown().await;
}

/// A TCP proxy in front of the chain's RPC that can freeze: while frozen it forwards
/// nothing, as an RPC that hangs.
struct FreezableProxy {
    url: String,
    frozen: tokio::sync::watch::Sender<bool>,
}

impl FreezableProxy {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (frozen, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Self::pipe(client_read, server_write, watch.clone()));
                tokio::spawn(Self::pipe(server_read, client_write, watch.clone()));
            }
        });
        Self { url, frozen }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut frozen: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let Ok(n) = from.read(&mut buf).await else { return };
            if n == 0 {
                return;
            }
            if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_rpc_stops_no_heartbeat_and_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    let proxy = FreezableProxy::start(&h.devnet.rpc_url).await;
    h.rpc = Some(proxy.url.clone());
    h.env = vec![(gpuflow_escrow::RPC_TIMEOUT_ENV.into(), "2".into())];
    h.start_agent().await;
    let quote = h.quote(600).await.unwrap();
    let id = h.open(&quote, 600).await;
    h.wait_status(id, "the workload", |s| s.state == WorkloadState::Running).await;

    let url = format!("{}/v1/providers/{}", h.devnet.node_url, h.peer.unwrap());
    let heartbeats = || async {
        let detail: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        detail["heartbeat_count"].as_u64().unwrap_or_default()
    };
    // The RPC hangs: the agent keeps heart-beating (one a second) and answering, so the
    // node sees a machine that is up, as it is.
    proxy.freeze(true);
    let frozen_at = heartbeats().await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while heartbeats().await < frozen_at + 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "heartbeats stopped while the RPC was frozen; agent log:\n{}",
            h.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(5), h.status(id))
        .await
        .expect("the agent answers while its RPC hangs");
    assert_eq!(status.state, WorkloadState::Running);
    assert!(h.quote(600).await.is_err(), "every GPU is rented");

    // The chain answers again: the agent catches up, and it backed off meanwhile instead
    // of retrying every poll.
    proxy.freeze(false);
    h.devnet.advance_time(600).await.unwrap();
    h.wait_status(id, "the rental's end", |s| s.state == WorkloadState::Ended).await;
    let logs = h.logs();
    let warnings = logs.matches("could not read the chain").count();
    assert!((1..=2).contains(&warnings), "{warnings} warnings; agent log:\n{logs}");
    assert!(logs.contains("the chain answers again"), "agent log:\n{logs}");
    h.stop_agent().await;
    h.devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_nonces_count_on_across_restarts_in_one_word_of_the_escrows_bitmap() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    h.wait_listed(true).await;

    // A new machine counts from 0 under its tag: a small nonce, cheap in calldata.
    let first = h.quote(600).await.unwrap();
    let second = h.quote(600).await.unwrap();
    assert_eq!(first.terms.nonce % U256::from(224), U256::ZERO, "{}", first.terms.nonce);
    assert!(first.terms.nonce < U256::from(1) << 64, "{}", first.terms.nonce);
    assert_eq!(second.terms.nonce, first.terms.nonce + U256::from(1));

    // A restart goes on from the store's count, in the same word of the escrow's nonce
    // bitmap, instead of starting a fresh (dearer) one.
    h.stop_agent().await;
    h.start_agent().await;
    let third = h.quote(600).await.unwrap();
    assert_eq!(third.terms.nonce, second.terms.nonce + U256::from(1));
    assert_eq!(third.terms.nonce / U256::from(224), first.terms.nonce / U256::from(224));

    // The nonces open rentals on chain like any other.
    let id = h.open(&third, 600).await;
    h.wait_status(id, "the workload to run", |s| s.state == WorkloadState::Running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_is_answered_on_free_gpus_and_refused_on_rented_ones() {
    use gpuflow_protocol::challenge::{
        Challenge, ChallengeRequest, ChallengeResponse, Outcome, check::Verifier,
    };

    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(dir.path()).await;
    h.start_agent().await;
    let peer = h.peer.unwrap();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", h.port).parse().unwrap();
    let ask = |request: ChallengeRequest| {
        let (client, addr) = (h.client.clone(), addr.clone());
        async move { client.challenge(peer, vec![addr], request).await.unwrap() }
    };
    let challenge = |seed: u8, gpus: &[&str]| Challenge {
        seed: B256::repeat_byte(seed),
        n: 64,
        rounds: 2,
        gpus: gpus.iter().map(|g| g.to_string()).collect(),
    };

    // Both GPUs free: the agent commits, opens the rows drawn after, and the node's check
    // passes.
    let asked = challenge(1, &["GPU-test-a", "GPU-test-b"]);
    let mut verifier = Verifier::new(asked.clone(), peer, B256::repeat_byte(0xaa), 4);
    let ChallengeResponse::Commitment { envelope } =
        ask(ChallengeRequest::Challenge(asked.clone())).await
    else {
        panic!("no commitment; agent log:\n{}", h.logs())
    };
    let rows = verifier.on_commitment(envelope).unwrap();
    let ChallengeResponse::Opening { envelope } =
        ask(ChallengeRequest::Open { seed: asked.seed, rows }).await
    else {
        panic!("no opening; agent log:\n{}", h.logs())
    };
    let result = verifier.conclude(verifier.on_opening(envelope), unix_now(), 5, "test", None);
    assert_eq!(result.outcome, Outcome::Unrated, "{}", result.reason);

    // Rows of a challenge never computed are not opened.
    let refused = ask(ChallengeRequest::Open {
        seed: B256::repeat_byte(9),
        rows: vec![gpuflow_protocol::challenge::RowRef { product: 0, row: 0 }],
    })
    .await;
    assert!(
        matches!(&refused, ChallengeResponse::Refused { reason } if reason.contains("send the challenge first")),
        "{refused:?}"
    );

    // One GPU rented: a challenge naming it is refused, the other GPU is still challenged.
    let quote = h.quote_for(600, Some(1), None, None).await.unwrap();
    let id = h.open(&quote, 600).await;
    let running = h.wait_status(id, "the workload", |s| s.state == WorkloadState::Running).await;
    let rented = running.gpus[0].clone();
    let free = if rented == "GPU-test-a" { "GPU-test-b" } else { "GPU-test-a" };
    let refused = ask(ChallengeRequest::Challenge(challenge(2, &[&rented]))).await;
    assert!(
        matches!(&refused, ChallengeResponse::Refused { reason } if reason.contains("rented")),
        "{refused:?}"
    );
    let answered = ask(ChallengeRequest::Challenge(challenge(3, &[free]))).await;
    assert!(matches!(answered, ChallengeResponse::Commitment { .. }), "{answered:?}");
    // Larger than the CPU path computes: refused, naming the limit.
    let mut big = challenge(4, &[free]);
    big.n = 2048;
    let refused = ask(ChallengeRequest::Challenge(big)).await;
    assert!(
        matches!(&refused, ChallengeResponse::Refused { reason } if reason.contains("n = 1024")),
        "{refused:?}"
    );
    h.stop_agent().await;
    h.devnet.shutdown().await;
}
