//! JSON errors: `{"success": false, "error": {"code": "...", "message": "..."}}` with the
//! HTTP status that fits, and the mapping from backend errors to them.

use crate::backend::{BackendError, ConfigChangeError, SubmitError};
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An API error: HTTP status, a stable machine-readable `code` and a human message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code (e.g. `unknown_shard`).
    pub code: &'static str,
    /// What went wrong and, where possible, what to do.
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    success: bool,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `malformed_json`: the body is not JSON.
    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 400 `invalid_request`: JSON, but a field is missing, unknown or out of range.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 400 with a specific code (a bad path or query parameter).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with a specific code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 422 `invalid_tx`.
    pub fn invalid_tx(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_tx", message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 504 `timeout`.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Vec<u8> {
        let body = ErrorBody {
            success: false,
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        // Serializing two strings and a bool cannot fail; fall back to a fixed body anyway.
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"success":false,"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Unavailable(m) => ApiError::unavailable(m),
            BackendError::UnknownShard(s) => unknown_shard(&s.to_string()),
            BackendError::ShardNotServed(m) => ApiError::not_found("shard_not_served", m),
            BackendError::Timeout(m) => ApiError::timeout(m),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let message = e.to_string();
        match e {
            SubmitError::Invalid(_) => ApiError::invalid_tx(message),
            SubmitError::NonceConflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "nonce_conflict", message)
            }
            SubmitError::Duplicate(_) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_tx", message)
            }
            SubmitError::UnknownContract(_) => ApiError::not_found("unknown_contract", message),
            SubmitError::MempoolFull => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mempool_full",
                "the mempool is full; retry later",
            ),
            SubmitError::Backend(b) => b.into(),
        }
    }
}

impl From<ConfigChangeError> for ApiError {
    fn from(e: ConfigChangeError) -> Self {
        match e {
            ConfigChangeError::Invalid(c) => ApiError::bad_request("invalid_config", c.to_string()),
            ConfigChangeError::Conflict(m) => ApiError::new(
                StatusCode::CONFLICT,
                "config_conflict",
                format!("configuration change refused: {m}"),
            ),
            ConfigChangeError::Backend(b) => b.into(),
        }
    }
}

/// 404 `unknown_shard`.
pub fn unknown_shard(shard: &str) -> ApiError {
    ApiError::not_found("unknown_shard", format!("unknown shard {shard}"))
}

/// 401 `dev_signing_unavailable`: the node holds no key for an unsigned request's signer.
pub fn dev_signing_unavailable(signer: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "dev_signing_unavailable",
        format!(
            "this node does not sign for {signer:?} (dev signing exists only on a devnet API \
             node, for its dev accounts). Sign the transaction yourself: ed25519 over \
             \"vision-node/tx/v1\\0\" followed by the canonical encoding of \
             {{chain_id, signer, nonce, fee, action}}, then POST \
             {{\"tx\": {{...}}, \"public_key\": \"<64 hex>\", \"signature\": \"<128 hex>\"}} \
             to /tx (or to this endpoint)"
        ),
    )
}
