//! The node challenges providers over real loopback swarms: each answers on the CPU, one
//! honestly, one with wrong rows, one claiming a GPU it is not; the node checks, signs and
//! serves each result, shows the latest with the provider, and counts every challenge, also
//! those refused or left unanswered, in its metrics.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use gpuflow_node::ChallengeConfig;
use gpuflow_p2p::{Multiaddr, Network, NetworkConfig, NetworkEvent};
use gpuflow_protocol::{
    SignedEnvelope, api,
    challenge::{
        Answer, Backend, ChallengeRequest, ChallengeResponse, ChallengeResult, Outcome, matrix,
    },
    testing::TestProvider,
};

use crate::support::{TestNode, WAIT, eventually, get_json, metric};

/// How a test provider answers.
#[derive(Clone)]
enum Behaviour {
    Honest,
    /// Commits to, and opens, products with one entry off in every row.
    WrongRows,
    /// Refuses every challenge.
    Refuses,
    /// Drops every challenge without an answer.
    Silent,
    /// Answers honestly, each challenge once the gate opens.
    Gated(Arc<Gate>),
}

/// Holds the challenges of gated providers until the test opens it, counting how many the
/// providers hold at once.
#[derive(Default)]
struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    held: AtomicUsize,
    most: AtomicUsize,
}

impl Gate {
    /// A challenge came: waits for the gate to open.
    async fn pass(&self) {
        let held = self.held.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(held, Ordering::SeqCst);
        // Fails only if the sender, which lives as long as `self`, is gone.
        let _ = self.open.subscribe().wait_for(|open| *open).await;
    }

    /// A challenge is over, as far as the provider is concerned (its opening is about to
    /// be sent). Counted before the answer, so that the node can never have started the
    /// next challenge while this one still counts.
    fn done(&self) {
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A provider that joined through `node`, answers challenges as `behaviour` says and
/// offers one GPU named `gpu_name` at its own address.
async fn provider(node: &TestNode, gpu_name: &str, behaviour: Behaviour) -> TestProvider {
    let provider = TestProvider::default();
    let node_peer = node.node.peer_id;
    let (network, mut events, event_loop) = gpuflow_p2p::new(NetworkConfig {
        identity: provider.identity.clone(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![node.addr()],
        subscribe_offers: false,
        serve_requests: true,
    })
    .unwrap();
    tokio::spawn(event_loop.run());
    let (mut listening, mut subscribed) = (None::<Multiaddr>, false);
    tokio::time::timeout(WAIT, async {
        while listening.is_none() || !subscribed {
            match events.recv().await.expect("the event loop runs") {
                NetworkEvent::Listening(addr) => listening = Some(addr),
                NetworkEvent::OffersSubscriber(peer) if peer == node_peer => subscribed = true,
                _ => {}
            }
        }
    })
    .await
    .expect("the provider listens and the node subscribes");
    let addr = format!("{}/p2p/{}", listening.unwrap(), network.peer_id());
    tokio::spawn(answer(network.clone(), events, provider.identity.clone(), behaviour));
    let offer = provider.offer(|offer| {
        offer.listen_addrs = vec![addr];
        offer.gpus[0].name = gpu_name.to_owned();
    });
    network.publish_offer(&offer).await.unwrap();
    provider
}

/// Answers every challenge request on `events`, on the CPU.
async fn answer(
    network: Network,
    mut events: tokio::sync::mpsc::Receiver<NetworkEvent>,
    identity: gpuflow_protocol::Identity,
    behaviour: Behaviour,
) {
    let mut answers: Vec<Answer> = Vec::new();
    while let Some(event) = events.recv().await {
        let NetworkEvent::ChallengeRequest { request, channel, .. } = event else { continue };
        let response = match (&behaviour, request) {
            (Behaviour::Silent, _) => continue,
            (Behaviour::Refuses, _) => {
                ChallengeResponse::Refused { reason: "another challenge is running".into() }
            }
            (_, ChallengeRequest::Challenge(challenge)) => {
                if let Behaviour::Gated(gate) = &behaviour {
                    gate.pass().await;
                }
                let n = challenge.n as usize;
                let answer = Answer::from_products(&challenge, Backend::Cpu, |p| {
                    let mut c = matrix::product(challenge.seed, p, n);
                    if let Behaviour::WrongRows = behaviour {
                        c.chunks_exact_mut(n).for_each(|row| row[3] += 1);
                    }
                    c
                });
                let envelope = SignedEnvelope::seal(&identity, &answer.commitment());
                answers.push(answer);
                ChallengeResponse::Commitment { envelope }
            }
            (_, ChallengeRequest::Open { seed, rows }) => {
                if let Behaviour::Gated(gate) = &behaviour {
                    gate.done();
                }
                let answer = answers.iter().find(|a| a.challenge().seed == seed).unwrap();
                let mut opening = answer.open(&rows).unwrap();
                if let Behaviour::WrongRows = behaviour {
                    // What was committed to.
                    opening.rows.iter_mut().for_each(|row| row.values[3] += 1);
                }
                ChallengeResponse::Opening { envelope: SignedEnvelope::seal(&identity, &opening) }
            }
        };
        network.respond_challenge(channel, response).await.unwrap();
    }
}

fn peer(provider: &TestProvider) -> String {
    provider.identity.peer_id().to_string()
}

/// The node's signed results for `provider`, once there is at least one, opened.
async fn results(node: &TestNode, provider: &TestProvider) -> Vec<ChallengeResult> {
    let url = format!("{}/v1/providers/{}/challenges", node.url, peer(provider));
    eventually("a challenge result", || async {
        let list: api::ChallengeList = get_json(&url).await;
        assert_eq!(list.node, node.node.peer_id.to_string());
        let opened: Vec<ChallengeResult> = list
            .challenges
            .into_iter()
            .map(|envelope| {
                let verified = envelope.open::<ChallengeResult>().expect("a valid signature");
                assert_eq!(verified.signer, node.node.peer_id, "signed by the node");
                verified.body
            })
            .collect();
        (!opened.is_empty()).then_some(opened)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_challenged_checked_and_the_signed_results_served() {
    let node = TestNode::start_with(Vec::new(), |config| {
        config.challenge = ChallengeConfig {
            per_provider: Duration::from_secs(3600),
            scan_interval: Duration::from_millis(100),
            n: 64,
            rounds: 2,
            rows: 4,
            parallel: 4,
            ..ChallengeConfig::default()
        };
    })
    .await;
    let honest = provider(&node, "Test GPU", Behaviour::Honest).await;
    let cheat = provider(&node, "Test GPU", Behaviour::WrongRows).await;
    // A CPU answering 64³ products never reaches half of an H200's 989 TFLOP/s, however
    // loaded the machine: the verdict does not hang on a timing.
    let pretender = provider(&node, "NVIDIA H200", Behaviour::Honest).await;
    let refuser = provider(&node, "Test GPU", Behaviour::Refuses).await;
    let silent = provider(&node, "Test GPU", Behaviour::Silent).await;

    let result = results(&node, &honest).await;
    assert_eq!(result.len(), 1, "one challenge per provider per hour: {result:?}");
    assert_eq!(result[0].outcome, Outcome::Unrated, "{}", result[0].reason);
    assert_eq!(result[0].provider, peer(&honest));
    assert!(result[0].proven_tflops > 0.0);
    assert_eq!(result[0].gpus, vec![honest.gpu_uuid()]);

    let result = results(&node, &cheat).await;
    assert_eq!(result[0].outcome, Outcome::WrongRow, "{}", result[0].reason);
    assert_eq!(result[0].proven_tflops, 0.0);

    let result = results(&node, &pretender).await;
    assert_eq!(result[0].outcome, Outcome::TooSlow, "{}", result[0].reason);
    assert_eq!(result[0].expected_tflops, Some(989.0));

    // Every challenge is counted by how it ended; only answered ones store a result, and
    // only their checks are timed.
    let challenges = |outcome: &str| {
        let line = format!("gpuflow_challenges_total{{outcome=\"{outcome}\"}}");
        let url = node.url.clone();
        async move { metric(&url, &line).await }
    };
    for outcome in ["refused", "unanswered"] {
        eventually(&format!("a challenge counted as {outcome}"), || async {
            (challenges(outcome).await > 0).then_some(())
        })
        .await;
    }
    for (outcome, count) in [
        ("unrated", 1),
        ("wrong_row", 1),
        ("too_slow", 1),
        ("refused", 1),
        ("unanswered", 1),
        ("passed", 0),
    ] {
        assert_eq!(challenges(outcome).await, count, "challenges that ended {outcome}");
    }
    assert_eq!(metric(&node.url, "gpuflow_challenge_check_seconds_count").await, 3);
    let url = format!("{}/v1/providers/{}/challenges", node.url, peer(&refuser));
    let list: api::ChallengeList = get_json(&url).await;
    assert!(list.challenges.is_empty(), "a refusal stores no result: {list:?}");

    // The provider's page shows the latest result, with its reason.
    let detail: api::ProviderDetail =
        get_json(&format!("{}/v1/providers/{}", node.url, peer(&cheat))).await;
    let latest = detail.challenge.expect("the latest challenge");
    assert!(!latest.outcome.ok());
    assert!(latest.reason.contains("Freivalds"), "{}", latest.reason);
    // Search knows the latest result of each: only the honest provider is unflagged, the
    // throughput is a field too.
    let search = |q: &str| {
        let url = format!("{}/v1/offers?q={q}&order=proven_tflops-", node.url);
        async move {
            let list: api::OfferList = get_json(&url).await;
            list.offers
        }
    };
    let ids = |offers: &[api::OfferSummary]| {
        let mut ids: Vec<String> = offers.iter().map(|o| o.id.clone()).collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let ok = search("challenge_ok=true").await;
    assert_eq!(ids(&ok), vec![honest.id().to_string()]);
    assert!(ok[0].proven_tflops.is_some_and(|t| t > 0.0), "{:?}", ok[0]);
    assert_eq!(ok[0].challenge_ok, Some(true));
    // So are the machines never proven, those that refused or did not answer among them.
    assert_eq!(
        ids(&search("challenge_ok=false").await),
        sorted(vec![
            cheat.id().to_string(),
            pretender.id().to_string(),
            refuser.id().to_string(),
            silent.id().to_string(),
        ])
    );
    // Every challenged machine has a throughput (the wrong answer's is 0), and none of these
    // CPUs reaches one TFLOP/s.
    assert_eq!(
        ids(&search("proven_tflops>=0").await),
        sorted(vec![honest.id().to_string(), cheat.id().to_string(), pretender.id().to_string()])
    );
    assert!(search("proven_tflops>1").await.is_empty());
    // Still one each: the scans since did not challenge anyone again, not even those that
    // refused or did not answer.
    assert_eq!(results(&node, &honest).await.len(), 1);
    for outcome in ["unrated", "refused", "unanswered"] {
        assert_eq!(challenges(outcome).await, 1, "challenges that ended {outcome}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_run_side_by_side_up_to_the_bound() {
    // The offers are stored first, by a node that challenges no one; restarted on the same
    // data, the node's first walk finds all four providers due at once.
    let first = TestNode::start_with(Vec::new(), |config| {
        config.challenge.per_provider = Duration::ZERO;
    })
    .await;
    let gate = Arc::new(Gate::default());
    let mut providers = Vec::new();
    for _ in 0..4 {
        providers.push(provider(&first, "Test GPU", Behaviour::Gated(gate.clone())).await);
    }
    eventually("the four offers to be stored", || async {
        (first.offer_ids().await.len() == 4).then_some(())
    })
    .await;
    let dir = first._dir;
    first.node.shutdown().await.unwrap();
    let data_dir = dir.path().to_owned();
    let node = TestNode::start_with(Vec::new(), |config| {
        config.data_dir = data_dir;
        config.challenge = ChallengeConfig {
            per_provider: Duration::from_secs(3600),
            // One walk, at the start: the gate holds back the rest of it.
            scan_interval: Duration::from_secs(3600),
            n: 64,
            rounds: 1,
            rows: 4,
            parallel: 2,
            ..ChallengeConfig::default()
        };
    })
    .await;

    // Two challenges run side by side: one at a time, the first would hold the walk for
    // the whole two minutes a node waits for an answer.
    eventually("two challenges held at once", || async {
        (gate.held.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    // And no more: the walk that found all four started two and waits for one to end.
    assert_eq!(node.metric("gpuflow_challenges_running").await, 2, "challenges running");
    assert_eq!(gate.held.load(Ordering::SeqCst), 2, "challenges held");
    gate.open.send_replace(true);
    for provider in &providers {
        let result = results(&node, provider).await;
        assert_eq!(result.len(), 1, "{result:?}");
        assert_eq!(result[0].outcome, Outcome::Unrated, "{}", result[0].reason);
    }
    assert_eq!(gate.most.load(Ordering::SeqCst), 2, "at most two challenges at once");
    eventually("every challenge to end", || async {
        (node.metric("gpuflow_challenges_running").await == 0).then_some(())
    })
    .await;
    drop(dir);
}
