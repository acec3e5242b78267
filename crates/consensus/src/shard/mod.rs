//! The application side of a shard: [`ShardApp`] implements [`ChainApp`] over
//! [`ShardChainBlock`] with the `vision_state` state machine, a [`Mempool`], a QMDB store for
//! committed state and speculative executions of not-yet-finalized blocks.
//!
//! # Lifecycle of a block
//!
//! - **propose**: `build_block` from mempool candidates on the parent's state (committed state
//!   plus the write sets of the parent's not-yet-finalized ancestors), header roots from the
//!   execution and `speculative_roots` over that chain of write sets.
//! - **verify**: header checks (chain, epoch, proposer, linkage, time, body root), then
//!   `execute_block` on the parent's state and a comparison of the three roots. If the parent's
//!   state is not known yet (the parent was notarized without this node executing it, and its
//!   ancestry is not cached), verify waits until finalization catches up.
//! - **finalized**: commit the block's write set (idempotent by height: marshal delivers at
//!   least once), assert the committed root equals the header's `state_root` (a mismatch is a
//!   safety bug), drop speculative entries at or below the height, remove the included
//!   transactions from the mempool, record per-tx outcomes, and queue a crosslink if the block
//!   closed a batch (see [`OutgoingCrosslink`]).
//!
//! # Beacon view and receipts
//!
//! - The app reads the beacon through a [`FinalizedCrosslinks`] handle (the beacon app's on a
//!   beacon member, a follower's elsewhere): its finalized receipts roots are the
//!   `FinalRoots` incoming batches are checked against.
//! - Incoming receipts: the relay fetches [`IncomingBatch`]es from source shards and adds them
//!   with [`ShardApp::add_incoming`] (checked against the beacon root); a proposer includes the
//!   ones that continue each (source, this shard) stream and stamps `header.beacon_height`
//!   with the beacon height it used. A verifier (and the finalizer) first waits until its own
//!   beacon view reaches that height, so every honest node checks the same batches against the
//!   same roots.
//! - Outgoing: the closed batches are kept (bounded) to serve destination shards
//!   ([`ShardApp::incoming_batch`]); crosslinks leave through [`ShardApp::take_crosslinks`].
//!   A block finalized without its own certificate gets one through its first certified
//!   descendant (the crosslink's `ancestry`).
//!
//! # Genesis
//!
//! The genesis block's `state_root` is [`genesis_commitment`] of the genesis write set (not the
//! QMDB root, so that a restarted node derives the same genesis block without replaying
//! history); height 1 executes on the committed genesis state as usual.

mod batchlog;
mod block;
mod mempool;
#[cfg(test)]
mod tests;
mod txindex;

pub use block::{ShardBlockCfg, ShardChainBlock};
pub use mempool::{Mempool, MempoolConfig, MempoolError};

use crate::{
    app::{ChainApp, ChainBlock, Finalized, ProposeCtx, StateAfter, VerifyCtx},
    archive::{ArchiveRead, ChainArchive},
    beacon::{BeaconState, FinalizedCrosslinks},
    served::ServedBlocks,
};
use commonware_runtime::Spawner;
use commonware_utils::sync::Mutex;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};
use vision_sharding::ShardLayout;
use vision_state::{
    BlockContext, BlockExecution, BlockLimits, ClosedBatch, FnLayout, Overlay, ProposalTargets,
    QmdbStore, ShardOf, ShardStore, StateReadExt, StoreError, TemplateEngine, TxOutcome,
    TxRejection, VerifiedSignatures, WriteSet, build_block, execute_block, genesis,
};
use vision_types::{
    AccountId, Amount, BlockHeader, ChainId as NetworkId, ContractId, Crosslink, Hash, PublicKey,
    ShardBlock, ShardConfig, ShardId, SignedTransaction, Verified,
    block::{ChainRef, IncomingBatch},
    limits::{MAX_CROSSLINK_ANCESTRY, MAX_INCOMING_RECEIPTS_PER_BLOCK, MAX_SHARDS},
};

/// Closed batches with receipts kept to serve destination shards.
pub const SERVED_BATCHES: usize = 4096;
/// Incoming batches waiting to be included.
pub const MAX_INCOMING_BATCHES: usize = 1024;
/// Finalized blocks kept to serve followers (API nodes).
pub const SERVED_BLOCKS: usize = 4096;
/// Byte budget of the finalized blocks kept to serve followers.
pub const SERVED_BLOCK_BYTES: usize = 64 * 1024 * 1024;

/// What a finalized block did, handed to the listener set with
/// [`ShardApp::set_listener`] (the API node's event stream).
#[derive(Clone, Debug)]
pub struct FinalizedEvent {
    /// The shard.
    pub shard: ShardId,
    /// Block height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash,
    /// State root after the block.
    pub state_root: Hash,
    /// Block time.
    pub timestamp_ms: u64,
    /// The outcome of every transaction the block included, in order.
    pub outcomes: Vec<TxOutcome>,
    /// The signer of every transaction the block included, in the same order.
    pub signers: Vec<AccountId>,
    /// Origin transaction ids of the incoming receipts the block applied.
    pub applied_origins: Vec<Hash>,
    /// Transactions in the batch this block closed (empty if it closed none).
    pub closed_batch_txs: Vec<Hash>,
}

/// A callback run on every finalized block (must not block).
pub type FinalizedListener = Arc<dyn Fn(&FinalizedEvent) + Send + Sync>;

/// Everything a shard application is configured with.
#[derive(Clone, Debug)]
pub struct ShardAppConfig {
    /// The shard.
    pub shard: ShardId,
    /// The network's chain id.
    pub chain_id: NetworkId,
    /// Sharding configuration (its `num_shards` defines the uniform layout).
    pub config: ShardConfig,
    /// Partition prefix of the QMDB store (unique per node and shard).
    pub store_prefix: String,
    /// Genesis accounts of the whole network (every shard takes its own).
    pub genesis_accounts: Vec<(AccountId, PublicKey, Amount)>,
    /// Genesis time.
    pub genesis_timestamp_ms: u64,
    /// Mempool bounds.
    pub mempool: MempoolConfig,
    /// Most transactions per block.
    pub max_block_txs: usize,
    /// The network's block size bound (its [`ShardBlockCfg::max_bytes`]): a proposer keeps the
    /// encoded block under it.
    pub max_block_bytes: usize,
    /// How far ahead of the local clock a block's timestamp may be.
    pub max_future_ms: u64,
    /// Capacity of the crosslink outbox (oldest dropped beyond it, counted).
    pub outbox_capacity: usize,
    /// Number of recent transaction outcomes kept in memory for the API.
    pub recent_outcomes: usize,
    /// Outcomes kept in the durable transaction index (on disk, about 40 bytes of memory
    /// each), which answers for transactions older than the in-memory window and survives
    /// restarts; 0 (the default) keeps no index.
    pub tx_index_records: u64,
    /// Which shards serve each workload type (the committee plan's, under the workload
    /// strategy; empty otherwise): the part of the plan proposal targeting needs.
    pub workload_shards: BTreeMap<String, Vec<ShardId>>,
    /// Recent finalized blocks kept in memory to serve followers (older ones are read from
    /// the chain's archive, more slowly); default [`SERVED_BLOCKS`].
    pub served_blocks: usize,
}

impl ShardAppConfig {
    /// Defaults for everything but identity and genesis.
    pub fn new(
        shard: ShardId,
        chain_id: NetworkId,
        config: ShardConfig,
        store_prefix: String,
        genesis_accounts: Vec<(AccountId, PublicKey, Amount)>,
    ) -> Self {
        Self {
            shard,
            chain_id,
            config,
            store_prefix,
            genesis_accounts,
            genesis_timestamp_ms: 0,
            mempool: MempoolConfig::default(),
            max_block_txs: 2_000,
            max_block_bytes: ShardBlockCfg::default().max_bytes,
            max_future_ms: 5_000,
            outbox_capacity: 1_024,
            recent_outcomes: 100_000,
            tx_index_records: 0,
            workload_shards: BTreeMap::new(),
            served_blocks: SERVED_BLOCKS,
        }
    }
}

/// Equivocation evidence kept for the relay (older is dropped).
const MAX_REPORTED_FAULTS: usize = 32;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShardAppError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The genesis account list is unusable.
    #[error("genesis: {0}")]
    Genesis(#[from] vision_state::GenesisError),
    /// The layout could not be built.
    #[error("layout: {0}")]
    Layout(String),
    /// The transaction index or the closed-batch log could not be opened.
    #[error("{0}")]
    LocalStore(String),
}

/// A crosslink produced by a finalized block that closed a batch, for the beacon submitter.
#[derive(Clone, Debug)]
pub struct OutgoingCrosslink {
    /// The crosslink. While `certificate` is empty (the block was finalized without its own
    /// certificate reaching this node), each later finalized block's header is appended to
    /// `ancestry` until one comes with a certificate, which then certifies the crosslink.
    pub crosslink: Crosslink,
    /// The closed batch (receipts per destination, for delivery to destination shards).
    pub batch: ClosedBatch,
}

/// An incoming batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncomingError {
    /// Not for this shard, or from this shard.
    #[error("batch from shard {src} to shard {dst} is not for this shard")]
    WrongShard {
        /// Source.
        src: u32,
        /// Destination.
        dst: u32,
    },
    /// The beacon has not finalized (or no longer retains) the source crosslink.
    #[error("crosslink {src}@{height} is not finalized on the beacon")]
    NotFinal {
        /// Source.
        src: u32,
        /// Crosslink height.
        height: u64,
    },
    /// The proof or the receipts do not match the finalized root.
    #[error("batch does not prove against the finalized root: {0}")]
    Proof(String),
    /// The pool is full.
    #[error("incoming pool is full")]
    Full,
}

impl OutgoingCrosslink {
    /// Whether the crosslink carries a certificate of its own block.
    pub fn is_certified(&self) -> bool {
        !self.crosslink.certificate.is_empty()
    }
}

/// What became of an included transaction (kept for a bounded number of recent transactions).
#[derive(Clone, Debug, PartialEq)]
pub struct TxRecord {
    /// Height of the finalized block that included it.
    pub height: u64,
    /// That block's hash.
    pub block: Hash,
    /// Outcome (status, fee, receipts, …).
    pub outcome: TxOutcome,
}

/// Summary of a finalized block (kept for recent heights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalizedInfo {
    /// Block hash.
    pub hash: Hash,
    /// State root after it.
    pub state_root: Hash,
    /// Number of transactions.
    pub txs: usize,
    /// Block time.
    pub timestamp_ms: u64,
    /// The beacon height it is stamped with (it executed under that height's configuration).
    pub beacon_height: u64,
}

/// The commitment to the genesis write set used as the genesis block's `state_root`.
pub fn genesis_commitment(writes: &WriteSet) -> Hash {
    let mut b = Vec::new();
    b.extend_from_slice(b"vision-node/shard-genesis/v1\0");
    for (k, v) in writes {
        b.extend_from_slice(&(k.len() as u64).to_be_bytes());
        b.extend_from_slice(k);
        match v {
            Some(v) => {
                b.push(1);
                b.extend_from_slice(&(v.len() as u64).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.push(0),
        }
    }
    Hash::sha256(&b)
}

/// Speculative execution of a not-yet-finalized block.
struct Spec {
    header: BlockHeader,
    writes: WriteSet,
    exec: BlockExecution,
}

/// The parent's state is not available yet, or can never be (stale fork).
enum Resolve {
    /// Not executed and not derivable from cached blocks.
    Missing,
    /// At or below the committed height but not the committed block.
    Stale,
}

struct Inner<E: commonware_storage::Context + Spawner> {
    store: QmdbStore<E>,
    committed_height: u64,
    /// Hash of the committed tip (`None` after a restart until the next finalization).
    committed_hash: Option<Hash>,
    spec: HashMap<Hash, Spec>,
    /// Unfinalized blocks seen as parents (to execute ancestors this node never verified).
    blocks: HashMap<Hash, ShardChainBlock>,
}

impl<E: commonware_storage::Context + Spawner> Inner<E> {
    fn is_committed(&self, height: u64, hash: &Hash, state_root: &Hash) -> bool {
        height == self.committed_height
            && match self.committed_hash {
                Some(h) => h == *hash,
                None => *state_root == self.store.root(),
            }
    }

    /// Whether a block at `height` is taken as a child of the committed tip without knowing
    /// the tip's hash: after a restart the store holds the committed state but not the hash of
    /// the block that produced it (until the next finalization), so a block at the committed
    /// height + 1 is executed on the committed state; its state root (checked against its
    /// header) is what ties it to that state.
    fn child_of_committed(&self, height: u64) -> bool {
        self.committed_hash.is_none() && height == self.committed_height + 1
    }

    /// Hashes of the speculative blocks from just above the committed tip up to `block`
    /// inclusive (oldest first); empty if `block` is the committed tip.
    fn chain_to(&self, block: &BlockHeader, hash: Hash) -> Result<Vec<Hash>, Resolve> {
        let mut chain = Vec::new();
        let (mut height, mut hash, mut root) = (block.height, hash, block.state_root);
        loop {
            if self.is_committed(height, &hash, &root) {
                chain.reverse();
                return Ok(chain);
            }
            if height <= self.committed_height {
                return Err(Resolve::Stale);
            }
            let Some(s) = self.spec.get(&hash) else {
                return Err(Resolve::Missing);
            };
            chain.push(hash);
            if self.child_of_committed(height) {
                // Executed on the committed state (see `child_of_committed`).
                chain.reverse();
                return Ok(chain);
            }
            let parent = s.header.parent;
            root = self
                .spec
                .get(&parent)
                .map_or(Hash::ZERO, |p| p.header.state_root);
            hash = parent;
            height -= 1;
        }
    }
}

struct Shared {
    mempool: Mutex<Mempool>,
    outbox: Mutex<VecDeque<OutgoingCrosslink>>,
    dropped_crosslinks: Mutex<u64>,
    outcomes: Mutex<(HashMap<Hash, TxRecord>, VecDeque<Hash>)>,
    recent: Mutex<BTreeMap<u64, FinalizedInfo>>,
    /// Closed batches with receipts by height (to serve destination shards).
    closed: Mutex<BTreeMap<u64, ClosedBatch>>,
    /// Verified incoming batches by (source, first seq).
    incoming: Mutex<BTreeMap<(ShardId, u64), IncomingBatch>>,
    /// Committed next inbox seq per source (refreshed on every finalization).
    inbox: Mutex<BTreeMap<ShardId, u64>>,
    /// Recent finalized blocks with certificates (to serve followers).
    served: Mutex<ServedBlocks<ShardChainBlock>>,
    /// The chain's archive, for followers asking below `served` (set when the engine starts).
    archive: Mutex<Option<ChainArchive<ShardChainBlock>>>,
    /// Equivocation evidence the engine reported, for the relay to send to the beacon.
    faults: Mutex<VecDeque<Vec<u8>>>,
    /// The committed height (readable without the state lock).
    finalized_height: Mutex<u64>,
    /// Told about every finalized block.
    listener: Mutex<Option<FinalizedListener>>,
}

/// The shard application (see the module docs). Cheap to clone; clones share state.
pub struct ShardApp<E: commonware_storage::Context + Spawner> {
    context: Arc<E>,
    cfg: Arc<ShardAppConfig>,
    /// The genesis layout (used before this node has a beacon state).
    layout: Arc<ShardLayout>,
    targets: Arc<PrsmTargets>,
    genesis: ShardChainBlock,
    inner: Arc<futures::lock::Mutex<Inner<E>>>,
    shared: Arc<Shared>,
    beacon: FinalizedCrosslinks,
    /// The durable transaction index, when configured (`tx_index_records`).
    tx_index: Option<Arc<futures::lock::Mutex<txindex::TxIndex<E>>>>,
    /// Closed batches with receipts, on disk (what `closed` is reloaded from at start).
    batch_log: Arc<futures::lock::Mutex<batchlog::BatchLog<E>>>,
}

impl<E: commonware_storage::Context + Spawner> Clone for ShardApp<E> {
    fn clone(&self) -> Self {
        Self {
            beacon: self.beacon.clone(),
            context: self.context.clone(),
            cfg: self.cfg.clone(),
            layout: self.layout.clone(),
            targets: self.targets.clone(),
            genesis: self.genesis.clone(),
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            tx_index: self.tx_index.clone(),
            batch_log: self.batch_log.clone(),
        }
    }
}

const RECENT_HEIGHTS: usize = 4_096;

/// Room a proposer leaves in a block for everything but transactions and incoming batches:
/// the header (≈ 300 bytes) and the length prefixes.
const BLOCK_FRAMING_BYTES: usize = 4 * 1024;

/// The uniform PRSM layout of `num_shards` shards as a [`ShardOf`].
pub fn uniform_layout(num_shards: u64) -> Result<Arc<dyn ShardOf + Send + Sync>, String> {
    let layout = Arc::new(ShardLayout::uniform(num_shards as usize).map_err(|e| e.to_string())?);
    let l2 = layout.clone();
    Ok(Arc::new(FnLayout(
        move |a: &AccountId| layout.shard_of_account(a),
        move |c: &ContractId| l2.shard_of_contract(c),
    )))
}

/// A PRSM [`ShardLayout`] as execution's [`ShardOf`].
pub struct LayoutOf<'a>(pub &'a ShardLayout);

impl ShardOf for LayoutOf<'_> {
    fn shard_of_account(&self, account: &AccountId) -> ShardId {
        self.0.shard_of_account(account)
    }
    fn shard_of_contract(&self, contract: &ContractId) -> ShardId {
        self.0.shard_of_contract(contract)
    }
}

/// The transactions in this node's pool had their signatures verified on admission.
struct PoolVerified<'a>(&'a Mutex<Mempool>);

impl VerifiedSignatures for PoolVerified<'_> {
    fn verified(&self, tx: &SignedTransaction) -> bool {
        self.0.lock().holds(tx)
    }
}

/// The PRSM targeting rule ([`vision_sharding::select_targets`]) over the uniform layout.
pub struct PrsmTargets {
    layout: ShardLayout,
    workload_shards: BTreeMap<String, Vec<ShardId>>,
}

impl PrsmTargets {
    /// The rule for `num_shards` uniform shards and the plan's workload assignment.
    pub fn new(
        num_shards: u64,
        workload_shards: BTreeMap<String, Vec<ShardId>>,
    ) -> Result<Self, String> {
        Ok(Self {
            layout: ShardLayout::uniform(num_shards as usize).map_err(|e| e.to_string())?,
            workload_shards,
        })
    }
}

impl ProposalTargets for PrsmTargets {
    fn proposal_targets(
        &self,
        action: &str,
        data: &str,
        affects_multiple_shards: bool,
    ) -> Vec<ShardId> {
        let proposal = vision_sharding::ProposalTarget {
            action: action.to_string(),
            data: data.to_string(),
            affects_multiple_shards,
            coordination_required: false,
        };
        // The transaction's limits are the targeting rule's; a refusal leaves no target.
        vision_sharding::select_targets(&proposal, &self.workload_shards, &self.layout)
            .unwrap_or_default()
    }
}

impl<E: commonware_storage::Context + Spawner> ShardApp<E> {
    /// Opens the store (partitions named after `cfg.store_prefix`), commits the genesis state
    /// if the store is empty, and derives the genesis block. `beacon` is this node's view of
    /// the beacon chain.
    pub async fn new(
        context: E,
        cfg: ShardAppConfig,
        beacon: FinalizedCrosslinks,
    ) -> Result<Self, ShardAppError> {
        let layout = Arc::new(
            ShardLayout::uniform(cfg.config.num_shards as usize)
                .map_err(|e| ShardAppError::Layout(e.to_string()))?,
        );
        let targets = Arc::new(
            PrsmTargets::new(cfg.config.num_shards, cfg.workload_shards.clone())
                .map_err(ShardAppError::Layout)?,
        );
        let genesis_writes = genesis(
            cfg.shard,
            &LayoutOf(&layout),
            &cfg.genesis_accounts,
            cfg.genesis_timestamp_ms,
        )?;
        let mut store = QmdbStore::open(context.child("store"), &cfg.store_prefix).await?;
        let tx_index = if cfg.tx_index_records > 0 {
            let index = txindex::TxIndex::open(
                context.child("txindex"),
                &cfg.store_prefix,
                cfg.tx_index_records,
            )
            .await
            .map_err(ShardAppError::LocalStore)?;
            Some(Arc::new(futures::lock::Mutex::new(index)))
        } else {
            None
        };
        let (batch_log, closed) =
            batchlog::BatchLog::open(context.child("batches"), &cfg.store_prefix, SERVED_BATCHES)
                .await
                .map_err(ShardAppError::LocalStore)?;
        if store.state().is_empty() {
            store.commit(&genesis_writes).await?;
        }
        let genesis = ShardChainBlock::genesis(
            cfg.shard,
            genesis_commitment(&genesis_writes),
            cfg.genesis_timestamp_ms,
        );
        let committed_height = store.chain_meta().height;
        let committed_hash = (committed_height == 0).then(|| genesis.hash());
        let inbox: BTreeMap<ShardId, u64> = (0..cfg.config.num_shards as u32)
            .map(ShardId)
            .filter(|s| *s != cfg.shard)
            .map(|s| (s, store.inbox_next(s)))
            .collect();
        let inner = Inner {
            store,
            committed_height,
            committed_hash,
            spec: HashMap::new(),
            blocks: HashMap::new(),
        };
        let shared = Shared {
            mempool: Mutex::new(Mempool::new(cfg.mempool)),
            outbox: Mutex::new(VecDeque::new()),
            dropped_crosslinks: Mutex::new(0),
            outcomes: Mutex::new((HashMap::new(), VecDeque::new())),
            recent: Mutex::new(BTreeMap::new()),
            closed: Mutex::new(closed),
            incoming: Mutex::new(BTreeMap::new()),
            inbox: Mutex::new(inbox),
            served: Mutex::new(ServedBlocks::new(cfg.served_blocks, SERVED_BLOCK_BYTES)),
            archive: Mutex::new(None),
            faults: Mutex::new(VecDeque::new()),
            finalized_height: Mutex::new(committed_height),
            listener: Mutex::new(None),
        };
        Ok(Self {
            context: Arc::new(context),
            cfg: Arc::new(cfg),
            layout,
            targets,
            genesis,
            inner: Arc::new(futures::lock::Mutex::new(inner)),
            shared: Arc::new(shared),
            beacon,
            tx_index,
            batch_log: Arc::new(futures::lock::Mutex::new(batch_log)),
        })
    }

    /// What one proposed block may hold: the body budget is the block size bound less a
    /// margin for the header and the framing.
    fn block_limits(&self) -> BlockLimits {
        BlockLimits {
            max_txs: self.cfg.max_block_txs,
            max_body_bytes: self.cfg.max_block_bytes.saturating_sub(BLOCK_FRAMING_BYTES),
        }
    }

    /// The genesis block (height 0) to give the engine.
    pub fn genesis_block(&self) -> ShardChainBlock {
        self.genesis.clone()
    }

    /// The shard.
    pub fn shard(&self) -> ShardId {
        self.cfg.shard
    }

    /// Submits one transaction to the mempool (signature checked).
    pub fn submit(&self, tx: SignedTransaction) -> Result<Hash, MempoolError> {
        self.shared.mempool.lock().insert(tx)
    }

    /// Submits many transactions (one batch signature verification).
    pub fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, MempoolError>> {
        self.shared.mempool.lock().insert_batch(txs)
    }

    /// Submits transactions this process has already verified (no verification again).
    pub fn submit_verified(&self, txs: Vec<Verified>) -> Vec<Result<Hash, MempoolError>> {
        self.shared.mempool.lock().insert_verified(txs)
    }

    /// Number of pending transactions.
    pub fn mempool_len(&self) -> usize {
        self.shared.mempool.lock().len()
    }

    /// This node's view of the beacon chain.
    pub fn beacon(&self) -> &FinalizedCrosslinks {
        &self.beacon
    }

    /// Drains the certified crosslinks at the front of the outbox, in height order (an
    /// uncertified one and everything after it stay until a descendant's certificate arrives).
    pub fn take_crosslinks(&self) -> Vec<OutgoingCrosslink> {
        let mut outbox = self.shared.outbox.lock();
        let ready = outbox
            .iter()
            .position(|c| !c.is_certified())
            .unwrap_or(outbox.len());
        outbox.drain(..ready).collect()
    }

    /// The receipts this shard's finalized crosslink at `height` carries for `dst`, with their
    /// proof (`None` if that batch is not retained here or has nothing for `dst`).
    pub fn incoming_batch(&self, height: u64, dst: ShardId) -> Option<IncomingBatch> {
        self.shared.closed.lock().get(&height)?.incoming_for(dst)
    }

    /// Adds a batch fetched from its source shard, after checking it against the root the
    /// beacon finalized. Adding one already held is a no-op.
    pub fn add_incoming(&self, batch: IncomingBatch) -> Result<(), IncomingError> {
        let (src, dst) = (batch.source, batch.destination.dst);
        if dst != self.cfg.shard || src == self.cfg.shard {
            return Err(IncomingError::WrongShard {
                src: src.0,
                dst: dst.0,
            });
        }
        let key = (src, batch.destination.first_seq);
        if self.shared.incoming.lock().contains_key(&key) {
            return Ok(());
        }
        let root = self
            .beacon
            .receipts_root(src, batch.crosslink_height)
            .ok_or(IncomingError::NotFinal {
                src: src.0,
                height: batch.crosslink_height,
            })?;
        batch
            .verify(&root)
            .map_err(|e| IncomingError::Proof(e.to_string()))?;
        let mut pool = self.shared.incoming.lock();
        if pool.len() >= MAX_INCOMING_BATCHES {
            return Err(IncomingError::Full);
        }
        pool.insert(key, batch);
        Ok(())
    }

    /// If an incoming batch from `src` starting at `first_seq` is held, the seq after it.
    pub fn incoming_end(&self, src: ShardId, first_seq: u64) -> Option<u64> {
        self.shared
            .incoming
            .lock()
            .get(&(src, first_seq))
            .map(|b| b.destination.end_seq())
    }

    /// The next receipt seq the committed state expects from `src` (as of the last
    /// finalized block; never waits on block execution).
    pub fn inbox_next(&self, src: ShardId) -> u64 {
        self.shared.inbox.lock().get(&src).copied().unwrap_or(0)
    }

    /// Crosslinks dropped because the outbox was full.
    pub fn dropped_crosslinks(&self) -> u64 {
        *self.shared.dropped_crosslinks.lock()
    }

    /// The outcome of a recently included transaction (the in-memory window of
    /// `recent_outcomes`; lost by a restart).
    pub fn tx_record(&self, id: &Hash) -> Option<TxRecord> {
        self.shared.outcomes.lock().0.get(id).cloned()
    }

    /// The outcome of an included transaction: the in-memory window first, then the durable
    /// transaction index when this application keeps one (`tx_index_records`).
    pub async fn find_tx(&self, id: &Hash) -> Option<TxRecord> {
        if let Some(rec) = self.tx_record(id) {
            return Some(rec);
        }
        self.tx_index.as_ref()?.lock().await.get(id).await
    }

    /// Recent finalized blocks by height.
    pub fn recent_finalized(&self) -> BTreeMap<u64, FinalizedInfo> {
        self.shared.recent.lock().clone()
    }

    /// The committed height as of the last finalization (never waits on block execution).
    pub fn finalized_height(&self) -> u64 {
        *self.shared.finalized_height.lock()
    }

    /// Finalized blocks from height `from` on, up to the highest retained one with its own
    /// certificate (within `max_blocks` and about `max_bytes`), with that certificate: what a
    /// follower verifies and applies. `None` if nothing is retained from `from`.
    pub fn segment_from(
        &self,
        from: u64,
        max_blocks: usize,
        max_bytes: usize,
    ) -> Option<(Vec<ShardBlock>, Vec<u8>)> {
        let (blocks, cert) = self
            .shared
            .served
            .lock()
            .segment_from(from, max_blocks, max_bytes)?;
        Some((blocks.into_iter().map(|b| b.0).collect(), cert))
    }

    /// A read of the chain's archive for a follower asking from `from`, when the in-memory
    /// window no longer holds it but this node finalized it (`None` otherwise, on a node
    /// without the shard's engine, or while other archive reads are running).
    pub fn archive_read(&self, from: u64) -> Option<ArchiveRead<ShardChainBlock>> {
        let finalized = self.finalized_height();
        ChainArchive::read_for(
            &self.shared.archive.lock(),
            &self.shared.served.lock(),
            from,
            finalized,
        )
    }

    /// Sets the callback told about every finalized block from now on.
    pub fn set_listener(&self, listener: FinalizedListener) {
        *self.shared.listener.lock() = Some(listener);
    }

    /// Whether `id` waits in the mempool.
    pub fn is_pending(&self, id: &Hash) -> bool {
        self.shared.mempool.lock().contains(id)
    }

    /// Up to `max` pending transactions, in proposal order.
    pub fn pending(&self, max: usize) -> Vec<SignedTransaction> {
        self.shared.mempool.lock().candidates(max)
    }

    /// Takes the equivocation evidence the engine reported since the last call (encoded
    /// simplex faults of this shard's committee), for the beacon.
    pub fn take_faults(&self) -> Vec<Vec<u8>> {
        self.shared.faults.lock().drain(..).collect()
    }

    /// Removes and returns the pending transactions of `account` (in nonce order), for an
    /// account that moved to another shard: a follower hands them to the new shard's pool.
    pub fn take_pending_of(&self, account: &AccountId) -> Vec<SignedTransaction> {
        self.shared.mempool.lock().take_signer(account)
    }

    /// The mempool's arrival counter: transactions admitted from now on get this or higher.
    pub fn pending_mark(&self) -> u64 {
        self.shared.mempool.lock().next_seq()
    }

    /// Up to `max` pending transactions admitted between two marks, in arrival order.
    pub fn pending_between(&self, from: u64, to: u64, max: usize) -> Vec<SignedTransaction> {
        self.shared.mempool.lock().admitted_between(from, to, max)
    }

    /// Drops pending transactions admitted before `mark` (see [`Self::pending_mark`]);
    /// returns how many. A follower uses it to forget transactions its shard never included.
    pub fn expire_pending(&self, mark: u64) -> usize {
        self.shared.mempool.lock().expire_before(mark)
    }

    /// The committed height.
    pub async fn committed_height(&self) -> u64 {
        self.inner.lock().await.committed_height
    }

    /// Reads the committed state.
    pub async fn with_state<R>(&self, f: impl FnOnce(&QmdbStore<E>) -> R) -> R {
        f(&self.inner.lock().await.store)
    }

    /// Waits until this node's beacon view reached `height` (a block stamped with it may
    /// include receipts of crosslinks finalized up to there).
    async fn wait_for_beacon(&self, height: u64) {
        while self.beacon.beacon_height() < height {
            self.context.sleep(Duration::from_millis(20)).await;
        }
    }

    /// Incoming batches that continue each source's stream after the state `ov`, in (source,
    /// seq) order, within the per-block bounds.
    fn incoming_candidates(&self, ov: &Overlay<'_>) -> Vec<IncomingBatch> {
        let pool = self.shared.incoming.lock();
        let mut out = Vec::new();
        let mut receipts = 0usize;
        let sources: BTreeSet<ShardId> = pool.keys().map(|(s, _)| *s).collect();
        'sources: for src in sources {
            let mut seq = ov.inbox_next(src);
            while let Some(b) = pool.get(&(src, seq)) {
                if out.len() >= MAX_SHARDS
                    || receipts + b.receipts.len() > MAX_INCOMING_RECEIPTS_PER_BLOCK
                {
                    break 'sources;
                }
                receipts += b.receipts.len();
                seq = b.destination.end_seq();
                out.push(b.clone());
            }
        }
        out
    }

    fn now_ms(&self) -> u64 {
        self.context
            .current()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// Runs `f` on the context of the block at `height` and `timestamp_ms` whose parent is
    /// stamped `parent_beacon_height`, itself stamped with `stamp(this node's beacon view)`,
    /// read under the beacon view's lock: every receipts root it holds is final at the stamped
    /// height, and the configuration and the layout are the ones in force there (propose and
    /// verify must pick the same); the accounts whose shard changed between the two stamps are
    /// the block's migrations. Returns `f`'s result and the stamped beacon height, or why the
    /// stamp is not acceptable (it crosses two layout changes).
    fn with_block_context<R>(
        &self,
        height: u64,
        timestamp_ms: u64,
        parent_beacon_height: u64,
        stamp: impl FnOnce(Option<&BeaconState>) -> u64,
        f: impl FnOnce(&BlockContext<'_>) -> R,
    ) -> Result<(R, u64), String> {
        self.beacon.with_view(|view| {
            let engine = TemplateEngine;
            let empty = BTreeMap::new();
            let beacon_height = stamp(view);
            let (layout, migrations) = match view {
                Some(v) => {
                    let limit = v.stamp_limit(parent_beacon_height, beacon_height);
                    if limit != beacon_height {
                        return Err(format!(
                            "beacon height {beacon_height} crosses two layout changes after the \
                             parent's {parent_beacon_height} (at most {limit})"
                        ));
                    }
                    (
                        v.layout_at(beacon_height).clone(),
                        v.migrations(parent_beacon_height, beacon_height),
                    )
                }
                None => (self.layout.clone(), Vec::new()),
            };
            let ctx = BlockContext {
                shard: self.cfg.shard,
                height,
                timestamp_ms,
                beacon_height,
                chain_id: self.cfg.chain_id.clone(),
                config: view.map_or(&self.cfg.config, |v| v.config_at(beacon_height)),
                layout: &LayoutOf(&layout),
                migrations: &migrations,
                final_roots: view.map_or(&empty, |v| v.receipts_roots()),
                engine: &engine,
                proposal_targets: self.targets.as_ref(),
                verified: &PoolVerified(&self.shared.mempool),
            };
            Ok((f(&ctx), beacon_height))
        })
    }

    /// The beacon height the parent of the next block after `chain` (speculative ancestors
    /// of that parent, see [`Inner::chain_to`]) is stamped with.
    fn parent_beacon_height(inner: &Inner<E>, chain: &[Hash]) -> u64 {
        chain.last().map_or_else(
            || inner.store.chain_meta().beacon_height,
            |h| inner.spec[h].header.beacon_height,
        )
    }

    /// Executes `block` on its parent's state (`chain` = speculative ancestors) and computes
    /// its state root.
    async fn execute(
        &self,
        inner: &Inner<E>,
        chain: &[Hash],
        block: &ShardBlock,
    ) -> Result<(BlockExecution, Hash), String> {
        self.wait_for_beacon(block.header.beacon_height).await;
        let exec = {
            let mut ov = Overlay::new(&inner.store);
            for h in chain {
                ov.extend(inner.spec[h].writes.clone());
            }
            self.with_block_context(
                block.header.height,
                block.header.timestamp_ms,
                Self::parent_beacon_height(inner, chain),
                |_| block.header.beacon_height,
                |ctx| execute_block(&ov, ctx, &block.txs, &block.incoming),
            )?
            .0
            .map_err(|e| e.to_string())?
        };
        let root = spec_root(inner, chain, &exec.writes)
            .await
            .map_err(|e| e.to_string())?;
        Ok((exec, root))
    }

    /// Makes sure `block`'s state is known: executes it (and any cached unexecuted ancestors).
    async fn ensure_executed(
        &self,
        inner: &mut Inner<E>,
        block: &ShardChainBlock,
    ) -> Result<Vec<Hash>, Resolve> {
        // Collect unexecuted ancestors from the cache, newest first.
        let mut todo: Vec<ShardChainBlock> = Vec::new();
        let mut cur = block.clone();
        loop {
            match inner.chain_to(cur.header(), cur.hash()) {
                Ok(_) => break,
                Err(Resolve::Stale) => return Err(Resolve::Stale),
                Err(Resolve::Missing) => {
                    let parent = cur.parent();
                    todo.push(cur);
                    if inner.spec.contains_key(&parent)
                        || inner.committed_hash == Some(parent)
                        || inner.child_of_committed(todo.last().expect("pushed").height())
                    {
                        break;
                    }
                    match inner.blocks.get(&parent) {
                        Some(p) => cur = p.clone(),
                        None => return Err(Resolve::Missing),
                    }
                }
            }
        }
        while let Some(b) = todo.pop() {
            let chain = inner.chain_to_parent(&b)?;
            if !self.execute_and_remember(inner, &chain, &b).await {
                return Err(Resolve::Stale);
            }
        }
        inner.chain_to(block.header(), block.hash())
    }

    /// Executes `block` on its parent's state (`chain` = speculative ancestors, see
    /// [`Inner::chain_to`]) and, when the state, receipts and batch roots match its header,
    /// remembers the state after it. Returns whether it matched.
    async fn execute_and_remember(
        &self,
        inner: &mut Inner<E>,
        chain: &[Hash],
        block: &ShardChainBlock,
    ) -> bool {
        let h = block.header();
        let Ok((exec, root)) = self.execute(inner, chain, &block.0).await else {
            return false;
        };
        if root != h.state_root
            || exec.receipts_root() != h.receipts_root
            || exec.batch_txs_root() != h.batch_txs_root
            || exec.prsm_root() != h.prsm_root
        {
            return false;
        }
        inner.spec.insert(
            block.hash(),
            Spec {
                header: h.clone(),
                writes: exec.writes.clone(),
                exec,
            },
        );
        true
    }

    fn static_header_checks(&self, parent: &ShardChainBlock, block: &ShardChainBlock) -> bool {
        let h = block.header();
        h.chain == ChainRef::Shard(self.cfg.shard)
            && h.height == parent.height() + 1
            && h.beacon_height >= parent.header().beacon_height
            && h.parent == parent.hash()
            && h.timestamp_ms > parent.timestamp_ms()
            && block.0.body_matches()
            && block.0.txs.len() <= self.cfg.max_block_txs
    }
}

impl<E: commonware_storage::Context + Spawner> Inner<E> {
    fn chain_to_parent(&self, block: &ShardChainBlock) -> Result<Vec<Hash>, Resolve> {
        let parent = block.parent();
        let height = block.height() - 1;
        if let Some(s) = self.spec.get(&parent) {
            return self.chain_to(&s.header.clone(), parent);
        }
        if height == self.committed_height && self.committed_hash.is_none_or(|h| h == parent) {
            return Ok(Vec::new());
        }
        if height <= self.committed_height {
            Err(Resolve::Stale)
        } else {
            Err(Resolve::Missing)
        }
    }
}

async fn spec_root<E: commonware_storage::Context + Spawner>(
    inner: &Inner<E>,
    chain: &[Hash],
    writes: &WriteSet,
) -> Result<Hash, StoreError> {
    let mut sets: Vec<&WriteSet> = chain.iter().map(|h| &inner.spec[h].writes).collect();
    sets.push(writes);
    let roots = inner.store.speculative_roots(&sets).await?;
    Ok(*roots.last().expect("one root per write set"))
}

/// Rejections that no later state can cure (the candidate is evicted from the mempool).
fn permanently_invalid(r: &TxRejection) -> bool {
    matches!(
        r,
        TxRejection::BadSignature
            | TxRejection::KeyMismatch
            | TxRejection::WrongChain { .. }
            | TxRejection::WrongShard { .. }
            | TxRejection::BadAccountName(_)
            | TxRejection::InvalidAction(_)
    )
}

impl<E: commonware_storage::Context + Spawner> ChainApp for ShardApp<E> {
    type Block = ShardChainBlock;

    fn has_pending_work(&self) -> bool {
        !self.shared.mempool.lock().is_empty() || !self.shared.incoming.lock().is_empty()
    }

    fn attach_archive(&self, archive: ChainArchive<ShardChainBlock>) {
        *self.shared.archive.lock() = Some(archive);
    }

    fn report_fault(&self, evidence: Vec<u8>) {
        let mut faults = self.shared.faults.lock();
        if faults.contains(&evidence) {
            return;
        }
        if faults.len() == MAX_REPORTED_FAULTS {
            faults.pop_front();
        }
        tracing::warn!(
            shard = self.cfg.shard.0,
            "equivocation evidence reported by consensus"
        );
        faults.push_back(evidence);
    }

    async fn propose(
        &mut self,
        parent: &ShardChainBlock,
        ctx: ProposeCtx,
    ) -> Option<ShardChainBlock> {
        // Never wait for the beacon while holding the state lock (the relay needs it).
        self.wait_for_beacon(parent.header().beacon_height).await;
        let candidates = self
            .shared
            .mempool
            .lock()
            .candidates(self.cfg.max_block_txs);
        let mut guard = self.inner.lock().await;
        let inner = &mut *guard;
        inner.blocks.insert(parent.hash(), parent.clone());
        let chain = self.ensure_executed(inner, parent).await.ok()?;
        let height = parent.height() + 1;
        let timestamp_ms = ctx.now_ms.max(parent.timestamp_ms() + 1);
        let (built, beacon_height) = {
            let mut ov = Overlay::new(&inner.store);
            for h in &chain {
                ov.extend(inner.spec[h].writes.clone());
            }
            let incoming = self.incoming_candidates(&ov);
            // Stamped with this node's beacon height (never below the parent's).
            let parent_beacon_height = parent.header().beacon_height;
            let context = self.with_block_context(
                height,
                timestamp_ms,
                parent_beacon_height,
                |view| {
                    view.map_or(parent_beacon_height, |v| {
                        v.stamp_limit(parent_beacon_height, v.height().max(parent_beacon_height))
                    })
                },
                |ctx| build_block(&ov, ctx, candidates, incoming, self.block_limits()),
            );
            let (result, beacon_height) = match context {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(shard = self.cfg.shard.0, height, "block context: {e}");
                    return None;
                }
            };
            match result.map(|b| (b, beacon_height)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(shard = self.cfg.shard.0, height, "build_block failed: {e}");
                    return None;
                }
            }
        };
        let moving_here = |t: &SignedTransaction| {
            self.beacon.with_view(|v| {
                v.is_some_and(|v| {
                    v.latest_layout().shard_of_account(&t.tx.signer) == self.cfg.shard
                })
            })
        };
        let evict: Vec<Hash> = built
            .dropped_txs
            .iter()
            .filter(|(t, r)| {
                // A signer a finalized rebalance moves here is not this shard's until the
                // move takes effect: its transactions wait.
                (permanently_invalid(r)
                    && !(matches!(r, TxRejection::WrongShard { .. }) && moving_here(t)))
                    || (chain.is_empty() && matches!(r, TxRejection::NonceReplayed { .. }))
            })
            .map(|(t, _)| t.id())
            .collect();
        if !evict.is_empty() {
            self.shared.mempool.lock().remove(&evict);
        }
        let exec = built.execution;
        let state_root = match spec_root(inner, &chain, &exec.writes).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(shard = self.cfg.shard.0, height, "speculative root: {e}");
                return None;
            }
        };
        let header = BlockHeader {
            chain: ChainRef::Shard(self.cfg.shard),
            epoch: ctx.epoch,
            height,
            parent: parent.hash(),
            timestamp_ms,
            proposer: ctx.leader,
            body_root: ShardBlock::compute_body_root(&built.txs, &built.incoming),
            state_root,
            receipts_root: exec.receipts_root(),
            batch_txs_root: exec.batch_txs_root(),
            prsm_root: exec.prsm_root(),
            beacon_height,
        };
        let block = ShardChainBlock(ShardBlock {
            header: header.clone(),
            txs: built.txs,
            incoming: built.incoming,
        });
        inner.spec.insert(
            block.hash(),
            Spec {
                header,
                writes: exec.writes.clone(),
                exec,
            },
        );
        Some(block)
    }

    async fn verify(
        &mut self,
        parent: &ShardChainBlock,
        block: &ShardChainBlock,
        ctx: VerifyCtx,
    ) -> bool {
        let h = block.header();
        if !self.static_header_checks(parent, block)
            || h.epoch != ctx.epoch
            || h.proposer != ctx.leader
            || h.timestamp_ms > self.now_ms().saturating_add(self.cfg.max_future_ms)
        {
            return false;
        }
        let hash = block.hash();
        // Never wait for the beacon while holding the state lock (the relay needs it).
        self.wait_for_beacon(h.beacon_height).await;
        loop {
            {
                let mut guard = self.inner.lock().await;
                let inner = &mut *guard;
                if inner.spec.contains_key(&hash) {
                    return true;
                }
                inner.blocks.insert(parent.hash(), parent.clone());
                match self.ensure_executed(inner, parent).await {
                    Ok(chain) => {
                        if !self.execute_and_remember(inner, &chain, block).await {
                            return false;
                        }
                        inner.blocks.insert(hash, block.clone());
                        return true;
                    }
                    Err(Resolve::Stale) => return false,
                    Err(Resolve::Missing) => {}
                }
            }
            // The parent's state is not known yet: wait for finalization to catch up.
            self.context.sleep(Duration::from_millis(50)).await;
        }
    }

    async fn state_after(&self, block: &ShardChainBlock) -> StateAfter {
        let inner = self.inner.lock().await;
        let hash = block.hash();
        let height = block.height();
        if inner.spec.contains_key(&hash)
            || inner.is_committed(height, &hash, &block.header().state_root)
        {
            StateAfter::Known
        } else if height <= inner.committed_height {
            StateAfter::Never
        } else {
            StateAfter::Unknown
        }
    }

    /// Executes a certified `block` this node never executed (or whose execution a restart
    /// lost) on `parent`'s state, remembering the state after it as [`Self::verify`] would.
    async fn adopt(&mut self, parent: &ShardChainBlock, block: &ShardChainBlock) -> bool {
        if !self.static_header_checks(parent, block) {
            return false;
        }
        // Never wait for the beacon while holding the state lock (the relay needs it).
        self.wait_for_beacon(block.header().beacon_height).await;
        let mut guard = self.inner.lock().await;
        let inner = &mut *guard;
        if inner.spec.contains_key(&block.hash()) {
            return true;
        }
        inner.blocks.insert(parent.hash(), parent.clone());
        inner.blocks.insert(block.hash(), block.clone());
        match self.ensure_executed(inner, block).await {
            Ok(_) => true,
            Err(Resolve::Missing) => false,
            Err(Resolve::Stale) => {
                tracing::warn!(
                    shard = self.cfg.shard.0,
                    height = block.height(),
                    "certified shard block does not apply on its parent's state"
                );
                false
            }
        }
    }

    async fn finalized(&mut self, finalized: Finalized<ShardChainBlock>) {
        let Finalized { block, certificate } = finalized;
        let hash = block.hash();
        let height = block.height();
        self.wait_for_beacon(block.header().beacon_height).await;
        let mut guard = self.inner.lock().await;
        let inner = &mut *guard;
        if height <= inner.committed_height {
            return;
        }
        assert_eq!(
            height,
            inner.committed_height + 1,
            "finalized blocks must arrive in height order"
        );
        let spec = match inner.spec.remove(&hash) {
            Some(s) => s,
            None => {
                let (exec, root) = self
                    .execute(inner, &[], &block.0)
                    .await
                    .unwrap_or_else(|e| panic!("finalized block {height} does not execute: {e}"));
                assert_eq!(
                    root,
                    block.header().state_root,
                    "finalized block {height} has a wrong state root"
                );
                Spec {
                    header: block.header().clone(),
                    writes: exec.writes.clone(),
                    exec,
                }
            }
        };
        if let Some(index) = &self.tx_index {
            // Indexed (and synced) before the state commits: never a committed block whose
            // transactions the index lacks.
            let records: Vec<TxRecord> = spec
                .exec
                .outcomes
                .iter()
                .map(|outcome| TxRecord {
                    height,
                    block: hash,
                    outcome: outcome.clone(),
                })
                .collect();
            index.lock().await.append(&records).await;
        }
        if let Some(batch) = &spec.exec.closed_batch
            && batch.receipt_count() > 0
        {
            // On disk before the state commits, like the transaction index.
            self.batch_log.lock().await.append(height, batch).await;
        }
        let root = inner
            .store
            .commit(&spec.writes)
            .await
            .unwrap_or_else(|e| panic!("committing finalized block {height} failed: {e}"));
        assert_eq!(
            root,
            block.header().state_root,
            "safety bug: committed root of block {height} differs from its header"
        );
        inner.committed_height = height;
        inner.committed_hash = Some(hash);
        *self.shared.finalized_height.lock() = height;
        inner.spec.retain(|_, s| s.header.height > height);
        inner.blocks.retain(|_, b| b.height() > height);
        {
            let store = &inner.store;
            let mut inbox = self.shared.inbox.lock();
            for src in 0..self.cfg.config.num_shards as u32 {
                let src = ShardId(src);
                if src != self.cfg.shard {
                    inbox.insert(src, store.inbox_next(src));
                }
            }
            let mut pool = self.shared.incoming.lock();
            pool.retain(|(src, first_seq), _| *first_seq >= inbox.get(src).copied().unwrap_or(0));
        }
        drop(guard);

        let ids: Vec<Hash> = block.0.txs.iter().map(SignedTransaction::id).collect();
        self.shared.mempool.lock().remove(&ids);
        {
            let mut out = self.shared.outcomes.lock();
            for outcome in &spec.exec.outcomes {
                let id = outcome.tx_id;
                let rec = TxRecord {
                    height,
                    block: hash,
                    outcome: outcome.clone(),
                };
                if out.0.insert(id, rec).is_none() {
                    out.1.push_back(id);
                }
                while out.1.len() > self.cfg.recent_outcomes {
                    if let Some(old) = out.1.pop_front() {
                        out.0.remove(&old);
                    }
                }
            }
        }
        {
            let mut recent = self.shared.recent.lock();
            recent.insert(
                height,
                FinalizedInfo {
                    hash,
                    state_root: root,
                    txs: block.0.txs.len(),
                    timestamp_ms: block.timestamp_ms(),
                    beacon_height: block.header().beacon_height,
                },
            );
            while recent.len() > RECENT_HEIGHTS {
                recent.pop_first();
            }
        }
        self.shared
            .served
            .lock()
            .push(block.clone(), certificate.clone());
        let listener = self.shared.listener.lock().clone();
        if let Some(listener) = listener {
            listener(&FinalizedEvent {
                shard: self.cfg.shard,
                height,
                hash,
                state_root: root,
                timestamp_ms: block.timestamp_ms(),
                outcomes: spec.exec.outcomes.clone(),
                signers: block.0.txs.iter().map(|t| t.tx.signer.clone()).collect(),
                applied_origins: block
                    .0
                    .incoming
                    .iter()
                    .flat_map(|b| b.receipts.iter().map(|r| r.origin_tx))
                    .collect(),
                closed_batch_txs: spec
                    .exec
                    .closed_batch
                    .as_ref()
                    .map(|b| b.batched_txs.clone())
                    .unwrap_or_default(),
            });
        }
        let mut outbox = self.shared.outbox.lock();
        // Uncertified crosslinks: this block is one more descendant; its certificate (if any)
        // certifies them through the ancestry chain.
        let mut too_long = 0;
        outbox.retain_mut(|c| {
            if c.is_certified() {
                return true;
            }
            if c.crosslink.ancestry.len() >= MAX_CROSSLINK_ANCESTRY {
                too_long += 1;
                return false;
            }
            c.crosslink.ancestry.push(block.header().clone());
            if let Some(cert) = &certificate {
                c.crosslink.certificate = cert.clone();
            }
            true
        });
        if too_long > 0 {
            tracing::error!(
                shard = self.cfg.shard.0,
                height,
                "dropped {too_long} crosslinks: no certified descendant within {MAX_CROSSLINK_ANCESTRY} blocks"
            );
            *self.shared.dropped_crosslinks.lock() += too_long;
        }
        if let Some(batch) = spec.exec.closed_batch {
            if batch.receipt_count() > 0 {
                let mut closed = self.shared.closed.lock();
                closed.insert(height, batch.clone());
                while closed.len() > SERVED_BATCHES {
                    closed.pop_first();
                }
            }
            let crosslink = Crosslink {
                header: block.header().clone(),
                destinations: batch.destinations.clone(),
                batched_txs: batch.batched_txs.clone(),
                prsm_events: batch.prsm_events.clone(),
                certificate: certificate.unwrap_or_default(),
                ancestry: Vec::new(),
            };
            if outbox.len() >= self.cfg.outbox_capacity {
                outbox.pop_front();
                *self.shared.dropped_crosslinks.lock() += 1;
            }
            outbox.push_back(OutgoingCrosslink { crosslink, batch });
        }
    }
}
