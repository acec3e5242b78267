//! The relay protocol's messages (one base channel, [`crate::net::RELAY`]).

use crate::beacon::BeaconBlock;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use vision_types::{
    ShardId,
    block::{Crosslink, IncomingBatch},
    codec_util::{read_bytes, read_vec},
    limits::MAX_CERTIFICATE_BYTES,
};

/// Most crosslinks in one [`RelayMsg::Crosslinks`].
pub const MAX_RELAY_CROSSLINKS: usize = 16;
/// Most beacon blocks in one [`RelayMsg::Beacon`] segment.
pub const MAX_SEGMENT_BLOCKS: usize = 64;
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
            pick in 0usize..4,
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
