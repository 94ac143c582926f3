//! `PROTOCOL.md` and `tests/vectors.json` against the code.
//!
//! Every test vector is rebuilt from fixed keys and fields with this crate's functions and
//! must equal, byte for byte, both `tests/vectors.json` and `PROTOCOL.md` (the `name = value`
//! lines of the fenced blocks after each `<!-- vectors -->` line). The vectors are then
//! checked again without the crate: the peer id layout, the offer id, the domain tags, the
//! EIP-191 and EIP-712 digests, and the gossip message id, which is the function given to
//! gossipsub in `crates/p2p/src/behaviour.rs` (`message_id_fn`: the first 20 bytes of the
//! SHA-256 of the data), written out here because this crate cannot depend on `gpuflow-p2p`.
//! The EIP-712 structs are declared here from the contract's type strings, which
//! `contracts/src/GpuEscrow.sol` must contain verbatim, for the same reason with
//! `gpuflow-escrow`.
//!
//! The table after `<!-- limits -->` is checked against the constants, or through the rule
//! that uses a constant where it is private, and the documented order of the envelope checks
//! against `SignedEnvelope::decode`.

use std::collections::BTreeMap;

use alloy::{
    hex,
    primitives::{Address, B256, Bytes, U256, aliases::U40, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};
use gpuflow_protocol::{
    Heartbeat, Identity, Launch, MAX_ACTIVE_RENTALS, MAX_ALLOWED_IMAGES, MAX_ENV, MAX_ESCROW_RATE,
    MAX_GPUS, MAX_HEARTBEAT_SIZE, MAX_MESSAGE_SIZE, MAX_OFFER_IMAGES, MAX_OFFER_TTL, MAX_PORTS,
    MAX_SYNC_PAGE, MAX_SYNC_RESPONSE_SIZE, MAX_TEMPERATURE_C, Message, Offer, OfferId,
    PROTOCOL_VERSION, QuoteTerms, RentalRequest, RentalResponse, Share, SignedEnvelope,
    SignedQuote, SyncRequest, SyncResponse, VolumeMount, WorkloadState, WorkloadStatus,
    logs_request_message, payout_binding_message, volumes_request_message,
};
use serde_json::json;
use sha2::{Digest, Sha256};

alloy::sol! {
    struct Quote {
        address provider;
        address renter;
        uint128 ratePerSecond;
        uint40 maxDuration;
        uint40 deadline;
        bytes32 offerId;
        uint256 nonce;
    }

    struct Refusal {
        uint256 rentalId;
    }

    struct Downtime {
        uint256 rentalId;
        uint40 from;
        uint40 to;
        uint40 downSeconds;
        uint40 deadline;
    }
}

const OFFER_DOMAIN_TAG: &[u8] = b"gpuflow/offer/1\n";
const HEARTBEAT_DOMAIN_TAG: &[u8] = b"gpuflow/heartbeat/1\n";
const CHAIN_ID: u64 = 31337;
const RENTAL_ID: u64 = 42;

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn vectors_json() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn identity() -> Identity {
    Identity::from_secret(std::array::from_fn(|i| i as u8))
}

fn payout_key() -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(0x11)).unwrap()
}

fn renter_key() -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(0x22)).unwrap()
}

fn escrow() -> Address {
    Address::repeat_byte(0xee)
}

fn domain() -> Eip712Domain {
    eip712_domain! {
        name: "GpuEscrow",
        version: "1",
        chain_id: CHAIN_ID,
        verifying_contract: escrow(),
    }
}

/// The offer of the vectors, built from its JSON fields so that it names only what the
/// document shows.
fn offer() -> Offer {
    let identity = identity();
    let peer = identity.peer_id();
    let proof = payout_key().sign_message_sync(payout_binding_message(&peer).as_bytes()).unwrap();
    let gpu = |n: u8| {
        json!({
            "name": "NVIDIA GeForce RTX 4090",
            "uuid": format!("GPU-00000000-0000-0000-0000-00000000000{n}"),
            "memory_bytes": 25_757_220_864u64,
            "pci_bus_id": format!("00000000:0{n}:00.0"),
            "compute_capability": "8.9",
            "driver_version": "550.54.14",
            "cuda_version": "12.4",
        })
    };
    serde_json::from_value(json!({
        "seq": 1_700_000_000_000u64,
        "issued_at": 1_700_000_000u64,
        "expires_at": 1_700_000_360u64,
        "chain_id": CHAIN_ID,
        "escrow": escrow(),
        "payout": payout_key().address(),
        "payout_proof": proof,
        "price_per_second": "200",
        "gpus": [gpu(1), gpu(2)],
        "verified": true,
        "region": "eu-west",
        "listen_addrs": [
            "/ip4/203.0.113.7/tcp/4001",
            format!("/ip4/203.0.113.7/udp/4001/quic-v1/p2p/{peer}"),
        ],
        "inet_down_mbps": 1000,
        "inet_up_mbps": 500,
        "disk_bytes": 2_000_000_000_000u64,
        "cpu_cores": 32,
        "cpu_ram_bytes": 128_000_000_000u64,
        "images": ["pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"],
        "volume_grace_secs": 86_400,
        "allowed_images": ["pytorch/pytorch:*", "ubuntu:22.04"],
    }))
    .unwrap()
}

/// The heartbeat of the vectors, built from its JSON fields (optional fields it does not
/// name stay absent).
fn heartbeat() -> Heartbeat {
    serde_json::from_value(json!({
        "seq": 1_700_000_015_000u64,
        "issued_at": 1_700_000_015u64,
        "gpus": [
            {
                "uuid": "GPU-00000000-0000-0000-0000-000000000001",
                "temperature_c": 61,
                "utilization_pct": 97,
                "memory_used_bytes": 20_401_094_656u64,
                "ecc_errors": 0,
            },
            {
                "uuid": "GPU-00000000-0000-0000-0000-000000000002",
                "temperature_c": 34,
                "utilization_pct": 0,
                "memory_used_bytes": 0,
            },
        ],
        "active_rentals": 1,
        "listen_addrs": ["/ip4/203.0.113.7/tcp/4001"],
    }))
    .unwrap()
}

fn quote_terms() -> QuoteTerms {
    QuoteTerms {
        provider: payout_key().address(),
        renter: renter_key().address(),
        rate_per_second: 100,
        max_duration: 86_400,
        deadline: 1_700_000_220,
        offer_id: QuoteTerms::machine(OfferId::of(&identity().peer_id()), 1),
        nonce: U256::from(7),
    }
}

fn sol_quote(terms: &QuoteTerms) -> Quote {
    Quote {
        provider: terms.provider,
        renter: terms.renter,
        ratePerSecond: terms.rate_per_second,
        maxDuration: U40::from(terms.max_duration),
        deadline: U40::from(terms.deadline),
        offerId: terms.offer_id,
        nonce: terms.nonce,
    }
}

fn downtime() -> Downtime {
    Downtime {
        rentalId: U256::from(RENTAL_ID),
        from: U40::from(1_700_003_600u64),
        to: U40::from(1_700_007_200u64),
        downSeconds: U40::from(600u64),
        deadline: U40::from(1_700_100_000u64),
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

fn message_id(data: &[u8]) -> String {
    hex::encode(&Sha256::digest(data)[..20])
}

/// Every vector, rebuilt from the code.
fn vectors() -> BTreeMap<String, String> {
    let identity = identity();
    let peer = identity.peer_id();
    let payout = payout_key();
    let renter = renter_key();
    let mut v = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        assert!(v.insert(name.to_owned(), value).is_none(), "{name} twice");
    };

    put("identity.seed_hex", hex::encode(std::array::from_fn::<u8, 32, _>(|i| i as u8)));
    put("identity.public_key_hex", hex::encode(identity.public_key()));
    put("identity.peer_id", peer.to_string());
    put("identity.peer_id_bytes_hex", hex::encode(peer.to_bytes()));
    put("identity.offer_id", OfferId::of(&peer).to_string());

    let binding = payout_binding_message(&peer);
    let proof = payout.sign_message_sync(binding.as_bytes()).unwrap();
    put("payout.private_key_hex", hex::encode(B256::repeat_byte(0x11)));
    put("payout.address", payout.address().to_string());
    put("payout.binding_message", binding);
    put("payout.binding_signature_hex", hex::encode(proof.as_bytes()));
    put("payout.binding_signature_json", to_json(&proof));

    let offer = SignedEnvelope::seal(&identity, &offer());
    let offer_bytes = offer.to_bytes();
    put("offer.domain_tag_hex", hex::encode(OFFER_DOMAIN_TAG));
    put("offer.body", offer.body.get().to_owned());
    put("offer.signature_hex", hex::encode(offer.signature));
    put("offer.message_id_hex", message_id(&offer_bytes));
    put("offer.envelope", text(offer_bytes));

    let heartbeat = SignedEnvelope::seal(&identity, &heartbeat());
    let heartbeat_bytes = heartbeat.to_bytes();
    put("heartbeat.domain_tag_hex", hex::encode(HEARTBEAT_DOMAIN_TAG));
    put("heartbeat.body", heartbeat.body.get().to_owned());
    put("heartbeat.signature_hex", hex::encode(heartbeat.signature));
    put("heartbeat.message_id_hex", message_id(&heartbeat_bytes));
    put("heartbeat.envelope", text(heartbeat_bytes));

    put("rental.renter_private_key_hex", hex::encode(B256::repeat_byte(0x22)));
    put("rental.renter_address", renter.address().to_string());
    put(
        "rental.quote_request",
        to_json(&RentalRequest::Quote {
            renter: renter.address(),
            duration: 3600,
            image: Some("pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime".into()),
            ssh_key: Some(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdwdWZsb3cgdGVzdCB2ZWN0b3Iga2V5IDAwMDA \
                 renter@laptop"
                    .into(),
            ),
            gpus: Some(1),
            launch: Launch {
                env: vec!["HF_HOME=/workspace/hf".into()],
                ports: vec![8888],
                cmd: Some("jupyter lab --ip=0.0.0.0".into()),
                volume: Some(VolumeMount::parse("data").unwrap()),
            },
        }),
    );
    put("rental.minimal_quote_request", to_json(&minimal_quote_request()));
    put("rental.status_request", to_json(&RentalRequest::Status { rental_id: 0 }));

    let logs = logs_request_message(CHAIN_ID, escrow(), RENTAL_ID, 1_700_000_100);
    let logs_signature = renter.sign_message_sync(logs.as_bytes()).unwrap();
    put("rental.logs_message", logs);
    put("rental.logs_signature_hex", hex::encode(logs_signature.as_bytes()));
    put(
        "rental.logs_request",
        to_json(&RentalRequest::Logs {
            rental_id: RENTAL_ID,
            issued_at: 1_700_000_100,
            signature: logs_signature,
        }),
    );
    let volumes = volumes_request_message(CHAIN_ID, escrow(), renter.address(), 1_700_000_100);
    let volumes_signature = renter.sign_message_sync(volumes.as_bytes()).unwrap();
    put("rental.volumes_message", volumes);
    put("rental.volumes_signature_hex", hex::encode(volumes_signature.as_bytes()));
    put(
        "rental.volumes_request",
        to_json(&RentalRequest::Volumes {
            renter: renter.address(),
            issued_at: 1_700_000_100,
            signature: volumes_signature,
        }),
    );

    let domain = domain();
    let terms = quote_terms();
    let quote_digest = sol_quote(&terms).eip712_signing_hash(&domain);
    let quote_signature = payout.sign_hash_sync(&quote_digest).unwrap();
    put("chain.domain_separator_hex", hex::encode(domain.separator()));
    put("chain.quote_offer_id_hex", hex::encode(terms.offer_id));
    put("chain.quote_struct_hash_hex", hex::encode(sol_quote(&terms).eip712_hash_struct()));
    put("chain.quote_digest_hex", hex::encode(quote_digest));
    put("chain.quote_signature_hex", hex::encode(quote_signature.as_bytes()));
    put(
        "rental.quote_response",
        to_json(&RentalResponse::Quote(SignedQuote {
            terms,
            signature: Bytes::from(quote_signature.as_bytes().to_vec()),
            share: Some(Share {
                cpu_millis: 16_000,
                memory_bytes: 64_000_000_000,
                shm_bytes: 32_000_000_000,
                pids: 8192,
            }),
        })),
    );
    let refusal_digest = Refusal { rentalId: U256::from(RENTAL_ID) }.eip712_signing_hash(&domain);
    let refusal_signature = payout.sign_hash_sync(&refusal_digest).unwrap();
    put("chain.refusal_digest_hex", hex::encode(refusal_digest));
    put("chain.refusal_signature_hex", hex::encode(refusal_signature.as_bytes()));
    put(
        "rental.refused_status_response",
        to_json(&RentalResponse::Status(WorkloadStatus {
            rental_id: RENTAL_ID,
            state: WorkloadState::Refused,
            gpus: Vec::new(),
            started_at: None,
            ended_at: None,
            detail: "GPU-00000000-0000-0000-0000-000000000001 is rented to another renter".into(),
            refusal: Some(Bytes::from(refusal_signature.as_bytes().to_vec())),
            ssh: None,
            ports: Vec::new(),
        })),
    );
    let downtime = downtime();
    put("chain.downtime_digest_hex", hex::encode(downtime.eip712_signing_hash(&domain)));
    let word = |value: U40| U256::from(value.to::<u64>());
    let packed: U256 = U256::from(RENTAL_ID) << 160
        | word(downtime.from) << 120
        | word(downtime.to) << 80
        | word(downtime.downSeconds) << 40
        | word(downtime.deadline);
    put("chain.downtime_packed_hex", hex::encode(packed.to_be_bytes::<32>()));

    put("sync.first_request", to_json(&SyncRequest { after: None, limit: MAX_SYNC_PAGE }));
    put(
        "sync.next_request",
        to_json(&SyncRequest { after: Some(OfferId::of(&peer).to_string()), limit: MAX_SYNC_PAGE }),
    );
    put("sync.last_response", to_json(&SyncResponse { offers: vec![offer], next: None }));
    v
}

fn minimal_quote_request() -> RentalRequest {
    RentalRequest::Quote {
        renter: renter_key().address(),
        duration: 3600,
        image: None,
        ssh_key: None,
        gpus: None,
        launch: Launch::default(),
    }
}

/// The `name = value` lines of the fenced blocks that follow a `<!-- vectors -->` line.
fn documented_vectors(doc: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for block in marked_blocks(doc, "<!-- vectors -->") {
        for line in block.lines().filter(|line| !line.trim().is_empty()) {
            let (name, value) =
                line.split_once(" = ").unwrap_or_else(|| panic!("not `name = value`: {line}"));
            let previous = found.insert(name.trim().to_owned(), value.to_owned());
            assert!(previous.is_none(), "vector {name} documented twice");
        }
    }
    found
}

/// The body of the fenced block following each line equal to `marker`.
fn marked_blocks<'a>(doc: &'a str, marker: &str) -> Vec<&'a str> {
    let mut blocks = Vec::new();
    let mut rest = doc;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let open = rest.find("```").expect("a fenced block after the marker");
        let body = &rest[open..];
        let body = &body[body.find('\n').expect("a fence line") + 1..];
        let close = body.find("\n```").expect("a closing fence");
        blocks.push(&body[..close]);
        rest = &body[close..];
    }
    blocks
}

fn assert_same(what: &str, expected: &BTreeMap<String, String>, found: &BTreeMap<String, String>) {
    let mut wrong = Vec::new();
    for (name, value) in expected {
        match found.get(name) {
            Some(documented) if documented == value => {}
            Some(documented) => wrong
                .push(format!("{name}: documented\n  {documented}\nbut the code gives\n  {value}")),
            None => wrong.push(format!("{name}: missing; the code gives\n  {value}")),
        }
    }
    for name in found.keys().filter(|name| !expected.contains_key(*name)) {
        wrong.push(format!("{name}: documented, but no such vector"));
    }
    assert!(wrong.is_empty(), "{what} differs from the code:\n{}", wrong.join("\n"));
}

#[test]
fn vectors_json_is_what_the_code_produces() {
    let file: BTreeMap<String, String> = serde_json::from_str(&vectors_json()).unwrap();
    assert_same("tests/vectors.json", &vectors(), &file);
}

#[test]
fn protocol_md_vectors_are_what_the_code_produces() {
    assert_same("PROTOCOL.md", &vectors(), &documented_vectors(&repo_file("PROTOCOL.md")));
}

#[test]
fn the_vectors_verify_as_documented() {
    let v = vectors();
    let get = |name: &str| v[name].clone();
    let unhex = |name: &str| hex::decode(&v[name]).unwrap();

    // The peer id is the identity multihash of the protobuf-encoded public key, and the
    // offer id the first 8 bytes of its SHA-256.
    let public_key = unhex("identity.public_key_hex");
    let peer_bytes = [&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20][..], &public_key].concat();
    assert_eq!(unhex("identity.peer_id_bytes_hex"), peer_bytes);
    assert_eq!(hex::decode(get("identity.offer_id")).unwrap(), Sha256::digest(&peer_bytes)[..8]);

    // EIP-191 over the binding text recovers the payout address.
    let personal = |text: &str| {
        keccak256(
            [format!("\x19Ethereum Signed Message:\n{}", text.len()).as_bytes(), text.as_bytes()]
                .concat(),
        )
    };
    let recover = |signature: &str, digest: B256| {
        alloy::primitives::Signature::try_from(hex::decode(signature).unwrap().as_slice())
            .unwrap()
            .recover_address_from_prehash(&digest)
            .unwrap()
    };
    let payout: Address = get("payout.address").parse().unwrap();
    assert_eq!(
        recover(&get("payout.binding_signature_hex"), personal(&get("payout.binding_message"))),
        payout
    );
    let renter: Address = get("rental.renter_address").parse().unwrap();
    for kind in ["logs", "volumes"] {
        let digest = personal(&get(&format!("rental.{kind}_message")));
        assert_eq!(recover(&get(&format!("rental.{kind}_signature_hex")), digest), renter);
    }

    // ed25519 over the domain tag and the body bytes, exactly as they stand in the envelope.
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public_key.try_into().unwrap()).unwrap();
    for kind in ["offer", "heartbeat"] {
        let signed =
            [unhex(&format!("{kind}.domain_tag_hex")), get(&format!("{kind}.body")).into_bytes()]
                .concat();
        let signature: [u8; 64] = unhex(&format!("{kind}.signature_hex")).try_into().unwrap();
        key.verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&signature)).unwrap();
        let envelope = get(&format!("{kind}.envelope"));
        assert_eq!(
            unhex(&format!("{kind}.message_id_hex")),
            Sha256::digest(envelope.as_bytes())[..20]
        );
        assert!(envelope.contains(&format!(",\"body\":{}}}", get(&format!("{kind}.body")))));
    }

    // The documented envelopes pass every check of the code, and name their signer.
    let offer = SignedEnvelope::decode::<Offer>(get("offer.envelope").as_bytes()).unwrap();
    assert_eq!(offer.signer.to_string(), get("identity.peer_id"));
    assert_eq!(offer.body.payout, payout);
    let heartbeat =
        SignedEnvelope::decode::<Heartbeat>(get("heartbeat.envelope").as_bytes()).unwrap();
    assert_eq!(heartbeat.signer, offer.signer);

    // The EIP-712 signatures recover the payout address from the documented digests, and
    // the quote's offerId is the offer id, the GPU count (big-endian u32), then zeros.
    let digest = |name: &str| B256::from_slice(&unhex(name));
    assert_eq!(
        recover(&get("chain.quote_signature_hex"), digest("chain.quote_digest_hex")),
        payout
    );
    assert_eq!(
        recover(&get("chain.refusal_signature_hex"), digest("chain.refusal_digest_hex")),
        payout
    );
    let machine = unhex("chain.quote_offer_id_hex");
    assert_eq!(machine[..8], hex::decode(get("identity.offer_id")).unwrap()[..]);
    assert_eq!(machine[8..12], 1u32.to_be_bytes());
    assert!(machine[12..].iter().all(|b| *b == 0));
    let separator = keccak256(
        [
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)").to_vec(),
            keccak256("GpuEscrow").to_vec(),
            keccak256("1").to_vec(),
            U256::from(CHAIN_ID).to_be_bytes::<32>().to_vec(),
            B256::left_padding_from(escrow().as_slice()).to_vec(),
        ]
        .concat(),
    );
    assert_eq!(unhex("chain.domain_separator_hex"), separator.as_slice());
    let typed = |struct_hash: B256| {
        keccak256([&b"\x19\x01"[..], separator.as_slice(), struct_hash.as_slice()].concat())
    };
    assert_eq!(digest("chain.quote_digest_hex"), typed(digest("chain.quote_struct_hash_hex")));
    let refusal_struct = keccak256(
        [
            keccak256("Refusal(uint256 rentalId)").as_slice(),
            &U256::from(RENTAL_ID).to_be_bytes::<32>(),
        ]
        .concat(),
    );
    assert_eq!(digest("chain.refusal_digest_hex"), typed(refusal_struct));

    // The documented requests and responses are ones the code accepts.
    let parse = |name: &str| serde_json::from_str::<RentalRequest>(&get(name)).unwrap();
    match parse("rental.quote_request") {
        RentalRequest::Quote { image, ssh_key, launch, .. } => {
            RentalRequest::check_image(&image.unwrap()).unwrap();
            RentalRequest::check_ssh_public_key(&ssh_key.unwrap()).unwrap();
            launch.check().unwrap();
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(parse("rental.minimal_quote_request"), minimal_quote_request());
    serde_json::from_str::<RentalResponse>(&get("rental.quote_response")).unwrap();
    serde_json::from_str::<RentalResponse>(&get("rental.refused_status_response")).unwrap();
    let page: SyncResponse = serde_json::from_str(&get("sync.last_response")).unwrap();
    page.offers.into_iter().next().unwrap().open::<Offer>().unwrap();
}

#[test]
fn eip712_types_and_domain_are_the_contracts() {
    let contract = repo_file("contracts/src/GpuEscrow.sol");
    for type_string in
        [Quote::eip712_encode_type(), Refusal::eip712_encode_type(), Downtime::eip712_encode_type()]
    {
        assert!(
            contract.contains(&format!("\"{type_string}\"")),
            "{type_string} is not the contract's"
        );
    }
    assert!(contract.contains("EIP712(\"GpuEscrow\", \"1\")"));
}

#[test]
fn the_highest_offer_price_is_the_escrows_highest_rate() {
    // `uint256 private constant MAX_RATE = (1 << BITS) - 1;`, the bound `open` checks.
    let contract = repo_file("contracts/src/GpuEscrow.sol");
    let declared = contract
        .lines()
        .find_map(|line| line.trim().strip_prefix("uint256 private constant MAX_RATE = (1 << "))
        .expect("GpuEscrow declares MAX_RATE as (1 << BITS) - 1");
    let bits: u32 = declared
        .strip_suffix(") - 1;")
        .and_then(|bits| bits.parse().ok())
        .unwrap_or_else(|| panic!("MAX_RATE = (1 << {declared}"));
    assert_eq!(MAX_ESCROW_RATE, (1u128 << bits) - 1, "GpuEscrow's MAX_RATE");
    assert!(contract.contains("if (rate > MAX_RATE) {"), "open refuses rates above MAX_RATE");
}

/// A sealed envelope of `body`, as JSON text, with `edit` applied to its JSON value.
fn envelope_with(
    body: &serde_json::Value,
    kind: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    let body = serde_json::value::to_raw_value(body).unwrap();
    let identity = identity();
    let signed = [
        if kind == "offer" { OFFER_DOMAIN_TAG } else { HEARTBEAT_DOMAIN_TAG },
        body.get().as_bytes(),
    ]
    .concat();
    let signing = ed25519_dalek::SigningKey::from_bytes(&std::array::from_fn(|i| i as u8));
    let signature = ed25519_dalek::Signer::sign(&signing, &signed);
    let mut envelope = json!({
        "version": 1,
        "kind": kind,
        "public_key": format!("0x{}", hex::encode(identity.public_key())),
        "signature": format!("0x{}", hex::encode(signature.to_bytes())),
        "body": serde_json::from_str::<serde_json::Value>(body.get()).unwrap(),
    });
    edit(&mut envelope);
    serde_json::to_vec(&envelope).unwrap()
}

fn reason<T: Message>(bytes: &[u8]) -> &'static str {
    match SignedEnvelope::decode::<T>(bytes) {
        Ok(_) => "ok",
        Err(error) => error.reason(),
    }
}

#[test]
fn envelope_checks_run_in_the_documented_order() {
    let body = serde_json::to_value(offer()).unwrap();
    let good = envelope_with(&body, "offer", |_| {});
    assert_eq!(reason::<Offer>(&good), "ok");
    // `envelope_with` writes every object's keys in alphabetical order, unlike `seal`: the
    // order of the fields does not matter, only that the signature covers the body's text.
    let bad_signature =
        |e: &mut serde_json::Value| e["signature"] = json!(format!("0x{}", "00".repeat(64)));
    // 1. Size, before anything is parsed.
    let mut big = good.clone();
    big.resize(MAX_MESSAGE_SIZE + 1, b' ');
    assert_eq!(reason::<Offer>(&big), "too_large");
    let mut heartbeat_sized =
        envelope_with(&serde_json::to_value(heartbeat()).unwrap(), "heartbeat", |_| {});
    assert_eq!(reason::<Heartbeat>(&heartbeat_sized), "ok");
    heartbeat_sized.resize(MAX_HEARTBEAT_SIZE + 1, b' ');
    assert_eq!(reason::<Heartbeat>(&heartbeat_sized), "too_large");
    // 2. The envelope's JSON.
    assert_eq!(reason::<Offer>(b"{\"version\":1}"), "malformed");
    assert_eq!(
        reason::<Offer>(&envelope_with(&body, "offer", |e| e["kind"] = json!("rental"))),
        "malformed"
    );
    // 3. Version, before kind, key and signature.
    let v2 = envelope_with(&body, "heartbeat", |e| {
        e["version"] = json!(2);
        bad_signature(e);
    });
    assert_eq!(reason::<Offer>(&v2), "unsupported_version");
    // 4. Kind, before key and signature.
    assert_eq!(reason::<Offer>(&envelope_with(&body, "heartbeat", bad_signature)), "wrong_kind");
    // 5. Key, before the signature.
    let not_a_point = (0u8..=255)
        .map(|b| [b; 32])
        .find(|bytes| ed25519_dalek::VerifyingKey::from_bytes(bytes).is_err())
        .unwrap();
    let bad_key = envelope_with(&body, "offer", |e| {
        e["public_key"] = json!(format!("0x{}", hex::encode(not_a_point)));
        bad_signature(e);
    });
    assert_eq!(reason::<Offer>(&bad_key), "invalid_key");
    // 6. Signature, before the body is decoded.
    let garbage = envelope_with(&json!({"seq": "x"}), "offer", bad_signature);
    assert_eq!(reason::<Offer>(&garbage), "bad_signature");
    // 7. The body's JSON, then its rules.
    assert_eq!(reason::<Offer>(&envelope_with(&json!({"seq": "x"}), "offer", |_| {})), "malformed");
    let mut unbound = body.clone();
    unbound["region"] = json!("a\nb");
    assert_eq!(reason::<Offer>(&envelope_with(&unbound, "offer", |_| {})), "invalid_field");
    // Unknown fields are ignored, in the envelope and, when signed, in the body.
    let mut extended = body.clone();
    extended["a_later_field"] = json!(1);
    let extended = envelope_with(&extended, "offer", |e| e["a_later_envelope_field"] = json!(true));
    assert_eq!(reason::<Offer>(&extended), "ok");
    // The signed bytes are the body's text as it stands between the envelope's other
    // bytes: whitespace and escapes inside it included, whitespace around it excluded.
    let pretty =
        serde_json::to_string_pretty(&offer()).unwrap().replace("eu-west", "eu\\u002dwest");
    let signed = [OFFER_DOMAIN_TAG, pretty.as_bytes()].concat();
    let signing = ed25519_dalek::SigningKey::from_bytes(&std::array::from_fn(|i| i as u8));
    let signature = hex::encode(ed25519_dalek::Signer::sign(&signing, &signed).to_bytes());
    let public_key = hex::encode(identity().public_key());
    let spaced = format!(
        "{{ \"body\" :\n {pretty} \n, \"version\": 1, \"kind\": \"offer\", \"public_key\": \"0x{public_key}\", \"signature\": \"0x{signature}\" }}"
    );
    let opened = SignedEnvelope::decode::<Offer>(spaced.as_bytes()).unwrap();
    assert_eq!(opened.envelope.body.get(), pretty);
    assert_eq!(opened.body.region, "eu-west");
    // Hex without `0x` and in upper case is read too.
    let bare = envelope_with(&body, "offer", |e| {
        let key = e["public_key"].as_str().unwrap()[2..].to_uppercase();
        e["public_key"] = json!(key);
    });
    assert_eq!(reason::<Offer>(&bare), "ok");
}

/// Whether `holds` accepts `limit` and refuses `limit + 1`.
fn bound(limit: u64, holds: impl Fn(u64) -> bool) -> bool {
    holds(limit) && !holds(limit + 1)
}

fn offer_valid(edit: impl FnOnce(&mut Offer)) -> bool {
    let mut offer = offer();
    edit(&mut offer);
    offer.validate(&identity().peer_id()).is_ok()
}

fn heartbeat_json_valid(edit: impl FnOnce(&mut serde_json::Value)) -> bool {
    let mut value = serde_json::to_value(heartbeat()).unwrap();
    edit(&mut value);
    let heartbeat: Heartbeat = serde_json::from_value(value).unwrap();
    heartbeat.validate(&identity().peer_id()).is_ok()
}

fn launch_valid(launch: Launch) -> bool {
    launch.check().is_ok()
}

fn n(value: u64) -> usize {
    usize::try_from(value).unwrap()
}

/// The limits the document's checked table must list, each once.
const LIMITS: &[&str] = &[
    "PROTOCOL_VERSION",
    "MAX_MESSAGE_SIZE",
    "MAX_HEARTBEAT_SIZE",
    "MAX_GPUS",
    "MAX_OFFER_TTL",
    "MAX_ESCROW_RATE",
    "MAX_TEXT",
    "MAX_ADDRS",
    "MAX_ADDR_LEN",
    "MAX_DECLARED",
    "MAX_OFFER_IMAGES",
    "MAX_ALLOWED_IMAGES",
    "MAX_IMAGE_LEN",
    "MAX_TEMPERATURE_C",
    "MAX_ACTIVE_RENTALS",
    "MAX_MAINTENANCE_SECS",
    "MAX_MAINTENANCE_AHEAD",
    "MAX_SSH_KEY_LEN",
    "MAX_ENV",
    "MAX_LAUNCH_TEXT",
    "MAX_PORTS",
    "MAX_VOLUME_NAME",
    "MAX_VOLUME_PATH",
    "MAX_SYNC_PAGE",
    "MAX_SYNC_RESPONSE_SIZE",
];

/// Whether the limit `name` of the document is `value` in the code.
fn limit_holds(name: &str, value: u64) -> bool {
    let max = |constant: usize| value == constant as u64;
    match name {
        "PROTOCOL_VERSION" => value == u64::from(PROTOCOL_VERSION),
        "MAX_MESSAGE_SIZE" => max(MAX_MESSAGE_SIZE),
        "MAX_HEARTBEAT_SIZE" => max(MAX_HEARTBEAT_SIZE),
        "MAX_GPUS" => max(MAX_GPUS),
        "MAX_OFFER_TTL" => value == MAX_OFFER_TTL,
        "MAX_ESCROW_RATE" => {
            u128::from(value) == MAX_ESCROW_RATE
                && bound(value, |price| offer_valid(|o| o.price_per_second = price.into()))
        }
        "MAX_OFFER_IMAGES" => max(MAX_OFFER_IMAGES),
        "MAX_ALLOWED_IMAGES" => max(MAX_ALLOWED_IMAGES),
        "MAX_TEMPERATURE_C" => value == u64::from(MAX_TEMPERATURE_C),
        "MAX_ACTIVE_RENTALS" => value == u64::from(MAX_ACTIVE_RENTALS),
        "MAX_SYNC_PAGE" => value == u64::from(MAX_SYNC_PAGE),
        "MAX_SYNC_RESPONSE_SIZE" => max(MAX_SYNC_RESPONSE_SIZE),
        "MAX_ENV" => max(MAX_ENV),
        "MAX_PORTS" => max(MAX_PORTS),
        // Private constants, through the rules that use them.
        "MAX_TEXT" => bound(value, |len| offer_valid(|o| o.region = "a".repeat(n(len)))),
        "MAX_ADDRS" => bound(value, |count| {
            offer_valid(|o| o.listen_addrs = vec!["/ip4/203.0.113.7/tcp/4001".into(); n(count)])
        }),
        "MAX_ADDR_LEN" => bound(value, |len| {
            offer_valid(|o| o.listen_addrs = vec![format!("/dns/{}", "a".repeat(n(len) - 5))])
        }),
        "MAX_DECLARED" => bound(value, |size| offer_valid(|o| o.disk_bytes = Some(size))),
        "MAX_IMAGE_LEN" => {
            bound(value, |len| RentalRequest::check_image(&"a".repeat(n(len))).is_ok())
        }
        "MAX_SSH_KEY_LEN" => bound(value, |len| {
            RentalRequest::check_ssh_public_key(&format!("ssh-ed25519 {}", "A".repeat(n(len) - 12)))
                .is_ok()
        }),
        "MAX_LAUNCH_TEXT" => bound(value, |len| {
            launch_valid(Launch {
                env: vec![format!("A={}", "a".repeat(n(len) - 2))],
                ..Launch::default()
            }) && launch_valid(Launch { cmd: Some("a".repeat(n(len))), ..Launch::default() })
        }),
        "MAX_VOLUME_NAME" => bound(value, |len| {
            VolumeMount { name: "a".repeat(n(len)), path: "/workspace".into() }.check().is_ok()
        }),
        "MAX_VOLUME_PATH" => bound(value, |len| {
            VolumeMount { name: "data".into(), path: format!("/{}", "a".repeat(n(len) - 1)) }
                .check()
                .is_ok()
        }),
        "MAX_MAINTENANCE_SECS" => bound(value, |secs| {
            heartbeat_json_valid(|h| {
                h["maintenance"] = json!({"from": 1_700_000_100u64, "until": 1_700_000_100 + secs})
            })
        }),
        "MAX_MAINTENANCE_AHEAD" => bound(value, |ahead| {
            heartbeat_json_valid(|h| {
                let until = 1_700_000_015 + ahead;
                h["maintenance"] = json!({"from": until - 3600, "until": until})
            })
        }),
        other => panic!("no limit {other} in the code"),
    }
}

#[test]
fn protocol_md_limits_are_the_codes() {
    let doc = repo_file("PROTOCOL.md");
    let marker = "<!-- limits -->";
    let at = doc.find(marker).expect("a limits table");
    let mut documented = Vec::new();
    for row in doc[at + marker.len()..].trim_start().lines().take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(name) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue; // the header and its rule
        };
        let value: u64 = cells[2].parse().unwrap_or_else(|_| panic!("not a number: {row}"));
        assert!(limit_holds(name, value), "PROTOCOL.md gives {name} = {value}; the code does not");
        documented.push(name);
    }
    assert_eq!(documented, LIMITS, "the limits after {marker}, in this order");
}

/// Prints the vectors as `tests/vectors.json` holds them, to update it and PROTOCOL.md
/// after a deliberate change of the wire format:
/// `cargo test -p gpuflow-protocol --test protocol_vectors -- --ignored --nocapture`.
#[test]
#[ignore = "prints the vectors; run by hand"]
fn print_vectors() {
    println!("{}", serde_json::to_string_pretty(&vectors()).unwrap());
    for (name, value) in vectors() {
        println!("{name} = {value}");
    }
}
