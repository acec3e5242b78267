//! The global result of PRSM proposals that need cross-shard coordination, as the beacon
//! chain records it (the table is part of the beacon state; this module is its pure logic).
//!
//! A coordinating shard announces such a proposal with a `Submitted` event, and every target
//! shard its finalized decision with a `Voted` event
//! ([`PrsmEvent`](vision_types::prsm::PrsmEvent)); the events travel in the shards'
//! crosslinks, committed by their certified headers. The beacon takes each shard's events
//! exactly once and in order (consecutive seqs per shard, like receipt streams) and:
//!
//! - opens a proposal when its `Submitted` event is finalized, with a deadline of
//!   [`GLOBAL_COORDINATION_TIMEOUT_MS`] after that beacon block's time;
//! - counts one vote per target shard; the proposal is **achieved** once at least 67% of its
//!   targets accepted ([`cross_shard_decision`]), **failed** once that can no longer happen;
//! - fails it at the first beacon block whose time reaches the deadline (votes finalized in
//!   that block or later do not count).
//!
//! Everything here is part of the beacon state root. The table is bounded: at most
//! [`MAX_OPEN_PROPOSALS`] undecided (a submission beyond that fails at once) and the last
//! [`RESULTS_KEPT`] results.

use commonware_codec::Write;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use vision_types::{
    Hash, ShardId,
    prsm::{GLOBAL_COORDINATION_TIMEOUT_MS, PrsmEvent, PrsmEventKind, cross_shard_decision},
};

/// Most proposals the beacon waits on at once.
pub const MAX_OPEN_PROPOSALS: usize = 4096;
/// Decided proposals whose result the beacon keeps (oldest dropped first).
pub const RESULTS_KEPT: usize = 4096;

/// How a proposal ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GlobalOutcome {
    /// At least 67% of the target shards accepted it.
    Achieved,
    /// Enough target shards rejected it that 67% can no longer accept.
    Rejected,
    /// The deadline passed before 67% accepted.
    TimedOut,
    /// The beacon was already waiting on [`MAX_OPEN_PROPOSALS`] proposals.
    Refused,
}

/// A target shard's finalized decision, as the beacon counted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GlobalVote {
    /// The target shard.
    pub shard: ShardId,
    /// Whether it accepted the proposal.
    pub accepted: bool,
    /// The target shard's block that decided it.
    pub height: u64,
}

/// One proposal in the beacon's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GlobalProposal {
    /// The coordinating shard.
    pub coordinator: ShardId,
    /// The target shards (sorted).
    pub targets: Vec<ShardId>,
    /// The target shards' votes, in the order the beacon finalized them.
    pub votes: Vec<GlobalVote>,
    /// Beacon height that finalized the submission.
    pub opened_height: u64,
    /// Beacon block time from which an undecided proposal fails (ms).
    pub deadline_ms: u64,
    /// How it ended, once decided.
    pub outcome: Option<GlobalOutcome>,
    /// Beacon height that decided it.
    pub decided_height: Option<u64>,
    /// That beacon block's time (ms).
    pub decided_ms: Option<u64>,
}

impl GlobalProposal {
    /// Whether it was achieved.
    pub fn achieved(&self) -> bool {
        self.outcome == Some(GlobalOutcome::Achieved)
    }

    /// Beacon block time of the submission (ms).
    pub fn opened_ms(&self) -> u64 {
        self.deadline_ms
            .saturating_sub(GLOBAL_COORDINATION_TIMEOUT_MS)
    }

    /// Why it failed, once it has.
    pub fn failure(&self) -> Option<String> {
        let (yes, no) = self.tally();
        let total = self.targets.len();
        Some(match self.outcome? {
            GlobalOutcome::Achieved => return None,
            GlobalOutcome::Rejected => {
                format!("{no} of {total} target shards rejected it; at least 67% must accept")
            }
            GlobalOutcome::TimedOut => format!(
                "coordination timed out after {} s of beacon time: {yes} of {total} target \
                 shards accepted, {} voted",
                GLOBAL_COORDINATION_TIMEOUT_MS / 1_000,
                self.votes.len()
            ),
            GlobalOutcome::Refused => {
                format!("the beacon chain was already waiting on {MAX_OPEN_PROPOSALS} proposals")
            }
        })
    }

    /// Number of target shards that accepted, and that rejected.
    pub fn tally(&self) -> (u64, u64) {
        let accepted = self.votes.iter().filter(|v| v.accepted).count() as u64;
        (accepted, self.votes.len() as u64 - accepted)
    }

    fn write_to(&self, b: &mut Vec<u8>) {
        self.coordinator.write(b);
        self.targets.write(b);
        (self.votes.len() as u64).write(b);
        for v in &self.votes {
            v.shard.write(b);
            v.accepted.write(b);
            v.height.write(b);
        }
        self.opened_height.write(b);
        self.deadline_ms.write(b);
        let outcome: u8 = match self.outcome {
            None => 0,
            Some(GlobalOutcome::Achieved) => 1,
            Some(GlobalOutcome::Rejected) => 2,
            Some(GlobalOutcome::TimedOut) => 3,
            Some(GlobalOutcome::Refused) => 4,
        };
        outcome.write(b);
        self.decided_height.unwrap_or(0).write(b);
        self.decided_ms.unwrap_or(0).write(b);
    }
}

/// Why a crosslink's PRSM events do not continue its shard's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGap {
    /// The next seq the beacon expects.
    pub expected: u64,
    /// The first event's seq.
    pub got: u64,
}

/// The beacon's PRSM table (see the module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrsmTable {
    /// Next event seq expected per shard.
    next_seqs: BTreeMap<ShardId, u64>,
    /// Open and kept decided proposals.
    proposals: BTreeMap<Hash, GlobalProposal>,
    /// Open proposals by deadline.
    open: BTreeSet<(u64, Hash)>,
    /// Decided proposals, oldest first (at most [`RESULTS_KEPT`]).
    decided: VecDeque<Hash>,
}

impl PrsmTable {
    /// The next event seq the beacon expects from `shard`.
    pub fn next_seq(&self, shard: ShardId) -> u64 {
        self.next_seqs.get(&shard).copied().unwrap_or(0)
    }

    /// A proposal the table holds (open, or decided and still kept).
    pub fn get(&self, id: &Hash) -> Option<&GlobalProposal> {
        self.proposals.get(id)
    }

    /// Number of undecided proposals.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Whether `events` (of a content-checked crosslink of `shard`, so consecutive) continue
    /// the shard's stream. Empty is always fine.
    pub fn check(&self, shard: ShardId, events: &[PrsmEvent]) -> Result<(), EventGap> {
        match events.first() {
            Some(first) if first.seq != self.next_seq(shard) => Err(EventGap {
                expected: self.next_seq(shard),
                got: first.seq,
            }),
            _ => Ok(()),
        }
    }

    /// Whether `events` are already taken (a replay): their first seq is below the next one.
    pub fn taken(&self, shard: ShardId, events: &[PrsmEvent]) -> bool {
        events.first().is_some_and(|e| e.seq < self.next_seq(shard))
    }

    /// Applies checked events of `shard` finalized in the beacon block at `height` with time
    /// `now_ms`. `known` says whether a shard exists.
    pub fn apply(
        &mut self,
        shard: ShardId,
        events: &[PrsmEvent],
        height: u64,
        now_ms: u64,
        known: impl Fn(ShardId) -> bool,
    ) {
        let Some(last) = events.last() else { return };
        self.next_seqs.insert(shard, last.seq + 1);
        for e in events {
            match &e.kind {
                PrsmEventKind::Submitted { targets } => {
                    let well_formed = !targets.is_empty()
                        && targets.windows(2).all(|w| w[0] < w[1])
                        && targets.iter().all(|t| known(*t));
                    if well_formed && !self.proposals.contains_key(&e.proposal) {
                        self.open_proposal(e.proposal, shard, targets.clone(), height, now_ms);
                    }
                }
                PrsmEventKind::Voted {
                    coordinator,
                    accepted,
                    height: decided_at,
                } => {
                    let vote = GlobalVote {
                        shard,
                        accepted: *accepted,
                        height: *decided_at,
                    };
                    self.vote(e.proposal, *coordinator, vote, (height, now_ms));
                }
            }
        }
    }

    fn open_proposal(
        &mut self,
        id: Hash,
        coordinator: ShardId,
        targets: Vec<ShardId>,
        height: u64,
        now_ms: u64,
    ) {
        let deadline_ms = now_ms.saturating_add(GLOBAL_COORDINATION_TIMEOUT_MS);
        let p = GlobalProposal {
            coordinator,
            targets,
            votes: Vec::new(),
            opened_height: height,
            deadline_ms,
            outcome: None,
            decided_height: None,
            decided_ms: None,
        };
        self.proposals.insert(id, p);
        if self.open.len() >= MAX_OPEN_PROPOSALS {
            self.decide(id, GlobalOutcome::Refused, height, now_ms);
        } else {
            self.open.insert((deadline_ms, id));
        }
    }

    /// Counts a target's vote on a proposal of `coordinator`, finalized in the beacon block
    /// at `at` (height, time).
    fn vote(&mut self, id: Hash, coordinator: ShardId, vote: GlobalVote, at: (u64, u64)) {
        let Some(p) = self.proposals.get_mut(&id) else {
            return;
        };
        let counts = p.outcome.is_none()
            && p.coordinator == coordinator
            && p.targets.contains(&vote.shard)
            && !p.votes.iter().any(|v| v.shard == vote.shard);
        if !counts {
            return;
        }
        p.votes.push(vote);
        let (yes, no) = p.tally();
        match cross_shard_decision(yes, no, p.targets.len() as u64) {
            Some(true) => self.decide(id, GlobalOutcome::Achieved, at.0, at.1),
            Some(false) => self.decide(id, GlobalOutcome::Rejected, at.0, at.1),
            None => {}
        }
    }

    /// Fails every open proposal whose deadline the beacon block at `height` with time
    /// `now_ms` reaches. Call before applying the block's crosslinks.
    pub fn expire(&mut self, height: u64, now_ms: u64) {
        while let Some(&(deadline, id)) = self.open.first() {
            if deadline > now_ms {
                break;
            }
            self.decide(id, GlobalOutcome::TimedOut, height, now_ms);
        }
    }

    fn decide(&mut self, id: Hash, outcome: GlobalOutcome, height: u64, now_ms: u64) {
        let Some(p) = self.proposals.get_mut(&id) else {
            return;
        };
        self.open.remove(&(p.deadline_ms, id));
        p.outcome = Some(outcome);
        p.decided_height = Some(height);
        p.decided_ms = Some(now_ms);
        self.decided.push_back(id);
        while self.decided.len() > RESULTS_KEPT {
            if let Some(old) = self.decided.pop_front() {
                self.proposals.remove(&old);
            }
        }
    }

    /// Appends the table's canonical encoding (part of the beacon state root).
    pub fn write_to(&self, b: &mut Vec<u8>) {
        (self.next_seqs.len() as u64).write(b);
        for (s, seq) in &self.next_seqs {
            s.write(b);
            seq.write(b);
        }
        (self.proposals.len() as u64).write(b);
        for (id, p) in &self.proposals {
            id.write(b);
            p.write_to(b);
        }
        (self.decided.len() as u64).write(b);
        for id in &self.decided {
            id.write(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, id: u8, kind: PrsmEventKind) -> PrsmEvent {
        PrsmEvent {
            seq,
            proposal: Hash([id; 32]),
            kind,
        }
    }
    fn submitted(seq: u64, id: u8, targets: &[u32]) -> PrsmEvent {
        let targets = targets.iter().map(|t| ShardId(*t)).collect();
        ev(seq, id, PrsmEventKind::Submitted { targets })
    }
    fn voted(seq: u64, id: u8, coordinator: u32, accepted: bool) -> PrsmEvent {
        let coordinator = ShardId(coordinator);
        ev(
            seq,
            id,
            PrsmEventKind::Voted {
                coordinator,
                accepted,
                height: seq,
            },
        )
    }
    const ALL: fn(ShardId) -> bool = |s| s.0 < 4;

    #[test]
    fn the_67_percent_rule_decides_on_finalized_votes() {
        let mut t = PrsmTable::default();
        let (s0, s1, s2) = (ShardId(0), ShardId(1), ShardId(2));
        // Shard 0 coordinates proposal 1 over shards 0..3 and votes yes itself.
        t.apply(
            s0,
            &[submitted(0, 1, &[0, 1, 2]), voted(1, 1, 0, true)],
            5,
            1_000,
            ALL,
        );
        let id = Hash([1; 32]);
        assert_eq!(t.get(&id).unwrap().outcome, None);
        assert_eq!(t.open_count(), 1);
        // 2 of 3 is 66.7%: not enough; the third yes decides.
        t.apply(s1, &[voted(0, 1, 0, true)], 6, 2_000, ALL);
        assert_eq!(t.get(&id).unwrap().outcome, None);
        // A vote naming another coordinator, or a repeated vote, does not count.
        t.apply(
            s1,
            &[voted(1, 1, 3, true), voted(2, 1, 0, false)],
            7,
            3_000,
            ALL,
        );
        assert_eq!(t.get(&id).unwrap().votes.len(), 2);
        t.apply(s2, &[voted(0, 1, 0, true)], 8, 4_000, ALL);
        let p = t.get(&id).unwrap();
        assert_eq!(
            (p.outcome, p.decided_height),
            (Some(GlobalOutcome::Achieved), Some(8))
        );
        assert_eq!(t.open_count(), 0);
        // One rejection of three already makes 67% impossible.
        t.apply(s0, &[submitted(2, 2, &[0, 1, 2])], 9, 5_000, ALL);
        t.apply(s1, &[voted(3, 2, 0, false)], 10, 6_000, ALL);
        let p = t.get(&Hash([2; 32])).unwrap();
        assert_eq!(p.outcome, Some(GlobalOutcome::Rejected));
        // Streams: a gap or a replay is noticed.
        assert_eq!(t.next_seq(s1), 4);
        assert!(t.check(s1, &[voted(5, 9, 0, true)]).is_err());
        assert!(t.taken(s1, &[voted(3, 9, 0, true)]));
        assert!(t.check(s1, &[voted(4, 9, 0, true)]).is_ok());
    }

    #[test]
    fn an_undecided_proposal_fails_after_60_s_of_beacon_time() {
        let mut t = PrsmTable::default();
        let (s0, s1) = (ShardId(0), ShardId(1));
        t.apply(s0, &[submitted(0, 1, &[1, 2])], 3, 10_000, ALL);
        let id = Hash([1; 32]);
        assert_eq!(t.get(&id).unwrap().deadline_ms, 70_000);
        t.expire(4, 69_999);
        assert_eq!(t.get(&id).unwrap().outcome, None);
        t.expire(5, 70_000);
        let p = t.get(&id).unwrap();
        assert_eq!(
            (p.outcome, p.decided_height),
            (Some(GlobalOutcome::TimedOut), Some(5))
        );
        // A late vote changes nothing.
        let before = t.clone();
        t.apply(s1, &[voted(0, 1, 0, true)], 6, 71_000, ALL);
        assert_eq!(t.get(&id), before.get(&id));
        // Malformed submissions (unknown shard, unsorted, empty) open nothing.
        t.apply(
            s0,
            &[
                submitted(1, 7, &[1, 9]),
                submitted(2, 8, &[2, 1]),
                submitted(3, 9, &[]),
            ],
            7,
            72_000,
            ALL,
        );
        assert!(t.get(&Hash([7; 32])).is_none() && t.get(&Hash([8; 32])).is_none());
        assert!(t.get(&Hash([9; 32])).is_none());
        assert_eq!(t.next_seq(s0), 4);
    }

    proptest::proptest! {
        /// Any order of votes (repeats, strangers, a wrong coordinator included): each target
        /// counts once, the outcome is the first decision `cross_shard_decision` forces on
        /// the counted votes, and it never changes afterwards.
        #[test]
        fn outcomes_follow_the_first_forcing_vote(
            n_targets in 1u32..7,
            votes in proptest::collection::vec((0u32..8, proptest::bool::ANY, 0u32..5), 0..30),
        ) {
            let mut t = PrsmTable::default();
            let targets: Vec<u32> = (0..n_targets).collect();
            t.apply(ShardId(0), &[submitted(0, 1, &targets)], 1, 0, |s| s.0 < 8);
            let id = Hash([1; 32]);
            let mut counted: Vec<(u32, bool)> = Vec::new();
            let mut expected = None;
            let mut seqs = BTreeMap::new();
            for (i, (voter, yes, coordinator)) in votes.into_iter().enumerate() {
                let seq = seqs.entry(voter).or_insert(if voter == 0 { 1 } else { 0 });
                let e = voted(*seq, 1, coordinator, yes);
                *seq += 1;
                let height = i as u64 + 2;
                t.apply(ShardId(voter), &[e], height, 1, |s| s.0 < 8);
                let counts = expected.is_none()
                    && coordinator == 0
                    && voter < n_targets
                    && !counted.iter().any(|(v, _)| *v == voter);
                if counts {
                    counted.push((voter, yes));
                    let yes_n = counted.iter().filter(|(_, y)| *y).count() as u64;
                    let no_n = counted.len() as u64 - yes_n;
                    expected = cross_shard_decision(yes_n, no_n, n_targets as u64)
                        .map(|a| (a, height));
                }
                let p = t.get(&id).unwrap();
                let got = p.outcome.map(|o| (o == GlobalOutcome::Achieved, p.decided_height.unwrap()));
                proptest::prop_assert_eq!(got, expected);
                proptest::prop_assert_eq!(p.votes.len(), counted.len());
            }
        }
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = PrsmTable::default();
        let s0 = ShardId(0);
        for i in 0..(MAX_OPEN_PROPOSALS + 1) as u64 {
            let e = PrsmEvent {
                seq: i,
                proposal: Hash::sha256(&i.to_be_bytes()),
                kind: PrsmEventKind::Submitted {
                    targets: vec![ShardId(1), ShardId(2)],
                },
            };
            t.apply(s0, &[e], 1, 0, ALL);
        }
        assert_eq!(t.open_count(), MAX_OPEN_PROPOSALS);
        let last = Hash::sha256(&(MAX_OPEN_PROPOSALS as u64).to_be_bytes());
        assert_eq!(t.get(&last).unwrap().outcome, Some(GlobalOutcome::Refused));
        t.expire(2, GLOBAL_COORDINATION_TIMEOUT_MS);
        assert_eq!(t.open_count(), 0);
        assert_eq!(t.proposals.len(), RESULTS_KEPT);
        assert_eq!(t.decided.len(), RESULTS_KEPT);
    }
}
