//! Account migration: beacon-scheduled account moves between shards. Moving out removes the
//! account and sends it in a `Migrate` receipt; moving in marks it awaiting (its transactions
//! wait) until the receipt arrives; receipts for it follow it to its new shard.

use super::kit::*;
use crate::{
    BlockError, Event, MAX_MIGRATE_RECEIPT_BYTES, MAX_MIGRATIONS_PER_BLOCK, MemState, Migration,
    StateReadExt, StateView, TxRejection, WriteSet, keys,
};
use commonware_codec::EncodeSize;
use vision_types::{
    AccountId, Amount, Hash, Receipt, ReceiptKind, ShardConfig, ShardId, limits,
    tx::PRIORITY_IMMEDIATE,
};

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);
const S2: ShardId = ShardId(2);

fn net() -> Net {
    Net::new(
        3,
        Layout::new(
            3,
            &[
                ("alice", 0),
                ("erin", 0),
                ("ghost", 0),
                ("bob", 1),
                ("carol", 2),
            ],
        ),
        &["alice", "erin", "bob", "carol"],
        ShardConfig::default(),
    )
}

/// Executes a block on `shard` delivering whatever is deliverable.
fn step(
    n: &mut Net,
    shard: ShardId,
    txs: &[vision_types::SignedTransaction],
) -> crate::BlockExecution {
    let inc = n.deliverable(shard);
    n.exec(shard, 10, txs, &inc).unwrap()
}

fn nonce_on(n: &Net, shard: ShardId, name: &str) -> u64 {
    n.nodes[shard.index()]
        .state
        .account(&acct(name))
        .unwrap()
        .nonce
}

fn migrating(n: &Net, shard: ShardId, name: &str) -> Option<ShardId> {
    n.nodes[shard.index()].state.migrating_from(&acct(name))
}

/// alice (shard 0) spends nonce 0, then moves to shard 1; both shards see the move.
fn moved_alice() -> (Net, u128) {
    let mut n = net();
    let t = sign("alice", 0, 2, transfer("erin", 100));
    step(&mut n, S0, &[t]);
    let balance = GENESIS_BALANCE - 102;
    n.schedule_move("alice", 1);
    n.advance_all();
    (n, balance)
}

#[test]
fn move_out_removes_the_account_and_emits_one_migrate() {
    let (mut n, balance) = moved_alice();
    let ex = step(&mut n, S0, &[]);
    assert!(n.nodes[0].state.account(&acct("alice")).is_none());
    assert_eq!(ex.emitted.len(), 1);
    let r = &ex.emitted[0];
    assert_eq!(
        r.kind,
        ReceiptKind::Migrate {
            public_key: Some(key("alice").public_key()),
            nonce: 1
        }
    );
    assert_eq!((r.src, r.dst, r.amount), (S0, S1, Amount(balance)));
    assert_eq!(
        (r.sender.clone(), r.recipient.clone()),
        (acct("alice"), acct("alice"))
    );
    assert_eq!(r.priority, PRIORITY_IMMEDIATE);
    assert!(
        ex.closed_batch.is_some(),
        "priority 255 closes the batch at once"
    );
    assert!(ex.events.contains(&Event::AccountMigratedOut {
        account: acct("alice"),
        to: S1,
        amount: Amount(balance),
    }));
    // alice no longer transacts on shard 0.
    let t = sign("alice", 1, 1, transfer("erin", 1));
    let err = n.exec(S0, 10, &[t], &[]).unwrap_err();
    assert!(matches!(
        err,
        BlockError::Tx {
            reason: TxRejection::WrongShard {
                this: S0,
                belongs: S1
            },
            ..
        }
    ));
}

#[test]
fn move_out_is_not_stopped_by_a_byte_full_batch() {
    let (n, balance) = moved_alice();
    // A pending batch just under half the byte cap (it stays open).
    let mut pending: u64 = 0;
    let mut i = 0u32;
    let mut state = n.nodes[0].state.clone();
    while pending + 300 < limits::MAX_BATCH_RECEIPT_BYTES as u64 / 2 {
        let r = Receipt {
            src: S0,
            dst: S2,
            seq: i as u64,
            kind: ReceiptKind::Refund {
                reason: "x".repeat(100),
            },
            amount: Amount::ZERO,
            priority: 0,
            origin_tx: Hash::ZERO,
            sender: acct("erin"),
            recipient: acct("carol"),
        };
        pending += r.encode_size() as u64;
        state.insert(keys::pending_receipt(i), crate::model::enc(&r));
        i += 1;
    }
    state.insert(
        keys::pending_meta(),
        crate::model::enc(&crate::model::PendingMeta {
            count: i,
            first_receipt_ms: n.nodes[0].time_ms,
        }),
    );
    state.insert(keys::pending_bytes(), crate::model::enc(&pending));
    state.insert(keys::outbox(S2), crate::model::enc(&(i as u64)));
    let ctx = n.ctx(S0, 10);
    let ex = crate::execute_block(&state, &ctx, &[], &[]).unwrap();
    assert!(
        ex.emitted
            .iter()
            .any(|r| matches!(r.kind, ReceiptKind::Migrate { .. }) && r.amount == Amount(balance))
    );
    // The bound the exemption relies on.
    let long = AccountId::new("a".repeat(limits::MAX_ACCOUNT_ID_BYTES)).unwrap();
    let r = Receipt {
        src: S0,
        dst: S1,
        seq: u64::MAX,
        kind: ReceiptKind::Migrate {
            public_key: Some(key("alice").public_key()),
            nonce: u64::MAX,
        },
        amount: Amount(u128::MAX),
        priority: PRIORITY_IMMEDIATE,
        origin_tx: Hash::ZERO,
        sender: long.clone(),
        recipient: long,
    };
    assert!(r.encode_size() <= MAX_MIGRATE_RECEIPT_BYTES);
}

#[test]
fn move_in_marks_awaiting_and_rejects_the_accounts_transactions() {
    let (mut n, _) = moved_alice();
    let ex = step(&mut n, S1, &[]);
    assert!(ex.events.contains(&Event::AccountMigrating {
        account: acct("alice"),
        from: S0,
    }));
    assert_eq!(migrating(&n, S1, "alice"), Some(S0));
    // An old transaction (nonce 0) and a fresh one are both refused while awaiting.
    for nonce in [0, 1] {
        let t = sign("alice", nonce, 1, transfer("bob", 1));
        let err = n.exec(S1, 10, std::slice::from_ref(&t), &[]).unwrap_err();
        let BlockError::Tx { reason, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            reason,
            TxRejection::Migrating {
                account: acct("alice"),
                from: S0
            }
        );
        assert_eq!(
            reason.to_string(),
            "account alice is moving to this shard from shard 0; retry shortly"
        );
        // A proposer drops it with the same reason.
        let built = n.propose(S1, 10, vec![t], vec![]);
        assert!(built.txs.is_empty());
        assert_eq!(built.dropped_txs[0].1, reason);
    }
}

#[test]
fn migrate_arrival_restores_the_account_and_its_next_nonce_works() {
    let (mut n, balance) = moved_alice();
    step(&mut n, S1, &[]); // awaiting
    step(&mut n, S0, &[]); // moves out
    let ex = step(&mut n, S1, &[]);
    assert_eq!(ex.applied_receipts, 1);
    assert!(ex.events.contains(&Event::AccountMigratedIn {
        account: acct("alice"),
        from: S0,
        amount: Amount(balance),
    }));
    let a = n.nodes[1].state.account(&acct("alice")).unwrap();
    assert_eq!(a.balance, Amount(balance));
    assert_eq!(a.nonce, 1);
    assert_eq!(a.public_key, key("alice").public_key());
    assert_eq!(migrating(&n, S1, "alice"), None);
    // The used nonce stays used; the next one works.
    let old = sign("alice", 0, 1, transfer("bob", 1));
    assert!(matches!(
        n.exec(S1, 10, &[old], &[]).unwrap_err(),
        BlockError::Tx {
            reason: TxRejection::NonceReplayed {
                expected: 1,
                got: 0
            },
            ..
        }
    ));
    let t = sign("alice", 1, 3, transfer("bob", 50));
    step(&mut n, S1, &[t]);
    assert_eq!(n.balance("alice"), balance - 53);
    assert_eq!(n.balance("bob"), GENESIS_BALANCE + 50);
    assert_eq!(nonce_on(&n, S1, "alice"), 2);
    assert_eq!(n.holders("alice"), vec![S1]);
}

#[test]
fn migrate_arriving_before_the_move_in_is_seen_is_applied_once_the_shard_catches_up() {
    // Shard 1 lags the beacon: the Migrate is not deliverable to it until it catches up.
    let (mut n, balance) = moved_alice();
    n.nodes[1].next = None;
    step(&mut n, S0, &[]);
    let ex = step(&mut n, S1, &[]);
    assert_eq!(
        ex.applied_receipts, 0,
        "crosslink not final at shard 1's beacon height"
    );
    n.advance_beacon(S1, 1);
    let ex = step(&mut n, S1, &[]);
    assert_eq!(ex.applied_receipts, 1);
    assert_eq!(n.balance("alice"), balance);
    assert_eq!(migrating(&n, S1, "alice"), None);
}

#[test]
fn transfer_sent_to_the_old_shard_is_forwarded_and_credited_not_refunded() {
    let (mut n, balance) = moved_alice();
    // carol's shard has not seen the move: it sends to shard 0.
    n.nodes[2].next = None;
    let t = sign(
        "carol",
        0,
        1,
        vision_types::Action::Transfer {
            to: acct("alice"),
            amount: Amount(500),
            priority: PRIORITY_IMMEDIATE,
        },
    );
    let ex = step(&mut n, S2, &[t]);
    assert_eq!(ex.emitted[0].dst, S0);
    let incoming = ex.emitted[0].clone();
    step(&mut n, S1, &[]);
    let ex = step(&mut n, S0, &[]); // moves alice out, then receives carol's transfer
    assert_eq!(ex.applied_receipts, 1);
    let fwd = ex
        .emitted
        .iter()
        .find(|r| r.kind == ReceiptKind::Transfer)
        .expect("forwarded");
    assert_eq!(fwd.dst, S1);
    assert_eq!(
        (
            &fwd.sender,
            &fwd.recipient,
            fwd.amount,
            fwd.origin_tx,
            fwd.priority
        ),
        (
            &incoming.sender,
            &incoming.recipient,
            incoming.amount,
            incoming.origin_tx,
            incoming.priority
        )
    );
    assert!(ex.events.contains(&Event::ReceiptForwarded {
        id: incoming.id(),
        forwarded_as: fwd.id(),
        to: S1,
    }));
    n.settle();
    assert_eq!(n.balance("alice"), balance + 500);
    assert_eq!(n.balance("carol"), GENESIS_BALANCE - 501);
    assert!(
        !n.applied.keys().any(|id| id.starts_with("receipt_1_2_")),
        "nothing went back to carol"
    );
}

#[test]
fn chain_of_moves_before_the_migrate_arrives_ends_with_the_account_once_on_the_last_shard() {
    let mut n = net();
    let t = sign("alice", 0, 2, transfer("erin", 100));
    step(&mut n, S0, &[t]);
    let balance = GENESIS_BALANCE - 102;
    let b1 = n.schedule_move("alice", 1);
    let b2 = n.schedule_move("alice", 2);
    // Shard 0 moves alice out at b1; shard 1 sees her arrive, then leave before her
    // Migrate arrives; shard 2 jumps straight to b2.
    n.advance_beacon(S0, b1);
    step(&mut n, S0, &[]);
    n.advance_beacon(S1, b1);
    n.exec(S1, 10, &[], &[]).unwrap(); // the Migrate is not delivered yet
    assert_eq!(migrating(&n, S1, "alice"), Some(S0));
    n.advance_beacon(S1, b2);
    let ex = step(&mut n, S1, &[]);
    // Awaiting: nothing of its own to send; the only receipt is its Migrate passed on.
    assert_eq!(ex.emitted.len(), 1);
    assert!(matches!(
        ex.emitted[0].kind,
        ReceiptKind::Migrate { nonce: 1, .. }
    ));
    assert_eq!(
        (ex.emitted[0].dst, ex.emitted[0].amount),
        (S2, Amount(balance))
    );
    assert_eq!(
        ex.applied_receipts, 1,
        "the Migrate arrives after the move out"
    );
    assert!(
        ex.events
            .iter()
            .any(|e| matches!(e, Event::ReceiptForwarded { to: S2, .. }))
    );
    assert_eq!(migrating(&n, S1, "alice"), None);
    n.advance_beacon(S2, b2);
    n.exec(S2, 10, &[], &[]).unwrap();
    assert_eq!(migrating(&n, S2, "alice"), Some(S0));
    // Still awaiting: alice's transactions wait.
    let t = sign("alice", 1, 1, transfer("carol", 10));
    assert!(matches!(
        n.exec(S2, 10, &[t], &[]).unwrap_err(),
        BlockError::Tx {
            reason: TxRejection::Migrating { from: S0, .. },
            ..
        }
    ));
    n.advance_beacon(S0, b2);
    n.settle();
    assert_eq!(n.holders("alice"), vec![S2]);
    let a = n.nodes[2].state.account(&acct("alice")).unwrap();
    assert_eq!((a.balance, a.nonce), (Amount(balance), 1));
    for s in [S0, S1, S2] {
        assert_eq!(migrating(&n, s, "alice"), None);
    }
    let t = sign("alice", 1, 1, transfer("carol", 10));
    step(&mut n, S2, &[t]);
    assert_eq!(n.balance("carol"), GENESIS_BALANCE + 10);
}

#[test]
fn coin_credited_to_an_awaiting_implicit_account_follows_it_when_it_moves_on() {
    let implicit = hex::encode(key("imp").public_key().0);
    let mut n = Net::new(
        3,
        Layout::new(
            3,
            &[
                ("alice", 0),
                ("erin", 0),
                (implicit.as_str(), 0),
                ("bob", 1),
            ],
        ),
        &["alice", "erin", "bob"],
        ShardConfig::default(),
    );
    // Created on shard 0 by a first credit.
    step(
        &mut n,
        S0,
        &[sign("alice", 0, 1, transfer(&implicit, 1_000))],
    );
    let b1 = n.schedule_move(&implicit, 1);
    let b2 = n.schedule_move(&implicit, 2);
    n.advance_beacon(S0, b1);
    step(&mut n, S0, &[]);
    n.advance_beacon(S1, b1);
    // bob pays the awaiting account on shard 1 (its Migrate not delivered yet): credited,
    // creating the implicit account.
    let t = sign("bob", 0, 1, transfer(&implicit, 70));
    n.exec(S1, 10, &[t], &[]).unwrap();
    assert_eq!(migrating(&n, S1, &implicit), Some(S0));
    assert_eq!(
        n.nodes[1].state.account(&acct(&implicit)).unwrap().balance,
        Amount(70)
    );
    n.advance_beacon(S1, b2);
    let ex = n.exec(S1, 10, &[], &[]).unwrap();
    assert!(n.nodes[1].state.account(&acct(&implicit)).is_none());
    assert_eq!(migrating(&n, S1, &implicit), None);
    assert!(ex.emitted.iter().any(|r| r.kind
        == ReceiptKind::Refund {
            reason: crate::MOVED_ON_REASON.into()
        }
        && r.amount == Amount(70)));
    n.advance_all();
    n.settle();
    assert_eq!(n.holders(&implicit), vec![S2]);
    let a = n.nodes[2].state.account(&acct(&implicit)).unwrap();
    assert_eq!(a.balance, Amount(1_070));
    assert_eq!(migrating(&n, S2, &implicit), None);
}

#[test]
fn move_of_a_nonexistent_account_still_clears_the_awaiting_mark() {
    let mut n = net();
    n.schedule_move("ghost", 1);
    n.advance_all();
    step(&mut n, S1, &[]);
    assert_eq!(migrating(&n, S1, "ghost"), Some(S0));
    let ex = step(&mut n, S0, &[]);
    assert_eq!(ex.emitted.len(), 1);
    assert_eq!(
        ex.emitted[0].kind,
        ReceiptKind::Migrate {
            public_key: None,
            nonce: 0
        }
    );
    assert_eq!(ex.emitted[0].amount, Amount::ZERO);
    step(&mut n, S1, &[]);
    assert_eq!(migrating(&n, S1, "ghost"), None);
    assert!(n.holders("ghost").is_empty());
    // Now an ordinary unknown account, not a moving one.
    let t = sign("ghost", 0, 1, transfer("bob", 1));
    assert!(matches!(
        n.exec(S1, 10, &[t], &[]).unwrap_err(),
        BlockError::Tx {
            reason: TxRejection::UnknownAccount(_),
            ..
        }
    ));
}

#[test]
fn create_account_for_an_awaiting_account_is_refunded() {
    let mut n = net();
    n.schedule_move("ghost", 1);
    n.advance_beacon(S1, 1);
    n.advance_beacon(S2, 1);
    step(&mut n, S1, &[]);
    let create = vision_types::Action::CreateAccount {
        account: acct("ghost"),
        public_key: key("ghost").public_key(),
        amount: Amount(10),
    };
    // In-shard: refused with the migrating reason.
    let t = sign("bob", 0, 1, create.clone());
    assert!(matches!(
        n.exec(S1, 10, &[t], &[]).unwrap_err(),
        BlockError::Tx {
            reason: TxRejection::Migrating { from: S0, .. },
            ..
        }
    ));
    // Cross-shard: refunded to carol.
    let t = sign("carol", 0, 1, create);
    step(&mut n, S2, &[t]);
    let f = sign("carol", 1, 1, vision_types::Action::Flush { shard: S2 });
    step(&mut n, S2, &[f]);
    let ex = step(&mut n, S1, &[]);
    assert!(
        ex.emitted
            .iter()
            .any(|r| matches!(r.kind, ReceiptKind::Refund { .. }))
    );
    assert!(n.nodes[1].state.account(&acct("ghost")).is_none());
    n.advance_all();
    n.settle();
    assert_eq!(n.balance("carol"), GENESIS_BALANCE - 2);
}

#[test]
fn the_awaiting_mark_is_part_of_the_state_root() {
    use crate::{QmdbStore, ShardStore};
    use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
    let (n, _) = moved_alice();
    let base = n.nodes[1].state.clone();
    // The same block with and without the move in.
    let ctx = n.ctx(S1, 10);
    let with = crate::execute_block(&base, &ctx, &[], &[]).unwrap();
    let mut ctx = n.ctx(S1, 10);
    ctx.migrations = &[];
    let without = crate::execute_block(&base, &ctx, &[], &[]).unwrap();
    let (mut a, mut b) = (base.clone(), base);
    a.apply(&with.writes);
    b.apply(&without.writes);
    let differing: Vec<&Vec<u8>> = a
        .entries()
        .keys()
        .chain(b.entries().keys())
        .filter(|k| a.get(k) != b.get(k))
        .collect();
    assert_eq!(differing, vec![&keys::migrating(&acct("alice"))]);
    let all = |s: &MemState| -> WriteSet {
        s.entries()
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect()
    };
    let (wa, wb) = (all(&a), all(&b));
    deterministic::Runner::seeded(1).start(|ctx| async move {
        let s = QmdbStore::open(ctx.child("s"), "awaiting-root")
            .await
            .unwrap();
        let ra = s.speculative_root(&wa).await.unwrap();
        let rb = s.speculative_root(&wb).await.unwrap();
        assert_ne!(ra, rb);
    });
}

#[test]
fn invalid_migration_lists_are_rejected() {
    let (n, _) = moved_alice();
    let good = Migration {
        account: acct("alice"),
        from: S0,
        to: S1,
    };
    let mut cases: Vec<Vec<Migration>> = vec![
        vec![good.clone(), good.clone()],
        vec![Migration {
            to: S2,
            ..good.clone()
        }],
        vec![Migration {
            from: S1,
            ..good.clone()
        }],
    ];
    let too_many: Vec<Migration> = (0..=MAX_MIGRATIONS_PER_BLOCK)
        .map(|i| Migration {
            account: acct(&format!("acct{i:03}")),
            from: S2,
            to: n.layout.place_pub(&format!("acct{i:03}")),
        })
        .collect();
    cases.push(too_many);
    for m in cases {
        let mut ctx = n.ctx(S0, 10);
        ctx.migrations = &m;
        let err = crate::execute_block(&n.nodes[0].state, &ctx, &[], &[]).unwrap_err();
        assert!(matches!(err, BlockError::BadMigrations(_)), "{err:?}");
        let err = crate::build_block(
            &n.nodes[0].state,
            &ctx,
            vec![],
            vec![],
            crate::BlockLimits {
                max_txs: 10,
                max_body_bytes: 1 << 20,
            },
        )
        .unwrap_err();
        assert!(matches!(err, BlockError::BadMigrations(_)), "{err:?}");
    }
}

#[test]
fn a_refund_reaching_the_new_shard_before_the_account_is_held_then_credited() {
    let mut n = Net::new(
        3,
        Layout::new(3, &[("alice", 0), ("erin", 0), ("bob", 1), ("nobody", 2)]),
        &["alice", "erin", "bob"],
        ShardConfig::default(),
    );
    let t = sign(
        "alice",
        0,
        2,
        vision_types::Action::Transfer {
            to: acct("nobody"),
            amount: Amount(300),
            priority: PRIORITY_IMMEDIATE,
        },
    );
    step(&mut n, S0, &[t]);
    let b1 = n.schedule_move("alice", 1);
    let b2 = n.schedule_move("alice", 2);
    n.advance_beacon(S0, b1);
    step(&mut n, S0, &[]); // Migrate to shard 1
    let ex = step(&mut n, S2, &[]); // nobody is unknown: refund to shard 0
    assert!(
        ex.emitted
            .iter()
            .any(|r| matches!(r.kind, ReceiptKind::Refund { .. }))
    );
    n.advance_beacon(S0, b2);
    let ex = step(&mut n, S0, &[]); // the refund follows alice straight to shard 2
    assert!(
        ex.events
            .iter()
            .any(|e| matches!(e, Event::ReceiptForwarded { to: S2, .. }))
    );
    n.advance_beacon(S2, b2);
    step(&mut n, S2, &[]); // awaiting; the refund arrives first: held
    let mark = n.nodes[2].state.migrating_mark(&acct("alice")).unwrap();
    assert_eq!((mark.from, mark.held), (S0, Amount(300)));
    assert!(n.holders("alice").is_empty());
    assert_eq!(n.nodes[2].state.counter(crate::keys::Counter::Unclaimed), 0);
    n.advance_beacon(S1, b1);
    n.exec(S1, 10, &[], &[]).unwrap();
    n.advance_all();
    n.settle();
    assert_eq!(n.holders("alice"), vec![S2]);
    assert_eq!(n.balance("alice"), GENESIS_BALANCE - 2);
    assert_eq!(n.nodes[2].state.migrating_mark(&acct("alice")), None);
}
