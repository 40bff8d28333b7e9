//! Handing memory a job has freed back to the system at once. The allocator
//! (mimalloc) keeps freed pages for a while (about a second) before it
//! returns them, to reuse them cheaply. Two frees of a job are large and
//! followed at once by large allocations that would add the freed pages to
//! the run's peak memory: the chunk states, merged just before scoring, and
//! the job's merged state (hundreds of MB when every invoice is a new
//! customer), freed just before the result tables are written.

// Linked in for `mi_collect`, whichever allocator the binary declares.
extern crate mimalloc as _;

extern "C" {
    /// mimalloc's `void mi_collect(bool force)`: frees what the calling
    /// thread's heap holds and, with `force`, returns every page pending
    /// return to the system now rather than after the delay.
    fn mi_collect(force: bool);
}

/// The fewest customers of a job whose freed memory is handed back before
/// and after scoring: below it (the 45 thousand of a 10x file or of a day
/// added to its cache) the states are tens of MB, and handing their pages
/// back costs more than the peak it saves.
pub const RELEASE_FROM_CUSTOMERS: usize = 1 << 18;

/// Returns the pages freed so far and waiting in the allocator to the system.
pub fn release() {
    // SAFETY: `mi_collect` takes no pointer and may be called from any
    // thread at any time; it only returns memory no allocation uses.
    unsafe { mi_collect(true) }
}
