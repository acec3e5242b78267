//! Cross-shard receipts: the only way value and calls move between shards.

use crate::{
    Amount, PublicKey,
    codec_util::{read_str, str_size, write_str},
    hash::Hash,
    ids::{AccountId, ContractId, ShardId},
    limits, merkle,
    tx::{
        MAX_CODE_HASH_BYTES, map_size, read_map, read_str_vec, str_vec_size, write_map,
        write_str_vec,
    },
};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::{fmt, str::FromStr};

/// A cross-shard contract call id: `xscall_` followed by 32 hex characters (the first 16
/// bytes of the calling transaction's id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub [u8; 16]);

impl CallId {
    /// The prefix of every call id.
    pub const PREFIX: &'static str = "xscall_";

    /// The call id of the call made by transaction `tx_id`.
    pub fn from_tx(tx_id: &Hash) -> Self {
        let mut b = [0u8; 16];
        b.copy_from_slice(&tx_id.0[..16]);
        CallId(b)
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex::encode(self.0))
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string is not a call id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid call id: expected xscall_ followed by 32 hex characters")]
pub struct ParseCallIdError;

impl FromStr for CallId {
    type Err = ParseCallIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let h = s.strip_prefix(Self::PREFIX).ok_or(ParseCallIdError)?;
        let mut b = [0u8; 16];
        if h.len() != 32 {
            return Err(ParseCallIdError);
        }
        hex::decode_to_slice(h, &mut b).map_err(|_| ParseCallIdError)?;
        Ok(CallId(b))
    }
}

impl Serialize for CallId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for CallId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Write for CallId {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}

impl Read for CallId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(CallId(<[u8; 16]>::read_cfg(buf, &())?))
    }
}

impl FixedSize for CallId {
    const SIZE: usize = 16;
}

/// What a receipt asks the destination shard to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReceiptKind {
    /// Credit `amount` to the recipient.
    Transfer,
    /// Create the recipient account bound to `public_key` and credit `amount`.
    CreateAccount {
        /// The new account's key.
        public_key: PublicKey,
    },
    /// Execute a contract call on the contract's primary shard (`amount` is attached).
    ContractCall {
        /// The call id.
        call_id: CallId,
        /// The contract.
        contract: ContractId,
        /// Method.
        method: String,
        /// Arguments.
        args: Vec<String>,
        /// Gas limit.
        gas_limit: u64,
    },
    /// The result of a cross-shard call, returning to the caller's shard (`amount` is any
    /// refund of attached coin).
    CallResult {
        /// The call id.
        call_id: CallId,
        /// Whether the call completed.
        success: bool,
        /// The call's output, or why it failed.
        output: String,
    },
    /// A receipt could not be applied at its destination: `amount` returns to the recipient
    /// of this refund (the original sender).
    Refund {
        /// Why the original receipt failed.
        reason: String,
    },
    /// Deploy a contract on its primary shard (the deployer, `sender`, lives on another
    /// shard; `recipient` is the deployer too, who becomes the owner).
    DeployContract {
        /// The contract id (from the deploying transaction).
        contract: ContractId,
        /// Name.
        name: String,
        /// Code hash.
        code_hash: String,
        /// Initial key-value state.
        initial_state: BTreeMap<String, String>,
        /// Gas budget.
        gas_budget: u64,
    },
    /// Ask the destination shard to decide a PRSM proposal coordinated by the source shard
    /// (the proposal's id is `origin_tx`; `sender` = `recipient` = the proposer).
    ProposalRequest {
        /// What is proposed.
        action: String,
        /// The proposal's payload.
        data: String,
    },
    /// A target shard's decision on a PRSM proposal, returning to the coordinating shard.
    ProposalVote {
        /// Whether the shard accepted the proposal.
        accepted: bool,
        /// Why it rejected it (empty when accepted).
        reason: String,
        /// The deciding shard's block height that decided it.
        height: u64,
    },
    /// An account moved to the destination shard (a beacon-scheduled account move): restore
    /// it there. `amount` is its balance, `sender` = `recipient` = the account. Emitted with
    /// priority 255, so the source's batch closes at once.
    Migrate {
        /// The account's key, or `None` if the account did not exist on the old shard (the
        /// receipt then only ends the move; `amount` is zero).
        public_key: Option<PublicKey>,
        /// The account's next nonce on the old shard.
        nonce: u64,
    },
}

/// A receipt: `(src, dst, seq, kind, amount, priority)` plus who sent it to whom and which
/// transaction caused it. `seq` is contiguous per (src, dst), starting at 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Source shard.
    pub src: ShardId,
    /// Destination shard.
    pub dst: ShardId,
    /// Position in the (src, dst) stream.
    pub seq: u64,
    /// What to do at the destination.
    pub kind: ReceiptKind,
    /// Native coin carried (in flight until applied).
    pub amount: Amount,
    /// Priority; 255 closes the source's pending batch at once.
    pub priority: u8,
    /// The transaction that caused this receipt (for refunds, the original's id).
    pub origin_tx: Hash,
    /// The account debited at the source.
    pub sender: AccountId,
    /// The account (or contract owner) credited at the destination.
    pub recipient: AccountId,
}

impl Receipt {
    /// `receipt_{src}_{dst}_{seq}`.
    pub fn id(&self) -> String {
        format!("receipt_{}_{}_{}", self.src, self.dst, self.seq)
    }

    /// The receipt's Merkle leaf hash.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.encode())
    }
}

impl Write for ReceiptKind {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            ReceiptKind::Transfer => 0u8.write(buf),
            ReceiptKind::CreateAccount { public_key } => {
                1u8.write(buf);
                public_key.write(buf);
            }
            ReceiptKind::ContractCall {
                call_id,
                contract,
                method,
                args,
                gas_limit,
            } => {
                2u8.write(buf);
                call_id.write(buf);
                contract.write(buf);
                write_str(method, buf);
                write_str_vec(args, buf);
                gas_limit.write(buf);
            }
            ReceiptKind::CallResult {
                call_id,
                success,
                output,
            } => {
                3u8.write(buf);
                call_id.write(buf);
                success.write(buf);
                write_str(output, buf);
            }
            ReceiptKind::Refund { reason } => {
                4u8.write(buf);
                write_str(reason, buf);
            }
            ReceiptKind::DeployContract {
                contract,
                name,
                code_hash,
                initial_state,
                gas_budget,
            } => {
                5u8.write(buf);
                contract.write(buf);
                write_str(name, buf);
                write_str(code_hash, buf);
                write_map(initial_state, buf);
                gas_budget.write(buf);
            }
            ReceiptKind::ProposalRequest { action, data } => {
                6u8.write(buf);
                write_str(action, buf);
                write_str(data, buf);
            }
            ReceiptKind::ProposalVote {
                accepted,
                reason,
                height,
            } => {
                7u8.write(buf);
                accepted.write(buf);
                write_str(reason, buf);
                height.write(buf);
            }
            ReceiptKind::Migrate { public_key, nonce } => {
                8u8.write(buf);
                match public_key {
                    None => 0u8.write(buf),
                    Some(k) => {
                        1u8.write(buf);
                        k.write(buf);
                    }
                }
                nonce.write(buf);
            }
        }
    }
}

impl EncodeSize for ReceiptKind {
    fn encode_size(&self) -> usize {
        1 + match self {
            ReceiptKind::Transfer => 0,
            ReceiptKind::CreateAccount { .. } => 32,
            ReceiptKind::ContractCall {
                contract,
                method,
                args,
                ..
            } => 16 + contract.encode_size() + str_size(method) + str_vec_size(args) + 8,
            ReceiptKind::CallResult { output, .. } => 16 + 1 + str_size(output),
            ReceiptKind::Refund { reason } => str_size(reason),
            ReceiptKind::DeployContract {
                contract,
                name,
                code_hash,
                initial_state,
                ..
            } => {
                contract.encode_size()
                    + str_size(name)
                    + str_size(code_hash)
                    + map_size(initial_state)
                    + 8
            }
            ReceiptKind::ProposalRequest { action, data } => str_size(action) + str_size(data),
            ReceiptKind::ProposalVote { reason, .. } => 1 + str_size(reason) + 8,
            ReceiptKind::Migrate { public_key, .. } => {
                1 + if public_key.is_some() { 32 } else { 0 } + 8
            }
        }
    }
}

impl Read for ReceiptKind {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read_cfg(buf, &())? {
            0 => ReceiptKind::Transfer,
            1 => ReceiptKind::CreateAccount {
                public_key: PublicKey::read_cfg(buf, &())?,
            },
            2 => ReceiptKind::ContractCall {
                call_id: CallId::read_cfg(buf, &())?,
                contract: ContractId::read_cfg(buf, &())?,
                method: read_str(buf, limits::MAX_METHOD_BYTES, "method")?,
                args: read_str_vec(buf, limits::MAX_ARGS, limits::MAX_ARG_BYTES)?,
                gas_limit: u64::read_cfg(buf, &())?,
            },
            3 => ReceiptKind::CallResult {
                call_id: CallId::read_cfg(buf, &())?,
                success: bool::read_cfg(buf, &())?,
                output: read_str(buf, limits::MAX_RESULT_BYTES, "call output")?,
            },
            4 => ReceiptKind::Refund {
                reason: read_str(buf, limits::MAX_RESULT_BYTES, "refund reason")?,
            },
            5 => ReceiptKind::DeployContract {
                contract: ContractId::read_cfg(buf, &())?,
                name: read_str(buf, limits::MAX_CONTRACT_NAME_BYTES, "contract name")?,
                code_hash: read_str(buf, MAX_CODE_HASH_BYTES, "code hash")?,
                initial_state: read_map(buf, limits::MAX_INITIAL_STATE_ENTRIES)?,
                gas_budget: u64::read_cfg(buf, &())?,
            },
            6 => ReceiptKind::ProposalRequest {
                action: read_str(buf, limits::MAX_PROPOSAL_ACTION_BYTES, "proposal action")?,
                data: read_str(buf, limits::MAX_PROPOSAL_DATA_BYTES, "proposal data")?,
            },
            7 => ReceiptKind::ProposalVote {
                accepted: bool::read_cfg(buf, &())?,
                reason: read_str(buf, limits::MAX_RESULT_BYTES, "proposal vote reason")?,
                height: u64::read_cfg(buf, &())?,
            },
            8 => ReceiptKind::Migrate {
                public_key: match u8::read_cfg(buf, &())? {
                    0 => None,
                    1 => Some(PublicKey::read_cfg(buf, &())?),
                    t => return Err(CodecError::InvalidEnum(t)),
                },
                nonce: u64::read_cfg(buf, &())?,
            },
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

impl Write for Receipt {
    fn write(&self, buf: &mut impl BufMut) {
        self.src.write(buf);
        self.dst.write(buf);
        self.seq.write(buf);
        self.kind.write(buf);
        self.amount.write(buf);
        self.priority.write(buf);
        self.origin_tx.write(buf);
        self.sender.write(buf);
        self.recipient.write(buf);
    }
}

impl EncodeSize for Receipt {
    fn encode_size(&self) -> usize {
        4 + 4
            + 8
            + self.kind.encode_size()
            + 16
            + 1
            + 32
            + self.sender.encode_size()
            + self.recipient.encode_size()
    }
}

impl Read for Receipt {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Receipt {
            src: ShardId::read_cfg(buf, &())?,
            dst: ShardId::read_cfg(buf, &())?,
            seq: u64::read_cfg(buf, &())?,
            kind: ReceiptKind::read_cfg(buf, &())?,
            amount: Amount::read_cfg(buf, &())?,
            priority: u8::read_cfg(buf, &())?,
            origin_tx: Hash::read_cfg(buf, &())?,
            sender: AccountId::read_cfg(buf, &())?,
            recipient: AccountId::read_cfg(buf, &())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::DecodeExt;

    #[test]
    fn migrate_kind_round_trips_in_codec_and_json() {
        for public_key in [None, Some(PublicKey([7; 32]))] {
            let kind = ReceiptKind::Migrate {
                public_key,
                nonce: 42,
            };
            let bytes = kind.encode();
            assert_eq!(bytes.len(), kind.encode_size());
            assert_eq!(bytes[0], 8, "the next free codec tag");
            assert_eq!(ReceiptKind::decode(bytes).unwrap(), kind);
            let json = serde_json::to_value(&kind).unwrap();
            assert_eq!(json["type"], "migrate");
            assert_eq!(serde_json::from_value::<ReceiptKind>(json).unwrap(), kind);
        }
        // An unknown key-presence byte is refused.
        assert!(ReceiptKind::decode(vec![8u8, 2, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
