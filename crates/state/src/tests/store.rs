//! The QMDB store: replicas agree on roots, speculative roots match committed ones, proofs
//! verify and tampered ones fail, and a reopened store recovers the last committed root.

use super::kit::*;
use crate::{
    MemState, QmdbStore, ShardStore, StateProof, StateView, WriteSet, keys, verify_state_proof,
};
use commonware_runtime::{Runner as _, Supervisor as _, deterministic, tokio as cw_tokio};
use vision_types::{Action, Amount, ContractId, ShardConfig, ShardId};

/// Write sets of shard 0 over a small workload: genesis, local and cross-shard transfers, a
/// contract deployment, incoming receipts.
fn workload() -> (Vec<WriteSet>, ContractId) {
    let mut n = Net::new(
        2,
        Layout::new(2, &[("alice", 0), ("erin", 0), ("bob", 1)]),
        &["alice", "erin", "bob"],
        ShardConfig::default(),
    );
    let list: Vec<_> = ["alice", "erin", "bob"]
        .iter()
        .map(|a| (acct(a), key(a).public_key(), Amount(GENESIS_BALANCE)))
        .collect();
    let mut sets = vec![crate::genesis(ShardId(0), &n.layout, &list, 1_000).unwrap()];
    let deploy = n.tx(
        "alice",
        1,
        Action::DeployContract {
            name: "kv".into(),
            code_hash: "kv".into(),
            initial_state: [("greeting".to_string(), "hi".to_string())].into(),
            gas_budget: 1_000_000,
        },
    );
    let cid = ContractId::from_deploy(&deploy.id());
    n.layout.fixed.insert(cid.to_string(), ShardId(0));
    let t = vec![deploy, n.tx("alice", 1, transfer("erin", 10))];
    sets.push(n.exec(ShardId(0), 10, &t, &[]).unwrap().writes);
    for i in 0..4 {
        let t = vec![
            n.tx("erin", 1, transfer("bob", 5 + i)),
            n.tx("alice", 2, transfer("erin", 1)),
        ];
        sets.push(n.exec(ShardId(0), 300, &t, &[]).unwrap().writes);
        let t = vec![n.tx("bob", 1, transfer("alice", 3))];
        let inc = n.deliverable(ShardId(1));
        n.exec(ShardId(1), 300, &t, &inc).unwrap();
        let inc = n.deliverable(ShardId(0));
        sets.push(n.exec(ShardId(0), 300, &[], &inc).unwrap().writes);
    }
    (sets, cid)
}

#[test]
fn replicas_agree_on_every_root_and_proofs_verify() {
    let (sets, cid) = workload();
    deterministic::Runner::seeded(7).start(|ctx| async move {
        let mut a = QmdbStore::open(ctx.child("a"), "replica-a").await.unwrap();
        let mut b = QmdbStore::open(ctx.child("b"), "replica-b").await.unwrap();
        assert_eq!(a.root(), b.root());
        let mut mirror = MemState::new();
        let mut roots = Vec::new();
        for w in &sets {
            let speculative = a.speculative_root(w).await.unwrap();
            assert_eq!(a.root(), b.root(), "speculation changed nothing");
            let ra = a.commit(w).await.unwrap();
            let rb = b.commit(w).await.unwrap();
            assert_eq!(ra, speculative);
            assert_eq!(ra, rb);
            assert!(!roots.contains(&ra));
            roots.push(ra);
            mirror.apply(w);
            assert_eq!(a.state(), &mirror);
        }
        // Speculating a chain of uncommitted blocks gives the roots sequential commits gave.
        let fresh = QmdbStore::open(ctx.child("c"), "replica-c").await.unwrap();
        let chain: Vec<&WriteSet> = sets.iter().collect();
        assert_eq!(fresh.speculative_roots(&chain).await.unwrap(), roots);
        let root = a.root();
        for key in [
            keys::account(&acct("alice")),
            keys::contract_entry(&cid, "greeting"),
            keys::contract(&cid),
        ] {
            let (value, proof) = a.prove(&key).await.unwrap().unwrap();
            assert_eq!(Some(value.clone()), a.get(&key));
            assert!(verify_state_proof(&root, &key, &value, &proof));
            // The replica's proof verifies against the same root.
            let (_, proof_b) = b.prove(&key).await.unwrap().unwrap();
            assert!(verify_state_proof(&root, &key, &value, &proof_b));
            // Tampering with the value, the key, the root or the proof fails.
            let mut v2 = value.clone();
            v2[0] ^= 1;
            assert!(!verify_state_proof(&root, &key, &v2, &proof));
            let mut k2 = key.clone();
            k2.push(b'x');
            assert!(!verify_state_proof(&root, &k2, &value, &proof));
            assert!(!verify_state_proof(&roots[0], &key, &value, &proof));
            for i in [0, proof.0.len() / 2, proof.0.len() - 1] {
                let mut p2 = proof.0.clone();
                p2[i] ^= 0x40;
                assert!(!verify_state_proof(&root, &key, &value, &StateProof(p2)));
            }
        }
        // An absent key has no proof.
        assert!(
            a.prove(&keys::account(&acct("nobody")))
                .await
                .unwrap()
                .is_none()
        );
        // A stale proof (of an older value) does not verify against the new root.
        let key = keys::account(&acct("alice"));
        let (old_value, old_proof) = a.prove(&key).await.unwrap().unwrap();
        let mut w = WriteSet::new();
        w.insert(key.clone(), Some(b"new".to_vec()));
        let new_root = a.commit(&w).await.unwrap();
        assert!(!verify_state_proof(&new_root, &key, &old_value, &old_proof));
    });
}

#[test]
fn reopen_recovers_last_committed_root() {
    let (sets, _) = workload();
    let (last, rest) = sets.split_last().unwrap();
    deterministic::Runner::seeded(3).start(|ctx| async move {
        let mut s = QmdbStore::open(ctx.child("first"), "crash").await.unwrap();
        for (i, w) in rest.iter().enumerate() {
            s.commit(w).await.unwrap();
            if i % 3 == 2 {
                // Pruning history changes neither the root nor what reopening recovers.
                let root = s.root();
                s.prune().await.unwrap();
                assert_eq!(s.root(), root);
            }
        }
        let committed = s.root();
        let state = s.state().clone();
        // Speculate on the next block, then "crash" before committing it.
        let next = s.speculative_root(last).await.unwrap();
        drop(s);
        let mut s = QmdbStore::open(ctx.child("second"), "crash").await.unwrap();
        assert_eq!(s.root(), committed);
        assert_eq!(s.state(), &state);
        let key = keys::account(&acct("alice"));
        let (value, proof) = s.prove(&key).await.unwrap().unwrap();
        assert!(verify_state_proof(&committed, &key, &value, &proof));
        // It continues exactly where it was.
        assert_eq!(s.commit(last).await.unwrap(), next);
    });
}

#[test]
fn on_disk_store_survives_restart() {
    let (sets, _) = workload();
    let dir = std::env::temp_dir().join(format!("vision-state-qmdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = || cw_tokio::Runner::new(cw_tokio::Config::new().with_storage_directory(&dir));
    let sets2 = sets.clone();
    let (root, state) = rt().start(|ctx| async move {
        let mut s = QmdbStore::open(ctx.child("db"), "disk").await.unwrap();
        for w in &sets2 {
            s.commit(w).await.unwrap();
        }
        (s.root(), s.state().clone())
    });
    rt().start(|ctx| async move {
        let s = QmdbStore::open(ctx.child("db"), "disk").await.unwrap();
        assert_eq!(s.root(), root);
        assert_eq!(s.state(), &state);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prune_bounds_history_and_reopen_still_recovers() {
    deterministic::Runner::seeded(5).start(|ctx| async move {
        let mut s = QmdbStore::open(ctx.child("first"), "prune").await.unwrap();
        for i in 0..800u32 {
            let mut w = WriteSet::new();
            for k in 0..4u32 {
                w.insert(
                    vec![0x77, k as u8],
                    Some((i * 10 + k).to_be_bytes().to_vec()),
                );
            }
            if i % 7 == 0 {
                w.insert(vec![0x78, (i % 5) as u8], None);
            } else {
                w.insert(vec![0x78, (i % 5) as u8], Some(vec![1; 8]));
            }
            s.commit(&w).await.unwrap();
        }
        let before = s.retained_ops();
        let root = s.root();
        s.prune().await.unwrap();
        let after = s.retained_ops();
        assert!(after.start > before.start, "{before:?} -> {after:?}");
        assert_eq!(s.root(), root);
        let state = s.state().clone();
        drop(s);
        let s = QmdbStore::open(ctx.child("second"), "prune").await.unwrap();
        assert_eq!(s.root(), root);
        assert_eq!(s.state(), &state);
        for (k, v) in state.entries() {
            let (value, proof) = s.prove(k).await.unwrap().unwrap();
            assert_eq!(&value, v);
            assert!(verify_state_proof(&root, k, v, &proof));
        }
    });
}

#[test]
fn largest_values_fit_the_store() {
    let mut n = Net::new(
        2,
        Layout::new(2, &[("alice", 0), ("bob", 1)]),
        &["alice", "bob"],
        ShardConfig::default(),
    );
    let initial_state = (0..vision_types::limits::MAX_INITIAL_STATE_ENTRIES)
        .map(|i| {
            (
                format!("{i:0128}"),
                "v".repeat(vision_types::limits::MAX_VALUE_BYTES),
            )
        })
        .collect();
    let t = n.tx(
        "alice",
        1,
        Action::DeployContract {
            name: "n".repeat(64),
            code_hash: "h".repeat(vision_types::tx::MAX_CODE_HASH_BYTES),
            initial_state,
            gas_budget: 1_000_000,
        },
    );
    n.layout
        .fixed
        .insert(ContractId::from_deploy(&t.id()).to_string(), ShardId(1));
    let w = n.exec(ShardId(0), 10, &[t], &[]).unwrap().writes;
    assert!(w.values().flatten().any(|v| v.len() > 70_000));
    deterministic::Runner::seeded(1).start(|ctx| async move {
        let mut s = QmdbStore::open(ctx.child("s"), "big").await.unwrap();
        s.commit(&w).await.unwrap();
    });
}
