//! The closed receipt batches a replica serves to destination shards, kept on disk so that a
//! restarted replica (or a whole shard restarted at once) still serves the batches closed
//! before the restart: without them, receipts crosslinked but not yet fetched by their
//! destination would never arrive.
//!
//! One record per closing block that carries receipts (index = height, value = the JSON of the
//! [`ClosedBatch`]), synced before the block's state is committed. The newest
//! [`SERVED_BATCHES`](super::SERVED_BATCHES) are loaded back into memory at start; records
//! older than [`RETAINED_HEIGHTS`] heights are pruned.

use super::txindex::{LocalArchive, local_archive_cfg, put_sync_prune};
use commonware_storage::archive::{Archive as _, Identifier};
use commonware_utils::sequence::FixedBytes;
use std::collections::BTreeMap;
use vision_state::ClosedBatch;
use vision_types::limits::MAX_BATCH_RECEIPT_BYTES;

/// Heights of closed batches kept on disk (older sections are pruned).
pub const RETAINED_HEIGHTS: u64 = 100_000;
/// Heights per archive section (the granularity of pruning).
const HEIGHTS_PER_SECTION: u64 = 4_096;
/// Largest encoded batch accepted when reading: the receipts' binary bound, with room for
/// their JSON form and the batch's other fields.
const MAX_BATCH_JSON_BYTES: usize = 8 * MAX_BATCH_RECEIPT_BYTES;

type Store<E> = LocalArchive<E, FixedBytes<8>>;

/// The on-disk log of one replica's closed batches (see the module docs).
pub(crate) struct BatchLog<E: commonware_storage::Context> {
    /// `None` once a write failed: the archive handle is gone, the log is off until restart.
    archive: Option<Store<E>>,
}

impl<E: commonware_storage::Context> BatchLog<E> {
    /// Opens (or creates) the log in partitions named after `prefix` and returns it with the
    /// newest `keep` batches it holds, by height.
    pub(crate) async fn open(
        context: E,
        prefix: &str,
        keep: usize,
    ) -> Result<(Self, BTreeMap<u64, ClosedBatch>), String> {
        let cfg = local_archive_cfg(prefix, "batches", HEIGHTS_PER_SECTION, MAX_BATCH_JSON_BYTES);
        let archive = Store::init(context, cfg)
            .await
            .map_err(|e| format!("opening the closed-batch log: {e}"))?;
        let ranges: Vec<(u64, u64)> = archive.ranges().collect();
        let mut loaded = BTreeMap::new();
        'outer: for (start, end) in ranges.into_iter().rev() {
            for height in (start..=end).rev() {
                if loaded.len() >= keep {
                    break 'outer;
                }
                let bytes = archive
                    .get(Identifier::Index(height))
                    .await
                    .map_err(|e| format!("reading the closed-batch log at {height}: {e}"))?;
                if let Some(bytes) = bytes {
                    let batch: ClosedBatch = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("closed batch at {height} unreadable: {e}"))?;
                    loaded.insert(height, batch);
                }
            }
        }
        Ok((
            Self {
                archive: Some(archive),
            },
            loaded,
        ))
    }

    /// Records the batch closed at `height` and syncs it; prunes batches older than
    /// [`RETAINED_HEIGHTS`]. On a storage error the log logs it and turns itself off.
    pub(crate) async fn append(&mut self, height: u64, batch: &ClosedBatch) {
        let Some(archive) = self.archive.take() else {
            return;
        };
        let value = match serde_json::to_vec(batch) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("closed batch at {height} not logged: {e}");
                self.archive = Some(archive);
                return;
            }
        };
        let items = vec![(height, FixedBytes::new(height.to_be_bytes()), value)];
        let prune_below = height.saturating_sub(RETAINED_HEIGHTS);
        let result = put_sync_prune(archive, items, prune_below).await;
        match result {
            Ok(a) => self.archive = Some(a),
            Err(e) => tracing::error!("closed-batch log write failed, log off: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
    use vision_state::CloseReason;
    use vision_types::{Hash, ShardId};

    fn batch(height: u64) -> ClosedBatch {
        ClosedBatch {
            id: format!("crosslink_0_{height}_batch"),
            shard: ShardId(0),
            height,
            reasons: vec![CloseReason::Timeout],
            destinations: Vec::new(),
            receipts_root: Hash::sha256(&height.to_be_bytes()),
            batched_txs: vec![Hash::sha256(b"tx")],
            batch_txs_root: Hash::ZERO,
            prsm_events: Vec::new(),
            prsm_root: Hash::ZERO,
            receipts: BTreeMap::new(),
        }
    }

    /// Batches written before a restart are read back after it: the newest `keep`, intact.
    #[test]
    fn closed_batches_survive_a_restart() {
        deterministic::Runner::default().start(|ctx| async move {
            let (mut log, loaded) = BatchLog::open(ctx.child("first"), "n0-shard0", 2)
                .await
                .unwrap();
            assert!(loaded.is_empty());
            for h in [3, 5, 9] {
                log.append(h, &batch(h)).await;
            }
            drop(log);
            let (_, loaded) = BatchLog::open(ctx.child("second"), "n0-shard0", 2)
                .await
                .unwrap();
            assert_eq!(loaded.keys().copied().collect::<Vec<_>>(), vec![5, 9]);
            assert_eq!(loaded[&9], batch(9));
            let (_, all) = BatchLog::open(ctx.child("third"), "n0-shard0", 10)
                .await
                .unwrap();
            assert_eq!(all.len(), 3);
        });
    }
}
