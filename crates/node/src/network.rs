//! What every node of a network derives from the genesis file alone: the shard committees, the
//! beacon committee and the consensus timing ([`network_spec`]), and the p2p sizing that
//! follows from them ([`max_message_size_bytes`]). Deterministic: the same genesis gives the
//! same spec on every node, whatever the order of its validator list.

use anyhow::{Context, anyhow, bail};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};
use vision_consensus::{
    NetworkSpec, ShardBlockCfg, ShardChainBlock, Timeouts, max_message_bytes,
    relay::RELAY_MAX_MESSAGE_BYTES,
};
use vision_sharding::{
    BFT_MIN_COMMITTEE_SIZE, CommitteePlan, MIN_SHARD_SIZE, NodeInfo, Reputation, Strategy,
    plan_fixed,
};
use vision_types::{Genesis, PublicKey, ShardId};

/// Smallest beacon committee (n ≥ 3f + 1 with f = 1), padded from the highest-reputation
/// validators that are not shard coordinators.
pub const MIN_BEACON_COMMITTEE_SIZE: usize = 4;
/// Largest encoded shard block, in bytes (sizes the p2p maximum message).
pub const SHARD_BLOCK_MAX_BYTES: usize = 1024 * 1024;
/// Empty-block throttle of shard chains, in milliseconds.
pub const SHARD_MIN_BLOCK_INTERVAL_MS: u64 = 200;
/// Empty-block throttle of the beacon chain, in milliseconds.
pub const BEACON_MIN_BLOCK_INTERVAL_MS: u64 = 200;
/// How often the relay polls for crosslinks and receipts, in milliseconds.
pub const RELAY_TICK_MS: u64 = 100;
/// How often the relay resends an unconfirmed crosslink, in milliseconds.
pub const RELAY_RESEND_MS: u64 = 1_000;

/// The smallest committee size `plan_fixed` is asked for: 4 (one fault tolerated) when there
/// are enough validators, else the PRSM floor of 3.
fn min_committee_size(validators: usize, num_shards: usize) -> usize {
    if validators >= num_shards * BFT_MIN_COMMITTEE_SIZE {
        BFT_MIN_COMMITTEE_SIZE
    } else {
        MIN_SHARD_SIZE
    }
}

/// The committee plan of `genesis` (see [`network_spec`]) and the names of the beacon
/// committee's members.
pub fn committee_plan(genesis: &Genesis) -> anyhow::Result<(CommitteePlan, BTreeSet<String>)> {
    genesis.validate().context("genesis")?;
    let strategy: Strategy = genesis
        .strategy
        .parse()
        .map_err(|e| anyhow!("genesis strategy {:?}: {e}", genesis.strategy))?;
    let mut nodes = Vec::with_capacity(genesis.validators.len());
    for v in &genesis.validators {
        let reputation = Reputation::from_f64(v.reputation).ok_or_else(|| {
            anyhow!(
                "genesis validator {}: reputation {} is not in [0, 1]",
                v.name,
                v.reputation
            )
        })?;
        nodes.push(NodeInfo::new(v.name.clone(), reputation, Vec::new()));
    }
    let num_shards = usize::try_from(genesis.shard_config.num_shards)
        .context("genesis num_shards does not fit usize")?;
    let min_size = min_committee_size(nodes.len(), num_shards);
    let plan = plan_fixed(&nodes, num_shards, min_size, strategy).map_err(|e| {
        anyhow!(
            "genesis: {} validators cannot form {num_shards} shard committees of at least \
             {min_size}: {e}",
            nodes.len()
        )
    })?;
    let mut beacon_names: BTreeSet<String> = plan
        .committees
        .iter()
        .map(|c| c.coordinator.clone())
        .collect();
    // Pad with the highest-reputation validators not yet in (ties: smallest name).
    let mut by_reputation: Vec<&NodeInfo> = plan.nodes.iter().collect();
    by_reputation.sort_by(|a, b| b.reputation.cmp(&a.reputation).then(a.id.cmp(&b.id)));
    for n in by_reputation {
        if beacon_names.len() >= MIN_BEACON_COMMITTEE_SIZE.min(nodes.len()) {
            break;
        }
        beacon_names.insert(n.id.clone());
    }
    Ok((plan, beacon_names))
}

/// Derives the network every node agrees on from `genesis`: shard committees planned by
/// `plan_fixed` with the genesis strategy and `shard_config.num_shards` (validators named by
/// their genesis name, with their genesis reputation); the beacon committee is the
/// coordinator (highest reputation, ties by smallest name) of every shard committee, padded
/// with the next-highest validators to at least [`MIN_BEACON_COMMITTEE_SIZE`] members.
pub fn network_spec(genesis: &Genesis) -> anyhow::Result<NetworkSpec> {
    let (plan, beacon_names) = committee_plan(genesis)?;
    let key_of: BTreeMap<&str, PublicKey> = genesis
        .validators
        .iter()
        .map(|v| (v.name.as_str(), v.consensus_key))
        .collect();
    let shard_committees = plan
        .committees
        .iter()
        .map(|c| {
            (
                c.shard,
                c.members.iter().map(|m| key_of[m.as_str()]).collect(),
            )
        })
        .collect();
    // Committee order: by consensus key (commonware orders committees by key anyway).
    let mut beacon_committee: Vec<PublicKey> =
        beacon_names.iter().map(|n| key_of[n.as_str()]).collect();
    beacon_committee.sort();

    Ok(NetworkSpec {
        network: genesis.chain_id.clone(),
        config: genesis.shard_config.clone(),
        shard_committees,
        beacon_committee,
        genesis_accounts: genesis
            .accounts
            .iter()
            .map(|a| (a.id.clone(), a.public_key, a.balance))
            .collect(),
        genesis_timestamp_ms: genesis.genesis_time_ms,
        shard_block_cfg: ShardBlockCfg {
            max_bytes: SHARD_BLOCK_MAX_BYTES,
        },
        shard_timeouts: Timeouts {
            min_block_interval: Duration::from_millis(SHARD_MIN_BLOCK_INTERVAL_MS),
            ..Timeouts::default()
        },
        beacon_timeouts: Timeouts {
            min_block_interval: Duration::from_millis(BEACON_MIN_BLOCK_INTERVAL_MS),
            ..Timeouts::default()
        },
        relay_tick: Duration::from_millis(RELAY_TICK_MS),
        relay_resend: Duration::from_millis(RELAY_RESEND_MS),
        config_authority: config_authority_key(genesis),
        workload_shards: vision_sharding::workload_shards(&plan),
        served_blocks: vision_consensus::shard::SERVED_BLOCKS,
        reputation_priors: plan
            .nodes
            .iter()
            .map(|n| (key_of[n.id.as_str()], n.reputation))
            .collect(),
    })
}

/// The key of the genesis `config_authority` account: its genesis entry's key, or the key an
/// implicit account id names. `None` when neither exists (the configuration is then fixed).
pub fn config_authority_key(genesis: &Genesis) -> Option<PublicKey> {
    genesis
        .accounts
        .iter()
        .find(|a| a.id == genesis.config_authority)
        .map(|a| a.public_key)
        .or_else(|| genesis.config_authority.implicit_key().map(PublicKey))
}

/// The p2p maximum message size every node of `spec` must use: the largest chain-engine
/// message for the largest committee, or the largest relay message, whichever is bigger.
pub fn max_message_size_bytes(spec: &NetworkSpec) -> anyhow::Result<u32> {
    let max_committee = spec
        .shard_committees
        .values()
        .map(Vec::len)
        .chain(std::iter::once(spec.beacon_committee.len()))
        .max()
        .unwrap_or(1);
    let max_committee = u32::try_from(max_committee).context("committee size")?;
    let relay = u32::try_from(RELAY_MAX_MESSAGE_BYTES).context("relay message size")?;
    let engines = max_message_bytes::<ShardChainBlock>(max_committee, &spec.shard_block_cfg);
    if engines == 0 {
        bail!("p2p maximum message size computed as 0");
    }
    Ok(engines.max(relay))
}

/// Where a validator serves, for printing and status files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// The shard whose committee it is in, if any.
    pub shard: Option<ShardId>,
    /// Whether it is in the beacon committee.
    pub beacon: bool,
}

/// The role of the validator with consensus key `key` in `spec`.
pub fn role_of(spec: &NetworkSpec, key: &PublicKey) -> Role {
    Role {
        shard: spec.shard_of(key),
        beacon: spec.beacon_committee.contains(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vision_types::{
        AccountId, Amount, ChainId, GenesisAccount, GenesisValidator, SecretKey, ShardConfig,
    };

    fn key(i: u8, tag: u8) -> PublicKey {
        SecretKey::from_seed([i.wrapping_mul(3).wrapping_add(tag); 32]).public_key()
    }

    fn genesis(validators: u8, shards: u64) -> Genesis {
        Genesis {
            chain_id: ChainId::new("test-net").unwrap(),
            genesis_time_ms: 1_000,
            shard_config: ShardConfig {
                num_shards: shards,
                ..ShardConfig::default()
            },
            strategy: "adaptive".into(),
            validators: (0..validators)
                .map(|i| GenesisValidator {
                    name: format!("v{i:02}"),
                    consensus_key: key(i, 0),
                    network_key: key(i, 100),
                    p2p_address: format!("127.0.0.1:{}", 40_000 + u16::from(i)),
                    reputation: 0.5 + f64::from(i % 5) * 0.1,
                })
                .collect(),
            accounts: vec![GenesisAccount {
                id: AccountId::new("alice").unwrap(),
                public_key: key(200, 1),
                balance: Amount(10),
            }],
            config_authority: AccountId::new("alice").unwrap(),
        }
    }

    #[test]
    fn committees_cover_every_validator_once_and_beacon_is_coordinators_padded() {
        let g = genesis(16, 4);
        let spec = network_spec(&g).unwrap();
        assert_eq!(spec.shard_committees.len(), 4);
        let mut all: Vec<PublicKey> = spec.shard_committees.values().flatten().copied().collect();
        assert_eq!(all.len(), 16);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 16, "every validator in exactly one committee");
        for m in spec.shard_committees.values() {
            assert_eq!(m.len(), 4);
        }
        assert_eq!(spec.beacon_committee.len(), 4, "one coordinator per shard");
        // Each shard has exactly one beacon member: its coordinator.
        for m in spec.shard_committees.values() {
            assert_eq!(
                m.iter()
                    .filter(|k| spec.beacon_committee.contains(k))
                    .count(),
                1
            );
        }
        assert!(max_message_size_bytes(&spec).unwrap() >= RELAY_MAX_MESSAGE_BYTES as u32);
    }

    #[test]
    fn beacon_is_padded_to_four_with_fewer_shards() {
        let spec = network_spec(&genesis(8, 2)).unwrap();
        assert_eq!(spec.shard_committees.len(), 2);
        assert_eq!(spec.beacon_committee.len(), MIN_BEACON_COMMITTEE_SIZE);
        let spec = network_spec(&genesis(4, 1)).unwrap();
        assert_eq!(spec.beacon_committee.len(), 4);
    }

    #[test]
    fn deterministic_and_independent_of_validator_order() {
        let g = genesis(16, 4);
        let a = network_spec(&g).unwrap();
        let mut shuffled = g.clone();
        shuffled.validators.reverse();
        shuffled.validators.swap(3, 11);
        for other in [network_spec(&g).unwrap(), network_spec(&shuffled).unwrap()] {
            assert_eq!(a.shard_committees, other.shard_committees);
            assert_eq!(a.beacon_committee, other.beacon_committee);
            assert_eq!(a.genesis_accounts, other.genesis_accounts);
            assert_eq!(a.network, other.network);
        }
    }

    #[test]
    fn refuses_unplannable_genesis() {
        assert!(
            network_spec(&genesis(5, 2)).is_err(),
            "5 validators, 2 shards"
        );
        let mut g = genesis(8, 2);
        g.strategy = "random".into();
        let err = network_spec(&g).unwrap_err().to_string();
        assert!(err.contains("strategy"), "{err}");
    }
}
