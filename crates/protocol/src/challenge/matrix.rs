//! The challenge's matrices, derived from its seed, and their product on the CPU.
//!
//! Entries are small integers in `[-2, 2]`, exact in bf16 and fp16. With fp32 accumulation
//! every entry of a product is then an exact integer as long as `n · 2 · 2 < 2^24`, which
//! [`super::MAX_N`] guarantees, so a GPU's answer and the node's integer check agree bit
//! for bit, with no tolerance.
//!
//! The generator is a counter-based one, cheap enough that a GPU generates a factor in far
//! less time than it multiplies two, and simple enough to write identically in CUDA C (the
//! agent's kernel is `provider-agent/src/cuda/kernel.cu`). Each factor has its own 64-bit
//! key, the first 8 bytes (LE) of `SHA-256(DOMAIN ‖ seed ‖ p (u32 LE) ‖ which (u8: 0 = A,
//! 1 = B))`. Word `w` of the factor is `mix(key + w · GAMMA)` (wrapping, `mix` the
//! SplitMix64 finalizer), and its 8 bytes, least significant first, give entries `8w` to
//! `8w + 7`, each `byte mod 5 − 2`, in row-major order. A row of `n` entries is `n / 8`
//! whole words, so any row can be derived alone.
//!
//! The mixer is not a cryptographic generator: what makes the matrices unknown before the
//! challenge is the key, drawn through SHA-256 from the node's fresh seed. The check's
//! soundness (Merkle paths, Freivalds' test) does not rest on the generator at all.

use alloy::primitives::B256;
use sha2::{Digest, Sha256};

/// Domain tag of the matrix generator.
const DOMAIN: &[u8] = b"gpuflow/challenge/matrix/2\n";
/// Entries one generator word yields.
pub const PER_WORD: usize = 8;
/// The counter's step between words: SplitMix64's golden gamma, `2^64 / φ`, odd.
pub const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Which factor of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// The left factor.
    A = 0,
    /// The right factor.
    B = 1,
}

/// The 64-bit key of factor `which` of `product`: what a GPU needs to generate the factor.
pub fn key(seed: B256, product: u32, which: Factor) -> u64 {
    let digest = Sha256::new()
        .chain_update(DOMAIN)
        .chain_update(seed)
        .chain_update(product.to_le_bytes())
        .chain_update([which as u8])
        .finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Word `w` of the factor with `key`: the SplitMix64 finalizer of `key + w · GAMMA`.
pub fn word(key: u64, w: u64) -> u64 {
    let mut z = key.wrapping_add(w.wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The entries of words `words` of the factor with `key`, appended to `out`.
fn extend_words(out: &mut Vec<i8>, key: u64, words: std::ops::Range<u64>) {
    for w in words {
        out.extend(word(key, w).to_le_bytes().iter().map(|byte| (byte % 5) as i8 - 2));
    }
}

/// Row `row` of factor `which` of product `product`: `n` entries in `[-2, 2]`.
pub fn row(seed: B256, product: u32, which: Factor, n: usize, row: usize) -> Vec<i8> {
    let per_row = (n / PER_WORD) as u64;
    let mut out = Vec::with_capacity(n);
    extend_words(
        &mut out,
        key(seed, product, which),
        row as u64 * per_row..(row as u64 + 1) * per_row,
    );
    out
}

/// The whole factor `which` of `product`, row-major.
pub fn factor(seed: B256, product: u32, which: Factor, n: usize) -> Vec<i8> {
    let mut out = Vec::with_capacity(n * n);
    extend_words(&mut out, key(seed, product, which), 0..(n * n / PER_WORD) as u64);
    out
}

/// The product `A · B` of `product`, computed on the CPU in integers, row-major. This is
/// what an agent without CUDA answers with, and what tests compare against.
pub fn product(seed: B256, product: u32, n: usize) -> Vec<i32> {
    let a = factor(seed, product, Factor::A, n);
    let b = factor(seed, product, Factor::B, n);
    let mut c = vec![0i32; n * n];
    for (i, c_row) in c.chunks_exact_mut(n).enumerate() {
        for (j, &a_ij) in a[i * n..(i + 1) * n].iter().enumerate() {
            if a_ij == 0 {
                continue;
            }
            let a_ij = i32::from(a_ij);
            for (c_ik, &b_jk) in c_row.iter_mut().zip(&b[j * n..(j + 1) * n]) {
                *c_ik += a_ij * i32::from(b_jk);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_small_deterministic_and_differ_by_seed_product_and_factor() {
        let seed = B256::repeat_byte(7);
        let a = factor(seed, 0, Factor::A, 64);
        assert_eq!(a.len(), 64 * 64);
        assert!(a.iter().all(|v| (-2..=2).contains(v)));
        // Every value occurs, none dominates.
        for v in -2..=2 {
            let count = a.iter().filter(|&&x| x == v).count();
            assert!((600..1000).contains(&count), "{v} occurs {count} times");
        }
        assert_eq!(a, factor(seed, 0, Factor::A, 64));
        assert_ne!(a, factor(seed, 0, Factor::B, 64));
        assert_ne!(a, factor(seed, 1, Factor::A, 64));
        assert_ne!(a, factor(B256::repeat_byte(8), 0, Factor::A, 64));
        assert_eq!(row(seed, 0, Factor::A, 64, 5), a[5 * 64..6 * 64].to_vec());
        assert_eq!(row(seed, 0, Factor::A, 64, 63), a[63 * 64..].to_vec());
    }

    /// Known answers, computed from the description in the module's docs by a separate
    /// implementation; the CUDA kernel is checked against the same generator.
    #[test]
    fn known_answers() {
        let seed = B256::repeat_byte(7);
        let key_a = key(seed, 0, Factor::A);
        assert_eq!(key_a, 0xa97f_1b6b_6dcd_f7af);
        assert_eq!(key(seed, 3, Factor::B), 0xefc7_a844_a81d_4418);
        assert_eq!(word(key_a, 0), 0x9d11_5b65_5648_587d);
        assert_eq!(word(key_a, 1000), 0x55dc_4289_87d4_5b79);
        assert_eq!(
            row(seed, 0, Factor::A, 64, 0)[..16],
            [-2, 1, 0, -1, -1, -1, 0, 0, -1, -2, -2, 1, 0, 2, 2, 2]
        );
        assert_eq!(
            row(seed, 3, Factor::B, 64, 5)[..16],
            [-1, 1, -1, 2, -1, 0, 2, -2, -2, 1, 1, 2, 0, 0, -1, 0]
        );
        let sum: i32 = factor(seed, 0, Factor::A, 64).iter().map(|&v| i32::from(v)).sum();
        assert_eq!(sum, -81);
    }

    #[test]
    fn the_product_is_the_textbook_product() {
        let (seed, n) = (B256::repeat_byte(1), 64);
        let a = factor(seed, 3, Factor::A, n);
        let b = factor(seed, 3, Factor::B, n);
        let c = product(seed, 3, n);
        for (i, k) in [(0, 0), (5, 17), (63, 63), (31, 2)] {
            let expected: i32 =
                (0..n).map(|j| i32::from(a[i * n + j]) * i32::from(b[j * n + k])).sum();
            assert_eq!(c[i * n + k], expected, "C[{i}][{k}]");
        }
    }
}
