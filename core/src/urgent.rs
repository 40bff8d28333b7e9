//! Urgent jobs of the global compute pool: work that must not wait behind
//! the chunks queued on the pool, such as the coordinator's merges of
//! computed states (a state waiting for its merge is memory held, and the
//! merges that fall behind run one after another once the chunks are done,
//! on one core).
//!
//! rayon has no priorities: a job sent to the pool from outside waits until
//! a thread is done with the folds it runs, and a chunk's folds keep their
//! threads until every sub-range of the chunk is taken. So [`run`] queues its
//! job here as well, and a chunk's fold runs a waiting job between two of its
//! sub-ranges ([`run_waiting`]); a job that no fold takes runs as an ordinary
//! job of the pool, as before.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Jobs given to [`run`] that no thread has taken yet.
static WAITING: Mutex<VecDeque<Job>> = Mutex::new(VecDeque::new());
/// How many jobs [`WAITING`] holds: read without the lock by every fold
/// between two sub-ranges.
static WAITING_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` on a thread of the global rayon pool ahead of the work queued
/// there, and returns what it returns (a panic in `f` resumes here). Call it
/// from outside the pool (a blocking thread): it waits for `f`.
pub fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    // A thread of the pool waiting here would hold a thread the job may need.
    debug_assert!(
        rayon::current_thread_index().is_none(),
        "urgent::run is called from outside the compute pool"
    );
    let (done, outcome) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = done.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    WAITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push_back(job);
    WAITING_COUNT.fetch_add(1, Ordering::Release);
    // Taken by a fold first, or else by this job of the pool: one each, so
    // every waiting job runs even when no fold ever looks.
    rayon::spawn(|| {
        run_waiting();
    });
    match outcome.recv() {
        Ok(Ok(value)) => value,
        Ok(Err(panicked)) => panic::resume_unwind(panicked),
        // The job is dropped unrun only if the process is going down.
        Err(_) => panic!("an urgent job of the compute pool was dropped before it ran"),
    }
}

/// Runs one job that waits in [`run`], if any; returns whether it ran one.
/// A chunk's folds call it between two sub-ranges: when none waits, it costs
/// one atomic load.
#[inline]
pub fn run_waiting() -> bool {
    if WAITING_COUNT.load(Ordering::Acquire) == 0 {
        return false;
    }
    let job = WAITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pop_front();
    match job {
        Some(job) => {
            WAITING_COUNT.fetch_sub(1, Ordering::Release);
            job();
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_job_returns_its_value_and_its_panic() {
        assert_eq!(run(|| 6 * 7), 42);
        let panicked = std::thread::spawn(|| run(|| -> u8 { panic!("in the job") })).join();
        let message = panicked.expect_err("the panic resumes in the caller");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"in the job"));
        // The pool and the queue are still usable.
        assert_eq!(run(|| 1), 1);
    }

    /// With every thread of the pool held by folds that look for urgent
    /// jobs, a job still runs, on one of them, while they hold it: the folds
    /// take it. (Were they not to, it would run only once they gave up.)
    #[test]
    fn folds_run_a_job_that_waits_while_they_hold_the_pool() {
        let threads = rayon::current_num_threads();
        let release = Arc::new(AtomicBool::new(false));
        let folds_ended = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = mpsc::channel();
        let folds = {
            let (release, folds_ended) = (release.clone(), folds_ended.clone());
            std::thread::spawn(move || {
                rayon::broadcast(|_| {
                    started_tx.send(()).unwrap();
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while !release.load(Ordering::Acquire) && Instant::now() < deadline {
                        run_waiting();
                        std::thread::yield_now();
                    }
                    folds_ended.fetch_add(1, Ordering::AcqRel);
                });
            })
        };
        for _ in 0..threads {
            started_rx.recv().unwrap();
        }
        // Every thread is in a fold now: only a fold can run the job.
        let (ran_on, ended_before) = {
            let folds_ended = folds_ended.clone();
            run(move || {
                (
                    rayon::current_thread_index(),
                    folds_ended.load(Ordering::Acquire),
                )
            })
        };
        assert!(ran_on.is_some(), "the job ran on a thread of the pool");
        assert_eq!(ended_before, 0, "the job ran while the folds held the pool");
        release.store(true, Ordering::Release);
        folds.join().unwrap();
    }
}
