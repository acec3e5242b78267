//! Vision Node consensus: one commonware simplex engine per chain (the beacon and every shard),
//! with marshal for block dissemination, backfill and ordered finalized delivery, and the
//! crosslink finalization certificates.
//!
//! Commonware types stay inside this crate: the state machines implement [`ChainApp`] over
//! their own block type ([`ChainBlock`]); keys are `vision_types` keys; certificates are
//! opaque bytes checked by [`verify_finalization_certificate`]. Everything is generic over the
//! commonware runtime traits (deterministic runtime in tests, tokio in the node).

mod adapter;
pub mod app;
pub mod certificate;
pub mod chain;
pub mod engine;
pub mod keys;
pub mod net;

pub use app::{ChainApp, ChainBlock, Finalized, ProposeCtx, VerifyCtx};
pub use certificate::{CertError, decode_certificate, verify_finalization_certificate};
pub use chain::{ChainId, Partitions, chain_index, namespace, subchannel};
pub use engine::{ChainHandle, ChainSpec, SpawnError, Timeouts, spawn_chain};
pub use net::{ChainChannels, NetMux, Scoped, base_channel_quotas, max_message_bytes};

#[cfg(test)]
mod tests;
