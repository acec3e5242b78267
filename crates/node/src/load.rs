//! Recent transaction load per shard and per signing account, as an API node sees it in the
//! blocks it follows: what a rebalance plan ([`vision_sharding::plan_rebalance`]) weighs.
//!
//! Load is counted in two windows of [`LOAD_WINDOW_MS`] (the current one and the one before),
//! so it reflects roughly the last one to two windows. Per-account counts are bounded by
//! [`MAX_TRACKED_ACCOUNTS`] per window: transactions of accounts beyond that still count for
//! their shard, they are just never picked to move.

use std::collections::{BTreeMap, HashMap};
use vision_sharding::{AccountLoad, LayoutKey};
use vision_types::{AccountId, ShardId};

/// Length of one load window.
pub const LOAD_WINDOW_MS: u64 = 30_000;
/// Most accounts counted per window.
pub const MAX_TRACKED_ACCOUNTS: usize = 10_000;

#[derive(Default, Clone)]
struct Window {
    start_ms: u64,
    shards: BTreeMap<ShardId, u64>,
    accounts: HashMap<AccountId, u64>,
}

/// Transactions per shard and per signer over the current and the previous window.
#[derive(Default)]
pub struct LoadTracker {
    current: Window,
    previous: Window,
}

impl LoadTracker {
    fn rotate(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.current.start_ms) < LOAD_WINDOW_MS {
            return;
        }
        let fresh = Window {
            start_ms: now_ms,
            ..Window::default()
        };
        // A gap of two windows or more leaves nothing recent.
        self.previous = if now_ms.saturating_sub(self.current.start_ms) < 2 * LOAD_WINDOW_MS {
            std::mem::replace(&mut self.current, fresh)
        } else {
            self.current = fresh;
            Window::default()
        };
    }

    /// Counts a finalized block of `shard` that included transactions signed by `signers`.
    pub fn record(&mut self, shard: ShardId, signers: &[AccountId], now_ms: u64) {
        self.rotate(now_ms);
        if signers.is_empty() {
            return;
        }
        *self.current.shards.entry(shard).or_default() += signers.len() as u64;
        for s in signers {
            if let Some(n) = self.current.accounts.get_mut(s) {
                *n += 1;
            } else if self.current.accounts.len() < MAX_TRACKED_ACCOUNTS {
                self.current.accounts.insert(s.clone(), 1);
            }
        }
    }

    /// Transactions per shard over both windows (shards with none are absent).
    pub fn shard_loads(&mut self, now_ms: u64) -> BTreeMap<ShardId, u64> {
        self.rotate(now_ms);
        let mut out = self.previous.shards.clone();
        for (s, n) in &self.current.shards {
            *out.entry(*s).or_default() += n;
        }
        out
    }

    /// Transactions per signing account over both windows, in account order.
    pub fn account_loads(&mut self, now_ms: u64) -> Vec<AccountLoad> {
        self.rotate(now_ms);
        let mut out: BTreeMap<&AccountId, u64> = BTreeMap::new();
        for w in [&self.previous, &self.current] {
            for (a, n) in &w.accounts {
                *out.entry(a).or_default() += n;
            }
        }
        out.into_iter()
            .map(|(a, load)| AccountLoad {
                key: LayoutKey::Account(a.clone()),
                load,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }

    #[test]
    fn counts_span_two_windows_and_then_expire() {
        let mut t = LoadTracker::default();
        t.record(ShardId(0), &[acct("alice"), acct("alice"), acct("bob")], 0);
        t.record(ShardId(1), &[acct("carol")], 10);
        assert_eq!(
            t.shard_loads(20),
            BTreeMap::from([(ShardId(0), 3), (ShardId(1), 1)])
        );
        // Next window: the old counts still count.
        t.record(ShardId(0), &[acct("alice")], LOAD_WINDOW_MS + 5);
        let loads = t.account_loads(LOAD_WINDOW_MS + 6);
        let alice = loads
            .iter()
            .find(|l| l.key == LayoutKey::Account(acct("alice")))
            .unwrap();
        assert_eq!(alice.load, 3);
        assert_eq!(t.shard_loads(LOAD_WINDOW_MS + 6)[&ShardId(0)], 4);
        // Two windows later the first block is forgotten.
        assert_eq!(
            t.shard_loads(2 * LOAD_WINDOW_MS + 10),
            BTreeMap::from([(ShardId(0), 1)])
        );
        // A long silence forgets everything.
        assert!(t.shard_loads(10 * LOAD_WINDOW_MS).is_empty());
        assert!(t.account_loads(10 * LOAD_WINDOW_MS).is_empty());
    }

    #[test]
    fn accounts_beyond_the_bound_count_for_their_shard_only() {
        let mut t = LoadTracker::default();
        let many: Vec<AccountId> = (0..MAX_TRACKED_ACCOUNTS + 5)
            .map(|i| acct(&format!("user{i}")))
            .collect();
        t.record(ShardId(2), &many, 1);
        assert_eq!(t.account_loads(2).len(), MAX_TRACKED_ACCOUNTS);
        assert_eq!(
            t.shard_loads(2)[&ShardId(2)],
            (MAX_TRACKED_ACCOUNTS + 5) as u64
        );
    }
}
