//! Cross-shard flows: receipts, proofs against final roots, exactly-once, refunds, calls.

use super::kit::*;
use crate::{BlockError, CallStatus, IncomingRejection, StateReadExt, TxStatus};
use vision_types::{Action, Amount, ContractId, Hash, ShardConfig, ShardId};

fn net() -> Net {
    Net::new(
        4,
        Layout::new(
            4,
            &[
                ("alice", 0),
                ("erin", 0),
                ("bob", 1),
                ("ghost", 1),
                ("newbie", 1),
                ("carol", 2),
                ("dave", 3),
            ],
        ),
        &["alice", "erin", "bob", "carol", "dave"],
        ShardConfig::default(),
    )
}

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);

fn flush(n: &mut Net, signer: &str, shard: ShardId) {
    let f = vec![n.tx(signer, 1, Action::Flush { shard })];
    n.exec(shard, 10, &f, &[]).unwrap().closed_batch.unwrap();
}

#[test]
fn token_transfer_alice_to_bob_across_shards() {
    let mut n = net();
    let t = vec![n.tx("alice", 2, transfer("bob", 100))];
    let ex = n.exec(S0, 10, &t, &[]).unwrap();
    assert_eq!(ex.outcomes[0].status, TxStatus::CrossShardPending);
    assert_eq!(ex.outcomes[0].receipts, vec!["receipt_0_1_0".to_string()]);
    assert_eq!(n.balance("alice"), GENESIS_BALANCE - 102);
    assert_eq!(n.balance("bob"), GENESIS_BALANCE);
    flush(&mut n, "erin", S0);
    let ex = n.deliver(S1);
    assert_eq!(ex.applied_receipts, 1);
    assert_eq!(n.balance("bob"), GENESIS_BALANCE + 100);
    assert!(n.in_flight.is_empty());
    assert_eq!(n.nodes[1].state.inbox_next(S0), 1);
}

#[test]
fn duplicates_gaps_unfinal_and_tampered_batches_are_rejected() {
    let mut n = net();
    let t = vec![n.tx("alice", 1, transfer("bob", 1))];
    n.exec(S0, 10, &t, &[]).unwrap();
    flush(&mut n, "erin", S0);
    let t = vec![n.tx("alice", 1, transfer("bob", 2))];
    n.exec(S0, 10, &t, &[]).unwrap();
    flush(&mut n, "erin", S0);
    let batches = n.mailbox[&S1].clone();
    assert_eq!(batches.len(), 2);
    // Gap: the second batch first.
    let before = n.nodes[1].state.clone();
    let err = n.exec(S1, 10, &[], &batches[1..]).unwrap_err();
    assert_eq!(
        err,
        BlockError::Incoming {
            index: 0,
            reason: IncomingRejection::Gap {
                src: S0,
                expected: 0,
                got: 1
            }
        }
    );
    // Tampered receipt amount / proof, and an unfinal root.
    let mut bad = batches[0].clone();
    bad.receipts[0].amount = Amount(1_000);
    assert!(matches!(
        n.exec(S1, 10, &[], &[bad]).unwrap_err(),
        BlockError::Incoming {
            reason: IncomingRejection::BadBatch(_),
            ..
        }
    ));
    let mut bad = batches[0].clone();
    bad.crosslink_height += 100;
    assert!(matches!(
        n.exec(S1, 10, &[], &[bad]).unwrap_err(),
        BlockError::Incoming {
            reason: IncomingRejection::NotFinal { .. },
            ..
        }
    ));
    assert_eq!(n.nodes[1].state, before);
    // In order: fine; then a replay of the first is a duplicate.
    n.exec(S1, 10, &[], &batches).unwrap();
    assert_eq!(n.balance("bob"), GENESIS_BALANCE + 3);
    let err = n.exec(S1, 10, &[], &batches[..1]).unwrap_err();
    assert_eq!(
        err,
        BlockError::Incoming {
            index: 0,
            reason: IncomingRejection::Duplicate {
                src: S0,
                expected: 2,
                got: 0
            }
        }
    );
    // Delivered to the wrong shard.
    assert!(matches!(
        n.exec(ShardId(2), 10, &[], &batches[..1]).unwrap_err(),
        BlockError::Incoming {
            reason: IncomingRejection::WrongDestination(_),
            ..
        }
    ));
    // A proposer drops the duplicate and keeps going.
    let built = n.propose(S1, 10, vec![], batches.clone());
    assert_eq!(built.dropped_incoming.len(), 2);
}

#[test]
fn transfer_to_unknown_account_is_refunded() {
    let mut n = net();
    let t = vec![n.tx("alice", 1, transfer("ghost", 40))];
    n.exec(S0, 10, &t, &[]).unwrap();
    flush(&mut n, "erin", S0);
    let ex = n.deliver(S1);
    assert_eq!(ex.emitted.len(), 1);
    assert!(matches!(
        ex.emitted[0].kind,
        vision_types::ReceiptKind::Refund { .. }
    ));
    n.settle();
    assert_eq!(n.balance("alice"), GENESIS_BALANCE - 1 - 40 + 40);
    assert!(n.nodes[1].state.account(&acct("ghost")).is_none());
}

#[test]
fn cross_shard_account_creation() {
    let mut n = net();
    let mk = |amount| Action::CreateAccount {
        account: acct("newbie"),
        public_key: key("newbie").public_key(),
        amount: Amount(amount),
    };
    let t = vec![n.tx("alice", 1, mk(500)), n.tx("erin", 1, mk(300))];
    n.exec(S0, 10, &t, &[]).unwrap();
    n.settle();
    // The first creates it; the second finds it existing and is refunded.
    assert_eq!(n.balance("newbie"), 500);
    assert_eq!(n.balance("alice"), GENESIS_BALANCE - 501);
    assert_eq!(
        n.balance("erin"),
        GENESIS_BALANCE - 1 - n_flush_fees(&n, "erin")
    );
    // newbie can now transact on shard 1.
    let t = vec![sign("newbie", 0, 1, transfer("bob", 10))];
    n.exec(S1, 10, &t, &[]).unwrap();
    assert_eq!(n.balance("bob"), GENESIS_BALANCE + 10);
}

fn n_flush_fees(n: &Net, who: &str) -> u128 {
    // Each harness-signed tx after the first costs fee 1 (only flushes here).
    n.nodes[n.shard_of(who).index()]
        .state
        .account(&acct(who))
        .unwrap()
        .nonce as u128
        - 1
}

/// Deploys a `kv` contract from `owner` and places it on `shard`; returns its id.
fn deploy(n: &mut Net, owner: &str, shard: ShardId, code_hash: &str) -> (ContractId, TxStatus) {
    let t = n.tx(
        owner,
        1,
        Action::DeployContract {
            name: "kv".into(),
            code_hash: code_hash.into(),
            initial_state: [("greeting".to_string(), "hi".to_string())].into(),
            gas_budget: 1_000_000,
        },
    );
    let cid = ContractId::from_deploy(&t.id());
    n.layout.fixed.insert(cid.to_string(), shard);
    let home = n.shard_of(owner);
    let ex = n.exec(home, 10, &[t], &[]).unwrap();
    assert_eq!(ex.outcomes[0].contract, Some((cid.clone(), shard)));
    (cid, ex.outcomes[0].status.clone())
}

#[test]
fn cross_shard_deploy() {
    let mut n = net();
    let (cid, status) = deploy(&mut n, "alice", S1, "kv");
    assert_eq!(status, TxStatus::CrossShardPending);
    n.settle();
    let meta = n.nodes[1].state.contract(&cid).unwrap();
    assert_eq!((meta.owner.as_str(), meta.primary_shard), ("alice", S1));
    assert_eq!(n.nodes[1].state.contract_state(&cid)["greeting"], "hi");
    // A refused deployment comes back as a refund receipt; nothing is created.
    let (bad, _) = deploy(&mut n, "alice", S1, "bad");
    n.settle();
    assert!(n.nodes[1].state.contract(&bad).is_none());
    // A local refused deployment is included as failed.
    let (_, status) = deploy(&mut n, "bob", S1, "bad");
    assert!(matches!(status, TxStatus::Failed { .. }));
}

#[test]
fn cross_shard_call_completes_and_fails_with_refund() {
    let mut n = net();
    let (cid, status) = deploy(&mut n, "bob", S1, "kv");
    assert_eq!(status, TxStatus::Success);
    // alice (shard 0) calls `pay`, attaching 30 paid to carol (shard 2).
    let call = |n: &mut Net, method: &str, args: Vec<String>| {
        let t = n.tx(
            "alice",
            1,
            Action::CallContract {
                contract: cid.clone(),
                method: method.into(),
                args,
                gas_limit: 100_000,
                amount: Amount(30),
            },
        );
        let ex = n.exec(S0, 10, &[t], &[]).unwrap();
        ex.outcomes[0].call_id.unwrap()
    };
    let ok = call(&mut n, "pay", vec!["carol".into()]);
    let bad = call(&mut n, "explode", vec![]);
    n.settle();
    let s0 = &n.nodes[0].state;
    let rec = s0.call_record(&ok).unwrap();
    assert_eq!(rec.status, CallStatus::Completed);
    assert!(rec.output.unwrap().contains("paid"));
    assert_eq!(s0.call_record(&bad).unwrap().status, CallStatus::Failed);
    // carol got 30; alice paid 30 (the failed call's 30 came back) and the fees.
    assert_eq!(n.balance("carol"), GENESIS_BALANCE + 30);
    let fees = n.nodes[0].state.account(&acct("alice")).unwrap().nonce as u128;
    assert_eq!(n.balance("alice"), GENESIS_BALANCE - 30 - fees);
    // The contract's history on shard 1 records both calls with their final status.
    let history = n.nodes[1].state.contract_calls(&cid);
    assert_eq!(history.len(), 2);
    let status_of = |id| history.iter().find(|c| c.id == id).unwrap().status;
    assert_eq!(status_of(ok), CallStatus::Completed);
    assert_eq!(status_of(bad), CallStatus::Failed);
    assert_eq!(history[0].from_shard, S0);
    let _ = Hash::ZERO;
}

#[test]
fn closure_layout_and_root_table_plug_in() {
    use crate::{BlockContext, FnLayout, execute_block};
    use std::collections::BTreeMap;
    let mut n = net();
    let t = vec![n.tx("alice", 1, transfer("bob", 7))];
    n.exec(S0, 10, &t, &[]).unwrap();
    flush(&mut n, "erin", S0);
    let layout = FnLayout(
        |a: &vision_types::AccountId| n.layout.place_pub(a.as_str()),
        |c: &ContractId| n.layout.place_pub(c.as_str()),
    );
    let roots: BTreeMap<(ShardId, u64), Hash> = n.roots.0.clone();
    let engine = TestEngine;
    let ctx = BlockContext {
        shard: S1,
        height: 1,
        timestamp_ms: 2_000,
        beacon_height: 0,
        chain_id: chain(),
        config: &n.config,
        layout: &layout,
        final_roots: &roots,
        engine: &engine,
        proposal_targets: &n.layout,
        verified: &crate::NoneVerified,
        migrations: &[],
    };
    let ex = execute_block(&n.nodes[1].state, &ctx, &[], &n.deliverable(S1)).unwrap();
    assert_eq!(ex.applied_receipts, 1);
}

#[test]
fn contract_call_history_is_bounded_and_chronological() {
    use crate::contracts::MAX_CALL_HISTORY;
    let mut n = net();
    let (cid, status) = deploy(&mut n, "bob", S1, "kv");
    assert_eq!(status, TxStatus::Success);
    let total = MAX_CALL_HISTORY + 5;
    let mut ids = Vec::new();
    for _ in 0..total {
        let t = n.tx(
            "alice",
            1,
            Action::CallContract {
                contract: cid.clone(),
                method: "explode".into(),
                args: vec![],
                gas_limit: 100_000,
                amount: Amount(0),
            },
        );
        let ex = n.exec(S0, 10, &[t], &[]).unwrap();
        ids.push(ex.outcomes[0].call_id.unwrap());
    }
    n.settle();
    let history = n.nodes[1].state.contract_calls(&cid);
    assert_eq!(history.len(), MAX_CALL_HISTORY, "history is capped");
    let kept: Vec<_> = history.iter().map(|c| c.id).collect();
    assert_eq!(
        kept,
        ids[total - MAX_CALL_HISTORY..],
        "the newest calls, oldest first"
    );
}
