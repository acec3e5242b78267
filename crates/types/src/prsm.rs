//! The PRSM cross-shard decision rule, shared by the sharding layer (planning, API) and the
//! state machine (which applies it to finalized shard votes).

/// Cross-shard consensus threshold in integer percent: a cross-shard decision passes when
/// at least 67% of the votes accept it (`accepted * 100 >= 67 * total`).
pub const CROSS_SHARD_CONSENSUS_THRESHOLD_PCT: u64 = 67;

/// How long global (cross-shard) coordination may take, in milliseconds (the seed's
/// `GLOBAL_COORDINATION_TIMEOUT = 60` seconds).
pub const GLOBAL_COORDINATION_TIMEOUT_MS: u64 = 60_000;

/// Whether a cross-shard decision passes: `total > 0` and `accepted / total >= 0.67`,
/// computed as `accepted * 100 >= 67 * total`. (2 of 3 is 66.7% and does not pass.)
pub fn cross_shard_approved(accepted: u64, total: u64) -> bool {
    total > 0
        && accepted <= total
        && u128::from(accepted) * 100
            >= u128::from(CROSS_SHARD_CONSENSUS_THRESHOLD_PCT) * u128::from(total)
}

/// The decision the votes so far force on a proposal with `total` targets, if any:
/// `Some(true)` once [`cross_shard_approved`] holds for the acceptances, `Some(false)` once it
/// can no longer hold (too many rejections), `None` while undecided.
pub fn cross_shard_decision(accepted: u64, rejected: u64, total: u64) -> Option<bool> {
    if cross_shard_approved(accepted, total) {
        return Some(true);
    }
    if !cross_shard_approved(total.saturating_sub(rejected), total) {
        return Some(false);
    }
    None
}

use crate::{Hash, ShardId, codec_util::read_vec, limits, merkle};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// What a shard tells the beacon chain about a proposal that needs cross-shard coordination
/// (more than one target, or coordination asked for), in the crosslink of the batch it
/// happened in. The beacon records the global result from these (see [`PrsmEvent`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrsmEventKind {
    /// The crosslink's shard coordinates the proposal and included it; these are its target
    /// shards (sorted, unique, non-empty).
    Submitted {
        /// The target shards.
        targets: Vec<ShardId>,
    },
    /// The crosslink's shard, a target, finalized its decision on a proposal `coordinator`
    /// coordinates.
    Voted {
        /// The coordinating shard.
        coordinator: ShardId,
        /// Whether this shard accepted it.
        accepted: bool,
        /// This shard's block that decided it.
        height: u64,
    },
}

/// One entry of a shard's PRSM event stream: numbered from 0 per shard (`seq`) so the beacon
/// can take each exactly once and notice a gap, as it does for receipt streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrsmEvent {
    /// Position in the shard's event stream.
    pub seq: u64,
    /// The proposal id (its transaction id).
    pub proposal: Hash,
    /// What happened.
    #[serde(flatten)]
    pub kind: PrsmEventKind,
}

impl PrsmEvent {
    /// The event's leaf hash in a crosslink's PRSM events root.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.encode())
    }

    /// Merkle root over events (a header's `prsm_root` for a batch that closed).
    pub fn root(events: &[PrsmEvent]) -> Hash {
        let leaves: Vec<Hash> = events.iter().map(PrsmEvent::leaf_hash).collect();
        merkle::root(&leaves)
    }
}

impl Write for PrsmEvent {
    fn write(&self, buf: &mut impl BufMut) {
        self.seq.write(buf);
        self.proposal.write(buf);
        match &self.kind {
            PrsmEventKind::Submitted { targets } => {
                0u8.write(buf);
                targets.write(buf);
            }
            PrsmEventKind::Voted {
                coordinator,
                accepted,
                height,
            } => {
                1u8.write(buf);
                coordinator.write(buf);
                accepted.write(buf);
                height.write(buf);
            }
        }
    }
}

impl EncodeSize for PrsmEvent {
    fn encode_size(&self) -> usize {
        8 + 32
            + 1
            + match &self.kind {
                PrsmEventKind::Submitted { targets } => targets.encode_size(),
                PrsmEventKind::Voted { .. } => 4 + 1 + 8,
            }
    }
}

impl Read for PrsmEvent {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let seq = u64::read_cfg(buf, &())?;
        let proposal = Hash::read_cfg(buf, &())?;
        let kind = match u8::read_cfg(buf, &())? {
            0 => PrsmEventKind::Submitted {
                targets: read_vec(buf, limits::MAX_SHARDS, &())?,
            },
            1 => PrsmEventKind::Voted {
                coordinator: ShardId::read_cfg(buf, &())?,
                accepted: bool::read_cfg(buf, &())?,
                height: u64::read_cfg(buf, &())?,
            },
            t => return Err(CodecError::InvalidEnum(t)),
        };
        Ok(PrsmEvent {
            seq,
            proposal,
            kind,
        })
    }
}
