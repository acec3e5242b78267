//! Network plumbing: fixed base channels multiplexed into per-(chain, epoch) subchannels, a
//! sender wrapper that scopes broadcasts to a committee, and a static committee peer provider.

use crate::{
    adapter::Envelope,
    app::ChainBlock,
    certificate::{Digest, Scheme},
    chain::{ChainId, subchannel},
};
use commonware_consensus::{
    marshal::{self, standard::Standard},
    simplex,
};
use commonware_cryptography::ed25519;
use commonware_p2p::{
    LimitedSender, PeerSetUpdate, Provider, Receiver, Recipients, Sender, TrackedPeers,
    utils::mux::{self, MuxHandle, Muxer, SubReceiver, SubSender},
};
use commonware_runtime::{Quota, Spawner};
use commonware_utils::{NZU32, channel::mpsc, ordered::Set, sync::Mutex};
use std::{sync::Arc, time::SystemTime};

/// Base channel: simplex votes.
pub const VOTES: u64 = 0;
/// Base channel: simplex certificates.
pub const CERTIFICATES: u64 = 1;
/// Base channel: simplex certificate fetches.
pub const CONSENSUS_RESOLVER: u64 = 2;
/// Base channel: block dissemination (buffered broadcast, marshal).
pub const BLOCKS: u64 = 3;
/// Base channel: marshal backfill (finalized blocks and certificates by height/digest).
pub const BACKFILL: u64 = 4;
/// Base channel of the relay (crosslinks, beacon following, receipts); not multiplexed.
pub const RELAY: u64 = 5;
/// Per-peer rate limit of the relay channel (crosslinks, receipt batches, transaction
/// batches, beacon and shard following: a few messages per block per peer).
///
/// Memory: commonware's authenticated network preallocates, for every registered channel, an
/// inbound mailbox and a share of the outbound router mailbox of `retained peers × burst`
/// slots (a few hundred bytes each, whether used or not), and a quota's burst equals its rate.
/// The quotas here are therefore sized to the traffic with a wide margin, not "large to be
/// safe": at the former 4,096 votes/s and four tracked peer sets these mailboxes took about
/// 420 MB of every validator of a 17-process devnet.
pub fn relay_channel_quota() -> Quota {
    Quota::per_second(NZU32!(512))
}
/// All base channels used by chain engines, in registration order.
pub const BASE_CHANNELS: [u64; 5] = [VOTES, CERTIFICATES, CONSENSUS_RESOLVER, BLOCKS, BACKFILL];

/// Per-peer rate limits of the base channels, shared by all engines on them (over-quota
/// recipients are silently skipped, which looks like message loss).
///
/// A chain engine proposes at most one block per `min_block_interval` (200 ms), so a peer
/// sends each engine a few votes, certificates and blocks per view: about 15 messages per
/// second per channel for a process that runs a shard engine and a beacon engine. The limits
/// leave a margin of 15× or more for bursts (catch-up after a partition, a restart's
/// backfill). Each unit of burst costs preallocated mailbox memory per peer: see
/// [`relay_channel_quota`].
pub fn base_channel_quotas() -> [(u64, Quota); 5] {
    [
        (VOTES, Quota::per_second(NZU32!(512))),
        (CERTIFICATES, Quota::per_second(NZU32!(512))),
        (CONSENSUS_RESOLVER, Quota::per_second(NZU32!(256))),
        (BLOCKS, Quota::per_second(NZU32!(256))),
        (BACKFILL, Quota::per_second(NZU32!(256))),
    ]
}

/// The largest message any chain engine sends on the base channels (mux prefix included),
/// for committees of at most `max_committee` members and blocks bounded by `block_cfg`.
/// Use it (or more) as the network's `max_message_size` on every node: larger sends panic,
/// larger receipts disconnect.
pub fn max_message_bytes<B: ChainBlock>(max_committee: u32, block_cfg: &B::Cfg) -> u32 {
    commonware_p2p::max_message_size(&[
        mux::prefixed(simplex::max_payload_size::<Scheme, Digest>(max_committee)),
        mux::prefixed(marshal::max_payload_size::<Standard<Envelope<B>>, Scheme>(
            max_committee,
            block_cfg,
        )),
    ])
}

/// The five (sender, receiver) pairs one chain engine runs on. The same shape carries a
/// network's base channels (see [`NetMux::start`]).
pub struct ChainChannels<S, R> {
    /// Simplex votes.
    pub votes: (S, R),
    /// Simplex certificates.
    pub certificates: (S, R),
    /// Simplex certificate fetches.
    pub resolver: (S, R),
    /// Block broadcast.
    pub blocks: (S, R),
    /// Marshal backfill.
    pub backfill: (S, R),
}

/// Sender of a chain subchannel.
pub type ChainSender<S> = SubSender<S>;
/// Receiver of a chain subchannel.
pub type ChainReceiver = SubReceiver<ed25519::PublicKey>;

/// Multiplexes the base channels of one network into per-(chain, epoch) subchannels, so that
/// engines can come and go after the network started (registering a base channel after start
/// is impossible, and a message on an unregistered channel disconnects the peer).
pub struct NetMux<S: Sender> {
    handles: Vec<MuxHandle<S>>,
}

/// A subchannel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Already registered (two engines for one chain and epoch) or the muxer stopped.
    #[error("mux subchannel {0}: {1}")]
    Mux(u64, mux::Error),
}

impl<S: Sender<PublicKey = ed25519::PublicKey>> NetMux<S> {
    /// Starts one muxer per base channel.
    pub fn start<E: Spawner, R: Receiver<PublicKey = ed25519::PublicKey>>(
        context: E,
        base: ChainChannels<S, R>,
    ) -> Self {
        let mut handles = Vec::with_capacity(5);
        let pairs = [
            (context.child("mux_votes"), base.votes),
            (context.child("mux_certificates"), base.certificates),
            (context.child("mux_resolver"), base.resolver),
            (context.child("mux_blocks"), base.blocks),
            (context.child("mux_backfill"), base.backfill),
        ];
        for (ctx, (tx, rx)) in pairs {
            let (muxer, handle) = Muxer::new(ctx, tx, rx);
            muxer.start();
            handles.push(handle);
        }
        Self { handles }
    }

    /// Opens the subchannels of `(chain, epoch)` on every base channel.
    pub async fn register(
        &mut self,
        chain: ChainId,
        epoch: u64,
    ) -> Result<ChainChannels<ChainSender<S>, ChainReceiver>, NetError> {
        let sub = subchannel(chain, epoch);
        let mut pairs = Vec::with_capacity(5);
        for handle in &mut self.handles {
            pairs.push(
                handle
                    .register(sub)
                    .await
                    .map_err(|e| NetError::Mux(sub, e))?,
            );
        }
        let mut it = pairs.into_iter();
        let mut next = || it.next().expect("five subchannels");
        Ok(ChainChannels {
            votes: next(),
            certificates: next(),
            resolver: next(),
            blocks: next(),
            backfill: next(),
        })
    }
}

/// A sender that turns `Recipients::All` into "all committee members" (simplex and marshal
/// broadcast to `All`, which on a shared network means every connected peer).
#[derive(Clone, Debug)]
pub struct Scoped<S> {
    inner: S,
    to: Arc<Vec<ed25519::PublicKey>>,
}

impl<S> Scoped<S> {
    /// Scopes `inner` to `to`.
    pub fn new(inner: S, to: Arc<Vec<ed25519::PublicKey>>) -> Self {
        Self { inner, to }
    }
}

impl<S: LimitedSender<PublicKey = ed25519::PublicKey>> LimitedSender for Scoped<S> {
    type PublicKey = ed25519::PublicKey;
    type Checked<'a>
        = S::Checked<'a>
    where
        Self: 'a;

    fn check(
        &mut self,
        recipients: Recipients<Self::PublicKey>,
    ) -> Result<Self::Checked<'_>, SystemTime> {
        let recipients = match recipients {
            Recipients::All => Recipients::Some(self.to.as_ref().clone()),
            r => r,
        };
        self.inner.check(recipients)
    }
}

/// A peer provider with one fixed peer set: the committee (so marshal's resolver fetches from,
/// and the block buffer tracks, committee members only).
#[derive(Clone, Debug)]
pub struct CommitteeProvider {
    committee: Set<ed25519::PublicKey>,
    // Subscribers stop when their channel closes; keep the senders alive.
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<PeerSetUpdate<ed25519::PublicKey>>>>>,
}

impl CommitteeProvider {
    /// A provider of `committee`.
    pub fn new(committee: Set<ed25519::PublicKey>) -> Self {
        Self {
            committee,
            subscribers: Arc::default(),
        }
    }
}

impl Provider for CommitteeProvider {
    type PublicKey = ed25519::PublicKey;

    async fn peer_set(&mut self, id: u64) -> Option<TrackedPeers<Self::PublicKey>> {
        (id == 0).then(|| TrackedPeers::primary(self.committee.clone()))
    }

    async fn subscribe(&mut self) -> mpsc::UnboundedReceiver<PeerSetUpdate<Self::PublicKey>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let peers = TrackedPeers::primary(self.committee.clone());
        let _ = tx.send(PeerSetUpdate {
            index: 0,
            latest: peers.clone(),
            all: peers,
        });
        self.subscribers.lock().push(tx);
        rx
    }
}
