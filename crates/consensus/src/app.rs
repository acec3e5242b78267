//! The application interface of a chain engine: what the shard and beacon state machines
//! implement. No commonware types cross this edge.

use commonware_codec::{Encode, Read};
use std::{fmt::Debug, future::Future};
use vision_types::{Hash, PublicKey};

use crate::chain::ChainId;

/// A block of one chain, as consensus needs to see it.
///
/// The encoding must be canonical (`encode(decode(b)) == b`; alternate encodings rejected) and
/// `hash` must commit to every field (it is the digest consensus orders and certifies).
pub trait ChainBlock: Clone + Debug + Send + Sync + Encode + Read + 'static {
    /// The block hash (header hash); the digest consensus certifies.
    fn hash(&self) -> Hash;
    /// Height; genesis is 0.
    fn height(&self) -> u64;
    /// Hash of the parent block.
    fn parent(&self) -> Hash;
    /// Proposer time, milliseconds since the Unix epoch.
    fn timestamp_ms(&self) -> u64;
    /// Upper bound on the encoded size of any block `read_cfg(.., cfg)` accepts (sizes the
    /// network's maximum message; see [`crate::max_message_bytes`]).
    fn max_encode_size(cfg: &Self::Cfg) -> usize;
}

/// What a proposer knows when asked to build a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposeCtx {
    /// The chain.
    pub chain: ChainId,
    /// The committee epoch.
    pub epoch: u64,
    /// The consensus view the block is proposed in.
    pub view: u64,
    /// Height of the block to build (parent height + 1).
    pub height: u64,
    /// Local time, milliseconds since the Unix epoch (runtime clock). Blocks should carry
    /// `max(now_ms, parent.timestamp_ms + 1)` or similar.
    pub now_ms: u64,
    /// This view's leader (the local node).
    pub leader: PublicKey,
}

/// What a verifier knows about a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyCtx {
    /// The chain.
    pub chain: ChainId,
    /// The committee epoch.
    pub epoch: u64,
    /// The consensus view of the proposal.
    pub view: u64,
    /// The leader that proposed it.
    pub leader: PublicKey,
}

/// A block finalized by consensus, delivered in height order, at least once.
#[derive(Clone, Debug)]
pub struct Finalized<B> {
    /// The block.
    pub block: B,
    /// Encoded finalization certificate of exactly this block (see
    /// [`crate::verify_finalization_certificate`]), when this node holds one. `None` when
    /// the block was finalized only through a descendant's certificate (its own may never
    /// reach this node); crosslink such a block through a later certified block.
    pub certificate: Option<Vec<u8>>,
}

/// What an application knows about the state after a block (see
/// [`ChainApp::state_after`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateAfter {
    /// Known: children of the block can be proposed and verified now (the block is the
    /// committed tip, or this node proposed, verified or adopted it since its last restart).
    Known,
    /// Not known, and the block is above the committed height: the engine re-derives it with
    /// [`ChainApp::adopt`] from its nearest known ancestor.
    Unknown,
    /// Never: at or below the committed height without being the committed block (a dead
    /// fork).
    Never,
}

/// The state machine behind one chain engine.
///
/// Every method may be cancelled at an `.await` (consensus moves on); keep them
/// cancellation-safe. Calls for one chain may overlap (verify of one view while proposing
/// another): the implementation must be `Clone` and share state internally.
pub trait ChainApp: Clone + Send + 'static {
    /// The block type.
    type Block: ChainBlock;

    /// Whether there is something to put in a block (mempool, incoming receipts). While false,
    /// a proposer waits up to `min_block_interval_ms` after its parent's timestamp before
    /// proposing (empty-view throttle). Must be cheap; polled.
    fn has_pending_work(&self) -> bool {
        false
    }

    /// Builds a child of `parent` (execute mempool transactions on the parent's state). `None`
    /// declines the view. Must return a block with `height == parent.height + 1` and
    /// `parent == parent.hash()`.
    fn propose(
        &mut self,
        parent: &Self::Block,
        ctx: ProposeCtx,
    ) -> impl Future<Output = Option<Self::Block>> + Send;

    /// Whether `block` is a valid child of `parent` (re-execute and compare roots). The engine
    /// has already checked height and parent linkage. Must be deterministic across honest
    /// nodes; return `false` only for permanently invalid blocks and stay pending while the
    /// verdict may still change (missing data).
    fn verify(
        &mut self,
        parent: &Self::Block,
        block: &Self::Block,
        ctx: VerifyCtx,
    ) -> impl Future<Output = bool> + Send;

    /// Whether this node knows the state after `block`. Before `propose` and `verify` the
    /// engine asks it about the parent; while the answer is [`StateAfter::Unknown`] it walks
    /// back through the chain's own block store (fetching from peers if needed) to the newest
    /// ancestor whose state is known and hands the blocks in between to [`Self::adopt`], oldest
    /// first. A node that verified the parent before a restart (an in-memory application forgets
    /// unfinalized states) or that certified it without verifying it (consensus only needs the
    /// block to certify) would otherwise wait for the parent's finalization, which may need
    /// this node's own vote on a child. Default: [`StateAfter::Known`] (the application
    /// resolves missing ancestors itself).
    fn state_after(&self, block: &Self::Block) -> impl Future<Output = StateAfter> + Send {
        let _ = block;
        async { StateAfter::Known }
    }

    /// Re-derives the state after `block`, a child of `parent` (whose state is known), for a
    /// block this node never executed or whose execution a restart lost: the checks and
    /// execution of [`Self::verify`] without the consensus context (view, leader), which the
    /// committee checked when it certified `block`. Returns whether `block` applied; on `false`
    /// the engine stops adopting and calls `propose` or `verify` anyway (which then waits for
    /// the parent's state as it would without adoption). Default: `false` (pairs with the
    /// default [`Self::state_after`], which never asks).
    fn adopt(
        &mut self,
        parent: &Self::Block,
        block: &Self::Block,
    ) -> impl Future<Output = bool> + Send {
        let _ = (parent, block);
        async { false }
    }

    /// Height of the last finalized block whose effects the application still holds, when it
    /// may hold less than the engine acknowledged (state kept only in memory, lost by a
    /// restart). Before delivering a block above `applied + 1`, the engine replays the
    /// finalized blocks in between from its own archive. `None` (the default): the
    /// application persists what it acknowledged.
    fn applied_height(&self) -> impl Future<Output = Option<u64>> + Send {
        async { None }
    }

    /// Read access to the chain's archive of finalized blocks and certificates, handed over
    /// once when the engine starts, for serving followers heights older than the application
    /// keeps in memory. Default: ignored.
    fn attach_archive(&self, archive: crate::archive::ChainArchive<Self::Block>) {
        let _ = archive;
    }

    /// Evidence the engine saw of a committee member equivocating (an encoded simplex fault:
    /// two conflicting votes it signed in one view; not verified beyond what the engine
    /// checked). Must not block. Default: ignored.
    fn report_fault(&self, evidence: Vec<u8>) {
        let _ = evidence;
    }

    /// A finalized block, in height order starting at height 1, at least once (a restart can
    /// redeliver blocks): apply idempotently. The engine acknowledges the block to marshal
    /// when this returns; until then no later block is delivered.
    fn finalized(&mut self, finalized: Finalized<Self::Block>) -> impl Future<Output = ()> + Send;
}
