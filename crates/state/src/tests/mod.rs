//! Tests of the state machine: a small multi-shard harness ([`kit`]) and test suites.

mod batching;
mod crossshard;
mod kit;
mod migration;
mod proposals;
mod props;
mod rejections;
mod seed;
mod store;
