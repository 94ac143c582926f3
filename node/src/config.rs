//! The node's settings, layered: built-in defaults < config file < `GPUFLOW_*` environment
//! variables < command-line flags.
//!
//! The file is TOML, read from `--config PATH` (or `GPUFLOW_CONFIG`), else from
//! `$XDG_CONFIG_HOME/gpuflow/node.toml` when that exists. Every key is optional:
//!
//! ```toml
//! data_dir = "/var/lib/gpuflow-node"
//! http = "0.0.0.0:8080"
//! p2p_listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
//! bootstrap = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW..."]
//! token_decimals = 6
//! token_symbol = "USDC"  # how the marketplace page names the token (default: the token's own)
//! rate_limit = 200    # gossip messages per second per relaying peer
//! rate_burst = 1000   # ... allowed in a burst
//! rpc = "https://rpc.example.org"   # with `escrow`: index GpuEscrow's rentals
//! escrow = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
//! escrow_from_block = 19000000      # the deployment's block (deployment.json)
//! confirmations = 2                 # blocks a log waits before it is indexed
//! uptime_bucket_secs = 60           # width of the uptime buckets (divides 10800)
//! grace_secs = 60                   # silence shorter than this is not downtime
//! window_days = 30                  # reliability window, at most 35
//! probe_interval_secs = 60          # how often each provider is probed
//! score_interval_secs = 60          # how often every score is recomputed
//! attester_keystore = "/var/lib/gpuflow-node/attester.json"  # signs downtime attestations
//! challenge_interval_secs = 3600    # least time between two challenges of a provider; 0: off
//!                                   # (offers are walked every minute, or this often if less)
//! challenge_size = 8192             # n of the challenge's n × n matrices (power of two)
//! challenge_rounds = 16             # products per GPU
//! challenge_parallel = 4            # challenges running at once, each of another provider
//! challenges_per_minute = 60        # most challenges started a minute, all providers together
//! ```
//!
//! No secret belongs in it: the attester keystore is encrypted, its password comes from
//! `GPUFLOW_PASSWORD`, and the libp2p identity is kept in the data directory.
//!
//! Logs go to stderr, filtered by `GPUFLOW_LOG` (a `tracing` filter; `info,libp2p=warn`
//! unless set), as text or, with `GPUFLOW_LOG_FORMAT=json`, one JSON object a line. Each
//! HTTP request is logged at `info` with its method, path, status and latency.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy::primitives::Address;
use clap::Parser;
use gpuflow_cli_util::{EscrowOpts, LayerError, RpcOpts, Source};
use gpuflow_p2p::Multiaddr;
use serde::Deserialize;

/// Most challenges a node runs at once: each holds up to two answers of up to 4 MiB.
const MAX_CHALLENGE_PARALLEL: usize = 64;
/// Most challenges a minute a node may start: a hundred a second.
const MAX_CHALLENGES_PER_MINUTE: u32 = 6000;

/// Index the offers of the gpuflow network and serve them over HTTP.
#[derive(Debug, Default, Parser)]
#[command(
    mut_arg("rpc", |a| a.help(
        "Ethereum JSON-RPC URL; with --escrow, the node indexes the escrow's rentals \
         (`GET /v1/rentals/{id}`). Without both the chain watcher is off [env: GPUFLOW_RPC]"
    )),
    mut_arg("escrow", |a| a.help("`GpuEscrow` address to index [env: GPUFLOW_ESCROW]")),
    name = "gpuflow-node",
    version,
    about,
    after_help = "Settings come from, weakest first: defaults, the config file, GPUFLOW_* \
                  variables, flags.

Example:
  gpuflow-node --http 0.0.0.0:8080 \\
    --p2p-listen /ip4/0.0.0.0/tcp/4001 --p2p-listen /ip4/0.0.0.0/udp/4001/quic-v1"
)]
pub struct Args {
    /// TOML config file [default: $XDG_CONFIG_HOME/gpuflow/node.toml, if present].
    #[arg(long, env = "GPUFLOW_CONFIG", hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// Directory for the identity key and the SQLite index
    /// [default: $XDG_CONFIG_HOME/gpuflow/node].
    #[arg(long, env = "GPUFLOW_DATA_DIR", hide_env_values = true)]
    pub data_dir: Option<PathBuf>,
    /// HTTP API listen address (port 0 picks a free port) [default: 127.0.0.1:8080].
    #[arg(long, env = "GPUFLOW_HTTP", hide_env_values = true)]
    pub http: Option<SocketAddr>,
    /// libp2p listen addresses, TCP and/or QUIC (repeatable or comma separated)
    /// [default: /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/udp/4001/quic-v1].
    #[arg(long, env = "GPUFLOW_P2P_LISTEN", hide_env_values = true, value_delimiter = ',')]
    pub p2p_listen: Vec<Multiaddr>,
    /// Peers to join the network through, ideally with their /p2p/PEER_ID (repeatable or
    /// comma separated).
    #[arg(long, env = "GPUFLOW_BOOTSTRAP", hide_env_values = true, value_delimiter = ',')]
    pub bootstrap: Vec<Multiaddr>,
    /// The HTTP API of a node to join through (repeatable): its p2p addresses, from
    /// `GET URL/v1/node`, are added to the bootstrap list at start.
    #[arg(long, value_name = "URL")]
    pub bootstrap_from: Vec<String>,
    /// Decimals of the payment token, to read `dph` in queries [default: 6].
    #[arg(long, env = "GPUFLOW_TOKEN_DECIMALS", hide_env_values = true)]
    pub token_decimals: Option<u8>,
    /// Symbol of the payment token, as the marketplace page shows prices [default: read
    /// from the token when the node indexes the escrow, else USDC].
    #[arg(long, env = "GPUFLOW_TOKEN_SYMBOL", hide_env_values = true)]
    pub token_symbol: Option<String>,
    /// Gossip messages accepted per second from one relaying peer; more are ignored
    /// [default: 200]. A relay forwards everybody's heartbeats: a thousand providers at one
    /// per 15 s is about 70 a second.
    #[arg(long, env = "GPUFLOW_RATE_LIMIT", hide_env_values = true)]
    pub rate_limit: Option<u32>,
    /// Gossip messages one relaying peer may send in a burst [default: 1000].
    #[arg(long, env = "GPUFLOW_RATE_BURST", hide_env_values = true)]
    pub rate_burst: Option<u32>,
    /// The chain whose escrow is indexed.
    #[command(flatten)]
    pub rpc: RpcOpts,
    /// `GpuEscrow` address to index.
    #[command(flatten)]
    pub escrow: EscrowOpts,
    /// First block to index: the escrow's deployment block [default: 0].
    #[arg(long, env = "GPUFLOW_ESCROW_FROM_BLOCK", hide_env_values = true)]
    pub escrow_from_block: Option<u64>,
    /// Blocks on top of a block before its events are indexed [default: 2]; a devnet may
    /// use 0, reorgs are rolled back either way.
    #[arg(long, env = "GPUFLOW_CONFIRMATIONS", hide_env_values = true)]
    pub confirmations: Option<u64>,
    /// Width of the uptime buckets in seconds, a divisor of 10800 [default: 60].
    #[arg(long, env = "GPUFLOW_UPTIME_BUCKET_SECS", hide_env_values = true)]
    pub uptime_bucket_secs: Option<u64>,
    /// Silence from a provider shorter than this is not downtime [default: 60].
    #[arg(long, env = "GPUFLOW_GRACE_SECS", hide_env_values = true)]
    pub grace_secs: Option<u64>,
    /// Days of evidence the scores look back over, at most 35 [default: 30].
    #[arg(long, env = "GPUFLOW_WINDOW_DAYS", hide_env_values = true)]
    pub window_days: Option<u64>,
    /// Seconds between two probes of each provider [default: 60].
    #[arg(long, env = "GPUFLOW_PROBE_INTERVAL_SECS", hide_env_values = true)]
    pub probe_interval_secs: Option<u64>,
    /// Seconds between two recomputations of every score [default: 60].
    #[arg(long, env = "GPUFLOW_SCORE_INTERVAL_SECS", hide_env_values = true)]
    pub score_interval_secs: Option<u64>,
    /// Encrypted keystore of the key that signs downtime attestations (password in
    /// GPUFLOW_PASSWORD); needs --rpc and --escrow. Without it the node attests nothing.
    #[arg(long, env = "GPUFLOW_ATTESTER_KEYSTORE", hide_env_values = true)]
    pub attester_keystore: Option<PathBuf>,
    /// Least seconds between two matrix-product challenges of one provider; 0 turns
    /// challenges off [default: 3600].
    #[arg(long, env = "GPUFLOW_CHALLENGE_INTERVAL_SECS", hide_env_values = true)]
    pub challenge_interval_secs: Option<u64>,
    /// Size n of a challenge's n × n matrices, a power of two from 64 to 16384 [default: 8192].
    #[arg(long, env = "GPUFLOW_CHALLENGE_SIZE", hide_env_values = true)]
    pub challenge_size: Option<u32>,
    /// Products per GPU in a challenge, 1 to 64 [default: 16].
    #[arg(long, env = "GPUFLOW_CHALLENGE_ROUNDS", hide_env_values = true)]
    pub challenge_rounds: Option<u32>,
    /// Challenges running at once, each of another provider, 1 to 64 [default: 4].
    #[arg(long, env = "GPUFLOW_CHALLENGE_PARALLEL", hide_env_values = true)]
    pub challenge_parallel: Option<usize>,
    /// Most challenges started a minute, all providers together, 1 to 6000 [default: 60].
    #[arg(long, env = "GPUFLOW_CHALLENGES_PER_MINUTE", hide_env_values = true)]
    pub challenges_per_minute: Option<u32>,
}

/// The config file's keys; all optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data_dir: Option<PathBuf>,
    http: Option<SocketAddr>,
    #[serde(default)]
    p2p_listen: Vec<String>,
    #[serde(default)]
    bootstrap: Vec<String>,
    token_decimals: Option<u8>,
    token_symbol: Option<String>,
    rate_limit: Option<u32>,
    rate_burst: Option<u32>,
    rpc: Option<String>,
    escrow: Option<Address>,
    escrow_from_block: Option<u64>,
    confirmations: Option<u64>,
    uptime_bucket_secs: Option<u64>,
    grace_secs: Option<u64>,
    window_days: Option<u64>,
    probe_interval_secs: Option<u64>,
    score_interval_secs: Option<u64>,
    attester_keystore: Option<PathBuf>,
    challenge_interval_secs: Option<u64>,
    challenge_size: Option<u32>,
    challenge_rounds: Option<u32>,
    challenge_parallel: Option<usize>,
    challenges_per_minute: Option<u32>,
}

/// The resolved settings the node runs with.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Holds `identity.key` and `index.sqlite`.
    pub data_dir: PathBuf,
    /// HTTP API address.
    pub http: SocketAddr,
    /// libp2p listen addresses.
    pub p2p_listen: Vec<Multiaddr>,
    /// Peers to join through.
    pub bootstrap: Vec<Multiaddr>,
    /// Decimals of the payment token.
    pub token_decimals: u8,
    /// Symbol of the payment token; `None` to read it from the escrow's token.
    pub token_symbol: Option<String>,
    /// Per-peer limit on gossip messages.
    pub rate_limit: RateLimit,
    /// The chain to index rentals from; `None` leaves the watcher off.
    pub chain: Option<ChainConfig>,
    /// Uptime tracking, scores and attestations.
    pub reliability: ReliabilityConfig,
    /// Matrix-product challenges of providers.
    pub challenge: crate::ChallengeConfig,
}

/// How the node measures uptime and scores providers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReliabilityConfig {
    /// Width of the uptime buckets, seconds.
    pub bucket_secs: u64,
    /// Silence shorter than this is not downtime, seconds.
    pub grace_secs: u64,
    /// Days the scores look back over.
    pub window_days: u64,
    /// Pause between probe rounds.
    pub probe_interval: std::time::Duration,
    /// Pause between recomputations of the scores.
    pub score_interval: std::time::Duration,
    /// Keystore of the attester key; `None` attests nothing.
    pub attester_keystore: Option<PathBuf>,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        Self {
            bucket_secs: 60,
            grace_secs: 60,
            window_days: 30,
            probe_interval: std::time::Duration::from_secs(60),
            score_interval: std::time::Duration::from_secs(60),
            attester_keystore: None,
        }
    }
}

impl ReliabilityConfig {
    /// The model parameters these settings give.
    pub fn params(&self) -> gpuflow_protocol::api::ModelParams {
        crate::reliability::params(self.bucket_secs, self.grace_secs, self.window_days)
    }
}

/// Where and how the chain watcher reads `GpuEscrow` events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainConfig {
    /// JSON-RPC URL.
    pub rpc_url: String,
    /// The escrow contract.
    pub escrow: Address,
    /// First block to index when the database has no cursor for this escrow.
    pub from_block: u64,
    /// Blocks that must be mined on top of a block before it is indexed.
    pub confirmations: u64,
    /// Pause between polls once the watcher has caught up.
    pub poll_interval: std::time::Duration,
}

impl ChainConfig {
    /// Default confirmation depth: reorgs of one or two blocks are routine on L1 and L2s.
    pub const DEFAULT_CONFIRMATIONS: u64 = 2;
    /// Default pause between polls.
    pub const DEFAULT_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
}

/// A token bucket's refill rate and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: u32,
    /// Most tokens held.
    pub burst: u32,
}

/// Why the settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the expected shape.
    #[error("invalid config file {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        source: Box<toml::de::Error>,
    },
    /// An address in the config file is not a multiaddr.
    #[error("invalid config file {}: `{key}` entry `{value}` is not a multiaddr", path.display())]
    Multiaddr {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// The entry.
        value: String,
    },
    /// A value is out of its range.
    #[error("`{key}` must be {expected}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// No data directory was given and none can be derived.
    #[error("{0}")]
    NoDataDir(String),
    /// A `GPUFLOW_*` variable holds something its setting cannot take.
    #[error(transparent)]
    Env(#[from] LayerError),
}

impl NodeConfig {
    /// Resolves `args` (flags and environment, as clap read them) over the config file over
    /// the defaults.
    pub fn resolve(args: Args) -> Result<Self, ConfigError> {
        let default_file = gpuflow_cli_util::config_dir()
            .ok()
            .map(|dir| dir.join("node.toml"))
            .filter(|path| path.is_file());
        Self::resolve_with(args, default_file)
    }

    /// [`NodeConfig::resolve`] with the file read when `--config` is absent made explicit.
    fn resolve_with(args: Args, default_file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let path = args.config.clone().or(default_file);
        let file = match &path {
            Some(path) => read(path)?,
            None => File::default(),
        };
        let path = path.unwrap_or_default();
        let addrs =
            |key: &'static str, values: Vec<String>| -> Result<Vec<Multiaddr>, ConfigError> {
                values
                    .into_iter()
                    .map(|value| {
                        value.parse().map_err(|_| ConfigError::Multiaddr {
                            path: path.clone(),
                            key,
                            value,
                        })
                    })
                    .collect()
            };
        let data_dir = match args.data_dir.or(file.data_dir) {
            Some(dir) => dir,
            None => gpuflow_cli_util::config_dir().map_err(ConfigError::NoDataDir)?.join("node"),
        };
        let p2p_listen = match (args.p2p_listen, addrs("p2p_listen", file.p2p_listen)?) {
            (flags, _) if !flags.is_empty() => flags,
            (_, file) if !file.is_empty() => file,
            _ => ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
                .map(|a| a.parse().expect("default addresses parse"))
                .to_vec(),
        };
        let bootstrap = match args.bootstrap {
            flags if !flags.is_empty() => flags,
            _ => addrs("bootstrap", file.bootstrap)?,
        };
        let rate_limit = RateLimit {
            per_second: args.rate_limit.or(file.rate_limit).unwrap_or(200),
            burst: args.rate_burst.or(file.rate_burst).unwrap_or(1000),
        };
        if rate_limit.per_second == 0 || rate_limit.burst == 0 {
            return Err(ConfigError::Invalid {
                key: "rate_limit and rate_burst",
                expected: "at least 1",
            });
        }
        let token_decimals = args.token_decimals.or(file.token_decimals).unwrap_or(6);
        if token_decimals > 36 {
            return Err(ConfigError::Invalid { key: "token_decimals", expected: "at most 36" });
        }
        let token_symbol = args.token_symbol.or(file.token_symbol);
        if token_symbol.as_deref().is_some_and(|symbol| !gpuflow_protocol::is_shown_symbol(symbol))
        {
            return Err(ConfigError::Invalid {
                key: "token_symbol",
                expected: "1 to 11 ASCII letters and digits, such as USDC",
            });
        }
        let key = |name: &str| Source::Config(format!("`{name}` in {}", path.display()));
        let rpc = args.rpc.resolve(Some((key("rpc"), file.rpc)))?;
        let escrow = args.escrow.resolve(Some((key("escrow"), file.escrow)))?;
        let chain = match (rpc, escrow) {
            (Some(rpc_url), Some(escrow)) => Some(ChainConfig {
                rpc_url: rpc_url.value,
                escrow: escrow.value,
                from_block: args.escrow_from_block.or(file.escrow_from_block).unwrap_or(0),
                confirmations: args
                    .confirmations
                    .or(file.confirmations)
                    .unwrap_or(ChainConfig::DEFAULT_CONFIRMATIONS),
                poll_interval: ChainConfig::DEFAULT_POLL_INTERVAL,
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "rpc and escrow",
                    expected: "given together (or neither, to leave the chain watcher off)",
                });
            }
        };
        let defaults = ReliabilityConfig::default();
        let secs = std::time::Duration::from_secs;
        let reliability = ReliabilityConfig {
            bucket_secs: args
                .uptime_bucket_secs
                .or(file.uptime_bucket_secs)
                .unwrap_or(defaults.bucket_secs),
            grace_secs: args.grace_secs.or(file.grace_secs).unwrap_or(defaults.grace_secs),
            window_days: args.window_days.or(file.window_days).unwrap_or(defaults.window_days),
            probe_interval: args
                .probe_interval_secs
                .or(file.probe_interval_secs)
                .map_or(defaults.probe_interval, secs),
            score_interval: args
                .score_interval_secs
                .or(file.score_interval_secs)
                .map_or(defaults.score_interval, secs),
            attester_keystore: args.attester_keystore.or(file.attester_keystore),
        };
        if reliability.bucket_secs == 0 || 10_800 % reliability.bucket_secs != 0 {
            return Err(ConfigError::Invalid {
                key: "uptime_bucket_secs",
                expected: "a divisor of 10800 (e.g. 60)",
            });
        }
        if !(1..=crate::store::RETENTION_DAYS).contains(&reliability.window_days) {
            return Err(ConfigError::Invalid { key: "window_days", expected: "1 to 35" });
        }
        if reliability.probe_interval.is_zero() || reliability.score_interval.is_zero() {
            return Err(ConfigError::Invalid {
                key: "probe_interval_secs and score_interval_secs",
                expected: "at least 1",
            });
        }
        if reliability.attester_keystore.is_some() && chain.is_none() {
            return Err(ConfigError::Invalid {
                key: "attester_keystore",
                expected: "given with rpc and escrow (attestations are for that escrow)",
            });
        }
        let challenge_defaults = crate::ChallengeConfig::default();
        let per_provider = args
            .challenge_interval_secs
            .or(file.challenge_interval_secs)
            .map_or(challenge_defaults.per_provider, secs);
        let challenge = crate::ChallengeConfig {
            per_provider,
            // A provider due every few seconds is not left waiting for a minute's walk.
            scan_interval: match per_provider.is_zero() {
                true => challenge_defaults.scan_interval,
                false => challenge_defaults.scan_interval.min(per_provider),
            },
            n: args.challenge_size.or(file.challenge_size).unwrap_or(challenge_defaults.n),
            rounds: args
                .challenge_rounds
                .or(file.challenge_rounds)
                .unwrap_or(challenge_defaults.rounds),
            parallel: args
                .challenge_parallel
                .or(file.challenge_parallel)
                .unwrap_or(challenge_defaults.parallel),
            per_minute: args
                .challenges_per_minute
                .or(file.challenges_per_minute)
                .unwrap_or(challenge_defaults.per_minute),
            ..challenge_defaults
        };
        if !gpuflow_protocol::challenge::valid_size(challenge.n) {
            return Err(ConfigError::Invalid {
                key: "challenge_size",
                expected: "a power of two from 64 to 16384",
            });
        }
        if !(1..=gpuflow_protocol::challenge::MAX_ROUNDS).contains(&challenge.rounds) {
            return Err(ConfigError::Invalid { key: "challenge_rounds", expected: "1 to 64" });
        }
        if !(1..=MAX_CHALLENGE_PARALLEL).contains(&challenge.parallel) {
            return Err(ConfigError::Invalid { key: "challenge_parallel", expected: "1 to 64" });
        }
        if !(1..=MAX_CHALLENGES_PER_MINUTE).contains(&challenge.per_minute) {
            return Err(ConfigError::Invalid {
                key: "challenges_per_minute",
                expected: "1 to 6000",
            });
        }
        Ok(Self {
            chain,
            reliability,
            challenge,
            data_dir,
            http: args.http.or(file.http).unwrap_or_else(|| ([127, 0, 0, 1], 8080).into()),
            p2p_listen,
            bootstrap,
            token_decimals,
            token_symbol,
            rate_limit,
        })
    }
}

fn read(path: &Path) -> Result<File, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text)
        .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_apply_without_file_or_flags() {
        let args = Args { data_dir: Some("/d".into()), ..Args::default() };
        let config = NodeConfig::resolve_with(args, None).unwrap();
        assert_eq!(config.http, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.p2p_listen.len(), 2);
        assert!(config.p2p_listen[1].to_string().ends_with("/quic-v1"));
        assert!(config.bootstrap.is_empty());
        assert_eq!(config.token_decimals, 6);
        assert_eq!(config.rate_limit, RateLimit { per_second: 200, burst: 1000 });
        assert_eq!(config.chain, None);
        assert_eq!(config.challenge, crate::ChallengeConfig::default());
        assert_eq!(config.challenge.parallel, 4);
    }

    #[test]
    fn the_chain_watcher_needs_rpc_and_escrow() {
        let escrow = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        let args = Args::try_parse_from([
            "gpuflow-node",
            "--data-dir",
            "/d",
            "--rpc",
            "http://127.0.0.1:8545",
            "--escrow",
            escrow,
        ])
        .unwrap();
        let chain = NodeConfig::resolve_with(args, None).unwrap().chain.unwrap();
        assert_eq!(chain.escrow, escrow.parse::<Address>().unwrap());
        assert_eq!((chain.from_block, chain.confirmations), (0, 2));

        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            &format!(
                "rpc = \"http://rpc\"\nescrow = \"{escrow}\"\nescrow_from_block = 9\n\
                 confirmations = 5"
            ),
        );
        let args = Args::try_parse_from([
            "gpuflow-node",
            "--config",
            path.to_str().unwrap(),
            "--confirmations",
            "0",
        ])
        .unwrap();
        let chain = NodeConfig::resolve_with(args, None).unwrap().chain.unwrap();
        assert_eq!(
            (chain.rpc_url.as_str(), chain.from_block, chain.confirmations),
            ("http://rpc", 9, 0)
        );

        let half = Args {
            rpc: RpcOpts { rpc: Some("http://rpc".into()) },
            data_dir: Some("/d".into()),
            ..Args::default()
        };
        let message = NodeConfig::resolve_with(half, None).unwrap_err().to_string();
        assert!(message.contains("`rpc and escrow` must be given together"), "{message}");
    }

    #[test]
    fn the_file_fills_in_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            r#"
            data_dir = "/from/file"
            http = "0.0.0.0:9000"
            p2p_listen = ["/ip4/0.0.0.0/tcp/5001"]
            bootstrap = ["/ip4/10.0.0.1/tcp/4001"]
            token_decimals = 18
            rate_limit = 7
            challenge_parallel = 2
            challenges_per_minute = 5
            "#,
        );
        let from_file =
            NodeConfig::resolve_with(Args { config: Some(path.clone()), ..Args::default() }, None)
                .unwrap();
        assert_eq!(from_file.data_dir, PathBuf::from("/from/file"));
        assert_eq!(from_file.http, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(from_file.p2p_listen, vec!["/ip4/0.0.0.0/tcp/5001".parse().unwrap()]);
        assert_eq!(from_file.bootstrap, vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()]);
        assert_eq!(from_file.token_decimals, 18);
        assert_eq!(from_file.rate_limit, RateLimit { per_second: 7, burst: 1000 });
        assert_eq!(from_file.challenge.parallel, 2);
        assert_eq!(from_file.challenge.per_minute, 5);

        let flags = Args::try_parse_from([
            "gpuflow-node",
            "--config",
            path.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
            "--p2p-listen",
            "/ip6/::1/tcp/0",
            "--token-decimals",
            "6",
            "--challenge-parallel",
            "8",
        ])
        .unwrap();
        let config = NodeConfig::resolve_with(flags, None).unwrap();
        assert_eq!(config.http, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.p2p_listen.len(), 3);
        assert_eq!(config.token_decimals, 6);
        assert_eq!(config.challenge.parallel, 8);
        assert_eq!(config.challenge.scan_interval, std::time::Duration::from_secs(60));
        let often = Args { challenge_interval_secs: Some(5), ..Args::default() };
        let often = NodeConfig::resolve_with(often, None).unwrap().challenge;
        assert_eq!(often.scan_interval, std::time::Duration::from_secs(5), "walks as often as due");
        // What the flags leave alone still comes from the file.
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.rate_limit.per_second, 7);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("htp = \"0.0.0.0:1\"", "unknown field `htp`"),
            ("http = \"nowhere\"", "invalid config file"),
            (
                "bootstrap = [\"not an address\"]",
                "`bootstrap` entry `not an address` is not a multiaddr",
            ),
            ("rate_limit = 0", "`rate_limit and rate_burst` must be at least 1"),
            ("challenge_parallel = 0", "`challenge_parallel` must be 1 to 64"),
            ("challenges_per_minute = 0", "`challenges_per_minute` must be 1 to 6000"),
            ("challenges_per_minute = 6001", "`challenges_per_minute` must be 1 to 6000"),
        ];
        for (text, expected) in cases {
            let path = file(&dir, text);
            let args = Args { config: Some(path), data_dir: Some("/d".into()), ..Args::default() };
            let message = NodeConfig::resolve_with(args, None).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
        }
        let missing = Args { config: Some(dir.path().join("absent.toml")), ..Args::default() };
        assert!(
            NodeConfig::resolve_with(missing, None)
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }
}
