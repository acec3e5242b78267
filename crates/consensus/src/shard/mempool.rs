//! The shard mempool: bounded, deduplicated, signature-checked on admission, ordered by fee
//! (highest first) then arrival, with each signer's transactions kept in nonce order.
//!
//! Two rules keep a full or reordered pool live. A block's candidates follow fee-then-arrival
//! order, but a transaction brings its signer's pending predecessors with it (in nonce
//! order), so a predecessor that arrived late, after many other transactions, is a candidate
//! together with its successors instead of waiting behind all of them. And when the pool is
//! full, a transaction that precedes some pending transaction of its signer takes the place
//! of that signer's last one: otherwise a pool filled with successors would refuse the very
//! predecessor they wait for, for good.
//!
//! A gap in a signer's pending nonces is not treated as a hole: the pool does not know the
//! committed nonces, and the transaction below a gap may be a stale one (already executed,
//! admitted again from a resend) that the next block drops as a replay.

use commonware_codec::EncodeSize;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, HashMap},
};
use vision_types::{AccountId, Amount, Hash, SignedTransaction, Verified, verify_all};

/// Why a transaction was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The pool holds its maximum number of transactions or bytes.
    #[error("mempool is full")]
    Full,
    /// A transaction with this id is already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(Hash),
    /// The signature does not verify.
    #[error("invalid signature on transaction {0}")]
    BadSignature(Hash),
    /// A single transaction larger than the whole byte budget.
    #[error("transaction is larger than the mempool")]
    TooLarge,
}

/// Mempool bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most pending transactions.
    pub max_txs: usize,
    /// Most pending bytes (sum of encoded transaction sizes).
    pub max_bytes: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 50_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

struct Entry {
    tx: SignedTransaction,
    key: (Reverse<Amount>, u64),
    size: usize,
}

/// Pending transactions of one shard.
pub struct Mempool {
    cfg: MempoolConfig,
    by_id: HashMap<Hash, Entry>,
    order: BTreeMap<(Reverse<Amount>, u64), Hash>,
    bytes: usize,
    next_seq: u64,
    /// Pending `(nonce, id)` of each signer.
    by_signer: HashMap<AccountId, BTreeSet<(u64, Hash)>>,
}

impl Mempool {
    /// An empty pool.
    pub fn new(cfg: MempoolConfig) -> Self {
        Self {
            cfg,
            by_id: HashMap::new(),
            order: BTreeMap::new(),
            bytes: 0,
            next_seq: 0,
            by_signer: HashMap::new(),
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Pending bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether exactly `tx` (same id, key and signature) is pending: its signature was
    /// verified on admission.
    pub fn holds(&self, tx: &SignedTransaction) -> bool {
        self.by_id
            .get(&tx.id())
            .is_some_and(|e| e.tx.public_key == tx.public_key && e.tx.signature == tx.signature)
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.by_id.contains_key(id)
    }

    /// Admits one transaction (checks its signature).
    pub fn insert(&mut self, tx: SignedTransaction) -> Result<Hash, MempoolError> {
        let id = tx.id();
        if tx.verify_signature().is_err() {
            return Err(MempoolError::BadSignature(id));
        }
        self.admit(id, tx)
    }

    /// Admits many transactions: one batch signature verification, falling back to one by one
    /// to find the culprits only if the batch fails. One result per transaction, in order.
    /// Transactions already pending are answered `Duplicate` without verifying again.
    pub fn insert_batch(&mut self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, MempoolError>> {
        let (known, fresh): (Vec<_>, Vec<_>) = txs
            .into_iter()
            .enumerate()
            .partition(|(_, t)| self.by_id.contains_key(&t.id()));
        let mut out: Vec<Option<Result<Hash, MempoolError>>> =
            vec![None; known.len() + fresh.len()];
        for (i, t) in known {
            out[i] = Some(Err(MempoolError::Duplicate(t.id())));
        }
        let (idx, fresh): (Vec<usize>, Vec<SignedTransaction>) = fresh.into_iter().unzip();
        for (i, r) in idx.into_iter().zip(self.insert_fresh(fresh)) {
            out[i] = Some(r);
        }
        out.into_iter().flatten().collect()
    }

    fn insert_fresh(&mut self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, MempoolError>> {
        verify_all(txs)
            .into_iter()
            .map(|r| match r {
                Ok(tx) => self.admit(tx.id(), tx.into_inner()),
                Err((tx, _)) => Err(MempoolError::BadSignature(tx.id())),
            })
            .collect()
    }

    /// Admits transactions whose signatures were already verified in this process (the API
    /// node's HTTP layer batch-verifies what it receives): no verification here. One result
    /// per transaction, in order.
    pub fn insert_verified(&mut self, txs: Vec<Verified>) -> Vec<Result<Hash, MempoolError>> {
        txs.into_iter()
            .map(|tx| self.admit(tx.id(), tx.into_inner()))
            .collect()
    }

    fn admit(&mut self, id: Hash, tx: SignedTransaction) -> Result<Hash, MempoolError> {
        if self.by_id.contains_key(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let size = tx.encode_size();
        if size > self.cfg.max_bytes {
            return Err(MempoolError::TooLarge);
        }
        if !self.fits(size) && !self.make_room(&tx, size) {
            return Err(MempoolError::Full);
        }
        let key = (Reverse(tx.tx.fee), self.next_seq);
        self.next_seq += 1;
        self.order.insert(key, id);
        self.bytes += size;
        self.by_signer
            .entry(tx.tx.signer.clone())
            .or_default()
            .insert((tx.tx.nonce, id));
        self.by_id.insert(id, Entry { tx, key, size });
        Ok(id)
    }

    fn fits(&self, size: usize) -> bool {
        self.by_id.len() < self.cfg.max_txs && self.bytes + size <= self.cfg.max_bytes
    }

    /// In a full pool, evicts the last pending transactions of `tx`'s signer that come after
    /// it, if that makes room for it (see the module docs); otherwise evicts nothing.
    fn make_room(&mut self, tx: &SignedTransaction, size: usize) -> bool {
        let Some(pending) = self.by_signer.get(&tx.tx.signer) else {
            return false;
        };
        let mut evict = Vec::new();
        let (mut count, mut bytes) = (self.by_id.len(), self.bytes);
        for (nonce, id) in pending.iter().rev() {
            if count < self.cfg.max_txs && bytes + size <= self.cfg.max_bytes {
                break;
            }
            if *nonce <= tx.tx.nonce {
                return false;
            }
            evict.push(*id);
            count -= 1;
            bytes -= self.by_id[id].size;
        }
        if count >= self.cfg.max_txs || bytes + size > self.cfg.max_bytes {
            return false;
        }
        self.remove(&evict);
        true
    }

    /// The arrival number the next admitted transaction gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Up to `max` transactions admitted with arrival numbers in `from..to`, in arrival order.
    pub fn admitted_between(&self, from: u64, to: u64, max: usize) -> Vec<SignedTransaction> {
        let mut picked: Vec<(u64, &SignedTransaction)> = self
            .by_id
            .values()
            .filter(|e| (from..to).contains(&e.key.1))
            .map(|e| (e.key.1, &e.tx))
            .collect();
        picked.sort_unstable_by_key(|(seq, _)| *seq);
        picked
            .into_iter()
            .take(max)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Drops every transaction admitted before arrival number `seq`; returns how many.
    pub fn expire_before(&mut self, seq: u64) -> usize {
        let old: Vec<Hash> = self
            .by_id
            .iter()
            .filter(|(_, e)| e.key.1 < seq)
            .map(|(id, _)| *id)
            .collect();
        self.remove(&old);
        old.len()
    }

    /// Removes and returns every pending transaction of `signer`, in nonce order (an account
    /// that moved to another shard takes them along).
    pub fn take_signer(&mut self, signer: &AccountId) -> Vec<SignedTransaction> {
        let ids: Vec<Hash> = self
            .by_signer
            .get(signer)
            .map(|p| p.iter().map(|(_, id)| *id).collect())
            .unwrap_or_default();
        let txs = ids
            .iter()
            .filter_map(|id| self.by_id.get(id).map(|e| e.tx.clone()))
            .collect();
        self.remove(&ids);
        txs
    }

    /// Removes transactions (included in a finalized block, or rejected for good).
    pub fn remove<'a>(&mut self, ids: impl IntoIterator<Item = &'a Hash>) {
        for id in ids {
            if let Some(e) = self.by_id.remove(id) {
                self.order.remove(&e.key);
                self.bytes -= e.size;
                let signer = &e.tx.tx.signer;
                if let Some(pending) = self.by_signer.get_mut(signer) {
                    pending.remove(&(e.tx.tx.nonce, *id));
                    if pending.is_empty() {
                        self.by_signer.remove(signer);
                    }
                }
            }
        }
    }

    /// Up to `max` candidates for a block: in fee-then-arrival order, where a transaction
    /// comes with its signer's pending predecessors first (from the signer's lowest pending
    /// nonce on, in nonce order; see the module docs).
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        let mut out = Vec::new();
        // Per signer: the lowest nonce not taken yet.
        let mut next: HashMap<&AccountId, u64> = HashMap::new();
        for id in self.order.values() {
            if out.len() >= max {
                break;
            }
            let tx = &self.by_id[id].tx;
            let signer = &tx.tx.signer;
            let from = next.get(signer).copied().unwrap_or(0);
            if tx.tx.nonce < from {
                continue;
            }
            for (nonce, id) in self.by_signer[signer].range((from, Hash::ZERO)..) {
                if *nonce > tx.tx.nonce || out.len() >= max {
                    break;
                }
                out.push(self.by_id[id].tx.clone());
            }
            next.insert(signer, tx.tx.nonce.saturating_add(1));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vision_types::{Action, ChainId, SecretKey, Transaction};

    fn tx(seed: u8, nonce: u64, fee: u128) -> SignedTransaction {
        let key = SecretKey::from_seed([seed; 32]);
        Transaction {
            chain_id: ChainId::new("simnet").unwrap(),
            signer: AccountId::implicit(&key.public_key()),
            nonce,
            fee: Amount(fee),
            action: Action::Transfer {
                to: AccountId::new("bob").unwrap(),
                amount: Amount(1),
                priority: 0,
            },
        }
        .sign(&key)
    }

    #[test]
    fn order_dedup_bounds_and_signatures() {
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 3,
            max_bytes: 1 << 20,
        });
        let a0 = tx(1, 0, 1);
        let a1 = tx(1, 1, 5);
        let b0 = tx(2, 0, 3);
        let res = m.insert_batch(vec![a0.clone(), a1.clone(), b0.clone()]);
        assert!(res.iter().all(Result::is_ok));
        assert_eq!(m.insert(a0.clone()), Err(MempoolError::Duplicate(a0.id())));
        assert_eq!(m.insert(tx(4, 0, 1)), Err(MempoolError::Full));
        m.remove([&a1.id()]);
        assert_eq!(m.insert(a0.clone()), Err(MempoolError::Duplicate(a0.id())));
        let mut bad = tx(3, 0, 9);
        bad.signature = a0.signature;
        let res = m.insert_batch(vec![bad.clone(), a1.clone()]);
        assert_eq!(res[0], Err(MempoolError::BadSignature(bad.id())));
        assert!(res[1].is_ok());
        // a1 (fee 5) first by fee, bringing its predecessor a0 (nonce 0) with it; then b0.
        let c: Vec<Hash> = m.candidates(10).iter().map(SignedTransaction::id).collect();
        assert_eq!(c, vec![a0.id(), a1.id(), b0.id()]);
        // Only the exact admitted bytes count as verified: same id, another signature does not.
        assert!(m.holds(&a0));
        let mut forged = a0.clone();
        forged.signature = b0.signature;
        assert_eq!(forged.id(), a0.id());
        assert!(!m.holds(&forged));
        assert!(!m.holds(&tx(5, 0, 1)));
        m.remove([&a0.id(), &a1.id(), &b0.id()]);
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
        let mut small = Mempool::new(MempoolConfig {
            max_txs: 10,
            max_bytes: 10,
        });
        assert_eq!(small.insert(a0), Err(MempoolError::TooLarge));
    }

    fn ids(txs: &[SignedTransaction]) -> Vec<Hash> {
        txs.iter().map(SignedTransaction::id).collect()
    }

    /// A predecessor that arrives after its successors (and after other signers'
    /// transactions) still comes first, with its successors right behind it.
    #[test]
    fn late_predecessors_lead_their_successors() {
        let mut m = Mempool::new(MempoolConfig::default());
        // Signer 1's nonces 1..=20 arrive first, then signer 2's nonce 0, then signer 1's 0.
        let a: Vec<SignedTransaction> = (0..=20).map(|n| tx(1, n, 1)).collect();
        let b0 = tx(2, 0, 1);
        assert!(m.insert_batch(a[1..].to_vec()).iter().all(Result::is_ok));
        assert!(m.insert(b0.clone()).is_ok());
        assert_eq!(ids(&m.candidates(5)), ids(&a[1..6]));
        assert!(m.insert(a[0].clone()).is_ok());
        // Now nonce 0 leads, though it arrived last, and the run follows in nonce order.
        assert_eq!(ids(&m.candidates(3)), ids(&a[0..3]));
        let all = m.candidates(100);
        assert_eq!(all.len(), 22);
        assert_eq!(ids(&all[..21]), ids(&a));
        assert_eq!(all[21].id(), b0.id());
        // A gap does not stop the run (the state decides what executes): 6..=20 stay
        // candidates without 5.
        m.remove([&a[5].id()]);
        let c = m.candidates(100);
        assert_eq!(
            ids(&c),
            [ids(&a[..5]), ids(&a[6..]), vec![b0.id()]].concat()
        );
    }

    /// A full pool admits a transaction that precedes pending ones of its signer by evicting
    /// that signer's last ones, and refuses everything else.
    #[test]
    fn a_full_pool_makes_room_for_a_missing_predecessor() {
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 3,
            max_bytes: 1 << 20,
        });
        let a: Vec<SignedTransaction> = (0..4).map(|n| tx(1, n, 1)).collect();
        assert!(m.insert_batch(a[1..].to_vec()).iter().all(Result::is_ok));
        // Another signer, or a later nonce of the same one: full.
        assert_eq!(m.insert(tx(2, 0, 9)), Err(MempoolError::Full));
        assert_eq!(m.insert(tx(1, 4, 9)), Err(MempoolError::Full));
        // The missing nonce 0 takes the place of nonce 3.
        assert!(m.insert(a[0].clone()).is_ok());
        assert_eq!(m.len(), 3);
        assert!(!m.contains(&a[3].id()));
        assert_eq!(ids(&m.candidates(10)), ids(&a[..3]));
        // Bytes, too: a pool full by bytes evicts as many successors as it takes.
        let size = a[0].encode_size();
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 100,
            max_bytes: 3 * size,
        });
        assert!(m.insert_batch(a[1..].to_vec()).iter().all(Result::is_ok));
        assert!(m.insert(a[0].clone()).is_ok());
        assert!(m.bytes() <= 3 * size);
        assert!(m.contains(&a[0].id()) && !m.contains(&a[3].id()));
    }
}
