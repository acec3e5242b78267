//! The NFT-marketplace template ([`super::NFT_CODE_HASH`]), paid in the native coin.
//!
//! State: `nft_owner_<id>` (owner account) and `nft_price_<id>` (listing price, present only
//! while listed). NFT ids are 1–64 characters `[A-Za-z0-9_-]`.
//!
//! - `mint_nft(nft_id)`: creates the NFT, owned by the caller.
//! - `list_nft(nft_id, price)`: NFT owner only; lists (or re-prices) it for `price` > 0.
//! - `unlist_nft(nft_id)`: NFT owner only.
//! - `buy_nft(nft_id)`: the call must attach at least `price` of the native coin. The engine
//!   returns `NativePayment { to: seller, amount: price }` (then the refund of any excess to
//!   the buyer), moves ownership to the buyer and ends the listing. The seller cannot buy.
//! - `owner_of(nft_id)` → `{"status":"success","nft_id","owner","price"}` (`price` is `null`
//!   when not listed).

use super::{
    ContractError,
    engine::{Ctx, amount_json, expect_args, parse_account, parse_positive},
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Longest NFT id.
pub const MAX_NFT_ID_BYTES: usize = 64;

/// Checks an NFT's initial state (see [`super::deploy`]).
pub(super) fn init(state: &BTreeMap<String, String>) -> Result<(), String> {
    match state.keys().find(|k| k.starts_with("nft_")) {
        Some(k) => Err(format!("key {k:?} cannot be preset")),
        None => Ok(()),
    }
}

/// Dispatches an NFT method; `None` if `method` is not one.
pub(super) fn call(
    ctx: &mut Ctx<'_>,
    method: &str,
    args: &[String],
) -> Option<Result<Value, ContractError>> {
    Some(match method {
        "mint_nft" => mint_nft(ctx, args),
        "list_nft" => list_nft(ctx, args),
        "unlist_nft" => unlist_nft(ctx, args),
        "buy_nft" => buy_nft(ctx, args),
        "owner_of" => owner_of(ctx, args),
        _ => return None,
    })
}

fn nft_id(s: &str) -> Result<&str, ContractError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NFT_ID_BYTES
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if ok {
        Ok(s)
    } else {
        Err(ContractError::InvalidArg {
            name: "nft_id",
            reason: format!("{s:?}: expected 1-64 characters [A-Za-z0-9_-]"),
        })
    }
}

fn owner_key(id: &str) -> String {
    format!("nft_owner_{id}")
}

fn price_key(id: &str) -> String {
    format!("nft_price_{id}")
}

/// The NFT's owner, or an error if it does not exist.
fn owner_of_id(ctx: &mut Ctx<'_>, id: &str) -> Result<vision_types::AccountId, ContractError> {
    let owner = ctx
        .read(&owner_key(id))?
        .ok_or_else(|| ContractError::Rejected(format!("NFT {id:?} does not exist")))?;
    parse_account("owner", &owner).map_err(|_| ContractError::CorruptState { key: owner_key(id) })
}

/// Fails unless the caller owns NFT `id`.
fn require_nft_owner(ctx: &mut Ctx<'_>, id: &str) -> Result<(), ContractError> {
    let owner = owner_of_id(ctx, id)?;
    if owner != *ctx.caller() {
        return Err(ContractError::Rejected(format!(
            "only the owner of NFT {id:?} ({owner}) may do this"
        )));
    }
    Ok(())
}

fn mint_nft(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "mint_nft", "(nft_id)", 1..=1)?;
    let id = nft_id(&args[0])?;
    if ctx.read(&owner_key(id))?.is_some() {
        return Err(ContractError::Rejected(format!(
            "NFT {id:?} already exists"
        )));
    }
    let owner = ctx.caller().clone();
    ctx.write(&owner_key(id), owner.to_string())?;
    Ok(json!({"status": "success", "nft_id": id, "owner": owner}))
}

fn list_nft(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "list_nft", "(nft_id, price)", 2..=2)?;
    let id = nft_id(&args[0])?;
    let price = parse_positive("price", &args[1])?;
    require_nft_owner(ctx, id)?;
    ctx.write_amount(&price_key(id), price)?;
    Ok(json!({"status": "success", "nft_id": id, "price": amount_json(price)}))
}

fn unlist_nft(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "unlist_nft", "(nft_id)", 1..=1)?;
    let id = nft_id(&args[0])?;
    require_nft_owner(ctx, id)?;
    if ctx.read(&price_key(id))?.is_none() {
        return Err(ContractError::Rejected(format!("NFT {id:?} is not listed")));
    }
    ctx.delete(&price_key(id))?;
    Ok(json!({"status": "success", "nft_id": id}))
}

fn buy_nft(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "buy_nft", "(nft_id)", 1..=1)?;
    let id = nft_id(&args[0])?;
    let seller = owner_of_id(ctx, id)?;
    let Some(price) = ctx.read(&price_key(id))? else {
        return Err(ContractError::Rejected(format!(
            "NFT {id:?} is not for sale"
        )));
    };
    let price = price
        .parse()
        .map_err(|_| ContractError::CorruptState { key: price_key(id) })?;
    let buyer = ctx.caller().clone();
    if buyer == seller {
        return Err(ContractError::Rejected(format!(
            "{buyer} already owns NFT {id:?}"
        )));
    }
    if ctx.unspent() < price {
        return Err(ContractError::Rejected(format!(
            "insufficient payment: attached {}, price {price}",
            ctx.unspent()
        )));
    }
    ctx.pay(&seller, price)?;
    ctx.write(&owner_key(id), buyer.to_string())?;
    ctx.delete(&price_key(id))?;
    Ok(json!({
        "status": "success",
        "nft_id": id,
        "seller": seller,
        "buyer": buyer,
        "price": amount_json(price),
    }))
}

fn owner_of(ctx: &mut Ctx<'_>, args: &[String]) -> Result<Value, ContractError> {
    expect_args(args, "owner_of", "(nft_id)", 1..=1)?;
    let id = nft_id(&args[0])?;
    let owner = owner_of_id(ctx, id)?;
    let price = match ctx.read(&price_key(id))? {
        Some(p) => amount_json(
            p.parse()
                .map_err(|_| ContractError::CorruptState { key: price_key(id) })?,
        ),
        None => Value::Null,
    };
    Ok(json!({"status": "success", "nft_id": id, "owner": owner, "price": price}))
}

#[cfg(test)]
mod tests {
    use crate::contracts::{
        CallOutcome, DeployError, NFT_CODE_HASH, NativePayment, ShardContract,
        tests::{acct, deploy_with, fail_reason, ok, run},
    };
    use serde_json::json;
    use vision_types::Amount;

    fn apply(c: &mut ShardContract, caller: &str, method: &str, args: &[&str]) {
        let (_, w) = ok(c, caller, method, args);
        c.apply_writes(&w);
    }

    /// carol minted and listed `nft_id` for 1000.
    fn market() -> ShardContract {
        let mut c = deploy_with(NFT_CODE_HASH, &[]).unwrap();
        apply(&mut c, "carol", "mint_nft", &["nft_id"]);
        apply(&mut c, "carol", "list_nft", &["nft_id", "1000"]);
        c
    }

    #[test]
    fn seed_flow_list_and_buy_pays_the_seller() {
        let mut c = market();
        let (r, _) = ok(&c, "eve", "owner_of", &["nft_id"]);
        assert_eq!(
            r,
            json!({"status":"success","nft_id":"nft_id","owner":"carol","price":1000})
        );
        let out = run(&c, "dave", "buy_nft", &["nft_id"], 1500, 100_000);
        let CallOutcome::Success {
            writes,
            result,
            payments,
            ..
        } = out
        else {
            panic!("{out:?}")
        };
        assert_eq!(
            result,
            json!({"status":"success","nft_id":"nft_id","seller":"carol","buyer":"dave","price":1000})
        );
        assert_eq!(
            payments,
            vec![
                NativePayment {
                    to: acct("carol"),
                    amount: Amount(1000)
                },
                NativePayment {
                    to: acct("dave"),
                    amount: Amount(500)
                },
            ]
        );
        c.apply_writes(&writes);
        assert_eq!(c.state["nft_owner_nft_id"], "dave");
        assert!(!c.state.contains_key("nft_price_nft_id"));
        assert!(fail_reason(&c, "eve", "buy_nft", &["nft_id"]).contains("not for sale"));
        assert!(fail_reason(&c, "carol", "list_nft", &["nft_id", "5"]).contains("only the owner"));
        apply(&mut c, "dave", "list_nft", &["nft_id", "5"]);
        apply(&mut c, "dave", "unlist_nft", &["nft_id"]);
        assert!(fail_reason(&c, "dave", "unlist_nft", &["nft_id"]).contains("not listed"));
    }

    #[test]
    fn exact_payment_has_no_refund() {
        let c = market();
        let CallOutcome::Success { payments, .. } =
            run(&c, "dave", "buy_nft", &["nft_id"], 1000, 100_000)
        else {
            panic!()
        };
        assert_eq!(
            payments,
            vec![NativePayment {
                to: acct("carol"),
                amount: Amount(1000)
            }]
        );
    }

    #[test]
    fn buy_with_too_little_attached_fails() {
        let c = market();
        let before = c.clone();
        let out = run(&c, "dave", "buy_nft", &["nft_id"], 999, 100_000);
        assert!(
            matches!(&out, CallOutcome::Failure { reason, .. } if reason == "insufficient payment: attached 999, price 1000"),
            "{out:?}"
        );
        assert_eq!(c, before);
        assert!(fail_reason(&c, "carol", "buy_nft", &["nft_id"]).contains("already owns"));
    }

    #[test]
    fn nft_rules() {
        let c = market();
        assert!(fail_reason(&c, "dave", "mint_nft", &["nft_id"]).contains("already exists"));
        assert!(fail_reason(&c, "dave", "mint_nft", &["bad id"]).contains("invalid nft_id"));
        assert!(fail_reason(&c, "dave", "owner_of", &["nope"]).contains("does not exist"));
        assert!(
            fail_reason(&c, "carol", "list_nft", &["nft_id", "0"]).contains("greater than zero")
        );
        assert!(
            fail_reason(&c, "alice", "set", &["nft_owner_nft_id", "carol"]).contains("managed")
        );
        assert!(matches!(
            deploy_with(NFT_CODE_HASH, &[("nft_owner_x", "alice")]),
            Err(DeployError::TemplateState { .. })
        ));
    }
}
