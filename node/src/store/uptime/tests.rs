use alloy::primitives::{Address, B256, U256};
use gpuflow_protocol::unix_now;

use crate::{
    store::{ChainUpdate, LoggedEvent, RentalEvent},
    testing::{self, Provider},
};

#[tokio::test]
async fn probes_reach_rented_providers_first_and_go_round_the_listed_ones() {
    let (store, _dir) = testing::store();
    let now = unix_now();
    let providers: Vec<Provider> = (0..5).map(|_| Provider::new()).collect();
    for p in &providers {
        store.upsert_offer(p.offer(|_| {}), now).await.unwrap();
    }
    // The first provider is rented out and its offer is gone (pruned long after expiry).
    let rented = Provider::new();
    let offer = rented.offer(|o| o.expires_at = o.issued_at + 60);
    let expires_at = offer.body.expires_at;
    store.upsert_offer(offer, now - 120).await.unwrap();
    store.prune_expired(expires_at).await.unwrap();
    let opened = RentalEvent::Opened {
        renter: Address::repeat_byte(1),
        provider: rented.payout.address(),
        offer_id: B256::ZERO,
        rate_per_second: U256::from(1),
        start: now - 100,
        end: now + 3_600,
        deposit: U256::from(3_700),
    };
    store
        .apply_chain(ChainUpdate {
            escrow: format!("{:#x}", Address::repeat_byte(0xee)),
            rollback_above: None,
            blocks: vec![(1, format!("{:#x}", B256::repeat_byte(1)))],
            events: vec![LoggedEvent { block: 1, log_index: 0, rental_id: 1, event: opened }],
            next_block: 2,
        })
        .await
        .unwrap();

    let rented_peer = rented.identity.peer_id().to_string();
    let first = store.probe_targets(now, String::new(), 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0].0, rented_peer, "the rented provider comes first");
    assert_eq!(first[0].1, ["/ip4/127.0.0.1/tcp/4001"], "its last known addresses");
    // Successive rounds cover every listed provider once.
    let mut seen: Vec<String> = first[1..].iter().map(|(peer, _)| peer.clone()).collect();
    let next = store.probe_targets(now, seen.last().unwrap().clone(), 10).await.unwrap();
    assert_eq!(next[0].0, rented_peer);
    seen.extend(next[1..].iter().map(|(peer, _)| peer.clone()));
    let mut listed: Vec<String> =
        providers.iter().map(|p| p.identity.peer_id().to_string()).collect();
    listed.sort();
    assert_eq!(seen, listed);
}
