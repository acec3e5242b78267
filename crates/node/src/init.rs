//! `vision-node init`: sets up one validator home (keys if missing, `config.toml`, `data/`)
//! and prints the validator's entry for the network's genesis file.

use crate::{
    config::{NodeSection, ShardConfigArgs, load_shard_config_with_sources},
    files::resolve_address,
    keys::{KeyKind, load_key},
    netgen::init_home,
};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use vision_types::{ChainId, GenesisValidator};

/// Default p2p address written into the printed genesis entry.
pub const DEFAULT_P2P_ADDRESS: &str = "127.0.0.1:31000";

/// `vision-node init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Node home directory to create (keys/, config.toml, data/). Existing keys are kept.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Validator name for the genesis entry [default: the home directory's name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// `host:port` where other validators reach this node's p2p listener (goes into the
    /// genesis entry).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_P2P_ADDRESS)]
    pub p2p_address: String,
    /// Address the p2p listener binds, if not the one above (e.g. 0.0.0.0:31000 behind NAT).
    #[arg(long, value_name = "IP:PORT")]
    pub p2p_listen: Option<std::net::SocketAddr>,
    /// Address this node serves its HTTP API on (written to config.toml `[node] api_listen`;
    /// a validator serves the API of its own shard). Without it a validator serves none.
    #[arg(long, value_name = "IP:PORT")]
    pub api_listen: Option<std::net::SocketAddr>,
    /// Chain id the node expects (checked against genesis by `run`; informational here).
    #[arg(long, value_name = "ID")]
    pub chain_id: Option<String>,
    /// Replace an existing config.toml.
    #[arg(long)]
    pub force: bool,
    /// ShardConfig values to write to config.toml's [shard] table (only those given by a flag
    /// or a VISION_* variable; genesis decides the rest); they must match the network's
    /// genesis.
    #[command(flatten)]
    pub shard: ShardConfigArgs,
}

impl InitArgs {
    /// Runs `init`.
    pub fn run(self) -> anyhow::Result<()> {
        if let Some(id) = &self.chain_id {
            ChainId::new(id).map_err(|e| anyhow::anyhow!("--chain-id {id:?}: {e}"))?;
        }
        resolve_address(&self.p2p_address).context("--p2p-address")?;
        let (shard, sources) = load_shard_config_with_sources(None, &self.shard)?;
        let explicit: Vec<&str> = sources.iter().map(|s| s.field).collect();
        let name = match self.name {
            Some(n) => n,
            None => self
                .home
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("--home has no directory name; give --name")?,
        };
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_whitespace) {
            anyhow::bail!("--name {name:?}: 1 to 64 characters, no spaces");
        }
        let node = NodeSection {
            name: Some(name.clone()),
            p2p_listen: self.p2p_listen,
            api_listen: self.api_listen,
        };
        let consensus_key = init_home(&self.home, &node, &shard, Some(&explicit), self.force)?;
        let network_key = load_key(&self.home, KeyKind::Network)?.public_key();
        let entry = GenesisValidator {
            name,
            consensus_key,
            network_key,
            p2p_address: self.p2p_address,
            reputation: 0.9,
        };
        eprintln!(
            "initialized {} (keys/, config.toml, data/); add this entry to the network's \
             genesis.json \"validators\", then start with `vision-node run --home {} \
             --genesis FILE`:",
            self.home.display(),
            self.home.display()
        );
        println!("{}", serde_json::to_string_pretty(&entry)?);
        Ok(())
    }
}
