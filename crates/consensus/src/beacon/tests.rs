//! Beacon tests: crosslinks certified by a real simplex shard chain, checked by the beacon
//! state and pool, and finalized by a 4-validator beacon chain in the same simulation.

use super::*;
use crate::{
    ChainApp, ChainBlock, ChainChannels, ChainId, Finalized, NetMux, Partitions, ProposeCtx,
    StateAfter, Timeouts, VerifyCtx, certificate::CertError, keys::to_cw_public_key, namespace,
    spawn_chain,
};
use commonware_cryptography::ed25519;
use commonware_p2p::simulated::Oracle;
use commonware_runtime::{Clock, Runner, Spawner, Supervisor as _, deterministic};
use commonware_utils::{NZUsize, sync::Mutex};
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};
use vision_sharding::GlobalOutcome;
use vision_state::Migration;
use vision_types::{
    AccountId, ChainId as NetworkId, Hash, PublicKey, SecretKey, ShardId,
    block::{BlockHeader, ChainRef, Crosslink, CrosslinkError, DestinationBatch},
    config::ShardConfig,
    prsm::{PrsmEvent, PrsmEventKind},
};

// ---------------------------------------------------------------------------------------------
// A shard test chain whose blocks are bare `BlockHeader`s.

impl ChainBlock for BlockHeader {
    fn hash(&self) -> Hash {
        BlockHeader::hash(self)
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
        5 + 8 * 4 + 32 * 7
    }
}

const SHARD: ShardId = ShardId(1);
/// The engine chain of the rogue committee (signs shard-1-looking headers under shard 2's
/// namespace).
const ROGUE: ShardId = ShardId(2);

/// The destination shard of every test receipt.
const DST: ShardId = ShardId(3);

/// One receipt per block, so the (shard, DST) stream is contiguous when every height is
/// crosslinked (uncertified blocks through their ancestry).
fn dests(_shard: ShardId, h: u64) -> Vec<DestinationBatch> {
    vec![DestinationBatch {
        dst: DST,
        first_seq: h - 1,
        count: 1,
        root: Hash::sha256(&h.to_be_bytes()),
    }]
}

fn txs(h: u64) -> Vec<Hash> {
    vec![Hash::sha256_parts(&[b"tx", &h.to_be_bytes()])]
}

fn shard_genesis(stamp: ShardId) -> BlockHeader {
    BlockHeader {
        chain: ChainRef::Shard(stamp),
        epoch: 0,
        height: 0,
        parent: Hash::ZERO,
        timestamp_ms: 0,
        proposer: PublicKey([0; 32]),
        body_root: Hash::ZERO,
        state_root: Hash::ZERO,
        receipts_root: Hash::ZERO,
        batch_txs_root: Hash::ZERO,
        prsm_root: Hash::ZERO,
        beacon_height: 0,
    }
}

fn shard_header(
    stamp: ShardId,
    epoch: u64,
    height: u64,
    parent: Hash,
    ts: u64,
    proposer: PublicKey,
) -> BlockHeader {
    BlockHeader {
        chain: ChainRef::Shard(stamp),
        epoch,
        height,
        parent,
        timestamp_ms: ts,
        proposer,
        body_root: Hash::sha256_parts(&[b"body", &height.to_be_bytes()]),
        state_root: Hash::sha256_parts(&[b"state", &height.to_be_bytes()]),
        receipts_root: Crosslink::destinations_root(&dests(stamp, height)),
        batch_txs_root: Crosslink::batch_txs_root(&txs(height)),
        prsm_root: Hash::ZERO,
        beacon_height: 0,
    }
}

type Certified = BTreeMap<u64, (BlockHeader, Option<Vec<u8>>)>;

#[derive(Clone)]
struct ShardTestApp {
    /// The chain written in the headers (the engine's chain for honest apps).
    stamp: ShardId,
    finalized: Arc<Mutex<Certified>>,
}

impl ShardTestApp {
    fn new(stamp: ShardId) -> Self {
        ShardTestApp {
            stamp,
            finalized: Arc::default(),
        }
    }

    /// Crosslinks of every finalized height from 1 up to the last certified one: a block
    /// without its own certificate is proven through its descendants up to the next
    /// certified one (`ancestry`).
    fn crosslinks(&self) -> Vec<Crosslink> {
        let fin = self.finalized.lock();
        let mut out = Vec::new();
        for (height, (h, _)) in fin.iter() {
            if *height != out.len() as u64 + 1 {
                break; // a gap in delivery
            }
            let mut ancestry = Vec::new();
            let mut cert = None;
            for (_, (d, c)) in fin.range(height..) {
                if d.height > *height {
                    ancestry.push(d.clone());
                }
                if let Some(c) = c {
                    cert = Some(c.clone());
                    break;
                }
            }
            let Some(certificate) = cert else { break };
            out.push(Crosslink {
                header: h.clone(),
                destinations: dests(self.stamp, h.height),
                batched_txs: txs(h.height),
                prsm_events: Vec::new(),
                certificate,
                ancestry,
            });
        }
        out
    }
}

impl ChainApp for ShardTestApp {
    type Block = BlockHeader;

    async fn propose(&mut self, parent: &BlockHeader, ctx: ProposeCtx) -> Option<BlockHeader> {
        Some(shard_header(
            self.stamp,
            ctx.epoch,
            ctx.height,
            BlockHeader::hash(parent),
            ctx.now_ms.max(parent.timestamp_ms + 1),
            ctx.leader,
        ))
    }

    async fn verify(&mut self, parent: &BlockHeader, block: &BlockHeader, ctx: VerifyCtx) -> bool {
        block.timestamp_ms > parent.timestamp_ms
            && *block
                == shard_header(
                    self.stamp,
                    ctx.epoch,
                    block.height,
                    BlockHeader::hash(parent),
                    block.timestamp_ms,
                    ctx.leader,
                )
    }

    async fn finalized(&mut self, f: Finalized<BlockHeader>) {
        self.finalized
            .lock()
            .entry(f.block.height)
            .or_insert((f.block, f.certificate));
    }
}

// ---------------------------------------------------------------------------------------------
// Harness (in the style of `crate::tests`).

use crate::sim::{Ctx, SimReceiver, SimSender};

fn key(i: usize) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    SecretKey::from_seed(seed)
}

fn members(idx: impl IntoIterator<Item = usize>) -> Vec<PublicKey> {
    idx.into_iter().map(|i| key(i).public_key()).collect()
}

fn net_id() -> NetworkId {
    NetworkId::new("simnet").unwrap()
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

async fn setup_network(ctx: &Ctx, n: usize) -> Oracle<ed25519::PublicKey, Ctx> {
    let peers: Vec<_> = (0..n)
        .map(|i| to_cw_public_key(&key(i).public_key()).unwrap())
        .collect();
    let max_size = crate::max_message_bytes::<BeaconBlock>(n as u32, &())
        .max(crate::max_message_bytes::<BlockHeader>(n as u32, &()));
    crate::sim::full_mesh(ctx, peers, max_size, crate::sim::link(100)).await
}

async fn base_channels(
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    i: usize,
) -> ChainChannels<SimSender, SimReceiver> {
    crate::sim::base_channels_of(oracle, &key(i).public_key()).await
}

#[derive(Clone)]
enum NodeApp {
    Shard(ChainId, ShardTestApp),
    Beacon(BeaconApp<Ctx>, Box<BeaconBlock>),
}

fn spec<B: ChainBlock<Cfg = ()>>(
    i: usize,
    chain: ChainId,
    committee: Vec<PublicKey>,
    genesis: B,
    interval_ms: u64,
) -> crate::ChainSpec<B> {
    crate::ChainSpec {
        chain,
        epoch: 0,
        committee,
        signer: key(i),
        namespace: namespace(&net_id(), chain, 0),
        partitions: Partitions::new(&format!("node{i}"), chain, 0),
        timeouts: Timeouts {
            min_block_interval: Duration::from_millis(interval_ms),
            ..Timeouts::default()
        },
        genesis,
        block_codec_config: (),
        mailbox_size: NZUsize!(1024),
    }
}

/// Starts node `i` with one engine per app (committee: validators 0..4 on every chain).
async fn start_node(
    ctx: &Ctx,
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    i: usize,
    apps: Vec<NodeApp>,
) {
    let base = base_channels(oracle, i).await;
    let blocker = oracle.control(to_cw_public_key(&key(i).public_key()).unwrap());
    ctx.child("node")
        .with_attribute("index", i)
        .spawn(move |ctx| async move {
            let mut mux = NetMux::start(ctx.child("mux"), base);
            let mut handles = Vec::new();
            for app in apps {
                let committee = members(0..4);
                let handle = match app {
                    NodeApp::Shard(chain, app) => {
                        let channels = mux.register(chain, 0).await.unwrap();
                        let s = spec(i, chain, committee, shard_genesis(app.stamp), 100);
                        spawn_chain(ctx.child("shard"), s, channels, blocker.clone(), app).await
                    }
                    NodeApp::Beacon(app, genesis) => {
                        let chain = ChainRef::Beacon;
                        let channels = mux.register(chain, 0).await.unwrap();
                        let s = spec(i, chain, committee, *genesis, 100);
                        spawn_chain(ctx.child("beacon"), s, channels, blocker.clone(), app).await
                    }
                };
                handles.push(handle.unwrap());
            }
            futures::future::pending::<()>().await;
            drop(handles);
        });
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

fn initial_state() -> BeaconState {
    let mut committees = BTreeMap::new();
    for s in [SHARD, DST] {
        committees.insert(
            s,
            ShardCommittee {
                epoch: 0,
                members: members(0..4),
            },
        );
    }
    BeaconState::new(net_id(), 0, committees, ShardConfig::default())
}

/// Runs shard 1 and the rogue chain on validators 0..4 until each has `n` certified blocks;
/// returns (shard 1 crosslinks, rogue crosslinks) in height order.
fn collect_crosslinks(seed: u64, n: usize) -> (Vec<Crosslink>, Vec<Crosslink>) {
    eprintln!("beacon collect_crosslinks: seed {seed}");
    let started = Instant::now();
    let out = runner(seed).start(|ctx| async move {
        let oracle = setup_network(&ctx, 4).await;
        let shard = ShardTestApp::new(SHARD);
        let rogue = ShardTestApp::new(SHARD);
        for i in 0..4 {
            let apps = vec![
                NodeApp::Shard(
                    ChainRef::Shard(SHARD),
                    if i == 0 {
                        shard.clone()
                    } else {
                        ShardTestApp::new(SHARD)
                    },
                ),
                NodeApp::Shard(
                    ChainRef::Shard(ROGUE),
                    if i == 0 {
                        rogue.clone()
                    } else {
                        ShardTestApp::new(SHARD)
                    },
                ),
            ];
            start_node(&ctx, &oracle, i, apps).await;
        }
        wait_until(&ctx, "certified blocks", || {
            shard.crosslinks().len() >= n && rogue.crosslinks().len() >= n
        })
        .await;
        (shard.crosslinks(), rogue.crosslinks())
    });
    eprintln!(
        "beacon collect_crosslinks seed {seed}: {} + {} crosslinks, {:.2}s wall",
        out.0.len(),
        out.1.len(),
        started.elapsed().as_secs_f64()
    );
    out
}

fn tampered(cl: &Crosslink) -> Crosslink {
    let mut bad = cl.clone();
    let last = bad.certificate.len() - 1;
    bad.certificate[last] ^= 1;
    bad
}

fn content_mismatch(cl: &Crosslink) -> Crosslink {
    let mut bad = cl.clone();
    bad.destinations[0].count += 1;
    bad
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// The state accepts exactly the crosslinks certified by the shard's committee under its
/// namespace, in height order; the pool deduplicates and orders; `apply_block` is atomic.
#[test]
fn state_and_pool_check_crosslinks() {
    let (good, rogue) = collect_crosslinks(21, 4);
    runner(22).start(|mut ctx| async move {
        let state = initial_state().with_tip(Hash::ZERO);
        let mut seq = state.clone();
        for cl in &good {
            seq.accept_crosslink(cl, &mut ctx).unwrap();
        }
        // Every receipt stream must be contiguous: skipping a crosslink is refused.
        assert_eq!(
            state.check_crosslink(&good[1], &mut ctx),
            Err(CrosslinkRejection::OutOfOrder {
                src: SHARD.0,
                dst: DST.0,
                expected: 0,
                got: 1
            })
        );
        let cl = &good[0];
        // Forged / tampered certificate.
        assert!(matches!(
            state.check_crosslink(&tampered(cl), &mut ctx),
            Err(CrosslinkRejection::Certificate(_))
        ));
        // Another header's certificate.
        let mut swapped = cl.clone();
        swapped.certificate = good[1].certificate.clone();
        assert!(matches!(
            state.check_crosslink(&swapped, &mut ctx),
            Err(CrosslinkRejection::Certificate(
                CertError::WrongBlock { .. }
            ))
        ));
        // Certificate from another shard's namespace (same committee, shard-1 header).
        assert_eq!(rogue[0].header.chain, ChainRef::Shard(SHARD));
        assert_eq!(
            state.check_crosslink(&rogue[0], &mut ctx),
            Err(CrosslinkRejection::Certificate(CertError::BadSignatures))
        );
        // Other layout version (namespace) or network.
        let mut committees = BTreeMap::new();
        committees.insert(SHARD, state.committee(SHARD).unwrap().clone());
        committees.insert(DST, state.committee(DST).unwrap().clone());
        let relayout = BeaconState::new(net_id(), 1, committees.clone(), ShardConfig::default());
        assert_eq!(
            relayout.check_crosslink(cl, &mut ctx),
            Err(CrosslinkRejection::Certificate(CertError::BadSignatures))
        );
        // Wrong committee (same size, other keys) and a committee of another size.
        for other in [members(4..8), members([0, 1, 2, 3, 4])] {
            let mut c = committees.clone();
            c.insert(
                SHARD,
                ShardCommittee {
                    epoch: 0,
                    members: other,
                },
            );
            let s = BeaconState::new(net_id(), 0, c, ShardConfig::default());
            assert!(matches!(
                s.check_crosslink(cl, &mut ctx),
                Err(CrosslinkRejection::Certificate(_))
            ));
        }
        // Committee epoch differs from the header's.
        let mut c = committees.clone();
        c.get_mut(&SHARD).unwrap().epoch = 1;
        let s = BeaconState::new(net_id(), 0, c, ShardConfig::default());
        assert_eq!(
            s.check_crosslink(cl, &mut ctx),
            Err(CrosslinkRejection::WrongEpoch {
                expected: 1,
                found: 0
            })
        );
        // Unknown shard.
        let s = BeaconState::new(net_id(), 0, BTreeMap::new(), ShardConfig::default());
        assert_eq!(
            s.check_crosslink(cl, &mut ctx),
            Err(CrosslinkRejection::UnknownShard(SHARD.0))
        );
        // Content mismatch (destinations vs receipts root).
        assert_eq!(
            state.check_crosslink(&content_mismatch(cl), &mut ctx),
            Err(CrosslinkRejection::Content(CrosslinkError::ReceiptsRoot))
        );

        // Sequence: accept good[0] and good[1], then good[0] (regression) and good[1]
        // (duplicate) fail.
        let mut s = state.clone();
        s.accept_crosslink(&good[0], &mut ctx).unwrap();
        s.accept_crosslink(&good[1], &mut ctx).unwrap();
        assert_eq!(s.last_height(SHARD), good[1].header.height);
        assert_eq!(
            s.receipts_root(SHARD, good[1].header.height),
            Some(good[1].header.receipts_root)
        );
        for old in [&good[0], &good[1]] {
            assert!(matches!(
                s.check_crosslink(old, &mut ctx),
                Err(CrosslinkRejection::NotAbove { .. })
            ));
        }

        // Pool: invalid rejected with a reason, duplicates refused, (shard, height) order.
        let mut pool = CrosslinkPool::new(3);
        assert!(matches!(
            pool.submit(tampered(&good[0]), &state, &mut ctx),
            Err(PoolRejection::Invalid(CrosslinkRejection::Certificate(_)))
        ));
        assert!(!pool.has_pending_work());
        // good[2] does not continue the stream until good[1] is pending too.
        assert!(matches!(
            pool.submit(good[2].clone(), &state, &mut ctx),
            Err(PoolRejection::Invalid(
                CrosslinkRejection::OutOfOrder { .. }
            ))
        ));
        pool.submit(good[0].clone(), &state, &mut ctx).unwrap();
        assert_eq!(
            pool.submit(good[0].clone(), &state, &mut ctx),
            Err(PoolRejection::Duplicate {
                shard: SHARD.0,
                height: good[0].header.height
            })
        );
        pool.submit(good[1].clone(), &state, &mut ctx).unwrap();
        pool.submit(good[2].clone(), &state, &mut ctx).unwrap();
        assert_eq!(
            pool.submit(good[3].clone(), &state, &mut ctx),
            Err(PoolRejection::Full(3))
        );
        let order: Vec<u64> = pool.pending().map(|c| c.header.height).collect();
        assert_eq!(
            order,
            good[..3]
                .iter()
                .map(|c| c.header.height)
                .collect::<Vec<_>>()
        );
        assert!(pool.has_pending_work());
        pool.prune(&s); // s has good[0] and good[1] applied
        let order: Vec<u64> = pool.pending().map(|c| c.header.height).collect();
        assert_eq!(order, vec![good[2].header.height]);

        // apply_block: atomic, in order, child of the tip only.
        let genesis = BeaconBlock::genesis(state.root());
        let mut committed = state.clone().with_tip(genesis.hash());
        let block = |crosslinks: Vec<Crosslink>, parent: &BeaconBlock| BeaconBlock {
            header: BlockHeader {
                chain: ChainRef::Beacon,
                height: parent.header.height + 1,
                parent: parent.hash(),
                timestamp_ms: parent.header.timestamp_ms + 1,
                body_root: BeaconBlock::compute_body_root(&crosslinks, &[]),
                ..parent.header.clone()
            },
            crosslinks,
            config_changes: Vec::new(),
            evidence: Vec::new(),
        };
        let out_of_order = block(vec![good[0].clone(), good[2].clone()], &genesis);
        let before = committed.clone();
        assert!(matches!(
            committed.apply_block(&out_of_order),
            Err(ApplyError::Crosslink { index: 1, .. })
        ));
        assert_eq!(committed, before);
        let b1 = block(vec![good[0].clone(), good[1].clone()], &genesis);
        committed.apply_block(&b1).unwrap();
        assert_eq!(committed.height(), 1);
        assert_eq!(committed.last_height(SHARD), good[1].header.height);
        assert!(matches!(
            committed.apply_block(&b1),
            Err(ApplyError::NotAChild { .. })
        ));

        // Retention keeps the newest roots per shard.
        let mut small = state.clone().with_retention(2);
        for cl in &good {
            small.accept_crosslink(cl, &mut ctx).unwrap();
        }
        assert_eq!(small.receipts_roots().len(), 2);
        assert!(small.receipts_root(SHARD, good[3].header.height).is_some());
        assert!(small.receipts_root(SHARD, good[0].header.height).is_none());
    });
}

/// A Byzantine proposer's beacon block fails `verify` whenever one crosslink is invalid (even
/// with a consistent body root) or a root is wrong; an honest proposal verifies.
#[test]
fn byzantine_beacon_block_fails_verify() {
    let (good, rogue) = collect_crosslinks(23, 3);
    runner(24).start(|ctx| async move {
        let initial = initial_state();
        let genesis = BeaconBlock::genesis(initial.root());
        let leader = key(0).public_key();
        let mut proposer = BeaconApp::new(
            ctx.child("proposer"),
            initial.clone(),
            &genesis,
            CrosslinkPool::default(),
        );
        for cl in &good {
            proposer.submit(cl.clone()).unwrap();
        }
        let pctx = ProposeCtx {
            chain: ChainRef::Beacon,
            epoch: 0,
            view: 1,
            height: 1,
            now_ms: 1_000,
            leader,
        };
        let honest = proposer.propose(&genesis, pctx).await.unwrap();
        assert_eq!(honest.crosslinks, good);
        let vctx = VerifyCtx {
            chain: ChainRef::Beacon,
            epoch: 0,
            view: 1,
            leader,
        };
        let verifier = || {
            BeaconApp::new(
                ctx.child("verifier"),
                initial.clone(),
                &genesis,
                CrosslinkPool::default(),
            )
        };
        assert!(verifier().verify(&genesis, &honest, vctx.clone()).await);

        // Rebuild a block around `crosslinks` with consistent body root and the state root
        // the honest rules would give (so only the crosslink check can fail).
        let forge = |crosslinks: Vec<Crosslink>| {
            let mut b = honest.clone();
            b.header.body_root = BeaconBlock::compute_body_root(&crosslinks, &[]);
            b.crosslinks = crosslinks;
            b
        };
        let cases: Vec<(&str, BeaconBlock)> = vec![
            (
                "tampered certificate",
                forge(vec![good[0].clone(), tampered(&good[1])]),
            ),
            ("other shard's namespace", forge(vec![rogue[0].clone()])),
            ("content mismatch", forge(vec![content_mismatch(&good[0])])),
            (
                "duplicate height",
                forge(vec![good[0].clone(), good[0].clone()]),
            ),
            ("regression", forge(vec![good[1].clone(), good[0].clone()])),
            ("body root mismatch", {
                let mut b = honest.clone();
                b.crosslinks.pop();
                b
            }),
            ("state root mismatch", {
                let mut b = honest.clone();
                b.header.state_root = Hash::ZERO;
                b
            }),
        ];
        for (what, block) in cases {
            assert!(
                !verifier().verify(&genesis, &block, vctx.clone()).await,
                "{what} must fail verify"
            );
        }
        // Wrong leader.
        let other = VerifyCtx {
            leader: key(1).public_key(),
            ..vctx
        };
        assert!(!verifier().verify(&genesis, &honest, other).await);
    });
}

/// A restarted beacon member knows only its committed state: blocks it verified before the
/// restart are `Unknown` until adopted from their known parent (with the checks of verify, so
/// a block that does not apply is refused); then children of them verify at once. Blocks at or
/// below the committed height that are not committed are `Never`.
#[test]
fn restarted_member_adopts_certified_ancestors() {
    let (good, _) = collect_crosslinks(25, 2);
    runner(26).start(|ctx| async move {
        let initial = initial_state();
        let genesis = BeaconBlock::genesis(initial.root());
        let leader = key(0).public_key();
        let mut proposer = BeaconApp::new(
            ctx.child("proposer"),
            initial.clone(),
            &genesis,
            CrosslinkPool::default(),
        );
        for cl in &good {
            proposer.submit(cl.clone()).unwrap();
        }
        let pctx = |height: u64| ProposeCtx {
            chain: ChainRef::Beacon,
            epoch: 0,
            view: height,
            height,
            now_ms: 1_000 * height,
            leader,
        };
        let b1 = proposer.propose(&genesis, pctx(1)).await.unwrap();
        assert_eq!(b1.crosslinks, good);
        let b2 = proposer.propose(&b1, pctx(2)).await.unwrap();
        let b3 = proposer.propose(&b2, pctx(3)).await.unwrap();

        let mut restarted = BeaconApp::new(
            ctx.child("restarted"),
            initial.clone(),
            &genesis,
            CrosslinkPool::default(),
        );
        assert_eq!(restarted.state_after(&genesis).await, StateAfter::Known);
        assert_eq!(restarted.state_after(&b1).await, StateAfter::Unknown);
        assert_eq!(restarted.state_after(&b2).await, StateAfter::Unknown);
        // Only from a known parent, and only a block that applies.
        assert!(!restarted.adopt(&b1, &b2).await);
        let mut wrong_root = b1.clone();
        wrong_root.header.state_root = Hash::ZERO;
        assert!(!restarted.adopt(&genesis, &wrong_root).await);
        let mut tampered_cl = b1.clone();
        tampered_cl.crosslinks[1] = tampered(&good[1]);
        tampered_cl.header.body_root = BeaconBlock::compute_body_root(&tampered_cl.crosslinks, &[]);
        assert!(!restarted.adopt(&genesis, &tampered_cl).await);
        assert_eq!(restarted.state_after(&b1).await, StateAfter::Unknown);

        assert!(restarted.adopt(&genesis, &b1).await);
        assert!(restarted.adopt(&b1, &b2).await);
        assert_eq!(restarted.state_after(&b2).await, StateAfter::Known);
        let vctx = VerifyCtx {
            chain: ChainRef::Beacon,
            epoch: 0,
            view: 3,
            leader,
        };
        assert!(restarted.verify(&b2, &b3, vctx).await);

        restarted
            .finalized(Finalized {
                block: b1.clone(),
                certificate: None,
            })
            .await;
        assert_eq!(restarted.state_after(&b1).await, StateAfter::Known);
        assert_eq!(restarted.state_after(&genesis).await, StateAfter::Never);
        assert_eq!(restarted.state_after(&wrong_root).await, StateAfter::Never);
        assert_eq!(restarted.state_after(&b3).await, StateAfter::Known);
    });
}

/// Shard 1 (4 validators), a rogue committee and the beacon chain (4 validators) on one
/// simulated network: every certified shard-1 block is crosslinked, the beacon finalizes the
/// crosslinks in height order on every beacon validator and publishes their receipts roots;
/// tampered, foreign-namespace, content-mismatched and duplicate submissions are rejected at
/// admission and never appear in a beacon block.
#[test]
fn beacon_finalizes_shard_crosslinks() {
    let seed = 25;
    eprintln!("beacon_sim: seed {seed}");
    let started = Instant::now();
    runner(seed).start(|ctx| async move {
        let oracle = setup_network(&ctx, 4).await;
        let initial = initial_state();
        let genesis = BeaconBlock::genesis(initial.root());
        let shard = ShardTestApp::new(SHARD);
        let rogue = ShardTestApp::new(SHARD);
        let mut beacons = Vec::new();
        for i in 0..4 {
            let beacon = BeaconApp::new(
                ctx.child("beacon_app").with_attribute("index", i),
                initial.clone(),
                &genesis,
                CrosslinkPool::default(),
            );
            beacons.push(beacon.clone());
            let apps = vec![
                NodeApp::Shard(
                    ChainRef::Shard(SHARD),
                    if i == 0 {
                        shard.clone()
                    } else {
                        ShardTestApp::new(SHARD)
                    },
                ),
                NodeApp::Shard(
                    ChainRef::Shard(ROGUE),
                    if i == 0 {
                        rogue.clone()
                    } else {
                        ShardTestApp::new(SHARD)
                    },
                ),
                NodeApp::Beacon(beacon, Box::new(genesis.clone())),
            ];
            start_node(&ctx, &oracle, i, apps).await;
        }

        // Relay: submit every new certified shard-1 block to every beacon validator, preceded
        // by forged variants and followed by a duplicate.
        const TARGET: usize = 10;
        let mut submitted: Vec<Crosslink> = Vec::new();
        let mut rejected = 0usize;
        let mut regressions = 0usize;
        while submitted.len() < TARGET {
            ctx.sleep(Duration::from_millis(100)).await;
            let rogue_links = rogue.crosslinks();
            for cl in shard.crosslinks() {
                if submitted
                    .iter()
                    .any(|s| s.header.height >= cl.header.height)
                {
                    continue;
                }
                let foreign = rogue_links
                    .iter()
                    .find(|r| r.header.height > cl.header.height)
                    .cloned();
                for b in beacons.iter_mut() {
                    let mut bad = vec![tampered(&cl), content_mismatch(&cl)];
                    bad.extend(foreign.clone());
                    for x in bad {
                        let r = b.submit(x);
                        assert!(
                            matches!(r, Err(PoolRejection::Invalid(_))),
                            "forged crosslink admitted: {r:?}"
                        );
                        rejected += 1;
                    }
                    b.submit(cl.clone()).unwrap();
                    assert!(matches!(
                        b.submit(cl.clone()),
                        Err(PoolRejection::Duplicate { .. })
                    ));
                    // A regression below what the beacon already finalized.
                    if let Some(old) = submitted.first()
                        && b.committed().last_height(SHARD) >= old.header.height
                    {
                        assert!(matches!(
                            b.submit(old.clone()),
                            Err(PoolRejection::Invalid(CrosslinkRejection::NotAbove { .. }))
                        ));
                        regressions += 1;
                    }
                }
                submitted.push(cl);
            }
        }
        let last = submitted[TARGET - 1].header.height;
        wait_until(&ctx, "beacon finalizes the crosslinks", || {
            beacons
                .iter()
                .all(|b| b.committed().last_height(SHARD) >= last)
        })
        .await;

        // Same crosslinks, in height order, on every beacon validator; only valid ones.
        let published: Vec<Vec<FinalizedCrosslink>> = beacons
            .iter()
            .map(|b| b.finalized_crosslinks().since(0))
            .collect();
        for p in &published {
            assert_eq!(p, &published[0], "beacon validators disagree");
        }
        let finalized: Vec<Crosslink> = published[0].iter().map(|f| f.crosslink.clone()).collect();
        assert!(finalized.len() >= TARGET);
        assert_eq!(finalized[..], submitted[..finalized.len()]);
        assert!(
            finalized
                .windows(2)
                .all(|w| w[0].header.height < w[1].header.height)
        );
        assert!(
            published[0]
                .windows(2)
                .all(|w| w[0].beacon_height <= w[1].beacon_height)
        );
        let table = beacons[1].finalized_crosslinks();
        for cl in &finalized {
            assert_eq!(
                table.receipts_root(SHARD, cl.header.height),
                Some(cl.header.receipts_root)
            );
        }
        for b in &beacons {
            assert_eq!(b.pool_len(), submitted.len() - finalized.len());
        }
        assert!(oracle.blocked().await.unwrap().is_empty());
        let beacon_heights: Vec<u64> = beacons.iter().map(|b| b.committed().height()).collect();
        eprintln!(
            "beacon_sim seed {seed}: {} crosslinks finalized (shard heights up to {last}) \
             at beacon heights {beacon_heights:?}; {rejected} forged and {regressions} \
             regressed submissions rejected; {:.1}s simulated, {:.2}s wall",
            finalized.len(),
            ctx.current()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    });
}

/// A beacon block child of `parent` carrying `changes` (no crosslinks), with consistent body
/// and state roots for `state` (the state after `parent`).
fn config_block(
    state: &BeaconState,
    parent: &BeaconBlock,
    changes: Vec<ConfigChange>,
) -> BeaconBlock {
    let height = parent.header.height + 1;
    let mut after = state.clone();
    for c in &changes {
        let _ = after.accept_config_change(c, height);
    }
    BeaconBlock {
        header: BlockHeader {
            chain: ChainRef::Beacon,
            height,
            parent: parent.hash(),
            timestamp_ms: parent.header.timestamp_ms + 1,
            body_root: BeaconBlock::compute_body_root(&[], &changes),
            state_root: after.root(),
            ..parent.header.clone()
        },
        crosslinks: Vec::new(),
        config_changes: changes,
        evidence: Vec::new(),
    }
}

/// A configuration change applies only when signed by the authority, next in sequence, in
/// range and touching only consensus-level fields; it takes effect at the including height +
/// [`CONFIG_ACTIVATION_DELAY`], the state root commits to it, and a replay is refused.
#[test]
fn config_changes_apply_at_the_stated_height_only_when_authorized() {
    let authority = key(77);
    let state = initial_state().with_config_authority(Some(authority.public_key()));
    let genesis = BeaconBlock::genesis(state.root());
    let mut s = state.clone().with_tip(genesis.hash());
    let new = ShardConfig {
        batch_size: 7,
        smart_contracts_enabled: false,
        ..ShardConfig::default()
    };
    let change = ConfigChange::sign(&net_id(), 1, new.clone(), &authority);
    assert!(change.signature_valid(&net_id()));

    // Refusals, each with its reason; none changes the state.
    let unsigned_net = initial_state().with_tip(genesis.hash());
    assert_eq!(
        unsigned_net.check_config_change(&change),
        Err(ConfigRejection::NoAuthority)
    );
    let by_other = ConfigChange::sign(&net_id(), 1, new.clone(), &key(78));
    assert_eq!(
        s.check_config_change(&by_other),
        Err(ConfigRejection::NotAuthority(key(78).public_key()))
    );
    let mut forged = change.clone();
    forged.config.batch_size = 8;
    assert_eq!(
        s.check_config_change(&forged),
        Err(ConfigRejection::BadSignature)
    );
    let other_network = ConfigChange::sign(
        &NetworkId::new("other").unwrap(),
        1,
        new.clone(),
        &authority,
    );
    assert_eq!(
        s.check_config_change(&other_network),
        Err(ConfigRejection::BadSignature)
    );
    let skipped = ConfigChange::sign(&net_id(), 2, new.clone(), &authority);
    assert_eq!(
        s.check_config_change(&skipped),
        Err(ConfigRejection::WrongSeq {
            expected: 1,
            got: 2
        })
    );
    let zero_batch = ShardConfig {
        batch_size: 0,
        ..ShardConfig::default()
    };
    assert!(matches!(
        s.check_config_change(&ConfigChange::sign(&net_id(), 1, zero_batch, &authority)),
        Err(ConfigRejection::Invalid(_))
    ));
    let reshard = ShardConfig {
        num_shards: 8,
        ..ShardConfig::default()
    };
    assert_eq!(
        s.check_config_change(&ConfigChange::sign(&net_id(), 1, reshard, &authority)),
        Err(ConfigRejection::Fixed("num_shards"))
    );
    let bad_block = config_block(&s, &genesis, vec![by_other]);
    let before = s.clone();
    assert!(matches!(
        s.apply_block(&bad_block),
        Err(ApplyError::Config(ConfigRejection::NotAuthority(_)))
    ));
    assert_eq!(s, before);

    // Applied at height 1: in force from 1 + delay, the root commits to it.
    let b1 = config_block(&s, &genesis, vec![change.clone()]);
    s.apply_block(&b1).unwrap();
    assert_eq!(s.root(), b1.header.state_root);
    let effective = 1 + CONFIG_ACTIVATION_DELAY;
    assert_eq!(
        s.latest_config(),
        &ScheduledConfig {
            seq: 1,
            effective_height: effective,
            config: new.clone(),
            layout: s.layout_at(0).clone(),
        }
    );
    assert_eq!(
        s.config(),
        &ShardConfig::default(),
        "not in force at height 1"
    );
    assert_eq!(s.config_at(effective - 1), &ShardConfig::default());
    assert_eq!(s.config_at(effective), &new);
    assert_eq!(s.config_at(u64::MAX), &new);
    let mut empty = state.clone().with_tip(genesis.hash());
    empty
        .apply_block(&config_block(&empty, &genesis, Vec::new()))
        .unwrap();
    assert_ne!(empty.root(), s.root());

    // A replay of the same change is refused; the next seq is accepted.
    let before = s.clone();
    assert!(matches!(
        s.apply_block(&config_block(&s, &b1, vec![change])),
        Err(ApplyError::Config(ConfigRejection::WrongSeq {
            expected: 2,
            got: 1
        }))
    ));
    assert_eq!(s, before);
    let back = ConfigChange::sign(&net_id(), 2, ShardConfig::default(), &authority);
    let b2 = config_block(&s, &b1, vec![back]);
    s.apply_block(&b2).unwrap();
    assert_eq!(s.config_at(effective), &new);
    assert_eq!(
        s.config_at(2 + CONFIG_ACTIVATION_DELAY),
        &ShardConfig::default()
    );
    assert_eq!(s.config_history().count(), 3);
}

/// Account moves in a change place the accounts on their new shards from the effective
/// height on (the layout, the migrations between two stamps, the state root), a block stamp
/// may cross one layout change only, and bad moves are refused with their reason.
#[test]
fn account_moves_take_effect_at_the_stated_height() {
    let authority = key(77);
    let state = initial_state().with_config_authority(Some(authority.public_key()));
    let genesis = BeaconBlock::genesis(state.root());
    let mut s = state.clone().with_tip(genesis.hash());
    let alice = AccountId::new("alice").unwrap();
    let bob = AccountId::new("bob").unwrap();
    let home = |a: &AccountId| s.layout_at(0).shard_of_account(a);
    let (alice_home, bob_home) = (home(&alice), home(&bob));
    let other = |h: ShardId| ShardId((h.0 + 1) % 4);
    let order = |a: &AccountId, to: ShardId| AccountMoveOrder {
        account: a.clone(),
        to,
    };
    let sign = |seq, moves| {
        ConfigChange::sign_with_moves(&net_id(), seq, ShardConfig::default(), moves, &authority)
    };

    // Refusals, each with its reason.
    let refused = |moves: Vec<AccountMoveOrder>| match s.check_config_change(&sign(1, moves)) {
        Err(ConfigRejection::BadMove(m)) => m,
        other => panic!("expected a refused move, got {other:?}"),
    };
    assert!(refused(vec![order(&alice, alice_home)]).contains("already lives"));
    assert!(refused(vec![order(&alice, ShardId(9))]).contains("unknown shard"));
    assert!(
        refused(vec![
            order(&alice, other(alice_home)),
            order(&alice, bob_home)
        ])
        .contains("twice")
    );
    let contract = vision_types::ContractId::from_deploy(&Hash::sha256(b"c"));
    assert!(
        refused(vec![order(
            &AccountId::new(contract.as_str()).unwrap(),
            ShardId(0)
        )])
        .contains("contract")
    );
    let many = (0..MAX_MOVES_PER_CHANGE + 1)
        .map(|i| {
            let a = AccountId::new(format!("user{i}")).unwrap();
            let to = other(s.layout_at(0).shard_of_account(&a));
            order(&a, to)
        })
        .collect();
    assert!(refused(many).contains("at most"));
    // A tampered move list breaks the signature.
    let mut tampered = sign(1, vec![order(&alice, other(alice_home))]);
    tampered.moves[0].to = other(other(alice_home));
    assert_eq!(
        s.check_config_change(&tampered),
        Err(ConfigRejection::BadSignature)
    );

    // Applied at height 1: in force from 1 + delay.
    let moves = vec![
        order(&alice, other(alice_home)),
        order(&bob, other(bob_home)),
    ];
    let b1 = config_block(&s, &genesis, vec![sign(1, moves)]);
    let before_root = s.root();
    s.apply_block(&b1).unwrap();
    assert_eq!(s.root(), b1.header.state_root);
    assert_ne!(s.root(), before_root);
    let effective = 1 + CONFIG_ACTIVATION_DELAY;
    assert_eq!(
        s.layout_at(effective - 1).shard_of_account(&alice),
        alice_home
    );
    assert_eq!(
        s.layout_at(effective).shard_of_account(&alice),
        other(alice_home)
    );
    assert_eq!(s.latest_layout().shard_of_account(&bob), other(bob_home));
    assert!(s.migrations(0, effective - 1).is_empty());
    let mut want = vec![
        Migration {
            account: alice.clone(),
            from: alice_home,
            to: other(alice_home),
        },
        Migration {
            account: bob.clone(),
            from: bob_home,
            to: other(bob_home),
        },
    ];
    want.sort_by(|a, b| a.account.cmp(&b.account));
    assert_eq!(s.migrations(0, effective), want);
    assert_eq!(s.migrations(effective, effective + 5), Vec::new());

    // A second change moves alice back home: a stamp may cross only one of the two.
    let b2 = config_block(&s, &b1, vec![sign(2, vec![order(&alice, alice_home)])]);
    s.apply_block(&b2).unwrap();
    let effective2 = 2 + CONFIG_ACTIVATION_DELAY;
    assert_eq!(s.stamp_limit(0, effective2 + 3), effective2 - 1);
    assert_eq!(s.stamp_limit(effective, effective2 + 3), effective2 + 3);
    assert_eq!(
        s.migrations(effective, effective2),
        vec![Migration {
            account: alice.clone(),
            from: other(alice_home),
            to: alice_home,
        }]
    );
    // Moved home: the override is gone; a configuration-only change keeps the layout.
    assert_eq!(s.layout_at(effective2).shard_of_account(&alice), alice_home);
    let b3 = config_block(
        &s,
        &b2,
        vec![ConfigChange::sign(
            &net_id(),
            3,
            ShardConfig::default(),
            &authority,
        )],
    );
    s.apply_block(&b3).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        s.latest_layout(),
        s.layout_at(effective2)
    ));
    assert_eq!(s.stamp_limit(effective, u64::MAX), u64::MAX);
}

/// The app pools a submitted change, its proposer includes it once, a verifier accepts that
/// block and refuses one whose change is not the authority's (roots made consistent).
#[test]
fn proposer_includes_a_pooled_config_change_and_verifiers_check_it() {
    runner(31).start(|ctx| async move {
        let authority = key(77);
        let initial = initial_state().with_config_authority(Some(authority.public_key()));
        let genesis = BeaconBlock::genesis(initial.root());
        let leader = key(0).public_key();
        let app = |name: &'static str| {
            BeaconApp::new(
                ctx.child(name),
                initial.clone(),
                &genesis,
                CrosslinkPool::default(),
            )
        };
        let mut proposer = app("proposer");
        let new = ShardConfig {
            batch_timeout_ms: 1_234,
            ..ShardConfig::default()
        };
        let change = ConfigChange::sign(&net_id(), 1, new, &authority);
        assert!(!proposer.has_pending_work());
        assert!(matches!(
            proposer.submit_config(ConfigChange::sign(
                &net_id(),
                1,
                ShardConfig::default(),
                &key(5)
            )),
            Err(ConfigRejection::NotAuthority(_))
        ));
        proposer.submit_config(change.clone()).unwrap();
        proposer.submit_config(change.clone()).unwrap(); // a resend is harmless
        assert_eq!(proposer.pending_configs(), 1);
        assert!(proposer.has_pending_work());
        let pctx = ProposeCtx {
            chain: ChainRef::Beacon,
            epoch: 0,
            view: 1,
            height: 1,
            now_ms: 1_000,
            leader,
        };
        let block = proposer.propose(&genesis, pctx).await.unwrap();
        assert_eq!(block.config_changes, vec![change]);
        let vctx = VerifyCtx {
            chain: ChainRef::Beacon,
            epoch: 0,
            view: 1,
            leader,
        };
        assert!(app("verifier").verify(&genesis, &block, vctx.clone()).await);

        let rogue = ConfigChange::sign(&net_id(), 1, ShardConfig::default(), &key(5));
        let mut forged = block.clone();
        forged.header.body_root = BeaconBlock::compute_body_root(&[], std::slice::from_ref(&rogue));
        forged.config_changes = vec![rogue];
        assert!(!app("verifier2").verify(&genesis, &forged, vctx).await);

        // Finalizing drops it from the pool; the change is in force from the stated height.
        proposer
            .finalized(Finalized {
                block: block.clone(),
                certificate: None,
            })
            .await;
        assert_eq!(proposer.pending_configs(), 0);
        assert!(!proposer.has_pending_work());
        proposer.finalized_crosslinks().with_view(|s| {
            let s = s.expect("a committed state");
            assert_eq!(
                s.config_at(1 + CONFIG_ACTIVATION_DELAY).batch_timeout_ms,
                1_234
            );
            assert_eq!(s.config_at(1).batch_timeout_ms, 500);
        });
    });
}

/// A beacon state of SHARD, ROGUE and DST, each with committee `members(0..4)`.
fn three_shard_state() -> BeaconState {
    let committee = ShardCommittee {
        epoch: 0,
        members: members(0..4),
    };
    let committees: BTreeMap<ShardId, ShardCommittee> = [SHARD, ROGUE, DST]
        .into_iter()
        .map(|s| (s, committee.clone()))
        .collect();
    BeaconState::new(net_id(), 0, committees, ShardConfig::default())
}

/// A crosslink of `SHARD` at `height` carrying `dests` (content consistent, no certificate:
/// only [`BeaconState::check_sequence`] is exercised).
fn bare_crosslink(height: u64, dests: Vec<DestinationBatch>) -> Crosslink {
    let mut header = shard_header(SHARD, 0, height, Hash::ZERO, height, PublicKey([0; 32]));
    header.receipts_root = Crosslink::destinations_root(&dests);
    header.batch_txs_root = Crosslink::batch_txs_root(&[]);
    Crosslink {
        header,
        destinations: dests,
        batched_txs: Vec::new(),
        prsm_events: Vec::new(),
        certificate: Vec::new(),
        ancestry: Vec::new(),
    }
}

fn entry(dst: ShardId, first_seq: u64, count: u32) -> DestinationBatch {
    DestinationBatch {
        dst,
        first_seq,
        count,
        root: Hash::sha256_parts(&[b"entry", &first_seq.to_be_bytes()]),
    }
}

/// Crosslinks of one shard can reach the beacon out of order. A crosslink carrying receipts
/// that arrives after a later one (with receipts for other destinations) was finalized is
/// still accepted, since it continues its streams; the shard's last height does not go back;
/// replays and stale crosslinks without receipts are refused; a stale crosslink that skips
/// part of a stream is refused as out of order.
#[test]
fn crosslink_carrying_receipts_is_accepted_below_the_last_height() {
    let mut state = three_shard_state();
    let to_rogue = bare_crosslink(7, vec![entry(ROGUE, 0, 2)]);
    let to_dst = bare_crosslink(10, vec![entry(DST, 0, 1)]);

    // Height 10 is finalized first (height 7's crosslink was lost on the way to the leader).
    assert_eq!(state.check_sequence(&to_dst), Ok(SHARD));
    state.record(SHARD, &to_dst);
    assert_eq!(state.last_height(SHARD), 10);

    // Height 7 still continues the SHARD -> ROGUE stream: accepted, last height stays 10.
    assert!(state.may_accept(SHARD, &to_rogue));
    assert_eq!(state.check_sequence(&to_rogue), Ok(SHARD));
    state.record(SHARD, &to_rogue);
    assert_eq!(state.last_height(SHARD), 10);
    assert_eq!(state.next_seq(SHARD, ROGUE), 2);
    assert_eq!(state.next_seq(SHARD, DST), 1);
    assert_eq!(
        state.receipts_root(SHARD, 7),
        Some(to_rogue.header.receipts_root)
    );

    // Replays of either are refused as not above the last height.
    for old in [&to_rogue, &to_dst] {
        assert!(!state.may_accept(SHARD, old));
        assert!(matches!(
            state.check_sequence(old),
            Err(CrosslinkRejection::NotAbove { last: 10, .. })
        ));
    }
    // A stale crosslink without receipts carries nothing to wait for.
    let empty = bare_crosslink(8, Vec::new());
    assert!(!state.may_accept(SHARD, &empty));
    assert!(matches!(
        state.check_sequence(&empty),
        Err(CrosslinkRejection::NotAbove { .. })
    ));
    // A stale crosslink that would skip seqs 2..5 of the ROGUE stream is out of order.
    let gap = bare_crosslink(9, vec![entry(ROGUE, 5, 1)]);
    assert_eq!(
        state.check_sequence(&gap),
        Err(CrosslinkRejection::OutOfOrder {
            src: SHARD.0,
            dst: ROGUE.0,
            expected: 2,
            got: 5
        })
    );
    // Above the last height the usual rules hold.
    let next = bare_crosslink(11, vec![entry(ROGUE, 2, 3), entry(DST, 1, 1)]);
    assert!(state.may_accept(SHARD, &next));
    assert_eq!(state.check_sequence(&next), Ok(SHARD));
}

/// `bare_crosslink` of `SHARD` at `height` carrying PRSM `events` (header root to match).
fn prsm_crosslink(height: u64, events: Vec<PrsmEvent>) -> Crosslink {
    let mut cl = bare_crosslink(height, Vec::new());
    cl.header.prsm_root = PrsmEvent::root(&events);
    cl.prsm_events = events;
    cl
}

/// PRSM events in crosslinks: the beacon takes each shard's stream in order and once (a gap
/// is out of order, a replay not above; a crosslink with events, like one with receipts, may
/// come below the last height), opens a coordinated proposal on its submission with a
/// deadline 60 s after that beacon block's time, decides it by the 67% rule on the votes, and
/// fails an undecided one at the first beacon block whose time reaches the deadline. The
/// table is in the state root.
#[test]
fn beacon_records_prsm_results_from_crosslinked_events() {
    let mut state = three_shard_state();
    let ev = |seq: u64, id: u8, kind: PrsmEventKind| PrsmEvent {
        seq,
        proposal: Hash([id; 32]),
        kind,
    };
    let submitted = |seq, id| {
        let targets = vec![SHARD, ROGUE, DST];
        ev(seq, id, PrsmEventKind::Submitted { targets })
    };
    // Only SHARD's crosslinks can be built here, so every vote below is SHARD's own (the
    // coordinator votes as a target); the others' come through `PrsmTable` in its own tests.
    let yes = |seq, id| {
        let kind = PrsmEventKind::Voted {
            coordinator: SHARD,
            accepted: true,
            height: 9,
        };
        ev(seq, id, kind)
    };
    let root0 = state.root();
    // Block 1 (t = 1 s): proposal 1 submitted with SHARD's vote.
    state.begin_block(1_000);
    let first = prsm_crosslink(10, vec![submitted(0, 1), yes(1, 1)]);
    assert_eq!(state.check_sequence(&first), Ok(SHARD));
    state.record(SHARD, &first);
    let p = state.prsm().get(&Hash([1; 32])).unwrap().clone();
    assert_eq!((p.opened_height, p.deadline_ms), (1, 61_000));
    assert_eq!(
        (p.votes.len(), p.outcome),
        (1, None),
        "1 of 3 decides nothing"
    );
    assert_ne!(state.root(), root0, "the table is in the state root");
    // A replay is not above; a gap is out of order; a later one with events is taken even
    // below the last height once it continues the stream.
    assert!(!state.may_accept(SHARD, &first));
    assert!(matches!(
        state.check_sequence(&first),
        Err(CrosslinkRejection::NotAbove { .. })
    ));
    let gap = prsm_crosslink(12, vec![submitted(3, 2)]);
    assert_eq!(
        state.check_sequence(&gap),
        Err(CrosslinkRejection::PrsmOutOfOrder {
            shard: SHARD.0,
            expected: 2,
            got: 3
        })
    );
    // Block 2 (t = 2 s).
    state.begin_block(2_000);
    let late = prsm_crosslink(12, vec![submitted(2, 2)]);
    state.record(SHARD, &late);
    let below = prsm_crosslink(11, vec![yes(3, 2)]);
    assert!(state.may_accept(SHARD, &below));
    assert_eq!(state.check_sequence(&below), Ok(SHARD));
    state.record(SHARD, &below);
    assert_eq!(state.last_height(SHARD), 12);
    assert_eq!(state.prsm().next_seq(SHARD), 4);
    // Tampered content never gets this far: the events are committed by the header.
    let mut tampered = prsm_crosslink(13, vec![yes(4, 1)]);
    tampered.prsm_events[0].proposal = Hash([2; 32]);
    assert!(matches!(
        state.check_sequence(&tampered),
        Err(CrosslinkRejection::Content(CrosslinkError::PrsmEvents))
    ));
    // Beacon time: just before the deadline nothing fails; at it, proposal 1 times out.
    state.begin_block(60_999);
    assert_eq!(state.prsm().get(&Hash([1; 32])).unwrap().outcome, None);
    state.begin_block(61_000);
    let p = state.prsm().get(&Hash([1; 32])).unwrap();
    assert_eq!(p.outcome, Some(GlobalOutcome::TimedOut));
    assert!(p.failure().unwrap().contains("timed out"));
    assert_eq!(state.prsm().open_count(), 1, "proposal 2 opened later");
}

// ---------------------------------------------------------------------------------------------
// Reputation records.

/// An encoded finalization of `hash` (epoch 0, view 5) on `SHARD`'s namespace, signed by the
/// validators `signers` of the committee `members(0..4)`.
fn finalization_by(signers: &[usize], hash: &Hash) -> Vec<u8> {
    use crate::certificate::{Scheme, encode_certificate, to_digest};
    use commonware_consensus::{
        simplex::types::{Finalization, Finalize, Proposal},
        types::{Epoch, Round, View},
    };
    use commonware_parallel::Sequential;
    let ns = namespace(&net_id(), ChainRef::Shard(SHARD), 0);
    let set = crate::keys::committee_set(&members(0..4)).unwrap();
    let proposal = Proposal::new(
        Round::new(Epoch::new(0), View::new(5)),
        View::new(4),
        to_digest(hash),
    );
    let votes: Vec<_> = signers
        .iter()
        .map(|&i| {
            let scheme =
                Scheme::signer(&ns, set.clone(), crate::keys::to_cw_private_key(&key(i))).unwrap();
            Finalize::sign(&scheme, proposal.clone()).unwrap()
        })
        .collect();
    let verifier = Scheme::verifier(&ns, set);
    let f = Finalization::from_finalizes(
        &verifier,
        commonware_utils::non_empty![@&votes],
        &Sequential,
    )
    .unwrap();
    encode_certificate(&f)
}

/// A crosslink of `SHARD` at `height` (parent `parent`, proposed by validator `proposer`),
/// with `ancestry`, certified (the last header) by `signers`.
fn signed_crosslink(
    height: u64,
    parent: Hash,
    proposer: usize,
    ancestry: Vec<BlockHeader>,
    signers: &[usize],
) -> Crosslink {
    let header = shard_header(SHARD, 0, height, parent, height, key(proposer).public_key());
    let certified = ancestry
        .last()
        .map_or_else(|| header.hash(), BlockHeader::hash);
    Crosslink {
        header,
        destinations: dests(SHARD, height),
        batched_txs: txs(height),
        prsm_events: Vec::new(),
        certificate: finalization_by(signers, &certified),
        ancestry,
    }
}

/// Counters `(finalize_votes, missed, blocks_finalized, beacon_blocks_finalized)` of validator
/// `i`.
fn counters(state: &BeaconState, i: usize) -> (u64, u64, u64, u64) {
    let r = state.reputation(&key(i).public_key()).unwrap();
    (
        r.finalize_votes,
        r.missed,
        r.blocks_finalized,
        r.beacon_blocks_finalized,
    )
}

/// A certificate with 3 of 4 signers credits 3 votes and 1 miss, and the crosslinked block's
/// proposer; a replay, or another crosslink carrying an already credited certificate, credits
/// nothing; the counters enter the state root; replicas applying the same beacon block agree
/// with the proposer's root; the score follows the counters and starts at the prior.
#[test]
fn reputation_is_credited_from_crosslink_certificates() {
    runner(31).start(|mut ctx| async move {
        let priors: BTreeMap<PublicKey, vision_sharding::Reputation> = [(
            key(3).public_key(),
            vision_sharding::Reputation::from_ppm(500_000).unwrap(),
        )]
        .into_iter()
        .collect();
        let genesis = initial_state().with_reputation_priors(&priors);
        let genesis_block = BeaconBlock::genesis(genesis.root());
        let genesis = genesis.with_tip(genesis_block.hash());
        // Priors: stated, or the default; no events yet.
        assert_eq!(genesis.reputations().len(), 4);
        assert_eq!(
            genesis.reputation(&key(3).public_key()).unwrap().score(),
            priors[&key(3).public_key()]
        );
        assert_eq!(
            genesis
                .reputation(&key(0).public_key())
                .unwrap()
                .score()
                .ppm(),
            DEFAULT_REPUTATION_PRIOR_PPM
        );
        for i in 0..4 {
            assert_eq!(counters(&genesis, i), (0, 0, 0, 0));
        }

        // Height 1, proposed by validator 2, certified by 0, 1 and 3.
        let cl1 = signed_crosslink(1, Hash::ZERO, 2, Vec::new(), &[0, 1, 3]);
        let mut proposer_state = genesis.clone();
        proposer_state.accept_crosslink(&cl1, &mut ctx).unwrap();
        assert_eq!(counters(&proposer_state, 0), (1, 0, 0, 0));
        assert_eq!(counters(&proposer_state, 1), (1, 0, 0, 0));
        assert_eq!(counters(&proposer_state, 2), (0, 1, 1, 0));
        assert_eq!(counters(&proposer_state, 3), (1, 0, 0, 0));
        assert_ne!(
            proposer_state.root(),
            genesis.root(),
            "counters are committed"
        );
        // The same crosslink signed by another quorum gives another root.
        let mut other = genesis.clone();
        other
            .accept_crosslink(
                &signed_crosslink(1, Hash::ZERO, 2, Vec::new(), &[0, 1, 2]),
                &mut ctx,
            )
            .unwrap();
        assert_ne!(other.root(), proposer_state.root());
        // Scores: more votes never lower it, a miss lowers it below the prior.
        let score = |s: &BeaconState, i: usize| s.reputation(&key(i).public_key()).unwrap().score();
        assert!(score(&proposer_state, 0) > score(&genesis, 0));
        assert!(score(&proposer_state, 2) < score(&genesis, 2));

        // A replay is refused and, recorded anyway, credits nothing.
        let before = proposer_state.reputations().clone();
        assert!(proposer_state.accept_crosslink(&cl1, &mut ctx).is_err());
        let mut replayed = proposer_state.clone();
        replayed.record(SHARD, &cl1);
        assert_eq!(replayed.reputations(), &before);

        // Height 2 finalized through height 3 (ancestry), all four signing: proposers of both
        // headers are credited; the crosslink of height 3 itself carries the same
        // certificate's height and credits nothing more.
        let h2 = shard_header(SHARD, 0, 2, cl1.header.hash(), 2, key(0).public_key());
        let h3 = shard_header(SHARD, 0, 3, h2.hash(), 3, key(1).public_key());
        let cl2 = signed_crosslink(2, cl1.header.hash(), 0, vec![h3.clone()], &[0, 1, 2, 3]);
        assert_eq!(cl2.header, h2);
        proposer_state.accept_crosslink(&cl2, &mut ctx).unwrap();
        assert_eq!(counters(&proposer_state, 0), (2, 0, 1, 0));
        assert_eq!(counters(&proposer_state, 1), (2, 0, 1, 0));
        assert_eq!(counters(&proposer_state, 2), (1, 1, 1, 0));
        let cl3 = signed_crosslink(3, h2.hash(), 1, Vec::new(), &[0, 1, 2, 3]);
        assert_eq!(cl3.header, h3);
        let credited = proposer_state.reputations().clone();
        proposer_state.accept_crosslink(&cl3, &mut ctx).unwrap();
        assert_eq!(proposer_state.reputations(), &credited);

        // A beacon block with the three crosslinks, proposed by validator 3, built the way
        // `propose` builds it; two replicas apply it and agree with its state root.
        let crosslinks = vec![cl1, cl2, cl3];
        proposer_state.credit_beacon_proposer(&key(3).public_key());
        let block = BeaconBlock {
            header: BlockHeader {
                chain: ChainRef::Beacon,
                epoch: 0,
                height: 1,
                parent: genesis_block.hash(),
                timestamp_ms: 1,
                proposer: key(3).public_key(),
                body_root: BeaconBlock::compute_body_root(&crosslinks, &[]),
                state_root: proposer_state.root(),
                receipts_root: Hash::ZERO,
                batch_txs_root: Hash::ZERO,
                prsm_root: Hash::ZERO,
                beacon_height: 0,
            },
            crosslinks,
            config_changes: Vec::new(),
            evidence: Vec::new(),
        };
        let mut replicas = [genesis.clone(), genesis.clone()];
        for r in &mut replicas {
            r.apply_block(&block).unwrap();
            assert_eq!(r.root(), block.header.state_root);
            assert_eq!(counters(r, 3), (2, 0, 0, 1));
        }
        assert_eq!(replicas[0], replicas[1]);
        // The full verify path (certificates re-checked) agrees too.
        let mut app_state = genesis.clone();
        for cl in &block.crosslinks {
            app_state.accept_crosslink(cl, &mut ctx).unwrap();
        }
        app_state.credit_beacon_proposer(&block.header.proposer);
        assert_eq!(app_state.root(), block.header.state_root);
        // Memory stays one record per committee member.
        assert_eq!(replicas[0].reputations().len(), 4);
    });
}

// ---------------------------------------------------------------------------------------------
// Equivocation evidence.

/// Encoded evidence that validator `i` of `SHARD`'s committee signed notarize votes for two
/// different blocks in `view` (under `ns`, or the shard's namespace).
fn conflicting_notarizes(i: usize, view: u64, ns: Option<&[u8]>) -> Vec<u8> {
    use crate::certificate::{Scheme, to_digest};
    use commonware_codec::Encode;
    use commonware_consensus::{
        simplex::types::{Activity, ConflictingNotarize, Notarize, Proposal},
        types::{Epoch, Round, View},
    };
    let shard_ns = namespace(&net_id(), ChainRef::Shard(SHARD), 0);
    let ns = ns.unwrap_or(&shard_ns);
    let set = crate::keys::committee_set(&members(0..4)).unwrap();
    let scheme = Scheme::signer(ns, set, crate::keys::to_cw_private_key(&key(i))).unwrap();
    let vote = |block: &[u8]| {
        let proposal = Proposal::new(
            Round::new(Epoch::new(0), View::new(view)),
            View::new(view - 1),
            to_digest(&Hash::sha256(block)),
        );
        Notarize::sign(&scheme, proposal).unwrap()
    };
    Activity::ConflictingNotarize(ConflictingNotarize::new(vote(b"one"), vote(b"two")))
        .encode()
        .to_vec()
}

/// Evidence is recorded only when both signatures verify against the shard's committee, once
/// per view (views only increasing), and zeroes the member's score; a finalized block applies
/// the same records on followers.
#[test]
fn equivocation_evidence_is_verified_and_recorded_once_per_view() {
    runner(41).start(|mut ctx| async move {
        let genesis = initial_state();
        let genesis_block = BeaconBlock::genesis(genesis.root());
        let state = genesis.with_tip(genesis_block.hash());
        let ev = |i: usize, view: u64| FaultEvidence {
            shard: SHARD,
            bytes: conflicting_notarizes(i, view, None),
        };
        // Refused: garbage, an unknown shard, another chain's namespace, a tampered vote.
        let garbage = FaultEvidence {
            shard: SHARD,
            bytes: vec![7; 40],
        };
        assert!(matches!(
            state.check_evidence(&garbage, &mut ctx),
            Err(EvidenceRejection::Invalid(CertError::Decode(_)))
        ));
        let foreign = FaultEvidence {
            shard: ShardId(9),
            bytes: ev(2, 5).bytes,
        };
        assert_eq!(
            state.check_evidence(&foreign, &mut ctx),
            Err(EvidenceRejection::UnknownShard(9))
        );
        let beacon_ns = namespace(&net_id(), ChainRef::Beacon, 0);
        let wrong_ns = FaultEvidence {
            shard: SHARD,
            bytes: conflicting_notarizes(2, 5, Some(&beacon_ns)),
        };
        assert_eq!(
            state.check_evidence(&wrong_ns, &mut ctx),
            Err(EvidenceRejection::Invalid(CertError::BadSignatures))
        );
        let mut tampered = ev(2, 5);
        let last = tampered.bytes.len() - 1;
        tampered.bytes[last] ^= 1;
        assert!(state.check_evidence(&tampered, &mut ctx).is_err());

        // Accepted: validator 2 at view 5; recorded once, score 0, nothing else changes.
        let fault = state.check_evidence(&ev(2, 5), &mut ctx).unwrap();
        assert_eq!((fault.member, fault.view), (key(2).public_key(), 5));
        let mut after = state.clone();
        after.record_fault(&fault);
        let r = after.reputation(&key(2).public_key()).unwrap();
        assert_eq!((r.equivocations, r.equivocation_view), (1, Some(5)));
        assert_eq!(r.score().ppm(), 0);
        assert_ne!(
            after.root(),
            state.root(),
            "evidence is part of the state root"
        );
        for i in [0, 1, 3] {
            assert_eq!(
                after
                    .reputation(&key(i).public_key())
                    .unwrap()
                    .equivocations,
                0
            );
        }
        // The same view again, or an older one: refused; a later view counts again.
        assert!(matches!(
            after.check_evidence(&ev(2, 5), &mut ctx),
            Err(EvidenceRejection::Known { view: 5, .. })
        ));
        assert!(matches!(
            after.check_evidence(&ev(2, 3), &mut ctx),
            Err(EvidenceRejection::Known { .. })
        ));
        assert!(after.check_evidence(&ev(2, 8), &mut ctx).is_ok());

        // In a block: applied by followers (no signature check) with the same result; a block
        // repeating recorded evidence does not apply.
        let evidence = vec![ev(2, 5)];
        let mut header = genesis_block.header.clone();
        header.height = 1;
        header.parent = genesis_block.hash();
        header.timestamp_ms = 1;
        header.body_root = BeaconBlock::compute_body_root_with(&[], &[], &evidence);
        let mut expected = state.clone();
        expected.record_fault(&fault);
        expected.credit_beacon_proposer(&header.proposer);
        header.state_root = expected.root();
        let block = BeaconBlock {
            header,
            crosslinks: Vec::new(),
            config_changes: Vec::new(),
            evidence,
        };
        assert!(block.body_matches());
        let mut follower = state.clone();
        follower.apply_block(&block).unwrap();
        assert_eq!(follower.root(), block.header.state_root);
        let mut twice = block.clone();
        twice.evidence.push(ev(2, 5));
        let mut copy = state.clone();
        assert!(matches!(
            copy.apply_block(&twice),
            Err(ApplyError::Evidence { index: 1, .. })
        ));
        assert_eq!(copy.root(), state.root(), "nothing changes on error");
    });
}
