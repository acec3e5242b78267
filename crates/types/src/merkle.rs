//! A small binary Merkle tree over SHA-256 for receipts roots, with inclusion proofs.
//!
//! Leaves and inner nodes are domain-separated (`0x00 || leaf`, `0x01 || left || right`),
//! and the leaf count is bound into the root, so a proof for one tree size never verifies
//! against another. A level with an odd number of nodes carries its last node up unchanged.
//! The root of an empty tree is [`Hash::ZERO`].

use crate::{codec_util, hash::Hash, limits};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// One level up: pairs are hashed together, an odd last node is carried up unchanged.
fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|c| {
            if c.len() == 2 {
                node(&c[0], &c[1])
            } else {
                c[0]
            }
        })
        .collect()
}

/// The hash of a leaf's content (domain-separated from inner nodes).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash(h.finalize().into())
}

fn bind_count(top: &Hash, count: usize) -> Hash {
    let mut h = Sha256::new();
    h.update([2u8]);
    h.update((count as u64).to_be_bytes());
    h.update(top.0);
    Hash(h.finalize().into())
}

/// The root over already-hashed leaves (see [`leaf_hash`]).
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    bind_count(&level[0], leaves.len())
}

/// An inclusion proof for leaf `index` in a tree of `leaf_count` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf.
    pub index: u32,
    /// Number of leaves in the tree.
    pub leaf_count: u32,
    /// Sibling hashes from the leaf level upwards (levels where the node had no sibling are
    /// skipped).
    pub siblings: Vec<Hash>,
}

/// Builds the proof for leaf `index`, or `None` if out of range.
pub fn prove(leaves: &[Hash], index: usize) -> Option<MerkleProof> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        let sib = i ^ 1;
        if sib < level.len() {
            siblings.push(level[sib]);
        }
        level = next_level(&level);
        i /= 2;
    }
    Some(MerkleProof {
        index: index as u32,
        leaf_count: leaves.len() as u32,
        siblings,
    })
}

impl MerkleProof {
    /// Whether `leaf` (a [`leaf_hash`]) is at `self.index` in the tree with root `root`.
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> bool {
        let count = self.leaf_count as usize;
        let mut i = self.index as usize;
        if i >= count {
            return false;
        }
        let mut acc = *leaf;
        let mut width = count;
        let mut sibs = self.siblings.iter();
        while width > 1 {
            let sib = i ^ 1;
            if sib < width {
                let Some(s) = sibs.next() else { return false };
                acc = if i.is_multiple_of(2) {
                    node(&acc, s)
                } else {
                    node(s, &acc)
                };
            }
            i /= 2;
            width = width.div_ceil(2);
        }
        sibs.next().is_none() && bind_count(&acc, count) == *root
    }
}

impl Write for MerkleProof {
    fn write(&self, buf: &mut impl BufMut) {
        self.index.write(buf);
        self.leaf_count.write(buf);
        self.siblings.write(buf);
    }
}

impl EncodeSize for MerkleProof {
    fn encode_size(&self) -> usize {
        8 + self.siblings.encode_size()
    }
}

impl Read for MerkleProof {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(MerkleProof {
            index: u32::read_cfg(buf, &())?,
            leaf_count: u32::read_cfg(buf, &())?,
            siblings: codec_util::read_vec(buf, limits::MAX_PROOF_DEPTH, &())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_proves_and_tampering_fails() {
        for n in 1..40usize {
            let leaves: Vec<Hash> = (0..n)
                .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
                .collect();
            let r = root(&leaves);
            for i in 0..n {
                let p = prove(&leaves, i).unwrap();
                assert!(p.verify(&leaves[i], &r), "n={n} i={i}");
                assert!(!p.verify(&leaf_hash(b"other"), &r));
                let mut wrong_count = p.clone();
                wrong_count.leaf_count += 1;
                assert!(!wrong_count.verify(&leaves[i], &r));
                if n > 1 {
                    let mut wrong_index = p.clone();
                    wrong_index.index = ((i + 1) % n) as u32;
                    assert!(
                        !wrong_index.verify(&leaves[i], &r) || leaves[i] == leaves[(i + 1) % n]
                    );
                    let mut t = p.clone();
                    t.siblings[0].0[0] ^= 1;
                    assert!(!t.verify(&leaves[i], &r));
                }
            }
        }
        assert_eq!(root(&[]), Hash::ZERO);
    }
}
