//! The CPU path end to end: a provider answers, a node checks; each way of cheating is
//! caught.

use alloy::primitives::B256;

use super::{
    Answer, Backend, Challenge, Commitment, Opening, Outcome, RowRef,
    check::{CheckError, Verifier},
    matrix,
};
use crate::{Identity, SignedEnvelope};

const ROWS: usize = 4;

fn challenge(seed: u8) -> Challenge {
    Challenge {
        seed: B256::repeat_byte(seed),
        n: 64,
        rounds: 2,
        gpus: vec!["GPU-0".into(), "GPU-1".into()],
    }
}

fn secret() -> B256 {
    B256::repeat_byte(0xee)
}

/// Runs both exchanges the way a node does and returns the result it records, timed at
/// `elapsed_ms` (injected: tests never depend on real timing), for a machine claiming
/// `gpu_name` whose GPUs should compute `expected` TFLOP/s each.
fn run(
    provider: &Identity,
    asked: &Challenge,
    commit: impl FnOnce() -> Commitment,
    open: impl FnOnce(&[RowRef]) -> Opening,
    elapsed_ms: u64,
    (gpu_name, expected): (&str, Option<f64>),
) -> super::ChallengeResult {
    let mut verifier = Verifier::new(asked.clone(), provider.peer_id(), secret(), ROWS);
    let checked = verifier
        .on_commitment(SignedEnvelope::seal(provider, &commit()))
        .and_then(|rows| verifier.on_opening(SignedEnvelope::seal(provider, &open(&rows))));
    verifier.conclude(checked, 1_000, elapsed_ms, gpu_name, expected)
}

/// A small model the tests' 64³ products can keep up with, or not: 10⁻⁶ TFLOP/s.
const SMALL: (&str, Option<f64>) = ("Test GPU", Some(1e-6));
/// A model missing from the table.
const UNKNOWN: (&str, Option<f64>) = ("Simulated GPU", None);

fn honest(
    asked: &Challenge,
    elapsed_ms: u64,
    gpu_name: (&str, Option<f64>),
) -> super::ChallengeResult {
    let provider = Identity::generate();
    let answer = Answer::compute_cpu(asked);
    run(
        &provider,
        asked,
        || answer.commitment(),
        |rows| answer.open(rows).unwrap(),
        elapsed_ms,
        gpu_name,
    )
}

#[test]
fn a_correct_answer_passes_and_says_what_it_proved() {
    let asked = challenge(1);
    // An unknown model gets the throughput without a verdict.
    let result = honest(&asked, 5, UNKNOWN);
    assert_eq!(result.outcome, Outcome::Unrated, "{}", result.reason);
    assert!(result.outcome.ok());
    let expected = 2.0 * 2.0 * 64f64.powi(3) / 0.005 / 1e12;
    assert!((result.proven_tflops - expected).abs() < 1e-12, "{}", result.proven_tflops);
    // Two rounds of 2·64³ in 5 ms are 2.1e-4 TFLOP/s, over half of the model's 1e-6.
    let fast = honest(&asked, 5, SMALL);
    assert_eq!(fast.outcome, Outcome::Passed, "{}", fast.reason);
    assert_eq!(fast.expected_tflops, Some(1e-6));
}

#[test]
fn a_correct_but_slow_answer_is_too_slow_for_the_claimed_model() {
    // The same correct answer, timed at 20 minutes: 8.7e-10 TFLOP/s, under half of 1e-6.
    let result = honest(&challenge(2), 1_200_000, SMALL);
    assert_eq!(result.outcome, Outcome::TooSlow, "{}", result.reason);
    assert!(!result.outcome.ok());
    assert!(result.proven_tflops > 0.0);
    assert!(result.reason.contains("too slow"), "{}", result.reason);
}

#[test]
fn a_wrong_row_committed_and_opened_fails_freivalds() {
    let asked = challenge(3);
    let provider = Identity::generate();
    // The provider commits to products with one entry off in every row, and opens what
    // it committed to: the paths verify, the rows do not.
    let cheat = Answer::from_products(&asked, Backend::Cpu, |p| {
        let mut c = matrix::product(asked.seed, p, 64);
        for row in c.chunks_exact_mut(64) {
            row[7] += 1;
        }
        c
    });
    let result = run(
        &provider,
        &asked,
        || cheat.commitment(),
        |rows| {
            let mut opening = cheat.open(rows).unwrap();
            for row in &mut opening.rows {
                row.values[7] += 1;
            }
            opening
        },
        0,
        SMALL,
    );
    assert_eq!(result.outcome, Outcome::WrongRow, "{}", result.reason);
    assert_eq!(result.proven_tflops, 0.0);
    assert!(result.reason.contains("Freivalds"), "{}", result.reason);
}

#[test]
fn a_row_that_does_not_match_the_commitment_is_caught() {
    let asked = challenge(4);
    let provider = Identity::generate();
    let answer = Answer::compute_cpu(&asked);
    // The rows are right, but the roots committed to are not theirs.
    let mut commitment = answer.commitment();
    commitment.roots[0] = B256::repeat_byte(0x55);
    commitment.roots[1] = B256::repeat_byte(0x55);
    commitment.roots[2] = B256::repeat_byte(0x55);
    commitment.roots[3] = B256::repeat_byte(0x55);
    let result = run(&provider, &asked, || commitment, |rows| answer.open(rows).unwrap(), 0, SMALL);
    assert_eq!(result.outcome, Outcome::CommitmentMismatch, "{}", result.reason);

    // A row changed after committing: its path no longer leads to the root.
    let result = run(
        &provider,
        &asked,
        || answer.commitment(),
        |rows| {
            let mut opening = answer.open(rows).unwrap();
            opening.rows[0].values[0] += 1;
            opening
        },
        0,
        SMALL,
    );
    assert_eq!(result.outcome, Outcome::CommitmentMismatch, "{}", result.reason);
}

#[test]
fn an_answer_to_another_challenge_is_a_replay() {
    let provider = Identity::generate();
    let old = Answer::compute_cpu(&challenge(5));
    let asked = challenge(6);
    // Sent as it was.
    let result =
        run(&provider, &asked, || old.commitment(), |rows| old.open(rows).unwrap(), 0, SMALL);
    assert_eq!(result.outcome, Outcome::Replayed, "{}", result.reason);
    // Relabelled with the new seed: the old rows' leaves name the old seed, so no path
    // verifies.
    let result = run(
        &provider,
        &asked,
        || Commitment { seed: asked.seed, ..old.commitment() },
        |rows| {
            let mut opening = old.open(rows).unwrap();
            opening.seed = asked.seed;
            opening
        },
        0,
        SMALL,
    );
    assert_eq!(result.outcome, Outcome::CommitmentMismatch, "{}", result.reason);
}

#[test]
fn an_answer_signed_by_another_peer_or_shaped_otherwise_is_malformed() {
    let asked = challenge(7);
    let answer = Answer::compute_cpu(&asked);
    let mut verifier = Verifier::new(asked.clone(), Identity::generate().peer_id(), secret(), ROWS);
    let error = verifier
        .on_commitment(SignedEnvelope::seal(&Identity::generate(), &answer.commitment()))
        .unwrap_err();
    assert!(matches!(error, CheckError::Malformed(_)), "{error}");

    let provider = Identity::generate();
    let fewer_rounds = Challenge { rounds: 1, ..asked.clone() };
    let short = Answer::compute_cpu(&fewer_rounds);
    let result =
        run(&provider, &asked, || short.commitment(), |rows| short.open(rows).unwrap(), 0, SMALL);
    assert_eq!(result.outcome, Outcome::Malformed, "{}", result.reason);
}

#[test]
fn rows_are_drawn_after_the_commitment_and_distinct() {
    let asked = challenge(8);
    let answer = Answer::compute_cpu(&asked);
    let commitment = answer.commitment();
    let rows = super::check::choose_rows(&asked, &commitment, secret(), 16);
    assert_eq!(rows.len(), 16);
    assert!(rows.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(rows.iter().all(|r| r.product < 4 && r.row < 64));
    // Another secret, or another commitment, draws other rows.
    assert_ne!(rows, super::check::choose_rows(&asked, &commitment, B256::repeat_byte(1), 16));
    let other = Commitment { roots: vec![B256::ZERO; 4], ..commitment };
    assert_ne!(rows, super::check::choose_rows(&asked, &other, secret(), 16));
}

#[test]
fn challenges_a_provider_need_not_compute_are_refused() {
    let ok = challenge(9);
    ok.validate().unwrap();
    for bad in [
        Challenge { n: 100, ..ok.clone() },
        Challenge { n: 32, ..ok.clone() },
        Challenge { n: super::MAX_N * 2, ..ok.clone() },
        Challenge { rounds: 0, ..ok.clone() },
        Challenge { rounds: super::MAX_ROUNDS + 1, ..ok.clone() },
        Challenge { gpus: vec![], ..ok.clone() },
        Challenge { gpus: vec!["GPU-1".into(), "GPU-1".into()], ..ok.clone() },
        Challenge { gpus: vec![String::new()], ..ok.clone() },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    let answer = Answer::compute_cpu(&ok);
    assert!(answer.open(&[RowRef { product: 4, row: 0 }]).is_err());
    assert!(answer.open(&[RowRef { product: 0, row: 64 }]).is_err());
    assert!(answer.open(&[]).is_err());
}

#[test]
fn results_are_signed_and_open_for_anyone() {
    let node = Identity::generate();
    let result = honest(&challenge(10), 3, SMALL);
    let envelope = SignedEnvelope::seal(&node, &result);
    let opened = envelope.open::<super::ChallengeResult>().unwrap();
    assert_eq!(opened.signer, node.peer_id());
    assert_eq!(opened.body, result);
}

#[test]
fn answers_cross_the_wire_as_json() {
    let provider = Identity::generate();
    let answer = Answer::compute_cpu(&challenge(11));
    let envelope = SignedEnvelope::seal(&provider, &answer.commitment());
    let response = super::ChallengeResponse::Commitment { envelope };
    let bytes = serde_json::to_vec(&response).unwrap();
    let super::ChallengeResponse::Commitment { envelope } = serde_json::from_slice(&bytes).unwrap()
    else {
        panic!("not a commitment")
    };
    assert_eq!(envelope.open::<Commitment>().unwrap().body, answer.commitment());
    let request = super::ChallengeRequest::Open {
        seed: B256::ZERO,
        rows: vec![RowRef { product: 1, row: 2 }],
    };
    let bytes = serde_json::to_vec(&request).unwrap();
    assert_eq!(serde_json::from_slice::<super::ChallengeRequest>(&bytes).unwrap(), request);
}
