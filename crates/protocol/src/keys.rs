//! The decompressed keys of recent signers. Decompressing an ed25519 key (a square root
//! in the field) costs about as much as a fifth of checking a signature in a batch, and a
//! node checks the same providers' keys again with every heartbeat: the key and its peer
//! id are kept, by the key's bytes, for the next message.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use ed25519_dalek::VerifyingKey;
use libp2p_identity::PeerId;

use crate::identity::peer_id_of;

/// Shards of the cache, so that the cores checking a chunk together rarely wait for each
/// other.
const SHARDS: usize = 16;
/// Keys each shard keeps; a full shard is emptied. The whole cache holds 131,072 keys, about
/// 40 MB.
const PER_SHARD: usize = 8192;

/// Signers by the bytes of their key; empty until the first message.
type Shard = Mutex<Option<HashMap<[u8; 32], (VerifyingKey, PeerId)>>>;

static CACHE: [Shard; SHARDS] = [const { Mutex::new(None) }; SHARDS];

/// The key `bytes` name, decompressed, and its peer id; `None` if they are no point of the
/// curve. Keys that do not decompress are not kept.
pub(crate) fn signer(bytes: &[u8; 32]) -> Option<(VerifyingKey, PeerId)> {
    // The bytes of a public key are uniform enough to pick a shard by.
    let shard = &CACHE[usize::from(bytes[31] ^ bytes[0]) % SHARDS];
    if let Some(found) = shard
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|keys| keys.get(bytes))
    {
        return Some(*found);
    }
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    let found = (key, peer_id_of(&key));
    let mut keys = shard.lock().unwrap_or_else(PoisonError::into_inner);
    let keys = keys.get_or_insert_with(HashMap::new);
    if keys.len() >= PER_SHARD {
        keys.clear();
    }
    keys.insert(*bytes, found);
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_key_is_the_key_and_peer_id_a_fresh_decompression_gives() {
        for i in 0..64u8 {
            let key = ed25519_dalek::SigningKey::from_bytes(&[i; 32]).verifying_key();
            for _ in 0..2 {
                let (found, peer) = signer(key.as_bytes()).unwrap();
                assert_eq!(found, key);
                assert_eq!(peer, peer_id_of(&key));
            }
        }
        // Not a point of the curve, neither the first time nor the second.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        while VerifyingKey::from_bytes(&not_a_point).is_ok() {
            not_a_point[0] += 1;
        }
        assert!(signer(&not_a_point).is_none());
        assert!(signer(&not_a_point).is_none());
    }
}
