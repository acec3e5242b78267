//! Block headers, shard blocks, incoming receipt batches and crosslinks.

use crate::{
    PublicKey,
    codec_util::{read_bytes, read_vec},
    hash::Hash,
    ids::ShardId,
    limits,
    merkle::{self, MerkleProof},
    prsm::PrsmEvent,
    receipt::Receipt,
    tx::SignedTransaction,
};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Serialize};

/// Which chain a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainRef {
    /// The beacon chain.
    Beacon,
    /// A state shard's chain.
    Shard(ShardId),
}

impl Write for ChainRef {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            ChainRef::Beacon => 0u8.write(buf),
            ChainRef::Shard(s) => {
                1u8.write(buf);
                s.write(buf);
            }
        }
    }
}

impl EncodeSize for ChainRef {
    fn encode_size(&self) -> usize {
        match self {
            ChainRef::Beacon => 1,
            ChainRef::Shard(_) => 5,
        }
    }
}

impl Read for ChainRef {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read_cfg(buf, &())? {
            0 => Ok(ChainRef::Beacon),
            1 => Ok(ChainRef::Shard(ShardId::read_cfg(buf, &())?)),
            t => Err(CodecError::InvalidEnum(t)),
        }
    }
}

/// The domain prefix of block header hashes.
pub const HEADER_NAMESPACE: &[u8] = b"vision-node/header/v1\0";

/// A block header. Its hash is the digest that consensus orders and certifies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain: ChainRef,
    /// Committee epoch.
    pub epoch: u64,
    /// Height (genesis is 0).
    pub height: u64,
    /// Hash of the parent header ([`Hash::ZERO`] for genesis).
    pub parent: Hash,
    /// Proposer's block time, milliseconds since the Unix epoch (monotonic along the chain).
    pub timestamp_ms: u64,
    /// The proposer's consensus key.
    pub proposer: PublicKey,
    /// Commitment to the body (transactions and incoming receipts, or beacon content).
    pub body_root: Hash,
    /// State root after executing this block.
    pub state_root: Hash,
    /// Merkle root over the [`DestinationBatch`] entries of the batch this block closed
    /// ([`Hash::ZERO`] if it closed none).
    pub receipts_root: Hash,
    /// Merkle root over the ids of the transactions in the batch closed here.
    pub batch_txs_root: Hash,
    /// Merkle root over the PRSM events of the batch closed here
    /// ([`PrsmEvent::root`](crate::prsm::PrsmEvent::root); [`Hash::ZERO`] if it closed none).
    pub prsm_root: Hash,
    /// For shard blocks: the beacon height whose finalized crosslinks the incoming receipts
    /// were taken from (0 before the first).
    pub beacon_height: u64,
}

impl BlockHeader {
    /// The header hash: SHA-256 of a namespace and the canonical encoding.
    pub fn hash(&self) -> Hash {
        let mut b = Vec::with_capacity(HEADER_NAMESPACE.len() + self.encode_size());
        b.extend_from_slice(HEADER_NAMESPACE);
        self.write(&mut b);
        Hash::sha256(&b)
    }
}

impl Write for BlockHeader {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain.write(buf);
        self.epoch.write(buf);
        self.height.write(buf);
        self.parent.write(buf);
        self.timestamp_ms.write(buf);
        self.proposer.write(buf);
        self.body_root.write(buf);
        self.state_root.write(buf);
        self.receipts_root.write(buf);
        self.batch_txs_root.write(buf);
        self.prsm_root.write(buf);
        self.beacon_height.write(buf);
    }
}

impl EncodeSize for BlockHeader {
    fn encode_size(&self) -> usize {
        self.chain.encode_size() + 8 * 4 + 32 * 7
    }
}

impl Read for BlockHeader {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(BlockHeader {
            chain: ChainRef::read_cfg(buf, &())?,
            epoch: u64::read_cfg(buf, &())?,
            height: u64::read_cfg(buf, &())?,
            parent: Hash::read_cfg(buf, &())?,
            timestamp_ms: u64::read_cfg(buf, &())?,
            proposer: PublicKey::read_cfg(buf, &())?,
            body_root: Hash::read_cfg(buf, &())?,
            state_root: Hash::read_cfg(buf, &())?,
            receipts_root: Hash::read_cfg(buf, &())?,
            batch_txs_root: Hash::read_cfg(buf, &())?,
            prsm_root: Hash::read_cfg(buf, &())?,
            beacon_height: u64::read_cfg(buf, &())?,
        })
    }
}

/// One destination's slice of a closed batch: receipts `first_seq .. first_seq + count` of the
/// (src, dst) stream, whose Merkle root (over [`Receipt::leaf_hash`]) is `root`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationBatch {
    /// Destination shard.
    pub dst: ShardId,
    /// First seq in the slice.
    pub first_seq: u64,
    /// Number of receipts.
    pub count: u32,
    /// Merkle root of the receipts.
    pub root: Hash,
}

impl DestinationBatch {
    /// The entry's leaf hash in the crosslink's receipts root.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.encode())
    }

    /// The seq after the last one in the slice.
    pub fn end_seq(&self) -> u64 {
        self.first_seq.saturating_add(self.count as u64)
    }
}

impl Write for DestinationBatch {
    fn write(&self, buf: &mut impl BufMut) {
        self.dst.write(buf);
        self.first_seq.write(buf);
        self.count.write(buf);
        self.root.write(buf);
    }
}

impl FixedSize for DestinationBatch {
    const SIZE: usize = 4 + 8 + 4 + 32;
}

impl Read for DestinationBatch {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(DestinationBatch {
            dst: ShardId::read_cfg(buf, &())?,
            first_seq: u64::read_cfg(buf, &())?,
            count: u32::read_cfg(buf, &())?,
            root: Hash::read_cfg(buf, &())?,
        })
    }
}

/// Receipts from one beacon-finalized crosslink, delivered to their destination shard with
/// a proof of their slice against the crosslink's receipts root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncomingBatch {
    /// The source shard.
    pub source: ShardId,
    /// Height of the source block whose crosslink carries the batch.
    pub crosslink_height: u64,
    /// This destination's entry in the crosslink.
    pub destination: DestinationBatch,
    /// Proof of `destination` against the crosslink's receipts root.
    pub proof: MerkleProof,
    /// The receipts, in seq order.
    pub receipts: Vec<Receipt>,
}

impl IncomingBatch {
    /// Checks the batch against a receipts root the caller knows to be final: the proof of
    /// the destination entry, that the receipts hash to the entry's root, and that their
    /// (src, dst, seq) match the entry. Says nothing about seq continuity with earlier
    /// batches (that needs state).
    pub fn verify(&self, receipts_root: &Hash) -> Result<(), &'static str> {
        if !self
            .proof
            .verify(&self.destination.leaf_hash(), receipts_root)
        {
            return Err("destination entry does not prove against the receipts root");
        }
        if self.receipts.len() != self.destination.count as usize {
            return Err("receipt count does not match the destination entry");
        }
        for (i, r) in self.receipts.iter().enumerate() {
            if r.src != self.source
                || r.dst != self.destination.dst
                || Some(r.seq) != self.destination.first_seq.checked_add(i as u64)
            {
                return Err("receipt (src, dst, seq) does not match the destination entry");
            }
        }
        let leaves: Vec<Hash> = self.receipts.iter().map(Receipt::leaf_hash).collect();
        if merkle::root(&leaves) != self.destination.root {
            return Err("receipts do not hash to the destination entry's root");
        }
        Ok(())
    }
}

impl Write for IncomingBatch {
    fn write(&self, buf: &mut impl BufMut) {
        self.source.write(buf);
        self.crosslink_height.write(buf);
        self.destination.write(buf);
        self.proof.write(buf);
        self.receipts.write(buf);
    }
}

impl EncodeSize for IncomingBatch {
    fn encode_size(&self) -> usize {
        4 + 8 + DestinationBatch::SIZE + self.proof.encode_size() + self.receipts.encode_size()
    }
}

impl Read for IncomingBatch {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(IncomingBatch {
            source: ShardId::read_cfg(buf, &())?,
            crosslink_height: u64::read_cfg(buf, &())?,
            destination: DestinationBatch::read_cfg(buf, &())?,
            proof: MerkleProof::read_cfg(buf, &())?,
            receipts: read_vec(buf, limits::MAX_RECEIPTS_PER_BATCH, &())?,
        })
    }
}

/// A shard block: header, transactions and incoming receipt batches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardBlock {
    /// Header (its `body_root` commits to the rest).
    pub header: BlockHeader,
    /// Transactions, executed in order.
    pub txs: Vec<SignedTransaction>,
    /// Incoming receipt batches, applied before the transactions.
    pub incoming: Vec<IncomingBatch>,
}

impl ShardBlock {
    /// The body commitment that belongs in `header.body_root`.
    pub fn compute_body_root(txs: &[SignedTransaction], incoming: &[IncomingBatch]) -> Hash {
        let mut b = Vec::new();
        txs.to_vec().write(&mut b);
        incoming.to_vec().write(&mut b);
        Hash::sha256(&b)
    }

    /// Whether `header.body_root` matches the body.
    pub fn body_matches(&self) -> bool {
        Self::compute_body_root(&self.txs, &self.incoming) == self.header.body_root
    }

    /// The block's digest (its header hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

impl Write for ShardBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        self.txs.write(buf);
        self.incoming.write(buf);
    }
}

impl EncodeSize for ShardBlock {
    fn encode_size(&self) -> usize {
        self.header.encode_size() + self.txs.encode_size() + self.incoming.encode_size()
    }
}

impl Read for ShardBlock {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(ShardBlock {
            header: BlockHeader::read_cfg(buf, &())?,
            txs: read_vec(buf, limits::MAX_TXS_PER_BLOCK, &())?,
            incoming: read_vec(buf, limits::MAX_SHARDS, &())?,
        })
    }
}

/// A certified checkpoint of a shard chain: the header of the block that closed a batch (or
/// fell on `crosslink_frequency`), the batch's destination entries and transaction ids, and
/// the shard committee's finalization certificate for that block (opaque bytes, verified by
/// the consensus layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Crosslink {
    /// The certified shard block's header.
    pub header: BlockHeader,
    /// Per-destination entries (ascending `dst`), whose Merkle root is `header.receipts_root`.
    pub destinations: Vec<DestinationBatch>,
    /// Ids of the transactions whose receipts are in this batch.
    pub batched_txs: Vec<Hash>,
    /// The PRSM events of the batch (consecutive seqs of the shard's event stream), whose
    /// Merkle root is `header.prsm_root`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prsm_events: Vec<PrsmEvent>,
    /// Encoded finalization certificate over [`Self::certified_hash`]: `header.hash()`, or
    /// the hash of the last `ancestry` header when the block was finalized only through a
    /// descendant.
    #[serde(with = "hex_bytes")]
    pub certificate: Vec<u8>,
    /// Usually empty. When no finalization certificate of `header`'s own block exists (it was
    /// finalized implicitly, through a descendant), the headers of its descendants up to the
    /// first certified one, oldest first: each is the child of the one before (the first is
    /// the child of `header`), and `certificate` certifies the last. Finalizing a block
    /// finalizes all its ancestors, so this proves `header` just as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestry: Vec<BlockHeader>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A crosslink's content does not match its header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrosslinkError {
    /// Crosslinks certify shard blocks only.
    #[error("crosslink header is not a shard block")]
    NotAShard,
    /// Destinations must be ascending, unique and not the source shard.
    #[error("crosslink destinations are not ascending, unique and foreign")]
    BadDestinations,
    /// The destinations do not hash to `header.receipts_root`.
    #[error("crosslink destinations do not match the header's receipts root")]
    ReceiptsRoot,
    /// The batched transaction ids do not hash to `header.batch_txs_root`.
    #[error("crosslink batched tx ids do not match the header's batch root")]
    BatchTxsRoot,
    /// The PRSM events do not hash to `header.prsm_root`, or their seqs are not consecutive.
    #[error("crosslink PRSM events do not match the header's PRSM root or skip a seq")]
    PrsmEvents,
    /// The ancestry headers are not a chain of same-epoch descendants of `header`.
    #[error("crosslink ancestry is not a chain of descendants of its header")]
    Ancestry,
}

impl Crosslink {
    /// The seed's id: `crosslink_{shard}_{height}_batch`.
    pub fn id(&self) -> String {
        match self.header.chain {
            ChainRef::Shard(s) => crosslink_id(s, self.header.height),
            ChainRef::Beacon => format!("crosslink_beacon_{}_batch", self.header.height),
        }
    }

    /// The source shard.
    pub fn shard(&self) -> Option<ShardId> {
        match self.header.chain {
            ChainRef::Shard(s) => Some(s),
            ChainRef::Beacon => None,
        }
    }

    /// Hash of the crosslinked block (`header.hash()`).
    pub fn block_hash(&self) -> Hash {
        self.header.hash()
    }

    /// Hash of the block `certificate` certifies: the last ancestry header's, else
    /// [`Self::block_hash`].
    pub fn certified_hash(&self) -> Hash {
        self.ancestry
            .last()
            .map_or_else(|| self.header.hash(), BlockHeader::hash)
    }

    /// Merkle root over destination entries (what `header.receipts_root` must be).
    pub fn destinations_root(destinations: &[DestinationBatch]) -> Hash {
        let leaves: Vec<Hash> = destinations
            .iter()
            .map(DestinationBatch::leaf_hash)
            .collect();
        merkle::root(&leaves)
    }

    /// Merkle root over batched tx ids (what `header.batch_txs_root` must be).
    pub fn batch_txs_root(txs: &[Hash]) -> Hash {
        let leaves: Vec<Hash> = txs.iter().map(|h| merkle::leaf_hash(&h.0)).collect();
        merkle::root(&leaves)
    }

    /// Merkle root over the PRSM events (what `header.prsm_root` must be).
    pub fn prsm_root(&self) -> Hash {
        PrsmEvent::root(&self.prsm_events)
    }

    /// Proof of destination entry `index` against the receipts root.
    pub fn prove_destination(&self, index: usize) -> Option<MerkleProof> {
        let leaves: Vec<Hash> = self
            .destinations
            .iter()
            .map(DestinationBatch::leaf_hash)
            .collect();
        merkle::prove(&leaves, index)
    }

    /// Checks that the content matches the header (not the certificate: that needs the
    /// committee and is the consensus layer's job).
    pub fn check_content(&self) -> Result<(), CrosslinkError> {
        let ChainRef::Shard(src) = self.header.chain else {
            return Err(CrosslinkError::NotAShard);
        };
        let ok = self.destinations.windows(2).all(|w| w[0].dst < w[1].dst)
            && self.destinations.iter().all(|d| d.dst != src);
        if !ok {
            return Err(CrosslinkError::BadDestinations);
        }
        if Self::destinations_root(&self.destinations) != self.header.receipts_root {
            return Err(CrosslinkError::ReceiptsRoot);
        }
        if Self::batch_txs_root(&self.batched_txs) != self.header.batch_txs_root {
            return Err(CrosslinkError::BatchTxsRoot);
        }
        let consecutive = self
            .prsm_events
            .windows(2)
            .all(|w| w[0].seq.checked_add(1) == Some(w[1].seq));
        if !consecutive || self.prsm_root() != self.header.prsm_root {
            return Err(CrosslinkError::PrsmEvents);
        }
        let mut prev = &self.header;
        for h in &self.ancestry {
            let linked = h.chain == prev.chain
                && h.epoch == prev.epoch
                && Some(h.height) == prev.height.checked_add(1)
                && h.parent == prev.hash();
            if !linked {
                return Err(CrosslinkError::Ancestry);
            }
            prev = h;
        }
        Ok(())
    }
}

/// `crosslink_{shard}_{height}_batch`.
pub fn crosslink_id(shard: ShardId, height: u64) -> String {
    format!("crosslink_{}_{}_batch", shard.0, height)
}

impl Write for Crosslink {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        self.destinations.write(buf);
        self.batched_txs.write(buf);
        self.prsm_events.write(buf);
        self.certificate.write(buf);
        self.ancestry.write(buf);
    }
}

impl EncodeSize for Crosslink {
    fn encode_size(&self) -> usize {
        self.header.encode_size()
            + self.destinations.encode_size()
            + self.batched_txs.encode_size()
            + self.prsm_events.encode_size()
            + self.certificate.encode_size()
            + self.ancestry.encode_size()
    }
}

impl Read for Crosslink {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Crosslink {
            header: BlockHeader::read_cfg(buf, &())?,
            destinations: read_vec(buf, limits::MAX_SHARDS, &())?,
            batched_txs: read_vec(buf, limits::MAX_BATCHED_TXS, &())?,
            prsm_events: read_vec(buf, limits::MAX_PRSM_EVENTS_PER_CROSSLINK, &())?,
            certificate: read_bytes(buf, limits::MAX_CERTIFICATE_BYTES)?,
            ancestry: read_vec(buf, limits::MAX_CROSSLINK_ANCESTRY, &())?,
        })
    }
}
