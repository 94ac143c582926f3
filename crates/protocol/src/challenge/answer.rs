use std::collections::BTreeMap;

use super::{
    Backend, Challenge, Commitment, OpenedRow, Opening, RowRef,
    matrix::{self, Factor},
    merkle::RowTree,
};
use crate::ProtocolError;

/// A provider's answer to one challenge: the Merkle tree of each product, enough to commit
/// and to open any row later. The products themselves are not kept: an opened row is
/// computed again from its row of `A` and the whole `B` (`O(n²)`), so an answer costs `2n`
/// hashes per product in memory, not `n²` entries.
#[derive(Clone, Debug)]
pub struct Answer {
    challenge: Challenge,
    trees: Vec<RowTree>,
    backend: Backend,
}

impl Answer {
    /// Computes every product of `challenge` on the CPU. `O(products · n³)`: run it off the
    /// async runtime.
    pub fn compute_cpu(challenge: &Challenge) -> Self {
        let n = challenge.n as usize;
        Self::from_products(challenge, Backend::Cpu, |product| {
            matrix::product(challenge.seed, product, n)
        })
    }

    /// The answer over products computed elsewhere: `compute(p)` is product `p`,
    /// row-major, exact integers.
    pub fn from_products(
        challenge: &Challenge,
        backend: Backend,
        mut compute: impl FnMut(u32) -> Vec<i32>,
    ) -> Self {
        let n = challenge.n as usize;
        let trees = (0..challenge.products())
            .map(|product| RowTree::of_product(challenge.seed, product, n, &compute(product)))
            .collect();
        Self::from_trees(challenge, backend, trees)
    }

    /// The answer over the trees of products computed elsewhere (the agent's GPU path),
    /// one per product in product order.
    ///
    /// # Panics
    /// If there is not one tree per product of `challenge`.
    pub fn from_trees(challenge: &Challenge, backend: Backend, trees: Vec<RowTree>) -> Self {
        assert_eq!(trees.len(), challenge.products() as usize, "one tree per product");
        Self { challenge: challenge.clone(), trees, backend }
    }

    /// The challenge answered.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The commitment to sign and send.
    pub fn commitment(&self) -> Commitment {
        Commitment {
            seed: self.challenge.seed,
            n: self.challenge.n,
            rounds: self.challenge.rounds,
            gpus: self.challenge.gpus.clone(),
            roots: self.trees.iter().map(RowTree::root).collect(),
            backend: self.backend,
        }
    }

    /// The rows `asked`, with their paths, to sign and send. Refuses rows outside the
    /// challenge and more than [`super::MAX_OPENED_ROWS`].
    pub fn open(&self, asked: &[RowRef]) -> Result<Opening, ProtocolError> {
        let n = self.challenge.n as usize;
        if asked.is_empty() || asked.len() > super::MAX_OPENED_ROWS {
            return Err(ProtocolError::field(
                "rows",
                format!("ask for 1..={} rows", super::MAX_OPENED_ROWS),
            ));
        }
        if let Some(bad) =
            asked.iter().find(|at| at.product >= self.challenge.products() || at.row as usize >= n)
        {
            return Err(ProtocolError::field(
                "rows",
                format!(
                    "row {} of product {} is outside the challenge ({} products of {n} rows)",
                    bad.row,
                    bad.product,
                    self.challenge.products()
                ),
            ));
        }
        let mut b_of = BTreeMap::new();
        let rows = asked
            .iter()
            .map(|&at| {
                let b = b_of.entry(at.product).or_insert_with(|| {
                    matrix::factor(self.challenge.seed, at.product, Factor::B, n)
                });
                let a = matrix::row(self.challenge.seed, at.product, Factor::A, n, at.row as usize);
                let mut values = vec![0i32; n];
                for (j, &a_j) in a.iter().enumerate() {
                    for (value, &b_jk) in values.iter_mut().zip(&b[j * n..(j + 1) * n]) {
                        *value += i32::from(a_j) * i32::from(b_jk);
                    }
                }
                let path = self.trees[at.product as usize].path(at.row as usize);
                OpenedRow { at, values, path }
            })
            .collect();
        Ok(Opening { seed: self.challenge.seed, rows })
    }
}
