//! The relay protocol's messages (one base channel, [`crate::net::RELAY`]).

use crate::beacon::{BeaconBlock, ConfigChange, FaultEvidence};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use vision_types::{
    ShardBlock, ShardId, SignedTransaction,
    block::{Crosslink, IncomingBatch},
    codec_util::{read_bytes, read_vec},
    limits::MAX_CERTIFICATE_BYTES,
};

/// Most crosslinks in one [`RelayMsg::Crosslinks`].
pub const MAX_RELAY_CROSSLINKS: usize = 16;
/// Most beacon blocks in one [`RelayMsg::Beacon`] segment.
pub const MAX_SEGMENT_BLOCKS: usize = 64;
/// Most shard blocks in one [`RelayMsg::Shard`] segment.
pub const MAX_SHARD_SEGMENT_BLOCKS: usize = 64;
/// Most pieces of evidence in one [`RelayMsg::Evidence`].
pub const MAX_RELAY_EVIDENCE: usize = 16;
/// Most transactions in one [`RelayMsg::Txs`].
pub const MAX_RELAY_TXS: usize = 4096;
/// Largest relay message a node sends (bigger ones are not sent); the network's maximum
/// message size must be at least this.
pub const RELAY_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// One relay message. Requests are answered only when the answer is known; every answer is
/// verified by its receiver (certificates, proofs), so a lying peer achieves nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum RelayMsg {
    /// Shard validator → beacon committee: certified crosslinks to include.
    Crosslinks(Vec<Crosslink>),
    /// Follower → any node: finalized beacon blocks from this height on.
    GetBeacon {
        /// First height wanted.
        from: u64,
    },
    /// Answer to [`RelayMsg::GetBeacon`]: consecutive finalized blocks and the beacon
    /// committee's finalization certificate of the last one.
    Beacon {
        /// Consecutive blocks, ascending.
        blocks: Vec<BeaconBlock>,
        /// Finalization certificate of the last block.
        certificate: Vec<u8>,
    },
    /// Destination validator → source shard validators: the receipts of a finalized crosslink.
    GetReceipts {
        /// Source shard.
        src: ShardId,
        /// Crosslink height.
        height: u64,
        /// Destination shard.
        dst: ShardId,
    },
    /// Answer to [`RelayMsg::GetReceipts`].
    Receipts(IncomingBatch),
    /// Follower → shard validators: finalized blocks of `shard` from this height on.
    GetShard {
        /// The shard.
        shard: ShardId,
        /// First height wanted.
        from: u64,
    },
    /// Answer to [`RelayMsg::GetShard`]: consecutive finalized blocks and the shard
    /// committee's finalization certificate of the last one.
    Shard {
        /// The shard.
        shard: ShardId,
        /// Consecutive blocks, ascending.
        blocks: Vec<ShardBlock>,
        /// Finalization certificate of the last block.
        certificate: Vec<u8>,
    },
    /// API node → shard validators: signed transactions for their mempools (each is checked
    /// on admission like any other).
    Txs(Vec<SignedTransaction>),
    /// Node holding the configuration authority's key → beacon committee: a signed
    /// configuration change to include (checked like any other on admission).
    Config(ConfigChange),
    /// Shard validator → beacon committee: evidence of committee members equivocating (each
    /// verified on admission).
    Evidence(Vec<FaultEvidence>),
}

impl Write for RelayMsg {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            RelayMsg::Crosslinks(v) => {
                0u8.write(buf);
                v.write(buf);
            }
            RelayMsg::GetBeacon { from } => {
                1u8.write(buf);
                from.write(buf);
            }
            RelayMsg::Beacon {
                blocks,
                certificate,
            } => {
                2u8.write(buf);
                blocks.write(buf);
                certificate.write(buf);
            }
            RelayMsg::GetReceipts { src, height, dst } => {
                3u8.write(buf);
                src.write(buf);
                height.write(buf);
                dst.write(buf);
            }
            RelayMsg::Receipts(b) => {
                4u8.write(buf);
                b.write(buf);
            }
            RelayMsg::GetShard { shard, from } => {
                5u8.write(buf);
                shard.write(buf);
                from.write(buf);
            }
            RelayMsg::Shard {
                shard,
                blocks,
                certificate,
            } => {
                6u8.write(buf);
                shard.write(buf);
                blocks.write(buf);
                certificate.write(buf);
            }
            RelayMsg::Txs(txs) => {
                7u8.write(buf);
                txs.write(buf);
            }
            RelayMsg::Evidence(v) => {
                9u8.write(buf);
                v.write(buf);
            }
            RelayMsg::Config(c) => {
                8u8.write(buf);
                c.write(buf);
            }
        }
    }
}

impl EncodeSize for RelayMsg {
    fn encode_size(&self) -> usize {
        1 + match self {
            RelayMsg::Crosslinks(v) => v.encode_size(),
            RelayMsg::GetBeacon { from } => from.encode_size(),
            RelayMsg::Beacon {
                blocks,
                certificate,
            } => blocks.encode_size() + certificate.encode_size(),
            RelayMsg::GetReceipts { src, height, dst } => {
                src.encode_size() + height.encode_size() + dst.encode_size()
            }
            RelayMsg::Receipts(b) => b.encode_size(),
            RelayMsg::GetShard { shard, from } => shard.encode_size() + from.encode_size(),
            RelayMsg::Shard {
                shard,
                blocks,
                certificate,
            } => shard.encode_size() + blocks.encode_size() + certificate.encode_size(),
            RelayMsg::Txs(txs) => txs.encode_size(),
            RelayMsg::Config(c) => c.encode_size(),
            RelayMsg::Evidence(v) => v.encode_size(),
        }
    }
}

impl Read for RelayMsg {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read_cfg(buf, &())? {
            0 => RelayMsg::Crosslinks(read_vec(buf, MAX_RELAY_CROSSLINKS, &())?),
            1 => RelayMsg::GetBeacon {
                from: u64::read_cfg(buf, &())?,
            },
            2 => RelayMsg::Beacon {
                blocks: read_vec(buf, MAX_SEGMENT_BLOCKS, &())?,
                certificate: read_bytes(buf, MAX_CERTIFICATE_BYTES)?,
            },
            3 => RelayMsg::GetReceipts {
                src: ShardId::read_cfg(buf, &())?,
                height: u64::read_cfg(buf, &())?,
                dst: ShardId::read_cfg(buf, &())?,
            },
            4 => RelayMsg::Receipts(IncomingBatch::read_cfg(buf, &())?),
            5 => RelayMsg::GetShard {
                shard: ShardId::read_cfg(buf, &())?,
                from: u64::read_cfg(buf, &())?,
            },
            6 => RelayMsg::Shard {
                shard: ShardId::read_cfg(buf, &())?,
                blocks: read_vec(buf, MAX_SHARD_SEGMENT_BLOCKS, &())?,
                certificate: read_bytes(buf, MAX_CERTIFICATE_BYTES)?,
            },
            7 => RelayMsg::Txs(read_vec(buf, MAX_RELAY_TXS, &())?),
            8 => RelayMsg::Config(ConfigChange::read_cfg(buf, &())?),
            9 => RelayMsg::Evidence(read_vec(buf, MAX_RELAY_EVIDENCE, &())?),
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};
    use proptest::prelude::*;
    use vision_types::Hash;

    fn samples() -> Vec<RelayMsg> {
        let genesis = BeaconBlock::genesis(Hash::sha256(b"state"));
        vec![
            RelayMsg::Crosslinks(Vec::new()),
            RelayMsg::GetBeacon { from: 7 },
            RelayMsg::Beacon {
                blocks: vec![genesis.clone(), genesis],
                certificate: vec![1, 2, 3],
            },
            RelayMsg::GetReceipts {
                src: ShardId(1),
                height: 42,
                dst: ShardId(3),
            },
            RelayMsg::GetShard {
                shard: ShardId(2),
                from: 9,
            },
            RelayMsg::Shard {
                shard: ShardId(2),
                blocks: vec![crate::shard::ShardChainBlock::genesis(ShardId(2), Hash::ZERO, 5).0],
                certificate: vec![4, 5],
            },
            RelayMsg::Txs(Vec::new()),
            RelayMsg::Config(ConfigChange::sign(
                &vision_types::ChainId::new("relay-test").unwrap(),
                3,
                vision_types::ShardConfig::default(),
                &vision_types::SecretKey::from_seed([9; 32]),
            )),
        ]
    }

    #[test]
    fn round_trip_and_bounds() {
        for m in samples() {
            let bytes = m.encode();
            assert_eq!(bytes.len(), m.encode_size());
            assert_eq!(RelayMsg::decode(bytes.clone()).unwrap(), m);
            // Every strict prefix fails cleanly; trailing bytes are refused.
            for n in 0..bytes.len() {
                assert!(RelayMsg::decode(bytes.slice(..n)).is_err());
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(RelayMsg::decode(bytes::Bytes::from(longer)).is_err());
        }
        // More crosslinks than allowed are refused while decoding.
        let mut b = vec![0u8];
        commonware_codec::Write::write(
            &commonware_codec::varint::UInt((MAX_RELAY_CROSSLINKS + 1) as u64),
            &mut b,
        );
        assert!(RelayMsg::decode(bytes::Bytes::from(b)).is_err());
    }

    proptest! {
        /// Arbitrary bytes (and mutations of valid messages) never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            pick in 0usize..7,
            flip in any::<(usize, u8)>(),
        ) {
            let _ = RelayMsg::decode(bytes::Bytes::from(bytes));
            let mut valid = samples()[pick].encode().to_vec();
            let i = flip.0 % valid.len();
            valid[i] ^= flip.1;
            let _ = RelayMsg::decode(bytes::Bytes::from(valid));
        }
    }
}
