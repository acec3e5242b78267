//! The named scenarios: network shape, batching, target rate and window.

use serde::Serialize;

/// One network configuration and load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// Name (`4-shards-batch-100`; `scale/2-shards` for a step of `scale`).
    pub name: String,
    /// Shards.
    pub shards: u64,
    /// Validators per shard committee.
    pub validators_per_shard: u64,
    /// The devnet's `batch_size` (receipts per crosslink batch).
    pub batch_size: u64,
    /// The devnet's `batch_timeout_ms`.
    pub batch_timeout_ms: u64,
    /// The devnet's `async_crosslinks_enabled`.
    pub async_crosslinks: bool,
    /// Target submission rate, transactions per second.
    pub rate_tps: f64,
    /// Measured window, in seconds.
    pub duration_s: u64,
    /// Share of cross-shard transfers (0 with one shard).
    pub cross_ratio: f64,
}

/// Scenario names accepted by `--scenario` (besides `all`).
pub const NAMES: [&str; 7] = [
    "single-shard",
    "4-shards-no-batch",
    "4-shards-batch-50",
    "4-shards-batch-100",
    "16-shards-batch-100",
    "scale",
    "smoke",
];

/// What `all` runs, in order (every scenario but `smoke`).
pub const ALL: [&str; 6] = [
    "single-shard",
    "4-shards-no-batch",
    "4-shards-batch-50",
    "4-shards-batch-100",
    "16-shards-batch-100",
    "scale",
];

/// Shard counts of the `scale` scenario.
pub const SCALE_SHARDS: [u64; 4] = [1, 2, 4, 8];

/// Default measured window of one scenario, in seconds.
pub const DEFAULT_DURATION_S: u64 = 30;
/// Measured window of each scenario under `all`, in seconds (so `all` fits 15 minutes on a
/// 2-core machine: 9 devnet starts, each with warm-up, window, drain and stop).
pub const ALL_DURATION_S: u64 = 20;
/// Default target rate, transactions per second (about half of what 4 shards × 4 validators
/// sustain on a 2-core machine).
pub const DEFAULT_RATE_TPS: f64 = 1000.0;
/// Default share of cross-shard transfers.
pub const DEFAULT_CROSS_RATIO: f64 = 0.5;
/// Validators per shard (4 tolerates one fault).
pub const DEFAULT_VALIDATORS_PER_SHARD: u64 = 4;
/// Validators per shard of the 16-shard scenario (3, the PRSM minimum: 48 validator
/// processes on two cores is already far past what the machine can run well).
pub const WIDE_VALIDATORS_PER_SHARD: u64 = 3;
/// Validators per shard of every `scale` step (3, the PRSM minimum, as in the 16-shard
/// scenario, so that steps compare; memory per step: [`super::launch::estimate_devnet_mib`]).
pub const SCALE_VALIDATORS_PER_SHARD: u64 = 3;
/// The smoke scenario's window, in seconds.
pub const SMOKE_DURATION_S: u64 = 4;
/// The smoke scenario's rate, transactions per second.
pub const SMOKE_RATE_TPS: f64 = 20.0;

/// Overrides from the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `--duration-s`.
    pub duration_s: Option<u64>,
    /// `--rate`.
    pub rate_tps: Option<f64>,
    /// `--cross-ratio`.
    pub cross_ratio: Option<f64>,
    /// `--validators-per-shard`.
    pub validators_per_shard: Option<u64>,
}

fn base(name: &str, shards: u64, batch_size: u64, o: &Overrides, default_s: u64) -> Scenario {
    Scenario {
        name: name.into(),
        shards,
        validators_per_shard: o
            .validators_per_shard
            .unwrap_or(DEFAULT_VALIDATORS_PER_SHARD),
        batch_size,
        batch_timeout_ms: 500,
        async_crosslinks: true,
        rate_tps: o.rate_tps.unwrap_or(DEFAULT_RATE_TPS),
        duration_s: o.duration_s.unwrap_or(default_s),
        cross_ratio: if shards < 2 {
            0.0
        } else {
            o.cross_ratio.unwrap_or(DEFAULT_CROSS_RATIO)
        },
    }
}

/// The runs of scenario `name` (one, or one per shard count for `scale`); `default_s` is the
/// window when `--duration-s` is not given. `None` for an unknown name.
pub fn expand(name: &str, o: &Overrides, default_s: u64) -> Option<Vec<Scenario>> {
    Some(match name {
        "single-shard" => vec![base(name, 1, 100, o, default_s)],
        "4-shards-no-batch" => vec![base(name, 4, 1, o, default_s)],
        "4-shards-batch-50" => vec![base(name, 4, 50, o, default_s)],
        "4-shards-batch-100" => vec![base(name, 4, 100, o, default_s)],
        "16-shards-batch-100" => {
            let mut s = base(name, 16, 100, o, default_s);
            s.validators_per_shard = o.validators_per_shard.unwrap_or(WIDE_VALIDATORS_PER_SHARD);
            vec![s]
        }
        "scale" => SCALE_SHARDS
            .iter()
            .map(|&n| {
                let mut s = base(&format!("scale/{n}-shards"), n, 100, o, default_s);
                s.validators_per_shard =
                    o.validators_per_shard.unwrap_or(SCALE_VALIDATORS_PER_SHARD);
                s
            })
            .collect(),
        "smoke" => {
            let mut s = base(name, 2, 100, o, SMOKE_DURATION_S);
            s.rate_tps = o.rate_tps.unwrap_or(SMOKE_RATE_TPS);
            s.validators_per_shard = o.validators_per_shard.unwrap_or(3);
            s.batch_timeout_ms = 200;
            vec![s]
        }
        _ => return None,
    })
}

/// Whether two runs use the same network and load, so one's result stands for the other
/// (under `all` with `--validators-per-shard`, `scale` reuses the 1- and 4-shard runs).
pub fn same_run(a: &Scenario, b: &Scenario) -> bool {
    a.shards == b.shards
        && a.validators_per_shard == b.validators_per_shard
        && a.batch_size == b.batch_size
        && a.batch_timeout_ms == b.batch_timeout_ms
        && a.async_crosslinks == b.async_crosslinks
        && a.rate_tps == b.rate_tps
        && a.duration_s == b.duration_s
        && a.cross_ratio == b.cross_ratio
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_expands() {
        for n in NAMES {
            let runs = expand(n, &Overrides::default(), DEFAULT_DURATION_S).expect(n);
            assert!(!runs.is_empty());
            for r in &runs {
                assert!(r.shards >= 1 && r.rate_tps > 0.0 && r.duration_s > 0);
                if r.shards == 1 {
                    assert_eq!(r.cross_ratio, 0.0);
                }
            }
        }
        assert!(expand("nope", &Overrides::default(), 1).is_none());
        assert!(ALL.iter().all(|n| NAMES.contains(n)) && !ALL.contains(&"smoke"));
    }

    #[test]
    fn shapes_and_overrides() {
        let o = Overrides {
            duration_s: Some(7),
            rate_tps: Some(50.0),
            ..Overrides::default()
        };
        let nb = &expand("4-shards-no-batch", &o, 30).expect("known")[0];
        assert_eq!((nb.shards, nb.batch_size, nb.duration_s), (4, 1, 7));
        assert_eq!(nb.rate_tps, 50.0);
        let scale = expand("scale", &Overrides::default(), 20).expect("known");
        assert_eq!(
            scale.iter().map(|s| s.shards).collect::<Vec<_>>(),
            SCALE_SHARDS.to_vec()
        );
        assert!(
            scale
                .iter()
                .all(|s| s.validators_per_shard == SCALE_VALIDATORS_PER_SHARD)
        );
        let single = &expand("single-shard", &Overrides::default(), 20).expect("known")[0];
        assert!(!same_run(&scale[0], single), "different committee sizes");
        let v4 = Overrides {
            validators_per_shard: Some(4),
            ..Overrides::default()
        };
        let scale = expand("scale", &v4, 20).expect("known");
        let single = &expand("single-shard", &v4, 20).expect("known")[0];
        let four = &expand("4-shards-batch-100", &v4, 20).expect("known")[0];
        assert!(same_run(&scale[0], single));
        assert!(same_run(&scale[2], four));
        assert!(!same_run(&scale[1], four));
        let smoke = &expand("smoke", &Overrides::default(), 30).expect("known")[0];
        assert_eq!(smoke.duration_s, SMOKE_DURATION_S);
        assert!(smoke.shards <= 2);
    }
}
