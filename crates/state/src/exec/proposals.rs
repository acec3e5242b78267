//! PRSM proposals: the coordinating shard (the proposer's) routes a proposal to its target
//! shards by receipt, each target decides it in one of its own finalized blocks and answers
//! with a vote receipt, and the coordinating shard applies the 67% rule to the votes or fails
//! the proposal once [`GLOBAL_COORDINATION_TIMEOUT_MS`] of its block time has passed.
//!
//! Every step is a state transition of a finalized block, so a proposal's record (targets,
//! votes, result) is committed by the coordinating shard's state root and reaches the beacon
//! chain in that shard's crosslinks.

use super::{Effects, Event, Executor, Failure, TxRejection, truncate};
use crate::{
    keys,
    model::{ProposalRecord, ProposalStatus, ShardVote, enc_json},
    view::{Overlay, StateReadExt},
};
use vision_types::{
    AccountId, Action, Amount, Hash, Receipt, ReceiptKind, ShardId, SignedTransaction,
    prsm::GLOBAL_COORDINATION_TIMEOUT_MS,
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
        if record.status == ProposalStatus::Pending {
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
        record.votes.push(ShardVote {
            shard: r.src,
            accepted,
            reason: (!accepted).then(|| reason.to_string()),
            height,
            counted_ms: self.ctx.timestamp_ms,
        });
        let was_pending = record.status == ProposalStatus::Pending;
        self.settle(fx, &mut record);
        if was_pending && record.status != ProposalStatus::Pending {
            let mut pending = ov.pending_proposals();
            pending.retain(|(_, id)| *id != record.id);
            ov.put(keys::pending_proposals(), enc_json(&pending));
        }
        ov.put(keys::proposal(&record.id), enc_json(&record));
        true
    }

    /// Fails every undecided proposal whose deadline this block's time has reached.
    pub(crate) fn expire_proposals(&self, ov: &mut Overlay<'_>, fx: &mut Effects) {
        let pending = ov.pending_proposals();
        let now = self.ctx.timestamp_ms;
        if pending.first().is_none_or(|(deadline, _)| *deadline > now) {
            return;
        }
        let (expired, kept): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(d, _)| *d <= now);
        for (_, id) in expired {
            let mut record = ov.proposal(&id).expect("pending proposals have records");
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

    /// Applies the decision the votes force, if any and if still undecided.
    fn settle(&self, fx: &mut Effects, record: &mut ProposalRecord) {
        if record.status != ProposalStatus::Pending {
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
