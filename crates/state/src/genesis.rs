//! A shard's initial state.

use crate::{
    exec::ShardOf,
    keys::{self, Counter},
    model::{Account, ChainMeta, enc},
    view::WriteSet,
};
use std::collections::BTreeSet;
use vision_types::{AccountId, Amount, ContractId, PublicKey, ShardId};

/// A genesis account list is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// An account appears twice.
    #[error("duplicate genesis account {0}")]
    Duplicate(AccountId),
    /// An implicit account's name does not spell its key, or the name is reserved.
    #[error("genesis account {0} does not match its key or uses a reserved name")]
    BadName(AccountId),
    /// The balances overflow.
    #[error("genesis supply overflows")]
    Overflow,
}

/// The initial state of `shard`: the accounts of `accounts` that live on it (per `layout`),
/// the shard's genesis supply counter, and chain meta at height 0 with `timestamp_ms`.
///
/// Every shard must be given the same full list so duplicate checks agree.
pub fn genesis(
    shard: ShardId,
    layout: &dyn ShardOf,
    accounts: &[(AccountId, PublicKey, Amount)],
    timestamp_ms: u64,
) -> Result<WriteSet, GenesisError> {
    let mut seen = BTreeSet::new();
    let mut total = Amount::ZERO;
    let mut w = WriteSet::new();
    for (id, pk, balance) in accounts {
        if !seen.insert(id.clone()) {
            return Err(GenesisError::Duplicate(id.clone()));
        }
        let implicit_ok = id.implicit_key().is_none_or(|k| k == pk.0);
        if !implicit_ok || id.as_str().starts_with(ContractId::PREFIX) {
            return Err(GenesisError::BadName(id.clone()));
        }
        if layout.shard_of_account(id) != shard {
            continue;
        }
        total = total
            .checked_add(*balance)
            .map_err(|_| GenesisError::Overflow)?;
        w.insert(
            keys::account(id),
            Some(enc(&Account {
                balance: *balance,
                nonce: 0,
                public_key: *pk,
            })),
        );
    }
    w.insert(keys::counter(Counter::GenesisSupply), Some(enc(&total.0)));
    w.insert(
        keys::chain_meta(),
        Some(enc(&ChainMeta {
            height: 0,
            timestamp_ms,
            beacon_height: 0,
        })),
    );
    Ok(w)
}
