//! The beacon state machine: pure, deterministic, no I/O.

use super::{
    block::BeaconBlock,
    config::{
        AccountMoveOrder, CONFIG_ACTIVATION_DELAY, CONFIG_HISTORY, ConfigChange, ConfigRejection,
        ScheduledConfig,
    },
    evidence::FaultEvidence,
    reputation::{DEFAULT_REPUTATION_PRIOR_PPM, ReputationRecord},
};
use crate::{
    certificate::{
        CertError, Fault, certificate_signers, fault_of, verify_fault_evidence,
        verify_finalization_certificate,
    },
    chain::namespace,
};
use commonware_codec::Write;
use rand_core::CryptoRng;
use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::Arc,
};
use vision_sharding::{LayoutKey, PrsmTable, Reputation, ShardLayout};
use vision_state::Migration;
use vision_types::{
    AccountId, ChainId as NetworkId, ContractId, Hash, PublicKey, ShardId,
    block::{ChainRef, Crosslink, CrosslinkError},
    config::ShardConfig,
};

/// The domain prefix of beacon state roots.
pub const BEACON_STATE_NAMESPACE: &[u8] = b"vision-node/beacon-state/v4\0";

/// Default number of finalized receipts roots kept per shard (only crosslinks that carry
/// receipts have one).
pub const DEFAULT_ROOT_RETENTION: usize = 4096;

/// The committee of one shard in its current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardCommittee {
    /// The committee epoch (crosslinks must be certified in this epoch).
    pub epoch: u64,
    /// The members' consensus keys (any order).
    pub members: Vec<PublicKey>,
}

/// Why a crosslink is not acceptable on top of a beacon state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrosslinkRejection {
    /// The content does not match the header (or the header is not a shard block).
    #[error("content: {0}")]
    Content(#[from] CrosslinkError),
    /// The beacon knows no committee for this shard.
    #[error("unknown shard {0}")]
    UnknownShard(u32),
    /// Not above the last accepted height of the shard (duplicate or regression).
    #[error("shard {shard} height {height} is not above the last accepted height {last}")]
    NotAbove {
        /// The shard.
        shard: u32,
        /// The crosslink's height.
        height: u64,
        /// The last accepted height.
        last: u64,
    },
    /// The header's epoch is not the shard committee's epoch.
    #[error("header epoch {found}, shard committee epoch {expected}")]
    WrongEpoch {
        /// The committee epoch.
        expected: u64,
        /// The header's epoch.
        found: u64,
    },
    /// The finalization certificate does not verify.
    #[error("certificate: {0}")]
    Certificate(#[from] CertError),
    /// A destination shard the beacon does not know.
    #[error("receipts for unknown shard {0}")]
    UnknownDestination(u32),
    /// A destination entry does not continue its (source, destination) receipt stream: an
    /// earlier crosslink of the shard is missing (retry after it) or this one is stale.
    #[error("receipts {src}->{dst} start at seq {got}, expected {expected}")]
    OutOfOrder {
        /// Source shard.
        src: u32,
        /// Destination shard.
        dst: u32,
        /// The next seq the beacon expects.
        expected: u64,
        /// The entry's first seq.
        got: u64,
    },
    /// The PRSM events do not continue the shard's event stream: an earlier crosslink of the
    /// shard is missing (retry after it) or this one is stale.
    #[error("PRSM events of shard {shard} start at seq {got}, expected {expected}")]
    PrsmOutOfOrder {
        /// The shard.
        shard: u32,
        /// The next seq the beacon expects.
        expected: u64,
        /// The first event's seq.
        got: u64,
    },
}

/// A beacon block that does not apply to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Not a beacon block, or not the child of the state's tip.
    #[error("block is not a beacon child of the state's tip (height {height})")]
    NotAChild {
        /// The state's height.
        height: u64,
    },
    /// Crosslink `index` is out of sequence.
    #[error("crosslink {index}: {reason}")]
    Crosslink {
        /// Position in the block.
        index: usize,
        /// Why.
        reason: CrosslinkRejection,
    },
    /// A configuration change is not acceptable.
    #[error("configuration change: {0}")]
    Config(#[from] ConfigRejection),
    /// Evidence `index` is not acceptable.
    #[error("evidence {index}: {reason}")]
    Evidence {
        /// Position in the block.
        index: usize,
        /// Why.
        reason: EvidenceRejection,
    },
}

/// Why equivocation evidence is not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceRejection {
    /// No such shard.
    #[error("unknown shard {0}")]
    UnknownShard(u32),
    /// It does not verify against the shard's committee (or does not decode).
    #[error("{0}")]
    Invalid(#[from] CertError),
    /// Evidence against that member for this or a later view is already recorded.
    #[error("evidence for view {view} of {member} is already recorded")]
    Known {
        /// The member.
        member: PublicKey,
        /// The view.
        view: u64,
    },
}

/// The beacon chain state after some block.
///
/// Holds what crosslink verification needs (network, layout version, each shard's committee
/// and epoch, the last crosslinked height per shard) and what destination shards read (the
/// receipts roots of finalized crosslinks, the last [`Self::retention`] per shard), plus the
/// [`ShardConfig`] history: the genesis configuration and every change the beacon finalized,
/// each with the beacon height from which it applies (see [`super::ConfigChange`]), plus one
/// [`ReputationRecord`] per shard committee member (see [`super::reputation`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BeaconState {
    network: NetworkId,
    layout_version: u64,
    committees: BTreeMap<ShardId, ShardCommittee>,
    last_heights: BTreeMap<ShardId, u64>,
    /// Next receipt seq expected per (source, destination) stream.
    next_seqs: BTreeMap<(ShardId, ShardId), u64>,
    receipts_roots: BTreeMap<(ShardId, u64), Hash>,
    retention: usize,
    config_authority: Option<PublicKey>,
    /// Ascending by seq and effective height; never empty.
    config_history: VecDeque<ScheduledConfig>,
    /// One record per shard committee member (created with the committees, never added to).
    reputation: BTreeMap<PublicKey, ReputationRecord>,
    /// Per shard, the height of the highest certified block whose certificate was credited.
    credited_heights: BTreeMap<ShardId, u64>,
    /// Global results of PRSM proposals that need coordination (see [`vision_sharding::global`]).
    prsm: PrsmTable,
    /// Time of the beacon block being applied (set by [`Self::begin_block`]; not in the root,
    /// the header carries it).
    block_ms: u64,
    height: u64,
    tip: Hash,
}

impl BeaconState {
    /// The initial state: no crosslinks yet, at beacon height 0. The tip is set by
    /// [`Self::with_tip`] (the genesis block hash, see [`super::BeaconApp::new`]).
    pub fn new(
        network: NetworkId,
        layout_version: u64,
        committees: BTreeMap<ShardId, ShardCommittee>,
        config: ShardConfig,
    ) -> Self {
        let default_prior =
            Reputation::from_ppm(DEFAULT_REPUTATION_PRIOR_PPM).expect("a ppm value in range");
        let mut reputation = BTreeMap::new();
        for (shard, c) in &committees {
            for m in &c.members {
                reputation
                    .entry(*m)
                    .or_insert_with(|| ReputationRecord::new(*shard, default_prior));
            }
        }
        BeaconState {
            network,
            layout_version,
            committees,
            last_heights: BTreeMap::new(),
            next_seqs: BTreeMap::new(),
            receipts_roots: BTreeMap::new(),
            retention: DEFAULT_ROOT_RETENTION,
            config_authority: None,
            config_history: VecDeque::from([ScheduledConfig {
                seq: 0,
                effective_height: 0,
                layout: Arc::new(
                    ShardLayout::uniform(config.num_shards as usize)
                        .unwrap_or_else(|_| ShardLayout::uniform(1).expect("one shard")),
                ),
                config,
            }]),
            reputation,
            credited_heights: BTreeMap::new(),
            prsm: PrsmTable::default(),
            block_ms: 0,
            height: 0,
            tip: Hash::ZERO,
        }
    }

    /// Sets how many finalized receipts roots are kept per shard (at least 1).
    pub fn with_retention(mut self, retention: usize) -> Self {
        self.retention = retention.max(1);
        self
    }

    /// Sets the genesis reputation (the score's prior) of committee members; members not in
    /// `priors` keep [`DEFAULT_REPUTATION_PRIOR_PPM`], keys of no committee are ignored.
    pub fn with_reputation_priors(mut self, priors: &BTreeMap<PublicKey, Reputation>) -> Self {
        for (key, prior) in priors {
            if let Some(r) = self.reputation.get_mut(key) {
                r.prior = *prior;
            }
        }
        self
    }

    /// The reputation record of the committee member `key`.
    pub fn reputation(&self, key: &PublicKey) -> Option<&ReputationRecord> {
        self.reputation.get(key)
    }

    /// Every committee member's reputation record, by key.
    pub fn reputations(&self) -> &BTreeMap<PublicKey, ReputationRecord> {
        &self.reputation
    }

    /// Sets the key allowed to sign configuration changes (none: changes are refused).
    pub fn with_config_authority(mut self, key: Option<PublicKey>) -> Self {
        self.config_authority = key;
        self
    }

    /// The key allowed to sign configuration changes.
    pub fn config_authority(&self) -> Option<PublicKey> {
        self.config_authority
    }

    /// Sets the block this state is the state after.
    pub fn with_tip(mut self, tip: Hash) -> Self {
        self.tip = tip;
        self
    }

    /// The network id.
    pub fn network(&self) -> &NetworkId {
        &self.network
    }
    /// The shard layout version (part of shard namespaces).
    pub fn layout_version(&self) -> u64 {
        self.layout_version
    }
    /// The committee of `shard`.
    pub fn committee(&self, shard: ShardId) -> Option<&ShardCommittee> {
        self.committees.get(&shard)
    }
    /// The last crosslinked height of `shard` (0 before the first crosslink).
    pub fn last_height(&self, shard: ShardId) -> u64 {
        self.last_heights.get(&shard).copied().unwrap_or(0)
    }
    /// The next seq the beacon expects on every `(src, dst)` receipt stream: the number of
    /// receipts of that stream crosslinked so far (streams start at seq 0).
    pub fn receipt_streams(&self) -> &BTreeMap<(ShardId, ShardId), u64> {
        &self.next_seqs
    }

    /// Cheap test (no content or certificate check) of whether `cl`, a crosslink of `shard`,
    /// may still be accepted: above the shard's last crosslinked height, or carrying receipts
    /// or PRSM events none of whose streams has passed it yet (see [`Self::check_sequence`]).
    pub fn may_accept(&self, shard: ShardId, cl: &Crosslink) -> bool {
        cl.header.height > self.last_height(shard)
            || (carries_streams(cl)
                && cl
                    .destinations
                    .iter()
                    .all(|d| d.first_seq >= self.next_seq(shard, d.dst))
                && !self.prsm.taken(shard, &cl.prsm_events))
    }

    /// The beacon's table of PRSM proposals that need coordination and their global results.
    pub fn prsm(&self) -> &PrsmTable {
        &self.prsm
    }

    /// Starts applying the beacon block at this state's height + 1 with time `timestamp_ms`:
    /// fails the PRSM proposals whose deadline it reaches. Call once per block, before its
    /// crosslinks (propose, verify and apply all do).
    pub fn begin_block(&mut self, timestamp_ms: u64) {
        self.block_ms = timestamp_ms;
        self.prsm.expire(self.height + 1, timestamp_ms);
    }

    /// Next receipt seq expected on the `src → dst` stream.
    pub fn next_seq(&self, src: ShardId, dst: ShardId) -> u64 {
        self.next_seqs.get(&(src, dst)).copied().unwrap_or(0)
    }
    /// The receipts root of `shard`'s finalized crosslink at `height`, if retained.
    pub fn receipts_root(&self, shard: ShardId, height: u64) -> Option<Hash> {
        self.receipts_roots.get(&(shard, height)).copied()
    }
    /// All retained finalized receipts roots (implements `vision_state::FinalRoots`).
    pub fn receipts_roots(&self) -> &BTreeMap<(ShardId, u64), Hash> {
        &self.receipts_roots
    }
    /// Receipts roots kept per shard.
    pub fn retention(&self) -> usize {
        self.retention
    }
    /// The configuration in force at this state's height.
    pub fn config(&self) -> &ShardConfig {
        self.config_at(self.height)
    }

    /// The configuration shard blocks stamped with `beacon_height` execute under (the oldest
    /// kept one for heights before it).
    pub fn config_at(&self, beacon_height: u64) -> &ShardConfig {
        &self.scheduled_at(beacon_height).config
    }

    /// The shard layout (account and contract placement) shard blocks stamped with
    /// `beacon_height` execute under (the oldest kept one for heights before it).
    pub fn layout_at(&self, beacon_height: u64) -> &Arc<ShardLayout> {
        &self.scheduled_at(beacon_height).layout
    }

    /// The history entry in force at `beacon_height` (the oldest kept one before it).
    fn scheduled_at(&self, beacon_height: u64) -> &ScheduledConfig {
        let mut found = &self.config_history[0];
        for c in &self.config_history {
            if c.effective_height > beacon_height {
                break;
            }
            found = c;
        }
        found
    }

    /// The latest finalized shard layout (possibly not in force yet): where new
    /// transactions should go.
    pub fn latest_layout(&self) -> &Arc<ShardLayout> {
        &self.latest_config().layout
    }

    /// The highest beacon height in `from..=to` a shard block whose parent is stamped `from`
    /// may be stamped with: it crosses at most one layout change, so one block never hands
    /// over more than [`super::MAX_MOVES_PER_CHANGE`] accounts.
    pub fn stamp_limit(&self, from: u64, to: u64) -> u64 {
        let mut crossed = false;
        // Entries are ascending by effective height (one change per beacon block), so the
        // layout in force just before an entry is the previous entry's.
        let pairs = self
            .config_history
            .iter()
            .zip(self.config_history.iter().skip(1));
        for (prev, c) in pairs {
            if c.effective_height <= from || c.effective_height > to {
                continue;
            }
            if Arc::ptr_eq(&prev.layout, &c.layout) || *prev.layout == *c.layout {
                continue;
            }
            if crossed {
                return c.effective_height - 1;
            }
            crossed = true;
        }
        to
    }

    /// The accounts whose shard differs between the layouts at beacon heights `from` and
    /// `to` (sorted by account): what a shard block stamped `to` whose parent is stamped
    /// `from` hands over.
    pub fn migrations(&self, from: u64, to: u64) -> Vec<Migration> {
        layout_moves(self.layout_at(from), self.layout_at(to))
    }

    /// The last finalized configuration (possibly not in force yet) and its seq.
    pub fn latest_config(&self) -> &ScheduledConfig {
        self.config_history.back().expect("history is never empty")
    }

    /// The kept configuration history, oldest first.
    pub fn config_history(&self) -> impl DoubleEndedIterator<Item = &ScheduledConfig> {
        self.config_history.iter()
    }

    /// Whether `change` is acceptable as the next configuration change: signed by the
    /// authority, next in sequence, in range, and changing only consensus-level fields.
    pub fn check_config_change(&self, change: &ConfigChange) -> Result<(), ConfigRejection> {
        self.checked_layout(change).map(drop)
    }

    /// [`Self::check_config_change`], returning the layout the change leads to.
    fn checked_layout(&self, change: &ConfigChange) -> Result<Arc<ShardLayout>, ConfigRejection> {
        let authority = self.config_authority.ok_or(ConfigRejection::NoAuthority)?;
        if change.signer != authority {
            return Err(ConfigRejection::NotAuthority(change.signer));
        }
        let latest = self.latest_config();
        if change.seq != latest.seq + 1 {
            return Err(ConfigRejection::WrongSeq {
                expected: latest.seq + 1,
                got: change.seq,
            });
        }
        change
            .config
            .validate()
            .map_err(|e| ConfigRejection::Invalid(e.to_string()))?;
        if let Some(field) = latest.config.fixed_field_changed(&change.config) {
            return Err(ConfigRejection::Fixed(field));
        }
        let layout = self.moved_layout(&change.moves)?;
        if !change.signature_valid(&self.network) {
            return Err(ConfigRejection::BadSignature);
        }
        Ok(layout)
    }

    /// Checks and records `change`, finalized by the block at `block_height`: it applies from
    /// `block_height + CONFIG_ACTIVATION_DELAY`.
    pub fn accept_config_change(
        &mut self,
        change: &ConfigChange,
        block_height: u64,
    ) -> Result<(), ConfigRejection> {
        let layout = self.checked_layout(change)?;
        self.config_history.push_back(ScheduledConfig {
            seq: change.seq,
            effective_height: block_height + CONFIG_ACTIVATION_DELAY,
            config: change.config.clone(),
            layout,
        });
        while self.config_history.len() > CONFIG_HISTORY {
            self.config_history.pop_front();
        }
        Ok(())
    }
    /// The latest layout with `moves` applied (the same `Arc` when there are none): each a
    /// distinct user account (not a contract id) placed on a shard of the layout other than
    /// its current one, at most [`super::MAX_MOVES_PER_CHANGE`], within the override table.
    fn moved_layout(
        &self,
        moves: &[AccountMoveOrder],
    ) -> Result<Arc<ShardLayout>, ConfigRejection> {
        let latest = self.latest_layout();
        if moves.is_empty() {
            return Ok(latest.clone());
        }
        let bad = |m: String| Err(ConfigRejection::BadMove(m));
        if moves.len() > super::MAX_MOVES_PER_CHANGE {
            return bad(format!(
                "{} moves, at most {} per change",
                moves.len(),
                super::MAX_MOVES_PER_CHANGE
            ));
        }
        let mut seen = BTreeSet::new();
        let mut layout = (**latest).clone();
        for m in moves {
            if !seen.insert(&m.account) {
                return bad(format!("{} is moved twice", m.account));
            }
            if ContractId::new(m.account.as_str()).is_ok() {
                return bad(format!(
                    "{} is a contract; contracts do not move",
                    m.account
                ));
            }
            if !layout.contains(m.to) {
                return bad(format!("unknown shard {}", m.to));
            }
            let from = layout.shard_of_account(&m.account);
            if from == m.to {
                return bad(format!("{} already lives on shard {}", m.account, m.to));
            }
            layout = layout
                .move_account(&m.account, m.to)
                .map_err(|e| ConfigRejection::BadMove(e.to_string()))?;
        }
        Ok(Arc::new(layout))
    }

    /// Beacon height of the last applied block.
    pub fn height(&self) -> u64 {
        self.height
    }
    /// Hash of the last applied block.
    pub fn tip(&self) -> Hash {
        self.tip
    }

    /// Commitment to the consensus-relevant state: network, layout version, committees, last
    /// heights, configuration, reputation records (with the credited heights) and the PRSM
    /// table. The
    /// receipts roots are not hashed (they follow from the crosslinks, which the body roots
    /// commit to).
    pub fn root(&self) -> Hash {
        let mut b = Vec::new();
        b.extend_from_slice(BEACON_STATE_NAMESPACE);
        self.network.write(&mut b);
        self.layout_version.write(&mut b);
        (self.committees.len() as u64).write(&mut b);
        for (shard, c) in &self.committees {
            shard.write(&mut b);
            c.epoch.write(&mut b);
            (c.members.len() as u64).write(&mut b);
            for m in &c.members {
                m.write(&mut b);
            }
        }
        (self.last_heights.len() as u64).write(&mut b);
        for (shard, h) in &self.last_heights {
            shard.write(&mut b);
            h.write(&mut b);
        }
        (self.next_seqs.len() as u64).write(&mut b);
        for ((src, dst), seq) in &self.next_seqs {
            src.write(&mut b);
            dst.write(&mut b);
            seq.write(&mut b);
        }
        self.config_authority.is_some().write(&mut b);
        if let Some(k) = &self.config_authority {
            k.write(&mut b);
        }
        (self.config_history.len() as u64).write(&mut b);
        for c in &self.config_history {
            c.seq.write(&mut b);
            c.effective_height.write(&mut b);
            c.config.write(&mut b);
            c.layout.write(&mut b);
        }
        (self.credited_heights.len() as u64).write(&mut b);
        for (shard, h) in &self.credited_heights {
            shard.write(&mut b);
            h.write(&mut b);
        }
        (self.reputation.len() as u64).write(&mut b);
        for (key, r) in &self.reputation {
            key.write(&mut b);
            r.write_to(&mut b);
        }
        self.prsm.write_to(&mut b);
        Hash::sha256(&b)
    }

    /// Everything but the certificate: content, known shard, header epoch equal to the
    /// committee's, every destination entry continuing its receipt stream, and a height
    /// strictly above the last accepted one — except for a crosslink that carries receipts,
    /// which may come below it when it continues every one of its streams. Crosslinks of one
    /// shard can reach a beacon leader out of order (a lost message): one carrying only
    /// receipts for shard 2 can be finalized while an older one carrying receipts for shard 3
    /// is still on its way, and refusing the older one then would stop the 3-bound stream for
    /// good. The streams' seq continuity is what makes each batch count exactly once; the
    /// height rule only refuses stale crosslinks that carry nothing. Returns the shard.
    pub fn check_sequence(&self, cl: &Crosslink) -> Result<ShardId, CrosslinkRejection> {
        cl.check_content()?;
        let ChainRef::Shard(shard) = cl.header.chain else {
            return Err(CrosslinkError::NotAShard.into());
        };
        let committee = self
            .committees
            .get(&shard)
            .ok_or(CrosslinkRejection::UnknownShard(shard.0))?;
        let last = self.last_height(shard);
        let not_above = CrosslinkRejection::NotAbove {
            shard: shard.0,
            height: cl.header.height,
            last,
        };
        let below = cl.header.height <= last;
        if below && !carries_streams(cl) {
            return Err(not_above);
        }
        if cl.header.epoch != committee.epoch {
            return Err(CrosslinkRejection::WrongEpoch {
                expected: committee.epoch,
                found: cl.header.epoch,
            });
        }
        for d in &cl.destinations {
            if !self.committees.contains_key(&d.dst) {
                return Err(CrosslinkRejection::UnknownDestination(d.dst.0));
            }
            let expected = self.next_seq(shard, d.dst);
            if below && d.first_seq < expected {
                // Already crosslinked (a replay of an accepted crosslink).
                return Err(not_above);
            }
            if d.first_seq != expected {
                return Err(CrosslinkRejection::OutOfOrder {
                    src: shard.0,
                    dst: d.dst.0,
                    expected,
                    got: d.first_seq,
                });
            }
        }
        if below && self.prsm.taken(shard, &cl.prsm_events) {
            return Err(not_above);
        }
        self.prsm.check(shard, &cl.prsm_events).map_err(|gap| {
            CrosslinkRejection::PrsmOutOfOrder {
                shard: shard.0,
                expected: gap.expected,
                got: gap.got,
            }
        })?;
        Ok(shard)
    }

    /// Whether `cl` is acceptable as the next crosslink of its shard: [`Self::check_sequence`]
    /// (which includes: every destination entry continues its receipt stream, so no batch can
    /// be skipped) and a finalization certificate of the header hash (or of its last ancestry
    /// header, [`Crosslink::certified_hash`]) from ≥ 2/3 of the shard committee,
    /// in the committee's epoch, under the shard's namespace (network, shard, layout version).
    ///
    /// `rng` only seeds batch verification; the verdict does not depend on it.
    pub fn check_crosslink(
        &self,
        cl: &Crosslink,
        rng: &mut impl CryptoRng,
    ) -> Result<(), CrosslinkRejection> {
        let shard = self.check_sequence(cl)?;
        let committee = &self.committees[&shard];
        let ns = namespace(&self.network, ChainRef::Shard(shard), self.layout_version);
        verify_finalization_certificate(
            &cl.certificate,
            &ns,
            &committee.members,
            &cl.certified_hash(),
            committee.epoch,
            rng,
        )?;
        Ok(())
    }

    /// Credits the reputation records of `shard`'s committee from `cl` (see
    /// [`super::reputation`]), once per certified height: only when the block `cl`'s
    /// certificate certifies is above the highest one credited for the shard (so a replayed
    /// or older crosslink credits nothing). Undecodable certificate bytes credit no vote (a
    /// checked crosslink always decodes).
    fn credit(&mut self, shard: ShardId, cl: &Crosslink) {
        let certified_height = cl.ancestry.last().map_or(cl.header.height, |h| h.height);
        let credited = self.credited_heights.get(&shard).copied().unwrap_or(0);
        if certified_height <= credited {
            return;
        }
        self.credited_heights.insert(shard, certified_height);
        let Some(committee) = self.committees.get(&shard) else {
            return;
        };
        if let Ok(signers) = certificate_signers(&cl.certificate, &committee.members) {
            for m in &committee.members {
                if let Some(r) = self.reputation.get_mut(m) {
                    if signers.contains(m) {
                        r.finalize_votes = r.finalize_votes.saturating_add(1);
                    } else {
                        r.missed = r.missed.saturating_add(1);
                    }
                }
            }
        }
        for h in std::iter::once(&cl.header).chain(&cl.ancestry) {
            if h.height <= credited || !committee.members.contains(&h.proposer) {
                continue;
            }
            if let Some(r) = self.reputation.get_mut(&h.proposer) {
                r.blocks_finalized = r.blocks_finalized.saturating_add(1);
            }
        }
    }

    /// Credits the proposer of a beacon block (a committee member's record, if it has one):
    /// part of the state after the block, so call it before [`Self::root`] and
    /// [`Self::advance`].
    pub(crate) fn credit_beacon_proposer(&mut self, proposer: &PublicKey) {
        if let Some(r) = self.reputation.get_mut(proposer) {
            r.beacon_blocks_finalized = r.beacon_blocks_finalized.saturating_add(1);
        }
    }

    /// Records an accepted crosslink (the caller checked it).
    pub(crate) fn record(&mut self, shard: ShardId, cl: &Crosslink) {
        self.credit(shard, cl);
        let height = cl.header.height;
        let last = self.last_heights.entry(shard).or_insert(0);
        *last = (*last).max(height);
        for d in &cl.destinations {
            self.next_seqs.insert((shard, d.dst), d.end_seq());
        }
        let committees = &self.committees;
        self.prsm.apply(
            shard,
            &cl.prsm_events,
            self.height + 1,
            self.block_ms,
            |s| committees.contains_key(&s),
        );
        if cl.destinations.is_empty() {
            return;
        }
        self.receipts_roots
            .insert((shard, height), cl.header.receipts_root);
        let kept = self
            .receipts_roots
            .range((shard, 0)..=(shard, u64::MAX))
            .count();
        if kept > self.retention {
            let drop: Vec<_> = self
                .receipts_roots
                .range((shard, 0)..=(shard, u64::MAX))
                .take(kept - self.retention)
                .map(|(k, _)| *k)
                .collect();
            for k in drop {
                self.receipts_roots.remove(&k);
            }
        }
    }

    /// Checks (certificates included) and records one crosslink: the building step of
    /// propose and verify.
    pub fn accept_crosslink(
        &mut self,
        cl: &Crosslink,
        rng: &mut impl CryptoRng,
    ) -> Result<(), CrosslinkRejection> {
        self.check_crosslink(cl, rng)?;
        let shard = self.check_sequence(cl)?;
        self.record(shard, cl);
        Ok(())
    }

    /// Checks equivocation evidence: its shard's committee signed it (both votes, same member
    /// and view, in the committee's epoch, under the shard's namespace) and nothing at that
    /// view or later is recorded for the member yet. Returns the fault.
    pub fn check_evidence(
        &self,
        ev: &FaultEvidence,
        rng: &mut impl CryptoRng,
    ) -> Result<Fault, EvidenceRejection> {
        let committee = self.evidence_committee(ev)?;
        let ns = namespace(
            &self.network,
            ChainRef::Shard(ev.shard),
            self.layout_version,
        );
        let fault =
            verify_fault_evidence(&ev.bytes, &ns, &committee.members, committee.epoch, rng)?;
        self.check_new_fault(&fault)?;
        Ok(fault)
    }

    /// What already verified evidence (in a finalized block) claims, if it is new.
    fn fault_in_block(&self, ev: &FaultEvidence) -> Result<Fault, EvidenceRejection> {
        let committee = self.evidence_committee(ev)?;
        let fault = fault_of(&ev.bytes, &committee.members)?;
        self.check_new_fault(&fault)?;
        Ok(fault)
    }

    /// Checks (signatures included) and records one piece of evidence: the building step of
    /// propose and verify, as [`Self::accept_crosslink`] is for crosslinks.
    pub fn accept_evidence(
        &mut self,
        ev: &FaultEvidence,
        rng: &mut impl CryptoRng,
    ) -> Result<(), EvidenceRejection> {
        let fault = self.check_evidence(ev, rng)?;
        self.record_fault(&fault);
        Ok(())
    }

    fn evidence_committee(&self, ev: &FaultEvidence) -> Result<&ShardCommittee, EvidenceRejection> {
        self.committees
            .get(&ev.shard)
            .ok_or(EvidenceRejection::UnknownShard(ev.shard.0))
    }

    /// Whether already verified evidence could still be recorded (no evidence for its view
    /// or a later one recorded against the member).
    pub(crate) fn still_new(&self, ev: &FaultEvidence) -> bool {
        self.fault_in_block(ev).is_ok()
    }

    fn check_new_fault(&self, fault: &Fault) -> Result<(), EvidenceRejection> {
        let seen = self
            .reputation
            .get(&fault.member)
            .and_then(|r| r.equivocation_view);
        if seen.is_some_and(|v| v >= fault.view) {
            return Err(EvidenceRejection::Known {
                member: fault.member,
                view: fault.view,
            });
        }
        Ok(())
    }

    /// Records a checked fault in the member's reputation record.
    pub(crate) fn record_fault(&mut self, fault: &Fault) {
        if let Some(r) = self.reputation.get_mut(&fault.member) {
            r.equivocations = r.equivocations.saturating_add(1);
            r.equivocation_view = Some(fault.view);
        }
    }

    /// Moves the state to after `block` once its crosslinks were accepted.
    pub(crate) fn advance(&mut self, block: &BeaconBlock) {
        self.height = block.header.height;
        self.tip = block.header.hash();
    }

    /// Applies a finalized block: it must be the child of the tip and its crosslinks in
    /// sequence ([`Self::check_sequence`], in block order). Certificates are not re-verified:
    /// a finalized block was verified by a quorum of the beacon committee (use
    /// [`Self::accept_crosslink`] for untrusted blocks). Configuration changes are checked in
    /// full (they are few and cheap). Atomic: on error nothing changes.
    pub fn apply_block(&mut self, block: &BeaconBlock) -> Result<(), ApplyError> {
        if block.header.chain != ChainRef::Beacon
            || block.header.height != self.height + 1
            || block.header.parent != self.tip
        {
            return Err(ApplyError::NotAChild {
                height: self.height,
            });
        }
        // Validate in order on a copy (each crosslink against the ones before it).
        let mut next = self.clone();
        next.begin_block(block.header.timestamp_ms);
        for (index, cl) in block.crosslinks.iter().enumerate() {
            let shard = next
                .check_sequence(cl)
                .map_err(|reason| ApplyError::Crosslink { index, reason })?;
            next.record(shard, cl);
        }
        for change in &block.config_changes {
            next.accept_config_change(change, block.header.height)?;
        }
        for (index, ev) in block.evidence.iter().enumerate() {
            let fault = next
                .fault_in_block(ev)
                .map_err(|reason| ApplyError::Evidence { index, reason })?;
            next.record_fault(&fault);
        }
        next.credit_beacon_proposer(&block.header.proposer);
        next.advance(block);
        *self = next;
        Ok(())
    }
}

/// Whether a crosslink carries receipts or PRSM events: streams whose seq continuity lets it be
/// accepted below its shard's last crosslinked height.
fn carries_streams(cl: &Crosslink) -> bool {
    !cl.destinations.is_empty() || !cl.prsm_events.is_empty()
}

/// The accounts whose shard differs between two layouts (by their override tables), sorted by
/// account: what moves when `new` replaces `old`.
pub fn layout_moves(old: &Arc<ShardLayout>, new: &Arc<ShardLayout>) -> Vec<Migration> {
    if Arc::ptr_eq(old, new) || old == new {
        return Vec::new();
    }
    let accounts: BTreeSet<&AccountId> = old
        .overrides()
        .iter()
        .chain(new.overrides())
        .filter_map(|o| match &o.key {
            LayoutKey::Account(a) => Some(a),
            LayoutKey::Contract(_) => None,
        })
        .collect();
    accounts
        .into_iter()
        .filter_map(|a| {
            let (from, to) = (old.shard_of_account(a), new.shard_of_account(a));
            (from != to).then(|| Migration {
                account: a.clone(),
                from,
                to,
            })
        })
        .collect()
}
