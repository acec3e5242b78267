//! Command-line interface: one clap struct per concern, so later subcommands (`init`,
//! `keys`, `run`, `devnet`, `bench`) slot in beside the existing ones.

use crate::{
    bench::BenchArgs,
    config::{ShardConfigArgs, load_shard_config},
    devnet::DevnetArgs,
    init::InitArgs,
    keys::KeysCommand,
    run::RunArgs,
    shards_cmd::ShardsCommand,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Vision Node: a sharded proof-of-stake blockchain node.
#[derive(Debug, Parser)]
#[command(name = "vision-node", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version.
    Version,
    /// Sharding tools: plan validator committees.
    #[command(subcommand)]
    Shards(ShardsCommand),
    /// Manage a node's consensus and network keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the effective sharding configuration as JSON (flags > VISION_* env >
    /// HOME/config.toml > defaults), or the error that would stop a node from starting.
    Config(ConfigCommand),
    /// Set up a validator home (keys if missing, config.toml, data/) and print its genesis
    /// entry.
    Init(InitArgs),
    /// Run a validator from its home until SIGINT or SIGTERM (authenticated p2p, storage
    /// under HOME/data, HOME/status.json refreshed every second).
    Run(RunArgs),
    /// Generate (or reuse) a local network and run one supervised process per validator on
    /// 127.0.0.1 until Ctrl-C.
    Devnet(DevnetArgs),
    /// Measure throughput and latency from finality (TPS, P50/P95/P99, CPU and memory per
    /// role) on self-started devnets or a running node, against the signature-verification
    /// ceiling of this machine.
    Bench(BenchArgs),
}

/// `vision-node config`.
#[derive(Debug, Args)]
pub struct ConfigCommand {
    /// Node home directory whose config.toml to read (optional).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// ShardConfig overrides.
    #[command(flatten)]
    pub shard: ShardConfigArgs,
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Version => {
                println!("vision-node {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
            Command::Shards(cmd) => cmd.run(),
            Command::Keys(cmd) => cmd.run(),
            Command::Init(cmd) => cmd.run(),
            Command::Run(cmd) => cmd.run(),
            Command::Devnet(cmd) => cmd.run(),
            Command::Bench(cmd) => cmd.run(),
            Command::Config(cmd) => {
                let config = load_shard_config(cmd.home.as_deref(), &cmd.shard)?;
                println!("{}", serde_json::to_string_pretty(&config)?);
                Ok(())
            }
        }
    }
}
