//! The transactions a scenario submits: which account sends what to whom (pure, deterministic),
//! and signing them all before the measured window (on every core).

use crate::netgen::{DevAccount, paths};
use anyhow::{Context, bail};
use bytes::Bytes;
use serde::Serialize;
use std::path::Path;
use vision_types::{
    AccountId, Action, Amount, ChainId, Hash, SecretKey, SignedTransaction, Transaction,
};

/// Fee of every bench transaction.
pub const BENCH_FEE: u128 = 1;
/// Amount of every bench transfer.
pub const BENCH_AMOUNT: u128 = 1;
/// Most transactions one scenario step signs (bounds the client's memory).
pub const MAX_PLANNED_TXS: usize = 2_000_000;

/// A funded bench account the client signs for.
#[derive(Clone)]
pub struct BenchAccount {
    /// Account id (the implicit 64-hex id of its key).
    pub id: AccountId,
    /// Its shard.
    pub shard: u32,
    /// Its key.
    pub key: SecretKey,
}

/// Reads the bench accounts (with their keys) from a devnet directory's `accounts.json`.
pub fn load_accounts(dir: &Path) -> anyhow::Result<Vec<BenchAccount>> {
    let path = dir.join(paths::ACCOUNTS);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let all: Vec<DevAccount> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut out = Vec::new();
    for a in all.into_iter().filter(|a| a.kind == "bench") {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&a.secret_key, &mut seed)
            .with_context(|| format!("{}: secret key of {}", path.display(), a.id))?;
        let key = SecretKey::from_seed(seed);
        if key.public_key() != a.public_key {
            bail!("{}: the key of {} does not match", path.display(), a.id);
        }
        out.push(BenchAccount {
            id: a.id,
            shard: a.shard,
            key,
        });
    }
    if out.is_empty() {
        bail!(
            "{} has no bench accounts (generate the devnet with --bench-accounts N)",
            path.display()
        );
    }
    Ok(out)
}

/// Whether a transfer stays on its shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// Sender and recipient on one shard: complete when its block is final.
    Intra,
    /// Recipient on another shard: complete when the receipt is applied there.
    Cross,
}

/// One planned transfer: indexes into the account list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedTx {
    /// Sender.
    pub from: usize,
    /// Recipient.
    pub to: usize,
    /// Nonce.
    pub nonce: u64,
    /// Intra- or cross-shard.
    pub kind: TxKind,
}

/// Plans `count` transfers. Senders take turns (transaction `i` is sent by account
/// `i mod A`, so one account's consecutive nonces are `A` transactions apart and land in
/// different request batches); exactly `⌊i × cross_ratio⌋` of the first `i` are cross-shard,
/// spread evenly; recipients rotate over the accounts of the sender's shard (intra) or of the
/// other shards (cross). `nonces[a]` is account `a`'s next nonce. With one shard every
/// transfer is intra-shard.
pub fn plan(accounts: &[u32], nonces: &[u64], count: usize, cross_ratio: f64) -> Vec<PlannedTx> {
    assert_eq!(accounts.len(), nonces.len(), "one nonce per account");
    assert!(!accounts.is_empty(), "at least one account");
    let mut by_shard: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, &s) in accounts.iter().enumerate() {
        by_shard.entry(s).or_default().push(i);
    }
    let others: std::collections::BTreeMap<u32, Vec<usize>> = by_shard
        .keys()
        .map(|&s| {
            let o: Vec<usize> = (0..accounts.len()).filter(|&i| accounts[i] != s).collect();
            (s, o)
        })
        .collect();
    let ratio = if by_shard.len() < 2 {
        0.0
    } else {
        cross_ratio.clamp(0.0, 1.0)
    };
    let n = accounts.len();
    (0..count)
        .map(|i| {
            let from = i % n;
            let round = i / n;
            let nonce = nonces[from] + round as u64;
            let cross = ((i + 1) as f64 * ratio).floor() > (i as f64 * ratio).floor();
            let shard = accounts[from];
            let (kind, pool) = if cross {
                (TxKind::Cross, &others[&shard])
            } else {
                (TxKind::Intra, &by_shard[&shard])
            };
            // Rotate so the same pair does not repeat every round.
            let mut to = pool[(from + round + 1) % pool.len()];
            if to == from && pool.len() > 1 {
                to = pool[(from + round + 2) % pool.len()];
            }
            PlannedTx {
                from,
                to,
                nonce,
                kind,
            }
        })
        .collect()
}

/// A signed transaction with its id and kind.
#[derive(Clone)]
pub struct ReadyTx {
    /// Transaction id.
    pub id: Hash,
    /// Intra- or cross-shard.
    pub kind: TxKind,
    /// The signed transaction.
    pub tx: SignedTransaction,
}

/// Signs `planned` on `threads` threads, keeping the order.
pub fn sign_all(
    accounts: &[BenchAccount],
    planned: &[PlannedTx],
    chain_id: &ChainId,
    threads: usize,
) -> Vec<ReadyTx> {
    let threads = threads.max(1);
    let chunk = planned.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = planned
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|p| {
                            let tx = Transaction {
                                chain_id: chain_id.clone(),
                                signer: accounts[p.from].id.clone(),
                                nonce: p.nonce,
                                fee: Amount(BENCH_FEE),
                                action: Action::Transfer {
                                    to: accounts[p.to].id.clone(),
                                    amount: Amount(BENCH_AMOUNT),
                                    priority: 0,
                                },
                            };
                            let tx = tx.sign(&accounts[p.from].key);
                            ReadyTx {
                                id: tx.id(),
                                kind: p.kind,
                                tx,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

/// The body of one `POST /tx/batch`: `{"txs": [...]}`.
pub fn batch_body(txs: &[ReadyTx]) -> Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        txs: Vec<&'a SignedTransaction>,
    }
    let body = Body {
        txs: txs.iter().map(|t| &t.tx).collect(),
    };
    Bytes::from(serde_json::to_vec(&body).expect("transactions serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_mixes_exactly_and_keeps_nonces_in_order() {
        // Six accounts on three shards.
        let shards = [0, 1, 2, 0, 1, 2];
        let nonces = [5, 0, 0, 0, 0, 7];
        let p = plan(&shards, &nonces, 600, 0.25);
        assert_eq!(p.len(), 600);
        let cross = p.iter().filter(|t| t.kind == TxKind::Cross).count();
        assert_eq!(cross, 150);
        for t in &p {
            match t.kind {
                TxKind::Cross => assert_ne!(shards[t.from], shards[t.to]),
                TxKind::Intra => assert_eq!(shards[t.from], shards[t.to]),
            }
            assert_ne!(t.from, t.to, "never to itself when another account exists");
        }
        // Each sender's nonces are consecutive from its next nonce, in plan order.
        for (a, &first) in nonces.iter().enumerate() {
            let ns: Vec<u64> = p.iter().filter(|t| t.from == a).map(|t| t.nonce).collect();
            let want: Vec<u64> = (first..first + 100).collect();
            assert_eq!(ns, want);
        }
        // Deterministic.
        assert_eq!(p, plan(&shards, &nonces, 600, 0.25));
    }

    #[test]
    fn one_shard_is_all_intra() {
        let p = plan(&[0, 0, 0], &[0, 0, 0], 30, 0.9);
        assert!(p.iter().all(|t| t.kind == TxKind::Intra));
        let all_cross = plan(&[0, 1], &[0, 0], 10, 1.0);
        assert!(all_cross.iter().all(|t| t.kind == TxKind::Cross));
    }

    #[test]
    fn signed_in_order_and_batched() {
        let accounts: Vec<BenchAccount> = (0..4u8)
            .map(|i| {
                let key = SecretKey::from_seed([i + 1; 32]);
                BenchAccount {
                    id: AccountId::implicit(&key.public_key()),
                    shard: u32::from(i % 2),
                    key,
                }
            })
            .collect();
        let shards: Vec<u32> = accounts.iter().map(|a| a.shard).collect();
        let planned = plan(&shards, &[0; 4], 10, 0.5);
        let chain = ChainId::new("vision-bench").expect("chain id");
        let ready = sign_all(&accounts, &planned, &chain, 3);
        assert_eq!(ready.len(), 10);
        for (r, p) in ready.iter().zip(&planned) {
            assert_eq!(r.tx.tx.nonce, p.nonce);
            assert_eq!(r.tx.tx.signer, accounts[p.from].id);
            assert_eq!(r.id, r.tx.id());
            assert!(r.tx.verify_signature().is_ok());
        }
        let body: serde_json::Value =
            serde_json::from_slice(&batch_body(&ready[..3])).expect("json");
        assert_eq!(body["txs"].as_array().map(Vec::len), Some(3));
        assert_eq!(body["txs"][0]["tx"]["nonce"], serde_json::json!(0));
    }
}
