//! `vision-node devnet`: generates (or reuses) a local network and runs it, one OS process per
//! validator (`vision-node run`), supervised: a validator that exits is restarted after a
//! back-off and the restart is logged; Ctrl-C (SIGINT) or SIGTERM stops every validator
//! cleanly (SIGTERM, then SIGKILL after a timeout).
//!
//! The API node serves the HTTP API on `--api-port`; validator `i` serves its own shard's HTTP
//! API on `api port + 1 + i` ([`validator_api_ports`]).

use crate::{
    config::{ShardConfigArgs, check_against_genesis, load_shard_config_with_sources},
    files::{read_genesis, read_json, write_json},
    logging::LogFormat,
    netgen::{
        DevnetApiNode, DevnetManifest, DevnetParams, DevnetValidator, generate_devnet, paths,
    },
};
use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::{
    fs,
    net::TcpListener,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};
use tokio::signal::unix::{SignalKind, signal};
use vision_types::ChainId;

/// Default devnet directory.
pub const DEFAULT_DIR: &str = ".vision-devnet";
/// Default p2p port of the first validator.
pub const DEFAULT_BASE_PORT: u16 = 31_000;
/// Default validators per shard (one fault tolerated).
pub const DEFAULT_VALIDATORS_PER_SHARD: usize = 4;
/// Default number of funded bench accounts.
pub const DEFAULT_BENCH_ACCOUNTS: usize = 100;
/// Default chain id of a devnet.
pub const DEFAULT_CHAIN_ID: &str = "vision-devnet";
/// First restart back-off of a validator that exited, in milliseconds (doubles per quick
/// exit).
pub const RESTART_BACKOFF_MIN_MS: u64 = 1_000;
/// Largest restart back-off, in milliseconds.
pub const RESTART_BACKOFF_MAX_MS: u64 = 30_000;
/// A validator that ran this long before exiting restarts after the minimum back-off, in
/// milliseconds.
pub const STABLE_RUN_MS: u64 = 60_000;
/// How often children are checked, in milliseconds.
pub const SUPERVISE_INTERVAL_MS: u64 = 200;
/// How long stopping validators may take before they are killed, in milliseconds.
pub const CHILD_STOP_TIMEOUT_MS: u64 = 20_000;
/// Default port of the devnet API node's HTTP API.
pub const DEFAULT_API_PORT: u16 = 3030;
/// File (in the devnet directory) listing the supervised processes, rewritten every second.
pub const PROCESSES_FILE: &str = "processes.json";
/// File in a process's home that keeps the supervisor from restarting it while it exists
/// (maintenance: create it, stop the process, remove it to let the supervisor restart it).
pub const HOLD_FILE: &str = "hold";

/// `vision-node devnet`.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Devnet directory (created, or reused if it holds a devnet).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Number of shards [default: --num-shards / VISION_NUM_SHARDS / 4; when reusing, the
    /// devnet's].
    #[arg(long, value_name = "N")]
    pub shards: Option<u64>,
    /// Validators per shard committee, at least 3 [default: 4; when reusing, the devnet's].
    #[arg(long, value_name = "N")]
    pub validators_per_shard: Option<usize>,
    /// p2p port of the first validator; validator i listens on 127.0.0.1:(base port + i)
    /// [default: 31000; when reusing, the devnet's].
    #[arg(long, value_name = "PORT")]
    pub base_port: Option<u16>,
    /// Funded implicit bench accounts in genesis (new devnets only).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BENCH_ACCOUNTS)]
    pub bench_accounts: usize,
    /// Chain id (new devnets only).
    #[arg(long, value_name = "ID", default_value = DEFAULT_CHAIN_ID)]
    pub chain_id: String,
    /// Delete the devnet directory (keys, chain data, logs) and generate a new network.
    #[arg(long)]
    pub fresh: bool,
    /// Generate (or check) the devnet directory and exit without starting anything.
    #[arg(long)]
    pub no_start: bool,
    /// Port of the API node's HTTP API and dashboard on 127.0.0.1. Validator i serves the HTTP
    /// API of its own shard on the port (api port + 1 + i).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_API_PORT)]
    pub api_port: u16,
    /// Log format of the validators' log files.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// ShardConfig of a new devnet's genesis (flags > VISION_* env > defaults); when reusing,
    /// explicit values must match the devnet's genesis.
    #[command(flatten)]
    pub shard: ShardConfigArgs,
}

/// What one supervised process is.
struct ProcSpec {
    name: String,
    role: &'static str,
    /// The validator's shard (`None` for the API node).
    shard: Option<u32>,
    beacon: bool,
    home: PathBuf,
    p2p_address: String,
    /// Where it serves its HTTP API.
    api_address: String,
    /// Arguments after `run --home ...` (the API listen address; the API node's role, dev
    /// accounts and process list).
    extra_args: Vec<String>,
}

impl ProcSpec {
    fn validator(v: &DevnetValidator, api_port: u16) -> Self {
        let api_address = format!("127.0.0.1:{api_port}");
        ProcSpec {
            name: v.name.clone(),
            role: "validator",
            shard: Some(v.shard),
            beacon: v.beacon,
            home: v.home.clone(),
            p2p_address: v.p2p_address.clone(),
            extra_args: vec!["--api-listen".into(), api_address.clone()],
            api_address,
        }
    }

    fn api(dir: &Path, a: &DevnetApiNode, api_port: u16) -> Self {
        let api_address = format!("127.0.0.1:{api_port}");
        ProcSpec {
            name: a.name.clone(),
            role: "api",
            shard: None,
            beacon: false,
            home: a.home.clone(),
            p2p_address: a.p2p_address.clone(),
            api_address: api_address.clone(),
            extra_args: vec![
                "--role".into(),
                "api".into(),
                "--api-listen".into(),
                api_address,
                "--dev-accounts".into(),
                dir.join(paths::ACCOUNTS).display().to_string(),
                "--processes".into(),
                dir.join(PROCESSES_FILE).display().to_string(),
            ],
        }
    }
}

/// One supervised process.
struct Proc {
    v: ProcSpec,
    child: Option<Child>,
    started: Instant,
    restarts: u32,
    backoff: Duration,
    restart_at: Option<Instant>,
    last_exit: Option<String>,
    /// Exited while its hold file existed: not restarted until the file is removed.
    held: bool,
}

/// A line of `processes.json` (read by the devnet's API node for `GET /status`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessEntry {
    /// Node name.
    pub name: String,
    /// `validator` or `api`.
    pub role: String,
    /// The validator's shard.
    pub shard: Option<u32>,
    /// Beacon committee member.
    pub beacon: bool,
    /// Process id while running.
    pub pid: Option<u32>,
    /// p2p address.
    pub p2p_address: String,
    /// Where it serves its HTTP API (`127.0.0.1:PORT`; a validator's is for its shard).
    #[serde(default)]
    pub api_address: Option<String>,
    /// Home directory (holds `status.json`).
    pub home: PathBuf,
    /// Log file.
    pub log: PathBuf,
    /// Restarts so far.
    pub restarts: u32,
    /// `running`, `restarting`, `held` (exited while its hold file exists; restarted once the
    /// file is removed) or `stopped`.
    pub state: String,
    /// How the last run ended.
    pub last_exit: Option<String>,
}

fn log_path(dir: &Path, v: &ProcSpec) -> PathBuf {
    dir.join(paths::LOGS).join(format!("{}.log", v.name))
}

fn say(msg: impl AsRef<str>) {
    println!("devnet: {}", msg.as_ref());
}

impl DevnetArgs {
    /// Prepares the directory: generates a new devnet, or checks and reuses the existing one.
    fn prepare(&self) -> anyhow::Result<DevnetManifest> {
        let dir = &self.dir;
        let (mut config, sources) = load_shard_config_with_sources(None, &self.shard)?;
        if let Some(shards) = self.shards {
            let explicit = sources.iter().find(|s| s.field == "num_shards");
            if let Some(s) = explicit
                && config.num_shards != shards
            {
                bail!(
                    "--shards {shards} contradicts {} = {}",
                    s.source,
                    config.num_shards
                );
            }
            config.num_shards = shards;
            config
                .validate()
                .map_err(|e| anyhow::anyhow!("--shards {shards}: {e}"))?;
        }
        if self.fresh && dir.exists() {
            let is_devnet = dir.join(paths::MANIFEST).exists()
                || fs::read_dir(dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .next()
                    .is_none();
            if !is_devnet {
                bail!(
                    "--fresh: {} exists but is not a devnet directory (no {}); refusing to \
                     delete it",
                    dir.display(),
                    paths::MANIFEST
                );
            }
            fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))?;
            say(format!("deleted {}", dir.display()));
        }
        if dir.join(paths::MANIFEST).exists() {
            let m: DevnetManifest = read_json(&dir.join(paths::MANIFEST), "devnet manifest")?;
            let genesis_path = dir.join(paths::GENESIS);
            let genesis = read_genesis(&genesis_path)?;
            let mismatch = |what: &str, want: String, have: String| {
                anyhow::anyhow!(
                    "{} holds a devnet with {what} {have}, not {want} (use --fresh to \
                     regenerate it, or another --dir)",
                    dir.display()
                )
            };
            if let Some(s) = self.shards
                && s != m.shards
            {
                return Err(mismatch("shards", s.to_string(), m.shards.to_string()));
            }
            if let Some(n) = self.validators_per_shard
                && n != m.validators_per_shard
            {
                return Err(mismatch(
                    "validators per shard",
                    n.to_string(),
                    m.validators_per_shard.to_string(),
                ));
            }
            if let Some(p) = self.base_port
                && p != m.base_port
            {
                return Err(mismatch(
                    "base port",
                    p.to_string(),
                    m.base_port.to_string(),
                ));
            }
            let sources: Vec<_> = sources
                .into_iter()
                .filter(|s| !(s.field == "num_shards" && self.shards.is_some()))
                .collect();
            check_against_genesis(
                &config,
                &sources,
                &genesis.shard_config,
                &genesis_path.display().to_string(),
            )
            .context("reusing the devnet (use --fresh to regenerate it)")?;
            say(format!("reusing {}", dir.display()));
            return Ok(m);
        }
        let validators_per_shard = self
            .validators_per_shard
            .unwrap_or(DEFAULT_VALIDATORS_PER_SHARD);
        if validators_per_shard < vision_sharding::MIN_SHARD_SIZE {
            bail!(
                "--validators-per-shard {validators_per_shard}: at least {} (4 tolerates one \
                 fault)",
                vision_sharding::MIN_SHARD_SIZE
            );
        }
        if validators_per_shard > vision_sharding::MAX_SHARD_SIZE {
            bail!(
                "--validators-per-shard {validators_per_shard}: at most {}",
                vision_sharding::MAX_SHARD_SIZE
            );
        }
        let params = DevnetParams {
            chain_id: ChainId::new(&self.chain_id)
                .map_err(|e| anyhow::anyhow!("--chain-id {:?}: {e}", self.chain_id))?,
            validators_per_shard,
            base_port: self.base_port.unwrap_or(DEFAULT_BASE_PORT),
            bench_accounts: self.bench_accounts,
            config,
        };
        let m = generate_devnet(dir, &params)?;
        say(format!(
            "generated {} ({} shards x {} validators, {} bench accounts)",
            dir.display(),
            m.shards,
            m.validators_per_shard,
            m.bench_accounts
        ));
        Ok(m)
    }

    /// Runs `devnet`.
    pub fn run(self) -> anyhow::Result<()> {
        let manifest = self.prepare()?;
        print_table(&self.dir, &manifest);
        if self.no_start {
            return Ok(());
        }
        let Some(api) = &manifest.api else {
            bail!(
                "{} was generated before devnets had an API node: regenerate it with --fresh",
                self.dir.display()
            );
        };
        let api_ports =
            validator_api_ports(self.api_port, manifest.validators.len(), manifest.base_port)?;
        let mut procs: Vec<ProcSpec> = manifest
            .validators
            .iter()
            .zip(&api_ports)
            .map(|(v, port)| ProcSpec::validator(v, *port))
            .collect();
        procs.push(ProcSpec::api(&self.dir, api, self.api_port));
        for v in &procs {
            TcpListener::bind(&v.p2p_address).with_context(|| {
                format!(
                    "{}: p2p address {} is not free (is this devnet already running? or \
                     use --fresh --base-port)",
                    v.name, v.p2p_address
                )
            })?;
        }
        TcpListener::bind(("127.0.0.1", self.api_port)).with_context(|| {
            format!(
                "the API port 127.0.0.1:{} is not free (is this devnet already running? or \
                 use --api-port)",
                self.api_port
            )
        })?;
        for v in procs.iter().filter(|v| v.role == "validator") {
            TcpListener::bind(&v.api_address).with_context(|| {
                format!(
                    "{}: its HTTP API port {} (--api-port + 1 + its index) is not free (is \
                     this devnet already running? or use another --api-port)",
                    v.name, v.api_address
                )
            })?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the supervisor runtime")?;
        say(format!(
            "HTTP API on http://127.0.0.1:{port}/ ; dashboard: \
             http://127.0.0.1:{port}/shard-dashboard.html",
            port = self.api_port
        ));
        if let (Some(first), Some(last)) = (api_ports.first(), api_ports.last()) {
            say(format!(
                "each validator's own HTTP API (its shard only): v00 on http://127.0.0.1:{first}/ \
                 ... v{:02} on :{last} (validator i on port {} + 1 + i)",
                api_ports.len() - 1,
                self.api_port
            ));
        }
        runtime.block_on(supervise(self.dir.clone(), self.log_format, procs))
    }
}

/// The HTTP API port of each of `validators` validators: validator `i` gets
/// `api_port + 1 + i`. Refused if a port would pass 65535, or if the HTTP ports (the API
/// node's and the validators') overlap the devnet's p2p ports (`base_port` to
/// `base_port + validators`, the last one the API node's).
pub fn validator_api_ports(
    api_port: u16,
    validators: usize,
    base_port: u16,
) -> anyhow::Result<Vec<u16>> {
    let last = usize::from(api_port) + validators;
    if last > usize::from(u16::MAX) {
        bail!(
            "--api-port {api_port}: the {validators} validators' HTTP APIs need ports {} to \
             {last}, past 65535; choose a lower --api-port",
            usize::from(api_port) + 1
        );
    }
    let http = usize::from(api_port)..=last;
    let p2p = usize::from(base_port)..=usize::from(base_port) + validators;
    if http.start() <= p2p.end() && p2p.start() <= http.end() {
        bail!(
            "--api-port {api_port}: the HTTP ports {}-{} (the API node's, then validator i's on \
             api port + 1 + i) overlap the p2p ports {}-{} (--base-port); choose another \
             --api-port",
            http.start(),
            http.end(),
            p2p.start(),
            p2p.end()
        );
    }
    Ok((1..=validators)
        .map(|i| u16::try_from(usize::from(api_port) + i).expect("checked above"))
        .collect())
}

fn print_table(dir: &Path, m: &DevnetManifest) {
    say(format!(
        "network {}: {} shards x {} validators",
        m.chain_id, m.shards, m.validators_per_shard
    ));
    println!(
        "  {:<5} {:>5}  {:<6}  {:<21}  {:<30}  log",
        "name", "shard", "beacon", "p2p", "home"
    );
    for v in &m.validators {
        println!(
            "  {:<5} {:>5}  {:<6}  {:<21}  {:<30}  {}",
            v.name,
            v.shard,
            if v.beacon { "yes" } else { "-" },
            v.p2p_address,
            dir.join(&v.home).display(),
            dir.join(paths::LOGS)
                .join(format!("{}.log", v.name))
                .display()
        );
    }
    println!(
        "  genesis: {}   peers: {}   dev accounts and keys: {}",
        dir.join(paths::GENESIS).display(),
        dir.join(paths::PEERS).display(),
        dir.join(paths::ACCOUNTS).display()
    );
    if let Some(api) = &m.api {
        println!(
            "  API node: {} (p2p {}, home {}, log {})",
            api.name,
            api.p2p_address,
            dir.join(&api.home).display(),
            dir.join(paths::LOGS)
                .join(format!("{}.log", api.name))
                .display()
        );
    }
}

fn spawn(dir: &Path, v: &ProcSpec, log_format: LogFormat) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the vision-node executable")?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(dir, v))
        .with_context(|| format!("opening {}", log_path(dir, v).display()))?;
    let child = Command::new(exe)
        .arg("run")
        .arg("--home")
        .arg(dir.join(&v.home))
        .arg("--genesis")
        .arg(dir.join(paths::GENESIS))
        .arg("--peers")
        .arg(dir.join(paths::PEERS))
        .arg("--log-format")
        .arg(log_format.as_str())
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .args(&v.extra_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Own process group: a terminal's Ctrl-C reaches the supervisor only, which stops
        // the validators itself (and does not restart them).
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", v.name))?;
    Ok(child)
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => status.to_string(),
    }
}

fn signal_child(child: &Child, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

fn write_processes(dir: &Path, procs: &[Proc]) {
    let entries: Vec<ProcessEntry> = procs
        .iter()
        .map(|p| ProcessEntry {
            name: p.v.name.clone(),
            role: p.v.role.into(),
            shard: p.v.shard,
            beacon: p.v.beacon,
            pid: p.child.as_ref().map(Child::id),
            p2p_address: p.v.p2p_address.clone(),
            api_address: Some(p.v.api_address.clone()),
            home: dir.join(&p.v.home),
            log: log_path(dir, &p.v),
            restarts: p.restarts,
            state: if p.child.is_some() {
                "running"
            } else if p.held {
                "held"
            } else if p.restart_at.is_some() {
                "restarting"
            } else {
                "stopped"
            }
            .into(),
            last_exit: p.last_exit.clone(),
        })
        .collect();
    if let Err(e) = write_json(&dir.join(PROCESSES_FILE), &entries, 0o644) {
        say(format!("writing {PROCESSES_FILE}: {e:#}"));
    }
}

async fn supervise(
    dir: PathBuf,
    log_format: LogFormat,
    specs: Vec<ProcSpec>,
) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let min_backoff = Duration::from_millis(RESTART_BACKOFF_MIN_MS);
    let mut procs = Vec::with_capacity(specs.len());
    for v in specs {
        let child = spawn(&dir, &v, log_format)?;
        say(format!("started {} (pid {})", v.name, child.id()));
        procs.push(Proc {
            v,
            child: Some(child),
            started: Instant::now(),
            restarts: 0,
            backoff: min_backoff,
            restart_at: None,
            last_exit: None,
            held: false,
        });
    }
    say("running; Ctrl-C stops every process");
    let mut last_write = Instant::now() - Duration::from_secs(1);
    let reason = loop {
        tokio::select! {
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = tokio::time::sleep(Duration::from_millis(SUPERVISE_INTERVAL_MS)) => {}
        }
        let now = Instant::now();
        for p in &mut procs {
            if let Some(child) = &mut p.child {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        let ran = now.duration_since(p.started);
                        p.backoff = if ran >= Duration::from_millis(STABLE_RUN_MS) {
                            min_backoff
                        } else {
                            p.backoff
                        };
                        let exit = describe(status);
                        say(format!(
                            "{} (pid {}) exited ({exit}) after {:.1}s; restarting in {} ms \
                             (see {})",
                            p.v.name,
                            child.id(),
                            ran.as_secs_f64(),
                            p.backoff.as_millis(),
                            log_path(&dir, &p.v).display()
                        ));
                        p.last_exit = Some(exit);
                        p.child = None;
                        p.restart_at = Some(now + p.backoff);
                        p.backoff =
                            (p.backoff * 2).min(Duration::from_millis(RESTART_BACKOFF_MAX_MS));
                    }
                    Ok(None) => {}
                    Err(e) => say(format!("{}: waiting: {e}", p.v.name)),
                }
            }
            if p.child.is_none() && p.restart_at.is_some() {
                let hold = dir.join(&p.v.home).join(HOLD_FILE);
                let held = hold.exists();
                if held != p.held {
                    say(if held {
                        format!(
                            "{} held: not restarting it while {} exists",
                            p.v.name,
                            hold.display()
                        )
                    } else {
                        format!("{} released: restarting it", p.v.name)
                    });
                    p.held = held;
                }
            }
            if p.child.is_none()
                && !p.held
                && let Some(at) = p.restart_at
                && now >= at
            {
                match spawn(&dir, &p.v, log_format) {
                    Ok(child) => {
                        p.restarts += 1;
                        say(format!(
                            "restarted {} (pid {}, restart #{})",
                            p.v.name,
                            child.id(),
                            p.restarts
                        ));
                        p.child = Some(child);
                        p.started = now;
                        p.restart_at = None;
                    }
                    Err(e) => {
                        say(format!("restarting {}: {e:#}", p.v.name));
                        p.restart_at = Some(now + p.backoff);
                    }
                }
            }
        }
        if now.duration_since(last_write) >= Duration::from_secs(1) {
            write_processes(&dir, &procs);
            last_write = now;
        }
    };
    say(format!("{reason}: stopping {} processes", procs.len()));
    for p in &procs {
        if let Some(child) = &p.child {
            signal_child(child, rustix::process::Signal::TERM);
        }
    }
    let deadline = Instant::now() + Duration::from_millis(CHILD_STOP_TIMEOUT_MS);
    let mut killed = 0;
    loop {
        let mut running = 0;
        for p in &mut procs {
            if let Some(child) = &mut p.child {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        say(format!("{} stopped ({})", p.v.name, describe(status)));
                        p.child = None;
                    }
                    _ => running += 1,
                }
            }
        }
        if running == 0 {
            break;
        }
        if Instant::now() >= deadline {
            for p in &mut procs {
                if let Some(mut child) = p.child.take() {
                    say(format!(
                        "{} did not stop within {CHILD_STOP_TIMEOUT_MS} ms; killing it",
                        p.v.name
                    ));
                    let _ = child.kill();
                    let _ = child.wait();
                    killed += 1;
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(SUPERVISE_INTERVAL_MS)).await;
    }
    for p in &mut procs {
        p.restart_at = None;
        p.held = false;
    }
    write_processes(&dir, &procs);
    say(format!(
        "all processes stopped ({killed} killed); chain data kept in {}",
        dir.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_api_ports_follow_the_api_port() {
        assert_eq!(
            validator_api_ports(3030, 4, 31_000).unwrap(),
            vec![3031, 3032, 3033, 3034]
        );
        assert_eq!(
            validator_api_ports(3030, 0, 31_000).unwrap(),
            Vec::<u16>::new()
        );
        // The last port may be 65535, not beyond.
        assert_eq!(
            validator_api_ports(65_533, 2, 31_000).unwrap(),
            vec![65_534, 65_535]
        );
        let err = validator_api_ports(65_533, 3, 31_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("65535") && err.contains("--api-port"), "{err}");
    }

    #[test]
    fn validator_api_ports_never_overlap_p2p_ports() {
        // 16 validators on 31000-31015, the API node's p2p port 31016.
        for api_port in [30_984, 31_000, 31_010, 31_016] {
            let err = validator_api_ports(api_port, 16, 31_000)
                .unwrap_err()
                .to_string();
            assert!(err.contains("overlap"), "{api_port}: {err}");
        }
        // Right below and right above the p2p range.
        assert!(validator_api_ports(30_983, 16, 31_000).is_ok());
        assert!(validator_api_ports(31_017, 16, 31_000).is_ok());
    }
}
