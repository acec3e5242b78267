//! The Vision Node HTTP API (port 3030) and the shard dashboard, independent of how the node
//! is built: the node implements [`NodeBackend`] and serves [`router`].
//!
//! # Routes
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/shard/batch/flush/{shard_id}` | close the pending batch; `{crosslink_id, batched_txs, state_root}` once final (admin) |
//! | GET | `/shard/batch/status/{shard_id}` | `{shard_id, pending_txs, batch_age_ms, is_ready}` |
//! | POST | `/shard/contract/deploy` | seed body `{name, owner, code_hash, initial_state}` → `{contract_id, primary_shard}` |
//! | POST | `/shard/contract/execute` | seed body `{contract_id, caller, method, args}` → `{result: {status, ...}}` |
//! | GET | `/shard/contract/{contract_id}` | `{contract: {id, name, owner, primary_shard, code_hash, state, cross_shard_calls, gas_budget, created_height}}` |
//! | GET | `/shard/contracts` | `{count, contracts: [{id, name, owner, primary_shard, created_height}]}` |
//! | GET | `/shard/dashboard` | the seed's complete dashboard object |
//! | POST | `/shard/config` | a `ConfigUpdate` → `{effective_height, config}` (admin) |
//! | POST | `/shard/rebalance` | `{}` or `{moves: [{account, to}]}` → `{effective_height, moves, shard_loads, message}` (admin) |
//! | GET | `/shard/crosslinks` | recent beacon-finalized crosslinks (dashboard table) |
//! | GET | `/shard/call/{call_id}` | a cross-shard call and its result |
//! | POST | `/tx` | a `SignedTransaction`, or on a devnet `{signer, action}` → `{tx_id, shard_id}` |
//! | POST | `/tx/batch` | `{txs: [SignedTransaction]}` (at most `max_batch_txs`) → per-tx results |
//! | GET | `/tx/{id}` | `{tx_id, status: pending\|included\|batched\|crosslinked\|completed\|failed, ...}` |
//! | GET | `/account/{id}` | `{account: {id, shard_id, balance, nonce, public_key}}` |
//! | GET | `/events` | server-sent events: `event: block` with a [`backend::BlockEvent`] as JSON per finalized shard block; `event: lagged` with `{"skipped": n}` when this client fell behind; keep-alive comments |
//! | GET | `/consensus/metrics` | PRSM metrics: `{active_shards, strategy, total_throughput, cross_shard_operations, total_nodes, average_reputation, beacon_committee, beacon_height, shards: [{shard_id, members, nodes, coordinator, avg_reputation, height, observed_reputation}], validators: [{name, consensus_key, shard_id, reputation, genesis_reputation, finalize_votes, missed, blocks_finalized, beacon_blocks_finalized, equivocations}]}` |
//! | GET | `/supply` | supply audit from finalized state: `{genesis, balances, in_flight, burned, unclaimed, balanced, shards}` |
//! | GET | `/health`, `/status`, `/metrics`, `/openapi.json` | liveness, node status, Prometheus text, OpenAPI 3.1 |
//! | GET | `/shard-dashboard.html`, `/` | the dashboard page (`/` redirects to it) |
//!
//! Every success is `{"success": true, ...}`; every error is
//! `{"success": false, "error": {"code": "...", "message": "..."}}` with its HTTP status (see
//! [`error`]), including axum's own rejections (malformed JSON, wrong content type, body over
//! `max_body_bytes`, unknown route, wrong method). The seed-style unsigned bodies (`owner`,
//! `caller`, `{signer, action}`) are signed by the node only on a devnet
//! ([`NodeBackend::dev_sign`]); elsewhere they get 401 `dev_signing_unavailable`, and the same
//! endpoints accept a signed transaction (`{"tx": ..., "public_key": ..., "signature": ...}`).
//!
//! # Backend contract
//!
//! The API validates before it calls the backend: ids are parsed, shard ids are checked
//! against the configured `num_shards` (404 `unknown_shard`), amounts are decimal strings
//! below 2^128 (400 otherwise), transactions are within [`vision_types::limits`] and their
//! signature verifies (422 otherwise), and configuration updates are validated against the
//! current configuration (400 `invalid_config`). A rejected request never reaches the
//! backend. Waits for finality (flush, same-shard contract calls, configuration changes) are
//! bounded by [`ApiConfig::finality_timeout_ms`] (504 `timeout`).

pub mod backend;
mod dashboard;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod ratelimit;
pub mod routes;

pub use backend::NodeBackend;
pub use error::ApiError;
pub use routes::{ApiRoute, ROUTES, RouteId};

use axum::{Router, extract::DefaultBodyLimit};
use std::{future::Future, sync::Arc};

/// Default of [`ApiConfig::max_requests_per_s`].
pub const DEFAULT_MAX_REQUESTS_PER_S: u32 = 500;

/// Limits and options of the HTTP API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Largest request body, in bytes (413 beyond). Default 1 MiB.
    pub max_body_bytes: usize,
    /// Most transactions in one `POST /tx/batch` (413 beyond). Default 1000.
    pub max_batch_txs: usize,
    /// Most items one list request returns (`?limit=`). Default 1000.
    pub max_list_items: usize,
    /// How long a request waits for finality (flush, contract call, config change), in
    /// milliseconds (504 beyond). Default 10 000.
    pub finality_timeout_ms: u64,
    /// Bearer token required by admin routes (flush, config). `None` leaves them open, which
    /// a node must only do on a devnet bound to loopback.
    pub admin_token: Option<String>,
    /// Requests per second one client (IP address) may make on average, with bursts of as
    /// many (429 `rate_limited` beyond; see [`ratelimit`]). `0`: unlimited. Default 500.
    pub max_requests_per_s: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            max_batch_txs: 1000,
            max_list_items: 1000,
            finality_timeout_ms: 10_000,
            admin_token: None,
            max_requests_per_s: DEFAULT_MAX_REQUESTS_PER_S,
        }
    }
}

/// The API router over `backend`: every route of [`ROUTES`], JSON errors, body limit,
/// per-client rate limit.
pub fn router<B: NodeBackend>(backend: Arc<B>, cfg: ApiConfig) -> Router {
    let max_body_bytes = cfg.max_body_bytes;
    let limiter = ratelimit::RateLimiter::new(cfg.max_requests_per_s);
    let state = routes::AppState {
        backend,
        cfg: Arc::new(cfg),
    };
    routes::build(state)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            ratelimit::limit,
        ))
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes in-flight requests.
/// Open `GET /events` streams end when `shutdown` resolves, so they do not hold it up.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let router = router.layer(axum::Extension(routes::ShutdownSignal(stopping)));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await
}
