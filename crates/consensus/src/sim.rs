//! Shared pieces of the deterministic simulation tests (simulated p2p, base channels).

use crate::{ChainChannels, keys::to_cw_public_key};
use commonware_cryptography::ed25519;
use commonware_p2p::simulated::{self, Link, Oracle};
use commonware_runtime::{Supervisor as _, deterministic};
use commonware_utils::{NZUsize, Probability};
use std::time::Duration;
use vision_types::PublicKey;

/// The deterministic runtime's context.
pub(crate) type Ctx = deterministic::Context;
/// A simulated p2p sender.
pub(crate) type SimSender = simulated::Sender<ed25519::PublicKey, Ctx>;
/// A simulated p2p receiver.
pub(crate) type SimReceiver = simulated::Receiver<ed25519::PublicKey>;

/// A deterministic test key: seed byte 0 is `tag` (one per key family), bytes 8..16 are `i`.
pub(crate) fn test_key(tag: u8, i: u64) -> vision_types::SecretKey {
    let mut seed = [0u8; 32];
    seed[0] = tag;
    seed[8..16].copy_from_slice(&i.to_be_bytes());
    vision_types::SecretKey::from_seed(seed)
}

/// A 20 ms (± 5 ms) link delivering `success_pct` % of messages.
pub(crate) fn link(success_pct: u64) -> Link {
    Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        success_rate: Probability::new(success_pct, 100).unwrap(),
    }
}

/// Registers the five base channels of the validator with key `pk`.
pub(crate) async fn base_channels_of(
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    pk: &PublicKey,
) -> ChainChannels<SimSender, SimReceiver> {
    let control = oracle.control(to_cw_public_key(pk).unwrap());
    let mut pairs = Vec::new();
    for (ch, quota) in crate::base_channel_quotas() {
        pairs.push(control.register(ch, quota).await.unwrap());
    }
    let mut it = pairs.into_iter();
    ChainChannels {
        votes: it.next().unwrap(),
        certificates: it.next().unwrap(),
        resolver: it.next().unwrap(),
        blocks: it.next().unwrap(),
        backfill: it.next().unwrap(),
    }
}

/// Starts a simulated network of `peers`, every pair joined both ways by `link`.
pub(crate) async fn full_mesh(
    ctx: &Ctx,
    peers: Vec<ed25519::PublicKey>,
    max_size: u32,
    link: Link,
) -> Oracle<ed25519::PublicKey, Ctx> {
    let (network, oracle) = simulated::Network::new_with_peers(
        ctx.child("network"),
        simulated::Config {
            max_size,
            max_peers_per_set: NZUsize!(peers.len() + 1),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        peers.clone(),
    )
    .await;
    network.start();
    for a in &peers {
        for b in peers.iter().filter(|b| *b != a) {
            oracle
                .add_link(a.clone(), b.clone(), link.clone())
                .await
                .unwrap();
        }
    }
    oracle
}
