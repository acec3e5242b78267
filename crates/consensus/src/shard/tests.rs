//! Deterministic simulations of shard applications on 4 validators (simulated p2p).

use super::{ShardApp, ShardAppConfig, ShardBlockCfg, ShardChainBlock, uniform_layout};
use crate::{
    ChainChannels, ChainId, NetMux, Partitions, Timeouts, keys::to_cw_public_key, namespace,
    spawn_chain, verify_finalization_certificate,
};
use commonware_cryptography::ed25519;
use commonware_p2p::simulated::Oracle;
use commonware_runtime::{Clock, Runner, Spawner, Supervisor as _, deterministic};
use commonware_utils::NZUsize;
use std::{collections::BTreeMap, time::Duration};
use vision_state::{StateReadExt, Supply};
use vision_types::{
    AccountId, Action, Amount, ChainId as NetworkId, Hash, PublicKey, SecretKey, ShardConfig,
    ShardId, SignedTransaction, Transaction, block::ChainRef,
};

use crate::sim::{Ctx, SimReceiver, SimSender};

const N: usize = 4;
const FEE: u128 = 10;
const START_BALANCE: u128 = 1_000_000;

fn validator_key(i: usize) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    SecretKey::from_seed(seed)
}

fn user_key(i: u64) -> SecretKey {
    crate::sim::test_key(0xAA, i)
}

fn net_id() -> NetworkId {
    NetworkId::new("simnet").unwrap()
}

fn block_cfg() -> ShardBlockCfg {
    ShardBlockCfg {
        max_bytes: 1024 * 1024,
    }
}

async fn setup_network(ctx: &Ctx) -> Oracle<ed25519::PublicKey, Ctx> {
    let peers: Vec<_> = (0..N)
        .map(|i| to_cw_public_key(&validator_key(i).public_key()).unwrap())
        .collect();
    crate::sim::full_mesh(
        ctx,
        peers,
        crate::max_message_bytes::<ShardChainBlock>(N as u32, &block_cfg()),
        crate::sim::link(100),
    )
    .await
}

async fn base_channels(
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    i: usize,
) -> ChainChannels<SimSender, SimReceiver> {
    crate::sim::base_channels_of(oracle, &validator_key(i).public_key()).await
}

fn committee() -> Vec<PublicKey> {
    (0..N).map(|i| validator_key(i).public_key()).collect()
}

fn shard_config(num_shards: u64) -> ShardConfig {
    ShardConfig {
        num_shards,
        ..ShardConfig::default()
    }
}

/// Starts 4 validators of shard 0; returns their applications.
async fn start_shard(
    ctx: &Ctx,
    num_shards: u64,
    accounts: &[(AccountId, PublicKey, Amount)],
) -> Vec<ShardApp<Ctx>> {
    let oracle = setup_network(ctx).await;
    let chain: ChainId = ChainRef::Shard(ShardId(0));
    let mut apps = Vec::new();
    for i in 0..N {
        let cfg = ShardAppConfig::new(
            ShardId(0),
            net_id(),
            shard_config(num_shards),
            format!("node{i}-shard0-state"),
            accounts.to_vec(),
        );
        let app = ShardApp::new(
            ctx.child("app").with_attribute("index", i),
            cfg,
            crate::beacon::FinalizedCrosslinks::default(),
        )
        .await
        .unwrap();
        let base = base_channels(&oracle, i).await;
        let blocker = oracle.control(to_cw_public_key(&validator_key(i).public_key()).unwrap());
        let engine_app = app.clone();
        ctx.child("node")
            .with_attribute("index", i)
            .spawn(move |ctx| async move {
                let mut mux = NetMux::start(ctx.child("mux"), base);
                let channels = mux.register(chain, 0).await.unwrap();
                let spec = crate::ChainSpec {
                    chain,
                    epoch: 0,
                    committee: committee(),
                    signer: validator_key(i),
                    namespace: namespace(&net_id(), chain, 0),
                    partitions: Partitions::new(&format!("node{i}"), chain, 0),
                    timeouts: Timeouts {
                        min_block_interval: Duration::from_millis(50),
                        ..Timeouts::default()
                    },
                    genesis: engine_app.genesis_block(),
                    block_codec_config: block_cfg(),
                    mailbox_size: NZUsize!(1024),
                };
                let handle = spawn_chain(ctx.child("chain"), spec, channels, blocker, engine_app)
                    .await
                    .unwrap();
                futures::future::pending::<()>().await;
                drop(handle);
            });
        apps.push(app);
    }
    apps
}

fn transfer(
    from: &SecretKey,
    nonce: u64,
    to: &AccountId,
    amount: u128,
    priority: u8,
) -> SignedTransaction {
    Transaction {
        chain_id: net_id(),
        signer: AccountId::implicit(&from.public_key()),
        nonce,
        fee: Amount(FEE),
        action: Action::Transfer {
            to: to.clone(),
            amount: Amount(amount),
            priority,
        },
    }
    .sign(from)
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

/// Waits (simulated time) until `done` holds for the state of every app.
async fn wait_for_state(
    ctx: &Ctx,
    apps: &[ShardApp<Ctx>],
    what: &str,
    done: impl Fn(&vision_state::QmdbStore<Ctx>) -> bool,
) {
    let start = ctx.current();
    loop {
        let mut all = true;
        for app in apps {
            all &= app.with_state(&done).await;
        }
        if all {
            return;
        }
        ctx.sleep(Duration::from_millis(100)).await;
        let waited = ctx.current().duration_since(start).unwrap();
        assert!(
            waited < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
    }
}

/// Every replica has the same block and state root at every finalized height it holds.
fn assert_same_history(apps: &[ShardApp<Ctx>]) -> u64 {
    let mut canon: BTreeMap<u64, (Hash, Hash)> = BTreeMap::new();
    for app in apps {
        for (h, info) in app.recent_finalized() {
            let prev = canon.entry(h).or_insert((info.hash, info.state_root));
            assert_eq!(
                *prev,
                (info.hash, info.state_root),
                "replicas differ at height {h}"
            );
        }
    }
    canon.keys().next_back().copied().unwrap_or(0)
}

/// One shard, 4 validators: signed transfers submitted to every validator all finalize; the
/// replicas agree on every block and state root; supply is conserved.
#[test]
fn intra_shard_transfers_finalize() {
    for seed in [1u64, 2] {
        eprintln!("intra_shard_transfers_finalize: seed {seed}");
        runner(seed).start(|ctx| async move {
            let users: Vec<SecretKey> = (0..4).map(user_key).collect();
            let ids: Vec<AccountId> = users
                .iter()
                .map(|k| AccountId::implicit(&k.public_key()))
                .collect();
            let accounts: Vec<_> = users
                .iter()
                .zip(&ids)
                .map(|(k, id)| (id.clone(), k.public_key(), Amount(START_BALANCE)))
                .collect();
            let apps = start_shard(&ctx, 1, &accounts).await;
            const PER_USER: u64 = 5;
            let mut txs = Vec::new();
            for (u, key) in users.iter().enumerate() {
                for nonce in 0..PER_USER {
                    let to = &ids[(u + 1 + nonce as usize) % ids.len()];
                    let to = if *to == ids[u] {
                        &ids[(u + 1) % ids.len()]
                    } else {
                        to
                    };
                    txs.push(transfer(key, nonce, to, 100 + nonce as u128, 0));
                }
            }
            for app in &apps {
                let res = app.submit_batch(txs.clone());
                assert!(res.iter().all(Result::is_ok), "{res:?}");
            }
            let ids2 = ids.clone();
            wait_for_state(&ctx, &apps, "all transfers", move |s| {
                ids2.iter()
                    .all(|id| s.account(id).is_some_and(|a| a.nonce == PER_USER))
            })
            .await;
            let top = assert_same_history(&apps);
            assert!(top >= 1);
            let mut expected: BTreeMap<AccountId, i128> = ids
                .iter()
                .map(|id| (id.clone(), START_BALANCE as i128))
                .collect();
            for t in &txs {
                if let Action::Transfer { to, amount, .. } = &t.tx.action {
                    *expected.get_mut(&t.tx.signer).unwrap() -= (amount.0 + FEE) as i128;
                    *expected.get_mut(to).unwrap() += amount.0 as i128;
                }
            }
            for app in &apps {
                let (balances, supply, root) = app
                    .with_state(|s| {
                        let b: Vec<u128> = ids
                            .iter()
                            .map(|id| s.account(id).unwrap().balance.0)
                            .collect();
                        (b, Supply::of(s), vision_state::ShardStore::root(s))
                    })
                    .await;
                for (id, b) in ids.iter().zip(balances) {
                    assert_eq!(b as i128, expected[id], "balance of {id}");
                }
                assert!(supply.balanced(), "{supply:?}");
                assert_eq!(supply.genesis, START_BALANCE * 4);
                assert_eq!(supply.burned, FEE * txs.len() as u128);
                let h = app.committed_height().await;
                assert_eq!(app.recent_finalized()[&h].state_root, root);
                assert_eq!(app.mempool_len(), 0, "included txs leave the mempool");
                for t in &txs {
                    assert!(app.tx_record(&t.id()).is_some());
                }
            }
            eprintln!("seed {seed}: finalized up to height {top}");
        });
    }
}

/// Two shards (validators run shard 0): a transfer to an account of shard 1 debits the sender
/// and yields a crosslink with the receipt and a certificate that verifies.
#[test]
fn cross_shard_transfer_yields_certified_crosslink() {
    let seed = 7u64;
    eprintln!("cross_shard_transfer_yields_certified_crosslink: seed {seed}");
    runner(seed).start(|mut ctx| async move {
        let layout = uniform_layout(2).unwrap();
        let pick = |want: u32, from: u64| {
            (from..)
                .map(|i| (i, user_key(i)))
                .find(|(_, k)| {
                    layout.shard_of_account(&AccountId::implicit(&k.public_key())) == ShardId(want)
                })
                .unwrap()
        };
        let (_, sender) = pick(0, 0);
        let (_, receiver) = pick(1, 0);
        let sender_id = AccountId::implicit(&sender.public_key());
        let receiver_id = AccountId::implicit(&receiver.public_key());
        let accounts = vec![
            (
                sender_id.clone(),
                sender.public_key(),
                Amount(START_BALANCE),
            ),
            (
                receiver_id.clone(),
                receiver.public_key(),
                Amount(START_BALANCE),
            ),
        ];
        let apps = start_shard(&ctx, 2, &accounts).await;
        let tx = transfer(&sender, 0, &receiver_id, 500, 255);
        for app in &apps {
            app.submit(tx.clone()).unwrap();
        }
        let sid = sender_id.clone();
        wait_for_state(&ctx, &apps, "the cross-shard transfer", move |s| {
            s.account(&sid).is_some_and(|a| a.nonce == 1)
        })
        .await;
        assert_same_history(&apps);
        for app in &apps {
            let (bal, supply) = app
                .with_state(|s| (s.account(&sender_id).unwrap().balance.0, Supply::of(s)))
                .await;
            assert_eq!(bal, START_BALANCE - 500 - FEE);
            assert!(supply.balanced(), "{supply:?}");
            assert_eq!(supply.sent, 500);
            assert!(app.with_state(|s| s.account(&receiver_id).is_none()).await);
        }
        let mut certified = 0;
        for app in &apps {
            let links = app.take_crosslinks();
            let link = links
                .iter()
                .find(|l| !l.crosslink.destinations.is_empty())
                .expect("a crosslink with the receipt");
            let c = &link.crosslink;
            c.check_content().unwrap();
            assert_eq!(c.destinations[0].dst, ShardId(1));
            assert_eq!(c.batched_txs, vec![tx.id()]);
            assert_eq!(link.batch.receipt_count(), 1);
            assert!(link.batch.incoming_for(ShardId(1)).is_some());
            if link.is_certified() {
                verify_finalization_certificate(
                    &c.certificate,
                    &namespace(&net_id(), ChainRef::Shard(ShardId(0)), 0),
                    &committee(),
                    &c.header.hash(),
                    0,
                    &mut ctx,
                )
                .unwrap();
                // Wrong namespace fails.
                assert!(
                    verify_finalization_certificate(
                        &c.certificate,
                        &namespace(&net_id(), ChainRef::Shard(ShardId(1)), 0),
                        &committee(),
                        &c.header.hash(),
                        0,
                        &mut ctx,
                    )
                    .is_err()
                );
                certified += 1;
            }
        }
        assert!(
            certified > 0,
            "no replica holds the crosslink block's certificate"
        );
    });
}
