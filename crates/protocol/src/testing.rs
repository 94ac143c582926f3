//! Fixtures for tests of crates that handle offers (feature `test-utils`).

use alloy::{
    primitives::Address,
    signers::{SignerSync, local::PrivateKeySigner},
};

use crate::{GpuInfo, Identity, Offer, payout_binding_message};

/// A valid offer of one RTX 4090 with GPU `uuid`, signed over by `payout` for
/// `identity`, issued at `issued_at` and valid for `ttl` seconds. Tests change the fields
/// they care about.
pub fn offer(
    identity: &Identity,
    payout: &PrivateKeySigner,
    uuid: &str,
    issued_at: u64,
    ttl: u64,
) -> Offer {
    let payout_proof = payout
        .sign_message_sync(payout_binding_message(&identity.peer_id()).as_bytes())
        .expect("signing with a local key succeeds");
    Offer {
        seq: 1,
        issued_at,
        expires_at: issued_at + ttl,
        chain_id: 31337,
        escrow: Address::repeat_byte(1),
        payout: payout.address(),
        payout_proof,
        price_per_second: 100,
        gpus: vec![GpuInfo {
            name: "NVIDIA GeForce RTX 4090".into(),
            uuid: uuid.into(),
            memory_bytes: 25_757_220_864,
            pci_bus_id: "00000000:01:00.0".into(),
            compute_capability: "8.9".into(),
            driver_version: "550.54.14".into(),
            cuda_version: "12.4".into(),
        }],
        verified: false,
        region: "test".into(),
        listen_addrs: Vec::new(),
        inet_down_mbps: None,
        inet_up_mbps: None,
        disk_bytes: None,
    }
}
