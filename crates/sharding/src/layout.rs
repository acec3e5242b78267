//! The shard layout: which shard owns an account or contract.
//!
//! The u64 prefix of SHA-256(key) ([`Hash::prefix_u64`]) is mapped through ordered,
//! contiguous ranges covering the whole u64 space exactly once, one range per shard, and a
//! small override table of migrated (hot) keys takes precedence. Splitting a shard halves
//! its range; merging joins two neighbouring ranges. Every successful change returns a new
//! layout whose `version` is one higher. The layout lives in beacon state, so it has a
//! canonical bounded binary encoding (commonware-codec) as well as serde JSON.

use crate::params::{MAX_LAYOUT_OVERRIDES, MAX_SHARDS};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use vision_types::{AccountId, ContractId, Hash, ShardId, codec_util};

/// A key the layout places: an account or a contract.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKey {
    /// An account, placed by SHA-256 of its name.
    Account(AccountId),
    /// A contract, placed by SHA-256 of its id.
    Contract(ContractId),
}

impl LayoutKey {
    /// The key's position in the hash space.
    pub fn hash(&self) -> Hash {
        match self {
            LayoutKey::Account(a) => a.hash(),
            LayoutKey::Contract(c) => c.hash(),
        }
    }
}

impl Write for LayoutKey {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            LayoutKey::Account(a) => {
                0u8.write(buf);
                a.write(buf);
            }
            LayoutKey::Contract(c) => {
                1u8.write(buf);
                c.write(buf);
            }
        }
    }
}

impl EncodeSize for LayoutKey {
    fn encode_size(&self) -> usize {
        1 + match self {
            LayoutKey::Account(a) => a.encode_size(),
            LayoutKey::Contract(c) => c.encode_size(),
        }
    }
}

impl Read for LayoutKey {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read_cfg(buf, &())? {
            0 => Ok(LayoutKey::Account(AccountId::read_cfg(buf, &())?)),
            1 => Ok(LayoutKey::Contract(ContractId::read_cfg(buf, &())?)),
            t => Err(CodecError::InvalidEnum(t)),
        }
    }
}

/// The hash range `start..=end` owned by `shard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRange {
    /// The owning shard.
    pub shard: ShardId,
    /// First prefix in the range.
    pub start: u64,
    /// Last prefix in the range (inclusive).
    pub end: u64,
}

impl ShardRange {
    /// Number of prefixes in the range (up to 2^64).
    pub fn width(&self) -> u128 {
        u128::from(self.end) - u128::from(self.start) + 1
    }
}

impl Write for ShardRange {
    fn write(&self, buf: &mut impl BufMut) {
        self.shard.write(buf);
        self.start.write(buf);
        self.end.write(buf);
    }
}

impl FixedSize for ShardRange {
    const SIZE: usize = ShardId::SIZE + 2 * u64::SIZE;
}

impl Read for ShardRange {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(ShardRange {
            shard: ShardId::read_cfg(buf, &())?,
            start: u64::read_cfg(buf, &())?,
            end: u64::read_cfg(buf, &())?,
        })
    }
}

/// A migrated key and the shard it now lives on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The account or contract.
    pub key: LayoutKey,
    /// Its shard (never its home shard by hash).
    pub shard: ShardId,
}

impl Write for Override {
    fn write(&self, buf: &mut impl BufMut) {
        self.key.write(buf);
        self.shard.write(buf);
    }
}

impl EncodeSize for Override {
    fn encode_size(&self) -> usize {
        self.key.encode_size() + ShardId::SIZE
    }
}

impl Read for Override {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Override {
            key: LayoutKey::read_cfg(buf, &())?,
            shard: ShardId::read_cfg(buf, &())?,
        })
    }
}

/// Why a layout change is refused, or a layout is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Shard counts are 1..=MAX_SHARDS.
    #[error("{0} shards: a layout has between 1 and {MAX_SHARDS} shards")]
    BadShardCount(usize),
    /// The shard is not in the layout.
    #[error("unknown shard {0}")]
    UnknownShard(ShardId),
    /// The layout already has MAX_SHARDS shards.
    #[error("cannot split: the layout already has {MAX_SHARDS} shards")]
    TooManyShards,
    /// The range is a single prefix and cannot be halved.
    #[error("cannot split shard {0}: its range is a single hash")]
    RangeTooSmall(ShardId),
    /// Only neighbouring ranges merge.
    #[error("cannot merge shards {0} and {1}: their ranges are not neighbours")]
    NotNeighbours(ShardId, ShardId),
    /// A shard cannot merge with itself.
    #[error("cannot merge shard {0} with itself")]
    SameShard(ShardId),
    /// The override table is full.
    #[error("the override table is full ({MAX_LAYOUT_OVERRIDES} entries)")]
    TooManyOverrides,
    /// An invariant is broken.
    #[error("invalid layout: {0}")]
    Invalid(String),
}

/// The versioned map from accounts and contracts to shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLayout")]
pub struct ShardLayout {
    version: u64,
    ranges: Vec<ShardRange>,
    overrides: Vec<Override>,
}

/// The unchecked serde shape of a layout.
#[derive(Deserialize)]
struct RawLayout {
    version: u64,
    ranges: Vec<ShardRange>,
    #[serde(default)]
    overrides: Vec<Override>,
}

impl TryFrom<RawLayout> for ShardLayout {
    type Error = LayoutError;
    fn try_from(raw: RawLayout) -> Result<Self, LayoutError> {
        let l = ShardLayout {
            version: raw.version,
            ranges: raw.ranges,
            overrides: raw.overrides,
        };
        l.validate()?;
        Ok(l)
    }
}

impl ShardLayout {
    /// `n` shards `0..n` with equal ranges (in shard order), version 0, no overrides.
    pub fn uniform(n: usize) -> Result<ShardLayout, LayoutError> {
        if n == 0 || n > MAX_SHARDS {
            return Err(LayoutError::BadShardCount(n));
        }
        let space: u128 = 1 << 64;
        let start = |i: usize| (space * i as u128 / n as u128) as u64;
        let ranges = (0..n)
            .map(|i| ShardRange {
                shard: ShardId(i as u32),
                start: start(i),
                end: if i + 1 == n {
                    u64::MAX
                } else {
                    start(i + 1) - 1
                },
            })
            .collect();
        let l = ShardLayout {
            version: 0,
            ranges,
            overrides: Vec::new(),
        };
        debug_assert_eq!(l.validate(), Ok(()));
        Ok(l)
    }

    /// The version: 0 for a fresh layout, one more after every change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The ranges in hash order.
    pub fn ranges(&self) -> &[ShardRange] {
        &self.ranges
    }

    /// The override table, sorted by key.
    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there is no shard (never true for a valid layout).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The shards, sorted by id.
    pub fn shards(&self) -> Vec<ShardId> {
        let mut s: Vec<ShardId> = self.ranges.iter().map(|r| r.shard).collect();
        s.sort_unstable();
        s
    }

    /// Whether the shard is in the layout.
    pub fn contains(&self, shard: ShardId) -> bool {
        self.ranges.iter().any(|r| r.shard == shard)
    }

    /// The shard whose range holds the u64 prefix of `hash`.
    pub fn shard_of_hash(&self, hash: &Hash) -> ShardId {
        let p = hash.prefix_u64();
        let i = self.ranges.partition_point(|r| r.start <= p);
        self.ranges[i.saturating_sub(1)].shard
    }

    /// The shard of a key: its override if migrated, else by hash.
    pub fn shard_of_key(&self, key: &LayoutKey) -> ShardId {
        match self.overrides.binary_search_by(|o| o.key.cmp(key)) {
            Ok(i) => self.overrides[i].shard,
            Err(_) => self.shard_of_hash(&key.hash()),
        }
    }

    /// The shard of an account (override first).
    pub fn shard_of_account(&self, account: &AccountId) -> ShardId {
        self.shard_of_key(&LayoutKey::Account(account.clone()))
    }

    /// The shard of a contract (override first).
    pub fn shard_of_contract(&self, contract: &ContractId) -> ShardId {
        self.shard_of_key(&LayoutKey::Contract(contract.clone()))
    }

    fn range_index(&self, shard: ShardId) -> Result<usize, LayoutError> {
        self.ranges
            .iter()
            .position(|r| r.shard == shard)
            .ok_or(LayoutError::UnknownShard(shard))
    }

    fn bumped(&self) -> ShardLayout {
        let mut l = self.clone();
        l.version += 1;
        l
    }

    /// Splits `shard`: it keeps the lower half of its range and a new shard (the smallest
    /// unused id) takes the upper half. Overrides are unchanged. Returns the new layout and
    /// the new shard.
    pub fn split(&self, shard: ShardId) -> Result<(ShardLayout, ShardId), LayoutError> {
        let i = self.range_index(shard)?;
        if self.ranges.len() >= MAX_SHARDS {
            return Err(LayoutError::TooManyShards);
        }
        let r = self.ranges[i];
        if r.start == r.end {
            return Err(LayoutError::RangeTooSmall(shard));
        }
        let used: BTreeSet<u32> = self.ranges.iter().map(|r| r.shard.0).collect();
        let new = ShardId((0..).find(|s| !used.contains(s)).unwrap_or(u32::MAX));
        let mid = r.start + (r.end - r.start) / 2;
        let mut l = self.bumped();
        l.ranges[i].end = mid;
        l.ranges.insert(
            i + 1,
            ShardRange {
                shard: new,
                start: mid + 1,
                end: r.end,
            },
        );
        debug_assert_eq!(l.validate(), Ok(()));
        Ok((l, new))
    }

    /// Merges neighbouring shards: `a` takes `b`'s range and `b`'s overrides; `b` is gone.
    pub fn merge(&self, a: ShardId, b: ShardId) -> Result<ShardLayout, LayoutError> {
        if a == b {
            return Err(LayoutError::SameShard(a));
        }
        let (ia, ib) = (self.range_index(a)?, self.range_index(b)?);
        if ia.abs_diff(ib) != 1 {
            return Err(LayoutError::NotNeighbours(a, b));
        }
        let (lo, hi) = (ia.min(ib), ia.max(ib));
        let mut l = self.bumped();
        let merged = ShardRange {
            shard: a,
            start: self.ranges[lo].start,
            end: self.ranges[hi].end,
        };
        l.ranges[lo] = merged;
        l.ranges.remove(hi);
        for o in &mut l.overrides {
            if o.shard == b {
                o.shard = a;
            }
        }
        // Drop overrides that now point home.
        let home = l.clone();
        l.overrides
            .retain(|o| home.shard_of_hash(&o.key.hash()) != o.shard);
        debug_assert_eq!(l.validate(), Ok(()));
        Ok(l)
    }

    /// Places `key` on `to`: an override entry, or none when `to` is its home shard by hash
    /// (a key moved home leaves the table).
    pub fn move_key(&self, key: LayoutKey, to: ShardId) -> Result<ShardLayout, LayoutError> {
        self.range_index(to)?;
        let home = self.shard_of_hash(&key.hash());
        let mut l = self.bumped();
        match l.overrides.binary_search_by(|o| o.key.cmp(&key)) {
            Ok(i) if home == to => {
                l.overrides.remove(i);
            }
            Ok(i) => l.overrides[i].shard = to,
            Err(_) if home == to => {}
            Err(i) => {
                if l.overrides.len() >= MAX_LAYOUT_OVERRIDES {
                    return Err(LayoutError::TooManyOverrides);
                }
                l.overrides.insert(i, Override { key, shard: to });
            }
        }
        debug_assert_eq!(l.validate(), Ok(()));
        Ok(l)
    }

    /// Places an account on `to` (see [`ShardLayout::move_key`]).
    pub fn move_account(
        &self,
        account: &AccountId,
        to: ShardId,
    ) -> Result<ShardLayout, LayoutError> {
        self.move_key(LayoutKey::Account(account.clone()), to)
    }

    /// Places a contract on `to` (see [`ShardLayout::move_key`]).
    pub fn move_contract(
        &self,
        contract: &ContractId,
        to: ShardId,
    ) -> Result<ShardLayout, LayoutError> {
        self.move_key(LayoutKey::Contract(contract.clone()), to)
    }

    /// Checks the invariants: 1..=MAX_SHARDS ranges, starting at 0, ending at `u64::MAX`,
    /// each non-empty and starting right after the previous one (so the whole u64 space is
    /// covered exactly once), one range per shard; at most MAX_LAYOUT_OVERRIDES overrides,
    /// strictly sorted by key, each naming a shard of the layout other than the key's home.
    pub fn validate(&self) -> Result<(), LayoutError> {
        let bad = |m: &str| Err(LayoutError::Invalid(m.to_string()));
        let n = self.ranges.len();
        if n == 0 || n > MAX_SHARDS {
            return Err(LayoutError::BadShardCount(n));
        }
        if self.ranges[0].start != 0 {
            return bad("the first range does not start at 0");
        }
        if self.ranges[n - 1].end != u64::MAX {
            return bad("the last range does not end at u64::MAX");
        }
        let mut shards = BTreeSet::new();
        for (i, r) in self.ranges.iter().enumerate() {
            if r.start > r.end {
                return bad("a range is empty");
            }
            if i > 0 && self.ranges[i - 1].end.checked_add(1) != Some(r.start) {
                return bad("ranges leave a gap or overlap");
            }
            if !shards.insert(r.shard) {
                return bad("a shard owns two ranges");
            }
        }
        if self.overrides.len() > MAX_LAYOUT_OVERRIDES {
            return Err(LayoutError::TooManyOverrides);
        }
        if !self.overrides.windows(2).all(|w| w[0].key < w[1].key) {
            return bad("overrides are not strictly sorted by key");
        }
        for o in &self.overrides {
            if !shards.contains(&o.shard) {
                return Err(LayoutError::UnknownShard(o.shard));
            }
            if self.shard_of_hash(&o.key.hash()) == o.shard {
                return bad("an override points to the key's home shard");
            }
        }
        Ok(())
    }
}

impl Write for ShardLayout {
    fn write(&self, buf: &mut impl BufMut) {
        self.version.write(buf);
        self.ranges.write(buf);
        self.overrides.write(buf);
    }
}

impl EncodeSize for ShardLayout {
    fn encode_size(&self) -> usize {
        self.version.encode_size() + self.ranges.encode_size() + self.overrides.encode_size()
    }
}

impl Read for ShardLayout {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let l = ShardLayout {
            version: u64::read_cfg(buf, &())?,
            ranges: codec_util::read_vec(buf, MAX_SHARDS, &())?,
            overrides: codec_util::read_vec(buf, MAX_LAYOUT_OVERRIDES, &())?,
        };
        l.validate()
            .map_err(|_| CodecError::Invalid("ShardLayout", "layout invariants broken"))?;
        Ok(l)
    }
}
