use std::path::Path;

use alloy::signers::local::PrivateKeySigner;

/// Environment variable holding the keystore password.
pub const PASSWORD_ENV: &str = "GPUFLOW_PASSWORD";

/// Why no signing key could be loaded. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Neither a keystore nor a key variable was given.
    #[error("no wallet given: pass --keystore PATH (password in {PASSWORD_ENV}) or --key-env VAR")]
    Missing,
    /// The named environment variable is not set.
    #[error("environment variable {0} is not set; export it with the private key (0x...)")]
    KeyEnvUnset(String),
    /// The named environment variable does not hold a private key.
    #[error("environment variable {0} does not hold a 32-byte hex private key")]
    KeyEnvInvalid(String),
    /// The keystore password is not in the environment.
    #[error("keystore {0} needs its password: set {PASSWORD_ENV}")]
    PasswordUnset(String),
    /// The keystore could not be read or decrypted.
    #[error("could not open keystore {path}: {reason}")]
    Keystore {
        /// The keystore file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Loads the signing key from an encrypted (geth-compatible) keystore, whose password is
/// in [`PASSWORD_ENV`], or from the environment variable the user named.
pub fn load_signer(
    keystore: Option<&Path>,
    key_env: Option<&str>,
) -> Result<PrivateKeySigner, WalletError> {
    if let Some(var) = key_env {
        let key = std::env::var(var).map_err(|_| WalletError::KeyEnvUnset(var.to_owned()))?;
        return key.trim().parse().map_err(|_| WalletError::KeyEnvInvalid(var.to_owned()));
    }
    let path = keystore.ok_or(WalletError::Missing)?;
    let shown = path.display().to_string();
    let password =
        std::env::var(PASSWORD_ENV).map_err(|_| WalletError::PasswordUnset(shown.clone()))?;
    PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| WalletError::Keystore {
        path: shown,
        reason: match e.to_string() {
            r if r.contains("Mac Mismatch") || r.contains("MacMismatch") => {
                "wrong password (check GPUFLOW_PASSWORD)".to_owned()
            }
            r => r,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_wallet_names_the_fix() {
        let err = load_signer(None, None).unwrap_err();
        assert!(err.to_string().contains("--keystore"), "{err}");
    }

    #[test]
    fn unset_key_variable_is_named() {
        let err = load_signer(None, Some("GPUFLOW_TEST_SURELY_UNSET_KEY")).unwrap_err();
        assert!(
            matches!(err, WalletError::KeyEnvUnset(ref v) if v == "GPUFLOW_TEST_SURELY_UNSET_KEY")
        );
    }
}
