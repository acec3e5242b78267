//! The PRSM cross-shard decision rule, shared by the sharding layer (planning, API) and the
//! state machine (which applies it to finalized shard votes).

/// Cross-shard consensus threshold in integer percent: a cross-shard decision passes when
/// at least 67% of the votes accept it (`accepted * 100 >= 67 * total`).
pub const CROSS_SHARD_CONSENSUS_THRESHOLD_PCT: u64 = 67;

/// How long global (cross-shard) coordination may take, in milliseconds (the seed's
/// `GLOBAL_COORDINATION_TIMEOUT = 60` seconds).
pub const GLOBAL_COORDINATION_TIMEOUT_MS: u64 = 60_000;

/// Whether a cross-shard decision passes: `total > 0` and `accepted / total >= 0.67`,
/// computed as `accepted * 100 >= 67 * total`. (2 of 3 is 66.7% and does not pass.)
pub fn cross_shard_approved(accepted: u64, total: u64) -> bool {
    total > 0
        && accepted <= total
        && u128::from(accepted) * 100
            >= u128::from(CROSS_SHARD_CONSENSUS_THRESHOLD_PCT) * u128::from(total)
}
