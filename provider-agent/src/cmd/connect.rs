//! What every chain command opens: the chain, the escrow and the payout wallet, from the
//! flags and then the config file, and the keystore password.

use std::path::PathBuf;

use alloy::{providers::Provider, signers::local::PrivateKeySigner};
use anyhow::Context;
use gpuflow_escrow::{Escrow, WalletError};

use super::default_config_path;
use crate::{
    config::{FileConfig, KEYSTORE_ENV, PASSWORD_ENV},
    opts::ChainArgs,
};

/// The keystore password from GPUFLOW_PROVIDER_PASSWORD, or asked on the terminal.
pub(super) fn password(confirm: bool) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    let first = prompt("Keystore password: ")?;
    if confirm {
        gpuflow_escrow::keystore::check_password(&first)?;
        anyhow::ensure!(prompt("Repeat it: ")? == first, "the passwords differ; nothing written");
    }
    Ok(first)
}

/// Reads a line from the terminal with echo off.
fn prompt(text: &str) -> anyhow::Result<String> {
    gpuflow_cli_util::prompt_secret(text)
        .with_context(|| format!("no terminal to ask for the password; set {PASSWORD_ENV}"))
}

/// The chain, escrow and wallet from flags, then the config file.
pub(super) struct Chain {
    pub(super) escrow: Escrow,
    pub(super) payout: PrivateKeySigner,
    pub(super) rpc: String,
    pub(super) chain_id: u64,
    pub(super) file: FileConfig,
}

/// The config file named by `--config`, else the default one.
pub(super) fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<FileConfig> {
    Ok(match path {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::load(&default_config_path()?)?,
    })
}

pub(super) async fn connect(args: ChainArgs) -> anyhow::Result<Chain> {
    let file = load_config(args.config.as_deref())?;
    connect_with(args, file).await
}

pub(super) async fn connect_with(args: ChainArgs, file: FileConfig) -> anyhow::Result<Chain> {
    let rpc =
        args.rpc.rpc.clone().or(file.rpc.clone()).unwrap_or_else(|| "http://127.0.0.1:8545".into());
    let escrow = args.escrow.escrow.or(file.escrow).context(
        "no escrow address: pass --escrow, set GPUFLOW_ESCROW, or add `escrow = \"0x...\"` to provider.toml",
    )?;
    let payout = payout_signer(&args, &file)?;
    let client = gpuflow_escrow::connect(&rpc, Some(payout.clone()))?;
    let chain_id =
        client.get_chain_id().await.with_context(|| format!("cannot reach the chain at {rpc}"))?;
    let escrow = Escrow::new(client, escrow).await?;
    Ok(Chain { escrow, payout, rpc, chain_id, file })
}

/// The payout key: `--key-env VAR`, else the keystore of `--keystore`,
/// `GPUFLOW_PROVIDER_KEYSTORE` or the config file, opened with `GPUFLOW_PROVIDER_PASSWORD`
/// or a prompt. Says (on success, in the log) which wallet was opened and from where;
/// never the renter's `GPUFLOW_KEYSTORE`.
fn payout_signer(args: &ChainArgs, file: &FileConfig) -> anyhow::Result<PrivateKeySigner> {
    if let Some(var) = &args.wallet.key_env {
        let signer = gpuflow_escrow::load_signer(None, Some(var))?;
        let from = format!("--key-env {var}");
        tracing::info!(address = %signer.address(), %from, "payout wallet opened");
        return Ok(signer);
    }
    let from_env = std::env::var_os(KEYSTORE_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (path, from) = match (&args.wallet.keystore, from_env, &file.keystore) {
        (Some(path), _, _) => (path.clone(), "--keystore".to_owned()),
        (None, Some(path), _) => (path, KEYSTORE_ENV.to_owned()),
        (None, None, Some(path)) => {
            let config = match &args.config {
                Some(config) => config.clone(),
                None => default_config_path()?,
            };
            (path.clone(), format!("`keystore` in {}", config.display()))
        }
        (None, None, None) => {
            let renters = match std::env::var_os("GPUFLOW_KEYSTORE") {
                Some(_) => {
                    "; GPUFLOW_KEYSTORE is set, but it names the renter's wallet (`gpuflow`) \
                     and gpuflow-provider never reads it"
                }
                None => "",
            };
            anyhow::bail!(
                "no payout wallet: pass --keystore PATH, set {KEYSTORE_ENV} or `keystore` in \
                 provider.toml (password in {PASSWORD_ENV}), or pass --key-env VAR{renters}"
            );
        }
    };
    let shown = gpuflow_escrow::shown_path(&path);
    let wallet = match gpuflow_escrow::keystore_address(&path) {
        Some(address) => format!("payout wallet {address} (keystore {shown}, from {from})"),
        None => format!("payout wallet in keystore {shown} (from {from})"),
    };
    let password = password(false).with_context(|| format!("opening the {wallet}"))?;
    let signer =
        gpuflow_escrow::open_keystore(&path, &password, PASSWORD_ENV).map_err(|e| match e {
            WalletError::Keystore { reason, .. } => {
                anyhow::anyhow!("could not open the {wallet}: {reason}")
            }
            e => e.into(),
        })?;
    tracing::info!(address = %signer.address(), keystore = %shown, %from, "payout wallet opened");
    Ok(signer)
}
