//! The node's side: which rows to ask for, and the exact check of what comes back.
//!
//! Rows are chosen from a secret only the node knows and the commitment just received, so
//! the provider cannot know them before it committed. Each opened row's Merkle path must
//! lead to its product's committed root, and each row must pass Freivalds' test with one
//! random vector `x` (entries below 2^20): `C_i · x = A_i · (B · x)`. `B · x` costs `n²`
//! per product opened, each row `2n`; all in `i64`, where nothing can overflow (`|C_i · x|
//! < n · 4n · 2^20 ≤ 2^52`). A wrong row passes with probability at most 2^-20.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::B256;
use sha2::{Digest, Sha256};

use super::{
    Challenge, Commitment, Opening, Outcome, RowRef,
    matrix::{self, Factor},
    merkle,
};

const ROWS_TAG: &[u8] = b"gpuflow/challenge/rows/1\n";
const X_TAG: &[u8] = b"gpuflow/challenge/freivalds/1\n";
/// Entries of Freivalds' vector are below this.
const X_BOUND: u32 = 1 << 20;

/// Why an answer failed the check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The answer names another challenge's seed: it was computed for another challenge.
    #[error("the answer is for challenge {found}, not {expected}: a replayed answer")]
    Replayed {
        /// The seed sent.
        expected: B256,
        /// The seed answered.
        found: B256,
    },
    /// The answer does not have the challenge's shape, or does not open the rows asked.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// An opened row's Merkle path does not lead to the committed root.
    #[error(
        "row {} of product {} does not match the commitment (its Merkle path fails)",
        .0.row,
        .0.product
    )]
    CommitmentMismatch(RowRef),
    /// An opened row fails Freivalds' test: it is not that row of the product.
    #[error("row {} of product {} is not the product's row (Freivalds' test fails)", .0.row, .0.product)]
    WrongRow(RowRef),
}

impl CheckError {
    /// The outcome a node records for this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Replayed { .. } => Outcome::Replayed,
            Self::Malformed(_) => Outcome::Malformed,
            Self::CommitmentMismatch(_) => Outcome::CommitmentMismatch,
            Self::WrongRow(_) => Outcome::WrongRow,
        }
    }
}

/// Checks that `commitment` answers `challenge`: its seed (else it is a replay) and its
/// shape.
pub fn check_commitment(challenge: &Challenge, commitment: &Commitment) -> Result<(), CheckError> {
    if commitment.seed != challenge.seed {
        return Err(CheckError::Replayed { expected: challenge.seed, found: commitment.seed });
    }
    if commitment.n != challenge.n
        || commitment.rounds != challenge.rounds
        || commitment.gpus != challenge.gpus
    {
        return Err(CheckError::Malformed(format!(
            "committed to n={} rounds={} gpus={:?}, asked n={} rounds={} gpus={:?}",
            commitment.n,
            commitment.rounds,
            commitment.gpus,
            challenge.n,
            challenge.rounds,
            challenge.gpus
        )));
    }
    if commitment.roots.len() != challenge.products() as usize {
        return Err(CheckError::Malformed(format!(
            "{} roots for {} products",
            commitment.roots.len(),
            challenge.products()
        )));
    }
    Ok(())
}

/// The `k` distinct rows to ask for (fewer when the challenge has fewer), drawn from the
/// node's `secret` and the commitment, in a fixed order.
pub fn choose_rows(
    challenge: &Challenge,
    commitment: &Commitment,
    secret: B256,
    k: usize,
) -> Vec<RowRef> {
    let (products, n) = (u64::from(challenge.products()), u64::from(challenge.n));
    let k = k.min((products * n) as usize);
    let mut draw = Sha256::new().chain_update(ROWS_TAG).chain_update(secret);
    for root in &commitment.roots {
        draw.update(root);
    }
    let mut chosen = BTreeSet::new();
    let mut counter = 0u64;
    while chosen.len() < k {
        let digest = draw.clone().chain_update(counter.to_le_bytes()).finalize();
        counter += 1;
        let word = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let pick = word % (products * n);
        chosen.insert(RowRef { product: (pick / n) as u32, row: (pick % n) as u32 });
    }
    chosen.into_iter().collect()
}

/// Freivalds' vector for `secret`: `n` entries in `[0, 2^20)`.
fn freivalds_vector(secret: B256, n: usize) -> Vec<i64> {
    let mut x = Vec::with_capacity(n);
    let mut block = 0u64;
    while x.len() < n {
        let digest = Sha256::new()
            .chain_update(X_TAG)
            .chain_update(secret)
            .chain_update(block.to_le_bytes());
        block += 1;
        for word in digest.finalize().chunks_exact(4) {
            let word = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            x.push(i64::from(word % X_BOUND));
        }
    }
    x.truncate(n);
    x
}

/// Checks `opening` against the `commitment` already checked for `challenge`: it opens
/// exactly the rows `asked`, every path leads to its product's root, and every row passes
/// Freivalds' test with the vector drawn from `secret`.
pub fn check_opening(
    challenge: &Challenge,
    commitment: &Commitment,
    asked: &[RowRef],
    opening: &Opening,
    secret: B256,
) -> Result<(), CheckError> {
    if opening.seed != challenge.seed {
        return Err(CheckError::Replayed { expected: challenge.seed, found: opening.seed });
    }
    let opened: Vec<RowRef> = opening.rows.iter().map(|row| row.at).collect();
    if opened != asked {
        return Err(CheckError::Malformed(format!("opened rows {opened:?}, asked for {asked:?}")));
    }
    let n = challenge.n as usize;
    for row in &opening.rows {
        if row.values.len() != n {
            return Err(CheckError::Malformed(format!(
                "row {} of product {} has {} entries, not {n}",
                row.at.row,
                row.at.product,
                row.values.len()
            )));
        }
        let leaf = merkle::leaf(challenge.seed, row.at.product, row.at.row, &row.values);
        let root = commitment.roots[row.at.product as usize];
        if !merkle::verify(root, n, row.at.row as usize, leaf, &row.path) {
            return Err(CheckError::CommitmentMismatch(row.at));
        }
    }
    let x = freivalds_vector(secret, n);
    let mut bx_of: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for row in &opening.rows {
        let bx = bx_of.entry(row.at.product).or_insert_with(|| {
            let b = matrix::factor(challenge.seed, row.at.product, Factor::B, n);
            b.chunks_exact(n)
                .map(|b_j| b_j.iter().zip(&x).map(|(&b, &x)| i64::from(b) * x).sum())
                .collect()
        });
        let a = matrix::row(challenge.seed, row.at.product, Factor::A, n, row.at.row as usize);
        let left: i64 = row.values.iter().zip(&x).map(|(&c, &x)| i64::from(c) * x).sum();
        let right: i64 = a.iter().zip(bx.iter()).map(|(&a, &bx)| i64::from(a) * bx).sum();
        if left != right {
            return Err(CheckError::WrongRow(row.at));
        }
    }
    Ok(())
}

/// The node's side of one challenge, step by step: the commitment gives the rows to ask
/// for, the opening is checked against both, and [`Verifier::conclude`] writes the result.
#[derive(Clone, Debug)]
pub struct Verifier {
    challenge: Challenge,
    provider: libp2p_identity::PeerId,
    secret: B256,
    rows: usize,
    commitment: Option<Commitment>,
    asked: Vec<RowRef>,
}

impl Verifier {
    /// Checks the answers of `provider` to `challenge`, opening `rows` rows chosen with the
    /// node's fresh random `secret` (which must differ from the seed, and stay unsent).
    pub fn new(
        challenge: Challenge,
        provider: libp2p_identity::PeerId,
        secret: B256,
        rows: usize,
    ) -> Self {
        Self { challenge, provider, secret, rows, commitment: None, asked: Vec::new() }
    }

    /// The challenge checked.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// Takes the signed commitment: checks its signer, signature and challenge, and answers
    /// the rows to ask for.
    pub fn on_commitment(
        &mut self,
        envelope: crate::SignedEnvelope,
    ) -> Result<Vec<RowRef>, CheckError> {
        let commitment = self.open::<Commitment>(envelope)?;
        check_commitment(&self.challenge, &commitment)?;
        self.asked = choose_rows(&self.challenge, &commitment, self.secret, self.rows);
        self.commitment = Some(commitment);
        Ok(self.asked.clone())
    }

    /// Takes the signed opening of the rows asked and checks it.
    pub fn on_opening(&self, envelope: crate::SignedEnvelope) -> Result<(), CheckError> {
        let commitment = self
            .commitment
            .as_ref()
            .ok_or_else(|| CheckError::Malformed("an opening before the commitment".into()))?;
        let opening = self.open::<Opening>(envelope)?;
        check_opening(&self.challenge, commitment, &self.asked, &opening, self.secret)
    }

    fn open<T: crate::Message>(&self, envelope: crate::SignedEnvelope) -> Result<T, CheckError> {
        let verified = envelope.open::<T>().map_err(|e| CheckError::Malformed(e.to_string()))?;
        if verified.signer != self.provider {
            return Err(CheckError::Malformed(format!(
                "signed by {}, not by the provider challenged",
                verified.signer
            )));
        }
        Ok(verified.body)
    }

    /// The result to sign and store: `checked` is how the answers fared, `elapsed_ms` the
    /// time from sending the challenge to receiving the commitment, `gpu_name` the model
    /// the offer claims and `expected` what it computes per GPU, TFLOP/s (nodes pass
    /// [`super::verdict::expected_tflops`]).
    pub fn conclude(
        &self,
        checked: Result<(), CheckError>,
        issued_at: u64,
        elapsed_ms: u64,
        gpu_name: &str,
        expected: Option<f64>,
    ) -> super::ChallengeResult {
        let proven =
            super::verdict::proven_tflops(self.challenge.n, self.challenge.rounds, elapsed_ms);
        let (outcome, reason) = match checked {
            Ok(()) => super::verdict::judge(gpu_name, expected, proven),
            Err(error) => (error.outcome(), error.to_string()),
        };
        super::ChallengeResult {
            provider: self.provider.to_string(),
            seed: self.challenge.seed,
            n: self.challenge.n,
            rounds: self.challenge.rounds,
            gpus: self.challenge.gpus.clone(),
            gpu_name: gpu_name.to_owned(),
            issued_at,
            elapsed_ms,
            // A wrong answer proves nothing.
            proven_tflops: if outcome.ok() || outcome == Outcome::TooSlow { proven } else { 0.0 },
            expected_tflops: expected,
            outcome,
            reason,
        }
    }
}
