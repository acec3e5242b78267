//! The batch-close rules, the crosslink content and the batch status.

use super::kit::*;
use crate::{CloseReason, StateReadExt, batch_status};
use vision_types::{Action, Amount, Hash, ShardConfig, ShardId, tx::PRIORITY_IMMEDIATE};

fn net(config: ShardConfig) -> Net {
    Net::new(
        4,
        Layout::new(
            4,
            &[
                ("alice", 0),
                ("erin", 0),
                ("bob", 1),
                ("carol", 2),
                ("dave", 3),
            ],
        ),
        &["alice", "erin", "bob", "carol", "dave"],
        config,
    )
}

fn cfg() -> ShardConfig {
    ShardConfig {
        batch_size: 3,
        batch_timeout_ms: 500,
        crosslink_frequency: 1_000,
        ..ShardConfig::default()
    }
}

const S0: ShardId = ShardId(0);

#[test]
fn closes_when_full() {
    let mut n = net(cfg());
    let t = vec![
        n.tx("alice", 1, transfer("bob", 1)),
        n.tx("alice", 1, transfer("carol", 1)),
    ];
    let ex = n.exec(S0, 10, &t, &[]).unwrap();
    assert!(ex.closed_batch.is_none());
    let st = batch_status(&n.nodes[0].state, &n.config, n.nodes[0].time_ms + 100);
    assert_eq!(
        (st.pending_txs, st.batch_age_ms, st.is_ready),
        (2, 100, false)
    );
    let t = vec![n.tx("alice", 1, transfer("bob", 2))];
    let ex = n.exec(S0, 10, &t, &[]).unwrap();
    let b = ex.closed_batch.clone().unwrap();
    assert_eq!(b.reasons, vec![CloseReason::Full]);
    assert_eq!(b.id, "crosslink_0_2_batch");
    assert_eq!(b.receipt_count(), 3);
    // Destinations ascending, seq ranges per destination from 0.
    let ranges: Vec<_> = b
        .destinations
        .iter()
        .map(|d| (d.dst, d.first_seq, d.count))
        .collect();
    assert_eq!(ranges, vec![(ShardId(1), 0, 2), (ShardId(2), 0, 1)]);
    assert_eq!(b.batched_txs.len(), 3);
    assert!(b.check());
    assert_eq!(ex.receipts_root(), b.receipts_root);
    assert!(n.nodes[0].state.pending_receipts().is_empty());
    // The next batch continues the (0, 1) stream at seq 2.
    let t: Vec<_> = (0..3)
        .map(|_| n.tx("alice", 1, transfer("bob", 1)))
        .collect();
    let b = n.exec(S0, 10, &t, &[]).unwrap().closed_batch.unwrap();
    assert_eq!(
        (b.destinations[0].first_seq, b.destinations[0].count),
        (2, 3)
    );
}

#[test]
fn closes_on_block_time_timeout() {
    let mut n = net(cfg());
    let t = vec![n.tx("alice", 1, transfer("bob", 1))];
    assert!(n.exec(S0, 10, &t, &[]).unwrap().closed_batch.is_none());
    let first = n.nodes[0].time_ms;
    assert!(n.exec(S0, 499, &[], &[]).unwrap().closed_batch.is_none());
    let st = batch_status(&n.nodes[0].state, &n.config, first + 500);
    assert!(st.is_ready && st.batch_age_ms == 500);
    let b = n.exec(S0, 1, &[], &[]).unwrap().closed_batch.unwrap();
    assert_eq!(b.reasons, vec![CloseReason::Timeout]);
}

#[test]
fn closes_on_priority_255() {
    let mut n = net(cfg());
    let t = vec![n.tx(
        "alice",
        1,
        Action::Transfer {
            to: acct("bob"),
            amount: Amount(1),
            priority: PRIORITY_IMMEDIATE,
        },
    )];
    let b = n.exec(S0, 10, &t, &[]).unwrap().closed_batch.unwrap();
    assert_eq!(b.reasons, vec![CloseReason::Priority]);
    // Priority 254 does not close.
    let t = vec![n.tx(
        "alice",
        1,
        Action::Transfer {
            to: acct("bob"),
            amount: Amount(1),
            priority: 254,
        },
    )];
    assert!(n.exec(S0, 10, &t, &[]).unwrap().closed_batch.is_none());
}

#[test]
fn closes_on_flush_transaction() {
    let mut n = net(cfg());
    let t = vec![n.tx("alice", 1, transfer("bob", 1))];
    assert!(n.exec(S0, 10, &t, &[]).unwrap().closed_batch.is_none());
    let f = vec![n.tx("erin", 1, Action::Flush { shard: S0 })];
    let b = n.exec(S0, 10, &f, &[]).unwrap().closed_batch.unwrap();
    assert_eq!(b.reasons, vec![CloseReason::Flush]);
    assert_eq!(b.receipt_count(), 1);
    // A flush of an empty batch still makes a crosslink, with nothing in it.
    let f = vec![n.tx("erin", 1, Action::Flush { shard: S0 })];
    let b = n.exec(S0, 10, &f, &[]).unwrap().closed_batch.unwrap();
    assert!(b.destinations.is_empty() && b.receipts_root == Hash::ZERO);
}

#[test]
fn sync_mode_closes_every_block_with_receipts() {
    let mut n = net(ShardConfig {
        async_crosslinks_enabled: false,
        ..cfg()
    });
    let t = vec![n.tx("alice", 1, transfer("bob", 1))];
    let b = n.exec(S0, 10, &t, &[]).unwrap().closed_batch.unwrap();
    assert_eq!(b.reasons, vec![CloseReason::Sync]);
    assert!(n.exec(S0, 10, &[], &[]).unwrap().closed_batch.is_none());
}

#[test]
fn periodic_crosslink_without_receipts() {
    let mut n = net(ShardConfig {
        crosslink_frequency: 3,
        ..cfg()
    });
    assert!(n.exec(S0, 10, &[], &[]).unwrap().closed_batch.is_none());
    assert!(n.exec(S0, 10, &[], &[]).unwrap().closed_batch.is_none());
    let b = n.exec(S0, 10, &[], &[]).unwrap().closed_batch.unwrap();
    assert_eq!(b.reasons, vec![CloseReason::Periodic]);
    assert_eq!(b.id, "crosslink_0_3_batch");
    assert_eq!(
        (b.receipts_root, b.batch_txs_root),
        (Hash::ZERO, Hash::ZERO)
    );
}

#[test]
fn cross_shard_call_goes_pending_then_executing() {
    let mut n = net(cfg());
    let cid = vision_types::ContractId::from_deploy(&Hash::sha256(b"somewhere"));
    n.layout.fixed.insert(cid.to_string(), ShardId(1));
    let t = vec![n.tx(
        "alice",
        1,
        Action::CallContract {
            contract: cid,
            method: "get".into(),
            args: vec!["k".into()],
            gas_limit: 100_000,
            amount: Amount::ZERO,
        },
    )];
    let ex = n.exec(S0, 10, &t, &[]).unwrap();
    let call = ex.outcomes[0].call_id.unwrap();
    assert!(call.to_string().starts_with("xscall_"));
    let rec = n.nodes[0].state.call_record(&call).unwrap();
    assert_eq!(rec.status, crate::CallStatus::Pending);
    let f = vec![n.tx("alice", 1, Action::Flush { shard: S0 })];
    n.exec(S0, 10, &f, &[]).unwrap();
    let rec = n.nodes[0].state.call_record(&call).unwrap();
    assert_eq!(rec.status, crate::CallStatus::Executing);
}
