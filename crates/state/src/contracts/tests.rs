//! Engine-wide tests: gas, limits, deploy validation, JSON and codec shapes, and property
//! tests over random call sequences. Method-level tests live next to each template.

use super::*;
use commonware_codec::{DecodeExt, Encode, EncodeSize};
use proptest::prelude::*;
use serde_json::{Value, json};
use vision_types::Hash;

/// The default per-call gas limit used by tests.
pub(crate) const LIMIT: u64 = 100_000;
/// The gas budget of test contracts.
pub(crate) const BUDGET: u64 = 1_000_000;

pub(crate) fn acct(s: &str) -> AccountId {
    AccountId::new(s).unwrap()
}

fn cid() -> ContractId {
    ContractId::from_deploy(&Hash::sha256(b"test deploy"))
}

fn params(code_hash: &str, state: &[(&str, &str)]) -> DeployParams {
    DeployParams {
        id: cid(),
        name: "Test".into(),
        owner: acct("alice"),
        primary_shard: ShardId(0),
        code_hash: code_hash.into(),
        initial_state: state
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        gas_budget: BUDGET,
        height: 7,
    }
}

/// Deploys a contract owned by alice with the given code hash and initial state.
pub(crate) fn deploy_with(
    code_hash: &str,
    state: &[(&str, &str)],
) -> Result<ShardContract, DeployError> {
    deploy(params(code_hash, state))
}

/// A plain key-value contract (the seed's code hash "0xabc123...") owned by alice.
pub(crate) fn kv(state: &[(&str, &str)]) -> ShardContract {
    deploy_with("0xabc123...", state).unwrap()
}

pub(crate) fn run(
    c: &ShardContract,
    caller: &str,
    method: &str,
    args: &[&str],
    attached: u128,
    gas_limit: u64,
) -> CallOutcome {
    execute(
        c,
        &CallInput {
            caller: acct(caller),
            method: method.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            attached: Amount(attached),
            gas_limit,
        },
    )
}

/// Runs a call that must succeed with no payments; returns its result and writes.
pub(crate) fn ok(
    c: &ShardContract,
    caller: &str,
    method: &str,
    args: &[&str],
) -> (Value, StateDiff) {
    match run(c, caller, method, args, 0, LIMIT) {
        CallOutcome::Success {
            writes,
            result,
            payments,
            gas_used,
        } => {
            assert!(payments.is_empty());
            assert!(gas_used <= LIMIT);
            (result, writes)
        }
        f => panic!("{method}{args:?} by {caller} failed: {f:?}"),
    }
}

/// Runs a call that must fail; returns the reason.
pub(crate) fn fail_reason(c: &ShardContract, caller: &str, method: &str, args: &[&str]) -> String {
    match run(c, caller, method, args, 0, LIMIT) {
        CallOutcome::Failure { reason, gas_used } => {
            assert!(gas_used <= LIMIT);
            reason
        }
        s => panic!("{method}{args:?} by {caller} should fail: {s:?}"),
    }
}

#[test]
fn template_code_hashes_are_documented_hashes() {
    for (hash, seed) in [
        (TOKEN_CODE_HASH, "vision:template:token:v1"),
        (DEX_CODE_HASH, "vision:template:dex:v1"),
        (NFT_CODE_HASH, "vision:template:nft:v1"),
    ] {
        assert_eq!(
            hash,
            format!("0x{}", Hash::sha256(seed.as_bytes()).to_hex())
        );
    }
    assert_eq!(Template::from_code_hash("0xabc123..."), Template::Plain);
    assert_eq!(
        Template::from_code_hash(&TOKEN_CODE_HASH.to_uppercase()),
        Template::Plain
    );
}

#[test]
fn every_listed_method_dispatches_and_others_do_not() {
    for (hash, template) in [
        ("0xabc", Template::Plain),
        (TOKEN_CODE_HASH, Template::Token),
        (DEX_CODE_HASH, Template::Dex),
        (NFT_CODE_HASH, Template::Nft),
    ] {
        let c = deploy_with(hash, &[]).unwrap();
        assert_eq!(c.template(), template);
        for m in template.methods() {
            let out = run(&c, "alice", m, &[], 0, LIMIT);
            assert!(!out.output().contains("unknown method"), "{m}: {out:?}");
        }
        let reason = fail_reason(&c, "alice", "selfdestruct", &[]);
        assert!(
            reason.starts_with("unknown method \"selfdestruct\""),
            "{reason}"
        );
        assert!(reason.ends_with(&template.methods().join(", ")), "{reason}");
    }
}

#[test]
fn gas_schedule_for_the_seed_transfer() {
    let c = kv(&[("balance_alice", "1000")]);
    let out = run(&c, "alice", "transfer", &["bob", "100"], 0, LIMIT);
    let result = r#"{"status":"success","transferred":100}"#;
    let expected = gas::GAS_CALL_BASE
        + gas::GAS_PER_INPUT_BYTE * ("transfer".len() + "bob".len() + "100".len()) as u64
        + gas::GAS_READ_BASE
        + gas::GAS_PER_BYTE_READ * ("balance_alice".len() + 4) as u64
        + gas::GAS_WRITE_BASE
        + gas::GAS_PER_BYTE_WRITTEN * ("balance_alice".len() + 3) as u64
        + gas::GAS_READ_BASE
        + gas::GAS_PER_BYTE_READ * "balance_bob".len() as u64
        + gas::GAS_WRITE_BASE
        + gas::GAS_PER_BYTE_WRITTEN * ("balance_bob".len() + 3) as u64
        + gas::GAS_PER_NEW_ENTRY
        + gas::GAS_PER_RESULT_BYTE * result.len() as u64;
    assert_eq!(out.output(), result);
    assert_eq!(out.gas_used(), expected);
    assert_eq!(expected, 4594);
}

#[test]
fn out_of_gas_at_every_limit_below_the_cost_changes_nothing() {
    let c = deploy_with(TOKEN_CODE_HASH, &[("total_supply", "1000")]).unwrap();
    let before = c.clone();
    let need = run(&c, "alice", "transfer", &["bob", "100"], 0, LIMIT).gas_used();
    for limit in 0..need {
        match run(&c, "alice", "transfer", &["bob", "100"], 0, limit) {
            CallOutcome::Failure { reason, gas_used } => {
                assert_eq!(gas_used, limit);
                assert!(
                    reason.starts_with(&format!("out of gas: used {limit} of limit {limit}")),
                    "{reason}"
                );
            }
            s => panic!("limit {limit} < {need} succeeded: {s:?}"),
        }
    }
    assert!(run(&c, "alice", "transfer", &["bob", "100"], 0, need).is_success());
    assert_eq!(c, before);
}

#[test]
fn gas_limit_above_budget_is_refused_without_gas() {
    let c = kv(&[]);
    let out = run(&c, "alice", "get", &["k"], 0, BUDGET + 1);
    assert_eq!(
        out,
        CallOutcome::Failure {
            reason: format!(
                "gas limit {} exceeds the contract's gas budget {BUDGET}",
                BUDGET + 1
            ),
            gas_used: 0,
        }
    );
    assert!(run(&c, "alice", "get", &["k"], 0, BUDGET).is_success());
}

#[test]
fn call_input_limits() {
    let c = kv(&[]);
    let nine: Vec<&str> = vec!["a"; limits::MAX_ARGS + 1];
    assert_eq!(
        fail_reason(&c, "alice", "get", &nine),
        "too many arguments: 9 (max 8)"
    );
    let long = "a".repeat(limits::MAX_ARG_BYTES + 1);
    assert_eq!(
        fail_reason(&c, "alice", "get", &[&long]),
        "argument 0 is 257 bytes (max 256)"
    );
    let method = "m".repeat(limits::MAX_METHOD_BYTES + 1);
    assert_eq!(
        fail_reason(&c, "alice", &method, &[]),
        "method name must be 1-64 bytes, got 65"
    );
}

#[test]
fn state_entry_limit() {
    let mut c = kv(&[("balance_alice", "10")]);
    for i in 0..limits::MAX_CONTRACT_STATE_ENTRIES - 1 {
        c.state.insert(format!("k{i:05}"), "v".into());
    }
    assert_eq!(c.state.len(), limits::MAX_CONTRACT_STATE_ENTRIES);
    assert_eq!(
        fail_reason(&c, "alice", "set", &["new", "v"]),
        "contract state is full (4096 entries)"
    );
    assert!(fail_reason(&c, "alice", "transfer", &["bob", "1"]).contains("state is full"));
    // Overwriting an existing entry is fine.
    ok(&c, "alice", "set", &["k00000", "w"]);
    // The NFT template frees an entry when a listing ends.
    let mut m = deploy_with(NFT_CODE_HASH, &[]).unwrap();
    let (_, w) = ok(&m, "carol", "mint_nft", &["n"]);
    m.apply_writes(&w);
    let (_, w) = ok(&m, "carol", "list_nft", &["n", "5"]);
    m.apply_writes(&w);
    for i in 0..limits::MAX_CONTRACT_STATE_ENTRIES - 2 {
        m.state.insert(format!("k{i:05}"), "v".into());
    }
    assert!(fail_reason(&m, "dave", "mint_nft", &["m"]).contains("state is full"));
    let out = run(&m, "dave", "buy_nft", &["n"], 5, LIMIT);
    let CallOutcome::Success { writes, .. } = out else {
        panic!("{out:?}")
    };
    m.apply_writes(&writes);
    assert_eq!(m.state.len(), limits::MAX_CONTRACT_STATE_ENTRIES - 1);
    ok(&m, "dave", "mint_nft", &["m"]);
}

#[test]
fn result_size_limit() {
    let big = "x".repeat(limits::MAX_VALUE_BYTES);
    let c = kv(&[("big", &big)]);
    assert!(fail_reason(&c, "bob", "get", &["big"]).starts_with("result is 1067 bytes (max 1024)"));
    let fits = "x".repeat(900);
    let c = kv(&[("fits", &fits)]);
    ok(&c, "bob", "get", &["fits"]);
}

#[test]
fn unused_attached_coin_is_refunded_on_success() {
    let c = kv(&[("balance_alice", "10")]);
    let out = run(&c, "alice", "transfer", &["bob", "1"], 42, LIMIT);
    let CallOutcome::Success { payments, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        payments,
        vec![NativePayment {
            to: acct("alice"),
            amount: Amount(42)
        }]
    );
}

#[test]
fn deploy_limits() {
    let base = params("0xabc", &[]);
    let with = |f: &dyn Fn(&mut DeployParams)| {
        let mut p = base.clone();
        f(&mut p);
        deploy(p)
    };
    assert!(matches!(
        with(&|p| p.name.clear()),
        Err(DeployError::BadName { .. })
    ));
    assert!(matches!(
        with(&|p| p.name = "n".repeat(65)),
        Err(DeployError::BadName { .. })
    ));
    assert!(with(&|p| p.name = "n".repeat(64)).is_ok());
    assert!(matches!(
        with(&|p| p.code_hash.clear()),
        Err(DeployError::BadCodeHash { .. })
    ));
    assert!(matches!(
        with(&|p| p.code_hash = "h".repeat(MAX_CODE_HASH_BYTES + 1)),
        Err(DeployError::BadCodeHash { .. })
    ));
    assert!(matches!(
        with(&|p| p.initial_state = (0..65).map(|i| (format!("k{i}"), String::new())).collect()),
        Err(DeployError::TooManyEntries { got: 65, max: 64 })
    ));
    assert!(matches!(
        with(&|p| {
            p.initial_state.insert("k".repeat(129), String::new());
        }),
        Err(DeployError::BadKey { .. })
    ));
    assert!(matches!(
        with(&|p| {
            p.initial_state.insert(String::new(), String::new());
        }),
        Err(DeployError::BadKey { .. })
    ));
    assert!(matches!(
        with(&|p| {
            p.initial_state.insert("k".into(), "v".repeat(1025));
        }),
        Err(DeployError::ValueTooLong { .. })
    ));
    assert!(matches!(
        with(&|p| p.gas_budget = 0),
        Err(DeployError::BadGasBudget { .. })
    ));
    assert!(matches!(
        with(&|p| p.gas_budget = gas::MAX_GAS_BUDGET + 1),
        Err(DeployError::BadGasBudget { .. })
    ));
    assert!(with(&|p| p.gas_budget = gas::MAX_GAS_BUDGET).is_ok());
    let c = deploy(base).unwrap();
    assert_eq!(c.created_height, 7);
    assert!(c.cross_shard_calls.is_empty());
}

fn sample_call(n: u8, status: CallStatus) -> CrossShardCall {
    CrossShardCall {
        id: CallId::from_tx(&Hash::sha256(&[n])),
        from_shard: ShardId(1),
        to_shard: ShardId(0),
        contract_id: cid(),
        method: "transfer".into(),
        args: vec!["alice".into(), "100".into()],
        status,
        result: None,
    }
}

#[test]
fn contract_json_matches_the_seed() {
    let mut c = deploy_with(
        "0xabc123...",
        &[
            ("total_supply", "1000000"),
            ("balance_alice", "900"),
            ("balance_bob", "100"),
        ],
    )
    .unwrap();
    c.record_call(sample_call(1, CallStatus::Pending));
    assert!(c.set_call_status(
        &sample_call(1, CallStatus::Pending).id,
        CallStatus::Completed,
        Some(r#"{"status":"success","transferred":100}"#.into())
    ));
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["id"], json!(cid().as_str()));
    assert_eq!(v["name"], json!("Test"));
    assert_eq!(v["owner"], json!("alice"));
    assert_eq!(v["primary_shard"], json!(0));
    assert_eq!(v["code_hash"], json!("0xabc123..."));
    assert_eq!(
        v["state"],
        json!({"total_supply":"1000000","balance_alice":"900","balance_bob":"100"})
    );
    assert_eq!(v["gas_budget"], json!(1000000));
    let call = &v["cross_shard_calls"][0];
    assert_eq!(call["from_shard"], json!(1));
    assert_eq!(call["to_shard"], json!(0));
    assert_eq!(call["method"], json!("transfer"));
    assert_eq!(call["status"], json!("Completed"));
    assert!(call["id"].as_str().unwrap().starts_with("xscall_"));
    let back: ShardContract = serde_json::from_value(v).unwrap();
    assert_eq!(back, c);
    for (s, text) in [
        (CallStatus::Pending, "\"Pending\""),
        (CallStatus::Executing, "\"Executing\""),
        (CallStatus::Completed, "\"Completed\""),
        (CallStatus::Failed, "\"Failed\""),
    ] {
        assert_eq!(serde_json::to_string(&s).unwrap(), text);
    }
}

#[test]
fn call_history_is_bounded() {
    let mut c = kv(&[]);
    for i in 0..=255u8 {
        c.record_call(sample_call(i, CallStatus::Pending));
    }
    c.record_call(sample_call(0, CallStatus::Failed));
    c.record_call(CrossShardCall {
        result: Some("é".repeat(1000)),
        ..sample_call(1, CallStatus::Completed)
    });
    assert_eq!(c.cross_shard_calls.len(), MAX_CALL_HISTORY);
    assert_eq!(
        c.cross_shard_calls[0].id,
        sample_call(2, CallStatus::Pending).id
    );
    let last = c.cross_shard_calls.last().unwrap();
    assert_eq!(
        last.result.as_ref().unwrap().len(),
        limits::MAX_RESULT_BYTES
    );
    assert!(!c.set_call_status(&CallId([9; 16]), CallStatus::Failed, None));
    let bytes = c.encode();
    assert_eq!(ShardContract::decode(bytes).unwrap(), c);
}

#[test]
fn codec_is_canonical_and_bounded() {
    let mut c = deploy_with(TOKEN_CODE_HASH, &[("total_supply", "5"), ("symbol", "MTK")]).unwrap();
    c.record_call(sample_call(3, CallStatus::Executing));
    let bytes = c.encode();
    assert_eq!(bytes.len(), c.encode_size());
    let back = ShardContract::decode(bytes.clone()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.encode(), bytes);
    // Swap the order of two state entries: not canonical, refused.
    let mut m = kv(&[]);
    m.state.insert("a".into(), "1".into());
    m.state.insert("b".into(), "2".into());
    let mut raw = m.encode().to_vec();
    let pos = raw
        .windows(4)
        .position(|w| w == [1, b'a', 1, b'1'])
        .unwrap();
    raw[pos + 1] = b'b';
    raw[pos + 5] = b'a';
    assert!(ShardContract::decode(raw).is_err());
    // Truncations never decode.
    for cut in 0..bytes.len() {
        assert!(ShardContract::decode(bytes[..cut].to_vec()).is_err());
    }
}

// ---- property tests ----

/// Arguments drawn for random calls: accounts, symbols, NFT ids, amounts, keys, junk.
const ARG_POOL: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "ETH",
    "TOKEN",
    "BTC",
    "nft1",
    "nft2",
    "0",
    "1",
    "7",
    "100",
    "1000",
    "99999",
    "340282366920938463463374607431768211455",
    "-5",
    "balance_alice",
    "total_supply",
    "reserve_ETH",
    "",
    "Bob",
];

#[derive(Clone, Debug)]
struct Op {
    caller: &'static str,
    method: String,
    args: Vec<String>,
    attached: u128,
    gas_limit: u64,
}

const ACCOUNTS: &[&str] = &["alice", "bob", "carol"];
const AMOUNTS: &[&str] = &[
    "0",
    "1",
    "7",
    "100",
    "1000",
    "99999",
    "340282366920938463463374607431768211455",
];
const TOKENS: &[&str] = &["ETH", "TOKEN", "ETH", "TOKEN", "BTC"];
const NFTS: &[&str] = &["nft1", "nft2"];
const KEYS: &[&str] = &[
    "color",
    "k",
    "balance_alice",
    "total_supply",
    "reserve_ETH",
    "nft_owner_nft1",
];
const VALUES: &[&str] = &["blue", "1", "100"];

/// Well-formed argument pools, per position, for `method`.
fn arg_pools(template: Template, method: &str) -> Vec<&'static [&'static str]> {
    match (template, method) {
        (_, "get") => vec![KEYS],
        (_, "set") => vec![KEYS, VALUES],
        (_, "transfer" | "mint") => vec![ACCOUNTS, AMOUNTS],
        (Template::Dex, "balance") => vec![TOKENS, ACCOUNTS],
        (_, "balance") => vec![ACCOUNTS],
        (_, "deposit") => vec![TOKENS, AMOUNTS, ACCOUNTS],
        (_, "add_liquidity") => vec![AMOUNTS, AMOUNTS],
        (_, "remove_liquidity") => vec![AMOUNTS],
        (_, "swap") => vec![TOKENS, TOKENS, AMOUNTS],
        (_, "list_nft") => vec![NFTS, AMOUNTS],
        (_, "mint_nft" | "unlist_nft" | "buy_nft" | "owner_of") => vec![NFTS],
        _ => vec![ARG_POOL],
    }
}

/// Random calls: mostly well-formed arguments and a generous gas limit, sometimes junk
/// arguments, tiny or over-budget limits, unknown methods.
fn op(template: Template) -> impl Strategy<Value = Op> {
    let mut methods: Vec<String> = template.methods().iter().map(|m| m.to_string()).collect();
    methods.extend(["mint", "bogus", ""].map(String::from));
    let args = prop::sample::select(methods).prop_flat_map(move |m| {
        let well_formed: Vec<_> = arg_pools(template, &m)
            .into_iter()
            .map(prop::sample::select)
            .collect();
        let junk = prop::collection::vec(prop::sample::select(ARG_POOL), 0..5);
        (Just(m), prop_oneof![4 => well_formed, 1 => junk])
    });
    let gas_limit = prop_oneof![
        4 => Just(LIMIT),
        1 => prop::sample::select(vec![0u64, 900, 1_500, 3_000, 6_000, 12_000, BUDGET + 1]),
    ];
    (
        prop::sample::select(ACCOUNTS),
        args,
        prop::sample::select(vec![0u128, 1, 999, 1000, 5000]),
        gas_limit,
    )
        .prop_map(|(caller, (method, args), attached, gas_limit)| Op {
            caller,
            method,
            args: args.into_iter().map(String::from).collect(),
            attached,
            gas_limit,
        })
}

fn setup(template: Template) -> ShardContract {
    let mut c = match template {
        Template::Plain => kv(&[("balance_alice", "1000")]),
        Template::Token => deploy_with(TOKEN_CODE_HASH, &[("total_supply", "100000")]).unwrap(),
        Template::Dex => deploy_with(DEX_CODE_HASH, &[]).unwrap(),
        Template::Nft => deploy_with(NFT_CODE_HASH, &[]).unwrap(),
    };
    if template == Template::Dex {
        for who in ["alice", "bob", "carol"] {
            for t in ["ETH", "TOKEN"] {
                let (_, w) = ok(&c, "alice", "deposit", &[t, "100000", who]);
                c.apply_writes(&w);
            }
        }
        let (_, w) = ok(&c, "alice", "add_liquidity", &["10000", "30000"]);
        c.apply_writes(&w);
    }
    if template == Template::Nft {
        for (who, method, args) in [
            ("carol", "mint_nft", &["nft1"][..]),
            ("carol", "list_nft", &["nft1", "7"]),
            ("bob", "mint_nft", &["nft2"]),
        ] {
            let (_, w) = ok(&c, who, method, args);
            c.apply_writes(&w);
        }
    }
    c
}

fn amount_at(c: &ShardContract, key: &str) -> u128 {
    c.state.get(key).map_or(0, |v| v.parse().unwrap())
}

fn sum_prefix(c: &ShardContract, prefix: &str) -> u128 {
    c.state
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.parse::<u128>().unwrap())
        .sum()
}

/// `a·b` as a 256-bit number `(high, low)`.
fn wide_mul(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let (lo, mid1, mid2, hi) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let (mid, carry_mid) = mid1.overflowing_add(mid2);
    let (low, carry_low) = lo.overflowing_add(mid << 64);
    let high = hi + (mid >> 64) + (u128::from(carry_mid) << 64) + u128::from(carry_low);
    (high, low)
}

fn k(c: &ShardContract) -> (u128, u128) {
    wide_mul(amount_at(c, "reserve_ETH"), amount_at(c, "reserve_TOKEN"))
}

/// Runs `ops` on a fresh contract of `template`, checking every invariant after each call.
fn check_sequence(template: Template, ops: &[Op]) {
    let mut c = setup(template);
    let mut deposited = [
        sum_prefix(&c, "balance_ETH_") + amount_at(&c, "reserve_ETH"),
        sum_prefix(&c, "balance_TOKEN_") + amount_at(&c, "reserve_TOKEN"),
    ];
    for o in ops {
        let before = c.clone();
        let input = CallInput {
            caller: acct(o.caller),
            method: o.method.clone(),
            args: o.args.clone(),
            attached: Amount(o.attached),
            gas_limit: o.gas_limit,
        };
        let out = execute(&c, &input);
        assert!(out.gas_used() <= o.gas_limit, "{o:?}: {out:?}");
        assert_eq!(execute(&c, &input), out, "execution is deterministic");
        match &out {
            CallOutcome::Success {
                writes,
                result,
                payments,
                ..
            } => {
                let paid: u128 = payments.iter().map(|p| p.amount.0).sum();
                assert_eq!(
                    paid, o.attached,
                    "{o:?}: payments must use the attached coin"
                );
                assert!(serde_json::to_vec(result).unwrap().len() <= limits::MAX_RESULT_BYTES);
                c.apply_writes(writes);
            }
            CallOutcome::Failure { reason, .. } => {
                assert!(reason.len() <= limits::MAX_RESULT_BYTES);
                assert!(!reason.is_empty());
            }
        }
        if !out.is_success() {
            assert_eq!(c, before, "failure changed state");
        }
        assert!(c.state.len() <= limits::MAX_CONTRACT_STATE_ENTRIES);
        match template {
            Template::Token => {
                assert_eq!(
                    sum_prefix(&c, "balance_"),
                    amount_at(&c, "total_supply"),
                    "{o:?}"
                );
            }
            Template::Dex => {
                if o.method == "swap" && out.is_success() {
                    assert!(k(&c) >= k(&before), "k decreased: {o:?}");
                }
                if o.method == "deposit" && out.is_success() {
                    let i = usize::from(o.args[0] == "TOKEN");
                    deposited[i] += o.args[1].parse::<u128>().unwrap();
                }
                for (i, t) in ["ETH", "TOKEN"].iter().enumerate() {
                    let held = sum_prefix(&c, &format!("balance_{t}_"))
                        .checked_add(amount_at(&c, &format!("reserve_{t}")));
                    assert_eq!(held, Some(deposited[i]), "{t} not conserved after {o:?}");
                }
                // "lp_" also matches "lp_total": Σ lp_<account> + lp_total = 2 · lp_total.
                assert_eq!(sum_prefix(&c, "lp_"), 2 * amount_at(&c, "lp_total"));
            }
            Template::Nft => {
                for k in c.state.keys().filter_map(|k| k.strip_prefix("nft_price_")) {
                    assert!(c.state.contains_key(&format!("nft_owner_{k}")));
                }
            }
            Template::Plain => {}
        }
    }
    let bytes = c.encode();
    assert_eq!(ShardContract::decode(bytes).unwrap(), c);
}

fn template() -> impl Strategy<Value = Template> {
    prop::sample::select(vec![
        Template::Plain,
        Template::Token,
        Template::Dex,
        Template::Nft,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random call sequences never panic, never change state on failure, stay within the gas
    /// limit, pay out exactly the attached coin, and keep every template invariant.
    #[test]
    fn random_call_sequences_keep_invariants(
        (t, ops) in template().prop_flat_map(|t| (Just(t), prop::collection::vec(op(t), 1..40)))
    ) {
        check_sequence(t, &ops);
    }

    /// Random swap sequences in both directions never decrease the pool's x·y.
    #[test]
    fn swaps_never_decrease_k(
        swaps in prop::collection::vec((any::<bool>(), 1u128..200_000, prop::sample::select(vec!["alice", "bob", "carol"])), 1..60)
    ) {
        let mut c = setup(Template::Dex);
        for (dir, amount, who) in swaps {
            let (from, to) = if dir { ("ETH", "TOKEN") } else { ("TOKEN", "ETH") };
            let amount = amount.to_string();
            let out = run(&c, who, "swap", &[from, to, &amount], 0, LIMIT);
            if let CallOutcome::Success { writes, .. } = out {
                let before = k(&c);
                c.apply_writes(&writes);
                prop_assert!(k(&c) >= before);
            }
        }
    }

    /// Arbitrary bytes never panic the decoder, and what decodes re-encodes identically.
    #[test]
    fn decoding_garbage_is_safe(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(c) = ShardContract::decode(bytes.clone()) {
            prop_assert_eq!(c.encode().to_vec(), bytes);
        }
    }
}
