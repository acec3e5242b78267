//! The state key layout: every piece of a shard's state is one entry of one key-value space,
//! so a single authenticated root covers all of it.
//!
//! | key bytes | value | what |
//! |---|---|---|
//! | `0x01 ‖ account` | [`Account`](crate::model::Account) (codec) | balance, nonce, public key |
//! | `0x02 ‖ contract` | [`ContractMeta`](crate::model::ContractMeta) (JSON) | contract header and native balance |
//! | `0x03 ‖ contract ‖ key` | UTF-8 value | one entry of a contract's key-value state |
//! | `0x04 ‖ contract ‖ n (u64 BE)` | [`CallRecord`](crate::model::CallRecord) (JSON) | the contract's cross-shard call history, oldest first; only the last [`MAX_CALL_HISTORY`](crate::contracts::MAX_CALL_HISTORY) are kept |
//! | `0x06 ‖ contract` | u64 BE | number of calls ever recorded in the contract's history |
//! | `0x05 ‖ call_id` | [`CallRecord`](crate::model::CallRecord) (JSON) | caller-side record of an outgoing cross-shard call |
//! | `0x07 ‖ proposal id` | [`ProposalRecord`](crate::model::ProposalRecord) (JSON) | a PRSM proposal this shard coordinates: targets, votes, result |
//! | `0x08 ‖ proposal id` | [`ShardVote`](crate::model::ShardVote) (JSON) | this shard's own decision on a proposal it was asked about |
//! | `0x09 ‖ account` | [`MigratingMark`](crate::model::MigratingMark) (codec) | an account moving to this shard whose `Migrate` receipt has not arrived yet: where from, and returning coin held for it |
//! | `0x14` | `[(deadline_ms, proposal id)]` (JSON) | proposals this shard coordinates that are still undecided, oldest first |
//! | `0x15` | u64 BE | encoded bytes of the pending batch's receipts |
//! | `0x10 ‖ dst (u32 BE)` | u64 BE | next outbox seq for `dst` |
//! | `0x11 ‖ src (u32 BE)` | u64 BE | next expected inbox seq from `src` |
//! | `0x12` | [`PendingMeta`](crate::model::PendingMeta) (codec) | the pending batch: count, first receipt's block time |
//! | `0x13 ‖ index (u32 BE)` | [`Receipt`](vision_types::Receipt) (codec) | receipts of the pending batch, in emission order |
//! | `0x16` | [`PrsmOutbox`](crate::model::PrsmOutbox) (JSON) | next PRSM event seq and the events of the pending batch |
//! | `0x20 ‖ counter` | u128 / u64 BE | [`Counter`]s: burned fees, sent, received, … |
//! | `0x21` | [`ChainMeta`](crate::model::ChainMeta) (codec) | last executed height and block time |
//!
//! Contract ids have a fixed length (41 bytes), so `0x03 ‖ contract` and `0x04 ‖ contract` are
//! unambiguous prefixes.

use vision_types::{AccountId, CallId, ContractId, Hash, ShardId};

/// Tag of account entries.
pub const TAG_ACCOUNT: u8 = 0x01;
/// Tag of contract headers.
pub const TAG_CONTRACT: u8 = 0x02;
/// Tag of contract state entries.
pub const TAG_CONTRACT_ENTRY: u8 = 0x03;
/// Tag of a contract's call history entries.
pub const TAG_CONTRACT_CALL: u8 = 0x04;
/// Tag of caller-side call records.
pub const TAG_CALL: u8 = 0x05;
/// Tag of a contract's call history counter.
pub const TAG_CONTRACT_CALL_COUNT: u8 = 0x06;
/// Tag of PRSM proposals coordinated by this shard.
pub const TAG_PROPOSAL: u8 = 0x07;
/// Tag of this shard's own votes on PRSM proposals.
pub const TAG_PROPOSAL_VOTE: u8 = 0x08;
/// Tag of accounts awaiting their `Migrate` receipt (moving in).
pub const TAG_MIGRATING: u8 = 0x09;
/// Tag of the undecided-proposals index.
pub const TAG_PENDING_PROPOSALS: u8 = 0x14;
/// Tag of the pending batch's byte count.
pub const TAG_PENDING_BYTES: u8 = 0x15;
/// Tag of the PRSM event outbox (next event seq and the pending batch's events).
pub const TAG_PRSM_OUTBOX: u8 = 0x16;
/// Tag of outbox seq counters.
pub const TAG_OUTBOX: u8 = 0x10;
/// Tag of inbox next-expected seqs.
pub const TAG_INBOX: u8 = 0x11;
/// Tag of the pending batch header.
pub const TAG_PENDING_META: u8 = 0x12;
/// Tag of pending batch receipts.
pub const TAG_PENDING_RECEIPT: u8 = 0x13;
/// Tag of counters.
pub const TAG_COUNTER: u8 = 0x20;
/// Tag of the chain meta entry.
pub const TAG_CHAIN_META: u8 = 0x21;

/// Shard-wide counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Σ fees burned on this shard (u128).
    Burned = 1,
    /// Σ amounts of receipts this shard emitted (u128).
    Sent = 2,
    /// Σ amounts of receipts this shard applied (u128), refunds included.
    Received = 3,
    /// Σ amounts that could not be delivered anywhere (a refund whose recipient is gone; u128).
    Unclaimed = 4,
    /// Number of transactions executed (u64 stored as u128).
    TxCount = 5,
    /// Σ genesis balances of this shard (u128).
    GenesisSupply = 6,
}

fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(tag);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// The key of an account.
pub fn account(id: &AccountId) -> Vec<u8> {
    tagged(TAG_ACCOUNT, &[id.as_str().as_bytes()])
}

/// The key of a contract header.
pub fn contract(id: &ContractId) -> Vec<u8> {
    tagged(TAG_CONTRACT, &[id.as_str().as_bytes()])
}

/// The key of one contract state entry.
pub fn contract_entry(id: &ContractId, key: &str) -> Vec<u8> {
    tagged(
        TAG_CONTRACT_ENTRY,
        &[id.as_str().as_bytes(), key.as_bytes()],
    )
}

/// The prefix of all state entries of a contract.
pub fn contract_entry_prefix(id: &ContractId) -> Vec<u8> {
    tagged(TAG_CONTRACT_ENTRY, &[id.as_str().as_bytes()])
}

/// The key of the `n`-th call recorded in a contract's history.
pub fn contract_call(id: &ContractId, n: u64) -> Vec<u8> {
    tagged(
        TAG_CONTRACT_CALL,
        &[id.as_str().as_bytes(), &n.to_be_bytes()],
    )
}

/// The key of the number of calls ever recorded in a contract's history.
pub fn contract_call_count(id: &ContractId) -> Vec<u8> {
    tagged(TAG_CONTRACT_CALL_COUNT, &[id.as_str().as_bytes()])
}

/// The prefix of a contract's call history.
pub fn contract_call_prefix(id: &ContractId) -> Vec<u8> {
    tagged(TAG_CONTRACT_CALL, &[id.as_str().as_bytes()])
}

/// The key of a caller-side call record.
pub fn call(call: &CallId) -> Vec<u8> {
    tagged(TAG_CALL, &[&call.0])
}

/// The key of a proposal coordinated by this shard.
pub fn proposal(id: &Hash) -> Vec<u8> {
    tagged(TAG_PROPOSAL, &[&id.0])
}

/// The key of this shard's own vote on a proposal.
pub fn proposal_vote(id: &Hash) -> Vec<u8> {
    tagged(TAG_PROPOSAL_VOTE, &[&id.0])
}

/// The key of an account's awaiting mark: it is moving to this shard and its `Migrate`
/// receipt has not arrived yet.
pub fn migrating(id: &AccountId) -> Vec<u8> {
    tagged(TAG_MIGRATING, &[id.as_str().as_bytes()])
}

/// The key of the undecided-proposals index.
pub fn pending_proposals() -> Vec<u8> {
    vec![TAG_PENDING_PROPOSALS]
}

/// The key of the PRSM event outbox.
pub fn prsm_outbox() -> Vec<u8> {
    vec![TAG_PRSM_OUTBOX]
}

/// The key of the outbox seq counter for `dst`.
pub fn outbox(dst: ShardId) -> Vec<u8> {
    tagged(TAG_OUTBOX, &[&dst.0.to_be_bytes()])
}

/// The key of the inbox next-expected seq from `src`.
pub fn inbox(src: ShardId) -> Vec<u8> {
    tagged(TAG_INBOX, &[&src.0.to_be_bytes()])
}

/// The key of the pending batch header.
pub fn pending_meta() -> Vec<u8> {
    vec![TAG_PENDING_META]
}

/// The key of the pending batch's byte count.
pub fn pending_bytes() -> Vec<u8> {
    vec![TAG_PENDING_BYTES]
}

/// The key of the `index`-th receipt of the pending batch.
pub fn pending_receipt(index: u32) -> Vec<u8> {
    tagged(TAG_PENDING_RECEIPT, &[&index.to_be_bytes()])
}

/// The prefix of all pending receipts.
pub fn pending_receipt_prefix() -> Vec<u8> {
    vec![TAG_PENDING_RECEIPT]
}

/// The key of a counter.
pub fn counter(c: Counter) -> Vec<u8> {
    vec![TAG_COUNTER, c as u8]
}

/// The key of the chain meta entry.
pub fn chain_meta() -> Vec<u8> {
    vec![TAG_CHAIN_META]
}

/// The account a key names, if it is an account key.
pub fn parse_account(key: &[u8]) -> Option<AccountId> {
    let rest = key.strip_prefix(&[TAG_ACCOUNT])?;
    AccountId::new(std::str::from_utf8(rest).ok()?).ok()
}

/// The contract a header key names, if it is a contract header key.
pub fn parse_contract(key: &[u8]) -> Option<ContractId> {
    let rest = key.strip_prefix(&[TAG_CONTRACT])?;
    ContractId::new(std::str::from_utf8(rest).ok()?).ok()
}
