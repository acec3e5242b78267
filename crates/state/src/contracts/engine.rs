//! Running calls and deploys: the copy-on-write execution context, argument parsing,
//! [`execute`] and [`deploy`].

use super::{
    CallInput, CallOutcome, ContractError, DeployError, MAX_CODE_HASH_BYTES, NativePayment,
    ShardContract, StateDiff, Template, builtins, dex,
    gas::{self, GasMeter},
    nft, token, truncate_utf8,
};
use serde_json::Value;
use std::{collections::BTreeMap, ops::RangeInclusive};
use vision_types::{AccountId, Amount, ContractId, ShardId, limits};

/// The execution context of one call: the contract's state seen through the call's pending
/// writes, the gas meter, who calls, and the attached coin not yet paid out.
pub(super) struct Ctx<'a> {
    base: &'a BTreeMap<String, String>,
    writes: StateDiff,
    entries: usize,
    gas: &'a mut GasMeter,
    caller: &'a AccountId,
    owner: &'a AccountId,
    template: Template,
    unspent: Amount,
    payments: Vec<NativePayment>,
}

impl<'a> Ctx<'a> {
    /// The caller.
    pub fn caller(&self) -> &'a AccountId {
        self.caller
    }

    /// The contract's template.
    pub fn template(&self) -> Template {
        self.template
    }

    /// Attached coin not yet paid out.
    pub fn unspent(&self) -> Amount {
        self.unspent
    }

    /// Fails unless the caller owns the contract.
    pub fn require_owner(&self, method: &'static str) -> Result<(), ContractError> {
        if self.caller == self.owner {
            Ok(())
        } else {
            Err(ContractError::NotOwner(method))
        }
    }

    /// Charges `n` big-integer operations.
    pub fn math(&mut self, n: u64) -> Result<(), ContractError> {
        self.gas.charge(gas::GAS_MATH.saturating_mul(n))
    }

    fn current(&self, key: &str) -> Option<&str> {
        match self.writes.get(key) {
            Some(v) => v.as_deref(),
            None => self.base.get(key).map(String::as_str),
        }
    }

    /// Reads a key (pending writes included), charging for it.
    pub fn read(&mut self, key: &str) -> Result<Option<String>, ContractError> {
        let value = self.current(key).map(str::to_owned);
        let bytes = key.len() + value.as_ref().map_or(0, String::len);
        self.gas
            .charge_bytes(gas::GAS_READ_BASE, gas::GAS_PER_BYTE_READ, bytes)?;
        Ok(value)
    }

    /// Writes a key, enforcing the key, value and entry-count limits, charging for it.
    pub fn write(&mut self, key: &str, value: String) -> Result<(), ContractError> {
        if key.is_empty() || key.len() > limits::MAX_KEY_BYTES {
            return Err(ContractError::BadKey {
                len: key.len(),
                max: limits::MAX_KEY_BYTES,
            });
        }
        if value.len() > limits::MAX_VALUE_BYTES {
            return Err(ContractError::ValueTooLong {
                len: value.len(),
                max: limits::MAX_VALUE_BYTES,
            });
        }
        let is_new = self.current(key).is_none();
        if is_new && self.entries >= limits::MAX_CONTRACT_STATE_ENTRIES {
            return Err(ContractError::StateFull {
                max: limits::MAX_CONTRACT_STATE_ENTRIES,
            });
        }
        self.gas.charge_bytes(
            gas::GAS_WRITE_BASE,
            gas::GAS_PER_BYTE_WRITTEN,
            key.len() + value.len(),
        )?;
        if is_new {
            self.gas.charge(gas::GAS_PER_NEW_ENTRY)?;
            self.entries += 1;
        }
        self.writes.insert(key.to_owned(), Some(value));
        Ok(())
    }

    /// Deletes a key if present, charging for it.
    pub fn delete(&mut self, key: &str) -> Result<(), ContractError> {
        self.gas.charge(gas::GAS_DELETE)?;
        if self.current(key).is_some() {
            self.entries -= 1;
            if self.base.contains_key(key) {
                self.writes.insert(key.to_owned(), None);
            } else {
                self.writes.remove(key);
            }
        }
        Ok(())
    }

    /// Reads an amount stored as a decimal string (absent = 0).
    pub fn read_amount(&mut self, key: &str) -> Result<Amount, ContractError> {
        match self.read(key)? {
            None => Ok(Amount::ZERO),
            Some(v) => v.parse().map_err(|_| ContractError::CorruptState {
                key: key.to_owned(),
            }),
        }
    }

    /// Writes an amount as a decimal string.
    pub fn write_amount(&mut self, key: &str, amount: Amount) -> Result<(), ContractError> {
        self.write(key, amount.to_string())
    }

    /// Pays `amount` of the attached coin to `to` (zero amounts are skipped).
    pub fn pay(&mut self, to: &AccountId, amount: Amount) -> Result<(), ContractError> {
        if amount.is_zero() {
            return Ok(());
        }
        self.unspent = self
            .unspent
            .checked_sub(amount)
            .map_err(|_| ContractError::Rejected("payment exceeds the attached coin".into()))?;
        self.gas.charge(gas::GAS_PER_PAYMENT)?;
        self.payments.push(NativePayment {
            to: to.clone(),
            amount,
        });
        Ok(())
    }
}

/// Fails unless `args.len()` is in `count`.
pub(super) fn expect_args(
    args: &[String],
    method: &'static str,
    usage: &'static str,
    count: RangeInclusive<usize>,
) -> Result<(), ContractError> {
    if count.contains(&args.len()) {
        Ok(())
    } else {
        Err(ContractError::ArgCount {
            method,
            usage,
            got: args.len(),
        })
    }
}

/// Parses a non-negative decimal amount.
pub(super) fn parse_amount(name: &'static str, s: &str) -> Result<Amount, ContractError> {
    s.parse()
        .map_err(|e: vision_types::AmountError| ContractError::InvalidArg {
            name,
            reason: format!("{s:?}: {e}"),
        })
}

/// Parses an amount that must be greater than zero.
pub(super) fn parse_positive(name: &'static str, s: &str) -> Result<Amount, ContractError> {
    let a = parse_amount(name, s)?;
    if a.is_zero() {
        return Err(ContractError::Zero(name));
    }
    Ok(a)
}

/// Parses an account name.
pub(super) fn parse_account(name: &'static str, s: &str) -> Result<AccountId, ContractError> {
    AccountId::new(s).map_err(|e| ContractError::InvalidArg {
        name,
        reason: e.to_string(),
    })
}

/// An amount in a JSON result: a number when it fits in u64 (as the seed's
/// `"transferred": 100`), else a decimal string.
pub(super) fn amount_json(a: Amount) -> Value {
    match u64::try_from(a.0) {
        Ok(n) => Value::from(n),
        Err(_) => Value::String(a.to_string()),
    }
}

/// Runs `call` against `contract` without changing it.
///
/// Order: `gas_limit ≤ gas_budget` (else fails with no gas used), the base cost and input
/// bytes, the method/argument limits, the method, the refund of unspent attached coin to the
/// caller, the result size and its gas. Any error fails the whole call with no writes and
/// no payments.
pub fn execute(contract: &ShardContract, call: &CallInput) -> CallOutcome {
    let target = Target {
        state: &contract.state,
        owner: &contract.owner,
        code_hash: &contract.code_hash,
        gas_budget: contract.gas_budget,
    };
    execute_on(&target, call)
}

/// The parts of a contract a call needs (so callers holding them separately need not build
/// a [`ShardContract`]).
pub(super) struct Target<'a> {
    /// The key-value state.
    pub state: &'a BTreeMap<String, String>,
    /// The owner.
    pub owner: &'a AccountId,
    /// The code hash.
    pub code_hash: &'a str,
    /// The per-call gas ceiling.
    pub gas_budget: u64,
}

/// [`execute`] on a contract's parts.
pub(super) fn execute_on(contract: &Target<'_>, call: &CallInput) -> CallOutcome {
    let mut meter = GasMeter::new(call.gas_limit);
    match run(contract, call, &mut meter) {
        Ok((writes, result, payments)) => CallOutcome::Success {
            writes,
            result,
            gas_used: meter.used(),
            payments,
        },
        Err(e) => {
            let mut reason = e.to_string();
            truncate_utf8(&mut reason, limits::MAX_RESULT_BYTES);
            CallOutcome::Failure {
                reason,
                gas_used: meter.used(),
            }
        }
    }
}

type RunOutput = (StateDiff, Value, Vec<NativePayment>);

fn run(
    contract: &Target<'_>,
    call: &CallInput,
    meter: &mut GasMeter,
) -> Result<RunOutput, ContractError> {
    if call.gas_limit > contract.gas_budget {
        return Err(ContractError::GasLimitAboveBudget {
            limit: call.gas_limit,
            budget: contract.gas_budget,
        });
    }
    meter.charge(gas::GAS_CALL_BASE)?;
    let input_bytes = call
        .args
        .iter()
        .fold(call.method.len(), |n, a| n.saturating_add(a.len()));
    meter.charge_bytes(0, gas::GAS_PER_INPUT_BYTE, input_bytes)?;
    if call.method.is_empty() || call.method.len() > limits::MAX_METHOD_BYTES {
        return Err(ContractError::BadMethodName {
            len: call.method.len(),
            max: limits::MAX_METHOD_BYTES,
        });
    }
    if call.args.len() > limits::MAX_ARGS {
        return Err(ContractError::TooManyArgs {
            got: call.args.len(),
            max: limits::MAX_ARGS,
        });
    }
    if let Some((index, a)) = call
        .args
        .iter()
        .enumerate()
        .find(|(_, a)| a.len() > limits::MAX_ARG_BYTES)
    {
        return Err(ContractError::ArgTooLong {
            index,
            len: a.len(),
            max: limits::MAX_ARG_BYTES,
        });
    }

    let template = Template::from_code_hash(contract.code_hash);
    let mut ctx = Ctx {
        base: contract.state,
        writes: StateDiff::new(),
        entries: contract.state.len(),
        gas: meter,
        caller: &call.caller,
        owner: contract.owner,
        template,
        unspent: call.attached,
        payments: Vec::new(),
    };
    let (method, args) = (call.method.as_str(), call.args.as_slice());
    let dispatched = match builtins::call(&mut ctx, method, args) {
        Some(r) => Some(r),
        None => match template {
            Template::Plain => None,
            Template::Token => token::call(&mut ctx, method, args),
            Template::Dex => dex::call(&mut ctx, method, args),
            Template::Nft => nft::call(&mut ctx, method, args),
        },
    };
    let result = dispatched.unwrap_or_else(|| {
        Err(ContractError::UnknownMethod {
            method: method.to_owned(),
            template: template.name(),
            valid: template.methods().join(", "),
        })
    })?;

    let rest = ctx.unspent;
    ctx.pay(&call.caller, rest)?;
    let len = serde_json::to_vec(&result).map_or(usize::MAX, |b| b.len());
    if len > limits::MAX_RESULT_BYTES {
        return Err(ContractError::ResultTooLarge {
            len,
            max: limits::MAX_RESULT_BYTES,
        });
    }
    ctx.gas.charge_bytes(0, gas::GAS_PER_RESULT_BYTE, len)?;
    Ok((ctx.writes, result, ctx.payments))
}

/// What a deploy transaction asks for, plus where and when it executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployParams {
    /// The new contract's id (see [`ContractId::from_deploy`]).
    pub id: ContractId,
    /// Human-readable name, 1–64 bytes.
    pub name: String,
    /// The deployer.
    pub owner: AccountId,
    /// The shard the contract lives on.
    pub primary_shard: ShardId,
    /// Selects the template; any other value is a plain key-value contract.
    pub code_hash: String,
    /// Initial state: at most [`limits::MAX_INITIAL_STATE_ENTRIES`] entries, keys 1–128
    /// bytes, values up to 1024 bytes.
    pub initial_state: BTreeMap<String, String>,
    /// Per-call gas ceiling, in `gas::MIN_GAS_BUDGET..=gas::MAX_GAS_BUDGET`.
    pub gas_budget: u64,
    /// Height of the deploying block.
    pub height: u64,
}

/// Validates a deploy and builds the contract (empty call history).
///
/// Templates complete the initial state:
/// - token: `total_supply` (absent = 0) and every `balance_<account>` must be amounts;
///   if `balance_<owner>` is absent the owner is credited whatever part of `total_supply`
///   the other balances do not hold (all of it for the seed's
///   `{"total_supply":"1000000","name":"MyToken","symbol":"MTK"}`); the balances must then
///   sum to `total_supply`.
/// - dex: `token_a` / `token_b` default to `ETH` / `TOKEN`, must be distinct symbols of 1–16
///   characters `[A-Z0-9]`; no balances, reserves or LP shares may be preset.
/// - nft: no `nft_*` keys may be preset.
pub fn deploy(p: DeployParams) -> Result<ShardContract, DeployError> {
    if p.name.is_empty() || p.name.len() > limits::MAX_CONTRACT_NAME_BYTES {
        return Err(DeployError::BadName {
            len: p.name.len(),
            max: limits::MAX_CONTRACT_NAME_BYTES,
        });
    }
    if p.code_hash.is_empty() || p.code_hash.len() > MAX_CODE_HASH_BYTES {
        return Err(DeployError::BadCodeHash {
            len: p.code_hash.len(),
            max: MAX_CODE_HASH_BYTES,
        });
    }
    if p.initial_state.len() > limits::MAX_INITIAL_STATE_ENTRIES {
        return Err(DeployError::TooManyEntries {
            got: p.initial_state.len(),
            max: limits::MAX_INITIAL_STATE_ENTRIES,
        });
    }
    for (k, v) in &p.initial_state {
        if k.is_empty() || k.len() > limits::MAX_KEY_BYTES {
            return Err(DeployError::BadKey {
                len: k.len(),
                max: limits::MAX_KEY_BYTES,
            });
        }
        if v.len() > limits::MAX_VALUE_BYTES {
            return Err(DeployError::ValueTooLong {
                len: v.len(),
                max: limits::MAX_VALUE_BYTES,
            });
        }
    }
    if !(gas::MIN_GAS_BUDGET..=gas::MAX_GAS_BUDGET).contains(&p.gas_budget) {
        return Err(DeployError::BadGasBudget {
            got: p.gas_budget,
            min: gas::MIN_GAS_BUDGET,
            max: gas::MAX_GAS_BUDGET,
        });
    }
    let template = Template::from_code_hash(&p.code_hash);
    let mut state = p.initial_state;
    let checked = match template {
        Template::Plain => Ok(()),
        Template::Token => token::init(&mut state, &p.owner),
        Template::Dex => dex::init(&mut state),
        Template::Nft => nft::init(&state),
    };
    checked.map_err(|reason| DeployError::TemplateState {
        template: template.name(),
        reason,
    })?;
    Ok(ShardContract {
        id: p.id,
        name: p.name,
        owner: p.owner,
        primary_shard: p.primary_shard,
        code_hash: p.code_hash,
        state,
        cross_shard_calls: Vec::new(),
        gas_budget: p.gas_budget,
        created_height: p.height,
    })
}
