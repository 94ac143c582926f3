//! Connecting to a chain: one HTTP client with a request timeout, and what a failed RPC
//! request means in words.

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::client::ClientBuilder,
    signers::local::PrivateKeySigner,
    transports::http::reqwest,
};

use crate::EscrowError;

/// Longest one RPC request may take before it fails, unless [`RPC_TIMEOUT_ENV`] says
/// otherwise: a frozen RPC must never hold up its caller for good.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variable that sets the RPC request timeout, in seconds.
pub const RPC_TIMEOUT_ENV: &str = "GPUFLOW_RPC_TIMEOUT_SECS";

/// The RPC request timeout: [`RPC_TIMEOUT_ENV`] if set to a positive number of seconds,
/// else [`RPC_TIMEOUT`].
pub fn rpc_timeout() -> Duration {
    std::env::var(RPC_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .map_or(RPC_TIMEOUT, Duration::from_secs)
}

/// Connects to the chain at `rpc_url`, signing with `signer` when given.
///
/// Every request times out after [`rpc_timeout`]. Nonces are read from the chain for
/// every transaction instead of counted locally, so a transaction that fails before it is
/// sent (its gas estimate reverts) never leaves a gap that would hold up the next one.
pub fn connect(
    rpc_url: &str,
    signer: Option<PrivateKeySigner>,
) -> Result<DynProvider, EscrowError> {
    let url = rpc_url.parse().map_err(|e| EscrowError::Rpc {
        action: "parsing the RPC URL",
        reason: format!("`{rpc_url}` is not a URL: {e}"),
    })?;
    let http = reqwest::Client::builder().timeout(rpc_timeout()).build().map_err(|e| {
        EscrowError::Rpc { action: "setting up the RPC client", reason: e.to_string() }
    })?;
    let client = ClientBuilder::default().http_with_client(http, url);
    let builder = ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id();
    Ok(match signer {
        Some(signer) => {
            builder.wallet(EthereumWallet::from(signer)).connect_client(client).erased()
        }
        None => builder.connect_client(client).erased(),
    })
}

/// The error's text, or, for a request that ran out of time, what that means and what to do.
pub fn rpc_reason(error: &(impl std::fmt::Display + std::fmt::Debug)) -> String {
    let text = error.to_string();
    let debug = format!("{error:?}");
    if [&text, &debug].iter().any(|t| t.contains("timed out") || t.contains("TimedOut")) {
        format!(
            "the RPC did not answer within {} s: it is frozen or overloaded; try again, or use \
             another RPC URL (the timeout is set by {RPC_TIMEOUT_ENV})",
            rpc_timeout().as_secs()
        )
    } else {
        text
    }
}
