//! Authenticated storage of a shard's state.
//!
//! [`QmdbStore`] keeps the state in commonware-storage's QMDB, variant
//! `qmdb::current::unordered::variable` (an `any` database plus an activity bitmap grafted
//! into its Merkle root, so a proof shows a key's *current* value, not just some value it
//! once had). It is generic over the commonware runtime: on the deterministic runtime it
//! lives in memory (tests and simulation), on the tokio runtime on disk.
//!
//! - The root is QMDB's canonical root (an MMR over the operations log, grafted with the
//!   activity bitmap). It is a function of the sequence of committed write sets: each block's
//!   write set is one batch, written in key order, so replicas committing the same blocks get
//!   the same root.
//! - [`ShardStore::speculative_root`] merkleizes a write set on top of the committed state
//!   without applying it (for proposing and verifying a block's `state_root`);
//!   [`ShardStore::speculative_roots`] does so for a chain of uncommitted blocks (QMDB batch
//!   chaining), giving exactly the roots that committing them one by one gives.
//! - [`ShardStore::commit`] applies and durably commits a write set.
//! - After a crash, [`QmdbStore::open`] comes back to the last committed root; uncommitted
//!   batches are gone.
//! - Execution reads synchronously from an in-memory mirror of the committed state, rebuilt on
//!   open by replaying the retained operations log.

use crate::view::{MemState, StateView, WriteSet};
use commonware_codec::{Decode as _, Encode as _};
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_runtime::{Spawner, buffer::paged::CacheRef};
use commonware_storage::{
    journal::contiguous::variable::Config as VConfig,
    merkle::{Location, full::Config as MerkleConfig, mmr},
    qmdb::{
        any::unordered::{Operation as AnyOperation, Update as UnorderedUpdate},
        any::value::VariableEncoding,
        current::{
            VariableConfig, proof::constant::OperationProof, unordered::variable::Db as CurrentDb,
        },
        floor::Proportional,
    },
    translator::{EightCap, Hashed},
};
use commonware_utils::{NZU16, NZU64, NZUsize};
use std::{future::Future, num::NonZeroU64};
use vision_types::Hash;

/// Bitmap chunk size of the current database, in bytes.
const CHUNK: usize = 32;
/// Longest state key, in bytes.
pub const MAX_STATE_KEY_BYTES: usize = 1 + 41 + vision_types::limits::MAX_KEY_BYTES;
/// Longest state value, in bytes. The largest value execution writes is a pending
/// `DeployContract` receipt (64 initial entries of up to 128 + 1024 bytes, about 75 KiB).
pub const MAX_STATE_VALUE_BYTES: usize = 256 * 1024;
/// Most digests a decoded proof may carry.
const MAX_PROOF_DIGESTS: usize = 256;

type Db<E> =
    CurrentDb<mmr::Family, E, Vec<u8>, Vec<u8>, Sha256, Hashed<EightCap>, CHUNK, Sequential>;
type Op = AnyOperation<mmr::Family, Vec<u8>, VariableEncoding<Vec<u8>>>;
type KvProof = OperationProof<mmr::Family, Digest, CHUNK>;

/// A storage failure (I/O, corruption, or a store poisoned by an earlier failure).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// QMDB failed.
    #[error("qmdb: {0}")]
    Qmdb(String),
    /// An earlier failure consumed the database handle; reopen the store.
    #[error("store is poisoned by an earlier failure; reopen it")]
    Poisoned,
    /// A key or value exceeds its limit.
    #[error("state entry too large")]
    TooLarge,
}

/// A proof that a key has a value in the state with a given root (encoded QMDB
/// key-value proof).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateProof(pub Vec<u8>);

/// Authenticated, committed state of one shard.
pub trait ShardStore: StateView {
    /// The root of the committed state.
    fn root(&self) -> Hash;

    /// The root the state would have after committing `writes` (nothing is changed).
    fn speculative_root(&self, writes: &WriteSet)
    -> impl Future<Output = Result<Hash, StoreError>>;

    /// The roots the state would have after committing each write set of `chain` in order
    /// (for executing notarized blocks before their parents are finalized).
    fn speculative_roots(
        &self,
        chain: &[&WriteSet],
    ) -> impl Future<Output = Result<Vec<Hash>, StoreError>>;

    /// Commits `writes` durably and returns the new root.
    fn commit(&mut self, writes: &WriteSet) -> impl Future<Output = Result<Hash, StoreError>>;

    /// The current value of `key` with a proof against [`Self::root`], or `None` if absent.
    fn prove(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<(Vec<u8>, StateProof)>, StoreError>>;
}

/// Whether `proof` shows that `key` has `value` in the state whose root is `root`.
pub fn verify_state_proof(root: &Hash, key: &[u8], value: &[u8], proof: &StateProof) -> bool {
    let Ok(p) = KvProof::decode_cfg(proof.0.clone(), &MAX_PROOF_DIGESTS) else {
        return false;
    };
    let op: Op = AnyOperation::Update(UnorderedUpdate(key.to_vec(), value.to_vec()));
    p.verify::<Sha256, _>(op, &Digest(root.0))
}

/// The store's configuration for a partition prefix (one store per prefix).
type BytesCfg = (commonware_codec::RangeCfg<usize>, ());
type StoreConfig = VariableConfig<Hashed<EightCap>, (BytesCfg, BytesCfg), Sequential>;

fn config(prefix: &str) -> StoreConfig {
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(256));
    VariableConfig {
        merkle_config: MerkleConfig {
            journal_partition: format!("{prefix}-mmr"),
            metadata_partition: format!("{prefix}-mmr-meta"),
            items_per_blob: NZU64!(4096),
            write_buffer: NZUsize!(1 << 16),
            replay_buffer: NZUsize!(1 << 16),
            strategy: Sequential,
            page_cache: page_cache.clone(),
        },
        journal_config: VConfig {
            partition: format!("{prefix}-log"),
            items_per_section: NZU64!(4096),
            compression: None,
            codec_config: (
                ((0..=MAX_STATE_KEY_BYTES).into(), ()),
                ((0..=MAX_STATE_VALUE_BYTES).into(), ()),
            ),
            page_cache,
            write_buffer: NZUsize!(1 << 16),
            replay_buffer: NZUsize!(1 << 16),
        },
        grafted_metadata_partition: format!("{prefix}-graft-meta"),
        translator: Hashed::new(EightCap),
        init_cache: Some(NZUsize!(1024)),
        init_buffer: NZUsize!(1 << 20),
        init_concurrency: (),
    }
}

fn qerr<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Qmdb(e.to_string())
}

/// The QMDB-backed store (see the module docs).
pub struct QmdbStore<E: commonware_storage::Context + Spawner> {
    db: Option<Db<E>>,
    mirror: MemState,
}

impl<E: commonware_storage::Context + Spawner> QmdbStore<E> {
    /// Opens (or creates) the store in partitions named after `prefix`, recovering the last
    /// committed state.
    pub async fn open(context: E, prefix: &str) -> Result<Self, StoreError> {
        let db = Db::<E>::init(context, config(prefix), None)
            .await
            .map_err(qerr)?;
        let mut mirror = MemState::new();
        let bounds = db.bounds();
        // Operations below the bitmap's pruning boundary are all inactive: skip them.
        let pruned_bits = commonware_utils::bitmap::Readable::<CHUNK>::pruned_chunks(db.bitmap())
            as u64
            * (CHUNK as u64 * 8);
        let mut loc = bounds.start.max(Location::new(pruned_bits));
        while loc < bounds.end {
            let (_, ops, _) = db
                .range_proof(loc, NonZeroU64::new(4096).expect("nonzero"))
                .await
                .map_err(qerr)?;
            if ops.is_empty() {
                break;
            }
            for op in &ops {
                match op {
                    AnyOperation::Update(UnorderedUpdate(k, v)) => {
                        mirror.insert(k.clone(), v.clone())
                    }
                    AnyOperation::Delete(k) => mirror.remove(k),
                    AnyOperation::CommitFloor(..) => {}
                }
            }
            loc += ops.len() as u64;
        }
        Ok(QmdbStore {
            db: Some(db),
            mirror,
        })
    }

    fn db(&self) -> Result<&Db<E>, StoreError> {
        self.db.as_ref().ok_or(StoreError::Poisoned)
    }

    /// Drops history below the inactivity floor (the root, the state and proofs of current
    /// values are unaffected). Call it now and then to bound disk use and recovery time.
    pub async fn prune(&mut self) -> Result<(), StoreError> {
        let db = self.db.take().ok_or(StoreError::Poisoned)?;
        let boundary = db.sync_boundary();
        self.db = Some(db.prune(boundary).await.map_err(qerr)?);
        Ok(())
    }

    /// The retained range of the operations log (for metrics; shrinks from below on prune).
    pub fn retained_ops(&self) -> std::ops::Range<u64> {
        self.db
            .as_ref()
            .map_or(0..0, |db| *db.bounds().start..*db.bounds().end)
    }

    /// The committed state (the mirror).
    pub fn state(&self) -> &MemState {
        &self.mirror
    }

    /// Closes the store without committing anything further.
    pub fn close(self) {}

    fn check_sizes(writes: &WriteSet) -> Result<(), StoreError> {
        for (k, v) in writes {
            if k.len() > MAX_STATE_KEY_BYTES
                || v.as_ref().is_some_and(|v| v.len() > MAX_STATE_VALUE_BYTES)
            {
                return Err(StoreError::TooLarge);
            }
        }
        Ok(())
    }
}

impl<E: commonware_storage::Context + Spawner> StateView for QmdbStore<E> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.mirror.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.mirror.scan_prefix(prefix)
    }
}

impl<E: commonware_storage::Context + Spawner> ShardStore for QmdbStore<E> {
    fn root(&self) -> Hash {
        self.db.as_ref().map_or(Hash::ZERO, |db| Hash(db.root().0))
    }

    async fn speculative_root(&self, writes: &WriteSet) -> Result<Hash, StoreError> {
        Self::check_sizes(writes)?;
        let db = self.db()?;
        let mut batch = db.new_batch();
        for (k, v) in writes {
            batch = batch.write(k.clone(), v.clone());
        }
        let m = batch
            .merkleize(db, None, &mut Proportional)
            .await
            .map_err(qerr)?;
        Ok(Hash(m.root().0))
    }

    async fn speculative_roots(&self, chain: &[&WriteSet]) -> Result<Vec<Hash>, StoreError> {
        let db = self.db()?;
        let mut roots = Vec::with_capacity(chain.len());
        // Every ancestor must stay alive while its descendants are merkleized.
        let mut batches = Vec::with_capacity(chain.len());
        for writes in chain {
            Self::check_sizes(writes)?;
            let mut batch = match batches.last() {
                None => db.new_batch(),
                Some(p) => commonware_storage::qmdb::current::batch::MerkleizedBatch::new_batch::<
                    Sha256,
                >(p),
            };
            for (k, v) in *writes {
                batch = batch.write(k.clone(), v.clone());
            }
            let m = batch
                .merkleize(db, None, &mut Proportional)
                .await
                .map_err(qerr)?;
            roots.push(Hash(m.root().0));
            batches.push(m);
        }
        Ok(roots)
    }

    async fn commit(&mut self, writes: &WriteSet) -> Result<Hash, StoreError> {
        Self::check_sizes(writes)?;
        let db = self.db.take().ok_or(StoreError::Poisoned)?;
        let mut batch = db.new_batch();
        for (k, v) in writes {
            batch = batch.write(k.clone(), v.clone());
        }
        let m = match batch.merkleize(&db, None, &mut Proportional).await {
            Ok(m) => m,
            Err(e) => {
                self.db = Some(db);
                return Err(qerr(e));
            }
        };
        let db = db.apply_batch(m).await.map_err(qerr)?;
        let db = db.commit().await.map_err(qerr)?;
        self.mirror.apply(writes);
        let root = Hash(db.root().0);
        self.db = Some(db);
        Ok(root)
    }

    async fn prove(&self, key: &[u8]) -> Result<Option<(Vec<u8>, StateProof)>, StoreError> {
        let Some(value) = self.mirror.get(key) else {
            return Ok(None);
        };
        let proof = self
            .db()?
            .key_value_proof(key.to_vec())
            .await
            .map_err(qerr)?;
        Ok(Some((value, StateProof(proof.encode().to_vec()))))
    }
}
