//! Property and scenario tests for the crate's promises.

use crate::{
    layout::{LayoutKey, ShardLayout},
    node::{NodeInfo, Reputation, generate_nodes},
    params::*,
    plan::{CommitteePlan, SizeBounds, committee_count, plan, plan_fixed},
    rebalance::{AccountLoad, ReshardSuggestion, apply_moves, plan_rebalance, suggest_resharding},
    ring::hash_assign,
    targeting::{
        ProposalTarget, bft_max_faults, bft_quorum, cross_shard_approved, select_target_shards,
    },
};
use commonware_codec::{DecodeExt, Encode};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use vision_types::{AccountId, Hash, ShardId};

fn check_partition(p: &CommitteePlan, nodes: &[NodeInfo]) {
    p.validate().unwrap();
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let placed: Vec<&str> = p
        .committees
        .iter()
        .flat_map(|c| c.members.iter().map(String::as_str))
        .collect();
    assert_eq!(placed.len(), nodes.len(), "every node exactly once");
    assert_eq!(placed.into_iter().collect::<BTreeSet<_>>(), ids);
    for c in &p.committees {
        assert!((p.bounds.min..=p.bounds.max).contains(&c.members.len()));
    }
    assert!(p.committees.len() <= MAX_SHARDS);
}

fn strategy() -> impl Strategy<Value = crate::Strategy> {
    prop::sample::select(crate::Strategy::ALL.to_vec())
}

fn moved(a: &CommitteePlan, b: &CommitteePlan) -> usize {
    let (a, b) = (a.assignment(), b.assignment());
    a.iter()
        .filter(|(id, s)| b.get(*id).is_some_and(|t| t != *s))
        .count()
}

#[test]
fn twenty_nodes_make_two_committees_of_ten() {
    let nodes = generate_nodes(20, 42);
    for s in crate::Strategy::ALL {
        let p = plan(&nodes, s).unwrap();
        check_partition(&p, &nodes);
        assert_eq!(p.committees.len(), 2, "{s}");
        if s != crate::Strategy::Hash && s != crate::Strategy::Hybrid {
            assert!(p.committees.iter().all(|c| c.members.len() == 10), "{s}");
        }
    }
    let p = plan(&nodes, crate::Strategy::Adaptive).unwrap();
    assert!(
        p.reputation_spread().ppm() <= 1_000,
        "{:?}",
        p.reputation_spread()
    );
    for c in &p.committees {
        let best = c
            .members
            .iter()
            .map(|m| p.node(m).unwrap())
            .max_by_key(|n| n.reputation)
            .unwrap();
        assert_eq!(c.coordinator, best.id);
    }
}

#[test]
fn committee_counts() {
    assert!(committee_count(0).is_err());
    assert!(committee_count(2).is_err());
    assert_eq!(committee_count(3).unwrap(), 1);
    assert_eq!(committee_count(14).unwrap(), 1);
    assert_eq!(committee_count(15).unwrap(), 2);
    assert_eq!(committee_count(20).unwrap(), 2);
    assert_eq!(committee_count(300).unwrap(), 20);
    assert!(committee_count(301).is_err());
    for n in 3..=MAX_PLAN_NODES {
        let k = committee_count(n).unwrap();
        assert!(
            k * MIN_SHARD_SIZE <= n && n <= k * MAX_SHARD_SIZE,
            "{n} -> {k}"
        );
    }
}

#[test]
fn plan_errors() {
    assert!(plan(&generate_nodes(2, 1), crate::Strategy::Hash).is_err());
    assert!(plan(&generate_nodes(301, 1), crate::Strategy::Hash).is_err());
    let mut dup = generate_nodes(5, 1);
    dup[1].id = dup[0].id.clone();
    assert!(plan(&dup, crate::Strategy::Hash).is_err());
    let nodes = generate_nodes(16, 7);
    assert!(plan_fixed(&nodes, 4, BFT_MIN_COMMITTEE_SIZE, crate::Strategy::Hash).is_ok());
    let e = plan_fixed(&nodes, 5, BFT_MIN_COMMITTEE_SIZE, crate::Strategy::Hash).unwrap_err();
    assert!(e.to_string().contains("do not fit"), "{e}");
    assert!(plan_fixed(&nodes, 0, 4, crate::Strategy::Hash).is_err());
    assert!(plan_fixed(&nodes, 21, 4, crate::Strategy::Hash).is_err());
    assert!(plan_fixed(&nodes, 2, 2, crate::Strategy::Hash).is_err());
}

#[test]
fn devnet_four_by_four() {
    let nodes = generate_nodes(16, 42);
    for s in crate::Strategy::ALL {
        let p = plan_fixed(&nodes, 4, BFT_MIN_COMMITTEE_SIZE, s).unwrap();
        check_partition(&p, &nodes);
        assert!(p.committees.iter().all(|c| c.members.len() == 4), "{s}");
    }
}

#[test]
fn hash_movement_when_adding_a_committee() {
    // 200 nodes, k -> k+1 committees: about 1/(k+1) of the nodes move.
    let nodes = generate_nodes(200, 3);
    let mut sorted = nodes.clone();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let loose = SizeBounds { min: 1, max: 200 };
    for k in 2..10usize {
        let (a, _) = hash_assign(&sorted, k, loose);
        let (b, _) = hash_assign(&sorted, k + 1, loose);
        let of = |g: &Vec<Vec<usize>>| {
            let mut v = vec![0; sorted.len()];
            for (c, m) in g.iter().enumerate() {
                for &i in m {
                    v[i] = c;
                }
            }
            v
        };
        let (va, vb) = (of(&a), of(&b));
        let moved: Vec<usize> = (0..sorted.len()).filter(|&i| va[i] != vb[i]).collect();
        assert!(
            moved.iter().all(|&i| vb[i] == k),
            "moves only to the new committee"
        );
        let frac = moved.len() as f64 / sorted.len() as f64;
        let ideal = 1.0 / (k + 1) as f64;
        assert!(
            (frac - ideal).abs() <= 0.12,
            "k={k}: moved {frac:.3}, ideal {ideal:.3}"
        );
    }
}

#[test]
fn hash_movement_numbers_with_bounds() {
    // Under plan_fixed (PRSM bounds, forced moves included), print the numbers.
    let nodes = generate_nodes(120, 42);
    for k in 8..12usize {
        let a = plan_fixed(&nodes, k, MIN_SHARD_SIZE, crate::Strategy::Hash).unwrap();
        let b = plan_fixed(&nodes, k + 1, MIN_SHARD_SIZE, crate::Strategy::Hash).unwrap();
        let m = moved(&a, &b);
        println!(
            "hash 120 nodes k={k}->{}: moved {m} ({:.3}), ideal {:.3}",
            k + 1,
            m as f64 / 120.0,
            1.0 / (k + 1) as f64
        );
        assert!(m as f64 / 120.0 <= 1.0 / (k + 1) as f64 + 0.15);
    }
}

#[test]
fn workload_committees_and_routing() {
    let nodes = generate_nodes(30, 42);
    let p = plan(&nodes, crate::Strategy::Workload).unwrap();
    check_partition(&p, &nodes);
    let labels: Vec<&str> = p
        .committees
        .iter()
        .map(|c| c.workload.as_deref().unwrap())
        .collect();
    assert_eq!(labels.len(), 3);
    assert_eq!(
        labels.iter().copied().collect::<BTreeSet<_>>(),
        ["contract", "governance", "transfer"].into_iter().collect()
    );
    for c in &p.committees {
        let label = c.workload.as_ref().unwrap();
        for m in &c.members {
            assert!(p.node(m).unwrap().capabilities.contains(label));
        }
    }
    let layout = ShardLayout::uniform(3).unwrap();
    let transfer = ProposalTarget {
        action: "validate_transaction".into(),
        ..Default::default()
    };
    let t = select_target_shards(&transfer, &p, &layout).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        p.committees[t[0].index()].workload.as_deref(),
        Some("transfer")
    );
    let all = ProposalTarget {
        action: "cross_shard_operation".into(),
        affects_multiple_shards: true,
        coordination_required: true,
        ..Default::default()
    };
    assert_eq!(
        select_target_shards(&all, &p, &layout).unwrap(),
        vec![ShardId(0), ShardId(1), ShardId(2)]
    );
    let adaptive = plan(&nodes, crate::Strategy::Adaptive).unwrap();
    let t = select_target_shards(&transfer, &adaptive, &layout).unwrap();
    assert_eq!(t, vec![layout.shard_of_hash(&transfer.key_hash())]);
    assert!(select_target_shards(&ProposalTarget::default(), &adaptive, &layout).is_err());
}

#[test]
fn thresholds() {
    assert!(!cross_shard_approved(2, 3));
    assert!(cross_shard_approved(3, 4));
    assert!(cross_shard_approved(67, 100));
    assert!(!cross_shard_approved(66, 100));
    assert!(!cross_shard_approved(0, 0));
    assert!(!cross_shard_approved(5, 4));
    assert_eq!(bft_quorum(4), 3);
    assert_eq!(bft_max_faults(4), 1);
    assert_eq!(bft_quorum(3), 3);
    assert_eq!(bft_quorum(7), 5);
    assert_eq!(bft_quorum(10), 7);
    assert_eq!(bft_quorum(1), 1);
}

#[test]
fn rebalance_moves_hot_accounts() {
    let layout = ShardLayout::uniform(4).unwrap();
    let accounts: Vec<AccountId> = (0..40)
        .map(|i| AccountId::new(format!("acct-{i}")).unwrap())
        .collect();
    let mut loads = BTreeMap::new();
    let mut account_loads = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        let s = layout.shard_of_account(a);
        let l = if s == ShardId(0) { 100 + i as u64 } else { 10 };
        *loads.entry(s).or_insert(0) += l;
        account_loads.push(AccountLoad {
            key: LayoutKey::Account(a.clone()),
            load: l,
        });
    }
    let moves = plan_rebalance(&layout, &loads, &account_loads, 30, 16).unwrap();
    assert!(!moves.is_empty());
    assert!(moves.iter().all(|m| m.from == ShardId(0)));
    assert_eq!(
        moves,
        plan_rebalance(&layout, &loads, &account_loads, 30, 16).unwrap()
    );
    let after = apply_moves(&layout, &moves).unwrap();
    after.validate().unwrap();
    for m in &moves {
        assert_eq!(after.shard_of_key(&m.key), m.to);
    }
    // Balanced loads: nothing to do.
    let even: BTreeMap<ShardId, u64> = layout.shards().into_iter().map(|s| (s, 100)).collect();
    assert!(
        plan_rebalance(&layout, &even, &account_loads, 30, 16)
            .unwrap()
            .is_empty()
    );
    assert!(plan_rebalance(&layout, &even, &account_loads, 101, 16).is_err());
    // Resharding suggestions.
    let hot: BTreeMap<ShardId, u64> = [
        (ShardId(0), 500),
        (ShardId(1), 10),
        (ShardId(2), 10),
        (ShardId(3), 100),
    ]
    .into();
    let s = suggest_resharding(&layout, &hot, 200, 40, 4).unwrap();
    assert_eq!(
        s,
        vec![
            ReshardSuggestion::Split {
                shard: ShardId(0),
                load: 500
            },
            ReshardSuggestion::Merge {
                a: ShardId(1),
                b: ShardId(2),
                load: 20
            }
        ]
    );
    // Not enough validators to staff a fifth committee.
    let s = suggest_resharding(&layout, &hot, 200, 16, 4).unwrap();
    assert!(
        !s.iter()
            .any(|x| matches!(x, ReshardSuggestion::Split { .. }))
    );
}

#[test]
fn layout_basics_and_codec() {
    let l = ShardLayout::uniform(4).unwrap();
    assert_eq!(l.version(), 0);
    assert_eq!(l.shard_of_hash(&Hash([0; 32])), ShardId(0));
    assert_eq!(l.shard_of_hash(&Hash([0xff; 32])), ShardId(3));
    let alice = AccountId::new("alice").unwrap();
    let home = l.shard_of_account(&alice);
    let other = ShardId((home.0 + 1) % 4);
    let moved = l.move_account(&alice, other).unwrap();
    assert_eq!(moved.shard_of_account(&alice), other);
    assert_eq!(moved.version(), 1);
    assert_eq!(moved.overrides().len(), 1);
    let back = moved.move_account(&alice, home).unwrap();
    assert!(back.overrides().is_empty());
    assert_eq!(back.version(), 2);
    let (split, new) = moved.split(ShardId(1)).unwrap();
    assert_eq!(new, ShardId(4));
    assert_eq!(split.len(), 5);
    let merged = split.merge(ShardId(1), new).unwrap();
    assert_eq!(merged.ranges(), moved.ranges());
    assert!(split.merge(ShardId(0), ShardId(2)).is_err());
    assert!(l.merge(ShardId(0), ShardId(0)).is_err());
    assert!(l.split(ShardId(9)).is_err());
    let bytes = moved.encode();
    assert_eq!(ShardLayout::decode(bytes.clone()).unwrap(), moved);
    let json = serde_json::to_string(&moved).unwrap();
    assert_eq!(serde_json::from_str::<ShardLayout>(&json).unwrap(), moved);
    // Broken layouts are refused by both decoders.
    let mut bad = bytes.to_vec();
    bad[8 + 1 + 4 + 1] ^= 1; // first range's start
    assert!(ShardLayout::decode(bytes::Bytes::from(bad)).is_err());
    let broken = json.replacen("\"start\":0", "\"start\":1", 1);
    assert!(serde_json::from_str::<ShardLayout>(&broken).is_err());
    assert!(ShardLayout::uniform(0).is_err());
    assert!(ShardLayout::uniform(MAX_SHARDS + 1).is_err());
    let (mut full, _) = ShardLayout::uniform(MAX_SHARDS - 1)
        .unwrap()
        .split(ShardId(0))
        .unwrap();
    assert!(full.split(ShardId(0)).is_err());
    full = full
        .merge(ShardId(0), ShardId(MAX_SHARDS as u32 - 1))
        .unwrap();
    full.validate().unwrap();
}

/// Nodes with arbitrary ids and reputations.
fn nodes(range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<NodeInfo>> {
    prop::collection::btree_map("[a-z0-9]{1,8}", (0u32..=PPM, 0usize..4), range).prop_map(|m| {
        m.into_iter()
            .map(|(id, (ppm, cap))| {
                let caps = if cap == 3 {
                    vec![]
                } else {
                    vec![WORKLOAD_TYPES[cap].to_string()]
                };
                NodeInfo::new(id, Reputation::from_ppm(ppm).unwrap(), caps)
            })
            .collect()
    })
}

#[derive(Clone, Debug)]
enum LayoutOp {
    Split(u32),
    Merge(u32, u32),
    Move(u8, u32),
}

fn layout_op() -> impl Strategy<Value = LayoutOp> {
    prop_oneof![
        (0u32..24).prop_map(LayoutOp::Split),
        (0u32..24, 0u32..24).prop_map(|(a, b)| LayoutOp::Merge(a, b)),
        (0u8..32, 0u32..24).prop_map(|(a, s)| LayoutOp::Move(a, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn plans_partition_within_bounds_and_are_deterministic(
        nodes in nodes(3..=120),
        s in strategy(),
        seed in any::<u64>(),
    ) {
        let p = plan(&nodes, s).unwrap();
        check_partition(&p, &nodes);
        prop_assert_eq!(&p, &plan(&nodes, s).unwrap());
        // Input order does not matter.
        let mut shuffled = nodes.clone();
        let h = Hash::sha256(&seed.to_be_bytes());
        shuffled.sort_by_key(|n| Hash::sha256_parts(&[h.as_bytes(), n.id.as_bytes()]));
        prop_assert_eq!(&p, &plan(&shuffled, s).unwrap());
    }

    #[test]
    fn fixed_plans_partition(nodes in nodes(16..=80), s in strategy(), k in 1usize..=5) {
        match plan_fixed(&nodes, k, BFT_MIN_COMMITTEE_SIZE, s) {
            Ok(p) => {
                check_partition(&p, &nodes);
                prop_assert_eq!(p.committees.len(), k);
            }
            Err(_) => prop_assert!(
                nodes.len() > k * MAX_SHARD_SIZE || nodes.len() < k * BFT_MIN_COMMITTEE_SIZE
            ),
        }
    }

    #[test]
    fn adaptive_spread_is_small(n in 20usize..=150, seed in any::<u64>()) {
        let nodes = generate_nodes(n, seed);
        let p = plan(&nodes, crate::Strategy::Adaptive).unwrap();
        // Reputations span 0.5; balanced committees differ by well under 1%.
        prop_assert!(p.reputation_spread().ppm() <= 10_000, "{:?}", p.reputation_spread());
        let h = plan(&nodes, crate::Strategy::Hybrid).unwrap();
        let hash = plan(&nodes, crate::Strategy::Hash).unwrap();
        prop_assert!(h.reputation_spread() <= hash.reputation_spread());
    }

    #[test]
    fn hash_adding_a_node_moves_no_other_unless_forced(
        nodes in nodes(17..=60),
        k in 2usize..=4,
    ) {
        let mut sorted = nodes.clone();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        let bounds = SizeBounds { min: MIN_SHARD_SIZE, max: MAX_SHARD_SIZE };
        prop_assume!(sorted.len() <= k * bounds.max && sorted.len() > k * bounds.min);
        let (before, f1) = hash_assign(&sorted[1..], k, bounds);
        let (after, f2) = hash_assign(&sorted, k, bounds);
        if f1 == 0 && f2 == 0 {
            // Index i in `before` is i+1 in `after`.
            for (c, g) in before.iter().enumerate() {
                for &i in g {
                    prop_assert!(after[c].contains(&(i + 1)));
                }
            }
        }
    }

    #[test]
    fn add_and_remove_keep_bounds(
        nodes in nodes(10..=60),
        extra in nodes(1..=8),
        s in strategy(),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut p = plan(&nodes, s).unwrap();
        for e in extra {
            if p.node(&e.id).is_some() {
                continue;
            }
            let before = p.clone();
            let (next, moves) = p.add_node(e.clone()).unwrap();
            next.validate().unwrap();
            prop_assert_eq!(&moves[0].node, &e.id);
            prop_assert_eq!(moved(&before, &next), moves.len() - 1);
            if next.committees.len() == before.committees.len() {
                prop_assert_eq!(moves.len(), 1, "no split, no other move");
            }
            p = next;
        }
        for r in removals {
            let id = p.nodes[r.index(p.nodes.len())].id.clone();
            match p.remove_node(&id) {
                Ok((next, moves)) => {
                    next.validate().unwrap();
                    prop_assert!(next.node(&id).is_none());
                    prop_assert_eq!(&moves[0].node, &id);
                    if next.committees.len() == p.committees.len() {
                        prop_assert!(moves.len() <= 2, "at most one refill");
                    }
                    p = next;
                }
                Err(_) => prop_assert!(p.nodes.len() <= p.bounds.min + 1 || p.committees.len() == 1),
            }
        }
    }

    #[test]
    fn fixed_plan_remove_refills_or_refuses(nodes in nodes(16..=20), r in any::<prop::sample::Index>()) {
        let p = plan_fixed(&nodes, 4, 4, crate::Strategy::Hash).unwrap();
        let id = p.nodes[r.index(p.nodes.len())].id.clone();
        match p.remove_node(&id) {
            Ok((next, _)) => { next.validate().unwrap(); prop_assert_eq!(next.committees.len(), 4); }
            Err(_) => prop_assert_eq!(nodes.len(), 16),
        }
    }

    #[test]
    fn layout_covers_space_after_any_changes(ops in prop::collection::vec(layout_op(), 0..40), n in 1usize..=6) {
        let mut l = ShardLayout::uniform(n).unwrap();
        for op in ops {
            let result = match op {
                LayoutOp::Split(s) => l.split(ShardId(s)).map(|(l, _)| l),
                LayoutOp::Merge(a, b) => l.merge(ShardId(a), ShardId(b)),
                LayoutOp::Move(a, s) => {
                    l.move_account(&AccountId::new(format!("acct-{a}")).unwrap(), ShardId(s))
                }
            };
            if let Ok(next) = result {
                prop_assert_eq!(next.version(), l.version() + 1);
                next.validate().unwrap();
                let width: u128 = next.ranges().iter().map(|r| r.width()).sum();
                prop_assert_eq!(width, 1u128 << 64);
                l = next;
            }
        }
        prop_assert_eq!(ShardLayout::decode(l.encode()).unwrap(), l.clone());
        let json = serde_json::to_string(&l).unwrap();
        prop_assert_eq!(serde_json::from_str::<ShardLayout>(&json).unwrap(), l.clone());
        for a in 0..32u8 {
            let acct = AccountId::new(format!("acct-{a}")).unwrap();
            prop_assert!(l.contains(l.shard_of_account(&acct)));
        }
    }

    #[test]
    fn threshold_rule_matches_rational(accepted in 0u64..10_000, total in 1u64..10_000) {
        let expected = accepted <= total && (accepted as f64) / (total as f64) >= 0.67 - 1e-12;
        prop_assert_eq!(cross_shard_approved(accepted, total), expected);
        let n = total as usize;
        let q = bft_quorum(n);
        prop_assert!(3 * bft_max_faults(n) < n);
        prop_assert!(2 * q > n + bft_max_faults(n), "two quorums share an honest node");
    }

    #[test]
    fn rebalance_is_deterministic_and_bounded(
        loads in prop::collection::vec(0u64..1_000, 4),
        accts in prop::collection::vec((0u8..64, 0u64..300), 0..40),
        max_moves in 0usize..10,
    ) {
        let layout = ShardLayout::uniform(4).unwrap();
        let shard_loads: BTreeMap<ShardId, u64> =
            loads.iter().enumerate().map(|(i, &l)| (ShardId(i as u32), l)).collect();
        let account_loads: Vec<AccountLoad> = accts
            .iter()
            .map(|&(a, l)| (a, l))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .map(|(a, l)| AccountLoad {
                key: LayoutKey::Account(AccountId::new(format!("acct-{a}")).unwrap()),
                load: l,
            })
            .collect();
        let m = plan_rebalance(&layout, &shard_loads, &account_loads, 30, max_moves).unwrap();
        prop_assert!(m.len() <= max_moves);
        prop_assert_eq!(&m, &plan_rebalance(&layout, &shard_loads, &account_loads, 30, max_moves).unwrap());
        let keys: BTreeSet<_> = m.iter().map(|x| &x.key).collect();
        prop_assert_eq!(keys.len(), m.len());
        apply_moves(&layout, &m).unwrap().validate().unwrap();
    }

    #[test]
    fn observed_reputation_is_bounded_monotone_and_deterministic(
        prior in 0u32..=PPM,
        votes in 0u64..1_000_000_000,
        missed in 0u64..1_000_000_000,
        more in 1u64..1_000_000,
    ) {
        let prior = Reputation::from_ppm(prior).unwrap();
        let r = prior.observed(votes, missed);
        prop_assert!(r <= Reputation::MAX);
        prop_assert_eq!(r, prior.observed(votes, missed), "deterministic");
        prop_assert!(prior.observed(votes + more, missed) >= r, "monotone in votes");
        prop_assert!(prior.observed(votes, missed + more) <= r, "anti-monotone in missed");
        prop_assert_eq!(prior.observed(0, 0), prior, "the prior without events");
        // Extremes cannot overflow and stay in range.
        prop_assert!(prior.observed(u64::MAX, u64::MAX) <= Reputation::MAX);
        prop_assert!(prior.observed(u64::MAX, 0) <= Reputation::MAX);
        prop_assert!(prior.observed(0, u64::MAX) <= prior);
    }
}

/// Worked examples of [`Reputation::observed`] (prior weight 100 events).
#[test]
fn observed_reputation_examples() {
    let prior = Reputation::from_ppm(900_000).unwrap();
    assert_eq!(prior.observed(0, 0).ppm(), 900_000);
    // (0.9 × 100 + 100) / 200 = 0.95.
    assert_eq!(prior.observed(100, 0).ppm(), 950_000);
    // (0.9 × 100 + 75) / 200 = 0.825: three quarters participation pulls it down.
    assert_eq!(prior.observed(75, 25).ppm(), 825_000);
    // (0.9 × 100 + 0) / 200 = 0.45: down the whole time.
    assert_eq!(prior.observed(0, 100).ppm(), 450_000);
}
