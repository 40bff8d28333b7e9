//! Graceful shutdown of a coordinator (SIGINT/SIGTERM of `rfm-coordinator`):
//! it stops taking jobs (SubmitJob is refused with UNAVAILABLE, `/readyz`
//! answers 503), lets the running jobs finish within the drain timeout and
//! fails those still running then, waits a short grace for the submitters'
//! final result fetch, and only then closes its gRPC port.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rfm_proto::v1::ErrorClass;

use crate::Coordinator;

/// After the last job ended, its submitter gets this long to fetch the result.
pub const FETCH_GRACE: Duration = Duration::from_secs(5);
/// Jobs failed at the drain timeout get this long to record their end (their
/// failed run in the database, their result for the watchers).
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The gRPC server gets this long to close its connections.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How often the drain looks at the jobs.
const POLL: Duration = Duration::from_millis(50);

/// How a drain went.
#[derive(Debug, Default)]
pub struct DrainOutcome {
    /// Jobs that were running when the drain began.
    pub running_at_start: usize,
    /// Jobs failed because they were still running at the drain timeout.
    pub stopped: Vec<String>,
    /// Jobs that had not even recorded their end when the port closed.
    pub unfinished: usize,
}

impl Coordinator {
    fn say(&self, message: &str) {
        tracing::info!("rfm-coordinator: {message}");
    }

    /// Refuses new jobs from now on (and `/readyz` answers 503); the first
    /// step of [`Coordinator::drain`].
    pub fn stop_taking_jobs(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The ids of the running jobs, for a log line written when the process
    /// has to stop at once.
    pub fn jobs_running(&self) -> impl Fn() -> String + Send + 'static {
        let jobs = self.jobs.clone();
        move || {
            let ids: Vec<String> = jobs.running().iter().map(|j| j.id.clone()).collect();
            if ids.is_empty() {
                "none".into()
            } else {
                ids.join(", ")
            }
        }
    }

    /// Whether a submitter may still fetch the result of a job that ended
    /// less than [`FETCH_GRACE`] ago.
    fn result_awaited(&self) -> bool {
        self.jobs
            .list()
            .iter()
            .any(|j| j.result_awaited() && j.ended_ago().is_some_and(|ago| ago < FETCH_GRACE))
    }

    /// Shuts down gracefully: no new jobs, the running ones get `timeout` to
    /// finish (then fail with "the coordinator shut down"), their submitters
    /// get [`FETCH_GRACE`] to fetch the results, then the port closes.
    pub async fn drain(self, timeout: Duration) -> DrainOutcome {
        self.stop_taking_jobs();
        let started = Instant::now();
        let mut outcome = DrainOutcome {
            running_at_start: self.jobs.running().len(),
            ..Default::default()
        };
        self.say(&format!(
            "shutting down: no new jobs; {} running job(s) get up to {:.1} s (--drain-timeout) to finish",
            outcome.running_at_start,
            timeout.as_secs_f64()
        ));
        while !self.jobs.running().is_empty() {
            if started.elapsed() >= timeout {
                for job in self.jobs.running() {
                    job.stop(
                        ErrorClass::Cluster,
                        format!(
                            "the coordinator shut down before the job finished (--drain-timeout {:.1} s); submit it again",
                            timeout.as_secs_f64()
                        ),
                    );
                    outcome.stopped.push(job.id.clone());
                }
                self.say(&format!(
                    "drain timeout: failed the job(s) still running: {}",
                    outcome.stopped.join(", ")
                ));
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let stopped_at = Instant::now();
        while !self.jobs.running().is_empty() && stopped_at.elapsed() < STOP_GRACE {
            tokio::time::sleep(POLL).await;
        }
        while self.result_awaited() {
            tokio::time::sleep(POLL).await;
        }
        outcome.unfinished = self.jobs.running().len();
        let _ = self.shutdown.send(true);
        self.reaper.abort();
        self.say(&format!(
            "closing the port after {:.1} s of drain",
            started.elapsed().as_secs_f64()
        ));
        let mut server = self.server;
        if tokio::time::timeout(CLOSE_GRACE, &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        outcome
    }
}
