//! Serving followers from a chain's archive: a node keeps only a window of recent finalized
//! blocks in memory ([`crate::served::ServedBlocks`]); a follower asking for older heights (an
//! API node or non-beacon validator restarted after a long stop, or one started late) gets
//! them from marshal's on-disk archive of every finalized block and certificate instead.

use crate::{
    adapter::Envelope,
    app::ChainBlock,
    certificate::{Scheme, encode_certificate},
};
use commonware_consensus::{
    marshal::{core::Mailbox, standard::Standard},
    types::Height,
};
use commonware_cryptography::Digestible;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// Archive reads served at once per node; further requests are dropped (the follower asks
/// again at its next tick), so lagging followers cannot queue work on the consensus engine.
pub const MAX_ARCHIVE_READS: usize = 2;

/// Read access to one chain's archive of finalized blocks and finalization certificates
/// (marshal's), given to the chain's application when its engine starts
/// ([`crate::ChainApp::attach_archive`]). Cheap to clone.
pub struct ChainArchive<B: ChainBlock> {
    marshal: Mailbox<Scheme, Standard<Envelope<B>>>,
    reads: Arc<AtomicUsize>,
}

impl<B: ChainBlock> Clone for ChainArchive<B> {
    fn clone(&self) -> Self {
        ChainArchive {
            marshal: self.marshal.clone(),
            reads: self.reads.clone(),
        }
    }
}

/// A read slot of a [`ChainArchive`] (released on drop).
pub struct ArchiveRead<B: ChainBlock> {
    archive: ChainArchive<B>,
}

impl<B: ChainBlock> Drop for ArchiveRead<B> {
    fn drop(&mut self) {
        self.archive.reads.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<B: ChainBlock> ChainArchive<B> {
    pub(crate) fn new(marshal: Mailbox<Scheme, Standard<Envelope<B>>>) -> Self {
        ChainArchive {
            marshal,
            reads: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A read slot for a follower asking from `from` when the in-memory window does not
    /// cover it (see [`crate::served::ServedBlocks::is_older`]); `None` otherwise, without
    /// an archive, or while [`MAX_ARCHIVE_READS`] reads are running.
    pub(crate) fn read_for(
        archive: &Option<Self>,
        window: &crate::served::ServedBlocks<B>,
        from: u64,
        finalized: u64,
    ) -> Option<ArchiveRead<B>> {
        if !window.is_older(from, finalized) {
            return None;
        }
        archive.as_ref()?.try_read()
    }

    /// A read slot, or `None` while [`MAX_ARCHIVE_READS`] reads are running.
    pub fn try_read(&self) -> Option<ArchiveRead<B>> {
        self.reads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_ARCHIVE_READS).then_some(n + 1)
            })
            .ok()
            .map(|_| ArchiveRead {
                archive: self.clone(),
            })
    }
}

impl<B: ChainBlock> ArchiveRead<B> {
    /// Consecutive finalized blocks from height `from` (at least 1), at most `max_blocks` and
    /// about `max_bytes`, up to the highest one stored with its own finalization certificate;
    /// with that certificate. `None` if the archive has no such block (not finalized here yet,
    /// or a gap). The same answer as [`crate::served::ServedBlocks::segment_from`] gives for
    /// the blocks it still holds.
    pub async fn segment_from(
        &self,
        from: u64,
        max_blocks: usize,
        max_bytes: usize,
    ) -> Option<(Vec<B>, Vec<u8>)> {
        let marshal = &self.archive.marshal;
        let mut out = Vec::new();
        let mut best = None;
        let mut bytes = 0usize;
        for height in from.max(1)..from.max(1).saturating_add(max_blocks as u64) {
            let Some(stored) = marshal.get_block(Height::new(height)).await else {
                break;
            };
            let digest = stored.digest();
            let block = stored.inner().0.clone();
            bytes += block.encode_size();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            let certificate = marshal
                .get_finalization(Height::new(height))
                .await
                .filter(|f| f.proposal.payload == digest)
                .map(|f| encode_certificate(&f));
            out.push(block);
            if let Some(c) = certificate {
                bytes += c.len();
                best = Some((out.len(), c));
            }
        }
        let (len, certificate) = best?;
        out.truncate(len);
        Some((out, certificate))
    }
}
