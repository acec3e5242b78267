//! The contract engine: shard-aware contracts (the seed's `ShardContract`), the built-in
//! methods every contract has, the token / DEX / NFT-marketplace templates chosen by code
//! hash, and gas metering.
//!
//! Pure and deterministic: no clocks, randomness, floats or I/O; state is a `BTreeMap` and
//! every output is built in a fixed order. The state machine calls:
//!
//! - [`deploy`] to create a contract from a deploy transaction,
//! - [`execute`] to run a call against a contract (it never mutates the contract: on
//!   [`CallOutcome::Success`] apply the returned writes with [`ShardContract::apply_writes`]
//!   and make the returned [`NativePayment`]s; on [`CallOutcome::Failure`] change nothing
//!   and refund any attached coin),
//! - [`ShardContract::record_call`] / [`ShardContract::set_call_status`] for the bounded
//!   cross-shard call history,
//! - the canonical codec (`Encode` / `Decode`) to store a contract under the state root.
//!
//! [`TemplateEngine`] wraps [`deploy`] and [`execute`] as the state machine's
//! [`crate::engine::ContractEngine`] (full new state instead of a diff).
//!
//! Templates (see [`Template`]): [`TOKEN_CODE_HASH`], [`DEX_CODE_HASH`], [`NFT_CODE_HASH`];
//! any other code hash is a plain key-value contract with only the built-ins.

mod adapter;
mod builtins;
mod codec;
mod dex;
mod engine;
pub mod gas;
mod nft;
mod token;

#[cfg(test)]
mod tests;

pub use adapter::TemplateEngine;
pub use engine::{DeployParams, deploy, execute};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vision_types::{AccountId, Amount, CallId, ContractId, ShardId, limits};

/// Code hash of the token template: `0x` + hex(SHA-256(`"vision:template:token:v1"`)).
pub const TOKEN_CODE_HASH: &str =
    "0xacc68cd80a9f280b2d92f79d41c2451cec287ab98e5580d34ff4790d5e73501d";
/// Code hash of the constant-product DEX template: `0x` + hex(SHA-256(`"vision:template:dex:v1"`)).
pub const DEX_CODE_HASH: &str =
    "0x9f869a0ca3327bb380bcefd47ae9eb7558895792c2efbcaf5b3ce78d7e5882bd";
/// Code hash of the NFT-marketplace template: `0x` + hex(SHA-256(`"vision:template:nft:v1"`)).
pub const NFT_CODE_HASH: &str =
    "0x94dc3f36bc1f8b8ee5c47595bc91db1beabb1a221acda140065a9a0849054c17";

/// Most cross-shard calls kept in a contract's history (older ones are dropped first).
pub const MAX_CALL_HISTORY: usize = 256;
/// Longest code hash string, in bytes (same bound as the deploy transaction's).
pub const MAX_CODE_HASH_BYTES: usize = vision_types::tx::MAX_CODE_HASH_BYTES;

/// The behaviour a code hash selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Template {
    /// Any code hash that is not a template's: only the built-ins `get`, `set`, `transfer`.
    Plain,
    /// Fungible token: built-ins plus `mint`, `balance`.
    Token,
    /// Constant-product DEX over one token pair.
    Dex,
    /// NFT marketplace paid in the native coin.
    Nft,
}

impl Template {
    /// The template a code hash selects (exact, case-sensitive match).
    pub fn from_code_hash(code_hash: &str) -> Template {
        match code_hash {
            TOKEN_CODE_HASH => Template::Token,
            DEX_CODE_HASH => Template::Dex,
            NFT_CODE_HASH => Template::Nft,
            _ => Template::Plain,
        }
    }

    /// Every method a contract of this template answers, in a fixed order.
    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Template::Plain => &["get", "set", "transfer"],
            Template::Token => &["get", "set", "transfer", "mint", "balance"],
            Template::Dex => &[
                "get",
                "set",
                "transfer",
                "deposit",
                "balance",
                "add_liquidity",
                "remove_liquidity",
                "swap",
            ],
            Template::Nft => &[
                "get",
                "set",
                "transfer",
                "mint_nft",
                "list_nft",
                "unlist_nft",
                "buy_nft",
                "owner_of",
            ],
        }
    }

    /// A short lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Template::Plain => "key-value",
            Template::Token => "token",
            Template::Dex => "dex",
            Template::Nft => "nft",
        }
    }

    /// Whether `set` may not write `key` because the template manages it (so the template's
    /// invariants, e.g. Σ balances = total supply, cannot be broken by the owner).
    pub fn is_reserved_key(self, key: &str) -> bool {
        match self {
            Template::Plain => false,
            Template::Token => key == token::TOTAL_SUPPLY || key.starts_with("balance_"),
            Template::Dex => {
                key == dex::TOKEN_A
                    || key == dex::TOKEN_B
                    || key == dex::LP_TOTAL
                    || key.starts_with("balance_")
                    || key.starts_with("reserve_")
                    || key.starts_with("lp_")
            }
            Template::Nft => key.starts_with("nft_"),
        }
    }
}

/// Where a cross-shard call is in its life (JSON: `"Pending"`, `"Executing"`, `"Completed"`,
/// `"Failed"`, as in the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CallStatus {
    /// Queued in a receipt, not yet executed on the contract's shard.
    Pending,
    /// Delivered to the contract's shard and being executed.
    Executing,
    /// Executed successfully; the result returns by receipt.
    Completed,
    /// Failed; the reason returns by receipt and attached coin is refunded.
    Failed,
}

/// One entry of a contract's cross-shard call history (the seed's `CrossShardCall`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossShardCall {
    /// `xscall_…`.
    pub id: CallId,
    /// The caller's shard.
    pub from_shard: ShardId,
    /// The contract's shard.
    pub to_shard: ShardId,
    /// The contract called.
    pub contract_id: ContractId,
    /// Method name.
    pub method: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Status.
    pub status: CallStatus,
    /// The call's JSON result or failure reason once known (at most
    /// [`limits::MAX_RESULT_BYTES`]).
    #[serde(default)]
    pub result: Option<String>,
}

/// A contract living on its primary shard (the seed's `ShardContract`).
///
/// JSON: `id, name, owner, primary_shard, code_hash, state, cross_shard_calls, gas_budget,
/// created_height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardContract {
    /// `contract_…`.
    pub id: ContractId,
    /// Human-readable name (1–64 bytes).
    pub name: String,
    /// The deployer; the only account allowed to call owner-only methods.
    pub owner: AccountId,
    /// The shard where the state lives and calls execute.
    pub primary_shard: ShardId,
    /// Selects the template (see [`Template::from_code_hash`]).
    pub code_hash: String,
    /// Key-value state (at most [`limits::MAX_CONTRACT_STATE_ENTRIES`] entries).
    pub state: BTreeMap<String, String>,
    /// The last [`MAX_CALL_HISTORY`] cross-shard calls, oldest first.
    #[serde(default)]
    pub cross_shard_calls: Vec<CrossShardCall>,
    /// The most gas one call may use (each call's `gas_limit` must not exceed it).
    pub gas_budget: u64,
    /// Height of the shard block that deployed the contract.
    #[serde(default)]
    pub created_height: u64,
}

impl ShardContract {
    /// The template the code hash selects.
    pub fn template(&self) -> Template {
        Template::from_code_hash(&self.code_hash)
    }

    /// Applies the writes of a successful call (`None` deletes the key).
    pub fn apply_writes(&mut self, writes: &StateDiff) {
        for (k, v) in writes {
            match v {
                Some(v) => {
                    self.state.insert(k.clone(), v.clone());
                }
                None => {
                    self.state.remove(k);
                }
            }
        }
    }

    /// Appends a call to the history, truncating its result to [`limits::MAX_RESULT_BYTES`]
    /// and dropping the oldest entries beyond [`MAX_CALL_HISTORY`].
    pub fn record_call(&mut self, mut call: CrossShardCall) {
        if let Some(r) = call.result.as_mut() {
            truncate_utf8(r, limits::MAX_RESULT_BYTES);
        }
        self.cross_shard_calls.push(call);
        let excess = self
            .cross_shard_calls
            .len()
            .saturating_sub(MAX_CALL_HISTORY);
        self.cross_shard_calls.drain(..excess);
    }

    /// Updates the status (and result, if given) of the history entry `id`; false if the
    /// entry is not (or no longer) in the history.
    pub fn set_call_status(
        &mut self,
        id: &CallId,
        status: CallStatus,
        result: Option<String>,
    ) -> bool {
        let Some(call) = self
            .cross_shard_calls
            .iter_mut()
            .rev()
            .find(|c| c.id == *id)
        else {
            return false;
        };
        call.status = status;
        if let Some(mut r) = result {
            truncate_utf8(&mut r, limits::MAX_RESULT_BYTES);
            call.result = Some(r);
        }
        true
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// The state changes of a successful call, by key: `Some(value)` sets, `None` deletes.
pub type StateDiff = BTreeMap<String, Option<String>>;

/// A call to execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInput {
    /// Who calls (the transaction signer, or the original caller of a cross-shard call).
    /// Owner-only methods compare it with the contract's owner.
    pub caller: AccountId,
    /// Method name.
    pub method: String,
    /// Arguments (at most [`limits::MAX_ARGS`], each at most [`limits::MAX_ARG_BYTES`]).
    pub args: Vec<String>,
    /// Native coin the caller attached; already debited from the caller. On success every
    /// unit is accounted for by the returned payments (what a method does not consume is
    /// refunded to the caller); on failure the state machine refunds all of it.
    pub attached: Amount,
    /// Most gas the call may use (at most the contract's `gas_budget`).
    pub gas_limit: u64,
}

/// Native coin the state machine must move out of a call's attached coin (a local credit,
/// or a cross-shard receipt when `to` lives on another shard).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NativePayment {
    /// Who is paid.
    pub to: AccountId,
    /// How much.
    pub amount: Amount,
}

/// What a call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call succeeded: apply `writes`, make `payments` (they sum to the attached coin).
    Success {
        /// State changes to apply.
        writes: StateDiff,
        /// The method's JSON result (at most [`limits::MAX_RESULT_BYTES`] serialized).
        result: serde_json::Value,
        /// Gas used (≤ the call's gas limit).
        gas_used: u64,
        /// Native coin to pay out, in order.
        payments: Vec<NativePayment>,
    },
    /// The call failed: the contract state is unchanged.
    Failure {
        /// Why (the [`ContractError`] message, at most [`limits::MAX_RESULT_BYTES`]).
        reason: String,
        /// Gas used (≤ the call's gas limit).
        gas_used: u64,
    },
}

impl CallOutcome {
    /// Gas used, either way.
    pub fn gas_used(&self) -> u64 {
        match self {
            CallOutcome::Success { gas_used, .. } | CallOutcome::Failure { gas_used, .. } => {
                *gas_used
            }
        }
    }

    /// Whether the call succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, CallOutcome::Success { .. })
    }

    /// The output a `CallResult` receipt carries: the compact JSON result, or the reason.
    pub fn output(&self) -> String {
        match self {
            CallOutcome::Success { result, .. } => result.to_string(),
            CallOutcome::Failure { reason, .. } => reason.clone(),
        }
    }
}

/// Why a call failed. The message is the [`CallOutcome::Failure`] reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// The call ran out of gas.
    #[error("out of gas: used {used} of limit {limit} (the next operation needed {needed} more)")]
    OutOfGas {
        /// Gas used (the whole limit).
        used: u64,
        /// The call's limit.
        limit: u64,
        /// What the failing operation would have cost.
        needed: u64,
    },
    /// The call asked for more gas than the contract allows per call.
    #[error("gas limit {limit} exceeds the contract's gas budget {budget}")]
    GasLimitAboveBudget {
        /// Requested.
        limit: u64,
        /// The contract's budget.
        budget: u64,
    },
    /// The method name is empty or too long.
    #[error("method name must be 1-{max} bytes, got {len}")]
    BadMethodName {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No such method on this contract.
    #[error("unknown method {method:?} for a {template} contract; valid methods: {valid}")]
    UnknownMethod {
        /// What was called.
        method: String,
        /// The template's name.
        template: &'static str,
        /// The valid methods, comma-separated.
        valid: String,
    },
    /// More arguments than [`limits::MAX_ARGS`].
    #[error("too many arguments: {got} (max {max})")]
    TooManyArgs {
        /// Given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// An argument longer than [`limits::MAX_ARG_BYTES`].
    #[error("argument {index} is {len} bytes (max {max})")]
    ArgTooLong {
        /// Its position.
        index: usize,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Wrong number of arguments for the method.
    #[error("{method} expects {usage}, got {got} argument(s)")]
    ArgCount {
        /// The method.
        method: &'static str,
        /// Its argument list, e.g. `(recipient, amount)`.
        usage: &'static str,
        /// Given.
        got: usize,
    },
    /// An argument does not parse.
    #[error("invalid {name}: {reason}")]
    InvalidArg {
        /// Which argument.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// An owner-only method called by someone else.
    #[error("only the contract owner may call {0}")]
    NotOwner(&'static str),
    /// `set` on a key the template manages.
    #[error("key {0:?} is managed by the contract template and cannot be set directly")]
    ReservedKey(String),
    /// A state key is empty or too long.
    #[error("state key must be 1-{max} bytes, got {len}")]
    BadKey {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A state value is too long.
    #[error("state value is {len} bytes (max {max})")]
    ValueTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The write would create an entry past [`limits::MAX_CONTRACT_STATE_ENTRIES`].
    #[error("contract state is full ({max} entries)")]
    StateFull {
        /// The limit.
        max: usize,
    },
    /// The serialized result is over [`limits::MAX_RESULT_BYTES`].
    #[error("result is {len} bytes (max {max})")]
    ResultTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A stored value that should be an amount is not (only reachable through `set` on a
    /// plain contract).
    #[error("state key {key:?} does not hold an amount")]
    CorruptState {
        /// The key.
        key: String,
    },
    /// An amount must be positive here.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// Not enough in an in-contract balance.
    #[error("insufficient balance: {account} has {have} {what}, needs {need}")]
    InsufficientBalance {
        /// Whose balance.
        account: AccountId,
        /// Of what (`tokens`, or a DEX token symbol, or `LP shares`).
        what: String,
        /// Held.
        have: Amount,
        /// Needed.
        need: Amount,
    },
    /// Checked arithmetic overflowed.
    #[error("arithmetic overflow")]
    Overflow,
    /// A template-specific rule refused the call (no liquidity, slippage, NFT rules…).
    #[error("{0}")]
    Rejected(String),
}

/// Why a deploy was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeployError {
    /// Name not 1–64 bytes.
    #[error("contract name must be 1-{max} bytes, got {len}")]
    BadName {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Code hash not 1–130 bytes.
    #[error("code_hash must be 1-{max} bytes, got {len}")]
    BadCodeHash {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many initial state entries.
    #[error("initial_state has {got} entries (max {max})")]
    TooManyEntries {
        /// Given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// An initial key is empty or too long.
    #[error("initial_state key must be 1-{max} bytes, got {len}")]
    BadKey {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An initial value is too long.
    #[error("initial_state value is {len} bytes (max {max})")]
    ValueTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Gas budget outside `MIN_GAS_BUDGET..=MAX_GAS_BUDGET`.
    #[error("gas_budget {got} outside {min}..={max}")]
    BadGasBudget {
        /// Given.
        got: u64,
        /// The floor.
        min: u64,
        /// The ceiling.
        max: u64,
    },
    /// The initial state breaks the template's rules.
    #[error("invalid initial_state for a {template} contract: {reason}")]
    TemplateState {
        /// The template's name.
        template: &'static str,
        /// Why.
        reason: String,
    },
}
