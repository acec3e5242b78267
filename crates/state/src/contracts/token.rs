//! The token template ([`super::TOKEN_CODE_HASH`]): a fungible token whose balances are the
//! `balance_<account>` entries the built-in `transfer` moves, and whose `total_supply` entry
//! always equals their sum (`set` cannot touch either).
//!
//! - `mint(to, amount)`, owner only → `{"status":"success","minted":amount,"to":to,
//!   "total_supply":supply}`.
//! - `balance(account)` → `{"status":"success","account":account,"balance":amount}`.
//! - `transfer(recipient, amount)`: the built-in.
//!
//! Amounts are decimal strings in state and checked u128 arithmetic everywhere (overflow
//! fails the call).

use super::{
    ContractError,
    builtins::balance_key,
    engine::{Ctx, amount_json, expect_args, parse_account, parse_positive},
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, btree_map::Entry};
use vision_types::{AccountId, Amount};

/// The state key holding the total supply.
pub(super) const TOTAL_SUPPLY: &str = "total_supply";

/// Completes and checks a token's initial state (see [`super::deploy`]).
pub(super) fn init(state: &mut BTreeMap<String, String>, owner: &AccountId) -> Result<(), String> {
    let total: Amount = match state.get(TOTAL_SUPPLY) {
        None => Amount::ZERO,
        Some(v) => v
            .parse()
            .map_err(|_| format!("total_supply {v:?} is not an amount"))?,
    };
    let mut held = Amount::ZERO;
    for (k, v) in state.range("balance_".to_owned()..) {
        let Some(account) = k.strip_prefix("balance_") else {
            break;
        };
        AccountId::new(account).map_err(|e| format!("key {k:?}: {e}"))?;
        let a: Amount = v
            .parse()
            .map_err(|_| format!("{k} {v:?} is not an amount"))?;
        held = held
            .checked_add(a)
            .map_err(|_| "balances overflow".to_owned())?;
    }
    if let Entry::Vacant(owner_entry) = state.entry(balance_key(owner.as_str())) {
        let rest = total
            .checked_sub(held)
            .map_err(|_| format!("balances ({held}) exceed total_supply ({total})"))?;
        if !rest.is_zero() {
            owner_entry.insert(rest.to_string());
        }
        held = total;
    }
    if held != total {
        return Err(format!(
            "balances sum to {held} but total_supply is {total}"
        ));
    }
    state.insert(TOTAL_SUPPLY.to_owned(), total.to_string());
    Ok(())
}

/// Dispatches a token method; `None` if `method` is not one.
pub(super) fn call(
    ctx: &mut Ctx<'_>,
    method: &str,
    args: &[String],
) -> Option<Result<Value, ContractError>> {
    Some(match method {
        "mint" => mint(ctx, args),
        "balance" => balance(ctx, args),
        _ => return None,
    })
}

fn mint(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "mint", "(to, amount)", 2..=2)?;
    ctx.require_owner("mint")?;
    let to = parse_account("to", &args[0])?;
    let amount = parse_positive("amount", &args[1])?;
    let supply = ctx
        .read_amount(TOTAL_SUPPLY)?
        .checked_add(amount)
        .map_err(|_| ContractError::Overflow)?;
    let key = balance_key(to.as_str());
    let bal = ctx
        .read_amount(&key)?
        .checked_add(amount)
        .map_err(|_| ContractError::Overflow)?;
    ctx.write_amount(TOTAL_SUPPLY, supply)?;
    ctx.write_amount(&key, bal)?;
    Ok(json!({
        "status": "success",
        "minted": amount_json(amount),
        "to": to,
        "total_supply": amount_json(supply),
    }))
}

fn balance(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "balance", "(account)", 1..=1)?;
    let account = parse_account("account", &args[0])?;
    let bal = ctx.read_amount(&balance_key(account.as_str()))?;
    Ok(json!({"status": "success", "account": account, "balance": amount_json(bal)}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{
        DeployError, TOKEN_CODE_HASH,
        tests::{deploy_with, fail_reason, ok},
    };

    #[test]
    fn seed_deploy_credits_owner() {
        let c = deploy_with(
            TOKEN_CODE_HASH,
            &[
                ("total_supply", "1000000"),
                ("name", "MyToken"),
                ("symbol", "MTK"),
            ],
        )
        .unwrap();
        assert_eq!(c.state["balance_alice"], "1000000");
        assert_eq!(c.state["total_supply"], "1000000");
        let (r, _) = ok(&c, "carol", "balance", &["alice"]);
        assert_eq!(
            r,
            json!({"status":"success","account":"alice","balance":1000000})
        );
    }

    #[test]
    fn deploy_checks_balances() {
        let c = deploy_with(
            TOKEN_CODE_HASH,
            &[("total_supply", "100"), ("balance_bob", "30")],
        )
        .unwrap();
        assert_eq!(c.state["balance_alice"], "70");
        let c = deploy_with(TOKEN_CODE_HASH, &[]).unwrap();
        assert_eq!(c.state["total_supply"], "0");
        assert!(!c.state.contains_key("balance_alice"));
        for bad in [
            &[("total_supply", "10"), ("balance_bob", "11")][..],
            &[("total_supply", "10"), ("balance_alice", "9")],
            &[("total_supply", "ten")],
            &[("balance_bob", "x")],
            &[("balance_Bob", "0")],
        ] {
            assert!(
                matches!(
                    deploy_with(TOKEN_CODE_HASH, bad),
                    Err(DeployError::TemplateState { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn seed_token_flow_mint_then_transfer() {
        let mut c =
            deploy_with(TOKEN_CODE_HASH, &[("name", "MyToken"), ("symbol", "MTK")]).unwrap();
        let (r, w) = ok(&c, "alice", "mint", &["alice", "1000"]);
        assert_eq!(
            r,
            json!({"status":"success","minted":1000,"to":"alice","total_supply":1000})
        );
        c.apply_writes(&w);
        let (r, w) = ok(&c, "alice", "transfer", &["bob", "100"]);
        assert_eq!(r, json!({"status":"success","transferred":100}));
        c.apply_writes(&w);
        assert_eq!(c.state["balance_alice"], "900");
        assert_eq!(c.state["balance_bob"], "100");
        assert_eq!(c.state["total_supply"], "1000");
    }

    #[test]
    fn mint_is_owner_only_and_checked() {
        let c = deploy_with(TOKEN_CODE_HASH, &[("total_supply", &u128::MAX.to_string())]).unwrap();
        assert_eq!(
            fail_reason(&c, "bob", "mint", &["bob", "1"]),
            "only the contract owner may call mint"
        );
        assert_eq!(
            fail_reason(&c, "alice", "mint", &["bob", "1"]),
            "arithmetic overflow"
        );
        assert!(fail_reason(&c, "alice", "mint", &["bob", "0"]).contains("greater than zero"));
        assert!(fail_reason(&c, "alice", "mint", &["bob"]).contains("mint expects (to, amount)"));
        assert!(
            fail_reason(&c, "alice", "set", &["total_supply", "1"])
                .contains("managed by the contract template")
        );
        assert!(
            fail_reason(&c, "alice", "set", &["balance_bob", "1"])
                .contains("managed by the contract template")
        );
        let (_, w) = ok(&c, "alice", "set", &["symbol", "MTK"]);
        assert_eq!(w["symbol"].as_deref(), Some("MTK"));
    }
}
