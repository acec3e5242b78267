//! SHA-256 consistent hashing with virtual nodes, and the hash strategy's bounded placement.

use crate::{node::NodeInfo, params::VIRTUAL_NODES_PER_COMMITTEE, plan::SizeBounds};
use vision_types::Hash;

/// A ring of virtual points: committee `c` owns `VIRTUAL_NODES_PER_COMMITTEE` points at
/// SHA-256("vision-sharding/ring-point", c, v). The points of committee `c` do not depend
/// on how many committees there are, so adding committee `k` only takes nodes to `k`.
pub(crate) struct Ring {
    /// (position, committee), sorted.
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// The ring of committees `0..k`.
    pub(crate) fn new(k: usize) -> Ring {
        let mut points = Vec::with_capacity(k * VIRTUAL_NODES_PER_COMMITTEE as usize);
        for c in 0..k {
            for v in 0..VIRTUAL_NODES_PER_COMMITTEE {
                let h = Hash::sha256_parts(&[
                    b"vision-sharding/ring-point",
                    &(c as u64).to_be_bytes(),
                    &v.to_be_bytes(),
                ]);
                points.push((h.prefix_u64(), c));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// A node's position on the ring: the u64 prefix of SHA-256("vision-sharding/ring-node", id).
    pub(crate) fn position(id: &str) -> u64 {
        Hash::sha256_parts(&[b"vision-sharding/ring-node", id.as_bytes()]).prefix_u64()
    }

    /// Committees in clockwise order from `pos` (the first point at or after `pos`, wrapping),
    /// one entry per point (committees repeat).
    pub(crate) fn walk(&self, pos: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|&(p, _)| p < pos);
        let n = self.points.len();
        (0..n).map(move |i| self.points[(start + i) % n].1)
    }

    /// The committee owning `pos`.
    pub(crate) fn owner(&self, pos: u64) -> usize {
        self.walk(pos).next().unwrap_or(0)
    }

    /// Clockwise distance from `pos` to the nearest point of committee `c`.
    pub(crate) fn distance_to(&self, c: usize, pos: u64) -> u64 {
        self.points
            .iter()
            .filter(|&&(_, owner)| owner == c)
            .map(|&(p, _)| p.wrapping_sub(pos))
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// Hash placement of id-sorted `nodes` into `k` committees within `bounds`.
///
/// 1. Each node goes to the ring owner of its position.
/// 2. Over-full committees (in id order) evict their members farthest (clockwise) from the
///    committee's points, ties by larger id, until at `max`; each evicted node walks the
///    ring to the next committee with room.
/// 3. Under-full committees (in id order) pull, one at a time, the node nearest (clockwise
///    distance to one of their points, ties by smaller id) from committees above `min`.
///
/// Returns the groups and the number of moves steps 2 and 3 forced (each move is necessary:
/// only excess nodes leave, only missing nodes arrive). Requires `k*min <= n <= k*max`.
pub(crate) fn hash_assign(
    nodes: &[NodeInfo],
    k: usize,
    bounds: SizeBounds,
) -> (Vec<Vec<usize>>, usize) {
    let ring = Ring::new(k);
    let pos: Vec<u64> = nodes.iter().map(|n| Ring::position(&n.id)).collect();
    let mut groups = vec![Vec::new(); k];
    for (i, &p) in pos.iter().enumerate() {
        groups[ring.owner(p)].push(i);
    }
    let mut forced = 0;
    for c in 0..k {
        while groups[c].len() > bounds.max {
            let (at, _) = groups[c]
                .iter()
                .enumerate()
                .max_by_key(|&(_, &i)| (ring.distance_to(c, pos[i]), i))
                .expect("over-full group is non-empty");
            let i = groups[c].remove(at);
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            let to = ring
                .walk(pos[i])
                .find(|&d| d != c && sizes[d] < bounds.max)
                .expect("k*max >= n leaves room somewhere");
            groups[to].push(i);
            forced += 1;
        }
    }
    for c in 0..k {
        while groups[c].len() < bounds.min {
            let (from, at) = (0..k)
                .filter(|&d| d != c && groups[d].len() > bounds.min)
                .flat_map(|d| groups[d].iter().enumerate().map(move |(at, &i)| (d, at, i)))
                .min_by_key(|&(_, _, i)| (ring.distance_to(c, pos[i]), i))
                .map(|(d, at, _)| (d, at))
                .expect("n >= k*min leaves a donor");
            let i = groups[from].remove(at);
            groups[c].push(i);
            forced += 1;
        }
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    (groups, forced)
}
