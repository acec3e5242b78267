//! Configuration changes carried in beacon blocks.
//!
//! A [`ConfigChange`] is the whole new [`ShardConfig`], numbered (`seq`, one above the last
//! change the beacon applied, so a change cannot be replayed or applied twice) and signed by
//! the network's configuration authority (the genesis `config_authority` account's key). The
//! beacon finalizes it in a block at height `h`; it takes effect at beacon height
//! `h + CONFIG_ACTIVATION_DELAY`: every shard block stamped with a `beacon_height` at or
//! above that executes under it, so all replicas of all shards switch at one stated point.
//! Only the consensus-level fields may change ([`ShardConfig::fixed_field_changed`]).
//!
//! A change may also carry account moves ([`AccountMoveOrder`], at most
//! [`MAX_MOVES_PER_CHANGE`]): from the same effective height the shard layout's override
//! table places each moved account on its new shard. The old shard hands the account over
//! with a migration receipt (see `vision_state::Migration`); until it arrives the new shard
//! refuses the account's transactions, and receipts sent to the old shard follow it.

use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, Read, Write};
use std::sync::Arc;
use vision_sharding::ShardLayout;
use vision_types::{
    AccountId, ChainId as NetworkId, Hash, PublicKey, SecretKey, ShardConfig, ShardId, Signature,
    codec_util::read_vec, limits::MAX_ACCOUNT_ID_BYTES,
};

/// The domain prefix of the bytes a configuration change's signature covers.
pub const CONFIG_CHANGE_NAMESPACE: &[u8] = b"vision-node/config-change/v2\0";
/// Beacon blocks between the block that finalizes a change and the beacon height from which
/// shards use it.
pub const CONFIG_ACTIVATION_DELAY: u64 = 2;
/// Most configuration changes in one beacon block.
pub const MAX_CONFIG_CHANGES_PER_BEACON_BLOCK: usize = 1;
/// Configurations kept in the beacon state's history (older ones are dropped; shard blocks
/// stamped with a beacon height before the oldest kept entry execute under that entry).
pub const CONFIG_HISTORY: usize = 1024;
/// Most account moves one change carries.
pub const MAX_MOVES_PER_CHANGE: usize = 16;

/// An order to place `account` on shard `to` (a layout override entry).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AccountMoveOrder {
    /// The user account (contracts do not move).
    pub account: AccountId,
    /// Its shard from the change's effective height on.
    pub to: ShardId,
}

impl Write for AccountMoveOrder {
    fn write(&self, buf: &mut impl BufMut) {
        self.account.write(buf);
        self.to.write(buf);
    }
}

impl EncodeSize for AccountMoveOrder {
    fn encode_size(&self) -> usize {
        self.account.encode_size() + self.to.encode_size()
    }
}

impl Read for AccountMoveOrder {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(AccountMoveOrder {
            account: AccountId::read_cfg(buf, &())?,
            to: ShardId::read_cfg(buf, &())?,
        })
    }
}

/// A signed change of the network's [`ShardConfig`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigChange {
    /// One above the number of changes applied before it.
    pub seq: u64,
    /// The whole configuration after the change.
    pub config: ShardConfig,
    /// Accounts placed on another shard by this change (distinct accounts, at most
    /// [`MAX_MOVES_PER_CHANGE`]).
    pub moves: Vec<AccountMoveOrder>,
    /// The configuration authority's key.
    pub signer: PublicKey,
    /// Signature of [`ConfigChange::signing_bytes`] by `signer`.
    pub signature: Signature,
}

impl ConfigChange {
    /// The bytes signed: namespace, network, seq, the configuration and the moves.
    pub fn signing_bytes(
        network: &NetworkId,
        seq: u64,
        config: &ShardConfig,
        moves: &[AccountMoveOrder],
    ) -> Vec<u8> {
        let mut b = Vec::with_capacity(CONFIG_CHANGE_NAMESPACE.len() + 96);
        b.extend_from_slice(CONFIG_CHANGE_NAMESPACE);
        network.write(&mut b);
        seq.write(&mut b);
        config.write(&mut b);
        moves.write(&mut b);
        b
    }

    /// Signs change `seq` to `config` (no account moves) with the authority key `key`.
    pub fn sign(network: &NetworkId, seq: u64, config: ShardConfig, key: &SecretKey) -> Self {
        Self::sign_with_moves(network, seq, config, Vec::new(), key)
    }

    /// Signs change `seq` to `config` with account `moves` with the authority key `key`.
    pub fn sign_with_moves(
        network: &NetworkId,
        seq: u64,
        config: ShardConfig,
        moves: Vec<AccountMoveOrder>,
        key: &SecretKey,
    ) -> Self {
        let signature = key.sign(&Self::signing_bytes(network, seq, &config, &moves));
        ConfigChange {
            seq,
            config,
            moves,
            signer: key.public_key(),
            signature,
        }
    }

    /// Whether the signature is `signer`'s over this change on `network`.
    pub fn signature_valid(&self, network: &NetworkId) -> bool {
        self.signer
            .verify(
                &Self::signing_bytes(network, self.seq, &self.config, &self.moves),
                &self.signature,
            )
            .is_ok()
    }

    /// SHA-256 of the canonical encoding (identifies the change in logs).
    pub fn id(&self) -> Hash {
        Hash::sha256(&self.encode())
    }
}

/// A configuration in the beacon state's history.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledConfig {
    /// The change that made it (0 for genesis).
    pub seq: u64,
    /// First beacon height at which shards use it.
    pub effective_height: u64,
    /// The configuration.
    pub config: ShardConfig,
    /// The shard layout in force with it (shared with the previous entry when the change
    /// moved no account).
    pub layout: Arc<ShardLayout>,
}

/// Why a configuration change is not acceptable on a beacon state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigRejection {
    /// The network has no configuration authority (its genesis account has no known key).
    #[error("this network has no configuration authority")]
    NoAuthority,
    /// Signed by a key other than the authority's.
    #[error("signed by {0}, not by the configuration authority")]
    NotAuthority(PublicKey),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Not the next change in sequence (a replay, or a change prepared against an older
    /// configuration).
    #[error("change seq {got}, the beacon expects {expected}")]
    WrongSeq {
        /// The next seq.
        expected: u64,
        /// The change's seq.
        got: u64,
    },
    /// The new configuration is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A field that cannot change on a running network differs.
    #[error("{0} cannot be changed on a running network")]
    Fixed(&'static str),
    /// An account move is not acceptable.
    #[error("account move: {0}")]
    BadMove(String),
}

impl Write for ConfigChange {
    fn write(&self, buf: &mut impl BufMut) {
        self.seq.write(buf);
        self.config.write(buf);
        self.moves.write(buf);
        self.signer.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for ConfigChange {
    fn encode_size(&self) -> usize {
        self.seq.encode_size()
            + self.config.encode_size()
            + self.moves.encode_size()
            + self.signer.encode_size()
            + self.signature.encode_size()
    }
}

impl Read for ConfigChange {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(ConfigChange {
            seq: u64::read_cfg(buf, &())?,
            config: ShardConfig::read_cfg(buf, &())?,
            moves: read_vec(buf, MAX_MOVES_PER_CHANGE, &())?,
            signer: PublicKey::read_cfg(buf, &())?,
            signature: Signature::read_cfg(buf, &())?,
        })
    }
}

/// Upper bound on the encoded size of one change.
pub fn max_config_change_size() -> usize {
    // seq + config (bool, 2 × u64, f64 bits, 3 × u64, 2 × bool, generously) + moves (length
    // prefix, each an account id with its length prefix and a shard) + key + signature.
    8 + 128 + 5 + MAX_MOVES_PER_CHANGE * (5 + MAX_ACCOUNT_ID_BYTES + 4) + 32 + 64
}
