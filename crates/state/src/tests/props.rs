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
