//! The seam between the state machine and the contract engine.
//!
//! The state machine never interprets contract code: it loads a contract's header and
//! key-value state, hands them to a [`ContractEngine`] with the call input, and applies the
//! outcome (new state, native payments) or discards it. The engine must be pure and
//! deterministic: same input, same outcome, on every replica.

pub use crate::contracts::{CallInput, NativePayment};
use serde_json::Value;
use std::collections::BTreeMap;
use vision_types::{AccountId, Amount, ContractId, ShardId};

/// A contract as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractInfo {
    /// The contract id.
    pub id: ContractId,
    /// Name.
    pub name: String,
    /// The deployer.
    pub owner: AccountId,
    /// Where it lives.
    pub primary_shard: ShardId,
    /// Selects the template.
    pub code_hash: String,
    /// Most gas one call may use.
    pub gas_budget: u64,
    /// Native coin it holds (before the call's attached coin).
    pub balance: Amount,
    /// Its key-value state.
    pub state: BTreeMap<String, String>,
}

/// A deployment request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployInput {
    /// The id the contract will have.
    pub id: ContractId,
    /// Name.
    pub name: String,
    /// The deployer.
    pub owner: AccountId,
    /// Where it will live.
    pub primary_shard: ShardId,
    /// Selects the template.
    pub code_hash: String,
    /// Initial key-value state as given by the deployer.
    pub initial_state: BTreeMap<String, String>,
    /// Most gas one call may use.
    pub gas_budget: u64,
}

/// What a call did.
#[derive(Clone, Debug, PartialEq)]
pub enum CallOutcome {
    /// The call succeeded.
    Success {
        /// The contract's complete new key-value state.
        state: BTreeMap<String, String>,
        /// The call's result.
        result: Value,
        /// Gas used.
        gas_used: u64,
        /// Native payments out of the contract's balance (attached coin included).
        payments: Vec<NativePayment>,
    },
    /// The call failed; the state is unchanged.
    Failure {
        /// Why.
        reason: String,
        /// Gas used.
        gas_used: u64,
    },
}

/// A deterministic contract engine.
pub trait ContractEngine {
    /// Validates a deployment and returns the contract's initial state, or why it is refused.
    fn deploy(&self, input: &DeployInput) -> Result<BTreeMap<String, String>, String>;

    /// Executes one call.
    fn call(&self, contract: &ContractInfo, input: &CallInput) -> CallOutcome;
}
