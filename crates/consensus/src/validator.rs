//! One validator of a sharded network: its shard's engine and application, the beacon engine
//! and application when it is a beacon member (else a beacon follower), and the relay.
//! Generic over the runtime and the network, so the same code runs in the deterministic
//! simulation and in the node binary.

use crate::{
    ChainApp, ChainBlock, ChainChannels, ChainHandle, ChainSpec, NetMux, Partitions, SpawnError,
    Timeouts,
    beacon::{
        BeaconApp, BeaconBlock, BeaconState, CrosslinkPool, FinalizedCrosslinks, ShardCommittee,
    },
    chain::namespace,
    relay::{ConfigOutbox, RelayConfig, RelayRoles, TxOutbox, start_relay},
    shard::{ShardApp, ShardAppConfig, ShardAppError, ShardBlockCfg, ShardChainBlock},
    spawn_chain,
};
use commonware_cryptography::ed25519;
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use rand_core::CryptoRng;
use std::{collections::BTreeMap, num::NonZeroUsize, time::Duration};
use vision_types::{
    AccountId, Amount, ChainId as NetworkId, PublicKey, SecretKey, ShardConfig, ShardId,
    block::ChainRef,
};

/// Everything every node of a network agrees on (from genesis).
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    /// The network (chain id).
    pub network: NetworkId,
    /// Sharding configuration at genesis.
    pub config: ShardConfig,
    /// Each shard's committee (epoch 0).
    pub shard_committees: BTreeMap<ShardId, Vec<PublicKey>>,
    /// The beacon committee (epoch 0).
    pub beacon_committee: Vec<PublicKey>,
    /// Genesis accounts of every shard.
    pub genesis_accounts: Vec<(AccountId, PublicKey, Amount)>,
    /// Genesis time.
    pub genesis_timestamp_ms: u64,
    /// Codec bounds of shard blocks.
    pub shard_block_cfg: ShardBlockCfg,
    /// Consensus timing of shard chains.
    pub shard_timeouts: Timeouts,
    /// Consensus timing of the beacon chain.
    pub beacon_timeouts: Timeouts,
    /// Relay poll interval.
    pub relay_tick: Duration,
    /// Relay crosslink resend interval.
    pub relay_resend: Duration,
    /// The key allowed to sign configuration changes (the genesis `config_authority`
    /// account's key; `None`: the network's configuration is fixed).
    pub config_authority: Option<PublicKey>,
    /// Which shards serve each workload type (the genesis committee plan's
    /// `vision_sharding::workload_shards`; empty unless the strategy is `workload`): what
    /// proposal targeting needs of the plan.
    pub workload_shards: BTreeMap<String, Vec<ShardId>>,
    /// Genesis reputation of validators by consensus key: the prior of their beacon
    /// reputation score (members without one get
    /// [`crate::beacon::DEFAULT_REPUTATION_PRIOR_PPM`]).
    pub reputation_priors: BTreeMap<PublicKey, vision_sharding::Reputation>,
    /// Recent finalized blocks of each chain a validator keeps in memory to serve followers
    /// (older ones are read from its archive). A node-local choice, not consensus.
    pub served_blocks: usize,
}

impl NetworkSpec {
    /// The initial beacon state.
    pub fn beacon_genesis_state(&self) -> BeaconState {
        let committees = self
            .shard_committees
            .iter()
            .map(|(s, m)| {
                (
                    *s,
                    ShardCommittee {
                        epoch: 0,
                        members: m.clone(),
                    },
                )
            })
            .collect();
        BeaconState::new(self.network.clone(), 0, committees, self.config.clone())
            .with_config_authority(self.config_authority)
            .with_reputation_priors(&self.reputation_priors)
    }

    /// The shard `key` validates, if any.
    pub fn shard_of(&self, key: &PublicKey) -> Option<ShardId> {
        self.shard_committees
            .iter()
            .find(|(_, m)| m.contains(key))
            .map(|(s, _)| *s)
    }
}

/// A validator could not start.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// The shard application failed to open.
    #[error("shard application: {0}")]
    Shard(#[from] ShardAppError),
    /// An engine failed to start.
    #[error("engine: {0}")]
    Engine(#[from] SpawnError),
    /// A subchannel could not be opened.
    #[error("network: {0}")]
    Net(#[from] crate::net::NetError),
}

/// A running validator.
pub struct Validator<E: commonware_storage::Context + Spawner> {
    /// The shard application, if this validator is in a shard committee.
    pub shard: Option<ShardApp<E>>,
    /// The beacon application, if this validator is a beacon member.
    pub beacon: Option<BeaconApp<E>>,
    /// This validator's beacon view.
    pub view: FinalizedCrosslinks,
    /// Configuration changes this validator submits to the beacon.
    pub config_outbox: ConfigOutbox,
    /// Transactions this validator's own clients (its HTTP API) submitted to its shard's pool:
    /// the relay sends them to the other members of its committee at the next tick.
    pub tx_outbox: TxOutbox,
    engines: Vec<ChainHandle>,
    relay: Handle<()>,
    /// The network multiplexer (dropping it would close the subchannels).
    _mux: Box<dyn std::any::Any + Send>,
}

impl<E: commonware_storage::Context + Spawner> Validator<E> {
    /// Delivered (finalized and applied) height of the shard chain and the beacon chain.
    pub fn delivered(&self) -> Vec<u64> {
        self.engines
            .iter()
            .map(ChainHandle::delivered_height)
            .collect()
    }

    /// Stops every engine and the relay, and waits until they ended (storage released).
    pub async fn stop(self) {
        self.relay.abort();
        let _ = self.relay.await;
        for e in self.engines {
            e.stop().await;
        }
    }
}

/// Starts validator `signer` (storage partitions prefixed with `node`): opens its shard's
/// state, starts the engines it takes part in on `base` (multiplexed), and the relay on
/// `relay`.
pub async fn start_validator<E, S, R, Bl>(
    context: E,
    spec: &NetworkSpec,
    signer: SecretKey,
    node: &str,
    base: ChainChannels<S, R>,
    relay: (S, R),
    blocker: Bl,
) -> Result<Validator<E>, ValidatorError>
where
    E: commonware_storage::Context + Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    Bl: Blocker<PublicKey = ed25519::PublicKey>,
{
    start_validator_with(context, spec, signer, node, base, relay, blocker, |app| app).await
}

/// [`start_validator`] whose shard engine runs `shard_engine_app(app)` instead of the shard
/// application itself (the relay and the returned [`Validator`] keep the real one): the
/// application itself in production; tests run a faulty proposer this way.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_validator_with<E, S, R, Bl, W>(
    context: E,
    spec: &NetworkSpec,
    signer: SecretKey,
    node: &str,
    base: ChainChannels<S, R>,
    relay: (S, R),
    blocker: Bl,
    shard_engine_app: impl FnOnce(ShardApp<E>) -> W,
) -> Result<Validator<E>, ValidatorError>
where
    E: commonware_storage::Context + Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    Bl: Blocker<PublicKey = ed25519::PublicKey>,
    W: ChainApp<Block = ShardChainBlock>,
{
    let me = signer.public_key();
    let mut mux = NetMux::start(context.child("mux"), base);
    let mut engines = Vec::new();
    let initial = spec.beacon_genesis_state();
    let beacon_genesis = BeaconBlock::genesis(initial.root());

    let beacon = if spec.beacon_committee.contains(&me) {
        let app = BeaconApp::new(
            context.child("beacon_app"),
            initial.clone(),
            &beacon_genesis,
            CrosslinkPool::default(),
        );
        app.finalized_crosslinks()
            .set_served_blocks(spec.served_blocks);
        engines.push(
            start_engine(
                context.child("beacon"),
                &mut mux,
                EngineSpec {
                    chain: ChainRef::Beacon,
                    committee: spec.beacon_committee.clone(),
                    signer: &signer,
                    network: &spec.network,
                    node,
                    timeouts: spec.beacon_timeouts.clone(),
                    genesis: beacon_genesis.clone(),
                    block_codec_config: (),
                },
                blocker.clone(),
                app.clone(),
            )
            .await?,
        );
        Some(app)
    } else {
        None
    };
    let view = match &beacon {
        Some(app) => app.finalized_crosslinks(),
        None => {
            let view = FinalizedCrosslinks::new(initial.with_tip(beacon_genesis.header.hash()));
            view.set_served_blocks(spec.served_blocks);
            view
        }
    };

    let shard = match spec.shard_of(&me) {
        Some(shard) => {
            let cfg = shard_app_config(spec, shard, node);
            let app = ShardApp::new(context.child("shard_app"), cfg, view.clone()).await?;
            engines.push(
                start_engine(
                    context.child("shard"),
                    &mut mux,
                    EngineSpec {
                        chain: ChainRef::Shard(shard),
                        committee: spec.shard_committees[&shard].clone(),
                        signer: &signer,
                        network: &spec.network,
                        node,
                        timeouts: spec.shard_timeouts.clone(),
                        genesis: app.genesis_block(),
                        block_codec_config: spec.shard_block_cfg,
                    },
                    blocker.clone(),
                    shard_engine_app(app.clone()),
                )
                .await?,
            );
            Some(app)
        }
        None => None,
    };

    let config_outbox = ConfigOutbox::default();
    let tx_outbox = TxOutbox::default();
    let relay = start_relay(
        context.child("relay"),
        relay_config(spec, me),
        RelayRoles {
            shard: shard.clone(),
            beacon: beacon.clone(),
            view: view.clone(),
            followed: Vec::new(),
            config_outbox: config_outbox.clone(),
            tx_outbox: tx_outbox.clone(),
        },
        relay,
    );
    Ok(Validator {
        shard,
        beacon,
        view,
        config_outbox,
        tx_outbox,
        engines,
        relay,
        _mux: Box::new(mux),
    })
}

/// A running non-voting follower of every shard and the beacon (what an API node runs).
pub struct Follower<E: commonware_storage::Context + Spawner> {
    /// Every shard's application, filled from certified segments (transactions submitted to
    /// one are forwarded to that shard's validators).
    pub shards: BTreeMap<ShardId, ShardApp<E>>,
    /// The beacon view.
    pub view: FinalizedCrosslinks,
    /// Configuration changes this node submits to the beacon.
    pub config_outbox: ConfigOutbox,
    relay: Handle<()>,
}

impl<E: commonware_storage::Context + Spawner> Follower<E> {
    /// Stops the relay (and with it the appliers' inputs).
    pub async fn stop(self) {
        self.relay.abort();
        let _ = self.relay.await;
    }
}

/// Transactions a follower (an API node) keeps in each shard's durable transaction index
/// (`GET /tx/{id}` after a restart or beyond the in-memory window): about 10 MB of memory per
/// shard when full.
pub const FOLLOWER_TX_INDEX_RECORDS: u64 = 250_000;

/// Starts a follower of every shard and the beacon of `spec` with p2p identity `me` (storage
/// partitions prefixed with `node`), on its relay channel. It executes every shard's finalized
/// blocks on its own state (checking every root) and forwards submitted transactions.
pub async fn start_follower<E, S, R>(
    context: E,
    spec: &NetworkSpec,
    me: PublicKey,
    node: &str,
    relay: (S, R),
) -> Result<Follower<E>, ValidatorError>
where
    E: commonware_storage::Context + Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let initial = spec.beacon_genesis_state();
    let beacon_genesis = BeaconBlock::genesis(initial.root());
    let view = FinalizedCrosslinks::new(initial.with_tip(beacon_genesis.header.hash()));
    view.set_served_blocks(spec.served_blocks);
    let mut shards = BTreeMap::new();
    for &shard in spec.shard_committees.keys() {
        let mut cfg = shard_app_config(spec, shard, node);
        cfg.tx_index_records = FOLLOWER_TX_INDEX_RECORDS;
        let app = ShardApp::new(
            context.child("shard_app").with_attribute("shard", shard.0),
            cfg,
            view.clone(),
        )
        .await?;
        shards.insert(shard, app);
    }
    let config_outbox = ConfigOutbox::default();
    let relay = start_relay(
        context.child("relay"),
        relay_config(spec, me),
        RelayRoles {
            shard: None,
            beacon: None,
            view: view.clone(),
            followed: shards.values().cloned().collect(),
            config_outbox: config_outbox.clone(),
            tx_outbox: TxOutbox::default(),
        },
        relay,
    );
    Ok(Follower {
        shards,
        view,
        config_outbox,
        relay,
    })
}

fn shard_app_config(spec: &NetworkSpec, shard: ShardId, node: &str) -> ShardAppConfig {
    let mut cfg = ShardAppConfig::new(
        shard,
        spec.network.clone(),
        spec.config.clone(),
        format!("{node}-shard{}-state", shard.0),
        spec.genesis_accounts.clone(),
    );
    cfg.genesis_timestamp_ms = spec.genesis_timestamp_ms;
    cfg.workload_shards = spec.workload_shards.clone();
    cfg.max_block_bytes = spec.shard_block_cfg.max_bytes;
    cfg.served_blocks = spec.served_blocks;
    cfg
}

fn relay_config(spec: &NetworkSpec, me: PublicKey) -> RelayConfig {
    RelayConfig {
        network: spec.network.clone(),
        me,
        beacon_committee: spec.beacon_committee.clone(),
        shard_committees: spec.shard_committees.clone(),
        tick: spec.relay_tick,
        resend: spec.relay_resend,
    }
}

/// What differs between the beacon engine and a shard engine of one validator.
struct EngineSpec<'a, B: ChainBlock> {
    chain: ChainRef,
    committee: Vec<PublicKey>,
    signer: &'a SecretKey,
    network: &'a NetworkId,
    node: &'a str,
    timeouts: Timeouts,
    genesis: B,
    block_codec_config: B::Cfg,
}

/// Opens the chain's subchannels (epoch 0) and spawns its engine.
async fn start_engine<E, S, Bl, A>(
    context: E,
    mux: &mut NetMux<S>,
    e: EngineSpec<'_, A::Block>,
    blocker: Bl,
    app: A,
) -> Result<ChainHandle, ValidatorError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = ed25519::PublicKey>,
    Bl: Blocker<PublicKey = ed25519::PublicKey>,
    A: ChainApp,
{
    let channels = mux.register(e.chain, 0).await?;
    let cs = ChainSpec {
        chain: e.chain,
        epoch: 0,
        committee: e.committee,
        signer: e.signer.clone(),
        namespace: namespace(e.network, e.chain, 0),
        partitions: Partitions::new(e.node, e.chain, 0),
        timeouts: e.timeouts,
        genesis: e.genesis,
        block_codec_config: e.block_codec_config,
        mailbox_size: mailbox(),
    };
    Ok(spawn_chain(context, cs, channels, blocker, app).await?)
}

fn mailbox() -> NonZeroUsize {
    NonZeroUsize::new(1024).expect("non-zero")
}
