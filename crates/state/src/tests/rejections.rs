//! Every rejection is explicit, invalidates the block, and leaves state untouched; proposers
//! drop rejectable candidates.

use super::kit::*;
use crate::{BlockError, StateReadExt, TxRejection, TxStatus};
use vision_types::{Action, Amount, ChainId, ContractId, ShardConfig, ShardId, Transaction};

fn net() -> Net {
    Net::new(
        4,
        Layout::new(
            4,
            &[
                ("alice", 0),
                ("erin", 0),
                ("zed", 0),
                ("ghost", 0),
                ("bob", 1),
                ("carol", 2),
                ("dave", 3),
            ],
        ),
        &["alice", "erin", "bob", "carol", "dave"],
        ShardConfig::default(),
    )
}

/// Executes `txs` on shard 0 expecting rejection of tx `index` for `reason`; checks that
/// nothing changed and that a proposer drops exactly that tx.
fn expect_reject(
    net: &mut Net,
    txs: Vec<vision_types::SignedTransaction>,
    index: usize,
    reason: TxRejection,
) {
    let before = net.nodes[0].state.clone();
    let err = net.exec(ShardId(0), 10, &txs, &[]).unwrap_err();
    match err {
        BlockError::Tx {
            index: i,
            tx_id,
            reason: r,
        } => {
            assert_eq!(i, index);
            assert_eq!(tx_id, txs[index].id());
            assert_eq!(r, reason);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(net.nodes[0].state, before, "rejected block changed state");
    let built = net.propose(ShardId(0), 10, txs.clone(), vec![]);
    assert_eq!(built.dropped_txs.len(), 1);
    assert_eq!(built.dropped_txs[0].1, reason);
    assert_eq!(built.txs.len(), txs.len() - 1);
}

#[test]
fn bad_signature() {
    let mut n = net();
    let good = sign("erin", 0, 1, transfer("alice", 5));
    let mut bad = sign("alice", 0, 1, transfer("erin", 5));
    bad.signature.0[10] ^= 1;
    expect_reject(&mut n, vec![good, bad], 1, TxRejection::BadSignature);
}

#[test]
fn key_mismatch() {
    let mut n = net();
    let t = Transaction {
        chain_id: chain(),
        signer: acct("erin"),
        nonce: 0,
        fee: Amount(1),
        action: transfer("alice", 5),
    }
    .sign(&key("alice"));
    expect_reject(&mut n, vec![t], 0, TxRejection::KeyMismatch);
}

#[test]
fn wrong_chain_id() {
    let mut n = net();
    let t = Transaction {
        chain_id: ChainId::new("other-chain").unwrap(),
        signer: acct("alice"),
        nonce: 0,
        fee: Amount(1),
        action: transfer("erin", 5),
    }
    .sign(&key("alice"));
    expect_reject(
        &mut n,
        vec![t],
        0,
        TxRejection::WrongChain {
            expected: chain(),
            got: ChainId::new("other-chain").unwrap(),
        },
    );
}

#[test]
fn replayed_and_gapped_nonce() {
    let mut n = net();
    let t0 = sign("alice", 0, 1, transfer("erin", 5));
    n.exec(ShardId(0), 10, std::slice::from_ref(&t0), &[])
        .unwrap();
    expect_reject(
        &mut n,
        vec![t0.clone()],
        0,
        TxRejection::NonceReplayed {
            expected: 1,
            got: 0,
        },
    );
    // The same tx twice in one block: the second is a replay.
    let t1 = sign("alice", 1, 1, transfer("erin", 5));
    let t2 = sign("alice", 3, 1, transfer("erin", 5));
    expect_reject(
        &mut n,
        vec![t1.clone(), t2],
        1,
        TxRejection::NonceGap {
            expected: 2,
            got: 3,
        },
    );
    let t1b = sign("alice", 2, 1, transfer("erin", 5));
    expect_reject(
        &mut n,
        vec![t1b.clone(), t1b],
        1,
        TxRejection::NonceReplayed {
            expected: 3,
            got: 2,
        },
    );
}

#[test]
fn insufficient_balance() {
    let mut n = net();
    let t = sign("alice", 0, 1, transfer("erin", GENESIS_BALANCE));
    expect_reject(
        &mut n,
        vec![t],
        0,
        TxRejection::InsufficientBalance {
            needed: Amount(GENESIS_BALANCE + 1),
            available: Amount(GENESIS_BALANCE),
        },
    );
}

#[test]
fn amount_overflow() {
    let mut n = net();
    let t = sign("alice", 0, u128::MAX, transfer("erin", 1));
    expect_reject(&mut n, vec![t], 0, TxRejection::Overflow);
}

#[test]
fn unknown_signer_and_unknown_recipient() {
    let mut n = net();
    let t = sign("zed", 0, 1, transfer("alice", 1));
    expect_reject(&mut n, vec![t], 0, TxRejection::UnknownAccount(acct("zed")));
    let t = sign("alice", 0, 1, transfer("ghost", 1));
    expect_reject(
        &mut n,
        vec![t],
        0,
        TxRejection::UnknownAccount(acct("ghost")),
    );
}

#[test]
fn wrong_shard() {
    let mut n = net();
    let t = sign("bob", 0, 1, transfer("alice", 1));
    expect_reject(
        &mut n,
        vec![t],
        0,
        TxRejection::WrongShard {
            this: ShardId(0),
            belongs: ShardId(1),
        },
    );
    let t = sign("alice", 0, 1, Action::Flush { shard: ShardId(2) });
    expect_reject(
        &mut n,
        vec![t],
        0,
        TxRejection::WrongShard {
            this: ShardId(0),
            belongs: ShardId(2),
        },
    );
}

#[test]
fn account_creation_rules() {
    let mut n = net();
    let t = sign(
        "alice",
        0,
        1,
        Action::CreateAccount {
            account: acct("erin"),
            public_key: key("erin").public_key(),
            amount: Amount(5),
        },
    );
    expect_reject(&mut n, vec![t], 0, TxRejection::AccountExists(acct("erin")));
    let reserved = acct(&format!("contract_{}", "a".repeat(32)));
    let t = sign(
        "alice",
        0,
        1,
        Action::CreateAccount {
            account: reserved.clone(),
            public_key: key("x").public_key(),
            amount: Amount(5),
        },
    );
    expect_reject(&mut n, vec![t], 0, TxRejection::BadAccountName(reserved));
    // An implicit account can only be bound to the key it spells.
    let implicit = vision_types::AccountId::implicit(&key("y").public_key());
    let t = sign(
        "alice",
        0,
        1,
        Action::CreateAccount {
            account: implicit.clone(),
            public_key: key("x").public_key(),
            amount: Amount(5),
        },
    );
    expect_reject(&mut n, vec![t], 0, TxRejection::BadAccountName(implicit));
}

#[test]
fn contracts_disabled_is_a_rejection() {
    let mut n = net();
    n.config.smart_contracts_enabled = false;
    let t = sign(
        "alice",
        0,
        1,
        Action::DeployContract {
            name: "x".into(),
            code_hash: "kv".into(),
            initial_state: Default::default(),
            gas_budget: 1_000_000,
        },
    );
    expect_reject(&mut n, vec![t], 0, TxRejection::ContractsDisabled);
}

#[test]
fn local_transfer_create_and_fees() {
    let mut n = net();
    let t1 = n.tx("alice", 3, transfer("erin", 100));
    let t2 = n.tx(
        "alice",
        3,
        Action::CreateAccount {
            account: acct("zed"),
            public_key: key("zed").public_key(),
            amount: Amount(50),
        },
    );
    let t3 = n.tx("zed", 1, transfer("alice", 10));
    let ex = n.exec(ShardId(0), 10, &[t1, t2, t3], &[]).unwrap();
    assert!(ex.outcomes.iter().all(|o| o.status == TxStatus::Success));
    assert_eq!(n.balance("alice"), GENESIS_BALANCE - 100 - 3 - 50 - 3 + 10);
    assert_eq!(n.balance("erin"), GENESIS_BALANCE + 100);
    assert_eq!(n.balance("zed"), 50 - 1 - 10);
    assert_eq!(n.nodes[0].state.counter(crate::keys::Counter::Burned), 7);
    assert!(ex.emitted.is_empty() && ex.closed_batch.is_none());
}

#[test]
fn failed_contract_call_is_included_and_charged() {
    let mut n = net();
    let deploy = sign(
        "alice",
        0,
        2,
        Action::DeployContract {
            name: "kv".into(),
            code_hash: "kv".into(),
            initial_state: [("k".to_string(), "v".to_string())].into(),
            gas_budget: 1_000_000,
        },
    );
    let cid = ContractId::from_deploy(&deploy.id());
    n.layout.fixed.insert(cid.to_string(), ShardId(0));
    let ex = n.exec(ShardId(0), 10, &[deploy], &[]).unwrap();
    assert_eq!(ex.outcomes[0].contract, Some((cid.clone(), ShardId(0))));
    let before = n.nodes[0].state.contract_state(&cid);
    let call = |nonce, method: &str, gas_limit| {
        sign(
            "erin",
            nonce,
            5,
            Action::CallContract {
                contract: cid.clone(),
                method: method.into(),
                args: vec!["k".into(), "w".into()],
                gas_limit,
                amount: Amount(70),
            },
        )
    };
    // `set` by a non-owner fails; out of gas fails: both included and charged the fee only.
    let ex = n
        .exec(
            ShardId(0),
            10,
            &[call(0, "set", 100_000), call(1, "get", 10)],
            &[],
        )
        .unwrap();
    for o in &ex.outcomes {
        assert!(matches!(o.status, TxStatus::Failed { .. }), "{o:?}");
    }
    assert_eq!(n.nodes[0].state.contract_state(&cid), before);
    assert_eq!(n.balance("erin"), GENESIS_BALANCE - 10);
    assert_eq!(n.nodes[0].state.account(&acct("erin")).unwrap().nonce, 2);
    // The owner's `set` succeeds.
    let t = sign(
        "alice",
        1,
        1,
        Action::CallContract {
            contract: cid.clone(),
            method: "set".into(),
            args: vec!["k".into(), "w".into()],
            gas_limit: 100_000,
            amount: Amount::ZERO,
        },
    );
    let ex = n.exec(ShardId(0), 10, &[t], &[]).unwrap();
    assert_eq!(ex.outcomes[0].status, TxStatus::Success);
    assert_eq!(n.nodes[0].state.contract_state(&cid)["k"], "w");
    // Calling a contract that does not exist here is a rejection.
    let ghost = ContractId::from_deploy(&vision_types::Hash::sha256(b"ghost"));
    n.layout.fixed.insert(ghost.to_string(), ShardId(0));
    let t = sign(
        "alice",
        2,
        1,
        Action::CallContract {
            contract: ghost.clone(),
            method: "get".into(),
            args: vec![],
            gas_limit: 100_000,
            amount: Amount::ZERO,
        },
    );
    expect_reject(&mut n, vec![t], 0, TxRejection::UnknownContract(ghost));
}

#[test]
fn bad_height_and_time_regression() {
    let n = net();
    let mut ctx = n.ctx(ShardId(0), 10);
    ctx.height = 5;
    assert_eq!(
        crate::execute_block(&n.nodes[0].state, &ctx, &[], &[]).unwrap_err(),
        BlockError::BadHeight {
            expected: 1,
            got: 5
        }
    );
    let mut ctx = n.ctx(ShardId(0), 0);
    ctx.timestamp_ms = 10;
    assert!(matches!(
        crate::execute_block(&n.nodes[0].state, &ctx, &[], &[]).unwrap_err(),
        BlockError::TimeRegression { .. }
    ));
}
