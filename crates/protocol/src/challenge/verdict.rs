//! From the time an answer took to a verdict on the claimed GPU model.
//!
//! A product of two `n × n` matrices is `2n³` floating-point operations (a multiply and an
//! add per term). Each challenged GPU computes `rounds` products, all GPUs at once, so the
//! throughput one GPU proves is
//!
//! ```text
//! proven_tflops = rounds · 2n³ / elapsed_seconds / 10¹²
//! ```
//!
//! with `elapsed` measured by the node from sending the challenge to receiving the
//! commitment. That time also holds the network's round trip, generating the matrices and
//! hashing the rows, so the figure is a lower bound of what the GPU computes. It passes
//! when it reaches [`PASS_SHARE`] of the claimed model's dense bf16 throughput
//! ([`expected_tflops`]); a model missing from the table gets the throughput and no speed
//! verdict.

use super::Outcome;

/// Share of the claimed model's throughput an answer must prove to pass. PyTorch reached
/// 776–780 TFLOP/s on 8192³ bf16 products on an H200, 79 % of the table's 989: half leaves
/// room for the time outside the products (network, generation, hashing).
pub const PASS_SHARE: f64 = 0.5;

/// Dense bf16 tensor throughput (fp32 accumulation, no sparsity) per GPU, TFLOP/s, from
/// the vendors' data sheets, by a part of the name NVML reports. The first match wins, so
/// the more specific names come first.
pub const EXPECTED_TFLOPS: &[(&str, f64)] = &[
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("RTX 4090", 165.0),
];

/// What a GPU named `gpu_name` (as NVML reports it) computes, per [`EXPECTED_TFLOPS`]; `None`
/// for a model not in the table.
pub fn expected_tflops(gpu_name: &str) -> Option<f64> {
    let name = gpu_name.to_ascii_lowercase();
    EXPECTED_TFLOPS
        .iter()
        .find(|(part, _)| name.contains(&part.to_ascii_lowercase()))
        .map(|&(_, tflops)| tflops)
}

/// The throughput per GPU, TFLOP/s, that `rounds` products of size `n` per GPU prove when
/// the commitment came `elapsed_ms` after the challenge (at least one millisecond).
pub fn proven_tflops(n: u32, rounds: u32, elapsed_ms: u64) -> f64 {
    let flops = f64::from(rounds) * 2.0 * f64::from(n).powi(3);
    flops / (elapsed_ms.max(1) as f64 / 1000.0) / 1e12
}

/// The verdict on a correct answer proving `proven` TFLOP/s per GPU for a GPU claimed as
/// `gpu_name` that should compute `expected` TFLOP/s (from [`expected_tflops`]), and why.
pub fn judge(gpu_name: &str, expected: Option<f64>, proven: f64) -> (Outcome, String) {
    let Some(expected) = expected else {
        return (
            Outcome::Unrated,
            format!(
                "correct; {proven:.3} TFLOP/s per GPU; {gpu_name} is not in the table of \
                 expected throughputs, so no speed verdict"
            ),
        );
    };
    let needed = expected * PASS_SHARE;
    if proven >= needed {
        (
            Outcome::Passed,
            format!(
                "correct; {proven:.3} TFLOP/s per GPU, at least the {needed:.1} a {gpu_name} \
                 must reach ({:.0}% of {expected:.0})",
                PASS_SHARE * 100.0
            ),
        )
    } else {
        (
            Outcome::TooSlow,
            format!(
                "correct but too slow: {proven:.3} TFLOP/s per GPU, under the {needed:.1} a \
                 {gpu_name} must reach ({:.0}% of {expected:.0}); the machine does not compute \
                 like the GPUs it offers",
                PASS_SHARE * 100.0
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_nvml_names_most_specific_first() {
        assert_eq!(expected_tflops("NVIDIA H200"), Some(989.0));
        assert_eq!(expected_tflops("NVIDIA H100 PCIe"), Some(756.0));
        assert_eq!(expected_tflops("NVIDIA H100 80GB HBM3"), Some(989.0));
        assert_eq!(expected_tflops("NVIDIA A100-SXM4-80GB"), Some(312.0));
        assert_eq!(expected_tflops("NVIDIA GeForce RTX 4090"), Some(165.0));
        assert_eq!(expected_tflops("Simulated GPU"), None);
    }

    #[test]
    fn throughput_counts_every_round() {
        // One 8192³ product is 1.0995 TFLOP; a hundred in 141 ms is about the 780 TFLOP/s
        // measured on an H200.
        let one = proven_tflops(8192, 1, 1000);
        assert!((one - 1.0995).abs() < 1e-4, "{one}");
        let h200 = proven_tflops(8192, 100, 141);
        assert!((h200 - 779.8).abs() < 0.1, "{h200}");
        // No division by zero for an answer within the clock's resolution.
        assert!(proven_tflops(64, 1, 0).is_finite());
    }

    #[test]
    fn a_correct_answer_is_judged_by_its_speed() {
        // The H200 as measured passes; the same work taking three times as long does not.
        let h200 = expected_tflops("NVIDIA H200");
        let (outcome, why) = judge("NVIDIA H200", h200, proven_tflops(8192, 100, 141));
        assert_eq!(outcome, Outcome::Passed, "{why}");
        let (outcome, why) = judge("NVIDIA H200", h200, proven_tflops(8192, 100, 3 * 141));
        assert_eq!(outcome, Outcome::TooSlow);
        assert!(why.contains("too slow") && why.contains("494.5"), "{why}");
        let (outcome, _) = judge("Simulated GPU", None, 0.001);
        assert_eq!(outcome, Outcome::Unrated);
    }
}
