//! Reputation balancing: snake draft and bounded improving swaps. Integer math only.

use crate::node::NodeInfo;

/// Sum of member reputations in ppm.
pub(crate) fn sum_ppm(nodes: &[NodeInfo], group: &[usize]) -> u64 {
    group
        .iter()
        .map(|&i| u64::from(nodes[i].reputation.ppm()))
        .sum()
}

/// Mean reputation scaled by 10^6 (ppm × 10^6, so decisions see sub-ppm differences).
fn scaled_mean(sum: u64, len: usize) -> u64 {
    if len == 0 {
        return 0;
    }
    sum * 1_000_000 / len as u64
}

/// Spread (max − min) of the scaled means of groups with the given sums and sizes.
fn scaled_spread(stats: &[(u64, usize)]) -> u64 {
    let means = stats.iter().map(|&(s, l)| scaled_mean(s, l));
    let max = means.clone().max().unwrap_or(0);
    let min = means.min().unwrap_or(0);
    max - min
}

/// Node indices by reputation, highest first, ties by smaller index (nodes are id-sorted).
pub(crate) fn ranked(nodes: &[NodeInfo]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(nodes[i].reputation), i));
    order
}

/// Snake draft of reputation-ranked nodes into groups of exactly `sizes`: committees pick
/// in order 0..k, then k-1..0, and so on, skipping full ones.
pub(crate) fn snake_draft(nodes: &[NodeInfo], sizes: &[usize]) -> Vec<Vec<usize>> {
    let k = sizes.len();
    let mut groups = vec![Vec::new(); k];
    let mut it = ranked(nodes).into_iter().peekable();
    let mut forward = true;
    while it.peek().is_some() {
        let order: Vec<usize> = if forward {
            (0..k).collect()
        } else {
            (0..k).rev().collect()
        };
        for c in order {
            if groups[c].len() < sizes[c]
                && let Some(i) = it.next()
            {
                groups[c].push(i);
            }
        }
        forward = !forward;
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}

/// Improves reputation balance by at most `max_swaps` swaps. Each swap exchanges one member
/// of the highest-mean committee with one of the lowest-mean committee (ties by smaller
/// committee index), choosing the pair that minimises the resulting spread (ties by smaller
/// node indices), and is made only when it strictly lowers the spread. Sizes never change.
/// Returns the number of swaps made.
pub(crate) fn balance_swaps(
    nodes: &[NodeInfo],
    groups: &mut [Vec<usize>],
    max_swaps: usize,
) -> usize {
    let rep = |i: usize| u64::from(nodes[i].reputation.ppm());
    let mut made = 0;
    while made < max_swaps {
        let mut stats: Vec<(u64, usize)> = groups
            .iter()
            .map(|g| (sum_ppm(nodes, g), g.len()))
            .collect();
        let current = scaled_spread(&stats);
        if current == 0 {
            break;
        }
        let means: Vec<u64> = stats.iter().map(|&(s, l)| scaled_mean(s, l)).collect();
        let hi = (0..groups.len())
            .max_by_key(|&c| (means[c], std::cmp::Reverse(c)))
            .unwrap_or(0);
        let lo = (0..groups.len())
            .min_by_key(|&c| (means[c], c))
            .unwrap_or(0);
        if hi == lo {
            break;
        }
        let (hs, ls) = (stats[hi].0, stats[lo].0);
        let mut best: Option<(u64, usize, usize)> = None;
        for &a in &groups[hi] {
            for &b in &groups[lo] {
                if rep(a) <= rep(b) {
                    continue;
                }
                stats[hi].0 = hs - rep(a) + rep(b);
                stats[lo].0 = ls - rep(b) + rep(a);
                let s = scaled_spread(&stats);
                if best.is_none_or(|(bs, ba, bb)| (s, a, b) < (bs, ba, bb)) {
                    best = Some((s, a, b));
                }
            }
        }
        stats[hi].0 = hs;
        stats[lo].0 = ls;
        match best {
            Some((s, a, b)) if s < current => {
                groups[hi].retain(|&x| x != a);
                groups[lo].retain(|&x| x != b);
                groups[hi].push(b);
                groups[lo].push(a);
                groups[hi].sort_unstable();
                groups[lo].sort_unstable();
                made += 1;
            }
            _ => break,
        }
    }
    made
}

/// The scaled spread of `groups` (for choosing among alternatives).
pub(crate) fn groups_spread(nodes: &[NodeInfo], groups: &[Vec<usize>]) -> u64 {
    let stats: Vec<(u64, usize)> = groups
        .iter()
        .map(|g| (sum_ppm(nodes, g), g.len()))
        .collect();
    scaled_spread(&stats)
}
