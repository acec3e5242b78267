//! Files shared by the nodes of a network: the genesis file, the peers file, and small helpers
//! for writing files atomically and with private modes.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    net::{SocketAddr, ToSocketAddrs},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};
use vision_types::{Genesis, PublicKey};

/// Largest genesis, peers or status file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// What a peer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    /// A genesis validator.
    #[default]
    Validator,
    /// A non-voting API node (follows every shard; not in genesis).
    Api,
}

/// One line of the peers file: where a node's p2p listener is reachable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// The validator's name in genesis (or the API node's name).
    pub name: String,
    /// Its consensus public key (hex), which is also its p2p identity.
    pub consensus_key: PublicKey,
    /// `host:port` of its p2p listener.
    pub address: String,
    /// `validator` (default) or `api`.
    #[serde(default, skip_serializing_if = "is_validator")]
    pub role: PeerRole,
}

fn is_validator(r: &PeerRole) -> bool {
    *r == PeerRole::Validator
}

/// Reads a JSON file of at most [`MAX_FILE_BYTES`].
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let meta = fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        bail!(
            "{what} {} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        );
    }
    let text =
        fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("malformed {what} {}", path.display()))
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, synced, then
/// renamed over `path`) with permissions `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically with permissions `mode`.
pub fn write_json<T: Serialize>(path: &Path, value: &T, mode: u32) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, mode)
}

/// Reads and validates a genesis file.
pub fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let g: Genesis = read_json(path, "genesis file")?;
    g.validate()
        .with_context(|| format!("genesis file {}", path.display()))?;
    Ok(g)
}

/// Resolves `host:port` to one socket address (the first the resolver returns).
pub fn resolve_address(addr: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    addr.to_socket_addrs()
        .with_context(|| format!("resolving {addr:?}"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))
}

/// The p2p address of every genesis validator and API node, keyed by consensus key: from the
/// peers file if given (a `validator` entry must name a genesis validator by its key;
/// validators it omits keep their genesis address; `api` entries add API nodes), else from
/// genesis.
pub fn peer_addresses(
    genesis: &Genesis,
    peers: Option<(&Path, &[PeerEntry])>,
) -> anyhow::Result<BTreeMap<PublicKey, SocketAddr>> {
    let mut out = BTreeMap::new();
    let mut text: BTreeMap<PublicKey, (String, String)> = genesis
        .validators
        .iter()
        .map(|v| {
            (
                v.consensus_key,
                (
                    v.p2p_address.clone(),
                    format!("genesis validator {}", v.name),
                ),
            )
        })
        .collect();
    if let Some((path, entries)) = peers {
        for p in entries {
            if p.role == PeerRole::Api {
                if genesis
                    .validators
                    .iter()
                    .any(|v| v.consensus_key == p.consensus_key)
                {
                    bail!(
                        "peers file {}: API node {} uses the key of a genesis validator ({})",
                        path.display(),
                        p.name,
                        p.consensus_key
                    );
                }
                let prev = text.insert(
                    p.consensus_key,
                    (
                        p.address.clone(),
                        format!("peers file {} API node {}", path.display(), p.name),
                    ),
                );
                if prev.is_some() {
                    bail!(
                        "peers file {}: key {} appears twice",
                        path.display(),
                        p.consensus_key
                    );
                }
                continue;
            }
            let Some(slot) = text.get_mut(&p.consensus_key) else {
                bail!(
                    "peers file {}: {} ({}) is not a validator in genesis",
                    path.display(),
                    p.name,
                    p.consensus_key
                );
            };
            *slot = (
                p.address.clone(),
                format!("peers file {} entry {}", path.display(), p.name),
            );
        }
    }
    for (key, (addr, source)) in text {
        let resolved = resolve_address(&addr).with_context(|| source.clone())?;
        out.insert(key, resolved);
    }
    Ok(out)
}
