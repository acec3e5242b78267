//! The DEX template ([`super::DEX_CODE_HASH`]): one constant-product (x·y = k) pool over the
//! token pair named by the `token_a` / `token_b` entries (default `ETH` / `TOKEN`; symbols
//! are 1–16 characters `[A-Z0-9]`).
//!
//! State: `balance_<TOKEN>_<account>` (in-contract balances), `reserve_<TOKEN>` (pool
//! reserves), `lp_<account>` and `lp_total` (liquidity shares). All amounts are decimal
//! strings; all math is checked u128 (overflow fails the call).
//!
//! - `deposit(token, amount[, account])`, owner only: credits `amount` of `token` to
//!   `account` (default: the owner). This is how tokens enter the contract; the owner is
//!   the custodian of whatever backs them.
//! - `balance(token, account)` → `{"status":"success","token","account","balance"}`.
//! - `add_liquidity(amount_a, amount_b)` or `add_liquidity(token, amount, token, amount)`:
//!   moves the caller's balances into the reserves. The first provider gets `amount_a`
//!   shares; later ones add at the pool's ratio (the side in excess is only used up to the
//!   ratio, rounding in the pool's favour) and get
//!   `min(a·lp_total/reserve_a, b·lp_total/reserve_b)` shares.
//! - `remove_liquidity(shares)`: returns the pro-rata reserves (rounded down) to the caller.
//! - `swap(from, to, amount[, min_out])` (the seed's `["ETH","TOKEN","100"]`): debits `amount`
//!   of `from` from the caller's balance and credits
//!   `out = amount·997·reserve_to / (reserve_from·1000 + amount·997)` (a 0.3% fee, rounded
//!   down) of `to`. Fails on an empty pool, an output of zero, or `out < min_out`. The fee
//!   stays in the pool, so `reserve_a · reserve_b` never decreases on a swap.

use super::{
    ContractError,
    engine::{Ctx, amount_json, expect_args, parse_account, parse_amount, parse_positive},
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use vision_types::{AccountId, Amount};

/// The state key naming the pool's first token.
pub(super) const TOKEN_A: &str = "token_a";
/// The state key naming the pool's second token.
pub(super) const TOKEN_B: &str = "token_b";
/// The state key holding the number of liquidity shares outstanding.
pub(super) const LP_TOTAL: &str = "lp_total";
/// Fee numerator: the swap keeps `FEE_KEEP_NUM / FEE_DEN` of the input (0.3% fee).
pub const FEE_KEEP_NUM: u128 = 997;
/// Fee denominator.
pub const FEE_DEN: u128 = 1000;
/// Longest token symbol.
pub const MAX_SYMBOL_BYTES: usize = 16;

fn valid_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SYMBOL_BYTES
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Completes and checks a DEX's initial state (see [`super::deploy`]).
pub(super) fn init(state: &mut BTreeMap<String, String>) -> Result<(), String> {
    if let Some(k) = state.keys().find(|k| {
        *k == LP_TOTAL
            || ["balance_", "reserve_", "lp_"]
                .iter()
                .any(|p| k.starts_with(p))
    }) {
        return Err(format!("key {k:?} cannot be preset"));
    }
    let a = state
        .entry(TOKEN_A.to_owned())
        .or_insert_with(|| "ETH".into())
        .clone();
    let b = state
        .entry(TOKEN_B.to_owned())
        .or_insert_with(|| "TOKEN".into())
        .clone();
    for s in [&a, &b] {
        if !valid_symbol(s) {
            return Err(format!(
                "token symbol {s:?} must be 1-16 characters [A-Z0-9]"
            ));
        }
    }
    if a == b {
        return Err(format!("token_a and token_b are both {a:?}"));
    }
    Ok(())
}

/// Dispatches a DEX method; `None` if `method` is not one.
pub(super) fn call(
    ctx: &mut Ctx<'_>,
    method: &str,
    args: &[String],
) -> Option<Result<Value, ContractError>> {
    Some(match method {
        "deposit" => deposit(ctx, args),
        "balance" => balance(ctx, args),
        "add_liquidity" => add_liquidity(ctx, args),
        "remove_liquidity" => remove_liquidity(ctx, args),
        "swap" => swap(ctx, args),
        _ => return None,
    })
}

fn balance_key(token: &str, account: &str) -> String {
    format!("balance_{token}_{account}")
}

fn reserve_key(token: &str) -> String {
    format!("reserve_{token}")
}

fn lp_key(account: &str) -> String {
    format!("lp_{account}")
}

/// The pool's pair (read from state).
fn pair(ctx: &mut Ctx<'_>) -> Result<(String, String), ContractError> {
    let corrupt = |key: &str| ContractError::CorruptState {
        key: key.to_owned(),
    };
    let a = ctx.read(TOKEN_A)?.ok_or_else(|| corrupt(TOKEN_A))?;
    let b = ctx.read(TOKEN_B)?.ok_or_else(|| corrupt(TOKEN_B))?;
    Ok((a, b))
}

/// Checks that `s` is one of the pair's tokens.
fn token_arg(s: &str, (a, b): &(String, String)) -> Result<String, ContractError> {
    if s == a || s == b {
        Ok(s.to_owned())
    } else {
        Err(ContractError::InvalidArg {
            name: "token",
            reason: format!("{s:?} is not traded here (pair: {a}/{b})"),
        })
    }
}

fn mul(ctx: &mut Ctx<'_>, x: Amount, y: Amount) -> Result<Amount, ContractError> {
    ctx.math(1)?;
    x.0.checked_mul(y.0)
        .map(Amount)
        .ok_or(ContractError::Overflow)
}

fn div(ctx: &mut Ctx<'_>, x: Amount, y: Amount) -> Result<Amount, ContractError> {
    ctx.math(1)?;
    x.0.checked_div(y.0)
        .map(Amount)
        .ok_or(ContractError::Overflow)
}

/// `x·y/z`, rounded down.
fn mul_div(ctx: &mut Ctx<'_>, x: Amount, y: Amount, z: Amount) -> Result<Amount, ContractError> {
    let p = mul(ctx, x, y)?;
    div(ctx, p, z)
}

fn add(x: Amount, y: Amount) -> Result<Amount, ContractError> {
    x.checked_add(y).map_err(|_| ContractError::Overflow)
}

/// Debits `amount` from the caller-side entry `key`, or fails naming `what`.
fn debit(
    ctx: &mut Ctx<'_>,
    key: &str,
    account: &AccountId,
    what: &str,
    amount: Amount,
) -> Result<(), ContractError> {
    let have = ctx.read_amount(key)?;
    let left = have
        .checked_sub(amount)
        .map_err(|_| ContractError::InsufficientBalance {
            account: account.clone(),
            what: what.to_owned(),
            have,
            need: amount,
        })?;
    ctx.write_amount(key, left)
}

/// Adds `amount` to the entry `key`; returns the new value.
fn credit(ctx: &mut Ctx<'_>, key: &str, amount: Amount) -> Result<Amount, ContractError> {
    let new = add(ctx.read_amount(key)?, amount)?;
    ctx.write_amount(key, new)?;
    Ok(new)
}

fn deposit(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "deposit", "(token, amount[, account])", 2..=3)?;
    ctx.require_owner("deposit")?;
    let pair = pair(ctx)?;
    let token = token_arg(&args[0], &pair)?;
    let amount = parse_positive("amount", &args[1])?;
    let account = match args.get(2) {
        Some(a) => parse_account("account", a)?,
        None => ctx.caller().clone(),
    };
    let bal = credit(ctx, &balance_key(&token, account.as_str()), amount)?;
    Ok(
        json!({"status": "success", "token": token, "account": account, "balance": amount_json(bal)}),
    )
}

fn balance(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "balance", "(token, account)", 2..=2)?;
    let pair = pair(ctx)?;
    let token = token_arg(&args[0], &pair)?;
    let account = parse_account("account", &args[1])?;
    let bal = ctx.read_amount(&balance_key(&token, account.as_str()))?;
    Ok(
        json!({"status": "success", "token": token, "account": account, "balance": amount_json(bal)}),
    )
}

fn add_liquidity(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    const USAGE: &str = "(amount_a, amount_b) or (token, amount, token, amount)";
    let (ta, tb) = pair(ctx)?;
    let (mut want_a, mut want_b) = match args.len() {
        2 => (
            parse_positive("amount_a", &args[0])?,
            parse_positive("amount_b", &args[1])?,
        ),
        4 => {
            let p = (ta.clone(), tb.clone());
            let (t1, t2) = (token_arg(&args[0], &p)?, token_arg(&args[2], &p)?);
            if t1 == t2 {
                return Err(ContractError::InvalidArg {
                    name: "token",
                    reason: format!("both tokens are {t1:?}"),
                });
            }
            let (x, y) = (
                parse_positive("amount", &args[1])?,
                parse_positive("amount", &args[3])?,
            );
            if t1 == ta { (x, y) } else { (y, x) }
        }
        got => {
            return Err(ContractError::ArgCount {
                method: "add_liquidity",
                usage: USAGE,
                got,
            });
        }
    };
    let (ka, kb) = (reserve_key(&ta), reserve_key(&tb));
    let (ra, rb) = (ctx.read_amount(&ka)?, ctx.read_amount(&kb)?);
    let total = ctx.read_amount(LP_TOTAL)?;
    let shares = if total.is_zero() {
        want_a
    } else {
        // Use the pool's ratio: b_opt = a·rb/ra, or a_opt = b·ra/rb.
        let b_opt = mul_div(ctx, want_a, rb, ra)?;
        if b_opt <= want_b {
            want_b = b_opt;
        } else {
            want_a = mul_div(ctx, want_b, ra, rb)?;
        }
        let sa = mul_div(ctx, want_a, total, ra)?;
        let sb = mul_div(ctx, want_b, total, rb)?;
        sa.min(sb)
    };
    if shares.is_zero() || want_a.is_zero() || want_b.is_zero() {
        return Err(ContractError::Rejected(
            "liquidity too small: it would mint no shares".into(),
        ));
    }
    let caller = ctx.caller().clone();
    debit(
        ctx,
        &balance_key(&ta, caller.as_str()),
        &caller,
        &ta,
        want_a,
    )?;
    debit(
        ctx,
        &balance_key(&tb, caller.as_str()),
        &caller,
        &tb,
        want_b,
    )?;
    let new_ra = credit(ctx, &ka, want_a)?;
    let new_rb = credit(ctx, &kb, want_b)?;
    credit(ctx, &lp_key(caller.as_str()), shares)?;
    credit(ctx, LP_TOTAL, shares)?;
    Ok(json!({
        "status": "success",
        "amount_a": amount_json(want_a),
        "amount_b": amount_json(want_b),
        "shares": amount_json(shares),
        "reserve_a": amount_json(new_ra),
        "reserve_b": amount_json(new_rb),
    }))
}

fn remove_liquidity(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "remove_liquidity", "(shares)", 1..=1)?;
    let shares = parse_positive("shares", &args[0])?;
    let (ta, tb) = pair(ctx)?;
    let caller = ctx.caller().clone();
    debit(ctx, &lp_key(caller.as_str()), &caller, "LP shares", shares)?;
    let total = ctx.read_amount(LP_TOTAL)?;
    let (ka, kb) = (reserve_key(&ta), reserve_key(&tb));
    let (ra, rb) = (ctx.read_amount(&ka)?, ctx.read_amount(&kb)?);
    let out_a = mul_div(ctx, shares, ra, total)?;
    let out_b = mul_div(ctx, shares, rb, total)?;
    let sub = |x: Amount, y: Amount| x.checked_sub(y).map_err(|_| ContractError::Overflow);
    ctx.write_amount(LP_TOTAL, sub(total, shares)?)?;
    ctx.write_amount(&ka, sub(ra, out_a)?)?;
    ctx.write_amount(&kb, sub(rb, out_b)?)?;
    credit(ctx, &balance_key(&ta, caller.as_str()), out_a)?;
    credit(ctx, &balance_key(&tb, caller.as_str()), out_b)?;
    Ok(json!({
        "status": "success",
        "shares": amount_json(shares),
        "amount_a": amount_json(out_a),
        "amount_b": amount_json(out_b),
    }))
}

fn swap(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "swap", "(from, to, amount[, min_out])", 3..=4)?;
    let pair = pair(ctx)?;
    let from = token_arg(&args[0], &pair)?;
    let to = token_arg(&args[1], &pair)?;
    if from == to {
        return Err(ContractError::InvalidArg {
            name: "to",
            reason: format!("cannot swap {from} for itself"),
        });
    }
    let amount = parse_positive("amount", &args[2])?;
    let min_out = match args.get(3) {
        Some(m) => parse_amount("min_out", m)?,
        None => Amount::ZERO,
    };
    let (kf, kt) = (reserve_key(&from), reserve_key(&to));
    let (rf, rt) = (ctx.read_amount(&kf)?, ctx.read_amount(&kt)?);
    if rf.is_zero() || rt.is_zero() {
        return Err(ContractError::Rejected(format!(
            "no liquidity in the {}/{} pool",
            pair.0, pair.1
        )));
    }
    let in_with_fee = mul(ctx, amount, Amount(FEE_KEEP_NUM))?;
    let numerator = mul(ctx, in_with_fee, rt)?;
    let denominator = add(mul(ctx, rf, Amount(FEE_DEN))?, in_with_fee)?;
    let out = div(ctx, numerator, denominator)?;
    if out.is_zero() {
        return Err(ContractError::Rejected("swap output rounds to zero".into()));
    }
    if out < min_out {
        return Err(ContractError::Rejected(format!(
            "slippage: output {out} is below min_out {min_out}"
        )));
    }
    let caller = ctx.caller().clone();
    debit(
        ctx,
        &balance_key(&from, caller.as_str()),
        &caller,
        &from,
        amount,
    )?;
    // out < rt always (in·997·rt / (rf·1000 + in·997) < rt), so this cannot underflow.
    let new_rt = rt.checked_sub(out).map_err(|_| ContractError::Overflow)?;
    ctx.write_amount(&kf, add(rf, amount)?)?;
    ctx.write_amount(&kt, new_rt)?;
    credit(ctx, &balance_key(&to, caller.as_str()), out)?;
    let fee = mul_div(ctx, amount, Amount(FEE_DEN - FEE_KEEP_NUM), Amount(FEE_DEN))?;
    Ok(json!({
        "status": "success",
        "from": from,
        "to": to,
        "amount_in": amount_json(amount),
        "amount_out": amount_json(out),
        "fee": amount_json(fee),
    }))
}

#[cfg(test)]
mod tests {
    use crate::contracts::{
        DEX_CODE_HASH, DeployError, ShardContract,
        tests::{deploy_with, fail_reason, ok},
    };
    use serde_json::json;

    fn apply(
        c: &mut ShardContract,
        caller: &str,
        method: &str,
        args: &[&str],
    ) -> serde_json::Value {
        let (r, w) = ok(c, caller, method, args);
        c.apply_writes(&w);
        r
    }

    fn amount(c: &ShardContract, key: &str) -> u128 {
        c.state.get(key).map_or(0, |v| v.parse().unwrap())
    }

    /// A pool with 10_000 ETH / 20_000 TOKEN provided by alice; bob holds 1_000 ETH.
    pub(crate) fn pool() -> ShardContract {
        let mut c = deploy_with(DEX_CODE_HASH, &[]).unwrap();
        apply(&mut c, "alice", "deposit", &["ETH", "10000"]);
        apply(&mut c, "alice", "deposit", &["TOKEN", "20000"]);
        apply(&mut c, "alice", "deposit", &["ETH", "1000", "bob"]);
        let r = apply(&mut c, "alice", "add_liquidity", &["10000", "20000"]);
        assert_eq!(r["shares"], json!(10000));
        c
    }

    #[test]
    fn deploy_defaults_and_checks() {
        let c = deploy_with(DEX_CODE_HASH, &[]).unwrap();
        assert_eq!(c.state["token_a"], "ETH");
        assert_eq!(c.state["token_b"], "TOKEN");
        for bad in [
            &[("token_a", "eth")][..],
            &[("token_a", "TOKEN")],
            &[("reserve_ETH", "5")],
            &[("lp_total", "5")],
            &[("balance_ETH_bob", "5")],
        ] {
            assert!(
                matches!(
                    deploy_with(DEX_CODE_HASH, bad),
                    Err(DeployError::TemplateState { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn seed_swap_eth_for_token() {
        let mut c = pool();
        let r = apply(&mut c, "bob", "swap", &["ETH", "TOKEN", "100"]);
        // 100·997·20000 / (10000·1000 + 100·997) = 1994000000 / 10099700 = 197.4...
        assert_eq!(
            r,
            json!({"status":"success","from":"ETH","to":"TOKEN","amount_in":100,"amount_out":197,"fee":0})
        );
        assert_eq!(amount(&c, "balance_ETH_bob"), 900);
        assert_eq!(amount(&c, "balance_TOKEN_bob"), 197);
        assert_eq!(amount(&c, "reserve_ETH"), 10_100);
        assert_eq!(amount(&c, "reserve_TOKEN"), 19_803);
        assert!(
            amount(&c, "reserve_ETH") * amount(&c, "reserve_TOKEN") >= 10_000 * 20_000,
            "k never decreases"
        );
        let (r, _) = ok(&c, "carol", "balance", &["TOKEN", "bob"]);
        assert_eq!(r["balance"], json!(197));
    }

    #[test]
    fn swap_errors() {
        let c = pool();
        assert!(
            fail_reason(&c, "bob", "swap", &["ETH", "TOKEN", "1001"])
                .contains("insufficient balance: bob has 1000 ETH")
        );
        assert!(
            fail_reason(&c, "bob", "swap", &["ETH", "TOKEN", "100", "198"]).contains("slippage")
        );
        assert!(fail_reason(&c, "bob", "swap", &["TOKEN", "ETH", "1"]).contains("rounds to zero"));
        assert!(fail_reason(&c, "bob", "swap", &["ETH", "ETH", "1"]).contains("itself"));
        assert!(fail_reason(&c, "bob", "swap", &["BTC", "ETH", "1"]).contains("not traded here"));
        assert!(
            fail_reason(&c, "bob", "swap", &["ETH", "TOKEN", "0"]).contains("greater than zero")
        );
        let mut empty = deploy_with(DEX_CODE_HASH, &[]).unwrap();
        apply(&mut empty, "alice", "deposit", &["ETH", "10"]);
        assert!(
            fail_reason(&empty, "alice", "swap", &["ETH", "TOKEN", "5"]).contains("no liquidity")
        );
        assert!(
            fail_reason(&empty, "bob", "deposit", &["ETH", "10"])
                .contains("only the contract owner")
        );
        assert!(fail_reason(&empty, "alice", "set", &["reserve_ETH", "10"]).contains("managed"));
    }

    #[test]
    fn liquidity_in_and_out() {
        let mut c = pool();
        apply(&mut c, "alice", "deposit", &["ETH", "500", "carol"]);
        apply(&mut c, "alice", "deposit", &["TOKEN", "5000", "carol"]);
        // Named form, reversed order; TOKEN is in excess so only 1000 of it is used.
        let r = apply(
            &mut c,
            "carol",
            "add_liquidity",
            &["TOKEN", "5000", "ETH", "500"],
        );
        assert_eq!(r["amount_a"], json!(500));
        assert_eq!(r["amount_b"], json!(1000));
        assert_eq!(r["shares"], json!(500));
        assert_eq!(amount(&c, "balance_TOKEN_carol"), 4000);
        assert_eq!(amount(&c, "lp_total"), 10_500);
        let r = apply(&mut c, "carol", "remove_liquidity", &["500"]);
        assert_eq!(
            r,
            json!({"status":"success","shares":500,"amount_a":500,"amount_b":1000})
        );
        assert_eq!(amount(&c, "balance_ETH_carol"), 500);
        assert_eq!(amount(&c, "balance_TOKEN_carol"), 5000);
        assert!(fail_reason(&c, "carol", "remove_liquidity", &["1"]).contains("LP shares"));
        assert!(
            fail_reason(&c, "carol", "add_liquidity", &["1"]).contains("add_liquidity expects")
        );
        assert!(
            fail_reason(&c, "bob", "add_liquidity", &["100", "200"])
                .contains("insufficient balance: bob has 0 TOKEN")
        );
        // Everything out again: the pool is empty and the next provider starts afresh.
        apply(&mut c, "alice", "remove_liquidity", &["10000"]);
        assert_eq!(amount(&c, "reserve_ETH"), 0);
        assert_eq!(amount(&c, "lp_total"), 0);
        apply(&mut c, "alice", "add_liquidity", &["3", "7"]);
        assert_eq!(amount(&c, "lp_alice"), 3);
    }
}
