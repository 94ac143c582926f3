//! Signed offers and heartbeats, and throwaway stores, for unit tests.

use alloy::primitives::{Address, B256, U256};
use gpuflow_protocol::{
    GpuHealth, GpuInfo, Heartbeat, Offer, QuoteTerms, Verified, testing::TestProvider, unix_now,
};

use crate::{
    Store,
    store::{ChainUpdate, LoggedEvent, RentalEvent},
};

/// A store in a fresh temporary directory, deleted with the returned guard.
pub(crate) fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("index.sqlite")).expect("the store opens");
    (store, dir)
}

/// A provider with its peer identity and payout key, whose offers carry what the node's
/// unit tests expect (an escrow, a region, a listen address).
#[derive(Default)]
pub(crate) struct Provider(TestProvider);

impl std::ops::Deref for Provider {
    type Target = TestProvider;

    fn deref(&self) -> &TestProvider {
        &self.0
    }
}

impl Provider {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A provider paid at `payout`.
    pub(crate) fn with_payout(payout: alloy::signers::local::PrivateKeySigner) -> Self {
        Self(TestProvider::with_payout(payout))
    }

    /// A signed and verified offer for one RTX 4090 (with a UUID of this provider's own) at
    /// 100 units per second, live for the next ten minutes, after `edit`.
    pub(crate) fn offer(&self, edit: impl FnOnce(&mut Offer)) -> Verified<Offer> {
        let envelope = self.0.offer_at(unix_now() - 10, 600, |offer| {
            offer.escrow = Address::repeat_byte(0xee);
            offer.region = "eu-west".into();
            offer.listen_addrs = vec!["/ip4/127.0.0.1/tcp/4001".into()];
            edit(offer);
        });
        envelope.open().expect("test offers are valid")
    }

    /// A signed and verified heartbeat with sequence number `seq`.
    pub(crate) fn heartbeat(&self, seq: u64) -> Verified<Heartbeat> {
        let health = GpuHealth {
            uuid: String::new(),
            temperature_c: 64,
            utilization_pct: 87,
            memory_used_bytes: 12_000_000_000,
            ecc_errors: Some(0),
        };
        self.0.heartbeat(seq, health).open().expect("test heartbeats are valid")
    }
}

/// `count` GPUs like the first of `offer`, each with a UUID of its own.
pub(crate) fn gpus(offer: &Offer, count: usize) -> Vec<GpuInfo> {
    (0..count)
        .map(|i| GpuInfo { uuid: format!("{}-{i}", offer.gpus[0].uuid), ..offer.gpus[0].clone() })
        .collect()
}

/// Indexes rental `id` of one GPU on `provider`'s machine at `rate` units per second, from
/// `start` to `end`, as the chain watcher would from block `id`.
pub(crate) async fn index_rental(
    store: &Store,
    provider: &Provider,
    id: u64,
    rate: u64,
    (start, end): (u64, u64),
) {
    let opened = RentalEvent::Opened {
        renter: Address::repeat_byte(1),
        provider: provider.payout.address(),
        offer_id: QuoteTerms::machine(provider.id(), 1),
        rate_per_second: U256::from(rate),
        start,
        end,
        deposit: U256::from(rate * (end - start)),
    };
    store
        .apply_chain(ChainUpdate {
            escrow: format!("{:#x}", Address::repeat_byte(0xee)),
            rollback_above: None,
            blocks: vec![(id, format!("{:#x}", B256::repeat_byte(id as u8)))],
            events: vec![LoggedEvent { block: id, log_index: 0, rental_id: id, event: opened }],
            next_block: id + 1,
        })
        .await
        .expect("the rental is indexed");
}
