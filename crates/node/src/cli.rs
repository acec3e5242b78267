//! Command-line interface: one clap struct per concern, so later subcommands (`init`,
//! `keys`, `run`, `devnet`, `bench`) slot in beside the existing ones.

use crate::shards_cmd::ShardsCommand;
use clap::{Parser, Subcommand};

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
        }
    }
}
