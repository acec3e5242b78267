//! Test harness: fixed layouts, a final-roots table, a small contract engine, and a network
//! of in-memory shards that delivers closed batches to their destinations.

use crate::{
    BlockContext, BlockError, BlockExecution, BlockLimits, BuiltBlock, CallInput, CallOutcome,
    ContractEngine, ContractInfo, DeployInput, Event, FinalRoots, MemState, Migration,
    NativePayment, ShardOf, StateReadExt, Supply, build_block, execute_block, genesis,
};
use serde_json::json;
use std::collections::BTreeMap;
use vision_types::{
    AccountId, Action, Amount, ChainId, ContractId, Hash, IncomingBatch, SecretKey, ShardConfig,
    ShardId, SignedTransaction, Transaction,
};

pub const CHAIN: &str = "vision-test";
pub const GENESIS_BALANCE: u128 = 1_000_000;

pub fn chain() -> ChainId {
    ChainId::new(CHAIN).unwrap()
}

pub fn acct(name: &str) -> AccountId {
    AccountId::new(name).unwrap()
}

/// The key of a named test account.
pub fn key(name: &str) -> SecretKey {
    let mut seed = [0u8; 32];
    let b = name.as_bytes();
    seed[..b.len().min(32)].copy_from_slice(&b[..b.len().min(32)]);
    SecretKey::from_seed(seed)
}

/// Layout: explicit placements, otherwise by hash modulo `n`.
#[derive(Clone)]
pub struct Layout {
    pub n: u32,
    pub fixed: BTreeMap<String, ShardId>,
}

impl Layout {
    pub fn new(n: u32, fixed: &[(&str, u32)]) -> Self {
        Layout {
            n,
            fixed: fixed
                .iter()
                .map(|(k, s)| (k.to_string(), ShardId(*s)))
                .collect(),
        }
    }

    pub fn place_pub(&self, name: &str) -> ShardId {
        self.place(name)
    }

    fn place(&self, name: &str) -> ShardId {
        self.fixed.get(name).copied().unwrap_or_else(|| {
            ShardId((Hash::sha256(name.as_bytes()).prefix_u64() % self.n as u64) as u32)
        })
    }
}

impl ShardOf for Layout {
    fn shard_of_account(&self, account: &AccountId) -> ShardId {
        self.place(account.as_str())
    }
    fn shard_of_contract(&self, contract: &ContractId) -> ShardId {
        self.place(contract.as_str())
    }
}

/// The test layout's targeting rule: every shard for multi-shard proposals, otherwise the
/// shard the layout places the action name on (like an account name).
impl crate::ProposalTargets for Layout {
    fn proposal_targets(&self, action: &str, _data: &str, all: bool) -> Vec<ShardId> {
        if all {
            return (0..self.n).map(ShardId).collect();
        }
        vec![self.place(action)]
    }
}

/// Final receipts roots, as the beacon would vouch for them.
#[derive(Default)]
pub struct Roots(pub BTreeMap<(ShardId, u64), Hash>);

impl FinalRoots for Roots {
    fn final_receipts_root(&self, source: ShardId, height: u64) -> Option<Hash> {
        self.0.get(&(source, height)).copied()
    }
}

/// A tiny engine: `get`, `set` (owner only), `pay` (pays the attached coin to `args[0]`),
/// `fail`; deploying code hash `bad` is refused.
pub struct TestEngine;

impl ContractEngine for TestEngine {
    fn deploy(&self, input: &DeployInput) -> Result<BTreeMap<String, String>, String> {
        if input.code_hash == "bad" {
            return Err("refused code hash".into());
        }
        Ok(input.initial_state.clone())
    }

    fn call(&self, c: &ContractInfo, input: &CallInput) -> CallOutcome {
        let gas_used = 1_000.min(input.gas_limit);
        if input.gas_limit < 1_000 {
            return CallOutcome::Failure {
                reason: "out of gas".into(),
                gas_used,
            };
        }
        let refund = |to: &AccountId| {
            if input.attached.is_zero() {
                vec![]
            } else {
                vec![NativePayment {
                    to: to.clone(),
                    amount: input.attached,
                }]
            }
        };
        match (input.method.as_str(), input.args.as_slice()) {
            ("get", [k]) => CallOutcome::Success {
                state: c.state.clone(),
                result: json!({ "value": c.state.get(k) }),
                gas_used,
                payments: refund(&input.caller),
            },
            ("set", [k, v]) if input.caller == c.owner => {
                let mut state = c.state.clone();
                state.insert(k.clone(), v.clone());
                CallOutcome::Success {
                    state,
                    result: json!({ "status": "success" }),
                    gas_used,
                    payments: refund(&input.caller),
                }
            }
            ("pay", [to]) => match AccountId::new(to.clone()) {
                Ok(to) => CallOutcome::Success {
                    state: c.state.clone(),
                    result: json!({ "paid": input.attached }),
                    gas_used,
                    payments: refund(&to),
                },
                Err(_) => CallOutcome::Failure {
                    reason: "bad recipient".into(),
                    gas_used,
                },
            },
            _ => CallOutcome::Failure {
                reason: format!("method {} failed", input.method),
                gas_used,
            },
        }
    }
}

/// Signs a transaction of `signer` (whose key is [`key`]`(signer)`).
pub fn sign(signer: &str, nonce: u64, fee: u128, action: Action) -> SignedTransaction {
    Transaction {
        chain_id: chain(),
        signer: acct(signer),
        nonce,
        fee: Amount(fee),
        action,
    }
    .sign(&key(signer))
}

pub fn transfer(to: &str, amount: u128) -> Action {
    Action::Transfer {
        to: acct(to),
        amount: Amount(amount),
        priority: 0,
    }
}

/// One shard's replica.
pub struct Node {
    pub shard: ShardId,
    pub state: MemState,
    pub height: u64,
    pub time_ms: u64,
    pub nonces: BTreeMap<AccountId, u64>,
    /// The node's own layout once account moves are scheduled ([`Net::schedule_move`]):
    /// `(beacon height, layout)` of its last block; `None`: [`Net::layout`].
    pub layout: Option<(u64, Layout)>,
    /// The beacon height, layout and migrations of its next block ([`Net::advance_beacon`]).
    pub next: Option<(u64, Layout, Vec<Migration>)>,
}

impl Node {
    /// The beacon height its next block is stamped with.
    pub fn block_beacon(&self) -> u64 {
        match (&self.next, &self.layout) {
            (Some((b, _, _)), _) => *b,
            (None, Some((b, _))) => *b,
            (None, None) => 0,
        }
    }
}

/// Several shards wired together; closed batches become deliverable incoming batches.
pub struct Net {
    pub layout: Layout,
    pub roots: Roots,
    pub config: ShardConfig,
    pub nodes: Vec<Node>,
    /// Deliverable batches per destination, in closing order.
    pub mailbox: BTreeMap<ShardId, Vec<IncomingBatch>>,
    pub genesis_total: u128,
    /// Receipts emitted and not yet applied: id → amount.
    pub in_flight: BTreeMap<String, Amount>,
    /// How many times each receipt was applied.
    pub applied: BTreeMap<String, u32>,
    pub engine: Box<dyn ContractEngine>,
    /// Layouts by beacon height, once account moves are scheduled (index = beacon height).
    pub versions: Vec<Layout>,
    /// The beacon height each closed batch's block was stamped with: `(source, height)`.
    pub batch_beacon: BTreeMap<(ShardId, u64), u64>,
    /// The beacon's PRSM table, fed every closed batch's events as it closes (one beacon
    /// block per closed batch, at the latest block time any shard reached).
    pub prsm: vision_sharding::PrsmTable,
    /// Beacon "blocks" applied to [`Self::prsm`], and the time of the last one.
    pub prsm_clock: (u64, u64),
}

impl Net {
    pub fn new(n: u32, layout: Layout, accounts: &[&str], config: ShardConfig) -> Net {
        let list: Vec<_> = accounts
            .iter()
            .map(|a| (acct(a), key(a).public_key(), Amount(GENESIS_BALANCE)))
            .collect();
        let nodes = (0..n)
            .map(|s| {
                let mut state = MemState::new();
                state.apply(&genesis(ShardId(s), &layout, &list, 1_000).unwrap());
                Node {
                    shard: ShardId(s),
                    state,
                    height: 0,
                    time_ms: 1_000,
                    nonces: BTreeMap::new(),
                    layout: None,
                    next: None,
                }
            })
            .collect();
        Net {
            layout,
            roots: Roots::default(),
            config,
            nodes,
            mailbox: BTreeMap::new(),
            genesis_total: GENESIS_BALANCE * accounts.len() as u128,
            in_flight: BTreeMap::new(),
            applied: BTreeMap::new(),
            engine: Box::new(TestEngine),
            versions: Vec::new(),
            batch_beacon: BTreeMap::new(),
            prsm: vision_sharding::PrsmTable::default(),
            prsm_clock: (0, 0),
        }
    }

    /// A beacon block at the latest block time any shard reached (at least 1 ms after the
    /// previous one): fails the PRSM proposals whose deadline it reaches, then takes
    /// `events` of `shard` (checked to continue the shard's stream).
    pub fn beacon_prsm(&mut self, shard: ShardId, events: &[vision_types::prsm::PrsmEvent]) {
        let now = self.nodes.iter().map(|n| n.time_ms).max().unwrap_or(0);
        self.prsm_clock = (self.prsm_clock.0 + 1, now.max(self.prsm_clock.1 + 1));
        let (height, now) = self.prsm_clock;
        self.prsm.expire(height, now);
        assert_eq!(self.prsm.check(shard, events), Ok(()), "PRSM event gap");
        let n = self.nodes.len() as u32;
        self.prsm.apply(shard, events, height, now, |s| s.0 < n);
    }

    /// Schedules a beacon move of `name` to shard `to`: a new beacon height whose layout
    /// overrides it. Returns that height. Shards see it once [`Self::advance_beacon`]d;
    /// [`Self::layout`] becomes the newest layout (for the helpers).
    pub fn schedule_move(&mut self, name: &str, to: u32) -> u64 {
        if self.versions.is_empty() {
            self.versions.push(self.layout.clone());
            for n in &mut self.nodes {
                n.layout = Some((0, self.layout.clone()));
            }
        }
        self.layout.fixed.insert(name.to_string(), ShardId(to));
        self.versions.push(self.layout.clone());
        self.versions.len() as u64 - 1
    }

    /// The newest scheduled beacon height.
    pub fn beacon_tip(&self) -> u64 {
        self.versions.len().saturating_sub(1) as u64
    }

    /// Stamps `shard`'s next block with beacon height `b`: its layout is the one at `b`, and
    /// its migrations are the accounts whose shard differs from its last block's layout.
    pub fn advance_beacon(&mut self, shard: ShardId, b: u64) {
        let node = &mut self.nodes[shard.index()];
        let (old_b, old) = node.layout.clone().expect("moves scheduled");
        assert!(b >= old_b, "beacon heights only grow along a chain");
        let new = self.versions[b as usize].clone();
        let mut names: Vec<&String> = old.fixed.keys().chain(new.fixed.keys()).collect();
        names.sort();
        names.dedup();
        let mut migrations: Vec<Migration> = names
            .into_iter()
            .filter_map(|name| {
                let (from, to) = (old.place(name), new.place(name));
                (from != to).then(|| Migration {
                    account: acct(name),
                    from,
                    to,
                })
            })
            .collect();
        migrations.sort_by(|a, b| a.account.cmp(&b.account));
        node.next = Some((b, new, migrations));
    }

    /// [`Self::advance_beacon`] of every shard to the newest beacon height.
    pub fn advance_all(&mut self) {
        let tip = self.beacon_tip();
        for s in 0..self.nodes.len() {
            self.advance_beacon(ShardId(s as u32), tip);
        }
    }

    /// Where `name`'s account is held: the shards whose state has it.
    pub fn holders(&self, name: &str) -> Vec<ShardId> {
        self.nodes
            .iter()
            .filter(|n| n.state.account(&acct(name)).is_some())
            .map(|n| n.shard)
            .collect()
    }

    pub fn shard_of(&self, name: &str) -> ShardId {
        self.layout.shard_of_account(&acct(name))
    }

    /// Signs with the next nonce the harness knows for `signer`.
    pub fn tx(&mut self, signer: &str, fee: u128, action: Action) -> SignedTransaction {
        let s = self.shard_of(signer);
        let n = self.nodes[s.index()]
            .nonces
            .entry(acct(signer))
            .or_insert(0);
        let t = sign(signer, *n, fee, action);
        *n += 1;
        t
    }

    pub fn ctx<'a>(&'a self, shard: ShardId, dt_ms: u64) -> BlockContext<'a> {
        let node = &self.nodes[shard.index()];
        let (layout, migrations): (&Layout, &[Migration]) = match (&node.next, &node.layout) {
            (Some((_, l, m)), _) => (l, m),
            (None, Some((_, l))) => (l, &[]),
            (None, None) => (&self.layout, &[]),
        };
        BlockContext {
            shard,
            height: node.height + 1,
            timestamp_ms: node.time_ms + dt_ms,
            beacon_height: node.block_beacon(),
            chain_id: chain(),
            config: &self.config,
            layout,
            final_roots: &self.roots,
            engine: self.engine.as_ref(),
            proposal_targets: &self.layout,
            verified: &crate::NoneVerified,
            migrations,
        }
    }

    /// The next deliverable batch from each source (what an honest proposer includes): only
    /// batches of blocks stamped with a beacon height at most this block's (a crosslink is
    /// final only at a later beacon height).
    pub fn deliverable(&self, shard: ShardId) -> Vec<IncomingBatch> {
        let node = &self.nodes[shard.index()];
        let beacon = node.block_beacon();
        let mut out = Vec::new();
        let mut next: BTreeMap<ShardId, u64> = BTreeMap::new();
        for b in self.mailbox.get(&shard).into_iter().flatten() {
            if self.batch_beacon[&(b.source, b.crosslink_height)] > beacon {
                continue;
            }
            let expected = *next
                .entry(b.source)
                .or_insert_with(|| node.state.inbox_next(b.source));
            if b.destination.first_seq == expected {
                next.insert(b.source, b.destination.end_seq());
                out.push(b.clone());
            }
        }
        out
    }

    /// Executes a block on `shard` with exactly these txs and incoming batches.
    pub fn exec(
        &mut self,
        shard: ShardId,
        dt_ms: u64,
        txs: &[SignedTransaction],
        incoming: &[IncomingBatch],
    ) -> Result<BlockExecution, BlockError> {
        let ex = {
            let ctx = self.ctx(shard, dt_ms);
            execute_block(&self.nodes[shard.index()].state, &ctx, txs, incoming)?
        };
        self.commit(shard, dt_ms, &ex);
        Ok(ex)
    }

    /// Proposes a block on `shard` from candidates (dropping rejectable ones) and commits it.
    pub fn propose(
        &mut self,
        shard: ShardId,
        dt_ms: u64,
        txs: Vec<SignedTransaction>,
        incoming: Vec<IncomingBatch>,
    ) -> BuiltBlock {
        let unbounded = BlockLimits {
            max_txs: 10_000,
            max_body_bytes: usize::MAX,
        };
        self.propose_within(shard, dt_ms, txs, incoming, unbounded)
    }

    /// [`Self::propose`] within `bounds`.
    pub fn propose_within(
        &mut self,
        shard: ShardId,
        dt_ms: u64,
        txs: Vec<SignedTransaction>,
        incoming: Vec<IncomingBatch>,
        bounds: BlockLimits,
    ) -> BuiltBlock {
        let built = {
            let ctx = self.ctx(shard, dt_ms);
            build_block(
                &self.nodes[shard.index()].state,
                &ctx,
                txs,
                incoming,
                bounds,
            )
            .unwrap()
        };
        // A replica re-executing the proposal gets the same result.
        {
            let ctx = self.ctx(shard, dt_ms);
            let again = execute_block(
                &self.nodes[shard.index()].state,
                &ctx,
                &built.txs,
                &built.incoming,
            )
            .unwrap();
            assert_eq!(again.writes, built.execution.writes);
            assert_eq!(again.closed_batch, built.execution.closed_batch);
        }
        self.commit(shard, dt_ms, &built.execution);
        built
    }

    /// Delivers everything deliverable to `shard` in one block.
    pub fn deliver(&mut self, shard: ShardId) -> BlockExecution {
        let incoming = self.deliverable(shard);
        self.exec(shard, 10, &[], &incoming).unwrap()
    }

    fn commit(&mut self, shard: ShardId, dt_ms: u64, ex: &BlockExecution) {
        let node = &mut self.nodes[shard.index()];
        node.state.apply(&ex.writes);
        node.height += 1;
        node.time_ms += dt_ms;
        if let Some((b, l, _)) = node.next.take() {
            node.layout = Some((b, l));
        }
        let beacon = node.block_beacon();
        for r in &ex.emitted {
            assert!(self.in_flight.insert(r.id(), r.amount).is_none());
        }
        for e in &ex.events {
            if let Event::ReceiptApplied { id, .. } = e {
                *self.applied.entry(id.clone()).or_default() += 1;
                assert_eq!(self.applied[id], 1, "receipt {id} applied twice");
                self.in_flight
                    .remove(id)
                    .expect("applied receipt was in flight");
            }
        }
        // Drop delivered batches from the mailbox.
        let node = &self.nodes[shard.index()];
        if let Some(q) = self.mailbox.get_mut(&shard) {
            q.retain(|b| b.destination.first_seq >= node.state.inbox_next(b.source));
        }
        if let Some(b) = &ex.closed_batch {
            assert!(b.check());
            self.beacon_prsm(shard, &b.prsm_events);
            self.roots.0.insert((shard, b.height), b.receipts_root);
            self.batch_beacon.insert((shard, b.height), beacon);
            for d in &b.destinations {
                let inc = b.incoming_for(d.dst).unwrap();
                self.mailbox.entry(d.dst).or_default().push(inc);
            }
        }
        self.check_supply();
    }

    /// total supply = Σ balances + Σ in-flight + burned (+ unclaimed), per shard and globally.
    pub fn check_supply(&self) {
        let mut total = 0u128;
        let mut sent = 0u128;
        let mut received = 0u128;
        for n in &self.nodes {
            let s = Supply::of(&n.state);
            assert!(s.balanced(), "shard {} ledger unbalanced: {s:?}", n.shard);
            total += s.balances + s.burned + s.unclaimed;
            sent += s.sent;
            received += s.received;
        }
        let in_flight: u128 = self.in_flight.values().map(|a| a.0).sum();
        assert_eq!(sent - received, in_flight);
        assert_eq!(total + in_flight, self.genesis_total);
    }

    /// Runs empty blocks delivering batches until nothing is in flight or pending.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            let busy: Vec<ShardId> = self.nodes.iter().map(|n| n.shard).collect();
            for s in busy {
                let incoming = self.deliverable(s);
                let state = &self.nodes[s.index()].state;
                let flush =
                    !state.pending_receipts().is_empty() || !state.prsm_outbox().events.is_empty();
                let dt = if flush {
                    self.config.batch_timeout_ms + 1
                } else {
                    10
                };
                self.exec(s, dt, &[], &incoming).unwrap();
            }
            if self.in_flight.is_empty()
                && self.nodes.iter().all(|n| {
                    n.state.pending_receipts().is_empty() && n.state.prsm_outbox().events.is_empty()
                })
            {
                return;
            }
        }
        panic!("network did not settle: {} in flight", self.in_flight.len());
    }

    pub fn balance(&self, name: &str) -> u128 {
        let s = self.shard_of(name);
        self.nodes[s.index()]
            .state
            .account(&acct(name))
            .map_or(0, |a| a.balance.0)
    }
}
