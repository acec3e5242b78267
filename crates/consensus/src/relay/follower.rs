//! Following the beacon chain without voting on it: certified segments of finalized blocks.

use crate::{
    beacon::{ApplyError, BeaconBlock, FinalizedCrosslinks},
    certificate::{CertError, verify_finalization_certificate},
    chain::namespace,
};
use rand_core::CryptoRng;
use vision_types::{PublicKey, block::ChainRef};

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
