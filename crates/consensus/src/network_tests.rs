//! Deterministic simulation of a whole sharded network: 4 shards × 4 validators, the beacon
//! committee (one coordinator per shard), the relay, random intra- and cross-shard transfers,
//! message loss, crashes and restarts; invariants checked at the end of every run.

use crate::{
    NetworkSpec, RELAY, Timeouts, Validator,
    beacon::{ConfigChange, FinalizedCrosslinks},
    keys::to_cw_public_key,
    relay::{ConfigOutbox, RELAY_MAX_MESSAGE_BYTES, TxOutbox},
    relay_channel_quota,
    shard::{ShardApp, ShardBlockCfg, ShardChainBlock, uniform_layout},
    sim::{Ctx, base_channels_of, full_mesh, link},
    start_follower,
    validator::start_validator_with,
};
use commonware_cryptography::ed25519;
use commonware_p2p::simulated::Oracle;
use commonware_runtime::{Clock, Handle, Runner, Spawner, Supervisor as _, deterministic};
use futures::channel::oneshot;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use vision_state::{QmdbStore, StateReadExt, Supply};
use vision_types::{
    AccountId, Action, Amount, ChainId as NetworkId, Hash, SecretKey, ShardConfig, ShardId,
    SignedTransaction, Transaction,
};

pub(crate) const SHARDS: u32 = 4;
pub(crate) const PER_SHARD: usize = 4;
pub(crate) const VALIDATORS: usize = SHARDS as usize * PER_SHARD;
pub(crate) const FEE: u128 = 10;
pub(crate) const START_BALANCE: u128 = 1_000_000_000;

/// SplitMix64: the workload's deterministic randomness (seeded per run).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(crate) fn validator_key(i: usize) -> SecretKey {
    crate::sim::test_key(0x5A, i as u64)
}

/// The p2p identity of the simulated API node (a non-voting follower).
pub(crate) fn follower_key() -> SecretKey {
    crate::sim::test_key(0xF0, 0)
}

fn user_key(i: u64) -> SecretKey {
    crate::sim::test_key(0xAB, i)
}

pub(crate) fn net_id() -> NetworkId {
    NetworkId::new("simnet").unwrap()
}

fn block_cfg() -> ShardBlockCfg {
    ShardBlockCfg {
        max_bytes: 1024 * 1024,
    }
}

/// A user of the simulated network.
#[derive(Clone)]
pub(crate) struct User {
    pub key: SecretKey,
    pub id: AccountId,
    pub shard: ShardId,
}

/// `per_shard` users on every shard.
pub(crate) fn users(per_shard: usize) -> Vec<User> {
    let layout = uniform_layout(SHARDS as u64).unwrap();
    let mut by_shard: BTreeMap<ShardId, Vec<User>> = BTreeMap::new();
    for i in 0.. {
        let key = user_key(i);
        let id = AccountId::implicit(&key.public_key());
        let shard = layout.shard_of_account(&id);
        let list = by_shard.entry(shard).or_default();
        if list.len() < per_shard {
            list.push(User { key, id, shard });
        }
        if by_shard.len() == SHARDS as usize && by_shard.values().all(|l| l.len() == per_shard) {
            break;
        }
    }
    by_shard.into_values().flatten().collect()
}

/// The network every simulated node agrees on: shard `s` is validated by validators
/// `4s..4s+4`; the beacon committee is validator `4s` of every shard.
pub(crate) fn network_spec(users: &[User], config: ShardConfig) -> NetworkSpec {
    let shard_committees = (0..SHARDS)
        .map(|s| {
            let base = s as usize * PER_SHARD;
            (
                ShardId(s),
                (base..base + PER_SHARD)
                    .map(|i| validator_key(i).public_key())
                    .collect(),
            )
        })
        .collect();
    NetworkSpec {
        network: net_id(),
        config,
        shard_committees,
        beacon_committee: (0..SHARDS as usize)
            .map(|s| validator_key(s * PER_SHARD).public_key())
            .collect(),
        genesis_accounts: users
            .iter()
            .map(|u| (u.id.clone(), u.key.public_key(), Amount(START_BALANCE)))
            .collect(),
        genesis_timestamp_ms: 0,
        shard_block_cfg: block_cfg(),
        shard_timeouts: Timeouts {
            min_block_interval: Duration::from_millis(200),
            ..Timeouts::default()
        },
        beacon_timeouts: Timeouts {
            min_block_interval: Duration::from_millis(100),
            ..Timeouts::default()
        },
        relay_tick: Duration::from_millis(100),
        relay_resend: Duration::from_secs(1),
        config_authority: Some(authority_key().public_key()),
        workload_shards: BTreeMap::new(),
        reputation_priors: BTreeMap::new(),
        served_blocks: crate::shard::SERVED_BLOCKS,
    }
}

/// The simulated network's configuration authority.
pub(crate) fn authority_key() -> SecretKey {
    SecretKey::from_seed([0xA5; 32])
}

pub(crate) fn shard_of_validator(i: usize) -> ShardId {
    ShardId((i / PER_SHARD) as u32)
}

/// What the test reads from a running validator.
#[derive(Clone)]
pub(crate) struct NodeView {
    pub shard: ShardApp<Ctx>,
    pub beacon: FinalizedCrosslinks,
    pub config_outbox: ConfigOutbox,
    pub tx_outbox: TxOutbox,
}

/// A running simulated API node: its task, shard applications and beacon view.
pub(crate) type FollowerNode = (
    Handle<()>,
    BTreeMap<ShardId, ShardApp<Ctx>>,
    FinalizedCrosslinks,
);

/// The simulated network and its validators.
pub(crate) struct SimNet {
    pub ctx: Ctx,
    pub oracle: Oracle<ed25519::PublicKey, Ctx>,
    pub spec: NetworkSpec,
    pub nodes: Vec<Option<(Handle<()>, NodeView)>>,
    /// The API node, when started: its shard applications and beacon view.
    pub follower: Option<FollowerNode>,
}

impl SimNet {
    /// Starts the network (links delivering `success_pct` %) and every validator.
    pub(crate) async fn start(ctx: &Ctx, spec: NetworkSpec, success_pct: u64) -> SimNet {
        Self::start_except(ctx, spec, success_pct, &[]).await
    }

    /// Starts the network and every validator but those in `skip`.
    pub(crate) async fn start_except(
        ctx: &Ctx,
        spec: NetworkSpec,
        success_pct: u64,
        skip: &[usize],
    ) -> SimNet {
        let peers = (0..VALIDATORS)
            .map(validator_key)
            .chain([follower_key()])
            .map(|k| to_cw_public_key(&k.public_key()).unwrap())
            .collect();
        let max_size = crate::max_message_bytes::<ShardChainBlock>(PER_SHARD as u32, &block_cfg())
            .max(RELAY_MAX_MESSAGE_BYTES as u32);
        let oracle = full_mesh(ctx, peers, max_size, link(success_pct)).await;
        let mut net = SimNet {
            ctx: ctx.child("net"),
            oracle,
            spec,
            nodes: (0..VALIDATORS).map(|_| None).collect(),
            follower: None,
        };
        for i in (0..VALIDATORS).filter(|i| !skip.contains(i)) {
            net.start_node(i).await;
        }
        net
    }

    /// Starts (or restarts, on the same storage) validator `i`.
    pub(crate) async fn start_node(&mut self, i: usize) {
        self.start_node_wrapped(i, |app| app).await;
    }

    /// Starts (or restarts, on the same storage) validator `i` with its shard engine running
    /// `wrap(app)` instead of its shard application (e.g. a faulty proposer).
    pub(crate) async fn start_node_wrapped<W>(
        &mut self,
        i: usize,
        wrap: impl FnOnce(ShardApp<Ctx>) -> W + Send + 'static,
    ) where
        W: crate::ChainApp<Block = ShardChainBlock>,
    {
        assert!(self.nodes[i].is_none(), "validator {i} is running");
        let key = validator_key(i);
        let pk = key.public_key();
        let base = base_channels_of(&self.oracle, &pk).await;
        let control = self.oracle.control(to_cw_public_key(&pk).unwrap());
        let relay = control
            .register(RELAY, relay_channel_quota())
            .await
            .unwrap();
        let spec = self.spec.clone();
        let (tx, rx) = oneshot::channel();
        let handle = self
            .ctx
            .child("validator")
            .with_attribute("index", i)
            .spawn(move |ctx| async move {
                let v: Validator<Ctx> = start_validator_with(
                    ctx,
                    &spec,
                    key,
                    &format!("node{i}"),
                    base,
                    relay,
                    control,
                    wrap,
                )
                .await
                .unwrap();
                let view = NodeView {
                    shard: v
                        .shard
                        .clone()
                        .expect("every simulated validator runs a shard"),
                    beacon: v.view.clone(),
                    config_outbox: v.config_outbox.clone(),
                    tx_outbox: v.tx_outbox.clone(),
                };
                let _ = tx.send(view);
                futures::future::pending::<()>().await;
                drop(v);
            });
        let view = rx.await.expect("validator started");
        self.nodes[i] = Some((handle, view));
    }

    /// Starts (or restarts, on the same storage) the API node following every shard.
    pub(crate) async fn start_follower(&mut self) {
        assert!(self.follower.is_none(), "the follower is running");
        let pk = follower_key().public_key();
        let control = self.oracle.control(to_cw_public_key(&pk).unwrap());
        let relay = control
            .register(RELAY, relay_channel_quota())
            .await
            .unwrap();
        let spec = self.spec.clone();
        let (tx, rx) = oneshot::channel();
        let handle = self.ctx.child("follower").spawn(move |ctx| async move {
            let f = start_follower(ctx, &spec, pk, "api", relay).await.unwrap();
            let _ = tx.send((f.shards.clone(), f.view.clone()));
            futures::future::pending::<()>().await;
            drop(f);
        });
        let (shards, view) = rx.await.expect("follower started");
        self.follower = Some((handle, shards, view));
    }

    /// Crashes the API node.
    pub(crate) async fn crash_follower(&mut self) {
        let (handle, _, _) = self.follower.take().expect("running");
        handle.abort();
        let _ = handle.await;
    }

    /// Crashes validator `i` (its tasks stop at once; only synced storage survives).
    pub(crate) async fn crash(&mut self, i: usize) {
        let (handle, _) = self.nodes[i].take().expect("running");
        handle.abort();
        let _ = handle.await;
    }

    /// The running replicas of `shard`.
    pub(crate) fn replicas(&self, shard: ShardId) -> Vec<&NodeView> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| shard_of_validator(*i) == shard)
            .filter_map(|(_, n)| n.as_ref().map(|(_, v)| v))
            .collect()
    }

    /// Every running validator's view.
    pub(crate) fn views(&self) -> Vec<&NodeView> {
        self.nodes
            .iter()
            .filter_map(|n| n.as_ref().map(|(_, v)| v))
            .collect()
    }

    /// Submits `tx` to every running replica of `shard` (as an API node would forward it).
    pub(crate) fn submit(&self, shard: ShardId, tx: &SignedTransaction) {
        for r in self.replicas(shard) {
            let _ = r.shard.submit(tx.clone());
        }
    }
}

pub(crate) fn transfer(
    from: &User,
    nonce: u64,
    to: &AccountId,
    amount: u128,
    priority: u8,
) -> SignedTransaction {
    Transaction {
        chain_id: net_id(),
        signer: from.id.clone(),
        nonce,
        fee: Amount(FEE),
        action: Action::Transfer {
            to: to.clone(),
            amount: Amount(amount),
            priority,
        },
    }
    .sign(&from.key)
}

/// Seeds of a simulation test: `count` seeds from `first`, or `VISION_SIM_SEEDS` of them when
/// that variable is set (e.g. `VISION_SIM_SEEDS=200` for a long soak). Every run prints its
/// seed first, so a failure names the seed that replays it exactly.
pub(crate) fn seeds(first: u64, count: u64) -> std::ops::Range<u64> {
    let count = std::env::var("VISION_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(count);
    first..first + count
}

pub(crate) fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(1800))),
    )
}

/// What one replica's committed state says about the invariants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShardSnapshot {
    pub height: u64,
    pub supply: Supply,
    pub nonces: BTreeMap<AccountId, u64>,
    pub balances: BTreeMap<AccountId, u128>,
    pub outbox: BTreeMap<ShardId, u64>,
    pub inbox: BTreeMap<ShardId, u64>,
    /// Users this shard should hold (by the latest layout) but does not (yet).
    pub missing: Vec<AccountId>,
    /// Users this shard holds although the latest layout places them elsewhere.
    pub strays: Vec<AccountId>,
}

pub(crate) async fn snapshot(app: &ShardApp<Ctx>, users: &[User]) -> ShardSnapshot {
    let height = app.committed_height().await;
    // Where each user lives under the latest layout this replica's beacon view holds (account
    // moves included; the genesis layout before any).
    let owners: Vec<ShardId> = app.beacon().with_view(|v| {
        users
            .iter()
            .map(|u| v.map_or(u.shard, |v| v.latest_layout().shard_of_account(&u.id)))
            .collect()
    });
    app.with_state(|s: &QmdbStore<Ctx>| {
        let mut snap = ShardSnapshot {
            height,
            supply: Supply::of(s),
            nonces: BTreeMap::new(),
            balances: BTreeMap::new(),
            outbox: BTreeMap::new(),
            inbox: BTreeMap::new(),
            missing: Vec::new(),
            strays: Vec::new(),
        };
        for (u, owner) in users.iter().zip(&owners) {
            match (s.account(&u.id), *owner == app.shard()) {
                (Some(a), true) => {
                    snap.nonces.insert(u.id.clone(), a.nonce);
                    snap.balances.insert(u.id.clone(), a.balance.0);
                }
                (None, true) => snap.missing.push(u.id.clone()),
                (Some(_), false) => snap.strays.push(u.id.clone()),
                (None, false) => {}
            }
        }
        for other in 0..SHARDS {
            let other = ShardId(other);
            if other != app.shard() {
                snap.outbox.insert(other, s.outbox_next(other));
                snap.inbox.insert(other, s.inbox_next(other));
            }
        }
        snap
    })
    .await
}

/// No two replicas of a chain finalized different blocks (or state roots) at one height.
pub(crate) fn assert_no_conflicting_finality(net: &SimNet) {
    for s in 0..SHARDS {
        let mut canon: BTreeMap<u64, (Hash, Hash)> = BTreeMap::new();
        for r in net.replicas(ShardId(s)) {
            for (h, info) in r.shard.recent_finalized() {
                let prev = canon.entry(h).or_insert((info.hash, info.state_root));
                assert_eq!(
                    *prev,
                    (info.hash, info.state_root),
                    "shard {s}: replicas differ at height {h}"
                );
            }
        }
    }
    let mut canon: BTreeMap<u64, Hash> = BTreeMap::new();
    for v in net.views() {
        for (h, hash) in v.beacon.recent_blocks() {
            assert_eq!(
                *canon.entry(h).or_insert(hash),
                hash,
                "beacon differs at {h}"
            );
        }
    }
}

/// Waits (simulated time, at most `limit`) until `done` holds.
pub(crate) async fn wait_until<F: std::future::Future<Output = bool>>(
    ctx: &Ctx,
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> F,
) {
    let start = ctx.current();
    while !done().await {
        ctx.sleep(Duration::from_millis(250)).await;
        let waited = ctx.current().duration_since(start).unwrap();
        assert!(
            waited < limit,
            "timed out after {waited:?} waiting for {what}"
        );
    }
}

/// Expected final balances if every transfer applies exactly once.
pub(crate) fn model(users: &[User], txs: &[(usize, usize, u128)]) -> BTreeMap<AccountId, u128> {
    let mut bal: BTreeMap<AccountId, u128> = users
        .iter()
        .map(|u| (u.id.clone(), START_BALANCE))
        .collect();
    for &(from, to, amount) in txs {
        *bal.get_mut(&users[from].id).unwrap() -= amount + FEE;
        *bal.get_mut(&users[to].id).unwrap() += amount;
    }
    bal
}

/// Waits until every replica of every shard has applied all `txs` and every receipt, then
/// checks the invariants: replicas agree, supply is conserved globally, every stream is fully
/// delivered (each receipt applied exactly once), balances equal the exactly-once model.
pub(crate) async fn settle_and_check(
    net: &SimNet,
    users: &[User],
    txs: &[(usize, usize, u128)],
    limit: Duration,
) -> u64 {
    let mut expected_nonce: BTreeMap<AccountId, u64> =
        users.iter().map(|u| (u.id.clone(), 0)).collect();
    for &(from, _, _) in txs {
        *expected_nonce.get_mut(&users[from].id).unwrap() += 1;
    }
    let expected = model(users, txs);
    wait_until(&net.ctx, "every transfer applied everywhere", limit, || {
        let expected = &expected;
        let expected_nonce = &expected_nonce;
        async move {
            for s in 0..SHARDS {
                for r in net.replicas(ShardId(s)) {
                    let snap = snapshot(&r.shard, users).await;
                    let nonces_ok = snap.nonces.iter().all(|(a, n)| expected_nonce[a] == *n);
                    let balances_ok = snap.balances.iter().all(|(a, b)| expected[a] == *b);
                    if !nonces_ok || !balances_ok || !snap.missing.is_empty() {
                        return false;
                    }
                }
            }
            true
        }
    })
    .await;
    // Per-shard snapshots (replicas must agree at equal heights; take the first of each).
    let mut snaps = BTreeMap::new();
    for s in 0..SHARDS {
        let reps = net.replicas(ShardId(s));
        let first = snapshot(&reps[0].shard, users).await;
        for r in &reps[1..] {
            let snap = snapshot(&r.shard, users).await;
            assert_eq!(snap.balances, first.balances, "shard {s}: replica balances");
            assert_eq!(snap.nonces, first.nonces, "shard {s}: replica nonces");
        }
        assert!(first.supply.balanced(), "shard {s}: {:?}", first.supply);
        assert!(
            first.strays.is_empty(),
            "shard {s} still holds moved accounts {:?}",
            first.strays
        );
        snaps.insert(ShardId(s), first);
    }
    // Every account lives on exactly one shard.
    let held: usize = snaps.values().map(|s| s.balances.len()).sum();
    assert_eq!(held, users.len(), "accounts held across shards");
    // Exactly-once: every stream delivered entirely, nothing in flight.
    for (src, snap) in &snaps {
        for (dst, next) in &snap.outbox {
            assert_eq!(
                snaps[dst].inbox[src], *next,
                "stream {src}->{dst}: emitted {next}, applied {}",
                snaps[dst].inbox[src]
            );
        }
    }
    let sent: u128 = snaps.values().map(|s| s.supply.sent).sum();
    let received: u128 = snaps.values().map(|s| s.supply.received).sum();
    assert_eq!(sent, received, "coin in flight after settling");
    let total: u128 = snaps
        .values()
        .map(|s| s.supply.balances + s.supply.burned + s.supply.unclaimed)
        .sum();
    assert_eq!(total, START_BALANCE * users.len() as u128, "global supply");
    assert_no_conflicting_finality(net);
    snaps.values().map(|s| s.height).min().unwrap()
}

/// Submits `count` random transfers (a third cross-shard... about three quarters, since the
/// recipient is uniform over 4 shards), `batch` at a time, every `gap` of simulated time.
pub(crate) async fn random_transfers(
    net: &SimNet,
    users: &[User],
    rng: &mut Rng,
    nonces: &mut BTreeMap<usize, u64>,
    count: usize,
    log: &mut Vec<(usize, usize, u128)>,
) {
    for _ in 0..count {
        let from = rng.below(users.len() as u64) as usize;
        let mut to = rng.below(users.len() as u64) as usize;
        if to == from {
            to = (to + 1) % users.len();
        }
        let amount = 1 + rng.below(1_000) as u128;
        let priority = if rng.below(20) == 0 { 255 } else { 0 };
        let nonce = nonces.entry(from).or_insert(0);
        let tx = transfer(&users[from], *nonce, &users[to].id, amount, priority);
        *nonce += 1;
        net.submit(users[from].shard, &tx);
        log.push((from, to, amount));
        net.ctx.sleep(Duration::from_millis(rng.below(40))).await;
    }
}

/// Finalization certificates the crashed validators of the crash test stay down for.
const CRASH_MISSES: u64 = 3;

/// Waits (up to 120 s simulated) until the beacon, as the first running validator holds it,
/// recorded `misses` more missed certificates (from now) for every validator of `down`.
async fn wait_for_misses(net: &SimNet, down: &[usize], misses: u64) {
    let missed_now = || -> Vec<u64> {
        net.views()[0].beacon.with_view(|v| {
            down.iter()
                .map(|&i| {
                    v.and_then(|v| v.reputation(&validator_key(i).public_key()))
                        .map_or(0, |r| r.missed)
                })
                .collect()
        })
    };
    let start = missed_now();
    let deadline = net.ctx.current() + Duration::from_secs(120);
    loop {
        let missed = missed_now();
        if missed.iter().zip(&start).all(|(m, s)| *m >= s + misses) {
            return;
        }
        assert!(
            net.ctx.current() < deadline,
            "validators {down:?} down, the beacon recorded {start:?} -> {missed:?} misses"
        );
        net.ctx.sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the beacon's reputation records (as the first running validator holds them) after a
/// run in which each validator of `crashed` was down for a while: it missed finalization
/// certificates, and its score is below the best score among the validators of its shard that
/// never went down. Returns `((missed, score ppm) of the crashed one, (missed, score ppm) of
/// the best always-up one)` per crashed validator.
fn assert_crashed_lose_reputation(
    net: &SimNet,
    crashed: &[usize],
) -> Vec<((u64, u32), (u64, u32))> {
    let state = net.views()[0].beacon.state().expect("a beacon state");
    let record = |i: usize| {
        let r = state
            .reputation(&validator_key(i).public_key())
            .expect("every committee member has a record");
        assert_eq!(r.shard, shard_of_validator(i));
        (r.missed, r.score().ppm())
    };
    crashed
        .iter()
        .map(|&i| {
            let down = record(i);
            let shard = shard_of_validator(i);
            let best_up = (0..VALIDATORS)
                .filter(|j| shard_of_validator(*j) == shard && !crashed.contains(j))
                .map(record)
                .max_by_key(|(_, score)| *score)
                .expect("an always-up validator in the shard");
            assert!(
                down.0 > 0,
                "validator {i} was down but missed nothing: {down:?}"
            );
            assert!(
                down.1 < best_up.1,
                "validator {i} was down yet scores {down:?}, the best always-up one {best_up:?}"
            );
            (down, best_up)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// The whole network with 5 % message loss: random transfers (most cross-shard) from 32
/// accounts; one non-beacon validator per shard crashes mid-run and restarts; at the end every
/// transfer applied exactly once on every replica, supply is conserved and no chain has
/// conflicting finalized blocks.
#[test]
fn sharded_network_transfers_with_loss_and_crashes() {
    for seed in seeds(1, 8) {
        eprintln!("sharded_network: seed {seed}");
        let started = Instant::now();
        runner(seed).start(|ctx| async move {
            let users = users(8);
            let spec = network_spec(&users, ShardConfig::default());
            let mut net = SimNet::start(&ctx, spec, 95).await;
            let mut rng = Rng(seed);
            let mut nonces = BTreeMap::new();
            let mut log = Vec::new();
            random_transfers(&net, &users, &mut rng, &mut nonces, 60, &mut log).await;
            // Crash validator 1 + 4s of every shard (never a beacon member), keep going.
            let crashed: Vec<usize> = (0..SHARDS as usize)
                .map(|s| s * PER_SHARD + 1 + rng.below(3) as usize)
                .collect();
            for &i in &crashed {
                net.crash(i).await;
            }
            random_transfers(&net, &users, &mut rng, &mut nonces, 60, &mut log).await;
            ctx.sleep(Duration::from_secs(3)).await;
            // Stay down until the beacon recorded a few certificates without them.
            wait_for_misses(&net, &crashed, CRASH_MISSES).await;
            for &i in &crashed {
                net.start_node(i).await;
            }
            random_transfers(&net, &users, &mut rng, &mut nonces, 60, &mut log).await;
            let height = settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
            let beacon = net.views()[0].beacon.beacon_height();
            let reputation = assert_crashed_lose_reputation(&net, &crashed);
            eprintln!(
                "sharded_network seed {seed}: {} transfers settled; shard heights >= {height}, \
                 beacon {beacon}; reputation (missed, score ppm) crashed vs best up {reputation:?}; \
                 {:.1}s simulated, {:.1}s wall",
                log.len(),
                ctx.current()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
        });
    }
}

/// An API node follows every shard without voting: every transfer is submitted only to it
/// (it forwards them to the shard's validators), with 5 % loss, a validator crash per shard and
/// a crash and restart of the API node itself. At the end the validators settle as usual and
/// the API node's state of every shard equals the validators' (same balances, nonces, supply,
/// and the same block hashes and state roots at every height it holds).
#[test]
fn api_node_follows_every_shard_and_forwards_transactions() {
    for seed in seeds(40, 2) {
        eprintln!("api_node: seed {seed}");
        runner(seed).start(|ctx| async move {
            let users = users(6);
            let spec = network_spec(&users, ShardConfig::default());
            let mut net = SimNet::start(&ctx, spec, 95).await;
            net.start_follower().await;
            let mut rng = Rng(seed);
            let mut nonces: BTreeMap<usize, u64> = BTreeMap::new();
            let mut log = Vec::new();
            let mut ids: Vec<(ShardId, Hash)> = Vec::new();
            let mut submit_round = |net: &SimNet, rng: &mut Rng, n: usize| {
                let shards = &net.follower.as_ref().expect("follower").1;
                for _ in 0..n {
                    let from = rng.below(users.len() as u64) as usize;
                    let to = (from + 1 + rng.below(users.len() as u64 - 1) as usize) % users.len();
                    let amount = 1 + rng.below(1_000) as u128;
                    let nonce = nonces.entry(from).or_insert(0);
                    let tx = transfer(&users[from], *nonce, &users[to].id, amount, 0);
                    *nonce += 1;
                    ids.push((users[from].shard, tx.id()));
                    shards[&users[from].shard].submit(tx).expect("admitted");
                    log.push((from, to, amount));
                }
            };
            let first_round = 40;
            submit_round(&net, &mut rng, first_round);
            ctx.sleep(Duration::from_secs(4)).await;
            net.crash(2).await;
            net.crash_follower().await;
            ctx.sleep(Duration::from_secs(2)).await;
            net.start_follower().await;
            submit_round(&net, &mut rng, 40);
            ctx.sleep(Duration::from_secs(2)).await;
            net.start_node(2).await;
            submit_round(&net, &mut rng, 40);
            settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
            let (_, shards, view) = net.follower.as_ref().unwrap();
            for s in 0..SHARDS {
                let (app, reference) =
                    api_node_holds_the_validators_state(&net, &users, ShardId(s)).await;
                let canon = reference.recent_finalized();
                for (h, info) in app.recent_finalized() {
                    if let Some(c) = canon.get(&h) {
                        assert_eq!(
                            (c.hash, c.state_root),
                            (info.hash, info.state_root),
                            "shard {s} at {h}"
                        );
                    }
                }
                assert_eq!(
                    app.pending(usize::MAX).len(),
                    0,
                    "shard {s}: nothing left pending"
                );
            }
            assert!(view.beacon_height() > 0, "the API node follows the beacon");
            // Every transaction of the first round is still found after the API node's
            // restart; those finalized before the crash only through its durable index.
            let mut from_index = 0;
            for (shard, id) in &ids[..first_round] {
                let app = &shards[shard];
                let rec = app.find_tx(id).await;
                assert!(
                    rec.as_ref().is_some_and(|r| r.outcome.tx_id == *id),
                    "seed {seed}: tx {id} of shard {} unknown after the API node restarted",
                    shard.0
                );
                from_index += usize::from(app.tx_record(id).is_none());
            }
            assert!(
                from_index > 0,
                "seed {seed}: every first-round tx finalized after the API node's restart"
            );
            eprintln!(
                "api_node seed {seed}: {from_index} of {first_round} first-round transactions \
                 found only in the durable index after the restart"
            );
        });
    }
}

/// Followers that fall behind the validators' in-memory windows (`served_blocks`, here 16
/// blocks per chain) catch up from the validators' archives: a non-beacon validator of shard 1
/// crashes and restarts long after (its beacon view starts again at genesis), and the API node
/// starts only late, so every block it needs is older than any window. Both catch up (the
/// validator takes part in its shard again, the API node holds the validators' state of every
/// shard), with 2 % loss, and every usual invariant holds.
#[test]
fn late_followers_catch_up_from_the_archives() {
    for seed in seeds(330, 2) {
        eprintln!("late_followers: seed {seed}");
        runner(seed).start(|ctx| async move {
            const WINDOW: usize = 16;
            const LATE: usize = 5; // shard 1, not a beacon member
            let users = users(6);
            let mut spec = network_spec(&users, ShardConfig::default());
            spec.served_blocks = WINDOW;
            let mut net = SimNet::start(&ctx, spec, 98).await;
            let mut rng = Rng(seed);
            let mut nonces: BTreeMap<usize, u64> = BTreeMap::new();
            let mut log = Vec::new();
            random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
            net.crash(LATE).await;
            random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
            // Run until every window has moved well past what the late nodes hold.
            wait_until(
                &ctx,
                "the windows moved on",
                Duration::from_secs(120),
                || {
                    let views = net.views();
                    async move {
                        views.iter().all(|v| {
                            v.beacon
                                .recent_blocks()
                                .first()
                                .is_some_and(|(h, _)| *h > 40)
                                && v.shard.finalized_height() > 3 * WINDOW as u64
                        })
                    }
                },
            )
            .await;
            for v in net.views() {
                assert!(
                    v.shard.segment_from(1, 64, usize::MAX).is_none(),
                    "shard {}: height 1 still in memory",
                    v.shard.shard().0
                );
            }
            net.start_node(LATE).await;
            net.start_follower().await;
            random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
            settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
            let late = net.nodes[LATE].as_ref().expect("running").1.clone();
            let beacon_now = net.views()[0].beacon.beacon_height();
            assert!(
                late.beacon.beacon_height() + 20 >= beacon_now,
                "seed {seed}: restarted validator's beacon view at {} of {beacon_now}",
                late.beacon.beacon_height()
            );
            let (_, _, view) = net.follower.as_ref().expect("follower");
            for s in 0..SHARDS {
                api_node_holds_the_validators_state(&net, &users, ShardId(s)).await;
            }
            assert!(
                view.beacon_height() + 20 >= beacon_now,
                "seed {seed}: API node's beacon view at {} of {beacon_now}",
                view.beacon_height()
            );
            eprintln!(
                "late_followers seed {seed}: {} transfers; beacon at {beacon_now}; restarted \
                 validator and API node caught up from the archives",
                log.len()
            );
        });
    }
}

/// Waits (up to 120 s simulated) until the API node's application of `shard` reached the
/// height the shard's first running replica has now, then checks that it holds the same
/// balances and nonces and a balanced supply. Returns the API node's application and the
/// replica's.
async fn api_node_holds_the_validators_state(
    net: &SimNet,
    users: &[User],
    shard: ShardId,
) -> (ShardApp<Ctx>, ShardApp<Ctx>) {
    let (_, shards, _) = net.follower.as_ref().expect("the API node runs");
    let reference = net.replicas(shard)[0].shard.clone();
    let target = reference.committed_height().await;
    let app = shards[&shard].clone();
    wait_until(
        &net.ctx,
        "the API node caught up",
        Duration::from_secs(120),
        || {
            let app = app.clone();
            async move { app.committed_height().await >= target }
        },
    )
    .await;
    let mine = snapshot(&app, users).await;
    let theirs = snapshot(&reference, users).await;
    let s = shard.0;
    assert_eq!(mine.balances, theirs.balances, "shard {s}: balances");
    assert_eq!(mine.nonces, theirs.nonces, "shard {s}: nonces");
    assert!(mine.supply.balanced(), "shard {s}: {:?}", mine.supply);
    (app, reference)
}

/// A transaction a client submits to one validator (into its pool and its relay's outbox, as
/// the validator's HTTP API does) reaches the rest of its committee at the next relay tick: it
/// is finalized although that validator crashes right after, before its turn to propose.
#[test]
fn a_transaction_submitted_to_one_validator_reaches_its_committee() {
    for seed in seeds(60, 2) {
        eprintln!("submitted to one validator: seed {seed}");
        runner(seed).start(|ctx| async move {
            let users = users(2);
            let spec = network_spec(&users, ShardConfig::default());
            let mut net = SimNet::start(&ctx, spec, 100).await;
            let from = &users[0];
            let to = users
                .iter()
                .find(|u| u.shard == from.shard && u.id != from.id)
                .expect("two users per shard");
            let i = (0..VALIDATORS)
                .find(|i| shard_of_validator(*i) == from.shard)
                .expect("a validator of the shard");
            // Let the shard finalize a few blocks first.
            let probe = net.replicas(from.shard)[0].shard.clone();
            wait_until(&ctx, "the shard to start", Duration::from_secs(60), || {
                let probe = probe.clone();
                async move { probe.finalized_height() >= 3 }
            })
            .await;
            let tx = transfer(from, 0, &to.id, 5, 0);
            let id = tx.id();
            let v = net.nodes[i].as_ref().expect("running").1.clone();
            v.shard.submit(tx.clone()).expect("admitted");
            v.tx_outbox.push([tx]);
            // Two relay ticks: sent to the committee, not yet proposed by everyone in turn.
            ctx.sleep(Duration::from_millis(250)).await;
            net.crash(i).await;
            let others: Vec<ShardApp<Ctx>> = net
                .replicas(from.shard)
                .iter()
                .map(|r| r.shard.clone())
                .collect();
            assert_eq!(others.len(), PER_SHARD - 1);
            wait_until(
                &ctx,
                "the transaction finalized by the rest of the committee",
                Duration::from_secs(60),
                || {
                    let others = others.clone();
                    async move { others.iter().all(|o| o.tx_record(&id).is_some()) }
                },
            )
            .await;
            assert!(v.tx_outbox.is_empty(), "the outbox was sent");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Byzantine validators.

/// Starts validator `i` as a Byzantine node: on its shard's vote channel it runs commonware's
/// `Conflicter` (equivocating notarize/finalize votes for random payloads), and on the relay
/// channel it forges: crosslinks with bad certificates, tampered receipt batches (as answers
/// to honest requests and unsolicited), beacon segments with tampered bodies or
/// certificates, and garbage bytes.
async fn start_byzantine(
    net: &SimNet,
    i: usize,
    honest: Vec<NodeView>,
    forged: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Handle<()> {
    use crate::{
        NetMux, Scoped,
        certificate::Scheme,
        keys::{committee_set, to_cw_private_key},
        relay::RelayMsg,
    };
    use commonware_codec::{DecodeExt, Encode};
    use commonware_consensus::simplex::mocks::conflicter;
    use commonware_cryptography::Sha256;
    use commonware_p2p::{Receiver as _, Recipients, Sender as _};
    use std::sync::Arc;
    use vision_types::block::ChainRef;

    let key = validator_key(i);
    let pk = key.public_key();
    let base = base_channels_of(&net.oracle, &pk).await;
    let control = net.oracle.control(to_cw_public_key(&pk).unwrap());
    let (mut relay_tx, mut relay_rx) = control
        .register(RELAY, relay_channel_quota())
        .await
        .unwrap();
    let shard = shard_of_validator(i);
    let chain = ChainRef::Shard(shard);
    let members = net.spec.shard_committees[&shard].clone();
    let scheme = Scheme::signer(
        &crate::namespace(&net_id(), chain, 0),
        committee_set(&members).unwrap(),
        to_cw_private_key(&key),
    )
    .unwrap();
    let everyone: Vec<ed25519::PublicKey> = (0..VALIDATORS)
        .filter(|j| *j != i)
        .map(|j| to_cw_public_key(&validator_key(j).public_key()).unwrap())
        .collect();
    let beacon_members: Vec<ed25519::PublicKey> = net
        .spec
        .beacon_committee
        .iter()
        .map(|k| to_cw_public_key(k).unwrap())
        .collect();
    let to = Arc::new(
        members
            .iter()
            .map(|k| to_cw_public_key(k).unwrap())
            .collect::<Vec<_>>(),
    );
    net.ctx
        .child("byzantine")
        .with_attribute("index", i)
        .spawn(move |ctx| async move {
            let mut mux = NetMux::start(ctx.child("mux"), base);
            let channels = mux.register(chain, 0).await.unwrap();
            let (v_tx, v_rx) = channels.votes;
            conflicter::Conflicter::<_, Scheme, Sha256>::new(
                ctx.child("conflicter"),
                conflicter::Config { scheme },
            )
            .start((Scoped::new(v_tx, to), v_rx));
            // A real batch (from an honest source replica) with one receipt amount changed.
            let forged_batch = |round: usize| {
                for v in honest
                    .iter()
                    .cycle()
                    .skip(round % honest.len())
                    .take(honest.len())
                {
                    for f in v.beacon.since(0).iter().rev() {
                        let cl = &f.crosslink;
                        let Some(src) = cl.shard() else { continue };
                        let Some(d) = cl.destinations.first() else {
                            continue;
                        };
                        let source = honest.iter().find(|h| h.shard.shard() == src)?;
                        let mut b = source.shard.incoming_batch(cl.header.height, d.dst)?;
                        if round.is_multiple_of(2) {
                            b.receipts[0].amount = Amount(b.receipts[0].amount.0 + 1);
                        } else if let Some(s) = b.proof.siblings.first_mut() {
                            *s = Hash::sha256(b"forged sibling");
                        } else {
                            b.receipts[0].amount = Amount(b.receipts[0].amount.0 + 7);
                        }
                        return Some(b);
                    }
                }
                None
            };
            let mut round = 0usize;
            loop {
                round += 1;
                // Answer requests with forgeries.
                let next = ctx.sleep(Duration::from_millis(200));
                futures::pin_mut!(next);
                loop {
                    let recv = relay_rx.recv();
                    futures::pin_mut!(recv);
                    match futures::future::select(recv, next.as_mut()).await {
                        futures::future::Either::Left((Ok((from, buf)), _)) => {
                            if let Ok(RelayMsg::GetReceipts { .. }) = RelayMsg::decode(buf)
                                && let Some(b) = forged_batch(round)
                            {
                                forged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let _ = relay_tx.send(
                                    Recipients::One(from),
                                    RelayMsg::Receipts(b).encode(),
                                    false,
                                );
                            }
                        }
                        futures::future::Either::Left((Err(_), _)) => return,
                        futures::future::Either::Right(_) => break,
                    }
                }
                let v = &honest[round % honest.len()];
                // Unsolicited forged receipts to everyone.
                if let Some(b) = forged_batch(round) {
                    forged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = relay_tx.send(
                        Recipients::Some(everyone.clone()),
                        RelayMsg::Receipts(b).encode(),
                        false,
                    );
                }
                // A crosslink for a height its shard never certified.
                if let Some(f) = v.beacon.since(0).last() {
                    let mut cl = f.crosslink.clone();
                    cl.header.height += 1;
                    cl.header.parent = Hash::sha256(b"fork");
                    let _ = relay_tx.send(
                        Recipients::Some(beacon_members.clone()),
                        RelayMsg::Crosslinks(vec![cl]).encode(),
                        false,
                    );
                }
                // Beacon segments: body swapped, or certificate corrupted.
                let from = v.beacon.beacon_height().saturating_sub(5).max(1);
                if let Some((mut blocks, mut certificate)) =
                    v.beacon.segment_from(from, 64, 1 << 20)
                {
                    forged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if round.is_multiple_of(2) {
                        // Same header (so the certificate still matches), another body.
                        let last = blocks.len() - 1;
                        match v.beacon.since(0).last() {
                            Some(f) => blocks[last].crosslinks.push(f.crosslink.clone()),
                            None => blocks[last].crosslinks.clear(),
                        }
                    } else {
                        let n = certificate.len() - 1;
                        certificate[n] ^= 1;
                    }
                    let _ = relay_tx.send(
                        Recipients::Some(everyone.clone()),
                        RelayMsg::Beacon {
                            blocks,
                            certificate,
                        }
                        .encode(),
                        false,
                    );
                }
                // Garbage.
                let _ = relay_tx.send(
                    Recipients::Some(everyone.clone()),
                    vec![0xFFu8, 1, 2, 3],
                    false,
                );
            }
        })
}

/// Cuts every link between `i` and the other validators (both directions).
async fn isolate(net: &SimNet, i: usize) {
    let a = to_cw_public_key(&validator_key(i).public_key()).unwrap();
    for j in (0..VALIDATORS).filter(|j| *j != i) {
        let b = to_cw_public_key(&validator_key(j).public_key()).unwrap();
        let _ = net.oracle.remove_link(a.clone(), b.clone()).await;
        let _ = net.oracle.remove_link(b, a.clone()).await;
    }
}

/// Restores every link of `i`.
async fn heal(net: &SimNet, i: usize, success_pct: u64) {
    let a = to_cw_public_key(&validator_key(i).public_key()).unwrap();
    for j in (0..VALIDATORS).filter(|j| *j != i) {
        let b = to_cw_public_key(&validator_key(j).public_key()).unwrap();
        let _ = net
            .oracle
            .add_link(a.clone(), b.clone(), link(success_pct))
            .await;
        let _ = net.oracle.add_link(b, a.clone(), link(success_pct)).await;
    }
}

/// One Byzantine validator in every shard committee (equivocating votes, forged crosslinks,
/// receipts, proofs and beacon segments), 3 % message loss, and a partition that isolates an
/// honest validator of every shard (halting those shards) and heals: every transfer still
/// applies exactly once, replicas agree, supply is conserved, nothing forged is accepted.
#[test]
fn byzantine_validators_and_partitions() {
    for seed in seeds(101, 4) {
        eprintln!("byzantine_network: seed {seed}");
        let started = Instant::now();
        runner(seed).start(|ctx| async move {
            const PCT: u64 = 97;
            let users = users(6);
            let spec = network_spec(&users, ShardConfig::default());
            let byzantine: Vec<usize> = (0..SHARDS as usize).map(|s| s * PER_SHARD + 3).collect();
            let net = SimNet::start_except(&ctx, spec, PCT, &byzantine).await;
            let honest: Vec<NodeView> = net.views().into_iter().cloned().collect();
            let forged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut byz = Vec::new();
            for &i in &byzantine {
                byz.push(start_byzantine(&net, i, honest.clone(), forged.clone()).await);
            }
            let mut rng = Rng(seed);
            let mut nonces = BTreeMap::new();
            let mut log = Vec::new();
            random_transfers(&net, &users, &mut rng, &mut nonces, 50, &mut log).await;
            ctx.sleep(Duration::from_secs(8)).await;
            // Partition validator 4s+1 of every shard away: with the Byzantine member, each
            // shard has only 2 of 4 honest validators connected and must stop finalizing.
            let cut: Vec<usize> = (0..SHARDS as usize).map(|s| s * PER_SHARD + 1).collect();
            for &i in &cut {
                isolate(&net, i).await;
            }
            ctx.sleep(Duration::from_secs(3)).await;
            let before: Vec<u64> = honest_heights(&net).await;
            random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
            ctx.sleep(Duration::from_secs(5)).await;
            let during: Vec<u64> = honest_heights(&net).await;
            for (s, (b, d)) in before.iter().zip(&during).enumerate() {
                assert!(
                    d <= &(b + 1),
                    "shard {s} finalized without a quorum: {b} -> {d}"
                );
            }
            for &i in &cut {
                heal(&net, i, PCT).await;
            }
            random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
            let height = settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
            // Their conflicting votes reached the beacon as evidence: recorded against the
            // Byzantine members whose conflicting votes an honest validator saw before
            // blocking them (a member blocked first for its forged relay messages may never
            // be caught equivocating), with score 0; never against an honest one.
            let equivocations = |i: usize| {
                net.views()[0].beacon.with_view(|v| {
                    v.and_then(|v| v.reputation(&validator_key(i).public_key()).copied())
                        .map_or((0, 0), |r| (r.equivocations, r.score().ppm()))
                })
            };
            wait_until(
                &ctx,
                "equivocation evidence recorded",
                Duration::from_secs(60),
                || {
                    let any = byzantine.iter().any(|&i| equivocations(i).0 > 0);
                    async move { any }
                },
            )
            .await;
            for i in 0..VALIDATORS {
                let (count, score) = equivocations(i);
                if !byzantine.contains(&i) {
                    assert_eq!(count, 0, "seed {seed}: honest validator {i} has evidence");
                } else if count > 0 {
                    assert_eq!(
                        score, 0,
                        "seed {seed}: Byzantine validator {i} scores {score}"
                    );
                }
            }
            let recorded: Vec<u64> = byzantine.iter().map(|&i| equivocations(i).0).collect();
            let forged = forged.load(std::sync::atomic::Ordering::Relaxed);
            assert!(forged > 0, "the Byzantine relays never forged anything");
            assert!(
                net.oracle.blocked().await.unwrap().iter().all(|(_, b)| {
                    byzantine
                        .iter()
                        .any(|i| to_cw_public_key(&validator_key(*i).public_key()).unwrap() == *b)
                }),
                "only Byzantine validators may be blocked"
            );
            eprintln!(
                "byzantine_network seed {seed}: {} transfers settled; {forged} forgeries refused; \
                 equivocations recorded {recorded:?}; heights during the partition {before:?} \
                 -> {during:?}; shard heights >= {height}; {:.1}s wall",
                log.len(),
                started.elapsed().as_secs_f64()
            );
            drop(byz);
        });
    }
}

/// Highest committed height of each shard over its running replicas.
async fn honest_heights(net: &SimNet) -> Vec<u64> {
    let mut out = Vec::new();
    for s in 0..SHARDS {
        let mut h = 0;
        for r in net.replicas(ShardId(s)) {
            h = h.max(r.shard.committed_height().await);
        }
        out.push(h);
    }
    out
}

/// Crashing 2 of shard 1's 4 validators (more than f = 1) stops shard 1's finality without
/// any safety violation while the other shards and the beacon go on; when they return, shard
/// 1 resumes and every transfer (including those to and from shard 1) settles exactly once.
#[test]
fn shard_halts_without_quorum_and_resumes() {
    let seed = 5u64;
    eprintln!("halt_resume: seed {seed}");
    runner(seed).start(|ctx| async move {
        let users = users(6);
        let spec = network_spec(&users, ShardConfig::default());
        let mut net = SimNet::start(&ctx, spec, 100).await;
        let mut rng = Rng(seed);
        let mut nonces = BTreeMap::new();
        let mut log = Vec::new();
        random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
        ctx.sleep(Duration::from_secs(5)).await;
        for i in [5, 6] {
            net.crash(i).await;
        }
        ctx.sleep(Duration::from_secs(2)).await;
        let before = honest_heights(&net).await;
        let beacon_before = net.views()[0].beacon.beacon_height();
        random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
        ctx.sleep(Duration::from_secs(10)).await;
        let during = honest_heights(&net).await;
        let beacon_during = net.views()[0].beacon.beacon_height();
        assert!(before[1] > 0, "shard 1 never finalized before the crash");
        assert_eq!(
            during[1], before[1],
            "shard 1 finalized with 2 of 4 validators"
        );
        for s in [0, 2, 3] {
            assert!(
                during[s] >= before[s] + 5,
                "shard {s} stalled: {before:?} -> {during:?}"
            );
        }
        assert!(beacon_during >= beacon_before + 5, "beacon stalled");
        assert_no_conflicting_finality(&net);
        for i in [5, 6] {
            net.start_node(i).await;
        }
        let height = settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
        eprintln!(
            "halt_resume seed {seed}: shard heights {before:?} -> {during:?} while halted; \
             all {} transfers settled, heights >= {height}",
            log.len()
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Batching rules, end to end.

/// The crosslink (as finalized on the beacon) whose batch contains `tx`.
fn crosslink_of(net: &SimNet, tx: &Hash) -> Option<vision_types::Crosslink> {
    net.views()[0]
        .beacon
        .since(0)
        .into_iter()
        .map(|f| f.crosslink)
        .find(|c| c.batched_txs.contains(tx))
}

/// Submits `tx` (signed by `from`) and waits until its batch is crosslinked on the beacon;
/// returns (height that included it, its crosslink). Submitting again is harmless.
async fn include_and_crosslink(
    net: &SimNet,
    from: &User,
    tx: &SignedTransaction,
) -> (u64, vision_types::Crosslink) {
    net.submit(from.shard, tx);
    let id = tx.id();
    let cl = wait_for_crosslink(net, &id).await;
    let app = &net.replicas(from.shard)[0].shard;
    let included = app.tx_record(&id).expect("included").height;
    (included, cl)
}

fn flush(from: &User, nonce: u64) -> SignedTransaction {
    Transaction {
        chain_id: net_id(),
        signer: from.id.clone(),
        nonce,
        fee: Amount(FEE),
        action: Action::Flush { shard: from.shard },
    }
    .sign(&from.key)
}

/// Each batching rule closes the batch exactly when it promises, observed on the beacon:
/// priority 255 closes in the including block; `batch_size` receipts close the batch; a
/// flush closes it in the flush's block; the timeout closes it at the first block at least
/// `batch_timeout_ms` after the first receipt; with async crosslinks off every block with
/// receipts closes its batch.
#[test]
fn batching_rules_produce_promised_crosslinks() {
    let seed = 6u64;
    eprintln!("batching_rules: seed {seed}");
    // Run 1: only size, priority and flush can close (timeout and frequency far away).
    runner(seed).start(|ctx| async move {
        let users = users(2);
        let config = size_closes_only(3);
        let net = SimNet::start(&ctx, network_spec(&users, config), 100).await;
        let (a, b) = (&users[0], &users[2]); // shard 0 → shard 1
        assert_ne!(a.shard, b.shard);
        // Priority 255: crosslinked at the including height.
        let (h, cl) = include_and_crosslink(&net, a, &transfer(a, 0, &b.id, 5, 255)).await;
        assert_eq!(cl.header.height, h, "priority 255 closes in its block");
        assert_eq!(cl.batched_txs.len(), 1);
        // Size: three receipts close the batch; none closes it before.
        let txs: Vec<SignedTransaction> = (1..4).map(|n| transfer(a, n, &b.id, 5, 0)).collect();
        for tx in &txs[..2] {
            net.submit(a.shard, tx);
        }
        let (h3, cl) = include_and_crosslink(&net, a, &txs[2]).await;
        assert_eq!(cl.header.height, h3, "the third receipt fills the batch");
        assert_eq!(cl.destinations[0].count, 3);
        for tx in &txs {
            assert!(cl.batched_txs.contains(&tx.id()));
        }
        // Flush: a lone receipt waits until the flush's block.
        let lone = transfer(a, 4, &b.id, 5, 0);
        net.submit(a.shard, &lone);
        ctx.sleep(Duration::from_secs(3)).await;
        assert!(
            crosslink_of(&net, &lone.id()).is_none(),
            "closed without a rule"
        );
        let fl = flush(a, 5);
        net.submit(a.shard, &fl);
        let (_, cl) = include_and_crosslink(&net, a, &lone).await;
        let app = &net.replicas(a.shard)[0].shard;
        let flush_height = app.tx_record(&fl.id()).unwrap().height;
        assert_eq!(cl.header.height, flush_height, "flush closes in its block");
        assert!(cl.batched_txs.contains(&lone.id()));
        eprintln!("batching_rules seed {seed}: priority, size and flush rules held");
    });
    // Run 2: timeout (and the default frequency).
    runner(seed + 1).start(|ctx| async move {
        let users = users(2);
        let config = ShardConfig {
            batch_timeout_ms: 1_500,
            crosslink_frequency: 10_000,
            ..ShardConfig::default()
        };
        let net = SimNet::start(&ctx, network_spec(&users, config), 100).await;
        let (a, b) = (&users[0], &users[2]);
        let (h, cl) = include_and_crosslink(&net, a, &transfer(a, 0, &b.id, 5, 0)).await;
        let recent = net.replicas(a.shard)[0].shard.recent_finalized();
        let t0 = recent[&h].timestamp_ms;
        let closed = cl.header.height;
        assert!(
            recent[&closed].timestamp_ms >= t0 + 1_500,
            "closed before the timeout"
        );
        for between in h..closed {
            assert!(
                recent[&between].timestamp_ms < t0 + 1_500,
                "a block past the timeout did not close the batch"
            );
        }
        eprintln!(
            "batching_rules seed {}: timeout closed at height {closed} (receipt at {h})",
            seed + 1
        );
    });
    // Run 3: async crosslinks off: every block with receipts closes its batch.
    runner(seed + 2).start(|ctx| async move {
        let users = users(2);
        let config = ShardConfig {
            async_crosslinks_enabled: false,
            batch_timeout_ms: 60_000,
            crosslink_frequency: 10_000,
            ..ShardConfig::default()
        };
        let net = SimNet::start(&ctx, network_spec(&users, config), 100).await;
        let (a, b) = (&users[0], &users[2]);
        for n in 0..3 {
            let (h, cl) = include_and_crosslink(&net, a, &transfer(a, n, &b.id, 5, 0)).await;
            assert_eq!(
                cl.header.height, h,
                "async off: crosslink in the including block"
            );
        }
        eprintln!("batching_rules seed {}: async-off rule held", seed + 2);
    });
}

/// A beacon member (validator 4: shard 1's coordinator) crashes and restarts: its beacon
/// state is rebuilt by replaying finalized beacon blocks from the engine's archive, it
/// rejoins both chains, and every transfer still settles exactly once.
#[test]
fn beacon_member_restarts_from_its_archive() {
    let seed = 9u64;
    eprintln!("beacon_restart: seed {seed}");
    runner(seed).start(|ctx| async move {
        let users = users(6);
        let spec = network_spec(&users, ShardConfig::default());
        let mut net = SimNet::start(&ctx, spec, 98).await;
        let mut rng = Rng(seed);
        let mut nonces = BTreeMap::new();
        let mut log = Vec::new();
        random_transfers(&net, &users, &mut rng, &mut nonces, 40, &mut log).await;
        ctx.sleep(Duration::from_secs(5)).await;
        net.crash(4).await;
        random_transfers(&net, &users, &mut rng, &mut nonces, 40, &mut log).await;
        ctx.sleep(Duration::from_secs(3)).await;
        let beacon_before = net.views()[0].beacon.beacon_height();
        assert!(beacon_before > 0);
        net.start_node(4).await;
        random_transfers(&net, &users, &mut rng, &mut nonces, 40, &mut log).await;
        let height = settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
        let restarted = net.nodes[4].as_ref().unwrap().1.beacon.beacon_height();
        assert!(
            restarted >= beacon_before,
            "restarted beacon member at {restarted}, network was at {beacon_before}"
        );
        eprintln!(
            "beacon_restart seed {seed}: restarted member replayed to beacon height \
             {restarted} (network {beacon_before} at restart); {} transfers settled, shard \
             heights >= {height}",
            log.len()
        );
    });
}

/// Beacon heights of the running beacon members (validator `4s`, shard `s`'s coordinator).
fn beacon_member_heights(net: &SimNet) -> Vec<(usize, u64)> {
    (0..SHARDS as usize)
        .map(|s| s * PER_SHARD)
        .filter_map(|i| {
            let (_, v) = net.nodes[i].as_ref()?;
            Some((i, v.beacon.beacon_height()))
        })
        .collect()
}

/// A running 4 × 4 network under load, as the crash-together tests start it.
struct Loaded {
    net: SimNet,
    users: Vec<User>,
    /// Link delivery, in percent.
    success: u64,
    rng: Rng,
    nonces: BTreeMap<usize, u64>,
    log: Vec<(usize, usize, u128)>,
}

/// Starts the network with 0 % (even seeds) or 2 % (odd seeds) loss, submits 30 random
/// transfers and lets 2–3 s of simulated time pass, so that what follows lands anywhere within
/// a few views (about 100 ms each) depending on the seed.
async fn start_loaded(ctx: &Ctx, seed: u64) -> Loaded {
    let users = users(6);
    let spec = network_spec(&users, ShardConfig::default());
    let success = if seed.is_multiple_of(2) { 100 } else { 98 };
    let net = SimNet::start(ctx, spec, success).await;
    let mut rng = Rng(seed);
    let mut nonces = BTreeMap::new();
    let mut log = Vec::new();
    random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
    ctx.sleep(Duration::from_millis(2_000 + rng.below(1_000)))
        .await;
    Loaded {
        net,
        users,
        success,
        rng,
        nonces,
        log,
    }
}

/// Two of the four beacon members (more than f = 1) crash at the same instant and both come
/// back about a second later, at a point in the beacon's view cycle that varies by seed: the
/// beacon stops finalizing while they are down (beyond votes already on the wire), then every
/// member (the restarted ones included) finalizes new beacon blocks again, and every transfer
/// settles exactly once.
#[test]
fn beacon_resumes_after_two_members_crash_together() {
    for seed in seeds(70, 12) {
        eprintln!("beacon_two_crash: seed {seed}");
        let started = Instant::now();
        runner(seed).start(|ctx| async move {
            let Loaded {
                mut net,
                users,
                success,
                mut rng,
                mut nonces,
                mut log,
            } = start_loaded(&ctx, seed).await;
            let first = rng.below(SHARDS as u64) as usize;
            let second = (first + 1 + rng.below(SHARDS as u64 - 1) as usize) % SHARDS as usize;
            let crashed = [first * PER_SHARD, second * PER_SHARD];
            for &i in &crashed {
                net.crash(i).await;
            }
            let at_crash = beacon_member_heights(&net);
            ctx.sleep(Duration::from_millis(800 + rng.below(400))).await;
            for &i in &crashed {
                net.start_node(i).await;
            }
            let restarted_at = beacon_member_heights(&net);
            let top = restarted_at.iter().map(|(_, h)| *h).max().unwrap();
            // Without a quorum only votes already on the wire before the crash finalize.
            let crash_top = at_crash.iter().map(|(_, h)| *h).max().unwrap();
            assert!(
                top <= crash_top + 2,
                "beacon finalized with 2 of 4 members down: {at_crash:?} -> {restarted_at:?}"
            );
            random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
            wait_until(
                &ctx,
                "every beacon member finalizing again",
                Duration::from_secs(60),
                || {
                    let resumed = beacon_member_heights(&net)
                        .iter()
                        .all(|(_, h)| *h >= top + 10);
                    async move { resumed }
                },
            )
            .await;
            let height = settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
            eprintln!(
                "beacon_two_crash seed {seed}: crashed {crashed:?} (loss {}%); beacon heights \
                 {at_crash:?} at the crash, {restarted_at:?} at the restart, {:?} at the end; {} \
                 transfers settled, shard heights >= {height}; {:.1}s wall",
                100 - success,
                beacon_member_heights(&net),
                log.len(),
                started.elapsed().as_secs_f64()
            );
        });
    }
}

/// Committed shard height of each running validator of `shard`.
async fn shard_replica_heights(net: &SimNet, shard: ShardId) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    for (i, n) in net.nodes.iter().enumerate() {
        if shard_of_validator(i) != shard {
            continue;
        }
        if let Some((_, v)) = n {
            out.push((i, v.shard.committed_height().await));
        }
    }
    out
}

/// Two of a shard's four validators (more than f = 1) crash at the same instant and come back
/// about a second later, at a point of the shard's view cycle that varies by seed. Blocks the
/// crashed replicas verified (or only certified) before the crash are unknown to them after
/// the restart; they re-execute them from the committed state (`state_after` / `adopt`), so
/// the shard does not wait forever for a finalization that needs their votes. Every replica
/// (the restarted ones included) finalizes new blocks again, and every transfer settles
/// exactly once.
#[test]
fn shard_resumes_after_two_validators_crash_together() {
    for seed in seeds(124, 5) {
        eprintln!("shard_two_crash: seed {seed}");
        let started = Instant::now();
        runner(seed).start(|ctx| async move {
            let Loaded {
                mut net,
                users,
                success,
                mut rng,
                mut nonces,
                mut log,
            } = start_loaded(&ctx, seed).await;
            let shard = ShardId(rng.below(SHARDS as u64) as u32);
            let base = shard.0 as usize * PER_SHARD;
            let first = rng.below(PER_SHARD as u64) as usize;
            let second = (first + 1 + rng.below(PER_SHARD as u64 - 1) as usize) % PER_SHARD;
            let crashed = [base + first, base + second];
            for &i in &crashed {
                net.crash(i).await;
            }
            let at_crash = shard_replica_heights(&net, shard).await;
            ctx.sleep(Duration::from_millis(800 + rng.below(400))).await;
            let before_restart = shard_replica_heights(&net, shard).await;
            let crash_top = at_crash.iter().map(|(_, h)| *h).max().unwrap();
            let top = before_restart.iter().map(|(_, h)| *h).max().unwrap();
            // Without a quorum only votes already on the wire before the crash finalize.
            assert!(
                top <= crash_top + 2,
                "shard {} finalized with 2 of 4 validators down: {at_crash:?} -> \
                 {before_restart:?}",
                shard.0
            );
            for &i in &crashed {
                net.start_node(i).await;
            }
            random_transfers(&net, &users, &mut rng, &mut nonces, 30, &mut log).await;
            let mut resumed = Vec::new();
            for _ in 0..600 {
                resumed = shard_replica_heights(&net, shard).await;
                if resumed.len() == PER_SHARD && resumed.iter().all(|(_, h)| *h >= top + 10) {
                    break;
                }
                ctx.sleep(Duration::from_millis(100)).await;
            }
            assert!(
                resumed.iter().all(|(_, h)| *h >= top + 10),
                "shard {} did not resume within 60 s after the restart (seed {seed}): \
                 {at_crash:?} at the crash, {resumed:?} now",
                shard.0
            );
            let height = settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
            eprintln!(
                "shard_two_crash seed {seed}: shard {} crashed {crashed:?} (loss {}%); heights \
                 {at_crash:?} at the crash, {resumed:?} after resuming; {} transfers settled, \
                 shard heights >= {height}; {:.1}s wall",
                shard.0,
                100 - success,
                log.len(),
                started.elapsed().as_secs_f64()
            );
        });
    }
}

/// A configuration change signed by the authority and handed to a validator that is not a
/// beacon member travels by relay to the beacon committee, is finalized once, and takes
/// effect on every replica of every shard at the stated beacon height: here async crosslinks
/// are switched off, so the first shard-0 block stamped at or above the effective height
/// closes the batch that size and timeout kept open; then they are switched back on. A change
/// signed by another key is never applied. Replicas agree throughout.
#[test]
fn config_change_through_the_beacon_takes_effect_at_the_stated_height() {
    for seed in seeds(60, 2) {
        eprintln!("config_change: seed {seed}");
        runner(seed).start(|ctx| async move {
            let users = users(2);
            let config = size_closes_only(3);
            let spec = network_spec(&users, config.clone());
            let net = SimNet::start(&ctx, spec, 95).await;
            let (a, b) = (&users[0], &users[2]); // shard 0 → shard 1
            assert_ne!(a.shard, b.shard);
            let lone = transfer(a, 0, &b.id, 5, 0);
            net.submit(a.shard, &lone);
            wait_included(&net, a.shard, &lone.id()).await;
            ctx.sleep(Duration::from_secs(3)).await;
            assert!(
                crosslink_of(&net, &lone.id()).is_none(),
                "batch closed early"
            );

            // A change signed by someone else goes nowhere.
            let sender = &net.nodes[1].as_ref().expect("running").1; // shard 0, not beacon
            let rogue = ShardConfig {
                batch_size: 1,
                ..config.clone()
            };
            sender
                .config_outbox
                .set(ConfigChange::sign(&net_id(), 1, rogue, &validator_key(1)));
            ctx.sleep(Duration::from_secs(5)).await;
            for v in net.views() {
                assert_eq!(v.beacon.with_view(|s| s.unwrap().latest_config().seq), 0);
            }

            // The authority's change: async crosslinks off.
            let off = ShardConfig {
                async_crosslinks_enabled: false,
                ..config.clone()
            };
            sender.config_outbox.set(ConfigChange::sign(
                &net_id(),
                1,
                off.clone(),
                &authority_key(),
            ));
            let effective = wait_for_config(&net, 1).await;
            let closed = wait_for_crosslink(&net, &lone.id()).await;
            let recent = net.replicas(a.shard)[0].shard.recent_finalized();
            assert!(
                recent[&closed.header.height].beacon_height >= effective,
                "closed before the effective height"
            );
            for (h, info) in recent.range(..closed.header.height) {
                assert!(
                    info.beacon_height < effective,
                    "block {h} stamped at beacon {} (≥ {effective}) kept the batch open",
                    info.beacon_height
                );
            }
            for v in net.views() {
                v.beacon.with_view(|s| {
                    let s = s.unwrap();
                    assert_eq!(s.config_at(effective), &off);
                    assert_eq!(s.config_at(effective - 1), &config);
                });
            }
            // From now on a block with receipts closes its batch at once.
            let (h, cl) = include_and_crosslink(&net, a, &transfer(a, 1, &b.id, 5, 0)).await;
            assert_eq!(cl.header.height, h, "async off after the change");

            // Switch back on (seq 2): a lone receipt waits again.
            sender.config_outbox.set(ConfigChange::sign(
                &net_id(),
                2,
                config.clone(),
                &authority_key(),
            ));
            wait_for_config(&net, 2).await;
            let waits = transfer(a, 2, &b.id, 5, 0);
            net.submit(a.shard, &waits);
            wait_included(&net, a.shard, &waits.id()).await;
            ctx.sleep(Duration::from_secs(3)).await;
            assert!(crosslink_of(&net, &waits.id()).is_none(), "async on again");
            assert_no_conflicting_finality(&net);
            for shard in [a.shard, b.shard] {
                let replicas = net.replicas(shard);
                let h = replicas
                    .iter()
                    .map(|r| r.shard.finalized_height())
                    .min()
                    .unwrap();
                let roots: Vec<_> = replicas
                    .iter()
                    .map(|r| r.shard.recent_finalized().get(&h).map(|i| i.state_root))
                    .collect();
                assert!(
                    roots.windows(2).all(|w| w[0] == w[1]),
                    "replicas of {shard} differ"
                );
            }
            eprintln!("config_change seed {seed}: effective at beacon height {effective}");
        });
    }
}

/// Waits until every running validator's beacon view holds configuration change `seq` and
/// has reached its effective height; returns that height.
async fn wait_for_config(net: &SimNet, seq: u64) -> u64 {
    let effective = |v: &NodeView| {
        v.beacon.with_view(|s| {
            s.and_then(|s| {
                s.config_history()
                    .find(|c| c.seq == seq)
                    .map(|c| (c.effective_height, s.height()))
            })
        })
    };
    wait_until(
        &net.ctx,
        "configuration change",
        Duration::from_secs(60),
        || {
            let done = net
                .views()
                .iter()
                .all(|v| effective(v).is_some_and(|(e, h)| h >= e));
            async move { done }
        },
    )
    .await;
    effective(net.views()[0]).unwrap().0
}

/// Waits until the crosslink batching `tx` is on the beacon.
async fn wait_for_crosslink(net: &SimNet, tx: &Hash) -> vision_types::Crosslink {
    wait_until(&net.ctx, "crosslink", Duration::from_secs(120), || {
        let found = crosslink_of(net, tx).is_some();
        async move { found }
    })
    .await;
    crosslink_of(net, tx).unwrap()
}

/// Waits until a replica of `shard` included `tx`.
async fn wait_included(net: &SimNet, shard: ShardId, tx: &Hash) {
    wait_until(&net.ctx, "inclusion", Duration::from_secs(60), || {
        let included = net.replicas(shard)[0].shard.tx_record(tx).is_some();
        async move { included }
    })
    .await;
}

/// A configuration whose batches close only on `batch_size` receipts, priority 255 or a
/// flush (timeout and periodic crosslinks far away).
fn size_closes_only(batch_size: u64) -> ShardConfig {
    ShardConfig {
        batch_size,
        batch_timeout_ms: 60_000,
        crosslink_frequency: 10_000,
        ..ShardConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// PRSM proposals.

fn propose(from: &User, nonce: u64, action: &str, data: &str) -> SignedTransaction {
    proposal_tx(from, nonce, action, data, true)
}

fn proposal_tx(from: &User, nonce: u64, action: &str, data: &str, all: bool) -> SignedTransaction {
    Transaction {
        chain_id: net_id(),
        signer: from.id.clone(),
        nonce,
        fee: Amount(FEE),
        action: Action::Proposal {
            action: action.into(),
            data: data.into(),
            affects_multiple_shards: all,
            coordination_required: all,
        },
    }
    .sign(&from.key)
}

/// Waits until every running replica of the coordinating `shard` holds proposal `id` with a
/// vote from every target and every running validator's beacon view holds the beacon's
/// result; checks that the replicas hold the same record and the beacon views the same
/// result, and returns both.
async fn wait_decided(
    net: &SimNet,
    shard: ShardId,
    id: Hash,
) -> (
    vision_state::ProposalRecord,
    vision_sharding::GlobalProposal,
) {
    let global = |r: &NodeView| {
        r.shard
            .beacon()
            .with_view(|v| v.and_then(|v| v.prsm().get(&id).cloned()))
    };
    let every_replica = || (0..SHARDS).flat_map(|s| net.replicas(ShardId(s)));
    wait_until(
        &net.ctx,
        "proposal decided",
        Duration::from_secs(120),
        || async move {
            for r in net.replicas(shard) {
                match r.shard.with_state(|s| s.proposal(&id)).await {
                    Some(p) if p.votes.len() == p.targets.len() => {}
                    _ => return false,
                }
            }
            every_replica().all(|r| global(r).is_some_and(|g| g.outcome.is_some()))
        },
    )
    .await;
    let reps = net.replicas(shard);
    let first = reps[0].shard.with_state(|s| s.proposal(&id)).await.unwrap();
    for r in &reps[1..] {
        let rec = r.shard.with_state(|s| s.proposal(&id)).await.unwrap();
        assert_eq!(
            rec, first,
            "replicas of shard {shard} disagree on proposal {id}"
        );
    }
    let result = global(reps[0]).unwrap();
    for r in every_replica() {
        assert_eq!(global(r).unwrap(), result, "beacon views disagree on {id}");
    }
    (first, result)
}

/// PRSM proposals through the real network (5 % loss, one validator of a target shard
/// crashed while they travel): the coordinating shard sends each to every shard by receipt,
/// each shard decides it in a finalized block and answers with a vote receipt; submissions
/// and votes reach the beacon as PRSM events in crosslinks, and the beacon applies the 67%
/// rule. A proposal every shard accepts is achieved; one whose signed transaction only its
/// signer's shard can see is overdrawn is achieved with 3 of 4 (that shard rejects it, with
/// the reason, collected by the coordinating shard); one with junk data is rejected. Every
/// replica of every shard agrees on the records and on its own vote, every beacon view on the
/// results.
#[test]
fn prsm_proposals_are_decided_by_the_beacon_from_the_target_shards_votes() {
    for seed in seeds(80, 2) {
        eprintln!("prsm_proposals: seed {seed}");
        runner(seed).start(|ctx| async move {
            let users = users(2);
            let spec = network_spec(&users, ShardConfig::default());
            let mut net = SimNet::start(&ctx, spec, 95).await;
            let (u0, u1) = (&users[0], &users[2]);
            assert_eq!((u0.shard, u1.shard), (ShardId(0), ShardId(1)));
            let overdraw = transfer(&users[4], 0, &u0.id, START_BALANCE * 2, 0);
            assert_eq!(users[4].shard, ShardId(2));
            let proposals = [
                (u0, propose(u0, 0, "cross_shard_operation", "")),
                (
                    u1,
                    propose(
                        u1,
                        0,
                        vision_state::VALIDATE_TRANSACTION,
                        &serde_json::to_string(&overdraw).unwrap(),
                    ),
                ),
                (
                    u0,
                    propose(u0, 1, vision_state::VALIDATE_TRANSACTION, "{junk"),
                ),
            ];
            for (from, tx) in &proposals {
                net.submit(from.shard, tx);
            }
            ctx.sleep(Duration::from_millis(300)).await;
            net.crash(9).await; // shard 2, not its coordinator
            ctx.sleep(Duration::from_secs(3)).await;
            net.start_node(9).await;

            let mut decided = Vec::new();
            for (from, tx) in &proposals {
                decided.push(wait_decided(&net, from.shard, tx.id()).await);
            }
            use vision_sharding::GlobalOutcome::{Achieved, Rejected};
            let all: Vec<ShardId> = (0..SHARDS).map(ShardId).collect();
            for (d, g) in &decided {
                assert_eq!(d.targets, all);
                assert_eq!(g.targets, all);
                assert_eq!(
                    d.status,
                    vision_state::ProposalStatus::Pending,
                    "beacon decides"
                );
                let mut voters: Vec<ShardId> = d.votes.iter().map(|v| v.shard).collect();
                voters.sort();
                assert_eq!(voters, all, "each target voted exactly once");
                // The beacon counted the same decisions the coordinating shard collected.
                for gv in &g.votes {
                    let v = d.votes.iter().find(|v| v.shard == gv.shard).unwrap();
                    assert_eq!((v.accepted, v.height), (gv.accepted, gv.height));
                }
            }
            let heights: Vec<_> = decided.iter().map(|(_, g)| g.decided_height).collect();
            let (outcomes, results): (Vec<_>, Vec<_>) =
                decided.iter().map(|(d, g)| (g.outcome.unwrap(), d)).unzip();
            assert_eq!(outcomes, vec![Achieved, Achieved, Rejected]);
            let decided: Vec<_> = results.into_iter().cloned().collect();
            assert!(decided[0].votes.iter().all(|v| v.accepted));
            for v in &decided[1].votes {
                assert_eq!(v.accepted, v.shard != ShardId(2), "{v:?}");
            }
            let reason = decided[1].votes.iter().find(|v| !v.accepted).unwrap();
            assert!(
                reason
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("insufficient balance"),
                "{reason:?}"
            );
            // Each target recorded its own decision, identically on every replica.
            for (d, (_, tx)) in decided.iter().zip(&proposals) {
                for v in &d.votes {
                    for r in net.replicas(v.shard) {
                        let own = r.shard.with_state(|s| s.proposal_vote(&tx.id())).await;
                        let own = own.expect("the deciding shard records its vote");
                        assert_eq!((own.accepted, own.height), (v.accepted, v.height));
                    }
                }
            }
            for s in 0..SHARDS {
                for r in net.replicas(ShardId(s)) {
                    let supply = r.shard.with_state(|s| Supply::of(s)).await;
                    assert!(supply.balanced(), "shard {s}: {supply:?}");
                }
            }
            assert_no_conflicting_finality(&net);
            eprintln!("prsm_proposals seed {seed}: decided at beacon heights {heights:?}");
        });
    }
}

/// A shard whose pool holds more bytes than one block may carry (300 proposals of 4 KB each,
/// all decided on the proposer's own shard, ≈ 1.2 MiB against the 1 MiB block bound)
/// finalizes them over several blocks instead of proposing a block its peers could not
/// decode.
#[test]
fn a_pool_larger_than_one_block_is_finalized_over_several() {
    use commonware_codec::EncodeSize;
    use vision_state::ProposalTargets;
    let seed = 90u64;
    eprintln!("big_pool: seed {seed}");
    runner(seed).start(|ctx| async move {
        let users = users(2);
        let spec = network_spec(&users, ShardConfig::default());
        let net = SimNet::start(&ctx, spec, 100).await;
        let u = &users[0];
        let targets = crate::shard::PrsmTargets::new(SHARDS as u64, BTreeMap::new()).unwrap();
        let padding = "x".repeat(4_000);
        let mut txs = Vec::new();
        for i in 0.. {
            if txs.len() == 300 {
                break;
            }
            let data = format!("{i}{padding}");
            if targets.proposal_targets("local", &data, false) == vec![u.shard] {
                txs.push(proposal_tx(u, txs.len() as u64, "local", &data, false));
            }
        }
        let bytes: usize = txs.iter().map(EncodeSize::encode_size).sum();
        assert!(bytes > block_cfg().max_bytes, "{bytes} bytes fit one block");
        for tx in &txs {
            net.submit(u.shard, tx);
        }
        wait_until(
            &ctx,
            "every proposal included",
            Duration::from_secs(60),
            || async {
                for r in net.replicas(u.shard) {
                    let nonce = r
                        .shard
                        .with_state(|s| s.account(&u.id).map(|a| a.nonce))
                        .await;
                    if nonce != Some(txs.len() as u64) {
                        return false;
                    }
                }
                true
            },
        )
        .await;
        let r = &net.replicas(u.shard)[0].shard;
        for tx in &txs {
            let p = r.with_state(|s| s.proposal(&tx.id())).await.unwrap();
            assert_eq!(p.status, vision_state::ProposalStatus::Achieved);
        }
        let per_block: Vec<usize> = r
            .recent_finalized()
            .values()
            .map(|b| b.txs)
            .filter(|n| *n > 0)
            .collect();
        eprintln!("big_pool seed {seed}: transactions per block {per_block:?}");
        assert!(per_block.len() >= 2, "one block took {per_block:?}");
        assert_no_conflicting_finality(&net);
    });
}
