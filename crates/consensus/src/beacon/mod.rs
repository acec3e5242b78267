//! The beacon chain application: verifies shard crosslinks and finalizes them in beacon blocks.
//!
//! - [`BeaconBlock`]: header (`chain = Beacon`), crosslinks and configuration changes;
//!   `body_root` commits to both, `state_root` to the [`BeaconState`] after the block.
//! - [`ConfigChange`]: a new [`vision_types::ShardConfig`] signed by the configuration
//!   authority, numbered; it applies on every shard from a stated beacon height (the
//!   including block's height + [`CONFIG_ACTIVATION_DELAY`]).
//! - [`BeaconState`]: pure state machine. A crosslink is accepted
//!   ([`BeaconState::check_crosslink`]) only if its content matches its header, its shard is
//!   known, its height is strictly above the shard's last accepted height, its header epoch is
//!   the shard committee's epoch, and its certificate is a simplex finalization of the header
//!   hash by ≥ 2/3 of that committee under the shard's namespace
//!   (`vision/{network}/shard/{s}/{layout_version}`).
//! - [`ReputationRecord`]: per committee member, counters of finalization certificates
//!   signed and missed and of blocks proposed, credited from accepted crosslinks and beacon
//!   headers, part of the state root; the score is derived from them (see [`reputation`]).
//! - [`CrosslinkPool`]: verified submissions, deduplicated and ordered by (shard, height).
//! - [`BeaconApp`]: the [`crate::ChainApp`]; propose takes pending crosslinks valid on the
//!   parent's (speculative) state, verify re-checks every crosslink and the roots, finalized
//!   applies to the committed state, prunes the pool and publishes to
//!   [`FinalizedCrosslinks`] (a shared table of finalized receipts roots that shard apps read
//!   as their `FinalRoots`, plus a bounded log of the finalized crosslinks).
//!
//! - [`FaultEvidence`]: a shard committee member's two conflicting signed votes in one view
//!   (reported by its shard's engine, relayed, verified against the committee and included in
//!   a beacon block); recorded in the member's [`ReputationRecord`] (its score becomes 0).
//!
//! Not yet: committee/epoch changes carried in beacon blocks (the committees are fixed at
//! construction, so an equivocating member is scored, not removed).

mod app;
mod block;
mod config;
mod evidence;
mod pool;
pub mod reputation;
mod state;

pub use app::{BeaconApp, FinalizedCrosslink, FinalizedCrosslinks, PUBLISHED_LOG};
pub use block::{BEACON_BODY_NAMESPACE, BeaconBlock, max_crosslink_size};
pub use config::{
    AccountMoveOrder, CONFIG_ACTIVATION_DELAY, CONFIG_CHANGE_NAMESPACE, CONFIG_HISTORY,
    ConfigChange, ConfigRejection, MAX_CONFIG_CHANGES_PER_BEACON_BLOCK, MAX_MOVES_PER_CHANGE,
    ScheduledConfig, max_config_change_size,
};
pub use evidence::{FaultEvidence, MAX_EVIDENCE_PER_BEACON_BLOCK};
pub use pool::{CrosslinkPool, DEFAULT_POOL_CAPACITY, PoolRejection};
pub use reputation::{DEFAULT_REPUTATION_PRIOR_PPM, ReputationRecord};
pub use state::{
    ApplyError, BEACON_STATE_NAMESPACE, BeaconState, CrosslinkRejection, DEFAULT_ROOT_RETENTION,
    EvidenceRejection, ShardCommittee, layout_moves,
};

#[cfg(test)]
mod tests;
