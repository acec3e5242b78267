//! Property test: random workloads over several in-memory shards, with a delivery harness
//! that replays, reorders and duplicates batches. After every block (checked in
//! [`Net::commit`](super::kit::Net)): each shard's ledger balances and total supply =
//! Σ balances + Σ in-flight + burned; no receipt is applied twice. At the end, after honest
//! delivery, every receipt was applied exactly once. Every proposal is re-executed by a
//! replica, which must produce the same writes and batch.

use super::kit::*;
use crate::{StateReadExt, StateView};
use proptest::prelude::*;
use vision_types::{Action, Amount, IncomingBatch, ShardConfig, ShardId, tx::PRIORITY_IMMEDIATE};

const ACCOUNTS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank",
];

/// SplitMix64: a tiny deterministic generator driven by proptest's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs the workload; returns each shard's write sets in commit order (genesis excluded).
fn run(seed: u64, steps: usize, config: ShardConfig) -> Vec<Vec<crate::WriteSet>> {
    let mut rng = Rng(seed);
    let mut net = Net::new(
        3,
        Layout::new(3, &[("alice", 0), ("bob", 1), ("carol", 2)]),
        &ACCOUNTS,
        config,
    );
    let mut delivered: Vec<IncomingBatch> = Vec::new();
    let mut writes = vec![Vec::new(); 3];
    for _ in 0..steps {
        let s = ShardId(rng.below(3) as u32);
        // Candidate transactions from accounts of this shard, nonces from state.
        let mut txs = Vec::new();
        for a in ACCOUNTS {
            if net.shard_of(a) != s || rng.below(2) == 0 {
                continue;
            }
            let nonce = net.nodes[s.index()]
                .state
                .account(&acct(a))
                .map_or(0, |x| x.nonce);
            for i in 0..rng.below(3) {
                let to = ACCOUNTS[rng.below(ACCOUNTS.len() as u64) as usize];
                let amount = match rng.below(10) {
                    0 => GENESIS_BALANCE * 2, // insufficient: dropped
                    _ => rng.below(5_000) as u128,
                };
                let action = match rng.below(12) {
                    0 => Action::Flush { shard: s },
                    1 => Action::Transfer {
                        to: acct(to),
                        amount: Amount(amount),
                        priority: PRIORITY_IMMEDIATE,
                    },
                    2 => Action::CreateAccount {
                        account: acct("ghost"),
                        public_key: key("ghost").public_key(),
                        amount: Amount(amount),
                    },
                    3 => transfer("nobody", amount), // unknown: refunded or rejected
                    _ => transfer(to, amount),
                };
                txs.push(sign(a, nonce + i, rng.below(4) as u128, action));
            }
        }
        // Incoming: the mailbox shuffled, plus replays of delivered batches and duplicates.
        let mut incoming: Vec<IncomingBatch> = net.mailbox.get(&s).cloned().unwrap_or_default();
        for b in &delivered {
            if b.destination.dst == s && rng.below(4) == 0 {
                incoming.push(b.clone());
            }
        }
        if !incoming.is_empty() && rng.below(3) == 0 {
            let i = rng.below(incoming.len() as u64) as usize;
            incoming.push(incoming[i].clone());
        }
        for i in (1..incoming.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            incoming.swap(i, j);
        }
        let dt = rng.below(400);
        let built = net.propose(s, dt, txs, incoming);
        writes[s.index()].push(built.execution.writes.clone());
        delivered.extend(built.incoming);
    }
    net.settle();
    if std::env::var("VISION_PROPS_VERBOSE").is_ok() {
        eprintln!(
            "seed {seed}: {} receipts applied, heights {:?}",
            net.applied.len(),
            net.nodes.iter().map(|n| n.height).collect::<Vec<_>>()
        );
    }
    assert!(net.in_flight.is_empty());
    assert!(net.applied.values().all(|&n| n == 1));
    net.check_supply();
    writes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn supply_and_exactly_once_async(seed in any::<u64>(), steps in 10usize..60) {
        let _ = run(seed, steps, ShardConfig { batch_size: 4, batch_timeout_ms: 500, crosslink_frequency: 7, ..ShardConfig::default() });
    }

    #[test]
    fn supply_and_exactly_once_sync(seed in any::<u64>(), steps in 10usize..40) {
        let _ = run(seed, steps, ShardConfig { async_crosslinks_enabled: false, ..ShardConfig::default() });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Two QMDB replicas of each shard fed the same blocks agree on every root, and every
    /// account proves against the final root.
    #[test]
    fn qmdb_replicas_agree_on_random_workloads(seed in any::<u64>()) {
        use crate::{QmdbStore, ShardStore, keys, verify_state_proof};
        use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
        let per_shard = run(seed, 20, ShardConfig { batch_size: 4, ..ShardConfig::default() });
        deterministic::Runner::seeded(seed).start(|ctx| async move {
            for (s, sets) in per_shard.iter().enumerate() {
                let mut a = QmdbStore::open(ctx.child("a"), &format!("a{s}")).await.unwrap();
                let mut b = QmdbStore::open(ctx.child("b"), &format!("b{s}")).await.unwrap();
                for w in sets {
                    let spec = b.speculative_root(w).await.unwrap();
                    let ra = a.commit(w).await.unwrap();
                    assert_eq!(ra, b.commit(w).await.unwrap());
                    assert_eq!(ra, spec);
                }
                let root = a.root();
                for (k, v) in a.state().scan_prefix(&[keys::TAG_ACCOUNT]) {
                    let (value, proof) = b.prove(&k).await.unwrap().unwrap();
                    assert_eq!(value, v);
                    assert!(verify_state_proof(&root, &k, &v, &proof));
                    let mut t = v.clone();
                    t[0] ^= 1;
                    assert!(!verify_state_proof(&root, &k, &t, &proof));
                }
            }
        });
    }
}

/// A model of every account's balance and nonce, updated from what blocks report.
#[derive(Default)]
struct Model {
    balance: std::collections::BTreeMap<String, i128>,
    nonce: std::collections::BTreeMap<String, u64>,
    receipts: std::collections::BTreeMap<String, vision_types::Receipt>,
}

impl Model {
    fn absorb(&mut self, built: &crate::BuiltBlock) {
        use crate::Event;
        use vision_types::ReceiptKind;
        let ex = &built.execution;
        for r in &ex.emitted {
            self.receipts.insert(r.id(), r.clone());
        }
        for tx in &built.txs {
            let signer = tx.tx.signer.to_string();
            *self.nonce.entry(signer.clone()).or_default() += 1;
            let spent = tx.tx.fee.0 + tx.tx.action.value().0;
            *self.balance.entry(signer).or_default() -= spent as i128;
        }
        let forwarded: Vec<&String> = ex
            .events
            .iter()
            .filter_map(|e| match e {
                Event::ReceiptForwarded { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        for e in &ex.events {
            match e {
                Event::Transfer { to, amount, .. } => {
                    *self.balance.entry(to.to_string()).or_default() += amount.0 as i128;
                }
                Event::ReceiptApplied { id, ok: true } if !forwarded.contains(&id) => {
                    let r = &self.receipts[id];
                    if matches!(r.kind, ReceiptKind::Transfer | ReceiptKind::Refund { .. })
                        && r.sender != r.recipient
                    {
                        *self.balance.entry(r.recipient.to_string()).or_default() +=
                            r.amount.0 as i128;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Random transfers plus random account moves, stamped on each shard at random (growing)
/// beacon heights; receipts delivered in order per stream. Afterwards: supply conserved,
/// every receipt applied exactly once (checked after every block by the harness), every
/// account on exactly one shard — its shard in the newest layout — with the balance and
/// nonce the model expects, and no awaiting mark left.
fn run_migrations(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut net = Net::new(
        3,
        Layout::new(3, &[("alice", 0), ("bob", 1), ("carol", 2)]),
        &ACCOUNTS,
        ShardConfig {
            batch_size: 4,
            batch_timeout_ms: 500,
            crosslink_frequency: 5,
            ..ShardConfig::default()
        },
    );
    net.schedule_move("alice", 0); // start versioned layouts (a no-op move)
    let mut model = Model::default();
    for a in ACCOUNTS {
        model.balance.insert(a.to_string(), GENESIS_BALANCE as i128);
    }
    let mut moves = 0;
    for _ in 0..steps {
        if rng.below(4) == 0 {
            let a = ACCOUNTS[rng.below(ACCOUNTS.len() as u64) as usize];
            let to = rng.below(3) as u32;
            if net.layout.place_pub(a) != ShardId(to) {
                net.schedule_move(a, to);
                moves += 1;
            }
        }
        let s = ShardId(rng.below(3) as u32);
        let node = &net.nodes[s.index()];
        let (at, _) = node.layout.clone().unwrap();
        let tip = net.beacon_tip();
        if at < tip && rng.below(2) == 0 {
            let b = at + 1 + rng.below(tip - at);
            net.advance_beacon(s, b);
        }
        let layout = match &net.nodes[s.index()].next {
            Some((_, l, _)) => l.clone(),
            None => net.nodes[s.index()].layout.clone().unwrap().1,
        };
        let mut txs = Vec::new();
        for a in ACCOUNTS {
            if layout.place_pub(a) != s || rng.below(2) == 0 {
                continue;
            }
            let Some(acc) = net.nodes[s.index()].state.account(&acct(a)) else {
                continue;
            };
            for i in 0..rng.below(3) {
                let to = ACCOUNTS[rng.below(ACCOUNTS.len() as u64) as usize];
                let action = match rng.below(8) {
                    0 => transfer("nobody", rng.below(100) as u128),
                    1 => Action::Transfer {
                        to: acct(to),
                        amount: Amount(rng.below(5_000) as u128),
                        priority: PRIORITY_IMMEDIATE,
                    },
                    _ => transfer(to, rng.below(5_000) as u128),
                };
                // Sometimes an old nonce: a replay must be dropped.
                let nonce = if rng.below(10) == 0 && acc.nonce > 0 {
                    0
                } else {
                    acc.nonce + i
                };
                txs.push(sign(a, nonce, rng.below(3) as u128, action));
            }
        }
        let incoming = net.deliverable(s);
        let built = net.propose(s, rng.below(400), txs, incoming);
        model.absorb(&built);
    }
    net.advance_all();
    for _ in 0..60 {
        let quiet = net.in_flight.is_empty()
            && net
                .nodes
                .iter()
                .all(|n| n.state.pending_receipts().is_empty() && n.next.is_none());
        if quiet {
            break;
        }
        for s in 0..3u32 {
            let s = ShardId(s);
            let incoming = net.deliverable(s);
            let dt = net.config.batch_timeout_ms + 1;
            let built = net.propose(s, dt, vec![], incoming);
            model.absorb(&built);
        }
    }
    assert!(net.in_flight.is_empty(), "did not settle");
    assert!(net.applied.values().all(|&n| n == 1));
    net.check_supply();
    if std::env::var("VISION_PROPS_VERBOSE").is_ok() {
        eprintln!(
            "seed {seed}: {moves} moves, {} receipts applied",
            net.applied.len()
        );
    }
    for a in ACCOUNTS {
        let home = net.layout.place_pub(a);
        assert_eq!(
            net.holders(a),
            vec![home],
            "{a} held exactly once, on its shard"
        );
        let acc = net.nodes[home.index()].state.account(&acct(a)).unwrap();
        assert_eq!(acc.balance.0 as i128, model.balance[a], "{a}'s balance");
        assert_eq!(
            acc.nonce,
            model.nonce.get(a).copied().unwrap_or(0),
            "{a}'s nonce"
        );
        assert_eq!(acc.public_key, key(a).public_key());
        for n in &net.nodes {
            assert_eq!(n.state.migrating_mark(&acct(a)), None, "{a} still awaiting");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn migrations_conserve_supply_and_keep_every_account_once(seed in any::<u64>(), steps in 20usize..70) {
        run_migrations(seed, steps);
    }
}
