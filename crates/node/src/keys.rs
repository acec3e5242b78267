//! Key files in a node home: `keys/consensus.key` (signs votes) and `keys/network.key`
//! (authenticates p2p connections), kept separate so one can be rotated without the other.
//! Each file holds the 32-byte ed25519 seed in hex; files are created 0600 in a 0700
//! directory, and a key file that group or others can read is refused at load.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};
use vision_types::{PublicKey, SecretKey};

/// Which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Signs consensus votes.
    Consensus,
    /// Authenticates p2p connections.
    Network,
}

impl KeyKind {
    fn file_name(self) -> &'static str {
        match self {
            KeyKind::Consensus => "consensus.key",
            KeyKind::Network => "network.key",
        }
    }
}

/// Path of a key file in `home`.
pub fn key_path(home: &Path, kind: KeyKind) -> PathBuf {
    home.join("keys").join(kind.file_name())
}

/// Writes `key` as `kind` in `home` (0600; refuses to overwrite unless `force`).
pub fn write_key(
    home: &Path,
    kind: KeyKind,
    key: &SecretKey,
    force: bool,
) -> anyhow::Result<PathBuf> {
    let dir = home.join("keys");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let path = key_path(home, kind);
    if path.exists() && !force {
        bail!(
            "{} already exists (use --force to replace it)",
            path.display()
        );
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{}", hex::encode(key.to_seed()))?;
    f.sync_all()?;
    Ok(path)
}

/// Loads a key, refusing files that group or others can read or that are malformed.
pub fn load_key(home: &Path, kind: KeyKind) -> anyhow::Result<SecretKey> {
    let path = key_path(home, kind);
    fs::metadata(&path).with_context(|| {
        format!(
            "reading {} (create keys with `vision-node keys generate --home {}`)",
            path.display(),
            home.display()
        )
    })?;
    load_key_file(&path)
}

/// Loads a key file (64 hex characters of seed, mode 0600), refusing files that group or
/// others can read or that are malformed.
pub fn load_key_file(path: &Path) -> anyhow::Result<SecretKey> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is accessible by group or others (mode {:o}); run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed)
        .with_context(|| format!("{}: expected 64 hex characters", path.display()))?;
    Ok(SecretKey::from_seed(seed))
}

/// `vision-node keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the consensus and network keys of a node home (refuses to overwrite).
    Generate(KeysGenerate),
    /// Print the public keys of a node home (never the secrets).
    Show(KeysShow),
}

/// `keys generate`.
#[derive(Debug, Args)]
pub struct KeysGenerate {
    /// Node home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

/// `keys show`.
#[derive(Debug, Args)]
pub struct KeysShow {
    /// Node home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct PublicKeys {
    consensus_key: PublicKey,
    network_key: PublicKey,
}

impl KeysCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            KeysCommand::Generate(g) => {
                for kind in [KeyKind::Consensus, KeyKind::Network] {
                    if key_path(&g.home, kind).exists() && !g.force {
                        bail!(
                            "{} already exists (use --force to replace it)",
                            key_path(&g.home, kind).display()
                        );
                    }
                }
                for kind in [KeyKind::Consensus, KeyKind::Network] {
                    let path = write_key(&g.home, kind, &SecretKey::generate(), g.force)?;
                    println!("wrote {}", path.display());
                }
                Ok(())
            }
            KeysCommand::Show(s) => {
                let keys = PublicKeys {
                    consensus_key: load_key(&s.home, KeyKind::Consensus)?.public_key(),
                    network_key: load_key(&s.home, KeyKind::Network)?.public_key(),
                };
                if s.json {
                    println!("{}", serde_json::to_string_pretty(&keys)?);
                } else {
                    println!(
                        "consensus key: {}\nnetwork key:   {}",
                        keys.consensus_key, keys.network_key
                    );
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_home(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vision-keys-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn write_load_permissions_and_no_overwrite() {
        let home = temp_home("rt");
        let k = SecretKey::generate();
        let p = write_key(&home, KeyKind::Consensus, &k, false).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            load_key(&home, KeyKind::Consensus).unwrap().public_key(),
            k.public_key()
        );
        assert!(write_key(&home, KeyKind::Consensus, &SecretKey::generate(), false).is_err());
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_key(&home, KeyKind::Consensus).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&p, "zz").unwrap();
        assert!(load_key(&home, KeyKind::Consensus).is_err());
        assert!(
            load_key(&home, KeyKind::Network)
                .unwrap_err()
                .to_string()
                .contains("keys generate")
        );
        fs::remove_dir_all(&home).ok();
    }
}
