//! Generating nodes and networks: one validator home (`init`), and a whole local network
//! ([`generate_devnet`]): shared genesis and peers files, one home per validator, and the dev
//! and bench accounts with their secret keys.
//!
//! Devnet directory layout:
//!
//! ```text
//! DIR/devnet.json          what was generated (parameters, validators, roles, ports)
//! DIR/genesis.json         the network's genesis (shared by every node)
//! DIR/peers.json           name, consensus key and p2p address of every validator and of
//!                          the API node (role `api`)
//! DIR/accounts.json        dev and bench accounts with their secret keys (0600)
//! DIR/nodes/vNN/           one validator home: keys/ (0700, keys 0600), config.toml, data/
//! DIR/nodes/api/           the API node's home (same layout; its key is not a validator)
//! DIR/logs/vNN.log         the validator's log (written by `devnet`)
//! ```

use crate::{
    config::{NodeSection, render_config_toml},
    files::{PeerEntry, PeerRole, write_atomic, write_json},
    keys::{KeyKind, load_key, write_key},
    network::{network_spec, role_of},
};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};
use vision_sharding::ShardLayout;
use vision_types::{
    AccountId, Amount, ChainId, Genesis, GenesisAccount, GenesisValidator, PublicKey, SecretKey,
    ShardConfig,
};

/// The dev accounts every devnet has (named accounts bound to a key).
pub const DEV_ACCOUNTS: [&str; 5] = ["alice", "bob", "carol", "dave", "eve"];
/// Genesis balance of each dev account.
pub const DEV_ACCOUNT_BALANCE: u128 = 1_000_000_000_000;
/// Genesis balance of each bench account.
pub const BENCH_ACCOUNT_BALANCE: u128 = 1_000_000_000;
/// Most bench accounts a devnet may have.
pub const MAX_BENCH_ACCOUNTS: usize = 100_000;
/// Name (and home directory name) of a devnet's API node.
pub const API_NODE_NAME: &str = "api";
/// Default strategy placing devnet validators into committees.
pub const DEVNET_STRATEGY: &str = "adaptive";
/// Reputation of every devnet validator at genesis.
pub const DEVNET_REPUTATION: f64 = 0.9;

/// What to generate.
#[derive(Clone, Debug)]
pub struct DevnetParams {
    /// Network id.
    pub chain_id: ChainId,
    /// Validators per shard committee.
    pub validators_per_shard: usize,
    /// p2p port of the first validator; validator `i` listens on `base_port + i`.
    pub base_port: u16,
    /// Number of funded implicit bench accounts.
    pub bench_accounts: usize,
    /// The network's sharding configuration (`num_shards` is the number of shards).
    pub config: ShardConfig,
}

/// One validator of a generated devnet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetValidator {
    /// Name (genesis and file names).
    pub name: String,
    /// Home directory, relative to the devnet directory.
    pub home: PathBuf,
    /// p2p address.
    pub p2p_address: String,
    /// Consensus public key (also its p2p identity).
    pub consensus_key: PublicKey,
    /// Its shard.
    pub shard: u32,
    /// Whether it is in the beacon committee.
    pub beacon: bool,
}

/// `devnet.json`: what a devnet directory holds, to reuse it or refuse a mismatch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetManifest {
    /// Network id.
    pub chain_id: ChainId,
    /// Number of shards.
    pub shards: u64,
    /// Validators per shard.
    pub validators_per_shard: usize,
    /// p2p port of the first validator.
    pub base_port: u16,
    /// Number of bench accounts.
    pub bench_accounts: usize,
    /// The validators, in port order.
    pub validators: Vec<DevnetValidator>,
    /// The API node (absent in devnets generated before it existed).
    #[serde(default)]
    pub api: Option<DevnetApiNode>,
}

/// The API node of a generated devnet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetApiNode {
    /// Name (`api`).
    pub name: String,
    /// Home directory, relative to the devnet directory.
    pub home: PathBuf,
    /// p2p address (the port after the last validator's).
    pub p2p_address: String,
    /// Its p2p identity.
    pub consensus_key: PublicKey,
}

/// A dev or bench account with its secret key (the devnet's `accounts.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevAccount {
    /// Account id (a name for dev accounts, the 64-hex key for bench accounts).
    pub id: AccountId,
    /// `dev` or `bench`.
    pub kind: String,
    /// The shard holding the account.
    pub shard: u32,
    /// Its public key.
    pub public_key: PublicKey,
    /// Its secret key seed (hex).
    pub secret_key: String,
    /// Genesis balance.
    pub balance: Amount,
}

/// File names in a devnet directory.
pub mod paths {
    /// The manifest.
    pub const MANIFEST: &str = "devnet.json";
    /// The genesis file.
    pub const GENESIS: &str = "genesis.json";
    /// The peers file.
    pub const PEERS: &str = "peers.json";
    /// Dev and bench accounts with secret keys.
    pub const ACCOUNTS: &str = "accounts.json";
    /// Validator homes.
    pub const NODES: &str = "nodes";
    /// Log files.
    pub const LOGS: &str = "logs";
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Creates `dir` (and parents) with mode `mode`.
pub fn create_private_dir(dir: &Path, mode: u32) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    Ok(())
}

/// Sets up one validator home: keys (kept if present), `config.toml` (refused if present
/// unless `force`; its `[shard]` table holds the fields named in `shard_fields`, all when
/// `None`), `data/`. Returns the consensus public key.
pub fn init_home(
    home: &Path,
    node: &NodeSection,
    shard: &ShardConfig,
    shard_fields: Option<&[&str]>,
    force: bool,
) -> anyhow::Result<PublicKey> {
    create_private_dir(home, 0o700)?;
    for kind in [KeyKind::Consensus, KeyKind::Network] {
        if !crate::keys::key_path(home, kind).exists() {
            write_key(home, kind, &SecretKey::generate(), false)?;
        }
    }
    let config = home.join("config.toml");
    if config.exists() && !force {
        bail!(
            "{} already exists (use --force to replace it)",
            config.display()
        );
    }
    write_atomic(
        &config,
        render_config_toml(node, shard, shard_fields)?.as_bytes(),
        0o600,
    )?;
    create_private_dir(&home.join("data"), 0o700)?;
    Ok(load_key(home, KeyKind::Consensus)?.public_key())
}

/// Generates a devnet in `dir` (which must not hold a devnet yet).
pub fn generate_devnet(dir: &Path, p: &DevnetParams) -> anyhow::Result<DevnetManifest> {
    if dir.join(paths::MANIFEST).exists() {
        bail!("{} already holds a devnet", dir.display());
    }
    let shards = p.config.num_shards;
    let n = usize::try_from(shards)? * p.validators_per_shard;
    if p.bench_accounts > MAX_BENCH_ACCOUNTS {
        bail!("at most {MAX_BENCH_ACCOUNTS} bench accounts");
    }
    if usize::from(p.base_port) + n > usize::from(u16::MAX) + 1 {
        bail!(
            "--base-port {}: {n} validators need ports up to {}",
            p.base_port,
            usize::from(p.base_port) + n - 1
        );
    }
    create_private_dir(dir, 0o700)?;
    create_private_dir(&dir.join(paths::NODES), 0o700)?;
    create_private_dir(&dir.join(paths::LOGS), 0o700)?;

    // Validator homes and genesis entries.
    let mut validators = Vec::with_capacity(n);
    let mut homes = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("v{i:02}");
        let home = Path::new(paths::NODES).join(&name);
        let p2p_address = format!("127.0.0.1:{}", usize::from(p.base_port) + i);
        let node = NodeSection {
            name: Some(name.clone()),
            p2p_listen: None,
            api_listen: None,
        };
        let consensus_key = init_home(&dir.join(&home), &node, &p.config, None, true)?;
        let network_key = load_key(&dir.join(&home), KeyKind::Network)?.public_key();
        validators.push(GenesisValidator {
            name: name.clone(),
            consensus_key,
            network_key,
            p2p_address,
            reputation: DEVNET_REPUTATION,
        });
        homes.push(home);
    }

    // Accounts.
    let layout = ShardLayout::uniform(usize::try_from(shards)?)
        .map_err(|e| anyhow::anyhow!("shard layout: {e}"))?;
    let mut accounts = Vec::new();
    let mut secrets = Vec::new();
    let mut add = |id: AccountId, key: SecretKey, kind: &str, balance: u128| {
        let shard = layout.shard_of_account(&id).0;
        accounts.push(GenesisAccount {
            id: id.clone(),
            public_key: key.public_key(),
            balance: Amount(balance),
        });
        secrets.push(DevAccount {
            id,
            kind: kind.into(),
            shard,
            public_key: key.public_key(),
            secret_key: hex::encode(key.to_seed()),
            balance: Amount(balance),
        });
    };
    for name in DEV_ACCOUNTS {
        add(
            AccountId::new(name)?,
            SecretKey::generate(),
            "dev",
            DEV_ACCOUNT_BALANCE,
        );
    }
    for _ in 0..p.bench_accounts {
        let key = SecretKey::generate();
        add(
            AccountId::implicit(&key.public_key()),
            key,
            "bench",
            BENCH_ACCOUNT_BALANCE,
        );
    }

    let genesis = Genesis {
        chain_id: p.chain_id.clone(),
        genesis_time_ms: now_ms(),
        shard_config: p.config.clone(),
        strategy: DEVNET_STRATEGY.into(),
        validators,
        accounts,
        config_authority: AccountId::new(DEV_ACCOUNTS[0])?,
    };
    let spec = network_spec(&genesis).context("the generated genesis")?;
    let api_home = Path::new(paths::NODES).join(API_NODE_NAME);
    let api = DevnetApiNode {
        name: API_NODE_NAME.into(),
        p2p_address: format!("127.0.0.1:{}", usize::from(p.base_port) + n),
        consensus_key: init_home(
            &dir.join(&api_home),
            &NodeSection {
                name: Some(API_NODE_NAME.into()),
                p2p_listen: None,
                api_listen: None,
            },
            &p.config,
            None,
            true,
        )?,
        home: api_home,
    };
    let mut peers: Vec<PeerEntry> = genesis
        .validators
        .iter()
        .map(|v| PeerEntry {
            name: v.name.clone(),
            consensus_key: v.consensus_key,
            address: v.p2p_address.clone(),
            role: PeerRole::Validator,
        })
        .collect();
    peers.push(PeerEntry {
        name: api.name.clone(),
        consensus_key: api.consensus_key,
        address: api.p2p_address.clone(),
        role: PeerRole::Api,
    });
    let manifest = DevnetManifest {
        chain_id: p.chain_id.clone(),
        shards,
        validators_per_shard: p.validators_per_shard,
        base_port: p.base_port,
        bench_accounts: p.bench_accounts,
        validators: genesis
            .validators
            .iter()
            .zip(homes)
            .map(|(v, home)| {
                let role = role_of(&spec, &v.consensus_key);
                DevnetValidator {
                    name: v.name.clone(),
                    home,
                    p2p_address: v.p2p_address.clone(),
                    consensus_key: v.consensus_key,
                    shard: role.shard.map_or(u32::MAX, |s| s.0),
                    beacon: role.beacon,
                }
            })
            .collect(),
        api: Some(api),
    };
    write_json(&dir.join(paths::GENESIS), &genesis, 0o644)?;
    write_json(&dir.join(paths::PEERS), &peers, 0o644)?;
    write_json(&dir.join(paths::ACCOUNTS), &secrets, 0o600)?;
    // The manifest last: its presence marks a complete devnet.
    write_json(&dir.join(paths::MANIFEST), &manifest, 0o644)?;
    Ok(manifest)
}
