//! The signature-verification ceiling: how many transactions per second this machine could
//! finalize if verifying transaction signatures were the only work.
//!
//! # Verifications per transaction
//!
//! Counted from the code (`vision-api` routes, `vision-consensus` shard mempool, application
//! and relay, `vision-state` execution), for a transaction submitted to the devnet's API node
//! and a shard committee of `V` validators:
//!
//! | where | what | count |
//! |---|---|---|
//! | API node, HTTP layer | `POST /tx/batch` batch-verifies the body (`verify_all`); the API node's pool then admits the [`vision_types::Verified`] transactions without verifying again | 1 batch |
//! | each shard validator | relayed into its mempool (`insert_batch`) | `V` batch |
//! | the proposer | `build_block` skips transactions its pool holds (same bytes, verified on admission) | 0 |
//! | the other validators | `verify` runs `execute_block`, which skips what their pools hold | 0 |
//! | API node, follower | executes the finalized block; its pool still holds the transaction | 0 |
//!
//! So `V + 1` batch verifications per transaction (a transaction sent alone to `POST /tx` is
//! verified alone once instead of in a batch); with `r_single` and `r_batch` the per-core rates
//! and `C` cores:
//!
//! ```text
//! ceiling_tps = C / (single / r_single + (V + 1) / r_batch)    (single = 0 for batches)
//! ```
//!
//! Not counted (so the real ceiling is lower): consensus votes and certificates (per block,
//! not per transaction); a block that reaches a replica before the relay forwarded its
//! transactions there (that replica verifies them in `execute_block`); a replica re-executing
//! blocks after a restart. Cross-shard receipts carry Merkle proofs, not signatures.

use serde::Serialize;
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};
use vision_types::{PublicKey, SecretKey, Signature, batch_verify};

/// Signatures per batch when measuring batch verification (about a relayed chunk or a block).
pub const MEASURE_BATCH_SIZE: usize = 64;
/// Distinct signed messages the measurement cycles through.
const MEASURE_MESSAGES: usize = 256;

/// Measured ed25519 verification rates on this machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyRates {
    /// Cores used (one thread each).
    pub cores: usize,
    /// Single verifications per second per core.
    pub single_per_core_per_s: f64,
    /// Batch verifications (signatures per second, batches of [`Self::batch_size`]) per core.
    pub batch_per_core_per_s: f64,
    /// Signatures per batch.
    pub batch_size: usize,
    /// How long each of the two measurements ran, in seconds.
    pub duration_s: f64,
    /// The machine's 1-minute load average when measuring (other work lowers the rates).
    pub load_avg_1m: f64,
}

/// Signature verifications one transaction costs across the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyCount {
    /// Validators per shard committee (`V`).
    pub validators_per_shard: u64,
    /// Single verifications (none for transactions sent in batches).
    pub single: u64,
    /// Batch verifications (`V + 1`).
    pub batch: u64,
}

impl VerifyCount {
    /// The count for committees of `validators_per_shard` (see the module docs).
    pub fn for_committee(validators_per_shard: u64) -> VerifyCount {
        VerifyCount {
            validators_per_shard,
            single: 0,
            batch: validators_per_shard + 1,
        }
    }

    /// Single and batch verifications together.
    pub fn total(&self) -> u64 {
        self.single + self.batch
    }
}

/// The ceiling and how it was computed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ceiling {
    /// The measured rates.
    pub rates: VerifyRates,
    /// Verifications per transaction.
    pub per_tx: VerifyCount,
    /// Core-seconds of verification per transaction.
    pub core_s_per_tx: f64,
    /// `cores ÷ core_s_per_tx`.
    pub ceiling_tps: f64,
    /// The formula, in words.
    pub formula: String,
}

/// The ceiling for `rates` and `per_tx` (pure arithmetic).
pub fn ceiling(rates: &VerifyRates, per_tx: &VerifyCount) -> Ceiling {
    let core_s_per_tx = per_tx.single as f64 / rates.single_per_core_per_s.max(f64::MIN_POSITIVE)
        + per_tx.batch as f64 / rates.batch_per_core_per_s.max(f64::MIN_POSITIVE);
    let ceiling_tps = rates.cores as f64 / core_s_per_tx;
    let v = per_tx.validators_per_shard;
    Ceiling {
        rates: rates.clone(),
        per_tx: per_tx.clone(),
        core_s_per_tx,
        ceiling_tps,
        formula: format!(
            "ceiling = cores / (single / single_rate + batch / batch_rate) = {} / ({} / {:.0} + \
             {} / {:.0}) = {:.0} tx/s; per tx: V+1 = {} batch (API HTTP layer 1, V={v} \
             validator mempools; proposer, verifiers and API follower skip what their pools \
             verified)",
            rates.cores,
            per_tx.single,
            rates.single_per_core_per_s,
            per_tx.batch,
            rates.batch_per_core_per_s,
            ceiling_tps,
            per_tx.batch
        ),
    }
}

/// Measures single and batch verification on `cores` threads for `duration` each.
pub fn measure(cores: usize, duration: Duration) -> VerifyRates {
    let key = SecretKey::from_seed([7; 32]);
    let pk = key.public_key();
    let msgs: Vec<Vec<u8>> = (0..MEASURE_MESSAGES)
        .map(|i| format!("vision bench verify {i}").into_bytes())
        .collect();
    let sigs: Vec<Signature> = msgs.iter().map(|m| key.sign(m)).collect();
    let cores = cores.max(1);
    let load_avg_1m = super::procstat::load_avg_1m();
    let run = |batch: bool| -> f64 {
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let workers: Vec<_> = (0..cores)
                .map(|t| {
                    let (msgs, sigs, stop) = (&msgs, &sigs, &stop);
                    s.spawn(move || verify_loop(&pk, msgs, sigs, stop, batch, t))
                })
                .collect();
            std::thread::sleep(duration);
            stop.store(true, Ordering::Relaxed);
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        total as f64 / start.elapsed().as_secs_f64() / cores as f64
    };
    let single = run(false);
    let batch = run(true);
    VerifyRates {
        cores,
        single_per_core_per_s: single,
        batch_per_core_per_s: batch,
        batch_size: MEASURE_BATCH_SIZE,
        duration_s: duration.as_secs_f64(),
        load_avg_1m,
    }
}

/// Verifies until `stop`; returns the signatures verified.
fn verify_loop(
    pk: &PublicKey,
    msgs: &[Vec<u8>],
    sigs: &[Signature],
    stop: &AtomicBool,
    batch: bool,
    offset: usize,
) -> u64 {
    let mut done = 0u64;
    let mut i = offset * 31;
    while !stop.load(Ordering::Relaxed) {
        if batch {
            let items = (0..MEASURE_BATCH_SIZE).map(|j| {
                let k = (i + j) % msgs.len();
                (pk, msgs[k].as_slice(), &sigs[k])
            });
            let ok = batch_verify(items).is_ok();
            assert!(ok, "valid signatures verify");
            done += MEASURE_BATCH_SIZE as u64;
            i += MEASURE_BATCH_SIZE;
        } else {
            let k = i % msgs.len();
            assert!(
                pk.verify(&msgs[k], &sigs[k]).is_ok(),
                "valid signature verifies"
            );
            done += 1;
            i += 1;
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_per_transaction() {
        let c = VerifyCount::for_committee(4);
        assert_eq!((c.single, c.batch, c.total()), (0, 5, 5));
        assert_eq!(VerifyCount::for_committee(3).batch, 4);
    }

    #[test]
    fn ceiling_arithmetic() {
        let rates = VerifyRates {
            cores: 2,
            single_per_core_per_s: 10_000.0,
            batch_per_core_per_s: 20_000.0,
            batch_size: 64,
            duration_s: 1.0,
            load_avg_1m: 0.0,
        };
        let c = ceiling(&rates, &VerifyCount::for_committee(4));
        // 0/10000 + 5/20000 = 0.00025 core-s per tx; 2 cores → 8000 tx/s.
        assert!((c.core_s_per_tx - 0.00025).abs() < 1e-12);
        assert!((c.ceiling_tps - 8000.0).abs() < 0.01);
        assert!(c.formula.contains("8000 tx/s"), "{}", c.formula);
        let single = VerifyCount {
            validators_per_shard: 4,
            single: 1,
            batch: 4,
        };
        // 1/10000 + 4/20000 = 0.0003 core-s per tx; 2 cores → 6667 tx/s.
        assert!((ceiling(&rates, &single).ceiling_tps - 6666.667).abs() < 0.01);
    }

    #[test]
    fn measuring_gives_positive_rates() {
        let r = measure(1, Duration::from_millis(30));
        assert!(r.single_per_core_per_s > 0.0 && r.batch_per_core_per_s > 0.0);
        assert_eq!(r.cores, 1);
    }
}
