//! Validator reputation records kept in the beacon state: counters of what the beacon chain
//! records about each validator's consensus participation, and the score derived from them.
//!
//! - When the beacon accepts a crosslink whose certified shard block is above the highest one
//!   already credited for its shard, every member of the shard committee whose signature the
//!   crosslink's finalization certificate carries gets one `finalize_votes`, every other
//!   member one `missed`, and the proposer of each shard header the crosslink carries (the
//!   crosslinked block and its ancestry, all finalized) one `blocks_finalized`. A shard block's
//!   proposer is derivable: shard replicas vote only for blocks whose header names the view's
//!   leader.
//! - Every beacon block credits its proposer (the view's leader, checked by the beacon
//!   committee) with one `beacon_blocks_finalized`. Beacon votes are not counted: a beacon
//!   block does not carry its parent's certificate, and the certificate a node holds for a
//!   finalized beacon block differs from node to node (or is missing), so it cannot enter
//!   state every replica agrees on.
//!
//! A certificate needs only a quorum: a member that was up but slower than the quorum is
//! absent from it too. `missed` therefore measures timely participation, not liveness alone.
//!
//! The score is [`Reputation::observed`] of the genesis reputation (the prior) with
//! `finalize_votes` and `missed`: integer parts-per-million, the same on every replica.
//! Block counters are reported but do not enter the score (how often a validator leads
//! follows from the leader rotation, not from its behaviour).
//!
//! Equivocation: when a beacon block records [`super::FaultEvidence`] against a member (two
//! conflicting votes it signed in one view, verified against its committee), `equivocations`
//! counts it (once per view, views only increasing) and the score is zero from then on.

use commonware_codec::Write;
use vision_sharding::Reputation;
use vision_types::ShardId;

/// The prior, in parts-per-million, of a committee member without a stated one: the genesis
/// file's default validator reputation (0.9).
pub const DEFAULT_REPUTATION_PRIOR_PPM: u32 = 900_000;

/// What the beacon chain recorded about one validator (a member of a shard committee).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReputationRecord {
    /// The shard whose committee the validator is in (the lowest one if several).
    pub shard: ShardId,
    /// The genesis reputation: the score's prior.
    pub prior: Reputation,
    /// Crosslinked finalization certificates of its shard that carry its signature.
    pub finalize_votes: u64,
    /// Crosslinked finalization certificates of its shard that do not.
    pub missed: u64,
    /// Shard blocks it proposed that the beacon saw finalized (crosslinked headers and their
    /// ancestry).
    pub blocks_finalized: u64,
    /// Beacon blocks it proposed that were finalized.
    pub beacon_blocks_finalized: u64,
    /// Views in which the beacon recorded evidence of it signing two conflicting votes.
    pub equivocations: u64,
    /// The highest view with recorded evidence (evidence for it or an older view is not
    /// counted again).
    pub equivocation_view: Option<u64>,
}

impl ReputationRecord {
    /// A record with no events yet.
    pub fn new(shard: ShardId, prior: Reputation) -> Self {
        ReputationRecord {
            shard,
            prior,
            finalize_votes: 0,
            missed: 0,
            blocks_finalized: 0,
            beacon_blocks_finalized: 0,
            equivocations: 0,
            equivocation_view: None,
        }
    }

    /// The score: [`Reputation::observed`] of the prior with `finalize_votes` and `missed`;
    /// zero once the validator equivocated.
    pub fn score(&self) -> Reputation {
        if self.equivocations > 0 {
            return Reputation::from_ppm(0).expect("0 is in range");
        }
        self.prior.observed(self.finalize_votes, self.missed)
    }

    /// Appends the canonical encoding (part of the beacon state root).
    pub(crate) fn write_to(&self, b: &mut Vec<u8>) {
        self.shard.write(b);
        self.prior.ppm().write(b);
        self.finalize_votes.write(b);
        self.missed.write(b);
        self.blocks_finalized.write(b);
        self.beacon_blocks_finalized.write(b);
        self.equivocations.write(b);
        self.equivocation_view.is_some().write(b);
        self.equivocation_view.unwrap_or(0).write(b);
    }
}
