//! Paying the escrow in a token without EIP-2612 permit: the renter's wallet approves the
//! deposit, then opens, and the escrow ends up with exactly the deposit and no allowance
//! left over.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use gpuflow_devnet::deploy::{DeployParams, deploy};
use gpuflow_escrow::Escrow;
use gpuflow_protocol::{OfferId, QuoteTerms};

use super::{FEE_BPS, RATE, start};

alloy::sol! {
    #[sol(rpc)]
    interface PlainUSDC {
        function mint(address to, uint256 amount) external;
        function allowance(address owner, address spender) external view returns (uint256);
        function balanceOf(address account) external view returns (uint256);
    }
}

/// Anvil's sixth well-known development key: funded with ETH, unused by the devnet.
const WALLET_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

/// Deploys `contracts/test/mocks/PlainUSDC.sol` from its forge artifact.
async fn deploy_plain_token(provider: &alloy::providers::DynProvider) -> Address {
    let artifact =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/out/PlainUSDC.sol/PlainUSDC.json");
    let text = std::fs::read_to_string(artifact)
        .unwrap_or_else(|e| panic!("{artifact}: {e}; run `make contracts` first"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let code: Bytes = json["bytecode"]["object"].as_str().unwrap().parse().unwrap();
    let deployment = TransactionRequest::default().with_deploy_code(code);
    let receipt = provider.send_transaction(deployment).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    receipt.contract_address.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_permit_is_approved_then_the_rental_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, _) = start(dir.path()).await;
    let wallet: PrivateKeySigner = WALLET_KEY.parse().unwrap();
    let chain = gpuflow_escrow::connect(&devnet.rpc_url, Some(wallet.clone())).unwrap();

    // An escrow of its own, paid in the plain token.
    let token = deploy_plain_token(&chain).await;
    let params = DeployParams {
        token: Some(token),
        treasury: wallet.address(),
        fee_bps: FEE_BPS as u16,
        dispute_window: 3600,
        owner: wallet.address(),
        attesters: Vec::new(),
        attester_threshold: 1,
    };
    let deployment = deploy(&chain, &params).await.unwrap();
    let plain = PlainUSDC::new(token, chain.clone());
    let funds = U256::from(10_000_000u64);
    plain.mint(wallet.address(), funds).send().await.unwrap().get_receipt().await.unwrap();
    let escrow = Escrow::new(chain.clone(), deployment.escrow).await.unwrap();

    // A quote from a provider, for one GPU of the devnet's offer, 60 s.
    let provider = PrivateKeySigner::random();
    let offer: OfferId = devnet.offer_id.parse().unwrap();
    let terms = QuoteTerms {
        provider: provider.address(),
        renter: wallet.address(),
        rate_per_second: u128::from(RATE),
        max_duration: 3600,
        deadline: gpuflow_protocol::unix_now() + 600,
        offer_id: QuoteTerms::machine(offer, 1),
        nonce: U256::from(1),
    };
    let quote =
        gpuflow_escrow::sign_quote(&provider, terms, &escrow.domain().await.unwrap()).unwrap();

    let sent_before = chain.get_transaction_count(wallet.address()).await.unwrap();
    let opened = escrow.open(&wallet, &quote, 60).await.unwrap();
    let sent = chain.get_transaction_count(wallet.address()).await.unwrap() - sent_before;
    assert_eq!(sent, 2, "an approval, then the open");
    let deposit = U256::from(RATE * 60);
    assert_eq!(opened.deposit, deposit);
    assert_eq!(plain.balanceOf(wallet.address()).call().await.unwrap(), funds - deposit);
    assert_eq!(plain.balanceOf(deployment.escrow).call().await.unwrap(), deposit);
    let left = plain.allowance(wallet.address(), deployment.escrow).call().await.unwrap();
    assert_eq!(left, U256::ZERO, "the approval covered the deposit exactly");
    let rental = escrow.rental(opened.rental_id).await.unwrap();
    assert_eq!((rental.renter, rental.provider), (wallet.address(), provider.address()));
    devnet.shutdown().await;
}
