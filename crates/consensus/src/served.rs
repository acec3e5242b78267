//! Recent finalized blocks with their certificates, kept to serve followers
//! ([`crate::relay`]): a bounded window answering "blocks from height h, certified".

use crate::app::ChainBlock;
use std::collections::VecDeque;

/// A window of consecutive finalized blocks (ascending height), each with its own
/// finalization certificate when the node holds one. Bounded by a block count and a byte
/// budget (oldest dropped first).
pub(crate) struct ServedBlocks<B> {
    blocks: VecDeque<(B, Option<Vec<u8>>, usize)>,
    bytes: usize,
    max_blocks: usize,
    max_bytes: usize,
}

impl<B: ChainBlock> ServedBlocks<B> {
    /// An empty window of at most `max_blocks` blocks and about `max_bytes` bytes.
    pub(crate) fn new(max_blocks: usize, max_bytes: usize) -> Self {
        ServedBlocks {
            blocks: VecDeque::new(),
            bytes: 0,
            max_blocks: max_blocks.max(1),
            max_bytes,
        }
    }

    /// Appends the next finalized block. A block that does not extend the window (a gap after
    /// a restart) starts a new window.
    pub(crate) fn push(&mut self, block: B, certificate: Option<Vec<u8>>) {
        if let Some((last, _, _)) = self.blocks.back() {
            if block.height() <= last.height() {
                return;
            }
            if block.height() != last.height() + 1 {
                self.blocks.clear();
                self.bytes = 0;
            }
        }
        let size = block.encode_size() + certificate.as_ref().map_or(0, Vec::len);
        self.bytes += size;
        self.blocks.push_back((block, certificate, size));
        while self.blocks.len() > self.max_blocks
            || (self.bytes > self.max_bytes && self.blocks.len() > 1)
        {
            if let Some((_, _, s)) = self.blocks.pop_front() {
                self.bytes -= s;
            }
        }
    }

    /// Whether a follower asking for blocks from `from` must be served from the archive: `from`
    /// is at or below `finalized` (something to send) but below the window (not retained,
    /// e.g. after a restart or a long absence of the follower).
    pub(crate) fn is_older(&self, from: u64, finalized: u64) -> bool {
        from <= finalized
            && self
                .blocks
                .front()
                .is_none_or(|(b, _, _)| from < b.height())
    }

    /// `(height, block)` of the retained blocks, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &B> {
        self.blocks.iter().map(|(b, _, _)| b)
    }

    /// Finalized blocks from height `from` up to the highest one, within `max_blocks` and
    /// about `max_bytes`, that comes with its own certificate; with that certificate. `None`
    /// if there is no such block (nothing new, or not retained).
    pub(crate) fn segment_from(
        &self,
        from: u64,
        max_blocks: usize,
        max_bytes: usize,
    ) -> Option<(Vec<B>, Vec<u8>)> {
        let first = self.blocks.front()?.0.height();
        if from < first {
            return None;
        }
        let start = usize::try_from(from - first).ok()?;
        let mut out = Vec::new();
        let mut best = None;
        let mut bytes = 0usize;
        for (block, cert, size) in self.blocks.iter().skip(start).take(max_blocks) {
            bytes += size;
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(block.clone());
            if let Some(c) = cert {
                best = Some((out.len(), c.clone()));
            }
        }
        let (len, cert) = best?;
        out.truncate(len);
        Some((out, cert))
    }
}
