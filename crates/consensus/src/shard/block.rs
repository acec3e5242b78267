//! The shard block as the consensus engine sees it.

use crate::app::ChainBlock;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use vision_types::{BlockHeader, Hash, PublicKey, ShardBlock, ShardId, block::ChainRef};

/// Codec bounds of a shard block: the largest accepted encoding, in bytes.
///
/// The element counts are already bounded by `vision_types::limits`; this caps the total so
/// the network's maximum message can be sized ([`crate::max_message_bytes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardBlockCfg {
    /// Largest encoded block accepted.
    pub max_bytes: usize,
}

impl Default for ShardBlockCfg {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A [`ShardBlock`] implementing [`ChainBlock`] (hash = header hash).
#[derive(Clone, Debug, PartialEq)]
pub struct ShardChainBlock(pub ShardBlock);

impl ShardChainBlock {
    /// The block's header.
    pub fn header(&self) -> &BlockHeader {
        &self.0.header
    }

    /// The genesis block (height 0) of `shard` whose state has root `state_root`; every node
    /// of the shard must derive the same one (same genesis accounts and time).
    pub fn genesis(shard: ShardId, state_root: Hash, timestamp_ms: u64) -> Self {
        ShardChainBlock(ShardBlock {
            header: BlockHeader {
                chain: ChainRef::Shard(shard),
                epoch: 0,
                height: 0,
                parent: Hash::ZERO,
                timestamp_ms,
                proposer: PublicKey([0; 32]),
                body_root: ShardBlock::compute_body_root(&[], &[]),
                state_root,
                receipts_root: Hash::ZERO,
                batch_txs_root: Hash::ZERO,
                prsm_root: Hash::ZERO,
                beacon_height: 0,
            },
            txs: Vec::new(),
            incoming: Vec::new(),
        })
    }
}

impl Write for ShardChainBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl EncodeSize for ShardChainBlock {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl Read for ShardChainBlock {
    type Cfg = ShardBlockCfg;
    fn read_cfg(buf: &mut impl Buf, cfg: &ShardBlockCfg) -> Result<Self, CodecError> {
        let block = ShardBlock::read_cfg(buf, &())?;
        if block.encode_size() > cfg.max_bytes {
            return Err(CodecError::Invalid("ShardChainBlock", "block too large"));
        }
        Ok(ShardChainBlock(block))
    }
}

impl ChainBlock for ShardChainBlock {
    fn hash(&self) -> Hash {
        self.0.header.hash()
    }
    fn height(&self) -> u64 {
        self.0.header.height
    }
    fn parent(&self) -> Hash {
        self.0.header.parent
    }
    fn timestamp_ms(&self) -> u64 {
        self.0.header.timestamp_ms
    }
    fn max_encode_size(cfg: &ShardBlockCfg) -> usize {
        cfg.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode;

    #[test]
    fn roundtrip_and_bound() {
        let b = ShardChainBlock::genesis(ShardId(3), Hash([7; 32]), 5);
        let bytes = b.encode();
        let cfg = ShardBlockCfg::default();
        let d =
            <ShardChainBlock as commonware_codec::Decode>::decode_cfg(bytes.clone(), &cfg).unwrap();
        assert_eq!(d, b);
        assert_eq!(d.hash(), b.0.header.hash());
        let small = ShardBlockCfg { max_bytes: 10 };
        assert!(<ShardChainBlock as commonware_codec::Decode>::decode_cfg(bytes, &small).is_err());
    }
}
