//! The HTTP API through `tower::ServiceExt::oneshot` against an in-memory test double
//! (`support::FakeBackend`): seed shapes field for field, JSON errors with the right status,
//! and rejected requests never reaching the backend. `browser`: the dashboard page served over
//! TCP and rendered in headless Chromium.

mod browser;
mod support;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Method, Request, StatusCode, header},
};
use serde_json::{Value, json};
use std::{collections::BTreeSet, sync::Arc, time::Duration};
use support::{FakeBackend, known_call, known_tx, signed, token_id};
use tower::ServiceExt as _;
use vision_api::{ApiConfig, ROUTES, RouteId, router};
use vision_types::{AccountId, Action, Amount};

fn app(backend: &Arc<FakeBackend>) -> Router {
    router(backend.clone(), ApiConfig::default())
}

struct Reply {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn send(app: Router, req: Request<Body>) -> Reply {
    let res = app.oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = to_bytes(res.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    Reply {
        status,
        content_type,
        headers,
        text: String::from_utf8(bytes.to_vec()).expect("utf8"),
    }
}

async fn get(app: Router, path: &str) -> Reply {
    send(
        app,
        Request::get(path).body(Body::empty()).expect("request"),
    )
    .await
}

async fn post_raw(
    app: Router,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Reply {
    let mut req = Request::post(path);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    send(app, req.body(body.into()).expect("request")).await
}

async fn post(app: Router, path: &str, body: Value) -> Reply {
    post_raw(app, path, Some("application/json"), body.to_string()).await
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Asserts the JSON error shape, status and code.
fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.text);
    assert!(
        r.content_type.starts_with("application/json"),
        "content type {:?}",
        r.content_type
    );
    let v = r.json();
    assert_eq!(keys(&v), set(&["success", "error"]), "{v}");
    assert_eq!(v["success"], json!(false));
    assert_eq!(keys(&v["error"]), set(&["code", "message"]), "{v}");
    assert_eq!(v["error"]["code"], json!(code), "{v}");
    assert!(
        !v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
}

fn transfer(to: &str, amount: u128) -> Action {
    Action::Transfer {
        to: AccountId::new(to).expect("account"),
        amount: Amount(amount),
        priority: 0,
    }
}

// ---- seed endpoints, field for field ----

#[tokio::test]
async fn dashboard_has_the_seed_shape() {
    let b = FakeBackend::devnet();
    let r = get(app(&b), "/shard/dashboard").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "timestamp",
            "config",
            "shards",
            "network",
            "contracts",
            "performance"
        ])
    );
    assert_eq!(v["success"], json!(true));
    assert!(v["timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000));
    assert_eq!(
        keys(&v["config"]),
        set(&[
            "enabled",
            "num_shards",
            "async_crosslinks",
            "batch_size",
            "batch_timeout_ms",
            "smart_contracts"
        ])
    );
    assert_eq!(v["config"]["num_shards"], json!(4));
    assert_eq!(v["config"]["async_crosslinks"], json!(true));
    let shards = v["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 4);
    assert_eq!(
        keys(&shards[0]),
        set(&[
            "id",
            "name",
            "accounts",
            "validators",
            "tx_count",
            "crosslinks",
            "contracts",
            "pending_batch",
            "last_crosslink_height",
            "balance_total"
        ])
    );
    assert_eq!(shards[0]["id"], json!(0));
    assert_eq!(shards[0]["name"], json!("shard_0"));
    assert_eq!(shards[0]["balance_total"], json!("1000000000000"));
    assert_eq!(
        keys(&v["network"]),
        set(&[
            "total_crosslinks",
            "batched_crosslinks",
            "avg_batch_size",
            "total_txs",
            "completed_txs",
            "pending_txs",
            "pending_batch"
        ])
    );
    assert_eq!(keys(&v["contracts"]), set(&["total", "cross_shard_calls"]));
    assert_eq!(
        keys(&v["performance"]),
        set(&[
            "avg_crosslink_latency_ms",
            "avg_batch_latency_ms",
            "throughput_tps"
        ])
    );
    assert!(b.seen().is_empty());
}

#[tokio::test]
async fn flush_has_the_seed_shape() {
    let b = FakeBackend::devnet();
    let r = post_raw(app(&b), "/shard/batch/flush/0", None, Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(
        keys(&v),
        set(&["success", "crosslink_id", "batched_txs", "state_root"])
    );
    assert_eq!(v["crosslink_id"], json!("crosslink_0_1234_batch"));
    assert_eq!(v["batched_txs"], json!(47));
    assert_eq!(v["state_root"].as_str().map(str::len), Some(64));
    assert_eq!(b.seen(), vec!["flush 0"]);
}

#[tokio::test]
async fn batch_status_has_the_seed_shape() {
    let b = FakeBackend::devnet();
    let v = get(app(&b), "/shard/batch/status/2").await.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "shard_id",
            "pending_txs",
            "batch_age_ms",
            "is_ready"
        ])
    );
    assert_eq!(v["shard_id"], json!(2));
    assert_eq!(v["pending_txs"], json!(23));
    assert_eq!(v["batch_age_ms"], json!(342));
    assert_eq!(v["is_ready"], json!(true));
}

#[tokio::test]
async fn unknown_shards_are_404_and_never_reach_the_backend() {
    let b = FakeBackend::devnet();
    for path in [
        "/shard/batch/flush/4",
        "/shard/batch/flush/99999999999999999999",
    ] {
        let r = post_raw(app(&b), path, None, Body::empty()).await;
        assert_error(&r, StatusCode::NOT_FOUND, "unknown_shard");
    }
    let r = get(app(&b), "/shard/batch/status/7").await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_shard");
    for path in ["/shard/batch/flush/abc", "/shard/batch/flush/-1"] {
        let r = post_raw(app(&b), path, None, Body::empty()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_shard_id");
    }
    assert!(b.seen().is_empty(), "{:?}", b.seen());
}

#[tokio::test]
async fn deploy_seed_body_on_a_devnet() {
    let b = FakeBackend::devnet();
    let r = post(
        app(&b),
        "/shard/contract/deploy",
        json!({
            "name": "MyToken",
            "owner": "alice",
            "code_hash": "0xabc123",
            "initial_state": {"total_supply": "1000000", "name": "MyToken", "symbol": "MTK"}
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(keys(&v), set(&["success", "contract_id", "primary_shard"]));
    assert!(
        v["contract_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("contract_"))
    );
    assert_eq!(v["primary_shard"], json!(0));
    let seen = b.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], "dev_sign alice");
    assert!(seen[1].starts_with("deploy "));
}

#[tokio::test]
async fn deploy_signed_transaction_anywhere() {
    let b = FakeBackend::production();
    let tx = signed(
        "bob",
        0,
        Action::DeployContract {
            name: "DEX".into(),
            code_hash: "0xdex".into(),
            initial_state: Default::default(),
            gas_budget: 1_000_000,
        },
    );
    let r = post(app(&b), "/shard/contract/deploy", json!(tx)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["primary_shard"], json!(1));
    // A signed transaction of another kind is refused before the backend.
    let b = FakeBackend::production();
    let r = post(
        app(&b),
        "/shard/contract/deploy",
        json!(signed("bob", 0, transfer("alice", 1))),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_tx");
    assert!(b.seen().is_empty());
}

#[tokio::test]
async fn dev_signing_is_401_off_a_devnet() {
    let b = FakeBackend::production();
    let bodies = [
        (
            "/shard/contract/deploy",
            json!({"name": "MyToken", "owner": "alice", "code_hash": "0xabc123"}),
        ),
        (
            "/shard/contract/execute",
            json!({"contract_id": token_id(), "caller": "bob", "method": "transfer", "args": ["alice", "100"]}),
        ),
        (
            "/tx",
            json!({"signer": "alice", "action": {"type": "transfer", "to": "bob", "amount": "100"}}),
        ),
        (
            "/consensus/proposal",
            json!({"action": "validate_transaction", "data": "{}"}),
        ),
    ];
    for (path, body) in bodies {
        let r = post(app(&b), path, body).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "dev_signing_unavailable");
        let msg = r.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.contains("/tx") && msg.contains("signature"), "{msg}");
    }
    // Only the question "do you sign for this account?" reached the node.
    assert!(
        b.seen().iter().all(|c| c.starts_with("dev_sign")),
        "{:?}",
        b.seen()
    );
}

/// `POST /consensus/proposal` takes the seed's proposal dict (signed for alice, or a named
/// dev `proposer`, on a devnet) or a signed proposal transaction, and answers with the
/// ConsensusResult; `GET /consensus/proposal/{id}` finds it again; bad input is refused.
#[tokio::test]
async fn proposals_answer_with_the_consensus_result() {
    let b = FakeBackend::devnet();
    let r = post(
        app(&b),
        "/consensus/proposal",
        json!({"action": "cross_shard_operation", "affects_multiple_shards": true,
               "coordination_required": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "proposal_id",
            "status",
            "consensus_achieved",
            "action",
            "proposer",
            "coordinating_shard",
            "target_shards",
            "affects_multiple_shards",
            "coordination_required",
            "shard_results",
            "accepted_shards",
            "cross_shard_approval",
            "threshold",
            "time_taken_ms",
            "submitted_height",
            "decided_by",
            "beacon_height",
        ])
    );
    assert_eq!(v["decided_by"], "beacon", "several targets: {v}");
    assert_eq!(v["proposer"], "alice", "alice proposes by default: {v}");
    assert_eq!(v["target_shards"], json!([0, 1, 2, 3]));
    assert_eq!(v["accepted_shards"], 3);
    assert_eq!(v["consensus_achieved"], true, "3 of 4 >= 0.67: {v}");
    assert_eq!(
        keys(&v["shard_results"][3]),
        set(&[
            "shard_id",
            "accepted",
            "reason",
            "height",
            "committee_size",
            "quorum"
        ])
    );
    let id = v["proposal_id"].as_str().unwrap().to_string();
    let again = get(app(&b), &format!("/consensus/proposal/{id}")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), v);

    // A named dev proposer; a signed proposal transaction.
    let r = post(
        app(&b),
        "/consensus/proposal",
        json!({"action": "validate_transaction", "data": "x", "proposer": "bob"}),
    )
    .await;
    assert_eq!(r.json()["proposer"], "bob", "{}", r.text);
    let tx = signed(
        "carol",
        0,
        Action::Proposal {
            action: "governance_vote".into(),
            data: String::new(),
            affects_multiple_shards: false,
            coordination_required: true,
        },
    );
    let r = post(
        app(&b),
        "/consensus/proposal",
        serde_json::to_value(&tx).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["proposal_id"], json!(tx.id()));

    // Refused before the node: another transaction type, bad fields, unknown ids.
    let not_a_proposal = signed("carol", 1, transfer("bob", 1));
    let r = post(
        app(&b),
        "/consensus/proposal",
        serde_json::to_value(&not_a_proposal).unwrap(),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_tx");
    let r = post(app(&b), "/consensus/proposal", json!({"action": ""})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_tx");
    let r = post(
        app(&b),
        "/consensus/proposal",
        json!({"action": "x", "extra": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let long = "d".repeat(5000);
    let r = post(
        app(&b),
        "/consensus/proposal",
        json!({"action": "x", "data": long}),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_tx");
    assert_eq!(
        b.proposals.lock().unwrap().len(),
        3,
        "only the valid ones arrived"
    );
    assert_error(
        &get(app(&b), "/consensus/proposal/xyz").await,
        StatusCode::BAD_REQUEST,
        "invalid_proposal_id",
    );
    assert_error(
        &get(app(&b), &format!("/consensus/proposal/{}", "ab".repeat(32))).await,
        StatusCode::NOT_FOUND,
        "unknown_proposal",
    );
}

#[tokio::test]
async fn execute_same_shard_and_cross_shard() {
    let b = FakeBackend::devnet();
    let r = post(
        app(&b),
        "/shard/contract/execute",
        json!({"contract_id": token_id(), "caller": "alice", "method": "transfer", "args": ["bob", "100"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(keys(&v), set(&["success", "result"]));
    assert_eq!(
        v["result"],
        json!({"status": "success", "transferred": 100})
    );

    let r = post(
        app(&b),
        "/shard/contract/execute",
        json!({"contract_id": token_id(), "caller": "bob", "method": "transfer", "args": ["alice", "100"]}),
    )
    .await;
    let v = r.json();
    assert_eq!(keys(&v), set(&["success", "result"]));
    assert_eq!(keys(&v["result"]), set(&["status", "call_id", "message"]));
    assert_eq!(v["result"]["status"], json!("pending"));
    assert_eq!(v["result"]["message"], json!("Cross-shard call queued"));
    assert!(
        v["result"]["call_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("xscall_"))
    );

    let r = post(
        app(&b),
        "/shard/contract/execute",
        json!({"contract_id": token_id(), "caller": "alice", "method": "explode"}),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "contract_call_failed");

    let other = vision_types::ContractId::from_deploy(&vision_types::Hash::sha256(b"nope"));
    let r = post(
        app(&b),
        "/shard/contract/execute",
        json!({"contract_id": other, "caller": "alice", "method": "get", "args": ["k"]}),
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_contract");
}

#[tokio::test]
async fn contract_has_the_seed_shape() {
    let b = FakeBackend::devnet();
    let v = get(app(&b), &format!("/shard/contract/{}", token_id()))
        .await
        .json();
    assert_eq!(keys(&v), set(&["success", "contract"]));
    assert_eq!(
        keys(&v["contract"]),
        set(&[
            "id",
            "name",
            "owner",
            "primary_shard",
            "code_hash",
            "state",
            "cross_shard_calls",
            "gas_budget",
            "created_height"
        ])
    );
    assert_eq!(v["contract"]["state"]["balance_bob"], json!("100"));
    assert_eq!(v["contract"]["gas_budget"], json!(1_000_000));
    let call = &v["contract"]["cross_shard_calls"][0];
    assert_eq!(
        keys(call),
        set(&[
            "id",
            "from_shard",
            "to_shard",
            "contract_id",
            "method",
            "args",
            "status"
        ])
    );
    assert_eq!(call["status"], json!("Completed"));
    assert_eq!(call["from_shard"], json!(1));

    let missing = vision_types::ContractId::from_deploy(&vision_types::Hash::sha256(b"nope"));
    let r = get(app(&b), &format!("/shard/contract/{missing}")).await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_contract");
    let r = get(app(&b), "/shard/contract/not-a-contract").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_contract_id");
}

#[tokio::test]
async fn contracts_list_has_the_seed_shape() {
    let b = FakeBackend::devnet();
    let v = get(app(&b), "/shard/contracts").await.json();
    assert_eq!(keys(&v), set(&["success", "count", "contracts"]));
    assert_eq!(v["count"], json!(1));
    assert_eq!(
        keys(&v["contracts"][0]),
        set(&["id", "name", "owner", "primary_shard", "created_height"])
    );
    let r = get(app(&b), "/shard/contracts?limit=1000000").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let r = get(app(&b), "/shard/contracts?limit=abc").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn crosslinks_and_calls() {
    let b = FakeBackend::devnet();
    let v = get(app(&b), "/shard/crosslinks?limit=2").await.json();
    assert_eq!(keys(&v), set(&["success", "count", "crosslinks"]));
    assert_eq!(v["count"], json!(2));
    assert_eq!(
        keys(&v["crosslinks"][0]),
        set(&[
            "id",
            "shard_id",
            "height",
            "batched_txs",
            "state_root",
            "timestamp_ms"
        ])
    );
    let v = get(app(&b), &format!("/shard/call/{}", known_call()))
        .await
        .json();
    assert_eq!(keys(&v), set(&["success", "call"]));
    assert_eq!(
        keys(&v["call"]),
        set(&[
            "id",
            "from_shard",
            "to_shard",
            "contract_id",
            "method",
            "args",
            "status",
            "result"
        ])
    );
    let r = get(app(&b), "/shard/call/xscall_00").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_call_id");
    let r = get(app(&b), &format!("/shard/call/xscall_{}", "0".repeat(32))).await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_call");
}

#[tokio::test]
async fn config_seed_body_and_validation() {
    let b = FakeBackend::devnet();
    let r = post(
        app(&b),
        "/shard/config",
        json!({
            "enabled": true,
            "num_shards": 8,
            "async_crosslinks_enabled": true,
            "batch_size": 200,
            "batch_timeout_ms": 1000,
            "smart_contracts_enabled": true
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(keys(&v), set(&["success", "effective_height", "config"]));
    assert_eq!(v["config"]["batch_size"], json!(200));
    assert_eq!(v["config"]["num_shards"], json!(8));
    assert_eq!(b.seen(), vec!["update_config"]);

    let b = FakeBackend::devnet();
    let r = post(app(&b), "/shard/config", json!({"batch_sise": 3})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let r = post(app(&b), "/shard/config", json!({"batch_size": 0})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_config");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("batch_size")
    );
    let r = post(app(&b), "/shard/config", json!({})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_config");
    let r = post(app(&b), "/shard/config", json!({"batch_size": "many"})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(b.seen().is_empty(), "{:?}", b.seen());
}

#[tokio::test]
async fn rebalance_plans_or_moves_and_refuses_bad_bodies() {
    let b = FakeBackend::devnet();
    let r = post(app(&b), "/shard/rebalance", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "effective_height",
            "moves",
            "shard_loads",
            "message"
        ])
    );
    assert_eq!(v["effective_height"], Value::Null);
    let r = post(
        app(&b),
        "/shard/rebalance",
        json!({"moves": [{"account": "whale", "to": 2}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["moves"][0]["account"], "whale");
    assert_eq!(v["moves"][0]["to"], 2);
    assert_eq!(v["effective_height"], 50);
    assert_eq!(b.seen(), vec!["rebalance", "rebalance"]);

    let b = FakeBackend::devnet();
    let too_many: Vec<Value> = (0..17)
        .map(|i| json!({"account": format!("user{i}"), "to": 1}))
        .collect();
    for (body, code) in [
        (json!({"moves": []}), "invalid_rebalance"),
        (json!({"moves": too_many}), "invalid_rebalance"),
        (json!({"moves": [{"account": "whale"}]}), "invalid_request"),
        (
            json!({"moves": [{"account": "whale", "to": -1}]}),
            "invalid_request",
        ),
        (
            json!({"moves": [{"account": "x y", "to": 1}]}),
            "invalid_request",
        ),
        (json!({"plan": true}), "invalid_request"),
    ] {
        let r = post(app(&b), "/shard/rebalance", body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, code);
    }
    assert!(b.seen().is_empty(), "{:?}", b.seen());
    let cfg = ApiConfig {
        admin_token: Some("s3cret".into()),
        ..ApiConfig::default()
    };
    let r = post(router(b.clone(), cfg), "/shard/rebalance", json!({})).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(b.seen().is_empty(), "{:?}", b.seen());
}

#[tokio::test]
async fn clients_over_the_request_rate_get_429_and_others_do_not() {
    let b = FakeBackend::devnet();
    let cfg = ApiConfig {
        max_requests_per_s: 3,
        ..ApiConfig::default()
    };
    let app = router(b.clone(), cfg);
    let from = |ip: [u8; 4]| {
        let mut req = Request::get("/health")
            .body(Body::empty())
            .expect("request");
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 4000,
            ))));
        req
    };
    for _ in 0..3 {
        assert_eq!(
            send(app.clone(), from([10, 0, 0, 1])).await.status,
            StatusCode::OK
        );
    }
    let r = send(app.clone(), from([10, 0, 0, 1])).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert_eq!(
        send(app.clone(), from([10, 0, 0, 2])).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn admin_routes_need_the_token_when_configured() {
    let b = FakeBackend::devnet();
    let cfg = ApiConfig {
        admin_token: Some("s3cret".into()),
        ..ApiConfig::default()
    };
    let app = router(b.clone(), cfg);
    let r = post_raw(app.clone(), "/shard/batch/flush/0", None, Body::empty()).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = post(app.clone(), "/shard/config", json!({"batch_size": 50})).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = Request::post("/shard/batch/flush/0")
        .header(header::AUTHORIZATION, "Bearer s3creT")
        .body(Body::empty())
        .expect("request");
    assert_error(
        &send(app.clone(), wrong).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(b.seen().is_empty());
    let right = Request::post("/shard/batch/flush/0")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(app, right).await.status, StatusCode::OK);
    assert_eq!(b.seen(), vec!["flush 0"]);
}

// ---- transactions ----

#[tokio::test]
async fn submit_signed_and_dev_signed_transactions() {
    let b = FakeBackend::production();
    let tx = signed("alice", 0, transfer("bob", 100));
    let r = post(app(&b), "/tx", json!(tx)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(keys(&v), set(&["success", "tx_id", "shard_id"]));
    assert_eq!(v["tx_id"], json!(tx.id().to_hex()));

    let b = FakeBackend::devnet();
    let r = post(
        app(&b),
        "/tx",
        json!({"signer": "alice", "action": {"type": "transfer", "to": "bob", "amount": "100"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(b.seen().len(), 2);

    // Backend-side rejections keep their status.
    let b = FakeBackend::production();
    let r = post(
        app(&b),
        "/tx",
        json!(signed("alice", 5_000, transfer("bob", 1))),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "nonce_conflict");
}

#[tokio::test]
async fn bad_transactions_never_reach_the_backend() {
    let b = FakeBackend::devnet();
    // Tampered: the signature no longer covers the content.
    let mut tx = signed("alice", 0, transfer("bob", 100));
    tx.tx.nonce = 1;
    let r = post(app(&b), "/tx", json!(tx)).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_signature");

    // Over the limits the codec enforces.
    let r = post(
        app(&b),
        "/tx",
        json!(signed(
            "alice",
            0,
            Action::CallContract {
                contract: token_id(),
                method: "m".repeat(65),
                args: vec![],
                gas_limit: 1,
                amount: Amount(0),
            }
        )),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_tx");

    // Amount above u128::MAX, negative, fractional: 400.
    let mut v = json!(signed("alice", 0, transfer("bob", 1)));
    for bad in [
        json!("340282366920938463463374607431768211456"),
        json!(-1),
        json!(1.5),
        json!(1e40),
    ] {
        v["tx"]["action"]["amount"] = bad.clone();
        let r = post(app(&b), "/tx", v.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let r = post(
        app(&b),
        "/shard/contract/execute",
        json!({"contract_id": token_id(), "caller": "alice", "method": "buy", "amount": "340282366920938463463374607431768211456"}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");

    // Unknown fields and bad ids.
    let r = post(
        app(&b),
        "/tx",
        json!({"signer": "alice", "action": {"type": "transfer", "to": "bob", "amount": "1"}, "extra": 1}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let r = post(
        app(&b),
        "/tx",
        json!({"signer": "Alice!", "action": {"type": "transfer", "to": "bob", "amount": "1"}}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(b.seen().is_empty(), "{:?}", b.seen());
}

#[tokio::test]
async fn malformed_bodies_are_json_errors() {
    let b = FakeBackend::devnet();
    let r = post_raw(app(&b), "/tx", Some("application/json"), "{\"signer\": ").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");
    let r = post_raw(app(&b), "/tx", Some("application/json"), "not json").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");
    let r = post_raw(
        app(&b),
        "/shard/config",
        Some("text/plain"),
        "{\"batch_size\": 5}",
    )
    .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let r = post_raw(app(&b), "/shard/contract/deploy", None, "{}").await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let r = post_raw(
        app(&b),
        "/shard/config",
        Some("application/json; charset=utf-8"),
        "[1, 2",
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");
    assert!(b.seen().is_empty(), "{:?}", b.seen());
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let b = FakeBackend::devnet();
    let app = router(
        b.clone(),
        ApiConfig {
            max_body_bytes: 1024,
            ..ApiConfig::default()
        },
    );
    let big = json!({"signer": "alice", "action": {"type": "proposal", "action": "x", "data": "a".repeat(4000)}});
    let r = post(app.clone(), "/tx", big).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    // The default limit is 1 MiB.
    assert_eq!(ApiConfig::default().max_body_bytes, 1024 * 1024);
    let huge = format!("{{\"txs\": [{}]}}", "0,".repeat(600_000));
    let r = post_raw(
        vision_api::router(b.clone(), ApiConfig::default()),
        "/tx/batch",
        Some("application/json"),
        huge,
    )
    .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert!(b.seen().is_empty(), "{:?}", b.seen());
}

#[tokio::test]
async fn batches_are_bounded_and_answer_per_transaction() {
    let b = FakeBackend::devnet();
    let app = router(
        b.clone(),
        ApiConfig {
            max_batch_txs: 2,
            ..ApiConfig::default()
        },
    );
    let txs: Vec<_> = (0..3)
        .map(|n| signed("alice", n, transfer("bob", 1)))
        .collect();
    let r = post(app.clone(), "/tx/batch", json!({"txs": txs})).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_many_txs");
    let r = post(app.clone(), "/tx/batch", json!({"txs": []})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(b.seen().is_empty());

    let mut bad = signed("bob", 0, transfer("alice", 1));
    bad.tx.fee = Amount(0);
    let r = post(app, "/tx/batch", json!({"txs": [txs[0].clone(), bad]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(
        keys(&v),
        set(&["success", "accepted", "rejected", "results"])
    );
    assert_eq!(v["accepted"], json!(1));
    assert_eq!(v["rejected"], json!(1));
    assert_eq!(keys(&v["results"][0]), set(&["tx_id", "shard_id"]));
    assert_eq!(keys(&v["results"][1]), set(&["tx_id", "error"]));
    assert_eq!(v["results"][1]["error"]["code"], json!("invalid_signature"));
    assert_eq!(b.seen(), vec!["submit_batch 1"]);
}

#[tokio::test]
async fn tx_status_lifecycle() {
    let b = FakeBackend::devnet();
    let v = get(app(&b), &format!("/tx/{}", known_tx())).await.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "tx_id",
            "status",
            "shard_id",
            "height",
            "crosslink_id"
        ])
    );
    assert_eq!(v["status"], json!("batched"));
    let r = get(app(&b), &format!("/tx/{}", "ab".repeat(32))).await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_tx");
    let r = get(app(&b), "/tx/xyz").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_tx_id");
}

#[tokio::test]
async fn accounts() {
    let b = FakeBackend::devnet();
    let v = get(app(&b), "/account/bob").await.json();
    assert_eq!(keys(&v), set(&["success", "account"]));
    assert_eq!(
        keys(&v["account"]),
        set(&["id", "shard_id", "balance", "nonce", "public_key"])
    );
    assert_eq!(v["account"]["balance"], json!("1000000"));
    assert_eq!(v["account"]["shard_id"], json!(1));
    assert_error(
        &get(app(&b), "/account/zed").await,
        StatusCode::NOT_FOUND,
        "unknown_account",
    );
    assert_error(
        &get(app(&b), "/account/A").await,
        StatusCode::BAD_REQUEST,
        "invalid_account_id",
    );
}

// ---- node state, timeouts, routing ----

#[tokio::test]
async fn health_and_status() {
    let b = FakeBackend::devnet();
    let v = get(app(&b), "/health").await.json();
    assert_eq!(v, json!({"success": true, "status": "ok"}));
    let v = get(app(&b), "/status").await.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "chain_id",
            "version",
            "devnet",
            "role",
            "peers",
            "syncing",
            "beacon_height",
            "shards",
            "processes"
        ])
    );
    assert_eq!(
        keys(&v["shards"][0]),
        set(&["shard_id", "height", "block_hash", "state_root"])
    );
    let v = get(app(&b), "/supply").await.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "genesis",
            "balances",
            "in_flight",
            "burned",
            "unclaimed",
            "balanced",
            "shards"
        ])
    );
    assert_eq!(v["balanced"], true, "{v}");
    assert_eq!(v["genesis"], "4000", "amounts are decimal strings: {v}");
    let v = get(app(&b), "/consensus/metrics").await.json();
    assert_eq!(
        keys(&v),
        set(&[
            "success",
            "active_shards",
            "strategy",
            "total_throughput",
            "cross_shard_operations",
            "total_nodes",
            "average_reputation",
            "beacon_committee",
            "beacon_height",
            "shards",
            "validators"
        ])
    );
    assert_eq!(
        keys(&v["shards"][0]),
        set(&[
            "shard_id",
            "members",
            "nodes",
            "coordinator",
            "avg_reputation",
            "height",
            "observed_reputation"
        ])
    );
    assert_eq!(
        keys(&v["validators"][0]),
        set(&[
            "name",
            "consensus_key",
            "shard_id",
            "reputation",
            "genesis_reputation",
            "finalize_votes",
            "missed",
            "blocks_finalized",
            "beacon_blocks_finalized",
            "equivocations"
        ])
    );
    assert_eq!(v["validators"].as_array().map(Vec::len), Some(16), "{v}");
    assert_eq!(v["validators"][0]["missed"], 10, "{v}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let b = FakeBackend::devnet();
    let r = get(app(&b), "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"));
    assert!(r.text.contains("vision_fake_up 1"));
}

#[tokio::test]
async fn unavailable_backend_is_503() {
    let b = Arc::new(FakeBackend {
        unavailable: true,
        ..FakeBackend::with(true)
    });
    for path in [
        "/status",
        "/metrics",
        "/shard/dashboard",
        "/shard/batch/status/0",
        "/account/bob",
    ] {
        assert_error(
            &get(app(&b), path).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
    }
}

#[tokio::test]
async fn flush_that_does_not_finalize_in_time_is_504() {
    let b = Arc::new(FakeBackend {
        flush_delay: Duration::from_secs(5),
        ..FakeBackend::with(true)
    });
    let app = router(
        b.clone(),
        ApiConfig {
            finality_timeout_ms: 50,
            ..ApiConfig::default()
        },
    );
    let r = post_raw(app, "/shard/batch/flush/1", None, Body::empty()).await;
    assert_error(&r, StatusCode::GATEWAY_TIMEOUT, "timeout");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let b = FakeBackend::devnet();
    assert_error(
        &get(app(&b), "/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let r = get(app(&b), "/shard/batch/flush/0").await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(b.seen().is_empty());
}

fn concrete(path: &str) -> String {
    path.replace("{shard_id}", "0")
        .replace("{contract_id}", token_id().as_str())
        .replace("{call_id}", &known_call().to_string())
        .replace("{id}", "placeholder")
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_route_is_served() {
    let b = FakeBackend::devnet();
    let doc = get(app(&b), "/openapi.json").await.json();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    let paths = doc["paths"].as_object().expect("paths");
    let mut ids = BTreeSet::new();
    for r in ROUTES {
        let op = &paths
            .get(r.path)
            .unwrap_or_else(|| panic!("{} missing from openapi.json", r.path))
            [r.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} missing", r.method, r.path);
        assert!(ids.insert(format!("{:?}", r.id)), "{:?} listed twice", r.id);
        if r.id == RouteId::Events {
            // An endless stream: check the head only.
            let req = Request::get(r.path).body(Body::empty()).expect("request");
            let res = app(&b).oneshot(req).await.expect("infallible");
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(
                res.headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                Some("text/event-stream")
            );
            continue;
        }
        // Served: whatever the answer, it is not the router's "no such route/method".
        let method = Method::from_bytes(r.method.as_bytes()).expect("method");
        let req = Request::builder()
            .method(method)
            .uri(concrete(r.path))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .expect("request");
        let reply = send(app(&b), req).await;
        if reply.content_type.starts_with("application/json") && !reply.status.is_success() {
            let code = reply.json()["error"]["code"].clone();
            assert!(
                code != json!("not_found") && code != json!("method_not_allowed"),
                "{} {} is not routed: {}",
                r.method,
                r.path,
                reply.text
            );
        }
    }
    // Every path in the document is a route, and every RouteId is in the table.
    let listed: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(listed, ROUTES.len());
    let all = [
        RouteId::Health,
        RouteId::Status,
        RouteId::Metrics,
        RouteId::OpenApi,
        RouteId::Root,
        RouteId::DashboardPage,
        RouteId::Dashboard,
        RouteId::BatchFlush,
        RouteId::BatchStatus,
        RouteId::Crosslinks,
        RouteId::ContractDeploy,
        RouteId::ContractExecute,
        RouteId::Contract,
        RouteId::Contracts,
        RouteId::Call,
        RouteId::Config,
        RouteId::SubmitTx,
        RouteId::SubmitBatch,
        RouteId::TxStatus,
        RouteId::Account,
        RouteId::Events,
        RouteId::Supply,
        RouteId::ConsensusMetrics,
        RouteId::Proposal,
        RouteId::ProposalStatus,
        RouteId::Rebalance,
    ];
    for id in all {
        assert!(ROUTES.iter().any(|r| r.id == id), "{id:?} not in ROUTES");
    }
    assert_eq!(all.len(), ROUTES.len());
    // The seed's endpoints are all there.
    for (m, p) in [
        ("post", "/shard/batch/flush/{shard_id}"),
        ("get", "/shard/batch/status/{shard_id}"),
        ("post", "/shard/contract/deploy"),
        ("post", "/shard/contract/execute"),
        ("get", "/shard/contract/{contract_id}"),
        ("get", "/shard/contracts"),
        ("get", "/shard/dashboard"),
        ("post", "/shard/config"),
        ("get", "/shard-dashboard.html"),
        ("post", "/consensus/proposal"),
        ("get", "/consensus/metrics"),
    ] {
        assert!(paths[p][m].is_object(), "{m} {p}");
    }
}

#[tokio::test]
async fn dashboard_page_is_self_contained_html() {
    let b = FakeBackend::devnet();
    let r = get(app(&b), "/shard-dashboard.html").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type.starts_with("text/html"),
        "{}",
        r.content_type
    );
    let html = r.text.to_ascii_lowercase();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external URL in the page"
    );
    assert!(
        !html.contains("//cdn") && !html.contains("src=\"//"),
        "external resource"
    );
    for needle in [
        "id=\"total-crosslinks\"",
        "id=\"shards\"",
        "data-shard-id",
        "data-flush-shard",
        "id=\"connection-status\"",
        "id=\"last-update\"",
        "id=\"refresh-button\"",
        "id=\"pending-batches\"",
        "id=\"crosslinks-table\"",
        "id=\"contracts-list\"",
        "id=\"reputation-table\"",
        "/consensus/metrics",
        "id=\"throughput-tps\"",
        "data-config-field=\"batch_size\"",
        "/shard/dashboard",
        "/shard/batch/flush/",
        "visibilitychange",
    ] {
        assert!(html.contains(needle), "dashboard lacks {needle}");
    }
    let csp = r
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let r = get(app(&b), "/").await;
    assert!(r.status.is_redirection());
    assert_eq!(
        r.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/shard-dashboard.html")
    );
}

#[tokio::test]
async fn serve_answers_over_tcp_and_shuts_down() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let b = FakeBackend::devnet();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vision_api::serve(listener, app(&b), async move {
        let _ = stopped.await;
    }));
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.ends_with(r#"{"success":true,"status":"ok"}"#),
        "{reply}"
    );
    stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful shutdown")
        .expect("join")
        .expect("serve");
}

/// Deterministic xorshift, so the adversarial bodies are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[tokio::test]
async fn adversarial_bodies_get_json_answers_and_never_5xx() {
    let valid = [
        (
            "/tx",
            json!({"signer": "alice", "action": {"type": "transfer", "to": "bob", "amount": "100"}}),
        ),
        ("/tx", json!(signed("alice", 0, transfer("bob", 100)))),
        (
            "/tx/batch",
            json!({"txs": [signed("alice", 0, transfer("bob", 100))]}),
        ),
        (
            "/shard/contract/deploy",
            json!({"name": "MyToken", "owner": "alice", "code_hash": "0xabc123", "initial_state": {"a": "1"}}),
        ),
        (
            "/shard/contract/execute",
            json!({"contract_id": token_id(), "caller": "alice", "method": "transfer", "args": ["bob", "100"]}),
        ),
        (
            "/shard/config",
            json!({"batch_size": 200, "batch_timeout_ms": 1000}),
        ),
    ];
    let alphabet = b"{}[]\":,0123456789-.eE truefalsnul\\xyz\xff\x00";
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for (path, body) in valid {
        let text = body.to_string().into_bytes();
        for _ in 0..150 {
            let mut bytes = text.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            let b = FakeBackend::devnet();
            let r = post_raw(app(&b), path, Some("application/json"), bytes.clone()).await;
            assert!(
                !r.status.is_server_error(),
                "{path} {:?} -> {} {}",
                String::from_utf8_lossy(&bytes),
                r.status,
                r.text
            );
            let v = r.json();
            if r.status.is_success() {
                assert_eq!(v["success"], json!(true));
            } else {
                assert_eq!(keys(&v), set(&["success", "error"]), "{v}");
                // A body rejected as a request (not by the node) never changed anything.
                let request_level = [
                    StatusCode::BAD_REQUEST,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ];
                assert!(
                    !request_level.contains(&r.status)
                        || b.seen().iter().all(|c| c.starts_with("dev_sign")),
                    "{path} {:?}: {:?}",
                    String::from_utf8_lossy(&bytes),
                    b.seen()
                );
            }
        }
    }
}

#[tokio::test]
async fn long_bad_ids_are_not_echoed_in_full() {
    let b = FakeBackend::devnet();
    let long = "x".repeat(5000);
    for path in [
        format!("/account/{long}"),
        format!("/tx/{long}"),
        format!("/shard/contract/{long}"),
        format!("/shard/batch/status/{long}"),
    ] {
        let r = get(app(&b), &path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(r.text.len() < 400, "{}", r.text);
    }
}

/// A `GET /events` client over TCP: decodes the chunked body into SSE lines.
struct EventStream {
    reader: tokio::io::BufReader<tokio::net::TcpStream>,
    /// Decoded body bytes not yet returned as lines.
    pending: Vec<u8>,
    /// Whether the body's last chunk was read.
    ended: bool,
}

impl EventStream {
    async fn open(addr: std::net::SocketAddr) -> EventStream {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        conn.write_all(
            b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .expect("write");
        let mut reader = tokio::io::BufReader::new(conn);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let lower = head.to_ascii_lowercase();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(lower.contains("content-type: text/event-stream"), "{head}");
        assert!(lower.contains("transfer-encoding: chunked"), "{head}");
        EventStream {
            reader,
            pending: Vec::new(),
            ended: false,
        }
    }

    /// The next SSE line (without its newline), or `None` at the end of the body.
    async fn line(&mut self) -> Option<String> {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                return Some(String::from_utf8(line[..at].to_vec()).expect("utf8"));
            }
            if self.ended {
                return None;
            }
            let mut size = String::new();
            self.reader.read_line(&mut size).await.expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).await.expect("chunk");
            assert_eq!(&chunk[size..], b"\r\n");
            chunk.truncate(size);
            if size == 0 {
                self.ended = true;
            }
            self.pending.extend(chunk);
        }
    }

    /// The next event's name and data, skipping comments; `None` at the end of the body.
    async fn event(&mut self) -> Option<(String, Value)> {
        let (mut name, mut data) = (None, None);
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.line())
                .await
                .expect("an event within 10 s")?;
            if line.is_empty() {
                if let (Some(n), Some(d)) = (name.take(), data.take()) {
                    return Some((n, d));
                }
            } else if let Some(v) = line.strip_prefix("event: ") {
                name = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).expect("event data is JSON"));
            } else {
                assert!(line.starts_with(':'), "unexpected SSE line {line:?}");
            }
        }
    }
}

fn block_event(height: u64) -> vision_api::backend::BlockEvent {
    let h = |s: &str| vision_types::Hash::sha256(format!("{s} {height}").as_bytes());
    vision_api::backend::BlockEvent {
        shard_id: vision_types::ShardId(2),
        height,
        timestamp_ms: 1_700_000_000_000 + height,
        finalized_ms: 1_700_000_000_100 + height,
        tx_ids: vec![h("ok"), h("failed")],
        failed_tx_ids: vec![h("failed")],
        completed_origin_tx_ids: vec![h("origin")],
    }
}

#[tokio::test]
async fn events_stream_finalized_blocks_over_http_and_report_lag() {
    let b = FakeBackend::devnet();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vision_api::serve(listener, app(&b), async move {
        let _ = stopped.await;
    }));
    let mut stream = EventStream::open(addr).await;
    assert_eq!(
        b.events.receiver_count(),
        1,
        "subscribed once the head is sent"
    );

    // One event: `event: block` with the BlockEvent's JSON, field for field.
    b.events.send(block_event(1)).expect("a subscriber");
    let (name, data) = stream.event().await.expect("an event");
    assert_eq!(name, "block");
    assert_eq!(data, serde_json::to_value(block_event(1)).expect("json"));
    assert_eq!(
        keys(&data),
        set(&[
            "shard_id",
            "height",
            "timestamp_ms",
            "finalized_ms",
            "tx_ids",
            "failed_tx_ids",
            "completed_origin_tx_ids"
        ])
    );
    assert_eq!(
        data["tx_ids"][0],
        json!(block_event(1).tx_ids[0].to_string())
    );

    // More events than the channel holds, sent while the server task cannot run (this test
    // runs on a current-thread runtime): the stream says how many it lost, then goes on with
    // the newest.
    let burst = 10u64;
    for height in 2..2 + burst {
        b.events.send(block_event(height)).expect("a subscriber");
    }
    let lost = burst - support::EVENTS_CAPACITY as u64;
    let (name, data) = stream.event().await.expect("an event");
    assert_eq!((name.as_str(), data), ("lagged", json!({"skipped": lost})));
    for height in 2 + lost..2 + burst {
        let (name, data) = stream.event().await.expect("an event");
        assert_eq!(name, "block");
        assert_eq!(data["height"], json!(height));
    }

    // Shutting down ends the open stream instead of waiting for the client forever.
    stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful shutdown with an open event stream")
        .expect("join")
        .expect("serve");
    assert!(stream.event().await.is_none(), "the stream ended");
}
