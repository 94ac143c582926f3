use serde::{Deserialize, Serialize};

/// A request sent to a provider over `/gpuflow/rental/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RentalRequest {
    /// Where is the workload of this on-chain rental?
    Status {
        /// Rental id in `GpuEscrow`.
        rental_id: u64,
    },
}

/// A provider's answer on `/gpuflow/rental/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RentalResponse {
    /// State of a rental's workload.
    Status(WorkloadStatus),
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
