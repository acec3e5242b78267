//! The shard state machine of Vision Node.
//!
//! Given a shard's state and an ordered block of incoming receipt batches and transactions,
//! [`execute_block`] produces the state changes ([`WriteSet`]), the outgoing receipts, the
//! batching decision (a [`ClosedBatch`]: the crosslink content) and per-transaction outcomes.
//! A [`ShardStore`] turns write sets into an authenticated state root (QMDB, see [`store`]).
//!
//! # Rules
//!
//! - **Pure.** No clocks (block time comes in [`BlockContext`]), no threads, no I/O. Every
//!   replica executing the same block on the same state gets the same writes, receipts and
//!   batch, and (committing the same write sets) the same root.
//! - **Rejections invalidate the block.** A transaction with a bad signature, wrong chain id,
//!   replayed or gapped nonce, unknown signer, key mismatch, wrong shard, insufficient balance
//!   or amount overflow makes the whole block invalid ([`BlockError::Tx`] names it and why),
//!   and nothing is written. Proposers use [`build_block`], which drops such candidates.
//! - **Failures are included.** A contract call that fails (method error, out of gas, bad
//!   payment) is included: the fee is burned, the nonce advances, the contract state is
//!   unchanged, and the outcome is [`TxStatus::Failed`].
//! - **Fees** are a flat per-transaction price, burned (the `Burned` counter).
//! - **Cross-shard.** A transfer, account creation, deployment or call whose target lives on
//!   another shard (per [`ShardOf`]) debits the signer and emits a receipt into the outbox
//!   for the destination with the next `seq` of the (src, dst) stream (contiguous, from 0).
//!   The receipt joins the pending batch; see [`batch`] for when it closes.
//! - **Incoming receipts** are applied only inside an `IncomingBatch` that proves against a
//!   receipts root that [`FinalRoots`] says is final, and only if its first seq is exactly the
//!   next expected seq from its source (else duplicate or gap: the block is invalid). A receipt
//!   that cannot take effect (unknown or foreign recipient, existing account, failing call)
//!   sends a `Refund` / failed `CallResult` back; refunds and results never bounce again (if
//!   impossible to credit they are counted as `Unclaimed`).
//! - **Cross-shard calls** `xscall_…`: `Pending` on the caller's shard when emitted,
//!   `Executing` once its batch closes into a crosslink, `Completed` / `Failed` when the result
//!   receipt returns. The contract's shard records the call in the contract's history.
//! - **Deployments** go to the contract's primary shard (`ShardOf::shard_of_contract` of the
//!   id derived from the deploying transaction); if that is another shard, a `DeployContract`
//!   receipt carries it there.
//! - **Supply.** Per shard `Σ balances + burned + unclaimed + sent − received = genesis`, so
//!   globally total supply = Σ balances + Σ in-flight + burned (see [`supply`]); every block's
//!   write set is checked to conserve coin in debug builds.
//!
//! The state key layout is in [`keys`].
//!
//! # Using it (the consensus layer)
//!
//! ```text
//! genesis(shard, &layout, &accounts, t0)            -> WriteSet      // commit it first
//! build_block(&store, &ctx, candidates, incoming, max) -> BuiltBlock // proposer
//! execute_block(&store, &ctx, &txs, &incoming)      -> BlockExecution // verifier
//! store.speculative_root(&exec.writes).await        -> header.state_root
//! exec.receipts_root() / exec.batch_txs_root()      -> header.receipts_root / batch_txs_root
//! exec.closed_batch                                 -> crosslink content (+ header, certificate)
//! store.commit(&exec.writes).await                  // once the block is finalized
//! closed_batch.incoming_for(dst)                    -> IncomingBatch to include on dst
//! batch_status(&store, &config, last_block_ms)      -> GET /shard/batch/status
//! store.prove(key).await / verify_state_proof(..)   -> account / contract-key proofs
//! ```
//!
//! `ctx` is a [`BlockContext`]: shard, height, block time, chain id, the `ShardConfig`
//! (vision_types) in force, a [`ShardOf`] layout, the [`FinalRoots`] the beacon finalized, and
//! the contract engine ([`TemplateEngine`]). Execution reads the store's committed state; to
//! execute a chain of not-yet-committed blocks, stack an [`Overlay`] per block.

pub mod batch;
pub mod contracts;
pub mod engine;
pub mod exec;
pub mod genesis;
pub mod keys;
pub mod model;
pub mod store;
pub mod supply;
pub mod view;

pub use batch::{BatchStatus, CloseReason, ClosedBatch, batch_status};
pub use contracts::TemplateEngine;
pub use engine::{
    CallInput, CallOutcome, ContractEngine, ContractInfo, DeployInput, NativePayment,
};
pub use exec::{
    BlockContext, BlockError, BlockExecution, BlockLimits, BuiltBlock, Event, FinalRoots, FnLayout,
    IncomingRejection, MAX_MIGRATE_RECEIPT_BYTES, MAX_MIGRATIONS_PER_BLOCK, MAX_PENDING_PROPOSALS,
    MOVED_ON_REASON, Migration, NoneVerified, ProposalTargets, ShardOf, TxOutcome, TxRejection,
    TxStatus, VALIDATE_TRANSACTION, VerifiedSignatures, build_block, execute_block,
};
pub use genesis::{GenesisError, genesis};
pub use model::{
    Account, CallRecord, CallStatus, ContractMeta, MigratingMark, ProposalRecord, ProposalStatus,
    ShardVote,
};
pub use store::{QmdbStore, ShardStore, StateProof, StoreError, verify_state_proof};
pub use supply::Supply;
pub use view::{MemState, Overlay, StateReadExt, StateView, WriteSet};

#[cfg(test)]
mod tests;
