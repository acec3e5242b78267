//! The shard mempool: bounded, deduplicated, signature-checked on admission, ordered by fee
//! (highest first) then arrival.

use commonware_codec::EncodeSize;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, HashMap},
};
use vision_types::{AccountId, Amount, Hash, SignedTransaction, batch_verify};

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
        let msgs: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
        let all_ok = batch_verify(
            txs.iter()
                .zip(&msgs)
                .map(|(t, m)| (&t.public_key, m.as_slice(), &t.signature)),
        )
        .is_ok();
        txs.into_iter()
            .map(|tx| {
                let id = tx.id();
                if !all_ok && tx.verify_signature().is_err() {
                    return Err(MempoolError::BadSignature(id));
                }
                self.admit(id, tx)
            })
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
        if self.by_id.len() >= self.cfg.max_txs || self.bytes + size > self.cfg.max_bytes {
            return Err(MempoolError::Full);
        }
        let key = (Reverse(tx.tx.fee), self.next_seq);
        self.next_seq += 1;
        self.order.insert(key, id);
        self.bytes += size;
        self.by_id.insert(id, Entry { tx, key, size });
        Ok(id)
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

    /// Removes transactions (included in a finalized block, or rejected for good).
    pub fn remove<'a>(&mut self, ids: impl IntoIterator<Item = &'a Hash>) {
        for id in ids {
            if let Some(e) = self.by_id.remove(id) {
                self.order.remove(&e.key);
                self.bytes -= e.size;
            }
        }
    }

    /// Up to `max` candidates in fee-then-arrival order, except that each signer's
    /// transactions are put in nonce order within the slots they occupy (so a higher-fee later
    /// nonce never precedes its predecessor).
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        let picked: Vec<&SignedTransaction> = self
            .order
            .values()
            .take(max)
            .map(|id| &self.by_id[id].tx)
            .collect();
        let mut by_signer: BTreeMap<&AccountId, BTreeSet<(u64, usize)>> = BTreeMap::new();
        for (i, tx) in picked.iter().enumerate() {
            by_signer
                .entry(&tx.tx.signer)
                .or_default()
                .insert((tx.tx.nonce, i));
        }
        let mut out: Vec<Option<SignedTransaction>> = vec![None; picked.len()];
        for slots in by_signer.values() {
            let mut positions: Vec<usize> = slots.iter().map(|(_, i)| *i).collect();
            positions.sort_unstable();
            for ((_, src), dst) in slots.iter().zip(positions) {
                out[dst] = Some(picked[*src].clone());
            }
        }
        out.into_iter().flatten().collect()
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
        // a1 (fee 5) first by fee, but a0 (nonce 0) takes the signer's first slot.
        let c: Vec<Hash> = m.candidates(10).iter().map(SignedTransaction::id).collect();
        assert_eq!(c, vec![a0.id(), b0.id(), a1.id()]);
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
}
