//! Supply accounting: coin is never created or destroyed except by genesis and burned fees.
//!
//! Per shard, at every height:
//!
//! `Σ balances (accounts + contracts) + burned + unclaimed + sent − received = genesis`
//!
//! where `sent` / `received` are the cumulative amounts of receipts emitted / applied. Across
//! shards `Σ sent − Σ received` is exactly the coin in flight (emitted, not yet applied), so
//! the global invariant `total supply = Σ balances + Σ in-flight + burned fees` follows.

use crate::{
    keys::{self, Counter},
    model::{Account, ContractMeta, MigratingMark, dec, dec_json},
    view::{StateReadExt, StateView, WriteSet},
};
use vision_types::Amount;

/// A shard's supply ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Supply {
    /// Σ balances of accounts and contracts (and coin held for accounts moving in).
    pub balances: u128,
    /// Σ fees burned.
    pub burned: u128,
    /// Σ amounts that could not be returned anywhere.
    pub unclaimed: u128,
    /// Σ receipt amounts emitted.
    pub sent: u128,
    /// Σ receipt amounts applied.
    pub received: u128,
    /// Σ genesis balances.
    pub genesis: u128,
}

impl Supply {
    /// Reads the ledger of a shard (scans every account and contract).
    pub fn of(view: &dyn StateView) -> Supply {
        Supply {
            balances: view.total_balances().0,
            burned: view.counter(Counter::Burned),
            unclaimed: view.counter(Counter::Unclaimed),
            sent: view.counter(Counter::Sent),
            received: view.counter(Counter::Received),
            genesis: view.counter(Counter::GenesisSupply),
        }
    }

    /// Whether the shard's ledger balances.
    pub fn balanced(&self) -> bool {
        let lhs = self.balances as i128 + self.burned as i128 + self.unclaimed as i128
            - self.received as i128
            + self.sent as i128;
        lhs == self.genesis as i128
    }
}

/// Checks that a write set conserves coin: the change of Σ balances plus the changes of the
/// burned, unclaimed and sent counters minus the change of received is zero. Costs
/// O(|writes|); run after every block in debug builds.
pub fn conserves(base: &dyn StateView, writes: &WriteSet) -> bool {
    let mut delta: i128 = 0;
    for (k, new) in writes {
        let old = base.get(k);
        let value = |b: &Option<Vec<u8>>| -> i128 {
            let Some(b) = b else { return 0 };
            match k.first() {
                Some(&keys::TAG_ACCOUNT) => dec::<Account>(b).balance.0 as i128,
                Some(&keys::TAG_CONTRACT) => dec_json::<ContractMeta>(b).balance.0 as i128,
                Some(&keys::TAG_MIGRATING) => dec::<MigratingMark>(b).held.0 as i128,
                Some(&keys::TAG_COUNTER) => {
                    let v = dec::<u128>(b) as i128;
                    match k.get(1).copied() {
                        Some(c) if c == Counter::Burned as u8 => v,
                        Some(c) if c == Counter::Unclaimed as u8 => v,
                        Some(c) if c == Counter::Sent as u8 => v,
                        Some(c) if c == Counter::Received as u8 => -v,
                        _ => 0,
                    }
                }
                _ => 0,
            }
        };
        delta += value(new) - value(&old);
    }
    delta == 0
}

/// Σ of a list of amounts as u128 (helper for harnesses).
pub fn sum(amounts: impl IntoIterator<Item = Amount>) -> u128 {
    amounts.into_iter().map(|a| a.0).sum()
}
