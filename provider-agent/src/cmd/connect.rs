//! What every chain command opens: the chain, the escrow and the payout wallet, from the
//! flags, `GPUFLOW_*` and then the config file, and the keystore password.

use std::path::{Path, PathBuf};

use alloy::{providers::Provider, signers::local::PrivateKeySigner};
use anyhow::Context;
use gpuflow_cli_util::{Setting, Source, opts::DEFAULT_RPC};
use gpuflow_escrow::Escrow;

use super::default_config_path;
use crate::{
    config::{FileConfig, KEYSTORE_ENV, PASSWORD_ENV},
    opts::ChainArgs,
};

/// The keystore password from GPUFLOW_PROVIDER_PASSWORD, or asked on the terminal.
pub(super) fn password(confirm: bool) -> anyhow::Result<String> {
    Ok(gpuflow_cli_util::wallet::password(PASSWORD_ENV, "Keystore password: ", confirm)?)
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
pub(super) fn load_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
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
    let config = match &args.config {
        Some(config) => config.clone(),
        None => default_config_path()?,
    };
    let key = |name: &str| Source::Config(format!("`{name}` in {}", config.display()));
    let rpc = args
        .rpc
        .resolve(Some((key("rpc"), file.rpc.clone())))?
        .map_or_else(|| DEFAULT_RPC.to_owned(), |s| s.value);
    let escrow = args.escrow.resolve(Some((key("escrow"), file.escrow)))?.context(
        "no escrow address: pass --escrow, set GPUFLOW_ESCROW, or add `escrow = \"0x...\"` to provider.toml",
    )?;
    let payout = payout_signer(&args, file.keystore.clone(), key("keystore"))?;
    let client = gpuflow_escrow::connect(&rpc, Some(payout.clone()))?;
    let chain_id =
        client.get_chain_id().await.with_context(|| format!("cannot reach the chain at {rpc}"))?;
    let escrow = Escrow::new(client, escrow.value).await?;
    Ok(Chain { escrow, payout, rpc, chain_id, file })
}

/// The payout key: `--key-env VAR`, else the keystore of `--keystore`,
/// `GPUFLOW_PROVIDER_KEYSTORE` or the config file, opened with `GPUFLOW_PROVIDER_PASSWORD`
/// or a prompt. Says (on success, in the log) which wallet was opened and from where;
/// never the renter's `GPUFLOW_KEYSTORE`.
fn payout_signer(
    args: &ChainArgs,
    file: Option<PathBuf>,
    source: Source,
) -> anyhow::Result<PrivateKeySigner> {
    let Some(choice) = args.key.resolve(KEYSTORE_ENV, Some((source, file))) else {
        let renters = match std::env::var_os("GPUFLOW_KEYSTORE") {
            Some(_) => {
                "; GPUFLOW_KEYSTORE is set, but it names the renter's wallet (`gpuflow`) and \
                 gpuflow-provider never reads it"
            }
            None => "",
        };
        anyhow::bail!(
            "no payout wallet: pass --keystore PATH, set {KEYSTORE_ENV} or `keystore` in \
             provider.toml (password in {PASSWORD_ENV}), or pass --key-env VAR{renters}"
        );
    };
    // The variable alone names where an environment keystore came from.
    let source = match choice.source {
        Source::Env(var) => Source::Config(var),
        source => source,
    };
    let choice = Setting { source, ..choice };
    Ok(gpuflow_cli_util::wallet::signer(&choice, "payout wallet", PASSWORD_ENV)?)
}
