//! Signed offers for tests.

use alloy::{
    primitives::Address,
    signers::{SignerSync, local::PrivateKeySigner},
};
use gpuflow_protocol::{
    GpuInfo, Identity, Offer, SignedEnvelope, Verified, payout_binding_message, unix_now,
};

/// A provider with its peer identity and payout key.
pub(crate) struct Provider {
    pub(crate) identity: Identity,
    pub(crate) payout: PrivateKeySigner,
}

impl Provider {
    pub(crate) fn new() -> Self {
        Self { identity: Identity::generate(), payout: PrivateKeySigner::random() }
    }

    /// A signed and verified offer for one RTX 4090 at 100 units per second, live for the
    /// next ten minutes, after `edit`.
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
                uuid: "GPU-00000000-0000-0000-0000-000000000001".into(),
                memory_bytes: 25_757_220_864,
                pci_bus_id: "00000000:01:00.0".into(),
                compute_capability: "8.9".into(),
                driver_version: "550.54.14".into(),
                cuda_version: "12.4".into(),
            }],
            verified: false,
            region: "eu-west".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        };
        edit(&mut offer);
        SignedEnvelope::seal(&self.identity, &offer).open().expect("test offers are valid")
    }
}
