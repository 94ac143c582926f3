//! Encrypted keystores in `$XDG_CONFIG_HOME/gpuflow/keystores/NAME.json`.
//!
//! The files are geth's format (scrypt + AES-128-CTR, with the `address` field geth
//! writes), so they open in other Ethereum tools too. Passwords come from
//! `GPUFLOW_PASSWORD` or a prompt without echo; nothing secret is ever printed.

use std::path::{Path, PathBuf};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use gpuflow_escrow::PASSWORD_ENV;

use crate::error::{Exit, fail};

/// A keystore on disk.
#[derive(Clone, Debug)]
pub(crate) struct Keystore {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    /// From the file's `address` field, if it has one (not every tool writes it).
    pub(crate) address: Option<Address>,
}

/// `$XDG_CONFIG_HOME/gpuflow/keystores`.
pub(crate) fn dir() -> anyhow::Result<PathBuf> {
    Ok(crate::config::dir()?.join("keystores"))
}

/// Every keystore, by name.
pub(crate) fn list() -> anyhow::Result<Vec<Keystore>> {
    let dir = dir()?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", dir.display()),
    };
    let mut found: Vec<Keystore> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let name = path.file_name()?.to_str()?.strip_suffix(".json")?.to_owned();
            Some(Keystore { address: read_address(&path), name, path })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The keystore called `name`, or the first one when `name` is `None`.
pub(crate) fn find(name: Option<&str>) -> anyhow::Result<Keystore> {
    let all = list()?;
    let found = match name {
        Some(name) => all.iter().find(|k| k.name == name),
        None => all.first(),
    };
    found.cloned().ok_or_else(|| match name {
        Some(name) => fail(
            Exit::NotFound,
            format!(
                "no wallet named `{}` in {}; see `gpuflow wallet list`",
                gpuflow_escrow::shown(name),
                dir().map(|d| d.display().to_string()).unwrap_or_default()
            ),
        ),
        None => fail(
            Exit::Usage,
            "no wallet yet: run `gpuflow wallet new` or `gpuflow wallet import --key-env VAR`, \
             or pass --keystore PATH or --key-env VAR",
        ),
    })
}

fn read_address(path: &Path) -> Option<Address> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("address")?.as_str()?.parse().ok()
}

/// Writes `signer` as keystore `name`, encrypted with `password`.
pub(crate) fn store(
    name: &str,
    signer: &PrivateKeySigner,
    password: &str,
) -> anyhow::Result<Keystore> {
    store_in(&dir()?, name, signer, password)
}

/// [`store`] into `dir`: mode 0600 in a 0700 directory, with geth's `address` field so
/// wallets can be listed locked.
fn store_in(
    dir: &Path,
    name: &str,
    signer: &PrivateKeySigner,
    password: &str,
) -> anyhow::Result<Keystore> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(fail(Exit::Usage, "a wallet name uses only letters, digits, `-` and `_`"));
    }
    if gpuflow_escrow::looks_like_key(name) {
        return Err(fail(
            Exit::Usage,
            "that wallet name looks like a private key, so it was not used or printed; name \
             the wallet with a word (--name work)",
        ));
    }
    let file = format!("{name}.json");
    let existing = dir.join(&file);
    if existing.exists() {
        return Err(fail(
            Exit::Usage,
            format!("wallet `{name}` already exists at {}", existing.display()),
        ));
    }
    let path = gpuflow_escrow::keystore::create(dir, &file, signer, password)?;
    Ok(Keystore { name: name.to_owned(), path, address: Some(signer.address()) })
}

/// Opens a keystore with the password from `GPUFLOW_PASSWORD` or the prompt. `from` says
/// what chose it (`flag --keystore`, `environment GPUFLOW_KEYSTORE`, ...): errors and the
/// log name the wallet's address (when the file records it), its path and that.
pub(crate) fn unlock(path: &Path, from: &str) -> anyhow::Result<PrivateKeySigner> {
    Ok(gpuflow_cli_util::wallet::unlock(path, "wallet", PASSWORD_ENV, from)?)
}

/// The password from `GPUFLOW_PASSWORD`, else typed at the terminal without echo (twice
/// when `confirm`).
pub(crate) fn password(prompt: &str, confirm: bool) -> anyhow::Result<String> {
    Ok(gpuflow_cli_util::wallet::password(PASSWORD_ENV, prompt, confirm)?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn a_new_wallet_is_readable_by_its_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("keystores");
        let signer = PrivateKeySigner::random();
        let stored = super::store_in(&dir, "main", &signer, "correct horse").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&stored.path), mode(&dir)), (0o600, 0o700));
        assert_eq!(super::read_address(&stored.path), Some(signer.address()));
        let again =
            super::store_in(&dir, "main", &signer, "correct horse").unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
    }

    #[test]
    fn geth_address_field_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, r#"{"address":"f39fd6e51aad88f6f4ce6ab8827279cfffb92266"}"#).unwrap();
        assert!(super::read_address(&path).is_some());
    }
}
