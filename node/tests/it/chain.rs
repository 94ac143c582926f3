//! The chain watcher against a real anvil: rentals are indexed only once confirmed, a
//! reorg made with `evm_snapshot`/`evm_revert` is rolled back, and a restarted node resumes
//! from its cursor.

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use gpuflow_devnet::{ChainOptions, LocalChain};
use gpuflow_escrow::{Escrow, GpuEscrow};
use gpuflow_node::ChainConfig;
use gpuflow_protocol::{QuoteTerms, api, unix_now};

use crate::support::{TestNode, eventually, try_get_json};

const RATE: u128 = 1_000;

/// Anvil with a deployed escrow, a funded renter and a provider that signs quotes.
pub(crate) struct Chain {
    pub(crate) local: LocalChain,
    pub(crate) escrow: Address,
    pub(crate) deployed_at: u64,
    renter: PrivateKeySigner,
    /// The provider's payout key.
    pub(crate) provider: PrivateKeySigner,
    renter_escrow: Escrow,
    nonce: u64,
}

impl Chain {
    pub(crate) async fn start() -> Self {
        let local = LocalChain::start(&ChainOptions {
            anvil: gpuflow_devnet::anvil_bin(),
            block_time: None,
            fee_bps: 1000,
            dispute_window: 60,
            attesters: 0,
            attester_threshold: 1,
            renter_funds: U256::from(10u128.pow(12)),
        })
        .await
        .expect("anvil starts with the contracts deployed");
        let (escrow, deployed_at) = (local.deployment.escrow, local.deployment.block);
        let (renter, provider) = (local.renter.clone(), local.provider.clone());
        let chain = gpuflow_escrow::connect(&local.rpc_url(), Some(renter.clone())).unwrap();
        let renter_escrow = Escrow::new(chain, escrow).await.unwrap();
        Self { local, escrow, deployed_at, renter, provider, renter_escrow, nonce: 0 }
    }

    fn rpc(&self) -> &DynProvider {
        self.renter_escrow.provider()
    }

    fn config(&self, from_block: u64) -> ChainConfig {
        ChainConfig {
            rpc_url: self.local.rpc_url(),
            escrow: self.escrow,
            from_block,
            confirmations: 0,
            poll_interval: Duration::from_millis(50),
        }
    }

    /// Opens a rental of `seconds` on a fresh provider-signed quote; returns its id.
    async fn open(&mut self, seconds: u64) -> u64 {
        self.open_machine(B256::ZERO, seconds).await
    }

    /// Opens a rental of `seconds` of the machine `offer_id` names; returns its id.
    pub(crate) async fn open_machine(&mut self, offer_id: B256, seconds: u64) -> u64 {
        self.nonce += 1;
        let terms = QuoteTerms {
            provider: self.provider.address(),
            renter: self.renter.address(),
            rate_per_second: RATE,
            max_duration: 10 * seconds,
            deadline: unix_now() + 3600,
            offer_id,
            nonce: U256::from(self.nonce),
        };
        let domain = self.renter_escrow.domain().await.unwrap();
        let quote = gpuflow_escrow::sign_quote(&self.provider, terms, &domain).unwrap();
        self.renter_escrow.open(&self.renter, &quote, seconds).await.unwrap().rental_id
    }

    async fn snapshot(&self) -> U256 {
        self.rpc().raw_request("evm_snapshot".into(), ()).await.unwrap()
    }

    /// Reverts to `snapshot`, with a fresh connection: alloy waits for receipts by watching
    /// block numbers rise, and after a revert they repeat.
    async fn revert(&mut self, snapshot: U256) {
        let reverted: bool =
            self.rpc().raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
        assert!(reverted);
        let chain =
            gpuflow_escrow::connect(&self.local.rpc_url(), Some(self.renter.clone())).unwrap();
        self.renter_escrow = Escrow::new(chain, self.escrow).await.unwrap();
    }

    async fn mine(&self) {
        let _: serde_json::Value = self.rpc().raw_request("evm_mine".into(), ()).await.unwrap();
    }
}

async fn rental(node: &TestNode, id: u64) -> Option<api::RentalDetail> {
    try_get_json(&format!("{}/v1/rentals/{id}", node.url)).await
}

/// Waits until rental `id` as served satisfies `ready`.
async fn rental_where(
    node: &TestNode,
    id: u64,
    what: &str,
    ready: impl Fn(&api::RentalDetail) -> bool,
) -> api::RentalDetail {
    eventually(what, || async { rental(node, id).await.filter(|r| ready(r)) }).await
}

#[tokio::test]
async fn the_watcher_indexes_rentals_rolls_back_reorgs_and_resumes() {
    let mut chain = Chain::start().await;
    let config = chain.config(chain.deployed_at);
    let node = TestNode::start_with(vec![], |c| c.chain = Some(config)).await;

    let first = chain.open(600).await;
    let opened = rental_where(&node, first, "the opened rental", |_| true).await;
    assert_eq!(opened.renter, format!("{:#x}", chain.renter.address()));
    assert_eq!(opened.provider, format!("{:#x}", chain.provider.address()));
    assert_eq!(opened.rate_per_second, RATE.to_string());
    assert_eq!(opened.end - opened.start, 600);
    assert_eq!(opened.deposit, (RATE * 600).to_string());
    assert_eq!(opened.stopped_at, None);

    // A branch that will be orphaned: the first rental stopped, a second one opened.
    let snapshot = chain.snapshot().await;
    chain.renter_escrow.stop(first).await.unwrap();
    let orphan = chain.open(300).await;
    rental_where(&node, first, "the stop", |r| r.stopped_at.is_some()).await;
    rental_where(&node, orphan, "the rental on the doomed branch", |_| true).await;

    // The chain forks below both: the first rental is extended instead, and the new
    // branch grows past the old one's height.
    chain.revert(snapshot).await;
    chain.renter_escrow.extend(&chain.renter, first, 100).await.unwrap();
    for _ in 0..3 {
        chain.mine().await;
    }
    let extended = rental_where(&node, first, "the reorg to be rolled back", |r| {
        r.stopped_at.is_none() && r.end == opened.end + 100
    })
    .await;
    assert_eq!(extended.refund, "0");
    assert_eq!(extended.deposit, (RATE * 700).to_string());
    assert!(rental(&node, orphan).await.is_none(), "the orphaned rental is gone");
    assert!(node.metric("gpuflow_chain_reorgs_total").await >= 1);
    let unknown = reqwest::get(format!("{}/v1/rentals/{orphan}", node.url)).await.unwrap();
    assert_eq!(unknown.status(), reqwest::StatusCode::NOT_FOUND);

    // Restarted with a start block past everything to come, the node must resume from its
    // cursor to see the next rental.
    let dir = node._dir;
    node.node.shutdown().await.unwrap();
    let head = chain.rpc().get_block_number().await.unwrap();
    let config = chain.config(head + 1_000_000);
    let data_dir = dir.path().to_owned();
    let node = TestNode::start_with(vec![], |c| {
        c.data_dir = data_dir;
        c.chain = Some(config);
    })
    .await;
    assert_eq!(rental(&node, first).await, Some(extended), "served from the index at once");
    let next = chain.open(60).await;
    let reopened = rental_where(&node, next, "a rental after the restart", |_| true).await;
    assert_eq!(reopened.deposit, (RATE * 60).to_string());
    drop(dir);
}

/// Waits until the watcher has caught up with block `head` (or a later one), and returns
/// the first block it has not indexed.
async fn caught_up_with(node: &TestNode, head: u64) -> u64 {
    eventually(&format!("the watcher to catch up with block {head}"), || async {
        (node.metric("gpuflow_chain_head").await >= head).then_some(())
    })
    .await;
    node.metric("gpuflow_chain_next_block").await
}

#[tokio::test]
async fn a_rental_is_served_only_after_its_confirmations() {
    let mut chain = Chain::start().await;
    let config = ChainConfig { confirmations: 2, ..chain.config(chain.deployed_at) };
    let node = TestNode::start_with(vec![], |c| c.chain = Some(config)).await;
    // Two blocks first, so that every block confirmed below is one the watcher reads.
    chain.mine().await;
    chain.mine().await;
    let id = chain.open(600).await;
    let opened_in = chain.rpc().get_block_number().await.unwrap();
    for on_top in 0..2 {
        // Caught up with this head, the watcher has indexed the blocks 2 below it, and no
        // more: not the rental's.
        let next = caught_up_with(&node, opened_in + on_top).await;
        assert_eq!(next, opened_in + on_top - 1, "the first block not indexed");
        assert_eq!(rental(&node, id).await, None, "served with {on_top} confirmations");
        chain.mine().await;
    }
    caught_up_with(&node, opened_in + 2).await;
    let confirmed = rental(&node, id).await.expect("served with 2 confirmations");
    assert_eq!(confirmed.deposit, (RATE * 600).to_string());
}

#[tokio::test]
async fn a_refused_rental_is_served_with_its_refund_and_nothing_owed() {
    let mut chain = Chain::start().await;
    let config = chain.config(chain.deployed_at);
    let node = TestNode::start_with(vec![], |c| c.chain = Some(config)).await;
    let id = chain.open(600).await;
    rental_where(&node, id, "the opened rental", |_| true).await;
    let url = format!("{}/v1/rentals/{id}", node.url);
    let json: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert!(json.get("refused").is_none(), "a rental not refused is served as before: {json}");

    // The digest signed in Rust is the one the contract checks.
    let domain = chain.renter_escrow.domain().await.unwrap();
    let contract = GpuEscrow::new(chain.escrow, chain.rpc().clone());
    let on_chain = contract.hashRefusal(U256::from(id)).call().await.unwrap();
    assert_eq!(on_chain, gpuflow_escrow::refusal_hash(id, &domain));

    let signature = gpuflow_escrow::sign_refusal(&chain.provider, id, &domain).unwrap();
    assert_eq!(
        gpuflow_escrow::refusal_signer(id, &signature, &domain),
        Some(chain.provider.address())
    );
    let before = chain.renter_escrow.balance_of(chain.renter.address()).await.unwrap();
    let refused = chain.renter_escrow.refuse(id, signature.clone()).await.unwrap();
    assert_eq!((refused.rental_id, refused.renter), (id, chain.renter.address()));
    assert_eq!(refused.refund, U256::from(RATE * 600));
    let after = chain.renter_escrow.balance_of(chain.renter.address()).await.unwrap();
    assert_eq!(after - before, refused.refund, "the renter got the whole deposit back");

    let history = chain.renter_escrow.history(id).await.unwrap();
    assert_eq!(history.refused, Some(U256::from(RATE * 600)));
    assert_eq!((history.refund, history.provider_paid), (None, U256::ZERO));
    let head = chain.rpc().get_block_number().await.unwrap();
    let events = chain.renter_escrow.events(chain.deployed_at, head).await.unwrap();
    assert!(events.iter().any(|(_, e)| matches!(
        e,
        gpuflow_escrow::EscrowEvent::Refused(r) if r.rentalId == U256::from(id)
    )));
    assert_eq!(contract.withdrawable(U256::from(id)).call().await.unwrap(), U256::ZERO);

    let served = rental_where(&node, id, "the refusal", |r| r.refused.is_some()).await;
    assert_eq!(served.refused, Some((RATE * 600).to_string()));
    assert_eq!((served.withdrawn.as_str(), served.refund.as_str()), ("0", "0"));
    let json: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(json["refused"], serde_json::json!((RATE * 600).to_string()));

    // A refusal works once; the second is explained.
    let again = chain.renter_escrow.refuse(id, signature).await.unwrap_err().to_string();
    assert!(again.contains("nothing left to refund"), "{again}");
}

#[tokio::test]
async fn without_a_chain_rentals_answer_501() {
    let node = TestNode::start(vec![]).await;
    let response = reqwest::get(format!("{}/v1/rentals/1", node.url)).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NOT_IMPLEMENTED);
}
