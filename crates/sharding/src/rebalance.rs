//! Rebalance planning: moving hot accounts between shards, and split/merge suggestions.

use crate::{
    layout::{LayoutError, LayoutKey, ShardLayout},
    params::{MAX_SHARD_SIZE, MAX_SHARDS},
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use vision_types::ShardId;

/// Most account loads one rebalance call accepts.
pub const MAX_ACCOUNT_LOADS: usize = 100_000;
/// A shard is idle (a merge candidate) below this percent of `capacity_per_shard`.
pub const IDLE_LOAD_PCT: u64 = 25;

/// The load caused by one account or contract (any unit, e.g. transactions per epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLoad {
    /// The account or contract.
    pub key: LayoutKey,
    /// Its load.
    pub load: u64,
}

/// A proposed migration of one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountMove {
    /// The account or contract.
    pub key: LayoutKey,
    /// Its shard now.
    pub from: ShardId,
    /// Its shard after the move.
    pub to: ShardId,
    /// Its load.
    pub load: u64,
}

/// A proposed change of the shard count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum ReshardSuggestion {
    /// Split an overloaded shard.
    Split {
        /// The shard.
        shard: ShardId,
        /// Its load.
        load: u64,
    },
    /// Merge two idle neighbouring shards; `a` survives.
    Merge {
        /// The surviving shard.
        a: ShardId,
        /// The shard merged into `a`.
        b: ShardId,
        /// Their combined load.
        load: u64,
    },
}

/// Why a rebalance cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebalanceError {
    /// The threshold is a percent of the mean, 0..=100.
    #[error("rebalance threshold {0}% must be between 0 and 100")]
    BadThreshold(u32),
    /// A load names a shard the layout does not have.
    #[error("load reported for unknown shard {0}")]
    UnknownShard(ShardId),
    /// A key appears twice in the account loads.
    #[error("duplicate account load for {0:?}")]
    DuplicateKey(LayoutKey),
    /// Too many account loads.
    #[error("more than {MAX_ACCOUNT_LOADS} account loads")]
    TooManyLoads,
    /// Capacity must be positive and committees at least one member.
    #[error("capacity per shard and minimum committee size must be positive")]
    BadCapacity,
    /// Applying a move to the layout failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

fn shard_loads_of(
    layout: &ShardLayout,
    shard_loads: &BTreeMap<ShardId, u64>,
) -> Result<BTreeMap<ShardId, u128>, RebalanceError> {
    let mut loads: BTreeMap<ShardId, u128> = layout.shards().into_iter().map(|s| (s, 0)).collect();
    for (&s, &l) in shard_loads {
        match loads.get_mut(&s) {
            Some(v) => *v = u128::from(l),
            None => return Err(RebalanceError::UnknownShard(s)),
        }
    }
    Ok(loads)
}

/// Plans migrations of hot accounts.
///
/// With `mean = total / shards`, a shard is out of band when its load is above
/// `mean × (1 + threshold)` or below `mean × (1 − threshold)` (`threshold_pct` percent; the
/// seed's 0.3 is 30). While the hottest or the coolest shard is out of band and fewer than
/// `max_moves` moves are planned: move the hottest not-yet-moved key of the hottest shard
/// whose load is below the gap between the hottest and the coolest shard (so the move always
/// narrows it) to the coolest shard. Ties: smaller shard id, then smaller key. Shard loads
/// include the account loads; keys are placed with `layout`.
pub fn plan_rebalance(
    layout: &ShardLayout,
    shard_loads: &BTreeMap<ShardId, u64>,
    account_loads: &[AccountLoad],
    threshold_pct: u32,
    max_moves: usize,
) -> Result<Vec<AccountMove>, RebalanceError> {
    if threshold_pct > 100 {
        return Err(RebalanceError::BadThreshold(threshold_pct));
    }
    if account_loads.len() > MAX_ACCOUNT_LOADS {
        return Err(RebalanceError::TooManyLoads);
    }
    let mut loads = shard_loads_of(layout, shard_loads)?;
    let mut accounts: BTreeMap<&LayoutKey, (ShardId, u64)> = BTreeMap::new();
    for a in account_loads {
        let s = layout.shard_of_key(&a.key);
        if accounts.insert(&a.key, (s, a.load)).is_some() {
            return Err(RebalanceError::DuplicateKey(a.key.clone()));
        }
    }
    let k = loads.len() as u128;
    let total: u128 = loads.values().sum();
    let t = u128::from(threshold_pct);
    let out_of_band = |l: u128| l * k * 100 > total * (100 + t) || l * k * 100 < total * (100 - t);
    let mut moved: BTreeSet<&LayoutKey> = BTreeSet::new();
    let mut moves = Vec::new();
    while moves.len() < max_moves && total > 0 {
        let (&hot, &hl) = loads
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .expect("a layout has a shard");
        let (&cool, &cl) = loads
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
            .expect("a layout has a shard");
        if hot == cool || !(out_of_band(hl) || out_of_band(cl)) {
            break;
        }
        let gap = hl - cl;
        let pick = accounts
            .iter()
            .filter(|(key, (s, l))| {
                *s == hot && *l > 0 && u128::from(*l) < gap && !moved.contains(*key)
            })
            .max_by(|a, b| (a.1).1.cmp(&(b.1).1).then(b.0.cmp(a.0)))
            .map(|(&key, &(_, l))| (key, l));
        let Some((key, l)) = pick else { break };
        *loads.get_mut(&hot).expect("known") -= u128::from(l);
        *loads.get_mut(&cool).expect("known") += u128::from(l);
        accounts.insert(key, (cool, l));
        moved.insert(key);
        moves.push(AccountMove {
            key: key.clone(),
            from: hot,
            to: cool,
            load: l,
        });
    }
    Ok(moves)
}

/// Applies planned moves to a layout (one version per move).
pub fn apply_moves(
    layout: &ShardLayout,
    moves: &[AccountMove],
) -> Result<ShardLayout, LayoutError> {
    moves
        .iter()
        .try_fold(layout.clone(), |l, m| l.move_key(m.key.clone(), m.to))
}

/// Suggests splits and merges.
///
/// - Split each shard whose load exceeds `capacity_per_shard`, hottest first (ties: smaller
///   id), while the shard count stays within [`MAX_SHARDS`] and `total_nodes` can still
///   staff every shard with `min_committee_size` validators.
/// - Merge two neighbouring ranges (in hash order, lowest first) when both are idle (below
///   [`IDLE_LOAD_PCT`]% of capacity) and together within capacity, while at least one
///   shard remains and the remaining shards can hold `total_nodes` at [`MAX_SHARD_SIZE`].
///   The smaller shard id survives.
pub fn suggest_resharding(
    layout: &ShardLayout,
    shard_loads: &BTreeMap<ShardId, u64>,
    capacity_per_shard: u64,
    total_nodes: usize,
    min_committee_size: usize,
) -> Result<Vec<ReshardSuggestion>, RebalanceError> {
    if capacity_per_shard == 0 || min_committee_size == 0 {
        return Err(RebalanceError::BadCapacity);
    }
    let loads = shard_loads_of(layout, shard_loads)?;
    let cap = u128::from(capacity_per_shard);
    let mut count = layout.len();
    let mut out = Vec::new();
    let mut hot: Vec<(ShardId, u128)> = loads
        .iter()
        .filter(|&(_, &l)| l > cap)
        .map(|(&s, &l)| (s, l))
        .collect();
    hot.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (shard, l) in hot {
        if count + 1 > MAX_SHARDS || total_nodes < (count + 1) * min_committee_size {
            break;
        }
        count += 1;
        out.push(ReshardSuggestion::Split {
            shard,
            load: u64::try_from(l).unwrap_or(u64::MAX),
        });
    }
    let idle = |l: u128| l * 100 < cap * u128::from(IDLE_LOAD_PCT);
    let ranges = layout.ranges();
    let mut i = 0;
    while i + 1 < ranges.len() {
        let (a, b) = (ranges[i].shard, ranges[i + 1].shard);
        let (la, lb) = (loads[&a], loads[&b]);
        if idle(la)
            && idle(lb)
            && la + lb <= cap
            && count > 1
            && total_nodes <= (count - 1) * MAX_SHARD_SIZE
        {
            count -= 1;
            out.push(ReshardSuggestion::Merge {
                a: a.min(b),
                b: a.max(b),
                load: u64::try_from(la + lb).unwrap_or(u64::MAX),
            });
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(out)
}
