//! [`TemplateEngine`]: this engine behind the state machine's [`ContractEngine`] seam.

use super::{
    CallOutcome, DeployParams, deploy,
    engine::{Target, execute_on},
};
use crate::engine::{self as seam, ContractEngine, ContractInfo, DeployInput};
use std::collections::BTreeMap;

/// The built-in contract engine (built-ins plus the token, DEX and NFT templates) as a
/// [`ContractEngine`]. Stateless; one value serves every shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TemplateEngine;

impl ContractEngine for TemplateEngine {
    /// Runs [`deploy`] (the seam carries no height, so `created_height` is 0 and unused).
    fn deploy(&self, input: &DeployInput) -> Result<BTreeMap<String, String>, String> {
        deploy(DeployParams {
            id: input.id.clone(),
            name: input.name.clone(),
            owner: input.owner.clone(),
            primary_shard: input.primary_shard,
            code_hash: input.code_hash.clone(),
            initial_state: input.initial_state.clone(),
            gas_budget: input.gas_budget,
            height: 0,
        })
        .map(|c| c.state)
        .map_err(|e| e.to_string())
    }

    /// Runs [`super::execute`]; on success returns the whole new state. The payments sum to
    /// the attached coin, so the contract's native balance is unchanged by a call.
    fn call(&self, contract: &ContractInfo, input: &seam::CallInput) -> seam::CallOutcome {
        let target = Target {
            state: &contract.state,
            owner: &contract.owner,
            code_hash: &contract.code_hash,
            gas_budget: contract.gas_budget,
        };
        match execute_on(&target, input) {
            CallOutcome::Success {
                writes,
                result,
                gas_used,
                payments,
            } => {
                let mut state = contract.state.clone();
                for (k, v) in writes {
                    match v {
                        Some(v) => state.insert(k, v),
                        None => state.remove(&k),
                    };
                }
                seam::CallOutcome::Success {
                    state,
                    result,
                    gas_used,
                    payments,
                }
            }
            CallOutcome::Failure { reason, gas_used } => {
                seam::CallOutcome::Failure { reason, gas_used }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{NFT_CODE_HASH, TOKEN_CODE_HASH};
    use serde_json::json;
    use vision_types::{AccountId, Amount, ContractId, Hash, ShardId};

    fn acct(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }

    fn info(code_hash: &str, state: BTreeMap<String, String>) -> ContractInfo {
        ContractInfo {
            id: ContractId::from_deploy(&Hash::sha256(b"adapter")),
            name: "T".into(),
            owner: acct("alice"),
            primary_shard: ShardId(0),
            code_hash: code_hash.into(),
            gas_budget: 1_000_000,
            balance: Amount::ZERO,
            state,
        }
    }

    fn call(
        c: &ContractInfo,
        caller: &str,
        method: &str,
        args: &[&str],
        attached: u128,
    ) -> seam::CallOutcome {
        TemplateEngine.call(
            c,
            &seam::CallInput {
                caller: acct(caller),
                method: method.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                attached: Amount(attached),
                gas_limit: 100_000,
            },
        )
    }

    #[test]
    fn seed_token_flow_through_the_seam() {
        let c = info(TOKEN_CODE_HASH, BTreeMap::new());
        let deployed = TemplateEngine
            .deploy(&DeployInput {
                id: c.id.clone(),
                name: "MyToken".into(),
                owner: acct("alice"),
                primary_shard: ShardId(0),
                code_hash: TOKEN_CODE_HASH.into(),
                initial_state: [("total_supply".to_string(), "1000".to_string())].into(),
                gas_budget: 1_000_000,
            })
            .unwrap();
        assert_eq!(deployed["balance_alice"], "1000");
        let c = info(TOKEN_CODE_HASH, deployed);
        let seam::CallOutcome::Success {
            state,
            result,
            payments,
            ..
        } = call(&c, "alice", "transfer", &["bob", "100"], 0)
        else {
            panic!()
        };
        assert_eq!(result, json!({"status":"success","transferred":100}));
        assert!(payments.is_empty());
        assert_eq!(state["balance_alice"], "900");
        assert_eq!(state["balance_bob"], "100");
        assert!(matches!(
            call(&c, "bob", "mint", &["bob", "1"], 0),
            seam::CallOutcome::Failure { .. }
        ));
        assert!(
            TemplateEngine
                .deploy(&DeployInput {
                    id: c.id.clone(),
                    name: String::new(),
                    owner: acct("alice"),
                    primary_shard: ShardId(0),
                    code_hash: "0xabc".into(),
                    initial_state: BTreeMap::new(),
                    gas_budget: 1_000_000,
                })
                .unwrap_err()
                .contains("contract name")
        );
    }

    #[test]
    fn nft_purchase_deletes_the_listing_and_pays() {
        let mut c = info(NFT_CODE_HASH, BTreeMap::new());
        for (who, m, a) in [
            ("carol", "mint_nft", &["n"][..]),
            ("carol", "list_nft", &["n", "10"]),
        ] {
            let seam::CallOutcome::Success { state, .. } = call(&c, who, m, a, 0) else {
                panic!()
            };
            c.state = state;
        }
        let seam::CallOutcome::Success {
            state, payments, ..
        } = call(&c, "dave", "buy_nft", &["n"], 12)
        else {
            panic!()
        };
        assert!(!state.contains_key("nft_price_n"));
        assert_eq!(state["nft_owner_n"], "dave");
        assert_eq!(
            payments,
            vec![
                seam::NativePayment {
                    to: acct("carol"),
                    amount: Amount(10)
                },
                seam::NativePayment {
                    to: acct("dave"),
                    amount: Amount(2)
                },
            ]
        );
    }
}
