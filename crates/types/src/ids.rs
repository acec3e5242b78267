//! Identifiers: shards, accounts, contracts, chains.

use crate::{codec_util, hash::Hash, limits};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr};

/// The index of a state shard (0-based). Serializes as a plain JSON number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The index as usize (for slices).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard_{}", self.0)
    }
}

impl Write for ShardId {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl Read for ShardId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(ShardId(u32::read_cfg(buf, &())?))
    }
}

impl FixedSize for ShardId {
    const SIZE: usize = 4;
}

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Account names are 2..=64 characters of `[a-z0-9_-]`, or 64 hex characters.
    #[error(
        "invalid account id {0:?}: expected 2-64 characters of [a-z0-9_-] (or a 64-hex public key)"
    )]
    Account(String),
    /// Contract ids are `contract_` followed by 64 hex characters, or a bounded name.
    #[error("invalid contract id {0:?}")]
    Contract(String),
    /// Chain ids are 1..=32 characters of `[a-z0-9_-]`.
    #[error("invalid chain id {0:?}: expected 1-32 characters of [a-z0-9_-]")]
    Chain(String),
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-'
}

/// An account: a name `[a-z0-9_-]{2,64}` bound to a public key at creation, or an implicit
/// account named by the 64-hex encoding of its ed25519 public key.
///
/// A 64-character name made only of hex digits is always treated as implicit: its owner is
/// the key it spells, so nobody can register such a name for another key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Validates and wraps an account name.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        let b = s.as_bytes();
        if b.len() < 2
            || b.len() > limits::MAX_ACCOUNT_ID_BYTES
            || !b.iter().all(|&c| is_name_char(c))
        {
            return Err(IdError::Account(s));
        }
        Ok(AccountId(s))
    }

    /// The implicit account of a public key (its 64-hex encoding).
    pub fn implicit(pk: &crate::crypto::PublicKey) -> Self {
        AccountId(hex::encode(pk.as_bytes()))
    }

    /// The public key this id spells if it is an implicit account.
    pub fn implicit_key(&self) -> Option<[u8; 32]> {
        if self.0.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.0, &mut out).ok()?;
        Some(out)
    }

    /// Whether this is an implicit (public-key) account.
    pub fn is_implicit(&self) -> bool {
        self.implicit_key().is_some()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the name: the account's position in the shard layout's hash space.
    pub fn hash(&self) -> Hash {
        Hash::sha256(self.0.as_bytes())
    }
}

impl FromStr for AccountId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountId::new(s)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AccountId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Write for AccountId {
    fn write(&self, buf: &mut impl BufMut) {
        codec_util::write_str(&self.0, buf);
    }
}

impl EncodeSize for AccountId {
    fn encode_size(&self) -> usize {
        codec_util::str_size(&self.0)
    }
}

impl Read for AccountId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let s = codec_util::read_str(buf, limits::MAX_ACCOUNT_ID_BYTES, "AccountId")?;
        AccountId::new(s).map_err(|_| CodecError::Invalid("AccountId", "invalid account name"))
    }
}

/// A contract id: `contract_` followed by the first 16 bytes (32 hex characters) of the hash
/// of the deploying transaction. Deterministic on every replica.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContractId(String);

impl ContractId {
    /// The prefix of every contract id.
    pub const PREFIX: &'static str = "contract_";

    /// The id of the contract created by the deploy transaction with id `tx_id`.
    pub fn from_deploy(tx_id: &Hash) -> Self {
        ContractId(format!("{}{}", Self::PREFIX, hex::encode(&tx_id.0[..16])))
    }

    /// Validates a contract id string.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        let ok = s.strip_prefix(Self::PREFIX).is_some_and(|h| {
            h.len() == 32
                && h.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        });
        if ok {
            Ok(ContractId(s))
        } else {
            Err(IdError::Contract(s))
        }
    }

    /// The id string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the id: the contract's position in the shard layout's hash space.
    pub fn hash(&self) -> Hash {
        Hash::sha256(self.0.as_bytes())
    }
}

impl FromStr for ContractId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ContractId::new(s)
    }
}

impl fmt::Display for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ContractId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContractId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ContractId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Write for ContractId {
    fn write(&self, buf: &mut impl BufMut) {
        codec_util::write_str(&self.0, buf);
    }
}

impl EncodeSize for ContractId {
    fn encode_size(&self) -> usize {
        codec_util::str_size(&self.0)
    }
}

impl Read for ContractId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let s = codec_util::read_str(buf, 64, "ContractId")?;
        ContractId::new(s).map_err(|_| CodecError::Invalid("ContractId", "invalid contract id"))
    }
}

/// A chain id (`[a-z0-9_-]{1,32}`), signed into every transaction so a transaction for one
/// network is never valid on another.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ChainId(String);

impl ChainId {
    /// Validates a chain id.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        if s.is_empty() || s.len() > limits::MAX_CHAIN_ID_BYTES || !s.bytes().all(is_name_char) {
            return Err(IdError::Chain(s));
        }
        Ok(ChainId(s))
    }

    /// The id string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ChainId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ChainId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Write for ChainId {
    fn write(&self, buf: &mut impl BufMut) {
        codec_util::write_str(&self.0, buf);
    }
}

impl EncodeSize for ChainId {
    fn encode_size(&self) -> usize {
        codec_util::str_size(&self.0)
    }
}

impl Read for ChainId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let s = codec_util::read_str(buf, limits::MAX_CHAIN_ID_BYTES, "ChainId")?;
        ChainId::new(s).map_err(|_| CodecError::Invalid("ChainId", "invalid chain id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert!(AccountId::new("alice").is_ok());
        assert!(AccountId::new("a").is_err());
        assert!(AccountId::new("Alice").is_err());
        assert!(AccountId::new("a".repeat(65)).is_err());
        assert!(AccountId::new("a".repeat(64)).is_ok());
        assert!(AccountId::new("bob smith").is_err());
        let implicit = AccountId::new("ab".repeat(32)).unwrap();
        assert!(implicit.is_implicit());
        assert!(!AccountId::new("alice").unwrap().is_implicit());
    }

    #[test]
    fn contract_ids() {
        let id = ContractId::from_deploy(&Hash::sha256(b"x"));
        assert!(ContractId::new(id.as_str()).is_ok());
        assert!(ContractId::new("contract_xyz").is_err());
        assert!(ContractId::new("token").is_err());
    }
}
