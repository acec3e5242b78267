//! The PRSM constants: committee sizes, shard count, thresholds and timeouts.

/// Fewest members a shard committee may have (the PRSM floor).
pub const MIN_SHARD_SIZE: usize = 3;
/// The committee size the planner aims for.
pub const OPTIMAL_SHARD_SIZE: usize = 10;
/// Most members a shard committee may have.
pub const MAX_SHARD_SIZE: usize = 15;
/// Most shards (and so committees) at once.
pub const MAX_SHARDS: usize = 20;
/// Most nodes a plan can place (`MAX_SHARDS * MAX_SHARD_SIZE`).
pub const MAX_PLAN_NODES: usize = MAX_SHARDS * MAX_SHARD_SIZE;

pub use vision_types::prsm::{CROSS_SHARD_CONSENSUS_THRESHOLD_PCT, GLOBAL_COORDINATION_TIMEOUT_MS};
/// [`CROSS_SHARD_CONSENSUS_THRESHOLD_PCT`] as a fraction, for display only. Never used in a
/// decision.
pub const CROSS_SHARD_CONSENSUS_THRESHOLD: f64 = 0.67;

/// Smallest committee that tolerates one Byzantine fault (`n >= 3f + 1` with `f = 1`).
pub const BFT_MIN_COMMITTEE_SIZE: usize = 4;

/// Default rebalance threshold in percent of the mean shard load (the seed's 0.3).
pub const DEFAULT_REBALANCE_THRESHOLD_PCT: u32 = 30;

/// Most account moves one rebalance plan proposes.
pub const MAX_REBALANCE_MOVES: usize = 64;

/// Longest node id, in bytes.
pub const MAX_NODE_ID_BYTES: usize = 64;
/// Most capabilities one node may declare.
pub const MAX_CAPABILITIES: usize = 8;
/// Longest capability name, in bytes.
pub const MAX_CAPABILITY_BYTES: usize = 32;

/// Most entries in a shard layout's override table (migrated hot accounts).
pub const MAX_LAYOUT_OVERRIDES: usize = 1024;

/// Longest proposal action name, in bytes.
pub const MAX_PROPOSAL_ACTION_BYTES: usize = 64;
/// Longest proposal payload, in bytes.
pub const MAX_PROPOSAL_DATA_BYTES: usize = 4096;

/// Virtual points each committee owns on the consistent-hashing ring.
pub const VIRTUAL_NODES_PER_COMMITTEE: u32 = 64;

/// Parts-per-million in 1.0 (the unit of [`crate::Reputation`]).
pub const PPM: u32 = 1_000_000;

/// The workload types committees specialise in under the workload strategy.
pub const WORKLOAD_TYPES: [&str; 3] = ["transfer", "contract", "governance"];
/// Workload type of nodes that declare no capability and of proposals of no known type.
pub const GENERAL_WORKLOAD: &str = "general";
