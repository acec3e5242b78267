//! Core types of Vision Node: identifiers, amounts, keys and signatures, transactions,
//! receipts, block headers and crosslinks, with a canonical bounded binary codec
//! (`commonware-codec`: deterministic, every variable-length field bounded by [`limits`],
//! decoding never panics) and serde JSON for the HTTP API.
//!
//! This crate does no I/O.

pub mod amount;
pub mod block;
pub mod codec_util;
pub mod config;
pub mod crypto;
pub mod genesis;
pub mod hash;
pub mod ids;
pub mod limits;
pub mod merkle;
pub mod prsm;
pub mod receipt;
pub mod tx;

pub use amount::{Amount, AmountError};
pub use block::{
    BlockHeader, ChainRef, Crosslink, CrosslinkError, DestinationBatch, IncomingBatch, ShardBlock,
    crosslink_id,
};
pub use commonware_codec::{Decode, DecodeExt, Encode, Error as CodecError};
pub use config::{ConfigError, ConfigUpdate, ShardConfig};
pub use crypto::{CryptoError, PublicKey, SecretKey, Signature, batch_verify};
pub use genesis::{Genesis, GenesisAccount, GenesisError, GenesisValidator};
pub use hash::Hash;
pub use ids::{AccountId, ChainId, ContractId, IdError, ShardId};
pub use merkle::MerkleProof;
pub use receipt::{CallId, Receipt, ReceiptKind};
pub use tx::{Action, SignedTransaction, Transaction, Verified, verify_all};

#[cfg(test)]
mod proptests;
