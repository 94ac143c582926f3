//! The option groups every binary that touches the chain flattens in: where the chain is
//! ([`RpcOpts`]), which escrow ([`EscrowOpts`]) and which key signs ([`KeyOpts`]). Each
//! flag is resolved with its environment variable and its config file key through
//! [`crate::layers`], so that every binary reads them the same way.

use std::path::PathBuf;

use alloy::primitives::Address;
use clap::Args;

use crate::layers::{LayerError, Setting, Source, layer};

/// Environment variable of `--rpc`.
pub const RPC_ENV: &str = "GPUFLOW_RPC";
/// Environment variable of `--escrow`.
pub const ESCROW_ENV: &str = "GPUFLOW_ESCROW";
/// The chain a local devnet serves, the RPC used when nothing names one.
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8545";

/// The chain's JSON-RPC endpoint.
#[derive(Clone, Debug, Default, Args)]
pub struct RpcOpts {
    /// Ethereum JSON-RPC endpoint [env: GPUFLOW_RPC].
    #[arg(long, global = true, value_name = "URL")]
    pub rpc: Option<String>,
}

impl RpcOpts {
    /// `--rpc`, else `GPUFLOW_RPC`, else the config file's value (with its source).
    pub fn resolve(
        &self,
        file: Option<(Source, Option<String>)>,
    ) -> Result<Option<Setting<String>>, LayerError> {
        layer((self.rpc.clone(), "--rpc"), RPC_ENV, file, |t| {
            Ok::<_, std::convert::Infallible>(t.to_owned())
        })
    }
}

/// The `GpuEscrow` contract.
#[derive(Clone, Debug, Default, Args)]
pub struct EscrowOpts {
    /// Address of the GpuEscrow contract [env: GPUFLOW_ESCROW].
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub escrow: Option<Address>,
}

impl EscrowOpts {
    /// `--escrow`, else `GPUFLOW_ESCROW`, else the config file's value (with its source).
    pub fn resolve(
        &self,
        file: Option<(Source, Option<Address>)>,
    ) -> Result<Option<Setting<Address>>, LayerError> {
        layer((self.escrow, "--escrow"), ESCROW_ENV, file, str::parse::<Address>)
    }
}

/// The key that signs: an encrypted keystore, or a raw key in an environment variable.
/// Which environment variable names the keystore, and which holds its password, is each
/// binary's own (the renter's and the provider's differ, so that one shell can hold both).
#[derive(Clone, Debug, Default, Args)]
pub struct KeyOpts {
    /// Encrypted keystore to sign with (password from the environment, or asked).
    #[arg(long, global = true, value_name = "PATH")]
    pub keystore: Option<PathBuf>,
    /// Name of an environment variable holding a raw private key (0x...) instead.
    #[arg(long, global = true, value_name = "VAR")]
    pub key_env: Option<String>,
}

/// Which key signs, as resolved from [`KeyOpts`] and the binary's own layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChoice {
    /// A raw key in this environment variable (`--key-env`).
    KeyEnv(String),
    /// A keystore file.
    Keystore(PathBuf),
}

impl KeyOpts {
    /// `--key-env`, else `--keystore`, else `keystore_env`, else the config file's keystore.
    pub fn resolve(
        &self,
        keystore_env: &str,
        file: Option<(Source, Option<PathBuf>)>,
    ) -> Option<Setting<KeyChoice>> {
        if let Some(var) = &self.key_env {
            let source = Source::Flag("--key-env".into());
            return Some(Setting { value: KeyChoice::KeyEnv(var.clone()), source });
        }
        let keystore = layer((self.keystore.clone(), "--keystore"), keystore_env, file, |t| {
            Ok::<_, std::convert::Infallible>(PathBuf::from(t))
        })
        .unwrap_or(None)?;
        Some(Setting { value: KeyChoice::Keystore(keystore.value), source: keystore.source })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        rpc: RpcOpts,
        #[command(flatten)]
        escrow: EscrowOpts,
        #[command(flatten)]
        key: KeyOpts,
    }

    #[test]
    fn flags_come_first_and_name_themselves() {
        let cli = Cli::parse_from([
            "x",
            "--rpc",
            "http://a",
            "--escrow",
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "--keystore",
            "/k.json",
        ]);
        let file = Some((Source::Config("`rpc` in x.toml".into()), Some("http://b".to_owned())));
        let rpc = cli.rpc.resolve(file).unwrap().unwrap();
        assert_eq!((rpc.value.as_str(), rpc.source), ("http://a", Source::Flag("--rpc".into())));
        assert!(cli.escrow.resolve(None).unwrap().is_some());
        let key = cli.key.resolve("GPUFLOW_TEST_SURELY_UNSET", None).unwrap();
        assert_eq!(key.value, KeyChoice::Keystore("/k.json".into()));
    }

    #[test]
    fn a_key_variable_beats_a_keystore_and_the_file_comes_last() {
        let both = Cli::parse_from(["x", "--keystore", "/k.json", "--key-env", "KEY"]);
        let key = both.key.resolve("GPUFLOW_TEST_SURELY_UNSET", None).unwrap();
        assert_eq!(key.value, KeyChoice::KeyEnv("KEY".into()));
        let none = Cli::parse_from(["x"]);
        let file = Some((Source::Config("`keystore` in x.toml".into()), Some("/f.json".into())));
        let key = none.key.resolve("GPUFLOW_TEST_SURELY_UNSET", file).unwrap();
        assert_eq!(key.value, KeyChoice::Keystore("/f.json".into()));
        assert_eq!(key.source.to_string(), "`keystore` in x.toml");
        assert!(none.key.resolve("GPUFLOW_TEST_SURELY_UNSET", None).is_none());
    }
}
