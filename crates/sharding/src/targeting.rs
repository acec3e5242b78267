//! Which shards a proposal targets, and the vote thresholds.

use crate::{
    layout::ShardLayout,
    params::{GENERAL_WORKLOAD, MAX_PROPOSAL_ACTION_BYTES, MAX_PROPOSAL_DATA_BYTES},
    plan::CommitteePlan,
    strategy::Strategy,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vision_types::{Hash, ShardId};

/// A proposal as the targeting rule sees it (the seed's proposal dict).
///
/// JSON: `{"action": "validate_transaction", "data": "…", "affects_multiple_shards": false,
/// "coordination_required": false}` (all but `action` may be omitted).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProposalTarget {
    /// What the proposal does (1..=64 bytes); also names its workload type.
    pub action: String,
    /// The payload (at most 4096 bytes).
    #[serde(default)]
    pub data: String,
    /// Whether every shard must take part.
    #[serde(default)]
    pub affects_multiple_shards: bool,
    /// Whether the result needs cross-shard coordination (the 67% rule over the targeted
    /// shards' results) even when only one shard is targeted.
    #[serde(default)]
    pub coordination_required: bool,
}

/// Why a proposal cannot be targeted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The action is empty or longer than MAX_PROPOSAL_ACTION_BYTES.
    #[error("proposal action must be 1-{MAX_PROPOSAL_ACTION_BYTES} bytes")]
    BadAction,
    /// The payload is longer than MAX_PROPOSAL_DATA_BYTES.
    #[error("proposal data is longer than {MAX_PROPOSAL_DATA_BYTES} bytes")]
    DataTooLong,
}

impl ProposalTarget {
    /// Checks the bounds of `action` and `data`.
    pub fn validate(&self) -> Result<(), TargetError> {
        if self.action.is_empty() || self.action.len() > MAX_PROPOSAL_ACTION_BYTES {
            return Err(TargetError::BadAction);
        }
        if self.data.len() > MAX_PROPOSAL_DATA_BYTES {
            return Err(TargetError::DataTooLong);
        }
        Ok(())
    }

    /// SHA-256 over the length-prefixed parts (action, data): the proposal's position in
    /// the layout's hash space.
    pub fn key_hash(&self) -> Hash {
        Hash::sha256_parts(&[self.action.as_bytes(), self.data.as_bytes()])
    }

    /// Whether the outcome needs cross-shard coordination for these targets:
    /// `coordination_required`, or more than one target.
    pub fn needs_coordination(&self, targets: &[ShardId]) -> bool {
        self.coordination_required || targets.len() > 1
    }
}

/// The workload type of a proposal action, by keyword (first match wins):
/// `transfer`/`transaction`/`payment` → `transfer`; `contract`/`deploy`/`call` →
/// `contract`; `governance`/`vote`/`param` → `governance`; anything else → `general`.
pub fn workload_type(action: &str) -> &'static str {
    let a = action.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| a.contains(w));
    if has(&["transfer", "transaction", "payment"]) {
        "transfer"
    } else if has(&["contract", "deploy", "call"]) {
        "contract"
    } else if has(&["governance", "vote", "param"]) {
        "governance"
    } else {
        GENERAL_WORKLOAD
    }
}

/// The shards a proposal targets, sorted:
/// 1. every shard of the layout when `affects_multiple_shards`;
/// 2. under [`Strategy::Workload`], the shards whose committees serve the action's
///    [`workload_type`], when there are any;
/// 3. otherwise the one shard owning [`ProposalTarget::key_hash`] in the layout.
pub fn select_target_shards(
    proposal: &ProposalTarget,
    plan: &CommitteePlan,
    layout: &ShardLayout,
) -> Result<Vec<ShardId>, TargetError> {
    select_targets(proposal, &workload_shards(plan), layout)
}

/// Which shards serve each workload type under `plan` (empty unless the plan's strategy is
/// [`Strategy::Workload`]): what [`select_targets`] needs of the plan.
pub fn workload_shards(plan: &CommitteePlan) -> BTreeMap<String, Vec<ShardId>> {
    let mut out: BTreeMap<String, Vec<ShardId>> = BTreeMap::new();
    if plan.strategy != Strategy::Workload {
        return out;
    }
    for c in &plan.committees {
        if let Some(w) = &c.workload {
            out.entry(w.clone()).or_default().push(c.shard);
        }
    }
    for shards in out.values_mut() {
        shards.sort_unstable();
    }
    out
}

/// [`select_target_shards`] with the plan reduced to its [`workload_shards`] (what a shard's
/// state machine keeps of the plan).
pub fn select_targets(
    proposal: &ProposalTarget,
    workload_shards: &BTreeMap<String, Vec<ShardId>>,
    layout: &ShardLayout,
) -> Result<Vec<ShardId>, TargetError> {
    proposal.validate()?;
    if proposal.affects_multiple_shards {
        return Ok(layout.shards());
    }
    if let Some(shards) = workload_shards.get(workload_type(&proposal.action))
        && !shards.is_empty()
    {
        return Ok(shards.clone());
    }
    Ok(vec![layout.shard_of_hash(&proposal.key_hash())])
}

pub use vision_types::prsm::cross_shard_approved;

/// Most Byzantine members a committee of `n` tolerates: `f = (n - 1) / 3` (0 for n = 0).
pub fn bft_max_faults(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// Votes needed for a BFT quorum among `n`: `n - f` (`2f + 1` when `n = 3f + 1`).
pub fn bft_quorum(n: usize) -> usize {
    n - bft_max_faults(n)
}
