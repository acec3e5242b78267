//! Following a chain without voting on it: certified segments of finalized blocks, for the
//! beacon chain ([`BeaconFollower`]) and for shards ([`ShardFollower`]).

use crate::{
    app::{ChainApp, Finalized},
    beacon::{ApplyError, BeaconBlock, FinalizedCrosslinks},
    certificate::{CertError, verify_finalization_certificate},
    chain::namespace,
    shard::{ShardApp, ShardChainBlock},
};
use commonware_runtime::Spawner;
use rand_core::CryptoRng;
use vision_types::{ChainId as NetworkId, PublicKey, ShardBlock, block::ChainRef};

/// Why a segment was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    /// The certificate does not certify the last block.
    #[error("certificate: {0}")]
    Certificate(#[from] CertError),
    /// The blocks do not extend the followed chain.
    #[error("segment does not extend the followed chain: {0}")]
    Apply(#[from] ApplyError),
    /// A block's body or state root does not match its header.
    #[error("block {0} does not match its header")]
    Mismatch(u64),
    /// The follower has no beacon state to extend.
    #[error("no beacon state")]
    NoState,
    /// A block is not the next one of the followed chain (height, parent or chain).
    #[error("block {0} does not extend the followed chain")]
    Linkage(u64),
}

/// Applies certified segments of the beacon chain to a [`FinalizedCrosslinks`] view.
///
/// A segment `b_1 … b_k` with a finalization certificate of `b_k` by the beacon committee is
/// final as a whole: `b_k` is certified, and each `b_i` is the parent of `b_{i+1}` by hash.
#[derive(Clone)]
pub struct BeaconFollower {
    view: FinalizedCrosslinks,
    namespace: Vec<u8>,
    committee: Vec<PublicKey>,
    epoch: u64,
}

impl BeaconFollower {
    /// Follows the beacon chain of the network and committee recorded in `view`'s state.
    pub fn new(view: FinalizedCrosslinks, committee: Vec<PublicKey>, epoch: u64) -> Self {
        let state = view.state().expect("a view starts with a state");
        let namespace = namespace(state.network(), ChainRef::Beacon, state.layout_version());
        BeaconFollower {
            view,
            namespace,
            committee,
            epoch,
        }
    }

    /// The view this follower fills.
    pub fn view(&self) -> &FinalizedCrosslinks {
        &self.view
    }

    /// Verifies and applies a segment; blocks at or below the followed height are skipped.
    /// Returns the number of blocks applied. Nothing changes on error.
    pub fn apply_segment(
        &self,
        blocks: &[BeaconBlock],
        certificate: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<usize, FollowError> {
        let mut state = self.view.state().ok_or(FollowError::NoState)?;
        let Some(last) = blocks.last() else {
            return Ok(0);
        };
        if last.header.height <= state.height() {
            return Ok(0);
        }
        verify_finalization_certificate(
            certificate,
            &self.namespace,
            &self.committee,
            &last.header.hash(),
            self.epoch,
            rng,
        )?;
        let fresh: Vec<&BeaconBlock> = blocks
            .iter()
            .filter(|b| b.header.height > state.height())
            .collect();
        let mut applied = Vec::with_capacity(fresh.len());
        for b in &fresh {
            if !b.body_matches() {
                return Err(FollowError::Mismatch(b.header.height));
            }
            state.apply_block(b)?;
            if state.root() != b.header.state_root {
                return Err(FollowError::Mismatch(b.header.height));
            }
            applied.push(state.clone());
        }
        let n = fresh.len();
        for (i, (b, s)) in fresh.into_iter().zip(applied).enumerate() {
            let cert = (i + 1 == n).then(|| certificate.to_vec());
            self.view.publish(&s, b, cert);
        }
        Ok(n)
    }
}

/// Follows one shard chain without voting: verifies certified segments and applies their
/// blocks to a [`ShardApp`] (which executes them on its own state, checking every root).
///
/// A segment `b_1 … b_k` is accepted when `b_k` carries a finalization certificate of the
/// shard committee, each `b_i` is the parent of `b_{i+1}` by hash, heights are consecutive
/// and every body matches its header. Its first new block extends the followed chain: finality
/// is unique, so the certified chain's block at the followed height is the followed block.
pub struct ShardFollower<E: commonware_storage::Context + Spawner> {
    app: ShardApp<E>,
    namespace: Vec<u8>,
    committee: Vec<PublicKey>,
    epoch: u64,
}

impl<E: commonware_storage::Context + Spawner> ShardFollower<E> {
    /// Follows `app`'s shard of `network`, certified by `committee` (epoch 0).
    pub fn new(app: ShardApp<E>, network: &NetworkId, committee: Vec<PublicKey>) -> Self {
        let namespace = namespace(network, ChainRef::Shard(app.shard()), 0);
        ShardFollower {
            app,
            namespace,
            committee,
            epoch: 0,
        }
    }

    /// The application this follower fills.
    pub fn app(&self) -> &ShardApp<E> {
        &self.app
    }

    /// Verifies a segment and returns its blocks above the followed height, in order, each
    /// with its certificate if it has one (the last). Nothing is applied.
    pub fn check_segment(
        &self,
        blocks: &[ShardBlock],
        certificate: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Finalized<ShardChainBlock>>, FollowError> {
        let followed = self.app.finalized_height();
        let Some(last) = blocks.last() else {
            return Ok(Vec::new());
        };
        if last.header.height <= followed {
            return Ok(Vec::new());
        }
        verify_finalization_certificate(
            certificate,
            &self.namespace,
            &self.committee,
            &last.header.hash(),
            self.epoch,
            rng,
        )?;
        let chain = ChainRef::Shard(self.app.shard());
        for pair in blocks.windows(2) {
            let (a, b) = (&pair[0].header, &pair[1].header);
            if b.height != a.height + 1 || b.parent != a.hash() {
                return Err(FollowError::Linkage(b.height));
            }
        }
        let fresh: Vec<&ShardBlock> = blocks
            .iter()
            .filter(|b| b.header.height > followed)
            .collect();
        if fresh[0].header.height != followed + 1 {
            return Err(FollowError::Linkage(fresh[0].header.height));
        }
        let n = fresh.len();
        let mut out = Vec::with_capacity(n);
        for (i, b) in fresh.into_iter().enumerate() {
            if b.header.chain != chain {
                return Err(FollowError::Linkage(b.header.height));
            }
            if !b.body_matches() {
                return Err(FollowError::Mismatch(b.header.height));
            }
            out.push(Finalized {
                block: ShardChainBlock(b.clone()),
                certificate: (i + 1 == n).then(|| certificate.to_vec()),
            });
        }
        Ok(out)
    }

    /// Applies checked blocks ([`Self::check_segment`]) in order; blocks already applied are
    /// skipped. Waits for the beacon view where a block needs it.
    pub async fn apply(&mut self, blocks: Vec<Finalized<ShardChainBlock>>) {
        for f in blocks {
            self.app.finalized(f).await;
        }
    }
}
