//! Handing memory a job has freed back to the system at once. The allocator
//! (mimalloc) keeps freed pages for a while (about a second) before it
//! returns them, to reuse them cheaply. Two frees of a job are large and
//! followed at once by large allocations that would add the freed pages to
//! the run's peak memory: the chunk states, merged just before scoring, and
//! the job's merged state (hundreds of MB when every invoice is a new
//! customer), freed just before the result tables are written.
//!
//! A standalone coordinator runs job after job: there the pages a job frees
//! are kept for the next one (`--keep-freed-memory`, see
//! [`keep_between_jobs`]) instead of being returned and faulted in again
//! (the kernel zeroes each fresh page), and returned once no job has run
//! for that long ([`IdleMemory`]).

use std::ffi::{c_int, c_long};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::retention::Activity;

// Linked in for `mi_collect`, whichever allocator the binary declares.
extern crate mimalloc as _;

extern "C" {
    /// mimalloc's `void mi_collect(bool force)`: frees what the calling
    /// thread's heap holds and, with `force`, returns every page pending
    /// return to the system now rather than after the delay.
    fn mi_collect(force: bool);
    /// mimalloc's `void mi_option_set(mi_option_t option, long value)`.
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in mimalloc.h (the same in mimalloc 2 and 3):
/// how long, in milliseconds, a freed page waits before it is returned.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// How long freed pages are kept for the next job, in milliseconds (0:
/// not kept; see [`keep_between_jobs`]).
static KEPT_FOR_MS: AtomicU64 = AtomicU64::new(0);

/// Keeps the pages jobs free for `kept_for` (instead of about a second),
/// and lets jobs of fewer than `RELEASE_KEPT_FROM_CUSTOMERS` keep theirs
/// through scoring: the next allocations reuse them. For a
/// process that runs job after job (`rfm-coordinator`); `rfm run` runs one
/// job and returns them. Zero keeps nothing (the allocator's own delay).
pub fn keep_between_jobs(kept_for: Duration) {
    let ms = kept_for.as_millis().min(c_long::MAX as u128) as c_long;
    if ms == 0 {
        return;
    }
    // SAFETY: `mi_option_set` takes no pointer; it may be called at any
    // time from any thread (mimalloc reads the option as it frees).
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, ms) }
    KEPT_FOR_MS.store(ms as u64, Ordering::Relaxed);
}

/// Whether freed pages are kept for the next job.
fn kept() -> Option<Duration> {
    match KEPT_FOR_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// The reaper's memory of what it returned: the pages kept for the next
/// job go back to the system once no job has run for the time they are
/// kept, once per job that ended (however short, and whether or not a
/// tick saw it run).
#[derive(Debug, Default)]
pub struct IdleMemory {
    /// When the last job seen ended (remembered once the job table has
    /// dropped it: `--finished-job-ttl` may be shorter than the time pages
    /// are kept).
    last_ended: Option<Instant>,
    /// When the last job whose pages went back ended (`None`: none yet).
    returned_after: Option<Instant>,
}

impl IdleMemory {
    /// Given what the jobs are doing now, whether the kept pages are due to
    /// go back: the last job ended long enough ago and its pages have not
    /// gone back yet. A true answer counts as their return: the caller
    /// hands them back ([`release`], off the async runtime: returning
    /// hundreds of MB takes a while).
    pub fn tick(&mut self, activity: Activity) -> bool {
        let Activity::Idle { last_ended } = activity else {
            return false;
        };
        self.last_ended = self.last_ended.max(last_ended);
        let Some(ended) = self.last_ended else {
            return false;
        };
        match kept() {
            Some(kept_for) if self.returned_after != Some(ended) && ended.elapsed() >= kept_for => {
                self.returned_after = Some(ended);
                true
            }
            _ => false,
        }
    }
}

/// The fewest customers of a job whose freed memory is handed back before
/// and after scoring: below it (the 45 thousand of a 10x file or of a day
/// added to its cache) the states are tens of MB, and handing their pages
/// back costs more than the peak it saves.
pub const RELEASE_FROM_CUSTOMERS: usize = 1 << 18;

/// The same where pages are kept between jobs (`--keep-freed-memory`):
/// there a job up to about a million customers keeps its pages (at 438,000
/// customers its peak is about 110 MB higher, and its submission 3–4 %
/// faster); a larger one hands them back, as its peak grows with them
/// (about 400 MB more at two million customers).
pub const RELEASE_KEPT_FROM_CUSTOMERS: usize = 1 << 20;

/// Whether a job of `customers` hands the pages it frees back to the
/// system before and after scoring.
pub fn releases(customers: usize) -> bool {
    let from = match kept() {
        None => RELEASE_FROM_CUSTOMERS,
        Some(_) => RELEASE_KEPT_FROM_CUSTOMERS,
    };
    customers >= from
}

/// Returns the pages freed so far and waiting in the allocator to the system.
pub fn release() {
    // SAFETY: `mi_collect` takes no pointer and may be called from any
    // thread at any time; it only returns memory no allocation uses.
    unsafe { mi_collect(true) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept pages are due once per job that ended, after it has been
    /// gone for the time they are kept, and never while a job runs.
    #[test]
    fn kept_pages_go_back_once_after_the_idle_time() {
        assert!(releases(RELEASE_FROM_CUSTOMERS));
        keep_between_jobs(Duration::from_millis(200));
        assert!(!releases(RELEASE_FROM_CUSTOMERS) && releases(RELEASE_KEPT_FROM_CUSTOMERS));
        let ended_now = || Activity::Idle {
            last_ended: Some(Instant::now()),
        };
        let wait = |ms| std::thread::sleep(Duration::from_millis(ms));
        let mut memory = IdleMemory::default();
        let no_job = Activity::Idle { last_ended: None };
        assert!(!memory.tick(no_job), "nothing to return at start");
        assert!(!memory.tick(Activity::Running), "a job runs");
        let first = ended_now();
        assert!(!memory.tick(first), "the job just ended");
        wait(100);
        assert!(!memory.tick(first), "idle for less than the time kept");
        wait(150);
        assert!(memory.tick(first), "idle for longer: returned");
        assert!(!memory.tick(first), "returned once");
        assert!(!memory.tick(Activity::Running), "never while a job runs");
        // A job no tick saw running: its end is newer than the last one.
        let second = ended_now();
        assert!(!memory.tick(second), "idle for less than the time kept");
        wait(250);
        assert!(memory.tick(second), "a job that ended since: returned");
        // A job dropped from the table before its pages went back.
        assert!(!memory.tick(ended_now()));
        wait(250);
        assert!(memory.tick(no_job), "returned after the job was dropped");
        assert!(!memory.tick(no_job), "once");
    }
}
