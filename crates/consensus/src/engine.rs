//! One chain engine: simplex (ed25519) + marshal (`standard::Inline`) + buffered broadcast +
//! marshal's p2p resolver, on one chain's subchannels.

use crate::{
    adapter::{AppAdapter, Envelope, Progress, SingleEpoch, Sink, deliver},
    app::{ChainApp, ChainBlock},
    archive::ChainArchive,
    certificate::{Scheme, encode_fault},
    chain::{ChainId, Partitions},
    keys::{KeyError, committee_set, to_cw_private_key, to_cw_public_key},
    net::{ChainChannels, CommitteeProvider, Scoped},
};
use commonware_actor::Feedback;
use commonware_broadcast::buffered;
use commonware_consensus::{
    Reporter,
    marshal::{
        self, Start, core::Actor as Marshal, resolver::p2p as marshal_resolver, standard::Inline,
    },
    simplex::{self, ForwardPolicy, SkipBudget, SkipPolicy, elector::RoundRobin, types::Activity},
    types::{Epoch, ViewDelta},
};
use commonware_cryptography::{Digested, Sha256, certificate::ConstantProvider, ed25519};
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_storage::archive::immutable;
use commonware_utils::{
    NZU16, NZU64, NZUsize, NonZeroDuration,
    channel::{mpsc, oneshot},
};
use rand_core::CryptoRng;
use std::{
    num::NonZeroUsize,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};
use vision_types::{PublicKey, SecretKey};

/// Consensus timing of one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for the leader's proposal before voting to skip the view.
    pub leader: Duration,
    /// How long to wait for a notarization/certification before voting to skip the view
    /// (must exceed `leader`).
    pub certification: Duration,
    /// How often to re-broadcast nullify votes in a stuck view.
    pub retry: Duration,
    /// Skip a silent leader's whole term after this long (must exceed `certification` and
    /// `retry`).
    pub skip: Duration,
    /// Resolver fetch timeout (simplex certificates and marshal backfill).
    pub fetch: Duration,
    /// Empty-view throttle: with nothing to propose, wait until this long after the parent's
    /// timestamp (must be well below `leader`).
    pub min_block_interval: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_secs(1),
            certification: Duration::from_secs(2),
            retry: Duration::from_secs(1),
            skip: Duration::from_secs(5),
            fetch: Duration::from_secs(1),
            min_block_interval: Duration::from_millis(200),
        }
    }
}

impl Timeouts {
    fn check(&self) -> Result<(), SpawnError> {
        let ok = !self.leader.is_zero()
            && self.certification > self.leader
            && !self.retry.is_zero()
            && self.skip > self.certification
            && self.skip > self.retry
            && !self.fetch.is_zero()
            && self.min_block_interval * 2 < self.leader;
        if ok {
            Ok(())
        } else {
            Err(SpawnError::Timeouts(self.clone()))
        }
    }
}

/// Everything that identifies one (chain, epoch) engine on one node.
#[derive(Clone, Debug)]
pub struct ChainSpec<B: ChainBlock> {
    /// The chain.
    pub chain: ChainId,
    /// The committee epoch (one engine per epoch).
    pub epoch: u64,
    /// The committee (any order; must contain `signer`'s public key).
    pub committee: Vec<PublicKey>,
    /// This validator's consensus key.
    pub signer: SecretKey,
    /// Signature namespace ([`crate::namespace`]).
    pub namespace: Vec<u8>,
    /// Storage partitions ([`Partitions::new`]).
    pub partitions: Partitions,
    /// Timing.
    pub timeouts: Timeouts,
    /// The height-0 block every node of the chain agrees on.
    pub genesis: B,
    /// Codec bounds of blocks (identical on every node).
    pub block_codec_config: B::Cfg,
    /// Capacity of internal mailboxes.
    pub mailbox_size: NonZeroUsize,
}

/// The engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The committee is unusable.
    #[error("committee: {0}")]
    Committee(#[from] KeyError),
    /// The signer is not a committee member.
    #[error("signer {0} is not in the committee")]
    NotAMember(PublicKey),
    /// Timeouts violate an engine invariant.
    #[error("inconsistent timeouts {0:?}")]
    Timeouts(Timeouts),
    /// A partition name uses characters outside `[A-Za-z0-9_-]`.
    #[error("invalid partition names {0:?}")]
    Partitions(Partitions),
    /// The genesis block is not at height 0.
    #[error("genesis block must have height 0")]
    Genesis,
    /// A storage archive failed to open.
    #[error("storage: {0}")]
    Storage(String),
    /// The engine stopped before it finished starting.
    #[error("engine stopped during startup")]
    Stopped,
}

/// A running chain engine: one supervisor task owning every component (aborting it stops them
/// all and releases the storage partitions and subchannels).
pub struct ChainHandle {
    task: Handle<()>,
    progress: Arc<Progress>,
}

impl ChainHandle {
    /// Highest height delivered to and acknowledged by `ChainApp::finalized`.
    pub fn delivered_height(&self) -> u64 {
        self.progress.delivered.load(Ordering::Relaxed)
    }

    /// Highest finalized height this node has heard of.
    pub fn finalized_tip(&self) -> u64 {
        self.progress.tip.load(Ordering::Relaxed)
    }

    /// Stops the engine without waiting.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Stops the engine and waits until all its tasks ended, after which its partitions can be
    /// reopened and its subchannels registered again (e.g. by the next epoch's engine or a
    /// restart).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

const PAGE_SIZE: u16 = 4096;

/// Starts one chain engine (simplex + marshal + block buffer + backfill resolver) in a
/// supervisor task spawned from `context`, and waits until its storage is open.
///
/// Aborting the task that owns `context` also stops the engine.
pub async fn spawn_chain<E, A, S, R, Bl>(
    context: E,
    spec: ChainSpec<A::Block>,
    channels: ChainChannels<S, R>,
    blocker: Bl,
    app: A,
) -> Result<ChainHandle, SpawnError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    A: ChainApp,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    Bl: Blocker<PublicKey = ed25519::PublicKey>,
{
    let progress = Arc::new(Progress::default());
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = context.spawn({
        let progress = progress.clone();
        move |context| async move {
            match build(context, spec, channels, blocker, app, progress).await {
                Ok(handles) => {
                    let _ = ready_tx.send(Ok(()));
                    // Run until any component stops (normally never).
                    let _ = futures::future::select_all(handles).await;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        }
    });
    match ready_rx.await {
        Ok(Ok(())) => Ok(ChainHandle { task, progress }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SpawnError::Stopped),
    }
}

async fn build<E, A, S, R, Bl>(
    context: E,
    spec: ChainSpec<A::Block>,
    channels: ChainChannels<S, R>,
    blocker: Bl,
    app: A,
    progress: Arc<Progress>,
) -> Result<Vec<Handle<()>>, SpawnError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    A: ChainApp,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    Bl: Blocker<PublicKey = ed25519::PublicKey>,
{
    spec.timeouts.check()?;
    if !spec.partitions.is_valid() {
        return Err(SpawnError::Partitions(spec.partitions.clone()));
    }
    if spec.genesis.height() != 0 {
        return Err(SpawnError::Genesis);
    }
    let participants = committee_set(&spec.committee)?;
    let me = to_cw_public_key(&spec.signer.public_key())?;
    let scheme = Scheme::signer(
        &spec.namespace,
        participants.clone(),
        to_cw_private_key(&spec.signer),
    )
    .ok_or(SpawnError::NotAMember(spec.signer.public_key()))?;
    let committee = Arc::new(participants.iter().cloned().collect::<Vec<_>>());
    let provider = CommitteeProvider::new(participants.clone());
    let t = &spec.timeouts;
    let page_cache = CacheRef::new(NZU16!(PAGE_SIZE), NZUsize!(64));
    let prefix = spec.partitions.marshal_prefix.clone();

    // Marshal's backfill resolver.
    let (bf_tx, bf_rx) = channels.backfill;
    let resolver = marshal_resolver::init(
        context.child("backfill"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: provider.clone(),
            blocker: blocker.clone(),
            mailbox_size: spec.mailbox_size,
            fetch_timeout: NonZeroDuration::new(t.fetch).expect("checked non-zero"),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        (Scoped::new(bf_tx, committee.clone()), bf_rx),
    );

    // Block dissemination.
    let (buffer_engine, buffer) = buffered::Engine::new(
        context.child("buffer"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: spec.mailbox_size,
            deque_size: 10,
            priority: false,
            codec_config: spec.block_codec_config.clone(),
            peer_provider: provider.clone(),
            strategy: Sequential,
        },
    );
    let (bl_tx, bl_rx) = channels.blocks;
    let buffer_handle = buffer_engine.start((Scoped::new(bl_tx, committee.clone()), bl_rx));

    // Marshal archives.
    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        archive_cfg(&prefix, "finalizations", &page_cache, <Scheme as commonware_cryptography::certificate::Verifier>::certificate_codec_config_unbounded()),
    )
    .await
    .map_err(|e| SpawnError::Storage(e.to_string()))?;
    let blocks = immutable::Archive::init(
        context.child("blocks"),
        archive_cfg(
            &prefix,
            "blocks",
            &page_cache,
            spec.block_codec_config.clone(),
        ),
    )
    .await
    .map_err(|e| SpawnError::Storage(e.to_string()))?;

    let genesis = Envelope(spec.genesis.clone());
    let genesis_digest = commonware_cryptography::Digestible::digest(&genesis);
    let (marshal_actor, marshal_mailbox, _floor) = Marshal::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::<Scheme, Epoch>::new(scheme.clone()),
            epocher: SingleEpoch::new(spec.epoch),
            start: Start::Genesis(Digested::precomputed(Arc::new(genesis), genesis_digest)),
            partition_prefix: prefix.clone(),
            mailbox_size: spec.mailbox_size,
            view_retention: ViewDelta::new(10),
            prunable_items_per_section: NZU64!(64),
            page_cache: page_cache.clone(),
            replay_buffer: NZUsize!(64 * 1024),
            key_write_buffer: NZUsize!(64 * 1024),
            value_write_buffer: NZUsize!(64 * 1024),
            block_codec_config: spec.block_codec_config.clone(),
            max_repair: NZUsize!(16),
            max_pending_acks: NZUsize!(16),
            strategy: Sequential,
        },
    )
    .await;

    app.attach_archive(ChainArchive::new(marshal_mailbox.clone()));

    // Ordered finalized delivery.
    let (sink_tx, sink_rx) = mpsc::unbounded_channel();
    let sink = Sink {
        tx: sink_tx,
        progress: progress.clone(),
    };
    let marshal_handle = marshal_actor.start(sink, buffer, resolver);
    let deliver_handle = context.child("deliver").spawn({
        let app = app.clone();
        let mailbox = marshal_mailbox.clone();
        let progress = progress.clone();
        move |_| deliver(app, sink_rx, mailbox, progress)
    });

    // Consensus.
    let fault_app = app.clone();
    let adapter = AppAdapter {
        app,
        chain: spec.chain,
        min_block_interval: t.min_block_interval,
        poll_interval: Duration::from_millis(10)
            .min(t.min_block_interval.max(Duration::from_millis(1))),
    };
    let inline = Inline::new(
        context.child("inline"),
        adapter,
        marshal_mailbox,
        SingleEpoch::new(spec.epoch),
    );
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: inline.clone(),
            relay: inline.clone(),
            reporter: FaultReporter {
                inner: inline,
                app: fault_app,
            },
            strategy: Sequential,
            partition: spec.partitions.simplex.clone(),
            mailbox_size: spec.mailbox_size,
            epoch: Epoch::new(spec.epoch),
            floor: simplex::Floor::Genesis(genesis_digest),
            replay_buffer: NZUsize!(64 * 1024),
            write_buffer: NZUsize!(64 * 1024),
            page_cache,
            leader_timeout: t.leader,
            certification_timeout: t.certification,
            timeout_retry: t.retry,
            view_retention: ViewDelta::new(10),
            skip: SkipPolicy::Enabled {
                timeout: t.skip,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NonZeroDuration::new(t.fetch).expect("checked non-zero"),
            fetch_retry_delay: Duration::from_millis(100),
            forward: ForwardPolicy::Disabled,
            track_historical_votes: false,
        },
    );
    let (v_tx, v_rx) = channels.votes;
    let (c_tx, c_rx) = channels.certificates;
    let engine_handle = engine.start(
        (Scoped::new(v_tx, committee.clone()), v_rx),
        (Scoped::new(c_tx, committee.clone()), c_rx),
        channels.resolver,
    );

    Ok(vec![
        engine_handle,
        marshal_handle,
        deliver_handle,
        buffer_handle,
    ])
}

fn archive_cfg<C>(
    prefix: &str,
    name: &str,
    page_cache: &CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 64,
        freezer_table_resize_frequency: 10,
        freezer_table_resize_chunk_size: 10,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(1024),
        codec_config,
        replay_buffer: NZUsize!(64 * 1024),
        freezer_key_write_buffer: NZUsize!(64 * 1024),
        freezer_value_write_buffer: NZUsize!(64 * 1024),
        ordinal_write_buffer: NZUsize!(64 * 1024),
    }
}

/// Simplex's reporter: forwards every activity to marshal and hands evidence of equivocation
/// (conflicting votes of one committee member in one view) to the application
/// ([`ChainApp::report_fault`]).
#[derive(Clone)]
struct FaultReporter<R, A> {
    inner: R,
    app: A,
}

impl<R, A> Reporter for FaultReporter<R, A>
where
    R: Reporter<Activity = Activity<Scheme, crate::certificate::Digest>>,
    A: ChainApp,
{
    type Activity = Activity<Scheme, crate::certificate::Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Some(evidence) = encode_fault(&activity) {
            self.app.report_fault(evidence);
        }
        self.inner.report(activity)
    }
}
