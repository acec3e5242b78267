//! The seed's `ShardConfig`: consensus-level sharding parameters, their defaults and bounds.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Serialize};

/// Largest allowed `num_shards` (MAX_SHARDS of the PRSM layer).
pub const MAX_NUM_SHARDS: u64 = 20;
/// Largest allowed `batch_size`.
pub const MAX_BATCH_SIZE: u64 = crate::limits::MAX_RECEIPTS_PER_BATCH as u64;
/// Largest allowed `batch_timeout_ms` (one minute).
pub const MAX_BATCH_TIMEOUT_MS: u64 = 60_000;
/// Largest allowed `crosslink_frequency`, in blocks.
pub const MAX_CROSSLINK_FREQUENCY: u64 = 10_000;

/// Sharding configuration. Field names, defaults and meanings are the seed's contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardConfig {
    /// Master switch (default true). With sharding disabled every account lives on shard 0.
    pub enabled: bool,
    /// Number of state shards (default 4).
    pub num_shards: u64,
    /// Target number of accounts per shard (default 1000), used by rebalancing.
    pub accounts_per_shard_target: u64,
    /// Imbalance threshold (default 0.3): a shard whose load leaves ±30% of the mean is
    /// rebalanced.
    pub rebalance_threshold: f64,
    /// Blocks between crosslinks when no batch closes earlier (default 10).
    pub crosslink_frequency: u64,
    /// Batch receipts into crosslinks (default true). When false, every block with
    /// receipts closes its batch at once.
    pub async_crosslinks_enabled: bool,
    /// Receipts per batch before it closes (default 100).
    pub batch_size: u64,
    /// Block-time milliseconds after the batch's first receipt before it closes (default 500).
    pub batch_timeout_ms: u64,
    /// Contracts can be deployed and called (default true).
    pub smart_contracts_enabled: bool,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            enabled: true,
            num_shards: 4,
            accounts_per_shard_target: 1000,
            rebalance_threshold: 0.3,
            crosslink_frequency: 10,
            async_crosslinks_enabled: true,
            batch_size: 100,
            batch_timeout_ms: 500,
            smart_contracts_enabled: true,
        }
    }
}

/// A configuration value is out of its allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ConfigError {
    /// The field name (as in the seed).
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            field,
            reason: reason.into(),
        }
    }
}

impl ShardConfig {
    /// Checks every field against its bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_NUM_SHARDS).contains(&self.num_shards) {
            return Err(ConfigError::new(
                "num_shards",
                format!("must be 1..={MAX_NUM_SHARDS}, got {}", self.num_shards),
            ));
        }
        if self.accounts_per_shard_target == 0 {
            return Err(ConfigError::new(
                "accounts_per_shard_target",
                "must be at least 1",
            ));
        }
        if !(self.rebalance_threshold.is_finite()
            && self.rebalance_threshold > 0.0
            && self.rebalance_threshold <= 10.0)
        {
            return Err(ConfigError::new(
                "rebalance_threshold",
                format!(
                    "must be a number in (0, 10], got {}",
                    self.rebalance_threshold
                ),
            ));
        }
        if !(1..=MAX_CROSSLINK_FREQUENCY).contains(&self.crosslink_frequency) {
            return Err(ConfigError::new(
                "crosslink_frequency",
                format!(
                    "must be 1..={MAX_CROSSLINK_FREQUENCY} blocks, got {}",
                    self.crosslink_frequency
                ),
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(ConfigError::new(
                "batch_size",
                format!("must be 1..={MAX_BATCH_SIZE}, got {}", self.batch_size),
            ));
        }
        if self.batch_timeout_ms > MAX_BATCH_TIMEOUT_MS {
            return Err(ConfigError::new(
                "batch_timeout_ms",
                format!(
                    "must be 0..={MAX_BATCH_TIMEOUT_MS}, got {}",
                    self.batch_timeout_ms
                ),
            ));
        }
        Ok(())
    }

    /// Applies an update (fields left `None` keep their value) and validates the result.
    pub fn updated(&self, u: &ConfigUpdate) -> Result<ShardConfig, ConfigError> {
        let mut c = self.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = u.$f { c.$f = v; } )* };
        }
        set!(
            enabled,
            num_shards,
            accounts_per_shard_target,
            rebalance_threshold,
            crosslink_frequency,
            async_crosslinks_enabled,
            batch_size,
            batch_timeout_ms,
            smart_contracts_enabled
        );
        c.validate()?;
        Ok(c)
    }
}

impl ShardConfig {
    /// The first field of `other` that differs from `self` and cannot change on a running
    /// network (`enabled`, `num_shards` and `accounts_per_shard_target` need live resharding,
    /// which does not exist yet). `None` when only the fields that may change differ:
    /// `rebalance_threshold` (read by the rebalance planner), `batch_size`,
    /// `batch_timeout_ms`, `crosslink_frequency`, `async_crosslinks_enabled`,
    /// `smart_contracts_enabled`.
    pub fn fixed_field_changed(&self, other: &ShardConfig) -> Option<&'static str> {
        if self.enabled != other.enabled {
            Some("enabled")
        } else if self.num_shards != other.num_shards {
            Some("num_shards")
        } else if self.accounts_per_shard_target != other.accounts_per_shard_target {
            Some("accounts_per_shard_target")
        } else {
            None
        }
    }
}

/// A change to [`ShardConfig`] (the body of `POST /shard/config`): absent fields are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    /// See [`ShardConfig::enabled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// See [`ShardConfig::num_shards`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_shards: Option<u64>,
    /// See [`ShardConfig::accounts_per_shard_target`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts_per_shard_target: Option<u64>,
    /// See [`ShardConfig::rebalance_threshold`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance_threshold: Option<f64>,
    /// See [`ShardConfig::crosslink_frequency`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crosslink_frequency: Option<u64>,
    /// See [`ShardConfig::async_crosslinks_enabled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_crosslinks_enabled: Option<bool>,
    /// See [`ShardConfig::batch_size`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// See [`ShardConfig::batch_timeout_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_timeout_ms: Option<u64>,
    /// See [`ShardConfig::smart_contracts_enabled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_contracts_enabled: Option<bool>,
}

impl ConfigUpdate {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == ConfigUpdate::default()
    }
}

// Canonical encoding: f64 as its IEEE-754 bits (big-endian), so it is exact and deterministic.

impl Write for ShardConfig {
    fn write(&self, buf: &mut impl BufMut) {
        self.enabled.write(buf);
        self.num_shards.write(buf);
        self.accounts_per_shard_target.write(buf);
        self.rebalance_threshold.to_bits().write(buf);
        self.crosslink_frequency.write(buf);
        self.async_crosslinks_enabled.write(buf);
        self.batch_size.write(buf);
        self.batch_timeout_ms.write(buf);
        self.smart_contracts_enabled.write(buf);
    }
}

impl FixedSize for ShardConfig {
    const SIZE: usize = 3 + 6 * 8;
}

impl Read for ShardConfig {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let c = ShardConfig {
            enabled: bool::read_cfg(buf, &())?,
            num_shards: u64::read_cfg(buf, &())?,
            accounts_per_shard_target: u64::read_cfg(buf, &())?,
            rebalance_threshold: f64::from_bits(u64::read_cfg(buf, &())?),
            crosslink_frequency: u64::read_cfg(buf, &())?,
            async_crosslinks_enabled: bool::read_cfg(buf, &())?,
            batch_size: u64::read_cfg(buf, &())?,
            batch_timeout_ms: u64::read_cfg(buf, &())?,
            smart_contracts_enabled: bool::read_cfg(buf, &())?,
        };
        c.validate()
            .map_err(|_| CodecError::Invalid("ShardConfig", "field out of range"))?;
        Ok(c)
    }
}

impl Write for ConfigUpdate {
    fn write(&self, buf: &mut impl BufMut) {
        self.enabled.write(buf);
        self.num_shards.write(buf);
        self.accounts_per_shard_target.write(buf);
        self.rebalance_threshold.map(f64::to_bits).write(buf);
        self.crosslink_frequency.write(buf);
        self.async_crosslinks_enabled.write(buf);
        self.batch_size.write(buf);
        self.batch_timeout_ms.write(buf);
        self.smart_contracts_enabled.write(buf);
    }
}

impl EncodeSize for ConfigUpdate {
    fn encode_size(&self) -> usize {
        self.enabled.encode_size()
            + self.num_shards.encode_size()
            + self.accounts_per_shard_target.encode_size()
            + self.rebalance_threshold.map(f64::to_bits).encode_size()
            + self.crosslink_frequency.encode_size()
            + self.async_crosslinks_enabled.encode_size()
            + self.batch_size.encode_size()
            + self.batch_timeout_ms.encode_size()
            + self.smart_contracts_enabled.encode_size()
    }
}

impl Read for ConfigUpdate {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(ConfigUpdate {
            enabled: Option::<bool>::read_cfg(buf, &())?,
            num_shards: Option::<u64>::read_cfg(buf, &())?,
            accounts_per_shard_target: Option::<u64>::read_cfg(buf, &())?,
            rebalance_threshold: Option::<u64>::read_cfg(buf, &())?.map(f64::from_bits),
            crosslink_frequency: Option::<u64>::read_cfg(buf, &())?,
            async_crosslinks_enabled: Option::<bool>::read_cfg(buf, &())?,
            batch_size: Option::<u64>::read_cfg(buf, &())?,
            batch_timeout_ms: Option::<u64>::read_cfg(buf, &())?,
            smart_contracts_enabled: Option::<bool>::read_cfg(buf, &())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c = ShardConfig::default();
        assert!(c.enabled);
        assert_eq!(c.num_shards, 4);
        assert_eq!(c.accounts_per_shard_target, 1000);
        assert_eq!(c.rebalance_threshold, 0.3);
        assert_eq!(c.crosslink_frequency, 10);
        assert!(c.async_crosslinks_enabled);
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.batch_timeout_ms, 500);
        assert!(c.smart_contracts_enabled);
        c.validate().unwrap();
    }

    #[test]
    fn seed_update_body_parses_and_bounds_hold() {
        let u: ConfigUpdate = serde_json::from_str(
            r#"{"enabled": true, "num_shards": 8, "async_crosslinks_enabled": true,
                "batch_size": 200, "batch_timeout_ms": 1000, "smart_contracts_enabled": true}"#,
        )
        .unwrap();
        let c = ShardConfig::default().updated(&u).unwrap();
        assert_eq!(
            (c.num_shards, c.batch_size, c.batch_timeout_ms),
            (8, 200, 1000)
        );
        let bad = ConfigUpdate {
            batch_size: Some(0),
            ..Default::default()
        };
        assert_eq!(
            ShardConfig::default().updated(&bad).unwrap_err().field,
            "batch_size"
        );
        assert!(serde_json::from_str::<ConfigUpdate>(r#"{"batch_sise": 3}"#).is_err());
    }

    #[test]
    fn only_consensus_fields_change_at_runtime() {
        let c = ShardConfig::default();
        let adjustable = ConfigUpdate {
            batch_size: Some(7),
            batch_timeout_ms: Some(9),
            crosslink_frequency: Some(3),
            async_crosslinks_enabled: Some(false),
            smart_contracts_enabled: Some(false),
            rebalance_threshold: Some(0.1),
            ..Default::default()
        };
        assert_eq!(
            c.fixed_field_changed(&c.updated(&adjustable).unwrap()),
            None
        );
        let same_shards = ConfigUpdate {
            num_shards: Some(4),
            ..Default::default()
        };
        assert_eq!(
            c.fixed_field_changed(&c.updated(&same_shards).unwrap()),
            None
        );
        for (u, field) in [
            (
                ConfigUpdate {
                    num_shards: Some(8),
                    ..Default::default()
                },
                "num_shards",
            ),
            (
                ConfigUpdate {
                    enabled: Some(false),
                    ..Default::default()
                },
                "enabled",
            ),
            (
                ConfigUpdate {
                    accounts_per_shard_target: Some(5),
                    ..Default::default()
                },
                "accounts_per_shard_target",
            ),
        ] {
            assert_eq!(c.fixed_field_changed(&c.updated(&u).unwrap()), Some(field));
        }
    }
}
