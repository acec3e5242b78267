//! The relay: everything that moves between chains, over one p2p base channel
//! ([`crate::net::RELAY`]), pull-based so that lost messages are simply asked for again.
//!
//! - **Crosslinks** (shard → beacon): a shard validator sends its shard's certified crosslinks
//!   ([`crate::ShardApp::take_crosslinks`]) to the beacon committee, and again every
//!   `resend` until its beacon view shows them finalized. A beacon member also submits them
//!   to its own pool.
//! - **Beacon following** (beacon → everyone): a node that is not a beacon member asks a
//!   beacon member (round robin) every `tick` for finalized beacon blocks above its height and
//!   applies certified segments ([`BeaconFollower`]); after a full segment it asks again at
//!   once. Any node serves segments from its view: the recent window in memory and, below it,
//!   its archive ([`crate::archive`]), so a follower catches up after any absence.
//! - **Receipts** (source shard → destination shard): for each source shard, a destination
//!   validator looks up the beacon-finalized destination entry that continues its inbox and
//!   asks a source committee member (round robin) for the receipts; the answer is checked
//!   against the beacon root before it enters the proposer's pool
//!   ([`crate::ShardApp::add_incoming`]).
//!
//! - **Shard following** (shard → API nodes): a node that follows shards without voting asks a
//!   member of each followed shard (round robin) for finalized blocks above its height, and
//!   applies certified segments ([`ShardFollower`]) in a task per shard (asking the same
//!   member again at once after a full segment). Shard members serve segments from
//!   [`crate::ShardApp::segment_from`] and, below that window, from their archive. When the
//!   latest layout moves accounts, their pending transactions move to the new shard's pool.
//! - **Transactions** (API node → shard): transactions admitted to a followed shard's pool are
//!   forwarded to the shard's members at the next tick, forwarded again every `resend` while
//!   pending, and forgotten after [`PENDING_TTL`].
//! - **Transactions** (validator → its committee): transactions a validator's own clients
//!   submitted (its HTTP API, through [`TxOutbox`]) are sent once to the other members of its
//!   shard committee at the next tick, so whoever proposes next can include them; the
//!   validator's own pool keeps them for its own turns as proposer.
//!
//! Requests are answered only from finalized data; every answer is verified by its receiver.

mod follower;
mod msg;

pub use follower::{BeaconFollower, FollowError, ShardFollower};
pub use msg::{
    MAX_RELAY_CROSSLINKS, MAX_RELAY_EVIDENCE, MAX_RELAY_TXS, MAX_SEGMENT_BLOCKS,
    MAX_SHARD_SEGMENT_BLOCKS, RELAY_MAX_MESSAGE_BYTES, RelayMsg,
};

use crate::{
    app::ChainBlock,
    archive::ArchiveRead,
    beacon::{BeaconApp, ConfigChange, FaultEvidence, FinalizedCrosslinks, layout_moves},
    keys::to_cw_public_key,
    shard::ShardApp,
};
use commonware_codec::{DecodeExt, Encode, EncodeSize};
use commonware_cryptography::ed25519;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Spawner};
use commonware_utils::sync::Mutex;
use futures::{StreamExt, channel::mpsc};
use rand_core::CryptoRng;
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use vision_sharding::ShardLayout;
use vision_types::{Crosslink, PublicKey, ShardBlock, ShardId, SignedTransaction};

/// How many times a validator sends one piece of equivocation evidence to the beacon
/// committee (each `resend`) before giving up.
const MAX_FAULT_SENDS: u32 = 10;

/// How many destination entries ahead of its inbox a shard fetches receipts for.
const FETCH_AHEAD: usize = 4;
/// How long a follower keeps forwarding a transaction its shard has not included.
pub const PENDING_TTL: Duration = Duration::from_secs(120);
/// Segments waiting to be applied per followed shard (more are dropped; asked again).
const SEGMENT_QUEUE: usize = 2;
/// Most transactions waiting in a [`TxOutbox`] (beyond it the oldest are not sent; they stay
/// in the submitting validator's pool).
pub const TX_OUTBOX_CAPACITY: usize = 10_000;

/// Who is who, and the relay's timing.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The network (chain id; names the chains' certificate namespaces).
    pub network: vision_types::ChainId,
    /// This node's consensus key.
    pub me: PublicKey,
    /// The beacon committee.
    pub beacon_committee: Vec<PublicKey>,
    /// Each shard's committee.
    pub shard_committees: BTreeMap<ShardId, Vec<PublicKey>>,
    /// How often to poll (beacon follow, receipt fetch, crosslink outbox).
    pub tick: Duration,
    /// How often to resend crosslinks not yet finalized on the beacon.
    pub resend: Duration,
}

/// A configuration change this node wants finalized (it holds the authority's key). The
/// relay sends it to every beacon member each resend interval until its beacon view has
/// applied a change with that seq (this one or a competing one), then forgets it.
#[derive(Clone, Default)]
pub struct ConfigOutbox(Arc<Mutex<Option<ConfigChange>>>);

impl ConfigOutbox {
    /// Replaces the change to send.
    pub fn set(&self, change: ConfigChange) {
        *self.0.lock() = Some(change);
    }
    /// The change being sent, if any.
    pub fn get(&self) -> Option<ConfigChange> {
        self.0.lock().clone()
    }
    /// Forgets the change once a change with its seq or a later one was applied (a newer
    /// change set meanwhile stays).
    fn forget_applied(&self, applied_seq: u64) {
        let mut slot = self.0.lock();
        if slot.as_ref().is_some_and(|c| c.seq <= applied_seq) {
            *slot = None;
        }
    }
}

/// Transactions a validator's own clients submitted to its shard's pool, waiting to be sent to
/// the other members of its committee at the next relay tick (once: the validator's pool keeps
/// them, and it proposes them itself in its turns). Holds at most [`TX_OUTBOX_CAPACITY`].
#[derive(Clone, Default)]
pub struct TxOutbox(Arc<Mutex<VecDeque<SignedTransaction>>>);

impl TxOutbox {
    /// Queues transactions admitted to this node's pool; returns how many older ones were
    /// dropped to stay within [`TX_OUTBOX_CAPACITY`].
    pub fn push(&self, txs: impl IntoIterator<Item = SignedTransaction>) -> usize {
        let mut q = self.0.lock();
        q.extend(txs);
        let over = q.len().saturating_sub(TX_OUTBOX_CAPACITY);
        q.drain(..over);
        over
    }

    /// Takes every queued transaction.
    fn take(&self) -> Vec<SignedTransaction> {
        self.0.lock().drain(..).collect()
    }

    /// Transactions waiting to be sent.
    pub fn len(&self) -> usize {
        self.0.lock().len()
    }

    /// Whether nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }
}

/// What this node runs (a validator runs at most one shard and may be a beacon member).
pub struct RelayRoles<E: commonware_storage::Context + Spawner> {
    /// The shard this node validates.
    pub shard: Option<ShardApp<E>>,
    /// The beacon application, on beacon members.
    pub beacon: Option<BeaconApp<E>>,
    /// This node's beacon view (the beacon app's on members; filled by the follower
    /// otherwise).
    pub view: FinalizedCrosslinks,
    /// Shards this node follows without voting (an API node follows all of them).
    pub followed: Vec<ShardApp<E>>,
    /// Configuration changes this node submits.
    pub config_outbox: ConfigOutbox,
    /// Transactions this validator's clients submitted to its shard, to send to its committee.
    pub tx_outbox: TxOutbox,
}

/// A certified segment of a followed shard and the validator that sent it.
type Segment = (ed25519::PublicKey, Vec<ShardBlock>, Vec<u8>);

/// A shard followed without voting: its application, the queue of segments to apply, and the
/// forwarding marks of its transaction pool.
struct Followed<E: commonware_storage::Context + Spawner> {
    app: ShardApp<E>,
    /// Segments to apply, with the validator that sent each.
    segments: mpsc::Sender<Segment>,
    /// Set while the applier works through a segment (no new request meanwhile).
    busy: Arc<AtomicBool>,
    /// Pool marks: forwarded up to `forwarded`; `(round, mark)` history for resend and expiry.
    marks: Mutex<(u64, VecDeque<(u64, u64)>)>,
}

struct Relay<E: commonware_storage::Context + Spawner> {
    cfg: RelayConfig,
    shard: Option<ShardApp<E>>,
    beacon: Option<BeaconApp<E>>,
    view: FinalizedCrosslinks,
    follower: Option<BeaconFollower>,
    followed: BTreeMap<ShardId, Followed<E>>,
    config_outbox: ConfigOutbox,
    tx_outbox: TxOutbox,
    keys: HashMap<PublicKey, ed25519::PublicKey>,
}

impl<E: commonware_storage::Context + Spawner> Relay<E> {
    fn key(&self, pk: &PublicKey) -> Option<ed25519::PublicKey> {
        self.keys.get(pk).cloned()
    }

    /// Everyone in `members` but this node.
    fn others(&self, members: &[PublicKey]) -> Vec<ed25519::PublicKey> {
        members
            .iter()
            .filter(|m| **m != self.cfg.me)
            .filter_map(|m| self.key(m))
            .collect()
    }

    /// Member `round` (round robin) of `members` other than this node.
    fn pick(&self, members: &[PublicKey], round: u64) -> Option<ed25519::PublicKey> {
        let others = self.others(members);
        if others.is_empty() {
            return None;
        }
        others.get((round % others.len() as u64) as usize).cloned()
    }
}

fn send<S: Sender<PublicKey = ed25519::PublicKey>>(
    sender: &mut S,
    to: Vec<ed25519::PublicKey>,
    msg: &RelayMsg,
) {
    if to.is_empty() {
        return;
    }
    if msg.encode_size() > RELAY_MAX_MESSAGE_BYTES {
        tracing::warn!(
            bytes = msg.encode_size(),
            "relay message too large, not sent"
        );
        return;
    }
    let _ = sender.send(Recipients::Some(to), msg.encode(), false);
}

/// Starts the relay of one node on its relay channel. Runs until the returned handle is
/// aborted (or the channel closes).
pub fn start_relay<E, S, R>(
    context: E,
    cfg: RelayConfig,
    roles: RelayRoles<E>,
    channel: (S, R),
) -> Handle<()>
where
    E: commonware_storage::Context + Spawner + Clock + CryptoRng,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let (sender, receiver) = channel;
    let mut keys = HashMap::new();
    for pk in cfg
        .beacon_committee
        .iter()
        .chain(cfg.shard_committees.values().flatten())
    {
        if let Ok(k) = to_cw_public_key(pk) {
            keys.insert(*pk, k);
        }
    }
    let follower = roles
        .beacon
        .is_none()
        .then(|| BeaconFollower::new(roles.view.clone(), cfg.beacon_committee.clone(), 0));
    let mut followed = BTreeMap::new();
    for app in roles.followed {
        let shard = app.shard();
        let Some(committee) = cfg.shard_committees.get(&shard) else {
            tracing::error!(
                shard = shard.0,
                "followed shard has no committee; not followed"
            );
            continue;
        };
        let (segments, mut queue) = mpsc::channel::<Segment>(SEGMENT_QUEUE);
        let busy = Arc::new(AtomicBool::new(false));
        let mut sf = ShardFollower::new(app.clone(), &cfg.network, committee.clone());
        let flag = busy.clone();
        let followed_app = app.clone();
        let mut ask = sender.clone();
        context
            .child("follow")
            .with_attribute("shard", shard.0)
            .spawn(move |mut context| async move {
                while let Some((peer, blocks, cert)) = queue.next().await {
                    flag.store(true, Ordering::SeqCst);
                    let full = blocks.len() >= MAX_SHARD_SEGMENT_BLOCKS;
                    match sf.check_segment(&blocks, &cert, &mut context) {
                        Ok(fresh) => {
                            let applied = !fresh.is_empty();
                            sf.apply(fresh).await;
                            // A full segment: more are likely waiting (catching up after a
                            // long absence); ask the same validator at once, not at the
                            // next tick.
                            if full && applied {
                                let from = followed_app.finalized_height() + 1;
                                send(&mut ask, vec![peer], &RelayMsg::GetShard { shard, from });
                            }
                        }
                        Err(e) => tracing::debug!(shard = shard.0, "shard segment refused: {e}"),
                    }
                    flag.store(false, Ordering::SeqCst);
                }
            });
        let mark = app.pending_mark();
        followed.insert(
            shard,
            Followed {
                app,
                segments,
                busy,
                marks: Mutex::new((mark, VecDeque::new())),
            },
        );
    }
    let relay = Arc::new(Relay {
        cfg,
        shard: roles.shard,
        beacon: roles.beacon,
        view: roles.view,
        follower,
        followed,
        config_outbox: roles.config_outbox,
        tx_outbox: roles.tx_outbox,
        keys,
    });
    context.spawn(move |context| async move {
        let rx = receive_loop(context.child("rx"), relay.clone(), sender.clone(), receiver);
        let tx = tick_loop(context, relay, sender);
        futures::future::join(rx, tx).await;
    })
}

async fn receive_loop<E, S, R>(mut context: E, relay: Arc<Relay<E>>, mut sender: S, mut rx: R)
where
    E: commonware_storage::Context + Spawner + Clock + CryptoRng,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    while let Ok((from, buf)) = rx.recv().await {
        let Ok(msg) = RelayMsg::decode(buf) else {
            tracing::debug!(?from, "undecodable relay message");
            continue;
        };
        match msg {
            RelayMsg::Crosslinks(cls) => {
                if let Some(beacon) = &relay.beacon {
                    let mut beacon = beacon.clone();
                    for cl in cls {
                        if let Err(e) = beacon.submit(cl) {
                            tracing::trace!("crosslink not pooled: {e}");
                        }
                    }
                }
            }
            RelayMsg::GetBeacon { from: height } => {
                if let Some((blocks, certificate)) =
                    relay
                        .view
                        .segment_from(height, MAX_SEGMENT_BLOCKS, RELAY_MAX_MESSAGE_BYTES / 2)
                {
                    let reply = RelayMsg::Beacon {
                        blocks,
                        certificate,
                    };
                    send(&mut sender, vec![from], &reply);
                } else if let Some(read) = relay.view.archive_read(height) {
                    let segment = (height, MAX_SEGMENT_BLOCKS);
                    serve_from_archive(&context, &sender, from, read, segment, |blocks, cert| {
                        RelayMsg::Beacon {
                            blocks,
                            certificate: cert,
                        }
                    });
                }
            }
            RelayMsg::Beacon {
                blocks,
                certificate,
            } => {
                if let Some(f) = &relay.follower {
                    match f.apply_segment(&blocks, &certificate, &mut context) {
                        // A full segment: more are likely waiting; ask the same peer at once
                        // rather than at the next tick (catching up after a long absence).
                        Ok(applied) if applied > 0 && blocks.len() >= MAX_SEGMENT_BLOCKS => {
                            let from_height = relay.view.beacon_height() + 1;
                            send(
                                &mut sender,
                                vec![from],
                                &RelayMsg::GetBeacon { from: from_height },
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!("beacon segment refused: {e}"),
                    }
                }
            }
            RelayMsg::GetReceipts { src, height, dst } => {
                if let Some(shard) = &relay.shard
                    && shard.shard() == src
                    && let Some(batch) = shard.incoming_batch(height, dst)
                {
                    send(&mut sender, vec![from], &RelayMsg::Receipts(batch));
                }
            }
            RelayMsg::Receipts(batch) => {
                if let Some(shard) = &relay.shard
                    && let Err(e) = shard.add_incoming(batch)
                {
                    tracing::debug!("incoming batch refused: {e}");
                }
            }
            RelayMsg::GetShard {
                shard: s,
                from: height,
            } => {
                let Some(shard) = relay.shard.as_ref().filter(|a| a.shard() == s) else {
                    continue;
                };
                if let Some((blocks, certificate)) = shard.segment_from(
                    height,
                    MAX_SHARD_SEGMENT_BLOCKS,
                    RELAY_MAX_MESSAGE_BYTES / 2,
                ) {
                    let reply = RelayMsg::Shard {
                        shard: s,
                        blocks,
                        certificate,
                    };
                    send(&mut sender, vec![from], &reply);
                } else if let Some(read) = shard.archive_read(height) {
                    let segment = (height, MAX_SHARD_SEGMENT_BLOCKS);
                    serve_from_archive(
                        &context,
                        &sender,
                        from,
                        read,
                        segment,
                        move |blocks, cert| RelayMsg::Shard {
                            shard: s,
                            blocks: blocks.into_iter().map(|b| b.0).collect(),
                            certificate: cert,
                        },
                    );
                }
            }
            RelayMsg::Shard {
                shard,
                blocks,
                certificate,
            } => {
                if let Some(f) = relay.followed.get(&shard) {
                    // A full queue drops the segment; it is asked for again.
                    let _ = f.segments.clone().try_send((from, blocks, certificate));
                }
            }
            RelayMsg::Txs(txs) => {
                if let Some(shard) = &relay.shard {
                    let admitted = shard.submit_batch(txs).iter().filter(|r| r.is_ok()).count();
                    tracing::trace!(admitted, "forwarded transactions");
                }
            }
            RelayMsg::Evidence(evidence) => {
                if let Some(beacon) = &relay.beacon {
                    for ev in evidence {
                        if let Err(e) = beacon.submit_evidence(ev) {
                            tracing::debug!(?from, "evidence not pooled: {e}");
                        }
                    }
                }
            }
            RelayMsg::Config(change) => {
                if let Some(beacon) = &relay.beacon
                    && let Err(e) = beacon.submit_config(change)
                {
                    tracing::debug!(?from, "configuration change not pooled: {e}");
                }
            }
        }
    }
}

async fn tick_loop<E, S>(context: E, relay: Arc<Relay<E>>, mut sender: S)
where
    E: commonware_storage::Context + Spawner + Clock + CryptoRng,
    S: Sender<PublicKey = ed25519::PublicKey>,
{
    // Crosslinks not yet seen finalized, by height, with the tick they were last sent.
    let mut unconfirmed: BTreeMap<u64, (Crosslink, Option<u64>)> = BTreeMap::new();
    let resend_ticks = (relay.cfg.resend.as_millis() / relay.cfg.tick.as_millis().max(1)).max(1);
    let mut round: u64 = 0;
    // The configuration change last sent (by id) and when.
    let mut config_sent: Option<(vision_types::Hash, u64)> = None;
    // The latest layout the followed shards' pools were checked against.
    let mut routed_by: Option<Arc<ShardLayout>> = None;
    // Equivocation evidence to get recorded: by id, with the tick last sent and sends so far.
    let mut faults: BTreeMap<vision_types::Hash, (FaultEvidence, u64, u32)> = BTreeMap::new();
    loop {
        context.sleep(relay.cfg.tick).await;
        round += 1;

        // Beacon following.
        if relay.follower.is_some() {
            let from = relay.view.beacon_height() + 1;
            if let Some(to) = relay.pick(&relay.cfg.beacon_committee, round) {
                send(&mut sender, vec![to], &RelayMsg::GetBeacon { from });
            }
        }

        // A configuration change to get finalized.
        if let Some(change) = relay.config_outbox.get() {
            let applied = relay
                .view
                .with_view(|v| v.map_or(0, |v| v.latest_config().seq));
            if applied >= change.seq {
                relay.config_outbox.forget_applied(applied);
            } else if config_sent
                .is_none_or(|(id, at)| id != change.id() || round - at >= resend_ticks as u64)
            {
                config_sent = Some((change.id(), round));
                if let Some(beacon) = &relay.beacon {
                    let _ = beacon.submit_config(change.clone());
                }
                let to = relay.others(&relay.cfg.beacon_committee);
                send(&mut sender, to, &RelayMsg::Config(change));
            }
        }

        // Followed shards: pending transactions follow moved accounts, ask for finalized
        // blocks, forward transactions.
        reroute_moved(&relay, &mut sender, &mut routed_by);
        for (&s, f) in &relay.followed {
            follow_tick(&relay, &mut sender, s, f, round, resend_ticks as u64);
        }

        let Some(shard) = &relay.shard else { continue };
        let me = shard.shard();

        // Transactions this validator's clients submitted, to the rest of its committee.
        let local = relay.tx_outbox.take();
        if !local.is_empty()
            && let Some(members) = relay.cfg.shard_committees.get(&me)
        {
            let to = relay.others(members);
            for chunk in tx_chunks(local) {
                send(&mut sender, to.clone(), &RelayMsg::Txs(chunk));
            }
        }

        // Crosslinks to the beacon.
        for out in shard.take_crosslinks() {
            unconfirmed.insert(out.crosslink.header.height, (out.crosslink, None));
        }
        // Kept until the beacon can no longer accept it (a crosslink carrying receipts may be
        // accepted below the shard's last crosslinked height: see `BeaconState::may_accept`).
        relay.view.with_view(|v| {
            unconfirmed.retain(|_, (cl, _)| v.is_none_or(|v| v.may_accept(me, cl)));
        });
        let due: Vec<Crosslink> = unconfirmed
            .values_mut()
            .filter(|(_, sent)| sent.is_none_or(|t| round - t >= resend_ticks as u64))
            .take(MAX_RELAY_CROSSLINKS)
            .map(|(cl, sent)| {
                *sent = Some(round);
                cl.clone()
            })
            .collect();
        if !due.is_empty() {
            if let Some(beacon) = &relay.beacon {
                let mut beacon = beacon.clone();
                for cl in &due {
                    let _ = beacon.submit(cl.clone());
                }
            }
            let to = relay.others(&relay.cfg.beacon_committee);
            send(&mut sender, to, &RelayMsg::Crosslinks(due));
        }

        // Equivocation evidence of this shard's committee, to the beacon (resent until the
        // beacon view shows it recorded, at most MAX_FAULT_SENDS times).
        for bytes in shard.take_faults() {
            let ev = FaultEvidence { shard: me, bytes };
            if faults.len() < MAX_RELAY_EVIDENCE {
                faults.entry(ev.id()).or_insert((ev, 0, 0));
            }
        }
        relay.view.with_view(|v| {
            faults.retain(|_, (ev, _, sends)| {
                *sends < MAX_FAULT_SENDS && v.is_none_or(|v| v.still_new(ev))
            });
        });
        let due: Vec<FaultEvidence> = faults
            .values_mut()
            .filter(|(_, at, sends)| *sends == 0 || round - *at >= resend_ticks as u64)
            .map(|(ev, at, sends)| {
                *at = round;
                *sends += 1;
                ev.clone()
            })
            .collect();
        if !due.is_empty() {
            if let Some(beacon) = &relay.beacon {
                for ev in &due {
                    let _ = beacon.submit_evidence(ev.clone());
                }
            }
            let to = relay.others(&relay.cfg.beacon_committee);
            send(&mut sender, to, &RelayMsg::Evidence(due));
        }

        // Receipts from every other shard.
        for (&src, members) in &relay.cfg.shard_committees {
            if src == me {
                continue;
            }
            let mut seq = shard.inbox_next(src);
            for _ in 0..FETCH_AHEAD {
                if let Some(end) = shard.incoming_end(src, seq) {
                    seq = end;
                    continue;
                }
                let Some((height, entry)) = relay.view.entry(src, me, seq) else {
                    break;
                };
                if let Some(to) = relay.pick(members, round) {
                    let req = RelayMsg::GetReceipts {
                        src,
                        height,
                        dst: me,
                    };
                    send(&mut sender, vec![to], &req);
                }
                seq = entry.end_seq();
            }
        }
    }
}

/// Answers `peer`'s request for the blocks from `from` out of the chain's archive, in a task
/// of its own (the read holds one of the archive's few read slots until it ends): a segment
/// of at most `max_blocks` blocks and half the message limit, sent as `reply` makes it;
/// nothing when the archive has no certified block from there.
fn serve_from_archive<E, S, B>(
    context: &E,
    sender: &S,
    peer: ed25519::PublicKey,
    read: ArchiveRead<B>,
    (from, max_blocks): (u64, usize),
    reply: impl FnOnce(Vec<B>, Vec<u8>) -> RelayMsg + Send + 'static,
) where
    E: Spawner,
    S: Sender<PublicKey = ed25519::PublicKey>,
    B: ChainBlock,
{
    let mut sender = sender.clone();
    context.child("archive").spawn(move |_| async move {
        if let Some((blocks, certificate)) = read
            .segment_from(from, max_blocks, RELAY_MAX_MESSAGE_BYTES / 2)
            .await
        {
            send(&mut sender, vec![peer], &reply(blocks, certificate));
        }
    });
}

/// When the latest finalized layout moved accounts (since `routed_by`), takes their pending
/// transactions out of the pools they wait in for the shard they left and hands them to the
/// shard they moved to: on a follower (the API node), from the followed old shard's pool into
/// the followed new shard's pool (forwarded to its validators at this tick); on a validator of
/// the old shard, from its own pool straight to the new shard's committee. A transaction
/// accepted before the move is thereby not dropped as wrong-shard on the old shard; the new
/// shard executes it once the account arrived, and a copy the old shard executed before the
/// move takes effect makes it a refused replay, so it applies once.
fn reroute_moved<E, S>(relay: &Relay<E>, sender: &mut S, routed_by: &mut Option<Arc<ShardLayout>>)
where
    E: commonware_storage::Context + Spawner,
    S: Sender<PublicKey = ed25519::PublicKey>,
{
    let Some(latest) = relay
        .view
        .with_view(|v| v.map(|v| v.latest_layout().clone()))
    else {
        return;
    };
    let Some(previous) = routed_by.replace(latest.clone()) else {
        return;
    };
    for m in layout_moves(&previous, &latest) {
        let mut moved = 0;
        if let (Some(from), Some(to)) = (relay.followed.get(&m.from), relay.followed.get(&m.to)) {
            let txs = from.app.take_pending_of(&m.account);
            moved += to
                .app
                .submit_batch(txs)
                .iter()
                .filter(|r| r.is_ok())
                .count();
        }
        if let Some(shard) = relay.shard.as_ref().filter(|s| s.shard() == m.from)
            && let Some(members) = relay.cfg.shard_committees.get(&m.to)
        {
            let txs = shard.take_pending_of(&m.account);
            moved += txs.len();
            let to = relay.others(members);
            for chunk in tx_chunks(txs) {
                send(sender, to.clone(), &RelayMsg::Txs(chunk));
            }
        }
        if moved > 0 {
            tracing::info!(
                account = %m.account,
                from = m.from.0,
                to = m.to.0,
                moved,
                "pending transactions follow their account to its new shard"
            );
        }
    }
}

/// One tick of following shard `s`: request the blocks above the followed height (unless a
/// segment is being applied), forward newly admitted transactions, forward again those pending
/// longer than `resend_ticks`, and expire those pending longer than [`PENDING_TTL`].
fn follow_tick<E, S>(
    relay: &Relay<E>,
    sender: &mut S,
    s: ShardId,
    f: &Followed<E>,
    round: u64,
    resend_ticks: u64,
) where
    E: commonware_storage::Context + Spawner,
    S: Sender<PublicKey = ed25519::PublicKey>,
{
    let members = &relay.cfg.shard_committees[&s];
    // Crosslinks are the validators' business; a follower only keeps the app's outbox empty.
    let _ = f.app.take_crosslinks();
    if !f.busy.load(Ordering::SeqCst)
        && let Some(to) = relay.pick(members, round)
    {
        let from = f.app.finalized_height() + 1;
        send(sender, vec![to], &RelayMsg::GetShard { shard: s, from });
    }
    let now = f.app.pending_mark();
    let (fresh, resend) = {
        let mut marks = f.marks.lock();
        let (forwarded, history) = &mut *marks;
        let fresh = f.app.pending_between(*forwarded, now, usize::MAX);
        *forwarded = now;
        history.push_back((round, now));
        let ttl_ticks = (PENDING_TTL.as_millis() / relay.cfg.tick.as_millis().max(1)) as u64;
        while history.len() > 1 && round - history[0].0 > ttl_ticks {
            let (_, mark) = history.pop_front().expect("non-empty");
            let expired = f.app.expire_pending(mark);
            if expired > 0 {
                tracing::debug!(shard = s.0, expired, "pending transactions expired");
            }
        }
        let resend = if round.is_multiple_of(resend_ticks) {
            let old = history
                .iter()
                .rev()
                .find(|(r, _)| round - r >= resend_ticks)
                .map(|(_, m)| *m);
            old.map(|m| f.app.pending_between(0, m, MAX_RELAY_TXS))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        (fresh, resend)
    };
    let to = relay.others(members);
    for txs in [fresh, resend] {
        for chunk in tx_chunks(txs) {
            send(sender, to.clone(), &RelayMsg::Txs(chunk));
        }
    }
}

/// Splits transactions into relay messages within [`MAX_RELAY_TXS`] and half the message
/// size limit.
fn tx_chunks(txs: Vec<SignedTransaction>) -> Vec<Vec<SignedTransaction>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0usize;
    for tx in txs {
        let size = tx.encode_size();
        if !cur.is_empty()
            && (cur.len() == MAX_RELAY_TXS || bytes + size > RELAY_MAX_MESSAGE_BYTES / 2)
        {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += size;
        cur.push(tx);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
