//! Deterministic simulation of a whole sharded network: 4 shards × 4 validators, the beacon
//! committee (one coordinator per shard), the relay, random intra- and cross-shard transfers,
//! message loss, crashes and restarts; invariants checked at the end of every run.

use crate::{
    NetworkSpec, RELAY, Timeouts, Validator,
    beacon::FinalizedCrosslinks,
    keys::to_cw_public_key,
    relay::RELAY_MAX_MESSAGE_BYTES,
    relay_channel_quota,
    shard::{ShardApp, ShardBlockCfg, ShardChainBlock, uniform_layout},
    sim::{Ctx, base_channels_of, full_mesh, link},
    start_validator,
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
pub(crate) struct Rng(u64);

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
    let mut seed = [0u8; 32];
    seed[0] = 0x5A;
    seed[8..16].copy_from_slice(&(i as u64).to_be_bytes());
    SecretKey::from_seed(seed)
}

fn user_key(i: u64) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[0] = 0xAB;
    seed[8..16].copy_from_slice(&i.to_be_bytes());
    SecretKey::from_seed(seed)
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
    }
}

pub(crate) fn shard_of_validator(i: usize) -> ShardId {
    ShardId((i / PER_SHARD) as u32)
}

/// What the test reads from a running validator.
#[derive(Clone)]
pub(crate) struct NodeView {
    pub shard: ShardApp<Ctx>,
    pub beacon: FinalizedCrosslinks,
}

/// The simulated network and its validators.
pub(crate) struct SimNet {
    pub ctx: Ctx,
    pub oracle: Oracle<ed25519::PublicKey, Ctx>,
    pub spec: NetworkSpec,
    pub nodes: Vec<Option<(Handle<()>, NodeView)>>,
}

impl SimNet {
    /// Starts the network (links delivering `success_pct` %) and every validator.
    pub(crate) async fn start(ctx: &Ctx, spec: NetworkSpec, success_pct: u64) -> SimNet {
        let peers = (0..VALIDATORS)
            .map(|i| to_cw_public_key(&validator_key(i).public_key()).unwrap())
            .collect();
        let max_size = crate::max_message_bytes::<ShardChainBlock>(PER_SHARD as u32, &block_cfg())
            .max(RELAY_MAX_MESSAGE_BYTES as u32);
        let oracle = full_mesh(ctx, peers, max_size, link(success_pct)).await;
        let mut net = SimNet {
            ctx: ctx.child("net"),
            oracle,
            spec,
            nodes: (0..VALIDATORS).map(|_| None).collect(),
        };
        for i in 0..VALIDATORS {
            net.start_node(i).await;
        }
        net
    }

    /// Starts (or restarts, on the same storage) validator `i`.
    pub(crate) async fn start_node(&mut self, i: usize) {
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
                let v: Validator<Ctx> =
                    start_validator(ctx, &spec, key, &format!("node{i}"), base, relay, control)
                        .await
                        .unwrap();
                let view = NodeView {
                    shard: v
                        .shard
                        .clone()
                        .expect("every simulated validator runs a shard"),
                    beacon: v.view.clone(),
                };
                let _ = tx.send(view);
                futures::future::pending::<()>().await;
                drop(v);
            });
        let view = rx.await.expect("validator started");
        self.nodes[i] = Some((handle, view));
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
}

pub(crate) async fn snapshot(app: &ShardApp<Ctx>, users: &[User]) -> ShardSnapshot {
    let height = app.committed_height().await;
    app.with_state(|s: &QmdbStore<Ctx>| {
        let mut snap = ShardSnapshot {
            height,
            supply: Supply::of(s),
            nonces: BTreeMap::new(),
            balances: BTreeMap::new(),
            outbox: BTreeMap::new(),
            inbox: BTreeMap::new(),
        };
        for u in users.iter().filter(|u| u.shard == app.shard()) {
            let a = s.account(&u.id).expect("genesis account");
            snap.nonces.insert(u.id.clone(), a.nonce);
            snap.balances.insert(u.id.clone(), a.balance.0);
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
                    if !nonces_ok || !balances_ok {
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
        snaps.insert(ShardId(s), first);
    }
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

// ---------------------------------------------------------------------------------------------
// Tests.

/// The whole network with 5 % message loss: random transfers (most cross-shard) from 32
/// accounts; one non-beacon validator per shard crashes mid-run and restarts; at the end every
/// transfer applied exactly once on every replica, supply is conserved and no chain has
/// conflicting finalized blocks.
#[test]
fn sharded_network_transfers_with_loss_and_crashes() {
    for seed in [1u64, 2] {
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
            for &i in &crashed {
                net.start_node(i).await;
            }
            random_transfers(&net, &users, &mut rng, &mut nonces, 60, &mut log).await;
            let height = settle_and_check(&net, &users, &log, Duration::from_secs(300)).await;
            let beacon = net.views()[0].beacon.beacon_height();
            eprintln!(
                "sharded_network seed {seed}: {} transfers settled; shard heights >= {height}, \
                 beacon {beacon}; {:.1}s simulated, {:.1}s wall",
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
