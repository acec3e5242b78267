//! Committee planning: which validators serve which shard.
//!
//! [`plan`] derives the number of committees from the node count (about
//! [`OPTIMAL_SHARD_SIZE`] per committee); [`plan_fixed`] takes it from configuration (a
//! devnet runs 4 shards of 4 validators). Both place every node in exactly one committee,
//! keep every committee within its [`SizeBounds`], and are deterministic: the result does
//! not depend on the order of the input nodes.
//!
//! Strategies:
//! - [`Strategy::Hash`]: consistent hashing with virtual nodes (see `ring.rs`): committee
//!   `c` owns [`crate::VIRTUAL_NODES_PER_COMMITTEE`] points at SHA-256(c, v); a node joins the
//!   owner of the first point at or after SHA-256(node id). Bounds are then enforced with the
//!   fewest moves. Going from `k` to `k + 1` committees only moves nodes to the new one
//!   (about `1/(k+1)` of them); adding or removing a node moves no other node unless a bound
//!   forces it.
//! - [`Strategy::Adaptive`]: balanced sizes, snake draft by reputation, then up to
//!   `4 × nodes` improving swaps between the highest- and lowest-mean committees.
//! - [`Strategy::Workload`]: committees labelled with transaction types; see `workload.rs`
//!   for the rule. Proposals are routed to committees of their type
//!   ([`crate::select_target_shards`]).
//! - [`Strategy::Hybrid`]: hash placement, then at most one reputation-balancing swap per
//!   committee, so churn stays low while reputation is evened out.

use crate::{
    adaptive::{balance_swaps, groups_spread, snake_draft},
    node::{NodeError, NodeInfo, Reputation, validate_nodes},
    params::{MAX_PLAN_NODES, MAX_SHARD_SIZE, MAX_SHARDS, MIN_SHARD_SIZE, OPTIMAL_SHARD_SIZE},
    ring::{Ring, hash_assign},
    strategy::Strategy,
    workload,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use vision_types::ShardId;

/// Committee size limits of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeBounds {
    /// Fewest members per committee.
    pub min: usize,
    /// Most members per committee.
    pub max: usize,
}

impl SizeBounds {
    /// The PRSM bounds: [`MIN_SHARD_SIZE`]..=[`MAX_SHARD_SIZE`].
    pub const PRSM: SizeBounds = SizeBounds {
        min: MIN_SHARD_SIZE,
        max: MAX_SHARD_SIZE,
    };
}

/// One shard's committee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committee {
    /// The shard this committee finalizes.
    pub shard: ShardId,
    /// Member node ids, sorted.
    pub members: Vec<String>,
    /// The member with the highest reputation (ties: smallest id).
    pub coordinator: String,
    /// Mean member reputation (rounded down to a whole ppm).
    pub avg_reputation: Reputation,
    /// The transaction type this committee serves (workload strategy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

/// Where validators serve: one committee per shard, shards numbered `0..k`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteePlan {
    /// The strategy that made (and maintains) this plan.
    pub strategy: Strategy,
    /// Committee size limits.
    pub bounds: SizeBounds,
    /// Whether the committee count is fixed by configuration ([`plan_fixed`]); when it is,
    /// [`CommitteePlan::add_node`]/[`CommitteePlan::remove_node`] never split or merge.
    pub fixed_shards: bool,
    /// The committees, in shard order.
    pub committees: Vec<Committee>,
    /// Every planned node, sorted by id.
    pub nodes: Vec<NodeInfo>,
}

/// A node changing committee: `from: None` joins, `to: None` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMove {
    /// The node id.
    pub node: String,
    /// Its shard before, if any.
    pub from: Option<ShardId>,
    /// Its shard after, if any.
    pub to: Option<ShardId>,
}

/// Why a plan cannot be made or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A node is invalid, or ids repeat.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Fewer nodes than the smallest committee.
    #[error("{nodes} nodes: at least {min} are needed to form a committee")]
    TooFewNodes {
        /// Nodes given.
        nodes: usize,
        /// Smallest committee.
        min: usize,
    },
    /// More nodes than MAX_SHARDS committees of MAX_SHARD_SIZE can hold.
    #[error("{nodes} nodes: at most {max} fit ({MAX_SHARDS} shards of {MAX_SHARD_SIZE})")]
    TooManyNodes {
        /// Nodes given.
        nodes: usize,
        /// The most that fit.
        max: usize,
    },
    /// The configured shard count is out of range.
    #[error("{0} shards: the shard count must be between 1 and {MAX_SHARDS}")]
    BadShardCount(usize),
    /// The configured minimum committee size is out of range.
    #[error("minimum committee size {0} must be between {MIN_SHARD_SIZE} and {MAX_SHARD_SIZE}")]
    BadMinCommitteeSize(usize),
    /// The nodes cannot be split into this many committees within the bounds.
    #[error(
        "{nodes} nodes do not fit {shards} shards of {min}..={max} validators (need {need_min}..={need_max} nodes)",
        need_min = shards * min,
        need_max = shards * max
    )]
    DoesNotFit {
        /// Nodes given.
        nodes: usize,
        /// Shards wanted.
        shards: usize,
        /// Smallest committee.
        min: usize,
        /// Largest committee.
        max: usize,
    },
    /// No node with this id is in the plan.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// Every committee is full and no committee can be split.
    #[error(
        "every committee is full and the plan cannot split (fixed shard count or {MAX_SHARDS} shards)"
    )]
    Full,
    /// A committee would fall below its minimum and nothing can refill or absorb it.
    #[error(
        "shard {0} would fall below the minimum committee size and cannot be refilled or merged"
    )]
    CannotShrink(ShardId),
    /// A plan breaks one of its invariants.
    #[error("invalid plan: {0}")]
    Invalid(String),
}

/// How many committees `n` nodes form under [`plan`]: `n / OPTIMAL_SHARD_SIZE` rounded half
/// up, at least 1, raised so no committee exceeds [`MAX_SHARD_SIZE`], lowered so none is
/// below [`MIN_SHARD_SIZE`]. 20 nodes → 2 committees.
pub fn committee_count(n: usize) -> Result<usize, PlanError> {
    if n < MIN_SHARD_SIZE {
        return Err(PlanError::TooFewNodes {
            nodes: n,
            min: MIN_SHARD_SIZE,
        });
    }
    if n > MAX_PLAN_NODES {
        return Err(PlanError::TooManyNodes {
            nodes: n,
            max: MAX_PLAN_NODES,
        });
    }
    let k = (n + OPTIMAL_SHARD_SIZE / 2) / OPTIMAL_SHARD_SIZE;
    let k = k
        .max(1)
        .max(n.div_ceil(MAX_SHARD_SIZE))
        .min(n / MIN_SHARD_SIZE)
        .min(MAX_SHARDS);
    Ok(k)
}

/// Plans committees for `nodes` with the committee count from [`committee_count`] and the
/// PRSM bounds ([`MIN_SHARD_SIZE`]..=[`MAX_SHARD_SIZE`]).
pub fn plan(nodes: &[NodeInfo], strategy: Strategy) -> Result<CommitteePlan, PlanError> {
    validate_nodes(nodes)?;
    let k = committee_count(nodes.len())?;
    Ok(make(nodes, k, SizeBounds::PRSM, false, strategy))
}

/// Plans exactly `num_shards` committees of `min_committee_size..=MAX_SHARD_SIZE` members
/// (the chain's variant: the shard count comes from configuration; use
/// [`crate::BFT_MIN_COMMITTEE_SIZE`] to tolerate one fault per committee).
pub fn plan_fixed(
    nodes: &[NodeInfo],
    num_shards: usize,
    min_committee_size: usize,
    strategy: Strategy,
) -> Result<CommitteePlan, PlanError> {
    if num_shards == 0 || num_shards > MAX_SHARDS {
        return Err(PlanError::BadShardCount(num_shards));
    }
    if !(MIN_SHARD_SIZE..=MAX_SHARD_SIZE).contains(&min_committee_size) {
        return Err(PlanError::BadMinCommitteeSize(min_committee_size));
    }
    validate_nodes(nodes)?;
    let bounds = SizeBounds {
        min: min_committee_size,
        max: MAX_SHARD_SIZE,
    };
    let n = nodes.len();
    if n < num_shards * bounds.min || n > num_shards * bounds.max {
        return Err(PlanError::DoesNotFit {
            nodes: n,
            shards: num_shards,
            min: bounds.min,
            max: bounds.max,
        });
    }
    Ok(make(nodes, num_shards, bounds, true, strategy))
}

/// `n` split into `k` sizes differing by at most one (larger first).
pub(crate) fn balanced_sizes(n: usize, k: usize) -> Vec<usize> {
    (0..k).map(|c| n / k + usize::from(c < n % k)).collect()
}

/// Index groups and workload labels for id-sorted nodes. Requires `k*min <= n <= k*max`.
pub(crate) fn assign(
    sorted: &[NodeInfo],
    k: usize,
    bounds: SizeBounds,
    strategy: Strategy,
) -> (Vec<Vec<usize>>, Option<Vec<String>>) {
    let n = sorted.len();
    match strategy {
        Strategy::Hash => (hash_assign(sorted, k, bounds).0, None),
        Strategy::Adaptive => {
            let mut groups = snake_draft(sorted, &balanced_sizes(n, k));
            balance_swaps(sorted, &mut groups, 4 * n);
            (groups, None)
        }
        Strategy::Hybrid => {
            let mut groups = hash_assign(sorted, k, bounds).0;
            balance_swaps(sorted, &mut groups, k);
            (groups, None)
        }
        Strategy::Workload => {
            let labels = workload::labels(sorted, k);
            let groups = workload::workload_assign(sorted, &balanced_sizes(n, k), &labels);
            (groups, Some(labels))
        }
    }
}

fn sorted_nodes(nodes: &[NodeInfo]) -> Vec<NodeInfo> {
    let mut sorted = nodes.to_vec();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted
}

fn make(
    nodes: &[NodeInfo],
    k: usize,
    bounds: SizeBounds,
    fixed_shards: bool,
    strategy: Strategy,
) -> CommitteePlan {
    let sorted = sorted_nodes(nodes);
    let (groups, labels) = assign(&sorted, k, bounds, strategy);
    build(strategy, bounds, fixed_shards, sorted, &groups, labels)
}

/// The coordinator of a group: highest reputation, ties by smallest id.
fn coordinator(nodes: &[NodeInfo], group: &[usize]) -> String {
    group
        .iter()
        .map(|&i| &nodes[i])
        .max_by(|a, b| a.reputation.cmp(&b.reputation).then(b.id.cmp(&a.id)))
        .map(|n| n.id.clone())
        .unwrap_or_default()
}

fn build(
    strategy: Strategy,
    bounds: SizeBounds,
    fixed_shards: bool,
    sorted: Vec<NodeInfo>,
    groups: &[Vec<usize>],
    labels: Option<Vec<String>>,
) -> CommitteePlan {
    let committees = groups
        .iter()
        .enumerate()
        .map(|(c, g)| {
            let mut g = g.clone();
            g.sort_unstable();
            Committee {
                shard: ShardId(c as u32),
                members: g.iter().map(|&i| sorted[i].id.clone()).collect(),
                coordinator: coordinator(&sorted, &g),
                avg_reputation: Reputation::mean(g.iter().map(|&i| sorted[i].reputation)),
                workload: labels.as_ref().map(|l| l[c].clone()),
            }
        })
        .collect();
    let plan = CommitteePlan {
        strategy,
        bounds,
        fixed_shards,
        committees,
        nodes: sorted,
    };
    debug_assert_eq!(plan.validate(), Ok(()));
    plan
}

impl CommitteePlan {
    /// Number of committees (= shards).
    pub fn len(&self) -> usize {
        self.committees.len()
    }

    /// Whether the plan has no committee (never true for a valid plan).
    pub fn is_empty(&self) -> bool {
        self.committees.is_empty()
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&NodeInfo> {
        self.nodes
            .binary_search_by(|n| n.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The shard whose committee this node serves.
    pub fn shard_of_node(&self, id: &str) -> Option<ShardId> {
        self.committees
            .iter()
            .find(|c| c.members.binary_search_by(|m| m.as_str().cmp(id)).is_ok())
            .map(|c| c.shard)
    }

    /// Node id → shard, for every node.
    pub fn assignment(&self) -> BTreeMap<String, ShardId> {
        self.committees
            .iter()
            .flat_map(|c| c.members.iter().map(move |m| (m.clone(), c.shard)))
            .collect()
    }

    /// Highest minus lowest committee mean reputation.
    pub fn reputation_spread(&self) -> Reputation {
        let means = self.committees.iter().map(|c| c.avg_reputation.ppm());
        let max = means.clone().max().unwrap_or(0);
        let min = means.min().unwrap_or(0);
        Reputation::from_ppm(max - min).unwrap_or(Reputation::ZERO)
    }

    /// Checks every invariant: shards numbered `0..k` with `1 <= k <= MAX_SHARDS`, every
    /// node in exactly one committee, members sorted, sizes within bounds, coordinators and
    /// means correct, nodes valid and sorted.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::Invalid(m));
        validate_nodes(&self.nodes)?;
        if !self.nodes.windows(2).all(|w| w[0].id < w[1].id) {
            return bad("nodes not sorted by id".into());
        }
        if self.committees.is_empty() || self.committees.len() > MAX_SHARDS {
            return bad(format!("{} committees", self.committees.len()));
        }
        let mut seen = BTreeSet::new();
        for (c, com) in self.committees.iter().enumerate() {
            if com.shard != ShardId(c as u32) {
                return bad(format!("committee {c} has shard {}", com.shard));
            }
            let len = com.members.len();
            if len < self.bounds.min || len > self.bounds.max {
                return bad(format!("shard {c} has {len} members"));
            }
            if !com.members.windows(2).all(|w| w[0] < w[1]) {
                return bad(format!("shard {c} members not sorted"));
            }
            let mut group = Vec::with_capacity(len);
            for m in &com.members {
                let Ok(i) = self.nodes.binary_search_by(|n| n.id.cmp(m)) else {
                    return bad(format!("member {m:?} is not a planned node"));
                };
                if !seen.insert(i) {
                    return bad(format!("node {m:?} is in two committees"));
                }
                group.push(i);
            }
            if com.coordinator != coordinator(&self.nodes, &group) {
                return bad(format!("shard {c} has the wrong coordinator"));
            }
            let mean = Reputation::mean(group.iter().map(|&i| self.nodes[i].reputation));
            if com.avg_reputation != mean {
                return bad(format!("shard {c} has the wrong mean reputation"));
            }
        }
        if seen.len() != self.nodes.len() {
            return bad("some nodes are in no committee".into());
        }
        Ok(())
    }

    fn groups(&self) -> Vec<Vec<usize>> {
        self.committees
            .iter()
            .map(|c| {
                c.members
                    .iter()
                    .filter_map(|m| self.nodes.binary_search_by(|n| n.id.cmp(m)).ok())
                    .collect()
            })
            .collect()
    }

    fn labels(&self) -> Option<Vec<String>> {
        (self.strategy == Strategy::Workload).then(|| {
            self.committees
                .iter()
                .map(|c| c.workload.clone().unwrap_or_default())
                .collect()
        })
    }

    /// Adds a node with the fewest moves: it joins a committee with room, chosen by the
    /// plan's strategy (hash/hybrid: the next committee with room clockwise on the ring;
    /// adaptive: the one that leaves the smallest reputation spread; workload: a committee
    /// of one of its capabilities with the fewest members, else the one with the fewest
    /// members). When every committee is full, the committee the node would join is split
    /// in two (its members and the node are snake-drafted by reputation into it and a new
    /// shard `k`) unless the plan has a fixed shard count or [`MAX_SHARDS`] shards.
    /// Returns the new plan and the moves, the new node's first.
    pub fn add_node(&self, node: NodeInfo) -> Result<(CommitteePlan, Vec<NodeMove>), PlanError> {
        node.validate()?;
        if self.node(&node.id).is_some() {
            return Err(NodeError::DuplicateId(node.id).into());
        }
        if self.nodes.len() + 1 > MAX_PLAN_NODES {
            return Err(PlanError::TooManyNodes {
                nodes: self.nodes.len() + 1,
                max: MAX_PLAN_NODES,
            });
        }
        let new_id = node.id.clone();
        let mut nodes = self.nodes.clone();
        let at = nodes.partition_point(|n| n.id < node.id);
        nodes.insert(at, node);
        // Re-index groups for the insertion.
        let mut groups: Vec<Vec<usize>> = self
            .groups()
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|i| if i >= at { i + 1 } else { i })
                    .collect()
            })
            .collect();
        let mut labels = self.labels();
        let k = groups.len();
        let max = self.bounds.max;
        let room: Vec<usize> = (0..k).filter(|&c| groups[c].len() < max).collect();
        let pos = Ring::position(&new_id);
        let prefer = |groups: &Vec<Vec<usize>>, candidates: &[usize]| -> Option<usize> {
            match self.strategy {
                Strategy::Hash | Strategy::Hybrid => {
                    let ring = Ring::new(k);
                    ring.walk(pos).find(|c| candidates.contains(c))
                }
                Strategy::Adaptive => candidates.iter().copied().min_by_key(|&c| {
                    let mut g = groups.clone();
                    g[c].push(at);
                    (groups_spread(&nodes, &g), c)
                }),
                Strategy::Workload => {
                    let labels = labels.clone().unwrap_or_default();
                    let of_cap = nodes[at].capabilities.iter().find_map(|cap| {
                        candidates
                            .iter()
                            .copied()
                            .filter(|&c| labels.get(c) == Some(cap))
                            .min_by_key(|&c| (groups[c].len(), c))
                    });
                    of_cap.or_else(|| {
                        candidates
                            .iter()
                            .copied()
                            .min_by_key(|&c| (groups[c].len(), c))
                    })
                }
            }
        };
        let mut moves = Vec::new();
        if let Some(c) = prefer(&groups, &room) {
            groups[c].push(at);
            moves.push(NodeMove {
                node: new_id,
                from: None,
                to: Some(ShardId(c as u32)),
            });
        } else {
            if self.fixed_shards || k >= MAX_SHARDS {
                return Err(PlanError::Full);
            }
            let all: Vec<usize> = (0..k).collect();
            let c = prefer(&groups, &all).unwrap_or(0);
            let mut members = std::mem::take(&mut groups[c]);
            members.push(at);
            let sub: Vec<NodeInfo> = members.iter().map(|&i| nodes[i].clone()).collect();
            let halves = snake_draft(&sub, &balanced_sizes(sub.len(), 2));
            groups[c] = halves[0].iter().map(|&j| members[j]).collect();
            groups.push(halves[1].iter().map(|&j| members[j]).collect());
            if let Some(l) = labels.as_mut() {
                let label = l[c].clone();
                l.push(label);
            }
            let to_of = |i: usize| {
                if groups[c].contains(&i) {
                    ShardId(c as u32)
                } else {
                    ShardId(k as u32)
                }
            };
            moves.push(NodeMove {
                node: new_id,
                from: None,
                to: Some(to_of(at)),
            });
            for &i in &groups[k] {
                if i != at {
                    moves.push(NodeMove {
                        node: nodes[i].id.clone(),
                        from: Some(ShardId(c as u32)),
                        to: Some(ShardId(k as u32)),
                    });
                }
            }
        }
        let plan = build(
            self.strategy,
            self.bounds,
            self.fixed_shards,
            nodes,
            &groups,
            labels,
        );
        Ok((plan, moves))
    }

    /// Removes a node with the fewest moves. When its committee falls below the minimum, one
    /// node is pulled from a committee above the minimum (hash/hybrid: the nearest on the
    /// ring; adaptive/workload: the one that leaves the smallest reputation spread, workload
    /// preferring nodes of the committee's type). When no committee can give one, the
    /// committee is dissolved into the others (unless the shard count is fixed) and the last
    /// shard takes its number. Returns the new plan and the moves, the removed node's first.
    pub fn remove_node(&self, id: &str) -> Result<(CommitteePlan, Vec<NodeMove>), PlanError> {
        let Ok(at) = self.nodes.binary_search_by(|n| n.id.as_str().cmp(id)) else {
            return Err(PlanError::UnknownNode(id.to_string()));
        };
        let n = self.nodes.len() - 1;
        if n < self.bounds.min {
            return Err(PlanError::TooFewNodes {
                nodes: n,
                min: self.bounds.min,
            });
        }
        let mut nodes = self.nodes.clone();
        let removed = nodes.remove(at);
        let mut groups: Vec<Vec<usize>> = self.groups();
        let c = groups
            .iter()
            .position(|g| g.contains(&at))
            .ok_or_else(|| PlanError::Invalid(format!("node {id:?} is in no committee")))?;
        groups[c].retain(|&i| i != at);
        for g in &mut groups {
            for i in g.iter_mut() {
                if *i > at {
                    *i -= 1;
                }
            }
        }
        let mut labels = self.labels();
        let k = groups.len();
        let (min, max) = (self.bounds.min, self.bounds.max);
        let sid = |c: usize| ShardId(c as u32);
        let mut moves = vec![NodeMove {
            node: removed.id.clone(),
            from: Some(sid(c)),
            to: None,
        }];
        if groups[c].len() < min {
            let donors: Vec<(usize, usize)> = (0..k)
                .filter(|&d| d != c && groups[d].len() > min)
                .flat_map(|d| groups[d].iter().map(move |&i| (d, i)))
                .collect();
            if !donors.is_empty() {
                let (d, i) = match self.strategy {
                    Strategy::Hash | Strategy::Hybrid => {
                        let ring = Ring::new(k);
                        donors
                            .iter()
                            .copied()
                            .min_by_key(|&(_, i)| {
                                (ring.distance_to(c, Ring::position(&nodes[i].id)), i)
                            })
                            .expect("non-empty")
                    }
                    Strategy::Adaptive | Strategy::Workload => {
                        let label = labels.as_ref().map(|l| l[c].clone());
                        donors
                            .iter()
                            .copied()
                            .min_by_key(|&(d, i)| {
                                let mismatch = label
                                    .as_ref()
                                    .is_some_and(|l| !nodes[i].capabilities.contains(l));
                                let mut g = groups.clone();
                                g[d].retain(|&x| x != i);
                                g[c].push(i);
                                (mismatch, groups_spread(&nodes, &g), i)
                            })
                            .expect("non-empty")
                    }
                };
                groups[d].retain(|&x| x != i);
                groups[c].push(i);
                moves.push(NodeMove {
                    node: nodes[i].id.clone(),
                    from: Some(sid(d)),
                    to: Some(sid(c)),
                });
            } else {
                let room: usize = (0..k)
                    .filter(|&d| d != c)
                    .map(|d| max - groups[d].len())
                    .sum();
                if self.fixed_shards || k == 1 || room < groups[c].len() {
                    return Err(PlanError::CannotShrink(sid(c)));
                }
                let orphans = std::mem::take(&mut groups[c]);
                let ring = Ring::new(k);
                for i in orphans {
                    let to = match self.strategy {
                        Strategy::Hash | Strategy::Hybrid => ring
                            .walk(Ring::position(&nodes[i].id))
                            .find(|&d| d != c && groups[d].len() < max),
                        _ => (0..k)
                            .filter(|&d| d != c && groups[d].len() < max)
                            .min_by_key(|&d| (groups[d].len(), d)),
                    }
                    .expect("room checked above");
                    groups[to].push(i);
                    moves.push(NodeMove {
                        node: nodes[i].id.clone(),
                        from: Some(sid(c)),
                        to: Some(sid(to)),
                    });
                }
                // The last shard takes the dissolved shard's number.
                let last = groups.pop().unwrap_or_default();
                if let Some(l) = labels.as_mut() {
                    let last_label = l.pop().unwrap_or_default();
                    if c < k - 1 {
                        l[c] = last_label;
                    }
                }
                if c < k - 1 {
                    for m in &mut moves {
                        if m.to == Some(sid(k - 1)) {
                            m.to = Some(sid(c));
                        }
                    }
                    for &i in &last {
                        if !moves.iter().any(|m| m.node == nodes[i].id) {
                            moves.push(NodeMove {
                                node: nodes[i].id.clone(),
                                from: Some(sid(k - 1)),
                                to: Some(sid(c)),
                            });
                        }
                    }
                    groups[c] = last;
                }
            }
        }
        let plan = build(
            self.strategy,
            self.bounds,
            self.fixed_shards,
            nodes,
            &groups,
            labels,
        );
        Ok((plan, moves))
    }
}
