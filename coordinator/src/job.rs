//! A job's shared state: its status (what `GetJob` answers), the stream of
//! events watchers receive, the stop signal (a cancel, or the coordinator
//! shutting down) and, once finished, its result. The event stream and the
//! stop signal serve only a running job: they are freed when it ends, so a
//! finished job kept for `GetJobResult` holds little more than its result:
//! its report and, when it succeeded, its scored tables (served over Flight).
//! A job ends once, through [`Job::finish`] with a typed [`JobOutcome`].

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_proto::is_terminal;
use rfm_proto::v1::{
    ErrorClass, JobEvent, JobResult, JobState, JobStatus, ResultTable, ScoredResult,
};
use tokio::sync::{broadcast, watch};

/// Where a finished job's run went in the database.
#[derive(Clone, Debug, Default)]
pub struct Publication {
    /// The database target, when the run was published.
    pub published_to: String,
    /// Why publishing failed, when it did.
    pub publish_error: String,
}

/// How a job ended: what its completion step hands to [`Job::finish`].
#[derive(Debug)]
pub enum JobOutcome {
    /// Scored: its report, its result (its submitter fetches the tables over
    /// Flight) and where its run was published.
    Succeeded {
        report: RunReport,
        result: Arc<RfmResult>,
        publication: Publication,
    },
    /// Failed, or cancelled (class [`ErrorClass::Cancelled`]), with its
    /// report once one was made.
    Failed {
        class: ErrorClass,
        error: String,
        report: Option<RunReport>,
    },
}

impl JobOutcome {
    /// The job state it ends in.
    pub fn state(&self) -> JobState {
        match self {
            JobOutcome::Succeeded { .. } => JobState::Succeeded,
            JobOutcome::Failed {
                class: ErrorClass::Cancelled,
                ..
            } => JobState::Cancelled,
            JobOutcome::Failed { .. } => JobState::Failed,
        }
    }
}

/// A finished job's result: what `GetJobResult` answers, and the scored
/// tables of a succeeded job.
struct Finished {
    answer: JobResult,
    tables: Option<Arc<RfmResult>>,
    /// The memory the tables hold, about ([`RfmResult::heap_bytes`]).
    bytes: u64,
}

/// Events a watcher may fall behind by before it is sent the current status
/// instead (the ring is allocated at submission: about 190 KiB).
const EVENT_BUFFER: usize = 1024;

/// Why a job is to stop before its end: the class and message it fails with.
pub type StopReason = (ErrorClass, String);

/// What only a running job needs.
struct Live {
    events: broadcast::Sender<JobEvent>,
    stop: watch::Sender<Option<StopReason>>,
}

/// One submitted job.
pub struct Job {
    pub id: String,
    /// The client that submitted it (`None`: a coordinator without credentials).
    pub owner: Option<String>,
    started: Instant,
    status: Mutex<JobStatus>,
    /// Dropped when the job ends (after its final event).
    live: Mutex<Option<Live>>,
    result: Mutex<Option<Finished>>,
    finished_at: Mutex<Option<Instant>>,
    /// Its submitter has not fetched the result yet.
    awaited: AtomicBool,
    /// The result tables sent in full so far (a bit each, see
    /// [`table_sent`](Job::table_sent)).
    tables_sent: AtomicU8,
}

fn stage_name(state: JobState) -> &'static str {
    match state {
        JobState::Unspecified => "unknown",
        JobState::Running => "running",
        JobState::Merging => "merging",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

impl Job {
    pub fn new(id: String, tasks: u32, bytes: u64) -> Job {
        let status = JobStatus {
            job_id: id.clone(),
            state: JobState::Running as i32,
            stage: stage_name(JobState::Running).into(),
            tasks_total: tasks,
            bytes_total: bytes,
            ..Default::default()
        };
        crate::metrics::METRICS.job_submitted();
        Job {
            id,
            owner: None,
            started: Instant::now(),
            status: Mutex::new(status),
            live: Mutex::new(Some(Live {
                events: broadcast::channel(EVENT_BUFFER).0,
                stop: watch::channel(None).0,
            })),
            result: Mutex::new(None),
            finished_at: Mutex::new(None),
            awaited: AtomicBool::new(true),
            tables_sent: AtomicU8::new(0),
        }
    }

    /// The job, owned by `owner` (only it and the admin see it).
    pub fn owned_by(mut self, owner: Option<String>) -> Job {
        self.owner = owner;
        self
    }

    fn lock_status(&self) -> MutexGuard<'_, JobStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_live(&self) -> MutexGuard<'_, Option<Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends an event to the watchers, while the job runs.
    fn send(&self, event: JobEvent) {
        if let Some(live) = self.lock_live().as_ref() {
            let _ = live.events.send(event);
        }
    }

    /// The current status.
    pub fn status(&self) -> JobStatus {
        let mut s = self.lock_status().clone();
        if !is_terminal(s.state) {
            s.elapsed_seconds = self.started.elapsed().as_secs_f64();
        }
        s
    }

    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Changes the status and tells the watchers (with an optional message).
    pub fn update(&self, message: &str, change: impl FnOnce(&mut JobStatus)) {
        let mut s = self.lock_status();
        if is_terminal(s.state) {
            return;
        }
        let before = s.clone();
        change(&mut s);
        crate::metrics::METRICS.progress(&before, &s);
        s.elapsed_seconds = self.started.elapsed().as_secs_f64();
        let event = JobEvent {
            status: Some(s.clone()),
            message: message.to_string(),
        };
        drop(s);
        self.send(event);
    }

    pub fn set_state(&self, state: JobState, message: &str) {
        self.update(message, |s| {
            s.state = state as i32;
            s.stage = stage_name(state).into();
        });
    }

    /// Ends the job with `outcome`: stores its result, then sends the final
    /// event (so a watcher that sees the end can fetch the result at once).
    /// A job that has ended already stays as it ended.
    pub fn finish(&self, outcome: JobOutcome) {
        let state = outcome.state();
        let (class, error, report, tables, publication) = match outcome {
            JobOutcome::Succeeded {
                report,
                result,
                publication,
            } => (
                ErrorClass::None,
                String::new(),
                Some(report),
                Some(result),
                publication,
            ),
            JobOutcome::Failed {
                class,
                error,
                report,
            } => (class, error, report, None, Publication::default()),
        };
        let message = if error.is_empty() {
            stage_name(state).to_string()
        } else {
            format!("{}: {error}", stage_name(state))
        };
        let bytes = tables.as_ref().map_or(0, |r| r.heap_bytes());
        let mut s = self.lock_status();
        if is_terminal(s.state) {
            return;
        }
        s.state = state as i32;
        s.stage = stage_name(state).into();
        s.error = error;
        s.error_class = class as i32;
        s.tasks_running = 0;
        s.result_bytes = bytes;
        s.elapsed_seconds = self.started.elapsed().as_secs_f64();
        let status = s.clone();
        drop(s);
        crate::metrics::METRICS.job_ended(state, status.elapsed_seconds);
        *self.finished_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if let Some(r) = &tables {
            tracing::debug!(
                "job {}: its result of {} customers holds about {:.1} MiB",
                self.id,
                r.customers.len(),
                bytes as f64 / 1048576.0
            );
        }
        let scored = tables.as_ref().map(|r| ScoredResult {
            as_of: r.as_of,
            latest_purchase: r.latest_purchase,
            customers: r.customers.len() as u64,
            segments: r.segments.len() as u64,
        });
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(Finished {
            answer: JobResult {
                status: Some(status.clone()),
                report: report.as_ref().map(rfm_proto::report::to_proto),
                scored,
                published_to: publication.published_to,
                publish_error: publication.publish_error,
            },
            tables,
            bytes,
        });
        // Watchers still receive the final event once the sender is gone.
        if let Some(live) = self.lock_live().take() {
            let _ = live.events.send(JobEvent {
                status: Some(status),
                message,
            });
        }
    }

    /// How long ago the job ended, if it has.
    pub fn ended_ago(&self) -> Option<std::time::Duration> {
        self.ended_at().map(|t| t.elapsed())
    }

    /// When the job ended, if it has.
    pub fn ended_at(&self) -> Option<std::time::Instant> {
        *self.finished_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The result, once the job has ended; fetching the result of a job
    /// without tables ends the wait of a draining coordinator for this job's
    /// submitter (else fetching its customers does).
    pub fn result(&self) -> Option<JobResult> {
        let result = self.result.lock().unwrap_or_else(|e| e.into_inner());
        let finished = result.as_ref()?;
        if finished.tables.is_none() {
            self.awaited.store(false, Ordering::Relaxed);
        }
        Some(finished.answer.clone())
    }

    /// The scored tables of a succeeded job.
    pub fn tables(&self) -> Option<Arc<RfmResult>> {
        let result = self.result.lock().unwrap_or_else(|e| e.into_inner());
        result.as_ref()?.tables.clone()
    }

    /// The memory its result holds, about (none before it ends, or when it
    /// failed).
    pub fn result_bytes(&self) -> u64 {
        let result = self.result.lock().unwrap_or_else(|e| e.into_inner());
        result.as_ref().map_or(0, |f| f.bytes)
    }

    /// The submitter has fetched the result's last table.
    pub fn tables_fetched(&self) {
        self.awaited.store(false, Ordering::Relaxed);
    }

    /// A result table was sent in full; once both were (in either order:
    /// a submitter fetches them side by side), the result is fetched.
    pub fn table_sent(&self, table: ResultTable) {
        let bit = match table {
            ResultTable::Customers | ResultTable::CustomersCsv => 1,
            ResultTable::Segments => 2,
            ResultTable::Unspecified => return,
        };
        if self.tables_sent.fetch_or(bit, Ordering::Relaxed) | bit == 3 {
            self.tables_fetched();
        }
    }

    /// Whether the job has ended but its result was not fetched yet.
    pub fn result_awaited(&self) -> bool {
        self.ended_ago().is_some() && self.awaited.load(Ordering::Relaxed)
    }

    /// The job's events from now on; once it has ended, a stream that is
    /// already closed (its status says how it ended).
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        match self.lock_live().as_ref() {
            Some(live) => live.events.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Stops the job: its submitter cancelled it, for `reason` (the first
    /// reason stays).
    pub fn cancel(&self, reason: &str) {
        self.stop(ErrorClass::Cancelled, reason.into());
    }

    /// Stops the running job with `class` and `message`, unless it was
    /// stopped already (nothing once it has ended).
    pub fn stop(&self, class: ErrorClass, message: String) {
        if let Some(live) = self.lock_live().as_ref() {
            live.stop.send_if_modified(|stop| {
                if stop.is_some() {
                    return false;
                }
                *stop = Some((class, message));
                true
            });
        }
    }

    /// Why the job is to stop, once it is (at once if it has ended).
    pub fn stop_signal(&self) -> watch::Receiver<Option<StopReason>> {
        match self.lock_live().as_ref() {
            Some(live) => live.stop.subscribe(),
            None => watch::channel(Some((ErrorClass::Cancelled, "the job has ended".into()))).1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    fn succeed(job: &Job) {
        let opts = rfm_core::RunOptions::default();
        job.finish(JobOutcome::Succeeded {
            report: RunReport::before_input("j", "in.csv", &opts),
            result: Arc::new(RfmResult {
                as_of: 10,
                latest_purchase: 9,
                customers: Vec::new(),
                segments: Vec::new(),
                revenue: rfm_core::money::Money::ZERO,
                ledger: Default::default(),
                cut_points: Default::default(),
            }),
            publication: Publication::default(),
        });
    }

    #[test]
    fn an_ended_job_frees_its_events_and_stop_signal_but_keeps_its_result() {
        let job = Job::new("j".into(), 2, 10);
        let mut watcher = job.subscribe();
        let stop = job.stop_signal();
        job.update("one task done", |s| s.tasks_done = 1);
        succeed(&job);
        assert!(job.lock_live().is_none(), "the event ring is freed");
        let events: Vec<_> = std::iter::from_fn(|| watcher.try_recv().ok()).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].message, "one task done");
        assert_eq!(
            events[1].status.as_ref().map(|s| s.state),
            Some(JobState::Succeeded as i32),
            "the final event reaches a watcher subscribed before the end"
        );
        assert_eq!(watcher.try_recv(), Err(TryRecvError::Closed));
        assert!(stop.has_changed().is_err(), "the stop signal is gone");

        let mut late = job.subscribe();
        assert_eq!(late.try_recv(), Err(TryRecvError::Closed));
        assert!(job.stop_signal().borrow().is_some());
        job.cancel("cancelled by the user");
        job.update("ignored", |s| s.tasks_done = 2);
        assert_eq!(job.status().state, JobState::Succeeded as i32);
        assert_eq!(job.status().tasks_done, 1);
        let result = job.result().expect("the result is kept");
        assert_eq!(result.scored.map(|s| s.as_of), Some(10));
        assert!(job.result_awaited(), "its tables are still to fetch");
        assert!(job.tables().is_some());
        // Fetched once both tables were sent, in either order.
        job.table_sent(ResultTable::Customers);
        job.table_sent(ResultTable::Customers);
        assert!(job.result_awaited(), "the segments are still to fetch");
        job.table_sent(ResultTable::Segments);
        assert!(!job.result_awaited());
        assert!(job.ended_ago().is_some());
    }
}
