//! Nodes in this process on real loopback swarms: propagation, late join, convergence,
//! validation, expiry, conflicts, heartbeats and rate limits.

use std::time::Instant;

use gpuflow_node::{RateLimit, Store};
use gpuflow_protocol::{Offer, SignedEnvelope, api, unix_now};

use crate::support::{Provider, Publisher, TestNode, eventually, get_json, try_get_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_reach_a_neighbouring_node_quickly() {
    let a = TestNode::start(Vec::new()).await;
    let b = TestNode::start(vec![a.addr()]).await;
    let publisher = Publisher::join(a.addr()).await;
    // Wait until b is connected, so that the timing below measures gossip, not dialing.
    eventually("b connecting to a", || async {
        b.node.network().connected_peers().await.unwrap().contains(&a.node.peer_id).then_some(())
    })
    .await;

    let provider = Provider::default();
    let published = Instant::now();
    publisher.offer(&provider.offer(|_| {})).await;
    let expected = vec![provider.id()];
    eventually("the offer on a", || async { (a.offer_ids().await == expected).then_some(()) })
        .await;
    eventually("the offer on b", || async { (b.offer_ids().await == expected).then_some(()) })
        .await;
    // Seconds on a loaded CI machine; milliseconds otherwise.
    println!("offer searchable on the second node {:?} after publication", published.elapsed());

    let detail: api::OfferDetail =
        get_json(&format!("{}/v1/offers/{}", b.url, provider.id())).await;
    assert_eq!(detail.envelope.open::<Offer>().unwrap().signer, provider.identity.peer_id());
    assert_eq!(a.metric("gpuflow_messages_accepted_total{topic=\"offers\"}").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_offer_replaces_the_old_one_and_replays_are_ignored() {
    let a = TestNode::start(Vec::new()).await;
    let publisher = Publisher::join(a.addr()).await;
    let provider = Provider::default();
    publisher.offer(&provider.offer(|o| o.seq = 1)).await;
    publisher
        .offer(&provider.offer(|o| {
            o.seq = 2;
            o.price_per_second = 200;
        }))
        .await;
    let url = format!("{}/v1/offers/{}", a.url, provider.id());
    eventually("seq 2 stored", || async {
        let detail: api::OfferDetail = try_get_json(&url).await?;
        (detail.summary.seq == 2).then_some(())
    })
    .await;
    // An older seq, even freshly signed (the same bytes would be a gossipsub duplicate), is
    // stale.
    publisher
        .offer(&provider.offer(|o| {
            o.seq = 1;
            o.price_per_second = 150;
        }))
        .await;
    eventually("the replay to be ignored", || async {
        (a.metric("gpuflow_messages_ignored_total{topic=\"offers\",reason=\"stale\"}").await == 1)
            .then_some(())
    })
    .await;
    let detail: api::OfferDetail = get_json(&url).await;
    assert_eq!((detail.summary.seq, detail.summary.price_per_second.as_str()), (2, "200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_syncs_the_offers_it_missed() {
    // The first node holds offers that are no longer being gossiped: only a sync can
    // hand them to the newcomer.
    let dir = tempfile::tempdir().unwrap();
    let providers: Vec<Provider> = (0..70).map(|_| Provider::default()).collect();
    {
        let store = Store::open(&dir.path().join("index.sqlite")).unwrap();
        for provider in &providers {
            let offer = provider.offer(|_| {}).open().unwrap();
            store.upsert_offer(offer, unix_now()).await.unwrap();
        }
    }
    let config = crate::support::config(dir.path(), Vec::new());
    let a = gpuflow_node::start(config).await.unwrap();
    let a_url = format!("http://{}", a.http_addr);
    let mut expected: Vec<_> = providers.iter().map(Provider::id).collect();
    expected.sort();
    assert_eq!(crate::support::offer_ids(&a_url).await, expected);

    let late = TestNode::start(vec![a.bootstrap_addr()]).await;
    eventually("the late node to sync every offer", || async {
        (late.offer_ids().await == expected).then_some(())
    })
    .await;
    // Two pages of 64 and 6.
    assert_eq!(late.metric("gpuflow_messages_accepted_total{topic=\"sync\"}").await, 70);
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_meet_do_not_check_the_offers_they_both_hold_again() {
    // Two nodes hold the same 70 offers, and one holds a later seq of one more: on
    // connecting each syncs from the other, and only that later offer is checked.
    let providers: Vec<Provider> = (0..71).map(|_| Provider::default()).collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (n, dir) in dirs.iter().enumerate() {
        let store = Store::open(&dir.path().join("index.sqlite")).unwrap();
        for (i, provider) in providers.iter().enumerate() {
            let seq = if i == 70 { n as u64 + 1 } else { 1 };
            let offer = provider.offer(|o| o.seq = seq).open().unwrap();
            store.upsert_offer(offer, unix_now()).await.unwrap();
        }
    }
    let a = gpuflow_node::start(crate::support::config(dirs[0].path(), Vec::new())).await.unwrap();
    let b_config = crate::support::config(dirs[1].path(), vec![a.bootstrap_addr()]);
    let b = gpuflow_node::start(b_config).await.unwrap();
    let (a_url, b_url) = (format!("http://{}", a.http_addr), format!("http://{}", b.http_addr));
    let known = "gpuflow_messages_ignored_total{topic=\"sync\",reason=\"known\"}";
    let accepted = "gpuflow_messages_accepted_total{topic=\"sync\"}";
    // `a` holds seq 1 of the last provider's offer, `b` seq 2: `a` takes it, `b` skips
    // `a`'s older one with the rest.
    eventually("both nodes to finish their syncs", || async {
        let a_done = crate::support::metric(&a_url, known).await == 70
            && crate::support::metric(&a_url, accepted).await == 1;
        let b_done = crate::support::metric(&b_url, known).await == 71;
        (a_done && b_done).then_some(())
    })
    .await;
    let stale = "gpuflow_messages_ignored_total{topic=\"sync\",reason=\"stale\"}";
    assert_eq!(crate::support::metric(&a_url, stale).await, 0);
    assert_eq!(crate::support::metric(&b_url, stale).await, 0);
    assert_eq!(crate::support::metric(&b_url, accepted).await, 0);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_on_one_offer_set() {
    // a ← b ← c, with providers publishing at both ends.
    let a = TestNode::start(Vec::new()).await;
    let b = TestNode::start(vec![a.addr()]).await;
    let c = TestNode::start(vec![b.addr()]).await;
    let at_a = Publisher::join(a.addr()).await;
    let at_c = Publisher::join(c.addr()).await;
    let providers: Vec<Provider> = (0..6).map(|_| Provider::default()).collect();
    for (i, provider) in providers.iter().enumerate() {
        let publisher = if i % 2 == 0 { &at_a } else { &at_c };
        publisher.offer(&provider.offer(|o| o.price_per_second = 100 + i as u128)).await;
    }
    let mut expected: Vec<_> = providers.iter().map(Provider::id).collect();
    expected.sort();
    for (name, node) in [("a", &a), ("b", &b), ("c", &c)] {
        eventually(&format!("node {name} to list all six offers"), || async {
            (node.offer_ids().await == expected).then_some(())
        })
        .await;
    }
    // And c found a through the DHT, not only through b.
    eventually("c connecting to a", || async {
        c.node.network().connected_peers().await.unwrap().contains(&a.node.peer_id).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_oversized_messages_are_rejected_and_counted() {
    let a = TestNode::start(Vec::new()).await;
    let honest = Provider::default();
    let valid = honest.offer(|_| {});

    // A forged copy: the price changed after signing.
    let forged = String::from_utf8(valid.to_bytes()).unwrap().replace("\"100\"", "\"1\"");
    let forged: SignedEnvelope = serde_json::from_str(&forged).unwrap();
    // A correctly signed offer past the 64 KiB limit (and within gossipsub's frame limit).
    let oversized = Provider::default().offer(|o| {
        o.gpus[0].pci_bus_id = " ".repeat(65 * 1024);
    });
    assert!(oversized.to_bytes().len() > gpuflow_protocol::MAX_MESSAGE_SIZE);
    // A payout address bound to another peer id: a valid offer of `victim`'s, sealed by
    // `thief` as its own.
    let (victim, thief) = (Provider::default(), Provider::default());
    let stolen: Offer = serde_json::from_str(victim.offer(|_| {}).body.get()).unwrap();
    let stolen = SignedEnvelope::seal(&thief.identity, &stolen);
    // A heartbeat changed after signing.
    let forged_heartbeat = {
        let signed = String::from_utf8(Provider::default().heartbeat(1).to_bytes()).unwrap();
        let forged = signed.replace("\"temperature_c\":70", "\"temperature_c\":20");
        assert_ne!(forged, signed);
        serde_json::from_str::<SignedEnvelope>(&forged).unwrap()
    };
    // A heartbeat past its much smaller limit.
    let big_heartbeat = {
        let provider = Provider::default();
        let mut heartbeat: gpuflow_protocol::Heartbeat =
            serde_json::from_str(provider.heartbeat(1).body.get()).unwrap();
        heartbeat.gpus[0].uuid =
            "GPU-".to_owned() + &"0".repeat(gpuflow_protocol::MAX_HEARTBEAT_SIZE);
        SignedEnvelope::seal(&provider.identity, &heartbeat)
    };

    // One publisher each: every rejection costs the relay its gossipsub score.
    // They stay alive to the end: a dropped publisher stops before its message is sent.
    let mut publishers = Vec::new();
    for _ in 0..6 {
        publishers.push(Publisher::join(a.addr()).await);
    }
    publishers[0].offer(&valid).await;
    publishers[1].offer(&forged).await;
    publishers[2].offer(&oversized).await;
    publishers[3].heartbeat(&big_heartbeat).await;
    publishers[4].offer(&stolen).await;
    publishers[5].heartbeat(&forged_heartbeat).await;

    for line in [
        "gpuflow_messages_accepted_total{topic=\"offers\"}",
        "gpuflow_messages_rejected_total{topic=\"offers\",reason=\"bad_signature\"}",
        "gpuflow_messages_rejected_total{topic=\"offers\",reason=\"too_large\"}",
        "gpuflow_messages_rejected_total{topic=\"offers\",reason=\"bad_payout_binding\"}",
        "gpuflow_messages_rejected_total{topic=\"heartbeats\",reason=\"too_large\"}",
        "gpuflow_messages_rejected_total{topic=\"heartbeats\",reason=\"bad_signature\"}",
    ] {
        eventually(line, || async { (a.metric(line).await == 1).then_some(()) }).await;
    }
    assert_eq!(a.offer_ids().await, vec![honest.id()]);
    for id in [thief.id(), victim.id()] {
        let detail = try_get_json::<api::OfferDetail>(&format!("{}/v1/offers/{id}", a.url)).await;
        assert!(detail.is_none(), "offer {id} is served");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_listening_at_another_peer_is_rejected_and_counted() {
    let a = TestNode::start(Vec::new()).await;
    let (honest, impostor) = (Provider::default(), Provider::default());
    let elsewhere = Provider::default().identity.peer_id();
    // Its own peer id on an address is fine; another's makes the offer unrentable.
    let own = format!("/ip4/127.0.0.1/tcp/4001/p2p/{}", honest.identity.peer_id());
    let valid = honest.offer(|o| o.listen_addrs.push(own.clone()));
    let foreign = impostor.offer(|o| {
        o.listen_addrs.push(format!("/ip4/127.0.0.1/tcp/4002/p2p/{elsewhere}"));
    });
    let publishers = [Publisher::join(a.addr()).await, Publisher::join(a.addr()).await];
    publishers[0].offer(&valid).await;
    publishers[1].offer(&foreign).await;

    for line in [
        "gpuflow_messages_accepted_total{topic=\"offers\"}",
        "gpuflow_messages_rejected_total{topic=\"offers\",reason=\"foreign_listen_addr\"}",
    ] {
        eventually(line, || async { (a.metric(line).await == 1).then_some(()) }).await;
    }
    assert_eq!(a.offer_ids().await, vec![honest.id()]);
    let detail: api::OfferDetail = get_json(&format!("{}/v1/offers/{}", a.url, honest.id())).await;
    assert!(detail.summary.listen_addrs.contains(&own), "{:?}", detail.summary.listen_addrs);
    let url = format!("{}/v1/offers/{}", a.url, impostor.id());
    assert!(try_get_json::<api::OfferDetail>(&url).await.is_none(), "the foreign offer is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_disappears_from_search_when_it_expires() {
    let a = TestNode::start(Vec::new()).await;
    let publisher = Publisher::join(a.addr()).await;
    let (brief, lasting) = (Provider::default(), Provider::default());
    // Long enough to be seen on a loaded machine before it expires, short enough to wait out.
    publisher.offer(&brief.offer(|o| o.expires_at = o.issued_at + 5)).await;
    publisher.offer(&lasting.offer(|_| {})).await;
    let mut both = vec![brief.id(), lasting.id()];
    both.sort();
    eventually("both offers", || async { (a.offer_ids().await == both).then_some(()) }).await;

    eventually("the brief offer to expire", || async {
        (a.offer_ids().await == [lasting.id()]).then_some(())
    })
    .await;
    let url = format!("{}/v1/offers/{}", a.url, brief.id());
    assert!(try_get_json::<api::OfferDetail>(&url).await.is_none(), "the expired offer is served");
    let search: api::OfferList = get_json(&format!("{}/v1/offers?q=num_gpus%3D1", a.url)).await;
    let ids: Vec<_> = search.offers.into_iter().map(|o| o.id).collect();
    assert_eq!(ids, [lasting.id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_gpu_from_two_peers_is_a_conflict() {
    let a = TestNode::start(Vec::new()).await;
    let b = TestNode::start(vec![a.addr()]).await;
    let publisher = Publisher::join(a.addr()).await;
    let (owner, copycat, bystander) =
        (Provider::default(), Provider::default(), Provider::default());
    let original = owner.offer(|_| {});
    let uuid = original.open::<Offer>().unwrap().body.gpus[0].uuid.clone();
    publisher.offer(&owner.offer(|_| {})).await;
    publisher.offer(&copycat.offer(|o| o.gpus[0].uuid = uuid.clone())).await;
    publisher.offer(&bystander.offer(|_| {})).await;

    let mut both = vec![owner.id(), copycat.id(), bystander.id()];
    both.sort();
    for node in [&a, &b] {
        eventually("all three offers", || async { (node.offer_ids().await == both).then_some(()) })
            .await;
        let hidden: api::OfferList = get_json(&format!("{}/v1/offers", node.url)).await;
        let ids: Vec<_> = hidden.offers.iter().map(|o| o.id.clone()).collect();
        assert_eq!(ids, [bystander.id()]);
        let shown: api::OfferList =
            get_json(&format!("{}/v1/offers?q=conflicts%3Dtrue", node.url)).await;
        let mut flagged: Vec<_> =
            shown.offers.iter().filter(|o| o.conflicts).map(|o| o.id.clone()).collect();
        flagged.sort();
        let mut expected = vec![owner.id(), copycat.id()];
        expected.sort();
        assert_eq!(flagged, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_show_on_the_provider_page() {
    let a = TestNode::start(Vec::new()).await;
    let publisher = Publisher::join(a.addr()).await;
    let provider = Provider::default();
    // A heartbeat from a provider the node has never seen is dropped.
    publisher.heartbeat(&provider.heartbeat(1)).await;
    eventually("the unknown provider's heartbeat to be ignored", || async {
        let line =
            "gpuflow_messages_ignored_total{topic=\"heartbeats\",reason=\"unknown_provider\"}";
        (a.metric(line).await == 1).then_some(())
    })
    .await;

    publisher.offer(&provider.offer(|_| {})).await;
    eventually("the offer", || async { (a.offer_ids().await == [provider.id()]).then_some(()) })
        .await;
    // One at a time: verified in parallel, two heartbeats sent back to back may be stored
    // out of order, the older then being stale.
    let url = format!("{}/v1/providers/{}", a.url, provider.identity.peer_id());
    let mut detail = None;
    for (seq, count) in [(2, 1), (3, 2)] {
        publisher.heartbeat(&provider.heartbeat(seq)).await;
        detail = Some(
            eventually("the heartbeat", || async {
                let detail: api::ProviderDetail = get_json(&url).await;
                (detail.heartbeat_count == count).then_some(detail)
            })
            .await,
        );
    }
    let detail = detail.unwrap();
    let last = detail.last_heartbeat.expect("a heartbeat");
    assert_eq!((last.seq, last.active_rentals), (3, 1));
    assert_eq!((last.gpus[0].temperature_c, last.gpus[0].utilization_pct), (70, 99));
    assert_eq!(detail.offer.map(|o| o.id), Some(provider.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_rate_limited() {
    let a = TestNode::start_with(Vec::new(), |config| {
        config.rate_limit = RateLimit { per_second: 1, burst: 3 };
    })
    .await;
    let publisher = Publisher::join(a.addr()).await;
    for _ in 0..10 {
        publisher.offer(&Provider::default().offer(|_| {})).await;
    }
    let limited = "gpuflow_messages_ignored_total{topic=\"offers\",reason=\"rate_limited\"}";
    let accepted = "gpuflow_messages_accepted_total{topic=\"offers\"}";
    let (limited, accepted) = eventually("all ten to be judged", || async {
        let (l, a) = (a.metric(limited).await, a.metric(accepted).await);
        (l + a == 10).then_some((l, a))
    })
    .await;
    // Three in the burst, plus one per second that publishing took.
    assert!(accepted >= 3 && limited >= 1, "accepted {accepted}, rate limited {limited}");
    assert_eq!(a.offer_ids().await.len() as u64, accepted);
    // Rate limited messages are ignored, never rejected: the publisher keeps its score.
    let text = reqwest::get(format!("{}/metrics", a.url)).await.unwrap().text().await.unwrap();
    let rejected: Vec<_> =
        text.lines().filter(|l| l.starts_with("gpuflow_messages_rejected_total")).collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}
