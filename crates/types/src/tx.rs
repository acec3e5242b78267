//! Signed transactions.

use crate::{
    Amount,
    codec_util::{read_str, read_vec, str_size, write_str},
    config::ConfigUpdate,
    crypto::{CryptoError, PublicKey, SecretKey, Signature},
    hash::Hash,
    ids::{AccountId, ChainId, ContractId, ShardId},
    limits,
};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, RangeCfg, Read, Write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The domain prefix of every transaction signature.
pub const TX_SIGNING_NAMESPACE: &[u8] = b"vision-node/tx/v1\0";

/// Priority that closes the pending crosslink batch at once (the seed's "max priority").
pub const PRIORITY_IMMEDIATE: u8 = 255;

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Create the named account bound to `public_key`, funded with `amount` from the signer.
    CreateAccount {
        /// The new account's name.
        account: AccountId,
        /// The key that will sign for it.
        public_key: PublicKey,
        /// Initial balance, debited from the signer.
        amount: Amount,
    },
    /// Move `amount` of the native coin to `to` (on any shard).
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Amount.
        amount: Amount,
        /// Receipt priority; 255 closes the cross-shard batch at once.
        #[serde(default)]
        priority: u8,
    },
    /// Deploy a contract on the signer's shard.
    DeployContract {
        /// Human-readable name.
        name: String,
        /// Code hash: selects a built-in template, or plain key-value storage.
        code_hash: String,
        /// Initial key-value state.
        #[serde(default)]
        initial_state: BTreeMap<String, String>,
        /// Gas budget of the contract (the seed's `gas_budget`).
        #[serde(default = "default_gas_budget")]
        gas_budget: u64,
    },
    /// Call a contract method (cross-shard if the contract lives elsewhere).
    CallContract {
        /// Target contract.
        contract: ContractId,
        /// Method name.
        method: String,
        /// Arguments as strings (the seed's `args`).
        #[serde(default)]
        args: Vec<String>,
        /// Most gas this call may use.
        #[serde(default = "default_gas_limit")]
        gas_limit: u64,
        /// Native coin attached to the call (e.g. paying for an NFT).
        #[serde(default)]
        amount: Amount,
    },
    /// A PRSM proposal, routed to its target shards.
    Proposal {
        /// What is proposed (the seed's `action`).
        action: String,
        /// Opaque payload (the seed's `data`).
        #[serde(default)]
        data: String,
        /// Whether every shard must decide (the seed's `affects_multiple_shards`).
        #[serde(default)]
        affects_multiple_shards: bool,
        /// Whether the beacon must record a global result (the seed's `coordination_required`).
        #[serde(default)]
        coordination_required: bool,
    },
    /// Close `shard`'s pending crosslink batch in the block that includes this transaction.
    Flush {
        /// The shard whose batch to flush (must be the signer's shard).
        shard: ShardId,
    },
    /// Records a request to change consensus-level sharding parameters as an event on the
    /// signer's shard. It changes nothing by itself: changes take effect only when signed by
    /// the network's configuration authority and finalized by the beacon chain (the consensus
    /// crate's `beacon::ConfigChange`, submitted through `POST /shard/config`).
    ConfigChange {
        /// The fields to change.
        update: ConfigUpdate,
    },
}

/// Default gas budget for deployed contracts (the seed's example value).
pub const DEFAULT_GAS_BUDGET: u64 = 1_000_000;
/// Default gas limit of a contract call.
pub const DEFAULT_GAS_LIMIT: u64 = 100_000;

fn default_gas_budget() -> u64 {
    DEFAULT_GAS_BUDGET
}

fn default_gas_limit() -> u64 {
    DEFAULT_GAS_LIMIT
}

/// An unsigned transaction: everything the signature covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// Network the transaction is for.
    pub chain_id: ChainId,
    /// The account that pays and signs.
    pub signer: AccountId,
    /// The signer's next nonce on its shard (starts at 0; replays and gaps are rejected).
    pub nonce: u64,
    /// Fee paid by the signer (burned).
    pub fee: Amount,
    /// What to do.
    pub action: Action,
}

impl Transaction {
    /// The exact bytes the signature covers: a namespace and the canonical encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TX_SIGNING_NAMESPACE.len() + self.encode_size());
        out.extend_from_slice(TX_SIGNING_NAMESPACE);
        self.write(&mut out);
        out
    }

    /// The transaction id: SHA-256 of the signing bytes. It does not cover the signature, so a
    /// re-encoded signature never changes the id.
    pub fn id(&self) -> Hash {
        Hash::sha256(&self.signing_bytes())
    }

    /// Signs with `key`.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes());
        SignedTransaction {
            tx: self,
            public_key: key.public_key(),
            signature,
        }
    }
}

/// A transaction with the signer's public key and signature.
///
/// The key is carried so the signature can be checked (and batch-checked) before any state
/// lookup; the state machine then checks that the key is the one bound to the signer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTransaction {
    /// The signed content.
    pub tx: Transaction,
    /// The key that signed.
    pub public_key: PublicKey,
    /// ed25519 signature over [`Transaction::signing_bytes`].
    pub signature: Signature,
}

impl SignedTransaction {
    /// The transaction id (see [`Transaction::id`]).
    pub fn id(&self) -> Hash {
        self.tx.id()
    }

    /// Checks the signature (ZIP-215 rules; see [`crate::crypto`]).
    pub fn verify_signature(&self) -> Result<(), CryptoError> {
        self.public_key
            .verify(&self.tx.signing_bytes(), &self.signature)
    }

    /// This transaction as [`Verified`] if its signature verifies.
    pub fn into_verified(self) -> Result<Verified, CryptoError> {
        self.verify_signature()?;
        Ok(Verified(self))
    }
}

/// A signed transaction whose signature this process has checked: the only way to build one
/// is to verify it ([`SignedTransaction::into_verified`], [`verify_all`]), so code that takes
/// a `Verified` need not (and does not) verify it again.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified(SignedTransaction);

impl Verified {
    /// The transaction.
    pub fn get(&self) -> &SignedTransaction {
        &self.0
    }

    /// The transaction, giving up the proof of verification.
    pub fn into_inner(self) -> SignedTransaction {
        self.0
    }
}

impl std::ops::Deref for Verified {
    type Target = SignedTransaction;
    fn deref(&self) -> &SignedTransaction {
        &self.0
    }
}

/// Verifies many signed transactions with one batch verification, falling back to one by one
/// to find the culprits only if the batch fails. One result per transaction, in order; a
/// transaction whose signature does not verify comes back with the reason.
// Both outcomes hand the transaction back by value (as `Verified` or with its error); boxing
// the error side would not make the result smaller.
#[allow(clippy::result_large_err)]
pub fn verify_all(
    txs: Vec<SignedTransaction>,
) -> Vec<Result<Verified, (SignedTransaction, CryptoError)>> {
    let msgs: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
    let all_ok = crate::crypto::batch_verify(
        txs.iter()
            .zip(&msgs)
            .map(|(t, m)| (&t.public_key, m.as_slice(), &t.signature)),
    )
    .is_ok();
    txs.into_iter()
        .zip(&msgs)
        .map(|(tx, msg)| {
            if all_ok {
                return Ok(Verified(tx));
            }
            match tx.public_key.verify(msg, &tx.signature) {
                Ok(()) => Ok(Verified(tx)),
                Err(e) => Err((tx, e)),
            }
        })
        .collect()
}

// ---- canonical codec ----

pub(crate) fn write_map(m: &BTreeMap<String, String>, buf: &mut impl BufMut) {
    m.len().write(buf);
    for (k, v) in m {
        write_str(k, buf);
        write_str(v, buf);
    }
}

pub(crate) fn map_size(m: &BTreeMap<String, String>) -> usize {
    m.len().encode_size()
        + m.iter()
            .map(|(k, v)| str_size(k) + str_size(v))
            .sum::<usize>()
}

/// Reads a string map of at most `max_entries`, keys strictly ascending (canonical).
pub(crate) fn read_map(
    buf: &mut impl Buf,
    max_entries: usize,
) -> Result<BTreeMap<String, String>, CodecError> {
    let n = usize::read_cfg(buf, &RangeCfg::new(0..=max_entries))?;
    let mut m = BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..n {
        let k = read_str(buf, limits::MAX_KEY_BYTES, "map key")?;
        let v = read_str(buf, limits::MAX_VALUE_BYTES, "map value")?;
        if last.as_ref().is_some_and(|l| *l >= k) {
            return Err(CodecError::Invalid("map", "keys not strictly ascending"));
        }
        last = Some(k.clone());
        m.insert(k, v);
    }
    Ok(m)
}

pub(crate) fn write_str_vec(v: &[String], buf: &mut impl BufMut) {
    v.len().write(buf);
    for s in v {
        write_str(s, buf);
    }
}

pub(crate) fn str_vec_size(v: &[String]) -> usize {
    v.len().encode_size() + v.iter().map(|s| str_size(s)).sum::<usize>()
}

pub(crate) fn read_str_vec(
    buf: &mut impl Buf,
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<String>, CodecError> {
    let n = usize::read_cfg(buf, &RangeCfg::new(0..=max_items))?;
    (0..n)
        .map(|_| read_str(buf, max_bytes, "string list"))
        .collect()
}

impl Write for Action {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Action::CreateAccount {
                account,
                public_key,
                amount,
            } => {
                0u8.write(buf);
                account.write(buf);
                public_key.write(buf);
                amount.write(buf);
            }
            Action::Transfer {
                to,
                amount,
                priority,
            } => {
                1u8.write(buf);
                to.write(buf);
                amount.write(buf);
                priority.write(buf);
            }
            Action::DeployContract {
                name,
                code_hash,
                initial_state,
                gas_budget,
            } => {
                2u8.write(buf);
                write_str(name, buf);
                write_str(code_hash, buf);
                write_map(initial_state, buf);
                gas_budget.write(buf);
            }
            Action::CallContract {
                contract,
                method,
                args,
                gas_limit,
                amount,
            } => {
                3u8.write(buf);
                contract.write(buf);
                write_str(method, buf);
                write_str_vec(args, buf);
                gas_limit.write(buf);
                amount.write(buf);
            }
            Action::Proposal {
                action,
                data,
                affects_multiple_shards,
                coordination_required,
            } => {
                4u8.write(buf);
                write_str(action, buf);
                write_str(data, buf);
                affects_multiple_shards.write(buf);
                coordination_required.write(buf);
            }
            Action::Flush { shard } => {
                5u8.write(buf);
                shard.write(buf);
            }
            Action::ConfigChange { update } => {
                6u8.write(buf);
                update.write(buf);
            }
        }
    }
}

impl EncodeSize for Action {
    fn encode_size(&self) -> usize {
        1 + match self {
            Action::CreateAccount { account, .. } => account.encode_size() + 32 + 16,
            Action::Transfer { to, .. } => to.encode_size() + 16 + 1,
            Action::DeployContract {
                name,
                code_hash,
                initial_state,
                ..
            } => str_size(name) + str_size(code_hash) + map_size(initial_state) + 8,
            Action::CallContract {
                contract,
                method,
                args,
                ..
            } => contract.encode_size() + str_size(method) + str_vec_size(args) + 8 + 16,
            Action::Proposal { action, data, .. } => str_size(action) + str_size(data) + 2,
            Action::Flush { .. } => 4,
            Action::ConfigChange { update } => update.encode_size(),
        }
    }
}

/// Longest contract code hash string, in bytes.
pub const MAX_CODE_HASH_BYTES: usize = 130;

impl Read for Action {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tag = u8::read_cfg(buf, &())?;
        Ok(match tag {
            0 => Action::CreateAccount {
                account: AccountId::read_cfg(buf, &())?,
                public_key: PublicKey::read_cfg(buf, &())?,
                amount: Amount::read_cfg(buf, &())?,
            },
            1 => Action::Transfer {
                to: AccountId::read_cfg(buf, &())?,
                amount: Amount::read_cfg(buf, &())?,
                priority: u8::read_cfg(buf, &())?,
            },
            2 => Action::DeployContract {
                name: read_str(buf, limits::MAX_CONTRACT_NAME_BYTES, "contract name")?,
                code_hash: read_str(buf, MAX_CODE_HASH_BYTES, "code hash")?,
                initial_state: read_map(buf, limits::MAX_INITIAL_STATE_ENTRIES)?,
                gas_budget: u64::read_cfg(buf, &())?,
            },
            3 => Action::CallContract {
                contract: ContractId::read_cfg(buf, &())?,
                method: read_str(buf, limits::MAX_METHOD_BYTES, "method")?,
                args: read_str_vec(buf, limits::MAX_ARGS, limits::MAX_ARG_BYTES)?,
                gas_limit: u64::read_cfg(buf, &())?,
                amount: Amount::read_cfg(buf, &())?,
            },
            4 => Action::Proposal {
                action: read_str(buf, limits::MAX_PROPOSAL_ACTION_BYTES, "proposal action")?,
                data: read_str(buf, limits::MAX_PROPOSAL_DATA_BYTES, "proposal data")?,
                affects_multiple_shards: bool::read_cfg(buf, &())?,
                coordination_required: bool::read_cfg(buf, &())?,
            },
            5 => Action::Flush {
                shard: ShardId::read_cfg(buf, &())?,
            },
            6 => Action::ConfigChange {
                update: ConfigUpdate::read_cfg(buf, &())?,
            },
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

impl Action {
    /// The coin the action takes from the signer besides the fee: the amount created,
    /// transferred or attached to a call; zero for every other action.
    pub fn value(&self) -> Amount {
        match self {
            Action::CreateAccount { amount, .. }
            | Action::Transfer { amount, .. }
            | Action::CallContract { amount, .. } => *amount,
            _ => Amount::ZERO,
        }
    }

    /// Checks the bounds that the codec enforces, for values built from JSON.
    pub fn check_limits(&self) -> Result<(), &'static str> {
        match self {
            Action::DeployContract {
                name,
                code_hash,
                initial_state,
                ..
            } => {
                if name.is_empty() || name.len() > limits::MAX_CONTRACT_NAME_BYTES {
                    return Err("contract name must be 1-64 bytes");
                }
                if code_hash.is_empty() || code_hash.len() > MAX_CODE_HASH_BYTES {
                    return Err("code_hash must be 1-130 bytes");
                }
                if initial_state.len() > limits::MAX_INITIAL_STATE_ENTRIES {
                    return Err("initial_state has too many entries (max 64)");
                }
                if initial_state.iter().any(|(k, v)| {
                    k.len() > limits::MAX_KEY_BYTES || v.len() > limits::MAX_VALUE_BYTES
                }) {
                    return Err("initial_state key or value too long (max 128 / 1024 bytes)");
                }
            }
            Action::CallContract { method, args, .. } => {
                if method.is_empty() || method.len() > limits::MAX_METHOD_BYTES {
                    return Err("method must be 1-64 bytes");
                }
                if args.len() > limits::MAX_ARGS {
                    return Err("too many args (max 8)");
                }
                if args.iter().any(|a| a.len() > limits::MAX_ARG_BYTES) {
                    return Err("argument too long (max 256 bytes)");
                }
            }
            Action::Proposal { action, data, .. } => {
                if action.is_empty() || action.len() > limits::MAX_PROPOSAL_ACTION_BYTES {
                    return Err("proposal action must be 1-64 bytes");
                }
                if data.len() > limits::MAX_PROPOSAL_DATA_BYTES {
                    return Err("proposal data too long (max 4096 bytes)");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain_id.write(buf);
        self.signer.write(buf);
        self.nonce.write(buf);
        self.fee.write(buf);
        self.action.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        self.chain_id.encode_size() + self.signer.encode_size() + 8 + 16 + self.action.encode_size()
    }
}

impl Read for Transaction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Transaction {
            chain_id: ChainId::read_cfg(buf, &())?,
            signer: AccountId::read_cfg(buf, &())?,
            nonce: u64::read_cfg(buf, &())?,
            fee: Amount::read_cfg(buf, &())?,
            action: Action::read_cfg(buf, &())?,
        })
    }
}

impl Write for SignedTransaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        self.public_key.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTransaction {
    fn encode_size(&self) -> usize {
        self.tx.encode_size() + 32 + 64
    }
}

impl Read for SignedTransaction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(SignedTransaction {
            tx: Transaction::read_cfg(buf, &())?,
            public_key: PublicKey::read_cfg(buf, &())?,
            signature: Signature::read_cfg(buf, &())?,
        })
    }
}

/// Reads a list of signed transactions (at most [`limits::MAX_TXS_PER_BLOCK`]).
pub fn read_txs(buf: &mut impl Buf) -> Result<Vec<SignedTransaction>, CodecError> {
    read_vec(buf, limits::MAX_TXS_PER_BLOCK, &())
}

/// Encodes any codec value to a `Vec<u8>`.
pub fn to_bytes<T: Encode>(v: &T) -> Vec<u8> {
    v.encode().to_vec()
}
