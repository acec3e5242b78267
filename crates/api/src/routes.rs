//! The route table and the handlers.
//!
//! [`ROUTES`] is the single list of routes: [`crate::router`] registers exactly these and the
//! OpenAPI document ([`crate::openapi::document`]) is generated from them.

use crate::{
    ApiConfig,
    backend::{
        AccountView, BatchStatus, CallView, ConfigApplied, ContractSummary, ContractView,
        CrosslinkSummary, Executed, FlushOutcome, MoveRequest, NetworkStats, NodeBackend,
        Performance, ProposalView, Rebalanced, ShardSummary, Submitted, TxStatus,
    },
    error::{ApiError, dev_signing_unavailable, unknown_shard},
    extract::{ApiJson, from_value},
    openapi,
};
use axum::{
    Json, Router,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{MethodRouter, get, post},
};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, convert::Infallible, future::Future, sync::Arc, time::Duration};
use tokio::sync::{broadcast::error::RecvError, watch};
use vision_types::{
    AccountId, Action, Amount, CallId, ConfigUpdate, ContractId, Hash, ShardConfig, ShardId,
    SignedTransaction, Verified, verify_all,
};

/// Identifies a route (one per entry of [`ROUTES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteId {
    /// `GET /health`.
    Health,
    /// `GET /status`.
    Status,
    /// `GET /metrics`.
    Metrics,
    /// `GET /openapi.json`.
    OpenApi,
    /// `GET /` (redirects to the dashboard page).
    Root,
    /// `GET /shard-dashboard.html`.
    DashboardPage,
    /// `GET /shard/dashboard`.
    Dashboard,
    /// `POST /shard/batch/flush/{shard_id}`.
    BatchFlush,
    /// `GET /shard/batch/status/{shard_id}`.
    BatchStatus,
    /// `GET /shard/crosslinks`.
    Crosslinks,
    /// `POST /shard/contract/deploy`.
    ContractDeploy,
    /// `POST /shard/contract/execute`.
    ContractExecute,
    /// `GET /shard/contract/{contract_id}`.
    Contract,
    /// `GET /shard/contracts`.
    Contracts,
    /// `GET /shard/call/{call_id}`.
    Call,
    /// `POST /shard/config`.
    Config,
    /// `POST /shard/rebalance`.
    Rebalance,
    /// `POST /tx`.
    SubmitTx,
    /// `POST /tx/batch`.
    SubmitBatch,
    /// `GET /tx/{id}`.
    TxStatus,
    /// `GET /account/{id}`.
    Account,
    /// `GET /events` (server-sent events).
    Events,
    /// `GET /supply`.
    Supply,
    /// `GET /consensus/metrics`.
    ConsensusMetrics,
    /// `POST /consensus/proposal`.
    Proposal,
    /// `GET /consensus/proposal/{id}`.
    ProposalStatus,
}

/// One route: method, path (axum 0.8 syntax), a one-line summary for the OpenAPI document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRoute {
    /// Which route.
    pub id: RouteId,
    /// HTTP method (upper case).
    pub method: &'static str,
    /// Path, with `{param}` placeholders.
    pub path: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Whether the route needs the admin bearer token when one is configured.
    pub admin: bool,
}

const fn route(
    id: RouteId,
    method: &'static str,
    path: &'static str,
    summary: &'static str,
) -> ApiRoute {
    ApiRoute {
        id,
        method,
        path,
        summary,
        admin: false,
    }
}

const fn admin(
    id: RouteId,
    method: &'static str,
    path: &'static str,
    summary: &'static str,
) -> ApiRoute {
    ApiRoute {
        id,
        method,
        path,
        summary,
        admin: true,
    }
}

/// Every route the router serves.
pub const ROUTES: &[ApiRoute] = &[
    route(
        RouteId::Health,
        "GET",
        "/health",
        "Liveness: the API is serving.",
    ),
    route(
        RouteId::Status,
        "GET",
        "/status",
        "Chain id, version, devnet flag, beacon height and every shard's finalized head.",
    ),
    route(
        RouteId::Metrics,
        "GET",
        "/metrics",
        "Prometheus metrics (text exposition format).",
    ),
    route(
        RouteId::OpenApi,
        "GET",
        "/openapi.json",
        "This OpenAPI 3.1 document.",
    ),
    route(
        RouteId::Root,
        "GET",
        "/",
        "Redirects to /shard-dashboard.html.",
    ),
    route(
        RouteId::DashboardPage,
        "GET",
        "/shard-dashboard.html",
        "The shard management dashboard (self-contained HTML page).",
    ),
    route(
        RouteId::Dashboard,
        "GET",
        "/shard/dashboard",
        "Complete dashboard data: config, per-shard summaries, network, contracts, performance.",
    ),
    admin(
        RouteId::BatchFlush,
        "POST",
        "/shard/batch/flush/{shard_id}",
        "Close the shard's pending crosslink batch now; returns once the closing block is final.",
    ),
    route(
        RouteId::BatchStatus,
        "GET",
        "/shard/batch/status/{shard_id}",
        "The shard's pending crosslink batch: size, age, whether the next block closes it.",
    ),
    route(
        RouteId::Crosslinks,
        "GET",
        "/shard/crosslinks",
        "Recent beacon-finalized crosslinks, newest first (?limit=).",
    ),
    route(
        RouteId::ContractDeploy,
        "POST",
        "/shard/contract/deploy",
        "Deploy a contract (seed body, signed by a devnet node, or a signed deploy_contract tx).",
    ),
    route(
        RouteId::ContractExecute,
        "POST",
        "/shard/contract/execute",
        "Call a contract method (seed body, signed by a devnet node, or a signed call_contract tx).",
    ),
    route(
        RouteId::Contract,
        "GET",
        "/shard/contract/{contract_id}",
        "A contract: state, recent cross-shard calls, gas budget.",
    ),
    route(
        RouteId::Contracts,
        "GET",
        "/shard/contracts",
        "All contracts, ordered by id (?offset=&limit=).",
    ),
    route(
        RouteId::Call,
        "GET",
        "/shard/call/{call_id}",
        "A cross-shard contract call and its result.",
    ),
    admin(
        RouteId::Config,
        "POST",
        "/shard/config",
        "Change sharding configuration through the beacon chain; returns the effective height.",
    ),
    admin(
        RouteId::Rebalance,
        "POST",
        "/shard/rebalance",
        "Move hot accounts off overloaded shards (planned from recent load, or the given moves).",
    ),
    route(
        RouteId::SubmitTx,
        "POST",
        "/tx",
        "Submit a signed transaction (or, on a devnet, {signer, action} for a dev account).",
    ),
    route(
        RouteId::SubmitBatch,
        "POST",
        "/tx/batch",
        "Submit up to max_batch_txs signed transactions; one result per transaction.",
    ),
    route(
        RouteId::TxStatus,
        "GET",
        "/tx/{id}",
        "A transaction's lifecycle: pending, included, batched, crosslinked, completed, failed.",
    ),
    route(
        RouteId::Account,
        "GET",
        "/account/{id}",
        "An account's shard, balance, next nonce and key.",
    ),
    route(
        RouteId::Events,
        "GET",
        "/events",
        "Server-sent events: `block` (one per finalized shard block: tx ids, failed tx ids, \
         completed cross-shard origin tx ids) and `lagged` ({skipped}) when a slow client lost \
         events.",
    ),
    route(
        RouteId::Supply,
        "GET",
        "/supply",
        "The supply audit from finalized state of every shard: genesis supply, balances, coin \
         in flight in receipts, burned fees, and whether they add up.",
    ),
    route(
        RouteId::ConsensusMetrics,
        "GET",
        "/consensus/metrics",
        "PRSM metrics: strategy, committees with members, coordinator and reputation, beacon \
         committee, measured throughput and cross-shard operations, and every validator's \
         observed reputation (beacon-recorded votes, misses and blocks).",
    ),
    route(
        RouteId::Proposal,
        "POST",
        "/consensus/proposal",
        "Submit a PRSM proposal ({action, data, affects_multiple_shards, \
         coordination_required}, signed, or on a devnet for a dev `proposer`); answers with the \
         ConsensusResult once the proposer's shard decided it from the target shards' votes.",
    ),
    route(
        RouteId::ProposalStatus,
        "GET",
        "/consensus/proposal/{id}",
        "A PRSM proposal and its result (pending, achieved or failed) by proposal id.",
    ),
];

/// Shared handler state.
pub(crate) struct AppState<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) cfg: Arc<ApiConfig>,
}

impl<B> Clone for AppState<B> {
    fn clone(&self) -> Self {
        AppState {
            backend: self.backend.clone(),
            cfg: self.cfg.clone(),
        }
    }
}

type St<B> = State<AppState<B>>;
type ApiResult = Result<Response, ApiError>;

/// The handler of a route.
pub(crate) fn handler<B: NodeBackend>(id: RouteId) -> MethodRouter<AppState<B>> {
    match id {
        RouteId::Health => get(health),
        RouteId::Status => get(status::<B>),
        RouteId::Supply => get(supply::<B>),
        RouteId::ConsensusMetrics => get(consensus_metrics::<B>),
        RouteId::Proposal => post(proposal_submit::<B>),
        RouteId::ProposalStatus => get(proposal_status::<B>),
        RouteId::Metrics => get(metrics::<B>),
        RouteId::OpenApi => get(openapi_json),
        RouteId::Root => get(root),
        RouteId::DashboardPage => get(dashboard_page),
        RouteId::Dashboard => get(dashboard::<B>),
        RouteId::BatchFlush => post(batch_flush::<B>),
        RouteId::BatchStatus => get(batch_status::<B>),
        RouteId::Crosslinks => get(crosslinks::<B>),
        RouteId::ContractDeploy => post(contract_deploy::<B>),
        RouteId::ContractExecute => post(contract_execute::<B>),
        RouteId::Contract => get(contract::<B>),
        RouteId::Contracts => get(contracts::<B>),
        RouteId::Call => get(call::<B>),
        RouteId::Config => post(config::<B>),
        RouteId::Rebalance => post(rebalance::<B>),
        RouteId::SubmitTx => post(submit_tx::<B>),
        RouteId::SubmitBatch => post(submit_batch::<B>),
        RouteId::TxStatus => get(tx_status::<B>),
        RouteId::Account => get(account::<B>),
        RouteId::Events => get(events::<B>),
    }
}

/// Builds the router (see [`crate::router`]).
pub(crate) fn build<B: NodeBackend>(state: AppState<B>) -> Router {
    let mut router = Router::new();
    for r in ROUTES {
        router = router.route(r.path, handler::<B>(r.id));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

// ---- response helpers ----

#[derive(Serialize)]
struct Success<T> {
    success: bool,
    #[serde(flatten)]
    body: T,
}

/// `{"success": true, ...body}` with status 200.
fn ok<T: Serialize>(body: T) -> ApiResult {
    let bytes = serde_json::to_vec(&Success {
        success: true,
        body,
    })
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let mut res = (StatusCode::OK, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "not_found",
        "no such route; GET /openapi.json lists every route",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route; GET /openapi.json lists every route",
    )
}

/// Waits for `fut` at most `finality_timeout_ms`.
async fn bounded<T>(
    cfg: &ApiConfig,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, ApiError> {
    tokio::time::timeout(Duration::from_millis(cfg.finality_timeout_ms), fut)
        .await
        .map_err(|_| {
            ApiError::timeout(format!(
                "{what} was not finalized within {} ms; it may still complete",
                cfg.finality_timeout_ms
            ))
        })
}

fn check_admin(cfg: &ApiConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = cfg.admin_token.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this admin endpoint needs the header Authorization: Bearer <admin token>",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// At most 80 characters of client input, for echoing it in an error message.
fn clip(s: &str) -> String {
    const MAX_ECHO_CHARS: usize = 80;
    if s.chars().count() <= MAX_ECHO_CHARS {
        s.to_string()
    } else {
        s.chars().take(MAX_ECHO_CHARS).chain("…".chars()).collect()
    }
}

/// The 400 for a malformed id path segment: `invalid {what} "{raw}": expected {expected}`.
fn invalid_id(code: &'static str, what: &str, raw: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        code,
        format!("invalid {what} {:?}: expected {expected}", clip(raw)),
    )
}

fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
}

/// Parses a shard id path segment and checks it against the current configuration.
async fn shard_param<B: NodeBackend>(
    backend: &B,
    p: Result<Path<String>, PathRejection>,
) -> Result<ShardId, ApiError> {
    let raw = path_param(p)?;
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|c| c.is_ascii_digit()) {
        return Err(invalid_id(
            "invalid_shard_id",
            "shard id",
            &raw,
            "a non-negative integer",
        ));
    }
    let num_shards = backend.shard_config().await?.num_shards;
    match raw.parse::<u64>() {
        Ok(n) if n < num_shards => u32::try_from(n)
            .map(ShardId)
            .map_err(|_| unknown_shard(&raw)),
        _ => Err(unknown_shard(&raw)),
    }
}

/// Checks what the node would check first, so obviously bad transactions never reach it.
fn check_signed(tx: SignedTransaction) -> Result<Verified, ApiError> {
    tx.tx.action.check_limits().map_err(ApiError::invalid_tx)?;
    tx.into_verified().map_err(|e| bad_signature(&e))
}

fn bad_signature(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_signature",
        format!("signature does not verify: {e}"),
    )
}

fn is_signed_form(v: &serde_json::Value) -> bool {
    v.get("tx").is_some()
}

/// The body as a signed transaction whose action `is_kind` accepts (else 422 "expected a
/// {kind} transaction"), checked like every signed transaction ([`check_signed`]).
fn signed_of(
    body: serde_json::Value,
    kind: &str,
    is_kind: fn(&Action) -> bool,
) -> Result<Verified, ApiError> {
    let tx: SignedTransaction = from_value(body)?;
    if !is_kind(&tx.tx.action) {
        return Err(ApiError::invalid_tx(format!(
            "expected a {kind} transaction"
        )));
    }
    check_signed(tx)
}

/// The signed transaction for an unsigned seed-style request, if this node signs for `signer`.
async fn dev_signed<B: NodeBackend>(
    backend: &B,
    signer: AccountId,
    action: Action,
) -> Result<Verified, ApiError> {
    action.check_limits().map_err(ApiError::invalid_tx)?;
    let name = signer.to_string();
    backend
        .dev_sign(signer, action)
        .await?
        .ok_or_else(|| dev_signing_unavailable(&name))?
        .into_verified()
        .map_err(|e| bad_signature(&e))
}

// ---- handlers ----

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
}

async fn health() -> ApiResult {
    ok(HealthBody { status: "ok" })
}

async fn status<B: NodeBackend>(State(st): St<B>) -> ApiResult {
    ok(st.backend.status().await?)
}

async fn supply<B: NodeBackend>(State(st): St<B>) -> ApiResult {
    ok(st.backend.supply().await?)
}

async fn consensus_metrics<B: NodeBackend>(State(st): St<B>) -> ApiResult {
    ok(st.backend.consensus_metrics().await?)
}

async fn metrics<B: NodeBackend>(State(st): St<B>) -> ApiResult {
    let body = st.backend.metrics().await?;
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(res)
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

async fn root() -> Redirect {
    Redirect::temporary("/shard-dashboard.html")
}

async fn dashboard_page() -> Response {
    let mut res = crate::dashboard::HTML.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page loads nothing and talks only to this node.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::dashboard::CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The seed's dashboard `config` object.
#[derive(Serialize)]
struct DashboardConfig {
    enabled: bool,
    num_shards: u64,
    async_crosslinks: bool,
    batch_size: u64,
    batch_timeout_ms: u64,
    smart_contracts: bool,
}

impl From<&ShardConfig> for DashboardConfig {
    fn from(c: &ShardConfig) -> Self {
        DashboardConfig {
            enabled: c.enabled,
            num_shards: c.num_shards,
            async_crosslinks: c.async_crosslinks_enabled,
            batch_size: c.batch_size,
            batch_timeout_ms: c.batch_timeout_ms,
            smart_contracts: c.smart_contracts_enabled,
        }
    }
}

#[derive(Serialize)]
struct DashboardBody {
    timestamp: u64,
    config: DashboardConfig,
    shards: Vec<ShardSummary>,
    network: NetworkStats,
    contracts: crate::backend::ContractStats,
    performance: Performance,
}

async fn dashboard<B: NodeBackend>(State(st): St<B>) -> ApiResult {
    let b = &st.backend;
    let config = b.shard_config().await?;
    let body = DashboardBody {
        timestamp: unix_seconds(),
        config: DashboardConfig::from(&config),
        shards: b.shards().await?,
        network: b.network_stats().await?,
        contracts: b.contract_stats().await?,
        performance: b.performance().await?,
    };
    ok(body)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn batch_flush<B: NodeBackend>(
    State(st): St<B>,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    check_admin(&st.cfg, &headers)?;
    let shard = shard_param(&*st.backend, p).await?;
    let outcome: FlushOutcome = bounded(
        &st.cfg,
        &format!("flush of shard {shard}"),
        st.backend.flush(shard),
    )
    .await??;
    ok(outcome)
}

#[derive(Serialize)]
struct BatchStatusBody {
    shard_id: ShardId,
    #[serde(flatten)]
    status: BatchStatus,
}

async fn batch_status<B: NodeBackend>(
    State(st): St<B>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let shard = shard_param(&*st.backend, p).await?;
    let status = st
        .backend
        .batch_status(shard)
        .await?
        .ok_or_else(|| unknown_shard(&shard.to_string()))?;
    ok(BatchStatusBody {
        shard_id: shard,
        status,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    offset: Option<usize>,
    limit: Option<usize>,
}

fn list_params(
    cfg: &ApiConfig,
    q: Result<Query<ListParams>, QueryRejection>,
    default_limit: usize,
) -> Result<(usize, usize), ApiError> {
    let Query(p) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = p.limit.unwrap_or(default_limit);
    if limit > cfg.max_list_items {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be at most {}", cfg.max_list_items),
        ));
    }
    Ok((p.offset.unwrap_or(0), limit))
}

#[derive(Serialize)]
struct CrosslinksBody {
    count: usize,
    crosslinks: Vec<CrosslinkSummary>,
}

async fn crosslinks<B: NodeBackend>(
    State(st): St<B>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult {
    let (offset, limit) = list_params(&st.cfg, q, 20)?;
    if offset != 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "offset is not supported here; crosslinks are newest first",
        ));
    }
    let mut crosslinks = st.backend.recent_crosslinks(limit).await?;
    crosslinks.truncate(limit);
    ok(CrosslinksBody {
        count: crosslinks.len(),
        crosslinks,
    })
}

/// The seed's deploy body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployRequest {
    name: String,
    owner: AccountId,
    code_hash: String,
    #[serde(default)]
    initial_state: BTreeMap<String, String>,
    #[serde(default)]
    gas_budget: Option<u64>,
}

#[derive(Serialize)]
struct DeployBody {
    contract_id: ContractId,
    primary_shard: ShardId,
}

async fn contract_deploy<B: NodeBackend>(
    State(st): St<B>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult {
    let tx = if is_signed_form(&body) {
        signed_of(body, "deploy_contract", |a| {
            matches!(a, Action::DeployContract { .. })
        })?
    } else {
        let req: DeployRequest = from_value(body)?;
        let action = Action::DeployContract {
            name: req.name,
            code_hash: req.code_hash,
            initial_state: req.initial_state,
            gas_budget: req
                .gas_budget
                .unwrap_or(vision_types::tx::DEFAULT_GAS_BUDGET),
        };
        dev_signed(&*st.backend, req.owner, action).await?
    };
    let d = bounded(&st.cfg, "the deployment", st.backend.deploy_contract(tx)).await??;
    ok(DeployBody {
        contract_id: d.contract_id,
        primary_shard: d.primary_shard,
    })
}

/// The seed's execute body (plus optional attached `amount` and `gas_limit`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteRequest {
    contract_id: ContractId,
    caller: AccountId,
    method: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    amount: Amount,
    #[serde(default)]
    gas_limit: Option<u64>,
}

#[derive(Serialize)]
struct ExecuteBody {
    result: serde_json::Value,
}

async fn contract_execute<B: NodeBackend>(
    State(st): St<B>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult {
    let tx = if is_signed_form(&body) {
        signed_of(body, "call_contract", |a| {
            matches!(a, Action::CallContract { .. })
        })?
    } else {
        let req: ExecuteRequest = from_value(body)?;
        let action = Action::CallContract {
            contract: req.contract_id,
            method: req.method,
            args: req.args,
            gas_limit: req.gas_limit.unwrap_or(vision_types::tx::DEFAULT_GAS_LIMIT),
            amount: req.amount,
        };
        dev_signed(&*st.backend, req.caller, action).await?
    };
    let executed = bounded(
        &st.cfg,
        "the contract call",
        st.backend.execute_contract(tx),
    )
    .await??;
    let result = match executed {
        Executed::Completed { result } => {
            let mut out = serde_json::Map::new();
            out.insert("status".into(), "success".into());
            match result {
                serde_json::Value::Object(fields) => {
                    for (k, v) in fields {
                        if k != "status" {
                            out.insert(k, v);
                        }
                    }
                }
                other => {
                    out.insert("value".into(), other);
                }
            }
            serde_json::Value::Object(out)
        }
        Executed::Pending { call_id } => serde_json::json!({
            "status": "pending",
            "call_id": call_id,
            "message": "Cross-shard call queued",
        }),
        Executed::Failed { reason } => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "contract_call_failed",
                format!("contract call failed (fee burned, state unchanged): {reason}"),
            ));
        }
    };
    ok(ExecuteBody { result })
}

#[derive(Serialize)]
struct ContractBody {
    contract: ContractView,
}

async fn contract<B: NodeBackend>(
    State(st): St<B>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let raw = path_param(p)?;
    let id = ContractId::new(raw.as_str()).map_err(|_| {
        invalid_id(
            "invalid_contract_id",
            "contract id",
            &raw,
            "contract_ followed by 32 hex characters",
        )
    })?;
    let contract =
        st.backend.contract(id.clone()).await?.ok_or_else(|| {
            ApiError::not_found("unknown_contract", format!("unknown contract {id}"))
        })?;
    ok(ContractBody { contract })
}

#[derive(Serialize)]
struct ContractsBody {
    count: u64,
    contracts: Vec<ContractSummary>,
}

async fn contracts<B: NodeBackend>(
    State(st): St<B>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult {
    let (offset, limit) = list_params(&st.cfg, q, st.cfg.max_list_items)?;
    let mut page = st.backend.contracts(offset, limit).await?;
    page.contracts.truncate(limit);
    ok(ContractsBody {
        count: page.total,
        contracts: page.contracts,
    })
}

#[derive(Serialize)]
struct CallBody {
    call: CallView,
}

async fn call<B: NodeBackend>(
    State(st): St<B>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let raw = path_param(p)?;
    let id: CallId = raw
        .parse()
        .map_err(|e: vision_types::receipt::ParseCallIdError| {
            ApiError::bad_request("invalid_call_id", e.to_string())
        })?;
    let call = st
        .backend
        .call_status(id)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_call", format!("unknown call {id}")))?;
    ok(CallBody { call })
}

/// The seed's proposal dict; `proposer` (a dev account, devnet only) defaults to alice.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalRequest {
    action: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    affects_multiple_shards: bool,
    #[serde(default)]
    coordination_required: bool,
    #[serde(default = "default_proposer")]
    proposer: AccountId,
}

fn default_proposer() -> AccountId {
    AccountId::new("alice").expect("a valid account id")
}

#[derive(Serialize)]
struct ProposalBody {
    #[serde(flatten)]
    proposal: ProposalView,
}

async fn proposal_submit<B: NodeBackend>(
    State(st): St<B>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult {
    let tx = if is_signed_form(&body) {
        signed_of(body, "proposal", |a| matches!(a, Action::Proposal { .. }))?
    } else {
        let req: ProposalRequest = from_value(body)?;
        let action = Action::Proposal {
            action: req.action,
            data: req.data,
            affects_multiple_shards: req.affects_multiple_shards,
            coordination_required: req.coordination_required,
        };
        dev_signed(&*st.backend, req.proposer, action).await?
    };
    // A proposal may wait for its whole coordination window before it fails.
    let window = Duration::from_millis(
        vision_types::prsm::GLOBAL_COORDINATION_TIMEOUT_MS + st.cfg.finality_timeout_ms,
    );
    let proposal = tokio::time::timeout(window, st.backend.submit_proposal(tx))
        .await
        .map_err(|_| {
            ApiError::timeout(format!(
                "the proposal was not decided within {} ms; GET /consensus/proposal/{{id}} \
                 shows where it stands",
                window.as_millis()
            ))
        })??;
    ok(ProposalBody { proposal })
}

async fn proposal_status<B: NodeBackend>(
    State(st): St<B>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let raw = path_param(p)?;
    let id: Hash = raw.parse().map_err(|_| {
        invalid_id(
            "invalid_proposal_id",
            "proposal id",
            &raw,
            "64 hex characters (the proposal's transaction id)",
        )
    })?;
    let proposal = st.backend.proposal(id).await?.ok_or_else(|| {
        ApiError::not_found(
            "unknown_proposal",
            format!("no shard coordinates proposal {id}"),
        )
    })?;
    ok(ProposalBody { proposal })
}

async fn config<B: NodeBackend>(
    State(st): St<B>,
    headers: HeaderMap,
    ApiJson(update): ApiJson<ConfigUpdate>,
) -> ApiResult {
    check_admin(&st.cfg, &headers)?;
    if update.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_config",
            "the update sets no field",
        ));
    }
    let current = st.backend.shard_config().await?;
    current
        .updated(&update)
        .map_err(|e| ApiError::bad_request("invalid_config", e.to_string()))?;
    let applied: ConfigApplied = bounded(
        &st.cfg,
        "the configuration change",
        st.backend.update_config(update),
    )
    .await??;
    ok(applied)
}

/// Most moves one `POST /shard/rebalance` may ask for (the beacon's per-change bound).
pub const MAX_REBALANCE_MOVES: usize = 16;

/// The body of `POST /shard/rebalance`: explicit moves, or none to plan from load.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RebalanceRequest {
    #[serde(default)]
    moves: Option<Vec<MoveRequest>>,
}

async fn rebalance<B: NodeBackend>(
    State(st): St<B>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RebalanceRequest>,
) -> ApiResult {
    check_admin(&st.cfg, &headers)?;
    if let Some(moves) = &req.moves {
        if moves.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_rebalance",
                "moves is empty (leave it out to plan the moves from recent load)",
            ));
        }
        if moves.len() > MAX_REBALANCE_MOVES {
            return Err(ApiError::bad_request(
                "invalid_rebalance",
                format!("{} moves, at most {MAX_REBALANCE_MOVES}", moves.len()),
            ));
        }
    }
    let done: Rebalanced =
        bounded(&st.cfg, "the rebalance", st.backend.rebalance(req.moves)).await??;
    ok(done)
}

/// `POST /tx` unsigned (devnet) form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTxRequest {
    signer: AccountId,
    action: Action,
}

async fn submit_tx<B: NodeBackend>(
    State(st): St<B>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult {
    let tx = if is_signed_form(&body) {
        check_signed(from_value(body)?)?
    } else {
        let req: DevTxRequest = from_value(body)?;
        dev_signed(&*st.backend, req.signer, req.action).await?
    };
    let submitted: Submitted = st.backend.submit_tx(tx).await?;
    ok(submitted)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    txs: Vec<SignedTransaction>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum BatchItem {
    Accepted(Submitted),
    Rejected { tx_id: Hash, error: ItemError },
}

#[derive(Serialize)]
struct ItemError {
    code: &'static str,
    message: String,
}

impl From<ApiError> for ItemError {
    fn from(e: ApiError) -> Self {
        ItemError {
            code: e.code,
            message: e.message,
        }
    }
}

#[derive(Serialize)]
struct BatchBody {
    accepted: usize,
    rejected: usize,
    results: Vec<BatchItem>,
}

async fn submit_batch<B: NodeBackend>(
    State(st): St<B>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult {
    let n = req.txs.len();
    if n == 0 {
        return Err(ApiError::invalid_request("txs is empty"));
    }
    if n > st.cfg.max_batch_txs {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_txs",
            format!(
                "a batch holds at most {} transactions, got {n}",
                st.cfg.max_batch_txs
            ),
        ));
    }
    // Field limits first, then one batch signature verification for all that pass.
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(n);
    let mut within = Vec::with_capacity(n);
    for tx in req.txs {
        match tx.tx.action.check_limits() {
            Ok(()) => {
                results.push(None);
                within.push(tx);
            }
            Err(e) => results.push(Some(BatchItem::Rejected {
                tx_id: tx.id(),
                error: ApiError::invalid_tx(e).into(),
            })),
        }
    }
    let mut good = Vec::with_capacity(within.len());
    let mut slots = results.iter_mut().filter(|s| s.is_none());
    for r in verify_all(within) {
        let slot = slots.next().expect("one open slot per checked transaction");
        match r {
            Ok(tx) => good.push(tx),
            Err((tx, e)) => {
                *slot = Some(BatchItem::Rejected {
                    tx_id: tx.id(),
                    error: bad_signature(&e).into(),
                })
            }
        }
    }
    if !good.is_empty() {
        let ids: Vec<Hash> = good.iter().map(|t| t.id()).collect();
        let outcomes = st.backend.submit_batch(good).await?;
        if outcomes.len() != ids.len() {
            return Err(ApiError::unavailable(format!(
                "backend returned {} results for {} transactions",
                outcomes.len(),
                ids.len()
            )));
        }
        let mut outcomes = ids.into_iter().zip(outcomes);
        for slot in results.iter_mut().filter(|s| s.is_none()) {
            if let Some((tx_id, outcome)) = outcomes.next() {
                *slot = Some(match outcome {
                    Ok(s) => BatchItem::Accepted(s),
                    Err(e) => BatchItem::Rejected {
                        tx_id,
                        error: ApiError::from(e).into(),
                    },
                });
            }
        }
    }
    let results: Vec<BatchItem> = results.into_iter().flatten().collect();
    let accepted = results
        .iter()
        .filter(|r| matches!(r, BatchItem::Accepted(_)))
        .count();
    ok(BatchBody {
        accepted,
        rejected: results.len() - accepted,
        results,
    })
}

#[derive(Serialize)]
struct TxStatusBody {
    tx_id: Hash,
    #[serde(flatten)]
    status: TxStatus,
}

async fn tx_status<B: NodeBackend>(
    State(st): St<B>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let raw = path_param(p)?;
    let id: Hash = raw
        .parse()
        .map_err(|_| invalid_id("invalid_tx_id", "transaction id", &raw, "64 hex characters"))?;
    let status =
        st.backend.tx_status(id).await?.ok_or_else(|| {
            ApiError::not_found("unknown_tx", format!("unknown transaction {id}"))
        })?;
    ok(TxStatusBody { tx_id: id, status })
}

#[derive(Serialize)]
struct AccountBody {
    account: AccountView,
}

async fn account<B: NodeBackend>(
    State(st): St<B>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let raw = path_param(p)?;
    let id = AccountId::new(raw.as_str()).map_err(|_| {
        invalid_id(
            "invalid_account_id",
            "account id",
            &raw,
            "2-64 characters of [a-z0-9_-] (or a 64-hex public key)",
        )
    })?;
    let account =
        st.backend.account(id.clone()).await?.ok_or_else(|| {
            ApiError::not_found("unknown_account", format!("unknown account {id}"))
        })?;
    ok(AccountBody { account })
}

/// How often an idle event stream sends a keep-alive comment, in milliseconds.
pub const EVENTS_KEEP_ALIVE_MS: u64 = 15_000;

/// Tells open event streams that the server is shutting down, so a graceful shutdown does not
/// wait for clients that never hang up. [`crate::serve`] installs it as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct ShutdownSignal(pub(crate) watch::Receiver<bool>);

/// The next SSE event of a subscription: `block` with the event's JSON, or `lagged` with
/// `{"skipped": n}` when the receiver fell behind; `None` once the node closed the stream.
async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<crate::backend::BlockEvent>,
) -> Option<Event> {
    match rx.recv().await {
        Ok(block) => Some(match Event::default().event("block").json_data(&block) {
            Ok(event) => event,
            // Serializing plain data cannot fail; say so on the stream rather than panic.
            Err(e) => Event::default()
                .event("error")
                .data(serde_json::json!({"message": e.to_string()}).to_string()),
        }),
        Err(RecvError::Lagged(skipped)) => Some(
            Event::default()
                .event("lagged")
                .data(serde_json::json!({ "skipped": skipped }).to_string()),
        ),
        Err(RecvError::Closed) => None,
    }
}

async fn events<B: NodeBackend>(
    State(st): St<B>,
    shutdown: Option<axum::Extension<ShutdownSignal>>,
) -> Response {
    let rx = st.backend.events();
    let shutdown = shutdown.map(|axum::Extension(ShutdownSignal(w))| w);
    let stream =
        futures_util::stream::unfold((rx, shutdown), |(mut rx, mut shutdown)| async move {
            let event = match shutdown.as_mut() {
                None => next_event(&mut rx).await,
                Some(stop) => {
                    if *stop.borrow_and_update() {
                        return None;
                    }
                    tokio::select! {
                        event = next_event(&mut rx) => event,
                        // Shutdown began (or the server is gone): end the stream.
                        _ = stop.changed() => None,
                    }
                }
            }?;
            Some((Ok::<Event, Infallible>(event), (rx, shutdown)))
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_millis(EVENTS_KEEP_ALIVE_MS)))
        .into_response()
}
