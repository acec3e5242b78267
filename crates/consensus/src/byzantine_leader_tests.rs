//! Whole-network simulation with a Byzantine *leader* in every shard committee: a validator
//! whose shard engine runs a [`FaultyProposer`], which delegates everything to the real
//! [`ShardApp`] but corrupts every block it proposes (re-encoded and re-hashed, so the block
//! is well-formed bytes, reaches the other replicas through broadcast and marshal like any
//! proposal, and only their `verify` can refuse it).

use crate::{
    ChainApp, Finalized, ProposeCtx, StateAfter, VerifyCtx,
    app::ChainBlock,
    network_tests::{
        NodeView, PER_SHARD, Rng, SHARDS, START_BALANCE, SimNet, network_spec, random_transfers,
        runner, seeds, settle_and_check, users, validator_key,
    },
    shard::{ShardApp, ShardAppConfig, ShardChainBlock},
    sim::Ctx,
};
use commonware_codec::EncodeSize;
use commonware_runtime::{Clock, Runner as _};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use vision_types::{
    AccountId, Action, Amount, Hash, PublicKey, SecretKey, ShardBlock, ShardConfig, ShardId,
};

/// One way a faulty proposer corrupts the block it built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Corruption {
    /// The header's post-state root is not the execution's.
    StateRoot,
    /// The header's receipts root is not the execution's.
    ReceiptsRoot,
    /// A transaction's signature is flipped.
    BadSignature,
    /// A transfer re-signed by its (colluding) signer for more than any balance.
    Overspend,
    /// A transaction included a second time (its nonce replayed).
    ReplayedNonce,
    /// An incoming receipt's amount changed (its proof no longer holds).
    TamperedReceipt,
    /// An incoming batch applied twice.
    ReceiptTwice,
    /// Two receipts of an incoming batch swapped (out of seq order).
    ReceiptsOutOfOrder,
    /// More transactions than a block may hold.
    TooManyTxs,
    /// A timestamp going backwards (before the parent's).
    TimeBackwards,
    /// A timestamp an hour ahead of the clock.
    FutureTime,
    /// Another committee member named as proposer.
    ForeignProposer,
    /// A beacon height below the parent's.
    StaleBeaconHeight,
}

impl Corruption {
    /// Whether it changes the transactions or incoming receipts (the rest change the header).
    fn is_body(self) -> bool {
        !matches!(
            self,
            Corruption::StateRoot
                | Corruption::ReceiptsRoot
                | Corruption::TimeBackwards
                | Corruption::FutureTime
                | Corruption::ForeignProposer
                | Corruption::StaleBeaconHeight
        )
    }

    const ALL: [Corruption; 13] = [
        Corruption::StateRoot,
        Corruption::BadSignature,
        Corruption::TamperedReceipt,
        Corruption::TimeBackwards,
        Corruption::Overspend,
        Corruption::ReceiptTwice,
        Corruption::ForeignProposer,
        Corruption::ReplayedNonce,
        Corruption::ReceiptsOutOfOrder,
        Corruption::FutureTime,
        Corruption::TooManyTxs,
        Corruption::StaleBeaconHeight,
        Corruption::ReceiptsRoot,
    ];
}

/// What the faulty proposers of a run did (shared by all of them).
#[derive(Default, Debug)]
pub(crate) struct FaultLog {
    /// Corrupted proposals per shard.
    pub per_shard: BTreeMap<ShardId, usize>,
    /// Corrupted proposals per kind.
    pub per_kind: BTreeMap<Corruption, usize>,
    /// Digests of every corrupted block proposed.
    pub digests: BTreeSet<Hash>,
}

/// A [`ChainApp`] that delegates to the real shard application but corrupts every block it
/// proposes, choosing the corruption round-robin (offset by the seed) among those that apply
/// to the block at hand (a body corruption needs transactions or incoming receipts).
#[derive(Clone)]
pub(crate) struct FaultyProposer {
    inner: ShardApp<Ctx>,
    /// Keys of colluding users (to sign overspending transfers).
    keys: Arc<BTreeMap<AccountId, SecretKey>>,
    /// The committee member a forged header names as proposer.
    impersonate: PublicKey,
    /// The verifiers' transaction-count bound.
    max_block_txs: usize,
    next: Arc<AtomicUsize>,
    log: Arc<Mutex<FaultLog>>,
}

impl FaultyProposer {
    fn corrupt(
        &self,
        kind: Corruption,
        parent: &ShardChainBlock,
        block: &ShardChainBlock,
        now_ms: u64,
    ) -> Option<ShardChainBlock> {
        let mut b: ShardBlock = block.0.clone();
        match kind {
            Corruption::StateRoot => {
                b.header.state_root = Hash::sha256(&[&b.header.state_root.0[..], b"x"].concat());
            }
            Corruption::ReceiptsRoot => {
                b.header.receipts_root =
                    Hash::sha256(&[&b.header.receipts_root.0[..], b"x"].concat());
            }
            Corruption::BadSignature => b.txs.first_mut()?.signature.0[7] ^= 0x20,
            Corruption::Overspend => {
                let (i, key) = b
                    .txs
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| matches!(t.tx.action, Action::Transfer { .. }))
                    .find_map(|(i, t)| self.keys.get(&t.tx.signer).map(|k| (i, k)))?;
                let mut tx = b.txs[i].tx.clone();
                if let Action::Transfer { amount, .. } = &mut tx.action {
                    *amount = Amount(START_BALANCE * 1_000);
                }
                b.txs[i] = tx.sign(key);
            }
            Corruption::ReplayedNonce => {
                let tx = b.txs.first()?.clone();
                b.txs.push(tx);
            }
            Corruption::TamperedReceipt => {
                let r = b.incoming.first_mut()?.receipts.first_mut()?;
                r.amount = Amount(r.amount.0 + 1);
            }
            Corruption::ReceiptTwice => {
                let batch = b.incoming.first()?.clone();
                b.incoming.push(batch);
            }
            Corruption::ReceiptsOutOfOrder => {
                b.incoming
                    .iter_mut()
                    .find(|x| x.receipts.len() >= 2)?
                    .receipts
                    .swap(0, 1);
            }
            Corruption::TooManyTxs => {
                let tx = b.txs.first()?.clone();
                // Still within the network's block size bound (1 MiB in the simulation):
                // only the transaction count is over the limit.
                if tx.encode_size() * (self.max_block_txs + 1) > 768 * 1024 {
                    return None;
                }
                b.txs.resize(self.max_block_txs + 1, tx);
            }
            Corruption::TimeBackwards => {
                b.header.timestamp_ms = parent.timestamp_ms().saturating_sub(1);
            }
            Corruption::FutureTime => b.header.timestamp_ms = now_ms + 3_600_000,
            Corruption::ForeignProposer => b.header.proposer = self.impersonate,
            Corruption::StaleBeaconHeight => {
                b.header.beacon_height = parent.header().beacon_height.checked_sub(1)?;
            }
        }
        // Well-formed: the header commits to the (possibly changed) body.
        b.header.body_root = ShardBlock::compute_body_root(&b.txs, &b.incoming);
        Some(ShardChainBlock(b))
    }
}

impl ChainApp for FaultyProposer {
    type Block = ShardChainBlock;

    fn has_pending_work(&self) -> bool {
        self.inner.has_pending_work()
    }

    fn attach_archive(&self, archive: crate::archive::ChainArchive<ShardChainBlock>) {
        self.inner.attach_archive(archive);
    }

    fn report_fault(&self, evidence: Vec<u8>) {
        self.inner.report_fault(evidence);
    }

    async fn propose(
        &mut self,
        parent: &ShardChainBlock,
        ctx: ProposeCtx,
    ) -> Option<ShardChainBlock> {
        let now_ms = ctx.now_ms;
        let block = self.inner.propose(parent, ctx).await?;
        let round = self.next.fetch_add(1, Ordering::Relaxed);
        // Every other round a body corruption when one applies (blocks with transactions or
        // receipts are the minority), else any that applies, round-robin.
        let applicable: Vec<(Corruption, ShardChainBlock)> = Corruption::ALL
            .iter()
            .filter_map(|&kind| Some((kind, self.corrupt(kind, parent, &block, now_ms)?)))
            .collect();
        let body: Vec<&(Corruption, ShardChainBlock)> =
            applicable.iter().filter(|(k, _)| k.is_body()).collect();
        let (kind, bad) = if round.is_multiple_of(2) && !body.is_empty() {
            body[(round / 2) % body.len()].clone()
        } else {
            applicable[(round / 2) % applicable.len()].clone()
        };
        assert_ne!(bad.hash(), block.hash(), "{kind:?} changed nothing");
        {
            let mut log = self.log.lock().unwrap();
            *log.per_shard.entry(self.inner.shard()).or_default() += 1;
            *log.per_kind.entry(kind).or_default() += 1;
            log.digests.insert(bad.hash());
        }
        Some(bad)
    }

    async fn verify(
        &mut self,
        parent: &ShardChainBlock,
        block: &ShardChainBlock,
        ctx: VerifyCtx,
    ) -> bool {
        self.inner.verify(parent, block, ctx).await
    }

    async fn state_after(&self, block: &ShardChainBlock) -> StateAfter {
        self.inner.state_after(block).await
    }

    async fn adopt(&mut self, parent: &ShardChainBlock, block: &ShardChainBlock) -> bool {
        self.inner.adopt(parent, block).await
    }

    async fn applied_height(&self) -> Option<u64> {
        self.inner.applied_height().await
    }

    async fn finalized(&mut self, finalized: Finalized<ShardChainBlock>) {
        self.inner.finalized(finalized).await
    }
}

/// Committed height of every shard over its running replicas: the highest (how far the shard
/// finalized) or the lowest (how far every replica applied).
async fn shard_heights(net: &SimNet, highest: bool) -> Vec<u64> {
    let mut out = Vec::new();
    for s in 0..SHARDS {
        let mut heights = Vec::new();
        for r in net.replicas(ShardId(s)) {
            heights.push(r.shard.committed_height().await);
        }
        let h = if highest {
            heights.iter().max()
        } else {
            heights.iter().min()
        };
        out.push(*h.expect("running replicas"));
    }
    out
}

/// One Byzantine leader in every shard committee (f = 1; which member varies by shard and
/// seed, beacon members included) proposes only corrupted blocks — wrong state or receipts
/// root, a bad signature, an overspending or replayed transaction, a tampered, duplicated or
/// reordered incoming receipt, too many transactions, a timestamp going backwards or far
/// ahead, a foreign proposer, a stale beacon height — with 2 % message loss and random
/// transfers. Its views time out and the shards keep finalizing; no corrupted block (and no
/// block proposed by a Byzantine leader) is ever finalized, and the usual invariants hold.
#[test]
fn byzantine_leaders_propose_invalid_shard_blocks() {
    for seed in seeds(301, 3) {
        eprintln!("byzantine_leader: seed {seed}");
        let started = Instant::now();
        runner(seed).start(|ctx| async move {
            const PCT: u64 = 98;
            let users = users(6);
            let spec = network_spec(&users, ShardConfig::default());
            let byzantine: Vec<usize> = (0..SHARDS as usize)
                .map(|s| s * PER_SHARD + (s + seed as usize) % PER_SHARD)
                .collect();
            let mut net = SimNet::start_except(&ctx, spec, PCT, &byzantine).await;
            let log = Arc::new(Mutex::new(FaultLog::default()));
            let keys: Arc<BTreeMap<AccountId, SecretKey>> = Arc::new(
                users
                    .iter()
                    .map(|u| (u.id.clone(), u.key.clone()))
                    .collect(),
            );
            let max_block_txs = ShardAppConfig::new(
                ShardId(0),
                crate::network_tests::net_id(),
                ShardConfig::default(),
                String::new(),
                Vec::new(),
            )
            .max_block_txs;
            for &i in &byzantine {
                let base = i - i % PER_SHARD;
                let impersonate = validator_key(base + (i + 1) % PER_SHARD).public_key();
                let (keys, log) = (keys.clone(), log.clone());
                net.start_node_wrapped(i, move |inner| FaultyProposer {
                    inner,
                    keys,
                    impersonate,
                    max_block_txs,
                    next: Arc::new(AtomicUsize::new(seed as usize)),
                    log,
                })
                .await;
            }
            let mut rng = Rng(seed);
            let mut nonces = BTreeMap::new();
            let mut txs = Vec::new();
            random_transfers(&net, &users, &mut rng, &mut nonces, 60, &mut txs).await;
            ctx.sleep(Duration::from_secs(4)).await;
            let mid = shard_heights(&net, true).await;
            random_transfers(&net, &users, &mut rng, &mut nonces, 60, &mut txs).await;
            let height = settle_and_check(&net, &users, &txs, Duration::from_secs(300)).await;
            // Some time more, so that every shard goes through several Byzantine views with
            // an empty pool too (header corruptions only).
            ctx.sleep(Duration::from_secs(4)).await;
            let end = shard_heights(&net, false).await;

            let blocked = net.oracle.blocked().await.unwrap();
            let log = log.lock().unwrap();
            let byz_keys: BTreeSet<PublicKey> = byzantine
                .iter()
                .map(|i| validator_key(*i).public_key())
                .collect();
            for s in 0..SHARDS {
                let shard = ShardId(s);
                let n = log.per_shard.get(&shard).copied().unwrap_or(0);
                assert!(n > 0, "shard {s}: the Byzantine leader never proposed");
                let (m, e) = (mid[s as usize], end[s as usize]);
                assert!(
                    m > 0 && e > m,
                    "shard {s} stopped finalizing: tip {m} mid-run, a replica at {e} at the end"
                );
                let replicas: Vec<&NodeView> = net.replicas(shard);
                for r in replicas {
                    for (h, info) in r.shard.recent_finalized() {
                        assert!(
                            !log.digests.contains(&info.hash),
                            "shard {s}: corrupted block {} finalized at height {h}",
                            info.hash
                        );
                    }
                    let (blocks, _) = r
                        .shard
                        .segment_from(1, usize::MAX, usize::MAX)
                        .expect("finalized blocks retained");
                    for b in blocks {
                        assert!(
                            !byz_keys.contains(&b.header.proposer),
                            "shard {s}: block {} proposed by a Byzantine leader finalized",
                            b.header.height
                        );
                    }
                }
            }
            assert!(
                blocked.iter().all(|(_, b)| {
                    byzantine.iter().any(|i| {
                        crate::keys::to_cw_public_key(&validator_key(*i).public_key()).unwrap()
                            == *b
                    })
                }),
                "only Byzantine validators may be blocked"
            );
            eprintln!(
                "byzantine_leader seed {seed}: {} transfers settled; corrupted proposals per \
                 shard {:?}, per kind {:?}; tips mid-run {mid:?}, lowest replica at the end {end:?} (>= \
                 {height} when settled); {:.1}s simulated, {:.1}s wall",
                txs.len(),
                log.per_shard.values().collect::<Vec<_>>(),
                log.per_kind,
                ctx.current()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
        });
    }
}
