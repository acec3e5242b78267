//! The contract between the HTTP layer and the node: [`NodeBackend`] and the plain data it
//! returns.
//!
//! Every field is something a running node measures or derives from finalized state; none is
//! a claim or an estimate made up for display. The HTTP layer validates and bounds every
//! request before it calls a method here, so a backend only ever sees well-formed values
//! (parsed ids, shard ids below `num_shards`, transactions whose signature verified and whose
//! fields are within [`vision_types::limits`]).

use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, future::Future};
use vision_types::{
    AccountId, Action, Amount, CallId, ConfigUpdate, ContractId, Hash, PublicKey, ShardConfig,
    ShardId, SignedTransaction, Verified,
};

/// What the HTTP API needs from a node. The node implements it; the API never reaches past it.
///
/// Methods return `impl Future + Send` so handlers can run on a multi-threaded runtime; an
/// implementation may write them as `async fn`. Reads return `Ok(None)` for an unknown id;
/// [`BackendError`] is for a node that cannot answer (not yet synced, shutting down).
pub trait NodeBackend: Send + Sync + 'static {
    /// The node's identity and chain heads (`GET /status`).
    fn status(&self) -> impl Future<Output = Result<NodeStatus, BackendError>> + Send;

    /// Prometheus text exposition of the node's metrics registry (`GET /metrics`).
    fn metrics(&self) -> impl Future<Output = Result<String, BackendError>> + Send;

    /// The configuration in force at the latest finalized beacon height.
    fn shard_config(&self) -> impl Future<Output = Result<ShardConfig, BackendError>> + Send;

    /// One summary per shard, ordered by shard id (`GET /shard/dashboard`).
    fn shards(&self) -> impl Future<Output = Result<Vec<ShardSummary>, BackendError>> + Send;

    /// Network-wide crosslink and transaction counters (`GET /shard/dashboard`).
    fn network_stats(&self) -> impl Future<Output = Result<NetworkStats, BackendError>> + Send;

    /// Contract counters (`GET /shard/dashboard`).
    fn contract_stats(&self) -> impl Future<Output = Result<ContractStats, BackendError>> + Send;

    /// Measured latencies and throughput (`GET /shard/dashboard`).
    fn performance(&self) -> impl Future<Output = Result<Performance, BackendError>> + Send;

    /// The most recent beacon-finalized crosslinks, newest first, at most `limit`.
    fn recent_crosslinks(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CrosslinkSummary>, BackendError>> + Send;

    /// The pending crosslink batch of `shard`, or `None` if the shard does not exist.
    fn batch_status(
        &self,
        shard: ShardId,
    ) -> impl Future<Output = Result<Option<BatchStatus>, BackendError>> + Send;

    /// Closes `shard`'s pending batch (a flush system transaction) and resolves once the
    /// block that closed it is finalized. The HTTP layer bounds the wait and drops this
    /// future on timeout, so the flush must not depend on it being polled to completion.
    fn flush(
        &self,
        shard: ShardId,
    ) -> impl Future<Output = Result<FlushOutcome, BackendError>> + Send;

    /// Admits a signed transaction to its shard's mempool. The HTTP layer has verified its
    /// signature ([`Verified`]); the backend does not verify it again.
    fn submit_tx(
        &self,
        tx: Verified,
    ) -> impl Future<Output = Result<Submitted, SubmitError>> + Send;

    /// Admits several signed transactions; one result per input, in order.
    fn submit_batch(
        &self,
        txs: Vec<Verified>,
    ) -> impl Future<Output = Result<Vec<Result<Submitted, SubmitError>>, BackendError>> + Send;

    /// Where a transaction is in its life, or `None` if the node has never seen it.
    fn tx_status(
        &self,
        id: Hash,
    ) -> impl Future<Output = Result<Option<TxStatus>, BackendError>> + Send;

    /// An account at the latest finalized height of its shard.
    fn account(
        &self,
        id: AccountId,
    ) -> impl Future<Output = Result<Option<AccountView>, BackendError>> + Send;

    /// A contract at the latest finalized height of its primary shard.
    fn contract(
        &self,
        id: ContractId,
    ) -> impl Future<Output = Result<Option<ContractView>, BackendError>> + Send;

    /// A page of contracts ordered by id: `total` counts all of them.
    fn contracts(
        &self,
        offset: usize,
        limit: usize,
    ) -> impl Future<Output = Result<ContractPage, BackendError>> + Send;

    /// A cross-shard call, or `None` if unknown.
    fn call_status(
        &self,
        id: CallId,
    ) -> impl Future<Output = Result<Option<CallView>, BackendError>> + Send;

    /// Submits a configuration change through the beacon chain and resolves with the height
    /// at which it takes effect on every node. The update has already been validated against
    /// the current configuration.
    fn update_config(
        &self,
        update: ConfigUpdate,
    ) -> impl Future<Output = Result<ConfigApplied, ConfigChangeError>> + Send;

    /// Moves accounts between shards through the beacon chain: the given `moves`, or, when
    /// `None`, the node's plan from recent load (hottest accounts of shards whose load leaves
    /// `rebalance_threshold` of the mean, to the coolest shard). Resolves once the beacon
    /// finalized the moves (or when there is nothing to move).
    fn rebalance(
        &self,
        moves: Option<Vec<MoveRequest>>,
    ) -> impl Future<Output = Result<Rebalanced, ConfigChangeError>> + Send;

    /// Signs `action` for `signer` with the next nonce and the node's fee, if this node is a
    /// devnet API node holding that dev account's key. `Ok(None)` everywhere else.
    fn dev_sign(
        &self,
        signer: AccountId,
        action: Action,
    ) -> impl Future<Output = Result<Option<SignedTransaction>, BackendError>> + Send;

    /// Submits a signed `deploy_contract` transaction; resolves with the contract id and the
    /// shard it lives on once the contract exists there (final on its primary shard, after
    /// the deployment receipt crossed shards when the owner lives elsewhere), so calls made
    /// right after the answer find it. The route bounds the wait.
    fn deploy_contract(
        &self,
        tx: Verified,
    ) -> impl Future<Output = Result<Deployed, SubmitError>> + Send;

    /// Submits a signed `call_contract` transaction. A call on the caller's shard resolves
    /// once its block is finalized, with the result; a cross-shard call resolves as
    /// [`Executed::Pending`] with its call id once the caller's block is final (the call is
    /// then queued in a receipt and `GET /shard/call/{id}` knows it). The HTTP layer bounds the wait (dropping the
    /// future on timeout; the admitted transaction stays admitted).
    fn execute_contract(
        &self,
        tx: Verified,
    ) -> impl Future<Output = Result<Executed, SubmitError>> + Send;

    /// The supply audit from every shard's finalized state (`GET /supply`).
    fn supply(&self) -> impl Future<Output = Result<SupplyReport, BackendError>> + Send;

    /// The PRSM committee plan with live figures (`GET /consensus/metrics`).
    fn consensus_metrics(
        &self,
    ) -> impl Future<Output = Result<ConsensusMetrics, BackendError>> + Send;

    /// Submits a signed `proposal` transaction and resolves once its coordinating shard (the
    /// proposer's) has decided it in a finalized block: achieved, or failed (rejected by too
    /// many target shards, or timed out after 60 s of chain time). The route bounds the wait.
    fn submit_proposal(
        &self,
        tx: Verified,
    ) -> impl Future<Output = Result<ProposalView, SubmitError>> + Send;

    /// A PRSM proposal by id (its transaction id), from its coordinating shard's finalized
    /// state; `None` if no shard coordinates it.
    fn proposal(
        &self,
        id: Hash,
    ) -> impl Future<Output = Result<Option<ProposalView>, BackendError>> + Send;

    /// Subscribes to finalized-block events (`GET /events`). Each call returns a new receiver;
    /// a receiver that falls behind loses the oldest events (the stream reports how many).
    fn events(&self) -> tokio::sync::broadcast::Receiver<BlockEvent>;
}

/// The node cannot answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Not ready (syncing, starting, shutting down) or an internal failure: HTTP 503.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The shard does not exist: HTTP 404 `unknown_shard`.
    #[error("unknown shard {0}")]
    UnknownShard(ShardId),
    /// The shard exists but this node does not hold it (a validator serves only its own
    /// shard), or the request needs every shard's state: HTTP 404 `shard_not_served`. The
    /// message names the shards this node serves and where to ask instead.
    #[error("{0}")]
    ShardNotServed(String),
    /// Finalization did not happen in time: HTTP 504.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The transaction can never be valid (wrong chain, unknown signer, key not bound to the
    /// signer, insufficient balance, contracts disabled, ...): HTTP 422 `invalid_tx`.
    #[error("invalid transaction: {0}")]
    Invalid(String),
    /// The nonce was already used or another pending transaction holds it: HTTP 409
    /// `nonce_conflict`.
    #[error("nonce conflict: {0}")]
    NonceConflict(String),
    /// The same transaction is already known: HTTP 409 `duplicate_tx`.
    #[error("transaction {0} already known")]
    Duplicate(Hash),
    /// The contract does not exist: HTTP 404 `unknown_contract`.
    #[error("unknown contract {0}")]
    UnknownContract(ContractId),
    /// The mempool is full: HTTP 503 `mempool_full`; retry later.
    #[error("mempool full")]
    MempoolFull,
    /// The node cannot answer.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Why a configuration change was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigChangeError {
    /// A value is out of range: HTTP 400 `invalid_config`.
    #[error(transparent)]
    Invalid(#[from] vision_types::ConfigError),
    /// The beacon refused the change (e.g. another change is pending): HTTP 409
    /// `config_conflict`.
    #[error("configuration change refused: {0}")]
    Conflict(String),
    /// The node cannot answer.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The node and the heads of the chains it follows (`GET /status`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The chain id signed into every transaction.
    pub chain_id: String,
    /// The node software version.
    pub version: String,
    /// Whether this is a devnet node (dev signing available).
    pub devnet: bool,
    /// What this node is: `api` (follows every shard and the beacon without voting) or
    /// `validator` (serves its own shard only; `shards` lists it).
    pub role: String,
    /// Validators in this node's peer set (it connects to each of them).
    pub peers: usize,
    /// Whether this node is behind: some shard's finalized height here is below the height
    /// that shard already crosslinked on the beacon.
    pub syncing: bool,
    /// Latest finalized beacon height.
    pub beacon_height: u64,
    /// Latest finalized head of every shard, by shard id.
    pub shards: Vec<ShardHead>,
    /// The processes of the network this node supervises or was told about (a devnet's
    /// validators and API node); empty elsewhere.
    pub processes: Vec<ProcessStatus>,
}

/// One shard's ledger (amounts as decimal strings in JSON, like every amount).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardSupply {
    /// The shard.
    pub shard_id: ShardId,
    /// Finalized height the figures are read at.
    pub height: u64,
    /// Σ genesis balances of the shard.
    pub genesis: Amount,
    /// Σ balances of accounts and contracts.
    pub balances: Amount,
    /// Σ fees burned.
    pub burned: Amount,
    /// Σ amounts that could not be returned anywhere.
    pub unclaimed: Amount,
    /// Σ receipt amounts emitted.
    pub sent: Amount,
    /// Σ receipt amounts applied.
    pub received: Amount,
}

/// One shard committee in [`ConsensusMetrics`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommitteeMetrics {
    /// The shard.
    pub shard_id: ShardId,
    /// Member validator names, sorted.
    pub members: Vec<String>,
    /// Number of members.
    pub nodes: usize,
    /// The coordinator: the member with the highest reputation (ties: smallest name); every
    /// coordinator sits on the beacon committee.
    pub coordinator: String,
    /// Mean member reputation, in [0, 1].
    pub avg_reputation: f64,
    /// The shard's finalized height as this node sees it.
    pub height: u64,
    /// The workload type the committee serves (workload strategy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Mean of the members' observed reputation scores (see [`ValidatorReputation`]), in
    /// [0, 1], from the beacon state this node holds.
    pub observed_reputation: f64,
}

/// One validator's reputation in [`ConsensusMetrics`]: counters the beacon chain recorded
/// and the score derived from them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidatorReputation {
    /// The validator's genesis name.
    pub name: String,
    /// Its consensus key (hex).
    pub consensus_key: String,
    /// The shard whose committee it is in.
    pub shard_id: ShardId,
    /// The observed score in [0, 1]: `(prior × K + finalize_votes) / (K + finalize_votes +
    /// missed)` with K = 100, computed in integer ppm.
    pub reputation: f64,
    /// Its genesis reputation (the score's prior), in [0, 1].
    pub genesis_reputation: f64,
    /// Crosslinked finalization certificates of its shard that carry its signature.
    pub finalize_votes: u64,
    /// Crosslinked finalization certificates of its shard that do not.
    pub missed: u64,
    /// Shard blocks it proposed that the beacon saw finalized.
    pub blocks_finalized: u64,
    /// Beacon blocks it proposed that were finalized.
    pub beacon_blocks_finalized: u64,
    /// Views in which the beacon recorded evidence of it signing conflicting votes (its
    /// score is 0 once this is above 0).
    pub equivocations: u64,
}

/// The PRSM metrics (`GET /consensus/metrics`): the committee plan from genesis (strategy,
/// committees, coordinators, reputations) and figures measured from the live network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConsensusMetrics {
    /// Number of shards with a committee.
    pub active_shards: usize,
    /// The PRSM strategy that planned the committees (`hash`, `adaptive`, `workload`,
    /// `hybrid`).
    pub strategy: String,
    /// Transactions finalized per second over the last 10 s, all shards together.
    pub total_throughput: f64,
    /// Cross-shard receipts (transfers, contract calls, results, refunds) the beacon has
    /// finalized in crosslinks.
    pub cross_shard_operations: u64,
    /// Number of validators.
    pub total_nodes: usize,
    /// Mean reputation over all validators, in [0, 1].
    pub average_reputation: f64,
    /// Beacon committee member names, sorted.
    pub beacon_committee: Vec<String>,
    /// The beacon's finalized height as this node sees it.
    pub beacon_height: u64,
    /// One entry per shard, in shard order.
    pub shards: Vec<CommitteeMetrics>,
    /// Every validator's observed reputation, by shard then name.
    pub validators: Vec<ValidatorReputation>,
}

/// Where a PRSM proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Waiting for target shards' decisions.
    Pending,
    /// Consensus achieved.
    Achieved,
    /// Rejected, or timed out.
    Failed,
}

/// One target shard's decision in a [`ProposalView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardDecision {
    /// The deciding shard.
    pub shard_id: ShardId,
    /// Whether it accepted the proposal.
    pub accepted: bool,
    /// Why it rejected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deciding shard's block that recorded the decision (finalized by that committee).
    pub height: u64,
    /// Validators in that shard's committee.
    pub committee_size: usize,
    /// Votes a finalization of that block needed (the committee's BFT quorum, ≥ 2/3).
    pub quorum: usize,
}

/// A PRSM proposal and its result: the seed's `ConsensusResult`, from finalized state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProposalView {
    /// The proposal's id (its transaction id).
    pub proposal_id: Hash,
    /// Where it stands.
    pub status: ProposalState,
    /// Whether consensus was achieved.
    pub consensus_achieved: bool,
    /// What was proposed.
    pub action: String,
    /// Who proposed it.
    pub proposer: AccountId,
    /// The shard that routed it and applies the decision rule (the proposer's).
    pub coordinating_shard: ShardId,
    /// The shards the PRSM targeting rule chose.
    pub target_shards: Vec<ShardId>,
    /// Whether every shard was targeted.
    pub affects_multiple_shards: bool,
    /// Whether cross-shard coordination was required (asked for, or more than one target).
    pub coordination_required: bool,
    /// The target shards' decisions: for `decided_by: beacon`, those the beacon counted (in
    /// its order), then any the coordinating shard collected besides; otherwise those the
    /// coordinating shard received, in arrival order.
    pub shard_results: Vec<ShardDecision>,
    /// Number of target shards that accepted (for `decided_by: beacon`, the votes the beacon
    /// has finalized).
    pub accepted_shards: usize,
    /// `accepted_shards / target_shards` (the cross-shard approval).
    pub cross_shard_approval: f64,
    /// The approval a coordinated proposal needs (0.67).
    pub threshold: f64,
    /// Chain time from inclusion to decision, once decided (ms): the coordinating shard's
    /// block time, or the beacon's (`decided_by: beacon`, from the beacon block that
    /// finalized the submission).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_taken_ms: Option<u64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Coordinating shard height that included it.
    pub submitted_height: u64,
    /// Coordinating shard height that decided it (a proposal its coordinating shard decides:
    /// one target, no coordination asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_height: Option<u64>,
    /// Who records the result: `shard` (its coordinating shard, for a single target without
    /// coordination) or `beacon` (the beacon chain, for a proposal that needs coordination).
    pub decided_by: DecidedBy,
    /// Beacon height that decided it (`decided_by: beacon`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beacon_height: Option<u64>,
}

/// Which chain records a proposal's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// The coordinating shard.
    Shard,
    /// The beacon chain.
    Beacon,
}

/// The supply audit (`GET /supply`): `genesis = balances + in_flight + burned + unclaimed`
/// over all shards, where `in_flight = Σ sent − Σ received`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SupplyReport {
    /// Σ genesis balances.
    pub genesis: Amount,
    /// Σ balances.
    pub balances: Amount,
    /// Coin in receipts emitted but not yet applied.
    pub in_flight: Amount,
    /// Σ fees burned.
    pub burned: Amount,
    /// Σ undeliverable amounts.
    pub unclaimed: Amount,
    /// Whether the figures add up.
    pub balanced: bool,
    /// Per shard (each read at its own finalized height).
    pub shards: Vec<ShardSupply>,
}

/// One node process of a supervised network (`GET /status` on a devnet API node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessStatus {
    /// Node name.
    pub name: String,
    /// `validator` or `api`.
    pub role: String,
    /// The shard a validator validates.
    pub shard: Option<u32>,
    /// Whether it is a beacon committee member.
    pub beacon: bool,
    /// Process id while running.
    pub pid: Option<u32>,
    /// p2p port.
    pub p2p_port: u16,
    /// Port of its own HTTP API on 127.0.0.1 (the API node's, or a validator's for its shard),
    /// if it serves one.
    pub api_port: Option<u16>,
    /// Its shard height (an API node: the lowest of the shards it follows).
    pub height: u64,
    /// Its beacon height.
    pub beacon_height: u64,
    /// Restarts by the supervisor.
    pub restarts: u32,
    /// `ok` (running, status fresh), `stale` (running, no status for a while), `restarting`
    /// or `stopped`.
    pub health: String,
}

/// The latest finalized block of one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardHead {
    /// The shard.
    pub shard_id: ShardId,
    /// Finalized height.
    pub height: u64,
    /// Hash of the finalized block.
    pub block_hash: Hash,
    /// State root after it.
    pub state_root: Hash,
}

/// One shard on the dashboard (the seed's per-shard object, field for field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardSummary {
    /// Shard id.
    pub id: ShardId,
    /// `shard_{id}`.
    pub name: String,
    /// Accounts stored on the shard.
    pub accounts: u64,
    /// Validators in the shard's committee.
    pub validators: u64,
    /// Transactions finalized on the shard.
    pub tx_count: u64,
    /// Crosslinks of the shard finalized by the beacon.
    pub crosslinks: u64,
    /// Contracts whose primary shard this is.
    pub contracts: u64,
    /// Receipts in the shard's pending batch.
    pub pending_batch: u64,
    /// Shard height of its latest beacon-finalized crosslink (0 if none).
    pub last_crosslink_height: u64,
    /// Sum of the shard's account balances.
    pub balance_total: Amount,
}

/// Network-wide counters (the seed's `network` object, field for field).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkStats {
    /// Crosslinks finalized by the beacon.
    pub total_crosslinks: u64,
    /// Of those, crosslinks that carried at least one batched transaction.
    pub batched_crosslinks: u64,
    /// Mean batched transactions per batched crosslink (0 if none).
    pub avg_batch_size: f64,
    /// Transactions finalized on any shard.
    pub total_txs: u64,
    /// Transactions whose effects are complete (intra-shard: finalized; cross-shard: applied
    /// at the destination).
    pub completed_txs: u64,
    /// Transactions admitted but not yet complete.
    pub pending_txs: u64,
    /// Receipts in all shards' pending batches.
    pub pending_batch: u64,
}

/// Contract counters (the seed's `contracts` object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContractStats {
    /// Contracts deployed.
    pub total: u64,
    /// Cross-shard calls made.
    pub cross_shard_calls: u64,
}

/// Measured performance (the seed's `performance` object), over the node's recent window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Performance {
    /// Mean time from a shard block closing a batch to the beacon finalizing its crosslink.
    pub avg_crosslink_latency_ms: f64,
    /// Mean time a receipt waited in its pending batch.
    pub avg_batch_latency_ms: f64,
    /// Finalized transactions per second, all shards.
    pub throughput_tps: f64,
}

/// A beacon-finalized crosslink (the dashboard's recent crosslinks table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrosslinkSummary {
    /// `crosslink_{shard}_{height}_batch`.
    pub id: String,
    /// The shard.
    pub shard_id: ShardId,
    /// Shard height of the crosslinked block.
    pub height: u64,
    /// Transactions batched in it.
    pub batched_txs: u64,
    /// The shard's state root at that height.
    pub state_root: Hash,
    /// Block timestamp of the crosslinked shard block, in Unix milliseconds.
    pub timestamp_ms: u64,
}

/// A shard's pending batch (`GET /shard/batch/status/{shard_id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchStatus {
    /// Receipts waiting in the batch.
    pub pending_txs: u64,
    /// Milliseconds since the batch's first receipt (0 when empty).
    pub batch_age_ms: u64,
    /// Whether the next block closes the batch (full, timed out, or priority 255 queued).
    pub is_ready: bool,
}

/// A finalized flush (`POST /shard/batch/flush/{shard_id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlushOutcome {
    /// `crosslink_{shard}_{height}_batch`.
    pub crosslink_id: String,
    /// Transactions in the closed batch.
    pub batched_txs: u64,
    /// State root of the block that closed it.
    pub state_root: Hash,
}

/// An admitted transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// Transaction id (64 hex).
    pub tx_id: Hash,
    /// The shard whose mempool holds it (the signer's shard).
    pub shard_id: ShardId,
}

/// Where a transaction is in its life. JSON: `{"status": "<state>", ...fields}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// In the signer's shard mempool.
    Pending {
        /// The shard.
        shard_id: ShardId,
    },
    /// In a finalized shard block; its receipts (if any) wait in the pending batch.
    Included {
        /// The shard.
        shard_id: ShardId,
        /// Block height.
        height: u64,
    },
    /// Its receipts' batch closed into a crosslink not yet finalized by the beacon.
    Batched {
        /// The shard.
        shard_id: ShardId,
        /// Block height.
        height: u64,
        /// The crosslink.
        crosslink_id: String,
    },
    /// The beacon finalized its crosslink; receipts are on their way to the destination.
    Crosslinked {
        /// The shard.
        shard_id: ShardId,
        /// Block height.
        height: u64,
        /// The crosslink.
        crosslink_id: String,
        /// Beacon height that finalized it.
        beacon_height: u64,
    },
    /// All effects applied (intra-shard: finalized; cross-shard: applied at the destination).
    Completed {
        /// The shard.
        shard_id: ShardId,
        /// Block height.
        height: u64,
    },
    /// Included but failed (fee burned, no other effect), or refunded at the destination.
    Failed {
        /// Why.
        reason: String,
    },
}

/// An account (`GET /account/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountView {
    /// Account id.
    pub id: AccountId,
    /// The shard holding it.
    pub shard_id: ShardId,
    /// Balance at the latest finalized height.
    pub balance: Amount,
    /// The next nonce to sign with.
    pub nonce: u64,
    /// The key bound to the account.
    pub public_key: PublicKey,
}

/// Where a cross-shard call is (JSON as in the seed: `"Pending"`, `"Executing"`,
/// `"Completed"`, `"Failed"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CallState {
    /// Queued in a receipt, not yet executed on the contract's shard.
    Pending,
    /// Delivered to the contract's shard and being executed.
    Executing,
    /// Executed successfully.
    Completed,
    /// Failed; attached coin is refunded.
    Failed,
}

/// A cross-shard call (the seed's `CrossShardCall`, field for field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrossShardCallView {
    /// `xscall_…`.
    pub id: CallId,
    /// Caller's shard.
    pub from_shard: ShardId,
    /// Contract's shard.
    pub to_shard: ShardId,
    /// The contract.
    pub contract_id: ContractId,
    /// Method.
    pub method: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Status.
    pub status: CallState,
}

/// A cross-shard call with its result (`GET /shard/call/{call_id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallView {
    /// The call.
    #[serde(flatten)]
    pub call: CrossShardCallView,
    /// The JSON result or the failure reason, once known.
    pub result: Option<String>,
}

/// A contract (the seed's `ShardContract`, field for field, plus `created_height`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContractView {
    /// `contract_…`.
    pub id: ContractId,
    /// Name.
    pub name: String,
    /// Deployer.
    pub owner: AccountId,
    /// Shard holding the state.
    pub primary_shard: ShardId,
    /// Code hash (selects the template).
    pub code_hash: String,
    /// Key-value state.
    pub state: BTreeMap<String, String>,
    /// Recent cross-shard calls, oldest first.
    pub cross_shard_calls: Vec<CrossShardCallView>,
    /// Most gas one call may use.
    pub gas_budget: u64,
    /// Shard height of the deploying block (the dashboard's deployment time).
    pub created_height: u64,
}

/// A contract in a list (the seed's list entry, plus `created_height`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContractSummary {
    /// `contract_…`.
    pub id: ContractId,
    /// Name.
    pub name: String,
    /// Deployer.
    pub owner: AccountId,
    /// Shard holding the state.
    pub primary_shard: ShardId,
    /// Shard height of the deploying block.
    pub created_height: u64,
}

/// A page of contracts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractPage {
    /// All contracts.
    pub total: u64,
    /// This page.
    pub contracts: Vec<ContractSummary>,
}

/// An applied configuration change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigApplied {
    /// Beacon height from which every node uses the new configuration.
    pub effective_height: u64,
    /// The configuration from that height.
    pub config: ShardConfig,
}

/// One account move asked for in `POST /shard/rebalance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The user account.
    pub account: AccountId,
    /// The shard it should live on.
    pub to: ShardId,
}

/// One account move scheduled by a rebalance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedMove {
    /// The account.
    pub account: AccountId,
    /// Its shard before the move.
    pub from: ShardId,
    /// Its shard from `effective_height` on.
    pub to: ShardId,
    /// Its recent load (transactions it signed), 0 for a move asked for explicitly.
    pub load: u64,
}

/// The outcome of `POST /shard/rebalance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rebalanced {
    /// Beacon height from which the moved accounts live on their new shards (`None` when
    /// nothing moved).
    pub effective_height: Option<u64>,
    /// The moves (empty when the load is balanced).
    pub moves: Vec<PlannedMove>,
    /// Recent load per shard (transactions) the plan weighed.
    pub shard_loads: BTreeMap<ShardId, u64>,
    /// What happened, in words.
    pub message: String,
}

/// An admitted contract deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deployed {
    /// The new contract's id ([`ContractId::from_deploy`] of the transaction id).
    pub contract_id: ContractId,
    /// The shard that will hold it.
    pub primary_shard: ShardId,
}

/// The outcome of a contract call.
#[derive(Clone, Debug, PartialEq)]
pub enum Executed {
    /// Executed on the caller's shard and finalized; `result` is the method's JSON result.
    Completed {
        /// The method's result.
        result: serde_json::Value,
    },
    /// Executed and failed (fee burned, state unchanged).
    Failed {
        /// Why.
        reason: String,
    },
    /// A cross-shard call was queued; follow it at `GET /shard/call/{call_id}`.
    Pending {
        /// The call id.
        call_id: CallId,
    },
}

/// A block finalized on a shard (one `GET /events` item; clients such as the bench parse it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BlockEvent {
    /// The shard whose chain finalized the block.
    pub shard_id: ShardId,
    /// The block's height on that shard.
    pub height: u64,
    /// The block's timestamp, Unix ms.
    pub timestamp_ms: u64,
    /// When this node applied the finalized block, Unix ms (its wall clock).
    pub finalized_ms: u64,
    /// Ids of the transactions the block included (each finalized here).
    pub tx_ids: Vec<Hash>,
    /// Of those, the ones that failed (fee burned, no other effect).
    pub failed_tx_ids: Vec<Hash>,
    /// Origin transaction ids of the cross-shard receipts this block applied (a cross-shard
    /// transfer or call is complete when its receipt is applied at the destination).
    pub completed_origin_tx_ids: Vec<Hash>,
}
