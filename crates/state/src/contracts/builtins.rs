//! The methods every contract has (the seed's "Built-in Methods"):
//!
//! - `get(key)` → `{"status":"success","key":key,"value":value}` (`value` is `null` when the
//!   key is absent). A value too large to fit `MAX_RESULT_BYTES` once wrapped in
//!   JSON fails with "result is … bytes"; read it from the contract's JSON instead.
//! - `set(key, value)`, owner only → `{"status":"success","key":key}`. On template contracts
//!   the keys the template manages are refused (see [`super::Template::is_reserved_key`]).
//! - `transfer(recipient, amount)` moves `amount` from the `balance_<caller>` entry to the
//!   `balance_<recipient>` entry (absent = 0; amounts are decimal strings, as the seed's
//!   `"balance_alice": "900"`) → `{"status":"success","transferred":amount}`.

use super::{
    ContractError,
    engine::{Ctx, amount_json, expect_args, parse_account, parse_positive},
};
use serde_json::{Value, json};

/// Dispatches a built-in; `None` if `method` is not one.
pub(super) fn call(
    ctx: &mut Ctx<'_>,
    method: &str,
    args: &[String],
) -> Option<Result<Value, ContractError>> {
    Some(match method {
        "get" => get(ctx, args),
        "set" => set(ctx, args),
        "transfer" => transfer(ctx, args),
        _ => return None,
    })
}

fn get(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "get", "(key)", 1..=1)?;
    let key = &args[0];
    let value = ctx.read(key)?;
    Ok(json!({"status": "success", "key": key, "value": value}))
}

fn set(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "set", "(key, value)", 2..=2)?;
    ctx.require_owner("set")?;
    let (key, value) = (&args[0], &args[1]);
    if ctx.template().is_reserved_key(key) {
        return Err(ContractError::ReservedKey(key.clone()));
    }
    ctx.write(key, value.clone())?;
    Ok(json!({"status": "success", "key": key}))
}

/// The key of `account`'s balance in the built-in `transfer` (and the token template).
pub(super) fn balance_key(account: &str) -> String {
    format!("balance_{account}")
}

fn transfer(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "transfer", "(recipient, amount)", 2..=2)?;
    let recipient = parse_account("recipient", &args[0])?;
    let amount = parse_positive("amount", &args[1])?;
    let from = ctx.caller().clone();
    let from_key = balance_key(from.as_str());
    let have = ctx.read_amount(&from_key)?;
    let left = have
        .checked_sub(amount)
        .map_err(|_| ContractError::InsufficientBalance {
            account: from.clone(),
            what: "tokens".into(),
            have,
            need: amount,
        })?;
    ctx.write_amount(&from_key, left)?;
    let to_key = balance_key(recipient.as_str());
    let to_have = ctx.read_amount(&to_key)?;
    let to_new = to_have
        .checked_add(amount)
        .map_err(|_| ContractError::Overflow)?;
    ctx.write_amount(&to_key, to_new)?;
    Ok(json!({"status": "success", "transferred": amount_json(amount)}))
}

#[cfg(test)]
mod tests {
    use crate::contracts::{
        CallOutcome, ContractError, Template,
        tests::{fail_reason, kv, ok, run},
    };
    use serde_json::json;
    use vision_types::limits;

    #[test]
    fn get_present_and_absent() {
        let c = kv(&[("greeting", "hello")]);
        let (r, _) = ok(&c, "bob", "get", &["greeting"]);
        assert_eq!(
            r,
            json!({"status":"success","key":"greeting","value":"hello"})
        );
        let (r, _) = ok(&c, "bob", "get", &["missing"]);
        assert_eq!(r, json!({"status":"success","key":"missing","value":null}));
        assert!(fail_reason(&c, "bob", "get", &[]).contains("get expects (key)"));
    }

    #[test]
    fn set_is_owner_only_and_bounded() {
        let mut c = kv(&[]);
        let (r, w) = ok(&c, "alice", "set", &["balance_alice", "1000"]);
        assert_eq!(r, json!({"status":"success","key":"balance_alice"}));
        c.apply_writes(&w);
        assert_eq!(c.state["balance_alice"], "1000");
        assert_eq!(
            fail_reason(&c, "bob", "set", &["k", "v"]),
            ContractError::NotOwner("set").to_string()
        );
        let long_key = "k".repeat(limits::MAX_KEY_BYTES + 1);
        assert!(fail_reason(&c, "alice", "set", &[&long_key, "v"]).contains("state key must be"));
        assert!(fail_reason(&c, "alice", "set", &["", "v"]).contains("state key must be"));
        // A value longer than an argument can be is refused by the argument limit first.
        let long_val = "v".repeat(limits::MAX_ARG_BYTES + 1);
        assert!(
            fail_reason(&c, "alice", "set", &["k", &long_val]).contains("argument 1 is 257 bytes")
        );
    }

    #[test]
    fn set_refuses_template_keys() {
        assert!(Template::Token.is_reserved_key("balance_bob"));
        assert!(Template::Token.is_reserved_key("total_supply"));
        assert!(!Template::Token.is_reserved_key("symbol"));
        assert!(!Template::Plain.is_reserved_key("balance_bob"));
        assert!(Template::Nft.is_reserved_key("nft_owner_x"));
        assert!(Template::Dex.is_reserved_key("reserve_ETH"));
    }

    #[test]
    fn seed_set_then_transfer_on_a_plain_contract() {
        // The seed's deploy (code hash "0xabc123...") is a plain contract; alice sets her
        // balance (the seed's set example), then transfers 100 to bob.
        let mut c = kv(&[
            ("total_supply", "1000000"),
            ("name", "MyToken"),
            ("symbol", "MTK"),
        ]);
        let (_, w) = ok(&c, "alice", "set", &["balance_alice", "1000"]);
        c.apply_writes(&w);
        let (r, w) = ok(&c, "alice", "transfer", &["bob", "100"]);
        assert_eq!(r, json!({"status":"success","transferred":100}));
        c.apply_writes(&w);
        assert_eq!(c.state["balance_alice"], "900");
        assert_eq!(c.state["balance_bob"], "100");
        assert_eq!(c.state["total_supply"], "1000000");
    }

    #[test]
    fn transfer_errors_leave_state_alone() {
        let c = kv(&[("balance_alice", "50")]);
        assert!(
            fail_reason(&c, "alice", "transfer", &["bob", "51"]).contains("insufficient balance")
        );
        assert!(fail_reason(&c, "alice", "transfer", &["bob", "0"]).contains("greater than zero"));
        assert!(fail_reason(&c, "alice", "transfer", &["Bob!", "1"]).contains("invalid recipient"));
        assert!(fail_reason(&c, "alice", "transfer", &["bob", "-1"]).contains("invalid amount"));
        assert!(fail_reason(&c, "alice", "transfer", &["bob", "1.5"]).contains("invalid amount"));
        // Self-transfer is a no-op that succeeds.
        let (_, w) = ok(&c, "alice", "transfer", &["alice", "50"]);
        let mut c2 = c.clone();
        c2.apply_writes(&w);
        assert_eq!(c2.state, c.state);
        // A corrupt balance (set by the owner of a plain contract) is reported, not parsed.
        let c = kv(&[("balance_alice", "lots")]);
        assert!(
            fail_reason(&c, "alice", "transfer", &["bob", "1"]).contains("does not hold an amount")
        );
    }

    #[test]
    fn transfer_overflow_is_an_error() {
        let max = u128::MAX.to_string();
        let c = kv(&[("balance_alice", "1"), ("balance_bob", &max)]);
        assert_eq!(
            fail_reason(&c, "alice", "transfer", &["bob", "1"]),
            "arithmetic overflow"
        );
        // Amounts beyond u64 come back as strings.
        let c = kv(&[("balance_alice", &max)]);
        let (r, _) = ok(&c, "alice", "transfer", &["bob", &max]);
        assert_eq!(r["transferred"], json!(max));
    }

    #[test]
    fn unknown_method_lists_valid_ones() {
        let c = kv(&[]);
        assert_eq!(
            fail_reason(&c, "alice", "mint", &["bob", "1"]),
            "unknown method \"mint\" for a key-value contract; valid methods: get, set, transfer"
        );
        let outcome = run(&c, "alice", "", &[], 0, 100_000);
        assert!(
            matches!(outcome, CallOutcome::Failure { reason, .. } if reason.contains("method name"))
        );
    }
}
