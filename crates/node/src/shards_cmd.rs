//! `vision-node shards …`: committee planning from the command line.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::PathBuf;
use vision_sharding::{
    CommitteePlan, MAX_PLAN_NODES, MIN_SHARD_SIZE, NodeInfo, Reputation, ShardingMetrics, Strategy,
    generate_nodes, plan,
};

/// Largest nodes file read, in bytes.
const MAX_NODES_FILE_BYTES: u64 = 1 << 20;

/// `shards` subcommands.
#[derive(Debug, Subcommand)]
pub enum ShardsCommand {
    /// Plan shard committees for generated nodes or nodes from a JSON file.
    Plan(PlanArgs),
}

impl ShardsCommand {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            ShardsCommand::Plan(args) => args.run(),
        }
    }
}

/// Arguments of `shards plan`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["nodes", "nodes_file"])))]
pub struct PlanArgs {
    /// Number of nodes to generate (ids node-000, node-001, …; reputations in [0.5, 1.0]
    /// derived from --seed; capabilities transfer/contract/governance round robin).
    /// Exactly one of --nodes and --nodes-file is required.
    #[arg(long, value_name = "N")]
    pub nodes: Option<usize>,
    /// JSON file with the nodes to plan: [{"id": "a", "reputation": 0.85,
    /// "capabilities": ["transfer"]}, …]. Exactly one of --nodes and --nodes-file is required.
    #[arg(long, value_name = "FILE")]
    pub nodes_file: Option<PathBuf>,
    /// Planning strategy: hash (consistent hashing), adaptive (balanced reputation),
    /// workload (committees per transaction type) or hybrid (hash, then balancing swaps).
    #[arg(long, default_value = "adaptive", value_name = "STRATEGY")]
    pub strategy: String,
    /// Seed for the generated nodes' reputations (with --nodes).
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// Print JSON ({"strategy", "shards", "metrics"}) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One committee in the JSON output.
#[derive(Debug, Serialize)]
struct ShardOut<'a> {
    id: u32,
    members: &'a [String],
    coordinator: &'a str,
    avg_reputation: Reputation,
}

/// The JSON output of `shards plan`.
#[derive(Debug, Serialize)]
struct PlanOut<'a> {
    strategy: Strategy,
    shards: Vec<ShardOut<'a>>,
    metrics: ShardingMetrics,
}

impl PlanArgs {
    fn load_nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        match (self.nodes, &self.nodes_file) {
            (Some(n), None) => {
                if !(MIN_SHARD_SIZE..=MAX_PLAN_NODES).contains(&n) {
                    bail!(
                        "--nodes {n}: expected between {MIN_SHARD_SIZE} and {MAX_PLAN_NODES} nodes"
                    );
                }
                Ok(generate_nodes(n, self.seed))
            }
            (None, Some(path)) => {
                let meta = std::fs::metadata(path)
                    .with_context(|| format!("cannot read nodes file {}", path.display()))?;
                if meta.len() > MAX_NODES_FILE_BYTES {
                    bail!(
                        "nodes file {} is larger than {MAX_NODES_FILE_BYTES} bytes",
                        path.display()
                    );
                }
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read nodes file {}", path.display()))?;
                let nodes: Vec<NodeInfo> = serde_json::from_str(&text).with_context(|| {
                    format!(
                        "malformed nodes file {}: expected a JSON array of {{\"id\", \"reputation\" (0..1), \"capabilities\"}}",
                        path.display()
                    )
                })?;
                Ok(nodes)
            }
            _ => bail!("give exactly one of --nodes and --nodes-file"),
        }
    }

    /// Runs `shards plan`.
    pub fn run(self) -> anyhow::Result<()> {
        let strategy: Strategy = self.strategy.parse()?;
        let nodes = self.load_nodes()?;
        let plan = plan(&nodes, strategy)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&json_output(&plan))?);
        } else {
            print!("{}", table(&plan));
        }
        Ok(())
    }
}

fn json_output(plan: &CommitteePlan) -> PlanOut<'_> {
    PlanOut {
        strategy: plan.strategy,
        shards: plan
            .committees
            .iter()
            .map(|c| ShardOut {
                id: c.shard.0,
                members: &c.members,
                coordinator: &c.coordinator,
                avg_reputation: c.avg_reputation,
            })
            .collect(),
        metrics: ShardingMetrics::from_plan(plan),
    }
}

fn table(plan: &CommitteePlan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "strategy: {}   shards: {}   nodes: {}   reputation spread: {:.4}",
        plan.strategy,
        plan.committees.len(),
        plan.nodes.len(),
        plan.reputation_spread().as_f64()
    );
    let _ = writeln!(
        s,
        "{:>5}  {:>5}  {:>7}  {:<12}  {:<10}  members",
        "shard", "nodes", "avg_rep", "coordinator", "workload"
    );
    for c in &plan.committees {
        let _ = writeln!(
            s,
            "{:>5}  {:>5}  {:>7.4}  {:<12}  {:<10}  {}",
            c.shard.0,
            c.members.len(),
            c.avg_reputation.as_f64(),
            c.coordinator,
            c.workload.as_deref().unwrap_or("-"),
            c.members.join(", ")
        );
    }
    s
}
