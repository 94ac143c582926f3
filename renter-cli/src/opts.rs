//! Options every subcommand shares, and the settings they resolve to.

use std::path::PathBuf;

use alloy::{primitives::Address, providers::Provider, signers::local::PrivateKeySigner};
use clap::Args;
use gpuflow_cli_util::{
    EscrowOpts, KeyOpts, RpcOpts,
    opts::{ESCROW_ENV, RPC_ENV},
};
use gpuflow_escrow::Escrow;
use serde::Serialize;

use crate::{
    config::{self, DEFAULT_NODE, DEFAULT_RPC, Setting, Source},
    error::{Exit, fail},
    node::NodeClient,
    wallet,
};

/// Where to connect and which wallet to sign with. Each may also come from `GPUFLOW_*`
/// or the config file's profile.
#[derive(Clone, Debug, Default, Args)]
#[command(
    next_help_heading = "Connection and wallet",
    mut_arg("keystore", |a| a.help(
        "Encrypted keystore file instead of a named wallet [env: GPUFLOW_KEYSTORE]"
    )),
)]
pub struct GlobalOpts {
    /// Profile of `config.toml` to use [env: GPUFLOW_PROFILE].
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// gpuflow node to search [env: GPUFLOW_NODE] [default: http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL")]
    pub node: Option<String>,
    /// The chain's JSON-RPC endpoint [default: http://127.0.0.1:8545].
    #[command(flatten)]
    pub rpc: RpcOpts,
    /// The escrow contract.
    #[command(flatten)]
    pub escrow: EscrowOpts,
    /// Chain id the RPC must serve; a different chain is refused [env: GPUFLOW_CHAIN_ID].
    #[arg(long, global = true, value_name = "ID")]
    pub chain_id: Option<u64>,
    /// First block to read escrow events from, the escrow's deployment block
    /// [env: GPUFLOW_FROM_BLOCK] [default: 0].
    #[arg(long, global = true, value_name = "BLOCK")]
    pub from_block: Option<u64>,
    /// Wallet name from `gpuflow wallet list` [env: GPUFLOW_WALLET] [default: the first].
    #[arg(long, global = true, value_name = "NAME")]
    pub wallet: Option<String>,
    /// A keystore or a raw key instead of a named wallet.
    #[command(flatten)]
    pub key: KeyOpts,
}

/// Which key signs.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum KeySource {
    /// A keystore file.
    #[serde(serialize_with = "shown_path")]
    Keystore(PathBuf),
    /// A raw key in this environment variable.
    #[serde(serialize_with = "shown_key_env")]
    KeyEnv(String),
    /// A named wallet (the first when none is named).
    #[serde(serialize_with = "shown_wallet")]
    Wallet(Option<String>),
}

impl std::fmt::Display for KeySource {
    /// What a user typed, unless it looks like a secret (a key given instead of a name).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keystore(path) => write!(f, "keystore {}", gpuflow_escrow::shown_path(path)),
            Self::KeyEnv(var) if gpuflow_escrow::is_key_env_name(var) => write!(f, "key in ${var}"),
            Self::KeyEnv(_) => write!(f, "--key-env {}", gpuflow_escrow::NOT_PRINTED),
            Self::Wallet(Some(name)) => write!(f, "wallet {}", gpuflow_escrow::shown(name)),
            Self::Wallet(None) => write!(f, "first wallet in `gpuflow wallet list`"),
        }
    }
}

fn shown_path<S: serde::Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&gpuflow_escrow::shown_path(path))
}

fn shown_key_env<S: serde::Serializer>(var: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if gpuflow_escrow::is_key_env_name(var) {
        var
    } else {
        gpuflow_escrow::NOT_PRINTED
    })
}

fn shown_wallet<S: serde::Serializer>(name: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match name {
        Some(name) => s.serialize_some(gpuflow_escrow::shown(name)),
        None => s.serialize_none(),
    }
}

/// The effective settings.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// The profile in use, if any.
    pub profile: Option<Setting<String>>,
    /// Node URL.
    pub node: Setting<String>,
    /// RPC URL.
    pub rpc: Setting<String>,
    /// Escrow address.
    pub escrow: Option<Setting<Address>>,
    /// Expected chain id.
    pub chain_id: Option<Setting<u64>>,
    /// First block to read escrow events from.
    pub from_block: Setting<u64>,
    /// Signing key.
    pub key: Setting<KeySource>,
}

impl GlobalOpts {
    /// Resolves the settings: defaults < config file < `GPUFLOW_*` < flags.
    pub fn resolve(&self) -> anyhow::Result<Settings> {
        let file = config::load()?;
        let selected = config::select(&file, self.profile.as_deref())?;
        let (name, p) = match &selected {
            Some(s) => (s.value.0.as_str(), s.value.1.clone()),
            None => ("", config::Profile::default()),
        };
        let has = selected.is_some();
        let text = |t: &str| Ok(t.to_owned());
        let from = |v: Option<String>| has.then_some((name, v));
        let node =
            config::layer((self.node.clone(), "--node"), "GPUFLOW_NODE", from(p.node), text)?
                .unwrap_or(Setting { value: DEFAULT_NODE.into(), source: Source::Default });
        let rpc = config::layer((self.rpc.rpc.clone(), "--rpc"), RPC_ENV, from(p.rpc), text)?
            .unwrap_or(Setting { value: DEFAULT_RPC.into(), source: Source::Default });
        let profile_escrow = p
            .escrow
            .map(|e| {
                e.parse::<Address>().map_err(|err| {
                    fail(
                        Exit::Usage,
                        format!("profile {name}: escrow `{e}` is not an address: {err}"),
                    )
                })
            })
            .transpose()?;
        let escrow = config::layer(
            (self.escrow.escrow, "--escrow"),
            ESCROW_ENV,
            has.then_some((name, profile_escrow)),
            |t| Ok(t.parse()?),
        )?;
        let chain_id = config::layer(
            (self.chain_id, "--chain-id"),
            "GPUFLOW_CHAIN_ID",
            has.then_some((name, p.chain_id)),
            |t| Ok(t.parse()?),
        )?;
        let from_block = config::layer(
            (self.from_block, "--from-block"),
            "GPUFLOW_FROM_BLOCK",
            has.then_some((name, p.from_block)),
            |t| Ok(t.parse()?),
        )?
        .unwrap_or(Setting { value: 0, source: Source::Default });
        let key = self.key_source(has.then_some((name, p.wallet)));
        Ok(Settings {
            profile: selected.map(|s| Setting { value: s.value.0, source: s.source }),
            node,
            rpc,
            escrow,
            chain_id,
            from_block,
            key,
        })
    }

    /// Flags first (`--key-env`, `--keystore`, `--wallet`), then the environment, then
    /// the profile's wallet, then the first wallet.
    fn key_source(&self, profile: Option<(&str, Option<String>)>) -> Setting<KeySource> {
        let flag = |value, flag: &str| Setting { value, source: Source::Flag(flag.into()) };
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        if let Some(var) = &self.key.key_env {
            return flag(KeySource::KeyEnv(var.clone()), "--key-env");
        }
        if let Some(path) = &self.key.keystore {
            return flag(KeySource::Keystore(path.clone()), "--keystore");
        }
        if let Some(name) = &self.wallet {
            return flag(KeySource::Wallet(Some(name.clone())), "--wallet");
        }
        if let Some(path) = env("GPUFLOW_KEYSTORE") {
            let source = Source::Env("GPUFLOW_KEYSTORE".into());
            return Setting { value: KeySource::Keystore(path.into()), source };
        }
        if let Some(name) = env("GPUFLOW_WALLET") {
            let source = Source::Env("GPUFLOW_WALLET".into());
            return Setting { value: KeySource::Wallet(Some(name)), source };
        }
        if let Some((profile, Some(name))) = profile {
            let source = Source::File(profile.to_owned());
            return Setting { value: KeySource::Wallet(Some(name)), source };
        }
        Setting { value: KeySource::Wallet(None), source: Source::Default }
    }
}

impl Settings {
    /// The node's API client.
    pub(crate) fn node(&self) -> NodeClient {
        NodeClient::new(&self.node.value)
    }

    /// Loads the signing key.
    pub(crate) fn signer(&self) -> anyhow::Result<PrivateKeySigner> {
        match &self.key.value {
            KeySource::KeyEnv(var) => Ok(gpuflow_escrow::key_from_env(var)?),
            KeySource::Keystore(path) => wallet::unlock(path, &self.key.source.to_string()),
            KeySource::Wallet(name) => {
                let from = match name {
                    Some(name) => {
                        format!("wallet {} by {}", gpuflow_escrow::shown(name), self.key.source)
                    }
                    None => "the first wallet, by default".to_owned(),
                };
                wallet::unlock(&wallet::find(name.as_deref())?.path, &from)
            }
        }
    }

    /// The signing address, without unlocking when the keystore records it.
    pub(crate) fn address(&self) -> anyhow::Result<Address> {
        if let KeySource::Wallet(name) = &self.key.value
            && let Some(address) = wallet::find(name.as_deref())?.address
        {
            return Ok(address);
        }
        Ok(self.signer()?.address())
    }

    /// Connects to the escrow, signing with `signer` if given, after checking that the
    /// RPC answers and serves the expected chain. Returns the chain id too.
    pub(crate) async fn escrow(
        &self,
        signer: Option<PrivateKeySigner>,
    ) -> anyhow::Result<(Escrow, u64)> {
        let address = self.escrow.as_ref().map(|s| s.value).ok_or_else(|| {
            fail(
                Exit::Usage,
                "no escrow address: pass --escrow, set GPUFLOW_ESCROW, or add `escrow` to a \
                 profile in config.toml",
            )
        })?;
        let provider = gpuflow_escrow::connect(&self.rpc.value, signer)
            .map_err(|e| fail(Exit::Usage, e.to_string()))?;
        let chain_id = self.chain_id(&provider).await?;
        let escrow = Escrow::new(provider, address).await?.with_from_block(self.from_block.value);
        Ok((escrow, chain_id))
    }

    /// The RPC's chain id, checked against the expected one.
    pub(crate) async fn chain_id(&self, provider: &impl Provider) -> anyhow::Result<u64> {
        let chain_id = provider.get_chain_id().await.map_err(|e| {
            fail(
                Exit::Unreachable,
                format!(
                    "cannot reach the chain at {} ({}): {}; check that it runs, or fix --rpc / \
                     GPUFLOW_RPC",
                    self.rpc.value,
                    self.rpc.source,
                    gpuflow_escrow::rpc_reason(&e)
                ),
            )
        })?;
        if let Some(expected) = &self.chain_id
            && expected.value != chain_id
        {
            return Err(fail(
                Exit::Usage,
                format!(
                    "wrong chain: {} serves chain id {chain_id}, but chain id {} is expected \
                     ({}); point --rpc at the right chain or fix the chain id. No money moved",
                    self.rpc.value, expected.value, expected.source
                ),
            ));
        }
        Ok(chain_id)
    }
}
