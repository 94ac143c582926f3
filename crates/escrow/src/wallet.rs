use std::path::Path;

use alloy::{
    primitives::Address,
    signers::local::{LocalSignerError, PrivateKeySigner},
};

/// Environment variable holding the keystore password.
pub const PASSWORD_ENV: &str = "GPUFLOW_PASSWORD";

/// Shown in place of a value typed where a name or path belongs that looks like a secret.
pub const NOT_PRINTED: &str = "(a value that looks like a secret; not printed)";

/// Whether `value` holds something shaped like a private key: a run of 64 or more hex
/// digits (with or without `0x`).
pub fn looks_like_key(value: &str) -> bool {
    let mut run = 0;
    for c in value.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 64 {
            return true;
        }
    }
    false
}

/// Whether `var` is a usable environment variable name (`[A-Za-z_][A-Za-z0-9_]*`) and
/// does not look like a key: what `--key-env` must be given. Anything else is treated as
/// a secret typed in the wrong place and never printed.
pub fn is_key_env_name(var: &str) -> bool {
    let mut chars = var.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !looks_like_key(var)
}

/// `value`, or [`NOT_PRINTED`] when it looks like a key: for echoing what a user typed
/// as a wallet name or keystore path.
pub fn shown(value: &str) -> &str {
    if looks_like_key(value) { NOT_PRINTED } else { value }
}

/// A keystore path for messages, or [`NOT_PRINTED`] when it looks like a key.
pub fn shown_path(path: &Path) -> String {
    shown(&path.display().to_string()).to_owned()
}

/// Why no signing key could be loaded. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Neither a keystore nor a key variable was given.
    #[error("no wallet given: pass --keystore PATH (password in {PASSWORD_ENV}) or --key-env VAR")]
    Missing,
    /// `--key-env` was given something that is not a variable name, most likely the key.
    #[error(
        "the value given to --key-env looks like a secret (a private key?), not a variable \
         name, so it was not printed: --key-env takes the NAME of an environment variable \
         holding the key (`read -rs KEY && export KEY`, then `--key-env KEY`). A key typed on \
         a command line may be in your shell history"
    )]
    KeyEnvNotAName,
    /// The named environment variable is not set.
    #[error("environment variable {0} is not set; export it with the private key (0x...)")]
    KeyEnvUnset(String),
    /// The named environment variable does not hold a private key.
    #[error("environment variable {0} does not hold a 32-byte hex private key")]
    KeyEnvInvalid(String),
}

/// The raw private key in the environment variable `var`, which the user named with
/// `--key-env`; a value that is not a variable name is taken for a key typed in the wrong
/// place and never printed.
pub fn key_from_env(var: &str) -> Result<PrivateKeySigner, WalletError> {
    if !is_key_env_name(var) {
        return Err(WalletError::KeyEnvNotAName);
    }
    let key = std::env::var(var).map_err(|_| WalletError::KeyEnvUnset(var.to_owned()))?;
    key.trim().parse().map_err(|_| WalletError::KeyEnvInvalid(var.to_owned()))
}

/// Whether decrypting a keystore failed because the password is wrong (the MAC over the
/// ciphertext does not match), rather than because the file is missing or malformed.
pub fn is_wrong_password(error: &LocalSignerError) -> bool {
    matches!(error, LocalSignerError::EthKeystoreError(eth_keystore::KeystoreError::MacMismatch))
}

/// The address a keystore records in geth's `address` field, read without its password;
/// `None` when the file has none (not every tool writes it) or cannot be read.
pub fn keystore_address(path: &Path) -> Option<Address> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("address")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_wallet_names_the_fix() {
        let err = WalletError::Missing;
        assert!(err.to_string().contains("--keystore"), "{err}");
    }

    #[test]
    fn a_key_given_as_the_variable_name_is_never_echoed() {
        let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        for given in [key.to_owned(), format!("0x{key}"), "my key".into(), "1ABC".into(), "".into()]
        {
            let err = key_from_env(&given).unwrap_err();
            assert!(matches!(err, WalletError::KeyEnvNotAName), "{given}: {err}");
            let message = err.to_string();
            assert!(!message.contains(key) && message.contains("NAME of an environment variable"));
        }
        assert!(is_key_env_name("PROVIDER_KEY") && is_key_env_name("_k1"));
    }

    #[test]
    fn unset_key_variable_is_named() {
        let err = key_from_env("GPUFLOW_TEST_SURELY_UNSET_KEY").unwrap_err();
        assert!(
            matches!(err, WalletError::KeyEnvUnset(ref v) if v == "GPUFLOW_TEST_SURELY_UNSET_KEY")
        );
    }
}
