//! Signed offers and heartbeats, and throwaway stores, for unit tests.

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use gpuflow_protocol::{
    GpuHealth, GpuInfo, Heartbeat, Identity, Offer, OfferId, SignedEnvelope, Verified, unix_now,
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
        let uuid = format!("GPU-{}", self.id());
        let mut offer = Offer {
            escrow: Address::repeat_byte(0xee),
            region: "eu-west".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            ..gpuflow_protocol::testing::offer(
                &self.identity,
                &self.payout,
                &uuid,
                unix_now() - 10,
                600,
            )
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
            listen_addrs: Vec::new(),
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
