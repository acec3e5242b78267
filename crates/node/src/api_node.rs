//! The node's side of the HTTP API: [`NodeApi`] implements [`vision_api::NodeBackend`] over
//! the shard applications and the beacon view this process holds. An API node holds every
//! shard (followed without voting, each block executed and checked), so it answers for the
//! whole network from finalized state; transactions it admits are forwarded to the shard's
//! validators by the relay.
//!
//! A validator serving its own API holds one shard, its own, and its beacon view. It answers
//! every request about its shard from its own finalized state, admits transactions of its
//! shard's accounts into its own pool (the relay sends them to the rest of its committee), and
//! answers a request about another shard, or one that needs every shard (dashboard, contract
//! list, supply, PRSM metrics), with 404 `shard_not_served` naming its shard and the API node.
//!
//! Every number it reports is read from finalized state or measured by this node: counters
//! (transactions, contracts, pending batches) come from the shards' committed state;
//! latencies and throughput from what this node observed (see [`Stats`]).

use crate::{devnet::ProcessEntry, files::read_json, load::LoadTracker, status::read_status};
use commonware_runtime::tokio::Context;
use commonware_utils::sync::Mutex;
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::broadcast;
use vision_api::backend::{
    AccountView, BackendError, BatchStatus, BlockEvent, CallState, CallView, CommitteeMetrics,
    ConfigApplied, ConfigChangeError, ConsensusMetrics, ContractPage, ContractStats,
    ContractSummary, ContractView, CrossShardCallView, CrosslinkSummary, DecidedBy, Deployed,
    Executed, FlushOutcome, MoveRequest, NetworkStats, NodeStatus, Performance, PlannedMove,
    ProcessStatus, ProposalState, ProposalView, Rebalanced, ShardDecision, ShardHead, ShardSummary,
    ShardSupply, SubmitError, Submitted, SupplyReport, TxStatus, ValidatorReputation,
};
use vision_consensus::{
    FinalizedCrosslinks, FinalizedEvent, MempoolError, NetworkSpec, ShardApp, TxOutbox,
    beacon::{
        AccountMoveOrder, ConfigChange, ConfigRejection, MAX_MOVES_PER_CHANGE, ScheduledConfig,
    },
    relay::ConfigOutbox,
    shard::uniform_layout,
};
use vision_sharding::{LayoutKey, ShardLayout};
use vision_state::{
    CallRecord, CallStatus, ProposalRecord, ProposalStatus, QmdbStore, ShardOf, ShardVote,
    StateReadExt, Supply, TxOutcome, keys::Counter,
};
use vision_types::{
    AccountId, Action, Amount, CallId, ConfigUpdate, ContractId, Hash, PublicKey, SecretKey,
    ShardConfig, ShardId, SignedTransaction, Transaction, Verified, block::crosslink_id,
};

/// Fee the devnet signer puts on the transactions it signs.
pub const DEV_FEE: u128 = 10;
/// Capacity of the finalized-event channel (a slower subscriber skips the oldest).
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;
/// Window of the throughput measure, in milliseconds.
pub const THROUGHPUT_WINDOW_MS: u64 = 10_000;
/// Latency samples kept per measure (the mean is over these).
pub const LATENCY_SAMPLES: usize = 1024;
/// Transactions whose batching this node remembers (for `GET /tx/{id}`).
pub const TRACKED_TXS: usize = 200_000;
/// How often a waiting request looks for its transaction's outcome, in milliseconds.
pub const OUTCOME_POLL_MS: u64 = 25;
/// A running process whose status file is older than this is reported `stale`, in ms.
pub const PROCESS_STALE_MS: u64 = 5_000;
/// How often the beacon view is scanned for newly finalized crosslinks, in milliseconds.
pub const BEACON_SCAN_MS: u64 = 200;
/// How often a configuration change is looked for in the beacon view, in milliseconds.
pub const CONFIG_POLL_MS: u64 = 50;
/// Layouts (configuration changes) back that `recent_shards_of` looks for an account's move.
const RECENT_LAYOUTS: usize = 8;
/// How often an API node holding the configuration authority's key checks whether the
/// recent load calls for moving accounts (automatic rebalancing).
pub const AUTO_REBALANCE_CHECK_MS: u64 = 10_000;
/// Automatic rebalancing waits for at least this many transactions of recent load, so a
/// handful of transactions never moves an account.
pub const MIN_AUTO_REBALANCE_LOAD: u64 = 1_000;
/// Automatic rebalancing leaves this long between two rounds of moves, so the load it
/// weighs reflects the last moves.
pub const AUTO_REBALANCE_COOLDOWN_MS: u64 = 2 * crate::load::LOAD_WINDOW_MS;

/// The genesis committee plan, for `GET /consensus/metrics`.
pub struct Committees {
    /// The PRSM plan of the shard committees.
    pub plan: vision_sharding::CommitteePlan,
    /// Names of the beacon committee's members, sorted.
    pub beacon: Vec<String>,
    /// Every validator's consensus key, by genesis name (to read its beacon reputation).
    pub keys: BTreeMap<String, PublicKey>,
}

/// What an API node needs to change the network's configuration through the beacon.
pub struct ConfigAuthority {
    /// The genesis `config_authority` account's key, if this node holds it.
    pub key: Option<SecretKey>,
    /// The genesis `config_authority` account (named in errors).
    pub account: AccountId,
    /// Where the relay picks up changes to send to the beacon committee.
    pub outbox: ConfigOutbox,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A bounded FIFO of samples with their mean.
#[derive(Default)]
struct Samples(VecDeque<u64>);

impl Samples {
    fn push(&mut self, v: u64) {
        if self.0.len() == LATENCY_SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(v);
    }
    fn mean(&self) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.iter().sum::<u64>() as f64 / self.0.len() as f64
    }
}

/// What this node measured from the blocks and crosslinks it saw finalized.
#[derive(Default)]
pub struct Stats {
    /// `(observed_ms, txs)` of recently finalized blocks (throughput window).
    finalized: VecDeque<(u64, u64)>,
    /// Block time of the block that included each tx with receipts (batch latency).
    included_ms: HashMap<Hash, u64>,
    /// Shard height of the block that closed each tx's batch.
    batched_at: HashMap<Hash, u64>,
    /// Insertion order of the two maps above (bounded by [`TRACKED_TXS`]).
    order: VecDeque<Hash>,
    /// Batched transactions per closing block, by (shard, height).
    closed: BTreeMap<(ShardId, u64), u64>,
    batch_latency: Samples,
    crosslink_latency: Samples,
    /// Crosslinks seen finalized, per shard, and how many of them carried a batch.
    crosslinks: BTreeMap<ShardId, (u64, u64)>,
    /// Σ batched transactions over the crosslinks seen.
    batched_txs: u64,
    /// Beacon height scanned up to.
    scanned_beacon: u64,
}

impl Stats {
    fn track(&mut self, id: Hash) {
        self.order.push_back(id);
        while self.order.len() > TRACKED_TXS {
            if let Some(old) = self.order.pop_front() {
                self.included_ms.remove(&old);
                self.batched_at.remove(&old);
            }
        }
    }

    fn on_block(&mut self, e: &FinalizedEvent, observed_ms: u64) {
        self.finalized
            .push_back((observed_ms, e.outcomes.len() as u64));
        while self
            .finalized
            .front()
            .is_some_and(|(t, _)| observed_ms.saturating_sub(*t) > THROUGHPUT_WINDOW_MS)
        {
            self.finalized.pop_front();
        }
        for o in e.outcomes.iter().filter(|o| !o.receipts.is_empty()) {
            self.included_ms.insert(o.tx_id, e.timestamp_ms);
            self.track(o.tx_id);
        }
        if !e.closed_batch_txs.is_empty() {
            self.closed
                .insert((e.shard, e.height), e.closed_batch_txs.len() as u64);
            while self.closed.len() > TRACKED_TXS / 16 {
                self.closed.pop_first();
            }
        }
        for id in &e.closed_batch_txs {
            if let Some(t) = self.included_ms.get(id) {
                self.batch_latency.push(e.timestamp_ms.saturating_sub(*t));
            }
            self.batched_at.insert(*id, e.height);
        }
    }

    fn throughput_tps(&self, now: u64) -> f64 {
        let txs: u64 = self
            .finalized
            .iter()
            .filter(|(t, _)| now.saturating_sub(*t) <= THROUGHPUT_WINDOW_MS)
            .map(|(_, n)| n)
            .sum();
        txs as f64 / (THROUGHPUT_WINDOW_MS as f64 / 1000.0)
    }
}

/// The HTTP API's backend on a node (see the module docs).
pub struct NodeApi {
    spec: NetworkSpec,
    layout: Arc<dyn ShardOf + Send + Sync>,
    shards: BTreeMap<ShardId, ShardApp<Context>>,
    view: FinalizedCrosslinks,
    dev_keys: BTreeMap<AccountId, SecretKey>,
    events: broadcast::Sender<BlockEvent>,
    stats: Arc<Mutex<Stats>>,
    /// Next nonce the devnet signer hands out per account (above the committed nonce).
    dev_nonces: Mutex<HashMap<AccountId, u64>>,
    /// A supervisor's process list (a devnet's `processes.json`) reported by `/status`.
    processes_file: Option<std::path::PathBuf>,
    authority: ConfigAuthority,
    committees: Committees,
    /// Serializes configuration changes (each is numbered from the last applied one).
    config_lock: tokio::sync::Mutex<()>,
    /// On a validator: where admitted transactions go to reach the rest of its committee
    /// (`None` on an API node, whose relay forwards its pools itself).
    validator_outbox: Option<TxOutbox>,
    /// Recent transactions per shard and signer (what a rebalance plan weighs).
    load: Arc<Mutex<LoadTracker>>,
}

impl NodeApi {
    /// The configuration in force at this node's beacon height.
    fn current_config(&self) -> ShardConfig {
        self.view
            .with_view(|v| v.map(|v| v.config().clone()))
            .unwrap_or_else(|| self.spec.config.clone())
    }

    /// A backend over `shards` (every shard of `spec` on an API node; its own shard on a
    /// validator) and `view`; `dev_keys` are the devnet accounts this node signs for (empty off
    /// a devnet API node). `validator_outbox` is `Some` on a validator: the relay queue that
    /// sends the transactions this API admits to the rest of its committee. Registers a
    /// listener on every shard application.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: NetworkSpec,
        shards: BTreeMap<ShardId, ShardApp<Context>>,
        view: FinalizedCrosslinks,
        dev_keys: BTreeMap<AccountId, SecretKey>,
        processes_file: Option<std::path::PathBuf>,
        authority: ConfigAuthority,
        committees: Committees,
        validator_outbox: Option<TxOutbox>,
    ) -> anyhow::Result<Arc<Self>> {
        let layout = uniform_layout(spec.config.num_shards).map_err(anyhow::Error::msg)?;
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let api = Arc::new(NodeApi {
            spec,
            layout,
            shards,
            view,
            dev_keys,
            events,
            stats: Arc::new(Mutex::new(Stats::default())),
            dev_nonces: Mutex::new(HashMap::new()),
            processes_file,
            authority,
            committees,
            config_lock: tokio::sync::Mutex::new(()),
            validator_outbox,
            load: Arc::new(Mutex::new(LoadTracker::default())),
        });
        for app in api.shards.values() {
            let events = api.events.clone();
            let stats = api.stats.clone();
            let load = api.load.clone();
            app.set_listener(Arc::new(move |e: &FinalizedEvent| {
                let observed = now_ms();
                stats.lock().on_block(e, observed);
                load.lock().record(e.shard, &e.signers, observed);
                let _ = events.send(block_event(e, observed));
            }));
        }
        Ok(api)
    }

    /// Scans the beacon view for newly finalized crosslinks every [`BEACON_SCAN_MS`] (the
    /// crosslink counters and latency). Runs until the process ends.
    pub async fn scan_beacon(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_millis(BEACON_SCAN_MS)).await;
            let from = self.stats.lock().scanned_beacon;
            let fresh = self.view.since(from);
            let now = now_ms();
            let mut st = self.stats.lock();
            for f in fresh {
                st.scanned_beacon = st.scanned_beacon.max(f.beacon_height);
                let cl = &f.crosslink;
                let Some(shard) = cl.shard() else { continue };
                st.crosslink_latency
                    .push(now.saturating_sub(cl.header.timestamp_ms));
                let batched = cl.batched_txs.len() as u64;
                let entry = st.crosslinks.entry(shard).or_default();
                entry.0 += 1;
                if batched > 0 {
                    entry.1 += 1;
                }
                st.batched_txs += batched;
            }
        }
    }

    /// The supervised processes with their heights and health (empty without a process
    /// list; an unreadable list is reported in the log, not as an API error).
    fn processes(&self) -> Vec<ProcessStatus> {
        let Some(path) = &self.processes_file else {
            return Vec::new();
        };
        let entries: Vec<ProcessEntry> = match read_json(path, "process list") {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("process list: {e:#}");
                return Vec::new();
            }
        };
        let now = now_ms();
        entries
            .into_iter()
            .map(|p| {
                let status = read_status(&p.home).ok();
                let fresh = status
                    .as_ref()
                    .is_some_and(|s| now.saturating_sub(s.updated_at_ms) <= PROCESS_STALE_MS);
                let health = match p.state.as_str() {
                    "running" if fresh => "ok",
                    "running" => "stale",
                    other => other,
                };
                ProcessStatus {
                    name: p.name,
                    role: p.role,
                    shard: p.shard,
                    beacon: p.beacon,
                    pid: p.pid,
                    p2p_port: p
                        .p2p_address
                        .rsplit(':')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0),
                    api_port: p
                        .api_address
                        .and_then(|a| a.rsplit(':').next().and_then(|x| x.parse().ok())),
                    height: status.as_ref().map_or(0, |s| s.shard_height),
                    beacon_height: status.as_ref().map_or(0, |s| s.beacon_height),
                    restarts: p.restarts,
                    health: health.into(),
                }
            })
            .collect()
    }

    /// What this node is: `validator` (its own shard only) or `api` (every shard).
    fn role(&self) -> &'static str {
        if self.validator_outbox.is_some() {
            "validator"
        } else {
            "api"
        }
    }

    /// The shards this node holds, for error messages (`0, 1`).
    fn served(&self) -> String {
        let held: Vec<String> = self.shards.keys().map(|s| s.0.to_string()).collect();
        held.join(", ")
    }

    /// The error for a request about `shard`, which this node does not hold.
    fn not_served(&self, shard: ShardId) -> BackendError {
        if !self.spec.shard_committees.contains_key(&shard) {
            return BackendError::UnknownShard(shard);
        }
        BackendError::ShardNotServed(format!(
            "shard {shard} is not served by this node: this {} serves shard {} only; ask the \
             API node, which follows every shard (on a devnet http://127.0.0.1:3030 by default)",
            self.role(),
            self.served()
        ))
    }

    /// Fails unless this node holds every shard: what a network-wide view (`what`) needs.
    fn every_shard(&self, what: &str) -> Result<(), BackendError> {
        if self
            .spec
            .shard_committees
            .keys()
            .all(|s| self.shards.contains_key(s))
        {
            return Ok(());
        }
        Err(BackendError::ShardNotServed(format!(
            "{what} needs every shard, but this {} serves shard {} only; ask the API node, \
             which follows every shard (on a devnet http://127.0.0.1:3030 by default)",
            self.role(),
            self.served()
        )))
    }

    fn app(&self, shard: ShardId) -> Result<&ShardApp<Context>, BackendError> {
        self.shards
            .get(&shard)
            .ok_or_else(|| self.not_served(shard))
    }

    /// On a validator, queues admitted transactions for the rest of its committee.
    fn relay_to_committee(&self, txs: Vec<SignedTransaction>) {
        if let Some(outbox) = &self.validator_outbox {
            let dropped = outbox.push(txs);
            if dropped > 0 {
                tracing::debug!(
                    dropped,
                    "transaction outbox full; the oldest stay in this validator's pool only"
                );
            }
        }
    }

    /// The shard `id` lives on under the latest layout the beacon finalized (accounts moved
    /// by a rebalance included), or the genesis layout before the first beacon state.
    fn shard_of_account(&self, id: &AccountId) -> ShardId {
        self.view
            .with_view(|v| v.map(|v| v.latest_layout().shard_of_account(id)))
            .unwrap_or_else(|| self.layout.shard_of_account(id))
    }

    /// The shards `id` lived on under the recent layouts (newest first, without repeats):
    /// more than one while it is being moved or was moved lately.
    fn recent_shards_of(&self, id: &AccountId) -> Vec<ShardId> {
        let mut out: Vec<ShardId> = Vec::new();
        self.view.with_view(|v| {
            for c in v
                .into_iter()
                .flat_map(|v| v.config_history().rev().take(RECENT_LAYOUTS))
            {
                let s = c.layout.shard_of_account(id);
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        });
        out
    }

    /// The error for a transaction of an account unknown on `shard` while it is being moved
    /// there (its old shard has not handed it over yet), if it is.
    fn moving_error(&self, account: &AccountId, shard: ShardId) -> Option<SubmitError> {
        (self.recent_shards_of(account).len() > 1).then(|| {
            SubmitError::Backend(BackendError::Unavailable(format!(
                "account {account} is being moved to shard {shard} by a rebalance; retry in a \
                 few seconds"
            )))
        })
    }

    /// Signs a change to `config` with `moves` as the configuration authority, hands it to
    /// the relay and waits until this node's beacon view holds it; returns the applied entry.
    /// One change at a time.
    async fn submit_change(
        &self,
        config_of: impl FnOnce(&ShardConfig) -> Result<ShardConfig, ConfigChangeError>,
        moves: Vec<AccountMoveOrder>,
    ) -> Result<ScheduledConfig, ConfigChangeError> {
        let Some(key) = &self.authority.key else {
            return Err(ConfigChangeError::Conflict(match self.validator_outbox {
                Some(_) => format!(
                    "a validator's API does not change the configuration: send the change to \
                     an API node that holds the key of the configuration authority account {} \
                     (--authority-key FILE)",
                    self.authority.account
                ),
                None => format!(
                    "this API node does not hold the key of the configuration authority account \
                     {} (start it with --authority-key FILE)",
                    self.authority.account
                ),
            }));
        };
        let _one_at_a_time = self.config_lock.lock().await;
        let latest = self
            .view
            .with_view(|v| v.map(|v| v.latest_config().clone()))
            .ok_or_else(|| BackendError::Unavailable("no beacon state yet".into()))?;
        let config = config_of(&latest.config)?;
        let seq = latest.seq + 1;
        let change =
            ConfigChange::sign_with_moves(&self.spec.network, seq, config.clone(), moves, key);
        // The beacon's own rule, so this node refuses exactly what the beacon would.
        match self
            .view
            .with_view(|v| v.map(|state| state.check_config_change(&change)))
        {
            Some(Ok(())) => {}
            Some(Err(ConfigRejection::Fixed(field))) => {
                return Err(ConfigChangeError::Conflict(format!(
                    "{field} cannot be changed on a running network yet (live resharding does \
                     not exist yet); only rebalance_threshold, batch_size, batch_timeout_ms, \
                     crosslink_frequency, async_crosslinks_enabled and smart_contracts_enabled \
                     can"
                )));
            }
            Some(Err(e)) => return Err(ConfigChangeError::Conflict(e.to_string())),
            None => return Err(BackendError::Unavailable("no beacon state yet".into()).into()),
        }
        let id = change.id();
        let moves = change.moves.clone();
        self.authority.outbox.set(change);
        loop {
            let applied = self
                .view
                .with_view(|v| v.and_then(|v| v.config_history().find(|c| c.seq == seq).cloned()));
            if let Some(applied) = applied {
                let mine = self.view.with_view(|v| {
                    v.is_some_and(|v| {
                        self.expected_layout(v, &applied, &moves).as_ref() == Some(&*applied.layout)
                    })
                });
                if applied.config != config || !mine {
                    return Err(ConfigChangeError::Conflict(format!(
                        "another configuration change (seq {seq}) was finalized first; \
                         GET /shard/dashboard shows the configuration, retry against it"
                    )));
                }
                tracing::info!(
                    seq,
                    %id,
                    effective_height = applied.effective_height,
                    moves = moves.len(),
                    "configuration change finalized"
                );
                return Ok(applied);
            }
            tokio::time::sleep(Duration::from_millis(CONFIG_POLL_MS)).await;
        }
    }

    /// The layout `applied` should carry if it is the change with `moves`: the layout before
    /// it with the moves applied.
    fn expected_layout(
        &self,
        v: &vision_consensus::beacon::BeaconState,
        applied: &ScheduledConfig,
        moves: &[AccountMoveOrder],
    ) -> Option<ShardLayout> {
        let before = v.config_history().find(|c| c.seq + 1 == applied.seq)?;
        moves.iter().try_fold((*before.layout).clone(), |l, m| {
            l.move_account(&m.account, m.to).ok()
        })
    }

    /// Plans moves from the recent load (`plan_rebalance` with the configuration's
    /// `rebalance_threshold`) under the latest layout. Returns the moves and the shard loads.
    fn plan_moves(&self) -> Result<(Vec<PlannedMove>, BTreeMap<ShardId, u64>), BackendError> {
        let (layout, threshold) = self
            .view
            .with_view(|v| {
                v.map(|v| {
                    (
                        v.latest_layout().clone(),
                        v.latest_config().config.rebalance_threshold,
                    )
                })
            })
            .ok_or_else(|| BackendError::Unavailable("no beacon state yet".into()))?;
        let now = now_ms();
        let (shard_loads, account_loads) = {
            let mut load = self.load.lock();
            (load.shard_loads(now), load.account_loads(now))
        };
        let threshold_pct = (threshold * 100.0).round().clamp(0.0, 100.0) as u32;
        let moves = vision_sharding::plan_rebalance(
            &layout,
            &shard_loads,
            &account_loads,
            threshold_pct,
            MAX_MOVES_PER_CHANGE,
        )
        .map_err(|e| BackendError::Unavailable(format!("no rebalance plan: {e}")))?;
        let planned = moves
            .into_iter()
            .filter_map(|m| match m.key {
                LayoutKey::Account(account) => Some(PlannedMove {
                    account,
                    from: m.from,
                    to: m.to,
                    load: m.load,
                }),
                LayoutKey::Contract(_) => None,
            })
            .collect();
        Ok((planned, shard_loads))
    }

    /// Schedules `moves` through the beacon chain (see [`NodeBackend::rebalance`]).
    async fn apply_moves(
        &self,
        moves: Vec<PlannedMove>,
        shard_loads: BTreeMap<ShardId, u64>,
    ) -> Result<Rebalanced, ConfigChangeError> {
        if moves.is_empty() {
            return Ok(Rebalanced {
                effective_height: None,
                moves,
                shard_loads,
                message: "nothing to move: every shard's recent load is within \
                          rebalance_threshold of the mean, or no single account's load would \
                          narrow the gap"
                    .into(),
            });
        }
        let orders = moves
            .iter()
            .map(|m| AccountMoveOrder {
                account: m.account.clone(),
                to: m.to,
            })
            .collect();
        let applied = self.submit_change(|c| Ok(c.clone()), orders).await?;
        Ok(Rebalanced {
            effective_height: Some(applied.effective_height),
            message: format!(
                "{} account(s) move at beacon height {}; their old shards hand them over with \
                 migration receipts, and transactions they sign wait until the new shard has \
                 them",
                moves.len(),
                applied.effective_height
            ),
            moves,
            shard_loads,
        })
    }

    /// Automatic rebalancing (an API node holding the configuration authority's key): every
    /// [`AUTO_REBALANCE_CHECK_MS`], when the recent load is at least
    /// [`MIN_AUTO_REBALANCE_LOAD`] transactions and the last moves are at least
    /// [`AUTO_REBALANCE_COOLDOWN_MS`] old, plans moves from it and schedules them. Runs until
    /// the process ends; does nothing on a node without the key.
    pub async fn auto_rebalance(self: Arc<Self>) {
        if self.authority.key.is_none() || self.validator_outbox.is_some() {
            return;
        }
        let mut last_moves_ms = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(AUTO_REBALANCE_CHECK_MS)).await;
            let now = now_ms();
            if now.saturating_sub(last_moves_ms) < AUTO_REBALANCE_COOLDOWN_MS {
                continue;
            }
            let Ok((moves, loads)) = self.plan_moves() else {
                continue;
            };
            if moves.is_empty() || loads.values().sum::<u64>() < MIN_AUTO_REBALANCE_LOAD {
                continue;
            }
            match self.apply_moves(moves, loads).await {
                Ok(done) => {
                    last_moves_ms = now_ms();
                    tracing::info!(
                        moves = done.moves.len(),
                        effective_height = done.effective_height,
                        "automatic rebalance: {}",
                        done.message
                    );
                }
                Err(e) => tracing::warn!("automatic rebalance refused: {e}"),
            }
        }
    }

    async fn read<R>(
        &self,
        shard: ShardId,
        f: impl FnOnce(&QmdbStore<Context>) -> R,
    ) -> Result<R, BackendError> {
        Ok(self.app(shard)?.with_state(f).await)
    }

    /// Where an included transaction is, from its outcome and the receipts it emitted.
    async fn classify(&self, shard: ShardId, height: u64, outcome: &TxOutcome) -> TxStatus {
        if let vision_state::TxStatus::Failed { reason } = &outcome.status {
            return TxStatus::Failed {
                reason: reason.clone(),
            };
        }
        let streams: Vec<(ShardId, u64)> = outcome
            .receipts
            .iter()
            .filter_map(|r| parse_receipt_id(r))
            .filter(|(src, _, _)| *src == shard)
            .map(|(_, dst, seq)| (dst, seq))
            .collect();
        if streams.is_empty() {
            return TxStatus::Completed {
                shard_id: shard,
                height,
            };
        }
        let mut applied = true;
        for (dst, seq) in &streams {
            let next = self.shards.get(dst).map_or(0, |a| a.inbox_next(shard));
            applied &= next > *seq;
        }
        if applied {
            return TxStatus::Completed {
                shard_id: shard,
                height,
            };
        }
        let batched = self.stats.lock().batched_at.get(&outcome.tx_id).copied();
        let Some(closing) = batched else {
            return TxStatus::Included {
                shard_id: shard,
                height,
            };
        };
        let crosslink = crosslink_id(shard, closing);
        // Crosslinked once the beacon accepted every receipt the transaction emitted: each
        // stream's next expected seq is past it (a crosslink may be accepted after a higher
        // one of the same shard, so the shard's last crosslinked height does not tell).
        let accepted = self.view.with_view(|beacon| {
            beacon.is_some_and(|b| {
                streams
                    .iter()
                    .all(|(dst, seq)| b.next_seq(shard, *dst) > *seq)
            })
        });
        if accepted {
            let beacon_height = self
                .view
                .since(0)
                .iter()
                .find(|f| {
                    f.crosslink.shard() == Some(shard) && f.crosslink.header.height == closing
                })
                .map_or(self.view.beacon_height(), |f| f.beacon_height);
            TxStatus::Crosslinked {
                shard_id: shard,
                height,
                crosslink_id: crosslink,
                beacon_height,
            }
        } else {
            TxStatus::Batched {
                shard_id: shard,
                height,
                crosslink_id: crosslink,
            }
        }
    }

    /// Admission checks against committed state, then the shard's pool (forwarded by the
    /// relay).
    async fn admit(&self, tx: Verified) -> Result<Submitted, SubmitError> {
        let shard = self.shard_of_account(&tx.tx.signer);
        let app = self.app(shard)?;
        let account = app.with_state(|s| s.account(&tx.tx.signer)).await;
        if account.is_none()
            && let Some(e) = self.moving_error(&tx.tx.signer, shard)
        {
            return Err(e);
        }
        precheck(&self.spec, &tx, account.as_ref())?;
        let copy = self.validator_outbox.as_ref().map(|_| tx.get().clone());
        let id = app
            .submit_verified(vec![tx])
            .pop()
            .expect("one result per transaction")
            .map_err(mempool_error)?;
        self.relay_to_committee(copy.into_iter().collect());
        Ok(Submitted {
            tx_id: id,
            shard_id: shard,
        })
    }

    /// Waits until `id` is in a finalized block of `shard`; its height and outcome.
    async fn wait_outcome(
        &self,
        shard: ShardId,
        id: Hash,
    ) -> Result<(u64, TxOutcome), BackendError> {
        let app = self.app(shard)?;
        loop {
            if let Some(rec) = app.tx_record(&id) {
                return Ok((rec.height, rec.outcome));
            }
            if !app.is_pending(&id) {
                return Err(BackendError::Unavailable(format!(
                    "transaction {id} left the pool without being included (invalid for the \
                     shard's state, or expired)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(OUTCOME_POLL_MS)).await;
        }
    }

    /// The API's view of a proposal record, with each deciding committee's size and quorum;
    /// for a proposal that needs coordination, the result the beacon chain recorded (pending
    /// until this node's beacon view holds it).
    async fn proposal_view(&self, r: ProposalRecord) -> ProposalView {
        let committee_size = |shard: ShardId| {
            self.committees
                .plan
                .committees
                .iter()
                .find(|c| c.shard == shard)
                .map_or(0, |c| c.members.len())
        };
        let coordination_required = r.needs_coordination();
        let global = coordination_required
            .then(|| {
                self.view
                    .with_view(|v| v.and_then(|v| v.prsm().get(&r.id).cloned()))
            })
            .flatten();
        let (status, accepted_shards, time_taken_ms, reason) = match &global {
            None if coordination_required => (ProposalState::Pending, 0, None, None),
            None => (
                match r.status {
                    ProposalStatus::Pending => ProposalState::Pending,
                    ProposalStatus::Achieved => ProposalState::Achieved,
                    ProposalStatus::Failed => ProposalState::Failed,
                },
                r.votes.iter().filter(|v| v.accepted).count(),
                r.decided_ms.map(|d| d.saturating_sub(r.submitted_ms)),
                r.reason.clone(),
            ),
            Some(g) => (
                match g.outcome {
                    None => ProposalState::Pending,
                    Some(_) if g.achieved() => ProposalState::Achieved,
                    Some(_) => ProposalState::Failed,
                },
                g.tally().0 as usize,
                g.decided_ms.map(|d| d.saturating_sub(g.opened_ms())),
                g.failure(),
            ),
        };
        let decisions = self.decisions(&r, global.as_ref()).await;
        ProposalView {
            proposal_id: r.id,
            status,
            consensus_achieved: status == ProposalState::Achieved,
            action: r.action,
            proposer: r.proposer,
            coordinating_shard: r.coordinating_shard,
            cross_shard_approval: accepted_shards as f64 / r.targets.len().max(1) as f64,
            target_shards: r.targets,
            affects_multiple_shards: r.affects_multiple_shards,
            coordination_required,
            shard_results: decisions
                .into_iter()
                .map(|v| {
                    let n = committee_size(v.shard);
                    ShardDecision {
                        shard_id: v.shard,
                        accepted: v.accepted,
                        reason: v.reason,
                        height: v.height,
                        committee_size: n,
                        quorum: vision_sharding::bft_quorum(n),
                    }
                })
                .collect(),
            accepted_shards,
            threshold: vision_sharding::params::CROSS_SHARD_CONSENSUS_THRESHOLD,
            time_taken_ms,
            reason,
            submitted_height: r.submitted_height,
            decided_height: r.decided_height,
            decided_by: if coordination_required {
                DecidedBy::Beacon
            } else {
                DecidedBy::Shard
            },
            beacon_height: global.and_then(|g| g.decided_height),
        }
    }

    /// The target shards' decisions to show for a proposal: those the beacon counted (each
    /// with its reason, from the coordinating shard's record or else from the deciding shard's
    /// own record), then any the coordinating shard collected besides; without a beacon
    /// result, the coordinating shard's.
    async fn decisions(
        &self,
        r: &ProposalRecord,
        global: Option<&vision_sharding::GlobalProposal>,
    ) -> Vec<ShardVote> {
        let Some(g) = global else {
            return r.votes.clone();
        };
        let mut out = Vec::new();
        for gv in &g.votes {
            let known = r.votes.iter().find(|v| v.shard == gv.shard).cloned();
            let own = match (&known, self.shards.get(&gv.shard)) {
                (None, Some(app)) => app.with_state(|s| s.proposal_vote(&r.id)).await,
                _ => None,
            };
            out.push(known.or(own).unwrap_or(ShardVote {
                shard: gv.shard,
                accepted: gv.accepted,
                reason: None,
                height: gv.height,
                counted_ms: 0,
            }));
        }
        let counted: Vec<ShardId> = out.iter().map(|v| v.shard).collect();
        out.extend(
            r.votes
                .iter()
                .filter(|v| !counted.contains(&v.shard))
                .cloned(),
        );
        out
    }

    /// Signs `action` for a devnet account (next nonce above committed and handed-out ones).
    async fn dev_signed(&self, signer: &AccountId, action: Action) -> Option<SignedTransaction> {
        let key = self.dev_keys.get(signer)?;
        let shard = self.shard_of_account(signer);
        let committed = self
            .read(shard, |s| s.account(signer).map_or(0, |a| a.nonce))
            .await
            .ok()?;
        let nonce = {
            let mut nonces = self.dev_nonces.lock();
            let next = nonces.entry(signer.clone()).or_insert(committed);
            if *next < committed {
                *next = committed;
            }
            let n = *next;
            *next += 1;
            n
        };
        Some(
            Transaction {
                chain_id: self.spec.network.clone(),
                signer: signer.clone(),
                nonce,
                fee: Amount(DEV_FEE),
                action,
            }
            .sign(key),
        )
    }
}

/// `receipt_{src}_{dst}_{seq}` → its parts.
fn parse_receipt_id(id: &str) -> Option<(ShardId, ShardId, u64)> {
    let mut it = id.strip_prefix("receipt_")?.split('_');
    let src = it.next()?.parse().ok()?;
    let dst = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    Some((ShardId(src), ShardId(dst), seq))
}

/// The checks a transaction must pass against committed state to be worth forwarding.
fn precheck(
    spec: &NetworkSpec,
    tx: &SignedTransaction,
    account: Option<&vision_state::Account>,
) -> Result<(), SubmitError> {
    if tx.tx.chain_id != spec.network {
        return Err(SubmitError::Invalid(format!(
            "chain id {} is not this network's ({})",
            tx.tx.chain_id, spec.network
        )));
    }
    let Some(account) = account else {
        return Err(SubmitError::Invalid(format!(
            "unknown signer {}: the account does not exist (fund it first)",
            tx.tx.signer
        )));
    };
    if account.public_key != tx.public_key {
        return Err(SubmitError::Invalid(format!(
            "the signing key is not the key of account {}",
            tx.tx.signer
        )));
    }
    if tx.tx.nonce < account.nonce {
        return Err(SubmitError::NonceConflict(format!(
            "nonce {} already used by {} (next is {})",
            tx.tx.nonce, tx.tx.signer, account.nonce
        )));
    }
    Ok(())
}

fn mempool_error(e: MempoolError) -> SubmitError {
    match e {
        MempoolError::Full => SubmitError::MempoolFull,
        MempoolError::Duplicate(id) => SubmitError::Duplicate(id),
        MempoolError::BadSignature(id) => {
            SubmitError::Invalid(format!("invalid signature on transaction {id}"))
        }
        MempoolError::TooLarge => SubmitError::Invalid("transaction too large".into()),
    }
}

fn block_event(e: &FinalizedEvent, observed_ms: u64) -> BlockEvent {
    BlockEvent {
        shard_id: e.shard,
        height: e.height,
        timestamp_ms: e.timestamp_ms,
        finalized_ms: observed_ms,
        tx_ids: e.outcomes.iter().map(|o| o.tx_id).collect(),
        failed_tx_ids: e
            .outcomes
            .iter()
            .filter(|o| matches!(o.status, vision_state::TxStatus::Failed { .. }))
            .map(|o| o.tx_id)
            .collect(),
        completed_origin_tx_ids: e.applied_origins.clone(),
    }
}

fn call_state(s: CallStatus) -> CallState {
    match s {
        CallStatus::Pending => CallState::Pending,
        CallStatus::Executing => CallState::Executing,
        CallStatus::Completed => CallState::Completed,
        CallStatus::Failed => CallState::Failed,
    }
}

fn call_view(c: &CallRecord) -> CrossShardCallView {
    CrossShardCallView {
        id: c.id,
        from_shard: c.from_shard,
        to_shard: c.to_shard,
        contract_id: c.contract_id.clone(),
        method: c.method.clone(),
        args: c.args.clone(),
        status: call_state(c.status),
    }
}

/// Per-shard figures read from committed state.
struct ShardFigures {
    /// Finalized height as applied by this node.
    height: u64,
    /// Transactions in this node's pool for the shard.
    mempool: usize,
    accounts: u64,
    tx_count: u64,
    contracts: u64,
    calls: u64,
    pending_batch: u64,
    balance_total: Amount,
    /// Receipts emitted to each destination (`outbox_next`).
    outbox: BTreeMap<ShardId, u64>,
    /// Receipts applied from each source (`inbox_next`).
    inbox: BTreeMap<ShardId, u64>,
}

impl NodeApi {
    async fn figures(&self) -> BTreeMap<ShardId, ShardFigures> {
        let n = self.spec.config.num_shards as u32;
        let mut out = BTreeMap::new();
        for (&shard, app) in &self.shards {
            let f = app
                .with_state(|s| {
                    let contracts = s.contracts();
                    ShardFigures {
                        height: app.finalized_height(),
                        mempool: app.mempool_len(),
                        accounts: s.accounts().len() as u64,
                        tx_count: s.counter(Counter::TxCount) as u64,
                        calls: contracts.iter().map(|c| s.contract_call_count(&c.id)).sum(),
                        contracts: contracts.len() as u64,
                        pending_batch: u64::from(s.pending_meta().count),
                        balance_total: s.total_balances(),
                        outbox: (0..n)
                            .map(ShardId)
                            .filter(|d| *d != shard)
                            .map(|d| (d, s.outbox_next(d)))
                            .collect(),
                        inbox: (0..n)
                            .map(ShardId)
                            .filter(|d| *d != shard)
                            .map(|d| (d, s.inbox_next(d)))
                            .collect(),
                    }
                })
                .await;
            out.insert(shard, f);
        }
        out
    }
}

impl vision_api::NodeBackend for NodeApi {
    async fn status(&self) -> Result<NodeStatus, BackendError> {
        let mut shards = Vec::new();
        let mut syncing = false;
        for (&shard, app) in &self.shards {
            let recent = app.recent_finalized();
            let (height, block_hash, state_root) = match recent.last_key_value() {
                Some((h, info)) => (*h, info.hash, info.state_root),
                None => (app.finalized_height(), Hash::ZERO, Hash::ZERO),
            };
            syncing |= app.finalized_height() < self.view.last_height(shard);
            shards.push(ShardHead {
                shard_id: shard,
                height,
                block_hash,
                state_root,
            });
        }
        Ok(NodeStatus {
            chain_id: self.spec.network.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            devnet: !self.dev_keys.is_empty(),
            role: self.role().into(),
            // Every genesis validator (beacon members sit on shard committees too).
            peers: self.committees.plan.nodes.len(),
            syncing,
            beacon_height: self.view.beacon_height(),
            shards,
            processes: self.processes(),
        })
    }

    async fn metrics(&self) -> Result<String, BackendError> {
        use std::fmt::Write as _;
        let figures = self.figures().await;
        let mut m = String::new();
        let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(m, "# HELP {name} {help}");
            let _ = writeln!(m, "# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(m, "{name}{labels} {v}");
            }
        };
        let per_shard = |f: &dyn Fn(ShardId, &ShardFigures) -> String| {
            figures
                .iter()
                .map(|(s, x)| (format!("{{shard=\"{}\"}}", s.0), f(*s, x)))
                .collect::<Vec<_>>()
        };
        family(
            "vision_shard_height",
            "Finalized height of each shard as applied by this node.",
            "gauge",
            per_shard(&|_, f| f.height.to_string()),
        );
        family(
            "vision_shard_txs_total",
            "Transactions executed on each shard (finalized state).",
            "counter",
            per_shard(&|_, f| f.tx_count.to_string()),
        );
        family(
            "vision_shard_pending_batch",
            "Receipts in each shard's pending crosslink batch.",
            "gauge",
            per_shard(&|_, f| f.pending_batch.to_string()),
        );
        family(
            "vision_shard_mempool",
            "Transactions this node forwards to each shard, not yet included.",
            "gauge",
            per_shard(&|_, f| f.mempool.to_string()),
        );
        family(
            "vision_beacon_height",
            "Finalized beacon height as applied by this node.",
            "gauge",
            vec![(String::new(), self.view.beacon_height().to_string())],
        );
        let st = self.stats.lock();
        family(
            "vision_crosslinks_total",
            "Beacon-finalized crosslinks seen by this node, per shard.",
            "counter",
            st.crosslinks
                .iter()
                .map(|(s, (n, _))| (format!("{{shard=\"{}\"}}", s.0), n.to_string()))
                .collect(),
        );
        family(
            "vision_throughput_tps",
            "Finalized transactions per second, all shards, over the last 10 s.",
            "gauge",
            vec![(String::new(), format!("{:.3}", st.throughput_tps(now_ms())))],
        );
        family(
            "vision_crosslink_latency_ms",
            "Mean time from a crosslinked shard block to this node seeing it beacon-finalized.",
            "gauge",
            vec![(String::new(), format!("{:.1}", st.crosslink_latency.mean()))],
        );
        family(
            "vision_event_subscribers",
            "Open GET /events streams.",
            "gauge",
            vec![(String::new(), self.events.receiver_count().to_string())],
        );
        Ok(m)
    }

    async fn shard_config(&self) -> Result<ShardConfig, BackendError> {
        Ok(self.current_config())
    }

    async fn shards(&self) -> Result<Vec<ShardSummary>, BackendError> {
        self.every_shard("the dashboard")?;
        let figures = self.figures().await;
        let st = self.stats.lock();
        Ok(figures
            .into_iter()
            .map(|(shard, f)| ShardSummary {
                id: shard,
                name: format!("shard_{}", shard.0),
                accounts: f.accounts,
                validators: self
                    .spec
                    .shard_committees
                    .get(&shard)
                    .map_or(0, |m| m.len() as u64),
                tx_count: f.tx_count,
                crosslinks: st.crosslinks.get(&shard).map_or(0, |c| c.0),
                contracts: f.contracts,
                pending_batch: f.pending_batch,
                last_crosslink_height: self.view.last_height(shard),
                balance_total: f.balance_total,
            })
            .collect())
    }

    async fn network_stats(&self) -> Result<NetworkStats, BackendError> {
        self.every_shard("the network statistics")?;
        let figures = self.figures().await;
        let total_txs: u64 = figures.values().map(|f| f.tx_count).sum();
        // Receipts emitted but not yet applied at their destination.
        let mut in_flight = 0u64;
        for (src, f) in &figures {
            for (dst, emitted) in &f.outbox {
                let applied = figures.get(dst).and_then(|d| d.inbox.get(src)).copied();
                in_flight += emitted.saturating_sub(applied.unwrap_or(0));
            }
        }
        let pooled: u64 = self.shards.values().map(|a| a.mempool_len() as u64).sum();
        let st = self.stats.lock();
        let total_crosslinks = st.crosslinks.values().map(|c| c.0).sum();
        let batched_crosslinks: u64 = st.crosslinks.values().map(|c| c.1).sum();
        Ok(NetworkStats {
            total_crosslinks,
            batched_crosslinks,
            avg_batch_size: if batched_crosslinks == 0 {
                0.0
            } else {
                st.batched_txs as f64 / batched_crosslinks as f64
            },
            total_txs,
            completed_txs: total_txs.saturating_sub(in_flight),
            pending_txs: pooled + in_flight,
            pending_batch: figures.values().map(|f| f.pending_batch).sum(),
        })
    }

    async fn contract_stats(&self) -> Result<ContractStats, BackendError> {
        self.every_shard("the contract statistics")?;
        let figures = self.figures().await;
        Ok(ContractStats {
            total: figures.values().map(|f| f.contracts).sum(),
            cross_shard_calls: figures.values().map(|f| f.calls).sum(),
        })
    }

    async fn consensus_metrics(&self) -> Result<ConsensusMetrics, BackendError> {
        self.every_shard("the PRSM metrics (every shard's height)")?;
        let plan = &self.committees.plan;
        let (beacon_height, cross_shard_operations, records) = self.view.with_view(|v| {
            v.map_or((0, 0, BTreeMap::new()), |v| {
                let ops = v
                    .receipt_streams()
                    .iter()
                    .filter(|((src, dst), _)| src != dst)
                    .map(|(_, n)| *n)
                    .sum();
                (v.height(), ops, v.reputations().clone())
            })
        });
        // Every planned validator with its beacon record, by shard then name.
        let mut validators: Vec<ValidatorReputation> = plan
            .committees
            .iter()
            .flat_map(|c| c.members.iter().map(move |m| (c.shard, m)))
            .filter_map(|(shard, name)| {
                let key = self.committees.keys.get(name)?;
                let r = records.get(key)?;
                Some(ValidatorReputation {
                    name: name.clone(),
                    consensus_key: key.to_string(),
                    shard_id: shard,
                    reputation: r.score().as_f64(),
                    genesis_reputation: r.prior.as_f64(),
                    finalize_votes: r.finalize_votes,
                    missed: r.missed,
                    blocks_finalized: r.blocks_finalized,
                    beacon_blocks_finalized: r.beacon_blocks_finalized,
                    equivocations: r.equivocations,
                })
            })
            .collect();
        validators.sort_by(|a, b| (a.shard_id, &a.name).cmp(&(b.shard_id, &b.name)));
        let observed = |shard: ShardId| {
            let scores: Vec<f64> = validators
                .iter()
                .filter(|v| v.shard_id == shard)
                .map(|v| v.reputation)
                .collect();
            scores.iter().sum::<f64>() / scores.len().max(1) as f64
        };
        let reputations: Vec<f64> = plan.nodes.iter().map(|n| n.reputation.as_f64()).collect();
        Ok(ConsensusMetrics {
            active_shards: plan.committees.len(),
            strategy: plan.strategy.as_str().into(),
            total_throughput: self.stats.lock().throughput_tps(now_ms()),
            cross_shard_operations,
            total_nodes: plan.nodes.len(),
            average_reputation: reputations.iter().sum::<f64>() / reputations.len().max(1) as f64,
            beacon_committee: self.committees.beacon.clone(),
            beacon_height,
            shards: plan
                .committees
                .iter()
                .map(|c| CommitteeMetrics {
                    shard_id: c.shard,
                    members: c.members.clone(),
                    nodes: c.members.len(),
                    coordinator: c.coordinator.clone(),
                    avg_reputation: c.avg_reputation.as_f64(),
                    height: self
                        .shards
                        .get(&c.shard)
                        .map_or(0, ShardApp::finalized_height),
                    workload: c.workload.clone(),
                    observed_reputation: observed(c.shard),
                })
                .collect(),
            validators,
        })
    }

    async fn performance(&self) -> Result<Performance, BackendError> {
        let st = self.stats.lock();
        Ok(Performance {
            avg_crosslink_latency_ms: st.crosslink_latency.mean(),
            avg_batch_latency_ms: st.batch_latency.mean(),
            throughput_tps: st.throughput_tps(now_ms()),
        })
    }

    async fn recent_crosslinks(&self, limit: usize) -> Result<Vec<CrosslinkSummary>, BackendError> {
        Ok(self
            .view
            .since(0)
            .iter()
            .rev()
            .filter_map(|f| {
                let cl = &f.crosslink;
                Some(CrosslinkSummary {
                    id: cl.id(),
                    shard_id: cl.shard()?,
                    height: cl.header.height,
                    batched_txs: cl.batched_txs.len() as u64,
                    state_root: cl.header.state_root,
                    timestamp_ms: cl.header.timestamp_ms,
                })
            })
            .take(limit)
            .collect())
    }

    async fn batch_status(&self, shard: ShardId) -> Result<Option<BatchStatus>, BackendError> {
        if !self.spec.shard_committees.contains_key(&shard) {
            return Ok(None);
        }
        let app = self.app(shard)?;
        let cfg = &self.current_config();
        let (meta, urgent) = app
            .with_state(|s| {
                let meta = s.pending_meta();
                let urgent =
                    meta.count > 0 && s.pending_receipts().iter().any(|r| r.priority == 255);
                (meta, urgent)
            })
            .await;
        let age = if meta.count == 0 {
            0
        } else {
            now_ms().saturating_sub(meta.first_receipt_ms)
        };
        Ok(Some(BatchStatus {
            pending_txs: u64::from(meta.count),
            batch_age_ms: age,
            is_ready: meta.count > 0
                && (u64::from(meta.count) >= cfg.batch_size
                    || age >= cfg.batch_timeout_ms
                    || urgent
                    || !cfg.async_crosslinks_enabled),
        }))
    }

    async fn flush(&self, shard: ShardId) -> Result<FlushOutcome, BackendError> {
        self.app(shard)?;
        let Some(signer) = self
            .dev_keys
            .keys()
            .find(|a| self.shard_of_account(a) == shard)
            .cloned()
        else {
            return Err(BackendError::Unavailable(format!(
                "this node holds no key of an account on shard {shard} to sign the flush; submit a \
                 signed `flush` transaction for shard {shard} with POST /tx"
            )));
        };
        let tx = self
            .dev_signed(&signer, Action::Flush { shard })
            .await
            .and_then(|t| t.into_verified().ok())
            .ok_or_else(|| BackendError::Unavailable("signing the flush failed".into()))?;
        let id = tx.id();
        self.admit(tx).await.map_err(|e| match e {
            SubmitError::Backend(b) => b,
            other => BackendError::Unavailable(format!("flush not admitted: {other}")),
        })?;
        let (height, outcome) = self.wait_outcome(shard, id).await?;
        if let vision_state::TxStatus::Failed { reason } = outcome.status {
            return Err(BackendError::Unavailable(format!("flush failed: {reason}")));
        }
        let app = self.app(shard)?;
        let state_root = app
            .recent_finalized()
            .get(&height)
            .map_or(Hash::ZERO, |i| i.state_root);
        let batched_txs = self
            .stats
            .lock()
            .closed
            .get(&(shard, height))
            .copied()
            .unwrap_or(0);
        Ok(FlushOutcome {
            crosslink_id: crosslink_id(shard, height),
            batched_txs,
            state_root,
        })
    }

    async fn submit_tx(&self, tx: Verified) -> Result<Submitted, SubmitError> {
        self.admit(tx).await
    }

    async fn submit_batch(
        &self,
        txs: Vec<Verified>,
    ) -> Result<Vec<Result<Submitted, SubmitError>>, BackendError> {
        // Group by shard: one state read per shard (signatures were verified by the HTTP
        // layer).
        let mut by_shard: BTreeMap<ShardId, Vec<(usize, Verified)>> = BTreeMap::new();
        let n = txs.len();
        for (i, tx) in txs.into_iter().enumerate() {
            by_shard
                .entry(self.shard_of_account(&tx.tx.signer))
                .or_default()
                .push((i, tx));
        }
        let mut out: Vec<Option<Result<Submitted, SubmitError>>> = vec![None; n];
        let mut relayed = Vec::new();
        for (shard, group) in by_shard {
            let app = match self.app(shard) {
                Ok(app) => app,
                // A shard this node does not hold: those transactions only are refused.
                Err(e) => {
                    for (i, _) in group {
                        out[i] = Some(Err(e.clone().into()));
                    }
                    continue;
                }
            };
            let accounts: Vec<Option<vision_state::Account>> = app
                .with_state(|s| group.iter().map(|(_, t)| s.account(&t.tx.signer)).collect())
                .await;
            let mut admit = Vec::new();
            for ((i, tx), account) in group.into_iter().zip(accounts) {
                match precheck(&self.spec, &tx, account.as_ref()) {
                    Ok(()) => admit.push((i, tx)),
                    Err(e) => out[i] = Some(Err(e)),
                }
            }
            let (idx, batch): (Vec<usize>, Vec<Verified>) = admit.into_iter().unzip();
            let copies: Vec<SignedTransaction> = match self.validator_outbox {
                Some(_) => batch.iter().map(|t| t.get().clone()).collect(),
                None => Vec::new(),
            };
            let results = app.submit_verified(batch);
            for (k, (i, r)) in idx.into_iter().zip(results).enumerate() {
                if r.is_ok()
                    && let Some(tx) = copies.get(k)
                {
                    relayed.push(tx.clone());
                }
                out[i] = Some(r.map_err(mempool_error).map(|tx_id| Submitted {
                    tx_id,
                    shard_id: shard,
                }));
            }
        }
        self.relay_to_committee(relayed);
        Ok(out.into_iter().flatten().collect())
    }

    async fn tx_status(&self, id: Hash) -> Result<Option<TxStatus>, BackendError> {
        for (&shard, app) in &self.shards {
            if let Some(rec) = app.find_tx(&id).await {
                return Ok(Some(self.classify(shard, rec.height, &rec.outcome).await));
            }
        }
        for (&shard, app) in &self.shards {
            if app.is_pending(&id) {
                return Ok(Some(TxStatus::Pending { shard_id: shard }));
            }
        }
        Ok(None)
    }

    async fn account(&self, id: AccountId) -> Result<Option<AccountView>, BackendError> {
        let mut shard = self.shard_of_account(&id);
        let mut account = self.read(shard, |s| s.account(&id)).await?;
        // Moved lately: until the new shard has it, the old one may still hold it.
        if account.is_none() {
            for old in self.recent_shards_of(&id) {
                if old == shard {
                    continue;
                }
                if let Ok(Some(a)) = self.read(old, |s| s.account(&id)).await {
                    (shard, account) = (old, Some(a));
                    break;
                }
            }
        }
        Ok(account.map(|a| AccountView {
            id,
            shard_id: shard,
            balance: a.balance,
            nonce: a.nonce,
            public_key: a.public_key,
        }))
    }

    async fn contract(&self, id: ContractId) -> Result<Option<ContractView>, BackendError> {
        let shard = self.layout.shard_of_contract(&id);
        let c = self.read(shard, |s| s.shard_contract(&id)).await?;
        Ok(c.map(|c| ContractView {
            id: c.id,
            name: c.name,
            owner: c.owner,
            primary_shard: c.primary_shard,
            code_hash: c.code_hash,
            state: c.state,
            cross_shard_calls: c
                .cross_shard_calls
                .into_iter()
                .map(|x| CrossShardCallView {
                    id: x.id,
                    from_shard: x.from_shard,
                    to_shard: x.to_shard,
                    contract_id: x.contract_id,
                    method: x.method,
                    args: x.args,
                    status: call_state(x.status),
                })
                .collect(),
            gas_budget: c.gas_budget,
            created_height: c.created_height,
        }))
    }

    async fn contracts(&self, offset: usize, limit: usize) -> Result<ContractPage, BackendError> {
        self.every_shard("the contract list")?;
        let mut all = Vec::new();
        for app in self.shards.values() {
            all.extend(app.with_state(|s| s.contracts()).await);
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ContractPage {
            total: all.len() as u64,
            contracts: all
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|c| ContractSummary {
                    id: c.id,
                    name: c.name,
                    owner: c.owner,
                    primary_shard: c.primary_shard,
                    created_height: c.created_height,
                })
                .collect(),
        })
    }

    async fn call_status(&self, id: CallId) -> Result<Option<CallView>, BackendError> {
        // The caller's record follows the call to its end (result receipt); the contract's
        // history has it as soon as it executed. Report the most advanced.
        let mut best: Option<CallRecord> = None;
        for app in self.shards.values() {
            let (caller_side, contract_side) = app
                .with_state(|s| {
                    let mine = s.call_record(&id);
                    let theirs = s
                        .contracts()
                        .iter()
                        .flat_map(|c| s.contract_calls(&c.id))
                        .find(|c| c.id == id);
                    (mine, theirs)
                })
                .await;
            for rec in [caller_side, contract_side].into_iter().flatten() {
                let rank = |r: &CallRecord| match r.status {
                    CallStatus::Pending => 0,
                    CallStatus::Executing => 1,
                    CallStatus::Completed | CallStatus::Failed => 2,
                };
                if best.as_ref().is_none_or(|b| rank(&rec) > rank(b)) {
                    best = Some(rec);
                }
            }
        }
        Ok(best.map(|c| CallView {
            call: call_view(&c),
            result: c.output.clone(),
        }))
    }

    /// Signs the change with the configuration authority's key, hands it to the relay (which
    /// sends it to the beacon committee until it is finalized) and waits until this node's
    /// beacon view holds it. One change at a time; the route bounds the wait.
    async fn update_config(
        &self,
        update: ConfigUpdate,
    ) -> Result<ConfigApplied, ConfigChangeError> {
        let applied = self
            .submit_change(
                |latest| {
                    let config = latest.updated(&update)?;
                    if config == *latest {
                        return Err(ConfigChangeError::Conflict(
                            "the update changes nothing: the latest configuration already has \
                             these values"
                                .into(),
                        ));
                    }
                    Ok(config)
                },
                Vec::new(),
            )
            .await?;
        Ok(ConfigApplied {
            effective_height: applied.effective_height,
            config: applied.config,
        })
    }

    async fn rebalance(
        &self,
        moves: Option<Vec<MoveRequest>>,
    ) -> Result<Rebalanced, ConfigChangeError> {
        let (planned, loads) = match moves {
            None => self.plan_moves()?,
            Some(asked) => {
                let loads = self.load.lock().shard_loads(now_ms());
                let planned = asked
                    .into_iter()
                    .map(|m| PlannedMove {
                        from: self.shard_of_account(&m.account),
                        account: m.account,
                        to: m.to,
                        load: 0,
                    })
                    .collect();
                (planned, loads)
            }
        };
        self.apply_moves(planned, loads).await
    }

    async fn dev_sign(
        &self,
        signer: AccountId,
        action: Action,
    ) -> Result<Option<SignedTransaction>, BackendError> {
        Ok(self.dev_signed(&signer, action).await)
    }

    async fn deploy_contract(&self, tx: Verified) -> Result<Deployed, SubmitError> {
        let id = tx.id();
        let contract_id = ContractId::from_deploy(&id);
        let primary_shard = self.layout.shard_of_contract(&contract_id);
        // The answer waits until the contract exists on its shard: refuse before admitting
        // when this node (a validator) cannot see that shard.
        self.app(primary_shard)?;
        let submitted = self.admit(tx).await?;
        let (_, outcome) = self.wait_outcome(submitted.shard_id, id).await?;
        if let vision_state::TxStatus::Failed { reason } = outcome.status {
            return Err(SubmitError::Invalid(format!("deployment failed: {reason}")));
        }
        // A deployment by an owner on another shard travels as a receipt.
        while !self
            .read(primary_shard, |s| s.contract(&contract_id).is_some())
            .await?
        {
            tokio::time::sleep(Duration::from_millis(OUTCOME_POLL_MS)).await;
        }
        Ok(Deployed {
            contract_id,
            primary_shard,
        })
    }

    async fn execute_contract(&self, tx: Verified) -> Result<Executed, SubmitError> {
        let Action::CallContract { contract, .. } = &tx.tx.action else {
            return Err(SubmitError::Invalid("not a contract call".into()));
        };
        let contract_shard = self.layout.shard_of_contract(contract);
        let caller_shard = self.shard_of_account(&tx.tx.signer);
        if contract_shard == caller_shard {
            let known = self
                .read(contract_shard, |s| s.contract(contract).is_some())
                .await?;
            if !known {
                return Err(SubmitError::UnknownContract(contract.clone()));
            }
        }
        let id = tx.id();
        let submitted = self.admit(tx).await?;
        // Same shard: the outcome is the result. Another shard: once the caller's block is
        // final the call is queued in a receipt and `GET /shard/call/{id}` knows it.
        let (_, outcome) = self.wait_outcome(submitted.shard_id, id).await?;
        if contract_shard != caller_shard
            && !matches!(outcome.status, vision_state::TxStatus::Failed { .. })
        {
            return Ok(Executed::Pending {
                call_id: CallId::from_tx(&id),
            });
        }
        Ok(match outcome.status {
            vision_state::TxStatus::Failed { reason } => Executed::Failed { reason },
            _ => Executed::Completed {
                result: outcome.result.unwrap_or(serde_json::Value::Null),
            },
        })
    }

    async fn submit_proposal(&self, tx: Verified) -> Result<ProposalView, SubmitError> {
        if !matches!(tx.tx.action, Action::Proposal { .. }) {
            return Err(SubmitError::Invalid("not a proposal".into()));
        }
        let id = tx.id();
        let submitted = self.admit(tx).await?;
        let (_, outcome) = self.wait_outcome(submitted.shard_id, id).await?;
        if let vision_state::TxStatus::Failed { reason } = outcome.status {
            return Err(SubmitError::Invalid(format!(
                "the proposal failed: {reason}"
            )));
        }
        loop {
            let record = self
                .read(submitted.shard_id, |s| s.proposal(&id))
                .await?
                .ok_or_else(|| {
                    BackendError::Unavailable(format!(
                        "proposal {id} was included but shard {} has no record of it",
                        submitted.shard_id
                    ))
                })?;
            let view = self.proposal_view(record).await;
            if view.status != ProposalState::Pending {
                return Ok(view);
            }
            tokio::time::sleep(Duration::from_millis(OUTCOME_POLL_MS)).await;
        }
    }

    async fn proposal(&self, id: Hash) -> Result<Option<ProposalView>, BackendError> {
        for app in self.shards.values() {
            if let Some(record) = app.with_state(|s| s.proposal(&id)).await {
                return Ok(Some(self.proposal_view(record).await));
            }
        }
        Ok(None)
    }

    async fn supply(&self) -> Result<SupplyReport, BackendError> {
        self.every_shard("the supply audit")?;
        let mut shards = Vec::new();
        for (&shard, app) in &self.shards {
            let (height, s) = app
                .with_state(|st| (st.chain_meta().height, Supply::of(st)))
                .await;
            shards.push(ShardSupply {
                shard_id: shard,
                height,
                genesis: Amount(s.genesis),
                balances: Amount(s.balances),
                burned: Amount(s.burned),
                unclaimed: Amount(s.unclaimed),
                sent: Amount(s.sent),
                received: Amount(s.received),
            });
        }
        let sum = |f: fn(&ShardSupply) -> Amount| -> Result<Amount, BackendError> {
            shards
                .iter()
                .try_fold(Amount(0), |acc, s| acc.checked_add(f(s)).ok())
                .ok_or_else(|| BackendError::Unavailable("supply overflows u128".into()))
        };
        let (sent, received) = (sum(|s| s.sent)?, sum(|s| s.received)?);
        // Each shard is read at its own finalized height. A receipt is emitted before it can be
        // applied, so `received <= sent` whatever the heights; if not, report it unbalanced.
        let in_flight = Amount(sent.0.saturating_sub(received.0));
        let (genesis, balances, burned, unclaimed) = (
            sum(|s| s.genesis)?,
            sum(|s| s.balances)?,
            sum(|s| s.burned)?,
            sum(|s| s.unclaimed)?,
        );
        let balanced = received.0 <= sent.0
            && Some(genesis.0)
                == balances
                    .0
                    .checked_add(in_flight.0)
                    .and_then(|x| x.checked_add(burned.0))
                    .and_then(|x| x.checked_add(unclaimed.0));
        Ok(SupplyReport {
            genesis,
            balances,
            in_flight,
            burned,
            unclaimed,
            balanced,
            shards,
        })
    }

    fn events(&self) -> broadcast::Receiver<BlockEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_ids_parse() {
        assert_eq!(
            parse_receipt_id("receipt_1_3_42"),
            Some((ShardId(1), ShardId(3), 42))
        );
        assert_eq!(parse_receipt_id("receipt_1_3"), None);
        assert_eq!(parse_receipt_id("xreceipt_1_3_4"), None);
        assert_eq!(parse_receipt_id("receipt_a_3_4"), None);
    }

    #[test]
    fn samples_are_bounded_and_averaged() {
        let mut s = Samples::default();
        assert_eq!(s.mean(), 0.0);
        for i in 0..(LATENCY_SAMPLES as u64 + 10) {
            s.push(i);
        }
        assert_eq!(s.0.len(), LATENCY_SAMPLES);
        assert_eq!(s.0.front(), Some(&10));
    }
}
