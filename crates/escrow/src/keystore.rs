//! Writing encrypted keystores that only their owner can read.
//!
//! The file is geth's format (scrypt + AES-128-CTR, with geth's `address` field so a
//! wallet can be listed while locked) and opens in other Ethereum tools too. New files use
//! geth's standard scrypt parameters (n = 2^18, r = 8, p = 1): about 256 MiB and a second
//! per unlock, which is what makes a stolen file expensive to guess. Files written with
//! other parameters (older gpuflow versions used n = 2^13) keep opening: the parameters
//! are read from each file.
//!
//! A keystore is created `0600` inside a directory kept `0700`, and never exists under its
//! final name with other permissions: it is written to a `0600` file beside it and renamed
//! into place, so a crash leaves either the old keystore or the new one.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use aes::cipher::{KeyIvInit, StreamCipher};
use alloy::{hex, primitives::keccak256, signers::local::PrivateKeySigner};
use rand::RngCore;

/// Mode of a keystore file: read and write for its owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directory holding keystores.
pub const DIR_MODE: u32 = 0o700;
/// Fewest characters a new keystore's password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Set to `1` to write new keystores with [`Kdf::Light`] instead of geth's standard
/// parameters. INSECURE, for tests only: a light keystore is cheap to brute-force. Read
/// only when a keystore is written; reading any keystore needs nothing.
pub const LIGHT_KDF_ENV: &str = "GPUFLOW_TEST_LIGHT_KDF";

/// How hard a new keystore's password is to guess: scrypt's cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// geth's standard parameters: n = 2^18, r = 8, p = 1, a 32-byte key.
    Standard,
    /// n = 2^12: fast and weak. For tests, and for devnets whose keys are public anyway.
    Light,
}

impl Kdf {
    /// [`Kdf::Light`] when [`LIGHT_KDF_ENV`] is set (to anything but empty or `0`), else
    /// [`Kdf::Standard`].
    pub fn from_env() -> Self {
        match std::env::var(LIGHT_KDF_ENV) {
            Ok(v) if !v.is_empty() && v != "0" => Self::Light,
            _ => Self::Standard,
        }
    }

    /// scrypt's `log2(n)`.
    fn log_n(self) -> u8 {
        match self {
            Self::Standard => 18,
            Self::Light => 12,
        }
    }
}

/// scrypt's block size and parallelism, the same for every [`Kdf`] (geth's).
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const DKLEN: usize = 32;

/// Why a keystore could not be written. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The name would leave the directory or hide the file.
    #[error("keystore name `{0}` must be a plain file name (no `/`, not starting with `.`)")]
    BadName(String),
    /// The password is empty or shorter than [`MIN_PASSWORD_CHARS`].
    #[error(
        "the password is too short: a keystore password needs at least {MIN_PASSWORD_CHARS} \
         characters; nothing was written"
    )]
    WeakPassword,
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

/// Refuses a password for a new keystore that is empty or shorter than
/// [`MIN_PASSWORD_CHARS`] characters.
pub fn check_password(password: &str) -> Result<(), KeystoreError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(KeystoreError::WeakPassword);
    }
    Ok(())
}

/// Writes `signer`'s key to `dir/name`, encrypted with `password` at the cost
/// [`Kdf::from_env`] picks (geth's standard unless a test asks otherwise), mode `0600`;
/// `dir` is created `0700` (and tightened to `0700` when it exists, since it holds keys).
/// An existing `dir/name` is replaced atomically: callers decide whether that is allowed.
pub fn create(
    dir: &Path,
    name: &str,
    signer: &PrivateKeySigner,
    password: &str,
) -> Result<PathBuf, KeystoreError> {
    let kdf = Kdf::from_env();
    if kdf == Kdf::Light {
        tracing::warn!(
            "{LIGHT_KDF_ENV} is set: writing {name} with weak scrypt parameters, for tests only"
        );
    }
    create_with(dir, name, signer, password, kdf)
}

/// [`create`] with the scrypt cost given.
pub fn create_with(
    dir: &Path,
    name: &str,
    signer: &PrivateKeySigner,
    password: &str,
    kdf: Kdf,
) -> Result<PathBuf, KeystoreError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(KeystoreError::BadName(name.to_owned()));
    }
    check_password(password)?;
    let json = encrypt(signer, password, kdf)?;
    private_dir(dir)?;
    let path = dir.join(name);
    let staged = Staged::write(dir, name, json.to_string().as_bytes())?;
    staged.rename(&path)?;
    Ok(path)
}

/// geth's keystore JSON (version 3) for `signer`'s key.
fn encrypt(
    signer: &PrivateKeySigner,
    password: &str,
    kdf: Kdf,
) -> Result<serde_json::Value, KeystoreError> {
    let mut rng = rand::thread_rng();
    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut iv);
    let params = scrypt::Params::new(kdf.log_n(), SCRYPT_R, SCRYPT_P)
        .map_err(|e| KeystoreError::Encrypt(e.to_string()))?;
    let mut derived = [0u8; DKLEN];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived)
        .map_err(|e| KeystoreError::Encrypt(e.to_string()))?;
    let mut ciphertext = signer.to_bytes().to_vec();
    ctr::Ctr128BE::<aes::Aes128>::new(derived[..16].into(), (&iv).into())
        .apply_keystream(&mut ciphertext);
    let mac = keccak256([&derived[16..32], &ciphertext[..]].concat());
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    // A random (version 4) UUID.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let id = hex::encode(id);
    let id = format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..]);
    Ok(serde_json::json!({
        "address": hex::encode(signer.address()),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": { "iv": hex::encode(iv) },
            "ciphertext": hex::encode(&ciphertext),
            "kdf": "scrypt",
            "kdfparams": {
                "dklen": DKLEN,
                "n": 1u32 << kdf.log_n(),
                "p": SCRYPT_P,
                "r": SCRYPT_R,
                "salt": hex::encode(salt),
            },
            "mac": hex::encode(mac),
        },
        "id": id,
        "version": 3,
    }))
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

/// A file written beside its final name, created `0600` (never readable by others, not
/// even for a moment), removed when dropped before [`Staged::rename`].
struct Staged(PathBuf);

impl Staged {
    fn write(dir: &Path, name: &str, contents: &[u8]) -> Result<Self, KeystoreError> {
        let staged = Self(dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>())));
        let io = |source| KeystoreError::Io { path: staged.0.clone(), source };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&staged.0)
            .map_err(io)?;
        file.write_all(contents).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(staged)
    }

    fn rename(mut self, path: &Path) -> Result<(), KeystoreError> {
        fs::rename(&self.0, path)
            .map_err(|source| KeystoreError::Io { path: path.to_owned(), source })?;
        self.0.clear();
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn kdfparams(path: &Path) -> serde_json::Value {
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        json["crypto"]["kdfparams"].clone()
    }

    #[test]
    fn only_the_owner_can_read_the_keystore() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("config").join("keystores");
        let signer = PrivateKeySigner::random();
        let path = create_with(&dir, "main.json", &signer, "correct horse", Kdf::Light).unwrap();
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
        assert_eq!(json["version"], 3);
        assert!(PrivateKeySigner::decrypt_keystore(&path, "wrong horse").is_err());
    }

    #[test]
    fn new_keystores_use_geths_standard_scrypt_parameters() {
        let root = tempfile::tempdir().unwrap();
        let signer = PrivateKeySigner::random();
        let path =
            create_with(root.path(), "k.json", &signer, "correct horse", Kdf::Standard).unwrap();
        let params = kdfparams(&path);
        assert_eq!(
            (&params["n"], &params["r"], &params["p"], &params["dklen"]),
            (&262144.into(), &8.into(), &1.into(), &32.into()),
            "{params}"
        );
        let opened = PrivateKeySigner::decrypt_keystore(&path, "correct horse").unwrap();
        assert_eq!(opened.address(), signer.address());
        assert_eq!(
            kdfparams(
                &create_with(root.path(), "l.json", &signer, "correct horse", Kdf::Light).unwrap()
            )["n"],
            4096
        );
    }

    #[test]
    fn an_older_keystore_with_n_8192_still_unlocks() {
        let root = tempfile::tempdir().unwrap();
        let signer = PrivateKeySigner::random();
        // What earlier versions wrote: eth-keystore's defaults.
        PrivateKeySigner::encrypt_keystore(
            root.path(),
            &mut rand::thread_rng(),
            signer.to_bytes(),
            "old password",
            Some("old.json"),
        )
        .unwrap();
        let path = root.path().join("old.json");
        assert_eq!(kdfparams(&path)["n"], 8192);
        let opened = PrivateKeySigner::decrypt_keystore(&path, "old password").unwrap();
        assert_eq!(opened.address(), signer.address());
    }

    #[test]
    fn empty_and_short_passwords_are_refused() {
        let root = tempfile::tempdir().unwrap();
        for password in ["", "a", "seven77", "ÄÖÜäöüß"] {
            let err = create_with(
                root.path(),
                "k.json",
                &PrivateKeySigner::random(),
                password,
                Kdf::Light,
            )
            .unwrap_err();
            assert!(matches!(err, KeystoreError::WeakPassword), "{password:?}: {err}");
            assert!(err.to_string().contains("at least 8 characters"), "{err}");
        }
        assert!(!root.path().join("k.json").exists());
        check_password("eight888").unwrap();
    }

    #[test]
    fn an_open_directory_is_tightened_and_a_keystore_replaced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("keystores");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let pw = "password";
        let first = create_with(&dir, "k.json", &PrivateKeySigner::random(), pw, Kdf::Light);
        let first = first.unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        fs::set_permissions(&first, fs::Permissions::from_mode(0o644)).unwrap();
        let second = PrivateKeySigner::random();
        let path = create_with(&dir, "k.json", &second, pw, Kdf::Light).unwrap();
        assert_eq!(mode(&path), FILE_MODE, "the replacement is private again");
        assert_eq!(
            PrivateKeySigner::decrypt_keystore(&path, pw).unwrap().address(),
            second.address()
        );
    }

    #[test]
    fn names_stay_inside_the_directory() {
        let root = tempfile::tempdir().unwrap();
        for name in ["", "../k.json", ".hidden"] {
            let err =
                create_with(root.path(), name, &PrivateKeySigner::random(), "password", Kdf::Light)
                    .unwrap_err();
            assert!(matches!(err, KeystoreError::BadName(_)), "{name}: {err}");
        }
    }
}
