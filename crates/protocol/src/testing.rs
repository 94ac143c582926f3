//! Fixtures for tests of crates that handle offers (feature `test-utils`).

use alloy::{
    primitives::Address,
    signers::{SignerSync, local::PrivateKeySigner},
};

use crate::{
    GpuHealth, GpuInfo, Heartbeat, Identity, Offer, OfferId, SignedEnvelope,
    payout_binding_message, unix_now,
};

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
        cpu_cores: None,
        cpu_ram_bytes: None,
        images: Vec::new(),
        volume_grace_secs: 0,
        allowed_images: Vec::new(),
    }
}

/// A provider for tests: a peer identity and a payout key, signing offers and heartbeats
/// for one GPU of its own (`GPU-<offer id>`).
#[derive(Clone, Debug)]
pub struct TestProvider {
    /// The peer identity that signs the envelopes.
    pub identity: Identity,
    /// The payout key bound into offers.
    pub payout: PrivateKeySigner,
}

impl Default for TestProvider {
    fn default() -> Self {
        Self::with_payout(PrivateKeySigner::random())
    }
}

impl TestProvider {
    /// A provider with a fresh identity and payout key.
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider with a fresh identity, paid at `payout`.
    pub fn with_payout(payout: PrivateKeySigner) -> Self {
        Self { identity: Identity::generate(), payout }
    }

    /// The id nodes give this provider's offer.
    pub fn id(&self) -> OfferId {
        OfferId::of(&self.identity.peer_id())
    }

    /// The UUID of this provider's GPU.
    pub fn gpu_uuid(&self) -> String {
        format!("GPU-{}", self.id())
    }

    /// A signed offer ([`offer`]) of this provider's GPU, issued at `issued_at` and valid
    /// for `ttl` seconds, after `edit`.
    pub fn offer_at(
        &self,
        issued_at: u64,
        ttl: u64,
        edit: impl FnOnce(&mut Offer),
    ) -> SignedEnvelope {
        let mut offer = offer(&self.identity, &self.payout, &self.gpu_uuid(), issued_at, ttl);
        edit(&mut offer);
        SignedEnvelope::seal(&self.identity, &offer)
    }

    /// A signed offer issued now and valid for ten minutes, after `edit`.
    pub fn offer(&self, edit: impl FnOnce(&mut Offer)) -> SignedEnvelope {
        self.offer_at(unix_now(), 600, edit)
    }

    /// A signed heartbeat with sequence number `seq`, issued now, reporting this
    /// provider's GPU at `health` (its UUID is filled in) and one active rental.
    pub fn heartbeat(&self, seq: u64, health: GpuHealth) -> SignedEnvelope {
        let heartbeat = Heartbeat {
            seq,
            issued_at: unix_now(),
            gpus: vec![GpuHealth { uuid: self.gpu_uuid(), ..health }],
            active_rentals: 1,
            listen_addrs: Vec::new(),
            maintenance: None,
        };
        SignedEnvelope::seal(&self.identity, &heartbeat)
    }
}
