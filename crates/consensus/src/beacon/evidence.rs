//! Equivocation evidence on the beacon chain: a shard committee member's two conflicting
//! signed votes in one view, as its shard's consensus engine reported them, relayed to the
//! beacon committee, included in a beacon block and recorded in the member's reputation
//! record (which then scores zero).

use crate::certificate::MAX_EVIDENCE_BYTES;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use vision_types::{Hash, ShardId, codec_util::read_bytes};

/// Most pieces of evidence in one beacon block.
pub const MAX_EVIDENCE_PER_BEACON_BLOCK: usize = 4;

/// Evidence that a member of `shard`'s committee equivocated: the encoded simplex fault
/// (`ConflictingNotarize`, `ConflictingFinalize` or `NullifyFinalize`), verifiable with the
/// committee's keys and the shard's namespace
/// ([`crate::certificate::verify_fault_evidence`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvidence {
    /// The shard whose committee the equivocating member is in.
    pub shard: ShardId,
    /// The encoded fault (at most [`MAX_EVIDENCE_BYTES`]).
    pub bytes: Vec<u8>,
}

impl FaultEvidence {
    /// Identity (deduplication in pools and relays).
    pub fn id(&self) -> Hash {
        let mut b = Vec::with_capacity(self.encode_size());
        self.write(&mut b);
        Hash::sha256(&b)
    }

    /// Upper bound on the encoded size.
    pub fn max_size() -> usize {
        4 + MAX_EVIDENCE_BYTES.encode_size() + MAX_EVIDENCE_BYTES
    }
}

impl Write for FaultEvidence {
    fn write(&self, buf: &mut impl BufMut) {
        self.shard.write(buf);
        self.bytes.write(buf);
    }
}

impl EncodeSize for FaultEvidence {
    fn encode_size(&self) -> usize {
        self.shard.encode_size() + self.bytes.encode_size()
    }
}

impl Read for FaultEvidence {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(FaultEvidence {
            shard: ShardId::read_cfg(buf, &())?,
            bytes: read_bytes(buf, MAX_EVIDENCE_BYTES)?,
        })
    }
}
