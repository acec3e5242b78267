//! The pending crosslink batch: when it closes, what a closed batch contains, and its status
//! for the API.
//!
//! Every receipt a block emits joins the shard's pending batch. At the end of each block the
//! batch closes if any rule fires — all evaluated on block time, never a wall clock:
//!
//! - [`CloseReason::Full`]: it holds at least `batch_size` receipts;
//! - [`CloseReason::Timeout`]: the block time is at least `batch_timeout_ms` past the block
//!   time of its first receipt;
//! - [`CloseReason::Priority`]: a receipt with priority 255 entered it in this block;
//! - [`CloseReason::Flush`]: a flush transaction for this shard is in this block (a flush
//!   closes the batch even when it is empty: the crosslink is made anyway);
//! - [`CloseReason::Sync`]: `async_crosslinks_enabled` is false and it is not empty;
//! - [`CloseReason::Periodic`]: `height % crosslink_frequency == 0`: a crosslink is due even
//!   without receipts, and it carries whatever is pending.
//!
//! A closed batch is the content of crosslink `crosslink_{shard}_{height}_batch`: one
//! [`DestinationBatch`] per destination (ascending), their Merkle root (the header's
//! `receipts_root`), and the ids of the transactions whose receipts it carries (the header's
//! `batch_txs_root`), and the PRSM events of the batch (the header's `prsm_root`; pending
//! events close a batch by the full, timeout and sync rules too). A block closes at most one batch, so a batch can exceed `batch_size`
//! by the receipts of its last block.

use crate::{
    exec::{BlockContext, Effects},
    keys,
    model::{CallStatus, PendingMeta, enc_json},
    view::{Overlay, StateReadExt, StateView},
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use vision_types::{
    Crosslink, DestinationBatch, Hash, IncomingBatch, Receipt, ReceiptKind, ShardConfig, ShardId,
    crosslink_id, limits, merkle, prsm::PrsmEvent,
};

/// Why a batch closed (several can hold at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// `batch_size` receipts, or half of
    /// [`MAX_BATCH_RECEIPT_BYTES`](vision_types::limits::MAX_BATCH_RECEIPT_BYTES) of them.
    Full,
    /// `batch_timeout_ms` of block time since the first receipt.
    Timeout,
    /// A priority-255 receipt.
    Priority,
    /// A flush transaction.
    Flush,
    /// `async_crosslinks_enabled = false`.
    Sync,
    /// `crosslink_frequency` blocks.
    Periodic,
}

/// A closed batch: the crosslink content of the block that closed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedBatch {
    /// `crosslink_{shard}_{height}_batch`.
    pub id: String,
    /// The source shard.
    pub shard: ShardId,
    /// The closing block's height.
    pub height: u64,
    /// Why it closed.
    pub reasons: Vec<CloseReason>,
    /// Per-destination seq ranges and roots, ascending by destination.
    pub destinations: Vec<DestinationBatch>,
    /// Merkle root over `destinations` (the header's `receipts_root`).
    pub receipts_root: Hash,
    /// Distinct origin transaction ids of the receipts, in emission order.
    pub batched_txs: Vec<Hash>,
    /// Merkle root over `batched_txs` (the header's `batch_txs_root`).
    pub batch_txs_root: Hash,
    /// The PRSM events of the batch, in seq order (see [`PrsmEvent`]).
    pub prsm_events: Vec<PrsmEvent>,
    /// Merkle root over `prsm_events` (the header's `prsm_root`).
    pub prsm_root: Hash,
    /// The receipts per destination, in seq order (for delivery).
    pub receipts: BTreeMap<ShardId, Vec<Receipt>>,
}

impl ClosedBatch {
    /// Number of receipts.
    pub fn receipt_count(&self) -> usize {
        self.receipts.values().map(Vec::len).sum()
    }

    /// The batch for `dst` as the destination will receive it, with the proof of its entry
    /// against [`Self::receipts_root`].
    pub fn incoming_for(&self, dst: ShardId) -> Option<IncomingBatch> {
        let index = self.destinations.iter().position(|d| d.dst == dst)?;
        let leaves: Vec<Hash> = self
            .destinations
            .iter()
            .map(DestinationBatch::leaf_hash)
            .collect();
        Some(IncomingBatch {
            source: self.shard,
            crosslink_height: self.height,
            destination: self.destinations[index].clone(),
            proof: merkle::prove(&leaves, index)?,
            receipts: self.receipts.get(&dst)?.clone(),
        })
    }

    /// Checks the content is self-consistent, as [`Crosslink::check_content`] would.
    pub fn check(&self) -> bool {
        Crosslink::destinations_root(&self.destinations) == self.receipts_root
            && Crosslink::batch_txs_root(&self.batched_txs) == self.batch_txs_root
            && PrsmEvent::root(&self.prsm_events) == self.prsm_root
    }
}

/// The pending batch as the API reports it (`GET /shard/batch/status/:id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStatus {
    /// Receipts waiting in the batch (the seed's `pending_txs`).
    pub pending_txs: u64,
    /// Block-time milliseconds since the first pending receipt (0 when empty).
    pub batch_age_ms: u64,
    /// Whether the next block will close it (full, timed out, or sync mode).
    pub is_ready: bool,
}

/// The pending batch's status at block time `now_ms` (typically the latest block's time).
pub fn batch_status(view: &dyn StateView, config: &ShardConfig, now_ms: u64) -> BatchStatus {
    let meta = view.pending_meta();
    if meta.count == 0 {
        return BatchStatus {
            pending_txs: 0,
            batch_age_ms: 0,
            is_ready: false,
        };
    }
    let age = now_ms.saturating_sub(meta.first_receipt_ms);
    BatchStatus {
        pending_txs: meta.count as u64,
        batch_age_ms: age,
        is_ready: !config.async_crosslinks_enabled
            || meta.count as u64 >= config.batch_size
            || age >= config.batch_timeout_ms,
    }
}

/// The close rules that hold at the end of a block.
pub fn close_reasons(
    meta: &PendingMeta,
    config: &ShardConfig,
    height: u64,
    timestamp_ms: u64,
    priority_entered: bool,
    flush: bool,
) -> Vec<CloseReason> {
    let mut r = Vec::new();
    if meta.count > 0 {
        if meta.count as u64 >= config.batch_size {
            r.push(CloseReason::Full);
        }
        if timestamp_ms.saturating_sub(meta.first_receipt_ms) >= config.batch_timeout_ms {
            r.push(CloseReason::Timeout);
        }
        if priority_entered {
            r.push(CloseReason::Priority);
        }
        if !config.async_crosslinks_enabled {
            r.push(CloseReason::Sync);
        }
    }
    if flush {
        r.push(CloseReason::Flush);
    }
    if config.crosslink_frequency > 0 && height.is_multiple_of(config.crosslink_frequency) {
        r.push(CloseReason::Periodic);
    }
    r
}

/// Closes the pending batch if a rule fires: removes its receipts from the state, marks
/// outgoing cross-shard calls `Executing`, and returns the crosslink content.
pub(crate) fn maybe_close(
    ov: &mut Overlay<'_>,
    ctx: &BlockContext<'_>,
    fx: &Effects,
) -> Option<ClosedBatch> {
    let meta = ov.pending_meta();
    let mut reasons = close_reasons(
        &meta,
        ctx.config,
        ctx.height,
        ctx.timestamp_ms,
        fx.priority_entered,
        fx.flush,
    );
    let mut add = |reason: CloseReason, holds: bool| {
        if holds && !reasons.contains(&reason) {
            reasons.push(reason);
        }
    };
    add(
        CloseReason::Full,
        ov.pending_bytes() as usize >= limits::MAX_BATCH_RECEIPT_BYTES / 2,
    );
    // PRSM events close a batch by the same rules as receipts (they carry no priority).
    let mut prsm = ov.prsm_outbox();
    if !prsm.events.is_empty() {
        add(
            CloseReason::Full,
            prsm.events.len() >= limits::PRSM_EVENTS_CLOSE_AT,
        );
        add(
            CloseReason::Timeout,
            ctx.timestamp_ms.saturating_sub(prsm.first_ms) >= ctx.config.batch_timeout_ms,
        );
        add(CloseReason::Sync, !ctx.config.async_crosslinks_enabled);
    }
    if reasons.is_empty() {
        return None;
    }
    let prsm_events = std::mem::take(&mut prsm.events);
    if !prsm_events.is_empty() {
        ov.put(keys::prsm_outbox(), enc_json(&prsm));
    }
    let pending = ov.pending_receipts();
    debug_assert_eq!(pending.len(), meta.count as usize);
    for i in 0..meta.count {
        ov.delete(keys::pending_receipt(i));
    }
    ov.delete(keys::pending_meta());
    ov.delete(keys::pending_bytes());
    let mut receipts: BTreeMap<ShardId, Vec<Receipt>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut batched_txs = Vec::new();
    for r in pending {
        if seen.insert(r.origin_tx) {
            batched_txs.push(r.origin_tx);
        }
        if let ReceiptKind::ContractCall { call_id, .. } = &r.kind
            && let Some(mut rec) = ov.call_record(call_id)
            && rec.status == CallStatus::Pending
        {
            rec.status = CallStatus::Executing;
            ov.put(keys::call(call_id), enc_json(&rec));
        }
        receipts.entry(r.dst).or_default().push(r);
    }
    let destinations: Vec<DestinationBatch> = receipts
        .iter()
        .map(|(dst, rs)| {
            debug_assert!(rs.windows(2).all(|w| w[1].seq == w[0].seq + 1));
            let leaves: Vec<Hash> = rs.iter().map(Receipt::leaf_hash).collect();
            DestinationBatch {
                dst: *dst,
                first_seq: rs[0].seq,
                count: rs.len() as u32,
                root: merkle::root(&leaves),
            }
        })
        .collect();
    Some(ClosedBatch {
        id: crosslink_id(ctx.shard, ctx.height),
        shard: ctx.shard,
        height: ctx.height,
        reasons,
        receipts_root: Crosslink::destinations_root(&destinations),
        batch_txs_root: Crosslink::batch_txs_root(&batched_txs),
        prsm_root: PrsmEvent::root(&prsm_events),
        prsm_events,
        destinations,
        batched_txs,
        receipts,
    })
}
