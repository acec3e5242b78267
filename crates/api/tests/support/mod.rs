//! TEST DOUBLE: an in-memory `NodeBackend` with fixed, made-up data. It exists only so the
//! HTTP layer can be tested without a node; nothing here is measured and none of it is used
//! outside this test binary.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use vision_api::backend::{
    AccountView, BackendError, BatchStatus, BlockEvent, CallState, CallView, CommitteeMetrics,
    ConfigApplied, ConfigChangeError, ConsensusMetrics, ContractPage, ContractStats,
    ContractSummary, ContractView, CrossShardCallView, CrosslinkSummary, DecidedBy, Deployed,
    Executed, FlushOutcome, MoveRequest, NetworkStats, NodeBackend, NodeStatus, Performance,
    PlannedMove, ProposalState, ProposalView, Rebalanced, ShardDecision, ShardHead, ShardSummary,
    ShardSupply, SubmitError, Submitted, SupplyReport, TxStatus, ValidatorReputation,
};
use vision_types::{
    AccountId, Action, Amount, CallId, ConfigUpdate, ContractId, Hash, SecretKey, ShardConfig,
    ShardId, SignedTransaction, Transaction, Verified,
};

/// The chain id of the fake network.
pub const CHAIN_ID: &str = "vision-test";

/// The deterministic key of a dev account.
pub fn dev_key(name: &str) -> SecretKey {
    SecretKey::from_seed(Hash::sha256(name.as_bytes()).0)
}

/// The fake shard of an account: alice 0, bob 1, carol 2, dave 3, anything else by hash.
pub fn shard_of(name: &str) -> ShardId {
    match name {
        "alice" => ShardId(0),
        "bob" => ShardId(1),
        "carol" => ShardId(2),
        "dave" => ShardId(3),
        other => ShardId((Hash::sha256(other.as_bytes()).prefix_u64() % 4) as u32),
    }
}

/// A signed transaction from a dev account.
pub fn signed(signer: &str, nonce: u64, action: Action) -> SignedTransaction {
    Transaction {
        chain_id: vision_types::ChainId::new(CHAIN_ID).expect("chain id"),
        signer: AccountId::new(signer).expect("account"),
        nonce,
        fee: Amount(1),
        action,
    }
    .sign(&dev_key(signer))
}

/// The contract the fake knows about.
pub fn token_id() -> ContractId {
    ContractId::from_deploy(&Hash::sha256(b"token deploy"))
}

/// The cross-shard call the fake knows about.
pub fn known_call() -> CallId {
    CallId::from_tx(&Hash::sha256(b"known call"))
}

/// The transaction the fake knows about.
pub fn known_tx() -> Hash {
    Hash::sha256(b"known tx")
}

/// Events a slow `GET /events` subscriber of the fake may fall behind by before it loses the
/// oldest.
pub const EVENTS_CAPACITY: usize = 4;

/// The in-memory backend. `log` records every call that could change the node (submissions,
/// flushes, config changes, dev signing), so tests can assert a rejected request never got
/// that far.
pub struct FakeBackend {
    /// Whether `dev_sign` signs (a devnet API node).
    pub devnet: bool,
    /// Whether every read fails with `Unavailable`.
    pub unavailable: bool,
    /// How long `flush` takes.
    pub flush_delay: Duration,
    /// The current configuration.
    pub config: Mutex<ShardConfig>,
    /// Mutating calls seen, in order.
    pub log: Mutex<Vec<String>>,
    /// Finalized-block events: a test sends here and every `GET /events` stream sees them.
    pub events: tokio::sync::broadcast::Sender<BlockEvent>,
    /// Finalized transactions added per shard on top of the fixed counts ([`Self::add_txs`]),
    /// so a test can watch a reader (the dashboard) pick up new data.
    pub extra_txs: Mutex<BTreeMap<u32, u64>>,
    /// Proposals submitted so far.
    pub proposals: Mutex<Vec<ProposalView>>,
}

impl FakeBackend {
    /// A devnet fake.
    pub fn devnet() -> Arc<Self> {
        Arc::new(Self::with(true))
    }

    /// A non-devnet fake (no dev signing).
    pub fn production() -> Arc<Self> {
        Arc::new(Self::with(false))
    }

    /// A fake with the given dev-signing flag.
    pub fn with(devnet: bool) -> Self {
        FakeBackend {
            devnet,
            unavailable: false,
            flush_delay: Duration::ZERO,
            config: Mutex::new(ShardConfig::default()),
            log: Mutex::new(Vec::new()),
            events: tokio::sync::broadcast::channel(EVENTS_CAPACITY).0,
            extra_txs: Mutex::new(BTreeMap::new()),
            proposals: Mutex::new(Vec::new()),
        }
    }

    /// Counts `n` more finalized transactions on `shard` (its `tx_count` and the network's
    /// `total_txs` and `completed_txs`).
    pub fn add_txs(&self, shard: ShardId, n: u64) {
        *self
            .extra_txs
            .lock()
            .expect("extra txs")
            .entry(shard.0)
            .or_default() += n;
    }

    fn extra_txs_of(&self, shard: u32) -> u64 {
        let extra = self.extra_txs.lock().expect("extra txs");
        extra.get(&shard).copied().unwrap_or(0)
    }

    fn extra_txs_total(&self) -> u64 {
        self.extra_txs.lock().expect("extra txs").values().sum()
    }

    /// The mutating calls seen.
    pub fn seen(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    fn record(&self, what: impl Into<String>) {
        self.log.lock().expect("log").push(what.into());
    }

    fn check_up(&self) -> Result<(), BackendError> {
        if self.unavailable {
            Err(BackendError::Unavailable("fake node is syncing".into()))
        } else {
            Ok(())
        }
    }

    fn num_shards(&self) -> u32 {
        self.config.lock().expect("config").num_shards as u32
    }
}

fn token_view() -> ContractView {
    ContractView {
        id: token_id(),
        name: "MyToken".into(),
        owner: AccountId::new("alice").expect("alice"),
        primary_shard: ShardId(0),
        code_hash: "0xabc123".into(),
        state: BTreeMap::from([
            ("total_supply".to_string(), "1000000".to_string()),
            ("balance_alice".to_string(), "900".to_string()),
            ("balance_bob".to_string(), "100".to_string()),
        ]),
        cross_shard_calls: vec![call_view().call],
        gas_budget: 1_000_000,
        created_height: 7,
    }
}

fn call_view() -> CallView {
    CallView {
        call: CrossShardCallView {
            id: known_call(),
            from_shard: ShardId(1),
            to_shard: ShardId(0),
            contract_id: token_id(),
            method: "transfer".into(),
            args: vec!["alice".into(), "100".into()],
            status: CallState::Completed,
        },
        result: Some(r#"{"transferred":100}"#.into()),
    }
}

impl NodeBackend for FakeBackend {
    async fn status(&self) -> Result<NodeStatus, BackendError> {
        self.check_up()?;
        Ok(NodeStatus {
            chain_id: CHAIN_ID.into(),
            version: "0.1.0".into(),
            devnet: self.devnet,
            role: "api".into(),
            peers: 4 * self.num_shards() as usize,
            syncing: false,
            beacon_height: 42,
            shards: (0..self.num_shards())
                .map(|s| ShardHead {
                    shard_id: ShardId(s),
                    height: 100 + u64::from(s),
                    block_hash: Hash::sha256(&s.to_be_bytes()),
                    state_root: Hash::sha256(b"root"),
                })
                .collect(),
            processes: Vec::new(),
        })
    }

    async fn supply(&self) -> Result<SupplyReport, BackendError> {
        self.check_up()?;
        let shards: Vec<ShardSupply> = (0..self.num_shards())
            .map(|s| ShardSupply {
                shard_id: ShardId(s),
                height: 100 + u64::from(s),
                genesis: Amount(1_000),
                balances: Amount(990 - u128::from(s)),
                burned: Amount(10),
                unclaimed: Amount(0),
                sent: Amount(u128::from(s)),
                received: Amount(0),
            })
            .collect();
        let sum = |f: fn(&ShardSupply) -> u128| Amount(shards.iter().map(f).sum());
        let (sent, received) = (sum(|s| s.sent.0), sum(|s| s.received.0));
        let in_flight = Amount(sent.0 - received.0);
        let (genesis, balances, burned) = (
            sum(|s| s.genesis.0),
            sum(|s| s.balances.0),
            sum(|s| s.burned.0),
        );
        Ok(SupplyReport {
            balanced: genesis.0 == balances.0 + in_flight.0 + burned.0,
            genesis,
            balances,
            in_flight,
            burned,
            unclaimed: Amount(0),
            shards,
        })
    }

    async fn consensus_metrics(&self) -> Result<ConsensusMetrics, BackendError> {
        self.check_up()?;
        let shards: Vec<CommitteeMetrics> = (0..self.num_shards())
            .map(|s| CommitteeMetrics {
                shard_id: ShardId(s),
                members: (0..4).map(|i| format!("v{}", 4 * s + i)).collect(),
                nodes: 4,
                coordinator: format!("v{}", 4 * s),
                avg_reputation: 0.75,
                height: 100 + u64::from(s),
                workload: None,
                observed_reputation: 0.8,
            })
            .collect();
        let validators: Vec<ValidatorReputation> = (0..self.num_shards())
            .flat_map(|s| {
                (0..4).map(move |i| ValidatorReputation {
                    name: format!("v{}", 4 * s + i),
                    consensus_key: format!("{:064x}", 4 * s + i),
                    shard_id: ShardId(s),
                    reputation: 0.8,
                    genesis_reputation: 0.75,
                    finalize_votes: 30,
                    missed: 10,
                    blocks_finalized: 12,
                    beacon_blocks_finalized: u64::from(i == 0) * 5,
                    equivocations: 0,
                })
            })
            .collect();
        Ok(ConsensusMetrics {
            active_shards: shards.len(),
            strategy: "adaptive".into(),
            total_throughput: 12.5,
            cross_shard_operations: 7,
            total_nodes: 4 * shards.len(),
            average_reputation: 0.75,
            beacon_committee: shards.iter().map(|s| s.coordinator.clone()).collect(),
            beacon_height: 50,
            shards,
            validators,
        })
    }

    async fn metrics(&self) -> Result<String, BackendError> {
        self.check_up()?;
        Ok("# TYPE vision_fake_up gauge\nvision_fake_up 1\n".into())
    }

    async fn shard_config(&self) -> Result<ShardConfig, BackendError> {
        self.check_up()?;
        Ok(self.config.lock().expect("config").clone())
    }

    async fn shards(&self) -> Result<Vec<ShardSummary>, BackendError> {
        self.check_up()?;
        Ok((0..self.num_shards())
            .map(|s| ShardSummary {
                id: ShardId(s),
                name: format!("shard_{s}"),
                accounts: 250,
                validators: 4,
                tx_count: 1000 + u64::from(s) + self.extra_txs_of(s),
                crosslinks: 42,
                contracts: u64::from(s == 0),
                pending_batch: 23,
                last_crosslink_height: 990,
                balance_total: Amount(1_000_000_000_000 + u128::from(s) * 250_000_000_000),
            })
            .collect())
    }

    async fn network_stats(&self) -> Result<NetworkStats, BackendError> {
        self.check_up()?;
        Ok(NetworkStats {
            total_crosslinks: 180,
            batched_crosslinks: 150,
            avg_batch_size: 85.0,
            total_txs: 15234 + self.extra_txs_total(),
            completed_txs: 14890 + self.extra_txs_total(),
            pending_txs: 344,
            pending_batch: 92,
        })
    }

    async fn contract_stats(&self) -> Result<ContractStats, BackendError> {
        self.check_up()?;
        Ok(ContractStats {
            total: 1,
            cross_shard_calls: 1,
        })
    }

    async fn performance(&self) -> Result<Performance, BackendError> {
        self.check_up()?;
        Ok(Performance {
            avg_crosslink_latency_ms: 50.0,
            avg_batch_latency_ms: 25.0,
            throughput_tps: 400.0,
        })
    }

    async fn recent_crosslinks(&self, limit: usize) -> Result<Vec<CrosslinkSummary>, BackendError> {
        self.check_up()?;
        Ok((0..3u64)
            .map(|i| CrosslinkSummary {
                id: format!("crosslink_0_{}_batch", 990 - i * 10),
                shard_id: ShardId(0),
                height: 990 - i * 10,
                batched_txs: 47,
                state_root: Hash::sha256(b"root"),
                timestamp_ms: 1_700_000_000_000,
            })
            .take(limit)
            .collect())
    }

    async fn batch_status(&self, shard: ShardId) -> Result<Option<BatchStatus>, BackendError> {
        self.check_up()?;
        Ok((shard.0 < self.num_shards()).then_some(BatchStatus {
            pending_txs: 23,
            batch_age_ms: 342,
            is_ready: true,
        }))
    }

    async fn flush(&self, shard: ShardId) -> Result<FlushOutcome, BackendError> {
        self.record(format!("flush {shard}"));
        tokio::time::sleep(self.flush_delay).await;
        if shard.0 >= self.num_shards() {
            return Err(BackendError::UnknownShard(shard));
        }
        Ok(FlushOutcome {
            crosslink_id: format!("crosslink_{shard}_1234_batch"),
            batched_txs: 47,
            state_root: Hash::sha256(b"root"),
        })
    }

    async fn submit_tx(&self, tx: Verified) -> Result<Submitted, SubmitError> {
        self.record(format!("submit {}", tx.id()));
        if tx.tx.chain_id.as_str() != CHAIN_ID {
            return Err(SubmitError::Invalid("wrong chain id".into()));
        }
        if tx.tx.nonce > 1_000 {
            return Err(SubmitError::NonceConflict("nonce gap".into()));
        }
        Ok(Submitted {
            tx_id: tx.id(),
            shard_id: shard_of(tx.tx.signer.as_str()),
        })
    }

    async fn submit_batch(
        &self,
        txs: Vec<Verified>,
    ) -> Result<Vec<Result<Submitted, SubmitError>>, BackendError> {
        self.record(format!("submit_batch {}", txs.len()));
        Ok(txs
            .into_iter()
            .map(|tx| {
                Ok(Submitted {
                    tx_id: tx.id(),
                    shard_id: shard_of(tx.tx.signer.as_str()),
                })
            })
            .collect())
    }

    async fn tx_status(&self, id: Hash) -> Result<Option<TxStatus>, BackendError> {
        self.check_up()?;
        Ok((id == known_tx()).then(|| TxStatus::Batched {
            shard_id: ShardId(0),
            height: 1234,
            crosslink_id: "crosslink_0_1234_batch".into(),
        }))
    }

    async fn account(&self, id: AccountId) -> Result<Option<AccountView>, BackendError> {
        self.check_up()?;
        Ok(matches!(id.as_str(), "alice" | "bob").then(|| AccountView {
            shard_id: shard_of(id.as_str()),
            balance: Amount(1_000_000),
            nonce: 3,
            public_key: dev_key(id.as_str()).public_key(),
            id,
        }))
    }

    async fn contract(&self, id: ContractId) -> Result<Option<ContractView>, BackendError> {
        self.check_up()?;
        Ok((id == token_id()).then(token_view))
    }

    async fn contracts(&self, offset: usize, limit: usize) -> Result<ContractPage, BackendError> {
        self.check_up()?;
        let all = vec![ContractSummary {
            id: token_id(),
            name: "MyToken".into(),
            owner: AccountId::new("alice").expect("alice"),
            primary_shard: ShardId(0),
            created_height: 7,
        }];
        Ok(ContractPage {
            total: all.len() as u64,
            contracts: all.into_iter().skip(offset).take(limit).collect(),
        })
    }

    async fn call_status(&self, id: CallId) -> Result<Option<CallView>, BackendError> {
        self.check_up()?;
        Ok((id == known_call()).then(call_view))
    }

    async fn update_config(
        &self,
        update: ConfigUpdate,
    ) -> Result<ConfigApplied, ConfigChangeError> {
        self.record("update_config");
        let mut config = self.config.lock().expect("config");
        let next = config.updated(&update)?;
        *config = next.clone();
        Ok(ConfigApplied {
            effective_height: 50,
            config: next,
        })
    }

    async fn rebalance(
        &self,
        moves: Option<Vec<MoveRequest>>,
    ) -> Result<Rebalanced, ConfigChangeError> {
        self.record("rebalance");
        let moves: Vec<PlannedMove> = moves
            .unwrap_or_default()
            .into_iter()
            .map(|m| PlannedMove {
                account: m.account,
                from: ShardId(0),
                to: m.to,
                load: 0,
            })
            .collect();
        Ok(Rebalanced {
            effective_height: (!moves.is_empty()).then_some(50),
            message: format!("{} moves", moves.len()),
            moves,
            shard_loads: BTreeMap::new(),
        })
    }

    async fn dev_sign(
        &self,
        signer: AccountId,
        action: Action,
    ) -> Result<Option<SignedTransaction>, BackendError> {
        self.record(format!("dev_sign {signer}"));
        if !self.devnet || !matches!(signer.as_str(), "alice" | "bob" | "carol" | "dave") {
            return Ok(None);
        }
        Ok(Some(signed(signer.as_str(), 0, action)))
    }

    async fn deploy_contract(&self, tx: Verified) -> Result<Deployed, SubmitError> {
        self.record(format!("deploy {}", tx.id()));
        Ok(Deployed {
            contract_id: ContractId::from_deploy(&tx.id()),
            primary_shard: shard_of(tx.tx.signer.as_str()),
        })
    }

    async fn execute_contract(&self, tx: Verified) -> Result<Executed, SubmitError> {
        self.record(format!("execute {}", tx.id()));
        let Action::CallContract {
            contract, method, ..
        } = &tx.tx.action
        else {
            return Err(SubmitError::Invalid("not a call".into()));
        };
        if *contract != token_id() {
            return Err(SubmitError::UnknownContract(contract.clone()));
        }
        if method == "explode" {
            return Ok(Executed::Failed {
                reason: "unknown method explode".into(),
            });
        }
        if shard_of(tx.tx.signer.as_str()) == ShardId(0) {
            Ok(Executed::Completed {
                result: serde_json::json!({"transferred": 100}),
            })
        } else {
            Ok(Executed::Pending {
                call_id: CallId::from_tx(&tx.id()),
            })
        }
    }

    async fn submit_proposal(&self, tx: Verified) -> Result<ProposalView, SubmitError> {
        self.record(format!("proposal {}", tx.id()));
        let Action::Proposal {
            action,
            affects_multiple_shards,
            coordination_required,
            ..
        } = &tx.tx.action
        else {
            return Err(SubmitError::Invalid("not a proposal".into()));
        };
        let targets: Vec<ShardId> = if *affects_multiple_shards {
            (0..self.num_shards()).map(ShardId).collect()
        } else {
            vec![shard_of(tx.tx.signer.as_str())]
        };
        let view = fake_proposal(
            tx.id(),
            &tx.tx.signer,
            action,
            targets,
            *coordination_required,
        );
        self.proposals.lock().expect("proposals").push(view.clone());
        Ok(view)
    }

    async fn proposal(&self, id: Hash) -> Result<Option<ProposalView>, BackendError> {
        self.check_up()?;
        Ok(self
            .proposals
            .lock()
            .expect("proposals")
            .iter()
            .find(|p| p.proposal_id == id)
            .cloned())
    }

    fn events(&self) -> tokio::sync::broadcast::Receiver<BlockEvent> {
        self.events.subscribe()
    }
}

/// A made-up decided proposal: every target accepts, except shard 3.
fn fake_proposal(
    id: Hash,
    proposer: &AccountId,
    action: &str,
    targets: Vec<ShardId>,
    coordination_required: bool,
) -> ProposalView {
    let shard_results: Vec<ShardDecision> = targets
        .iter()
        .map(|&s| ShardDecision {
            shard_id: s,
            accepted: s != ShardId(3),
            reason: (s == ShardId(3)).then(|| "made up".to_string()),
            height: 10,
            committee_size: 4,
            quorum: 3,
        })
        .collect();
    let accepted = shard_results.iter().filter(|d| d.accepted).count();
    let achieved = vision_types::prsm::cross_shard_approved(accepted as u64, targets.len() as u64);
    let by_beacon = coordination_required || targets.len() > 1;
    ProposalView {
        proposal_id: id,
        status: if achieved {
            ProposalState::Achieved
        } else {
            ProposalState::Failed
        },
        consensus_achieved: achieved,
        action: action.to_string(),
        proposer: proposer.clone(),
        coordinating_shard: shard_of(proposer.as_str()),
        cross_shard_approval: accepted as f64 / targets.len() as f64,
        coordination_required: coordination_required || targets.len() > 1,
        affects_multiple_shards: targets.len() > 1,
        target_shards: targets,
        shard_results,
        accepted_shards: accepted,
        threshold: 0.67,
        time_taken_ms: Some(1_200),
        reason: (!achieved).then(|| "made up".to_string()),
        submitted_height: 9,
        decided_height: (!by_beacon).then_some(11),
        decided_by: if by_beacon {
            DecidedBy::Beacon
        } else {
            DecidedBy::Shard
        },
        beacon_height: by_beacon.then_some(25),
    }
}
