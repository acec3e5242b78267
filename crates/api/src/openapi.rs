//! The OpenAPI 3.1 document served at `GET /openapi.json`, generated from [`ROUTES`] so it
//! lists exactly the routes the router serves.

use crate::routes::{ROUTES, RouteId};
use serde_json::{Map, Value, json};

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("operationId".into(), json!(format!("{:?}", r.id)));
        op.insert("summary".into(), json!(r.summary));
        let mut params: Vec<Value> = path_params(r.path)
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        params.extend(query_params(r.id));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(schema) = request_schema(r.id) {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": schema}}}),
            );
        }
        if r.admin {
            op.insert("security".into(), json!([{"adminToken": []}]));
        }
        op.insert("responses".into(), responses(r.id));
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(r.method.to_ascii_lowercase(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vision Node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sharded PoS node: seed endpoints (batched crosslinks, shard-aware \
                contracts, dashboard, config) plus transactions, accounts and status. Errors are \
                {\"success\": false, \"error\": {\"code\", \"message\"}}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn query_params(id: RouteId) -> Vec<Value> {
    let int = |name: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}});
    match id {
        RouteId::Contracts => vec![int("offset"), int("limit")],
        RouteId::Crosslinks => vec![int("limit")],
        _ => vec![],
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn request_schema(id: RouteId) -> Option<Value> {
    Some(match id {
        RouteId::ContractDeploy => {
            json!({"oneOf": [schema_ref("DeployRequest"), schema_ref("SignedTransaction")]})
        }
        RouteId::ContractExecute => {
            json!({"oneOf": [schema_ref("ExecuteRequest"), schema_ref("SignedTransaction")]})
        }
        RouteId::Config => schema_ref("ConfigUpdate"),
        RouteId::Rebalance => json!({
            "type": "object", "additionalProperties": false,
            "properties": {"moves": {"type": "array", "minItems": 1, "maxItems": 16, "items": {
                "type": "object", "additionalProperties": false, "required": ["account", "to"],
                "properties": {"account": str_t(), "to": int_t()}}}}
        }),
        RouteId::Proposal => {
            json!({"oneOf": [schema_ref("ProposalRequest"), schema_ref("SignedTransaction")]})
        }
        RouteId::SubmitTx => {
            json!({"oneOf": [schema_ref("SignedTransaction"), schema_ref("DevTxRequest")]})
        }
        RouteId::SubmitBatch => json!({
            "type": "object", "required": ["txs"], "additionalProperties": false,
            "properties": {"txs": {"type": "array", "items": schema_ref("SignedTransaction")}}
        }),
        _ => return None,
    })
}

fn responses(id: RouteId) -> Value {
    let ok = match id {
        RouteId::Root => {
            return json!({"307": {"description": "Redirect to /shard-dashboard.html"}});
        }
        RouteId::DashboardPage => {
            return json!({"200": {"description": "The dashboard page",
                "content": {"text/html": {"schema": {"type": "string"}}}}});
        }
        RouteId::Metrics => {
            return json!({"200": {"description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": schema_ref("Error")}}}});
        }
        RouteId::Events => {
            return json!({"200": {"description": "Server-sent events: `event: block` with a \
                BlockEvent as `data`, one per finalized shard block; `event: lagged` with \
                `{\"skipped\": n}` when this client fell behind and lost the n oldest events; \
                comment lines as keep-alives",
                "content": {"text/event-stream": {"schema": {"type": "string"},
                    "x-event-data": {"block": schema_ref("BlockEvent"),
                        "lagged": record(&[("skipped", int_t())])}}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": schema_ref("Error")}}}});
        }
        RouteId::OpenApi => json!({"type": "object"}),
        RouteId::Health => obj(&[("status", json!({"const": "ok"}))]),
        RouteId::Status => schema_ref("NodeStatus"),
        RouteId::Supply => obj(&[
            ("genesis", str_t()),
            ("balances", str_t()),
            ("in_flight", str_t()),
            ("burned", str_t()),
            ("unclaimed", str_t()),
            ("balanced", json!({"type": "boolean"})),
            (
                "shards",
                json!({"type": "array", "items": {"type": "object"}}),
            ),
        ]),
        RouteId::ConsensusMetrics => obj(&[
            ("active_shards", int_t()),
            ("strategy", str_t()),
            ("total_throughput", json!({"type": "number"})),
            ("cross_shard_operations", int_t()),
            ("total_nodes", int_t()),
            ("average_reputation", json!({"type": "number"})),
            (
                "beacon_committee",
                json!({"type": "array", "items": str_t()}),
            ),
            ("beacon_height", int_t()),
            (
                "shards",
                json!({"type": "array", "items": record(&[
                    ("shard_id", int_t()),
                    ("members", json!({"type": "array", "items": str_t()})),
                    ("nodes", int_t()),
                    ("coordinator", str_t()),
                    ("avg_reputation", json!({"type": "number"})),
                    ("height", int_t()),
                    ("observed_reputation", json!({"type": "number"})),
                ])}),
            ),
            (
                "validators",
                json!({"type": "array", "items": record(&[
                    ("name", str_t()),
                    ("consensus_key", hex_t()),
                    ("shard_id", int_t()),
                    ("reputation", json!({"type": "number"})),
                    ("genesis_reputation", json!({"type": "number"})),
                    ("finalize_votes", int_t()),
                    ("missed", int_t()),
                    ("blocks_finalized", int_t()),
                    ("beacon_blocks_finalized", int_t()),
                    ("equivocations", int_t()),
                ])}),
            ),
        ]),
        RouteId::Proposal | RouteId::ProposalStatus => schema_ref("ConsensusResult"),
        RouteId::Dashboard => schema_ref("Dashboard"),
        RouteId::BatchFlush => obj(&[
            ("crosslink_id", str_t()),
            ("batched_txs", int_t()),
            ("state_root", hex_t()),
        ]),
        RouteId::BatchStatus => obj(&[
            ("shard_id", int_t()),
            ("pending_txs", int_t()),
            ("batch_age_ms", int_t()),
            ("is_ready", json!({"type": "boolean"})),
        ]),
        RouteId::Crosslinks => obj(&[
            ("count", int_t()),
            (
                "crosslinks",
                json!({"type": "array", "items": schema_ref("Crosslink")}),
            ),
        ]),
        RouteId::ContractDeploy => obj(&[("contract_id", str_t()), ("primary_shard", int_t())]),
        RouteId::ContractExecute => obj(&[(
            "result",
            json!({"type": "object", "required": ["status"],
                "properties": {"status": {"enum": ["success", "pending"]},
                    "call_id": str_t(), "message": str_t()}}),
        )]),
        RouteId::Contract => obj(&[("contract", schema_ref("Contract"))]),
        RouteId::Contracts => obj(&[
            ("count", int_t()),
            (
                "contracts",
                json!({"type": "array", "items": schema_ref("ContractSummary")}),
            ),
        ]),
        RouteId::Call => obj(&[("call", schema_ref("CrossShardCall"))]),
        RouteId::Config => obj(&[
            ("effective_height", int_t()),
            ("config", schema_ref("ShardConfig")),
        ]),
        RouteId::Rebalance => obj(&[
            ("effective_height", json!({"type": ["integer", "null"]})),
            (
                "moves",
                json!({"type": "array", "items": record(&[
                    ("account", str_t()), ("from", int_t()), ("to", int_t()), ("load", int_t())])}),
            ),
            (
                "shard_loads",
                json!({"type": "object", "additionalProperties": int_t()}),
            ),
            ("message", str_t()),
        ]),
        RouteId::SubmitTx => obj(&[("tx_id", hex_t()), ("shard_id", int_t())]),
        RouteId::SubmitBatch => obj(&[
            ("accepted", int_t()),
            ("rejected", int_t()),
            (
                "results",
                json!({"type": "array", "items": {"type": "object"}}),
            ),
        ]),
        RouteId::TxStatus => json!({"type": "object", "required": ["success", "tx_id", "status"],
            "properties": {"success": {"const": true}, "tx_id": hex_t(),
                "status": {"enum": ["pending", "included", "batched", "crosslinked", "completed", "failed"]},
                "shard_id": int_t(), "height": int_t(), "crosslink_id": str_t(),
                "beacon_height": int_t(), "reason": str_t()}}),
        RouteId::Account => obj(&[("account", schema_ref("Account"))]),
    };
    json!({
        "200": {"description": "Success", "content": {"application/json": {"schema": ok}}},
        "default": {"description": "Error", "content": {"application/json": {"schema": schema_ref("Error")}}}
    })
}

fn str_t() -> Value {
    json!({"type": "string"})
}

fn int_t() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn hex_t() -> Value {
    json!({"type": "string", "pattern": "^[0-9a-f]{64}$"})
}

fn amount_t() -> Value {
    json!({"type": "string", "pattern": "^[0-9]+$", "description": "u128 as a decimal string"})
}

/// `{"success": true, fields...}` with every field required.
fn obj(fields: &[(&str, Value)]) -> Value {
    let mut props = Map::new();
    props.insert("success".into(), json!({"const": true}));
    let mut required = vec![json!("success")];
    for (k, v) in fields {
        props.insert((*k).into(), v.clone());
        required.push(json!(k));
    }
    json!({"type": "object", "required": required, "properties": props})
}

/// A plain object schema with every field required.
fn record(fields: &[(&str, Value)]) -> Value {
    let mut props = Map::new();
    let mut required = vec![];
    for (k, v) in fields {
        props.insert((*k).into(), v.clone());
        required.push(json!(k));
    }
    json!({"type": "object", "required": required, "properties": props})
}

fn schemas() -> Value {
    let call_status = json!({"enum": ["Pending", "Executing", "Completed", "Failed"]});
    let call_fields = [
        ("id", str_t()),
        ("from_shard", int_t()),
        ("to_shard", int_t()),
        ("contract_id", str_t()),
        ("method", str_t()),
        ("args", json!({"type": "array", "items": str_t()})),
        ("status", call_status),
    ];
    let mut call_with_result = call_fields.to_vec();
    call_with_result.push(("result", json!({"type": ["string", "null"]})));
    json!({
        "Error": {"type": "object", "required": ["success", "error"], "properties": {
            "success": {"const": false},
            "error": record(&[("code", str_t()), ("message", str_t())])}},
        "ShardConfig": record(&[
            ("enabled", json!({"type": "boolean"})), ("num_shards", int_t()),
            ("accounts_per_shard_target", int_t()), ("rebalance_threshold", json!({"type": "number"})),
            ("crosslink_frequency", int_t()), ("async_crosslinks_enabled", json!({"type": "boolean"})),
            ("batch_size", int_t()), ("batch_timeout_ms", int_t()),
            ("smart_contracts_enabled", json!({"type": "boolean"}))]),
        "ConfigUpdate": {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {
            "enabled": {"type": "boolean"}, "num_shards": int_t(),
            "accounts_per_shard_target": int_t(), "rebalance_threshold": {"type": "number"},
            "crosslink_frequency": int_t(), "async_crosslinks_enabled": {"type": "boolean"},
            "batch_size": int_t(), "batch_timeout_ms": int_t(),
            "smart_contracts_enabled": {"type": "boolean"}}},
        "Transaction": {"type": "object", "additionalProperties": false,
            "required": ["chain_id", "signer", "nonce", "fee", "action"], "properties": {
            "chain_id": str_t(), "signer": str_t(), "nonce": int_t(), "fee": amount_t(),
            "action": {"type": "object", "required": ["type"], "properties": {"type": {"enum": [
                "create_account", "transfer", "deploy_contract", "call_contract", "proposal",
                "flush", "config_change"]}}}}},
        "SignedTransaction": {"type": "object", "additionalProperties": false,
            "required": ["tx", "public_key", "signature"], "properties": {
            "tx": schema_ref("Transaction"),
            "public_key": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
        "DevTxRequest": {"type": "object", "additionalProperties": false,
            "required": ["signer", "action"], "properties": {
            "signer": str_t(), "action": {"type": "object"}}},
        "DeployRequest": {"type": "object", "additionalProperties": false,
            "required": ["name", "owner", "code_hash"], "properties": {
            "name": str_t(), "owner": str_t(), "code_hash": str_t(),
            "initial_state": {"type": "object", "additionalProperties": str_t()},
            "gas_budget": int_t()}},
        "ExecuteRequest": {"type": "object", "additionalProperties": false,
            "required": ["contract_id", "caller", "method"], "properties": {
            "contract_id": str_t(), "caller": str_t(), "method": str_t(),
            "args": {"type": "array", "items": str_t()}, "amount": amount_t(),
            "gas_limit": int_t()}},
        "ProposalRequest": {"type": "object", "additionalProperties": false,
            "required": ["action"], "properties": {
            "action": str_t(), "data": str_t(),
            "affects_multiple_shards": {"type": "boolean"},
            "coordination_required": {"type": "boolean"},
            "proposer": str_t()}},
        "ConsensusResult": obj(&[
            ("proposal_id", hex_t()),
            ("status", json!({"enum": ["pending", "achieved", "failed"]})),
            ("consensus_achieved", json!({"type": "boolean"})),
            ("action", str_t()), ("proposer", str_t()), ("coordinating_shard", int_t()),
            ("target_shards", json!({"type": "array", "items": int_t()})),
            ("affects_multiple_shards", json!({"type": "boolean"})),
            ("coordination_required", json!({"type": "boolean"})),
            ("shard_results", json!({"type": "array", "items": record(&[
                ("shard_id", int_t()), ("accepted", json!({"type": "boolean"})),
                ("height", int_t()), ("committee_size", int_t()), ("quorum", int_t())])})),
            ("accepted_shards", int_t()),
            ("cross_shard_approval", json!({"type": "number"})),
            ("threshold", json!({"type": "number"})),
            ("submitted_height", int_t()),
            ("decided_by", json!({"enum": ["shard", "beacon"]}))]),
        "CrossShardCall": record(&call_with_result),
        "Contract": record(&[
            ("id", str_t()), ("name", str_t()), ("owner", str_t()), ("primary_shard", int_t()),
            ("code_hash", str_t()), ("state", json!({"type": "object", "additionalProperties": str_t()})),
            ("cross_shard_calls", json!({"type": "array", "items": record(&call_fields)})),
            ("gas_budget", int_t()), ("created_height", int_t())]),
        "ContractSummary": record(&[
            ("id", str_t()), ("name", str_t()), ("owner", str_t()), ("primary_shard", int_t()),
            ("created_height", int_t())]),
        "Crosslink": record(&[
            ("id", str_t()), ("shard_id", int_t()), ("height", int_t()), ("batched_txs", int_t()),
            ("state_root", hex_t()), ("timestamp_ms", int_t())]),
        "BlockEvent": record(&[
            ("shard_id", int_t()), ("height", int_t()), ("timestamp_ms", int_t()),
            ("finalized_ms", int_t()), ("tx_ids", json!({"type": "array", "items": hex_t()})),
            ("failed_tx_ids", json!({"type": "array", "items": hex_t()})),
            ("completed_origin_tx_ids", json!({"type": "array", "items": hex_t()}))]),
        "Account": record(&[
            ("id", str_t()), ("shard_id", int_t()), ("balance", amount_t()), ("nonce", int_t()),
            ("public_key", hex_t())]),
        "NodeStatus": {"type": "object", "required": ["success", "chain_id", "version", "devnet", "role", "peers", "syncing", "beacon_height", "shards"],
            "properties": {"success": {"const": true}, "chain_id": str_t(), "version": str_t(),
            "devnet": {"type": "boolean"}, "role": str_t(), "peers": int_t(),
            "syncing": {"type": "boolean"}, "beacon_height": int_t(),
            "shards": {"type": "array", "items": record(&[("shard_id", int_t()), ("height", int_t()),
                ("block_hash", hex_t()), ("state_root", hex_t())])},
            "processes": {"type": "array", "items": record(&[("name", str_t()),
                ("role", json!({"enum": ["validator", "api"]})),
                ("shard", json!({"type": ["integer", "null"], "minimum": 0})),
                ("beacon", json!({"type": "boolean"})),
                ("pid", json!({"type": ["integer", "null"], "minimum": 0})),
                ("p2p_port", int_t()),
                ("api_port", json!({"type": ["integer", "null"], "minimum": 0,
                    "description": "port of the process's own HTTP API on 127.0.0.1 (the API node's; a validator's, for its shard), null if it serves none"})),
                ("height", int_t()), ("beacon_height", int_t()), ("restarts", int_t()),
                ("health", json!({"enum": ["ok", "stale", "restarting", "stopped"]}))])}}},
        "Dashboard": obj(&[
            ("timestamp", int_t()),
            ("config", record(&[("enabled", json!({"type": "boolean"})), ("num_shards", int_t()),
                ("async_crosslinks", json!({"type": "boolean"})), ("batch_size", int_t()),
                ("batch_timeout_ms", int_t()), ("smart_contracts", json!({"type": "boolean"}))])),
            ("shards", json!({"type": "array", "items": record(&[
                ("id", int_t()), ("name", str_t()), ("accounts", int_t()), ("validators", int_t()),
                ("tx_count", int_t()), ("crosslinks", int_t()), ("contracts", int_t()),
                ("pending_batch", int_t()), ("last_crosslink_height", int_t()),
                ("balance_total", amount_t())])})),
            ("network", record(&[("total_crosslinks", int_t()), ("batched_crosslinks", int_t()),
                ("avg_batch_size", json!({"type": "number"})), ("total_txs", int_t()),
                ("completed_txs", int_t()), ("pending_txs", int_t()), ("pending_batch", int_t())])),
            ("contracts", record(&[("total", int_t()), ("cross_shard_calls", int_t())])),
            ("performance", record(&[("avg_crosslink_latency_ms", json!({"type": "number"})),
                ("avg_batch_latency_ms", json!({"type": "number"})),
                ("throughput_tps", json!({"type": "number"}))])),
        ]),
    })
}
