//! The records stored in the state (see [`crate::keys`] for where each lives).

use bytes::BufMut;
use commonware_codec::{Buf, DecodeExt, Encode, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};
use vision_types::{AccountId, Amount, CallId, ContractId, Hash, PublicKey, ShardId};

/// An account: balance, next nonce and the key bound to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: Amount,
    /// The nonce the next transaction of this account must carry.
    pub nonce: u64,
    /// The key that signs for the account.
    pub public_key: PublicKey,
}

impl Write for Account {
    fn write(&self, buf: &mut impl BufMut) {
        self.balance.write(buf);
        self.nonce.write(buf);
        self.public_key.write(buf);
    }
}

impl EncodeSize for Account {
    fn encode_size(&self) -> usize {
        16 + 8 + 32
    }
}

impl Read for Account {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Account {
            balance: Amount::read_cfg(buf, &())?,
            nonce: u64::read_cfg(buf, &())?,
            public_key: PublicKey::read_cfg(buf, &())?,
        })
    }
}

/// The mark of an account moving to this shard whose `Migrate` receipt has not arrived yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigratingMark {
    /// The shard it moves from.
    pub from: ShardId,
    /// Returning coin (refunds, call results) that arrived for it while it did not exist
    /// here yet: credited when its `Migrate` arrives. Part of the shard's supply.
    pub held: Amount,
}

impl Write for MigratingMark {
    fn write(&self, buf: &mut impl BufMut) {
        self.from.write(buf);
        self.held.write(buf);
    }
}

impl EncodeSize for MigratingMark {
    fn encode_size(&self) -> usize {
        4 + 16
    }
}

impl Read for MigratingMark {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(MigratingMark {
            from: ShardId::read_cfg(buf, &())?,
            held: Amount::read_cfg(buf, &())?,
        })
    }
}

/// The pending crosslink batch: receipts emitted since the last close.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingMeta {
    /// Number of pending receipts.
    pub count: u32,
    /// Block time of the block that emitted the first pending receipt.
    pub first_receipt_ms: u64,
}

impl Write for PendingMeta {
    fn write(&self, buf: &mut impl BufMut) {
        self.count.write(buf);
        self.first_receipt_ms.write(buf);
    }
}

impl EncodeSize for PendingMeta {
    fn encode_size(&self) -> usize {
        12
    }
}

impl Read for PendingMeta {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(PendingMeta {
            count: u32::read_cfg(buf, &())?,
            first_receipt_ms: u64::read_cfg(buf, &())?,
        })
    }
}

/// The last block executed on this shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainMeta {
    /// Height of the last executed block (0 = genesis).
    pub height: u64,
    /// Its block time.
    pub timestamp_ms: u64,
    /// The beacon height it was stamped with (the layout and configuration it executed
    /// under; 0 at genesis).
    pub beacon_height: u64,
}

impl Write for ChainMeta {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.timestamp_ms.write(buf);
        self.beacon_height.write(buf);
    }
}

impl EncodeSize for ChainMeta {
    fn encode_size(&self) -> usize {
        24
    }
}

impl Read for ChainMeta {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(ChainMeta {
            height: u64::read_cfg(buf, &())?,
            timestamp_ms: u64::read_cfg(buf, &())?,
            beacon_height: u64::read_cfg(buf, &())?,
        })
    }
}

/// A contract's header (its key-value state and call history are separate entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractMeta {
    /// The contract id.
    pub id: ContractId,
    /// Human-readable name.
    pub name: String,
    /// The deployer.
    pub owner: AccountId,
    /// Where the contract's state lives.
    pub primary_shard: ShardId,
    /// Selects the template.
    pub code_hash: String,
    /// Most gas one call may use (the seed's `gas_budget`).
    pub gas_budget: u64,
    /// Native coin held by the contract (attached to calls, paid out by them).
    pub balance: Amount,
    /// The deploying transaction.
    pub deploy_tx: Hash,
    /// Height of the block that deployed it.
    #[serde(default)]
    pub created_height: u64,
}

pub use crate::contracts::CallStatus;

/// A cross-shard call, as recorded on the caller's shard and in the contract's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// `xscall_…`.
    pub id: CallId,
    /// The caller's shard.
    pub from_shard: ShardId,
    /// The contract's shard.
    pub to_shard: ShardId,
    /// The contract.
    pub contract_id: ContractId,
    /// Method.
    pub method: String,
    /// Arguments.
    pub args: Vec<String>,
    /// The calling account.
    pub caller: AccountId,
    /// Native coin attached.
    pub amount: Amount,
    /// Status.
    pub status: CallStatus,
    /// The result (JSON text) or failure reason, once known.
    pub output: Option<String>,
    /// The calling transaction.
    pub origin_tx: Hash,
}

/// Where a PRSM proposal stands on its coordinating shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Waiting for its target shard's vote; for a proposal that needs coordination, always
    /// (the beacon chain records its result, see `exec::proposals`).
    Pending,
    /// Accepted by its only target (no coordination asked for).
    Achieved,
    /// Rejected by its only target, or no vote before the coordination timeout.
    Failed,
}

/// One target shard's finalized decision on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardVote {
    /// The deciding shard.
    pub shard: ShardId,
    /// Whether it accepted the proposal.
    pub accepted: bool,
    /// Why it rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deciding shard's block height that finalized the decision.
    pub height: u64,
    /// The coordinating shard's block time when the vote was counted (ms).
    pub counted_ms: u64,
}

/// The shard's PRSM event stream (see [`vision_types::prsm::PrsmEvent`]): the seq of the next
/// event and the events waiting in the pending batch (they leave with it in its crosslink).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrsmOutbox {
    /// The seq the next event gets (events are numbered from 0).
    pub next_seq: u64,
    /// Block time of the first pending event (ms; meaningless when there is none).
    pub first_ms: u64,
    /// The pending events, in seq order.
    pub events: Vec<vision_types::prsm::PrsmEvent>,
}

/// A PRSM proposal as its coordinating shard (the proposer's shard) records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalRecord {
    /// The proposal id: the submitting transaction's id.
    pub id: Hash,
    /// The account that submitted it.
    pub proposer: AccountId,
    /// What is proposed.
    pub action: String,
    /// The payload.
    pub data: String,
    /// Whether every shard was targeted.
    pub affects_multiple_shards: bool,
    /// Whether the proposer asked for cross-shard coordination.
    pub coordination_required: bool,
    /// The coordinating shard.
    pub coordinating_shard: ShardId,
    /// The target shards (sorted), by the PRSM targeting rule.
    pub targets: Vec<ShardId>,
    /// The votes counted so far, in arrival order.
    pub votes: Vec<ShardVote>,
    /// Where it stands.
    pub status: ProposalStatus,
    /// Why it failed, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Coordinating shard height that included the proposal.
    pub submitted_height: u64,
    /// That block's time (ms).
    pub submitted_ms: u64,
    /// Block time after which an undecided proposal fails (submitted + 60 s).
    pub deadline_ms: u64,
    /// Coordinating shard height that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_height: Option<u64>,
    /// That block's time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<u64>,
}

impl ProposalRecord {
    /// Whether the result needs the cross-shard rule: coordination was asked for, or there
    /// is more than one target.
    pub fn needs_coordination(&self) -> bool {
        self.coordination_required || self.targets.len() > 1
    }

    /// Number of counted acceptances.
    pub fn accepted(&self) -> u64 {
        self.votes.iter().filter(|v| v.accepted).count() as u64
    }

    /// The decision the counted vote already forces on a proposal its coordinating shard
    /// decides (one target, no coordination asked for): that shard's vote. `None` while it
    /// has not come, and always for a proposal that needs coordination (the beacon chain
    /// decides those).
    pub fn forced_decision(&self) -> Option<(ProposalStatus, Option<String>)> {
        if self.needs_coordination() {
            return None;
        }
        let v = self.votes.first()?;
        Some(if v.accepted {
            (ProposalStatus::Achieved, None)
        } else {
            (
                ProposalStatus::Failed,
                Some(format!(
                    "shard {} rejected it: {}",
                    v.shard,
                    v.reason.as_deref().unwrap_or("no reason given")
                )),
            )
        })
    }
}

/// Encodes a codec value.
pub fn enc<T: Encode>(v: &T) -> Vec<u8> {
    v.encode().to_vec()
}

/// Decodes a codec value stored by this crate. Stored values were written by [`enc`], so a
/// failure means corrupted storage: a bug, never an input error.
pub fn dec<T: commonware_codec::Read<Cfg = ()>>(bytes: &[u8]) -> T {
    T::decode(bytes.to_vec()).expect("corrupted state entry")
}

/// Encodes a JSON record.
pub fn enc_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("state records serialize")
}

/// Decodes a JSON record stored by this crate (see [`dec`]).
pub fn dec_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).expect("corrupted state record")
}
