use gpuflow_protocol::unix_now;

use super::*;
use crate::testing::{self, Provider, gpus};

fn all(query: &str, order: &str) -> Search {
    Search {
        query: Query::parse(query, 6).unwrap(),
        order: Order::parse(order).unwrap(),
        limit: 100,
        ..Search::default()
    }
}

async fn search(store: &Store, query: &str, order: &str) -> Vec<OfferSummary> {
    store.search(all(query, order), unix_now()).await.unwrap().offers
}

/// Names of the GPUs of the offers a query finds, in result order.
async fn names(store: &Store, query: &str) -> Vec<String> {
    search(store, query, "dph").await.into_iter().map(|o| o.gpu_name).collect()
}

/// A store holding four distinct machines, cheapest first.
async fn market() -> (Store, tempfile::TempDir) {
    let (store, dir) = testing::store();
    let machines = [
        ("NVIDIA GeForce RTX 4090", 1, 25_757_220_864, 100, "12.4", "eu-west", false, Some(1000)),
        ("NVIDIA A100-SXM4-80GB", 4, 85_899_345_920, 800, "12.2", "us-east", true, Some(10_000)),
        ("NVIDIA H100 80GB HBM3", 8, 85_520_809_984, 2_000, "12.8", "US-East", true, None),
        ("NVIDIA L40S", 2, 48_305_799_168, 300, "N/A", "ap-south", false, Some(500)),
    ];
    for (name, count, memory, price, cuda, region, verified, inet) in machines {
        let offer = Provider::new().offer(|o| {
            o.gpus = gpus(o, count);
            for gpu in &mut o.gpus {
                gpu.name = name.into();
                gpu.memory_bytes = memory;
                gpu.cuda_version = cuda.into();
            }
            o.price_per_second = price;
            o.region = region.into();
            o.verified = verified;
            o.inet_down_mbps = inet;
            o.inet_up_mbps = inet.map(|v| v / 10);
            o.disk_bytes = inet.map(|v| v * 1_000_000_000);
            o.cpu_cores = inet.map(|v| v / 10);
            o.cpu_ram_bytes = inet.map(|v| v * 256_000_000);
        });
        assert_eq!(store.upsert_offer(offer, unix_now()).await.unwrap(), Upsert::Inserted);
    }
    (store, dir)
}

#[tokio::test]
async fn newer_seq_replaces_and_replays_are_stale() {
    let (store, _dir) = testing::store();
    let provider = Provider::new();
    let now = unix_now();
    let first = provider.offer(|o| o.seq = 5);
    assert_eq!(store.upsert_offer(first.clone(), now).await.unwrap(), Upsert::Inserted);
    assert_eq!(store.upsert_offer(first, now).await.unwrap(), Upsert::Stale);
    let older = provider.offer(|o| {
        o.seq = 4;
        o.price_per_second = 1;
    });
    assert_eq!(store.upsert_offer(older, now).await.unwrap(), Upsert::Stale);
    let same_seq = provider.offer(|o| {
        o.seq = 5;
        o.price_per_second = 1;
    });
    assert_eq!(store.upsert_offer(same_seq, now).await.unwrap(), Upsert::Stale);
    let all = search(&store, "", "dph").await;
    assert_eq!((all.len(), all[0].seq, all[0].price_per_second), (1, 5, 100));

    let newer = provider.offer(|o| {
        o.seq = 6;
        o.price_per_second = 7;
    });
    assert_eq!(store.upsert_offer(newer, now).await.unwrap(), Upsert::Replaced);
    let all = search(&store, "", "dph").await;
    assert_eq!((all.len(), all[0].seq, all[0].price_per_second), (1, 6, 7));
    assert_eq!(store.count_offers(now).await.unwrap(), 1);
}

#[tokio::test]
async fn expired_offers_are_invisible_and_pruned_but_stay_superseded() {
    let (store, _dir) = testing::store();
    let provider = Provider::new();
    let offer = provider.offer(|o| o.seq = 2);
    let id = OfferId::of(&offer.signer);
    let expires_at = offer.body.expires_at;
    store.upsert_offer(offer, unix_now()).await.unwrap();
    let before = expires_at - 1;
    let page = |now| store.search(Search { limit: 10, ..Search::default() }, now);
    assert_eq!(store.count_offers(before).await.unwrap(), 1);
    assert!(store.get_offer(id, before).await.unwrap().is_some());
    assert_eq!(page(before).await.unwrap().offers.len(), 1);

    assert_eq!(store.count_offers(expires_at).await.unwrap(), 0);
    assert!(store.get_offer(id, expires_at).await.unwrap().is_none());
    assert!(page(expires_at).await.unwrap().offers.is_empty());

    assert_eq!(store.prune_expired(before).await.unwrap(), 0);
    assert_eq!(store.prune_expired(expires_at).await.unwrap(), 1);
    assert_eq!(store.count_offers(before).await.unwrap(), 0);

    // An older offer, replayed after the newer one was pruned, does not come back.
    let older = provider.offer(|o| o.seq = 1);
    assert_eq!(store.upsert_offer(older, unix_now()).await.unwrap(), Upsert::Stale);
    // The provider itself is remembered, with its first sighting.
    let info = store.provider(provider.identity.peer_id(), unix_now()).await.unwrap().unwrap();
    assert!(info.offer.is_none());
}

#[tokio::test]
async fn summaries_carry_the_indexed_facts() {
    let (store, _dir) = testing::store();
    let provider = Provider::new();
    let offer = provider.offer(|o| {
        o.inet_down_mbps = Some(940);
        o.inet_up_mbps = Some(90);
        o.disk_bytes = Some(512_400_000_000);
        o.cpu_cores = Some(48);
        o.cpu_ram_bytes = Some(257_698_037_760);
    });
    let expected_peer = offer.signer.to_string();
    let received_at = unix_now() - 5;
    store.upsert_offer(offer.clone(), received_at).await.unwrap();
    let summary = search(&store, "", "dph").await.remove(0);
    assert_eq!(summary.id, OfferId::of(&offer.signer));
    assert_eq!(summary.peer_id, expected_peer);
    assert_eq!(summary.payout, format!("{:#x}", provider.payout.address()));
    assert_eq!(summary.payout, summary.payout.to_lowercase());
    assert_eq!(summary.gpu_name, "NVIDIA GeForce RTX 4090");
    assert_eq!((summary.num_gpus, summary.gpu_ram_mb), (1, 25_757));
    assert_eq!((summary.price_per_second, summary.price_per_hour), (100, 360_000));
    assert_eq!((summary.cuda.as_str(), summary.driver.as_str()), ("12.4", "550.54.14"));
    assert_eq!(summary.listen_addrs, offer.body.listen_addrs);
    assert_eq!(
        (summary.issued_at, summary.expires_at),
        (offer.body.issued_at, offer.body.expires_at)
    );
    assert_eq!(summary.first_seen, received_at);
    assert!(!summary.conflicts);
    assert_eq!(
        (summary.inet_down_mbps, summary.inet_up_mbps, summary.disk_mb),
        (Some(940), Some(90), Some(512_400))
    );
    assert_eq!((summary.cpu_cores, summary.cpu_ram_mb), (Some(48), Some(257_698)));
    // A replacement keeps the provider's first sighting.
    store.upsert_offer(provider.offer(|o| o.seq = 2), unix_now()).await.unwrap();
    assert_eq!(search(&store, "", "dph").await[0].first_seen, received_at);
}

#[tokio::test]
async fn detail_serves_an_envelope_that_verifies() {
    let (store, _dir) = testing::store();
    let offer = Provider::new().offer(|_| {});
    let id = OfferId::of(&offer.signer);
    store.upsert_offer(offer.clone(), unix_now()).await.unwrap();
    let detail = store.get_offer(id, unix_now()).await.unwrap().unwrap();
    assert_eq!(detail.summary.id, id);

    let reopened = detail.envelope.open::<Offer>().unwrap();
    assert_eq!(reopened.signer, offer.signer);
    assert_eq!(reopened.body, offer.body);

    let unknown = OfferId::of(&Provider::new().identity.peer_id());
    assert!(store.get_offer(unknown, unix_now()).await.unwrap().is_none());
}

#[tokio::test]
async fn filters_select_the_right_machines() {
    let (store, _dir) = market().await;
    let cases: [(&str, &[&str]); 36] = [
        ("", &["RTX 4090", "L40S", "A100", "H100"]),
        ("gpu_name=RTX_4090", &["RTX 4090"]),
        ("gpu_name==nvidia_geforce_rtx_4090", &["RTX 4090"]),
        ("gpu_name=RTX_409", &[]),
        ("gpu_name=L40", &[]),
        ("gpu_name=a100", &["A100"]),
        ("gpu_name!=RTX_4090", &["L40S", "A100", "H100"]),
        ("gpu_name in [H100,L40S]", &["L40S", "H100"]),
        ("gpu_name notin [H100,L40S]", &["RTX 4090", "A100"]),
        ("num_gpus>=4", &["A100", "H100"]),
        ("num_gpus>4", &["H100"]),
        ("num_gpus<2", &["RTX 4090"]),
        ("num_gpus<=2", &["RTX 4090", "L40S"]),
        ("num_gpus!=8", &["RTX 4090", "L40S", "A100"]),
        ("num_gpus in [1,8]", &["RTX 4090", "H100"]),
        ("num_gpus notin [1,8]", &["L40S", "A100"]),
        ("gpu_ram>=80", &["A100", "H100"]),
        ("gpu_ram>=25.757 gpu_ram<=25.757", &["RTX 4090"]),
        ("gpu_ram=25.758", &[]),
        // 800 units/s is 2.88 dollars per hour at 6 decimals.
        ("dph<=2.88", &["RTX 4090", "L40S", "A100"]),
        ("dph<2.88", &["RTX 4090", "L40S"]),
        ("verified=true", &["A100", "H100"]),
        ("region=us_east", &[]),
        ("region=US-EAST", &["A100", "H100"]),
        ("cuda>=12.4", &["RTX 4090", "H100"]),
        // Undeclared bandwidth and disk match no condition, not even a negative one.
        ("inet_down>=1000", &["RTX 4090", "A100"]),
        ("inet_down!=1000", &["L40S", "A100"]),
        ("inet_up<100", &["L40S"]),
        ("inet_up in [100,1000]", &["RTX 4090", "A100"]),
        ("disk_space>=1000", &["RTX 4090", "A100"]),
        ("disk_space<1000.001 disk_space>999.999", &["RTX 4090"]),
        ("cpu_cores>=100", &["RTX 4090", "A100"]),
        ("cpu_cores=50", &["L40S"]),
        ("cpu_ram>=256 cpu_ram<=256", &["RTX 4090"]),
        ("age_days>=0 age_days<1", &["RTX 4090", "L40S", "A100", "H100"]),
        ("age_days>=1", &[]),
    ];
    for (query, expected) in cases {
        let found = names(&store, query).await;
        let short: Vec<_> = found
            .iter()
            .map(|n| expected.iter().find(|e| n.contains(*e)).copied().unwrap_or(n.as_str()))
            .collect();
        assert_eq!(short, expected, "{query}: found {found:?}");
    }
    // Unknown CUDA versions match no condition on `cuda`, not even a negative one.
    assert_eq!(names(&store, "cuda!=12.4").await.len(), 2);
    assert_eq!(names(&store, "cuda notin [12.4]").await.len(), 2);
    assert_eq!(names(&store, "driver=550.54.14").await.len(), 4);
    assert_eq!(names(&store, "region in [EU-WEST,ap-south]").await.len(), 2);
    assert_eq!(names(&store, "region notin [eu-west]").await.len(), 3);
    assert_eq!(names(&store, "verified!=true").await.len(), 2);
}

#[tokio::test]
async fn age_counts_from_the_first_sighting() {
    let (store, _dir) = testing::store();
    let now = unix_now();
    let day = 86_400;
    for (age, price) in [(0, 1), (2 * day, 2), (40 * day, 3)] {
        store
            .upsert_offer(Provider::new().offer(|o| o.price_per_second = price), now - age)
            .await
            .unwrap();
    }
    let prices = |offers: Vec<OfferSummary>| {
        offers.into_iter().map(|o| o.price_per_second).collect::<Vec<_>>()
    };
    assert_eq!(prices(search(&store, "age_days>=1.5", "dph").await), [2, 3]);
    assert_eq!(prices(search(&store, "age_days>30", "dph").await), [3]);
    assert_eq!(prices(search(&store, "age_days<2", "dph").await), [1]);
    assert_eq!(prices(search(&store, "", "age_days").await), [1, 2, 3]);
    assert_eq!(prices(search(&store, "", "age_days-").await), [3, 2, 1]);
}

#[tokio::test]
async fn payout_matches_any_case() {
    let (store, _dir) = market().await;
    let provider = Provider::new();
    store.upsert_offer(provider.offer(|_| {}), unix_now()).await.unwrap();
    let upper = format!("0x{}", alloy::hex::encode_upper(provider.payout.address()));
    let found = search(&store, &format!("payout={upper}"), "dph").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].payout, format!("{:#x}", provider.payout.address()));
    assert_eq!(search(&store, &format!("payout!={upper}"), "dph").await.len(), 4);
}

#[tokio::test]
async fn image_finds_the_offers_ready_to_run_it_in_every_order() {
    const PYTORCH: &str = "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime";
    const CUDA: &str = "nvidia/cuda:12.4.1-base-ubuntu22.04";
    let (store, _dir) = testing::store();
    let list = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect::<Vec<_>>();
    // Price per second, GPUs, images pulled ahead, allow-list.
    let machines: [(u128, usize, &[&str], &[&str]); 4] = [
        (100, 1, &[], &["pytorch/pytorch:*"]),
        (200, 2, &[], &[]),
        (300, 4, &[CUDA], &["ubuntu:22.04"]),
        (400, 8, &[], &["ubuntu:22.04"]),
    ];
    for (price, count, images, allowed) in machines {
        let offer = Provider::new().offer(|o| {
            o.gpus = gpus(o, count);
            o.price_per_second = price;
            o.images = list(images);
            o.allowed_images = list(allowed);
        });
        store.upsert_offer(offer, unix_now()).await.unwrap();
    }
    let prices = |offers: Vec<OfferSummary>| {
        offers.into_iter().map(|o| o.price_per_second).collect::<Vec<_>>()
    };
    let cases: [(String, &str, &[u128]); 12] = [
        (format!("image={PYTORCH}"), "dph", &[100, 200]),
        (format!("image={PYTORCH}"), "dph-", &[200, 100]),
        (format!("image={PYTORCH}"), "num_gpus-", &[200, 100]),
        (format!("image={CUDA}"), "dph", &[200, 300]),
        ("image=ubuntu:22.04".into(), "num_gpus-", &[400, 300, 200]),
        ("image=ubuntu:24.04".into(), "dph", &[200]),
        (format!("image!={PYTORCH}"), "dph", &[300, 400]),
        (format!("image in [{PYTORCH},ubuntu:22.04]"), "dph-", &[400, 300, 200, 100]),
        (format!("image notin [{PYTORCH},{CUDA}]"), "dph", &[400]),
        (format!("image={PYTORCH} num_gpus>=2"), "dph", &[200]),
        (format!("num_gpus>=1 image={CUDA} dph<=1.44"), "dph", &[200, 300]),
        (format!("image={CUDA} image=ubuntu:22.04"), "dph", &[200, 300]),
    ];
    for (query, order, expected) in cases {
        assert_eq!(prices(search(&store, &query, order).await), expected, "{query} -o {order}");
    }
    // Summaries carry both lists, so a renter sees what is pulled ahead.
    let found = search(&store, &format!("image={CUDA} dph>=1"), "dph").await;
    assert_eq!(
        (found[0].images.clone(), found[0].allowed_images.clone()),
        (list(&[CUDA]), list(&["ubuntu:22.04"]))
    );
}

#[tokio::test]
async fn orders_and_limits_are_deterministic() {
    let (store, _dir) = market().await;
    let ram: Vec<_> = search(&store, "", "gpu_ram-").await.iter().map(|o| o.gpu_ram_mb).collect();
    assert_eq!(ram, [85_899, 85_520, 48_305, 25_757]);
    let gpus: Vec<_> = search(&store, "", "num_gpus").await.iter().map(|o| o.num_gpus).collect();
    assert_eq!(gpus, [1, 2, 4, 8]);
    let prices: Vec<_> =
        search(&store, "", "dph-").await.iter().map(|o| o.price_per_second).collect();
    assert_eq!(prices, [2_000, 800, 300, 100]);
    let cuda: Vec<_> = search(&store, "", "cuda").await.into_iter().map(|o| o.cuda).collect();
    assert_eq!(cuda, ["12.2", "12.4", "12.8", "N/A"], "unknown versions sort last");
    let cuda: Vec<_> = search(&store, "", "cuda-").await.into_iter().map(|o| o.cuda).collect();
    assert_eq!(cuda, ["12.8", "12.4", "12.2", "N/A"]);
    for (order, expected) in [
        ("inet_down", [Some(500), Some(1000), Some(10_000), None]),
        ("inet_down-", [Some(10_000), Some(1000), Some(500), None]),
    ] {
        let found: Vec<_> =
            search(&store, "", order).await.into_iter().map(|o| o.inet_down_mbps).collect();
        assert_eq!(found, expected, "{order}");
    }
    let up: Vec<_> = search(&store, "", "inet_up").await.iter().map(|o| o.inet_up_mbps).collect();
    assert_eq!(up, [Some(50), Some(100), Some(1000), None]);
    let disk: Vec<_> = search(&store, "", "disk_space-").await.iter().map(|o| o.disk_mb).collect();
    assert_eq!(disk, [Some(10_000_000), Some(1_000_000), Some(500_000), None]);

    // Equal prices fall back to id order, whichever way the price is sorted.
    let (store, _dir) = testing::store();
    for _ in 0..5 {
        store.upsert_offer(Provider::new().offer(|_| {}), unix_now()).await.unwrap();
    }
    let ids = |offers: Vec<OfferSummary>| {
        offers.into_iter().map(|o| o.id.to_string()).collect::<Vec<_>>()
    };
    let ascending = ids(search(&store, "", "dph").await);
    let mut sorted = ascending.clone();
    sorted.sort();
    assert_eq!(ascending, sorted);
    assert_eq!(ids(search(&store, "", "dph-").await), sorted);
    let first_two =
        store.search(Search { limit: 2, ..Search::default() }, unix_now()).await.unwrap().offers;
    assert_eq!(ids(first_two), sorted[..2]);
}

#[tokio::test]
async fn every_sortable_field_sorts_both_ways() {
    let (store, _dir) = testing::store();
    for i in 0..3u64 {
        let offer = Provider::new().offer(|o| o.price_per_second = u128::from(i + 1));
        store.upsert_offer(offer, unix_now()).await.unwrap();
    }
    for field in gpuflow_protocol::search::SearchField::SORTABLE {
        for order in [field.name().to_owned(), format!("{}-", field.name())] {
            assert_eq!(search(&store, "", &order).await.len(), 3, "sorted by {order}");
        }
    }
}

#[tokio::test]
async fn pages_cover_every_offer_exactly_once_in_every_order() {
    let (store, _dir) = testing::store();
    // Repeated prices and missing bandwidths exercise ties and NULLs across page ends.
    for i in 0..23u64 {
        let offer = Provider::new().offer(|o| {
            o.price_per_second = u128::from(i % 4 + 1);
            o.inet_down_mbps = (i % 3 != 0).then_some(i % 5 * 100);
            o.gpus = gpus(o, (i % 3 + 1) as usize);
        });
        store.upsert_offer(offer, unix_now() - i % 2).await.unwrap();
    }
    let orders = [
        "dph",
        "dph-",
        "num_gpus-",
        "cuda",
        "age_days",
        "inet_down",
        "inet_down-",
        "disk_space",
        "cpu_cores-",
        "cpu_ram",
        "dph,inet_down-",
        "num_gpus-,dph,age_days",
        "inet_down,dph-",
    ];
    // Several keys: the first, then the next on its ties, unknown values last.
    let sorted = search(&store, "", "dph,inet_down-").await;
    for pair in sorted.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.price_per_second <= b.price_per_second);
        if a.price_per_second == b.price_per_second {
            let rank = |v: Option<u64>| v.map_or((1, 0), |v| (0, u64::MAX - v));
            assert!(rank(a.inet_down_mbps) <= rank(b.inet_down_mbps), "{a:?} before {b:?}");
        }
    }
    for order in orders {
        let everything = search(&store, "", order).await;
        assert_eq!(everything.len(), 23);
        for limit in [1, 4, 23, 50] {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let request = Search { limit, after: after.take(), ..all("", order) };
                let page = store.search(request, unix_now()).await.unwrap();
                assert!(page.offers.len() <= limit as usize);
                paged.extend(page.offers);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(paged, everything, "{order} by {limit}");
        }
    }
}

#[tokio::test]
async fn gpu_uuid_conflicts_are_flagged_and_hidden() {
    let (store, _dir) = testing::store();
    let (honest, copycat, bystander) = (Provider::new(), Provider::new(), Provider::new());
    let now = unix_now();
    let original = honest.offer(|_| {});
    let uuid = original.body.gpus[0].uuid.clone();
    store.upsert_offer(original, now).await.unwrap();
    store.upsert_offer(bystander.offer(|_| {}), now).await.unwrap();
    // The same GPU, with a different case, and expiring sooner.
    let copy = copycat.offer(|o| {
        o.gpus = gpus(o, 2);
        o.gpus[1].uuid = uuid.to_lowercase();
        o.expires_at = o.issued_at + 300;
    });
    let copy_expires = copy.body.expires_at;
    store.upsert_offer(copy, now).await.unwrap();

    let ids = |offers: Vec<OfferSummary>| {
        let mut ids: Vec<_> = offers.into_iter().map(|o| (o.id, o.conflicts)).collect();
        ids.sort_by_key(|(id, _)| id.to_string());
        ids
    };
    let sorted = |mut v: Vec<(OfferId, bool)>| {
        v.sort_by_key(|(id, _)| id.to_string());
        v
    };
    assert_eq!(ids(search(&store, "", "dph").await), [(bystander.id(), false)]);
    // The page says what it hid, counting only what the query matches.
    let hiding = store.search(all("", "dph"), now).await.unwrap();
    assert_eq!(hiding.hidden_conflicts, 2);
    let narrower = store.search(all("dph>1000000", "dph"), now).await.unwrap();
    assert_eq!((narrower.offers.len(), narrower.hidden_conflicts), (0, 0));
    let included = Search { include_conflicts: true, ..all("", "dph") };
    let shown = store.search(included.clone(), now).await.unwrap();
    assert_eq!(shown.hidden_conflicts, 0, "nothing hidden when conflicts are shown");
    assert_eq!(
        ids(shown.offers),
        sorted(vec![(honest.id(), true), (copycat.id(), true), (bystander.id(), false)])
    );
    assert_eq!(
        ids(search(&store, "conflicts=true", "dph").await),
        sorted(vec![(honest.id(), true), (copycat.id(), true)])
    );
    assert_eq!(ids(search(&store, "conflicts=false", "dph").await), [(bystander.id(), false)]);
    assert!(store.get_offer(honest.id(), now).await.unwrap().unwrap().summary.conflicts);

    // Once the copy expires the conflict is over.
    let later = copy_expires;
    let visible = store.search(all("", "dph"), later).await.unwrap().offers;
    assert_eq!(ids(visible), sorted(vec![(honest.id(), false), (bystander.id(), false)]));
    // And a provider that drops the disputed GPU from its offer clears it at once.
    store.upsert_offer(copycat.offer(|o| o.seq = 2), now).await.unwrap();
    assert_eq!(search(&store, "", "dph").await.len(), 3);
}

#[tokio::test]
async fn heartbeats_need_a_known_provider_and_a_newer_seq() {
    let (store, _dir) = testing::store();
    let provider = Provider::new();
    let now = unix_now();
    let peer = provider.identity.peer_id();
    assert_eq!(
        store.upsert_heartbeat(provider.heartbeat(1), now).await.unwrap(),
        HeartbeatUpsert::UnknownProvider
    );
    assert!(store.provider(peer, now).await.unwrap().is_none());

    store.upsert_offer(provider.offer(|_| {}), now - 60).await.unwrap();
    let info = store.provider(peer, now).await.unwrap().unwrap();
    assert_eq!((info.heartbeat_count, info.first_seen), (0, now - 60));
    assert!(info.last_heartbeat.is_none());
    assert_eq!(info.offer.as_ref().map(|o| o.id), Some(provider.id()));

    for (seq, outcome) in [
        (5, HeartbeatUpsert::Stored),
        (5, HeartbeatUpsert::Stale),
        (4, HeartbeatUpsert::Stale),
        (6, HeartbeatUpsert::Stored),
    ] {
        assert_eq!(
            store.upsert_heartbeat(provider.heartbeat(seq), now).await.unwrap(),
            outcome,
            "seq {seq}"
        );
    }
    let info = store.provider(peer, now).await.unwrap().unwrap();
    assert_eq!(info.heartbeat_count, 2);
    let last = info.last_heartbeat.unwrap();
    assert_eq!((last.seq, last.received_at, last.active_rentals), (6, now, 1));
    assert_eq!(last.gpus[0].temperature_c, 64);
    assert_eq!(last.envelope.open::<Heartbeat>().unwrap().signer, peer);
}

#[tokio::test]
async fn concurrent_writes_are_batched_and_all_answered() {
    let (store, _dir) = testing::store();
    let offers: Vec<_> = (0..300).map(|_| Provider::new().offer(|_| {})).collect();
    let before = store.commits();
    let release = store.hold_writer().await;
    let mut writes = Vec::new();
    for offer in offers {
        writes.push(tokio::spawn(store.queue_offer(offer, unix_now()).await));
    }
    drop(release);
    for write in futures::future::join_all(writes).await {
        assert_eq!(write.unwrap().unwrap(), Upsert::Inserted);
    }
    assert_eq!(store.count_offers(unix_now()).await.unwrap(), 300);
    // The hold's batch (holding whatever it took along), then full batches.
    let commits = store.commits() - before;
    assert!(commits <= 1 + 300u64.div_ceil(writer::MAX_BATCH as u64), "{commits} commits");
}

#[tokio::test]
async fn a_search_in_progress_does_not_delay_answers() {
    let (store, _dir) = testing::store();
    let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let search = std::thread::spawn({
        let index = Arc::clone(&store.index);
        move || {
            let _scanning = index.read_guard();
            held.0.send(()).unwrap();
            let _ = release.1.recv();
        }
    });
    held.1.recv().unwrap();
    let offer = Provider::new().offer(|_| {});
    let id = OfferId::of(&offer.signer);
    // Bounded only so that a writer stuck behind the search fails the test.
    let wait = std::time::Duration::from_secs(30);
    let answered = tokio::time::timeout(wait, store.upsert_offer(offer, unix_now())).await;
    assert_eq!(
        answered.expect("answered while a search holds the index").unwrap(),
        Upsert::Inserted
    );
    drop(release.0);
    search.join().unwrap();
    let page = store.search(Search { limit: 10, ..Search::default() }, unix_now()).await;
    assert_eq!(page.unwrap().offers.iter().map(|o| o.id).collect::<Vec<_>>(), [id]);
}

#[tokio::test]
async fn a_failing_write_does_not_sink_its_batch() {
    let (store, _dir) = testing::store();
    let bad = Provider::new().offer(|o| o.seq = u64::MAX);
    let good = Provider::new().offer(|_| {});
    let (bad, good) =
        tokio::join!(store.upsert_offer(bad, unix_now()), store.upsert_offer(good, unix_now()));
    assert!(matches!(bad, Err(StoreError::OutOfRange { field: "seq", .. })));
    assert_eq!(good.unwrap(), Upsert::Inserted);
    assert_eq!(store.count_offers(unix_now()).await.unwrap(), 1);
}

#[tokio::test]
async fn sync_pages_go_by_id() {
    let (store, _dir) = testing::store();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let offer = Provider::new().offer(|_| {});
        ids.push(OfferId::of(&offer.signer).to_string());
        store.upsert_offer(offer, unix_now()).await.unwrap();
    }
    ids.sort();
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = store.sync_page(after, 2, unix_now()).await.unwrap();
        for envelope in page.offers {
            seen.push(OfferId::of(&envelope.open::<Offer>().unwrap().signer).to_string());
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn file_store_uses_wal_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/offers.sqlite");
    let offer = Provider::new().offer(|_| {});
    {
        let store = Store::open(&path).unwrap();
        store.upsert_offer(offer.clone(), unix_now()).await.unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, schema::MIGRATIONS.len() as i64);
    drop(conn);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.upsert_offer(offer, unix_now()).await.unwrap(), Upsert::Stale);
    assert_eq!(store.count_offers(unix_now()).await.unwrap(), 1);
}

#[tokio::test]
async fn version_1_databases_are_migrated_with_their_offers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    let provider = Provider::new();
    let offer = provider.offer(|o| o.gpus = gpus(o, 2));
    {
        // What the first release wrote.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        insert_version_1_offer(&conn, &offer, 3, 2);
    }
    let store = Store::open(&path).unwrap();
    let found = search(&store, "", "dph").await;
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].first_seen, found[0].seq), (1000, 3));
    // The GPUs were indexed for conflicts, and the seq high-water mark carried over.
    let rival = Provider::new().offer(|o| o.gpus[0].uuid = offer.body.gpus[1].uuid.clone());
    store.upsert_offer(rival, unix_now()).await.unwrap();
    assert!(search(&store, "", "dph").await.is_empty());
    assert_eq!(
        store.upsert_offer(provider.offer(|o| o.seq = 3), unix_now()).await.unwrap(),
        Upsert::Stale
    );
}

#[tokio::test]
async fn evidence_gathered_before_node_runs_were_kept_counts_as_observed() {
    let dir = tempfile::tempdir().unwrap();
    let node_runs = |path: &Path| -> Vec<(i64, i64)> {
        let conn = Connection::open(path).unwrap();
        let mut statement = conn.prepare("SELECT * FROM node_runs").unwrap();
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().flatten().collect()
    };
    for evidence in [true, false] {
        let path = dir.path().join(format!("index-{evidence}.sqlite"));
        {
            // A version 7 database, with or without uptime evidence.
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for migration in &schema::MIGRATIONS[..7] {
                tx.execute_batch(migration).unwrap();
            }
            tx.pragma_update(None, "user_version", 7).unwrap();
            tx.execute(
                "INSERT INTO providers (peer_id, first_seen, offer_seq, uptime_written_at) \
                 VALUES ('a', 1000, 1, ?1), ('b', 2000, 1, ?1)",
                [evidence.then_some(3000)],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        drop(Store::open(&path).unwrap());
        let runs = node_runs(&path);
        match evidence {
            // From the first provider stored to the upgrade.
            true => {
                assert_eq!(runs.len(), 1, "{runs:?}");
                assert_eq!(runs[0].0, 1000);
                assert!(runs[0].1 >= unix_now() as i64 - 60, "{runs:?}");
            }
            false => assert_eq!(runs, []),
        }
    }
}

/// `conflict_until` of each offer, by id.
/// Writes `offer` as the first release stored it, with `seq` and `num_gpus` as given.
fn insert_version_1_offer(conn: &Connection, offer: &Verified<Offer>, seq: i64, num_gpus: i64) {
    conn.execute(
        "INSERT INTO offers VALUES (?1, ?2, ?3, ?7, ?4, ?5, 'NVIDIA GeForce RTX 4090', \
         ' nvidia geforce rtx 4090 ', ?8, 25757, 100, 360000, 0, 'eu-west', 12400, \
         '12.4', '550.54.14', '[]', 1000, ?6)",
        rusqlite::params![
            OfferId::of(&offer.signer).to_string(),
            offer.signer.to_string(),
            format!("{:#x}", offer.body.payout),
            offer.body.issued_at as i64,
            offer.body.expires_at as i64,
            serde_json::to_string(&offer.envelope).unwrap(),
            seq,
            num_gpus,
        ],
    )
    .unwrap();
}

fn conflict_until(path: &Path) -> std::collections::BTreeMap<String, i64> {
    let conn = Connection::open(path).unwrap();
    let mut statement = conn.prepare("SELECT id, conflict_until FROM offers").unwrap();
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn conflicts_are_kept_when_offers_are_replaced_expire_or_are_pruned() {
    let (store, dir) = testing::store();
    let path = dir.path().join("index.sqlite");
    let (honest, copycat, third) = (Provider::new(), Provider::new(), Provider::new());
    let now = unix_now();
    let original = honest.offer(|o| o.gpus = gpus(o, 2));
    let (uuid, honest_expires) = (original.body.gpus[1].uuid.clone(), original.body.expires_at);
    store.upsert_offer(original, now).await.unwrap();
    let copy = |seq, ttl: u64| {
        let uuid = uuid.clone();
        copycat.offer(move |o| {
            o.seq = seq;
            o.gpus[0].uuid = uuid.to_uppercase();
            o.expires_at = o.issued_at + ttl;
        })
    };
    let first_copy = copy(1, 300);
    let copy_expires = first_copy.body.expires_at;
    store.upsert_offer(first_copy, now).await.unwrap();
    let until = conflict_until(&path);
    assert_eq!(until[&honest.id().to_string()], copy_expires as i64);
    assert_eq!(until[&copycat.id().to_string()], honest_expires as i64);

    // A third claimant: each offer's conflict lasts as long as the longest of the others.
    let third_offer = third.offer(|o| {
        o.gpus[0].uuid = uuid.clone();
        o.expires_at = o.issued_at + 100;
    });
    let third_expires = third_offer.body.expires_at;
    store.upsert_offer(third_offer, now).await.unwrap();
    let until = conflict_until(&path);
    assert_eq!(until[&honest.id().to_string()], copy_expires as i64);
    assert_eq!(until[&third.id().to_string()], honest_expires as i64);
    let flagged = |at| {
        let store = store.clone();
        async move {
            let search = Search { include_conflicts: true, ..all("", "dph") };
            let mut found: Vec<_> = store
                .search(search, at)
                .await
                .unwrap()
                .offers
                .into_iter()
                .map(|o| (o.id.to_string(), o.conflicts))
                .collect();
            found.sort();
            found
        }
    };
    let sorted = |mut v: Vec<(String, bool)>| {
        v.sort();
        v
    };
    // Once the third offer expired, the other two still conflict with each other...
    assert_eq!(
        flagged(third_expires).await,
        sorted(vec![(honest.id().to_string(), true), (copycat.id().to_string(), true)])
    );
    // ...and once the copy expired too, the honest offer is clear.
    assert_eq!(flagged(copy_expires).await, [(honest.id().to_string(), false)]);

    // Replaced by an offer without the disputed GPU, the copy clears the others at once,
    // not only those it conflicted with through its new GPUs.
    store.upsert_offer(copycat.offer(|o| o.seq = 2), now).await.unwrap();
    let until = conflict_until(&path);
    assert_eq!(until[&copycat.id().to_string()], 0);
    assert_eq!(until[&honest.id().to_string()], third_expires as i64);
    assert_eq!(until[&third.id().to_string()], honest_expires as i64);

    // Pruning the expired third offer takes its conflict with it, even for a search
    // at a time when it was still live.
    assert_eq!(store.prune_expired(third_expires).await.unwrap(), 1);
    assert!(conflict_until(&path).values().all(|&until| until == 0));
    assert_eq!(
        flagged(now).await,
        sorted(vec![(honest.id().to_string(), false), (copycat.id().to_string(), false)])
    );
    assert!(!store.get_offer(honest.id(), now).await.unwrap().unwrap().summary.conflicts);

    // A replacement that claims the GPU again conflicts again.
    store.upsert_offer(copy(3, 300), now).await.unwrap();
    assert_eq!(search(&store, "", "dph").await.len(), 0);
    assert!(store.get_offer(honest.id(), now).await.unwrap().unwrap().summary.conflicts);
}

#[tokio::test]
async fn searches_follow_every_write_in_every_order() {
    let (store, _dir) = testing::store();
    let prices = |offers: Vec<OfferSummary>| {
        offers.into_iter().map(|o| o.price_per_second).collect::<Vec<_>>()
    };
    let providers: Vec<_> = (0..3).map(|_| Provider::new()).collect();
    for (provider, price) in providers.iter().zip([20, 30, 40]) {
        let offer = provider.offer(|o| o.price_per_second = price);
        store.upsert_offer(offer, unix_now()).await.unwrap();
    }
    assert_eq!(prices(search(&store, "", "dph").await), [20, 30, 40]);
    assert_eq!(prices(search(&store, "", "dph-").await), [40, 30, 20]);
    assert!(search(&store, "gpu_ram>=48", "dph").await.is_empty());
    // A new cheapest offer, a replacement that moves to the end, one of another model.
    store
        .upsert_offer(Provider::new().offer(|o| o.price_per_second = 10), unix_now())
        .await
        .unwrap();
    let moved = providers[0].offer(|o| {
        o.seq = 2;
        o.price_per_second = 50;
    });
    store.upsert_offer(moved, unix_now()).await.unwrap();
    let other = Provider::new().offer(|o| {
        o.price_per_second = 5;
        for gpu in &mut o.gpus {
            gpu.name = "NVIDIA L40S".into();
            gpu.memory_bytes = 48_305_799_168;
        }
    });
    store.upsert_offer(other, unix_now()).await.unwrap();
    assert_eq!(prices(search(&store, "", "dph").await), [5, 10, 30, 40, 50]);
    assert_eq!(prices(search(&store, "gpu_name=rtx_4090", "dph-").await), [50, 40, 30, 10]);
    assert_eq!(prices(search(&store, "gpu_ram>=48", "dph").await), [5]);
    // Pruned offers leave every order.
    let later = unix_now() + 3_600;
    assert_eq!(store.prune_expired(later).await.unwrap(), 5);
    assert!(store.search(all("", "dph"), unix_now()).await.unwrap().offers.is_empty());
}

#[tokio::test]
async fn the_search_index_is_rebuilt_from_the_database_on_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    let (a, b, c) = (Provider::new(), Provider::new(), Provider::new());
    let shared = b.offer(|_| {}).body.gpus[0].uuid.clone();
    let expected = {
        let store = Store::open(&path).unwrap();
        store.upsert_offer(a.offer(|o| o.price_per_second = 3), unix_now()).await.unwrap();
        store.upsert_offer(b.offer(|o| o.price_per_second = 2), unix_now()).await.unwrap();
        let rival = c.offer(|o| {
            o.price_per_second = 1;
            o.gpus[0].uuid = shared.clone();
        });
        store.upsert_offer(rival, unix_now()).await.unwrap();
        let all = Search { include_conflicts: true, ..all("", "dph") };
        let expected = store.search(all, unix_now()).await.unwrap().offers;
        assert_eq!(expected.iter().filter(|o| o.conflicts).count(), 2);
        expected
    };
    let store = Store::open(&path).unwrap();
    let all = Search { include_conflicts: true, ..all("", "dph") };
    assert_eq!(store.search(all, unix_now()).await.unwrap().offers, expected);
    assert_eq!(search(&store, "", "dph").await, expected[2..]);
}

#[tokio::test]
async fn migrating_to_version_4_flags_existing_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    let (a, b) = (Provider::new(), Provider::new());
    let first = a.offer(|_| {});
    let second = b.offer(|o| o.gpus[0].uuid = first.body.gpus[0].uuid.clone());
    {
        // Version 1 rows; migration 2 reads the GPUs from the envelopes.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for offer in [&first, &second] {
            insert_version_1_offer(&conn, offer, 1, 1);
        }
    }
    let store = Store::open(&path).unwrap();
    assert!(search(&store, "", "dph").await.is_empty());
    assert_eq!(search(&store, "conflicts=true", "dph").await.len(), 2);
    let until = conflict_until(&path);
    assert_eq!(until[&a.id().to_string()], second.body.expires_at as i64);
    assert_eq!(until[&b.id().to_string()], first.body.expires_at as i64);
}

#[test]
fn unknown_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for version in [99, -1] {
        let path = dir.path().join(format!("offers{version}.sqlite"));
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
        drop(conn);
        match Store::open(&path) {
            Err(StoreError::UnknownSchema { found, supported: 11 }) => {
                assert_eq!(found, version)
            }
            other => panic!("version {version}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn numbers_beyond_i64_are_refused() {
    let (store, _dir) = testing::store();
    let offer = Provider::new().offer(|o| o.seq = u64::MAX);
    assert!(matches!(
        store.upsert_offer(offer, unix_now()).await,
        Err(StoreError::OutOfRange { field: "seq", .. })
    ));
}

#[tokio::test]
async fn a_closed_store_says_so() {
    let store = Store::closed();
    assert!(matches!(store.prune_expired(0).await, Err(StoreError::Closed)));
    assert!(matches!(store.count_offers(0).await, Err(StoreError::Open { .. })));
}

#[tokio::test]
async fn an_announced_maintenance_window_is_not_listed_time() {
    use gpuflow_protocol::{GpuHealth, Heartbeat, Maintenance, SignedEnvelope};
    let (store, _dir) = testing::store();
    let params = crate::reliability::params(60, 60, 30);
    let now = unix_now() / 60 * 60;
    let base = now - 3_600;
    store.mark_alive(base - 600, now).await.unwrap();
    let heartbeat = |provider: &Provider, seq: u64, at: u64| {
        let body = Heartbeat {
            seq,
            issued_at: at,
            gpus: vec![GpuHealth {
                uuid: "GPU-x".into(),
                temperature_c: 50,
                utilization_pct: 0,
                memory_used_bytes: 0,
                ecc_errors: None,
            }],
            active_rentals: 0,
            listen_addrs: Vec::new(),
            maintenance: Some(Maintenance { from: base + 600, until: base + 1_800 }),
        };
        SignedEnvelope::seal(&provider.identity, &body).open::<Heartbeat>().unwrap()
    };
    // Both listed for two hours from `base`; one announces the window ahead of it, the
    // other only once it began.
    let (ahead, late) = (Provider::new(), Provider::new());
    for provider in [&ahead, &late] {
        let offer = provider.offer(|o| {
            o.issued_at = base;
            o.expires_at = base + 7_200;
        });
        store.upsert_offer(offer, base).await.unwrap();
    }
    store.upsert_heartbeat(heartbeat(&ahead, 1, base), base).await.unwrap();
    store.upsert_heartbeat(heartbeat(&late, 1, base + 1_200), base + 1_200).await.unwrap();

    let listed = |peer: String| {
        let store = store.clone();
        async move {
            let (window, _) = store.evidence(params, peer, now).await.unwrap().unwrap();
            move |at: u64| window.listed.contains((at - window.from) / 60)
        }
    };
    let ahead = listed(ahead.identity.peer_id().to_string()).await;
    assert!(ahead(base) && ahead(base + 540), "listed before the window");
    assert!(!ahead(base + 600) && !ahead(base + 1_740), "not listed during it");
    assert!(ahead(base + 1_800), "listed again after it");
    let late = listed(late.identity.peer_id().to_string()).await;
    assert!(late(base + 600) && late(base + 1_140), "the part before the announcement counts");
    assert!(!late(base + 1_200) && !late(base + 1_740), "the rest is excused");
}
