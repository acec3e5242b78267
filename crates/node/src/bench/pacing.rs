//! Open-loop pacing (pure): transactions go out in fixed-size batches, batch `k` at
//! `k × batch_txs ÷ rate` seconds after the start, whatever the node answers. A client that
//! waits for answers before sending more (closed loop) would slow down with the node and hide
//! its latency; this one keeps the schedule and reports how far behind it fell.

use std::time::Duration;

/// How many batches per second the pacer aims for (fewer at low rates: a batch holds at least
/// one transaction).
pub const BATCHES_PER_S: f64 = 20.0;

/// The schedule of one open-loop run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacer {
    rate_tps: f64,
    batch_txs: usize,
}

impl Pacer {
    /// A pacer sending `rate_tps` transactions per second in batches of at most
    /// `max_batch_txs` (about [`BATCHES_PER_S`] batches per second).
    pub fn new(rate_tps: f64, max_batch_txs: usize) -> Pacer {
        assert!(
            rate_tps > 0.0 && rate_tps.is_finite(),
            "rate must be positive"
        );
        let batch_txs =
            ((rate_tps / BATCHES_PER_S).round() as usize).clamp(1, max_batch_txs.max(1));
        Pacer {
            rate_tps,
            batch_txs,
        }
    }

    /// Transactions per batch.
    pub fn batch_txs(&self) -> usize {
        self.batch_txs
    }

    /// The target rate, transactions per second.
    pub fn rate_tps(&self) -> f64 {
        self.rate_tps
    }

    /// When batch `k` (from 0) is due, counted from the start.
    pub fn due(&self, k: u64) -> Duration {
        Duration::from_secs_f64(k as f64 * self.batch_txs as f64 / self.rate_tps)
    }

    /// How many batches are due by `elapsed` (batch 0 is due at once).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        (elapsed.as_secs_f64() * self.rate_tps / self.batch_txs as f64).floor() as u64 + 1
    }

    /// Batches needed to cover `duration` at this rate (at least one).
    pub fn batches_for(&self, duration: Duration) -> u64 {
        ((duration.as_secs_f64() * self.rate_tps / self.batch_txs as f64).ceil() as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_of_about_a_twentieth_of_the_rate() {
        assert_eq!(Pacer::new(1000.0, 1000).batch_txs(), 50);
        assert_eq!(Pacer::new(10.0, 1000).batch_txs(), 1);
        assert_eq!(Pacer::new(100_000.0, 1000).batch_txs(), 1000);
        assert_eq!(Pacer::new(100_000.0, 0).batch_txs(), 1);
    }

    #[test]
    fn schedule_keeps_the_rate() {
        let p = Pacer::new(1000.0, 1000);
        assert_eq!(p.due(0), Duration::ZERO);
        assert_eq!(p.due(20), Duration::from_secs(1));
        assert_eq!(p.due_by(Duration::ZERO), 1);
        assert_eq!(p.due_by(Duration::from_millis(49)), 1);
        assert_eq!(p.due_by(Duration::from_millis(50)), 2);
        assert_eq!(p.due_by(Duration::from_secs(1)), 21);
        // Ten seconds: 10,000 transactions in 200 batches of 50.
        assert_eq!(p.batches_for(Duration::from_secs(10)), 200);
        // Over any whole second the due count is rate ÷ batch size.
        for s in 0..10u64 {
            let a = p.due_by(Duration::from_secs(s));
            let b = p.due_by(Duration::from_secs(s + 1));
            assert_eq!((b - a) as usize * p.batch_txs(), 1000);
        }
        let slow = Pacer::new(3.0, 1000);
        assert_eq!(slow.batch_txs(), 1);
        assert_eq!(slow.due(3), Duration::from_secs(1));
        assert_eq!(slow.batches_for(Duration::from_millis(100)), 1);
    }
}
