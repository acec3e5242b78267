//! The genesis file: the network's chain id, configuration, validators and funded accounts.
//! Every node of a network loads the same file; its hash identifies the network.

use crate::{AccountId, Amount, ChainId, Hash, PublicKey, ShardConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most validators in a genesis file.
pub const MAX_GENESIS_VALIDATORS: usize = 300;
/// Most accounts in a genesis file.
pub const MAX_GENESIS_ACCOUNTS: usize = 1_000_000;

/// A validator known at genesis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Human-readable name (unique).
    pub name: String,
    /// Key that signs consensus votes.
    pub consensus_key: PublicKey,
    /// Key that authenticates p2p connections (separate from the consensus key).
    pub network_key: PublicKey,
    /// `host:port` where its p2p listener is reachable.
    pub p2p_address: String,
    /// Initial reputation in [0, 1] for the PRSM planner.
    #[serde(default = "default_reputation")]
    pub reputation: f64,
}

fn default_reputation() -> f64 {
    0.9
}

/// An account funded at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Account name.
    pub id: AccountId,
    /// The key bound to it.
    pub public_key: PublicKey,
    /// Initial balance.
    pub balance: Amount,
}

/// The genesis file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Network id, signed into every transaction.
    pub chain_id: ChainId,
    /// Genesis time, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Sharding configuration at height 0.
    pub shard_config: ShardConfig,
    /// PRSM strategy that places validators into committees (`hash`, `adaptive`, `workload`,
    /// `hybrid`).
    pub strategy: String,
    /// Validators.
    pub validators: Vec<GenesisValidator>,
    /// Funded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Account allowed to sign configuration changes.
    pub config_authority: AccountId,
}

/// Why a genesis file is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenesisError {
    /// A field is out of range or inconsistent.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

impl Genesis {
    /// Checks internal consistency (bounds, unique names and keys, no supply overflow).
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        self.shard_config
            .validate()
            .map_err(|e| GenesisError::Invalid(e.to_string()))?;
        if self.validators.is_empty() || self.validators.len() > MAX_GENESIS_VALIDATORS {
            return bad(format!("need 1..={MAX_GENESIS_VALIDATORS} validators"));
        }
        if self.accounts.len() > MAX_GENESIS_ACCOUNTS {
            return bad(format!("at most {MAX_GENESIS_ACCOUNTS} accounts"));
        }
        let mut names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for v in &self.validators {
            if v.name.is_empty() || v.name.len() > 64 || !names.insert(v.name.as_str()) {
                return bad(format!(
                    "validator name {:?} is empty, too long or repeated",
                    v.name
                ));
            }
            if !keys.insert(v.consensus_key) || !keys.insert(v.network_key) {
                return bad(format!("validator {} reuses a key", v.name));
            }
            if !(0.0..=1.0).contains(&v.reputation) {
                return bad(format!("validator {} reputation must be in [0, 1]", v.name));
            }
        }
        let mut ids = BTreeSet::new();
        for a in &self.accounts {
            if !ids.insert(&a.id) {
                return bad(format!("account {} listed twice", a.id));
            }
            if let Some(k) = a.id.implicit_key()
                && k != a.public_key.0
            {
                return bad(format!(
                    "implicit account {} must use the key it names",
                    a.id
                ));
            }
        }
        self.total_supply()?;
        Ok(())
    }

    /// Σ genesis balances (the supply invariant's constant).
    pub fn total_supply(&self) -> Result<Amount, GenesisError> {
        Amount::checked_sum(self.accounts.iter().map(|a| a.balance))
            .map_err(|_| GenesisError::Invalid("total supply overflows u128".into()))
    }

    /// SHA-256 of the canonical JSON: identifies the network.
    pub fn hash(&self) -> Hash {
        Hash::sha256(&serde_json::to_vec(self).expect("genesis serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    fn sample() -> Genesis {
        let k = |i: u8| SecretKey::from_seed([i; 32]).public_key();
        Genesis {
            chain_id: ChainId::new("vision-test").unwrap(),
            genesis_time_ms: 0,
            shard_config: ShardConfig::default(),
            strategy: "adaptive".into(),
            validators: vec![GenesisValidator {
                name: "v0".into(),
                consensus_key: k(1),
                network_key: k(2),
                p2p_address: "127.0.0.1:31000".into(),
                reputation: 0.9,
            }],
            accounts: vec![
                GenesisAccount {
                    id: AccountId::new("alice").unwrap(),
                    public_key: k(3),
                    balance: Amount(10),
                },
                GenesisAccount {
                    id: AccountId::new("bob").unwrap(),
                    public_key: k(4),
                    balance: Amount(5),
                },
            ],
            config_authority: AccountId::new("alice").unwrap(),
        }
    }

    #[test]
    fn validates_and_sums_supply() {
        let g = sample();
        g.validate().unwrap();
        assert_eq!(g.total_supply().unwrap(), Amount(15));
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(
            serde_json::from_str::<Genesis>(&json).unwrap().hash(),
            g.hash()
        );
    }

    #[test]
    fn rejects_inconsistencies() {
        let mut g = sample();
        g.accounts.push(g.accounts[0].clone());
        assert!(g.validate().is_err());
        let mut g = sample();
        g.validators[0].network_key = g.validators[0].consensus_key;
        assert!(g.validate().is_err());
        let mut g = sample();
        g.accounts[0].balance = Amount(u128::MAX);
        assert!(g.validate().is_err());
        let mut g = sample();
        g.accounts[0].id = AccountId::new("ab".repeat(32)).unwrap();
        assert!(g.validate().is_err(), "implicit account with another key");
    }
}
