//! A plan summarised for dashboards, the CLI and the HTTP API.

use crate::{node::Reputation, plan::CommitteePlan, strategy::Strategy};
use serde::{Deserialize, Serialize};
use vision_types::ShardId;

/// One shard's committee in [`ShardingMetrics`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMetrics {
    /// The shard.
    pub id: ShardId,
    /// Member node ids, sorted.
    pub members: Vec<String>,
    /// Number of members.
    pub nodes: usize,
    /// The coordinator (highest reputation).
    pub coordinator: String,
    /// Mean member reputation.
    pub avg_reputation: Reputation,
    /// The workload type served (workload strategy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

/// Sharding metrics of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardingMetrics {
    /// The planning strategy.
    pub strategy: Strategy,
    /// Number of committees (shards).
    pub active_shards: usize,
    /// Number of planned nodes.
    pub total_nodes: usize,
    /// Per-shard details, in shard order.
    pub shards: Vec<ShardMetrics>,
    /// Highest minus lowest committee mean reputation.
    pub reputation_spread: Reputation,
}

impl ShardingMetrics {
    /// The metrics of a plan.
    pub fn from_plan(plan: &CommitteePlan) -> Self {
        ShardingMetrics {
            strategy: plan.strategy,
            active_shards: plan.committees.len(),
            total_nodes: plan.nodes.len(),
            shards: plan
                .committees
                .iter()
                .map(|c| ShardMetrics {
                    id: c.shard,
                    members: c.members.clone(),
                    nodes: c.members.len(),
                    coordinator: c.coordinator.clone(),
                    avg_reputation: c.avg_reputation,
                    workload: c.workload.clone(),
                })
                .collect(),
            reputation_spread: plan.reputation_spread(),
        }
    }
}
