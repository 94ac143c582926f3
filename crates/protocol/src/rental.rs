use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::{Launch, OfferId, PublishedPort, Share};

/// A request sent to a provider over `/gpuflow/rental/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RentalRequest {
    /// Terms for renting the provider's machine for `duration` seconds.
    Quote {
        /// Who will open the rental; the quote is only valid for this address.
        renter: Address,
        /// Seconds wanted at first (the quote allows extending up to its maximum).
        duration: u64,
        /// Container image the renter wants to run; `None` takes the provider's default.
        /// Absent from older clients' requests.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// The renter's SSH public key (one OpenSSH line), installed in the workload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_key: Option<String>,
        /// How many of the offer's free GPUs to rent; `None` rents all of them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gpus: Option<u32>,
        /// Environment, ports and command for the renter's container.
        #[serde(default, skip_serializing_if = "Launch::is_empty")]
        launch: Launch,
    },
    /// Where is the workload of this on-chain rental?
    Status {
        /// Rental id in `GpuEscrow`.
        rental_id: u64,
    },
    /// The recent log lines of a rental's workload; only its renter may read them.
    Logs {
        /// Rental id in `GpuEscrow`.
        rental_id: u64,
        /// Unix time the renter signed the request; providers refuse old ones.
        issued_at: u64,
        /// The renter's EIP-191 signature over [`logs_request_message`] for this rental,
        /// the provider's escrow and chain, and `issued_at`.
        signature: alloy::primitives::Signature,
    },
    /// The volumes the provider keeps for a renter; only that renter may list them.
    Volumes {
        /// The renter.
        renter: Address,
        /// Unix time the renter signed the request; providers refuse old ones.
        issued_at: u64,
        /// The renter's EIP-191 signature over [`volumes_request_message`].
        signature: alloy::primitives::Signature,
    },
}

/// One of a renter's volumes on a provider's machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    /// The renter's name for it.
    pub name: String,
    /// The live rental it is mounted in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use_by: Option<u64>,
    /// When it is deleted unless a rental uses it again first, unix seconds (chain time);
    /// `None` while in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_at: Option<u64>,
}

/// A provider's answer on `/gpuflow/rental/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RentalResponse {
    /// Signed terms to open the rental with on `GpuEscrow`.
    Quote(SignedQuote),
    /// State of a rental's workload.
    Status(WorkloadStatus),
    /// Log lines of a rental's workload, oldest first.
    Logs {
        /// The last lines the workload wrote to stdout and stderr.
        lines: Vec<String>,
    },
    /// A renter's volumes on the machine.
    Volumes {
        /// Each volume, by name.
        volumes: Vec<VolumeInfo>,
    },
    /// The request could not be served.
    Error {
        /// Why, in words.
        message: String,
    },
}

/// Lifecycle of a rental's workload on the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadState {
    /// The provider has not seen this rental (yet).
    Unknown,
    /// Seen on chain, workload starting.
    Starting,
    /// Workload running.
    Running,
    /// Workload ended (rental over or stopped).
    Ended,
    /// The provider refused the rental, or its workload could not start; its signed
    /// refusal returns the whole deposit.
    Refused,
}

impl std::fmt::Display for WorkloadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unknown => "unknown",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Ended => "ended",
            Self::Refused => "refused",
        })
    }
}

/// What a provider reports about one rental's workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadStatus {
    /// Rental id in `GpuEscrow`.
    pub rental_id: u64,
    /// Where the workload is in its life.
    pub state: WorkloadState,
    /// UUIDs of the GPUs given to the workload.
    pub gpus: Vec<String>,
    /// Unix time the workload started.
    pub started_at: Option<u64>,
    /// Unix time the workload ended.
    pub ended_at: Option<u64>,
    /// How to reach the workload, or why it is not running.
    pub detail: String,
    /// For a refused rental: the provider's EIP-712 signature of `Refusal(rentalId)`, with
    /// which anyone may call `GpuEscrow.refuse` to return the whole deposit to the renter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Bytes>,
    /// Where the renter logs in with the key they gave, while the workload runs in a
    /// runtime with an SSH server. It follows the workload: a container restarted by its
    /// engine may listen on another port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshEndpoint>,
    /// The renter's other published ports (`gpuflow rent --port`), at the SSH host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PublishedPort>,
}

/// An SSH server a renter logs in to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshEndpoint {
    /// Host name or IP, as the provider publishes it.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User to log in as.
    pub user: String,
}

impl std::fmt::Display for SshEndpoint {
    /// The command a renter would type: `ssh -p PORT USER@HOST`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ssh -p {} {}@{}", self.port, self.user, self.host)
    }
}

/// The terms of a rental as the provider signs them: the `Quote` struct of `GpuEscrow`,
/// signed as EIP-712 typed data by the provider's payout key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteTerms {
    /// Provider's payout address; the signer.
    pub provider: Address,
    /// The only renter who may use the quote.
    pub renter: Address,
    /// Token units per second.
    #[serde(with = "crate::offer::decimal_string")]
    pub rate_per_second: u128,
    /// Most seconds the rental may last, extensions included.
    pub max_duration: u64,
    /// Unix time after which the quote cannot open a rental.
    pub deadline: u64,
    /// What is rented: the offer id and the number of GPUs, see [`QuoteTerms::machine`].
    pub offer_id: B256,
    /// Single-use nonce of the provider.
    pub nonce: U256,
}

impl QuoteTerms {
    /// The `offerId` a quote signs: the 8-byte offer id, then the number of GPUs rented
    /// as a big-endian `u32`, then zeros. Signed with the terms, it records on chain how
    /// many of the machine's GPUs the rate pays for.
    pub fn machine(offer: OfferId, gpus: u32) -> B256 {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&offer.to_bytes());
        id[8..12].copy_from_slice(&gpus.to_be_bytes());
        B256::from(id)
    }

    /// The offer id and GPU count of [`QuoteTerms::machine`], if `offer_id` is in that form.
    pub fn rented(&self) -> Option<(OfferId, u32)> {
        Self::rented_machine(self.offer_id)
    }

    /// The offer id and GPU count a quote's (or a rental's) `offerId` names, if it is in the
    /// form of [`QuoteTerms::machine`].
    /// A zero GPU count rents nothing, so such an `offerId` names no machine.
    pub fn rented_machine(offer_id: B256) -> Option<(OfferId, u32)> {
        let id = offer_id.as_slice();
        let gpus = u32::from_be_bytes(id[8..12].try_into().expect("4 bytes"));
        if gpus == 0 || id[12..].iter().any(|b| *b != 0) {
            return None;
        }
        Some((OfferId::from_bytes(id[..8].try_into().expect("8 bytes")), gpus))
    }
}

/// A quote and the provider's EIP-712 signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedQuote {
    /// The terms.
    pub terms: QuoteTerms,
    /// The provider's signature (65 bytes, or an ERC-1271 blob for contract wallets).
    pub signature: Bytes,
    /// The CPUs, memory and processes the rental gets beside its GPUs, where the
    /// provider's runtime sets them; not part of the signed terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
}

/// Longest container image reference accepted in a quote request.
const MAX_IMAGE_LEN: usize = 255;
/// Longest SSH public key line accepted in a quote request (a 16384-bit RSA key fits).
const MAX_SSH_KEY_LEN: usize = 4096;

/// Key types an SSH public key line may start with.
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

impl RentalRequest {
    /// Checks a quote request's image; see [`check_image`].
    pub fn check_image(image: &str) -> Result<(), String> {
        check_image(image)
    }

    /// Checks a quote request's SSH key and returns it trimmed; see
    /// [`check_ssh_public_key`].
    pub fn check_ssh_public_key(key: &str) -> Result<String, String> {
        check_ssh_public_key(key)
    }
}

/// Checks a container image reference (`[registry[:port]/]name[:tag][@digest]`) for the
/// characters and length Docker accepts, so nothing else reaches a runtime.
fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() || image.len() > MAX_IMAGE_LEN {
        return Err(format!("an image reference has 1 to {MAX_IMAGE_LEN} characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@+".contains(c);
    if let Some(bad) = image.chars().find(|c| !allowed(*c)) {
        return Err(format!("image `{image}` contains {bad:?}, which no image reference has"));
    }
    if image.starts_with(['-', '.', '/', ':', '@']) {
        return Err(format!("image `{image}` does not start with a name"));
    }
    Ok(())
}

/// Checks that `key` is one OpenSSH public key line (`TYPE BASE64 [comment]`), and
/// returns it trimmed. A private key, or anything else, is refused without echoing it.
fn check_ssh_public_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.contains("PRIVATE KEY") {
        return Err("this is a private key; give the public one (the `.pub` file)".into());
    }
    if key.len() > MAX_SSH_KEY_LEN {
        return Err(format!("an SSH public key line has at most {MAX_SSH_KEY_LEN} characters"));
    }
    if key.contains(['\n', '\r']) || key.chars().any(char::is_control) {
        return Err("an SSH public key is a single line of text".into());
    }
    let mut parts = key.split_whitespace();
    let kind = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    if !SSH_KEY_TYPES.contains(&kind) {
        return Err(format!(
            "not an SSH public key: it should start with one of {}",
            SSH_KEY_TYPES.join(", ")
        ));
    }
    let base64 = |c: char| c.is_ascii_alphanumeric() || "+/=".contains(c);
    if body.len() < 16 || !body.chars().all(base64) {
        return Err(format!("not an SSH public key: the part after `{kind}` is not base64"));
    }
    Ok(key.to_owned())
}

/// The text a renter signs (EIP-191) to read a rental's logs: it names the rental, the
/// escrow and chain it lives on, and a time, so a signature cannot be replayed for another
/// rental, on another deployment, or long after.
pub fn logs_request_message(
    chain_id: u64,
    escrow: Address,
    rental_id: u64,
    issued_at: u64,
) -> String {
    format!(
        "gpuflow: read the logs of rental {rental_id} of escrow {escrow} on chain {chain_id} at \
         {issued_at}"
    )
}

/// The text a renter signs (EIP-191) to list its volumes on a machine: it names the
/// renter, the escrow and chain, and a time, like [`logs_request_message`].
pub fn volumes_request_message(
    chain_id: u64,
    escrow: Address,
    renter: Address,
    issued_at: u64,
) -> String {
    format!(
        "gpuflow: list the volumes of {renter} on escrow {escrow} on chain {chain_id} at \
         {issued_at}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_requests_of_older_clients_still_parse() {
        let renter = Address::repeat_byte(7);
        let old = format!(r#"{{"type":"quote","renter":"{renter}","duration":60}}"#);
        let parsed: RentalRequest = serde_json::from_str(&old).unwrap();
        assert_eq!(
            parsed,
            RentalRequest::Quote {
                renter,
                duration: 60,
                image: None,
                ssh_key: None,
                gpus: None,
                launch: Launch::default(),
            }
        );
        // Without image or key the request is byte for byte what older providers expect.
        assert_eq!(serde_json::to_string(&parsed).unwrap(), old);
        let new = RentalRequest::Quote {
            renter,
            duration: 60,
            image: Some("ubuntu:22.04".into()),
            ssh_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA me".into()),
            gpus: Some(1),
            launch: Launch {
                env: vec!["HF_TOKEN=x".into()],
                ports: vec![8888],
                cmd: Some("jupyter lab".into()),
                volume: Some(crate::VolumeMount::parse("data").unwrap()),
            },
        };
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<RentalRequest>(&text).unwrap(), new);
    }

    #[test]
    fn quoted_machines_carry_the_offer_and_the_gpu_count() {
        let offer: OfferId = "3f9c2a1b7d4e5f60".parse().unwrap();
        let terms = |offer_id| QuoteTerms {
            provider: Address::ZERO,
            renter: Address::ZERO,
            rate_per_second: 1,
            max_duration: 1,
            deadline: 1,
            offer_id,
            nonce: U256::ZERO,
        };
        let id = QuoteTerms::machine(offer, 3);
        assert_eq!(id.to_string(), format!("0x3f9c2a1b7d4e5f6000000003{}", "0".repeat(40)));
        assert_eq!(terms(id).rented(), Some((offer, 3)));
        assert_eq!(terms(B256::repeat_byte(1)).rented(), None);
    }

    #[test]
    fn images_are_references_only() {
        for good in ["ubuntu", "ubuntu:22.04", "registry:5000/team/img:v1", "img@sha256:abc"] {
            assert_eq!(check_image(good), Ok(()), "{good}");
        }
        for bad in ["", "ubuntu; rm -rf /", "-v", "a b", &"x".repeat(MAX_IMAGE_LEN + 1)] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_keys_are_one_public_key_line() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx renter@laptop";
        assert_eq!(check_ssh_public_key(&format!("{key}\n")).unwrap(), key);
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n";
        let err = check_ssh_public_key(private).unwrap_err();
        assert!(err.contains("private key") && !err.contains("b3Bl"), "{err}");
        assert!(check_ssh_public_key("hello world").unwrap_err().contains("ssh-ed25519"));
        assert!(check_ssh_public_key("ssh-rsa not*base64*at*all").is_err());
        assert!(check_ssh_public_key(&format!("{key}\n{key}")).is_err(), "two lines");
    }
}
