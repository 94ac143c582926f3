//! A `gpuflow-provider run` against a devnet: the devnet's own agent, a sibling beside
//! it, or a test's agent with flags of its own are all built here.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::primitives::Address;
use tokio::process::{Child, Command};

use crate::process::spawn_ready;

/// Environment variable through which an agent gets its payout key: a key only ever
/// travels in the agent's environment, never on its command line.
const AGENT_KEY_ENV: &str = "GPUFLOW_DEVNET_PROVIDER_KEY";

/// Everything a `gpuflow-provider run` needs to join a devnet. Start from
/// [`crate::Devnet::agent`] and change what the test is about.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    /// Where `gpuflow-provider` is.
    pub bin_dir: PathBuf,
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// The `GpuEscrow` address.
    pub escrow: Address,
    /// The node to join through (a libp2p address).
    pub bootstrap: String,
    /// The payout key, hex.
    pub key: String,
    /// The agent's data directory.
    pub data_dir: PathBuf,
    /// `XDG_CONFIG_HOME`, so that no configuration of the machine's user leaks in.
    pub config_home: PathBuf,
    /// The simulated GPU inventory; `None` reads the machine's GPUs through NVML.
    pub gpus: Option<PathBuf>,
    /// The libp2p listen address.
    pub listen: String,
    /// `--price-per-hour`, or none to leave it to `extra`.
    pub price_per_hour: Option<String>,
    /// `--region`.
    pub region: String,
    /// `--workload`, or the agent's default.
    pub workload: Option<String>,
    /// `--poll-interval-ms`, or the agent's default.
    pub poll_interval_ms: Option<u64>,
    /// `--heartbeat-interval-secs`, or the agent's default.
    pub heartbeat_interval_secs: Option<u64>,
    /// Further flags, last.
    pub extra: Vec<OsString>,
    /// Further environment variables.
    pub env: Vec<(OsString, OsString)>,
}

impl AgentSpec {
    /// The `gpuflow-provider run` command.
    pub fn command(&self) -> Command {
        let mut command = Command::new(self.bin());
        command
            .arg("run")
            .args(["--rpc", &self.rpc_url, "--escrow", &self.escrow.to_string()])
            .args(["--key-env", AGENT_KEY_ENV])
            .env(AGENT_KEY_ENV, &self.key)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &self.listen, "--bootstrap", &self.bootstrap])
            .args(["--region", &self.region]);
        if let Some(gpus) = &self.gpus {
            command.arg("--simulate-gpus").arg(gpus);
        }
        if let Some(price) = &self.price_per_hour {
            command.args(["--price-per-hour", price]);
        }
        if let Some(workload) = &self.workload {
            command.args(["--workload", workload]);
        }
        if let Some(ms) = self.poll_interval_ms {
            command.args(["--poll-interval-ms", &ms.to_string()]);
        }
        if let Some(secs) = self.heartbeat_interval_secs {
            command.args(["--heartbeat-interval-secs", &secs.to_string()]);
        }
        command.args(&self.extra).envs(self.env.iter().cloned());
        command
    }

    /// Starts the agent, its stderr appended to `log`, and waits at most `timeout` for its
    /// ready line (see [`crate::ready_field`]). The agent is killed when the child drops.
    pub async fn spawn(&self, log: &Path, timeout: Duration) -> anyhow::Result<(Child, String)> {
        spawn_ready(&mut self.command(), log, "gpuflow-provider ready", timeout).await
    }

    /// The `gpuflow-provider` binary.
    pub fn bin(&self) -> PathBuf {
        self.bin_dir.join("gpuflow-provider")
    }
}
