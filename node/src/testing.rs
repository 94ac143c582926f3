//! Signed offers and heartbeats, and throwaway stores, for unit tests.

use alloy::{
    primitives::Address,
    signers::{SignerSync, local::PrivateKeySigner},
};
use gpuflow_protocol::{
    GpuHealth, GpuInfo, Heartbeat, Identity, Offer, OfferId, SignedEnvelope, Verified,
    payout_binding_message, unix_now,
};

use crate::Store;

/// A store in a fresh temporary directory, deleted with the returned guard.
pub(crate) fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("index.sqlite")).expect("the store opens");
    (store, dir)
}

/// A provider with its peer identity and payout key.
pub(crate) struct Provider {
    pub(crate) identity: Identity,
    pub(crate) payout: PrivateKeySigner,
}

impl Provider {
    pub(crate) fn new() -> Self {
        Self { identity: Identity::generate(), payout: PrivateKeySigner::random() }
    }

    /// The id nodes give this provider's offer.
    pub(crate) fn id(&self) -> OfferId {
        OfferId::of(&self.identity.peer_id())
    }

    /// A signed and verified offer for one RTX 4090 (with a UUID of this provider's own) at
    /// 100 units per second, live for the next ten minutes, after `edit`.
    pub(crate) fn offer(&self, edit: impl FnOnce(&mut Offer)) -> Verified<Offer> {
        let proof = self
            .payout
            .sign_message_sync(payout_binding_message(&self.identity.peer_id()).as_bytes())
            .expect("signing with a local key succeeds");
        let issued_at = unix_now() - 10;
        let mut offer = Offer {
            seq: 1,
            issued_at,
            expires_at: issued_at + 600,
            chain_id: 31337,
            escrow: Address::repeat_byte(0xee),
            payout: self.payout.address(),
            payout_proof: proof,
            price_per_second: 100,
            gpus: vec![GpuInfo {
                name: "NVIDIA GeForce RTX 4090".into(),
                uuid: format!("GPU-{}", self.id()),
                memory_bytes: 25_757_220_864,
                pci_bus_id: "00000000:01:00.0".into(),
                compute_capability: "8.9".into(),
                driver_version: "550.54.14".into(),
                cuda_version: "12.4".into(),
            }],
            verified: false,
            region: "eu-west".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            inet_down_mbps: None,
            inet_up_mbps: None,
            disk_bytes: None,
        };
        edit(&mut offer);
        SignedEnvelope::seal(&self.identity, &offer).open().expect("test offers are valid")
    }

    /// A signed and verified heartbeat with sequence number `seq`.
    pub(crate) fn heartbeat(&self, seq: u64) -> Verified<Heartbeat> {
        let heartbeat = Heartbeat {
            seq,
            issued_at: unix_now(),
            gpus: vec![GpuHealth {
                uuid: format!("GPU-{}", self.id()),
                temperature_c: 64,
                utilization_pct: 87,
                memory_used_bytes: 12_000_000_000,
                ecc_errors: Some(0),
            }],
            active_rentals: 1,
        };
        SignedEnvelope::seal(&self.identity, &heartbeat).open().expect("test heartbeats are valid")
    }
}

/// `count` GPUs like the first of `offer`, each with a UUID of its own.
pub(crate) fn gpus(offer: &Offer, count: usize) -> Vec<GpuInfo> {
    (0..count)
        .map(|i| GpuInfo { uuid: format!("{}-{i}", offer.gpus[0].uuid), ..offer.gpus[0].clone() })
        .collect()
}
