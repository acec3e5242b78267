//! Chain identity: consensus namespaces, p2p subchannels and storage partition names.
//!
//! Every (chain, epoch) engine gets its own signing namespace (a finalization does not commit to
//! the chain, so two shards with the same committee must never share one), its own mux
//! subchannel on each base channel, and its own storage partitions.

use vision_types::{ChainId as NetworkId, ShardId, block::ChainRef};

/// Which chain an engine runs: the beacon or one shard (alias of [`ChainRef`]).
pub type ChainId = ChainRef;

/// The number of bits of a subchannel id reserved for the chain index.
const CHAIN_INDEX_BITS: u32 = 24;

/// Index of a chain inside subchannel ids: 0 = beacon, `shard + 1` for shards.
pub fn chain_index(chain: ChainId) -> u64 {
    match chain {
        ChainRef::Beacon => 0,
        ChainRef::Shard(ShardId(s)) => u64::from(s) + 1,
    }
}

/// Namespace of the consensus signatures of `chain` on network `network_id`.
///
/// Shards include the shard layout version, so that a shard id re-used after a split or merge
/// signs under a different namespace. The beacon has no layout version.
pub fn namespace(network_id: &NetworkId, chain: ChainId, layout_version: u64) -> Vec<u8> {
    match chain {
        ChainRef::Beacon => format!("vision/{network_id}/beacon").into_bytes(),
        ChainRef::Shard(ShardId(s)) => {
            format!("vision/{network_id}/shard/{s}/{layout_version}").into_bytes()
        }
    }
}

/// Subchannel id of `(chain, epoch)` on every base channel: `epoch << 24 | chain_index`.
///
/// Epochs wrap modulo 2^40, far beyond any realistic count; two live engines never collide.
pub fn subchannel(chain: ChainId, epoch: u64) -> u64 {
    (epoch << CHAIN_INDEX_BITS) | chain_index(chain)
}

/// A short, partition-safe label of a chain: `beacon` or `shard7`.
pub fn chain_label(chain: ChainId) -> String {
    match chain {
        ChainRef::Beacon => "beacon".to_string(),
        ChainRef::Shard(ShardId(s)) => format!("shard{s}"),
    }
}

/// Storage partition names of one (node, chain, epoch) engine.
///
/// Only `[A-Za-z0-9_-]` are used (the runtime rejects anything else). All nodes of a simulation
/// share one storage, so the node label is part of every name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partitions {
    /// The simplex voter journal (one per epoch).
    pub simplex: String,
    /// The prefix of all marshal partitions (archives of finalized blocks and certificates and
    /// the cache of unfinalized blocks).
    pub marshal_prefix: String,
}

impl Partitions {
    /// Partitions of `chain` at `epoch` on the node labelled `node` (any string; characters
    /// outside `[A-Za-z0-9_-]` are replaced by `_`).
    pub fn new(node: &str, chain: ChainId, epoch: u64) -> Self {
        let node = sanitize(node);
        let chain = chain_label(chain);
        Self {
            simplex: format!("{node}-{chain}-e{epoch}-simplex"),
            marshal_prefix: format!("{node}-{chain}-e{epoch}-marshal"),
        }
    }

    /// Whether every name only uses `[A-Za-z0-9_-]`.
    pub fn is_valid(&self) -> bool {
        [&self.simplex, &self.marshal_prefix]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(is_partition_char))
    }
}

fn is_partition_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn sanitize(s: &str) -> String {
    s.bytes()
        .map(|b| if is_partition_char(b) { b as char } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> NetworkId {
        NetworkId::new("devnet").unwrap()
    }

    #[test]
    fn namespaces_differ_per_chain_and_layout() {
        let b = namespace(&net(), ChainRef::Beacon, 0);
        let s1 = namespace(&net(), ChainRef::Shard(ShardId(1)), 0);
        let s2 = namespace(&net(), ChainRef::Shard(ShardId(2)), 0);
        let s1v = namespace(&net(), ChainRef::Shard(ShardId(1)), 1);
        let other = namespace(&NetworkId::new("testnet").unwrap(), ChainRef::Beacon, 0);
        let all = [&b, &s1, &s2, &s1v, &other];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(s1, b"vision/devnet/shard/1/0");
    }

    #[test]
    fn subchannels_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for epoch in 0..4 {
            assert!(seen.insert(subchannel(ChainRef::Beacon, epoch)));
            for s in 0..64 {
                assert!(seen.insert(subchannel(ChainRef::Shard(ShardId(s)), epoch)));
            }
        }
    }

    #[test]
    fn partitions_are_safe_and_unique() {
        let a = Partitions::new("node/0.x", ChainRef::Shard(ShardId(3)), 2);
        assert!(a.is_valid());
        assert_eq!(a.simplex, "node_0_x-shard3-e2-simplex");
        let b = Partitions::new("node/0.x", ChainRef::Beacon, 2);
        let c = Partitions::new("node1", ChainRef::Shard(ShardId(3)), 2);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
