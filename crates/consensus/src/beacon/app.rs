//! The beacon chain's [`ChainApp`].

use super::{
    block::BeaconBlock,
    config::{ConfigChange, ConfigRejection, MAX_CONFIG_CHANGES_PER_BEACON_BLOCK},
    evidence::{FaultEvidence, MAX_EVIDENCE_PER_BEACON_BLOCK},
    pool::{CrosslinkPool, PoolRejection},
    state::{BeaconState, EvidenceRejection},
};
use crate::{
    app::{ChainApp, ChainBlock, Finalized, ProposeCtx, StateAfter, VerifyCtx},
    archive::{ArchiveRead, ChainArchive},
    served::ServedBlocks,
};
use commonware_runtime::Clock;
use commonware_utils::sync::Mutex;
use rand_core::CryptoRng;
use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};
use vision_types::{
    Hash, ShardId,
    block::{BlockHeader, ChainRef, Crosslink, DestinationBatch},
    limits::MAX_CROSSLINKS_PER_BEACON_BLOCK,
};

/// Speculative states kept for unfinalized blocks (oldest heights dropped first).
const MAX_SPECULATIVE: usize = 256;
/// Finalized crosslinks kept in the [`FinalizedCrosslinks`] log.
pub const PUBLISHED_LOG: usize = 4096;
/// Equivocation evidence waiting for inclusion (more is refused until some is included).
const MAX_PENDING_EVIDENCE: usize = 64;
/// Configuration changes waiting for inclusion (by seq; more are refused).
const MAX_PENDING_CONFIGS: usize = 8;
/// How often propose/verify re-check for a parent state they do not have yet.
const PARENT_POLL: Duration = Duration::from_millis(10);

/// A crosslink the beacon finalized, as published to shards.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalizedCrosslink {
    /// Beacon height of the block that finalized it.
    pub beacon_height: u64,
    /// The crosslink.
    pub crosslink: Crosslink,
}

/// Finalized beacon blocks kept for serving followers.
pub const SERVED_BLOCKS: usize = 16_384;
/// Byte budget of the finalized beacon blocks kept for serving followers.
pub const SERVED_BLOCK_BYTES: usize = 256 * 1024 * 1024;
/// Destination entries indexed per (source, destination) stream.
const ENTRIES_PER_STREAM: usize = 1024;

struct Published {
    state: Option<BeaconState>,
    log: VecDeque<FinalizedCrosslink>,
    /// `(src, dst, first_seq) → (crosslink height, entry)` for entries with receipts.
    entries: BTreeMap<(ShardId, ShardId, u64), (u64, DestinationBatch)>,
    /// Recent finalized blocks with their own certificate when known.
    blocks: ServedBlocks<BeaconBlock>,
    /// The beacon chain's archive (on beacon members), for followers asking below `blocks`.
    archive: Option<ChainArchive<BeaconBlock>>,
}

impl Default for Published {
    fn default() -> Self {
        Published {
            state: None,
            log: VecDeque::new(),
            entries: BTreeMap::new(),
            blocks: ServedBlocks::new(SERVED_BLOCKS, SERVED_BLOCK_BYTES),
            archive: None,
        }
    }
}

/// The publication side of the beacon: a shared table (`Arc<Mutex<..>>`, not a channel) that
/// shard applications and relays read. Filled by the beacon application on beacon members and
/// by the beacon follower elsewhere, in beacon height order.
///
/// - [`Self::with_view`] reads the committed [`BeaconState`] under the lock: its height, the
///   table of finalized receipts roots `(shard, height) → root` (a
///   `BTreeMap<(ShardId, u64), Hash>`, which implements `vision_state::FinalRoots`) and the
///   configuration history, together.
/// - [`Self::entry`] finds the finalized destination entry that starts a receipt stream at a
///   seq (what a destination shard fetches receipts for).
/// - [`Self::since`] returns the finalized crosslinks themselves (bounded log of the last
///   [`PUBLISHED_LOG`]).
/// - [`Self::segment_from`] returns recent finalized blocks and a certificate, to serve
///   followers.
#[derive(Clone, Default)]
pub struct FinalizedCrosslinks(Arc<Mutex<Published>>);

impl FinalizedCrosslinks {
    /// A view starting at `initial` (the beacon state at height 0, or a restored state).
    pub fn new(initial: BeaconState) -> Self {
        FinalizedCrosslinks(Arc::new(Mutex::new(Published {
            state: Some(initial),
            ..Published::default()
        })))
    }
    /// Highest beacon height applied.
    pub fn beacon_height(&self) -> u64 {
        self.0.lock().state.as_ref().map_or(0, BeaconState::height)
    }
    /// The committed beacon state (`None` before the first finalized block).
    pub fn state(&self) -> Option<BeaconState> {
        self.0.lock().state.clone()
    }
    /// The last crosslinked height of `shard`.
    pub fn last_height(&self, shard: ShardId) -> u64 {
        self.0
            .lock()
            .state
            .as_ref()
            .map_or(0, |s| s.last_height(shard))
    }
    /// The finalized receipts root of `shard`'s crosslink at `height`, if retained.
    pub fn receipts_root(&self, shard: ShardId, height: u64) -> Option<Hash> {
        self.0
            .lock()
            .state
            .as_ref()
            .and_then(|s| s.receipts_root(shard, height))
    }
    /// Runs `f` on the committed beacon state (`None` before any is known), under the lock:
    /// height, receipts roots and configuration history read together.
    pub fn with_view<R>(&self, f: impl FnOnce(Option<&BeaconState>) -> R) -> R {
        f(self.0.lock().state.as_ref())
    }
    /// The finalized destination entry of the `src → dst` stream starting at `first_seq`,
    /// with the height of its crosslink.
    pub fn entry(
        &self,
        src: ShardId,
        dst: ShardId,
        first_seq: u64,
    ) -> Option<(u64, DestinationBatch)> {
        self.0.lock().entries.get(&(src, dst, first_seq)).cloned()
    }
    /// Crosslinks finalized at beacon heights above `beacon_height` still in the log, in
    /// finalization order.
    pub fn since(&self, beacon_height: u64) -> Vec<FinalizedCrosslink> {
        self.0
            .lock()
            .log
            .iter()
            .filter(|f| f.beacon_height > beacon_height)
            .cloned()
            .collect()
    }

    /// `(height, hash)` of the retained recent finalized blocks, ascending.
    pub fn recent_blocks(&self) -> Vec<(u64, Hash)> {
        self.0
            .lock()
            .blocks
            .iter()
            .map(|b| (b.header.height, b.header.hash()))
            .collect()
    }

    /// Finalized blocks from height `from` up to the highest one, within `max_blocks` and
    /// about `max_bytes`, that comes with its own certificate; with that certificate. `None`
    /// if there is no such block (nothing new, or not retained).
    pub fn segment_from(
        &self,
        from: u64,
        max_blocks: usize,
        max_bytes: usize,
    ) -> Option<(Vec<BeaconBlock>, Vec<u8>)> {
        self.0
            .lock()
            .blocks
            .segment_from(from, max_blocks, max_bytes)
    }

    /// A read of the beacon chain's archive for a follower asking from `from`, when the
    /// in-memory window no longer holds it but this node finalized it (`None` otherwise, on
    /// a node that is not a beacon member, or while other archive reads are running).
    pub fn archive_read(&self, from: u64) -> Option<ArchiveRead<BeaconBlock>> {
        let p = self.0.lock();
        let finalized = p.state.as_ref().map_or(0, BeaconState::height);
        ChainArchive::read_for(&p.archive, &p.blocks, from, finalized)
    }

    /// Keeps at most `blocks` recent finalized blocks in memory for followers (older ones
    /// come from the archive); call before the first block is published.
    pub fn set_served_blocks(&self, blocks: usize) {
        self.0.lock().blocks = ServedBlocks::new(blocks, SERVED_BLOCK_BYTES);
    }

    /// Publishes the state after `block` (called in height order).
    pub(crate) fn publish(
        &self,
        state: &BeaconState,
        block: &BeaconBlock,
        certificate: Option<Vec<u8>>,
    ) {
        let mut p = self.0.lock();
        p.state = Some(state.clone());
        for cl in &block.crosslinks {
            if p.log.len() == PUBLISHED_LOG {
                p.log.pop_front();
            }
            p.log.push_back(FinalizedCrosslink {
                beacon_height: block.header.height,
                crosslink: cl.clone(),
            });
            let Some(src) = cl.shard() else { continue };
            for d in &cl.destinations {
                p.entries
                    .insert((src, d.dst, d.first_seq), (cl.header.height, d.clone()));
                let stream = (src, d.dst, 0)..=(src, d.dst, u64::MAX);
                if p.entries.range(stream.clone()).count() > ENTRIES_PER_STREAM
                    && let Some(k) = p.entries.range(stream).next().map(|(k, _)| *k)
                {
                    p.entries.remove(&k);
                }
            }
        }
        p.blocks.push(block.clone(), certificate);
    }
}

struct Inner {
    /// State after the last finalized block.
    committed: BeaconState,
    /// States after proposed or verified (unfinalized) blocks, by block hash.
    speculative: BTreeMap<Hash, BeaconState>,
    pool: CrosslinkPool,
    /// Configuration changes waiting for inclusion, by seq.
    configs: BTreeMap<u64, ConfigChange>,
    /// Verified equivocation evidence waiting for inclusion, by id.
    evidence: BTreeMap<Hash, FaultEvidence>,
}

impl Inner {
    fn state_after(&self, block: &BeaconBlock) -> Option<BeaconState> {
        let hash = block.hash();
        if self.committed.tip() == hash {
            return Some(self.committed.clone());
        }
        self.speculative.get(&hash).cloned()
    }

    /// Whether the state after `block` is held (cheap [`Self::state_after`] test).
    fn knows(&self, block: &BeaconBlock) -> bool {
        let hash = block.hash();
        self.committed.tip() == hash || self.speculative.contains_key(&hash)
    }

    fn remember(&mut self, hash: Hash, state: BeaconState) {
        if state.height() <= self.committed.height() {
            return;
        }
        self.speculative.insert(hash, state);
        while self.speculative.len() > MAX_SPECULATIVE {
            let lowest = self
                .speculative
                .iter()
                .min_by_key(|(h, s)| (s.height(), **h))
                .map(|(h, _)| *h)
                .expect("non-empty");
            self.speculative.remove(&lowest);
        }
    }
}

/// The beacon chain application: crosslink pool, speculative states of unfinalized blocks,
/// the committed [`BeaconState`] and its publication ([`FinalizedCrosslinks`]).
///
/// `E` is the runtime context (clock for waiting on a parent's state, cryptographic RNG for
/// batch signature verification), shared by the clones.
pub struct BeaconApp<E> {
    inner: Arc<Mutex<Inner>>,
    published: FinalizedCrosslinks,
    context: Arc<Mutex<E>>,
}

impl<E> Clone for BeaconApp<E> {
    fn clone(&self) -> Self {
        BeaconApp {
            inner: self.inner.clone(),
            published: self.published.clone(),
            context: self.context.clone(),
        }
    }
}

impl<E: Clock + CryptoRng + Send + 'static> BeaconApp<E> {
    /// An app whose chain starts at `genesis` with state `initial` (at height 0). Use
    /// [`BeaconBlock::genesis`]`(initial.root())` as the engine's genesis block.
    pub fn new(
        context: E,
        initial: BeaconState,
        genesis: &BeaconBlock,
        pool: CrosslinkPool,
    ) -> Self {
        let committed = initial.with_tip(genesis.hash());
        let published = FinalizedCrosslinks::new(committed.clone());
        BeaconApp {
            inner: Arc::new(Mutex::new(Inner {
                committed,
                speculative: BTreeMap::new(),
                pool,
                configs: BTreeMap::new(),
                evidence: BTreeMap::new(),
            })),
            published,
            context: Arc::new(Mutex::new(context)),
        }
    }

    /// Submits a crosslink to the pool (checked against the committed state).
    pub fn submit(&mut self, cl: Crosslink) -> Result<(), PoolRejection> {
        let mut inner = self.inner.lock();
        let Inner {
            committed, pool, ..
        } = &mut *inner;
        pool.submit(cl, committed, &mut *self.context.lock())
    }

    /// Submits a configuration change for inclusion. It must be the next change of the
    /// committed state (checked in full); a second change with the same seq is refused.
    pub fn submit_config(&self, change: ConfigChange) -> Result<(), ConfigRejection> {
        let mut inner = self.inner.lock();
        if inner.configs.contains_key(&change.seq) {
            return Ok(()); // already pooled (resends are normal)
        }
        inner.committed.check_config_change(&change)?;
        if inner.configs.len() >= MAX_PENDING_CONFIGS {
            let oldest = *inner.configs.keys().next().expect("non-empty");
            inner.configs.remove(&oldest);
        }
        inner.configs.insert(change.seq, change);
        Ok(())
    }

    /// Submits equivocation evidence for inclusion: verified against the committed state
    /// (signatures, committee, epoch; nothing at that view or later recorded yet). Resends
    /// are accepted silently; when [`MAX_PENDING_EVIDENCE`] wait, new evidence is dropped.
    pub fn submit_evidence(&self, ev: FaultEvidence) -> Result<(), EvidenceRejection> {
        let id = ev.id();
        let mut inner = self.inner.lock();
        if inner.evidence.contains_key(&id) {
            return Ok(());
        }
        inner
            .committed
            .check_evidence(&ev, &mut *self.context.lock())?;
        if inner.evidence.len() < MAX_PENDING_EVIDENCE {
            inner.evidence.insert(id, ev);
        }
        Ok(())
    }

    /// Number of configuration changes waiting for inclusion.
    pub fn pending_configs(&self) -> usize {
        self.inner.lock().configs.len()
    }

    /// The published finalized crosslinks (shared handle).
    pub fn finalized_crosslinks(&self) -> FinalizedCrosslinks {
        self.published.clone()
    }

    /// A copy of the committed state.
    pub fn committed(&self) -> BeaconState {
        self.inner.lock().committed.clone()
    }

    /// Number of crosslinks waiting in the pool.
    pub fn pool_len(&self) -> usize {
        self.inner.lock().pool.len()
    }

    /// Whether the pool holds (shard, height).
    pub fn pool_contains(&self, shard: ShardId, height: u64) -> bool {
        self.inner.lock().pool.contains(shard, height)
    }

    async fn parent_state(&self, parent: &BeaconBlock) -> BeaconState {
        loop {
            if let Some(s) = self.inner.lock().state_after(parent) {
                return s;
            }
            // Not verified, adopted or finalized here. The engine adopts a parent's unknown
            // ancestry before calling propose or verify; this is the rare case it could not
            // (more than its bound behind, or an ancestor not available yet): wait (the engine
            // cancels us when the view moves on; the parent's finalization makes it available).
            let sleep = self.context.lock().sleep(PARENT_POLL);
            sleep.await;
        }
    }

    /// Checks `block` as a child of `parent` whose state is `state`; returns the state after.
    pub fn check_block(
        &mut self,
        parent: &BeaconBlock,
        mut state: BeaconState,
        block: &BeaconBlock,
    ) -> Result<BeaconState, String> {
        let h = &block.header;
        if h.chain != ChainRef::Beacon {
            return Err("not a beacon block".into());
        }
        if h.timestamp_ms <= parent.header.timestamp_ms {
            return Err("timestamp not above the parent's".into());
        }
        let unused = [h.receipts_root, h.batch_txs_root, h.prsm_root];
        if unused.iter().any(|r| *r != Hash::ZERO) || h.beacon_height != 0 {
            return Err("unused header fields must be zero".into());
        }
        if block.crosslinks.len() > MAX_CROSSLINKS_PER_BEACON_BLOCK {
            return Err("too many crosslinks".into());
        }
        if block.config_changes.len() > MAX_CONFIG_CHANGES_PER_BEACON_BLOCK {
            return Err("too many configuration changes".into());
        }
        if block.evidence.len() > MAX_EVIDENCE_PER_BEACON_BLOCK {
            return Err("too much evidence".into());
        }
        if !block.body_matches() {
            return Err("body root does not match the crosslinks".into());
        }
        state.begin_block(h.timestamp_ms);
        let mut rng = self.context.lock();
        for (i, cl) in block.crosslinks.iter().enumerate() {
            state
                .accept_crosslink(cl, &mut *rng)
                .map_err(|e| format!("crosslink {i} ({}): {e}", cl.id()))?;
        }
        for change in &block.config_changes {
            state
                .accept_config_change(change, h.height)
                .map_err(|e| format!("configuration change {}: {e}", change.seq))?;
        }
        for (i, ev) in block.evidence.iter().enumerate() {
            state
                .accept_evidence(ev, &mut *rng)
                .map_err(|e| format!("evidence {i}: {e}"))?;
        }
        drop(rng);
        state.credit_beacon_proposer(&h.proposer);
        state.advance(block);
        if h.state_root != state.root() {
            return Err("state root mismatch".into());
        }
        Ok(state)
    }
}

impl<E: Clock + CryptoRng + Send + 'static> ChainApp for BeaconApp<E> {
    type Block = BeaconBlock;

    fn has_pending_work(&self) -> bool {
        let inner = self.inner.lock();
        inner.pool.has_pending_work()
            || inner
                .configs
                .contains_key(&(inner.committed.latest_config().seq + 1))
    }

    fn attach_archive(&self, archive: ChainArchive<BeaconBlock>) {
        self.published.0.lock().archive = Some(archive);
    }

    /// The beacon state lives in memory: after a restart the engine replays the finalized
    /// beacon blocks from its archive.
    async fn applied_height(&self) -> Option<u64> {
        Some(self.inner.lock().committed.height())
    }

    /// Known for the committed tip and the speculative states (blocks proposed, verified or
    /// adopted since the last restart: the beacon state lives in memory), never for another
    /// block at or below the committed height.
    async fn state_after(&self, block: &BeaconBlock) -> StateAfter {
        let inner = self.inner.lock();
        if inner.knows(block) {
            StateAfter::Known
        } else if block.header.height <= inner.committed.height() {
            StateAfter::Never
        } else {
            StateAfter::Unknown
        }
    }

    /// [`Self::check_block`] on the parent's state (certificates of the crosslinks included),
    /// remembering the state after `block` as that of a verified block.
    async fn adopt(&mut self, parent: &BeaconBlock, block: &BeaconBlock) -> bool {
        let Some(state) = self.inner.lock().state_after(parent) else {
            return false;
        };
        match self.check_block(parent, state, block) {
            Ok(state) => {
                self.inner.lock().remember(block.hash(), state);
                true
            }
            Err(e) => {
                tracing::warn!(
                    height = block.header.height,
                    "certified beacon block does not apply: {e}"
                );
                false
            }
        }
    }

    async fn propose(&mut self, parent: &BeaconBlock, ctx: ProposeCtx) -> Option<BeaconBlock> {
        let mut state = self.parent_state(parent).await;
        let timestamp_ms = ctx.now_ms.max(parent.header.timestamp_ms + 1);
        state.begin_block(timestamp_ms);
        let (candidates, config) = {
            let inner = self.inner.lock();
            let config = inner.configs.get(&(state.latest_config().seq + 1)).cloned();
            let candidates: Vec<Crosslink> = inner
                .pool
                .pending()
                .filter(|cl| cl.shard().is_some_and(|s| state.may_accept(s, cl)))
                .take(MAX_CROSSLINKS_PER_BEACON_BLOCK)
                .cloned()
                .collect();
            (candidates, config)
        };
        let mut crosslinks = Vec::new();
        {
            let mut rng = self.context.lock();
            for cl in candidates {
                // Re-check on the parent's speculative state (plus the ones taken so far).
                if state.accept_crosslink(&cl, &mut *rng).is_ok() {
                    crosslinks.push(cl);
                }
            }
        }
        let mut config_changes = Vec::new();
        if let Some(change) = config {
            match state.accept_config_change(&change, ctx.height) {
                Ok(()) => config_changes.push(change),
                Err(e) => {
                    tracing::debug!(seq = change.seq, "configuration change not included: {e}")
                }
            }
        }
        let pending: Vec<FaultEvidence> = self.inner.lock().evidence.values().cloned().collect();
        let mut evidence = Vec::new();
        {
            let mut rng = self.context.lock();
            for ev in pending {
                if evidence.len() == MAX_EVIDENCE_PER_BEACON_BLOCK {
                    break;
                }
                if state.accept_evidence(&ev, &mut *rng).is_ok() {
                    evidence.push(ev);
                }
            }
        }
        let mut header = BlockHeader {
            chain: ChainRef::Beacon,
            epoch: ctx.epoch,
            height: ctx.height,
            parent: parent.hash(),
            timestamp_ms,
            proposer: ctx.leader,
            body_root: BeaconBlock::compute_body_root_with(&crosslinks, &config_changes, &evidence),
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            batch_txs_root: Hash::ZERO,
            prsm_root: Hash::ZERO,
            beacon_height: 0,
        };
        // The state root depends on the crosslinks and configuration changes (whose effective
        // height follows from this height) and the proposer's credit, not on the tip.
        state.credit_beacon_proposer(&ctx.leader);
        header.state_root = state.root();
        let block = BeaconBlock {
            header,
            crosslinks,
            config_changes,
            evidence,
        };
        state.advance(&block);
        self.inner.lock().remember(block.hash(), state);
        Some(block)
    }

    async fn verify(&mut self, parent: &BeaconBlock, block: &BeaconBlock, ctx: VerifyCtx) -> bool {
        if block.header.epoch != ctx.epoch || block.header.proposer != ctx.leader {
            return false;
        }
        let state = self.parent_state(parent).await;
        match self.check_block(parent, state, block) {
            Ok(state) => {
                self.inner.lock().remember(block.hash(), state);
                true
            }
            Err(e) => {
                tracing::warn!(height = block.header.height, "rejected beacon block: {e}");
                false
            }
        }
    }

    async fn finalized(&mut self, finalized: Finalized<BeaconBlock>) {
        let Finalized { block, certificate } = finalized;
        let mut inner = self.inner.lock();
        if block.header.height <= inner.committed.height() {
            return; // redelivery
        }
        if let Err(e) = inner.committed.apply_block(&block) {
            // A quorum verified this block against the same rules: a local bug.
            panic!(
                "finalized beacon block {} does not apply: {e}",
                block.header.height
            );
        }
        let Inner {
            committed,
            speculative,
            pool,
            configs,
            evidence,
        } = &mut *inner;
        pool.prune(committed);
        let applied = committed.latest_config().seq;
        configs.retain(|seq, _| *seq > applied);
        if !block.evidence.is_empty() {
            // What the block recorded, and evidence for views it superseded, can never be
            // included again.
            evidence.retain(|_, ev| committed.still_new(ev));
        }
        for change in &block.config_changes {
            tracing::info!(
                seq = change.seq,
                beacon_height = block.header.height,
                effective_height = block.header.height + super::CONFIG_ACTIVATION_DELAY,
                "configuration change finalized"
            );
        }
        let height = committed.height();
        speculative.retain(|_, s| s.height() > height);
        self.published.publish(committed, &block, certificate);
    }
}
