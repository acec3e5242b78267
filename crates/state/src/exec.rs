//! Block execution: the deterministic transition function of a shard.

use crate::{
    batch::{self, ClosedBatch},
    contracts::MAX_CALL_HISTORY,
    engine::{CallInput, CallOutcome, ContractEngine, ContractInfo, DeployInput},
    keys::{self, Counter},
    model::{
        Account, CallRecord, CallStatus, ChainMeta, ContractMeta, MigratingMark, enc, enc_json,
    },
    view::{Overlay, StateReadExt, StateView, WriteSet},
};
use commonware_codec::EncodeSize;
use std::collections::BTreeMap;
use vision_types::{
    AccountId, Action, Amount, CallId, ChainId, ContractId, Hash, IncomingBatch, Receipt,
    ReceiptKind, ShardConfig, ShardId, SignedTransaction, batch_verify, limits,
    tx::PRIORITY_IMMEDIATE,
};

mod proposals;

pub use proposals::{MAX_PENDING_PROPOSALS, ProposalTargets, VALIDATE_TRANSACTION};

/// Largest gas limit a call may ask for (matches the contract engine's largest budget).
pub const MAX_GAS_LIMIT: u64 = 10_000_000;

/// Maps accounts and contracts to their shard (the PRSM `ShardLayout` implements it in the
/// consensus layer; tests use small fixed layouts).
pub trait ShardOf {
    /// The shard of an account.
    fn shard_of_account(&self, account: &AccountId) -> ShardId;
    /// The shard of a contract.
    fn shard_of_contract(&self, contract: &ContractId) -> ShardId;
}

/// A [`ShardOf`] from two functions (e.g. wrapping the PRSM `ShardLayout`:
/// `FnLayout(|a| layout.shard_of_account(a), |c| layout.shard_of_contract(c))`).
pub struct FnLayout<A, C>(pub A, pub C);

impl<A, C> ShardOf for FnLayout<A, C>
where
    A: Fn(&AccountId) -> ShardId,
    C: Fn(&ContractId) -> ShardId,
{
    fn shard_of_account(&self, account: &AccountId) -> ShardId {
        (self.0)(account)
    }
    fn shard_of_contract(&self, contract: &ContractId) -> ShardId {
        (self.1)(contract)
    }
}

/// Answers which receipts roots are final: the consensus layer knows which crosslinks the
/// beacon chain finalized.
pub trait FinalRoots {
    /// The receipts root of `source`'s crosslink at block `height`, if the beacon finalized it.
    fn final_receipts_root(&self, source: ShardId, height: u64) -> Option<Hash>;
}

/// A table of final roots: `(source shard, crosslink height) → receipts root`.
impl FinalRoots for BTreeMap<(ShardId, u64), Hash> {
    fn final_receipts_root(&self, source: ShardId, height: u64) -> Option<Hash> {
        self.get(&(source, height)).copied()
    }
}

/// Most [`Migration`]s one block may carry. Bounds the receipts emitted at the start of a block
/// outside the pending batch's byte cap: each migration emits at most one receipt of at most
/// [`MAX_MIGRATE_RECEIPT_BYTES`] (see [`BlockContext::migrations`]).
pub const MAX_MIGRATIONS_PER_BLOCK: usize = 64;

/// The reason of the `Refund` an account sends itself when it moves on while still awaiting
/// its state (carrying coin credited or held for it meanwhile).
pub const MOVED_ON_REASON: &str = "moved on before its state arrived";

/// Largest encoded size of a receipt a migration emits (a `Migrate` with a key, or the
/// `Refund` with [`MOVED_ON_REASON`] that carries coin received meanwhile, between two
/// longest account names).
pub const MAX_MIGRATE_RECEIPT_BYTES: usize =
    4 + 4 + 8 + (1 + 1 + 32 + 8) + 16 + 1 + 32 + 2 * (4 + limits::MAX_ACCOUNT_ID_BYTES);

// The migration receipts of a block join a pending batch holding less than half the byte
// cap (a batch at half the cap closes at the end of the block that reaches it), so even
// exempt from the cap they cannot push a batch over it.
const _: () = assert!(
    limits::MAX_BATCH_RECEIPT_BYTES / 2 + MAX_MIGRATIONS_PER_BLOCK * MAX_MIGRATE_RECEIPT_BYTES
        <= limits::MAX_BATCH_RECEIPT_BYTES
);

/// An account whose owning shard changed between the parent block's beacon height and this
/// block's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The account that moves.
    pub account: AccountId,
    /// Its shard under the parent block's layout.
    pub from: ShardId,
    /// Its shard under this block's layout ([`BlockContext::layout`]).
    pub to: ShardId,
}

/// Everything execution needs besides the state and the block body.
pub struct BlockContext<'a> {
    /// This shard.
    pub shard: ShardId,
    /// Height of the block being executed (the last executed height + 1).
    pub height: u64,
    /// The block's time (proposer's clock, monotonic along the chain).
    pub timestamp_ms: u64,
    /// The beacon height the block is stamped with (recorded in [`crate::ChainMeta`]).
    pub beacon_height: u64,
    /// The network's chain id.
    pub chain_id: ChainId,
    /// The sharding configuration in force at this height.
    pub config: &'a ShardConfig,
    /// Account / contract → shard.
    pub layout: &'a dyn ShardOf,
    /// Final receipts roots.
    pub final_roots: &'a dyn FinalRoots,
    /// The contract engine.
    pub engine: &'a dyn ContractEngine,
    /// The PRSM targeting rule for proposals.
    pub proposal_targets: &'a dyn ProposalTargets,
    /// Signed transactions this node already verified (its pool): not verified again.
    pub verified: &'a dyn VerifiedSignatures,
    /// Accounts whose shard changed between the parent block's beacon height and this
    /// block's: sorted by account, without duplicates, at most [`MAX_MIGRATIONS_PER_BLOCK`],
    /// each with `from != to` and `to` = its shard under `layout`; otherwise the block is
    /// invalid ([`BlockError::BadMigrations`]). Applied at the start of the block, before
    /// incoming receipts and transactions: an account moving out is removed and travels in
    /// a `Migrate` receipt; an account moving in is marked awaiting until it arrives.
    pub migrations: &'a [Migration],
}

/// Signed transactions a node has already verified, so executing a block that carries them
/// need not verify them again. Answering `true` only for the exact bytes verified before (the
/// same transaction, key and signature) leaves the outcome unchanged: verification is
/// deterministic, so every node reaches the same verdict with or without it.
pub trait VerifiedSignatures {
    /// Whether exactly this signed transaction was verified before.
    fn verified(&self, tx: &SignedTransaction) -> bool;
}

/// Knows of no verified transaction: every signature is checked.
pub struct NoneVerified;

impl VerifiedSignatures for NoneVerified {
    fn verified(&self, _: &SignedTransaction) -> bool {
        false
    }
}

/// Why a transaction cannot be included. A block containing one is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxRejection {
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The signing key is not the key bound to the signer.
    #[error("the signing key is not the signer's key")]
    KeyMismatch,
    /// The transaction is for another network.
    #[error("wrong chain id: expected {expected}, got {got}")]
    WrongChain {
        /// This network.
        expected: ChainId,
        /// The transaction's.
        got: ChainId,
    },
    /// The signer (or the flushed shard) is not on this shard.
    #[error("wrong shard: this is shard {this}, the transaction belongs to shard {belongs}")]
    WrongShard {
        /// This shard.
        this: ShardId,
        /// Where it belongs.
        belongs: ShardId,
    },
    /// An account does not exist.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// The nonce was already used.
    #[error("nonce replayed: expected {expected}, got {got}")]
    NonceReplayed {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The nonce skips ahead.
    #[error("nonce gap: expected {expected}, got {got}")]
    NonceGap {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// Fee plus amount exceeds the balance.
    #[error("insufficient balance: need {needed}, have {available}")]
    InsufficientBalance {
        /// Fee + amount.
        needed: Amount,
        /// Balance.
        available: Amount,
    },
    /// An amount computation overflows.
    #[error("amount overflow")]
    Overflow,
    /// The account to create already exists.
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    /// The name is reserved (`contract_…`) or does not match the implicit key it spells.
    #[error("account name {0} is reserved or does not match its key")]
    BadAccountName(AccountId),
    /// The contract does not exist on this shard.
    #[error("unknown contract {0}")]
    UnknownContract(ContractId),
    /// `smart_contracts_enabled` is false.
    #[error("smart contracts are disabled")]
    ContractsDisabled,
    /// A field is out of its bounds.
    #[error("invalid action: {0}")]
    InvalidAction(String),
    /// A batch would exceed its hard limit.
    #[error("the crosslink batch is full")]
    BatchFull,
    /// The account is moving to this shard and its state (balance, nonce, key) has not
    /// arrived yet: its transactions wait, so an old one cannot be replayed here at nonce 0.
    #[error("account {account} is moving to this shard from shard {from}; retry shortly")]
    Migrating {
        /// The account.
        account: AccountId,
        /// The shard it moves from.
        from: ShardId,
    },
}

/// Why an incoming receipt batch cannot be applied. A block containing one is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IncomingRejection {
    /// The batch is for another shard.
    #[error("batch is for shard {0}")]
    WrongDestination(ShardId),
    /// A shard does not send receipts to itself.
    #[error("batch comes from this shard")]
    FromSelf,
    /// The source crosslink is not final (the consensus layer does not vouch for its root).
    #[error("crosslink {source_shard}/{height} is not final")]
    NotFinal {
        /// Source shard.
        source_shard: ShardId,
        /// Crosslink height.
        height: u64,
    },
    /// Proof or content check failed.
    #[error("bad batch: {0}")]
    BadBatch(&'static str),
    /// Receipts already applied.
    #[error("duplicate: from shard {src} expected seq {expected}, batch starts at {got}")]
    Duplicate {
        /// Source shard.
        src: ShardId,
        /// Next expected seq.
        expected: u64,
        /// The batch's first seq.
        got: u64,
    },
    /// Applying it would overflow the pending crosslink batch (deliver it in a later block).
    #[error("the pending crosslink batch is full")]
    BatchFull,
    /// Receipts missing before this batch.
    #[error("gap: from shard {src} expected seq {expected}, batch starts at {got}")]
    Gap {
        /// Source shard.
        src: ShardId,
        /// Next expected seq.
        expected: u64,
        /// The batch's first seq.
        got: u64,
    },
}

/// Why a block is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A transaction must be rejected.
    #[error("tx {index} ({tx_id}): {reason}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// Its id.
        tx_id: Hash,
        /// Why.
        reason: TxRejection,
    },
    /// An incoming batch must be rejected.
    #[error("incoming batch {index}: {reason}")]
    Incoming {
        /// Position in the block.
        index: usize,
        /// Why.
        reason: IncomingRejection,
    },
    /// The height does not follow the last executed block.
    #[error("bad height: expected {expected}, got {got}")]
    BadHeight {
        /// Last height + 1.
        expected: u64,
        /// The block's.
        got: u64,
    },
    /// The block time goes backwards.
    #[error("block time {got} is before the previous block's {previous}")]
    TimeRegression {
        /// Previous block time.
        previous: u64,
        /// The block's.
        got: u64,
    },
    /// Too many transactions or incoming receipts.
    #[error("block exceeds {0}")]
    TooLarge(&'static str),
    /// A cumulative counter overflowed (cannot happen with a bounded supply).
    #[error("counter overflow")]
    CounterOverflow,
    /// The context's migration list is invalid (see [`BlockContext::migrations`]).
    #[error("invalid migrations: {0}")]
    BadMigrations(&'static str),
}

/// What became of an included transaction.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Fully applied on this shard.
    Success,
    /// Applied here; its cross-shard part travels by receipt.
    CrossShardPending,
    /// Included and charged its fee, but its effect failed (contract failure); state unchanged.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Per-transaction result, for the API's transaction lifecycle.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TxOutcome {
    /// The transaction id.
    pub tx_id: Hash,
    /// Status.
    pub status: TxStatus,
    /// Fee burned.
    pub fee: Amount,
    /// Gas used by a contract call.
    pub gas_used: u64,
    /// Ids of receipts it emitted.
    pub receipts: Vec<String>,
    /// A contract call's result.
    pub result: Option<serde_json::Value>,
    /// For deployments: the contract and its primary shard.
    pub contract: Option<(ContractId, ShardId)>,
    /// For cross-shard calls: the call id.
    pub call_id: Option<CallId>,
}

impl TxOutcome {
    fn new(tx_id: Hash, fee: Amount) -> Self {
        TxOutcome {
            tx_id,
            status: TxStatus::Success,
            fee,
            gas_used: 0,
            receipts: Vec::new(),
            result: None,
            contract: None,
            call_id: None,
        }
    }
}

/// Something that happened in a block (for the API, the dashboard and metrics).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An account was created.
    AccountCreated {
        /// The account.
        account: AccountId,
    },
    /// Coin moved between two accounts of this shard.
    Transfer {
        /// From.
        from: AccountId,
        /// To.
        to: AccountId,
        /// Amount.
        amount: Amount,
    },
    /// A receipt was emitted.
    ReceiptEmitted {
        /// `receipt_{src}_{dst}_{seq}`.
        id: String,
        /// Amount carried.
        amount: Amount,
    },
    /// An incoming receipt was applied.
    ReceiptApplied {
        /// Its id.
        id: String,
        /// Whether it took effect (false: refunded / failed back to the source).
        ok: bool,
    },
    /// A contract was deployed here.
    ContractDeployed {
        /// The contract.
        contract: ContractId,
        /// Owner.
        owner: AccountId,
    },
    /// A contract call ran here.
    ContractCalled {
        /// The contract.
        contract: ContractId,
        /// Method.
        method: String,
        /// Whether it succeeded.
        success: bool,
        /// The cross-shard call id, if the call came by receipt.
        call_id: Option<CallId>,
    },
    /// A cross-shard call's result arrived back on the caller's shard.
    CallFinished {
        /// The call.
        call_id: CallId,
        /// Whether it completed.
        success: bool,
    },
    /// A PRSM proposal was submitted to this (its coordinating) shard.
    ProposalSubmitted {
        /// The transaction (the proposal's id).
        tx_id: Hash,
        /// The proposed action.
        action: String,
    },
    /// This shard decided a proposal it is a target of.
    ProposalVoted {
        /// The proposal.
        id: Hash,
        /// Whether this shard accepted it.
        accepted: bool,
    },
    /// A proposal this shard coordinates and decides (one target, no coordination asked for)
    /// reached its result (the beacon chain decides the others).
    ProposalDecided {
        /// The proposal.
        id: Hash,
        /// Whether consensus was achieved.
        achieved: bool,
    },
    /// A configuration change was requested (the beacon chain applies it).
    ConfigChangeRequested {
        /// The transaction.
        tx_id: Hash,
        /// The requested update.
        update: vision_types::ConfigUpdate,
    },
    /// An account moved away from this shard: its balance (and, unless it was still
    /// awaiting its own arrival here, its nonce and key) left in a receipt to its new shard.
    AccountMigratedOut {
        /// The account.
        account: AccountId,
        /// Its new shard.
        to: ShardId,
        /// The balance that left with it.
        amount: Amount,
    },
    /// An account started moving to this shard: its transactions wait until its state
    /// arrives ([`TxRejection::Migrating`]).
    AccountMigrating {
        /// The account.
        account: AccountId,
        /// The shard it moves from.
        from: ShardId,
    },
    /// A moving account's state arrived and was restored here.
    AccountMigratedIn {
        /// The account.
        account: AccountId,
        /// The shard that sent its state.
        from: ShardId,
        /// The balance it brought.
        amount: Amount,
    },
    /// An incoming receipt for an account that now lives on another shard was passed on
    /// there unchanged (under a new id).
    ReceiptForwarded {
        /// The incoming receipt's id.
        id: String,
        /// The forwarded receipt's id.
        forwarded_as: String,
        /// The account's shard.
        to: ShardId,
    },
}

/// The result of executing a block.
#[derive(Clone, Debug)]
pub struct BlockExecution {
    /// The state changes (commit them to the store to get the new root).
    pub writes: WriteSet,
    /// Receipts emitted by this block (they also join the pending batch).
    pub emitted: Vec<Receipt>,
    /// One outcome per transaction, in block order.
    pub outcomes: Vec<TxOutcome>,
    /// Events, in execution order.
    pub events: Vec<Event>,
    /// The batch this block closed, if any: the crosslink content.
    pub closed_batch: Option<ClosedBatch>,
    /// Number of incoming receipts applied.
    pub applied_receipts: usize,
}

impl BlockExecution {
    /// The receipts root for the block header ([`Hash::ZERO`] if no batch closed).
    pub fn receipts_root(&self) -> Hash {
        self.closed_batch
            .as_ref()
            .map_or(Hash::ZERO, |b| b.receipts_root)
    }

    /// The batched tx ids root for the block header ([`Hash::ZERO`] if no batch closed).
    pub fn batch_txs_root(&self) -> Hash {
        self.closed_batch
            .as_ref()
            .map_or(Hash::ZERO, |b| b.batch_txs_root)
    }

    /// The PRSM events root for the block header ([`Hash::ZERO`] if no batch closed).
    pub fn prsm_root(&self) -> Hash {
        self.closed_batch
            .as_ref()
            .map_or(Hash::ZERO, |b| b.prsm_root)
    }
}

/// Effects gathered while executing (rolled back with their overlay when discarded).
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) emitted: Vec<Receipt>,
    pub(crate) events: Vec<Event>,
    pub(crate) priority_entered: bool,
    pub(crate) flush: bool,
}

impl Effects {
    fn absorb(&mut self, other: Effects) {
        self.emitted.extend(other.emitted);
        self.events.extend(other.events);
        self.priority_entered |= other.priority_entered;
        self.flush |= other.flush;
    }
}

/// Executes a block: incoming receipt batches first, then transactions, then the batching
/// decision. Pure: the result depends only on the arguments.
pub fn execute_block(
    view: &dyn StateView,
    ctx: &BlockContext<'_>,
    txs: &[SignedTransaction],
    incoming: &[IncomingBatch],
) -> Result<BlockExecution, BlockError> {
    let ex = Executor { ctx };
    ex.check_header(view, txs.len(), incoming)?;
    if !signatures_valid(ctx, txs) {
        let index = txs
            .iter()
            .position(|t| t.verify_signature().is_err())
            .unwrap_or(0);
        return Err(BlockError::Tx {
            index,
            tx_id: txs[index].id(),
            reason: TxRejection::BadSignature,
        });
    }
    let mut ov = Overlay::new(view);
    let mut fx = Effects::default();
    ex.apply_migrations(&mut ov, &mut fx)?;
    let mut applied = 0;
    for (index, b) in incoming.iter().enumerate() {
        applied += ex
            .apply_incoming(&mut ov, &mut fx, b)
            .map_err(|e| e.at_incoming(index))?;
    }
    let mut outcomes = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        let (writes, tfx, outcome) = {
            let mut child = Overlay::new(&ov);
            let mut tfx = Effects::default();
            let outcome = ex
                .apply_tx(&mut child, &mut tfx, tx)
                .map_err(|e| e.at_tx(index, tx.id()))?;
            (child.into_raw_writes(), tfx, outcome)
        };
        ov.extend(writes);
        fx.absorb(tfx);
        outcomes.push(outcome);
    }
    ex.finish(ov, fx, outcomes, applied)
}

/// Whether every signature verifies: one batch verification of those the node has not
/// verified before.
fn signatures_valid(ctx: &BlockContext<'_>, txs: &[SignedTransaction]) -> bool {
    let unknown: Vec<&SignedTransaction> =
        txs.iter().filter(|t| !ctx.verified.verified(t)).collect();
    if unknown.is_empty() {
        return true;
    }
    let msgs: Vec<Vec<u8>> = unknown.iter().map(|t| t.tx.signing_bytes()).collect();
    batch_verify(
        unknown
            .iter()
            .zip(&msgs)
            .map(|(t, m)| (&t.public_key, m.as_slice(), &t.signature)),
    )
    .is_ok()
}

/// The result of [`build_block`]: what to propose.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The transactions to include, in order.
    pub txs: Vec<SignedTransaction>,
    /// The incoming batches to include.
    pub incoming: Vec<IncomingBatch>,
    /// Candidates left out, with why.
    pub dropped_txs: Vec<(SignedTransaction, TxRejection)>,
    /// Incoming batches left out, with why.
    pub dropped_incoming: Vec<(IncomingBatch, IncomingRejection)>,
    /// The execution of exactly `txs` and `incoming` (as [`execute_block`] would produce it).
    pub execution: BlockExecution,
}

/// How much one block may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    /// Most transactions (capped at [`limits::MAX_TXS_PER_BLOCK`]).
    pub max_txs: usize,
    /// Most encoded bytes of transactions and incoming batches together: what is left of
    /// the network's block size bound once the header and framing are counted. A block over
    /// the bound could not be decoded by its peers, so a proposer never builds one.
    pub max_body_bytes: usize,
}

/// For proposers: executes candidates one by one against an overlay, keeping those that apply
/// and dropping those that must be rejected, within `bounds` (incoming batches first; a
/// candidate that does not fit is left out, not dropped). The result is a block that
/// [`execute_block`] accepts with the same outcome.
pub fn build_block(
    view: &dyn StateView,
    ctx: &BlockContext<'_>,
    candidates: Vec<SignedTransaction>,
    incoming: Vec<IncomingBatch>,
    bounds: BlockLimits,
) -> Result<BuiltBlock, BlockError> {
    let ex = Executor { ctx };
    ex.check_header(view, 0, &[])?;
    let max_txs = bounds.max_txs.min(limits::MAX_TXS_PER_BLOCK);
    let mut body_bytes = 0usize;
    let mut ov = Overlay::new(view);
    let mut fx = Effects::default();
    ex.apply_migrations(&mut ov, &mut fx)?;
    let mut applied = 0;
    let mut kept_incoming = Vec::new();
    let mut dropped_incoming = Vec::new();
    let mut receipts_in = 0usize;
    for b in incoming {
        if receipts_in + b.receipts.len() > limits::MAX_INCOMING_RECEIPTS_PER_BLOCK
            || body_bytes + b.encode_size() > bounds.max_body_bytes
        {
            break;
        }
        let attempt = {
            let mut child = Overlay::new(&ov);
            let mut bfx = Effects::default();
            ex.apply_incoming(&mut child, &mut bfx, &b)
                .map(|n| (child.into_raw_writes(), bfx, n))
        };
        match attempt {
            Ok((writes, bfx, n)) => {
                ov.extend(writes);
                fx.absorb(bfx);
                applied += n;
                receipts_in += b.receipts.len();
                body_bytes += b.encode_size();
                kept_incoming.push(b);
            }
            Err(Failure::Incoming(r)) => dropped_incoming.push((b, r)),
            Err(other) => return Err(other.at_incoming(kept_incoming.len())),
        }
    }
    let mut txs = Vec::new();
    let mut outcomes = Vec::new();
    let mut dropped_txs = Vec::new();
    // One batch verification for the common case; one by one only if some signature is bad.
    let all_valid = signatures_valid(ctx, &candidates);
    for tx in candidates {
        if txs.len() >= max_txs {
            break;
        }
        let size = tx.encode_size();
        if body_bytes + size > bounds.max_body_bytes {
            // Left for a later block (a smaller candidate may still fit).
            continue;
        }
        if !all_valid && !ctx.verified.verified(&tx) && tx.verify_signature().is_err() {
            dropped_txs.push((tx, TxRejection::BadSignature));
            continue;
        }
        let attempt = {
            let mut child = Overlay::new(&ov);
            let mut tfx = Effects::default();
            ex.apply_tx(&mut child, &mut tfx, &tx)
                .map(|o| (child.into_raw_writes(), tfx, o))
        };
        match attempt {
            Ok((writes, tfx, outcome)) => {
                ov.extend(writes);
                fx.absorb(tfx);
                outcomes.push(outcome);
                body_bytes += size;
                txs.push(tx);
            }
            Err(Failure::Tx(r)) => dropped_txs.push((tx, r)),
            Err(other) => return Err(other.at_tx(txs.len(), tx.id())),
        }
    }
    let execution = ex.finish(ov, fx, outcomes, applied)?;
    Ok(BuiltBlock {
        txs,
        incoming: kept_incoming,
        dropped_txs,
        dropped_incoming,
        execution,
    })
}

/// An internal failure before it is attributed to a position in the block.
#[derive(Debug)]
pub(crate) enum Failure {
    Tx(TxRejection),
    Incoming(IncomingRejection),
    Counter,
}

impl Failure {
    fn at_tx(self, index: usize, tx_id: Hash) -> BlockError {
        match self {
            Failure::Tx(reason) => BlockError::Tx {
                index,
                tx_id,
                reason,
            },
            Failure::Incoming(reason) => BlockError::Incoming { index, reason },
            Failure::Counter => BlockError::CounterOverflow,
        }
    }

    fn at_incoming(self, index: usize) -> BlockError {
        match self {
            Failure::Incoming(reason) => BlockError::Incoming { index, reason },
            Failure::Tx(reason) => BlockError::Tx {
                index,
                tx_id: Hash::ZERO,
                reason,
            },
            Failure::Counter => BlockError::CounterOverflow,
        }
    }
}

impl From<TxRejection> for Failure {
    fn from(r: TxRejection) -> Self {
        Failure::Tx(r)
    }
}

impl From<IncomingRejection> for Failure {
    fn from(r: IncomingRejection) -> Self {
        Failure::Incoming(r)
    }
}

/// Why a credit failed.
enum CreditError {
    Unknown,
    Overflow,
}

impl CreditError {
    fn reason(&self, who: &AccountId) -> String {
        match self {
            CreditError::Unknown => format!("unknown account {who}"),
            CreditError::Overflow => format!("balance overflow crediting {who}"),
        }
    }
}

/// The outcome of running a contract call against an overlay.
enum CallRun {
    Ok {
        result: serde_json::Value,
        gas_used: u64,
    },
    Failed {
        reason: String,
        gas_used: u64,
    },
}

pub(crate) struct Executor<'c, 'a> {
    pub(crate) ctx: &'c BlockContext<'a>,
}

impl Executor<'_, '_> {
    fn check_header(
        &self,
        view: &dyn StateView,
        n_txs: usize,
        incoming: &[IncomingBatch],
    ) -> Result<(), BlockError> {
        let meta = view.chain_meta();
        let expected = meta.height.saturating_add(1);
        if self.ctx.height != expected {
            return Err(BlockError::BadHeight {
                expected,
                got: self.ctx.height,
            });
        }
        if self.ctx.timestamp_ms < meta.timestamp_ms {
            return Err(BlockError::TimeRegression {
                previous: meta.timestamp_ms,
                got: self.ctx.timestamp_ms,
            });
        }
        if n_txs > limits::MAX_TXS_PER_BLOCK {
            return Err(BlockError::TooLarge("MAX_TXS_PER_BLOCK"));
        }
        let receipts: usize = incoming.iter().map(|b| b.receipts.len()).sum();
        if receipts > limits::MAX_INCOMING_RECEIPTS_PER_BLOCK || incoming.len() > limits::MAX_SHARDS
        {
            return Err(BlockError::TooLarge("MAX_INCOMING_RECEIPTS_PER_BLOCK"));
        }
        self.check_migrations()
    }

    fn check_migrations(&self) -> Result<(), BlockError> {
        let m = self.ctx.migrations;
        if m.len() > MAX_MIGRATIONS_PER_BLOCK {
            return Err(BlockError::BadMigrations(
                "more than MAX_MIGRATIONS_PER_BLOCK entries",
            ));
        }
        if m.windows(2).any(|w| w[0].account >= w[1].account) {
            return Err(BlockError::BadMigrations(
                "not sorted by account, or an account twice",
            ));
        }
        for x in m {
            if x.from == x.to {
                return Err(BlockError::BadMigrations(
                    "an account moves to its own shard",
                ));
            }
            if self.ctx.layout.shard_of_account(&x.account) != x.to {
                return Err(BlockError::BadMigrations(
                    "a destination is not the account's shard in the block's layout",
                ));
            }
        }
        Ok(())
    }

    // ---- account migrations ----

    /// Applies [`BlockContext::migrations`] (checked by [`Self::check_migrations`]).
    ///
    /// - Moving out of this shard: the account's entry is removed and a `Migrate` receipt
    ///   carries its balance, nonce and key to the new shard (`public_key: None` if it did
    ///   not exist). If the account was itself still awaiting its arrival here, its
    ///   `Migrate` is still on the way to this shard and will be forwarded on arrival, so
    ///   only the mark is cleared (and coin credited or held for it meanwhile follows it in a
    ///   `Refund` to itself, which does not end the wait on the new shard and is never
    ///   bounced).
    /// - Moving in: the account is marked awaiting (a state entry) until its `Migrate`
    ///   arrives.
    ///
    /// Each migration emits at most one receipt, exempt from the pending batch's caps so a
    /// move is never delayed: with at most [`MAX_MIGRATIONS_PER_BLOCK`] of them they add at
    /// most `64 × MAX_MIGRATE_RECEIPT_BYTES` to a batch holding less than half its cap (it
    /// would have closed otherwise), which stays within the cap.
    fn apply_migrations(&self, ov: &mut Overlay<'_>, fx: &mut Effects) -> Result<(), BlockError> {
        let here = self.ctx.shard;
        for m in self.ctx.migrations {
            if m.to == here {
                let held = ov
                    .migrating_mark(&m.account)
                    .map_or(Amount::ZERO, |k| k.held);
                ov.put(
                    keys::migrating(&m.account),
                    enc(&MigratingMark { from: m.from, held }),
                );
                fx.events.push(Event::AccountMigrating {
                    account: m.account.clone(),
                    from: m.from,
                });
                continue;
            }
            if m.from != here {
                continue;
            }
            let origin = migration_id(here, self.ctx.height, &m.account);
            let existing = ov.account(&m.account);
            let mark = ov.migrating_mark(&m.account);
            let mut amount = existing.as_ref().map_or(Amount::ZERO, |a| a.balance);
            if existing.is_some() {
                ov.delete(keys::account(&m.account));
            }
            let kind = if let Some(mark) = mark {
                ov.delete(keys::migrating(&m.account));
                amount = amount
                    .checked_add(mark.held)
                    .map_err(|_| BlockError::CounterOverflow)?;
                // A returning kind: credited (or held again) on arrival, never bounced.
                (!amount.is_zero()).then(|| ReceiptKind::Refund {
                    reason: MOVED_ON_REASON.to_string(),
                })
            } else {
                let (public_key, nonce) =
                    existing.map_or((None, 0), |a| (Some(a.public_key), a.nonce));
                Some(ReceiptKind::Migrate { public_key, nonce })
            };
            let emitted = match kind {
                Some(kind) => self
                    .emit(
                        ov,
                        fx,
                        m.to,
                        kind,
                        amount,
                        PRIORITY_IMMEDIATE,
                        origin,
                        m.account.clone(),
                        m.account.clone(),
                        false,
                    )
                    .map(drop),
                None => Ok(()),
            };
            emitted.map_err(|e| match e {
                Failure::Counter => BlockError::CounterOverflow,
                _ => BlockError::BadMigrations("a migration receipt could not be emitted"),
            })?;
            fx.events.push(Event::AccountMigratedOut {
                account: m.account.clone(),
                to: m.to,
                amount,
            });
        }
        Ok(())
    }

    /// Where an incoming receipt must be passed on instead of applied: the shard of its
    /// recipient account if that is not this shard. Only receipts delivered *to an account*
    /// follow it (`Transfer`, `CreateAccount`, `CallResult`, `Refund`, `Migrate`);
    /// contract-targeted receipts (`ContractCall`, `DeployContract`), proposal requests and
    /// votes (addressed to a shard / to the proposal record on its coordinating shard, and
    /// carrying no coin) and receipts to contracts are applied where they arrive, as before.
    ///
    /// Forwarding terminates: a receipt is applied under a layout at least as new as the one
    /// of the block that emitted it (its crosslink is final at the receiving block's beacon
    /// height, and beacon heights only grow along a chain), so each further hop happens under
    /// a strictly newer layout (the account's shard changed since the previous hop's), and
    /// there are finitely many layouts up to the current beacon height.
    fn forward_target(&self, r: &Receipt) -> Option<ShardId> {
        let to_account = matches!(
            r.kind,
            ReceiptKind::Transfer
                | ReceiptKind::CreateAccount { .. }
                | ReceiptKind::CallResult { .. }
                | ReceiptKind::Refund { .. }
                | ReceiptKind::Migrate { .. }
        );
        if !to_account || ContractId::new(r.recipient.as_str()).is_ok() {
            return None;
        }
        let owner = self.ctx.layout.shard_of_account(&r.recipient);
        (owner != self.ctx.shard).then_some(owner)
    }

    fn finish(
        &self,
        mut ov: Overlay<'_>,
        mut fx: Effects,
        outcomes: Vec<TxOutcome>,
        applied: usize,
    ) -> Result<BlockExecution, BlockError> {
        self.expire_proposals(&mut ov, &mut fx);
        let closed_batch = batch::maybe_close(&mut ov, self.ctx, &fx);
        ov.put(
            keys::chain_meta(),
            enc(&ChainMeta {
                height: self.ctx.height,
                timestamp_ms: self.ctx.timestamp_ms,
                beacon_height: self.ctx.beacon_height,
            }),
        );
        let base = ov.base();
        let writes = ov.into_writes();
        debug_assert!(
            crate::supply::conserves(base, &writes),
            "block {} on shard {} does not conserve coin",
            self.ctx.height,
            self.ctx.shard
        );
        Ok(BlockExecution {
            writes,
            emitted: fx.emitted,
            outcomes,
            events: fx.events,
            closed_batch,
            applied_receipts: applied,
        })
    }

    // ---- helpers over the overlay ----

    fn add_counter(&self, ov: &mut Overlay<'_>, c: Counter, amount: Amount) -> Result<(), Failure> {
        if amount.is_zero() {
            return Ok(());
        }
        let v = ov
            .counter(c)
            .checked_add(amount.0)
            .ok_or(Failure::Counter)?;
        ov.put(keys::counter(c), enc(&v));
        Ok(())
    }

    fn put_account(&self, ov: &mut Overlay<'_>, id: &AccountId, a: &Account) {
        ov.put(keys::account(id), enc(a));
    }

    /// Credits `amount` to an account (or a contract, named by its id) of this shard;
    /// implicit accounts are created on first credit.
    fn credit(
        &self,
        ov: &mut Overlay<'_>,
        to: &AccountId,
        amount: Amount,
    ) -> Result<bool, CreditError> {
        if let Ok(cid) = ContractId::new(to.as_str()) {
            let mut meta = ov.contract(&cid).ok_or(CreditError::Unknown)?;
            meta.balance = meta
                .balance
                .checked_add(amount)
                .map_err(|_| CreditError::Overflow)?;
            ov.put(keys::contract(&cid), enc_json(&meta));
            return Ok(false);
        }
        match ov.account(to) {
            Some(mut a) => {
                a.balance = a
                    .balance
                    .checked_add(amount)
                    .map_err(|_| CreditError::Overflow)?;
                self.put_account(ov, to, &a);
                Ok(false)
            }
            None => {
                let key = to.implicit_key().ok_or(CreditError::Unknown)?;
                self.put_account(
                    ov,
                    to,
                    &Account {
                        balance: amount,
                        nonce: 0,
                        public_key: vision_types::PublicKey(key),
                    },
                );
                Ok(true)
            }
        }
    }

    /// Appends a receipt to the outbox of `dst` and the pending batch; `capped: false` skips
    /// the pending batch's count and byte caps (only for the bounded receipts of
    /// [`Self::apply_migrations`]).
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        dst: ShardId,
        kind: ReceiptKind,
        amount: Amount,
        priority: u8,
        origin_tx: Hash,
        sender: AccountId,
        recipient: AccountId,
        capped: bool,
    ) -> Result<Receipt, Failure> {
        debug_assert_ne!(dst, self.ctx.shard, "receipts go to other shards");
        let mut meta = ov.pending_meta();
        if capped && meta.count as usize >= limits::MAX_RECEIPTS_PER_BATCH {
            return Err(TxRejection::BatchFull.into());
        }
        let seq = ov.outbox_next(dst);
        let r = Receipt {
            src: self.ctx.shard,
            dst,
            seq,
            kind,
            amount,
            priority,
            origin_tx,
            sender,
            recipient,
        };
        let size = r.encode_size() as u64;
        let bytes = ov.pending_bytes();
        if capped && bytes > 0 && bytes + size > limits::MAX_BATCH_RECEIPT_BYTES as u64 {
            return Err(TxRejection::BatchFull.into());
        }
        ov.put(keys::pending_bytes(), enc(&(bytes + size)));
        ov.put(keys::outbox(dst), enc(&(seq + 1)));
        if meta.count == 0 {
            meta.first_receipt_ms = self.ctx.timestamp_ms;
        }
        ov.put(keys::pending_receipt(meta.count), enc(&r));
        meta.count += 1;
        ov.put(keys::pending_meta(), enc(&meta));
        self.add_counter(ov, Counter::Sent, amount)?;
        fx.priority_entered |= priority == PRIORITY_IMMEDIATE;
        fx.events.push(Event::ReceiptEmitted { id: r.id(), amount });
        fx.emitted.push(r.clone());
        Ok(r)
    }

    // ---- incoming receipts ----

    fn apply_incoming(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        b: &IncomingBatch,
    ) -> Result<usize, Failure> {
        let shard = self.ctx.shard;
        if b.destination.dst != shard {
            return Err(IncomingRejection::WrongDestination(b.destination.dst).into());
        }
        if b.source == shard {
            return Err(IncomingRejection::FromSelf.into());
        }
        let root = self
            .ctx
            .final_roots
            .final_receipts_root(b.source, b.crosslink_height)
            .ok_or(IncomingRejection::NotFinal {
                source_shard: b.source,
                height: b.crosslink_height,
            })?;
        b.verify(&root).map_err(IncomingRejection::BadBatch)?;
        let expected = ov.inbox_next(b.source);
        let got = b.destination.first_seq;
        if got < expected {
            return Err(IncomingRejection::Duplicate {
                src: b.source,
                expected,
                got,
            }
            .into());
        }
        if got > expected {
            return Err(IncomingRejection::Gap {
                src: b.source,
                expected,
                got,
            }
            .into());
        }
        ov.put(keys::inbox(b.source), enc(&b.destination.end_seq()));
        for r in &b.receipts {
            self.apply_receipt(ov, fx, r).map_err(|e| match e {
                Failure::Tx(TxRejection::BatchFull) => IncomingRejection::BatchFull.into(),
                e => e,
            })?;
        }
        Ok(b.receipts.len())
    }

    fn refund(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        r: &Receipt,
        reason: String,
    ) -> Result<(), Failure> {
        self.emit(
            ov,
            fx,
            r.src,
            ReceiptKind::Refund {
                reason: truncate(reason),
            },
            r.amount,
            r.priority,
            r.origin_tx,
            r.recipient.clone(),
            r.sender.clone(),
            true,
        )?;
        Ok(())
    }

    /// Credits a returning amount (refund / call result); if that is impossible, the amount
    /// is recorded as unclaimed (never bounced again, so receipts cannot ping-pong).
    fn credit_or_unclaimed(
        &self,
        ov: &mut Overlay<'_>,
        to: &AccountId,
        amount: Amount,
    ) -> Result<bool, Failure> {
        match self.credit(ov, to, amount) {
            Ok(_) => Ok(true),
            Err(_) => {
                if let Some(mut mark) = ov.migrating_mark(to) {
                    // Moving in and not here yet: keep it for when its state arrives.
                    if let Ok(held) = mark.held.checked_add(amount) {
                        mark.held = held;
                        ov.put(keys::migrating(to), enc(&mark));
                        return Ok(true);
                    }
                }
                self.add_counter(ov, Counter::Unclaimed, amount)?;
                Ok(false)
            }
        }
    }

    fn apply_receipt(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        r: &Receipt,
    ) -> Result<(), Failure> {
        self.add_counter(ov, Counter::Received, r.amount)?;
        if let Some(owner) = self.forward_target(r) {
            if let ReceiptKind::CallResult {
                call_id,
                success,
                output,
            } = &r.kind
            {
                // The call's record stays on the shard that made the call: settle it here.
                self.record_call_result(ov, fx, call_id, *success, output);
            }
            let f = self.emit(
                ov,
                fx,
                owner,
                r.kind.clone(),
                r.amount,
                r.priority,
                r.origin_tx,
                r.sender.clone(),
                r.recipient.clone(),
                true,
            )?;
            fx.events.push(Event::ReceiptForwarded {
                id: r.id(),
                forwarded_as: f.id(),
                to: owner,
            });
            fx.events.push(Event::ReceiptApplied {
                id: r.id(),
                ok: true,
            });
            return Ok(());
        }
        let ok = match &r.kind {
            ReceiptKind::Transfer => {
                let here = self.ctx.layout.shard_of_account(&r.recipient) == self.ctx.shard
                    || ContractId::new(r.recipient.as_str()).is_ok();
                let credited = if here {
                    self.credit(ov, &r.recipient, r.amount)
                } else {
                    Err(CreditError::Unknown)
                };
                match credited {
                    Ok(created) => {
                        if created {
                            fx.events.push(Event::AccountCreated {
                                account: r.recipient.clone(),
                            });
                        }
                        true
                    }
                    Err(e) => {
                        self.refund(ov, fx, r, e.reason(&r.recipient))?;
                        false
                    }
                }
            }
            ReceiptKind::CreateAccount { public_key } => {
                let reason = if self.ctx.layout.shard_of_account(&r.recipient) != self.ctx.shard {
                    Some(format!("{} does not live on this shard", r.recipient))
                } else if let Some(from) = ov.migrating_from(&r.recipient) {
                    // It may exist on its old shard: whether creating it is right is unknown.
                    Some(format!(
                        "account {} is moving to this shard from shard {from}",
                        r.recipient
                    ))
                } else if ov.account(&r.recipient).is_some() {
                    Some(format!("account {} already exists", r.recipient))
                } else if !name_matches_key(&r.recipient, public_key) {
                    Some(format!("account name {} is reserved", r.recipient))
                } else {
                    None
                };
                match reason {
                    Some(reason) => {
                        self.refund(ov, fx, r, reason)?;
                        false
                    }
                    None => {
                        self.put_account(
                            ov,
                            &r.recipient,
                            &Account {
                                balance: r.amount,
                                nonce: 0,
                                public_key: *public_key,
                            },
                        );
                        fx.events.push(Event::AccountCreated {
                            account: r.recipient.clone(),
                        });
                        true
                    }
                }
            }
            ReceiptKind::DeployContract {
                contract,
                name,
                code_hash,
                initial_state,
                gas_budget,
            } => {
                let reason = if self.ctx.layout.shard_of_contract(contract) != self.ctx.shard {
                    Some(format!("{contract} does not live on this shard"))
                } else if !self.ctx.config.smart_contracts_enabled {
                    Some("smart contracts are disabled".to_string())
                } else if ov.contract(contract).is_some() {
                    Some(format!("{contract} already exists"))
                } else {
                    self.deploy_here(
                        ov,
                        fx,
                        DeployInput {
                            id: contract.clone(),
                            name: name.clone(),
                            owner: r.sender.clone(),
                            primary_shard: self.ctx.shard,
                            code_hash: code_hash.clone(),
                            initial_state: initial_state.clone(),
                            gas_budget: *gas_budget,
                        },
                        r.origin_tx,
                        r.amount,
                    )
                    .err()
                };
                match reason {
                    Some(reason) => {
                        self.refund(ov, fx, r, reason)?;
                        false
                    }
                    None => true,
                }
            }
            ReceiptKind::ContractCall {
                call_id,
                contract,
                method,
                args,
                gas_limit,
            } => {
                let (success, output, gas_used) = match ov.contract(contract) {
                    None => (false, format!("unknown contract {contract}"), 0),
                    Some(_) if !self.ctx.config.smart_contracts_enabled => {
                        (false, "smart contracts are disabled".to_string(), 0)
                    }
                    Some(_) => {
                        let input = CallInput {
                            caller: r.sender.clone(),
                            method: method.clone(),
                            args: args.clone(),
                            attached: r.amount,
                            gas_limit: (*gas_limit).min(MAX_GAS_LIMIT),
                        };
                        match self.run_call(ov, fx, contract, input, r.origin_tx)? {
                            CallRun::Ok { result, gas_used } => {
                                (true, result.to_string(), gas_used)
                            }
                            CallRun::Failed { reason, gas_used } => (false, reason, gas_used),
                        }
                    }
                };
                let _ = gas_used;
                let output = truncate(output);
                fx.events.push(Event::ContractCalled {
                    contract: contract.clone(),
                    method: method.clone(),
                    success,
                    call_id: Some(*call_id),
                });
                if ov.contract(contract).is_some() {
                    let record = CallRecord {
                        id: *call_id,
                        from_shard: r.src,
                        to_shard: self.ctx.shard,
                        contract_id: contract.clone(),
                        method: method.clone(),
                        args: args.clone(),
                        caller: r.sender.clone(),
                        amount: r.amount,
                        status: if success {
                            CallStatus::Completed
                        } else {
                            CallStatus::Failed
                        },
                        output: Some(output.clone()),
                        origin_tx: r.origin_tx,
                    };
                    // Bounded history: the n-th call evicts the (n - MAX_CALL_HISTORY)-th.
                    let n = ov.contract_call_count(contract);
                    ov.put(keys::contract_call(contract, n), enc_json(&record));
                    if let Some(old) = n.checked_sub(MAX_CALL_HISTORY as u64) {
                        ov.delete(keys::contract_call(contract, old));
                    }
                    ov.put(keys::contract_call_count(contract), enc(&(n + 1)));
                }
                self.emit(
                    ov,
                    fx,
                    r.src,
                    ReceiptKind::CallResult {
                        call_id: *call_id,
                        success,
                        output,
                    },
                    if success { Amount::ZERO } else { r.amount },
                    r.priority,
                    r.origin_tx,
                    r.recipient.clone(),
                    r.sender.clone(),
                    true,
                )?;
                success
            }
            ReceiptKind::CallResult {
                call_id,
                success,
                output,
            } => {
                self.record_call_result(ov, fx, call_id, *success, output);
                self.credit_or_unclaimed(ov, &r.recipient, r.amount)?
            }
            ReceiptKind::Refund { .. } => self.credit_or_unclaimed(ov, &r.recipient, r.amount)?,
            ReceiptKind::ProposalRequest { action, data } => {
                self.apply_proposal_request(ov, fx, r, action, data)?
            }
            ReceiptKind::ProposalVote {
                accepted,
                reason,
                height,
            } => self.apply_proposal_vote(ov, fx, r, (*accepted, reason, *height)),
            ReceiptKind::Migrate { public_key, nonce } => {
                self.apply_migrate(ov, fx, r, *public_key, *nonce)?
            }
        };
        fx.events.push(Event::ReceiptApplied { id: r.id(), ok });
        Ok(())
    }

    /// Settles the caller-side record of a cross-shard call, if it is on this shard (it is
    /// not when the result was forwarded after the caller moved).
    fn record_call_result(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        call_id: &CallId,
        success: bool,
        output: &str,
    ) {
        let Some(mut rec) = ov.call_record(call_id) else {
            return;
        };
        rec.status = if success {
            CallStatus::Completed
        } else {
            CallStatus::Failed
        };
        rec.output = Some(output.to_string());
        ov.put(keys::call(call_id), enc_json(&rec));
        fx.events.push(Event::CallFinished {
            call_id: *call_id,
            success,
        });
    }

    /// Restores a moving account on its new shard (this one): clears its awaiting mark and
    /// merges what arrived with whatever was credited meanwhile — balance added, nonce the
    /// larger, key the migrated one. Never loses coin: what cannot be credited (no key and
    /// no account to credit) is counted unclaimed.
    fn apply_migrate(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        r: &Receipt,
        public_key: Option<vision_types::PublicKey>,
        nonce: u64,
    ) -> Result<bool, Failure> {
        let who = &r.recipient;
        let held = ov.migrating_mark(who).map_or(Amount::ZERO, |m| m.held);
        ov.delete(keys::migrating(who));
        let ok = match (ov.account(who), public_key) {
            (existing, Some(public_key)) => {
                let (balance, nonce) = match existing {
                    Some(a) => (a.balance.checked_add(r.amount), a.nonce.max(nonce)),
                    None => (Ok(r.amount), nonce),
                };
                match balance {
                    Ok(balance) => {
                        self.put_account(
                            ov,
                            who,
                            &Account {
                                balance,
                                nonce,
                                public_key,
                            },
                        );
                        true
                    }
                    Err(_) => {
                        self.add_counter(ov, Counter::Unclaimed, r.amount)?;
                        false
                    }
                }
            }
            (_, None) if r.amount.is_zero() => true,
            (_, None) => self.credit_or_unclaimed(ov, who, r.amount)?,
        };
        if !held.is_zero() {
            // Unclaimed if there is nothing to credit it to (the account exists nowhere), as
            // it would have been without the move.
            self.credit_or_unclaimed(ov, who, held)?;
        }
        fx.events.push(Event::AccountMigratedIn {
            account: who.clone(),
            from: r.src,
            amount: r.amount,
        });
        Ok(ok)
    }

    // ---- contracts ----

    /// Deploys a contract on this shard. `Err` is the reason it was refused (nothing written).
    fn deploy_here(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        input: DeployInput,
        deploy_tx: Hash,
        balance: Amount,
    ) -> Result<(), String> {
        let state = self.ctx.engine.deploy(&input)?;
        check_contract_state(&state)?;
        let meta = ContractMeta {
            id: input.id.clone(),
            name: input.name,
            owner: input.owner.clone(),
            primary_shard: self.ctx.shard,
            code_hash: input.code_hash,
            gas_budget: input.gas_budget,
            balance,
            deploy_tx,
            created_height: self.ctx.height,
        };
        ov.put(keys::contract(&input.id), enc_json(&meta));
        for (k, v) in &state {
            ov.put(keys::contract_entry(&input.id, k), v.as_bytes().to_vec());
        }
        fx.events.push(Event::ContractDeployed {
            contract: input.id,
            owner: input.owner,
        });
        Ok(())
    }

    /// Runs a call on a contract of this shard. The attached coin must already be in flight
    /// or debited by the caller; on success it is credited to the contract, payments are made
    /// and the new state is written; on failure nothing is written.
    fn run_call(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        contract: &ContractId,
        mut input: CallInput,
        origin_tx: Hash,
    ) -> Result<CallRun, Failure> {
        let meta = ov
            .contract(contract)
            .expect("caller checked the contract exists");
        input.gas_limit = input.gas_limit.min(meta.gas_budget);
        let old_state = ov.contract_state(contract);
        let info = ContractInfo {
            id: contract.clone(),
            name: meta.name.clone(),
            owner: meta.owner.clone(),
            primary_shard: meta.primary_shard,
            code_hash: meta.code_hash.clone(),
            gas_budget: meta.gas_budget,
            balance: meta.balance,
            state: old_state.clone(),
        };
        let (state, result, gas_used, payments) = match self.ctx.engine.call(&info, &input) {
            CallOutcome::Failure { reason, gas_used } => {
                return Ok(CallRun::Failed { reason, gas_used });
            }
            CallOutcome::Success {
                state,
                result,
                gas_used,
                payments,
            } => (state, result, gas_used, payments),
        };
        if let Err(reason) = check_contract_state(&state) {
            return Ok(CallRun::Failed { reason, gas_used });
        }
        // Apply in a child overlay so a failing payment discards everything.
        let attempt: Result<(WriteSet, Effects), String> = {
            let mut child = Overlay::new(&*ov);
            let mut cfx = Effects::default();
            let r = (|| {
                let mut balance = meta
                    .balance
                    .checked_add(input.attached)
                    .map_err(|_| "contract balance overflow".to_string())?;
                for p in &payments {
                    balance = balance
                        .checked_sub(p.amount)
                        .map_err(|_| "contract balance insufficient for payment".to_string())?;
                }
                let mut new_meta = meta.clone();
                new_meta.balance = balance;
                child.put(keys::contract(contract), enc_json(&new_meta));
                for k in old_state.keys() {
                    if !state.contains_key(k) {
                        child.delete(keys::contract_entry(contract, k));
                    }
                }
                for (k, v) in &state {
                    if old_state.get(k) != Some(v) {
                        child.put(keys::contract_entry(contract, k), v.as_bytes().to_vec());
                    }
                }
                let sender =
                    AccountId::new(contract.as_str()).expect("contract ids are account names");
                for p in &payments {
                    if p.amount.is_zero() {
                        continue;
                    }
                    let shard = if ContractId::new(p.to.as_str()).is_ok() {
                        self.ctx
                            .layout
                            .shard_of_contract(&ContractId::new(p.to.as_str()).expect("checked"))
                    } else {
                        self.ctx.layout.shard_of_account(&p.to)
                    };
                    if shard == self.ctx.shard {
                        self.credit(&mut child, &p.to, p.amount)
                            .map_err(|e| e.reason(&p.to))?;
                    } else {
                        self.emit(
                            &mut child,
                            &mut cfx,
                            shard,
                            ReceiptKind::Transfer,
                            p.amount,
                            0,
                            origin_tx,
                            sender.clone(),
                            p.to.clone(),
                            true,
                        )
                        .map_err(|_| "crosslink batch full".to_string())?;
                    }
                }
                Ok(())
            })();
            r.map(|()| (child.into_raw_writes(), cfx))
        };
        match attempt {
            Ok((writes, cfx)) => {
                ov.extend(writes);
                fx.absorb(cfx);
                Ok(CallRun::Ok { result, gas_used })
            }
            Err(reason) => Ok(CallRun::Failed { reason, gas_used }),
        }
    }

    // ---- transactions ----

    fn apply_tx(
        &self,
        ov: &mut Overlay<'_>,
        fx: &mut Effects,
        stx: &SignedTransaction,
    ) -> Result<TxOutcome, Failure> {
        let ctx = self.ctx;
        let tx = &stx.tx;
        let tx_id = stx.id();
        if tx.chain_id != ctx.chain_id {
            return Err(TxRejection::WrongChain {
                expected: ctx.chain_id.clone(),
                got: tx.chain_id.clone(),
            }
            .into());
        }
        let home = ctx.layout.shard_of_account(&tx.signer);
        if home != ctx.shard {
            return Err(TxRejection::WrongShard {
                this: ctx.shard,
                belongs: home,
            }
            .into());
        }
        if let Some(from) = ov.migrating_from(&tx.signer) {
            return Err(TxRejection::Migrating {
                account: tx.signer.clone(),
                from,
            }
            .into());
        }
        let mut signer = ov
            .account(&tx.signer)
            .ok_or_else(|| TxRejection::UnknownAccount(tx.signer.clone()))?;
        if signer.public_key != stx.public_key {
            return Err(TxRejection::KeyMismatch.into());
        }
        if tx.nonce < signer.nonce {
            return Err(TxRejection::NonceReplayed {
                expected: signer.nonce,
                got: tx.nonce,
            }
            .into());
        }
        if tx.nonce > signer.nonce {
            return Err(TxRejection::NonceGap {
                expected: signer.nonce,
                got: tx.nonce,
            }
            .into());
        }
        tx.action
            .check_limits()
            .map_err(|e| TxRejection::InvalidAction(e.to_string()))?;
        let needed = tx
            .fee
            .checked_add(tx.action.value())
            .map_err(|_| TxRejection::Overflow)?;
        if needed > signer.balance {
            return Err(TxRejection::InsufficientBalance {
                needed,
                available: signer.balance,
            }
            .into());
        }
        // Fee and nonce: charged whatever the action's fate.
        signer.balance = signer.balance.checked_sub(tx.fee).expect("checked above");
        signer.nonce += 1;
        self.put_account(ov, &tx.signer, &signer);
        self.add_counter(ov, Counter::Burned, tx.fee)?;
        self.add_counter(ov, Counter::TxCount, Amount(1))?;
        let mut out = TxOutcome::new(tx_id, tx.fee);
        let first_receipt = fx.emitted.len();
        match &tx.action {
            Action::CreateAccount {
                account,
                public_key,
                amount,
            } => {
                if !name_matches_key(account, public_key) {
                    return Err(TxRejection::BadAccountName(account.clone()).into());
                }
                let dst = ctx.layout.shard_of_account(account);
                self.debit(ov, &tx.signer, *amount)?;
                if dst == ctx.shard {
                    if let Some(from) = ov.migrating_from(account) {
                        return Err(TxRejection::Migrating {
                            account: account.clone(),
                            from,
                        }
                        .into());
                    }
                    if ov.account(account).is_some() {
                        return Err(TxRejection::AccountExists(account.clone()).into());
                    }
                    self.put_account(
                        ov,
                        account,
                        &Account {
                            balance: *amount,
                            nonce: 0,
                            public_key: *public_key,
                        },
                    );
                    fx.events.push(Event::AccountCreated {
                        account: account.clone(),
                    });
                } else {
                    self.emit(
                        ov,
                        fx,
                        dst,
                        ReceiptKind::CreateAccount {
                            public_key: *public_key,
                        },
                        *amount,
                        0,
                        tx_id,
                        tx.signer.clone(),
                        account.clone(),
                        true,
                    )?;
                    out.status = TxStatus::CrossShardPending;
                }
            }
            Action::Transfer {
                to,
                amount,
                priority,
            } => {
                if ContractId::new(to.as_str()).is_ok() {
                    return Err(TxRejection::BadAccountName(to.clone()).into());
                }
                let dst = ctx.layout.shard_of_account(to);
                self.debit(ov, &tx.signer, *amount)?;
                if dst == ctx.shard {
                    match self.credit(ov, to, *amount) {
                        Ok(created) => {
                            if created {
                                fx.events.push(Event::AccountCreated {
                                    account: to.clone(),
                                });
                            }
                        }
                        Err(CreditError::Unknown) => {
                            return Err(TxRejection::UnknownAccount(to.clone()).into());
                        }
                        Err(CreditError::Overflow) => return Err(TxRejection::Overflow.into()),
                    }
                    fx.events.push(Event::Transfer {
                        from: tx.signer.clone(),
                        to: to.clone(),
                        amount: *amount,
                    });
                } else {
                    self.emit(
                        ov,
                        fx,
                        dst,
                        ReceiptKind::Transfer,
                        *amount,
                        *priority,
                        tx_id,
                        tx.signer.clone(),
                        to.clone(),
                        true,
                    )?;
                    out.status = TxStatus::CrossShardPending;
                }
            }
            Action::DeployContract {
                name,
                code_hash,
                initial_state,
                gas_budget,
            } => {
                if !ctx.config.smart_contracts_enabled {
                    return Err(TxRejection::ContractsDisabled.into());
                }
                let id = ContractId::from_deploy(&tx_id);
                let dst = ctx.layout.shard_of_contract(&id);
                out.contract = Some((id.clone(), dst));
                if dst == ctx.shard {
                    let input = DeployInput {
                        id,
                        name: name.clone(),
                        owner: tx.signer.clone(),
                        primary_shard: dst,
                        code_hash: code_hash.clone(),
                        initial_state: initial_state.clone(),
                        gas_budget: *gas_budget,
                    };
                    // A refused deployment is included and charged, like a failed call.
                    let attempt = {
                        let mut child = Overlay::new(&*ov);
                        let mut dfx = Effects::default();
                        self.deploy_here(&mut child, &mut dfx, input, tx_id, Amount::ZERO)
                            .map(|()| (child.into_raw_writes(), dfx))
                    };
                    match attempt {
                        Ok((writes, dfx)) => {
                            ov.extend(writes);
                            fx.absorb(dfx);
                        }
                        Err(reason) => out.status = TxStatus::Failed { reason },
                    }
                } else {
                    self.emit(
                        ov,
                        fx,
                        dst,
                        ReceiptKind::DeployContract {
                            contract: id,
                            name: name.clone(),
                            code_hash: code_hash.clone(),
                            initial_state: initial_state.clone(),
                            gas_budget: *gas_budget,
                        },
                        Amount::ZERO,
                        0,
                        tx_id,
                        tx.signer.clone(),
                        tx.signer.clone(),
                        true,
                    )?;
                    out.status = TxStatus::CrossShardPending;
                }
            }
            Action::CallContract {
                contract,
                method,
                args,
                gas_limit,
                amount,
            } => {
                if !ctx.config.smart_contracts_enabled {
                    return Err(TxRejection::ContractsDisabled.into());
                }
                if *gas_limit > MAX_GAS_LIMIT {
                    return Err(TxRejection::InvalidAction(format!(
                        "gas_limit {gas_limit} exceeds {MAX_GAS_LIMIT}"
                    ))
                    .into());
                }
                let dst = ctx.layout.shard_of_contract(contract);
                if dst == ctx.shard {
                    if ov.contract(contract).is_none() {
                        return Err(TxRejection::UnknownContract(contract.clone()).into());
                    }
                    let input = CallInput {
                        caller: tx.signer.clone(),
                        method: method.clone(),
                        args: args.clone(),
                        attached: *amount,
                        gas_limit: *gas_limit,
                    };
                    let attempt = {
                        let mut child = Overlay::new(&*ov);
                        let mut cfx = Effects::default();
                        self.debit(&mut child, &tx.signer, *amount)?;
                        let run = self.run_call(&mut child, &mut cfx, contract, input, tx_id)?;
                        (run, child.into_raw_writes(), cfx)
                    };
                    let success = match attempt {
                        (CallRun::Ok { result, gas_used }, writes, cfx) => {
                            ov.extend(writes);
                            fx.absorb(cfx);
                            out.gas_used = gas_used;
                            out.result = Some(result);
                            true
                        }
                        (CallRun::Failed { reason, gas_used }, _, _) => {
                            out.gas_used = gas_used;
                            out.status = TxStatus::Failed { reason };
                            false
                        }
                    };
                    fx.events.push(Event::ContractCalled {
                        contract: contract.clone(),
                        method: method.clone(),
                        success,
                        call_id: None,
                    });
                } else {
                    let call_id = CallId::from_tx(&tx_id);
                    self.debit(ov, &tx.signer, *amount)?;
                    self.emit(
                        ov,
                        fx,
                        dst,
                        ReceiptKind::ContractCall {
                            call_id,
                            contract: contract.clone(),
                            method: method.clone(),
                            args: args.clone(),
                            gas_limit: *gas_limit,
                        },
                        *amount,
                        0,
                        tx_id,
                        tx.signer.clone(),
                        tx.signer.clone(),
                        true,
                    )?;
                    let record = CallRecord {
                        id: call_id,
                        from_shard: ctx.shard,
                        to_shard: dst,
                        contract_id: contract.clone(),
                        method: method.clone(),
                        args: args.clone(),
                        caller: tx.signer.clone(),
                        amount: *amount,
                        status: CallStatus::Pending,
                        output: None,
                        origin_tx: tx_id,
                    };
                    ov.put(keys::call(&call_id), enc_json(&record));
                    out.call_id = Some(call_id);
                    out.status = TxStatus::CrossShardPending;
                }
            }
            Action::Proposal { .. } => {
                let submitted = proposals::Submitted {
                    tx_id,
                    proposer: &tx.signer,
                    action: &tx.action,
                };
                if self.submit_proposal(ov, fx, submitted)? {
                    out.status = TxStatus::CrossShardPending;
                }
            }
            Action::Flush { shard } => {
                if *shard != ctx.shard {
                    return Err(TxRejection::WrongShard {
                        this: ctx.shard,
                        belongs: *shard,
                    }
                    .into());
                }
                fx.flush = true;
            }
            Action::ConfigChange { update } => {
                ctx.config
                    .updated(update)
                    .map_err(|e| TxRejection::InvalidAction(e.to_string()))?;
                fx.events.push(Event::ConfigChangeRequested {
                    tx_id,
                    update: update.clone(),
                });
            }
        }
        out.receipts = fx.emitted[first_receipt..]
            .iter()
            .map(Receipt::id)
            .collect();
        Ok(out)
    }

    fn debit(&self, ov: &mut Overlay<'_>, who: &AccountId, amount: Amount) -> Result<(), Failure> {
        if amount.is_zero() {
            return Ok(());
        }
        let mut a = ov
            .account(who)
            .ok_or_else(|| TxRejection::UnknownAccount(who.clone()))?;
        a.balance =
            a.balance
                .checked_sub(amount)
                .map_err(|_| TxRejection::InsufficientBalance {
                    needed: amount,
                    available: a.balance,
                })?;
        self.put_account(ov, who, &a);
        Ok(())
    }
}

/// The `origin_tx` of the receipt a migration emits: not a transaction, but a deterministic
/// id naming the move (`sha256("vision-migrate" ‖ shard ‖ height ‖ account)`).
fn migration_id(shard: ShardId, height: u64, account: &AccountId) -> Hash {
    Hash::sha256_parts(&[
        b"vision-migrate",
        &shard.0.to_be_bytes(),
        &height.to_be_bytes(),
        account.as_str().as_bytes(),
    ])
}

/// Whether `name` may be bound to `key`: not a reserved contract-like name, and an implicit
/// (64-hex) name must spell its own key.
fn name_matches_key(name: &AccountId, key: &vision_types::PublicKey) -> bool {
    if name.as_str().starts_with(ContractId::PREFIX) {
        return false;
    }
    match name.implicit_key() {
        Some(k) => k == key.0,
        None => true,
    }
}

fn check_contract_state(state: &BTreeMap<String, String>) -> Result<(), String> {
    if state.len() > limits::MAX_CONTRACT_STATE_ENTRIES {
        return Err(format!(
            "contract state exceeds {} entries",
            limits::MAX_CONTRACT_STATE_ENTRIES
        ));
    }
    if state
        .iter()
        .any(|(k, v)| k.len() > limits::MAX_KEY_BYTES || v.len() > limits::MAX_VALUE_BYTES)
    {
        return Err("contract state key or value too long".to_string());
    }
    Ok(())
}

/// Cuts a reason / output to what a receipt may carry.
fn truncate(mut s: String) -> String {
    if s.len() > limits::MAX_RESULT_BYTES {
        let mut end = limits::MAX_RESULT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
