//! `vision-node run`: one node process, a validator or an API node. Reads the home's keys and
//! configuration, the genesis and peers files, derives the network spec, and runs on the
//! commonware tokio runtime (storage under `HOME/data`) over authenticated p2p
//! (`commonware_p2p::authenticated::lookup`, encrypted TCP, peers authenticated by their
//! consensus key). Writes `HOME/status.json` every second, logs progress, and stops cleanly on
//! SIGINT or SIGTERM.
//!
//! An API node (`--role api`) votes nowhere: it follows every shard and the beacon (each
//! block checked against its committee's certificate and executed on its own state), serves
//! the HTTP API and dashboard (`--api-listen`, default 127.0.0.1:3030) and forwards the
//! transactions it admits to the shards' validators.
//!
//! A validator serves the HTTP API of its own shard when given an address (`--api-listen`,
//! `VISION_API_LISTEN` or config.toml `[node] api_listen`; none by default): reads from its
//! own finalized state, transactions of its shard's accounts into its own pool (and from there
//! to the rest of its committee), and 404 `shard_not_served` for anything about another shard.

use crate::api_node::{Committees, ConfigAuthority, NodeApi};
use crate::{
    config::{
        ShardConfigArgs, check_against_genesis, load_node_section, load_shard_config_with_sources,
    },
    files::{PeerEntry, PeerRole, peer_addresses, read_genesis, read_json},
    keys::{KeyKind, load_key},
    logging::{self, LogFormat},
    netgen::DevAccount,
    network::{max_message_size_bytes, network_spec, role_of},
    status::{BlockSummary, NodeStatus, STATUS_RECENT_BLOCKS, write_status},
};
use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use commonware_cryptography::{ChaCha20Poly1305, ed25519};
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Clock as _, Runner as _, Supervisor as _, tokio as cw_tokio};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{TryCollect as _, ordered::Map};
use std::{
    net::SocketAddr,
    num::NonZeroUsize,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use vision_consensus::{
    ChainChannels, Follower, NetworkSpec, RELAY, Validator, base_channel_quotas,
    keys::{to_cw_private_key, to_cw_public_key},
    relay_channel_quota, start_follower, start_validator,
};
use vision_types::{AccountId, Genesis, PublicKey, SecretKey};

/// How often the status file is rewritten, in milliseconds.
pub const STATUS_INTERVAL_MS: u64 = 1_000;
/// Longest wait for the applications while refreshing the status, in milliseconds.
pub const STATUS_REFRESH_TIMEOUT_MS: u64 = 2_000;
/// How often progress is logged, in status intervals.
pub const PROGRESS_LOG_EVERY_INTERVALS: u64 = 5;
/// Longest wait for the validator's engines to stop on shutdown, in milliseconds.
pub const SHUTDOWN_TIMEOUT_MS: u64 = 10_000;
/// Capacity of the p2p actors' mailboxes.
pub const P2P_MAILBOX_SIZE: usize = 1_024;
/// Tolerated clock skew between peers during the p2p handshake, in milliseconds.
pub const HANDSHAKE_SYNCHRONY_BOUND_MS: u64 = 5_000;
/// Oldest handshake accepted, in milliseconds.
pub const HANDSHAKE_MAX_AGE_MS: u64 = 10_000;
/// Worker threads of the tokio runtime.
pub const RUNTIME_WORKER_THREADS: usize = 2;

/// What a node process does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum NodeRole {
    /// A voting member of its shard committee (and of the beacon committee if chosen).
    #[default]
    Validator,
    /// A non-voting node that follows every shard and the beacon and serves the HTTP API.
    Api,
}

impl NodeRole {
    fn as_str(self) -> &'static str {
        match self {
            NodeRole::Validator => "validator",
            NodeRole::Api => "api",
        }
    }
}

/// Default listen address of the HTTP API on an API node.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:3030";

/// `vision-node run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Node home directory: keys/consensus.key, config.toml, data/ (created), status.json
    /// (written every second).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The network's genesis file [default: HOME/genesis.json].
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Peers file (JSON list of {"name", "consensus_key", "address"}) overriding the genesis
    /// p2p addresses [default: HOME/peers.json if it exists, else the addresses in genesis].
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    /// What this process runs: a `validator` (its key must be a genesis validator) or an
    /// `api` node (its key must be in the peers file with role `api`).
    #[arg(long, value_enum, default_value_t = NodeRole::Validator)]
    pub role: NodeRole,
    /// Where this node serves the HTTP API: an API node the whole network's (and the
    /// dashboard), a validator its own shard's [default: config.toml `[node] api_listen`, else
    /// 127.0.0.1:3030 on an API node and no HTTP API on a validator].
    #[arg(long, value_name = "ADDR", env = "VISION_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// Bearer token for the admin routes (flush, config). Required when the HTTP API listens
    /// on an address that is not loopback; without it on loopback they are open.
    #[arg(long, value_name = "TOKEN", env = "VISION_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Requests per second one HTTP client (IP address) may make to the HTTP API, with bursts
    /// of as many; beyond it the client gets 429. 0: unlimited.
    #[arg(long, value_name = "N", default_value_t = vision_api::DEFAULT_MAX_REQUESTS_PER_S)]
    pub api_max_requests_per_s: u32,
    /// Dev accounts file (a devnet's accounts.json): the API node signs unsigned requests
    /// for these accounts (devnets only).
    #[arg(long, value_name = "FILE")]
    pub dev_accounts: Option<PathBuf>,
    /// A supervisor's process list (a devnet's processes.json): the API node's `GET /status`
    /// lists those processes with their heights and health.
    #[arg(long, value_name = "FILE")]
    pub processes: Option<PathBuf>,
    /// Key file (64 hex characters, mode 0600) of the genesis `config_authority` account: the
    /// API node signs `POST /shard/config` changes with it. On a devnet the authority is a dev
    /// account, whose key `--dev-accounts` already holds.
    #[arg(long, value_name = "FILE")]
    pub authority_key: Option<PathBuf>,
    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Stop when the process with this pid is no longer our parent (set by `devnet` so
    /// validators never outlive their supervisor).
    #[arg(long, value_name = "PID", hide = true)]
    pub parent_pid: Option<u32>,
    /// ShardConfig overrides; they must agree with genesis (consensus settings are
    /// network-wide), so they only serve to check a deployment's expectations.
    #[command(flatten)]
    pub shard: ShardConfigArgs,
}

/// Everything `run` resolved before starting the runtime.
struct Plan {
    home: PathBuf,
    name: String,
    role: NodeRole,
    /// The HTTP API, if this node serves one (always on an API node).
    api: Option<ApiPlan>,
    signer: SecretKey,
    spec: NetworkSpec,
    genesis: Genesis,
    peers: std::collections::BTreeMap<PublicKey, SocketAddr>,
    listen: SocketAddr,
    max_message_bytes: u32,
    parent_pid: Option<u32>,
    /// Exclusive lock on `HOME/run.lock`, held for the process's life (released by the OS,
    /// also after `kill -9`).
    _lock: std::fs::File,
}

/// The HTTP API of a node (dev keys, process list and authority key: API node only).
struct ApiPlan {
    listen: SocketAddr,
    config: vision_api::ApiConfig,
    dev_keys: std::collections::BTreeMap<AccountId, SecretKey>,
    processes: Option<PathBuf>,
    /// The configuration authority's key, if this node holds it.
    authority_key: Option<SecretKey>,
}

/// Reads a devnet's accounts file: the keys of its dev and bench accounts.
fn read_dev_keys(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<AccountId, SecretKey>> {
    let accounts: Vec<DevAccount> = read_json(path, "dev accounts file")?;
    accounts
        .into_iter()
        .map(|a| {
            let seed: [u8; 32] = hex::decode(&a.secret_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .with_context(|| format!("{}: bad secret key of {}", path.display(), a.id))?;
            let key = SecretKey::from_seed(seed);
            if key.public_key() != a.public_key {
                bail!(
                    "{}: the secret key of {} does not match its public key",
                    path.display(),
                    a.id
                );
            }
            Ok((a.id, key))
        })
        .collect()
}

/// File name of the lock that keeps two processes from running one home.
pub const LOCK_FILE: &str = "run.lock";

/// Takes the home's exclusive lock, or says which process holds it.
fn lock_home(home: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, Write as _};
    let path = home.join(LOCK_FILE);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            bail!(
                "another vision-node (pid {}) is running on {}",
                holder.trim(),
                home.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    f.set_len(0)?;
    f.rewind()?;
    write!(f, "{}", std::process::id())?;
    f.sync_all()?;
    Ok(f)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RunArgs {
    fn plan(self) -> anyhow::Result<Plan> {
        let home = self.home;
        if !home.is_dir() {
            bail!(
                "--home {}: no such directory (create one with `vision-node init --home {}`)",
                home.display(),
                home.display()
            );
        }
        let (config, sources) = load_shard_config_with_sources(Some(&home), &self.shard)?;
        let lock = lock_home(&home)?;
        let node = load_node_section(&home)?;
        let genesis_path = self.genesis.unwrap_or_else(|| home.join("genesis.json"));
        let genesis = read_genesis(&genesis_path)?;
        check_against_genesis(
            &config,
            &sources,
            &genesis.shard_config,
            &genesis_path.display().to_string(),
        )?;
        let spec = network_spec(&genesis)
            .with_context(|| format!("genesis file {}", genesis_path.display()))?;
        let signer = load_key(&home, KeyKind::Consensus)?;
        let me = signer.public_key();
        let validator = genesis.validators.iter().find(|v| v.consensus_key == me);
        let peers_path = match self.peers {
            Some(p) => Some(p),
            None => Some(home.join("peers.json")).filter(|p| p.exists()),
        };
        let entries: Option<Vec<PeerEntry>> = peers_path
            .as_deref()
            .map(|p| read_json(p, "peers file"))
            .transpose()?;
        let peers = peer_addresses(&genesis, peers_path.as_deref().zip(entries.as_deref()))?;
        let name = match (self.role, validator) {
            (NodeRole::Validator, Some(v)) => v.name.clone(),
            (NodeRole::Validator, None) => bail!(
                "this home's consensus key {me} is not a validator in {} (run a non-voting \
                 node with --role api)",
                genesis_path.display()
            ),
            (NodeRole::Api, Some(v)) => bail!(
                "this home's key is genesis validator {}'s; an API node needs a key of its own \
                 (`vision-node init` in another home)",
                v.name
            ),
            (NodeRole::Api, None) => {
                let entry = entries
                    .iter()
                    .flatten()
                    .find(|p| p.consensus_key == me && p.role == PeerRole::Api);
                match entry {
                    Some(p) => p.name.clone(),
                    None => bail!(
                        "this API node's key {me} is not in the peers file with role \"api\" \
                         (validators accept only the peers listed there)"
                    ),
                }
            }
        };
        let listen = node.p2p_listen.unwrap_or(peers[&me]);
        // Flags > VISION_API_LISTEN (both through clap) > config.toml > the role's default.
        let api_listen = self.api_listen.or(node.api_listen).or(match self.role {
            NodeRole::Api => Some(DEFAULT_API_LISTEN.parse().expect("a valid address")),
            NodeRole::Validator => None,
        });
        if self.role == NodeRole::Validator {
            for (flag, given) in [
                ("--dev-accounts", self.dev_accounts.is_some()),
                ("--processes", self.processes.is_some()),
                ("--authority-key", self.authority_key.is_some()),
            ] {
                if given {
                    bail!(
                        "{flag} is for an API node (--role api): a validator's HTTP API serves \
                         its own shard and signs nothing for anyone"
                    );
                }
            }
        }
        if let Some(addr) = api_listen
            && !addr.ip().is_loopback()
            && self.admin_token.is_none()
        {
            bail!(
                "the HTTP API address {addr} (--api-listen, VISION_API_LISTEN or config.toml \
                 [node] api_listen) is not a loopback address: set --admin-token (or \
                 VISION_ADMIN_TOKEN) so the admin routes are not open to the network"
            );
        }
        let dev_keys = match &self.dev_accounts {
            Some(p) => read_dev_keys(p)?,
            None => Default::default(),
        };
        let authority_key = match &self.authority_key {
            Some(path) => {
                let key = crate::keys::load_key_file(path)?;
                if Some(key.public_key()) != spec.config_authority {
                    bail!(
                        "{}: this is not the key of the genesis config_authority account {}",
                        path.display(),
                        genesis.config_authority
                    );
                }
                Some(key)
            }
            None => dev_keys
                .get(&genesis.config_authority)
                .filter(|k| Some(k.public_key()) == spec.config_authority)
                .cloned(),
        };
        let api = api_listen.map(|listen| ApiPlan {
            listen,
            config: vision_api::ApiConfig {
                admin_token: self.admin_token.clone(),
                max_requests_per_s: self.api_max_requests_per_s,
                ..vision_api::ApiConfig::default()
            },
            dev_keys,
            processes: self.processes.clone(),
            authority_key,
        });
        let max_message_bytes = max_message_size_bytes(&spec)?;
        Ok(Plan {
            home,
            name,
            role: self.role,
            api,
            signer,
            spec,
            peers,
            listen,
            max_message_bytes,
            parent_pid: self.parent_pid,
            genesis,
            _lock: lock,
        })
    }

    /// Runs the node until SIGINT or SIGTERM.
    pub fn run(self) -> anyhow::Result<()> {
        logging::init(self.log_format);
        let plan = self.plan()?;
        let data = plan.home.join("data");
        let runner = cw_tokio::Runner::new(
            cw_tokio::Config::new()
                .with_storage_directory(&data)
                .with_worker_threads(RUNTIME_WORKER_THREADS),
        );
        runner.start(|context| serve(context, plan))
    }
}

/// The p2p namespace: peers of different networks never connect.
fn p2p_namespace(genesis: &Genesis) -> Vec<u8> {
    format!("vision-node/{}/p2p/{}", genesis.chain_id, genesis.hash()).into_bytes()
}

async fn serve(context: cw_tokio::Context, plan: Plan) -> anyhow::Result<()> {
    let started_at_ms = now_ms();
    let me = plan.signer.public_key();
    let role = role_of(&plan.spec, &me);
    info!(
        name = %plan.name,
        key = %me,
        shard = ?role.shard.map(|s| s.0),
        beacon = role.beacon,
        listen = %plan.listen,
        peers = plan.peers.len(),
        chain = %plan.genesis.chain_id,
        "starting validator"
    );
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    // Authenticated p2p: the identity is the consensus key (simplex attributes votes to the
    // sender's p2p identity).
    let cw_signer: ed25519::PrivateKey = to_cw_private_key(&plan.signer);
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: cw_signer,
            synchrony_bound: Duration::from_millis(HANDSHAKE_SYNCHRONY_BOUND_MS),
            max_handshake_age: Duration::from_millis(HANDSHAKE_MAX_AGE_MS),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let max_peers = NonZeroUsize::new(plan.peers.len() + 1).expect("non-zero");
    let mailbox = NonZeroUsize::new(P2P_MAILBOX_SIZE).expect("non-zero");
    let namespace = p2p_namespace(&plan.genesis);
    let all_loopback = plan.peers.values().all(|a| a.ip().is_loopback());
    let mut p2p = if all_loopback {
        lookup::Config::local(
            handshake,
            &namespace,
            plan.listen,
            max_peers,
            plan.max_message_bytes,
            mailbox,
        )
    } else {
        lookup::Config::recommended(
            handshake,
            &namespace,
            plan.listen,
            max_peers,
            plan.max_message_bytes,
            mailbox,
        )
    };
    // Validators on a LAN or in private networks are normal.
    p2p.allow_private_ips = true;
    // One peer set (index 0, every process of the network) is tracked for the node's whole
    // life. The network preallocates its channel mailboxes for `max_peers × tracked sets`
    // peers, so the default of 4 sets would quadruple that memory for nothing.
    p2p.tracked_peer_sets = NonZeroUsize::new(1).expect("non-zero");
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
    let peers: Map<ed25519::PublicKey, Address> = plan
        .peers
        .iter()
        .map(|(k, a)| Ok((to_cw_public_key(k)?, Address::from(*a))))
        .collect::<Result<Vec<_>, vision_consensus::keys::KeyError>>()?
        .into_iter()
        .try_collect()
        .map_err(|_| anyhow!("duplicate peer key"))?;
    let _ = oracle.track(0, peers);
    // Bind the HTTP API first: a port in use stops the node before its engines start.
    let listener = match &plan.api {
        Some(api) => Some(
            tokio::net::TcpListener::bind(api.listen)
                .await
                .with_context(|| format!("binding the HTTP API to {}", api.listen))?,
        ),
        None => None,
    };
    let committees = || -> anyhow::Result<Committees> {
        let keys = plan
            .genesis
            .validators
            .iter()
            .map(|v| (v.name.clone(), v.consensus_key))
            .collect();
        let (plan, beacon) = crate::network::committee_plan(&plan.genesis)?;
        Ok(Committees {
            plan,
            beacon: beacon.into_iter().collect(),
            keys,
        })
    };
    let running = match plan.role {
        NodeRole::Validator => {
            let mut pairs = Vec::with_capacity(5);
            for (channel, quota) in base_channel_quotas() {
                pairs.push(network.register(channel, quota));
            }
            let relay = network.register(RELAY, relay_channel_quota());
            let mut it = pairs.into_iter();
            let mut next = || it.next().expect("five base channels");
            let base = ChainChannels {
                votes: next(),
                certificates: next(),
                resolver: next(),
                blocks: next(),
                backfill: next(),
            };
            let network_handle = network.start();
            let validator: Validator<cw_tokio::Context> = start_validator(
                context.child("validator"),
                &plan.spec,
                plan.signer.clone(),
                &plan.name,
                base,
                relay,
                oracle,
            )
            .await
            .map_err(|e| anyhow!("starting the validator: {e}"))?;
            info!(name = %plan.name, "validator started");
            let http = match (&plan.api, listener) {
                (Some(api_plan), Some(listener)) => {
                    let Some(app) = validator.shard.clone() else {
                        bail!(
                            "this validator is in no shard committee: it has no shard to serve \
                             an HTTP API for (remove --api-listen)"
                        );
                    };
                    let shard = app.shard();
                    let api = NodeApi::new(
                        plan.spec.clone(),
                        std::collections::BTreeMap::from([(shard, app)]),
                        validator.view.clone(),
                        Default::default(),
                        None,
                        ConfigAuthority {
                            key: None,
                            account: plan.genesis.config_authority.clone(),
                            outbox: validator.config_outbox.clone(),
                        },
                        committees()?,
                        Some(validator.tx_outbox.clone()),
                    )?;
                    tokio::spawn(api.clone().scan_beacon());
                    let http = Http::serve(listener, api, api_plan.config.clone());
                    info!(
                        name = %plan.name,
                        api = %api_plan.listen,
                        shard = shard.0,
                        "HTTP API of this validator's shard started"
                    );
                    Some(http)
                }
                _ => None,
            };
            Running::Validator {
                validator: Box::new(validator),
                network: network_handle,
                http,
            }
        }
        NodeRole::Api => {
            let (Some(api_plan), Some(listener)) = (&plan.api, listener) else {
                bail!("an API node needs an HTTP API address");
            };
            let relay = network.register(RELAY, relay_channel_quota());
            let network_handle = network.start();
            let follower: Follower<cw_tokio::Context> =
                start_follower(context.child("follower"), &plan.spec, me, &plan.name, relay)
                    .await
                    .map_err(|e| anyhow!("starting the follower: {e}"))?;
            let api = NodeApi::new(
                plan.spec.clone(),
                follower.shards.clone(),
                follower.view.clone(),
                api_plan.dev_keys.clone(),
                api_plan.processes.clone(),
                ConfigAuthority {
                    key: api_plan.authority_key.clone(),
                    account: plan.genesis.config_authority.clone(),
                    outbox: follower.config_outbox.clone(),
                },
                committees()?,
                None,
            )?;
            tokio::spawn(api.clone().scan_beacon());
            tokio::spawn(api.clone().auto_rebalance());
            let http = Http::serve(listener, api, api_plan.config.clone());
            info!(
                name = %plan.name,
                api = %api_plan.listen,
                dashboard = %format!("http://{}/shard-dashboard.html", api_plan.listen),
                dev_accounts = api_plan.dev_keys.len(),
                "API node started"
            );
            Running::Api {
                follower,
                network: network_handle,
                http,
            }
        }
    };

    let mut status = NodeStatus {
        name: plan.name.clone(),
        role: plan.role.as_str().into(),
        pid: std::process::id(),
        p2p_address: plan.listen.to_string(),
        shard: role.shard.map(|s| s.0),
        beacon_member: role.beacon,
        shard_height: 0,
        beacon_height: 0,
        mempool_len: 0,
        recent: Vec::new(),
        started_at_ms,
        updated_at_ms: 0,
        state: "running".into(),
    };
    let mut tick: u64 = 0;
    let reason = loop {
        tokio::select! {
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = context.sleep(Duration::from_millis(STATUS_INTERVAL_MS)) => {}
        }
        if let Some(parent) = plan.parent_pid {
            let ppid = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
            if ppid != i32::try_from(parent).ok() {
                break "supervisor exited";
            }
        }
        // Reading the applications waits on their locks; never let that delay a signal.
        let refreshed = tokio::select! {
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = refresh(&mut status, &running) => true,
            _ = context.sleep(Duration::from_millis(STATUS_REFRESH_TIMEOUT_MS)) => false,
        };
        if !refreshed {
            warn!(
                timeout_ms = STATUS_REFRESH_TIMEOUT_MS,
                "the shard application did not answer; status not refreshed"
            );
            continue;
        }
        if let Err(e) = write_status(&plan.home, &status) {
            warn!(error = %format!("{e:#}"), "writing the status file");
        }
        tick += 1;
        if tick.is_multiple_of(PROGRESS_LOG_EVERY_INTERVALS) {
            info!(
                shard = ?status.shard,
                shard_height = status.shard_height,
                beacon_height = status.beacon_height,
                mempool = status.mempool_len,
                "finalized"
            );
        }
    };
    info!(reason, "shutting down");
    tokio::select! {
        _ = refresh(&mut status, &running) => {}
        _ = context.sleep(Duration::from_millis(STATUS_REFRESH_TIMEOUT_MS)) => {}
    }
    let stopped = tokio::select! {
        _ = running.stop() => true,
        _ = context.sleep(Duration::from_millis(SHUTDOWN_TIMEOUT_MS)) => false,
    };
    if !stopped {
        warn!(
            timeout_ms = SHUTDOWN_TIMEOUT_MS,
            "engines did not stop in time; exiting anyway (storage recovers on restart)"
        );
    }
    status.state = "stopped".into();
    status.updated_at_ms = now_ms();
    if let Err(e) = write_status(&plan.home, &status) {
        warn!(error = %format!("{e:#}"), "writing the status file");
    }
    info!(
        shard_height = status.shard_height,
        beacon_height = status.beacon_height,
        "stopped"
    );
    Ok(())
}

/// A running HTTP server.
struct Http {
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Http {
    /// Serves the HTTP API over `backend` on `listener` until [`Http::stop`].
    fn serve<B: vision_api::NodeBackend>(
        listener: tokio::net::TcpListener,
        backend: std::sync::Arc<B>,
        config: vision_api::ApiConfig,
    ) -> Self {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let router = vision_api::router(backend, config);
        let server = tokio::spawn(vision_api::serve(listener, router, async move {
            let _ = stop_rx.await;
        }));
        Http { stop, server }
    }

    /// Stops accepting, finishes in-flight requests and waits for the server to end.
    async fn stop(self) {
        let _ = self.stop.send(());
        match self.server.await {
            Ok(Err(e)) => warn!(error = %e, "the HTTP server failed"),
            Err(e) => warn!(error = %e, "the HTTP server task failed"),
            Ok(Ok(())) => {}
        }
    }
}

/// What a node process runs.
enum Running {
    /// A validator, its p2p network and the HTTP API of its shard if it serves one.
    Validator {
        validator: Box<Validator<cw_tokio::Context>>,
        network: commonware_runtime::Handle<()>,
        http: Option<Http>,
    },
    /// An API node: the follower, its p2p network and the HTTP server.
    Api {
        follower: Follower<cw_tokio::Context>,
        network: commonware_runtime::Handle<()>,
        http: Http,
    },
}

impl Running {
    /// Stops everything (the HTTP server first, finishing in-flight requests).
    async fn stop(self) {
        match self {
            Running::Validator {
                validator,
                network,
                http,
            } => {
                if let Some(http) = http {
                    http.stop().await;
                }
                validator.stop().await;
                network.abort();
            }
            Running::Api {
                follower,
                network,
                http,
            } => {
                http.stop().await;
                follower.stop().await;
                network.abort();
            }
        }
    }
}

/// Refreshes `status` from the running node.
async fn refresh(status: &mut NodeStatus, running: &Running) {
    match running {
        Running::Validator { validator, .. } => {
            if let Some(shard) = &validator.shard {
                status.shard_height = shard.committed_height().await;
                status.mempool_len = shard.mempool_len();
                let recent = shard.recent_finalized();
                status.recent = recent
                    .iter()
                    .rev()
                    .take(STATUS_RECENT_BLOCKS)
                    .rev()
                    .map(|(h, info)| BlockSummary {
                        height: *h,
                        hash: info.hash,
                        state_root: info.state_root,
                        txs: info.txs,
                    })
                    .collect();
            }
            status.beacon_height = validator.view.beacon_height();
        }
        Running::Api { follower, .. } => {
            // The lowest shard height: every shard is followed at least this far.
            status.shard_height = follower
                .shards
                .values()
                .map(|a| a.finalized_height())
                .min()
                .unwrap_or(0);
            status.mempool_len = follower.shards.values().map(|a| a.mempool_len()).sum();
            status.beacon_height = follower.view.beacon_height();
        }
    }
    status.updated_at_ms = now_ms();
}
