//! The matrix-product challenge: a node's check, anyone can repeat, that a provider's
//! machine computes dense matrix products about as fast as the GPUs it claims.
//!
//! Over `/gpuflow/challenge/1` a node sends a [`Challenge`] (a random seed, a matrix size
//! `n`, a number of rounds and the GPUs to use). For each GPU and round the provider
//! derives two `n × n` matrices of small integers from the seed ([`matrix`]), multiplies
//! them and answers with a signed [`Commitment`]: one Merkle root over the rows of each
//! product ([`merkle`]). Only then does the node pick rows at random and ask for them;
//! the provider answers with a signed [`Opening`] (the rows and their Merkle paths). The
//! node checks every path against the committed root and every row with Freivalds' test
//! ([`check`]), exactly, in integers, without redoing the product. The time from sending
//! the challenge to receiving the commitment gives a throughput, compared with what the
//! claimed model can do ([`verdict`]). The node signs what it concluded as a
//! [`ChallengeResult`].
//!
//! `node/CHALLENGE.md` states the protocol, the formulas and what a passing challenge does
//! and does not prove.

mod answer;
pub mod check;
pub mod matrix;
pub mod merkle;
pub mod verdict;

use alloy::primitives::B256;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::{MAX_GPUS, MessageKind, ProtocolError, SignedEnvelope, envelope::Message};

pub use answer::Answer;

/// Smallest matrix size a challenge may ask for.
pub const MIN_N: u32 = 64;
/// Largest matrix size a challenge may ask for: every entry of a product stays an exact
/// integer in fp32 (`n · 2 · 2 < 2^24`), and an opened row stays under 128 KiB of JSON.
pub const MAX_N: u32 = 16_384;
/// Most products per GPU in one challenge.
pub const MAX_ROUNDS: u32 = 64;
/// Most rows a node asks to see in one opening.
pub const MAX_OPENED_ROWS: usize = 16;
/// Largest encoded [`Opening`] envelope accepted, in bytes: [`MAX_OPENED_ROWS`] rows of
/// [`MAX_N`] entries, with their paths.
pub const MAX_OPENING_SIZE: usize = 4 * 1024 * 1024;
/// Largest encoded [`Commitment`] envelope accepted, in bytes: a root per product.
pub const MAX_COMMITMENT_SIZE: usize = 256 * 1024;

/// Longest GPU UUID a challenge may name.
const MAX_UUID_LEN: usize = 128;

/// Whether `n` is a size a challenge may use: a power of two in [`MIN_N`]..=[`MAX_N`], so
/// the Merkle tree over its rows is perfect and a row is a whole number of generator words.
pub fn valid_size(n: u32) -> bool {
    n.is_power_of_two() && (MIN_N..=MAX_N).contains(&n)
}

/// A node's challenge to a provider, the first request of `/gpuflow/challenge/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Fresh random bytes: the matrices derive from it, and it names the challenge, so an
    /// answer to another challenge never verifies.
    pub seed: B256,
    /// Rows and columns of every matrix; see [`valid_size`].
    pub n: u32,
    /// Products per GPU, each with its own matrices.
    pub rounds: u32,
    /// The GPUs to compute on, by UUID, as the provider's offer lists them.
    pub gpus: Vec<String>,
}

impl Challenge {
    /// How many products the challenge asks for: one per GPU and round.
    pub fn products(&self) -> u32 {
        self.gpus.len() as u32 * self.rounds
    }

    /// Refuses a challenge a provider need not compute.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if !valid_size(self.n) {
            return Err(ProtocolError::field(
                "n",
                format!("{} is not a power of two in {MIN_N}..={MAX_N}", self.n),
            ));
        }
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return Err(ProtocolError::field("rounds", format!("must be 1..={MAX_ROUNDS}")));
        }
        if self.gpus.is_empty() || self.gpus.len() > MAX_GPUS {
            return Err(ProtocolError::field("gpus", format!("must name 1..={MAX_GPUS} GPUs")));
        }
        if self.gpus.iter().any(|uuid| uuid.is_empty() || uuid.len() > MAX_UUID_LEN) {
            return Err(ProtocolError::field(
                "gpus",
                format!("a GPU UUID must be 1..={MAX_UUID_LEN} bytes"),
            ));
        }
        let mut sorted = self.gpus.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.gpus.len() {
            return Err(ProtocolError::field("gpus", "names a GPU twice"));
        }
        Ok(())
    }
}

/// Which row of which product: products are numbered GPU-major, `gpu slot · rounds +
/// round`, where the slot is the GPU's position in [`Challenge::gpus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RowRef {
    /// The product.
    pub product: u32,
    /// The row of its result.
    pub row: u32,
}

/// What computed the products, as the provider says; informative only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A plain integer product on the CPU (machines without CUDA, tests).
    Cpu,
    /// cuBLAS on the GPUs, bf16 in, fp32 accumulation.
    Cuda,
}

/// A provider's commitment to the products of a [`Challenge`], sent before it knows which
/// rows will be asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// The challenge's seed.
    pub seed: B256,
    /// The challenge's matrix size.
    pub n: u32,
    /// The challenge's rounds.
    pub rounds: u32,
    /// The challenge's GPUs.
    pub gpus: Vec<String>,
    /// The Merkle root over the rows of each product, in product order.
    pub roots: Vec<B256>,
    /// What computed them.
    pub backend: Backend,
}

impl Message for Commitment {
    const KIND: MessageKind = MessageKind::ChallengeCommitment;
    const MAX_SIZE: usize = MAX_COMMITMENT_SIZE;

    fn validate(&self, _signer: &PeerId) -> Result<(), ProtocolError> {
        let challenge =
            Challenge { seed: self.seed, n: self.n, rounds: self.rounds, gpus: self.gpus.clone() };
        challenge.validate()?;
        if self.roots.len() != challenge.products() as usize {
            return Err(ProtocolError::field(
                "roots",
                format!("{} roots for {} products", self.roots.len(), challenge.products()),
            ));
        }
        Ok(())
    }
}

/// One opened row: its entries and the Merkle path from its leaf to its product's root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedRow {
    /// Which row.
    #[serde(flatten)]
    pub at: RowRef,
    /// The row of the product, `n` exact integers.
    pub values: Vec<i32>,
    /// Sibling hashes from the leaf up to the root.
    pub path: Vec<B256>,
}

/// A provider's answer to [`ChallengeRequest::Open`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// The challenge's seed.
    pub seed: B256,
    /// The rows asked for, in the order asked.
    pub rows: Vec<OpenedRow>,
}

impl Message for Opening {
    const KIND: MessageKind = MessageKind::ChallengeOpening;
    const MAX_SIZE: usize = MAX_OPENING_SIZE;

    fn validate(&self, _signer: &PeerId) -> Result<(), ProtocolError> {
        if self.rows.is_empty() || self.rows.len() > MAX_OPENED_ROWS {
            return Err(ProtocolError::field("rows", format!("must be 1..={MAX_OPENED_ROWS}")));
        }
        Ok(())
    }
}

/// A node's request on `/gpuflow/challenge/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChallengeRequest {
    /// Compute the products and commit to them.
    Challenge(Challenge),
    /// Show these rows of the committed products of the challenge with `seed`.
    Open {
        /// The challenge's seed.
        seed: B256,
        /// The rows, chosen after the commitment arrived.
        rows: Vec<RowRef>,
    },
}

/// A provider's answer on `/gpuflow/challenge/1`. Externally tagged (`{"commitment":
/// {...}}`): an envelope keeps its body's bytes, which an internally tagged enum cannot.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeResponse {
    /// A signed [`Commitment`].
    Commitment {
        /// The envelope.
        envelope: SignedEnvelope,
    },
    /// A signed [`Opening`].
    Opening {
        /// The envelope.
        envelope: SignedEnvelope,
    },
    /// Not computed, and why (GPUs rented, unknown challenge, a challenge already running).
    Refused {
        /// Why, in words.
        reason: String,
    },
}

/// What a node concluded from one challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    /// Every opened row was right and the throughput reached the claimed model's share.
    Passed,
    /// Every opened row was right; the claimed model is not in the table, so only the
    /// throughput is reported.
    Unrated,
    /// Every opened row was right, but the answer came too late for the claimed model.
    TooSlow,
    /// An opened row is not the product's row.
    WrongRow,
    /// An opened row does not match the committed root (its Merkle path fails).
    CommitmentMismatch,
    /// The answer belongs to another challenge.
    Replayed,
    /// The answer was malformed: a bad signature, the wrong signer, the wrong shape.
    Malformed,
}

impl Outcome {
    /// Whether the offer stays unflagged after this outcome.
    pub fn ok(self) -> bool {
        matches!(self, Self::Passed | Self::Unrated)
    }

    /// The outcome's name as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Unrated => "unrated",
            Self::TooSlow => "too_slow",
            Self::WrongRow => "wrong_row",
            Self::CommitmentMismatch => "commitment_mismatch",
            Self::Replayed => "replayed",
            Self::Malformed => "malformed",
        }
    }
}

/// A node's signed record of one challenge: what it asked, how long the commitment took,
/// what it checked and concluded. Served at `GET /v1/providers/{peer_id}/challenges`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeResult {
    /// The provider challenged.
    pub provider: String,
    /// The challenge's seed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub seed: B256,
    /// Matrix size.
    pub n: u32,
    /// Products per GPU.
    pub rounds: u32,
    /// The GPUs challenged, by UUID.
    pub gpus: Vec<String>,
    /// The GPU model the offer claims for them.
    pub gpu_name: String,
    /// Unix time the challenge was sent.
    pub issued_at: u64,
    /// Milliseconds from sending the challenge to receiving the commitment.
    pub elapsed_ms: u64,
    /// Dense throughput per GPU the answer proves, TFLOP/s (see [`verdict`]).
    pub proven_tflops: f64,
    /// What the claimed model computes per GPU, TFLOP/s, if the table knows it.
    pub expected_tflops: Option<f64>,
    /// The conclusion.
    pub outcome: Outcome,
    /// The conclusion in words, naming what was wrong.
    pub reason: String,
}

impl Message for ChallengeResult {
    const KIND: MessageKind = MessageKind::ChallengeResult;

    fn validate(&self, _signer: &PeerId) -> Result<(), ProtocolError> {
        if !self.proven_tflops.is_finite() || self.proven_tflops < 0.0 {
            return Err(ProtocolError::field("proven_tflops", "must be a finite, positive number"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
