//! Deterministic simulations of chain engines over `p2p::simulated`.

use crate::{
    ChainApp, ChainBlock, ChainChannels, ChainId, Finalized, NetMux, Partitions, ProposeCtx,
    Timeouts, VerifyCtx,
    certificate::{CertError, Scheme},
    keys::{committee_set, to_cw_private_key, to_cw_public_key},
    namespace,
    net::Scoped,
    spawn_chain,
};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_consensus::simplex::mocks::{conflicter, nuller};
use commonware_cryptography::{Sha256, ed25519};
use commonware_p2p::simulated::{Link, Oracle};
use commonware_runtime::{Clock, Handle, Runner, Spawner, Supervisor as _, deterministic};
use commonware_utils::{NZUsize, sync::Mutex};
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};
use vision_types::{ChainId as NetworkId, Hash, PublicKey, SecretKey, ShardId, block::ChainRef};

// ---------------------------------------------------------------------------------------------
// Test block and app.

#[derive(Clone, Debug, PartialEq, Eq)]
struct TestBlock {
    height: u64,
    parent: Hash,
    timestamp_ms: u64,
    proposer: PublicKey,
    payload: u64,
}

impl Write for TestBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.parent.write(buf);
        self.timestamp_ms.write(buf);
        self.proposer.write(buf);
        self.payload.write(buf);
    }
}

impl FixedSize for TestBlock {
    const SIZE: usize = 8 + 32 + 8 + 32 + 8;
}

impl Read for TestBlock {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            height: u64::read(buf)?,
            parent: Hash::read(buf)?,
            timestamp_ms: u64::read(buf)?,
            proposer: PublicKey::read(buf)?,
            payload: u64::read(buf)?,
        })
    }
}

impl ChainBlock for TestBlock {
    fn hash(&self) -> Hash {
        Hash::sha256(&self.encode())
    }
    fn height(&self) -> u64 {
        self.height
    }
    fn parent(&self) -> Hash {
        self.parent
    }
    fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    fn max_encode_size(_: &()) -> usize {
        Self::SIZE
    }
}

fn genesis() -> TestBlock {
    TestBlock {
        height: 0,
        parent: Hash::ZERO,
        timestamp_ms: 0,
        proposer: PublicKey([0; 32]),
        payload: 0,
    }
}

fn payload_for(height: u64) -> u64 {
    height.wrapping_mul(7).wrapping_add(3)
}

#[derive(Default)]
struct AppState {
    /// Finalized blocks by height, as delivered.
    finalized: BTreeMap<u64, TestBlock>,
    /// Certificates of finalized blocks.
    certificates: BTreeMap<u64, Vec<u8>>,
    /// Deliveries of a different block at an already finalized height.
    conflicts: u64,
    /// Deliveries out of order (height not previous + 1 and not a redelivery).
    gaps: u64,
    deliveries: u64,
    proposed: u64,
}

#[derive(Clone, Default)]
struct TestApp {
    state: Arc<Mutex<AppState>>,
    /// Reports pending work (disables the empty-view throttle).
    busy: bool,
    /// Engine `min_block_interval` (test default when `None`).
    min_block_interval: Option<Duration>,
}

impl TestApp {
    fn height(&self) -> u64 {
        self.state
            .lock()
            .finalized
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }
    fn hashes(&self) -> BTreeMap<u64, Hash> {
        self.state
            .lock()
            .finalized
            .iter()
            .map(|(h, b)| (*h, b.hash()))
            .collect()
    }
}

impl ChainApp for TestApp {
    type Block = TestBlock;

    fn has_pending_work(&self) -> bool {
        self.busy
    }

    async fn propose(&mut self, parent: &TestBlock, ctx: ProposeCtx) -> Option<TestBlock> {
        self.state.lock().proposed += 1;
        Some(TestBlock {
            height: ctx.height,
            parent: parent.hash(),
            timestamp_ms: ctx.now_ms.max(parent.timestamp_ms + 1),
            proposer: ctx.leader,
            payload: payload_for(ctx.height),
        })
    }

    async fn verify(&mut self, parent: &TestBlock, block: &TestBlock, ctx: VerifyCtx) -> bool {
        block.timestamp_ms > parent.timestamp_ms
            && block.payload == payload_for(block.height)
            && block.proposer == ctx.leader
    }

    async fn finalized(&mut self, finalized: Finalized<TestBlock>) {
        let mut s = self.state.lock();
        s.deliveries += 1;
        let b = finalized.block;
        match s.finalized.get(&b.height) {
            Some(old) if *old != b => s.conflicts += 1,
            Some(_) => {}
            None => {
                let last = s.finalized.keys().next_back().copied().unwrap_or(0);
                if b.height != last + 1 {
                    s.gaps += 1;
                }
                if let Some(c) = finalized.certificate {
                    s.certificates.insert(b.height, c);
                }
                s.finalized.insert(b.height, b);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Harness.

fn key(i: usize) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    SecretKey::from_seed(seed)
}

fn net_id() -> NetworkId {
    NetworkId::new("simnet").unwrap()
}

fn shard(s: u32) -> ChainId {
    ChainRef::Shard(ShardId(s))
}

fn timeouts(min_block_interval: Option<Duration>) -> Timeouts {
    Timeouts {
        min_block_interval: min_block_interval.unwrap_or(Duration::from_millis(50)),
        ..Timeouts::default()
    }
}

use crate::sim::{Ctx, SimReceiver, SimSender, link};

async fn setup_network(ctx: &Ctx, n: usize, link: Link) -> Oracle<ed25519::PublicKey, Ctx> {
    let peers: Vec<_> = (0..n)
        .map(|i| to_cw_public_key(&key(i).public_key()).unwrap())
        .collect();
    crate::sim::full_mesh(
        ctx,
        peers,
        crate::max_message_bytes::<TestBlock>(n as u32, &()),
        link,
    )
    .await
}

async fn base_channels(
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    i: usize,
) -> ChainChannels<SimSender, SimReceiver> {
    crate::sim::base_channels_of(oracle, &key(i).public_key()).await
}

/// One chain a node takes part in.
#[derive(Clone)]
struct Membership {
    chain: ChainId,
    committee: Vec<PublicKey>,
    app: TestApp,
}

fn committee(idx: &[usize]) -> Vec<PublicKey> {
    idx.iter().map(|i| key(*i).public_key()).collect()
}

/// Starts node `i` (its muxers and one engine per membership) under one task.
async fn start_node(
    ctx: &Ctx,
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    i: usize,
    chains: Vec<Membership>,
) -> Handle<()> {
    let base = base_channels(oracle, i).await;
    let blocker = oracle.control(to_cw_public_key(&key(i).public_key()).unwrap());
    ctx.child("node")
        .with_attribute("index", i)
        .spawn(move |ctx| async move {
            let mut mux = NetMux::start(ctx.child("mux"), base);
            let mut handles = Vec::new();
            for m in chains {
                let channels = mux.register(m.chain, 0).await.unwrap();
                let spec = crate::ChainSpec {
                    chain: m.chain,
                    epoch: 0,
                    committee: m.committee,
                    signer: key(i),
                    namespace: namespace(&net_id(), m.chain, 0),
                    partitions: Partitions::new(&format!("node{i}"), m.chain, 0),
                    timeouts: timeouts(m.app.min_block_interval),
                    genesis: genesis(),
                    block_codec_config: (),
                    mailbox_size: NZUsize!(1024),
                };
                let chain_ctx = ctx
                    .child("chain")
                    .with_attribute("chain", crate::chain::chain_label(m.chain));
                let handle = spawn_chain(chain_ctx, spec, channels, blocker.clone(), m.app)
                    .await
                    .unwrap();
                handles.push(handle);
            }
            futures::future::pending::<()>().await;
            drop(handles);
        })
}

async fn wait_until(ctx: &Ctx, what: &str, mut done: impl FnMut() -> bool) {
    let start = ctx.current();
    while !done() {
        ctx.sleep(Duration::from_millis(100)).await;
        let waited = ctx.current().duration_since(start).unwrap();
        assert!(
            waited < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
    }
}

/// No two different blocks at one height across `apps`, no conflicting or gapped deliveries.
fn assert_consistent(apps: &[TestApp]) {
    let mut canon: BTreeMap<u64, Hash> = BTreeMap::new();
    for (i, app) in apps.iter().enumerate() {
        let s = app.state.lock();
        assert_eq!(s.conflicts, 0, "app {i} saw conflicting finalized blocks");
        assert_eq!(s.gaps, 0, "app {i} saw out-of-order delivery");
        drop(s);
        for (h, hash) in app.hashes() {
            let prev = canon.entry(h).or_insert(hash);
            assert_eq!(*prev, hash, "two different finalized blocks at height {h}");
        }
    }
    // Parent links of the canonical chain.
    let s = apps[0].state.lock();
    for (h, b) in &s.finalized {
        if let Some(p) = s.finalized.get(&(h - 1)) {
            assert_eq!(b.parent, p.hash());
        }
    }
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

fn report(name: &str, seed: u64, started: Instant, sim: Duration, heights: &[u64]) {
    eprintln!(
        "{name} seed {seed}: heights {heights:?} in {:.1}s simulated, {:.2}s wall",
        sim.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

fn sim_time(ctx: &Ctx) -> Duration {
    ctx.current().duration_since(std::time::UNIX_EPOCH).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// One chain, 4 validators: ≥ 20 heights, identical on every validator; certificates verify
/// with only the committee keys and fail when tampered with or checked in the wrong context.
#[test]
fn one_chain_finalizes_and_certificates_verify() {
    for seed in [1u64, 2, 3] {
        eprintln!("one_chain: seed {seed}");
        let started = Instant::now();
        runner(seed).start(|mut ctx| async move {
            let oracle = setup_network(&ctx, 4, link(100)).await;
            let chain = shard(1);
            let members = committee(&[0, 1, 2, 3]);
            let apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
            for (i, app) in apps.iter().enumerate() {
                let m = Membership {
                    chain,
                    committee: members.clone(),
                    app: app.clone(),
                };
                start_node(&ctx, &oracle, i, vec![m]).await;
            }
            wait_until(&ctx, "20 heights", || apps.iter().all(|a| a.height() >= 20)).await;
            assert_consistent(&apps);
            let heights: Vec<u64> = apps.iter().map(TestApp::height).collect();
            report("one_chain", seed, started, sim_time(&ctx), &heights);
            assert!(
                oracle.blocked().await.unwrap().is_empty(),
                "honest run blocked a peer"
            );

            // Certificates.
            let ns = namespace(&net_id(), chain, 0);
            let (height, cert, block) = {
                let s = apps[0].state.lock();
                let with_cert = s.certificates.len();
                eprintln!(
                    "one_chain seed {seed}: {with_cert}/{} blocks carry their own certificate",
                    s.finalized.len()
                );
                assert!(
                    with_cert * 2 >= s.finalized.len(),
                    "most blocks should carry a certificate"
                );
                let (h, c) = s.certificates.iter().next_back().unwrap();
                (*h, c.clone(), s.finalized[h].clone())
            };
            let hash = block.hash();
            crate::verify_finalization_certificate(&cert, &ns, &members, &hash, 0, &mut ctx)
                .unwrap_or_else(|e| panic!("certificate at height {height}: {e}"));
            // Committee order does not matter.
            let mut reversed = members.clone();
            reversed.reverse();
            crate::verify_finalization_certificate(&cert, &ns, &reversed, &hash, 0, &mut ctx)
                .unwrap();
            // Tampered signature byte.
            let mut bad = cert.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(
                crate::verify_finalization_certificate(&bad, &ns, &members, &hash, 0, &mut ctx)
                    .is_err()
            );
            // Truncated and oversized.
            assert!(
                crate::verify_finalization_certificate(
                    &cert[..cert.len() - 1],
                    &ns,
                    &members,
                    &hash,
                    0,
                    &mut ctx
                )
                .is_err()
            );
            let mut long = cert.clone();
            long.push(0);
            assert!(
                crate::verify_finalization_certificate(&long, &ns, &members, &hash, 0, &mut ctx)
                    .is_err()
            );
            // Wrong block.
            assert!(matches!(
                crate::verify_finalization_certificate(
                    &cert,
                    &ns,
                    &members,
                    &Hash::sha256(b"x"),
                    0,
                    &mut ctx
                ),
                Err(CertError::WrongBlock { .. })
            ));
            // Wrong epoch.
            assert!(matches!(
                crate::verify_finalization_certificate(&cert, &ns, &members, &hash, 1, &mut ctx),
                Err(CertError::WrongEpoch { .. })
            ));
            // Namespace of another shard.
            let other_ns = namespace(&net_id(), shard(2), 0);
            assert_eq!(
                crate::verify_finalization_certificate(
                    &cert, &other_ns, &members, &hash, 0, &mut ctx
                ),
                Err(CertError::BadSignatures)
            );
            // A committee of other keys (same size), and a larger committee (the signer
            // bitmap must cover exactly the committee).
            let others = committee(&[10, 11, 12, 13]);
            assert!(
                crate::verify_finalization_certificate(&cert, &ns, &others, &hash, 0, &mut ctx)
                    .is_err()
            );
            let larger = committee(&[0, 1, 2, 3, 14]);
            assert!(
                crate::verify_finalization_certificate(&cert, &ns, &larger, &hash, 0, &mut ctx)
                    .is_err()
            );
            // (Swapping a member that did not sign keeps a valid quorum of the new committee:
            // correct, since the certificate is checked against the committee the beacon
            // expects for that shard and epoch.)
        });
    }
}

/// A shard (validators 0..4) and the beacon (validators 2..6) on one network through mux
/// subchannels; validators 2 and 3 run both.
#[test]
fn two_chains_share_one_network() {
    let seed = 4;
    eprintln!("two_chains: seed {seed}");
    let started = Instant::now();
    runner(seed).start(|ctx| async move {
        let oracle = setup_network(&ctx, 6, link(100)).await;
        let shard_members = committee(&[0, 1, 2, 3]);
        let beacon_members = committee(&[2, 3, 4, 5]);
        let shard_apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
        let beacon_apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
        for i in 0..6 {
            let mut chains = Vec::new();
            if i < 4 {
                chains.push(Membership {
                    chain: shard(0),
                    committee: shard_members.clone(),
                    app: shard_apps[i].clone(),
                });
            }
            if i >= 2 {
                chains.push(Membership {
                    chain: ChainRef::Beacon,
                    committee: beacon_members.clone(),
                    app: beacon_apps[i - 2].clone(),
                });
            }
            start_node(&ctx, &oracle, i, chains).await;
        }
        wait_until(&ctx, "both chains at 15", || {
            shard_apps
                .iter()
                .chain(&beacon_apps)
                .all(|a| a.height() >= 15)
        })
        .await;
        assert_consistent(&shard_apps);
        assert_consistent(&beacon_apps);
        // The two chains are independent: different genesis-children.
        assert_ne!(shard_apps[0].hashes()[&1], beacon_apps[0].hashes()[&1]);
        assert!(oracle.blocked().await.unwrap().is_empty());
        let heights: Vec<u64> = shard_apps
            .iter()
            .chain(&beacon_apps)
            .map(TestApp::height)
            .collect();
        report("two_chains", seed, started, sim_time(&ctx), &heights);
    });
}

/// Crash one of 4 validators, keep finalizing with 3, restart it on the same partitions: it
/// catches up to the same blocks.
#[test]
fn crash_and_restart_catches_up() {
    for seed in [5, 15] {
        crash_run(seed);
    }
}

fn crash_run(seed: u64) {
    eprintln!("crash_restart: seed {seed}");
    let started = Instant::now();
    runner(seed).start(|ctx| async move {
        let oracle = setup_network(&ctx, 4, link(100)).await;
        let chain = shard(3);
        let members = committee(&[0, 1, 2, 3]);
        let apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
        let membership = |i: usize| vec![Membership { chain, committee: members.clone(), app: apps[i].clone() }];
        let mut nodes = Vec::new();
        for i in 0..4 {
            nodes.push(start_node(&ctx, &oracle, i, membership(i)).await);
        }
        wait_until(&ctx, "5 heights", || apps.iter().all(|a| a.height() >= 5)).await;

        // Crash validator 3 (abort and await, so its storage can be reopened).
        let crashed = nodes.pop().unwrap();
        crashed.abort();
        let _ = crashed.await;
        let at_crash = apps[3].height();
        let others_at_crash = apps[..3].iter().map(TestApp::height).min().unwrap();
        wait_until(&ctx, "3 of 4 keep finalizing", || {
            apps[..3].iter().all(|a| a.height() >= others_at_crash + 10)
        })
        .await;
        assert_eq!(apps[3].height(), at_crash, "crashed node must not progress");

        // Restart with the same partitions.
        let _restarted = start_node(&ctx, &oracle, 3, membership(3)).await;
        let target = apps[..3].iter().map(TestApp::height).max().unwrap();
        wait_until(&ctx, "restarted node catches up", || apps[3].height() >= target + 3).await;
        assert_consistent(&apps);
        let heights: Vec<u64> = apps.iter().map(TestApp::height).collect();
        eprintln!("crash_restart: crashed at {at_crash}, others at {others_at_crash}; caught up past {target}");
        report("crash_restart", seed, started, sim_time(&ctx), &heights);
    });
}

/// Lossy links (80 % delivery) and one Byzantine validator: the honest three still finalize,
/// never two blocks at one height.
fn byzantine_run(seed: u64, byzantine: &'static str) {
    eprintln!("byzantine ({byzantine}): seed {seed}");
    let started = Instant::now();
    runner(seed).start(|ctx| async move {
        let oracle = setup_network(&ctx, 4, link(80)).await;
        let chain = shard(5);
        let members = committee(&[0, 1, 2, 3]);
        let apps: Vec<TestApp> = (0..3).map(|_| TestApp::default()).collect();
        for (i, app) in apps.iter().enumerate() {
            let m = Membership {
                chain,
                committee: members.clone(),
                app: app.clone(),
            };
            start_node(&ctx, &oracle, i, vec![m]).await;
        }
        // Validator 3 is Byzantine, on the chain's vote subchannel.
        let ns = namespace(&net_id(), chain, 0);
        let scheme = Scheme::signer(
            &ns,
            committee_set(&members).unwrap(),
            to_cw_private_key(&key(3)),
        )
        .unwrap();
        let base = base_channels(&oracle, 3).await;
        let mut mux = NetMux::start(ctx.child("byz_mux"), base);
        let channels = mux.register(chain, 0).await.unwrap();
        let to = Arc::new(
            committee_set(&members)
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>(),
        );
        let (v_tx, v_rx) = channels.votes;
        let votes = (Scoped::new(v_tx, to), v_rx);
        match byzantine {
            "conflicter" => {
                conflicter::Conflicter::<_, Scheme, Sha256>::new(
                    ctx.child("byz"),
                    conflicter::Config { scheme },
                )
                .start(votes);
            }
            _ => {
                nuller::Nuller::<_, Scheme, Sha256>::new(
                    ctx.child("byz"),
                    nuller::Config { scheme },
                )
                .start(votes);
            }
        }
        wait_until(&ctx, "12 heights", || apps.iter().all(|a| a.height() >= 12)).await;
        assert_consistent(&apps);
        let byz = to_cw_public_key(&key(3).public_key()).unwrap();
        let blocked = oracle.blocked().await.unwrap();
        eprintln!(
            "byzantine ({byzantine}) seed {seed}: blocked {} links",
            blocked.len()
        );
        assert!(
            blocked.iter().all(|(_, to)| *to == byz),
            "only the Byzantine node may be blocked"
        );
        let heights: Vec<u64> = apps.iter().map(TestApp::height).collect();
        report(byzantine, seed, started, sim_time(&ctx), &heights);
        drop(mux);
    });
}

#[test]
fn lossy_links_with_conflicter() {
    for seed in [6, 16] {
        byzantine_run(seed, "conflicter");
    }
}

#[test]
fn lossy_links_with_nuller() {
    for seed in [7, 17] {
        byzantine_run(seed, "nuller");
    }
}

/// Runs one 4-validator chain until `heights`; returns validator 0's finalized blocks.
fn run_one_chain(seed: u64, app: TestApp, heights: u64) -> Vec<TestBlock> {
    runner(seed).start(|ctx| async move {
        let oracle = setup_network(&ctx, 4, link(100)).await;
        let chain = shard(9);
        let members = committee(&[0, 1, 2, 3]);
        let apps: Vec<TestApp> = (0..4)
            .map(|_| TestApp {
                state: Arc::default(),
                ..app.clone()
            })
            .collect();
        for (i, app) in apps.iter().enumerate() {
            let m = Membership {
                chain,
                committee: members.clone(),
                app: app.clone(),
            };
            start_node(&ctx, &oracle, i, vec![m]).await;
        }
        wait_until(&ctx, "heights", || {
            apps.iter().all(|a| a.height() >= heights)
        })
        .await;
        assert_consistent(&apps);
        apps[0].state.lock().finalized.values().cloned().collect()
    })
}

fn spacing_ms(blocks: &[TestBlock]) -> Vec<u64> {
    blocks
        .windows(2)
        .map(|w| w[1].timestamp_ms - w[0].timestamp_ms)
        .collect()
}

/// Idle chains propose at most one block per `min_block_interval`; a busy app is not
/// throttled (verify never waits); one seed replays identically.
#[test]
fn empty_view_throttle_and_determinism() {
    let interval = Duration::from_millis(300);
    let idle = TestApp {
        min_block_interval: Some(interval),
        ..TestApp::default()
    };
    let a = run_one_chain(8, idle.clone(), 10);
    let gaps = spacing_ms(&a);
    eprintln!("throttle: idle spacing {gaps:?}");
    assert!(
        gaps.iter().all(|g| *g >= 300),
        "idle blocks closer than the interval"
    );

    let b = run_one_chain(8, idle, 10);
    assert_eq!(a, b, "seed 8 must replay identically");

    let busy = TestApp {
        busy: true,
        min_block_interval: Some(interval),
        ..TestApp::default()
    };
    let c = run_one_chain(8, busy, 10);
    let gaps = spacing_ms(&c);
    eprintln!("throttle: busy spacing {gaps:?}");
    let mean = gaps.iter().sum::<u64>() / gaps.len() as u64;
    assert!(
        mean < 150,
        "busy chain should not wait for the interval (mean {mean} ms)"
    );
}

/// `Scoped` turns `Recipients::All` into the committee; explicit recipients pass through.
#[test]
fn scoped_sender_limits_all_to_committee() {
    runner(9).start(|ctx| async move {
        let oracle = setup_network(&ctx, 6, link(100)).await;
        let base = base_channels(&oracle, 0).await;
        for i in 1..6 {
            let _ = base_channels(&oracle, i).await;
        }
        let (tx, _rx) = base.votes;
        let pk = |i: usize| to_cw_public_key(&key(i).public_key()).unwrap();
        let to = Arc::new(vec![pk(1), pk(2)]);
        let mut scoped = Scoped::new(tx.clone(), to);
        let mut sent = commonware_p2p::Sender::send(
            &mut scoped,
            commonware_p2p::Recipients::All,
            vec![1u8],
            false,
        );
        sent.sort();
        let mut expected = vec![pk(1), pk(2)];
        expected.sort();
        assert_eq!(sent, expected);
        let sent = commonware_p2p::Sender::send(
            &mut scoped,
            commonware_p2p::Recipients::One(pk(5)),
            vec![1u8],
            false,
        );
        assert_eq!(sent, vec![pk(5)]);
        let mut unscoped = tx;
        let sent = commonware_p2p::Sender::send(
            &mut unscoped,
            commonware_p2p::Recipients::All,
            vec![1u8],
            false,
        );
        assert_eq!(sent.len(), 5);
    });
}

/// Stop only one node's chain engine (its node and muxers keep running), keep finalizing with
/// 3 of 4, then start the engine again on the same partitions and the same mux subchannels.
#[test]
fn restart_chain_engine_on_live_mux() {
    let seed = 10;
    eprintln!("engine_restart: seed {seed}");
    let started = Instant::now();
    runner(seed).start(|ctx| async move {
        let oracle = setup_network(&ctx, 4, link(100)).await;
        let chain = shard(4);
        let members = committee(&[0, 1, 2, 3]);
        let apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
        for (i, app) in apps.iter().enumerate().take(3) {
            let m = Membership {
                chain,
                committee: members.clone(),
                app: app.clone(),
            };
            start_node(&ctx, &oracle, i, vec![m]).await;
        }
        // Node 3, wired by hand so the test controls the engine.
        let base = base_channels(&oracle, 3).await;
        let blocker = oracle.control(to_cw_public_key(&key(3).public_key()).unwrap());
        let mut mux = NetMux::start(ctx.child("mux3"), base);
        let spec = crate::ChainSpec {
            chain,
            epoch: 0,
            committee: members.clone(),
            signer: key(3),
            namespace: namespace(&net_id(), chain, 0),
            partitions: Partitions::new("node3", chain, 0),
            timeouts: timeouts(None),
            genesis: genesis(),
            block_codec_config: (),
            mailbox_size: NZUsize!(1024),
        };
        let channels = mux.register(chain, 0).await.unwrap();
        let handle = spawn_chain(
            ctx.child("chain3"),
            spec.clone(),
            channels,
            blocker.clone(),
            apps[3].clone(),
        )
        .await
        .unwrap();
        wait_until(&ctx, "5 heights", || apps.iter().all(|a| a.height() >= 5)).await;
        assert!(handle.delivered_height() >= 5);

        handle.stop().await;
        let stopped_at = apps[3].height();
        let others = apps[..3].iter().map(TestApp::height).min().unwrap();
        wait_until(&ctx, "3 of 4 keep finalizing", || {
            apps[..3].iter().all(|a| a.height() >= others + 8)
        })
        .await;
        assert_eq!(apps[3].height(), stopped_at);

        // The stopped engine released its subchannels and partitions.
        let channels = mux.register(chain, 0).await.unwrap();
        let handle = spawn_chain(
            ctx.child("chain3"),
            spec,
            channels,
            blocker,
            apps[3].clone(),
        )
        .await
        .unwrap();
        let target = apps[..3].iter().map(TestApp::height).max().unwrap();
        wait_until(&ctx, "restarted engine catches up", || {
            apps[3].height() >= target + 3
        })
        .await;
        assert!(handle.delivered_height() >= target + 3);
        assert_consistent(&apps);
        let heights: Vec<u64> = apps.iter().map(TestApp::height).collect();
        report("engine_restart", seed, started, sim_time(&ctx), &heights);
    });
}

#[test]
fn max_message_bytes_is_bounded() {
    let small = crate::max_message_bytes::<TestBlock>(4, &()) as usize;
    let large = crate::max_message_bytes::<TestBlock>(15, &()) as usize;
    eprintln!("max message bytes: n=4 {small}, n=15 {large}");
    assert!(small > TestBlock::SIZE && small <= large);
    // ≈ 15 × 64-byte signatures plus framing.
    assert!(large < 4096);
}

/// Every validator stops at once without clean shutdown (only synced storage survives), three
/// times in a row; each time the cluster recovers from its journals and archives and keeps
/// extending the same chain.
#[test]
fn whole_cluster_unclean_restart() {
    let seed = 11;
    eprintln!("cluster_restart: seed {seed}");
    let started = Instant::now();
    let chain = shard(6);
    let members = committee(&[0, 1, 2, 3]);
    let apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
    let mut runner = runner(seed);
    let mut floor = 0;
    for round in 0..3 {
        let (apps_r, members_r) = (apps.clone(), members.clone());
        let (reached, checkpoint) = runner.start_and_recover(|ctx| async move {
            let oracle = setup_network(&ctx, 4, link(100)).await;
            for (i, app) in apps_r.iter().enumerate() {
                let m = Membership {
                    chain,
                    committee: members_r.clone(),
                    app: app.clone(),
                };
                start_node(&ctx, &oracle, i, vec![m]).await;
            }
            let target = floor + 8;
            wait_until(&ctx, "progress after restart", || {
                apps_r.iter().all(|a| a.height() >= target)
            })
            .await;
            apps_r.iter().map(TestApp::height).min().unwrap()
        });
        eprintln!("cluster_restart round {round}: all validators at >= {reached}");
        assert!(reached >= floor + 8);
        floor = reached;
        runner = deterministic::Runner::from(checkpoint);
    }
    assert_consistent(&apps);
    let heights: Vec<u64> = apps.iter().map(TestApp::height).collect();
    eprintln!(
        "cluster_restart seed {seed}: heights {heights:?}, {:.2}s wall",
        started.elapsed().as_secs_f64()
    );
}
