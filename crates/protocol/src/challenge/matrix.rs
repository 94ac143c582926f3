//! The challenge's matrices, derived from its seed, and their product on the CPU.
//!
//! Entries are small integers in `[-2, 2]`, exact in bf16 and fp16. With fp32 accumulation
//! every entry of a product is then an exact integer as long as `n · 2 · 2 < 2^24`, which
//! [`super::MAX_N`] guarantees, so a GPU's answer and the node's integer check agree bit
//! for bit, with no tolerance.
//!
//! The generator is SHA-256 in counter mode: block `k` of matrix `which` of product `p` is
//! `SHA-256(DOMAIN ‖ seed ‖ p (u32 LE) ‖ which (u8: 0 = A, 1 = B) ‖ k (u64 LE))`, and each
//! of its 32 bytes gives one entry, `byte mod 5 − 2`, in row-major order. A row of `n`
//! entries is `n / 32` whole blocks, so any row can be derived alone.

use alloy::primitives::B256;
use sha2::{Digest, Sha256};

/// Domain tag of the matrix generator.
const DOMAIN: &[u8] = b"gpuflow/challenge/matrix/1\n";
/// Entries one generator block yields.
const PER_BLOCK: usize = 32;

/// Which factor of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// The left factor.
    A = 0,
    /// The right factor.
    B = 1,
}

/// Row `row` of factor `which` of product `product`: `n` entries in `[-2, 2]`.
pub fn row(seed: B256, product: u32, which: Factor, n: usize, row: usize) -> Vec<i8> {
    let blocks = n / PER_BLOCK;
    let mut out = Vec::with_capacity(n);
    let mut prefix = Sha256::new();
    prefix.update(DOMAIN);
    prefix.update(seed);
    prefix.update(product.to_le_bytes());
    prefix.update([which as u8]);
    for block in (row * blocks)..((row + 1) * blocks) {
        let digest = prefix.clone().chain_update((block as u64).to_le_bytes()).finalize();
        out.extend(digest.iter().map(|byte| (byte % 5) as i8 - 2));
    }
    out
}

/// The whole factor `which` of `product`, row-major.
pub fn factor(seed: B256, product: u32, which: Factor, n: usize) -> Vec<i8> {
    (0..n).flat_map(|i| row(seed, product, which, n, i)).collect()
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
