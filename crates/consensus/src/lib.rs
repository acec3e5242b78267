//! Vision Node consensus: one commonware simplex engine per chain (the beacon and every shard),
//! with marshal for block dissemination, backfill and ordered finalized delivery, and the
//! crosslink finalization certificates.
//!
//! Commonware types stay inside this crate: the state machines implement [`ChainApp`] over
//! their own block type ([`ChainBlock`]); keys are `vision_types` keys; certificates are
//! opaque bytes checked by [`verify_finalization_certificate`]. Everything is generic over the
//! commonware runtime traits (deterministic runtime in tests, tokio in the node).
//!
//! Wiring of one node (see `tests.rs` for the simulated version):
//!
//! ```text
//! // once per process, before network.start(): the five base channels
//! for (id, quota) in base_channel_quotas() { pairs.push(network.register(id, quota)); }
//! // max_message_size >= max_message_bytes::<Block>(MAX_COMMITTEE, &block_cfg)
//! let mut mux = NetMux::start(ctx.child("mux"), ChainChannels { votes, certificates, .. });
//! // per (chain, epoch) this node validates:
//! let channels = mux.register(chain, epoch).await?;
//! let spec = ChainSpec { chain, epoch, committee, signer, namespace: namespace(&net, chain, layout),
//!                        partitions: Partitions::new(node, chain, epoch), timeouts, genesis, .. };
//! let handle = spawn_chain(ctx.child("chain"), spec, channels, oracle.clone(), app).await?;
//! // epoch change: handle.stop().await, then register + spawn the next epoch's engine
//! ```
//!
//! Beacon side of a crosslink: [`verify_finalization_certificate`] with the shard's namespace,
//! the committee recorded for (shard, epoch), the header hash and the epoch.

mod adapter;
pub mod app;
pub mod archive;
pub mod beacon;
pub mod certificate;
pub mod chain;
pub mod engine;
pub mod keys;
pub mod net;
pub mod relay;
mod served;
pub mod shard;
pub mod validator;

pub use app::{ChainApp, ChainBlock, Finalized, ProposeCtx, StateAfter, VerifyCtx};
pub use beacon::{BeaconApp, BeaconBlock, BeaconState, CrosslinkPool, FinalizedCrosslinks};
pub use certificate::{
    CertError, Fault, certificate_signers, decode_certificate, fault_of, verify_fault_evidence,
    verify_finalization_certificate,
};
pub use chain::{ChainId, Partitions, chain_index, namespace, subchannel};
pub use engine::{ChainHandle, ChainSpec, SpawnError, Timeouts, spawn_chain};
pub use net::{
    ChainChannels, NetMux, RELAY, Scoped, base_channel_quotas, max_message_bytes,
    relay_channel_quota,
};
pub use relay::{
    BeaconFollower, RelayConfig, RelayMsg, RelayRoles, ShardFollower, TxOutbox, start_relay,
};
pub use shard::{
    FinalizedEvent, FinalizedListener, IncomingError, Mempool, MempoolConfig, MempoolError,
    OutgoingCrosslink, ShardApp, ShardAppConfig, ShardBlockCfg, ShardChainBlock, TxRecord,
};
pub use validator::{
    Follower, NetworkSpec, Validator, ValidatorError, start_follower, start_validator,
};

#[cfg(test)]
mod byzantine_leader_tests;
#[cfg(test)]
mod contract_sim_tests;
#[cfg(test)]
mod migration_sim_tests;
#[cfg(test)]
mod network_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
