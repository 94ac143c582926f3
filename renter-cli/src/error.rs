//! Exit codes, and the errors that carry one.
//!
//! Commands fail with `anyhow` errors; the ones a script may want to tell apart carry a
//! [`Failure`] with its [`Exit`] code, and [`exit_code`] also recognises the escrow's and
//! the wallet's typed errors anywhere in the chain.

use gpuflow_cli_util::{LayerError, UnlockError};
use gpuflow_escrow::{EscrowError, WalletError};

/// What the process exit status means. Documented in `gpuflow --help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Anything not listed below.
    Generic = 1,
    /// Bad flags, arguments or configuration (also clap's own code).
    Usage = 2,
    /// The offer, rental, wallet or profile does not exist.
    NotFound = 3,
    /// Refused by the provider, the contract, or by the renter's own limits (price cap,
    /// balance, confirmation); no tokens moved.
    Refused = 4,
    /// The node, the chain's RPC or the provider could not be reached; no tokens moved.
    Unreachable = 5,
    /// Tokens may have moved and need a look: a rental opened but its workload is not
    /// running, or a transaction was sent and its outcome is unknown.
    Pending = 6,
}

/// An error with the exit code it should end the process with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    message: String,
    /// What a script needs besides the message (the id of a rental that did open, say);
    /// merged into the `--json` error document.
    details: Option<serde_json::Value>,
}

/// Builds an error that exits with `exit`.
pub(crate) fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    Failure { exit, message: message.into(), details: None }.into()
}

/// Builds an error that exits with `exit` and carries `details` (a JSON object) for
/// `--json` output.
pub(crate) fn fail_with(
    exit: Exit,
    message: impl Into<String>,
    details: serde_json::Value,
) -> anyhow::Error {
    Failure { exit, message: message.into(), details: Some(details) }.into()
}

/// The `--json` form of an error: `{"error": {"code": N, "message": "..."}}`, plus the
/// fields of the failure's details.
pub fn error_json(error: &anyhow::Error) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    if let Some(serde_json::Value::Object(details)) =
        error.chain().find_map(|c| c.downcast_ref::<Failure>()).and_then(|f| f.details.clone())
    {
        doc.extend(details);
    }
    doc.insert(
        "error".into(),
        serde_json::json!({ "code": exit_code(error), "message": format!("{error:#}") }),
    );
    serde_json::Value::Object(doc)
}

/// The exit status for an error: the first code found in its chain.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    for cause in error.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.exit as i32;
        }
        if let Some(e) = cause.downcast_ref::<EscrowError>() {
            return match e {
                EscrowError::NotFound { .. } => Exit::NotFound as i32,
                EscrowError::Reverted { .. } | EscrowError::Failed { .. } => Exit::Refused as i32,
                EscrowError::Rpc { .. } => Exit::Unreachable as i32,
                EscrowError::Unconfirmed { .. } => Exit::Pending as i32,
                _ => Exit::Generic as i32,
            };
        }
        if let Some(e) = cause.downcast_ref::<WalletError>() {
            return wallet_exit(e) as i32;
        }
        if let Some(e) = cause.downcast_ref::<UnlockError>() {
            return match e {
                UnlockError::NotFound { .. } => Exit::NotFound,
                UnlockError::NoPassword { .. }
                | UnlockError::PasswordsDiffer
                | UnlockError::WrongPassword { .. } => Exit::Usage,
                UnlockError::Key(e) => wallet_exit(e),
                UnlockError::Prompt(_) | UnlockError::Unreadable { .. } => Exit::Generic,
            } as i32;
        }
        if cause.downcast_ref::<LayerError>().is_some() {
            return Exit::Usage as i32;
        }
        if let Some(e) = cause.downcast_ref::<reqwest::Error>()
            && (e.is_connect() || e.is_timeout())
        {
            return Exit::Unreachable as i32;
        }
    }
    Exit::Generic as i32
}

/// The exit status for a key that could not be read from the environment.
fn wallet_exit(e: &WalletError) -> Exit {
    match e {
        WalletError::Missing | WalletError::KeyEnvUnset(_) | WalletError::KeyEnvNotAName => {
            Exit::Usage
        }
        _ => Exit::Generic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_through_context() {
        let e = fail(Exit::NotFound, "no such offer").context("renting");
        assert_eq!(exit_code(&e), 3);
        assert_eq!(exit_code(&anyhow::anyhow!("plain")), 1);
        let e = anyhow::Error::new(EscrowError::NotFound {
            action: "reading the rental",
            reason: "rental 42 does not exist on this escrow".into(),
        });
        assert_eq!(exit_code(&e), 3);
        let e = anyhow::Error::new(UnlockError::WrongPassword {
            wallet: "wallet 0x0 (keystore k.json, from flag --keystore)".into(),
            var: "GPUFLOW_PASSWORD".into(),
        });
        assert_eq!(exit_code(&e.context("opening the wallet")), 2);
    }

    #[test]
    fn json_errors_carry_the_code_message_and_details() {
        let e = fail_with(Exit::Unreachable, "not ready", serde_json::json!({"rental_id": 7}));
        let doc = error_json(&e);
        assert_eq!(doc["error"]["code"], 5);
        assert_eq!(doc["error"]["message"], "not ready");
        assert_eq!(doc["rental_id"], 7);
        assert_eq!(error_json(&anyhow::anyhow!("plain"))["error"]["code"], 1);
    }
}
