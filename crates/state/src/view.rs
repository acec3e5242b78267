//! Reading state: the [`StateView`] trait, an in-memory state, and the copy-on-write overlay
//! that block execution writes into.

use crate::{
    keys::{self, Counter},
    model::{
        Account, CallRecord, ChainMeta, ContractMeta, MigratingMark, PendingMeta, ProposalRecord,
        PrsmOutbox, ShardVote, dec, dec_json,
    },
};
use std::collections::BTreeMap;
use vision_types::{AccountId, Amount, CallId, ContractId, Hash, Receipt, ShardId};

/// Changes produced by a block: key → `Some(new value)` or `None` (delete). Ordered, so
/// applying it is deterministic.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Read access to a shard's state. Synchronous: stores keep the committed state readable
/// in memory (see [`crate::store`]).
pub trait StateView {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;

    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
}

impl<T: StateView + ?Sized> StateView for &T {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        (**self).get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        (**self).scan_prefix(prefix)
    }
}

/// A plain in-memory state (no root). Used as the readable mirror of every store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemState {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a write set.
    pub fn apply(&mut self, writes: &WriteSet) {
        for (k, v) in writes {
            match v {
                Some(v) => {
                    self.entries.insert(k.clone(), v.clone());
                }
                None => {
                    self.entries.remove(k);
                }
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.entries
    }

    /// Inserts one entry (used when rebuilding from storage).
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.entries.insert(key, value);
    }

    /// Removes one entry (used when rebuilding from storage).
    pub fn remove(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }
}

impl StateView for MemState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A view plus uncommitted writes on top of it.
pub struct Overlay<'a> {
    base: &'a dyn StateView,
    writes: WriteSet,
}

impl<'a> Overlay<'a> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a dyn StateView) -> Self {
        Overlay {
            base,
            writes: WriteSet::new(),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Adds writes made by a child overlay.
    pub fn extend(&mut self, writes: WriteSet) {
        self.writes.extend(writes);
    }

    /// The view under the writes.
    pub fn base(&self) -> &'a dyn StateView {
        self.base
    }

    /// The writes so far.
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    /// The writes, dropping writes that leave a key as it was in the base.
    pub fn into_writes(self) -> WriteSet {
        let base = self.base;
        self.writes
            .into_iter()
            .filter(|(k, v)| base.get(k) != *v)
            .collect()
    }

    /// The writes, without comparing to the base (for merging into a parent overlay).
    pub fn into_raw_writes(self) -> WriteSet {
        self.writes
    }
}

impl StateView for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan_prefix(prefix).into_iter().collect();
        for (k, v) in self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => {
                    merged.insert(k.clone(), v.clone());
                }
                None => {
                    merged.remove(k);
                }
            }
        }
        merged.into_iter().collect()
    }
}

/// Typed reads over any [`StateView`].
pub trait StateReadExt: StateView {
    /// An account.
    fn account(&self, id: &AccountId) -> Option<Account> {
        self.get(&keys::account(id)).map(|b| dec(&b))
    }

    /// A contract header.
    fn contract(&self, id: &ContractId) -> Option<ContractMeta> {
        self.get(&keys::contract(id)).map(|b| dec_json(&b))
    }

    /// A contract's key-value state.
    fn contract_state(&self, id: &ContractId) -> BTreeMap<String, String> {
        let prefix = keys::contract_entry_prefix(id);
        self.scan_prefix(&prefix)
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k[prefix.len()..].to_vec()).expect("utf-8 contract key"),
                    String::from_utf8(v).expect("utf-8 contract value"),
                )
            })
            .collect()
    }

    /// A contract's cross-shard call history (ordered by call id).
    fn contract_calls(&self, id: &ContractId) -> Vec<CallRecord> {
        self.scan_prefix(&keys::contract_call_prefix(id))
            .into_iter()
            .map(|(_, v)| dec_json(&v))
            .collect()
    }

    /// A contract in the seed's `ShardContract` shape (header, state and call history; the
    /// history ordered by call id), for the API.
    fn shard_contract(&self, id: &ContractId) -> Option<crate::contracts::ShardContract> {
        let meta = self.contract(id)?;
        Some(crate::contracts::ShardContract {
            id: meta.id,
            name: meta.name,
            owner: meta.owner,
            primary_shard: meta.primary_shard,
            code_hash: meta.code_hash,
            state: self.contract_state(id),
            cross_shard_calls: self
                .contract_calls(id)
                .into_iter()
                .map(|c| crate::contracts::CrossShardCall {
                    id: c.id,
                    from_shard: c.from_shard,
                    to_shard: c.to_shard,
                    contract_id: c.contract_id,
                    method: c.method,
                    args: c.args,
                    status: c.status,
                    result: c.output,
                })
                .collect(),
            gas_budget: meta.gas_budget,
            created_height: meta.created_height,
        })
    }

    /// Every contract header on this shard.
    fn contracts(&self) -> Vec<ContractMeta> {
        self.scan_prefix(&[keys::TAG_CONTRACT])
            .into_iter()
            .map(|(_, v)| dec_json(&v))
            .collect()
    }

    /// Every account on this shard.
    fn accounts(&self) -> Vec<(AccountId, Account)> {
        self.scan_prefix(&[keys::TAG_ACCOUNT])
            .into_iter()
            .filter_map(|(k, v)| Some((keys::parse_account(&k)?, dec(&v))))
            .collect()
    }

    /// A caller-side cross-shard call record.
    fn call_record(&self, id: &CallId) -> Option<CallRecord> {
        self.get(&keys::call(id)).map(|b| dec_json(&b))
    }

    /// A PRSM proposal this shard coordinates.
    fn proposal(&self, id: &Hash) -> Option<ProposalRecord> {
        self.get(&keys::proposal(id)).map(|b| dec_json(&b))
    }

    /// This shard's own decision on a proposal it was asked about.
    fn proposal_vote(&self, id: &Hash) -> Option<ShardVote> {
        self.get(&keys::proposal_vote(id)).map(|b| dec_json(&b))
    }

    /// The undecided proposals this shard coordinates: `(deadline_ms, id)`, oldest first.
    fn pending_proposals(&self) -> Vec<(u64, Hash)> {
        self.get(&keys::pending_proposals())
            .map_or_else(Vec::new, |b| dec_json(&b))
    }

    /// The PRSM event outbox: the next event seq and the pending batch's events.
    fn prsm_outbox(&self) -> PrsmOutbox {
        self.get(&keys::prsm_outbox())
            .map_or_else(PrsmOutbox::default, |b| dec_json(&b))
    }

    /// The number of calls ever recorded in a contract's history.
    fn contract_call_count(&self, id: &ContractId) -> u64 {
        self.get(&keys::contract_call_count(id))
            .map_or(0, |b| dec(&b))
    }

    /// If `id` is moving to this shard and its `Migrate` receipt has not arrived yet: the
    /// shard it moves from.
    fn migrating_from(&self, id: &AccountId) -> Option<ShardId> {
        self.migrating_mark(id).map(|m| m.from)
    }

    /// The awaiting mark of an account moving to this shard, if any.
    fn migrating_mark(&self, id: &AccountId) -> Option<MigratingMark> {
        self.get(&keys::migrating(id)).map(|b| dec(&b))
    }

    /// The next outbox seq for `dst`.
    fn outbox_next(&self, dst: ShardId) -> u64 {
        self.get(&keys::outbox(dst)).map_or(0, |b| dec(&b))
    }

    /// The next expected inbox seq from `src`.
    fn inbox_next(&self, src: ShardId) -> u64 {
        self.get(&keys::inbox(src)).map_or(0, |b| dec(&b))
    }

    /// The pending batch header.
    fn pending_meta(&self) -> PendingMeta {
        self.get(&keys::pending_meta())
            .map_or_else(PendingMeta::default, |b| dec(&b))
    }

    /// Encoded bytes of the pending batch's receipts.
    fn pending_bytes(&self) -> u64 {
        self.get(&keys::pending_bytes()).map_or(0, |b| dec(&b))
    }

    /// The pending receipts, in emission order.
    fn pending_receipts(&self) -> Vec<Receipt> {
        self.scan_prefix(&keys::pending_receipt_prefix())
            .into_iter()
            .map(|(_, v)| dec(&v))
            .collect()
    }

    /// A counter.
    fn counter(&self, c: Counter) -> u128 {
        self.get(&keys::counter(c)).map_or(0, |b| dec(&b))
    }

    /// The last executed block.
    fn chain_meta(&self) -> ChainMeta {
        self.get(&keys::chain_meta())
            .map_or_else(ChainMeta::default, |b| dec(&b))
    }

    /// Σ balances of accounts and contracts on this shard, plus coin held for accounts
    /// moving in ([`MigratingMark::held`]).
    fn total_balances(&self) -> Amount {
        let accounts: Amount = self.accounts().into_iter().map(|(_, a)| a.balance).sum();
        let contracts: Amount = self.contracts().into_iter().map(|c| c.balance).sum();
        let held: Amount = self
            .scan_prefix(&[keys::TAG_MIGRATING])
            .into_iter()
            .map(|(_, v)| dec::<MigratingMark>(&v).held)
            .sum();
        accounts
            .checked_add(contracts)
            .and_then(|a| a.checked_add(held))
            .expect("supply overflow")
    }
}

impl<T: StateView + ?Sized> StateReadExt for T {}
