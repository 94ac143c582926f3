use ed25519_dalek::{Signer, SigningKey};
use libp2p_identity::PeerId;

/// A participant's ed25519 key: it signs envelopes and is its libp2p identity.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    peer_id: PeerId,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("peer_id", &self.peer_id).finish_non_exhaustive()
    }
}

impl Identity {
    /// Builds an identity from its 32-byte ed25519 secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let peer_id = peer_id_of(&signing.verifying_key());
        Self { signing, peer_id }
    }

    /// A fresh random identity.
    pub fn generate() -> Self {
        let keypair = libp2p_identity::ed25519::Keypair::generate();
        let secret: [u8; 32] =
            keypair.secret().as_ref().try_into().expect("ed25519 secrets are 32 bytes");
        Self::from_secret(secret)
    }

    /// Loads the identity stored at `path`, creating it (mode 0600) when absent.
    pub fn load_or_create(path: &std::path::Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::other(format!(
                        "{} is not a gpuflow identity (expected 32 bytes); move it away to create a new one",
                        path.display()
                    ))
                })?;
                Ok(Self::from_secret(secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(path, &identity.signing.to_bytes())?;
                Ok(identity)
            }
            Err(e) => Err(e),
        }
    }

    /// The libp2p peer id derived from the public key.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The raw ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The same key as a libp2p keypair, for the swarm.
    pub fn libp2p_keypair(&self) -> libp2p_identity::Keypair {
        libp2p_identity::Keypair::ed25519_from_bytes(self.signing.to_bytes())
            .expect("32-byte secrets are valid ed25519 keys")
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// The peer id belonging to an ed25519 public key: libp2p's identity multihash (code 0,
/// 36 bytes) of the key's protobuf encoding (key type 1 = Ed25519, then the 32 bytes).
/// Built from the bytes of a key already decoded, so the point is not decompressed again.
pub(crate) fn peer_id_of(key: &ed25519_dalek::VerifyingKey) -> PeerId {
    peer_id_of_bytes(key.as_bytes())
}

/// The peer id that `public_key` names if it is an ed25519 key, which is not checked.
pub(crate) fn peer_id_of_bytes(public_key: &[u8; 32]) -> PeerId {
    const PREFIX: [u8; 6] = [0x00, 36, 0x08, 0x01, 0x12, 0x20];
    let mut bytes = [0u8; 38];
    bytes[..6].copy_from_slice(&PREFIX);
    bytes[6..].copy_from_slice(public_key);
    PeerId::from_bytes(&bytes).expect("an identity multihash of 36 bytes is a peer id")
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libp2p_keypair_has_the_same_peer_id() {
        let identity = Identity::generate();
        assert_eq!(identity.libp2p_keypair().public().to_peer_id(), identity.peer_id());
    }

    #[test]
    fn peer_ids_are_libp2p_s() {
        for i in 0..64u8 {
            let identity = Identity::from_secret([i; 32]);
            let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(&identity.public_key())
                .unwrap();
            assert_eq!(identity.peer_id(), libp2p_identity::PublicKey::from(key).to_peer_id());
        }
    }

    #[test]
    fn load_or_create_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let first = Identity::load_or_create(&path).unwrap();
        let second = Identity::load_or_create(&path).unwrap();
        assert_eq!(first.peer_id(), second.peer_id());
        std::fs::write(&path, b"short").unwrap();
        assert!(Identity::load_or_create(&path).is_err());
    }
}
