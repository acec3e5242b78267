//! A durable index of finalized transactions by id: what `GET /tx/{id}` answers from once a
//! transaction's outcome has left the in-memory window of recent outcomes, or after a restart.
//!
//! Records are appended in finalization order to a prunable commonware archive (index = a
//! sequence number per shard, key = the transaction id, value = the JSON of its
//! [`TxRecord`]) and synced before the block's state is committed, so a crash never leaves a
//! committed block whose transactions are missing from the index (a block redelivered after a
//! crash between the two is indexed twice, with identical records). Only the newest `retain`
//! records are kept (about 40 bytes of memory each); older sections are pruned.

use super::TxRecord;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::{
    archive::{Archive as _, Identifier, prunable},
    translator::EightCap,
};
use commonware_utils::{Array, NZU16, NZUsize, sequence::FixedBytes};
use serde::{Deserialize, Serialize};
use vision_state::TxOutcome;
use vision_types::Hash;

/// Records per archive section (the granularity of pruning).
const ITEMS_PER_SECTION: u64 = 16_384;
/// Largest encoded record accepted when reading (a record holds one outcome).
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// A node-local archive of encoded values (see [`local_archive_cfg`]).
pub(crate) type LocalArchive<E, K> = prunable::Archive<EightCap, E, K, Vec<u8>>;

type Store<E> = LocalArchive<E, FixedBytes<32>>;

/// Puts `items` (index, key, value) into `archive`, syncs it, then prunes the sections below
/// index `prune_below` (none when 0). Returns the archive, or the first storage error.
pub(crate) async fn put_sync_prune<E: commonware_storage::Context, K: Array>(
    mut archive: LocalArchive<E, K>,
    items: Vec<(u64, K, Vec<u8>)>,
    prune_below: u64,
) -> Result<LocalArchive<E, K>, String> {
    for (index, key, value) in items {
        archive = archive
            .put(index, key, &value)
            .await
            .map_err(|e| e.to_string())?;
    }
    archive = archive.sync().await.map_err(|e| e.to_string())?;
    if prune_below > 0 {
        archive = archive
            .prune(prune_below)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(archive)
}

/// Configuration of a node-local prunable archive of byte values (not part of any state
/// root) in partitions `{prefix}-{name}-*`.
pub(crate) fn local_archive_cfg(
    prefix: &str,
    name: &str,
    items_per_section: u64,
    max_value_bytes: usize,
) -> prunable::Config<EightCap, (commonware_codec::RangeCfg<usize>, ())> {
    prunable::Config {
        translator: EightCap,
        metadata_partition: format!("{prefix}-{name}-metadata"),
        key_partition: format!("{prefix}-{name}-keys"),
        key_page_cache: CacheRef::new(NZU16!(4096), NZUsize!(16)),
        value_partition: format!("{prefix}-{name}-values"),
        compression: None,
        codec_config: ((..=max_value_bytes).into(), ()),
        items_per_section: std::num::NonZeroU64::new(items_per_section)
            .expect("items per section > 0"),
        key_write_buffer: NZUsize!(64 * 1024),
        value_write_buffer: NZUsize!(256 * 1024),
        replay_buffer: NZUsize!(64 * 1024),
    }
}

/// The stored form of a [`TxRecord`].
#[derive(Serialize, Deserialize)]
struct Stored {
    height: u64,
    block: Hash,
    outcome: TxOutcome,
}

/// The durable transaction index of one shard (see the module docs).
pub(crate) struct TxIndex<E: commonware_storage::Context> {
    /// `None` once a write failed: the archive handle is gone, the index is off until restart.
    archive: Option<Store<E>>,
    /// Sequence number of the next record.
    next: u64,
    /// Records kept.
    retain: u64,
}

impl<E: commonware_storage::Context> TxIndex<E> {
    /// Opens (or creates) the index in partitions named after `prefix`.
    pub(crate) async fn open(context: E, prefix: &str, retain: u64) -> Result<Self, String> {
        let cfg = local_archive_cfg(prefix, "txindex", ITEMS_PER_SECTION, MAX_RECORD_BYTES);
        let archive = Store::init(context, cfg)
            .await
            .map_err(|e| format!("opening the transaction index: {e}"))?;
        let next = archive.last_index().map_or(0, |i| i + 1);
        Ok(Self {
            archive: Some(archive),
            next,
            retain: retain.max(1),
        })
    }

    /// Appends the records of one finalized block and syncs them; prunes what falls out of
    /// the retention window. On a storage error the index logs it and turns itself off.
    pub(crate) async fn append(&mut self, records: &[TxRecord]) {
        if records.is_empty() {
            return;
        }
        let Some(archive) = self.archive.take() else {
            return;
        };
        let items: Result<Vec<_>, _> = (self.next..)
            .zip(records)
            .map(|(index, r)| {
                let value = serde_json::to_vec(&Stored {
                    height: r.height,
                    block: r.block,
                    outcome: r.outcome.clone(),
                })?;
                Ok::<_, serde_json::Error>((index, FixedBytes::new(r.outcome.tx_id.0), value))
            })
            .collect();
        let items = match items {
            Ok(items) => items,
            Err(e) => {
                tracing::error!("transaction record not indexed: {e}");
                self.archive = Some(archive);
                return;
            }
        };
        self.next += items.len() as u64;
        let prune_below = self.next.saturating_sub(self.retain);
        let result = put_sync_prune(archive, items, prune_below).await;
        match result {
            Ok(a) => self.archive = Some(a),
            Err(e) => tracing::error!("transaction index write failed, index off: {e}"),
        }
    }

    /// The record of transaction `id`, if indexed and retained.
    pub(crate) async fn get(&self, id: &Hash) -> Option<TxRecord> {
        let archive = self.archive.as_ref()?;
        let key = FixedBytes::new(id.0);
        let bytes = match archive.get(Identifier::Key(&key)).await {
            Ok(v) => v?,
            Err(e) => {
                tracing::warn!("transaction index read failed: {e}");
                return None;
            }
        };
        let s: Stored = serde_json::from_slice(&bytes)
            .map_err(|e| tracing::warn!("transaction index record unreadable: {e}"))
            .ok()?;
        Some(TxRecord {
            height: s.height,
            block: s.block,
            outcome: s.outcome,
        })
    }
}
