//! `gpuflow wallet`.

use alloy::{primitives::U256, providers::Provider, signers::local::PrivateKeySigner};
use clap::{Args, Subcommand};
use gpuflow_escrow::PASSWORD_ENV;
use serde_json::json;

use super::{Ctx, money, print_json};
use crate::{
    error::{Exit, fail},
    ui, wallet,
};

/// `gpuflow wallet ...`.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a wallet with a fresh random key.
    #[command(after_help = "Examples:
  gpuflow wallet new
  GPUFLOW_PASSWORD=... gpuflow wallet new --name work

The key is encrypted with the password (GPUFLOW_PASSWORD, or asked twice without
echo; at least 8 characters) into $XDG_CONFIG_HOME/gpuflow/keystores/NAME.json, geth's keystore format.
The first wallet (by name) is the default for rent, extend and stop.")]
    New(NameArgs),
    /// Import a key: a raw private key from an environment variable you name, or an
    /// existing geth-format keystore file.
    #[command(after_help = "Examples:
  read -rs KEY && export KEY && gpuflow wallet import --key-env KEY --name main
  gpuflow wallet import --file ~/.ethereum/keystore/UTC--2024-01-01T00-00-00Z--1a2b... --name geth

A raw key is read only from the variable, never from the command line, so it stays
out of shell history and process lists. A keystore file is opened with its password
(GPUFLOW_PASSWORD, or asked) and stored again, encrypted with the new wallet's password,
in the wallet directory; the original file is left as it is.")]
    Import(ImportArgs),
    /// List the wallets and their addresses.
    #[command(after_help = "Examples:\n  gpuflow wallet list\n  gpuflow wallet list --json")]
    List,
    /// Print the address of the wallet in use.
    #[command(
        after_help = "Examples:\n  gpuflow wallet address\n  gpuflow wallet address --wallet work"
    )]
    Address,
    /// Show the wallet's token balance (and ETH for gas).
    #[command(
        after_help = "Examples:\n  gpuflow wallet balance\n  gpuflow --profile sepolia wallet balance --json"
    )]
    Balance,
}

/// `gpuflow wallet import` arguments (`--key-env` is the global option).
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    name: NameArgs,
    /// An existing keystore file (geth's format) to import instead of a raw key.
    #[arg(long, value_name = "KEYSTORE")]
    file: Option<std::path::PathBuf>,
}

/// `--name`.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Name of the wallet (letters, digits, `-`, `_`).
    #[arg(long, default_value = "default")]
    name: String,
}

impl WalletCommand {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self {
            Self::New(args) => store(ctx, &args.name, PrivateKeySigner::random()),
            Self::Import(args) => {
                // `--key-env` is the global option: the same flag that signs with a raw key.
                let signer = match (ctx.globals.key.key_env.as_deref(), &args.file) {
                    (Some(_), Some(_)) => {
                        return Err(fail(
                            Exit::Usage,
                            "import either a raw key (--key-env VAR) or a keystore (--file \
                             PATH), not both",
                        ));
                    }
                    (Some(var), None) => gpuflow_escrow::key_from_env(var)?,
                    (None, Some(file)) => wallet::unlock(file, "flag --file")?,
                    (None, None) => {
                        return Err(fail(
                            Exit::Usage,
                            "name what to import: --key-env VAR (a raw key in that variable) \
                             or --file PATH (a keystore file)",
                        ));
                    }
                };
                store(ctx, &args.name.name, signer)
            }
            Self::List => list(ctx),
            Self::Address => {
                let address = ctx.settings()?.address()?;
                if ctx.json {
                    print_json(&json!({ "address": address }));
                } else {
                    println!("{address}");
                }
                Ok(())
            }
            Self::Balance => balance(ctx).await,
        }
    }
}

fn store(ctx: &Ctx, name: &str, signer: PrivateKeySigner) -> anyhow::Result<()> {
    let password = wallet::password(&format!("password for the new wallet {name}: "), true)?;
    gpuflow_escrow::keystore::check_password(&password).map_err(|e| {
        fail(Exit::Usage, format!("{e}; choose a longer one ({PASSWORD_ENV} or the prompt)"))
    })?;
    let stored = wallet::store(name, &signer, &password)?;
    if ctx.json {
        print_json(
            &json!({ "name": stored.name, "address": signer.address(), "path": stored.path }),
        );
    } else {
        println!("wallet {} created: {}", stored.name, signer.address());
        println!("keystore: {} (keep a backup and the password)", stored.path.display());
    }
    Ok(())
}

fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let all = wallet::list()?;
    if ctx.json {
        let rows: Vec<_> = all
            .iter()
            .enumerate()
            .map(|(i, k)| {
                json!({ "name": k.name, "address": k.address, "path": k.path, "default": i == 0 })
            })
            .collect();
        print_json(&serde_json::Value::Array(rows));
        return Ok(());
    }
    if all.is_empty() {
        println!("no wallet yet; create one with `gpuflow wallet new`");
        return Ok(());
    }
    let mut table = ui::table(&["NAME", "ADDRESS", "DEFAULT"]);
    for (i, k) in all.iter().enumerate() {
        let address = k.address.map(|a| a.to_string()).unwrap_or_else(|| "(locked)".into());
        table.add_row(vec![k.name.clone(), address, if i == 0 { "yes" } else { "" }.into()]);
    }
    println!("{table}");
    Ok(())
}

async fn balance(ctx: &Ctx) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    let address = settings.address()?;
    let (escrow, chain_id) = settings.escrow(None).await?;
    let eth = escrow
        .provider()
        .get_balance(address)
        .await
        .map_err(|e| fail(Exit::Unreachable, format!("reading the ETH balance: {e}")))?;
    let tokens = escrow.balance_of(address).await?;
    let token = super::Token::of(&escrow).await?;
    if ctx.json {
        print_json(&json!({
            "address": address,
            "chain_id": chain_id,
            "token": escrow.token(),
            "balance": tokens.to_string(),
            "decimals": token.decimals,
            "symbol": token.symbol,
            "eth_wei": eth.to_string(),
        }));
    } else {
        println!("{address} on chain {chain_id}");
        println!("  tokens  {}", money(tokens, &token));
        println!("  gas     {} ETH", super::tokens(eth, &super::ETH));
        if eth == U256::ZERO {
            println!("  note: no ETH for gas; fund this address before renting");
        }
    }
    Ok(())
}
