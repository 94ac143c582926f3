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

#[tokio::test]
async fn a_rented_machine_whose_offer_the_node_never_stored_is_heard_through_its_rental() {
    use crate::store::HeartbeatUpsert;

    let (store, _dir) = testing::store();
    let params = crate::reliability::params(60, 60, 30);
    let now = unix_now() / 60 * 60;
    let (start, end) = (now - 3_600, now + 3_600);
    store.mark_alive(start - 600, now).await.unwrap();
    // Every GPU of `rented` is rented, so it withdrew its offer before this node joined;
    // `done` was rented earlier; `stranger` never was.
    let (rented, done, stranger) = (Provider::new(), Provider::new(), Provider::new());
    testing::index_rental(&store, &rented, 1, 10, (start, end)).await;
    testing::index_rental(&store, &done, 2, 10, (start - 7_200, start)).await;
    for provider in [&done, &stranger] {
        let outcome = store.upsert_heartbeat(provider.heartbeat(1), start).await.unwrap();
        assert_eq!(outcome, HeartbeatUpsert::UnknownProvider, "no running rental");
    }
    for (seq, at) in (start..now).step_by(15).enumerate() {
        let outcome = store.upsert_heartbeat(rented.heartbeat(seq as u64 + 1), at).await;
        assert_eq!(outcome.unwrap(), HeartbeatUpsert::Stored, "at {at}");
    }
    let peer = rented.identity.peer_id();
    let info = store.provider(peer, now).await.unwrap().expect("known from its heartbeats");
    assert_eq!((info.first_seen, info.heartbeat_count), (start, 240));
    assert!(info.offer.is_none());

    // Once a GPU is free again its offer names the payout address, and the rental joins the
    // machine: the node heard it all along, so none of the rented time counts as down.
    let offer = rented.offer(|o| o.seq = 1);
    assert_eq!(store.upsert_offer(offer, now).await.unwrap(), crate::Upsert::Inserted);
    let (window, facts) = store.evidence(params, peer.to_string(), now).await.unwrap().unwrap();
    assert_eq!(facts.first_seen, start, "the first sighting was the first heartbeat");
    assert_eq!(facts.rentals.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
    let scores = crate::store::scores_of(&window, &facts, now);
    assert_eq!((scores.rented_seconds, scores.up_rented_seconds), (3_600, 3_600), "{scores:?}");
}
