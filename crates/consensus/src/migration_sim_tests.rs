//! Deterministic simulation of account moves (load rebalancing): hot accounts placed on other
//! shards by configuration changes the beacon finalizes, under a transfer workload with
//! message loss and a crash; every account's balance and nonce survive the moves exactly once.

use crate::{
    beacon::{AccountMoveOrder, ConfigChange},
    network_tests::{
        PER_SHARD, Rng, SimNet, User, authority_key, net_id, network_spec, runner, seeds,
        settle_and_check, transfer, users, wait_until,
    },
};
use commonware_runtime::{Clock, Runner};
use std::{collections::BTreeMap, time::Duration};
use vision_state::StateReadExt;
use vision_types::{AccountId, Hash, ShardConfig, ShardId, SignedTransaction};

/// The shard `id` lives on under the latest layout the first running validator's beacon view
/// holds.
fn owner(net: &SimNet, id: &AccountId) -> ShardId {
    net.views()[0].beacon.with_view(|v| {
        v.expect("a beacon state")
            .latest_layout()
            .shard_of_account(id)
    })
}

/// The client's side of the workload: every signed transfer with its sender index.
struct Workload {
    rng: Rng,
    nonces: BTreeMap<usize, u64>,
    log: Vec<(usize, usize, u128)>,
    sent: Vec<(usize, SignedTransaction)>,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Workload {
            rng: Rng(seed),
            nonces: BTreeMap::new(),
            log: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// `count` transfers, half of them from a `hot` sender, each sent to the shard the sender
    /// lives on now (as a client reading the layout would).
    async fn send(&mut self, net: &SimNet, users: &[User], hot: &[usize], count: usize) {
        self.send_with(net, users, hot, count, |net, from, tx| {
            net.submit(owner(net, from), tx)
        })
        .await;
    }

    /// Like [`Self::send`], through the API node: each transfer goes into the API node's pool
    /// of the shard its view of the latest layout places the sender on.
    async fn send_via_api(&mut self, net: &SimNet, users: &[User], hot: &[usize], count: usize) {
        self.send_with(net, users, hot, count, |net, from, tx| {
            let (_, shards, view) = net.follower.as_ref().expect("the API node runs");
            let shard = view.with_view(|v| {
                v.expect("a beacon state")
                    .latest_layout()
                    .shard_of_account(from)
            });
            shards[&shard].submit(tx.clone()).expect("admitted");
        })
        .await;
    }

    async fn send_with(
        &mut self,
        net: &SimNet,
        users: &[User],
        hot: &[usize],
        count: usize,
        submit: impl Fn(&SimNet, &AccountId, &SignedTransaction),
    ) {
        for _ in 0..count {
            let from = if self.rng.below(2) == 0 {
                hot[self.rng.below(hot.len() as u64) as usize]
            } else {
                self.rng.below(users.len() as u64) as usize
            };
            let mut to = self.rng.below(users.len() as u64) as usize;
            if to == from {
                to = (to + 1) % users.len();
            }
            let amount = 1 + self.rng.below(1_000) as u128;
            let nonce = self.nonces.entry(from).or_insert(0);
            let tx = transfer(&users[from], *nonce, &users[to].id, amount, 0);
            *nonce += 1;
            submit(net, &users[from].id, &tx);
            self.log.push((from, to, amount));
            self.sent.push((from, tx));
            net.ctx
                .sleep(Duration::from_millis(self.rng.below(60)))
                .await;
        }
    }

    /// Whether a replica of some shard included `id`.
    fn included(net: &SimNet, id: &Hash) -> bool {
        (0..crate::network_tests::SHARDS)
            .any(|s| net.replicas(ShardId(s))[0].shard.tx_record(id).is_some())
    }

    /// Resends, like a client that did not see its transaction included, every transfer no
    /// shard included and its sender's current shard does not hold, until all are included
    /// (a transfer pending on a shard when its sender moved away is dropped there as
    /// wrong-shard). A resent transfer that was in fact executed is refused as a replay, so
    /// none can apply twice.
    async fn resend_until_included(&self, net: &SimNet, users: &[User]) {
        wait_until(
            &net.ctx,
            "every transfer included",
            Duration::from_secs(300),
            || {
                let mut all = true;
                for (from, tx) in &self.sent {
                    let id = tx.id();
                    if Self::included(net, &id) {
                        continue;
                    }
                    all = false;
                    let shard = owner(net, &users[*from].id);
                    if !net.replicas(shard)[0].shard.is_pending(&id) {
                        net.submit(shard, tx);
                    }
                }
                async move { all }
            },
        )
        .await;
    }
}

/// Waits until a replica of `shard` holds `account` in its committed state.
async fn wait_held(net: &SimNet, shard: ShardId, account: &AccountId) {
    wait_until(
        &net.ctx,
        "the moved account on its new shard",
        Duration::from_secs(120),
        || {
            let app = net.replicas(shard)[0].shard.clone();
            let account = account.clone();
            async move { app.with_state(|s| s.account(&account).is_some()).await }
        },
    )
    .await;
}

/// Two hot accounts move to other shards while transfers from and to them go on (5 % message
/// loss, a validator of a destination shard crashed and restarted); later one moves back home
/// and the other moves on, so an account's move-in and move-out overlap across shards. At the
/// end every transfer applied exactly once (balances and nonces equal the model), each account
/// lives on exactly one shard (none left behind on its old shard), every receipt stream is
/// fully delivered, supply is conserved and replicas agree.
#[test]
fn hot_accounts_move_between_shards_under_load() {
    for seed in seeds(70, 2) {
        eprintln!("account_moves: seed {seed}");
        runner(seed).start(|ctx| async move {
            let users = users(4);
            let config = ShardConfig::default();
            let spec = network_spec(&users, config.clone());
            let mut net = SimNet::start(&ctx, spec, 95).await;
            // Users are grouped by home shard: 0..4 on shard 0, 4..8 on shard 1, ...
            let (a, b) = (0usize, 4usize);
            assert_eq!((users[a].shard, users[b].shard), (ShardId(0), ShardId(1)));
            let hot = [a, b];
            let mut w = Workload::new(seed);
            w.send(&net, &users, &hot, 30).await;

            // Move a: 0 → 2 and b: 1 → 3 while transfers go on.
            let sender = net.nodes[1].as_ref().expect("running").1.clone();
            let order = |u: usize, to: u32| AccountMoveOrder {
                account: users[u].id.clone(),
                to: ShardId(to),
            };
            sender.config_outbox.set(ConfigChange::sign_with_moves(
                &net_id(),
                1,
                config.clone(),
                vec![order(a, 2), order(b, 3)],
                &authority_key(),
            ));
            let crashed = 2 * PER_SHARD + 1;
            net.crash(crashed).await;
            w.send(&net, &users, &hot, 30).await;
            wait_held(&net, ShardId(2), &users[a].id).await;
            wait_held(&net, ShardId(3), &users[b].id).await;
            net.start_node(crashed).await;
            w.send(&net, &users, &hot, 30).await;

            // a goes home (2 → 0), b moves on (3 → 2).
            sender.config_outbox.set(ConfigChange::sign_with_moves(
                &net_id(),
                2,
                config.clone(),
                vec![order(a, 0), order(b, 2)],
                &authority_key(),
            ));
            w.send(&net, &users, &hot, 30).await;
            wait_held(&net, ShardId(0), &users[a].id).await;
            wait_held(&net, ShardId(2), &users[b].id).await;
            w.send(&net, &users, &hot, 20).await;

            w.resend_until_included(&net, &users).await;
            let height = settle_and_check(&net, &users, &w.log, Duration::from_secs(300)).await;
            assert_eq!(owner(&net, &users[a].id), ShardId(0));
            assert_eq!(owner(&net, &users[b].id), ShardId(2));
            eprintln!(
                "account_moves seed {seed}: {} transfers ({} from the hot accounts) settled; \
                 shard heights >= {height}; {:.1}s simulated",
                w.log.len(),
                w.log.iter().filter(|(f, _, _)| hot.contains(f)).count(),
                ctx.current()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64(),
            );
        });
    }
}

/// Transactions accepted for an account that then moves are not lost: shard 0 cannot finalize
/// (2 of its 4 validators down) while transfers from its hot account wait in the API node's
/// pool for shard 0 and, submitted straight to shard 0's validators, in theirs; the beacon
/// finalizes the account's move to shard 2. The API node hands its ones to shard 2's pool,
/// the running validators of shard 0 send theirs to shard 2's committee, whose validators
/// hold them until the account arrives (when shard 0 resumes and sends it) and then execute
/// them. No client resends anything; every transfer applies exactly once (2 % loss).
#[test]
fn pending_transactions_follow_a_moved_account() {
    for seed in seeds(90, 2) {
        eprintln!("pending_follow_move: seed {seed}");
        runner(seed).start(|ctx| async move {
            let users = users(4);
            let config = ShardConfig::default();
            let spec = network_spec(&users, config.clone());
            let mut net = SimNet::start(&ctx, spec, 98).await;
            net.start_follower().await;
            let a = 0usize;
            assert_eq!(users[a].shard, ShardId(0));
            let mut w = Workload::new(seed);
            w.send_via_api(&net, &users, &[a], 20).await;
            // Shard 0 loses its quorum (validator 0, a beacon member, stays up).
            net.crash(1).await;
            net.crash(2).await;
            let before = w.nonces.get(&a).copied().unwrap_or(0);
            w.send_via_api(&net, &users, &[a], 20).await;
            let via_api = w.nonces[&a] - before;
            w.send(&net, &users, &[a], 20).await;
            let stranded = w.nonces[&a] - before;
            assert!(
                stranded > via_api,
                "seed {seed}: no transfer from the hot account straight to its validators"
            );
            assert!(
                stranded > 0,
                "seed {seed}: no transfer from the hot account"
            );
            let sender = net.nodes[4].as_ref().expect("running").1.clone();
            sender.config_outbox.set(ConfigChange::sign_with_moves(
                &net_id(),
                1,
                config.clone(),
                vec![AccountMoveOrder {
                    account: users[a].id.clone(),
                    to: ShardId(2),
                }],
                &authority_key(),
            ));
            wait_until(&ctx, "the move finalized", Duration::from_secs(60), || {
                let moved = owner(&net, &users[a].id) == ShardId(2);
                async move { moved }
            })
            .await;
            ctx.sleep(Duration::from_secs(1)).await;
            let (_, shards, _) = net.follower.as_ref().expect("the API node runs");
            assert!(
                shards[&ShardId(2)]
                    .pending(usize::MAX)
                    .iter()
                    .any(|tx| tx.tx.signer == users[a].id),
                "seed {seed}: the API node's pool of shard 2 holds none of the moved \
                 account's transfers"
            );
            net.start_node(1).await;
            net.start_node(2).await;
            w.send_via_api(&net, &users, &[a], 20).await;
            let height = settle_and_check(&net, &users, &w.log, Duration::from_secs(300)).await;
            assert_eq!(owner(&net, &users[a].id), ShardId(2));
            eprintln!(
                "pending_follow_move seed {seed}: {} transfers settled, {stranded} from the \
                 moved account accepted while its shard was halted; shard heights >= {height}",
                w.log.len()
            );
        });
    }
}
