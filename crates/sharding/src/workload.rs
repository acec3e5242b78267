//! The workload strategy: committees specialised by transaction type.
//!
//! Rule:
//! 1. A node's *primary type* is its first capability, or `general` when it has none.
//! 2. The `k` committees are labelled with types by the D'Hondt method over the count of
//!    nodes per primary type (each next committee goes to the type with the highest
//!    `count / (seats + 1)`; ties: more nodes, then smaller name), so types get committees
//!    in proportion to their nodes.
//! 3. Committee sizes are balanced (`n / k`, the first `n % k` committees one more).
//! 4. Nodes, highest reputation first (ties by id), join a committee labelled with one of
//!    their capabilities (tried in the order listed) that has room, picking the one with the
//!    fewest members, then the lowest reputation sum, then the smallest index.
//! 5. Nodes that found no such committee fill the remaining room, picking the committee with
//!    the most room, then the lowest reputation sum, then the smallest index.

use crate::{
    adaptive::{ranked, sum_ppm},
    node::NodeInfo,
    params::GENERAL_WORKLOAD,
};
use std::collections::BTreeMap;

/// The primary workload type of a node.
pub(crate) fn primary_type(node: &NodeInfo) -> &str {
    node.capabilities
        .first()
        .map_or(GENERAL_WORKLOAD, String::as_str)
}

/// Labels for `k` committees by D'Hondt over primary-type counts.
pub(crate) fn labels(nodes: &[NodeInfo], k: usize) -> Vec<String> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for n in nodes {
        *counts.entry(primary_type(n)).or_default() += 1;
    }
    let mut seats: BTreeMap<&str, u64> = counts.keys().map(|&t| (t, 0)).collect();
    let mut out = Vec::with_capacity(k);
    for _ in 0..k {
        // Highest count/(seats+1), compared by cross-multiplication; ties: more nodes, then
        // smaller name (BTreeMap order, first wins).
        let mut best: Option<&str> = None;
        for (&t, &c) in &counts {
            let better = match best {
                None => true,
                Some(b) => {
                    let (bc, bs) = (counts[b], seats[b]);
                    let lhs = u128::from(c) * u128::from(bs + 1);
                    let rhs = u128::from(bc) * u128::from(seats[t] + 1);
                    lhs > rhs || (lhs == rhs && c > bc)
                }
            };
            if better {
                best = Some(t);
            }
        }
        let t = best.unwrap_or(GENERAL_WORKLOAD);
        *seats.entry(t).or_default() += 1;
        out.push(t.to_string());
    }
    out
}

/// Assigns id-sorted nodes to committees of exactly `sizes` with the given labels.
pub(crate) fn workload_assign(
    nodes: &[NodeInfo],
    sizes: &[usize],
    labels: &[String],
) -> Vec<Vec<usize>> {
    let k = sizes.len();
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut leftover = Vec::new();
    for i in ranked(nodes) {
        let node = &nodes[i];
        let caps: Vec<&str> = if node.capabilities.is_empty() {
            vec![GENERAL_WORKLOAD]
        } else {
            node.capabilities.iter().map(String::as_str).collect()
        };
        let choice = caps.iter().find_map(|&cap| {
            (0..k)
                .filter(|&c| labels[c] == cap && groups[c].len() < sizes[c])
                .min_by_key(|&c| (groups[c].len(), sum_ppm(nodes, &groups[c]), c))
        });
        match choice {
            Some(c) => groups[c].push(i),
            None => leftover.push(i),
        }
    }
    for i in leftover {
        let c = (0..k)
            .filter(|&c| groups[c].len() < sizes[c])
            .min_by_key(|&c| {
                (
                    std::cmp::Reverse(sizes[c] - groups[c].len()),
                    sum_ppm(nodes, &groups[c]),
                    c,
                )
            })
            .expect("sizes sum to the node count");
        groups[c].push(i);
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}
