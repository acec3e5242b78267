//! Deterministic simulation of contract calls across the whole sharded network (4 shards × 4
//! validators, the beacon, the relay): three contracts on three shards (a key-value ledger
//! deployed from another shard, a token whose owner lives on another shard, an NFT
//! marketplace deployed on its own shard, with one NFT per shard listed for sale), then random
//! intra- and cross-shard transfers mixed with same-shard and cross-shard contract calls from
//! 24 accounts (ledger transfers, owner-only mints, NFT mints, and two users racing for one
//! NFT id or one purchase), under 2 % message loss and one validator of a contract's shard
//! crashed and restarted mid-run.
//!
//! Checked at the end of every run, on every replica: balances and nonces equal the
//! exactly-once model of what was submitted (a failed call refunds its attached coin, a
//! successful one returns what it did not spend, a purchase pays the seller); every
//! cross-shard call has a final status on its caller's shard and appears exactly once, with
//! the same status and output, in its contract's history; each race has exactly one winner;
//! every contract's state equals the model of the calls that succeeded; each shard's ledger
//! balances, every receipt stream is fully delivered, global supply is conserved and no two
//! replicas finalized different blocks or state roots at one height.

use crate::{
    network_tests::{
        FEE, PER_SHARD, Rng, SHARDS, START_BALANCE, ShardSnapshot, SimNet, User,
        assert_no_conflicting_finality, net_id, network_spec, runner, seeds, snapshot, transfer,
        users, wait_until,
    },
    shard::uniform_layout,
};
use commonware_runtime::{Clock, Runner as _};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};
use vision_state::{
    CallRecord, CallStatus, StateReadExt, TxStatus,
    contracts::{NFT_CODE_HASH, TOKEN_CODE_HASH},
};
use vision_types::{
    AccountId, Action, Amount, CallId, ContractId, Hash, ShardConfig, ShardId, SignedTransaction,
    Transaction, tx::DEFAULT_GAS_LIMIT,
};

/// Tokens every user holds in the ledger contract at deployment.
const LEDGER_TOKENS: u128 = 1_000_000;
/// A ledger transfer of this many tokens always fails: it is more than all of them together.
const OVERDRAW: u128 = 1_000_000_000_000;
/// The token contract's initial supply (all of it the owner's).
const TOKEN_SUPPLY: u128 = 1_000;

/// The three contracts of the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Which {
    /// A plain key-value contract used as a token ledger (built-in `transfer`).
    Ledger,
    /// The token template (`mint` is owner only).
    Token,
    /// The NFT-marketplace template (`mint_nft` by anyone, ids unique).
    Nft,
}

/// A deployed contract.
struct Contract {
    which: Which,
    id: ContractId,
    shard: ShardId,
    owner: usize,
    /// The state right after deployment.
    initial: BTreeMap<String, String>,
}

/// What a call does, as the model sees it.
#[derive(Clone, Debug)]
enum Op {
    /// Ledger `transfer(to, amount)` within the caller's tokens: always succeeds.
    Move { to: usize, amount: u128 },
    /// Ledger `transfer` of more tokens than exist: always fails.
    Overdraw { to: usize },
    /// Token `mint(to, amount)` by the owner: always succeeds.
    Mint { to: usize, amount: u128 },
    /// Token `mint` by someone else: always fails.
    MintNotOwner,
    /// `mint_nft(id)` of a fresh id: always succeeds.
    NftMint { id: String },
    /// One of two cross-shard `mint_nft(id)` of the same id: exactly one of the pair succeeds.
    NftRace { id: String },
    /// `list_nft(id, price)` by the NFT's owner: always succeeds.
    List { id: String, price: u128 },
    /// One of two cross-shard `buy_nft(id)` of a listed NFT with at least `price` attached:
    /// exactly one of the pair succeeds and pays `seller` the price.
    Buy {
        id: String,
        seller: usize,
        price: u128,
    },
}

impl Op {
    /// The outcome the model predicts (`None`: decided by which call arrives first).
    fn expected(&self) -> Option<bool> {
        match self {
            Op::Move { .. } | Op::Mint { .. } | Op::NftMint { .. } | Op::List { .. } => Some(true),
            Op::Overdraw { .. } | Op::MintNotOwner => Some(false),
            Op::NftRace { .. } | Op::Buy { .. } => None,
        }
    }

    /// The NFT a racing call competes for.
    fn race(&self) -> Option<&str> {
        match self {
            Op::NftRace { id } | Op::Buy { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// One submitted contract call.
struct Call {
    from: usize,
    contract: usize,
    op: Op,
    attached: u128,
    tx: Hash,
    /// The contract lives on another shard than the caller.
    cross: bool,
}

impl Call {
    fn call_id(&self) -> CallId {
        CallId::from_tx(&self.tx)
    }
}

/// Everything submitted in one run.
#[derive(Default)]
struct Log {
    transfers: Vec<(usize, usize, u128)>,
    calls: Vec<Call>,
    /// Transactions per user (transfers, calls and deployments).
    nonces: BTreeMap<usize, u64>,
    next_nft: u64,
    /// NFTs listed for sale: (id, seller, price).
    sales: Vec<(String, usize, u128)>,
    /// Sales already raced for.
    next_sale: usize,
}

impl Log {
    fn next_nonce(&mut self, user: usize) -> u64 {
        let n = self.nonces.entry(user).or_insert(0);
        *n += 1;
        *n - 1
    }
}

fn call_tx(
    from: &User,
    nonce: u64,
    contract: &ContractId,
    method: &str,
    args: Vec<String>,
    attached: u128,
) -> SignedTransaction {
    Transaction {
        chain_id: net_id(),
        signer: from.id.clone(),
        nonce,
        fee: Amount(FEE),
        action: Action::CallContract {
            contract: contract.clone(),
            method: method.into(),
            args,
            gas_limit: DEFAULT_GAS_LIMIT,
            amount: Amount(attached),
        },
    }
    .sign(&from.key)
}

/// A deployment by `owner` (nonce `nonce`) whose contract id lands on shard `want` (the name
/// gets a numeric suffix until it does).
fn deploy_tx(
    owner: &User,
    nonce: u64,
    name: &str,
    code_hash: &str,
    initial_state: &BTreeMap<String, String>,
    want: ShardId,
) -> (SignedTransaction, ContractId) {
    let layout = uniform_layout(SHARDS as u64).unwrap();
    for k in 0u32.. {
        let tx = Transaction {
            chain_id: net_id(),
            signer: owner.id.clone(),
            nonce,
            fee: Amount(FEE),
            action: Action::DeployContract {
                name: format!("{name}-{k}"),
                code_hash: code_hash.into(),
                initial_state: initial_state.clone(),
                gas_budget: vision_types::tx::DEFAULT_GAS_BUDGET,
            },
        }
        .sign(&owner.key);
        let id = ContractId::from_deploy(&tx.id());
        if layout.shard_of_contract(&id) == want {
            return (tx, id);
        }
    }
    unreachable!("some name lands on every shard")
}

fn balance_key(u: &User) -> String {
    format!("balance_{}", u.id)
}

/// Deploys the three contracts and waits until every replica of their shards holds them:
/// the ledger on shard 1 from a shard-0 user (a cross-shard deployment), the token on shard 2
/// owned by a shard-0 user, the NFT marketplace on shard 3 from a shard-3 user.
async fn deploy_contracts(net: &SimNet, users: &[User], log: &mut Log) -> Vec<Contract> {
    let first_on = |s: u32| users.iter().position(|u| u.shard == ShardId(s)).unwrap();
    let ledger_state: BTreeMap<String, String> = users
        .iter()
        .map(|u| (balance_key(u), LEDGER_TOKENS.to_string()))
        .collect();
    let token_state: BTreeMap<String, String> = [
        ("name".to_string(), "SimToken".to_string()),
        ("total_supply".to_string(), TOKEN_SUPPLY.to_string()),
    ]
    .into();
    let plans = [
        (
            Which::Ledger,
            first_on(0),
            "ledger",
            "0xsim-ledger",
            ledger_state,
            1,
        ),
        (
            Which::Token,
            first_on(0) + 1,
            "token",
            TOKEN_CODE_HASH,
            token_state,
            2,
        ),
        (
            Which::Nft,
            first_on(3),
            "nft",
            NFT_CODE_HASH,
            BTreeMap::new(),
            3,
        ),
    ];
    let mut contracts = Vec::new();
    for (which, owner, name, code_hash, state, shard) in plans {
        let nonce = log.next_nonce(owner);
        let (tx, id) = deploy_tx(
            &users[owner],
            nonce,
            name,
            code_hash,
            &state,
            ShardId(shard),
        );
        net.submit(users[owner].shard, &tx);
        let mut initial = state;
        if which == Which::Token {
            initial.insert(balance_key(&users[owner]), TOKEN_SUPPLY.to_string());
        }
        contracts.push(Contract {
            which,
            id,
            shard: ShardId(shard),
            owner,
            initial,
        });
    }
    let contracts_ref = &contracts;
    wait_until(
        &net.ctx,
        "every contract deployed",
        Duration::from_secs(120),
        || async move {
            for c in contracts_ref {
                for r in net.replicas(c.shard) {
                    if r.shard.with_state(|s| s.contract(&c.id)).await.is_none() {
                        return false;
                    }
                }
            }
            true
        },
    )
    .await;
    for c in &contracts {
        for r in net.replicas(c.shard) {
            let state = r.shard.with_state(|s| s.contract_state(&c.id)).await;
            assert_eq!(
                state, c.initial,
                "{:?} deployed with another state",
                c.which
            );
        }
    }
    contracts
}

/// Signs and submits one call of `caller` to `contracts[contract]`, and logs it.
fn submit_call(
    net: &SimNet,
    users: &[User],
    contracts: &[Contract],
    log: &mut Log,
    (contract, caller, op): (usize, usize, Op),
    attached: u128,
) {
    let c = &contracts[contract];
    let (method, args): (&str, Vec<String>) = match &op {
        Op::Move { to, amount } => (
            "transfer",
            vec![users[*to].id.to_string(), amount.to_string()],
        ),
        Op::Overdraw { to } => (
            "transfer",
            vec![users[*to].id.to_string(), OVERDRAW.to_string()],
        ),
        Op::Mint { to, amount } => ("mint", vec![users[*to].id.to_string(), amount.to_string()]),
        Op::MintNotOwner => ("mint", vec![users[caller].id.to_string(), "5".into()]),
        Op::NftMint { id } | Op::NftRace { id } => ("mint_nft", vec![id.clone()]),
        Op::List { id, price } => ("list_nft", vec![id.clone(), price.to_string()]),
        Op::Buy { id, .. } => ("buy_nft", vec![id.clone()]),
    };
    let nonce = log.next_nonce(caller);
    let tx = call_tx(&users[caller], nonce, &c.id, method, args, attached);
    net.submit(users[caller].shard, &tx);
    log.calls.push(Call {
        from: caller,
        contract,
        op,
        attached,
        tx: tx.id(),
        cross: users[caller].shard != c.shard,
    });
}

/// Two distinct users, neither on `avoid_shard` nor `avoid_user`.
fn two_callers(
    users: &[User],
    rng: &mut Rng,
    avoid_shard: ShardId,
    avoid_user: Option<usize>,
) -> (usize, usize) {
    let off: Vec<usize> = (0..users.len())
        .filter(|u| users[*u].shard != avoid_shard && Some(*u) != avoid_user)
        .collect();
    let a = rng.below(off.len() as u64) as usize;
    let b = (a + 1 + rng.below(off.len() as u64 - 1) as usize) % off.len();
    (off[a], off[b])
}

/// Puts one NFT per shard up for sale: its seller (a user of that shard) mints and lists it
/// (same-shard on the NFT's shard, cross-shard elsewhere); waits until every replica of the
/// NFT's shard lists them all.
async fn list_for_sale(net: &SimNet, users: &[User], contracts: &[Contract], log: &mut Log) {
    let nft = 2;
    for s in 0..SHARDS {
        let seller = users.iter().position(|u| u.shard == ShardId(s)).unwrap() + 2;
        let id = format!("sale-{s}");
        let price = 1_000 * (s as u128 + 1);
        submit_call(
            net,
            users,
            contracts,
            log,
            (nft, seller, Op::NftMint { id: id.clone() }),
            0,
        );
        let list = Op::List {
            id: id.clone(),
            price,
        };
        submit_call(net, users, contracts, log, (nft, seller, list), 0);
        log.sales.push((id, seller, price));
    }
    let (c, sales) = (&contracts[nft], &log.sales);
    wait_until(
        &net.ctx,
        "NFTs listed",
        Duration::from_secs(120),
        || async move {
            for r in net.replicas(c.shard) {
                let state = r.shard.with_state(|s| s.contract_state(&c.id)).await;
                if !sales
                    .iter()
                    .all(|(id, _, _)| state.contains_key(&format!("nft_price_{id}")))
                {
                    return false;
                }
            }
            true
        },
    )
    .await;
}

/// Submits `count` random operations: about 40 % transfers (three quarters of them
/// cross-shard, 1 in 20 with priority 255) and 60 % contract calls (same-shard or cross-shard
/// by where the caller lives), a third of the calls with native coin attached (refunded by a
/// failed call and, unspent, by a successful one); now and then two users race to buy a
/// listed NFT or to mint one id.
async fn random_ops(
    net: &SimNet,
    users: &[User],
    contracts: &[Contract],
    rng: &mut Rng,
    count: usize,
    log: &mut Log,
) {
    let n = users.len() as u64;
    for _ in 0..count {
        let from = rng.below(n) as usize;
        let other = (from + 1 + rng.below(n - 1) as usize) % users.len();
        let attached = if rng.below(3) == 0 {
            1 + rng.below(500) as u128
        } else {
            0
        };
        let roll = rng.below(100);
        if roll < 40 {
            let amount = 1 + rng.below(1_000) as u128;
            let priority = if rng.below(20) == 0 { 255 } else { 0 };
            let nonce = log.next_nonce(from);
            let tx = transfer(&users[from], nonce, &users[other].id, amount, priority);
            net.submit(users[from].shard, &tx);
            log.transfers.push((from, other, amount));
        } else if roll < 70 {
            let op = if rng.below(8) == 0 {
                Op::Overdraw { to: other }
            } else {
                Op::Move {
                    to: other,
                    amount: 1 + rng.below(100) as u128,
                }
            };
            submit_call(net, users, contracts, log, (0, from, op), attached);
        } else if roll < 82 {
            let owner = contracts[1].owner;
            if rng.below(2) == 0 {
                let amount = 1 + rng.below(1_000) as u128;
                let op = Op::Mint { to: other, amount };
                submit_call(net, users, contracts, log, (1, owner, op), attached);
            } else {
                let caller = if from == owner { other } else { from };
                submit_call(
                    net,
                    users,
                    contracts,
                    log,
                    (1, caller, Op::MintNotOwner),
                    attached,
                );
            }
        } else if roll < 92 || log.next_sale == log.sales.len() {
            log.next_nft += 1;
            let id = format!("nft-{}", log.next_nft);
            if rng.below(4) == 0 {
                let (a, b) = two_callers(users, rng, contracts[2].shard, None);
                let race = Op::NftRace { id: id.clone() };
                submit_call(net, users, contracts, log, (2, a, race.clone()), attached);
                submit_call(net, users, contracts, log, (2, b, race), attached);
            } else {
                submit_call(
                    net,
                    users,
                    contracts,
                    log,
                    (2, from, Op::NftMint { id }),
                    attached,
                );
            }
        } else {
            let (id, seller, price) = log.sales[log.next_sale].clone();
            log.next_sale += 1;
            let (a, b) = two_callers(users, rng, contracts[2].shard, Some(seller));
            for buyer in [a, b] {
                let pay = price + rng.below(100) as u128;
                let op = Op::Buy {
                    id: id.clone(),
                    seller,
                    price,
                };
                submit_call(net, users, contracts, log, (2, buyer, op), pay);
            }
        }
        net.ctx.sleep(Duration::from_millis(rng.below(40))).await;
    }
}

/// Whether every replica of every shard has included every submitted transaction, every
/// cross-shard call has a final status on its caller's shard and an entry in its contract's
/// history, and every receipt stream is fully delivered.
async fn settled(net: &SimNet, users: &[User], contracts: &[Contract], log: &Log) -> bool {
    let mut snaps: BTreeMap<ShardId, Vec<ShardSnapshot>> = BTreeMap::new();
    for s in (0..SHARDS).map(ShardId) {
        for r in net.replicas(s) {
            let snap = snapshot(&r.shard, users).await;
            let all_in = snap.nonces.iter().all(|(a, n)| {
                let u = users.iter().position(|u| &u.id == a).unwrap();
                log.nonces.get(&u).copied().unwrap_or(0) == *n
            });
            if !all_in {
                return false;
            }
            let calls_final = r
                .shard
                .with_state(|st| {
                    log.calls
                        .iter()
                        .filter(|c| c.cross && users[c.from].shard == s)
                        .all(|c| {
                            matches!(
                                st.call_record(&c.call_id()).map(|r| r.status),
                                Some(CallStatus::Completed | CallStatus::Failed)
                            )
                        })
                })
                .await;
            if !calls_final {
                return false;
            }
            for (i, c) in contracts.iter().enumerate().filter(|(_, c)| c.shard == s) {
                let want = log
                    .calls
                    .iter()
                    .filter(|k| k.cross && k.contract == i)
                    .count() as u64;
                if r.shard.with_state(|st| st.contract_call_count(&c.id)).await < want {
                    return false;
                }
            }
            snaps.entry(s).or_default().push(snap);
        }
    }
    for (src, reps) in &snaps {
        if reps.windows(2).any(|w| w[0].outbox != w[1].outbox) {
            return false;
        }
        for (dst, next) in &reps[0].outbox {
            if snaps[dst].iter().any(|d| d.inbox[src] != *next) {
                return false;
            }
        }
    }
    true
}

/// The final outcome of every call: its expectation, or (for races) what the caller's shard
/// recorded, with exactly one winner per raced NFT.
async fn outcomes(net: &SimNet, users: &[User], log: &Log) -> Vec<bool> {
    let mut out = Vec::new();
    let mut winners: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &log.calls {
        let got = match c.op.expected() {
            Some(ok) => ok,
            None => {
                assert!(c.cross, "races are cross-shard");
                let rec = net.replicas(users[c.from].shard)[0]
                    .shard
                    .with_state(|s| s.call_record(&c.call_id()))
                    .await
                    .expect("a record");
                let ok = rec.status == CallStatus::Completed;
                *winners.entry(c.op.race().unwrap()).or_default() += usize::from(ok);
                ok
            }
        };
        out.push(got);
    }
    for (id, n) in winners {
        assert_eq!(
            n, 1,
            "NFT {id}: exactly one of the two racing calls must win"
        );
    }
    out
}

/// The model's state of `contract` after the calls that succeeded, in submission order (the
/// calls on one NFT are causally ordered: mint and list complete before anyone buys).
fn contract_model(
    users: &[User],
    contracts: &[Contract],
    index: usize,
    log: &Log,
    ok: &[bool],
) -> BTreeMap<String, String> {
    let c = &contracts[index];
    let mut state = c.initial.clone();
    let add = |state: &mut BTreeMap<String, String>, key: String, delta: i128| {
        let have: u128 = state.get(&key).map_or(0, |v| v.parse().unwrap());
        let new = (have as i128 + delta) as u128;
        state.insert(key, new.to_string());
    };
    for (call, _) in log
        .calls
        .iter()
        .zip(ok)
        .filter(|(k, ok)| k.contract == index && **ok)
    {
        match &call.op {
            Op::Move { to, amount } => {
                add(
                    &mut state,
                    balance_key(&users[call.from]),
                    -(*amount as i128),
                );
                add(&mut state, balance_key(&users[*to]), *amount as i128);
            }
            Op::Mint { to, amount } => {
                add(&mut state, "total_supply".into(), *amount as i128);
                add(&mut state, balance_key(&users[*to]), *amount as i128);
            }
            Op::NftMint { id } | Op::NftRace { id } => {
                state.insert(format!("nft_owner_{id}"), users[call.from].id.to_string());
            }
            Op::List { id, price } => {
                state.insert(format!("nft_price_{id}"), price.to_string());
            }
            Op::Buy { id, .. } => {
                state.insert(format!("nft_owner_{id}"), users[call.from].id.to_string());
                state.remove(&format!("nft_price_{id}"));
            }
            Op::Overdraw { .. } | Op::MintNotOwner => unreachable!("never succeeds"),
        }
    }
    state
}

/// After settling: every invariant, on every replica.
async fn check(net: &SimNet, users: &[User], contracts: &[Contract], log: &Log) -> u64 {
    let ok = outcomes(net, users, log).await;
    // Users: fees for every transaction, transfers, and purchases (all other attached coin
    // comes back: refunded by a failed call, returned unspent by a successful one).
    let mut expected: BTreeMap<AccountId, u128> = users
        .iter()
        .map(|u| (u.id.clone(), START_BALANCE))
        .collect();
    let mut txs = 0u128;
    for (&u, &n) in &log.nonces {
        *expected.get_mut(&users[u].id).unwrap() -= FEE * n as u128;
        txs += n as u128;
    }
    for &(from, to, amount) in &log.transfers {
        *expected.get_mut(&users[from].id).unwrap() -= amount;
        *expected.get_mut(&users[to].id).unwrap() += amount;
    }
    for (c, _) in log.calls.iter().zip(&ok).filter(|(_, ok)| **ok) {
        if let Op::Buy { seller, price, .. } = &c.op {
            *expected.get_mut(&users[c.from].id).unwrap() -= price;
            *expected.get_mut(&users[*seller].id).unwrap() += price;
        }
    }
    // Cross-shard calls: a final status on the caller's shard (the model's, identical on every
    // replica), and exactly one entry with the same status in the contract's history.
    let mut caller_records: BTreeMap<CallId, CallRecord> = BTreeMap::new();
    for (c, ok) in log.calls.iter().zip(&ok).filter(|(c, _)| c.cross) {
        let want = if *ok {
            CallStatus::Completed
        } else {
            CallStatus::Failed
        };
        for r in net.replicas(users[c.from].shard) {
            let rec = r
                .shard
                .with_state(|s| s.call_record(&c.call_id()))
                .await
                .expect("caller record");
            assert_eq!(
                rec.status,
                want,
                "call {} ({:?}) on {:?}: {:?}",
                c.call_id(),
                c.op,
                contracts[c.contract].which,
                rec.output
            );
            assert_eq!(rec.amount, Amount(c.attached));
            assert_eq!(*caller_records.entry(rec.id).or_insert(rec.clone()), rec);
        }
    }
    for (i, c) in contracts.iter().enumerate() {
        let sent: BTreeSet<CallId> = log
            .calls
            .iter()
            .filter(|k| k.cross && k.contract == i)
            .map(Call::call_id)
            .collect();
        assert!(
            sent.len() < vision_state::contracts::MAX_CALL_HISTORY,
            "history would evict"
        );
        let state = contract_model(users, contracts, i, log, &ok);
        let reps = net.replicas(c.shard);
        let first = reps[0].shard.with_state(|s| s.shard_contract(&c.id)).await;
        for r in &reps {
            let (meta, cstate, history, count) = r
                .shard
                .with_state(|s| {
                    (
                        s.contract(&c.id).expect("deployed"),
                        s.contract_state(&c.id),
                        s.contract_calls(&c.id),
                        s.contract_call_count(&c.id),
                    )
                })
                .await;
            assert_eq!(
                r.shard.with_state(|s| s.shard_contract(&c.id)).await,
                first,
                "{:?}: replicas differ",
                c.which
            );
            assert_eq!(cstate, state, "{:?}: state differs from the model", c.which);
            // Every method here returns unspent attached coin (a purchase pays the seller).
            assert_eq!(meta.balance, Amount::ZERO, "{:?}: coin kept", c.which);
            assert_eq!(count, sent.len() as u64, "{:?}: calls recorded", c.which);
            let ids: Vec<CallId> = history.iter().map(|h| h.id).collect();
            let unique: BTreeSet<CallId> = ids.iter().copied().collect();
            assert_eq!(
                ids.len(),
                unique.len(),
                "{:?}: a call applied twice",
                c.which
            );
            assert_eq!(unique, sent, "{:?}: history holds other calls", c.which);
            for h in &history {
                let mine = &caller_records[&h.id];
                assert_eq!(h.status, mine.status, "{}: statuses differ", h.id);
                assert_eq!(h.output, mine.output, "{}: outputs differ", h.id);
                assert_eq!((&h.caller, h.amount), (&mine.caller, mine.amount));
            }
        }
    }
    // Same-shard calls: where a replica still knows the transaction, its outcome.
    for (c, ok) in log.calls.iter().zip(&ok).filter(|(c, _)| !c.cross) {
        for r in net.replicas(users[c.from].shard) {
            if let Some(rec) = r.shard.tx_record(&c.tx) {
                assert_eq!(
                    matches!(rec.outcome.status, TxStatus::Success),
                    *ok,
                    "same-shard call {:?}: {:?}",
                    c.op,
                    rec.outcome.status
                );
            }
        }
    }
    let mut firsts = BTreeMap::new();
    for s in (0..SHARDS).map(ShardId) {
        let reps = net.replicas(s);
        let first = snapshot(&reps[0].shard, users).await;
        for r in &reps {
            let snap = snapshot(&r.shard, users).await;
            for (a, b) in &snap.balances {
                assert_eq!(*b, expected[a], "shard {s}: balance of {a}");
            }
            assert_eq!(snap.nonces, first.nonces, "shard {s}: replica nonces");
            assert!(snap.supply.balanced(), "shard {s}: {:?}", snap.supply);
        }
        firsts.insert(s, first);
    }
    // Streams delivered exactly once; supply conserved; fees burned once per transaction.
    for (src, snap) in &firsts {
        for (dst, next) in &snap.outbox {
            assert_eq!(firsts[dst].inbox[src], *next, "stream {src}->{dst}");
        }
    }
    let sum = |f: fn(&ShardSnapshot) -> u128| firsts.values().map(f).sum::<u128>();
    assert_eq!(
        sum(|s| s.supply.sent),
        sum(|s| s.supply.received),
        "in flight"
    );
    assert_eq!(sum(|s| s.supply.unclaimed), 0, "unclaimed coin");
    assert_eq!(sum(|s| s.supply.burned), FEE * txs, "fees burned");
    assert_eq!(
        sum(|s| s.supply.balances + s.supply.burned + s.supply.unclaimed),
        START_BALANCE * users.len() as u128,
        "global supply"
    );
    assert_no_conflicting_finality(net);
    firsts.values().map(|s| s.height).min().unwrap()
}

/// Contract calls through the whole network with 2 % message loss and one validator of a
/// contract's shard crashed and restarted: every call (same-shard and cross-shard) takes
/// effect exactly once or fails with its coin refunded, contracts hold exactly the model's
/// state on every replica, and the transfer invariants still hold.
#[test]
fn contract_calls_across_shards_with_loss_and_a_crash() {
    for seed in seeds(200, 16) {
        eprintln!("contract_calls: seed {seed}");
        let started = Instant::now();
        runner(seed).start(|ctx| async move {
            let users = users(6);
            let spec = network_spec(&users, ShardConfig::default());
            let mut net = SimNet::start(&ctx, spec, 98).await;
            let mut rng = Rng(seed);
            let mut log = Log::default();
            let contracts = deploy_contracts(&net, &users, &mut log).await;
            list_for_sale(&net, &users, &contracts, &mut log).await;
            random_ops(&net, &users, &contracts, &mut rng, 40, &mut log).await;
            // Crash one validator (never a beacon member) of a contract's shard.
            let shard = 1 + rng.below(SHARDS as u64 - 1) as usize;
            let victim = shard * PER_SHARD + 1 + rng.below(PER_SHARD as u64 - 1) as usize;
            net.crash(victim).await;
            random_ops(&net, &users, &contracts, &mut rng, 40, &mut log).await;
            ctx.sleep(Duration::from_secs(3)).await;
            net.start_node(victim).await;
            random_ops(&net, &users, &contracts, &mut rng, 40, &mut log).await;
            let (n, c, l) = (&net, &contracts, &log);
            let users_ref = &users;
            wait_until(
                &ctx,
                "every transaction, call and receipt settled everywhere",
                Duration::from_secs(300),
                || settled(n, users_ref, c, l),
            )
            .await;
            let height = check(&net, &users, &contracts, &log).await;
            let cross = log.calls.iter().filter(|c| c.cross).count();
            eprintln!(
                "contract_calls seed {seed}: {} transfers, {} calls ({cross} cross-shard), \
                 validator {victim} crashed and restarted; shard heights >= {height}; \
                 {:.1}s simulated, {:.1}s wall",
                log.transfers.len(),
                log.calls.len(),
                ctx.current()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
        });
    }
}
