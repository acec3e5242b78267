//! PRSM proposals: the coordinating shard (the proposer's) routes a proposal to its target
//! shards by receipt, each target decides it in one of its own finalized blocks and answers
//! with a vote receipt, which the coordinating shard records.
//!
//! Who decides:
//! - a proposal with one target and no coordination asked for is decided by that target's
//!   vote, on the coordinating shard (failed if no vote came within
//!   [`GLOBAL_COORDINATION_TIMEOUT_MS`] of its block time);
//! - a proposal that needs coordination (several targets, or coordination asked for) is
//!   decided by the beacon chain: the coordinating shard puts a `Submitted` PRSM event in its
//!   batch and every target a `Voted` event in its own (see
//!   [`PrsmEvent`](vision_types::prsm::PrsmEvent)); the crosslinks carry them, and the beacon
//!   applies the 67% rule to the votes or fails the proposal after 60 s of beacon time. The
//!   coordinating shard's record then only collects the votes (with their reasons) and stays
//!   `Pending`; it stops waiting once every target voted or 60 s of its block time passed.
//!
//! Every step is a state transition of a finalized block, committed by the shard's state
//! root (and, for the events, by its header's `prsm_root`).

use super::{Effects, Event, Executor, Failure, TxRejection, truncate};
use crate::{
    keys,
    model::{ProposalRecord, ProposalStatus, ShardVote, enc_json},
    view::{Overlay, StateReadExt},
};
use vision_types::{
    AccountId, Action, Amount, Hash, Receipt, ReceiptKind, ShardId, SignedTransaction, limits,
    prsm::{GLOBAL_COORDINATION_TIMEOUT_MS, PrsmEvent, PrsmEventKind},
};

/// Most undecided proposals one shard coordinates at once; a proposal transaction beyond it
/// is rejected (not included) until some decide or time out.
pub const MAX_PENDING_PROPOSALS: usize = 256;

/// The proposal action whose payload a target shard checks: `data` must be a signed
/// transaction (JSON) of this network with a valid signature and, when its signer lives on
/// the deciding shard, a signer that exists, holds that key, has not used the nonce yet and
/// can pay the fee and amount.
pub const VALIDATE_TRANSACTION: &str = "validate_transaction";

/// Which shards a proposal targets: the PRSM targeting rule of the sharding layer
/// (`vision_sharding::select_targets`), which the consensus layer supplies.
pub trait ProposalTargets {
    /// The sorted, non-empty target shards of a proposal with these fields (the fields are
    /// already within their limits).
    fn proposal_targets(
        &self,
        action: &str,
        data: &str,
        affects_multiple_shards: bool,
    ) -> Vec<ShardId>;
}

/// What [`Executor::submit_proposal`] needs of the proposal transaction.
pub(crate) struct Submitted<'t> {
    pub(crate) tx_id: Hash,
    pub(crate) proposer: &'t AccountId,
    pub(crate) action: &'t Action,
}

/// Whether the coordinating shard still waits for votes on `record` (it holds one of the
/// [`MAX_PENDING_PROPOSALS`] slots): undecided here and not every target voted yet.
fn awaits_votes(record: &ProposalRecord) -> bool {
    record.status == ProposalStatus::Pending && record.votes.len() < record.targets.len()
}

impl Executor<'_, '_> {
    /// Records a proposal this shard coordinates, decides it here if this shard is a target,
    /// and sends a request receipt to every other target.
    pub(crate) fn submit_proposal(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        p: Submitted<'_>,
    ) -> Result<bool, Failure> {
        let Action::Proposal {
            action,
            data,
            affects_multiple_shards,
            coordination_required,
        } = p.action
        else {
            unreachable!("submit_proposal is only called for proposals");
        };
        let mut pending = ov.pending_proposals();
        if pending.len() >= MAX_PENDING_PROPOSALS {
            return Err(TxRejection::InvalidAction(format!(
                "shard {} already coordinates {MAX_PENDING_PROPOSALS} undecided proposals",
                self.ctx.shard
            ))
            .into());
        }
        let targets =
            self.ctx
                .proposal_targets
                .proposal_targets(action, data, *affects_multiple_shards);
        if targets.is_empty() {
            return Err(TxRejection::InvalidAction("the proposal targets no shard".into()).into());
        }
        let coordinated = *coordination_required || targets.len() > 1;
        if coordinated {
            if self.prsm_outbox_full(ov, 2) {
                return Err(TxRejection::BatchFull.into());
            }
            let targets = targets.clone();
            self.note_prsm(ov, p.tx_id, PrsmEventKind::Submitted { targets });
        }
        let now = self.ctx.timestamp_ms;
        let mut record = ProposalRecord {
            id: p.tx_id,
            proposer: p.proposer.clone(),
            action: action.clone(),
            data: data.clone(),
            affects_multiple_shards: *affects_multiple_shards,
            coordination_required: *coordination_required,
            coordinating_shard: self.ctx.shard,
            targets: targets.clone(),
            votes: Vec::new(),
            status: ProposalStatus::Pending,
            reason: None,
            submitted_height: self.ctx.height,
            submitted_ms: now,
            deadline_ms: now.saturating_add(GLOBAL_COORDINATION_TIMEOUT_MS),
            decided_height: None,
            decided_ms: None,
        };
        fx.events.push(Event::ProposalSubmitted {
            tx_id: p.tx_id,
            action: action.clone(),
        });
        let mut remote = false;
        for target in targets {
            if target == self.ctx.shard {
                let vote = self.decide_here(ov, fx, p.tx_id, action, data);
                if coordinated {
                    let kind = PrsmEventKind::Voted {
                        coordinator: self.ctx.shard,
                        accepted: vote.accepted,
                        height: vote.height,
                    };
                    self.note_prsm(ov, p.tx_id, kind);
                }
                record.votes.push(vote);
            } else {
                remote = true;
                self.emit(
                    ov,
                    fx,
                    target,
                    ReceiptKind::ProposalRequest {
                        action: action.clone(),
                        data: data.clone(),
                    },
                    Amount::ZERO,
                    0,
                    p.tx_id,
                    p.proposer.clone(),
                    p.proposer.clone(),
                    true,
                )?;
            }
        }
        self.settle(fx, &mut record);
        if awaits_votes(&record) {
            pending.push((record.deadline_ms, record.id));
            ov.put(keys::pending_proposals(), enc_json(&pending));
        }
        ov.put(keys::proposal(&record.id), enc_json(&record));
        Ok(remote)
    }

    /// A target shard decides a proposal another shard coordinates and answers with a vote.
    pub(crate) fn apply_proposal_request(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        r: &Receipt,
        action: &str,
        data: &str,
    ) -> Result<bool, Failure> {
        let vote = self.decide_here(ov, fx, r.origin_tx, action, data);
        // The target cannot tell whether the coordinator decides this one itself (a single
        // remote target without coordination asked for); the beacon ignores votes on
        // proposals it was not told of.
        let kind = PrsmEventKind::Voted {
            coordinator: r.src,
            accepted: vote.accepted,
            height: vote.height,
        };
        self.note_prsm(ov, r.origin_tx, kind);
        self.emit(
            ov,
            fx,
            r.src,
            ReceiptKind::ProposalVote {
                accepted: vote.accepted,
                reason: vote.reason.clone().unwrap_or_default(),
                height: vote.height,
            },
            Amount::ZERO,
            r.priority,
            r.origin_tx,
            r.recipient.clone(),
            r.sender.clone(),
            true,
        )?;
        Ok(vote.accepted)
    }

    /// The coordinating shard counts a target shard's vote (decided at the target's
    /// `height`) and decides when it can.
    pub(crate) fn apply_proposal_vote(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        r: &Receipt,
        (accepted, reason, height): (bool, &str, u64),
    ) -> bool {
        let Some(mut record) = ov.proposal(&r.origin_tx) else {
            // Only this shard's own requests are answered to it; nothing to count otherwise.
            return false;
        };
        if !record.targets.contains(&r.src) || record.votes.iter().any(|v| v.shard == r.src) {
            return false;
        }
        let was_waiting = awaits_votes(&record);
        record.votes.push(ShardVote {
            shard: r.src,
            accepted,
            reason: (!accepted).then(|| reason.to_string()),
            height,
            counted_ms: self.ctx.timestamp_ms,
        });
        self.settle(fx, &mut record);
        if was_waiting && !awaits_votes(&record) {
            let mut pending = ov.pending_proposals();
            pending.retain(|(_, id)| *id != record.id);
            ov.put(keys::pending_proposals(), enc_json(&pending));
        }
        ov.put(keys::proposal(&record.id), enc_json(&record));
        true
    }

    /// Stops waiting for votes on every proposal whose deadline this block's time has
    /// reached, failing those this shard decides (the beacon decides the others).
    pub(crate) fn expire_proposals(&self, ov: &mut Overlay<'_>, fx: &mut Effects) {
        let pending = ov.pending_proposals();
        let now = self.ctx.timestamp_ms;
        if pending.first().is_none_or(|(deadline, _)| *deadline > now) {
            return;
        }
        let (expired, kept): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(d, _)| *d <= now);
        for (_, id) in expired {
            let mut record = ov.proposal(&id).expect("pending proposals have records");
            if record.needs_coordination() {
                continue;
            }
            let total = record.targets.len();
            let reason = format!(
                "coordination timed out after {} s: {} of {total} target shards accepted, {} voted",
                GLOBAL_COORDINATION_TIMEOUT_MS / 1_000,
                record.accepted(),
                record.votes.len()
            );
            self.decide(fx, &mut record, ProposalStatus::Failed, Some(reason));
            ov.put(keys::proposal(&id), enc_json(&record));
        }
        ov.put(keys::pending_proposals(), enc_json(&kept));
    }

    /// Applies the decision the votes force, if any, if still undecided and if this shard
    /// decides it (the beacon decides proposals that need coordination).
    fn settle(&self, fx: &mut Effects, record: &mut ProposalRecord) {
        if record.status != ProposalStatus::Pending || record.needs_coordination() {
            return;
        }
        if let Some((status, reason)) = record.forced_decision() {
            self.decide(fx, record, status, reason);
        }
    }

    fn decide(
        &self,
        fx: &mut Effects,
        record: &mut ProposalRecord,
        status: ProposalStatus,
        reason: Option<String>,
    ) {
        record.status = status;
        record.reason = reason;
        record.decided_height = Some(self.ctx.height);
        record.decided_ms = Some(self.ctx.timestamp_ms);
        fx.events.push(Event::ProposalDecided {
            id: record.id,
            achieved: status == ProposalStatus::Achieved,
        });
    }

    /// Whether the pending batch cannot take `more` PRSM events.
    fn prsm_outbox_full(&self, ov: &Overlay<'_>, more: usize) -> bool {
        ov.prsm_outbox().events.len() + more > limits::MAX_PRSM_EVENTS_PER_CROSSLINK
    }

    /// Appends an event to the shard's PRSM event stream (it joins the pending batch).
    fn note_prsm(&self, ov: &mut Overlay<'_>, proposal: Hash, kind: PrsmEventKind) {
        let mut out = ov.prsm_outbox();
        debug_assert!(out.events.len() < limits::MAX_PRSM_EVENTS_PER_CROSSLINK);
        if out.events.is_empty() {
            out.first_ms = self.ctx.timestamp_ms;
        }
        out.events.push(PrsmEvent {
            seq: out.next_seq,
            proposal,
            kind,
        });
        out.next_seq += 1;
        ov.put(keys::prsm_outbox(), enc_json(&out));
    }

    /// This shard's decision on a proposal, recorded in its state.
    fn decide_here(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        id: Hash,
        action: &str,
        data: &str,
    ) -> ShardVote {
        let verdict = self.validate_proposal(ov, action, data);
        let vote = ShardVote {
            shard: self.ctx.shard,
            accepted: verdict.is_ok(),
            reason: verdict.err().map(truncate),
            height: self.ctx.height,
            counted_ms: self.ctx.timestamp_ms,
        };
        ov.put(keys::proposal_vote(&id), enc_json(&vote));
        fx.events.push(Event::ProposalVoted {
            id,
            accepted: vote.accepted,
        });
        vote
    }

    /// The deciding shard's rule: a [`VALIDATE_TRANSACTION`] proposal is checked against this
    /// shard's state; any other action is within its limits already and is accepted.
    fn validate_proposal(&self, ov: &Overlay<'_>, action: &str, data: &str) -> Result<(), String> {
        if action != VALIDATE_TRANSACTION {
            return Ok(());
        }
        let stx: SignedTransaction = serde_json::from_str(data)
            .map_err(|e| format!("data is not a signed transaction: {e}"))?;
        stx.verify_signature()
            .map_err(|_| "the transaction's signature does not verify".to_string())?;
        let tx = &stx.tx;
        if tx.chain_id != self.ctx.chain_id {
            return Err(format!(
                "the transaction is for chain {}, this is {}",
                tx.chain_id, self.ctx.chain_id
            ));
        }
        if self.ctx.layout.shard_of_account(&tx.signer) != self.ctx.shard {
            return Ok(());
        }
        let account = ov
            .account(&tx.signer)
            .ok_or_else(|| format!("unknown account {}", tx.signer))?;
        if account.public_key != stx.public_key {
            return Err("the signing key is not the signer's key".into());
        }
        if tx.nonce < account.nonce {
            return Err(format!(
                "nonce {} already used (next is {})",
                tx.nonce, account.nonce
            ));
        }
        let needed = tx
            .fee
            .checked_add(tx.action.value())
            .map_err(|_| "fee plus amount overflows".to_string())?;
        if needed > account.balance {
            return Err(format!(
                "insufficient balance: needs {needed}, has {}",
                account.balance
            ));
        }
        Ok(())
    }
}
