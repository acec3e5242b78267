//! PRSM proposals: routing to target shards by receipt, each target's vote, the PRSM events
//! the beacon decides coordinated proposals from (the kit feeds them to the beacon's table as
//! batches close), the single-target rule on the coordinating shard, and the timeouts.

use super::kit::*;
use crate::BlockLimits;
use crate::{
    MAX_PENDING_PROPOSALS, ProposalRecord, ProposalStatus, StateReadExt, TxRejection, TxStatus,
    VALIDATE_TRANSACTION,
};
use vision_sharding::{GlobalOutcome, GlobalProposal};
use vision_types::{Action, Hash, ShardConfig, ShardId, prsm::GLOBAL_COORDINATION_TIMEOUT_MS};

fn net() -> Net {
    Net::new(
        4,
        Layout::new(
            4,
            &[
                ("alice", 0),
                ("bob", 1),
                ("carol", 2),
                ("dave", 3),
                ("erin", 0),
                // Single-target proposals go where the layout places their action.
                ("local_check", 0),
                (VALIDATE_TRANSACTION, 2),
                ("anything", 2),
            ],
        ),
        &["alice", "bob", "carol", "dave", "erin"],
        ShardConfig::default(),
    )
}

const S0: ShardId = ShardId(0);

fn proposal(action: &str, data: &str, all: bool, coordination: bool) -> Action {
    Action::Proposal {
        action: action.into(),
        data: data.into(),
        affects_multiple_shards: all,
        coordination_required: coordination,
    }
}

fn record(n: &Net, id: &Hash) -> ProposalRecord {
    n.nodes[0]
        .state
        .proposal(id)
        .expect("alice's shard coordinates")
}

/// The beacon's record of a coordinated proposal.
fn global(n: &Net, id: &Hash) -> GlobalProposal {
    n.prsm
        .get(id)
        .expect("the beacon took the submission")
        .clone()
}

/// A signed transfer of `signer`'s as proposal data (JSON), with the given nonce.
fn tx_data(signer: &str, nonce: u64, amount: u128) -> String {
    serde_json::to_string(&sign(signer, nonce, 1, transfer("alice", amount))).unwrap()
}

#[test]
fn single_target_on_the_coordinating_shard_decides_in_the_same_block() {
    let mut n = net();
    let t = vec![n.tx("alice", 1, proposal("local_check", "", false, false))];
    let ex = n.exec(S0, 10, &t, &[]).unwrap();
    assert_eq!(ex.outcomes[0].status, TxStatus::Success);
    assert!(ex.emitted.is_empty(), "no receipt for a local target");
    let r = record(&n, &t[0].id());
    assert_eq!(r.targets, vec![S0]);
    assert_eq!(r.status, ProposalStatus::Achieved);
    assert_eq!(r.decided_height, Some(r.submitted_height));
    assert!(n.nodes[0].state.pending_proposals().is_empty());
    assert_eq!(
        n.nodes[0].state.proposal_vote(&t[0].id()).unwrap().shard,
        S0
    );
}

#[test]
fn every_shard_votes_and_the_beacon_applies_the_67_percent_rule() {
    let mut n = net();
    // Shards 0 and 1 hold valid signed transactions of their own accounts; dave's (shard 3)
    // uses a nonce he has not reached yet, which is fine; bob's is valid too. Then one
    // proposal per outcome.
    let ok = n.tx(
        "alice",
        1,
        proposal(VALIDATE_TRANSACTION, &tx_data("bob", 0, 5), true, true),
    );
    let id = ok.id();
    let ex = n.exec(S0, 10, &[ok], &[]).unwrap();
    assert_eq!(ex.outcomes[0].status, TxStatus::CrossShardPending);
    assert_eq!(ex.emitted.len(), 3, "one request to each other shard");
    let r = record(&n, &id);
    assert_eq!(r.targets.len(), 4);
    assert_eq!(r.votes.len(), 1, "shard 0 voted at once");
    assert_eq!(r.status, ProposalStatus::Pending);
    assert_eq!(
        n.nodes[0].state.pending_proposals(),
        vec![(r.deadline_ms, id)]
    );
    let out = n.nodes[0].state.prsm_outbox();
    assert_eq!(out.events.len(), 2, "the submission and shard 0's own vote");
    n.settle();
    let r = record(&n, &id);
    assert_eq!(r.votes.len(), 4, "every target voted once");
    assert!(r.votes.iter().all(|v| v.accepted), "{:?}", r.votes);
    // The coordinating shard only collects votes: the beacon decides.
    assert_eq!(r.status, ProposalStatus::Pending);
    assert!(n.nodes[0].state.pending_proposals().is_empty());
    let g = global(&n, &id);
    assert_eq!(g.outcome, Some(GlobalOutcome::Achieved));
    assert_eq!(g.coordinator, S0);
    assert_eq!(g.targets, r.targets);
    // Decided at the third yes (3 of 4 = 75% >= 67%); the fourth may come after.
    assert!(g.votes.len() >= 3 && g.votes.iter().all(|v| v.accepted));
    for s in 1..4 {
        let v = n.nodes[s]
            .state
            .proposal_vote(&id)
            .expect("each target records its vote");
        assert!(v.accepted);
    }
}

#[test]
fn rejections_by_more_than_a_third_of_targets_fail_the_proposal() {
    let mut n = net();
    // Bob's (shard 1) transaction overdraws: shard 1 rejects, the others cannot see bob's
    // account and only check the signature: 3 of 4 accept (75% >= 67%): achieved.
    let over = n.tx(
        "alice",
        1,
        proposal(
            VALIDATE_TRANSACTION,
            &tx_data("bob", 0, u64::MAX as u128 * 1000),
            true,
            false,
        ),
    );
    let over_id = over.id();
    // Garbage data: every shard rejects: failed as soon as 2 rejections make 67% impossible.
    let junk = n.tx(
        "alice",
        1,
        proposal(VALIDATE_TRANSACTION, "{not json", true, false),
    );
    let junk_id = junk.id();
    n.exec(S0, 10, &[over, junk], &[]).unwrap();
    n.settle();
    let r = record(&n, &over_id);
    let g = global(&n, &over_id);
    assert_eq!(g.outcome, Some(GlobalOutcome::Achieved), "{g:?}");
    let bob_vote = r.votes.iter().find(|v| v.shard == ShardId(1)).unwrap();
    assert!(!bob_vote.accepted);
    assert!(
        bob_vote
            .reason
            .as_deref()
            .unwrap()
            .contains("insufficient balance"),
        "{bob_vote:?}"
    );
    let g = global(&n, &junk_id);
    assert_eq!(g.outcome, Some(GlobalOutcome::Rejected));
    assert!(g.failure().unwrap().contains("rejected"), "{g:?}");
    // Decided at the second rejection; the coordinating shard still collects every vote.
    let r = record(&n, &junk_id);
    assert_eq!(r.votes.len(), 4);
    assert!(r.votes.iter().all(|v| !v.accepted));
    assert!(r.votes.iter().all(|v| v.reason.is_some()));
}

#[test]
fn a_single_remote_target_decides_alone_unless_coordination_is_required() {
    let mut n = net();
    // A tampered transaction (another key's signature): shard 2 rejects.
    let mut forged = sign("carol", 0, 1, transfer("alice", 1));
    forged.signature = sign("bob", 0, 1, transfer("alice", 1)).signature;
    let bad = serde_json::to_string(&forged).unwrap();
    let a = n.tx(
        "alice",
        1,
        proposal(VALIDATE_TRANSACTION, &bad, false, false),
    );
    let b = n.tx("alice", 1, proposal("anything", "payload", false, true));
    let (a_id, b_id) = (a.id(), b.id());
    n.exec(S0, 10, &[a, b], &[]).unwrap();
    n.settle();
    let ra = record(&n, &a_id);
    assert_eq!(ra.targets, vec![ShardId(2)]);
    assert_eq!(ra.status, ProposalStatus::Failed);
    assert!(
        ra.reason.as_deref().unwrap().contains("signature"),
        "{ra:?}"
    );
    let rb = record(&n, &b_id);
    assert!(rb.needs_coordination());
    assert_eq!(rb.status, ProposalStatus::Pending, "the beacon decides");
    assert_eq!(
        global(&n, &b_id).outcome,
        Some(GlobalOutcome::Achieved),
        "1 of 1 accepted >= 67%"
    );
    assert!(
        n.prsm.get(&a_id).is_none(),
        "decided by its coordinating shard"
    );
}

#[test]
fn undecided_proposals_fail_after_the_coordination_timeout() {
    let mut n = net();
    // Coordinated: the beacon fails it 60 s (beacon time) after it took the submission.
    let t = n.tx("alice", 1, proposal("upgrade", "x", true, true));
    let id = t.id();
    // Single remote target, no coordination: shard 0 fails it on its own block time.
    let single = n.tx("alice", 1, proposal("anything", "y", false, false));
    let single_id = single.id();
    n.exec(S0, 10, &[t, single], &[]).unwrap();
    // The requests never reach their targets (nothing is delivered); shard 0 goes on. Its
    // batch closes on the timeout and the beacon takes the submission then.
    n.exec(S0, n.config.batch_timeout_ms, &[], &[]).unwrap();
    let opened = global(&n, &id);
    assert_eq!(opened.outcome, None);
    let opened_ms = opened.opened_ms();
    n.exec(
        S0,
        GLOBAL_COORDINATION_TIMEOUT_MS - n.config.batch_timeout_ms - 1,
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(record(&n, &single_id).status, ProposalStatus::Pending);
    n.exec(S0, 1, &[], &[]).unwrap();
    let r = record(&n, &single_id);
    assert_eq!(r.status, ProposalStatus::Failed);
    assert!(r.reason.as_deref().unwrap().contains("timed out"), "{r:?}");
    assert!(
        n.nodes[0].state.pending_proposals().is_empty(),
        "both slots freed"
    );
    // The beacon's deadline counts from its own block.
    let beacon_deadline = opened_ms + GLOBAL_COORDINATION_TIMEOUT_MS;
    assert_eq!(global(&n, &id).deadline_ms, beacon_deadline);
    while n.prsm_clock.1 < beacon_deadline {
        assert_eq!(global(&n, &id).outcome, None);
        n.exec(S0, 1_000, &[], &[]).unwrap();
        n.beacon_prsm(S0, &[]);
    }
    let g = global(&n, &id);
    assert_eq!(g.outcome, Some(GlobalOutcome::TimedOut));
    assert!(g.failure().unwrap().contains("timed out"), "{g:?}");
    // Late votes are still collected by the coordinating shard but change nothing.
    n.settle();
    assert_eq!(record(&n, &id).votes.len(), 4);
    assert_eq!(global(&n, &id), g);
    assert_eq!(record(&n, &single_id).status, ProposalStatus::Failed);
}

#[test]
fn a_shard_coordinates_a_bounded_number_of_undecided_proposals() {
    let mut n = net();
    let txs: Vec<_> = (0..MAX_PENDING_PROPOSALS)
        .map(|i| n.tx("alice", 1, proposal("p", &i.to_string(), true, false)))
        .collect();
    n.exec(S0, 10, &txs, &[]).unwrap();
    assert_eq!(
        n.nodes[0].state.pending_proposals().len(),
        MAX_PENDING_PROPOSALS
    );
    let one_more = n.tx("alice", 1, proposal("p", "more", true, false));
    let built = n.propose(S0, 10, vec![one_more], vec![]);
    assert!(built.txs.is_empty());
    assert!(matches!(
        &built.dropped_txs[0].1,
        TxRejection::InvalidAction(m) if m.contains("undecided proposals")
    ));
}

/// Proposal payloads make the largest transactions (4 KB each): a proposer fills a block up to
/// its byte budget, leaves the rest for later blocks (not dropped), and still takes a small
/// transaction that fits after a large one that does not.
#[test]
fn blocks_stay_within_their_byte_budget() {
    use commonware_codec::EncodeSize;
    let mut n = net();
    let big = "x".repeat(vision_types::limits::MAX_PROPOSAL_DATA_BYTES - 1);
    let txs: Vec<_> = (0..5)
        .map(|i| {
            n.tx(
                "alice",
                1,
                proposal("local_check", &format!("{i}{big}"), false, false),
            )
        })
        .collect();
    let small = n.tx("erin", 1, transfer("alice", 1));
    let one = txs[0].encode_size();
    let bounds = BlockLimits {
        max_txs: 100,
        max_body_bytes: 2 * one + small.encode_size() + 10,
    };
    let mut candidates = txs.clone();
    candidates.push(small.clone());
    let built = n.propose_within(S0, 10, candidates, vec![], bounds);
    let body: usize = built.txs.iter().map(EncodeSize::encode_size).sum();
    assert!(
        body <= bounds.max_body_bytes,
        "{body} > {}",
        bounds.max_body_bytes
    );
    let ids: Vec<Hash> = built.txs.iter().map(|t| t.id()).collect();
    assert_eq!(ids, vec![txs[0].id(), txs[1].id(), small.id()]);
    assert!(
        built.dropped_txs.is_empty(),
        "what did not fit is not rejected"
    );
    // The next block takes the next ones (nonces continue).
    let built = n.propose_within(S0, 10, txs[2..].to_vec(), vec![], bounds);
    assert_eq!(built.txs.len(), 2);
}

/// Large receipts (4 KB proposal requests to three shards each) fill a batch by bytes before
/// they fill it by count: the block takes transactions until the batch would pass
/// MAX_BATCH_RECEIPT_BYTES, the rest wait in the pool (refused as `BatchFull`, not invalid),
/// the batch closes at the end of the block, and the next block starts a new one.
#[test]
fn batches_are_bounded_in_bytes() {
    use crate::{CloseReason, StateReadExt};
    use commonware_codec::EncodeSize;
    use vision_types::limits::MAX_BATCH_RECEIPT_BYTES;
    let mut n = net();
    let big = "y".repeat(4_000);
    let txs: Vec<_> = (0..100)
        .map(|i| {
            n.tx(
                "alice",
                1,
                proposal("spread", &format!("{i}{big}"), true, false),
            )
        })
        .collect();
    let built = n.propose(S0, 10, txs.clone(), vec![]);
    let taken = built.txs.len();
    assert!(taken > 10 && taken < 100, "took {taken}");
    // The first left out did not fit; the ones after it wait for their predecessor.
    assert_eq!(built.dropped_txs[0].1, TxRejection::BatchFull);
    assert!(
        built.dropped_txs[1..]
            .iter()
            .all(|(_, r)| matches!(r, TxRejection::BatchFull | TxRejection::NonceGap { .. }))
    );
    let closed = built.execution.closed_batch.expect("closed by bytes");
    assert!(
        closed.reasons.contains(&CloseReason::Full),
        "{:?}",
        closed.reasons
    );
    let bytes: usize = closed
        .receipts
        .values()
        .flatten()
        .map(EncodeSize::encode_size)
        .sum();
    assert!(bytes <= MAX_BATCH_RECEIPT_BYTES, "{bytes}");
    assert!(bytes >= MAX_BATCH_RECEIPT_BYTES / 2, "{bytes}");
    assert_eq!(n.nodes[0].state.pending_bytes(), 0);
    // The rest go into the next blocks (their nonces follow on).
    let built = n.propose(S0, 10, txs[taken..].to_vec(), vec![]);
    assert!(!built.txs.is_empty());
    n.settle();
}
