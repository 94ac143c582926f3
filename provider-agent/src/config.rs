//! The provider's config file (`$XDG_CONFIG_HOME/gpuflow/provider.toml`) and pricing.
//!
//! Layering: built-in defaults < this file < command-line flags. The file holds no
//! secret: the payout key lives in an encrypted keystore it points to.

use std::{collections::BTreeMap, path::PathBuf};

use alloy::primitives::Address;
use gpuflow_protocol::{GpuInfo, MAX_ESCROW_RATE, format_units, parse_units};
use serde::Deserialize;

/// Environment variable naming the payout wallet's keystore. The provider's own, so that
/// the renter's `GPUFLOW_KEYSTORE` (in the same shell, as with the devnet's env file) is
/// never opened by mistake.
pub const KEYSTORE_ENV: &str = "GPUFLOW_PROVIDER_KEYSTORE";
/// Environment variable holding the payout keystore's password (the renter's is
/// `GPUFLOW_PASSWORD`).
pub const PASSWORD_ENV: &str = "GPUFLOW_PROVIDER_PASSWORD";

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid TOML for this config.
    #[error("{path} is malformed: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Why, with the offending key.
        reason: String,
    },
    /// A price is malformed or does not convert exactly to token units per second.
    #[error("price {what}: {reason}")]
    Price {
        /// Which price.
        what: String,
        /// Why, with the fix.
        reason: String,
    },
    /// The docker runtime has no default image.
    #[error(
        "the docker runtime needs an image: pass --image IMAGE or add `image = \"...\"` to \
         provider.toml"
    )]
    NoImage,
    /// The docker runtime does not know what address renters ssh to.
    #[error(
        "the docker runtime needs the host renters ssh to: pass --ssh-host HOST or add \
         `ssh_host = \"...\"` to provider.toml (this machine's public name or IP)"
    )]
    NoSshHost,
}

/// Which runtime runs rentals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// A local process per rental (development, tests).
    #[default]
    Process,
    /// A Docker container per rental with the rented GPUs.
    Docker,
}

/// The provider's settings, as read from the config file. Every field is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Ethereum JSON-RPC endpoint.
    pub rpc: Option<String>,
    /// `GpuEscrow` address.
    pub escrow: Option<Address>,
    /// Encrypted keystore of the payout wallet.
    pub keystore: Option<PathBuf>,
    /// Directory for the identity, database and workload logs.
    pub data_dir: Option<PathBuf>,
    /// Region label.
    pub region: Option<String>,
    /// Declared download bandwidth, Mbit/s.
    pub inet_down_mbps: Option<u64>,
    /// Declared upload bandwidth, Mbit/s.
    pub inet_up_mbps: Option<u64>,
    /// Shortest rental accepted, seconds.
    pub min_duration_secs: Option<u64>,
    /// Longest rental accepted, seconds.
    pub max_duration_secs: Option<u64>,
    /// Withdraw automatically once this many tokens are withdrawable (e.g. "5").
    pub withdraw_threshold: Option<String>,
    /// Nodes to join the network through, each a multiaddr ending in `/p2p/PEER_ID`.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// How long a renter's volume outlives the rental that last used it, in hours
    /// (decimals allowed); 0 keeps no volumes.
    pub volume_grace_hours: Option<String>,
    /// `process` or `docker`.
    pub runtime: Option<RuntimeKind>,
    /// Default container image for the docker runtime.
    pub image: Option<String>,
    /// Host name or IP renters reach the SSH port on.
    pub ssh_host: Option<String>,
    /// Images renters may ask for; empty allows any. An entry ending in `*` allows every
    /// image starting with what precedes it (`"pytorch/pytorch:*"`).
    #[serde(default)]
    pub allowed_images: Vec<String>,
    /// Shell command of the process runtime.
    pub workload: Option<String>,
    /// The GPUs to offer, by the index `gpuflow-provider gpus` shows; all without it.
    pub offer_gpus: Option<Vec<usize>>,
    /// Price per GPU per hour by GPU model name, in tokens, e.g. `"NVIDIA GeForce RTX 4090" = "0.30"`.
    #[serde(default)]
    pub prices: BTreeMap<String, String>,
}

impl FileConfig {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(ConfigError::Read { path: shown, reason: e.to_string() }),
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: shown, reason: e.to_string() })
    }
}

/// What the docker runtime needs before it can take a rental.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerSettings {
    /// The image of rentals whose renter asked for none.
    pub image: String,
    /// The host name or IP renters reach the mapped SSH ports on.
    pub ssh_host: String,
}

impl DockerSettings {
    /// Checks the settings (each from its flag, else the config file), so a provider
    /// learns at start-up, not from a renter, that one is missing.
    pub fn resolve(image: Option<String>, ssh_host: Option<String>) -> Result<Self, ConfigError> {
        let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        Ok(Self {
            image: given(image).ok_or(ConfigError::NoImage)?,
            ssh_host: given(ssh_host).ok_or(ConfigError::NoSshHost)?,
        })
    }
}

/// The config file `init` writes, commented so a provider can edit it by hand.
pub fn template(
    escrow: Option<Address>,
    keystore: &std::path::Path,
    data_dir: &std::path::Path,
    bootstrap: &[String],
    models: &[String],
) -> String {
    // The machine's own models, priced with a hint `run` accepts for any number of GPUs
    // and any token of at least 4 decimals; an example when the GPUs could not be read.
    let prices = match models {
        [] => format!("# \"NVIDIA GeForce RTX 4090\" = \"{PRICE_HINT}\""),
        models => models
            .iter()
            .map(|model| format!("\"{model}\" = \"{PRICE_HINT}\"      # set your own price"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let bootstrap = match bootstrap {
        [] => {
            "# bootstrap = [\"/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...\"]  # or: init --node URL"
                .to_owned()
        }
        addrs => format!(
            "bootstrap = [{}]",
            addrs.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ")
        ),
    };
    let escrow = match escrow {
        Some(a) => format!("escrow = \"{a}\""),
        None => "# escrow = \"0x...\"            # the GpuEscrow contract of the network you join"
            .into(),
    };
    format!(
        r#"# gpuflow provider configuration. Flags of `gpuflow-provider run` override these.
# No secret belongs here: the payout key is in the encrypted keystore below, and its
# password comes from GPUFLOW_PROVIDER_PASSWORD or a prompt.

rpc = "http://127.0.0.1:8545"          # Ethereum JSON-RPC endpoint
{escrow}
# The nodes to join the network through (`gpuflow-provider init --node URL` asks a node).
{bootstrap}
keystore = "{keystore}"
data_dir = "{data_dir}"                # identity key, rental database, workload logs

region = "unknown"                     # shown to renters, e.g. "eu-west"
# The GPUs to offer, by the INDEX `gpuflow-provider gpus` shows; all of them without it.
# An offer lists GPUs of one model: a machine with two models runs one agent per model,
# each with its own data_dir and offer_gpus.
# offer_gpus = [0, 1]
# inet_down_mbps = 1000                # declared, not measured
# inet_up_mbps = 1000

min_duration_secs = 60                 # shortest rental accepted
max_duration_secs = 604800             # longest rental, extensions included (7 days)

# Earnings are withdrawn once this many tokens are withdrawable (and always after a
# rental ends and its dispute window passed).
withdraw_threshold = "5"

# A renter's volume (`gpuflow rent --volume NAME`) outlives the rental that last used
# it by this many hours, then is deleted; the same renter renting this machine again
# within it gets it back. Shown in the offer. 0 keeps no volumes.
volume_grace_hours = "24"

runtime = "docker"                     # "docker" in production, "process" for development
image = "nvidia/cuda:12.4.1-base-ubuntu22.04"  # used when the renter asks for none
# Images renters may ask for (`gpuflow rent --image`); a trailing * matches any tag.
# Without this list any image is allowed.
# allowed_images = ["nvidia/cuda:*", "pytorch/pytorch:*", "ubuntu:22.04"]
# Required by the docker runtime: the public name or IP renters ssh to (or --ssh-host).
# ssh_host = "203.0.113.7"

# Price per GPU per hour, in tokens, by the model name `gpuflow-provider gpus` shows.
# Each must convert to a whole number of token units per second.
[prices]
{prices}
"#,
        keystore = keystore.display(),
        data_dir = data_dir.display(),
    )
}

/// The price per GPU-hour `init` suggests: 0.0001 tokens per second, a whole number of
/// units per second for any token with at least 4 decimals, and per GPU, so it splits over
/// any number of them. Up to 16 decimals a machine of `MAX_GPUS` GPUs at this price stays
/// within [`MAX_ESCROW_RATE`]; an 18-decimal token cannot be priced this high at all.
pub const PRICE_HINT: &str = "0.36";

/// Token units per second for one hourly price, which must convert exactly.
pub fn per_second(what: &str, per_hour: &str, decimals: u8) -> Result<u128, ConfigError> {
    let fail = |reason: String| ConfigError::Price { what: what.to_owned(), reason };
    let units = parse_units(per_hour, decimals).map_err(|e| fail(e.to_string()))?;
    if units % 3600 != 0 || units == 0 {
        let down = units / 3600 * 3600;
        return Err(fail(format!(
            "{per_hour} per hour is not a whole number of token units per second; use a \
             multiple of {} per hour (e.g. {} or {})",
            gpuflow_protocol::format_units(3600, decimals),
            gpuflow_protocol::format_units(down.max(3600), decimals),
            gpuflow_protocol::format_units(down + 3600, decimals),
        )));
    }
    Ok(units / 3600)
}

/// The rate of each GPU, token units per second, by UUID: from `--price-per-hour` (the
/// whole machine, split evenly) when given, else from the config's per-model prices. The
/// whole machine's rate must be one `GpuEscrow` opens a rental at ([`MAX_ESCROW_RATE`]):
/// nodes drop an offer priced above it, and no renter could pay it.
pub fn gpu_rates(
    gpus: &[GpuInfo],
    machine_per_hour: Option<&str>,
    prices: &BTreeMap<String, String>,
    decimals: u8,
) -> Result<BTreeMap<String, u128>, ConfigError> {
    let (what, rates) = match machine_per_hour {
        Some(price) => ("--price-per-hour", split_machine_price(gpus, price, decimals)?),
        None => ("[prices]", model_rates(gpus, prices, decimals)?),
    };
    let machine = rates.values().fold(0u128, |sum, rate| sum.saturating_add(*rate));
    if machine > MAX_ESCROW_RATE {
        return Err(ConfigError::Price {
            what: what.into(),
            reason: format!(
                "the machine ({} GPU{}) comes to {machine} token units per second, above the \
                 {MAX_ESCROW_RATE} (2^44 - 1) that GpuEscrow accepts (its MAX_RATE): price the \
                 whole machine at most {} per hour",
                gpus.len(),
                if gpus.len() == 1 { "" } else { "s" },
                format_units(MAX_ESCROW_RATE * 3600, decimals),
            ),
        });
    }
    Ok(rates)
}

/// `--price-per-hour`, the whole machine's price, split evenly over its GPUs.
fn split_machine_price(
    gpus: &[GpuInfo],
    price: &str,
    decimals: u8,
) -> Result<BTreeMap<String, u128>, ConfigError> {
    let machine = per_second("--price-per-hour", price, decimals)?;
    let n = gpus.len() as u128;
    if n == 0 || machine % n != 0 {
        return Err(ConfigError::Price {
            what: "--price-per-hour".into(),
            reason: format!("{machine} token units per second do not split evenly over {n} GPUs"),
        });
    }
    Ok(gpus.iter().map(|g| (g.uuid.clone(), machine / n)).collect())
}

/// Each GPU's rate from the config's price of its model.
fn model_rates(
    gpus: &[GpuInfo],
    prices: &BTreeMap<String, String>,
    decimals: u8,
) -> Result<BTreeMap<String, u128>, ConfigError> {
    gpus.iter()
        .map(|g| {
            let price = prices.get(&g.name).ok_or_else(|| ConfigError::Price {
                what: g.name.clone(),
                reason: format!(
                    "no price for this model; add `\"{}\" = \"{PRICE_HINT}\"` under [prices] in \
                     provider.toml, or pass --price-per-hour",
                    g.name
                ),
            })?;
            Ok((g.uuid.clone(), per_second(&g.name, price, decimals)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str, uuid: &str) -> GpuInfo {
        GpuInfo {
            name: name.into(),
            uuid: uuid.into(),
            memory_bytes: 1,
            pci_bus_id: "0".into(),
            compute_capability: "8.9".into(),
            driver_version: "550".into(),
            cuda_version: "12.4".into(),
        }
    }

    #[test]
    fn prices_convert_exactly_or_say_what_would() {
        assert_eq!(per_second("x", "0.36", 6).unwrap(), 100);
        let err = per_second("x", "0.3601", 6).unwrap_err().to_string();
        assert!(err.contains("0.0036") && err.contains("0.36 or 0.3636"), "{err}");
        assert!(per_second("x", "0", 6).is_err());
    }

    #[test]
    fn rates_come_per_model_or_from_the_machine_flag() {
        let gpus = [gpu("RTX 4090", "GPU-a"), gpu("H100", "GPU-b")];
        let prices = BTreeMap::from([
            ("RTX 4090".to_owned(), "0.36".to_owned()),
            ("H100".to_owned(), "1.8".to_owned()),
        ]);
        let rates = gpu_rates(&gpus, None, &prices, 6).unwrap();
        assert_eq!((rates["GPU-a"], rates["GPU-b"]), (100, 500));
        let flag = gpu_rates(&gpus, Some("0.36"), &BTreeMap::new(), 6).unwrap();
        assert_eq!((flag["GPU-a"], flag["GPU-b"]), (50, 50));
        let missing = gpu_rates(&gpus, None, &BTreeMap::new(), 6).unwrap_err().to_string();
        assert!(missing.contains("[prices]") && missing.contains("RTX 4090"), "{missing}");
    }

    #[test]
    fn a_machine_priced_above_what_the_escrow_accepts_is_refused_naming_the_limit() {
        let per_hour = |units_per_second: u128| (units_per_second * 3600).to_string();
        let one = [gpu("H100", "GPU-a")];
        let flag = |rate| gpu_rates(&one, Some(&per_hour(rate)), &BTreeMap::new(), 0);
        assert_eq!(flag(MAX_ESCROW_RATE).unwrap()["GPU-a"], MAX_ESCROW_RATE);
        let refused = flag(MAX_ESCROW_RATE + 1).unwrap_err().to_string();
        assert!(refused.starts_with("price --price-per-hour: "), "{refused}");
        assert!(refused.contains("17592186044415 (2^44 - 1) that GpuEscrow accepts"), "{refused}");
        assert!(refused.contains("at most 63331869759894000 per hour"), "{refused}");
        // Per-model prices count for the whole machine together.
        let two = [gpu("H100", "GPU-a"), gpu("H100", "GPU-b")];
        let priced = |rate| BTreeMap::from([("H100".to_owned(), per_hour(rate))]);
        let half = MAX_ESCROW_RATE / 2;
        assert_eq!(gpu_rates(&two, None, &priced(half), 0).unwrap().len(), 2);
        let refused = gpu_rates(&two, None, &priced(half + 1), 0).unwrap_err().to_string();
        assert!(refused.contains("(2 GPUs) comes to 17592186044416 token units"), "{refused}");
    }

    #[test]
    fn the_image_allow_list_is_read_from_the_file() {
        let config: FileConfig = toml::from_str("allowed_images = [\"nvidia/cuda:*\"]").unwrap();
        assert_eq!(config.allowed_images, vec!["nvidia/cuda:*"]);
    }

    #[test]
    fn the_docker_runtime_needs_an_ssh_host_and_says_how_to_give_one() {
        let image = || Some("nvidia/cuda:12.4.1-base-ubuntu22.04".to_owned());
        for missing in [None, Some(String::new()), Some("  ".to_owned())] {
            let err = DockerSettings::resolve(image(), missing).unwrap_err();
            assert!(matches!(err, ConfigError::NoSshHost), "{err}");
            let text = err.to_string();
            assert!(text.contains("--ssh-host HOST") && text.contains("ssh_host = \""), "{text}");
        }
        let settings = DockerSettings::resolve(image(), Some("203.0.113.7".into())).unwrap();
        assert_eq!(settings.ssh_host, "203.0.113.7");
        let err = DockerSettings::resolve(None, Some("h".into())).unwrap_err();
        assert!(err.to_string().contains("--image"), "{err}");
    }

    #[test]
    fn the_template_parses_and_unknown_keys_are_named() {
        let text =
            template(Some(Address::repeat_byte(1)), "/k.json".as_ref(), "/d".as_ref(), &[], &[]);
        let config: FileConfig = toml::from_str(&text).unwrap();
        assert!(config.bootstrap.is_empty());
        let node =
            "/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        let text = template(None, "/k.json".as_ref(), "/d".as_ref(), &[node.to_owned()], &[]);
        let config: FileConfig = toml::from_str(&text).unwrap();
        assert_eq!(config.bootstrap, [node]);
    }

    #[test]
    fn the_price_hints_init_writes_are_accepted_by_run() {
        let model = "NVIDIA GeForce RTX 4090".to_owned();
        let text =
            template(None, "/k.json".as_ref(), "/d".as_ref(), &[], std::slice::from_ref(&model));
        let config: FileConfig = toml::from_str(&text).unwrap();
        assert_eq!(config.prices[&model], PRICE_HINT);
        for count in 1..=gpuflow_protocol::MAX_GPUS {
            let gpus: Vec<GpuInfo> = (0..count).map(|i| gpu(&model, &format!("GPU-{i}"))).collect();
            for decimals in [4, 6, 16] {
                let rates = gpu_rates(&gpus, None, &config.prices, decimals).unwrap();
                assert_eq!(rates.len(), count, "{count} GPUs, {decimals} decimals");
            }
            // With 18 decimals even one GPU at the hint is over the escrow's highest rate.
            let refused = gpu_rates(&gpus, None, &config.prices, 18).unwrap_err().to_string();
            assert!(refused.contains("GpuEscrow accepts"), "{refused}");
        }
        // The hint a missing price suggests is one that converts, too.
        let missing = gpu_rates(&[gpu(&model, "GPU-0")], None, &BTreeMap::new(), 6).unwrap_err();
        assert!(missing.to_string().contains(&format!("= \"{PRICE_HINT}\"")), "{missing}");
        assert_eq!(config.runtime, Some(RuntimeKind::Docker));
        assert_eq!(config.withdraw_threshold.as_deref(), Some("5"));
        let bad = toml::from_str::<FileConfig>("regoin = \"eu\"").unwrap_err().to_string();
        assert!(bad.contains("regoin"), "{bad}");
    }
}
