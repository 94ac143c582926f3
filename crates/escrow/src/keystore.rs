//! Writing encrypted keystores that only their owner can read.
//!
//! The file is geth's format (scrypt + AES-128-CTR, with geth's `address` field so a
//! wallet can be listed while locked) and opens in other Ethereum tools too. It is
//! created `0600` inside a directory kept `0700`, and never exists under its final name
//! with other permissions: the encrypted key is staged in a private directory and renamed
//! into place, so a crash leaves either the old keystore or the new one.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use alloy::signers::local::PrivateKeySigner;

/// Mode of a keystore file: read and write for its owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directory holding keystores.
pub const DIR_MODE: u32 = 0o700;

/// Why a keystore could not be written. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The name would leave the directory or hide the file.
    #[error("keystore name `{0}` must be a plain file name (no `/`, not starting with `.`)")]
    BadName(String),
    /// The file system refused.
    #[error("writing the keystore {path}: {source}")]
    Io {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Encrypting the key failed.
    #[error("encrypting the keystore: {0}")]
    Encrypt(String),
}

/// Writes `signer`'s key to `dir/name`, encrypted with `password`, mode `0600`; `dir` is
/// created `0700` (and tightened to `0700` when it exists, since it holds keys). An
/// existing `dir/name` is replaced atomically: callers decide whether that is allowed.
pub fn create(
    dir: &Path,
    name: &str,
    signer: &PrivateKeySigner,
    password: &str,
) -> Result<PathBuf, KeystoreError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(KeystoreError::BadName(name.to_owned()));
    }
    private_dir(dir)?;
    let staging = Staging::new(dir)?;
    // eth-keystore writes with the default umask; inside the private staging directory
    // nobody else can open the file before its mode is narrowed.
    PrivateKeySigner::encrypt_keystore(
        &staging.0,
        &mut rand::thread_rng(),
        signer.to_bytes(),
        password,
        Some(name),
    )
    .map_err(|e| KeystoreError::Encrypt(e.to_string()))?;
    let staged = staging.0.join(name);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeystoreError::Io { path, source }
    };
    fs::set_permissions(&staged, fs::Permissions::from_mode(FILE_MODE)).map_err(io(&staged))?;
    let text = fs::read_to_string(&staged).map_err(io(&staged))?;
    let mut json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| KeystoreError::Encrypt(e.to_string()))?;
    json["address"] = format!("{:x}", signer.address()).trim_start_matches("0x").into();
    fs::write(&staged, json.to_string()).map_err(io(&staged))?;
    let path = dir.join(name);
    fs::rename(&staged, &path).map_err(io(&path))?;
    Ok(path)
}

/// Creates `dir` (parents with the default mode, `dir` itself `0700`) or tightens it.
fn private_dir(dir: &Path) -> Result<(), KeystoreError> {
    let io = |source| KeystoreError::Io { path: dir.to_owned(), source };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io)?;
    }
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            let mode = fs::metadata(dir).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(io)?;
            }
            Ok(())
        }
        Err(e) => Err(io(e)),
    }
}

/// A `0700` directory beside the keystore for writing it, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new(dir: &Path) -> Result<Self, KeystoreError> {
        let path = dir.join(format!(".staging-{:016x}", rand::random::<u64>()));
        fs::DirBuilder::new()
            .mode(DIR_MODE)
            .create(&path)
            .map_err(|source| KeystoreError::Io { path: path.clone(), source })?;
        Ok(Self(path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn only_the_owner_can_read_the_keystore() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("config").join("keystores");
        let signer = PrivateKeySigner::random();
        let path = create(&dir, "main.json", &signer, "correct horse").unwrap();
        assert_eq!(path, dir.join("main.json"));
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(mode(&dir), DIR_MODE);
        let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec!["main.json"], "no staging file is left behind");

        let opened = PrivateKeySigner::decrypt_keystore(&path, "correct horse").unwrap();
        assert_eq!(opened.address(), signer.address());
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let address = format!("{:x}", signer.address());
        assert_eq!(json["address"], address.trim_start_matches("0x"), "geth's address field");
    }

    #[test]
    fn an_open_directory_is_tightened_and_a_keystore_replaced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("keystores");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let first = create(&dir, "k.json", &PrivateKeySigner::random(), "pw").unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        fs::set_permissions(&first, fs::Permissions::from_mode(0o644)).unwrap();
        let second = PrivateKeySigner::random();
        let path = create(&dir, "k.json", &second, "pw").unwrap();
        assert_eq!(mode(&path), FILE_MODE, "the replacement is private again");
        assert_eq!(
            PrivateKeySigner::decrypt_keystore(&path, "pw").unwrap().address(),
            second.address()
        );
    }

    #[test]
    fn names_stay_inside_the_directory() {
        let root = tempfile::tempdir().unwrap();
        for name in ["", "../k.json", ".hidden"] {
            let err = create(root.path(), name, &PrivateKeySigner::random(), "pw").unwrap_err();
            assert!(matches!(err, KeystoreError::BadName(_)), "{name}: {err}");
        }
    }
}
