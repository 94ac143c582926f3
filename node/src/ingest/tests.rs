use super::*;
use crate::testing::Provider;

#[test]
fn intrinsic_faults_are_rejected_and_local_ones_ignored() {
    let provider = Provider::new();
    let now = unix_now();
    let live = provider.offer(|_| {}).envelope.to_bytes();
    assert!(check_offer(&live, now).is_ok());

    let forged = String::from_utf8(live.clone()).unwrap().replace("\"100\"", "\"1\"");
    assert_eq!(check_offer(forged.as_bytes(), now).unwrap_err(), Refusal::reject("bad_signature"));
    let huge = vec![b' '; gpuflow_protocol::MAX_MESSAGE_SIZE + 1];
    assert_eq!(check_offer(&huge, now).unwrap_err(), Refusal::reject("too_large"));
    assert_eq!(check_offer(b"{", now).unwrap_err(), Refusal::reject("malformed"));
    let heartbeat = provider.heartbeat(1);
    // Times relative to the heartbeat's own, which may be a second after `now`.
    let issued = heartbeat.body.issued_at;
    let heartbeat = heartbeat.envelope.to_bytes();
    assert_eq!(check_offer(&heartbeat, now).unwrap_err(), Refusal::reject("wrong_kind"));

    let expired = provider.offer(|o| o.expires_at = o.issued_at + 1).envelope.to_bytes();
    assert_eq!(check_offer(&expired, now).unwrap_err(), Refusal::ignore("expired"));
    let future = provider
        .offer(|o| {
            o.issued_at = now + MAX_CLOCK_SKEW + 5;
            o.expires_at = o.issued_at + 60;
        })
        .envelope
        .to_bytes();
    assert_eq!(check_offer(&future, now).unwrap_err(), Refusal::ignore("from_the_future"));

    assert!(check_heartbeat(&heartbeat, issued).is_ok());
    assert!(check_heartbeat(&heartbeat, issued + MAX_HEARTBEAT_AGE).is_ok());
    assert_eq!(
        check_heartbeat(&heartbeat, issued + MAX_HEARTBEAT_AGE + 1).unwrap_err(),
        Refusal::ignore("expired")
    );
    assert!(check_heartbeat(&heartbeat, issued - MAX_CLOCK_SKEW).is_ok());
    assert_eq!(
        check_heartbeat(&heartbeat, issued - MAX_CLOCK_SKEW - 1).unwrap_err(),
        Refusal::ignore("from_the_future")
    );
    let mut big = heartbeat.clone();
    big.resize(gpuflow_protocol::MAX_HEARTBEAT_SIZE + 1, b' ');
    assert_eq!(check_heartbeat(&big, now).unwrap_err(), Refusal::reject("too_large"));
}

#[test]
fn store_outcomes_map_to_verdicts() {
    assert_eq!(offer_stored(Ok(Upsert::Inserted)), Ok(()));
    assert_eq!(offer_stored(Ok(Upsert::Replaced)), Ok(()));
    assert_eq!(offer_stored(Ok(Upsert::Stale)), Err(Refusal::ignore("stale")));
    assert_eq!(
        offer_stored(Err(StoreError::OutOfRange { field: "seq", value: u128::MAX })),
        Err(Refusal::reject("out_of_range"))
    );
    assert_eq!(offer_stored(Err(StoreError::Closed)), Err(Refusal::ignore("store_error")));
    assert_eq!(
        heartbeat_stored(Ok(HeartbeatUpsert::UnknownProvider)),
        Err(Refusal::ignore("unknown_provider"))
    );
}

#[test]
fn token_buckets_limit_each_peer_and_refill() {
    let mut limiter = RateLimiter::new(RateLimit { per_second: 10, burst: 3 });
    let (a, b) = (PeerId::random(), PeerId::random());
    let start = Instant::now();
    assert!((0..3).all(|_| limiter.allow(a, start)));
    assert!(!limiter.allow(a, start), "the burst is spent");
    assert!(limiter.allow(b, start), "peers have buckets of their own");
    // 10 per second: one token every 100 ms.
    assert!(!limiter.allow(a, start + Duration::from_millis(50)));
    assert!(limiter.allow(a, start + Duration::from_millis(160)));
    assert!(!limiter.allow(a, start + Duration::from_millis(160)));

    limiter.forget_idle(start + Duration::from_millis(200));
    assert_eq!(limiter.tracked(), 1, "b's bucket is full again, a's is not");
    limiter.forget_idle(start + Duration::from_secs(1));
    assert_eq!(limiter.tracked(), 0);
}

#[tokio::test]
async fn a_rented_machine_without_an_offer_is_accepted_and_a_stranger_ignored() {
    let (store, _dir) = crate::testing::store();
    let now = unix_now();
    let verdict = async |provider: &Provider, seq: u64| {
        let heartbeat = provider.heartbeat(seq);
        let checked = check_heartbeat(&heartbeat.envelope.to_bytes(), now).unwrap();
        heartbeat_stored(store.queue_heartbeat(checked, now).await.await)
    };
    let (rented, stranger) = (Provider::new(), Provider::new());
    // The machine's only offer expired before this node joined: it is rented out.
    crate::testing::index_rental(&store, &rented, 1, 1, (now - 60, now + 3_600)).await;
    assert_eq!(verdict(&rented, 1).await, Ok(()));
    assert_eq!(verdict(&rented, 1).await, Err(Refusal::ignore("stale")));
    assert_eq!(verdict(&stranger, 1).await, Err(Refusal::ignore("unknown_provider")));
}

#[test]
fn a_forged_heartbeat_among_many_is_rejected_alone() {
    let now = unix_now();
    let providers: Vec<Provider> = (0..8).map(|_| Provider::new()).collect();
    let mut messages: Vec<(Topic, Vec<u8>)> =
        providers.iter().map(|p| (Topic::Heartbeats, p.heartbeat(1).envelope.to_bytes())).collect();
    // Signed by one provider, its body changed after: the signature no longer covers it.
    let forged = String::from_utf8(providers[3].heartbeat(1).envelope.to_bytes()).unwrap();
    assert!(forged.contains("\"seq\":1"), "{forged}");
    messages[3].1 = forged.replacen("\"seq\":1", "\"seq\":2", 1).into_bytes();
    // An offer among the heartbeats is checked with the offers, in its place.
    messages.insert(5, (Topic::Offers, providers[0].offer(|_| {}).envelope.to_bytes()));
    let verdicts: Vec<Result<&'static str, Refusal>> = check_many(&messages, now)
        .into_iter()
        .map(|checked| {
            checked.map(|c| match c {
                Checked::Offer(_) => "offer",
                Checked::Heartbeat(_) => "heartbeat",
            })
        })
        .collect();
    let mut expected = vec![Ok("heartbeat"); 9];
    expected[3] = Err(Refusal::reject("bad_signature"));
    expected[5] = Ok("offer");
    assert_eq!(verdicts, expected);
}
