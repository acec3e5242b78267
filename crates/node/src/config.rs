//! Node configuration: the seed's `ShardConfig` resolved from four sources, highest first:
//! command-line flags > `VISION_*` environment variables > `config.toml` in the home > the
//! seed's defaults. An invalid value is refused with a message naming where it came from
//! (the flag, the variable, or the file's key).

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, path::Path};
use vision_types::{ConfigUpdate, ShardConfig};

/// Every ShardConfig field as an optional flag (flags override env and file).
#[derive(Debug, Clone, Default, Args)]
pub struct ShardConfigArgs {
    /// Master switch for sharding [env: VISION_SHARDING_ENABLED] [default: true]
    #[arg(long, value_name = "BOOL")]
    pub sharding_enabled: Option<bool>,
    /// Number of state shards, 1-20 [env: VISION_NUM_SHARDS] [default: 4]
    #[arg(long, value_name = "N")]
    pub num_shards: Option<u64>,
    /// Target accounts per shard, used by rebalancing [env: VISION_ACCOUNTS_PER_SHARD] [default: 1000]
    #[arg(long, value_name = "N")]
    pub accounts_per_shard_target: Option<u64>,
    /// Load imbalance (fraction of the mean) that triggers rebalancing [env: VISION_REBALANCE_THRESHOLD] [default: 0.3]
    #[arg(long, value_name = "FRACTION")]
    pub rebalance_threshold: Option<f64>,
    /// Blocks between crosslinks when no batch closes earlier [env: VISION_CROSSLINK_FREQUENCY] [default: 10]
    #[arg(long, value_name = "BLOCKS")]
    pub crosslink_frequency: Option<u64>,
    /// Batch cross-shard receipts into crosslinks [env: VISION_ASYNC_CROSSLINKS] [default: true]
    #[arg(long, value_name = "BOOL")]
    pub async_crosslinks_enabled: Option<bool>,
    /// Receipts per batch before it closes [env: VISION_BATCH_SIZE] [default: 100]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u64>,
    /// Block-time milliseconds after a batch's first receipt before it closes [env: VISION_BATCH_TIMEOUT_MS] [default: 500]
    #[arg(long, value_name = "MS")]
    pub batch_timeout_ms: Option<u64>,
    /// Allow contracts [env: VISION_SHARD_CONTRACTS] [default: true]
    #[arg(long, value_name = "BOOL")]
    pub smart_contracts_enabled: Option<bool>,
}

impl ShardConfigArgs {
    fn to_update(&self) -> ConfigUpdate {
        ConfigUpdate {
            enabled: self.sharding_enabled,
            num_shards: self.num_shards,
            accounts_per_shard_target: self.accounts_per_shard_target,
            rebalance_threshold: self.rebalance_threshold,
            crosslink_frequency: self.crosslink_frequency,
            async_crosslinks_enabled: self.async_crosslinks_enabled,
            batch_size: self.batch_size,
            batch_timeout_ms: self.batch_timeout_ms,
            smart_contracts_enabled: self.smart_contracts_enabled,
        }
    }
}

/// One ShardConfig field: its name in the seed's struct, its env var and its flag.
struct Field {
    name: &'static str,
    env: &'static str,
    flag: &'static str,
}

/// The seed's environment variables, exactly, in ShardConfig order.
const FIELDS: [Field; 9] = [
    Field {
        name: "enabled",
        env: "VISION_SHARDING_ENABLED",
        flag: "--sharding-enabled",
    },
    Field {
        name: "num_shards",
        env: "VISION_NUM_SHARDS",
        flag: "--num-shards",
    },
    Field {
        name: "accounts_per_shard_target",
        env: "VISION_ACCOUNTS_PER_SHARD",
        flag: "--accounts-per-shard-target",
    },
    Field {
        name: "rebalance_threshold",
        env: "VISION_REBALANCE_THRESHOLD",
        flag: "--rebalance-threshold",
    },
    Field {
        name: "crosslink_frequency",
        env: "VISION_CROSSLINK_FREQUENCY",
        flag: "--crosslink-frequency",
    },
    Field {
        name: "async_crosslinks_enabled",
        env: "VISION_ASYNC_CROSSLINKS",
        flag: "--async-crosslinks-enabled",
    },
    Field {
        name: "batch_size",
        env: "VISION_BATCH_SIZE",
        flag: "--batch-size",
    },
    Field {
        name: "batch_timeout_ms",
        env: "VISION_BATCH_TIMEOUT_MS",
        flag: "--batch-timeout-ms",
    },
    Field {
        name: "smart_contracts_enabled",
        env: "VISION_SHARD_CONTRACTS",
        flag: "--smart-contracts-enabled",
    },
];

/// The parts of `config.toml` this module reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// This node's own settings.
    #[serde(default)]
    node: NodeSection,
    /// The seed's ShardConfig fields.
    #[serde(default)]
    shard: ConfigUpdate,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Reads the `VISION_*` variables through `get` (so tests need not touch the process env).
fn env_update(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ConfigUpdate> {
    let mut u = ConfigUpdate::default();
    for f in &FIELDS {
        let Some(raw) = get(f.env) else { continue };
        let bad = |what: &str| anyhow!("{}={raw:?}: expected {what}", f.env);
        let int = || {
            raw.trim()
                .parse::<u64>()
                .map_err(|_| bad("a non-negative integer"))
        };
        let boolean = || parse_bool(&raw).ok_or_else(|| bad("true or false"));
        match f.name {
            "enabled" => u.enabled = Some(boolean()?),
            "num_shards" => u.num_shards = Some(int()?),
            "accounts_per_shard_target" => u.accounts_per_shard_target = Some(int()?),
            "rebalance_threshold" => {
                let v = raw
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| bad("a number such as 0.3"))?;
                u.rebalance_threshold = Some(v);
            }
            "crosslink_frequency" => u.crosslink_frequency = Some(int()?),
            "async_crosslinks_enabled" => u.async_crosslinks_enabled = Some(boolean()?),
            "batch_size" => u.batch_size = Some(int()?),
            "batch_timeout_ms" => u.batch_timeout_ms = Some(int()?),
            "smart_contracts_enabled" => u.smart_contracts_enabled = Some(boolean()?),
            other => unreachable!("unknown field {other}"),
        }
    }
    Ok(u)
}

/// Whether `u` sets the field called `name`.
fn sets(u: &ConfigUpdate, name: &str) -> bool {
    let v = serde_json::to_value(u).expect("ConfigUpdate serializes");
    v.get(name).is_some()
}

/// Names where a field's value came from (a flag, a variable or a file key).
type SourceName<'a> = dyn Fn(&Field) -> String + 'a;

/// Resolves the ShardConfig from flags, env (through `get`), an optional `config.toml` text
/// and the defaults. `file_name` is used in messages.
pub fn resolve_shard_config(
    flags: &ShardConfigArgs,
    get_env: &dyn Fn(&str) -> Option<String>,
    file: Option<(&str, &str)>,
) -> anyhow::Result<ShardConfig> {
    Ok(resolve_with_sources(flags, get_env, file)?.0)
}

/// A ShardConfig field set explicitly by a flag, a variable or the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplicitField {
    /// The field's name in the seed's ShardConfig.
    pub field: &'static str,
    /// Where its effective value came from (the flag, the variable or the file key).
    pub source: String,
}

/// Like [`resolve_shard_config`], also naming the source of every field that is not a
/// default (the highest layer that set it).
pub fn resolve_with_sources(
    flags: &ShardConfigArgs,
    get_env: &dyn Fn(&str) -> Option<String>,
    file: Option<(&str, &str)>,
) -> anyhow::Result<(ShardConfig, Vec<ExplicitField>)> {
    let file_update = match file {
        Some((name, text)) => {
            toml::from_str::<FileConfig>(text)
                .with_context(|| format!("{name}: invalid configuration"))?
                .shard
        }
        None => ConfigUpdate::default(),
    };
    let env = env_update(get_env)?;
    let flags = flags.to_update();
    // Apply lowest precedence first; validate each layer so the message names its source.
    let layers: [(&ConfigUpdate, &SourceName); 3] = [
        (&file_update, &|f: &Field| {
            format!(
                "{} [shard] {}",
                file.map_or("config.toml", |(n, _)| n),
                f.name
            )
        }),
        (&env, &|f: &Field| f.env.to_string()),
        (&flags, &|f: &Field| f.flag.to_string()),
    ];
    let mut config = ShardConfig::default();
    let mut sources: Vec<ExplicitField> = Vec::new();
    for (update, source) in layers {
        // Validate this layer's values on top of the defaults, so a bad value is blamed on
        // the layer that set it, not on whatever layer happened to be applied last.
        if let Err(e) = ShardConfig::default().updated(update) {
            let field = FIELDS
                .iter()
                .find(|f| f.name == e.field && sets(update, f.name));
            return Err(match field {
                Some(f) => anyhow!("{}: {}", source(f), e.reason),
                None => anyhow!("{e}"),
            });
        }
        config = config.updated(update).map_err(|e| anyhow!("{e}"))?;
        for f in FIELDS.iter().filter(|f| sets(update, f.name)) {
            sources.retain(|s| s.field != f.name);
            sources.push(ExplicitField {
                field: f.name,
                source: source(f),
            });
        }
    }
    Ok((config, sources))
}

/// Reads `home/config.toml` if it exists: `(path for messages, text)`.
fn read_config_file(home: Option<&Path>) -> anyhow::Result<Option<(String, String)>> {
    match home.map(|h| h.join("config.toml")) {
        Some(p) if p.exists() => Ok(Some((
            p.display().to_string(),
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
        ))),
        _ => Ok(None),
    }
}

/// Resolves the ShardConfig for a node home: `home/config.toml` if present, the process env
/// and the flags.
pub fn load_shard_config(
    home: Option<&Path>,
    flags: &ShardConfigArgs,
) -> anyhow::Result<ShardConfig> {
    Ok(load_shard_config_with_sources(home, flags)?.0)
}

/// [`load_shard_config`] with the source of every explicitly set field.
pub fn load_shard_config_with_sources(
    home: Option<&Path>,
    flags: &ShardConfigArgs,
) -> anyhow::Result<(ShardConfig, Vec<ExplicitField>)> {
    let text = read_config_file(home)?;
    let get = |k: &str| std::env::var(k).ok();
    resolve_with_sources(
        flags,
        &get,
        text.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
    )
}

/// Refuses explicitly set ShardConfig values that differ from the network's genesis
/// configuration (consensus settings are the same on every node and come from genesis),
/// naming the flag, variable or file key that set each one.
pub fn check_against_genesis(
    resolved: &ShardConfig,
    sources: &[ExplicitField],
    genesis: &ShardConfig,
    genesis_name: &str,
) -> anyhow::Result<()> {
    let mine = serde_json::to_value(resolved)?;
    let theirs = serde_json::to_value(genesis)?;
    let mut diffs = Vec::new();
    for s in sources {
        if mine.get(s.field) != theirs.get(s.field) {
            diffs.push(format!(
                "{} sets {} = {}, but {genesis_name} has {}",
                s.source,
                s.field,
                mine.get(s.field).cloned().unwrap_or_default(),
                theirs.get(s.field).cloned().unwrap_or_default()
            ));
        }
    }
    if !diffs.is_empty() {
        bail!(
            "{}; consensus settings come from the genesis file and are the same on every node \
             (remove the override or change the network's genesis)",
            diffs.join("; ")
        );
    }
    Ok(())
}

/// The `[node]` table of `config.toml`: this node's own settings (not consensus settings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The validator's name in genesis (informational; the node finds itself by its
    /// consensus key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address the p2p listener binds (default: the address genesis or the peers file gives
    /// this validator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_listen: Option<SocketAddr>,
    /// Address the HTTP API binds (`run --api-listen` and `VISION_API_LISTEN` take
    /// precedence). An API node defaults to 127.0.0.1:3030; a validator serves no HTTP API
    /// unless one of the three sets it, and then serves its own shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_listen: Option<SocketAddr>,
}

/// Reads the `[node]` table of `home/config.toml` (empty if the file or table is absent).
pub fn load_node_section(home: &Path) -> anyhow::Result<NodeSection> {
    match read_config_file(Some(home))? {
        Some((name, text)) => Ok(toml::from_str::<FileConfig>(&text)
            .with_context(|| format!("{name}: invalid configuration"))?
            .node),
        None => Ok(NodeSection::default()),
    }
}

/// Renders a `config.toml` with a `[node]` table and a `[shard]` table holding `shard`'s
/// fields named in `fields` (all of them when `fields` is `None`).
pub fn render_config_toml(
    node: &NodeSection,
    shard: &ShardConfig,
    fields: Option<&[&str]>,
) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Out<'a> {
        node: &'a NodeSection,
        shard: toml::Table,
    }
    let mut table = toml::Table::try_from(shard).context("rendering [shard]")?;
    if let Some(keep) = fields {
        table.retain(|k, _| keep.contains(&k));
    }
    let body = toml::to_string(&Out { node, shard: table }).context("rendering config.toml")?;
    Ok(format!(
        "# Vision Node configuration. Precedence: flags > VISION_* env > this file > defaults.\n\
         # [shard] values must match the network's genesis.json (consensus settings are\n\
         # network-wide); leave out what genesis decides.\n\
         {body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn defaults_without_any_source() {
        let c = resolve_shard_config(&ShardConfigArgs::default(), &env(&[]), None).unwrap();
        assert_eq!(c, ShardConfig::default());
    }

    #[test]
    fn precedence_flags_over_env_over_file_over_defaults() {
        let file = "[shard]\nnum_shards = 6\nbatch_size = 50\nbatch_timeout_ms = 900\n";
        let e = env(&[
            ("VISION_BATCH_SIZE", "70"),
            ("VISION_BATCH_TIMEOUT_MS", "800"),
        ]);
        let flags = ShardConfigArgs {
            batch_timeout_ms: Some(700),
            ..Default::default()
        };
        let c = resolve_shard_config(&flags, &e, Some(("config.toml", file))).unwrap();
        assert_eq!(c.num_shards, 6, "file over default");
        assert_eq!(c.batch_size, 70, "env over file");
        assert_eq!(c.batch_timeout_ms, 700, "flag over env");
        assert_eq!(c.crosslink_frequency, 10, "default kept");
    }

    #[test]
    fn every_seed_env_var_is_read() {
        let e = env(&[
            ("VISION_SHARDING_ENABLED", "false"),
            ("VISION_NUM_SHARDS", "8"),
            ("VISION_ACCOUNTS_PER_SHARD", "500"),
            ("VISION_REBALANCE_THRESHOLD", "0.25"),
            ("VISION_CROSSLINK_FREQUENCY", "5"),
            ("VISION_ASYNC_CROSSLINKS", "false"),
            ("VISION_BATCH_SIZE", "200"),
            ("VISION_BATCH_TIMEOUT_MS", "1000"),
            ("VISION_SHARD_CONTRACTS", "false"),
        ]);
        let c = resolve_shard_config(&ShardConfigArgs::default(), &e, None).unwrap();
        assert_eq!(
            c,
            ShardConfig {
                enabled: false,
                num_shards: 8,
                accounts_per_shard_target: 500,
                rebalance_threshold: 0.25,
                crosslink_frequency: 5,
                async_crosslinks_enabled: false,
                batch_size: 200,
                batch_timeout_ms: 1000,
                smart_contracts_enabled: false,
            }
        );
    }

    #[test]
    fn invalid_values_name_their_source() {
        let none = ShardConfigArgs::default();
        let cases: &[(&str, &str)] = &[
            ("VISION_SHARDING_ENABLED", "maybe"),
            ("VISION_NUM_SHARDS", "abc"),
            ("VISION_NUM_SHARDS", "0"),
            ("VISION_NUM_SHARDS", "21"),
            ("VISION_ACCOUNTS_PER_SHARD", "-1"),
            ("VISION_ACCOUNTS_PER_SHARD", "0"),
            ("VISION_REBALANCE_THRESHOLD", "x"),
            ("VISION_REBALANCE_THRESHOLD", "0"),
            ("VISION_REBALANCE_THRESHOLD", "NaN"),
            ("VISION_CROSSLINK_FREQUENCY", "0"),
            ("VISION_ASYNC_CROSSLINKS", "2"),
            ("VISION_BATCH_SIZE", "0"),
            ("VISION_BATCH_SIZE", "10001"),
            ("VISION_BATCH_TIMEOUT_MS", "60001"),
            ("VISION_BATCH_TIMEOUT_MS", "1.5"),
            ("VISION_SHARD_CONTRACTS", "nope"),
        ];
        for (k, v) in cases {
            let err = resolve_shard_config(&none, &env(&[(k, v)]), None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(k),
                "{k}={v}: message {err:?} must name the variable"
            );
        }
        let flags = ShardConfigArgs {
            batch_size: Some(0),
            ..Default::default()
        };
        let err = resolve_shard_config(&flags, &env(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--batch-size"), "{err}");
        let err = resolve_shard_config(
            &none,
            &env(&[]),
            Some(("/h/config.toml", "[shard]\nnum_shards = 99\n")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/h/config.toml [shard] num_shards"), "{err}");
        let err = resolve_shard_config(
            &none,
            &env(&[]),
            Some(("c.toml", "[shard]\nbatch_sise = 1\n")),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("batch_sise"), "{err:#}");
    }

    #[test]
    fn a_bad_lower_layer_is_still_refused_when_overridden() {
        // A bad env value is an error even if a flag overrides it: the operator must fix it.
        let flags = ShardConfigArgs {
            num_shards: Some(4),
            ..Default::default()
        };
        assert!(resolve_shard_config(&flags, &env(&[("VISION_NUM_SHARDS", "0")]), None).is_err());
    }
}
