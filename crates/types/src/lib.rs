//! Core types of Vision Node: identifiers, amounts, keys and signatures, transactions,
//! receipts, block headers and crosslinks, with a canonical bounded binary codec
//! (`commonware-codec`) and serde JSON for the HTTP API.
//!
//! This crate does no I/O.

pub mod amount;
pub mod codec_util;
pub mod crypto;
pub mod hash;
pub mod ids;
pub mod limits;

pub use amount::{Amount, AmountError};
pub use crypto::{CryptoError, PublicKey, SecretKey, Signature, batch_verify};
pub use hash::Hash;
pub use ids::{AccountId, ChainId, ContractId, IdError, ShardId};
