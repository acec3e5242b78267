//! Hard limits on every variable-length field. Decoding enforces them, so a malicious
//! peer can never make a node allocate past them.

/// Longest account name, in bytes.
pub const MAX_ACCOUNT_ID_BYTES: usize = 64;
/// Longest chain id, in bytes.
pub const MAX_CHAIN_ID_BYTES: usize = 32;
/// Longest contract name, in bytes.
pub const MAX_CONTRACT_NAME_BYTES: usize = 64;
/// Longest contract state key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// Longest contract state value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Most entries in a contract's initial state.
pub const MAX_INITIAL_STATE_ENTRIES: usize = 64;
/// Most entries in a contract's state.
pub const MAX_CONTRACT_STATE_ENTRIES: usize = 4096;
/// Longest contract method name, in bytes.
pub const MAX_METHOD_BYTES: usize = 64;
/// Most arguments of a contract call.
pub const MAX_ARGS: usize = 8;
/// Longest contract call argument, in bytes.
pub const MAX_ARG_BYTES: usize = 256;
/// Longest call result or failure reason carried by a receipt, in bytes.
pub const MAX_RESULT_BYTES: usize = 1024;
/// Longest proposal action name, in bytes.
pub const MAX_PROPOSAL_ACTION_BYTES: usize = 64;
/// Longest proposal payload, in bytes.
pub const MAX_PROPOSAL_DATA_BYTES: usize = 4096;
/// Most transactions in one block.
pub const MAX_TXS_PER_BLOCK: usize = 10_000;
/// Most incoming receipts in one block.
pub const MAX_INCOMING_RECEIPTS_PER_BLOCK: usize = 10_000;
/// Most receipts closed into one crosslink batch.
pub const MAX_RECEIPTS_PER_BATCH: usize = 10_000;
/// Most encoded bytes of receipts in one pending batch: a receipt that would pass it waits for
/// the next batch, and a batch holding half of it closes at the end of its block. So every
/// destination's share of a batch fits well inside one block (the largest receipt, a
/// deployment with a full initial state, is under 80 KiB).
pub const MAX_BATCH_RECEIPT_BYTES: usize = 512 * 1024;
/// Most transaction ids listed in one crosslink.
pub const MAX_BATCHED_TXS: usize = 10_000;
/// Most destination seq ranges in one crosslink (one per destination shard).
pub const MAX_SHARDS: usize = 64;
/// Most siblings in a Merkle proof (a tree of up to 2^32 leaves).
pub const MAX_PROOF_DEPTH: usize = 32;
/// Longest opaque finalization certificate carried by a crosslink, in bytes.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// Most descendant headers proving a crosslink finalized through a descendant.
pub const MAX_CROSSLINK_ANCESTRY: usize = 64;
/// Most crosslinks in one beacon block.
pub const MAX_CROSSLINKS_PER_BEACON_BLOCK: usize = 256;
/// Most PRSM events one crosslink carries. A batch closes at the end of the first block that
/// leaves it holding [`PRSM_EVENTS_CLOSE_AT`]; one block adds at most one vote per incoming
/// receipt ([`MAX_INCOMING_RECEIPTS_PER_BLOCK`]) plus two events per proposal it includes
/// (a shard coordinates at most 256 undecided proposals), so a batch stays below this.
pub const MAX_PRSM_EVENTS_PER_CROSSLINK: usize = 12_000;
/// A pending batch holding this many PRSM events closes at the end of the block.
pub const PRSM_EVENTS_CLOSE_AT: usize = 1_024;
