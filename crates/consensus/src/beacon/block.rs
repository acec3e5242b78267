//! The beacon block: a header, the crosslinks it finalizes and configuration changes.

use super::{
    config::{ConfigChange, MAX_CONFIG_CHANGES_PER_BEACON_BLOCK, max_config_change_size},
    evidence::{FaultEvidence, MAX_EVIDENCE_PER_BEACON_BLOCK},
};
use crate::app::ChainBlock;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use vision_types::{
    Hash, PublicKey,
    block::{BlockHeader, ChainRef, Crosslink},
    codec_util::read_vec,
    limits::{
        MAX_BATCHED_TXS, MAX_CERTIFICATE_BYTES, MAX_CROSSLINK_ANCESTRY,
        MAX_CROSSLINKS_PER_BEACON_BLOCK, MAX_PRSM_EVENTS_PER_CROSSLINK, MAX_SHARDS,
    },
};

/// The domain prefix of a beacon block's body root.
pub const BEACON_BODY_NAMESPACE: &[u8] = b"vision-node/beacon-body/v1\0";

/// A beacon chain block. `header.body_root` commits to `crosslinks` and `config_changes` (see
/// [`BeaconBlock::compute_body_root`]) and `header.state_root` to the [`super::BeaconState`]
/// after the block (see [`super::BeaconState::root`]); the header hash is the consensus digest.
#[derive(Clone, Debug, PartialEq)]
pub struct BeaconBlock {
    /// Header, `chain == ChainRef::Beacon`. `receipts_root`, `batch_txs_root` and
    /// `beacon_height` are unused (zero).
    pub header: BlockHeader,
    /// Crosslinks finalized by this block, in the order they are applied (at most
    /// [`MAX_CROSSLINKS_PER_BEACON_BLOCK`]).
    pub crosslinks: Vec<Crosslink>,
    /// Configuration changes finalized by this block (at most
    /// [`MAX_CONFIG_CHANGES_PER_BEACON_BLOCK`]), applied after the crosslinks.
    pub config_changes: Vec<ConfigChange>,
    /// Equivocation evidence recorded by this block (at most
    /// [`MAX_EVIDENCE_PER_BEACON_BLOCK`]), applied last.
    pub evidence: Vec<FaultEvidence>,
}

impl BeaconBlock {
    /// The body commitment of `crosslinks` and `config_changes` (a block without evidence):
    /// see [`Self::compute_body_root_with`].
    pub fn compute_body_root(crosslinks: &[Crosslink], config_changes: &[ConfigChange]) -> Hash {
        Self::compute_body_root_with(crosslinks, config_changes, &[])
    }

    /// The body commitment: SHA-256 of a namespace and the canonical encoding of
    /// `crosslinks`, `config_changes` and, when there is any, `evidence`.
    pub fn compute_body_root_with(
        crosslinks: &[Crosslink],
        config_changes: &[ConfigChange],
        evidence: &[FaultEvidence],
    ) -> Hash {
        let mut b = Vec::with_capacity(
            BEACON_BODY_NAMESPACE.len()
                + crosslinks.encode_size()
                + config_changes.encode_size()
                + evidence.encode_size(),
        );
        b.extend_from_slice(BEACON_BODY_NAMESPACE);
        crosslinks.write(&mut b);
        config_changes.write(&mut b);
        if !evidence.is_empty() {
            evidence.write(&mut b);
        }
        Hash::sha256(&b)
    }

    /// Whether `header.body_root` commits to the crosslinks, configuration changes and
    /// evidence.
    pub fn body_matches(&self) -> bool {
        Self::compute_body_root_with(&self.crosslinks, &self.config_changes, &self.evidence)
            == self.header.body_root
    }

    /// The genesis block of a beacon chain whose initial state has root `state_root`.
    pub fn genesis(state_root: Hash) -> Self {
        BeaconBlock {
            header: BlockHeader {
                chain: ChainRef::Beacon,
                epoch: 0,
                height: 0,
                parent: Hash::ZERO,
                timestamp_ms: 0,
                proposer: PublicKey([0; 32]),
                body_root: Self::compute_body_root(&[], &[]),
                state_root,
                receipts_root: Hash::ZERO,
                batch_txs_root: Hash::ZERO,
                prsm_root: Hash::ZERO,
                beacon_height: 0,
            },
            crosslinks: Vec::new(),
            config_changes: Vec::new(),
            evidence: Vec::new(),
        }
    }
}

impl Write for BeaconBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        self.crosslinks.write(buf);
        self.config_changes.write(buf);
        self.evidence.write(buf);
    }
}

impl EncodeSize for BeaconBlock {
    fn encode_size(&self) -> usize {
        self.header.encode_size()
            + self.crosslinks.encode_size()
            + self.config_changes.encode_size()
            + self.evidence.encode_size()
    }
}

impl Read for BeaconBlock {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(BeaconBlock {
            header: BlockHeader::read_cfg(buf, &())?,
            crosslinks: read_vec(buf, MAX_CROSSLINKS_PER_BEACON_BLOCK, &())?,
            config_changes: read_vec(buf, MAX_CONFIG_CHANGES_PER_BEACON_BLOCK, &())?,
            evidence: read_vec(buf, MAX_EVIDENCE_PER_BEACON_BLOCK, &())?,
        })
    }
}

/// Encoded size of a varint length prefix of `n`.
fn len_prefix(n: usize) -> usize {
    n.encode_size()
}

/// Upper bound on the encoded size of one crosslink.
pub fn max_crosslink_size() -> usize {
    // Shard header (chain tag + shard id) + destinations + tx ids + PRSM events (seq,
    // proposal id, tag, at most MAX_SHARDS targets) + certificate.
    let header = 5 + 8 * 4 + 32 * 7;
    let prsm_event = 8 + 32 + 1 + len_prefix(MAX_SHARDS) + MAX_SHARDS * 4;
    header
        + len_prefix(MAX_SHARDS)
        + MAX_SHARDS * (4 + 8 + 4 + 32)
        + len_prefix(MAX_BATCHED_TXS)
        + MAX_BATCHED_TXS * 32
        + len_prefix(MAX_PRSM_EVENTS_PER_CROSSLINK)
        + MAX_PRSM_EVENTS_PER_CROSSLINK * prsm_event
        + len_prefix(MAX_CERTIFICATE_BYTES)
        + MAX_CERTIFICATE_BYTES
        + len_prefix(MAX_CROSSLINK_ANCESTRY)
        + MAX_CROSSLINK_ANCESTRY * header
}

impl ChainBlock for BeaconBlock {
    fn hash(&self) -> Hash {
        self.header.hash()
    }
    fn height(&self) -> u64 {
        self.header.height
    }
    fn parent(&self) -> Hash {
        self.header.parent
    }
    fn timestamp_ms(&self) -> u64 {
        self.header.timestamp_ms
    }
    fn max_encode_size(_: &()) -> usize {
        let header = 5 + 8 * 4 + 32 * 7;
        header
            + len_prefix(MAX_CROSSLINKS_PER_BEACON_BLOCK)
            + MAX_CROSSLINKS_PER_BEACON_BLOCK * max_crosslink_size()
            + len_prefix(MAX_CONFIG_CHANGES_PER_BEACON_BLOCK)
            + MAX_CONFIG_CHANGES_PER_BEACON_BLOCK * max_config_change_size()
            + len_prefix(MAX_EVIDENCE_PER_BEACON_BLOCK)
            + MAX_EVIDENCE_PER_BEACON_BLOCK * FaultEvidence::max_size()
    }
}
