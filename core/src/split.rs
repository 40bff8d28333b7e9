//! Where a running chunk ends. A CSV chunk is read sub-range by sub-range
//! (see [`crate::engine::compute_chunk_split`]); while it runs, its owner may
//! be asked to give away the sub-ranges it has not started
//! ([`ChunkSplit::split`]): the chunk then ends at a sub-range boundary and
//! the rest becomes a chunk of its own, run elsewhere. A record belongs to
//! the chunk in which it starts, by the same rule at every byte offset, so
//! the two chunks read exactly the records the whole one would: the merged
//! result is the same, bit for bit.
//!
//! This is how a job's tail is shared out: when one worker has nothing left
//! and another is still reading, the busy one keeps what it has started and
//! half of what it has not, the way a rayon thread that runs dry steals
//! half of another's work.

use std::sync::Mutex;

use crate::engine::Chunk;

/// The end of one running chunk, which a split may move earlier.
#[derive(Debug)]
pub struct ChunkSplit {
    start: u64,
    sub_range: u64,
    cut: Mutex<Cut>,
}

#[derive(Debug)]
struct Cut {
    /// Where the chunk ends now.
    end: u64,
    /// The end of the furthest sub-range started (the chunk's start when
    /// none has).
    reached: u64,
    /// Read to the end: no split any more.
    closed: bool,
}

impl ChunkSplit {
    /// A chunk read in sub-ranges of `sub_range` bytes from its start.
    pub fn new(chunk: Chunk, sub_range: usize) -> ChunkSplit {
        ChunkSplit {
            start: chunk.start,
            sub_range: (sub_range as u64).max(1),
            cut: Mutex::new(Cut {
                end: chunk.end,
                reached: chunk.start,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cut> {
        self.cut.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sub-range size the chunk is read in.
    pub fn sub_range(&self) -> usize {
        self.sub_range as usize
    }

    /// Whether the sub-range `[start, end)` is still the chunk's to read;
    /// if it is, it counts as started (a split keeps it).
    pub(crate) fn begin(&self, start: u64, end: u64) -> bool {
        let mut cut = self.lock();
        if cut.closed || start >= cut.end {
            return false;
        }
        cut.reached = cut.reached.max(end);
        true
    }

    /// Ends the chunk's reading: no split after this. Its end as read.
    pub(crate) fn close(&self) -> u64 {
        let mut cut = self.lock();
        cut.closed = true;
        cut.end
    }

    /// Where the chunk ends (as read, once closed).
    pub fn end(&self) -> u64 {
        self.lock().end
    }

    /// Gives away the second half of the sub-ranges not started (the larger
    /// half when they are odd): the chunk now ends at the returned offset,
    /// and the bytes from there to its former end are another chunk's.
    /// `None` when nothing is left to give (every sub-range started, the
    /// reading over), or when giving would leave the chunk empty.
    pub fn split(&self) -> Option<u64> {
        let mut cut = self.lock();
        if cut.closed || cut.reached >= cut.end {
            return None;
        }
        let unstarted = (cut.end - cut.reached).div_ceil(self.sub_range);
        let at = cut.reached + unstarted / 2 * self.sub_range;
        if at <= self.start || at >= cut.end {
            return None;
        }
        cut.end = at;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn chunk(start: u64, end: u64) -> Chunk {
        Chunk {
            file_index: 0,
            start,
            end,
        }
    }

    #[test]
    fn a_chunk_not_started_gives_away_the_larger_half() {
        let split = ChunkSplit::new(chunk(100, 100 + 10 * MIB), MIB as usize);
        assert_eq!(split.split(), Some(100 + 5 * MIB));
        assert_eq!(split.split(), Some(100 + 2 * MIB));
        assert_eq!(split.split(), Some(100 + MIB));
        assert_eq!(
            split.split(),
            None,
            "one sub-range is never given away whole"
        );
        assert_eq!(split.close(), 100 + MIB);
    }

    #[test]
    fn started_sub_ranges_stay_and_later_ones_are_skipped() {
        let split = ChunkSplit::new(chunk(0, 7 * MIB + 5), MIB as usize);
        assert!(split.begin(0, MIB));
        assert!(split.begin(MIB, 2 * MIB));
        // Six sub-ranges not started (the last one 5 bytes): three are given.
        assert_eq!(split.split(), Some(5 * MIB));
        assert!(split.begin(2 * MIB, 3 * MIB));
        assert!(split.begin(4 * MIB, 5 * MIB));
        assert!(!split.begin(5 * MIB, 6 * MIB));
        assert!(!split.begin(7 * MIB, 7 * MIB + 5));
        // Started out of order: the split point lies past the furthest one.
        assert_eq!(split.split(), None);
        assert_eq!(split.close(), 5 * MIB);
    }

    #[test]
    fn a_closed_chunk_cannot_be_split() {
        let split = ChunkSplit::new(chunk(0, 8 * MIB), MIB as usize);
        assert!(split.begin(0, MIB));
        assert_eq!(split.close(), 8 * MIB);
        assert_eq!(split.split(), None);
        assert!(!split.begin(MIB, 2 * MIB));
        assert_eq!(split.end(), 8 * MIB);
    }

    #[test]
    fn the_last_unstarted_sub_range_goes_when_one_runs() {
        let split = ChunkSplit::new(chunk(0, 2 * MIB), MIB as usize);
        assert!(split.begin(0, MIB));
        assert_eq!(split.split(), Some(MIB));
        assert_eq!(split.split(), None);
    }
}
