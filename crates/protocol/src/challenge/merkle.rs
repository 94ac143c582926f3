//! The commitment to a product: a Merkle tree over its rows.
//!
//! A leaf is `SHA-256(ROW_TAG ‖ seed ‖ product (u32 LE) ‖ row (u32 LE) ‖ the row's entries
//! as i32 LE)`, an inner node `SHA-256(NODE_TAG ‖ left ‖ right)`. The seed in every leaf
//! binds the tree to one challenge: a tree built for another challenge has other leaves,
//! so its paths never verify against this one's rows. `n` is a power of two, so the tree
//! is perfect and a path has `log2 n` siblings, from the leaf up.

use alloy::primitives::B256;
use sha2::{Digest, Sha256};

const ROW_TAG: &[u8] = b"gpuflow/challenge/row/1\n";
const NODE_TAG: &[u8] = b"gpuflow/challenge/node/1\n";

/// The leaf of row `row` of product `product` with entries `values`.
pub fn leaf(seed: B256, product: u32, row: u32, values: &[i32]) -> B256 {
    let mut hash = Sha256::new();
    hash.update(ROW_TAG);
    hash.update(seed);
    hash.update(product.to_le_bytes());
    hash.update(row.to_le_bytes());
    // In chunks: one `update` per entry would cost more than the hashing itself.
    let mut bytes = [0u8; 1024];
    for chunk in values.chunks(bytes.len() / 4) {
        for (out, value) in bytes.chunks_exact_mut(4).zip(chunk) {
            out.copy_from_slice(&value.to_le_bytes());
        }
        hash.update(&bytes[..chunk.len() * 4]);
    }
    B256::from(<[u8; 32]>::from(hash.finalize()))
}

fn node(left: &B256, right: &B256) -> B256 {
    B256::from(<[u8; 32]>::from(
        Sha256::new().chain_update(NODE_TAG).chain_update(left).chain_update(right).finalize(),
    ))
}

/// Every level of a tree, leaves first; what a provider keeps to open any row later
/// without keeping the product (`2n` hashes).
#[derive(Clone, Debug)]
pub struct RowTree {
    levels: Vec<Vec<B256>>,
}

impl RowTree {
    /// The tree over `leaves`, whose number must be a power of two.
    pub fn new(leaves: Vec<B256>) -> Self {
        assert!(leaves.len().is_power_of_two(), "a row tree has a power of two of leaves");
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|level| level.len() > 1) {
            let below = levels.last().expect("a level");
            let above = below.chunks_exact(2).map(|pair| node(&pair[0], &pair[1])).collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// The tree over the rows of `product` (row-major, `n × n`).
    pub fn of_product(seed: B256, product: u32, n: usize, c: &[i32]) -> Self {
        Self::new(
            c.chunks_exact(n)
                .enumerate()
                .map(|(row, values)| leaf(seed, product, row as u32, values))
                .collect(),
        )
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.levels.last().expect("a tree has a root level")[0]
    }

    /// The siblings from leaf `index` up to the root.
    pub fn path(&self, mut index: usize) -> Vec<B256> {
        let mut path = Vec::with_capacity(self.levels.len() - 1);
        for level in &self.levels[..self.levels.len() - 1] {
            path.push(level[index ^ 1]);
            index /= 2;
        }
        path
    }
}

/// Whether `leaf` at `index` hashes up to `root` along `path` in a tree of `leaves` leaves.
pub fn verify(root: B256, leaves: usize, mut index: usize, leaf: B256, path: &[B256]) -> bool {
    if !leaves.is_power_of_two() || index >= leaves || 1 << path.len() != leaves {
        return false;
    }
    let mut hash = leaf;
    for sibling in path {
        hash = if index.is_multiple_of(2) { node(&hash, sibling) } else { node(sibling, &hash) };
        index /= 2;
    }
    hash == root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_opens_and_nothing_else_does() {
        let leaves: Vec<B256> = (0..8u8).map(B256::repeat_byte).collect();
        let tree = RowTree::new(leaves.clone());
        for (i, leaf) in leaves.iter().enumerate() {
            let path = tree.path(i);
            assert_eq!(path.len(), 3);
            assert!(verify(tree.root(), 8, i, *leaf, &path));
            // Another position, another leaf, a shortened path: all refused.
            assert!(!verify(tree.root(), 8, i ^ 1, *leaf, &path));
            assert!(!verify(tree.root(), 8, i, B256::repeat_byte(99), &path));
            assert!(!verify(tree.root(), 8, i, *leaf, &path[..2]));
        }
        assert!(!verify(tree.root(), 8, 8, leaves[0], &tree.path(0)));
    }

    #[test]
    fn a_leaf_binds_seed_product_row_and_values() {
        let seed = B256::repeat_byte(1);
        let base = leaf(seed, 0, 0, &[1, 2]);
        assert_ne!(base, leaf(B256::repeat_byte(2), 0, 0, &[1, 2]));
        assert_ne!(base, leaf(seed, 1, 0, &[1, 2]));
        assert_ne!(base, leaf(seed, 0, 1, &[1, 2]));
        assert_ne!(base, leaf(seed, 0, 0, &[1, 3]));
    }

    #[test]
    fn a_leaf_hashes_every_entry_as_i32_le() {
        let seed = B256::repeat_byte(3);
        let values: Vec<i32> = (0..1000).map(|v| v * 37 - 16_000).collect();
        let mut hash = Sha256::new().chain_update(ROW_TAG).chain_update(seed);
        hash.update(2u32.to_le_bytes());
        hash.update(9u32.to_le_bytes());
        for value in &values {
            hash.update(value.to_le_bytes());
        }
        assert_eq!(leaf(seed, 2, 9, &values), B256::from(<[u8; 32]>::from(hash.finalize())));
    }
}
