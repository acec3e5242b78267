//! Adapters between [`ChainApp`] and commonware's marshal `Application` / `Reporter`.

use crate::{
    app::{ChainApp, ChainBlock, Finalized, ProposeCtx, StateAfter, VerifyCtx},
    certificate::{Digest, Scheme, encode_certificate, from_digest, to_digest},
    chain::ChainId,
    keys::from_cw_public_key,
};
use bytes::BufMut;
use commonware_actor::Feedback;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use commonware_consensus::{
    Application, Block, BoundedBlock, Epochable, Heightable, Reporter, Viewable,
    marshal::{Update, ancestry::Ancestry, core::Mailbox, standard::Standard},
    simplex::types::Context,
    types::{Epoch, EpochInfo, Epocher, Height},
};
use commonware_cryptography::{Digested, Digestible, ed25519};
use commonware_runtime::Clock;
use commonware_utils::{Acknowledgement, acknowledgement::Exact, channel::mpsc};
use futures::StreamExt;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};
use tracing::{debug, warn};

/// Wraps a [`ChainBlock`] so it implements commonware's block traits (orphan rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<B>(pub B);

impl<B: ChainBlock> Write for Envelope<B> {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf)
    }
}

impl<B: ChainBlock> EncodeSize for Envelope<B> {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl<B: ChainBlock> Read for Envelope<B> {
    type Cfg = B::Cfg;
    fn read_cfg(buf: &mut impl Buf, cfg: &Self::Cfg) -> Result<Self, CodecError> {
        Ok(Envelope(B::read_cfg(buf, cfg)?))
    }
}

impl<B: ChainBlock> Digestible for Envelope<B> {
    type Digest = Digest;
    fn digest(&self) -> Digest {
        to_digest(&self.0.hash())
    }
}

impl<B: ChainBlock> Heightable for Envelope<B> {
    fn height(&self) -> Height {
        Height::new(self.0.height())
    }
}

impl<B: ChainBlock> Block for Envelope<B> {
    fn parent(&self) -> Digest {
        to_digest(&self.0.parent())
    }
}

impl<B: ChainBlock> BoundedBlock for Envelope<B> {
    fn max_encode_size(cfg: &Self::Cfg) -> usize {
        B::max_encode_size(cfg)
    }
}

/// An epocher with one epoch covering every height: committee epochs are decided by the
/// beacon, not by height, and each engine runs exactly one epoch.
#[derive(Clone, Debug)]
pub struct SingleEpoch {
    epoch: Epoch,
}

/// Highest height of the single epoch (far from overflow in any arithmetic).
const LAST_HEIGHT: u64 = u64::MAX / 4;

impl SingleEpoch {
    /// The epocher for `epoch`.
    pub fn new(epoch: u64) -> Self {
        Self {
            epoch: Epoch::new(epoch),
        }
    }
}

impl Epocher for SingleEpoch {
    fn containing(&self, height: Height) -> Option<EpochInfo> {
        (height.get() <= LAST_HEIGHT)
            .then(|| EpochInfo::new(self.epoch, height, Height::new(0), Height::new(LAST_HEIGHT)))
    }

    fn first(&self, epoch: Epoch) -> Option<Height> {
        (epoch == self.epoch).then(|| Height::new(0))
    }

    fn last(&self, epoch: Epoch) -> Option<Height> {
        (epoch == self.epoch).then(|| Height::new(LAST_HEIGHT))
    }
}

/// Milliseconds since the Unix epoch on the runtime clock.
pub fn now_ms(clock: &impl Clock) -> u64 {
    clock
        .current()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Most unknown ancestors [`catch_up`] adopts for one propose or verify. A node further behind
/// than this is catching up through finalized delivery (archive replay, backfill); a later
/// proposal retries once it is close.
const MAX_ADOPTED_ANCESTORS: usize = 128;

/// Makes the state after `parent` known to the application before it proposes or verifies a
/// child: while [`ChainApp::state_after`] says `Unknown`, takes the next older block from
/// `ancestors` (marshal's ancestry: `parent`'s parent, then its parent, ...), then hands the
/// unknown blocks to [`ChainApp::adopt`], oldest first.
///
/// This is what lets consensus go on after a restart: a block notarized (and perhaps
/// finalized elsewhere) before this node went down is the parent of the next proposals, but an
/// in-memory application lost its state, and its finalization may never reach this node
/// (simplex resends a finalization only while the view after it lasts) unless this node votes
/// for a child. Best effort: on a
/// dead fork, a missing ancestor, a gap above [`MAX_ADOPTED_ANCESTORS`] or a block that does
/// not apply it gives up, and the application answers as it would have (waiting for the
/// parent's finalization until consensus cancels the call).
async fn catch_up<A: ChainApp>(
    app: &mut A,
    chain: ChainId,
    parent: &A::Block,
    ancestors: &mut impl Ancestry<Envelope<A::Block>>,
) {
    let mut unknown = Vec::new();
    let mut known = parent.clone();
    loop {
        match app.state_after(&known).await {
            StateAfter::Known => break,
            StateAfter::Never => {
                debug!(?chain, height = known.height(), "ancestor on a dead fork");
                return;
            }
            StateAfter::Unknown if unknown.len() == MAX_ADOPTED_ANCESTORS => {
                debug!(
                    ?chain,
                    height = known.height(),
                    "too far behind to adopt ancestors"
                );
                return;
            }
            StateAfter::Unknown => {
                let Some(older) = ancestors.next().await else {
                    warn!(
                        ?chain,
                        height = known.height(),
                        "ancestry ended before a known state"
                    );
                    return;
                };
                unknown.push(std::mem::replace(&mut known, older.inner().0.clone()));
            }
        }
    }
    while let Some(block) = unknown.pop() {
        if !app.adopt(&known, &block).await {
            warn!(
                ?chain,
                height = block.height(),
                "certified ancestor does not apply"
            );
            return;
        }
        debug!(
            ?chain,
            height = block.height(),
            "adopted an ancestor this node had not executed"
        );
        known = block;
    }
}

/// Implements marshal's `Application` over a [`ChainApp`].
#[derive(Clone)]
pub struct AppAdapter<A> {
    pub app: A,
    pub chain: ChainId,
    pub min_block_interval: Duration,
    pub poll_interval: Duration,
}

impl<E, A> Application<E> for AppAdapter<A>
where
    E: Clock + Send + Sync + 'static,
    A: ChainApp,
{
    type SigningScheme = Scheme;
    type Context = Context<Digest, ed25519::PublicKey>;
    type Block = Envelope<A::Block>;
    type Input = ();

    async fn propose(
        &mut self,
        (clock, ctx): (E, Self::Context),
        mut ancestry: impl Ancestry<Self::Block>,
        _input: (),
    ) -> Option<Digested<Self::Block>> {
        let parent = ancestry.next().await?;
        let parent = &parent.inner().0;
        catch_up(&mut self.app, self.chain, parent, &mut ancestry).await;
        // Empty-view throttle: wait for work or until the interval since the parent passed.
        let not_before = parent
            .timestamp_ms()
            .saturating_add(self.min_block_interval.as_millis() as u64);
        loop {
            let now = now_ms(&clock);
            if now >= not_before || self.app.has_pending_work() {
                break;
            }
            let wait = Duration::from_millis(not_before - now).min(self.poll_interval);
            clock.sleep(wait).await;
        }
        let pctx = ProposeCtx {
            chain: self.chain,
            epoch: ctx.epoch().get(),
            view: ctx.view().get(),
            height: parent.height() + 1,
            now_ms: now_ms(&clock),
            leader: from_cw_public_key(&ctx.leader),
        };
        let block = self.app.propose(parent, pctx).await?;
        if block.height() != parent.height() + 1 || block.parent() != parent.hash() {
            warn!(chain = ?self.chain, "application proposed a block that does not extend its parent");
            return None;
        }
        let digest = to_digest(&block.hash());
        Some(Digested::precomputed(Arc::new(Envelope(block)), digest))
    }

    async fn verify(
        &mut self,
        (_clock, ctx): (E, Self::Context),
        mut ancestry: impl Ancestry<Self::Block>,
    ) -> bool {
        // Marshal yields the block, then its parent (linkage already checked).
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        catch_up(&mut self.app, self.chain, &parent.inner().0, &mut ancestry).await;
        let vctx = VerifyCtx {
            chain: self.chain,
            epoch: ctx.epoch().get(),
            view: ctx.view().get(),
            leader: from_cw_public_key(&ctx.leader),
        };
        self.app
            .verify(&parent.inner().0, &block.inner().0, vctx)
            .await
    }
}

/// Shared progress counters of one chain engine.
#[derive(Debug, Default)]
pub struct Progress {
    /// Highest height handed to (and returned from) `ChainApp::finalized`.
    pub delivered: AtomicU64,
    /// Highest finalized height marshal has heard of (may be ahead of `delivered`).
    pub tip: AtomicU64,
}

/// Marshal's finalized-block reporter: forwards blocks to the delivery task.
#[derive(Clone)]
pub struct Sink<B: ChainBlock> {
    pub tx: mpsc::UnboundedSender<(Digested<Envelope<B>>, Exact)>,
    pub progress: Arc<Progress>,
}

impl<B: ChainBlock> Reporter for Sink<B> {
    type Activity = Update<Envelope<B>>;

    fn report(&mut self, update: Self::Activity) -> Feedback {
        match update {
            Update::Tip(_, height, _) => {
                self.progress.tip.fetch_max(height.get(), Ordering::Relaxed);
            }
            Update::Block(block, ack) => {
                if self.tx.send((block, ack)).is_err() {
                    return Feedback::Closed;
                }
            }
        }
        Feedback::Ok
    }
}

/// Replays finalized blocks from marshal's archive up to `through`, above what an in-memory
/// application still holds (`ChainApp::applied_height`; nothing for persistent ones).
async fn replay<A: ChainApp>(
    app: &mut A,
    marshal: &Mailbox<Scheme, Standard<Envelope<A::Block>>>,
    through: u64,
) {
    let Some(applied) = app.applied_height().await else {
        return;
    };
    for h in applied + 1..=through {
        let Some(b) = marshal.get_block(Height::new(h)).await else {
            warn!(height = h, "cannot replay: block missing from the archive");
            return;
        };
        let certificate = marshal
            .get_finalization(Height::new(h))
            .await
            .filter(|f| f.proposal.payload == b.digest())
            .map(|f| encode_certificate(&f));
        debug!(height = h, "replaying finalized block");
        app.finalized(Finalized {
            block: b.inner().0.clone(),
            certificate,
        })
        .await;
    }
}

/// Delivers finalized blocks to the application in order, acknowledging each after
/// `ChainApp::finalized` returns.
pub async fn deliver<A: ChainApp>(
    mut app: A,
    mut rx: mpsc::UnboundedReceiver<(Digested<Envelope<A::Block>>, Exact)>,
    marshal: Mailbox<Scheme, Standard<Envelope<A::Block>>>,
    progress: Arc<Progress>,
) {
    // An in-memory application restarts empty: replay what marshal already processed before
    // anything else (consensus may need that state to propose or verify).
    if app.applied_height().await.is_some()
        && let Some(processed) = marshal.get_processed().await
    {
        replay(&mut app, &marshal, processed.height().get()).await;
    }
    while let Some((block, ack)) = rx.recv().await {
        let height = block.height();
        if height.get() == 0 {
            // Genesis is configuration, not a consensus decision.
            ack.acknowledge();
            continue;
        }
        replay(&mut app, &marshal, height.get() - 1).await;
        let certificate = marshal
            .get_finalization(height)
            .await
            .filter(|f| f.proposal.payload == block.digest())
            .map(|f| encode_certificate(&f));
        debug!(height = height.get(), digest = %from_digest(&block.digest()), has_cert = certificate.is_some(), "finalized");
        app.finalized(Finalized {
            block: block.inner().0.clone(),
            certificate,
        })
        .await;
        ack.acknowledge();
        progress
            .delivered
            .fetch_max(height.get(), Ordering::Relaxed);
    }
}
