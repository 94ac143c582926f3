use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

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
        /// The renter's EIP-191 signature over [`logs_request_message`]`(rental_id, issued_at)`.
        signature: alloy::primitives::Signature,
    },
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
    /// The provider refused the rental's terms; the renter should stop it for a refund.
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
    /// Provider-defined id of the machine (the offer id, left-aligned).
    pub offer_id: B256,
    /// Single-use nonce of the provider.
    pub nonce: U256,
}

/// A quote and the provider's EIP-712 signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedQuote {
    /// The terms.
    pub terms: QuoteTerms,
    /// The provider's signature (65 bytes, or an ERC-1271 blob for contract wallets).
    pub signature: Bytes,
}

/// The text a renter signs (EIP-191) to read a rental's logs: it names the rental and a
/// time, so a signature cannot be replayed for another rental or long after.
pub fn logs_request_message(rental_id: u64, issued_at: u64) -> String {
    format!("gpuflow: read the logs of rental {rental_id} at {issued_at}")
}
