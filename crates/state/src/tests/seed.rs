//! The seed's example flows, with the real contract templates, across shards.

use super::kit::*;
use crate::{CallStatus, StateReadExt, TemplateEngine, TxStatus, contracts};
use vision_types::{Action, Amount, CallId, ContractId, ShardConfig, ShardId};

fn net() -> Net {
    let mut n = Net::new(
        4,
        Layout::new(4, &[("alice", 0), ("bob", 1), ("carol", 2), ("dave", 3)]),
        &["alice", "bob", "carol", "dave"],
        ShardConfig::default(),
    );
    n.engine = Box::new(TemplateEngine);
    n
}

/// Deploys from `owner` and places the contract on `shard`.
fn deploy(
    n: &mut Net,
    owner: &str,
    shard: ShardId,
    code_hash: &str,
    init: &[(&str, &str)],
) -> ContractId {
    let t = n.tx(
        owner,
        1,
        Action::DeployContract {
            name: "seed".into(),
            code_hash: code_hash.into(),
            initial_state: init
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            gas_budget: 1_000_000,
        },
    );
    let cid = ContractId::from_deploy(&t.id());
    n.layout.fixed.insert(cid.to_string(), shard);
    let home = n.shard_of(owner);
    let ex = n.exec(home, 10, &[t], &[]).unwrap();
    assert_ne!(
        std::mem::discriminant(&ex.outcomes[0].status),
        std::mem::discriminant(&TxStatus::Failed {
            reason: String::new()
        }),
        "{:?}",
        ex.outcomes[0]
    );
    cid
}

/// Calls from `who` on its home shard; returns the status and the call id if cross-shard.
fn call(
    n: &mut Net,
    who: &str,
    cid: &ContractId,
    method: &str,
    args: &[&str],
    amount: u128,
) -> (TxStatus, Option<CallId>) {
    let t = n.tx(
        who,
        1,
        Action::CallContract {
            contract: cid.clone(),
            method: method.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            gas_limit: 500_000,
            amount: Amount(amount),
        },
    );
    let home = n.shard_of(who);
    let ex = n.exec(home, 10, &[t], &[]).unwrap();
    (ex.outcomes[0].status.clone(), ex.outcomes[0].call_id)
}

fn fees(n: &Net, who: &str) -> u128 {
    n.nodes[n.shard_of(who).index()]
        .state
        .account(&acct(who))
        .unwrap()
        .nonce as u128
}

fn state(n: &Net, cid: &ContractId, shard: ShardId) -> std::collections::BTreeMap<String, String> {
    n.nodes[shard.index()].state.contract_state(cid)
}

#[test]
fn seed_token_transfer_alice_to_bob_across_shards() {
    let mut n = net();
    let cid = deploy(
        &mut n,
        "alice",
        ShardId(0),
        contracts::TOKEN_CODE_HASH,
        &[
            ("total_supply", "1000000"),
            ("name", "MyToken"),
            ("symbol", "MTK"),
        ],
    );
    // Alice (shard 0, same shard as the contract) transfers 100 to bob: executes directly.
    let (status, id) = call(&mut n, "alice", &cid, "transfer", &["bob", "100"], 0);
    assert_eq!((status, id), (TxStatus::Success, None));
    let s = state(&n, &cid, ShardId(0));
    assert_eq!(
        (s["balance_alice"].as_str(), s["balance_bob"].as_str()),
        ("999900", "100")
    );
    // Bob (shard 1) transfers 40 back: a cross-shard call carried by receipts.
    let (status, id) = call(&mut n, "bob", &cid, "transfer", &["alice", "40"], 0);
    assert_eq!(status, TxStatus::CrossShardPending);
    let id = id.unwrap();
    n.settle();
    let s = state(&n, &cid, ShardId(0));
    assert_eq!(
        (s["balance_alice"].as_str(), s["balance_bob"].as_str()),
        ("999940", "60")
    );
    assert_eq!(
        n.nodes[1].state.call_record(&id).unwrap().status,
        CallStatus::Completed
    );
    let history = n.nodes[0].state.contract_calls(&cid);
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].from_shard, history[0].to_shard),
        (ShardId(1), ShardId(0))
    );
    assert_eq!(history[0].status, CallStatus::Completed);
    // The API's view of the contract (the seed's GET /shard/contract/:id shape).
    let c = n.nodes[0].state.shard_contract(&cid).unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["primary_shard"], 0);
    assert_eq!(json["state"]["balance_bob"], "60");
    assert_eq!(json["cross_shard_calls"][0]["status"], "Completed");
    assert_eq!(json["cross_shard_calls"][0]["from_shard"], 1);
    // A failing cross-shard transfer (more than bob holds) comes back Failed.
    let (_, id) = call(&mut n, "bob", &cid, "transfer", &["alice", "1000"], 0);
    n.settle();
    assert_eq!(
        n.nodes[1].state.call_record(&id.unwrap()).unwrap().status,
        CallStatus::Failed
    );
    assert_eq!(state(&n, &cid, ShardId(0))["balance_bob"], "60");
}

#[test]
fn seed_cross_shard_dex_swap() {
    let mut n = net();
    let cid = deploy(&mut n, "alice", ShardId(0), contracts::DEX_CODE_HASH, &[]);
    for args in [
        ["ETH", "1000", "alice"],
        ["TOKEN", "1000", "alice"],
        ["ETH", "100", "bob"],
    ] {
        assert_eq!(
            call(&mut n, "alice", &cid, "deposit", &args, 0).0,
            TxStatus::Success
        );
    }
    assert_eq!(
        call(&mut n, "alice", &cid, "add_liquidity", &["1000", "1000"], 0).0,
        TxStatus::Success
    );
    // Bob (shard 1) swaps on the DEX (shard 0): the seed's ["ETH", "TOKEN", "100"].
    let (status, id) = call(&mut n, "bob", &cid, "swap", &["ETH", "TOKEN", "100"], 0);
    assert_eq!(status, TxStatus::CrossShardPending);
    n.settle();
    let rec = n.nodes[1].state.call_record(&id.unwrap()).unwrap();
    assert_eq!(rec.status, CallStatus::Completed, "{rec:?}");
    let s = state(&n, &cid, ShardId(0));
    // out = 100·997·1000 / (1000·1000 + 100·997) = 90 (rounded down).
    assert_eq!(s["balance_TOKEN_bob"], "90");
    assert_eq!(s.get("balance_ETH_bob").map_or("0", |v| v.as_str()), "0");
    assert_eq!(
        (s["reserve_ETH"].as_str(), s["reserve_TOKEN"].as_str()),
        ("1100", "910")
    );
}

#[test]
fn seed_cross_shard_nft_list_and_buy() {
    let mut n = net();
    let cid = deploy(&mut n, "alice", ShardId(0), contracts::NFT_CODE_HASH, &[]);
    // Carol (shard 2) mints and lists on the marketplace (shard 0).
    let (_, mint) = call(&mut n, "carol", &cid, "mint_nft", &["nft_id"], 0);
    let (_, list) = call(&mut n, "carol", &cid, "list_nft", &["nft_id", "1000"], 0);
    n.settle();
    for id in [mint, list] {
        let rec = n.nodes[2].state.call_record(&id.unwrap()).unwrap();
        assert_eq!(rec.status, CallStatus::Completed, "{rec:?}");
    }
    // Dave (shard 3) buys, attaching 1500: 1000 goes to carol (shard 2), 500 back to dave.
    let (_, buy) = call(&mut n, "dave", &cid, "buy_nft", &["nft_id"], 1_500);
    n.settle();
    let rec = n.nodes[3].state.call_record(&buy.unwrap()).unwrap();
    assert_eq!(rec.status, CallStatus::Completed, "{rec:?}");
    assert_eq!(state(&n, &cid, ShardId(0))["nft_owner_nft_id"], "dave");
    assert_eq!(
        n.balance("carol"),
        GENESIS_BALANCE + 1_000 - fees(&n, "carol")
    );
    assert_eq!(
        n.balance("dave"),
        GENESIS_BALANCE - 1_000 - fees(&n, "dave")
    );
    // Buying again (no longer listed) fails and refunds the attached coin.
    let (_, again) = call(&mut n, "bob", &cid, "buy_nft", &["nft_id"], 1_000);
    n.settle();
    assert_eq!(
        n.nodes[1]
            .state
            .call_record(&again.unwrap())
            .unwrap()
            .status,
        CallStatus::Failed
    );
    assert_eq!(n.balance("bob"), GENESIS_BALANCE - fees(&n, "bob"));
}
