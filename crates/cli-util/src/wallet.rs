//! The one way a binary gets a signing key: a raw key from the environment variable the
//! user named, or a keystore unlocked with the password from the binary's password
//! variable or, on a terminal, the one prompt. Errors name the wallet, its keystore,
//! what chose it and what to fix; never a secret.

use std::{io::IsTerminal, path::Path};

use alloy::signers::local::PrivateKeySigner;
use gpuflow_escrow::WalletError;

use crate::{layers::Setting, opts::KeyChoice};

/// Why a keystore could not be unlocked.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// No password in the environment and no terminal to ask on.
    #[error("a keystore password is needed: set {var} or run in a terminal")]
    NoPassword {
        /// The variable that gives the password.
        var: String,
    },
    /// The terminal could not be read.
    #[error("cannot read the password from the terminal: {0}; set the password variable")]
    Prompt(#[source] std::io::Error),
    /// The password was asked twice and the answers differ.
    #[error("the passwords differ; nothing was written")]
    PasswordsDiffer,
    /// The keystore file is not there.
    #[error("keystore {keystore} does not exist (from {from})")]
    NotFound {
        /// The path, as shown.
        keystore: String,
        /// What chose it.
        from: String,
    },
    /// The password does not decrypt the keystore.
    #[error("could not open {wallet}: wrong password (check {var})")]
    WrongPassword {
        /// The wallet, its keystore and what chose it.
        wallet: String,
        /// Where the password came from.
        var: String,
    },
    /// The keystore is unreadable or malformed.
    #[error("could not open {wallet}: {reason}")]
    Unreadable {
        /// The wallet, its keystore and what chose it.
        wallet: String,
        /// Why.
        reason: String,
    },
    /// The raw key named by `--key-env` is unusable.
    #[error(transparent)]
    Key(#[from] WalletError),
}

/// Asks for a secret (a keystore password) on the terminal, `/dev/tty`, with echo off, so
/// that neither the screen nor a redirected stdin or stdout ever sees it. Fails when the
/// process has no terminal; callers name the variable that can give the secret instead.
pub fn prompt_secret(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}

/// The password in `var`, else typed at the terminal without echo (twice when `confirm`).
pub fn password(var: &str, prompt: &str, confirm: bool) -> Result<String, UnlockError> {
    if let Ok(password) = std::env::var(var) {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(UnlockError::NoPassword { var: var.to_owned() });
    }
    let first = prompt_secret(prompt).map_err(UnlockError::Prompt)?;
    if confirm && prompt_secret("repeat the password: ").map_err(UnlockError::Prompt)? != first {
        return Err(UnlockError::PasswordsDiffer);
    }
    Ok(first)
}

/// Opens the keystore at `path` with the password from `password_var` (or asked). `role`
/// names the key in messages and the log (`wallet`, `payout wallet`, `attester key`);
/// `from` says what chose the keystore (`flag --keystore`, `environment ...`).
pub fn unlock(
    path: &Path,
    role: &str,
    password_var: &str,
    from: &str,
) -> Result<PrivateKeySigner, UnlockError> {
    let shown = gpuflow_escrow::shown_path(path);
    if !path.exists() {
        return Err(UnlockError::NotFound { keystore: shown, from: from.to_owned() });
    }
    let password = password(password_var, &format!("password for {shown}: "), false)?;
    open(path, role, from, &password, password_var)
}

/// Decrypts the keystore at `path` with `password`, which came from `password_var`.
fn open(
    path: &Path,
    role: &str,
    from: &str,
    password: &str,
    password_var: &str,
) -> Result<PrivateKeySigner, UnlockError> {
    let shown = gpuflow_escrow::shown_path(path);
    let wallet = match gpuflow_escrow::keystore_address(path) {
        Some(address) => format!("{role} {address} (keystore {shown}, from {from})"),
        None => format!("{role} in keystore {shown} (from {from})"),
    };
    let signer = PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| {
        if gpuflow_escrow::is_wrong_password(&e) {
            UnlockError::WrongPassword { wallet: wallet.clone(), var: password_var.to_owned() }
        } else {
            // Errors of the file system name the path.
            let reason = e.to_string().replace(&path.display().to_string(), &shown);
            UnlockError::Unreadable { wallet: wallet.clone(), reason }
        }
    })?;
    tracing::info!(address = %signer.address(), keystore = %shown, %from, "{role} opened");
    Ok(signer)
}

/// The key `choice` names: the raw key in its variable, or its keystore unlocked.
pub fn signer(
    choice: &Setting<KeyChoice>,
    role: &str,
    password_var: &str,
) -> Result<PrivateKeySigner, UnlockError> {
    match &choice.value {
        KeyChoice::KeyEnv(var) => {
            let signer = gpuflow_escrow::key_from_env(var)?;
            let from = format!("--key-env {var}");
            tracing::info!(address = %signer.address(), %from, "{role} opened");
            Ok(signer)
        }
        KeyChoice::Keystore(path) => unlock(path, role, password_var, &choice.source.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    #[test]
    fn a_key_given_as_a_keystore_path_is_never_echoed() {
        let path = std::path::PathBuf::from(format!("/tmp/0x{KEY}"));
        let err = unlock(&path, "wallet", "GPUFLOW_TEST_SURELY_UNSET", "--keystore").unwrap_err();
        assert!(matches!(err, UnlockError::NotFound { .. }), "{err}");
        assert!(!err.to_string().contains(KEY), "{err}");
    }

    #[test]
    fn a_wrong_password_names_the_wallet_and_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKeySigner::random();
        let path = gpuflow_escrow::keystore::create_with(
            dir.path(),
            "a.json",
            &key,
            "right password",
            gpuflow_escrow::keystore::Kdf::Light,
        )
        .unwrap();
        // No variable holds a password and tests have no terminal: the variable is named.
        let var = "GPUFLOW_TEST_SURELY_UNSET";
        let err = unlock(&path, "wallet", var, "--keystore").unwrap_err();
        assert!(matches!(err, UnlockError::NoPassword { var: ref v } if v == var), "{err}");
        let err = open(&path, "payout wallet", "--keystore", "wrong", "PASSWORD_VAR").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, UnlockError::WrongPassword { .. }), "{message}");
        let address = key.address().to_string();
        for needle in
            ["payout wallet", &address, "--keystore", "wrong password (check PASSWORD_VAR)"]
        {
            assert!(message.contains(needle), "no `{needle}` in {message}");
        }
        let opened = open(&path, "wallet", "--keystore", "right password", var).unwrap();
        assert_eq!(opened.address(), key.address());
    }
}
