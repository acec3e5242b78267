//! `HOME/status.json`: what a running node reports about itself, rewritten atomically every
//! second (read by `devnet`, by tests and, later, by the API node's `/status`).

use crate::files::{read_json, write_json};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vision_types::Hash;

/// File name of the status file in a node home.
pub const STATUS_FILE: &str = "status.json";
/// How many recent finalized shard blocks the status file lists.
pub const STATUS_RECENT_BLOCKS: usize = 32;

/// A finalized shard block, as listed in the status file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash,
    /// State root after the block.
    pub state_root: Hash,
    /// Number of transactions.
    pub txs: usize,
}

/// The status file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Validator name.
    pub name: String,
    /// `validator` (the API node comes later).
    pub role: String,
    /// Process id.
    pub pid: u32,
    /// p2p listen address.
    pub p2p_address: String,
    /// The shard this node validates, if any.
    pub shard: Option<u32>,
    /// Whether it is a beacon committee member.
    pub beacon_member: bool,
    /// Highest shard height finalized and committed to local state.
    pub shard_height: u64,
    /// Highest beacon height this node applied (as member or follower).
    pub beacon_height: u64,
    /// Transactions waiting in the shard mempool.
    pub mempool_len: usize,
    /// The most recent finalized shard blocks (ascending, at most [`STATUS_RECENT_BLOCKS`]).
    pub recent: Vec<BlockSummary>,
    /// Process start, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Last refresh, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// `running`, or `stopped` after a clean shutdown.
    pub state: String,
}

/// Path of the status file of `home`.
pub fn status_path(home: &Path) -> PathBuf {
    home.join(STATUS_FILE)
}

/// Writes the status file of `home` atomically.
pub fn write_status(home: &Path, status: &NodeStatus) -> anyhow::Result<()> {
    write_json(&status_path(home), status, 0o644)
}

/// Reads the status file of `home`.
pub fn read_status(home: &Path) -> anyhow::Result<NodeStatus> {
    read_json(&status_path(home), "status file")
}
