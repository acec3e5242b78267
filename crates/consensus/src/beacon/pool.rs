//! The pool of crosslinks waiting for a beacon block.

use super::state::{BeaconState, CrosslinkRejection};
use rand_core::CryptoRng;
use std::collections::BTreeMap;
use vision_types::{ShardId, block::Crosslink};

/// Default pool capacity (crosslinks).
pub const DEFAULT_POOL_CAPACITY: usize = 4096;

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRejection {
    /// A crosslink for this (shard, height) is already pending.
    #[error("a crosslink for shard {shard} height {height} is already pending")]
    Duplicate {
        /// The shard.
        shard: u32,
        /// The height.
        height: u64,
    },
    /// The pool is full.
    #[error("crosslink pool is full ({0} entries)")]
    Full(usize),
    /// The crosslink is invalid against the committed beacon state.
    #[error("invalid crosslink: {0}")]
    Invalid(#[from] CrosslinkRejection),
}

/// Verified crosslinks waiting to be included, keyed and ordered by (shard, height).
///
/// Admission checks the crosslink fully (content, sequence, certificate) against the committed
/// beacon state followed by the shard's pending crosslinks below it (so a shard's consecutive
/// crosslinks can wait together); proposers re-check against the parent's state.
#[derive(Clone, Debug)]
pub struct CrosslinkPool {
    entries: BTreeMap<(ShardId, u64), Crosslink>,
    capacity: usize,
}

impl Default for CrosslinkPool {
    fn default() -> Self {
        Self::new(DEFAULT_POOL_CAPACITY)
    }
}

impl CrosslinkPool {
    /// An empty pool holding at most `capacity` crosslinks.
    pub fn new(capacity: usize) -> Self {
        CrosslinkPool {
            entries: BTreeMap::new(),
            capacity,
        }
    }

    /// Admits `cl` if it is not a duplicate, there is room and it is valid on `state`.
    pub fn submit(
        &mut self,
        cl: Crosslink,
        state: &BeaconState,
        rng: &mut impl CryptoRng,
    ) -> Result<(), PoolRejection> {
        if let Some(shard) = cl.shard()
            && self.entries.contains_key(&(shard, cl.header.height))
        {
            return Err(PoolRejection::Duplicate {
                shard: shard.0,
                height: cl.header.height,
            });
        }
        match cl.shard() {
            Some(shard) => {
                let mut after = state.clone();
                for ((_, _), pending) in self.entries.range((shard, 0)..(shard, cl.header.height)) {
                    if after.check_sequence(pending).is_ok() {
                        after.record(shard, pending);
                    }
                }
                after.check_crosslink(&cl, rng)?;
            }
            None => state.check_crosslink(&cl, rng)?,
        }
        if self.entries.len() >= self.capacity {
            return Err(PoolRejection::Full(self.capacity));
        }
        let shard = cl.shard().expect("checked: a shard crosslink");
        self.entries.insert((shard, cl.header.height), cl);
        Ok(())
    }

    /// Pending crosslinks in (shard, height) order.
    pub fn pending(&self) -> impl Iterator<Item = &Crosslink> {
        self.entries.values()
    }

    /// Whether a crosslink for (shard, height) is pending.
    pub fn contains(&self, shard: ShardId, height: u64) -> bool {
        self.entries.contains_key(&(shard, height))
    }

    /// Drops every crosslink `state` can no longer accept: at or below its shard's last height
    /// (included in a finalized block, or superseded) unless it carries receipts whose streams
    /// are still waiting for it (see [`BeaconState::check_sequence`]).
    pub fn prune(&mut self, state: &BeaconState) {
        self.entries
            .retain(|(shard, _), cl| state.may_accept(*shard, cl));
    }

    /// Number of pending crosslinks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a proposer has something to include.
    pub fn has_pending_work(&self) -> bool {
        !self.entries.is_empty()
    }
}
