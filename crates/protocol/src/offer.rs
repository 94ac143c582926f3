use alloy::primitives::{Address, Signature};
use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{MessageKind, ProtocolError, envelope::Message};

/// Most GPUs one offer may list.
pub const MAX_GPUS: usize = 16;
/// Longest lifetime an offer may claim, in seconds.
pub const MAX_OFFER_TTL: u64 = 24 * 3600;
/// Highest rate per second, in token units, that `GpuEscrow` opens a rental at (its
/// `MAX_RATE`, `2^44 − 1`), so the highest `price_per_second` an offer may ask: above it
/// the offer could never be rented.
pub const MAX_ESCROW_RATE: u128 = (1 << 44) - 1;
const MAX_TEXT: usize = 128;
const MAX_ADDRS: usize = 8;
/// Most ready images one offer may list.
pub const MAX_OFFER_IMAGES: usize = 16;
/// Most entries of the image allow-list one offer may carry.
pub const MAX_ALLOWED_IMAGES: usize = 32;
/// Largest declared bandwidth, disk or memory size, or CPU count; far above any real machine.
const MAX_DECLARED: u64 = 1 << 53;

/// One GPU as read through NVML (or simulated, then the offer is not `verified`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// Marketing name, e.g. `NVIDIA GeForce RTX 4090`.
    pub name: String,
    /// NVML UUID, e.g. `GPU-5f0e...`.
    pub uuid: String,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// PCI bus id, e.g. `00000000:01:00.0`.
    pub pci_bus_id: String,
    /// CUDA compute capability, e.g. `8.9`.
    pub compute_capability: String,
    /// NVIDIA driver version, e.g. `550.54.14`.
    pub driver_version: String,
    /// Highest CUDA version the driver supports, e.g. `12.4`.
    pub cuda_version: String,
}

/// A provider's signed advertisement of one machine for rent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Increases with every publication; a newer offer replaces an older one.
    pub seq: u64,
    /// Unix time the offer was signed.
    pub issued_at: u64,
    /// Unix time after which the offer is void.
    pub expires_at: u64,
    /// Chain the provider accepts rentals on.
    pub chain_id: u64,
    /// `GpuEscrow` contract the provider watches.
    pub escrow: Address,
    /// Ethereum address that receives the provider's earnings.
    pub payout: Address,
    /// EIP-191 signature by `payout` over [`payout_binding_message`] for the signer's peer id.
    pub payout_proof: Signature,
    /// Price of all the listed GPUs, in token units per second; `n` of them cost
    /// `n / gpus.len()` of it (see [`Offer::fair_rate`]).
    #[serde(with = "decimal_string")]
    pub price_per_second: u128,
    /// The machine's free GPUs, one model; a renter rents all or some of them.
    pub gpus: Vec<GpuInfo>,
    /// True only when the inventory was read through NVML.
    pub verified: bool,
    /// Free-form region label, e.g. `eu-west`.
    pub region: String,
    /// Multiaddrs where the provider answers `/gpuflow/rental/1`.
    pub listen_addrs: Vec<String>,
    /// Download bandwidth the provider declares, in Mbit/s (from its config, not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inet_down_mbps: Option<u64>,
    /// Upload bandwidth the provider declares, in Mbit/s (from its config, not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inet_up_mbps: Option<u64>,
    /// Free disk space where the provider's workloads write, in bytes, read from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
    /// Logical CPUs of the machine, read from the host; rentals share them by their GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<u64>,
    /// Memory of the machine in bytes, read from the host; rentals share it by their GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ram_bytes: Option<u64>,
    /// Container images already pulled on the machine: a rental of one starts without a
    /// download.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// How long a renter's volume outlives the rental that last used it, in seconds
    /// (`gpuflow rent --volume`); 0 or absent: the machine keeps no volumes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub volume_grace_secs: u64,
    /// The images renters may ask for (see [`image_allowed`]): an entry ending in `*`
    /// allows every image starting with what precedes it; empty: any image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_images: Vec<String>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Message for Offer {
    const KIND: MessageKind = MessageKind::Offer;

    fn validate(&self, signer: &PeerId) -> Result<(), ProtocolError> {
        if self.expires_at <= self.issued_at || self.expires_at - self.issued_at > MAX_OFFER_TTL {
            return Err(ProtocolError::field(
                "expires_at",
                format!("must be after issued_at and at most {MAX_OFFER_TTL} s later"),
            ));
        }
        if self.price_per_second == 0 || self.price_per_second > MAX_ESCROW_RATE {
            return Err(ProtocolError::field(
                "price_per_second",
                format!(
                    "must be between 1 and {MAX_ESCROW_RATE}, the highest rate GpuEscrow accepts"
                ),
            ));
        }
        if self.gpus.is_empty() || self.gpus.len() > MAX_GPUS {
            return Err(ProtocolError::field("gpus", format!("must list 1 to {MAX_GPUS} GPUs")));
        }
        for gpu in &self.gpus {
            for (field, text) in [
                ("gpus.name", &gpu.name),
                ("gpus.uuid", &gpu.uuid),
                ("gpus.pci_bus_id", &gpu.pci_bus_id),
                ("gpus.compute_capability", &gpu.compute_capability),
                ("gpus.driver_version", &gpu.driver_version),
                ("gpus.cuda_version", &gpu.cuda_version),
            ] {
                check_text(field, text)?;
            }
            if gpu.uuid.is_empty() {
                return Err(ProtocolError::field("gpus.uuid", "must not be empty"));
            }
        }
        let mut uuids: Vec<_> = self.gpus.iter().map(|g| &g.uuid).collect();
        uuids.sort();
        if uuids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ProtocolError::field("gpus.uuid", "the same GPU is listed twice"));
        }
        if self.gpus.iter().any(|g| g.name != self.gpus[0].name) {
            return Err(ProtocolError::field(
                "gpus.name",
                "all GPUs of an offer must be the same model",
            ));
        }
        check_text("region", &self.region)?;
        if self.images.len() > MAX_OFFER_IMAGES {
            return Err(ProtocolError::field(
                "images",
                format!("at most {MAX_OFFER_IMAGES} ready images"),
            ));
        }
        for image in &self.images {
            crate::RentalRequest::check_image(image)
                .map_err(|why| ProtocolError::field("images", why))?;
        }
        if self.allowed_images.len() > MAX_ALLOWED_IMAGES {
            return Err(ProtocolError::field(
                "allowed_images",
                format!("at most {MAX_ALLOWED_IMAGES} entries"),
            ));
        }
        for pattern in &self.allowed_images {
            check_image_pattern(pattern)
                .map_err(|why| ProtocolError::field("allowed_images", why))?;
        }
        check_listen_addrs(&self.listen_addrs, signer)?;
        // Bounded so that every node can store and compare them as SQLite integers.
        for (field, value) in [
            ("inet_down_mbps", self.inet_down_mbps),
            ("inet_up_mbps", self.inet_up_mbps),
            ("disk_bytes", self.disk_bytes),
            ("cpu_cores", self.cpu_cores),
            ("cpu_ram_bytes", self.cpu_ram_bytes),
        ] {
            if value.is_some_and(|v| v > MAX_DECLARED) {
                return Err(ProtocolError::field(field, format!("at most {MAX_DECLARED}")));
            }
        }
        let recovered = self
            .payout_proof
            .recover_address_from_msg(payout_binding_message(signer))
            .map_err(|_| ProtocolError::BadPayoutBinding(self.payout))?;
        if recovered != self.payout {
            return Err(ProtocolError::BadPayoutBinding(self.payout));
        }
        Ok(())
    }
}

impl Offer {
    /// Smallest memory among the offer's GPUs, in bytes (they are one model, so all equal
    /// in practice).
    pub fn gpu_memory_bytes(&self) -> u64 {
        self.gpus.iter().map(|g| g.memory_bytes).min().unwrap_or_default()
    }

    /// Price of the whole machine per hour, in token units.
    pub fn price_per_hour(&self) -> u128 {
        self.price_per_second * 3600
    }

    /// Whether the provider is ready to run `image`: pulled ahead or allowed (see
    /// [`image_ready`]).
    pub fn ready_for(&self, image: &str) -> bool {
        image_ready(&self.images, &self.allowed_images, image)
    }

    /// Whether `rate` for `gpus` of the offer's GPUs is at most their share of the
    /// advertised price (the GPUs are one model, priced alike).
    pub fn fair_rate(&self, rate: u128, gpus: u32) -> bool {
        // Both sides stay far below u128::MAX: prices are bounded and GPUs are few.
        rate * self.gpus.len() as u128 <= self.price_per_second * u128::from(gpus)
    }
}

/// Whether `image` may run under the allow-list `allowed`: an entry ending in `*` allows
/// every image that starts with what precedes the `*`, any other entry only itself; an
/// empty list allows every image.
pub fn image_allowed(allowed: &[String], image: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|entry| match entry.strip_suffix('*') {
            Some(prefix) => image.starts_with(prefix),
            None => image == entry,
        })
}

/// Whether a machine that pulled `images` ahead and allows `allowed` (see
/// [`image_allowed`]) is ready to run `image`: what search's `image` field matches.
pub fn image_ready(images: &[String], allowed: &[String], image: &str) -> bool {
    images.iter().any(|ready| ready == image) || image_allowed(allowed, image)
}

/// Checks one entry of an image allow-list: an image reference, or the start of one
/// followed by a single `*`.
pub fn check_image_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Err("`*` alone would allow every image; an empty list already does".into());
    }
    crate::RentalRequest::check_image(pattern.strip_suffix('*').unwrap_or(pattern))
}

/// Whether the multiaddr `addr` leads to a peer other than `signer`: its last `/p2p/` id
/// (the one a dial checks; an earlier one would be a relay's) is someone else's. An address
/// that does not parse names no peer (nobody can dial it either).
fn names_another_peer(addr: &str, signer: &PeerId) -> bool {
    let Ok(addr) = addr.parse::<Multiaddr>() else { return false };
    let last = addr.iter().filter_map(|protocol| match protocol {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    });
    last.last().is_some_and(|peer| peer != *signer)
}

/// The text a payout key signs (EIP-191) to bind itself to a peer id.
pub fn payout_binding_message(peer_id: &PeerId) -> String {
    format!("gpuflow payout address for peer {peer_id}")
}

/// Stable identifier of a provider's offer, derived from its peer id, so every node
/// names the same offer the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OfferId([u8; 8]);

impl OfferId {
    /// The id of the offer published by `peer_id`.
    pub fn of(peer_id: &PeerId) -> Self {
        let digest = Sha256::digest(peer_id.to_bytes());
        Self(digest[..8].try_into().expect("digest is 32 bytes"))
    }

    /// The id with these bytes.
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The raw id.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

impl std::fmt::Display for OfferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&alloy::hex::encode(self.0))
    }
}

impl std::str::FromStr for OfferId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = alloy::hex::decode(s).ok().and_then(|b| <[u8; 8]>::try_from(b).ok());
        bytes.map(Self).ok_or_else(|| format!("`{s}` is not an offer id (16 hex digits)"))
    }
}

/// Checks the listen addresses of an offer or a heartbeat: at most [`MAX_ADDRS`], each of
/// bounded length, none naming another peer's `/p2p/` id (nobody could reach the signer
/// there).
pub(crate) fn check_listen_addrs(addrs: &[String], signer: &PeerId) -> Result<(), ProtocolError> {
    if addrs.len() > MAX_ADDRS {
        return Err(ProtocolError::field("listen_addrs", format!("at most {MAX_ADDRS}")));
    }
    for addr in addrs {
        if addr.len() > 2 * MAX_TEXT {
            return Err(ProtocolError::field("listen_addrs", "address too long"));
        }
        if names_another_peer(addr, signer) {
            return Err(ProtocolError::ForeignListenAddr(addr.clone()));
        }
    }
    Ok(())
}

pub(crate) fn check_text(field: &'static str, text: &str) -> Result<(), ProtocolError> {
    if text.len() > MAX_TEXT || text.chars().any(char::is_control) {
        return Err(ProtocolError::field(
            field,
            format!("at most {MAX_TEXT} printable characters"),
        ));
    }
    Ok(())
}

pub(crate) mod decimal_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom(format!("`{text}` is not a decimal integer")));
        }
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use alloy::signers::local::PrivateKeySigner;

    use super::*;
    use crate::{Identity, SignedEnvelope};

    pub(crate) fn sample(identity: &Identity, payout: &PrivateKeySigner) -> Offer {
        Offer {
            escrow: Address::repeat_byte(0xee),
            region: "eu-west".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            ..crate::testing::offer(
                identity,
                payout,
                "GPU-00000000-0000-0000-0000-000000000001",
                1_000,
                600,
            )
        }
    }

    fn roundtrip(envelope: &SignedEnvelope) -> Result<Offer, ProtocolError> {
        SignedEnvelope::from_bytes(&envelope.to_bytes())?.open::<Offer>().map(|v| v.body)
    }

    #[test]
    fn signed_offer_verifies() {
        let identity = Identity::generate();
        let offer = sample(&identity, &PrivateKeySigner::random());
        let envelope = SignedEnvelope::seal(&identity, &offer);
        let opened =
            SignedEnvelope::from_bytes(&envelope.to_bytes()).unwrap().open::<Offer>().unwrap();
        assert_eq!(opened.body, offer);
        assert_eq!(opened.signer, identity.peer_id());
    }

    #[test]
    fn tampered_body_is_rejected() {
        let identity = Identity::generate();
        let envelope =
            SignedEnvelope::seal(&identity, &sample(&identity, &PrivateKeySigner::random()));
        let forged = String::from_utf8(envelope.to_bytes()).unwrap().replace("\"100\"", "\"1\"");
        let err =
            SignedEnvelope::from_bytes(forged.as_bytes()).unwrap().open::<Offer>().unwrap_err();
        assert!(matches!(err, ProtocolError::BadSignature), "{err}");
    }

    #[test]
    fn other_signer_is_rejected() {
        let identity = Identity::generate();
        let mut envelope =
            SignedEnvelope::seal(&identity, &sample(&identity, &PrivateKeySigner::random()));
        envelope.public_key = Identity::generate().public_key().into();
        assert!(matches!(roundtrip(&envelope), Err(ProtocolError::BadSignature)));
    }

    #[test]
    fn payout_bound_to_another_peer_is_rejected() {
        let identity = Identity::generate();
        let thief = Identity::generate();
        // A valid binding for `identity`, republished under the thief's key.
        let offer = sample(&identity, &PrivateKeySigner::random());
        let envelope = SignedEnvelope::seal(&thief, &offer);
        assert!(matches!(roundtrip(&envelope), Err(ProtocolError::BadPayoutBinding(_))));
    }

    #[test]
    fn listen_addresses_may_name_only_the_signer() {
        let identity = Identity::generate();
        let payout = PrivateKeySigner::random();
        let other = Identity::generate().peer_id();
        let own = identity.peer_id();
        for (addr, accepted) in [
            ("/ip4/127.0.0.1/tcp/4001".to_owned(), true),
            (format!("/ip4/127.0.0.1/tcp/4001/p2p/{own}"), true),
            (format!("/ip4/127.0.0.1/udp/4001/quic-v1/p2p/{own}"), true),
            (format!("/ip4/127.0.0.1/tcp/4001/p2p/{other}"), false),
            (format!("/dns4/relay.example/tcp/4001/p2p/{other}/p2p-circuit/p2p/{own}"), true),
            (format!("/dns4/relay.example/tcp/4001/p2p/{own}/p2p-circuit/p2p/{other}"), false),
        ] {
            let mut offer = sample(&identity, &payout);
            offer.listen_addrs.push(addr.clone());
            match roundtrip(&SignedEnvelope::seal(&identity, &offer)) {
                Ok(_) => assert!(accepted, "{addr} accepted"),
                Err(ProtocolError::ForeignListenAddr(refused)) => {
                    assert!(!accepted, "{addr} refused");
                    assert_eq!(refused, addr);
                }
                Err(error) => panic!("{addr}: {error}"),
            }
        }
    }

    #[test]
    fn field_rules_are_enforced() {
        let identity = Identity::generate();
        let payout = PrivateKeySigner::random();
        type Mutation = Box<dyn Fn(&mut Offer)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("expires_at", Box::new(|o| o.expires_at = o.issued_at)),
            ("expires_at", Box::new(|o| o.expires_at = o.issued_at + MAX_OFFER_TTL + 1)),
            ("price_per_second", Box::new(|o| o.price_per_second = 0)),
            // GpuEscrow's MAX_RATE + 1: no rental could ever open at that price.
            ("price_per_second", Box::new(|o| o.price_per_second = 1 << 44)),
            ("gpus", Box::new(|o| o.gpus.clear())),
            ("gpus.uuid", Box::new(|o| o.gpus.push(o.gpus[0].clone()))),
            ("gpus.name", Box::new(|o| o.gpus[0].name = "x".repeat(MAX_TEXT + 1))),
            ("region", Box::new(|o| o.region = "a\nb".into())),
            ("inet_down_mbps", Box::new(|o| o.inet_down_mbps = Some(MAX_DECLARED + 1))),
            ("disk_bytes", Box::new(|o| o.disk_bytes = Some(u64::MAX))),
            ("cpu_cores", Box::new(|o| o.cpu_cores = Some(u64::MAX))),
            ("cpu_ram_bytes", Box::new(|o| o.cpu_ram_bytes = Some(MAX_DECLARED + 1))),
            ("images", Box::new(|o| o.images = vec!["ubuntu:22.04".into(); MAX_OFFER_IMAGES + 1])),
            ("images", Box::new(|o| o.images = vec!["not an image".into()])),
            (
                "allowed_images",
                Box::new(|o| o.allowed_images = vec!["ubuntu:*".into(); MAX_ALLOWED_IMAGES + 1]),
            ),
            ("allowed_images", Box::new(|o| o.allowed_images = vec!["ubuntu; rm -rf /*".into()])),
            ("allowed_images", Box::new(|o| o.allowed_images = vec!["*".into()])),
            ("allowed_images", Box::new(|o| o.allowed_images = vec!["pytorch/**".into()])),
            ("allowed_images", Box::new(|o| o.allowed_images = vec!["nvidia/*:12".into()])),
        ];
        for (field, mutate) in cases {
            let mut offer = sample(&identity, &payout);
            mutate(&mut offer);
            match roundtrip(&SignedEnvelope::seal(&identity, &offer)) {
                Err(ProtocolError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidField, got {other:?}"),
            }
        }
    }

    #[test]
    fn oversized_and_malformed_input_is_rejected() {
        let big = vec![b' '; crate::MAX_MESSAGE_SIZE + 1];
        assert!(matches!(SignedEnvelope::from_bytes(&big), Err(ProtocolError::TooLarge { .. })));
        assert!(matches!(SignedEnvelope::from_bytes(b"{}"), Err(ProtocolError::Malformed(_))));
    }

    #[test]
    fn declared_machine_facts_are_optional() {
        let identity = Identity::generate();
        let payout = PrivateKeySigner::random();
        let bare = sample(&identity, &payout);
        let json = serde_json::to_string(&bare).unwrap();
        assert!(
            !json.contains("inet_")
                && !json.contains("disk_")
                && !json.contains("cpu_")
                && !json.contains("images"),
            "{json}"
        );
        assert!(bare.ready_for("anything:1"), "no allow-list allows every image");
        assert_eq!(roundtrip(&SignedEnvelope::seal(&identity, &bare)).unwrap(), bare);

        let declared = Offer {
            inet_down_mbps: Some(1000),
            inet_up_mbps: Some(500),
            disk_bytes: Some(2_000_000_000_000),
            cpu_cores: Some(64),
            cpu_ram_bytes: Some(512_000_000_000),
            images: vec!["pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime".into()],
            volume_grace_secs: 0,
            allowed_images: vec!["pytorch/pytorch:*".into(), "ubuntu:22.04".into()],
            ..bare
        };
        assert_eq!(roundtrip(&SignedEnvelope::seal(&identity, &declared)).unwrap(), declared);
    }

    #[test]
    fn the_image_allow_list_matches_exactly_or_by_prefix() {
        let allowed = vec!["pytorch/pytorch:*".to_owned(), "ubuntu:22.04".to_owned()];
        assert!(image_allowed(&allowed, "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"));
        assert!(image_allowed(&allowed, "ubuntu:22.04"));
        assert!(!image_allowed(&allowed, "ubuntu:24.04"));
        assert!(!image_allowed(&allowed, "ubuntu:22.04.1"), "an exact entry is not a prefix");
        assert!(!image_allowed(&allowed, "evil/pytorch/pytorch:1"));
        assert!(image_allowed(&[], "anything:1"), "no list allows every image");
        for good in ["nvidia/cuda:*", "ubuntu:22.04", "registry:5000/team/*"] {
            assert_eq!(check_image_pattern(good), Ok(()), "{good}");
        }
        assert!(check_image_pattern("*").unwrap_err().contains("empty list"));
    }

    #[test]
    fn an_offer_is_ready_for_an_image_pulled_ahead_or_allowed() {
        let identity = Identity::generate();
        let offer = Offer {
            images: vec!["nvidia/cuda:12.4.1-base-ubuntu22.04".into()],
            allowed_images: vec!["pytorch/pytorch:*".into()],
            ..sample(&identity, &PrivateKeySigner::random())
        };
        assert!(offer.ready_for("nvidia/cuda:12.4.1-base-ubuntu22.04"), "pulled ahead");
        assert!(offer.ready_for("pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"), "allowed");
        assert!(!offer.ready_for("ubuntu:22.04"), "neither");
        assert!(!offer.ready_for("nvidia/cuda:12.6.0-base-ubuntu22.04"), "another tag");
    }

    #[test]
    fn offer_id_is_stable_and_parses() {
        let peer = Identity::generate().peer_id();
        let id = OfferId::of(&peer);
        assert_eq!(id, OfferId::of(&peer));
        assert_eq!(id.to_string().parse::<OfferId>().unwrap(), id);
        assert!("xyz".parse::<OfferId>().is_err());
    }
}
