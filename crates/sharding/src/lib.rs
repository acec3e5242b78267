//! The PRSM layer of Vision Node: how validators are split into shard committees, which
//! shard owns an account, which shards a proposal targets, and when to rebalance, split or
//! merge shards.
//!
//! Everything here is pure and deterministic: the same input gives the same output on every
//! node. There is no I/O, no clock, no randomness except values derived from SHA-256 of a
//! seed, no floating point in any decision (reputation is kept in parts-per-million, see
//! [`Reputation`]) and no hash-map iteration order in any result.

pub mod global;
pub mod layout;
pub mod metrics;
pub mod node;
pub mod params;
pub mod plan;
pub mod rebalance;
pub mod strategy;
pub mod targeting;

mod adaptive;
mod ring;
mod workload;

#[cfg(test)]
mod proptests;

pub use global::{GlobalOutcome, GlobalProposal, GlobalVote, PrsmTable};
pub use layout::{LayoutError, LayoutKey, Override, ShardLayout, ShardRange};
pub use metrics::{ShardMetrics, ShardingMetrics};
pub use node::{
    NodeError, NodeInfo, REPUTATION_PRIOR_WEIGHT, Reputation, generate_nodes, validate_nodes,
};
pub use params::*;
pub use plan::{
    Committee, CommitteePlan, NodeMove, PlanError, SizeBounds, committee_count, plan, plan_fixed,
};
pub use rebalance::{
    AccountLoad, AccountMove, RebalanceError, ReshardSuggestion, apply_moves, plan_rebalance,
    suggest_resharding,
};
pub use strategy::{ParseStrategyError, Strategy};
pub use targeting::{
    ProposalTarget, TargetError, bft_max_faults, bft_quorum, cross_shard_approved,
    select_target_shards, select_targets, workload_shards, workload_type,
};
